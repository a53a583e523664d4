//! The grader's result model: what every output (human, JSON, class formats) renders.
//!
//! A run is a stream of [`Event`]s: a lab starts, each check starts and finishes with
//! its [`CheckResult`], the lab finishes with its [`Report`]. Renderers never run checks;
//! the runner never formats text. `--json` prints [`Report`]s as they are.

use super::Lab;
use super::sandbox::Summary;
use super::serial::{not_empty, serialize_by_name, serialize_fields};

/// Bumped whenever a field of the JSON report changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 2;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// The program did something wrong (see the failure).
    Failed,
    /// The program stopped at a skeleton step that is not written yet.
    NotImplemented,
    /// The check ran past its budget; its programs were killed.
    TimedOut,
    /// This machine lacks what the check needs (network namespaces): nothing was
    /// tested; the check counts for no points either way (max_score 0).
    CannotTest,
}

impl Status {
    /// The name `--json` writes: `not-implemented`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::NotImplemented => "not-implemented",
            Status::TimedOut => "timed-out",
            Status::CannotTest => "cannot-test",
        }
    }
}
serialize_by_name!(Status);

/// Why a check failed, structured, for renderers that show parts of it.
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    /// What went wrong, in one line.
    pub problem: String,
    pub sent: Option<String>,
    pub expected: Option<String>,
    pub got: Option<String>,
    /// Where expected and got first differ, in words, with a caret line when it fits.
    pub difference: Option<String>,
    pub hint: Option<String>,
    /// A command line a student can paste to see the same thing by hand.
    pub by_hand: Option<String>,
    /// The unwritten skeleton step the program stopped at (`step 5: accept ...`).
    pub step: Option<String>,
    /// The last lines each program printed on stderr: (label, lines).
    pub stderr: Vec<(String, Vec<String>)>,
    /// Expected and got as bytes, when the check compared bytes (for the caret; not
    /// in `--json`, where `expected` and `got` say it).
    pub compared: Option<(Vec<u8>, Vec<u8>)>,
}
serialize_fields!(Explanation {
    problem,
    sent if Option::is_some,
    expected if Option::is_some,
    got if Option::is_some,
    difference if Option::is_some,
    hint if Option::is_some,
    by_hand if Option::is_some,
    step if Option::is_some,
    stderr if not_empty,
});

/// The result of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub score: u32,
    pub max_score: u32,
    pub passed: bool,
    pub status: Status,
    /// Empty when passed (unless the check could not test its point here: then
    /// "cannot test this here: <why>"); otherwise the whole explanation as plain text,
    /// one item per line.
    pub message: String,
    /// What the check verifies, in one line.
    pub verifies: String,
    pub duration_ms: u64,
    pub failure: Option<Explanation>,
}
serialize_fields!(CheckResult {
    name,
    score,
    max_score,
    passed,
    status,
    message,
    verifies,
    duration_ms,
    failure if Option::is_some,
});

/// How far a student's skeleton is: steps written out of all steps, and the next one.
#[derive(Debug, Clone)]
pub struct Steps {
    pub written: usize,
    pub total: usize,
    /// `step 5: accept the next client` at `labs/lab1-tcp-server/src/main.rs:118`.
    pub next: Option<NextStep>,
}
serialize_fields!(Steps { written, total, next if Option::is_some });

/// The first unwritten step of a skeleton.
#[derive(Debug, Clone)]
pub struct NextStep {
    pub number: u32,
    /// The whole todo message: `step 5: accept the next client on `listener``.
    pub title: String,
    /// `file:line`, relative to the workspace root.
    pub place: String,
}
serialize_fields!(NextStep {
    number,
    title,
    place
});

/// A lab's graded report.
#[derive(Debug, Clone)]
pub struct Report {
    pub format_version: u32,
    pub lab: String,
    pub title: String,
    /// The program graded, as a shell would show it.
    pub program: String,
    pub score: u32,
    pub max_score: u32,
    pub duration_ms: u64,
    pub steps: Option<Steps>,
    /// Which protections confined the programs (`--sandbox`); optional, so readers of
    /// format_version 2 without it still parse.
    pub sandbox: Option<Summary>,
    pub checks: Vec<CheckResult>,
}
serialize_fields!(Report {
    format_version,
    lab,
    title,
    program,
    score,
    max_score,
    duration_ms,
    steps if Option::is_some,
    sandbox if Option::is_some,
    checks,
});

impl Report {
    pub fn full_marks(&self) -> bool {
        self.score == self.max_score
    }

    /// The names of the checks that failed (not those that could not run here).
    pub fn failed(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed && c.status != Status::CannotTest)
            .map(|c| c.name.clone())
            .collect()
    }

    /// The names of the checks this machine could not run (for `mutants`).
    #[cfg(feature = "tools")]
    pub fn untestable(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::CannotTest)
            .map(|c| c.name.clone())
            .collect()
    }
}

/// What happens during a run, in order; every output is rendered from these.
pub enum Event<'a> {
    /// A lab's checks are about to run.
    LabStarted {
        lab: &'static Lab,
        program: &'a str,
        steps: Option<&'a Steps>,
        sandbox: Option<&'a Summary>,
    },
    /// A check finished (events come in table order, whatever order checks end in).
    CheckFinished { result: &'a CheckResult },
    /// Every check of the lab has finished.
    LabFinished { report: &'a Report },
}
