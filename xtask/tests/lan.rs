//! `cargo xtask lan` starts alpha and beta and keeps them until Enter; `lan shell beta`
//! runs a shell inside beta, which reaches a server on alpha by address; Enter takes
//! everything down. Where namespaces are unavailable, `lan` says so in one line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn xtask() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("xtask"))
}

#[test]
fn lan_hosts_talk_by_address_and_vanish_on_enter() {
    let state = tempfile::tempdir().unwrap();
    let mut lan = xtask()
        .arg("lan")
        .env("TMPDIR", state.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = BufReader::new(lan.stdout.take().unwrap());
    let mut text = String::new();
    while banner.read_line(&mut text).unwrap_or(0) > 0 && !text.contains("Press Enter") {}
    if !text.contains("Press Enter") {
        let output = lan.wait_with_output().unwrap();
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            error.contains("unavailable: ") && error.lines().count() == 1,
            "{error}"
        );
        assert!(!is_root(), "as root (as in CI) the lan must start: {error}");
        return;
    }
    // beta reaches alpha by address (bash's /dev/tcp): port 9 answers with a RST.
    let shell = |host: &str, script: &str| {
        let mut child = xtask()
            .args(["lan", "shell", host])
            .env("TMPDIR", state.path())
            .env("SHELL", "/bin/bash")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
    };
    let alpha = shell("alpha", "hostname; ip -br addr show dev eth0\n");
    assert!(
        alpha.contains("\nalpha\n") && alpha.contains("198.51.100.1/24"),
        "{alpha}"
    );
    let beta = shell(
        "beta",
        "hostname; (echo > /dev/tcp/198.51.100.1/9) 2>/dev/null && echo open || echo refused\n",
    );
    assert!(
        beta.contains("\nbeta\n") && beta.contains("refused"),
        "{beta}"
    );
    lan.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    while banner.read_line(&mut rest).unwrap_or(0) > 0 {}
    assert!(lan.wait().unwrap().success());
    assert!(rest.contains("gone"), "{rest}");
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
    let after = xtask()
        .args(["lan", "shell", "beta"])
        .env("TMPDIR", state.path())
        .output()
        .unwrap();
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("no lan is running"));
}

fn is_root() -> bool {
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
fn without_namespaces_lan_says_so_in_one_line() {
    let output = xtask()
        .arg("lan")
        .env("SOCKLAB_NO_NAMESPACES", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("unavailable: SOCKLAB_NO_NAMESPACES is set"),
        "{error}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn ctrl_c_takes_the_lan_down() {
    let state = tempfile::tempdir().unwrap();
    let mut lan = xtask()
        .arg("lan")
        .env("TMPDIR", state.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = BufReader::new(lan.stdout.take().unwrap());
    let mut text = String::new();
    while banner.read_line(&mut text).unwrap_or(0) > 0 && !text.contains("Press Enter") {}
    if !text.contains("Press Enter") {
        let _ = lan.wait();
        assert!(!is_root(), "as root (as in CI) the lan must start");
        return;
    }
    let uid = nix::unistd::geteuid().as_raw();
    let pids: Vec<u32> = std::fs::read_to_string(state.path().join(format!("socklab-lan-{uid}")))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' ')?.1.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lan.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    while banner.read_line(&mut rest).unwrap_or(0) > 0 {}
    assert!(lan.wait().unwrap().success());
    assert!(rest.contains("Ctrl+C"), "{rest}");
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}
