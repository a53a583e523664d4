//! The xtask command line: clear one-line errors, JSON shape, other languages via --cmd.

mod common;

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
    let output = common::xtask(&[
        "grade",
        "lab1",
        "--cmd",
        &format!("python3 {script}"),
        "--json",
    ]);
    let report = &common::reports(&output)[0];
    for (name, passed, message) in common::checks(report) {
        assert!(passed, "the Python lab1 server failed {name}:\n{message}");
    }
    assert!(output.status.success());
}

#[test]
fn a_program_that_is_missing_fails_every_check_without_crashing() {
    let output = common::xtask(&["grade", "lab1", "--cmd", "/nonexistent/program", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report = &common::reports(&output)[0];
    assert_eq!(report["score"], 0);
}
