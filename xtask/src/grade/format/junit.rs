//! `--format junit`: JUnit XML, as CI systems read it.
//!
//! `testsuites` > one `testsuite` per lab > one `testcase` per check; a failed check
//! has a `failure` whose `message` is its one-line problem, whose `type` is its status
//! (`failed`, `not-implemented`, `timed-out`) and whose text is the whole explanation.
//! Everything a student's program printed is escaped, and characters XML 1.0 cannot
//! carry at all (most control characters) are written as visible `\xNN` instead.

use std::fmt::Write;

use super::problem;
use crate::grade::explain::plain_text;
use crate::grade::result::{Report, Status};

/// One `testsuites` document; `who` (the student) names it when given.
pub fn render(reports: &[Report], who: Option<&str>) -> String {
    let tests: usize = reports.iter().map(|r| r.checks.len()).sum();
    let failures: usize = reports.iter().map(|r| r.failed().len()).sum();
    let millis: u64 = reports.iter().map(|r| r.duration_ms).sum();
    let name = match who {
        Some(who) => format!("socklab: {who}"),
        None => "socklab".to_string(),
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">",
        attribute(&name),
        seconds(millis)
    );
    for report in reports {
        suite(&mut out, report);
    }
    out.push_str("</testsuites>\n");
    out
}

fn suite(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{}\">",
        attribute(&report.lab),
        report.checks.len(),
        report.failed().len(),
        seconds(report.duration_ms)
    );
    out.push_str("    <properties>\n");
    let properties = [
        ("title", report.title.clone()),
        ("program", report.program.clone()),
        ("score", report.score.to_string()),
        ("max_score", report.max_score.to_string()),
    ];
    for (name, value) in properties {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attribute(&value)
        );
    }
    out.push_str("    </properties>\n");
    for check in &report.checks {
        let open = format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
            attribute(&check.name),
            attribute(&report.lab),
            seconds(check.duration_ms)
        );
        if check.passed {
            let _ = writeln!(out, "{open}/>");
            continue;
        }
        if check.status == Status::CannotTest {
            let _ = writeln!(
                out,
                "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                attribute(problem(check))
            );
            continue;
        }
        let kind = match check.status {
            Status::Passed | Status::Failed | Status::CannotTest => "failed",
            Status::NotImplemented => "not-implemented",
            Status::TimedOut => "timed-out",
        };
        let details = match &check.failure {
            Some(e) => plain_text(e),
            None => check.message.clone(),
        };
        let _ = writeln!(
            out,
            "{open}>\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>",
            attribute(problem(check)),
            text(&details)
        );
    }
    out.push_str("  </testsuite>\n");
}

fn seconds(millis: u64) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// Escapes element text.
pub fn text(raw: &str) -> String {
    escape(raw, false)
}

/// Escapes an attribute value (quotes and line breaks too, so they survive parsing).
pub fn attribute(raw: &str) -> String {
    escape(raw, true)
}

fn escape(raw: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            // A bare \r would be turned into \n by any parser.
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if allowed_in_xml(c) => out.push(c),
            c => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
        }
    }
    out
}

/// XML 1.0's `Char` production: what may appear in a document at all, even escaped.
fn allowed_in_xml(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}
