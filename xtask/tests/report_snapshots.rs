//! The words students read, reviewed like code: snapshots of the human report for every
//! skeleton and for one mutant per lab. Ports, pids, paths and times are redacted.
//!
//! After an intended change of wording, review and accept the new snapshots with
//! `INSTA_UPDATE=always cargo test -p xtask --test report_snapshots` (then `git diff`).

pub mod common;

use regex::Regex;

/// Replaces what changes from run to run with stable placeholders.
fn redact(text: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR").trim_end_matches("/xtask");
    let text = text.replace(root, "[root]");
    let rules = [
        (r"/tmp/socklab-check-[A-Za-z0-9]+", "[scratch]"),
        (r"/tmp/\.tmp[A-Za-z0-9]+", "[tmp]"),
        (r"(127\.0\.0\.1|::1\]?|localhost):\d{2,5}", "$1:[port]"),
        (r"([^-])\bport \d{2,5}", "${1}port [port]"),
        (r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\]", "[<ctime>]"),
        (r"\bpid \d+", "pid [pid]"),
        (r"\bfd \d+", "fd [fd]"),
        (r"\d+ ms\b", "[ms] ms"),
        (r"\b\d+\.\d+ ?s\b", "[secs] s"),
    ];
    let mut text = text;
    for (pattern, replacement) in rules {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, replacement)
            .into_owned();
    }
    text
}

fn report(args: &[&str]) -> String {
    let output = common::xtask(args);
    assert_ne!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    redact(&String::from_utf8_lossy(&output.stdout))
}

#[test]
fn every_skeleton_report() {
    for lab in [
        "lab1", "lab2", "lab3", "lab4", "lab5", "lab6", "lab7", "lab8",
    ] {
        insta::assert_snapshot!(format!("skeleton_{lab}"), report(&["grade", lab]));
    }
}

/// One mutant per lab, chosen for a failure whose explanation is the same every run.
const MUTANTS: [(&str, &str); 8] = [
    ("lab1", "no-greeting"),
    ("lab2", "reads-once"),
    ("lab3", "forgets-last-line"),
    ("lab4", "keeps-newline"),
    ("lab5", "ignores-mode"),
    ("lab6", "hangs-up-mid-request"),
    ("lab7", "ignores-backlog"),
    ("lab8", "accepts-pid-zero"),
];

#[test]
fn one_mutant_report_per_lab() {
    for (lab, mutant) in MUTANTS {
        // Builds (and checks) the mutant; its binary lands in the mutant workspace.
        let built = common::xtask(&["mutants", lab, "--only", mutant]);
        assert!(
            built.status.success(),
            "{lab} {mutant}: {}",
            String::from_utf8_lossy(&built.stdout)
        );
        let binary = format!(
            "{}/../target/mutants/target/debug/{lab}-mutant-{mutant}",
            env!("CARGO_MANIFEST_DIR")
        );
        // The words, not the machine: under `basic` the header has no sandbox line
        // (which says what this machine allowed).
        let text = report(&["grade", lab, "--cmd", &binary, "--sandbox", "basic"]);
        insta::assert_snapshot!(format!("mutant_{lab}_{mutant}"), text);
    }
}
