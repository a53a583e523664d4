//! A student's whole journey through lab 1, as the grader guides it: from the empty
//! skeleton, write the step the "what to do next" block names, grade, repeat, until
//! full marks. Every step written must move something visible, and the block must
//! always name the step that is really next. Runs in a scratch copy of the workspace.

pub mod common;

use common::{copy_tree, repo};
use std::fs;
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use regex::Regex;

const FOLDER: &str = "lab1-tcp-server";

/// A workspace holding only `shared/` and lab 1 (skeleton and solution).
fn scratch_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let manifest = fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let members = Regex::new(r"members = \[[^\]]*\]").unwrap();
    let manifest = members.replace(
        &manifest,
        format!(r#"members = ["shared", "labs/{FOLDER}", "solutions/{FOLDER}"]"#),
    );
    fs::write(root.join("Cargo.toml"), manifest.as_ref()).unwrap();
    fs::copy(repo().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    copy_tree(&repo().join("shared"), &root.join("shared"));
    for side in ["labs", "solutions"] {
        copy_tree(
            &repo().join(side).join(FOLDER),
            &root.join(side).join(FOLDER),
        );
    }
    dir
}

/// The solution's answer for `step`, as the lines between its fence markers.
fn answer(solution: &str, step: u32) -> String {
    let marker = format!("//- answer: step {step}:");
    let start = solution.find(&marker).expect("the step has a fence");
    let body_start = solution[start..].find('\n').unwrap() + start + 1;
    let end = solution[body_start..].find("//- end").unwrap() + body_start;
    solution[body_start..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//- "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes `step` into the skeleton: the `todo!` line becomes the solution's answer.
fn write_step(skeleton: &Path, solution: &str, step: u32) {
    let text = fs::read_to_string(skeleton).unwrap();
    let todo = Regex::new(&format!(r#"(?m)^\s*todo!\("step {step}: [^\n]*\n"#)).unwrap();
    let found = todo.find(&text).expect("the skeleton has the step's todo!");
    let written = format!(
        "{}{}\n{}",
        &text[..found.start()],
        answer(solution, step),
        &text[found.end()..]
    );
    fs::write(skeleton, written).unwrap();
}

fn grade(root: &Path) -> (String, Option<i32>) {
    let output = Command::cargo_bin("xtask")
        .unwrap()
        .env("SOCKLAB_ROOT", root)
        // Reuse the workspace's compiled dependencies instead of building them again.
        .env("CARGO_TARGET_DIR", repo().join("target/journey"))
        .args(["grade", "lab1"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_ne!(
        output.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (stdout, output.status.code())
}

/// The "what to do next" block of a report.
fn next_block(report: &str) -> &str {
    let at = report.find("== what to do next").expect("a next block");
    &report[at..]
}

#[test]
fn from_the_empty_skeleton_to_full_marks_by_following_the_next_block() {
    let workspace = scratch_workspace();
    let root = workspace.path();
    let solution =
        fs::read_to_string(root.join("solutions").join(FOLDER).join("src/main.rs")).unwrap();
    let skeleton = root.join("labs").join(FOLDER).join("src/main.rs");
    let steps = solution.matches("//- answer: step ").count() as u32;
    let written_line = Regex::new(r"steps written: (\d+) of (\d+)").unwrap();
    let mut last_written = None;
    for step in 1..=steps {
        let (report, status) = grade(root);
        assert_eq!(status, Some(1), "not full marks yet:\n{report}");
        let next = next_block(&report);
        assert!(
            next.contains(&format!("Write step {step}:")),
            "after {} steps the next block should name step {step}:\n{report}",
            step - 1
        );
        assert!(next.contains("labs/lab1-tcp-server/src/main.rs:"), "{next}");
        assert_eq!(
            next.matches("Write step").count(),
            1,
            "the step is named once:\n{next}"
        );
        let written: u32 = written_line.captures(&report).expect("progress shown")[1]
            .parse()
            .unwrap();
        assert_eq!(written, step - 1, "{report}");
        if let Some(last) = last_written {
            assert!(written > last, "writing a step moved nothing:\n{report}");
        }
        last_written = Some(written);
        write_step(&skeleton, &solution, step);
    }
    let (report, status) = grade(root);
    assert_eq!(
        status,
        Some(0),
        "full marks once every step is written:\n{report}"
    );
    assert!(next_block(&report).contains("Full marks"), "{report}");
}
