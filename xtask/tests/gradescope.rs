//! `cargo xtask gradescope`: the package has Gradescope's layout, and its
//! `run_autograder`, run against a fake `/autograder` tree, writes a results.json.
//! Built with the `tools` feature (on by default), which brings `zip`.
#![cfg(feature = "tools")]

pub mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Unpacks the package the way Gradescope does, into `root/source`.
fn unpack(zip: &Path, root: &Path) {
    let mut archive = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
    let names: Vec<String> = archive.file_names().map(String::from).collect();
    for required in [
        "setup.sh",
        "run_autograder",
        "socklab/Cargo.toml",
        "socklab/Cargo.lock",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} is missing");
    }
    assert!(names.iter().any(|n| n.starts_with("socklab/xtask/src/")));
    assert!(
        !names
            .iter()
            .any(|n| n.contains("/target/") || n.contains(".git/")),
        "no build output or history in the package"
    );
    for script in ["setup.sh", "run_autograder"] {
        let mode = archive.by_name(script).unwrap().unix_mode().unwrap();
        assert_eq!(mode & 0o111, 0o111, "{script} is executable");
    }
    archive.extract(root.join("source")).unwrap();
}

/// Runs the package's run_autograder on `submission` in a fresh fake tree.
fn autograde(zip: &Path, submission: impl FnOnce(&Path)) -> Value {
    let temp = tempfile::tempdir().unwrap();
    // Temporary folders are private to their owner; Gradescope's /autograder is not.
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = temp.path().join("autograder");
    unpack(zip, &root);
    submission(&root.join("submission"));
    let script = root.join("source/run_autograder");
    let text = fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("grade lab1 --submissions"),
        "the lab is filled in"
    );
    // As root, the grader runs as an unprivileged user, as on Gradescope; `nobody` can
    // read this checkout and run the test's grader.
    let user = if nix_is_root() { "nobody" } else { "" };
    let output = Command::new("bash")
        .arg(&script)
        .env("SOCKLAB_AUTOGRADER_ROOT", &root)
        .env("SOCKLAB_XTASK", assert_cmd::cargo::cargo_bin("xtask"))
        .env("SOCKLAB_GRADER_USER", user)
        .output()
        .unwrap();
    let results = fs::read_to_string(root.join("results/results.json")).unwrap_or_else(|e| {
        panic!(
            "no results.json ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    if !user.is_empty() {
        use std::os::unix::fs::MetadataExt;
        let written = fs::metadata(root.join("socklab-work/out/gradebook.csv"));
        assert_ne!(
            written.map(|m| m.uid()).ok(),
            Some(0),
            "graded as {user}, not root"
        );
    }
    serde_json::from_str(&results).expect("results.json is JSON")
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn python_submission(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/lab1_server.py");
    fs::copy(&script, dir.join("lab1_server.py")).unwrap();
    let run = dir.join("run");
    fs::write(
        &run,
        "#!/bin/sh\nexec python3 \"$(dirname \"$0\")/lab1_server.py\" \"$@\"\n",
    )
    .unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn run_autograder_grades_a_submission_into_results_json() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("package");
    let output = common::xtask(&["gradescope", "lab1", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let zip = out.join("autograder.zip");

    let results = autograde(&zip, python_submission);
    let tests = results["tests"].as_array().unwrap();
    assert!(tests.len() > 5);
    let max: u64 = tests.iter().map(|t| t["max_score"].as_u64().unwrap()).sum();
    assert_eq!(
        results["score"].as_u64(),
        Some(max),
        "full marks: {results:#}"
    );
    assert!(tests.iter().all(|t| t["status"] == "passed"));

    // Nothing gradable: still a results.json, scoring zero and saying why.
    let results = autograde(&zip, |dir| {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("notes.txt"), "I forgot the code").unwrap();
    });
    assert_eq!(results["score"], 0);
    let first = results["tests"][0]["output"].as_str().unwrap();
    assert!(first.contains("not gradable"), "{first}");
}
