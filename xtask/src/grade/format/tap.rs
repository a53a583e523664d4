//! `--format tap`: the Test Anything Protocol, version 14.
//!
//! `TAP version 14`, the plan `1..N` (every check of every lab), then one
//! `ok N - lab: check` or `not ok N - ...` line per check. A failed check carries a YAML
//! diagnostic block, indented two spaces between `---` and `...`, whose values are
//! written as double-quoted scalars (JSON strings are valid YAML), so nothing a student
//! printed can break the block.

use std::fmt::Write;

use super::{problem, test_name};
use crate::grade::result::{Report, Status};

pub fn render(reports: &[Report]) -> String {
    let total: usize = reports.iter().map(|r| r.checks.len()).sum();
    let mut out = format!("TAP version 14\n1..{total}\n");
    let mut number = 0;
    for report in reports {
        let _ = writeln!(
            out,
            "# {}: {} ({})",
            report.lab,
            one_line(&report.title),
            one_line(&report.program)
        );
        for check in &report.checks {
            number += 1;
            let description = description(&test_name(report, &check.name));
            if check.passed {
                let _ = writeln!(out, "ok {number} - {description}");
                continue;
            }
            if check.status == Status::CannotTest {
                // TAP's SKIP directive: not run here, neither passed nor failed.
                let reason = problem(check).replace('#', "\\#");
                let _ = writeln!(out, "ok {number} - {description} # SKIP {reason}");
                continue;
            }
            let _ = writeln!(out, "not ok {number} - {description}");
            out.push_str("  ---\n");
            let status = match check.status {
                Status::Passed => "passed",
                Status::Failed => "failed",
                Status::NotImplemented => "not-implemented",
                Status::TimedOut => "timed-out",
                Status::CannotTest => "cannot-test",
            };
            let mut fields: Vec<(&str, String)> = vec![
                ("message", problem(check).to_string()),
                ("severity", "fail".into()),
                ("status", status.into()),
                ("points", format!("{}/{}", check.score, check.max_score)),
                ("verifies", check.verifies.clone()),
            ];
            if let Some(e) = &check.failure {
                let optional = [
                    ("sent", &e.sent),
                    ("expected", &e.expected),
                    ("got", &e.got),
                    ("difference", &e.difference),
                    ("hint", &e.hint),
                    ("by_hand", &e.by_hand),
                    ("step", &e.step),
                ];
                for (name, value) in optional {
                    if let Some(value) = value {
                        fields.push((name, value.clone()));
                    }
                }
                for (label, tail) in &e.stderr {
                    fields.push(("stderr", format!("{label}:\n{}", tail.join("\n"))));
                }
            }
            for (name, value) in fields {
                let _ = writeln!(out, "  {name}: {}", quoted(&value));
            }
            let _ = writeln!(out, "  duration_ms: {}", check.duration_ms);
            out.push_str("  ...\n");
        }
    }
    out
}

/// A YAML double-quoted scalar: JSON's escapes, plus `\uXXXX` for what YAML does not
/// allow raw (DEL, C1 controls, U+FFFE and U+FFFF).
fn quoted(value: &str) -> String {
    let json = serde_json::to_string(value).expect("a string");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c as u32 {
            0x7F..=0x84 | 0x86..=0x9F | 0xFFFE | 0xFFFF => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A test point description: one line, `#` escaped (it would start a directive).
fn description(text: &str) -> String {
    one_line(text).replace('\\', "\\\\").replace('#', "\\#")
}

/// Line breaks and control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
