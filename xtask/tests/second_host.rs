//! Checks that need a second host (lab 1 `reachable-from-another-host`, lab 2
//! `reaches-another-host`): where namespaces cannot be made they say "cannot test this
//! here", count for no points, and full marks stay reachable.

pub mod common;

use assert_cmd::Command;

fn grade(lab: &str, checks: &[&str]) -> (std::process::Output, serde_json::Value) {
    let mut args = vec!["grade", lab, "--solution", "--json"];
    for check in checks {
        args.extend(["--check", check]);
    }
    let output = Command::cargo_bin("xtask")
        .expect("xtask is built for its tests")
        .args(&args)
        .env("SOCKLAB_NO_NAMESPACES", "1")
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .expect("xtask runs");
    let report = common::reports(&output).remove(0);
    (output, report)
}

#[test]
fn without_namespaces_second_host_checks_are_left_out_of_the_score() {
    for (lab, check, other) in [
        ("lab1", "reachable-from-another-host", "listens"),
        ("lab2", "reaches-another-host", "sends-message"),
    ] {
        let (output, report) = grade(lab, &[check, other]);
        assert!(
            output.status.success(),
            "{lab}: full marks expected: {report}"
        );
        assert_eq!(report["score"], report["max_score"], "{report}");
        assert_eq!(
            report["max_score"], 1,
            "{lab}: only {other} counts: {report}"
        );
        let skipped = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == check)
            .expect("the check is reported");
        assert_eq!(skipped["status"], "cannot-test", "{skipped}");
        assert_eq!(skipped["max_score"], 0);
        let message = skipped["message"].as_str().unwrap();
        assert!(
            message.starts_with("cannot test this here: unavailable: "),
            "{message}"
        );
    }
}
