//! `--format gradescope`: the `results.json` of Gradescope's autograder specification.
//!
//! Top level: `score` (the points earned), `execution_time` (seconds), `output` (a
//! one-line summary shown above the tests) and `tests`, one per check, each with
//! `name`, `score`, `max_score`, `status` (`passed` or `failed`), `output` (the whole
//! explanation of a failure, or what a passed check verifies) and `visibility`.
//! A report cut short renders what finished: its `max_score` counts only those checks.

use super::test_name;
use crate::grade::explain::plain_text;
use crate::grade::result::Report;
use crate::grade::serial::serialize_fields;

struct Results {
    score: u32,
    execution_time: u64,
    output: String,
    visibility: &'static str,
    tests: Vec<Test>,
}
serialize_fields!(Results {
    score,
    execution_time,
    output,
    visibility,
    tests
});

struct Test {
    name: String,
    score: u32,
    max_score: u32,
    status: &'static str,
    output: String,
    visibility: &'static str,
}
serialize_fields!(Test {
    name,
    score,
    max_score,
    status,
    output,
    visibility
});

/// Every check of every report, as one Gradescope results object.
pub fn render(reports: &[Report]) -> String {
    let mut tests = Vec::new();
    for report in reports {
        for check in &report.checks {
            let output = match &check.failure {
                Some(e) => plain_text(e),
                None if !check.message.is_empty() => check.message.clone(),
                None => format!("verifies that the program {}", check.verifies),
            };
            tests.push(Test {
                name: test_name(report, &check.name),
                score: check.score,
                max_score: check.max_score,
                status: if check.passed { "passed" } else { "failed" },
                output,
                visibility: "visible",
            });
        }
    }
    let score: u32 = reports.iter().map(|r| r.score).sum();
    let max: u32 = reports.iter().map(|r| r.max_score).sum();
    let millis: u64 = reports.iter().map(|r| r.duration_ms).sum();
    let labs: Vec<&str> = reports.iter().map(|r| r.lab.as_str()).collect();
    let results = Results {
        score,
        execution_time: millis.div_ceil(1000),
        output: format!(
            "socklab grader, {}: {score}/{max}. Each test below names a check; a failed \
             one says what was sent, expected and got, and a hint.",
            labs.join(", ")
        ),
        visibility: "visible",
        tests,
    };
    serde_json::to_string_pretty(&results).expect("plain data") + "\n"
}
