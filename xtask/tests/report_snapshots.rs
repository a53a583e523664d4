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
    let labs = [
        "lab1", "lab2", "lab3", "lab4", "lab5", "lab6", "lab7", "lab8",
    ];
    // Grading mostly waits on programs: the eight reports are made at once, then
    // compared in order.
    let reports = in_parallel(&labs, |lab| report(&["grade", lab]));
    for (lab, text) in labs.iter().zip(reports) {
        insta::assert_snapshot!(format!("skeleton_{lab}"), text);
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
    let build = |&(lab, mutant): &(&str, &str)| {
        // Builds (and checks) the mutant; its binary lands in the mutant workspace.
        let built = common::xtask(&["mutants", lab, "--only", mutant]);
        assert!(
            built.status.success(),
            "{lab} {mutant}: {}\n{}",
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
    };
    // The first run writes the mutant workspace (every mutant of every lab); the
    // others then find it written and only build and grade, side by side.
    build(&MUTANTS[0]);
    let reports = in_parallel(&MUTANTS, |&(lab, mutant)| {
        if lab != MUTANTS[0].0 {
            build(&(lab, mutant));
        }
        let binary = format!(
            "{}/../target/mutants/target/debug/{lab}-mutant-{mutant}",
            env!("CARGO_MANIFEST_DIR")
        );
        // The words, not the machine: under `basic` the header has no sandbox line
        // (which says what this machine allowed).
        report(&["grade", lab, "--cmd", &binary, "--sandbox", "basic"])
    });
    for ((lab, mutant), text) in MUTANTS.iter().zip(reports) {
        insta::assert_snapshot!(format!("mutant_{lab}_{mutant}"), text);
    }
}

/// `work` applied to every item on threads of their own; the results in item order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let work = &work;
        let running: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        running
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    })
}
