//! `--format github`: GitHub Actions workflow commands, and the points GitHub Classroom
//! reads.
//!
//! - The readable report (everything the programs printed included) sits between
//!   `::stop-commands::TOKEN` and `::TOKEN::`, with a fresh random token, so that a line
//!   a student's program printed cannot run a workflow command.
//! - Each failed check becomes one `::error title=...::message` annotation; properties
//!   escape `%`, `\r`, `\n`, `:` and `,`, messages escape `%`, `\r` and `\n`, so each
//!   command stays on its line whatever it quotes.
//! - [`publish`] appends a Markdown table to `$GITHUB_STEP_SUMMARY`, and writes
//!   `result=` (base64 JSON in the shape GitHub Classroom's grading reporter reads:
//!   `status`, `max_score`, `tests[]` with `name`, `status`, `score`, `message`) to
//!   `$GITHUB_OUTPUT`, when those variables are set.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use base64::Engine as _;

use super::{human_text, problem, test_name};
use crate::grade::explain::plain_text;
use crate::grade::result::{Report, Status};
use crate::grade::serial::serialize_fields;

/// The annotations and the wrapped log; `token` must not occur in the reports.
pub fn render(reports: &[Report], token: &str) -> String {
    let mut out = String::new();
    let log = human_text(reports);
    let token = if log.contains(token) {
        // Never: tokens are random. Still, a token the text contains would end the
        // protection early, so pick another.
        self::token()
    } else {
        token.to_string()
    };
    let _ = writeln!(out, "::stop-commands::{token}");
    out.push_str(&log);
    if !log.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "::{token}::");
    for report in reports {
        for check in report.checks.iter().filter(|c| !c.passed) {
            // A check this machine could not run is a notice, not the student's error.
            let (level, verdict) = match check.status {
                Status::CannotTest => ("notice", "not tested here"),
                _ => ("error", "failed"),
            };
            let title = format!(
                "{} {verdict} ({}/{})",
                test_name(report, &check.name),
                check.score,
                check.max_score
            );
            let message = match &check.failure {
                Some(e) => plain_text(e),
                None => check.message.clone(),
            };
            let _ = writeln!(
                out,
                "::{level} title={}::{}",
                property(&title),
                data(&message)
            );
        }
        let _ = writeln!(
            out,
            "::notice title={}::{}",
            property(&format!("socklab {}", report.lab)),
            data(&format!(
                "{}: {}/{} points",
                report.lab, report.score, report.max_score
            ))
        );
    }
    out
}

/// Escapes the message of a workflow command.
pub fn data(raw: &str) -> String {
    raw.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command.
pub fn property(raw: &str) -> String {
    data(raw).replace(':', "%3A").replace(',', "%2C")
}

/// 128 random bits as hex, for `::stop-commands::`.
pub fn token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .elapsed()
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The step summary: one Markdown table per lab.
pub fn summary_markdown(reports: &[Report]) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = writeln!(
            out,
            "### socklab {}: {}/{}\n\n| check | points | result |\n| --- | --- | --- |",
            report.lab, report.score, report.max_score
        );
        for check in &report.checks {
            let result = if check.passed {
                "passed".to_string()
            } else {
                format!("failed: {}", problem(check))
            };
            let _ = writeln!(
                out,
                "| `{}` | {}/{} | {} |",
                cell(&check.name),
                check.score,
                check.max_score,
                cell(&result)
            );
        }
        out.push('\n');
    }
    out
}

/// A table cell: one line, `|` escaped, markup characters neutralised.
fn cell(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

struct ClassroomResult {
    version: u32,
    status: &'static str,
    max_score: u32,
    tests: Vec<ClassroomTest>,
}
serialize_fields!(ClassroomResult {
    version,
    status,
    max_score,
    tests
});

struct ClassroomTest {
    name: String,
    status: &'static str,
    score: u32,
    message: String,
    test_code: String,
    filename: String,
    line_no: u32,
    duration: u64,
}
serialize_fields!(ClassroomTest {
    name,
    status,
    score,
    message,
    test_code,
    filename,
    line_no,
    duration,
});

/// What GitHub Classroom's grading reporter reads from a runner: base64 of JSON with
/// `max_score` and the `score` of each test (the points are their sum).
pub fn classroom_result(reports: &[Report]) -> String {
    let tests = reports
        .iter()
        .flat_map(|report| {
            report.checks.iter().map(|check| ClassroomTest {
                name: test_name(report, &check.name),
                status: if check.passed { "pass" } else { "fail" },
                score: check.score,
                message: if check.passed {
                    String::new()
                } else {
                    problem(check).to_string()
                },
                test_code: format!("cargo xtask grade {} --check {}", report.lab, check.name),
                filename: String::new(),
                line_no: 0,
                duration: check.duration_ms,
            })
        })
        .collect();
    let result = ClassroomResult {
        version: 1,
        status: if reports.iter().all(Report::full_marks) {
            "pass"
        } else {
            "fail"
        },
        max_score: reports.iter().map(|r| r.max_score).sum(),
        tests,
    };
    let json = serde_json::to_string(&result).expect("plain data");
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// Appends the step summary and the Classroom result where GitHub Actions asks for
/// them (`$GITHUB_STEP_SUMMARY`, `$GITHUB_OUTPUT`); does nothing outside Actions.
pub fn publish(reports: &[Report]) -> anyhow::Result<()> {
    let append = |variable: &str, text: &str| -> anyhow::Result<()> {
        let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("${variable} ({})", path.to_string_lossy()))
    };
    append("GITHUB_STEP_SUMMARY", &summary_markdown(reports))?;
    append(
        "GITHUB_OUTPUT",
        &format!("result={}\n", classroom_result(reports)),
    )
}
