//! The xtask command line: clear one-line errors, JSON shape, other languages via --cmd.

pub mod common;

use predicates::prelude::*;

#[test]
fn an_unknown_lab_is_a_one_line_error() {
    assert_cmd::Command::cargo_bin("xtask")
        .unwrap()
        .args(["grade", "lab99"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown lab \"lab99\"")
                .and(predicate::str::contains("panicked").not()),
        );
}

#[test]
fn a_broken_cmd_is_a_one_line_error() {
    assert_cmd::Command::cargo_bin("xtask")
        .unwrap()
        .args(["grade", "lab1", "--cmd", "python3 'unclosed"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a valid command line"));
}

#[test]
fn json_report_has_the_documented_shape() {
    let output = common::xtask(&["grade", "lab1", "--solution", "--json", "--check", "greets"]);
    let report = &common::reports(&output)[0];
    assert_eq!(report["lab"], "lab1");
    assert_eq!(report["score"], report["max_score"]);
    let check = &report["checks"][0];
    for key in ["name", "score", "max_score", "passed", "message"] {
        assert!(check.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn a_program_in_another_language_is_graded_through_cmd() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/python/lab1_server.py"
    );
    // Basic sandbox: every check runs, including survives-emfile, which needs to lower
    // the program's descriptor limit (a root without CAP_SYS_RESOURCE, as on this kind of
    // machine, cannot do that to a program running under a uid of its own).
    let output = common::xtask(&[
        "grade",
        "lab1",
        "--cmd",
        &format!("python3 {script}"),
        "--sandbox",
        "basic",
        "--json",
    ]);
    let report = &common::reports(&output)[0];
    for (name, passed, message) in common::checks(report) {
        assert!(passed, "the Python lab1 server failed {name}:\n{message}");
    }
    assert!(output.status.success());
}

/// `xtask ARGS` must fail with exit 2 and one stderr line containing `needle`.
fn one_line_error(args: &[&str], needle: &str) {
    let output = common::xtask(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{args:?}: one line, got:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: {needle:?} not in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn a_missing_program_is_one_line_error_not_one_per_check() {
    one_line_error(
        &["grade", "lab1", "--cmd", "/nonexistent/program"],
        "/nonexistent/program",
    );
    one_line_error(
        &["grade", "lab1", "--cmd", "no-such-command-xyz"],
        "not a command on PATH",
    );
}

#[test]
fn a_program_that_is_not_executable_is_named() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/python/lab1_server.py"
    );
    one_line_error(&["grade", "lab1", "--cmd", script], "not executable");
}

#[test]
fn an_unknown_check_is_an_error_listing_the_checks() {
    one_line_error(
        &["grade", "lab1", "--check", "nosuch"],
        "unknown check \"nosuch\"",
    );
    one_line_error(&["grade", "lab1", "--check", "nosuch"], "greets");
}

#[test]
fn demo_names_the_labs_it_accepts() {
    let output = common::xtask(&["demo", "all"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("lab1") && !stderr.contains("or all"),
        "{stderr}"
    );
}

#[test]
fn zero_jobs_is_an_error() {
    one_line_error(&["grade", "lab1", "--jobs", "0"], "--jobs");
}

#[test]
fn a_reader_that_goes_away_ends_the_grader_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut grader = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["grade", "lab1", "--solution"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first line, then close the pipe, as `| head -1` does.
    let mut stdout = grader.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {}
    drop(stdout);
    let output = grader.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "quiet: {stderr}");
}

#[test]
fn a_program_that_rejects_an_option_is_told_so() {
    // A stand-in for an argparse program that does not know --backlog: exit 2 + usage.
    let folder = tempfile::tempdir().unwrap();
    let script = folder.path().join("strict.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --backlog ] && { echo 'usage: strict.sh server --host H --port P' >&2; echo 'strict.sh: error: unrecognized arguments: --backlog' >&2; exit 2; }; done\nexec python3 CMD \"$@\"\n"
            .replace(
                "CMD",
                concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/lab1_server.py"),
            ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = common::xtask(&[
        "grade",
        "lab1",
        "--cmd",
        &script.display().to_string(),
        "--check",
        "backlog",
        "--json",
    ]);
    let report = &common::reports(&output)[0];
    let (_, passed, message) = &common::checks(report)[0];
    assert!(!passed);
    assert!(message.contains("rejected its command line"), "{message}");
}

#[test]
fn json_has_the_program_durations_and_a_format_version() {
    let output = common::xtask(&[
        "grade",
        "lab1",
        "--solution",
        "--json",
        "--check",
        "listens",
    ]);
    let report = &common::reports(&output)[0];
    assert_eq!(report["format_version"], 2);
    assert!(
        report["program"]
            .as_str()
            .unwrap()
            .contains("lab1-solution")
    );
    assert!(report["duration_ms"].is_u64());
    assert!(report["checks"][0]["duration_ms"].is_u64());
    assert_eq!(report["checks"][0]["status"], "passed");
}

#[test]
fn the_whole_run_is_bounded_by_max_time() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/never_reads.py");
    let started = std::time::Instant::now();
    let output = common::xtask(&[
        "grade",
        "lab3",
        "--cmd",
        &format!("python3 {script}"),
        "--max-time",
        "3",
        "--json",
    ]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let report = &common::reports(&output)[0];
    let statuses: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"timed-out"), "{statuses:?}");
    let messages: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("not run")),
        "{messages:?}"
    );
}

/// A student's build (the `cargo xtask` alias, without the `tools` feature) hands
/// `gradescope` over to the full build: same command line, its output and exit code.
#[test]
fn the_students_build_hands_gradescope_to_the_full_build() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let cargo = || {
        let mut command = assert_cmd::Command::new(env!("CARGO"));
        command.current_dir(root).env_remove("SOCKLAB_TOOLS_BUILD");
        command
    };
    cargo()
        .args(["xtask", "gradescope", "lab1", "--out"])
        .arg(out.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("run from xtask's full build"));
    assert!(out.path().join("autograder.zip").is_file());
    // An error in the full build reaches the student as it is: one line, exit 2.
    cargo()
        .args(["xtask", "gradescope", "all", "--out"])
        .arg(out.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "a Gradescope assignment grades one lab",
        ));
}
