//! Helpers shared by the xtask integration tests: run `cargo xtask` and read its JSON.

#![allow(dead_code)]

use assert_cmd::Command;
use serde_json::Value;

/// `cargo xtask ARGS...`, as a newcomer would type it (but without cargo's alias).
pub fn xtask(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("xtask")
        .expect("the xtask binary is built for its own tests")
        .args(args)
        .timeout(std::time::Duration::from_secs(1800))
        .output()
        .expect("xtask runs")
}

/// The JSON reports of `grade ... --json` (one object, or a list for `all`).
pub fn reports(output: &std::process::Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&output.stdout);
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "grade --json printed no JSON ({e}):\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    match value {
        Value::Array(items) => items,
        single => vec![single],
    }
}

/// Every check of a report, as (name, passed, message).
pub fn checks(report: &Value) -> Vec<(String, bool, String)> {
    report["checks"]
        .as_array()
        .expect("checks is a list")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["passed"].as_bool().unwrap(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
