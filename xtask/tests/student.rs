//! The student loop: `hint`, `list`, `reset`, `watch`, and `skeletons` refusing to
//! overwrite a student's work. Every test that writes works in a scratch copy of the
//! workspace (SOCKLAB_ROOT), never in the repository's own labs/ or state.

pub mod common;

use common::{copy_tree, repo};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;

/// A scratch workspace with the root manifest and these labs (folder names), both
/// the student's crate and the reference solution. Removed when dropped.
fn scratch(folders: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(repo().join("Cargo.toml"), dir.path().join("Cargo.toml")).unwrap();
    for folder in folders {
        for side in ["labs", "solutions"] {
            copy_tree(
                &repo().join(side).join(folder),
                &dir.path().join(side).join(folder),
            );
        }
    }
    dir
}

/// Every lab folder of the repository.
fn all_folders() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repo().join("solutions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// `xtask ARGS` in the scratch workspace `root`.
fn xtask_in(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::cargo_bin("xtask").unwrap();
    command
        .env("SOCKLAB_ROOT", root)
        .args(args)
        .timeout(Duration::from_secs(120));
    command
}

fn stdout_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

const LAB1: &str = "lab1-tcp-server";

/// The code lines of lab 1's step 1 answer in the reference solution.
fn lab1_step1_answer() -> Vec<String> {
    let text = fs::read_to_string(repo().join("solutions").join(LAB1).join("src/main.rs")).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("//- answer: step 1:"));
    lines
        .by_ref()
        .take_while(|l| !l.contains("//- end"))
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && l.len() > 3)
        .map(String::from)
        .collect()
}

#[test]
fn hint_gives_the_idea_then_the_api_and_never_the_answer() {
    let root = scratch(&[LAB1]);
    let first = stdout_of(&mut xtask_in(root.path(), &["hint", "lab1"]));
    assert!(first.contains("step 1: create a TCP socket"), "{first}");
    assert!(
        first.contains("labs/lab1-tcp-server/src/main.rs:"),
        "{first}"
    );
    assert!(first.contains("The idea:"), "{first}");
    assert!(
        !first.contains("Where to look:"),
        "tier 2 too soon:\n{first}"
    );
    assert!(first.contains("--more"), "{first}");

    let second = stdout_of(&mut xtask_in(root.path(), &["hint", "lab1"]));
    assert!(second.contains("Where to look:"), "{second}");
    assert!(second.contains("Socket::new"), "{second}");

    let answer = lab1_step1_answer();
    assert!(!answer.is_empty());
    for text in [&first, &second] {
        for line in &answer {
            assert!(
                !text.contains(line.as_str()),
                "the hint gives away {line:?}:\n{text}"
            );
        }
    }
}

#[test]
fn hint_more_goes_straight_to_the_api_and_knows_when_all_is_written() {
    let root = scratch(&[LAB1]);
    let more = stdout_of(&mut xtask_in(root.path(), &["hint", "lab1", "--more"]));
    assert!(
        more.contains("The idea:") && more.contains("Where to look:"),
        "{more}"
    );

    // A lab whose every step is written: no hint, a pointer to grading.
    fs::copy(
        root.path().join("solutions").join(LAB1).join("src/main.rs"),
        root.path().join("labs").join(LAB1).join("src/main.rs"),
    )
    .unwrap();
    let done = stdout_of(&mut xtask_in(root.path(), &["hint", "lab1"]));
    assert!(done.contains("every step is written"), "{done}");
    assert!(done.contains("cargo xtask grade lab1"), "{done}");
}

#[test]
fn hint_for_an_unknown_lab_is_a_one_line_error() {
    xtask_in(&repo(), &["hint", "lab99"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown lab \"lab99\"")
                .and(predicate::str::contains("\n").count(1)),
        );
}

#[test]
fn list_shows_every_lab_with_steps_score_and_where_you_are() {
    let folders = all_folders();
    let names: Vec<&str> = folders.iter().map(String::as_str).collect();
    let root = scratch(&names);
    fs::create_dir_all(root.path().join(".socklab")).unwrap();
    fs::write(
        root.path().join(".socklab/state.json"),
        r#"{"version":1,"labs":{"lab1":{"score":3,"max":10,"hints_asked":0}}}"#,
    )
    .unwrap();
    let list = stdout_of(&mut xtask_in(root.path(), &["list"]));
    let lines: Vec<&str> = list.lines().collect();
    let lab1 = lines.iter().find(|l| l.contains("lab1 ")).unwrap();
    assert!(
        lab1.starts_with('>'),
        "lab 1 is where a newcomer is:\n{list}"
    );
    assert!(
        lab1.contains("0/9 steps") && lab1.contains("score 3/10"),
        "{list}"
    );
    for n in 2..=8 {
        let row = lines
            .iter()
            .find(|l| l.contains(&format!("lab{n} ")))
            .unwrap();
        assert!(
            row.starts_with(' ') && row.contains("not graded yet"),
            "{list}"
        );
    }
    assert!(list.contains("you are at lab1, next: step 1:"), "{list}");
}

#[test]
fn reset_yes_restores_the_skeleton_and_keeps_a_backup() {
    let root = scratch(&[LAB1]);
    let main = root.path().join("labs").join(LAB1).join("src/main.rs");
    let pristine = fs::read_to_string(&main).unwrap();
    let edited = pristine.replacen("todo!(", "my_work(); todo!(", 1);
    fs::write(&main, &edited).unwrap();

    let out = stdout_of(&mut xtask_in(root.path(), &["reset", "lab1", "--yes"]));
    assert_eq!(fs::read_to_string(&main).unwrap(), pristine);
    assert!(out.contains(".socklab/backup/lab1-"), "{out}");
    let backups: Vec<PathBuf> = fs::read_dir(root.path().join(".socklab/backup"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        fs::read_to_string(backups[0].join("src/main.rs")).unwrap(),
        edited
    );
}

#[test]
fn reset_without_a_terminal_or_yes_is_a_one_line_error() {
    let root = scratch(&[LAB1]);
    let main = root.path().join("labs").join(LAB1).join("src/main.rs");
    fs::write(&main, "// my work\n").unwrap();
    xtask_in(root.path(), &["reset", "lab1"])
        .write_stdin("y\n")
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("--yes")
                .and(predicate::str::contains("\n").count(1))
                .and(predicate::str::contains("panicked").not()),
        );
    assert_eq!(fs::read_to_string(&main).unwrap(), "// my work\n");
    assert!(!root.path().join(".socklab/backup").exists());
}

#[test]
fn skeletons_refuses_to_overwrite_an_edited_lab_without_force() {
    let root = scratch(&[LAB1]);
    let main = root.path().join("labs").join(LAB1).join("src/main.rs");
    let pristine = fs::read_to_string(&main).unwrap();
    fs::write(&main, "// my finished lab\n").unwrap();
    xtask_in(root.path(), &["skeletons"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("labs/lab1-tcp-server/src/main.rs")
                .and(predicate::str::contains("cargo xtask reset"))
                .and(predicate::str::contains("--force")),
        );
    assert_eq!(fs::read_to_string(&main).unwrap(), "// my finished lab\n");

    xtask_in(root.path(), &["skeletons", "--force"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&main).unwrap(), pristine);
}

#[test]
fn help_shows_the_student_verbs_and_keeps_maintainer_commands_apart() {
    let help = stdout_of(&mut xtask_in(&repo(), &["--help"]));
    let (commands, maintainers) = help
        .split_once("Maintainers' commands")
        .expect("a maintainers' section");
    for verb in ["grade", "hint", "list", "watch", "reset"] {
        assert!(commands.contains(&format!("  {verb} ")), "{help}");
    }
    for verb in ["skeletons", "mutants", "bench"] {
        assert!(!commands.contains(&format!("  {verb} ")), "{help}");
        assert!(maintainers.contains(&format!("  {verb} ")), "{help}");
    }
}

#[test]
fn watch_regrades_after_a_change_and_quits_on_q() {
    watch_case(true, "polling every second", |main| {
        let mut file = fs::OpenOptions::new().append(true).open(main).unwrap();
        file.write_all(b"// a save\n").unwrap();
    });
}

#[test]
fn watch_sees_a_save_by_rename_through_file_events() {
    // As many editors save: the new text goes to another file, renamed over the old.
    watch_case(false, "file events", |main| {
        let staged = main.with_file_name(".main.rs.swp");
        let text = fs::read_to_string(main).unwrap() + "// a save\n";
        fs::write(&staged, text).unwrap();
        fs::rename(&staged, main).unwrap();
    });
}

/// Starts `watch lab1` (polling or on file events), waits for the first run and the
/// status line naming `how`, saves src/main.rs with `save`, waits for the second run,
/// and quits with `q`.
fn watch_case(poll: bool, how: &str, save: fn(&std::path::Path)) {
    // Only the lab itself: the grading child fails at once (no complete workspace),
    // which is all this test needs: it watches watch, not the grader.
    let root = scratch(&[LAB1]);
    let mut args = vec!["watch", "lab1"];
    if poll {
        args.push("--poll");
    }
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("xtask"))
        .env("SOCKLAB_ROOT", root.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, inbox) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = inbox.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(wanted);
                seen.push(line);
                if found {
                    return;
                }
            }
        }
        panic!(
            "watch never printed {wanted:?}; it printed:\n{}",
            seen.join("\n")
        );
    };
    wait_for("grading (run 1)");
    wait_for(&format!("watching labs/lab1-tcp-server ({how})"));
    save(&root.path().join("labs").join(LAB1).join("src/main.rs"));
    wait_for("grading (run 2, after a change to src/main.rs)");
    child.stdin.as_mut().unwrap().write_all(b"q\n").unwrap();
    wait_for("watch stopped");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not exit after q");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
}
