//! `grade --submissions`: a folder mixing the reference, mutants, the skeleton, a Python
//! program and broken submissions is graded in parallel into a gradebook, reports and
//! a summary, with verdicts identical to grading each submission alone.

pub mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Mutants of lab1 used as students: name and the checks they must fail.
const MUTANTS: [&str; 4] = ["no-reuseaddr", "serves-once", "silent", "unwraps-bind"];

#[derive(Deserialize)]
struct Table {
    mutant: Vec<Mutant>,
}

#[derive(Deserialize)]
struct Mutant {
    name: String,
    fails: Vec<String>,
    edit: Vec<Edit>,
}

#[derive(Deserialize)]
struct Edit {
    file: Option<String>,
    find: String,
    replace: String,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn executable(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The class: returns each mutant student's declared failures.
fn class(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let root = workspace();
    let solution = root.join("solutions/lab1-tcp-server");
    copy(&solution, &dir.join("reference"));
    copy(&root.join("labs/lab1-tcp-server"), &dir.join("skeleton"));
    let broken = dir.join("broken");
    copy(&solution, &broken);
    let main = broken.join("src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    fs::write(&main, format!("{text}\nfn unfinished( {{\n")).unwrap();
    // A Python submission holds its own files, as a student's folder does (under the
    // strict sandbox a program sees its own folder, not the rest of a /tmp checkout).
    fs::create_dir_all(dir.join("python")).unwrap();
    fs::copy(
        root.join("xtask/examples/python/lab1_server.py"),
        dir.join("python/lab1_server.py"),
    )
    .unwrap();
    executable(
        &dir.join("python/run"),
        "#!/bin/sh\nexec python3 \"$(dirname \"$0\")/lab1_server.py\" \"$@\"\n",
    );
    executable(&dir.join("no-interpreter/run"), "#!/no/such/interpreter\n");
    fs::create_dir_all(dir.join("empty")).unwrap();

    let table: Table =
        toml::from_str(&fs::read_to_string(root.join("xtask/mutants/lab1.toml")).unwrap()).unwrap();
    let mut declared = BTreeMap::new();
    for mutant in table
        .mutant
        .iter()
        .filter(|m| MUTANTS.contains(&m.name.as_str()))
    {
        let student = format!("mutant-{}", mutant.name);
        copy(&solution, &dir.join(&student));
        for edit in &mutant.edit {
            let file = dir
                .join(&student)
                .join(edit.file.as_deref().unwrap_or("src/main.rs"));
            let text = fs::read_to_string(&file).unwrap();
            assert_eq!(text.matches(&edit.find).count(), 1, "{}", mutant.name);
            fs::write(&file, text.replacen(&edit.find, &edit.replace, 1)).unwrap();
        }
        declared.insert(student, mutant.fails.clone());
    }
    assert_eq!(declared.len(), MUTANTS.len());
    declared
}

/// Rows of RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks).
fn csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// (check, passed) of a JSON report.
fn verdicts(report: &Value) -> Vec<(String, bool)> {
    common::checks(report)
        .into_iter()
        .map(|(name, passed, _)| (name, passed))
        .collect()
}

/// The checks this machine could not run for `report` (left out of the score).
fn untestable(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "cannot-test")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_class_is_graded_in_parallel_with_the_verdicts_each_gets_alone() {
    let temp = tempfile::tempdir().unwrap();
    let submissions = temp.path().join("submissions");
    let out = temp.path().join("out");
    let declared = class(&submissions);
    let output = common::xtask(&[
        "grade",
        "lab1",
        "--submissions",
        submissions.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--jobs",
        "6",
    ]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the class run failed:\n{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The gradebook: a header, then one row per student in name order.
    let gradebook = fs::read_to_string(out.join("gradebook.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv(&gradebook);
    assert_eq!(rows[0][..3], ["student", "score", "max_score"]);
    assert_eq!(rows[0].last().map(String::as_str), Some("note"));
    let students: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    let mut expected: Vec<String> = [
        "broken",
        "empty",
        "no-interpreter",
        "python",
        "reference",
        "skeleton",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(declared.keys().cloned())
    .collect();
    expected.sort();
    assert_eq!(students, expected);
    let row = |student: &str| rows.iter().find(|r| r[0] == student).unwrap().clone();
    let max = row("reference")[2].clone();
    assert_eq!(row("reference")[1], max, "the reference gets full marks");
    assert_eq!(row("python")[1], max);
    assert_eq!(row("skeleton")[1], "0", "the skeleton gets nothing");

    // Not gradable: zero, the reason in the gradebook, the first lines in the report.
    for (student, why) in [
        ("broken", "does not build"),
        ("no-interpreter", "cannot be started"),
        ("empty", "neither a crate"),
    ] {
        let row = row(student);
        assert_eq!(row[1], "0");
        assert!(row.last().unwrap().contains(why), "{student}: {row:?}");
        let report: Value = serde_json::from_str(
            &fs::read_to_string(out.join(format!("reports/{student}.json"))).unwrap(),
        )
        .unwrap();
        let message = report["checks"][0]["message"].as_str().unwrap();
        assert!(message.contains("not gradable"), "{message}");
        if student == "broken" {
            assert!(
                message.contains("error: "),
                "the compiler's lines: {message}"
            );
            assert!(message.contains("fn unfinished"), "{message}");
        }
        if student == "no-interpreter" {
            assert!(message.contains("#!/no/such/interpreter"), "{message}");
        }
    }

    // Each gradable submission, graded alone, gets the same verdicts; each mutant fails
    // exactly the checks it declares.
    for student in ["reference", "skeleton", "python"]
        .iter()
        .map(|s| s.to_string())
        .chain(declared.keys().cloned())
    {
        let report: Value = serde_json::from_str(
            &fs::read_to_string(out.join(format!("reports/{student}.json"))).unwrap(),
        )
        .unwrap();
        let program = if student == "python" {
            submissions.join("python/run")
        } else {
            out.join("bin").join(&student)
        };
        let alone = common::xtask(&[
            "grade",
            "lab1",
            "--cmd",
            program.to_str().unwrap(),
            "--json",
            "--jobs",
            "1",
        ]);
        let alone = &common::reports(&alone)[0];
        assert_eq!(
            verdicts(&report),
            verdicts(alone),
            "{student}: graded with the class and alone"
        );
        if let Some(fails) = declared.get(&student) {
            let skipped = untestable(&report);
            let failed: Vec<String> = verdicts(&report)
                .into_iter()
                .filter(|(name, passed)| !passed && !skipped.contains(name))
                .map(|(name, _)| name)
                .collect();
            let mut fails: Vec<String> = fails
                .iter()
                .filter(|name| !skipped.contains(name))
                .cloned()
                .collect();
            fails.sort();
            let mut failed = failed;
            failed.sort();
            assert_eq!(failed, fails, "{student} fails exactly its checks");
        }
    }

    // The summary: pass rates worst first, a table and a chart.
    let summary = fs::read_to_string(out.join("summary.md")).unwrap();
    let rates: Vec<f64> = summary
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            cells[2].trim_end_matches('%').parse().unwrap()
        })
        .collect();
    assert!(rates.len() > 5, "{summary}");
    assert!(
        rates.windows(2).all(|w| w[0] <= w[1]),
        "worst first: {rates:?}"
    );
    assert!(summary.contains("3 not gradable"), "{summary}");
    let svg = fs::read_to_string(out.join("summary.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("survives-reset"));
}

#[test]
fn submissions_need_an_out_folder_outside_them() {
    let temp = tempfile::tempdir().unwrap();
    let submissions = temp.path().join("subs");
    fs::create_dir_all(submissions.join("alice")).unwrap();
    let inside = submissions.join("out");
    let output = common::xtask(&[
        "grade",
        "lab1",
        "--submissions",
        submissions.to_str().unwrap(),
        "--out",
        inside.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("inside --submissions"), "{stderr}");
    let output = common::xtask(&[
        "grade",
        "lab1",
        "--submissions",
        "/nonexistent/x",
        "--out",
        "/tmp/y",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}
