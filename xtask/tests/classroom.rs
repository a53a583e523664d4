//! `cargo xtask classroom`: the GitHub Classroom workflow runs the grader with
//! `--format github` and hands its points to the grading reporter the way the reporter
//! reads them.

pub mod common;

use base64::Engine as _;
use serde_json::Value;

fn workflow(lab: &str) -> String {
    let output = common::xtask(&["classroom", lab]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The value of `key:` on the first line that has it (one-line YAML values only).
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().trim_start_matches("- ").strip_prefix(key))
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key}: in\n{text}"))
        .trim()
}

#[test]
fn the_workflow_feeds_the_graders_points_to_the_classroom_reporter() {
    let text = workflow("lab1");
    assert!(!text.contains('\t'), "YAML is indented with spaces");
    assert!(
        !text.contains("@LAB@") && !text.contains("@TITLE@"),
        "filled in"
    );
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let indent = line.len() - line.trim_start().len();
        assert_eq!(indent % 2, 0, "two-space indentation: {line:?}");
    }
    assert!(text.contains("uses: classroom-resources/autograding-grading-reporter@v1"));
    assert!(
        text.contains("checks: write"),
        "the reporter needs to write checks"
    );

    // The reporter reads runner `id` from `<ID>_RESULTS`, base64 JSON.
    let runner = value(&text, "runners");
    assert!(
        runner.chars().all(|c| c.is_ascii_alphanumeric()),
        "{runner}"
    );
    assert_eq!(value(&text, "id"), runner, "the grading step is the runner");
    let variable = format!("{}_RESULTS", runner.to_uppercase());
    assert_eq!(
        value(&text, &variable),
        format!("\"${{{{ steps.{runner}.outputs.result }}}}\"")
    );
    let command = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("run: cargo xtask "))
        .unwrap_or_else(|| panic!("no grading command in\n{text}"));
    assert_eq!(command, "grade lab1 --format github");

    // Run that command (on the reference, for points to count) as Actions would, and
    // add up the points as the reporter does: the tests' scores over max_score.
    let dir = tempfile::tempdir().unwrap();
    let output_file = dir.path().join("output");
    let mut args: Vec<&str> = command.split(' ').collect();
    args.push("--solution");
    let run = assert_cmd::Command::cargo_bin("xtask")
        .unwrap()
        .args(&args)
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", dir.path().join("summary"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.starts_with("::stop-commands::"), "{stdout}");
    let written = std::fs::read_to_string(&output_file).unwrap();
    let encoded = written
        .lines()
        .find_map(|l| l.strip_prefix("result="))
        .expect("result= in $GITHUB_OUTPUT");
    let result: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let points: u64 = result["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["score"].as_u64().unwrap())
        .sum();
    let max = result["max_score"].as_u64().unwrap();
    let json = common::xtask(&["grade", "lab1", "--solution", "--json"]);
    let report = &common::reports(&json)[0];
    assert_eq!(max, report["max_score"].as_u64().unwrap());
    assert_eq!(points, max, "the reference gets every point");
    assert_eq!(result["status"], "pass");
}

#[test]
fn a_crate_that_does_not_compile_still_reports_zero_points() {
    // The reporter needs a result even when the student's crate does not build: grade
    // through a CARGO that always fails, as a crate with errors would.
    let dir = tempfile::tempdir().unwrap();
    let output_file = dir.path().join("output");
    let run = assert_cmd::Command::cargo_bin("xtask")
        .unwrap()
        .args(["grade", "lab1", "--format", "github"])
        .env("CARGO", "false")
        .env("GITHUB_OUTPUT", &output_file)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("::error title=lab1%3A listens failed (0/1)::not gradable"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(&output_file).unwrap();
    let encoded = written.trim().strip_prefix("result=").unwrap();
    let result: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(result["status"], "fail");
    assert!(result["max_score"].as_u64().unwrap() > 0);
    assert!(
        result["tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["score"] == 0)
    );
}
