//! Turns a check's [`Failure`] into an [`Explanation`] a student can act on.
//!
//! Besides what the check itself said (problem, sent, expected, got, hint), this adds
//! what only the end of a check can know: the skeleton step the program stopped at, the
//! first byte where expected and got differ, the last lines each program printed, a
//! program that rejected its own command line, and a "try it by hand" line.

use super::Failure;
use super::check::Details;
use super::ctx::Ctx;
use super::net::show;
use super::process::describe_status;
use super::result::Explanation;

/// The phrases that mark an unfinished skeleton step: ours, and Rust's own `todo!()`.
const NOT_IMPLEMENTED: [&str; 2] = [shared::run::NOT_IMPLEMENTED, "not yet implemented"];

/// How many stderr lines of each program the report shows.
const STDERR_TAIL: usize = 5;

/// The port the by-hand lines use: easy to type, and what the READMEs use.
const HAND_PORT: &str = "5000";

/// Explains `failure` with everything the context still knows.
pub fn explain(ctx: &mut Ctx, failure: Failure) -> Explanation {
    let failure = failure.into_details();
    // A program that has just stopped (a skeleton's todo!() panicking after accept(),
    // which closes the connection while unwinding, before the process exits) may still
    // have its last words in the pipe: take them in before reading its stderr.
    for running in ctx.procs_mut() {
        let _ = running.exited();
        running.take_in_output();
    }
    let stderr = ctx.stderr_tails(STDERR_TAIL);
    if let Some(step) = unfinished_step(ctx) {
        return Explanation {
            problem: format!("the program stopped at {step}, which is not written yet"),
            step: Some(step),
            ..Explanation::default()
        };
    }
    let mut explanation = Explanation {
        difference: failure
            .compared
            .as_ref()
            .and_then(|(expected, got)| difference(expected, got)),
        by_hand: failure.by_hand.clone().or_else(|| by_hand(ctx, &failure)),
        problem: failure.problem,
        sent: failure.sent,
        expected: failure.expected,
        got: failure.got,
        hint: failure.hint,
        step: None,
        stderr,
        compared: failure.compared,
    };
    if let Some(usage) = rejected_command_line(ctx) {
        // Whatever the check saw next follows from this; say the cause instead.
        explanation.hint = Some(usage);
    }
    explanation
}

/// The whole explanation as plain text, one item per line (`--json`'s `message`).
pub fn plain_text(e: &Explanation) -> String {
    let mut lines = vec![e.problem.clone()];
    let fields = [
        ("sent", &e.sent),
        ("expected", &e.expected),
        ("got", &e.got),
        ("difference", &e.difference),
        ("hint", &e.hint),
        ("try it by hand", &e.by_hand),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            lines.push(format!("{name}: {value}"));
        }
    }
    for (label, tail) in &e.stderr {
        lines.push(format!("stderr of {label}:"));
        lines.extend(tail.iter().map(|l| format!("  | {l}")));
    }
    lines.join("\n")
}

/// `step 5: accept the next client (labs/lab1-tcp-server/src/main.rs:118)`, if a
/// program stopped at an unwritten skeleton step.
fn unfinished_step(ctx: &Ctx) -> Option<String> {
    ctx.stderr_tails(usize::MAX)
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .find_map(|line| {
            NOT_IMPLEMENTED.iter().find_map(|phrase| {
                let at = line.find(phrase)?;
                Some(
                    line[at + phrase.len()..]
                        .trim_start_matches(':')
                        .trim()
                        .to_string(),
                )
            })
        })
}

/// Where `expected` and `got` first differ, in words.
pub fn difference(expected: &[u8], got: &[u8]) -> Option<String> {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .or_else(|| (expected.len() != got.len()).then(|| expected.len().min(got.len())))?;
    let describe = |bytes: &[u8]| match bytes.get(at) {
        Some(byte) => format!("{:?} (0x{byte:02x})", char::from(*byte)),
        None => "the end of the data".to_string(),
    };
    Some(format!(
        "first difference at byte {at}: expected {}, got {}",
        describe(expected),
        describe(got)
    ))
}

/// Where the marker goes under `show(got)` for the first difference, when `got` is
/// short text shown whole: the column of the differing byte (or of its end).
pub fn caret_column(expected: &[u8], got: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(got).ok()?;
    if show(got).len() > 100 {
        return None;
    }
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    if !text.is_char_boundary(at) {
        return None;
    }
    // `show` is Rust's quoted form: the prefix's quoted length less its closing quote.
    Some(format!("{:?}", &text[..at]).len() - 1)
}

/// A program that exited with status 2 and printed a usage message rejected the
/// arguments it was given (argparse, clap and getopt all do this).
fn rejected_command_line(ctx: &mut Ctx) -> Option<String> {
    let launches: Vec<_> = ctx.launches().cloned().collect();
    for (running, launch) in ctx.procs_mut().iter_mut().zip(launches) {
        let Some(status) = running.exited() else {
            continue;
        };
        if status.code() != Some(2) {
            continue;
        }
        let stderr = running.stderr_text().to_lowercase();
        if stderr.contains("usage")
            || stderr.contains("unrecognized")
            || stderr.contains("unexpected argument")
        {
            return Some(format!(
                "the program rejected its command line ({}, after `{}`): it must accept \
                 every option of the contract in the lab's README",
                describe_status(status),
                launch.args.join(" ")
            ));
        }
    }
    None
}

/// "try it by hand": start the program as the check did, then poke it as the check did.
fn by_hand(ctx: &Ctx, failure: &Details) -> Option<String> {
    let program = hand_program(ctx.program());
    let scratch = ctx.scratch().display().to_string();
    let launch = ctx.launches().last()?;
    let args: Vec<String> = hand_args(&launch.args, &scratch);
    let quoted = shlex::try_join(args.iter().map(String::as_str)).unwrap_or_default();
    let run = format!("{program} {quoted}");
    let lab4 = args.iter().any(|a| a == "--udp") || program.contains("lab4");
    let unix_path = args
        .iter()
        .zip(args.iter().skip(1))
        .find(|(flag, _)| *flag == "--path")
        .map(|(_, path)| path.clone());
    let host = flag_value(&args, "--host").unwrap_or_else(|| "127.0.0.1".into());
    let payload = failure.sent_raw.as_deref();
    let role = args.first().map(String::as_str).unwrap_or("");
    let is_client = role.contains("client") || role == "status";
    if launch.listened || (unix_path.is_some() && !is_client) {
        let feed = match payload {
            Some(bytes) if bytes.len() > 200 => format!("head -c {} /dev/urandom | ", bytes.len()),
            Some(bytes) => format!("printf '{}' | ", printf_escape(bytes)),
            None => String::new(),
        };
        let client = match (&unix_path, lab4) {
            (Some(path), _) => format!("socat - UNIX-CONNECT:{path}"),
            (None, true) => format!("nc -u -w1 {host} {HAND_PORT}"),
            (None, false) if payload.is_some() => format!("nc -N {host} {HAND_PORT}"),
            (None, false) => format!("nc {host} {HAND_PORT}"),
        };
        Some(format!("{run}   then in another terminal: {feed}{client}"))
    } else if let Some(path) = unix_path.filter(|_| is_client) {
        Some(format!(
            "socat UNIX-LISTEN:{path} -   then in another terminal: {run}"
        ))
    } else if args.iter().any(|a| a == "--port") {
        let listen = if lab4 { "nc -u -l" } else { "nc -l" };
        Some(format!(
            "{listen} {host} {HAND_PORT}   then in another terminal: {run}"
        ))
    } else {
        Some(run)
    }
}

/// How a student runs the program under test by hand.
fn hand_program(program: &[String]) -> String {
    let first = program.first().map(String::as_str).unwrap_or("");
    let name = std::path::Path::new(first)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let built_here =
        first.contains("/target/") && name.starts_with("lab") && !name.contains("mutant");
    if built_here && program.len() == 1 {
        format!("cargo run -q -p {name} --")
    } else {
        shlex::try_join(program.iter().map(String::as_str)).unwrap_or_default()
    }
}

/// The check's arguments with its random port and scratch folder made typeable.
fn hand_args(args: &[String], scratch: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_port = false;
    for arg in args {
        if after_port {
            out.push(HAND_PORT.to_string());
            after_port = false;
            continue;
        }
        after_port = arg == "--port";
        out.push(arg.replace(scratch, "/tmp"));
    }
    out
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Bytes as the inside of a single-quoted `printf` format that prints exactly them.
fn printf_escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &byte in bytes {
        match byte {
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'\\' => out.push_str("\\\\"),
            b'%' => out.push_str("%%"),
            b'\'' => out.push_str("\\047"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_first_difference() {
        let d = difference(b"hello\n", b"hello").unwrap();
        assert!(d.contains("byte 5") && d.contains("end of the data"), "{d}");
        assert_eq!(difference(b"same", b"same"), None);
        // "hello" shown is "\"hello\"": the marker sits on the closing quote.
        assert_eq!(caret_column(b"hello\n", b"hello"), Some(6));
    }

    #[test]
    fn printf_reproduces_bytes() {
        assert_eq!(printf_escape(b"ping 42\n"), "ping 42\\n");
        assert_eq!(printf_escape(b"100%'\xff"), "100%%\\047\\377");
    }

    #[test]
    fn by_hand_args_use_a_typeable_port_and_path() {
        let args: Vec<String> = [
            "server",
            "--port",
            "41234",
            "--path",
            "/tmp/socklab-check-x/s.sock",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            hand_args(&args, "/tmp/socklab-check-x"),
            ["server", "--port", "5000", "--path", "/tmp/s.sock"]
        );
    }
}
