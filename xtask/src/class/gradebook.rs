//! `OUT/gradebook.csv`: one row per student: `student,score,max_score`, one column per
//! check (the points earned), and a `note` (empty, or why it was not gradable).
//! Fields are quoted as RFC 4180 says when they hold a comma, a quote or a line break.

use std::fmt::Write;

use crate::grade::Lab;

use super::Graded;

pub fn render(lab: &Lab, only: &[String], graded: &[Graded]) -> String {
    let checks: Vec<&str> = lab
        .checks()
        .iter()
        .map(|c| c.name)
        .filter(|name| only.is_empty() || only.iter().any(|o| o == name))
        .collect();
    let mut header = vec!["student", "score", "max_score"];
    header.extend(&checks);
    header.push("note");
    let mut out = line(header.iter().map(|s| s.to_string()));
    for student in graded {
        let report = &student.report;
        let mut row = vec![
            student.student.clone(),
            report.score.to_string(),
            report.max_score.to_string(),
        ];
        for name in &checks {
            let cell = report
                .checks
                .iter()
                .find(|c| c.name == *name)
                .map_or(String::new(), |c| c.score.to_string());
            row.push(cell);
        }
        row.push(
            student
                .not_gradable
                .as_ref()
                .map_or(String::new(), |n| format!("not gradable: {}", n.reason)),
        );
        let _ = write!(out, "{}", line(row.into_iter()));
    }
    out
}

fn line(fields: impl Iterator<Item = String>) -> String {
    let fields: Vec<String> = fields.map(|f| field(&f)).collect();
    fields.join(",") + "\r\n"
}

fn field(raw: &str) -> String {
    if raw.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw.to_string()
    }
}
