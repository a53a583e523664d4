//! The demos of labs 1 and 2 show the wire: SYN, SYN-ACK, ACK, FIN and RST lines in
//! that order beside the narrated calls, every line within 100 columns. Where this
//! machine cannot make namespaces (not root, and user namespaces forbidden) the demo
//! says so in one `[wire] unavailable: ...` line instead; that path is tested
//! everywhere by forcing it with `SOCKLAB_NO_NAMESPACES`.

use assert_cmd::Command;

fn demo(lab: &str, no_namespaces: bool) -> String {
    let mut command = Command::cargo_bin("xtask").expect("xtask is built for its tests");
    command
        .args(["demo", lab])
        .timeout(std::time::Duration::from_secs(600));
    if no_namespaces {
        command.env("SOCKLAB_NO_NAMESPACES", "1");
    } else {
        command.env_remove("SOCKLAB_NO_NAMESPACES");
    }
    let output = command.output().expect("xtask runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{lab} demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains(&format!("end of the {lab} demo")));
    text
}

/// The flags of each `[wire]` TCP line, in order: `SYN`, `SYN-ACK`, `FIN-ACK`...
fn flags(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("[wire] "))
        .filter_map(|rest| rest.split("  ").nth(1))
        .map(|flags| flags.trim().to_string())
        .collect()
}

fn shows_the_wire_in_order(lab: &str, text: &str) {
    if let Some(line) = text.lines().find(|l| l.starts_with("[wire] unavailable")) {
        assert!(
            !nix_is_root(),
            "{lab}: as root (as in CI) namespaces must work, got: {line}"
        );
        eprintln!("{lab}: no wire here: {line}");
        return;
    }
    let flags = flags(text);
    let mut at = 0;
    for wanted in ["SYN", "SYN-ACK", "ACK", "FIN-ACK", "RST-ACK"] {
        match flags[at..].iter().position(|f| f == wanted) {
            Some(found) => at += found + 1,
            None => panic!("{lab}: no {wanted} after the earlier flags: {flags:?}\n{text}"),
        }
    }
    // Beside the calls: the handshake is on the wire before connect() says so.
    let first_syn = text.find("  SYN ").expect("a SYN line");
    let connected = text
        .find("accept() -> fd")
        .or_else(|| text.find(") -> connected"))
        .expect("a narrated accept or connect");
    assert!(
        first_syn < connected,
        "{lab}: the SYN comes after the call:\n{text}"
    );
    fits_100_columns(lab, text);
}

fn fits_100_columns(lab: &str, text: &str) {
    let wide: Vec<&str> = text.lines().filter(|l| l.chars().count() > 100).collect();
    assert!(
        wide.is_empty(),
        "{lab}: lines wider than 100 columns: {wide:#?}"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn lab1_demo_shows_handshake_close_and_reset_on_the_wire() {
    shows_the_wire_in_order("lab1", &demo("lab1", false));
}

#[test]
fn lab2_demo_shows_handshake_half_close_and_reset_on_the_wire() {
    let text = demo("lab2", false);
    if !text.contains("[wire] unavailable") {
        assert!(
            text.contains("TIME-WAIT"),
            "lab2: no TIME-WAIT in ss:\n{text}"
        );
    }
    shows_the_wire_in_order("lab2", &text);
}

#[test]
fn lab3_demo_shows_bytes_not_messages_on_the_wire() {
    let text = demo("lab3", false);
    if text.contains("[wire] unavailable") {
        assert!(!nix_is_root(), "as root namespaces must work:\n{text}");
        return;
    }
    // Three sends (three segments) come out of one recv().
    for piece in ["len=4 \"one\\n\"", "len=4 \"two\\n\"", "len=6 \"three\\n\""] {
        assert!(text.contains(piece), "lab3: no segment {piece}:\n{text}");
    }
    assert!(
        text.contains("recv() -> 14 bytes"),
        "lab3: no single recv():\n{text}"
    );
    // One send of 4000 bytes leaves as several segments of at most one packet (1448
    // bytes with TCP timestamps on, 1460 without).
    let full = text
        .lines()
        .filter_map(|l| {
            l.split(" len=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .filter(|len| (1000..=1460).contains(len))
        .count();
    assert!(full >= 2, "lab3: no big send cut into segments:\n{text}");
    fits_100_columns("lab3", &text);
}

#[test]
fn lab4_demo_shows_datagrams_and_port_unreachable() {
    let text = demo("lab4", false);
    if text.contains("[wire] unavailable") {
        assert!(!nix_is_root(), "as root namespaces must work:\n{text}");
        return;
    }
    assert!(text.contains("UDP      len="), "lab4: no datagram:\n{text}");
    assert!(
        text.contains("ICMP     port unreachable"),
        "lab4: no ICMP port unreachable:\n{text}"
    );
    assert!(
        text.contains("Connection refused"),
        "lab4: no ECONNREFUSED:\n{text}"
    );
    assert!(!text.contains("SYN"), "lab4: UDP has no handshake:\n{text}");
    fits_100_columns("lab4", &text);
}

#[test]
fn without_namespaces_the_demo_says_so_and_goes_on() {
    for lab in ["lab1", "lab2", "lab3", "lab4"] {
        let text = demo(lab, true);
        let notes: Vec<&str> = text.lines().filter(|l| l.starts_with("[wire]")).collect();
        assert_eq!(notes.len(), 1, "{lab}: {notes:?}\n{text}");
        assert!(
            notes[0].starts_with("[wire] unavailable: SOCKLAB_NO_NAMESPACES is set"),
            "{lab}: {}",
            notes[0]
        );
        assert!(text.contains("accept()") || text.contains("connect("));
    }
}

#[test]
fn step_mode_waits_for_enter_and_plays_the_same_session() {
    let mut command = Command::cargo_bin("xtask").expect("xtask is built for its tests");
    let enters = "\n".repeat(400);
    let output = command
        .args(["demo", "lab2", "--step"])
        .write_stdin(enters)
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .expect("xtask runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("press Enter"), "{text}");
    assert!(text.contains("end of the lab2 demo"), "{text}");
    // Each line on a line of its own, as without --step.
    assert!(
        !text.lines().any(|l| l.matches("[client]").count() > 1),
        "lines ran together:\n{text}"
    );
}
