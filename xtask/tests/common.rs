//! Helpers shared by the xtask integration tests: run `cargo xtask` and read its JSON.
//!
//! Each test file declares it `pub mod common;`: a test file uses only some of these
//! helpers, and a public module's items count as used, so no `allow(dead_code)` is needed.

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

/// The repository the tests belong to.
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Copies a folder tree (leaving out any `target/`), for scratch copies of the workspace.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
