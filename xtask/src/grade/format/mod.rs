//! Machine-readable renderings of grade reports, for the engines classes already use.
//!
//! Every format is rendered from the same [`Report`]s (the result model), never from
//! the human text: `json` (the reports as they are), `gradescope` (Gradescope's
//! `results.json`), `junit` (JUnit XML for CI systems), `tap` (TAP version 14) and
//! `github` (GitHub Actions annotations, plus the points GitHub Classroom reads). The
//! `human` format is streamed by [`super::human`] and is not rendered here.

pub mod github;
pub mod gradescope;
pub mod json;
pub mod junit;
pub mod tap;

use anyhow::Context;

use super::result::Report;
/// The `--format` of `cargo xtask grade`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The streamed report a person reads (the default).
    Human,
    /// The reports as JSON: one object, or a list for `all`.
    Json,
    /// Gradescope's autograder `results.json`.
    Gradescope,
    /// JUnit XML: one `testsuite` per lab.
    Junit,
    /// TAP version 14, with YAML diagnostics for failures.
    Tap,
    /// GitHub Actions annotations (and a step summary, and GitHub Classroom's points).
    Github,
}

impl Format {
    /// The file extension of a report in this format (`OUT/reports/alice.xml`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Human => "txt",
            Format::Json | Format::Gradescope => "json",
            Format::Junit => "xml",
            Format::Tap => "tap",
            Format::Github => "log",
        }
    }
}

/// Renders finished reports in a machine format. `who` names the student (class
/// grading) or is `None` (one program). Human text goes through [`human_text`].
pub fn render(format: Format, reports: &[Report], who: Option<&str>) -> String {
    match format {
        Format::Human => human_text(reports),
        Format::Json => json::render(reports),
        Format::Gradescope => gradescope::render(reports),
        Format::Junit => junit::render(reports, who),
        Format::Tap => tap::render(reports),
        Format::Github => github::render(reports, &github::token()),
    }
}

/// The human report of finished reports, without colour (a per-student file).
pub fn human_text(reports: &[Report]) -> String {
    use super::human::{Human, Style};
    use super::result::Event;
    let mut out = Vec::new();
    {
        let mut human = Human::new(&mut out, Style::plain(), true);
        for report in reports {
            let Some(lab) = crate::labs::find(&report.lab) else {
                continue;
            };
            let _ = human.event(Event::LabStarted {
                lab,
                program: &report.program,
                steps: report.steps.as_ref(),
                sandbox: report.sandbox.as_ref(),
            });
            for result in &report.checks {
                let _ = human.event(Event::CheckFinished { result });
            }
            let _ = human.event(Event::LabFinished { report });
        }
        let _ = human.next_step(reports, None);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The title of one check in formats that list every lab's checks together.
fn test_name(report: &Report, check: &str) -> String {
    format!("{}: {check}", report.lab)
}

/// The first line of a failed check's explanation (its one-line problem).
fn problem(check: &super::result::CheckResult) -> &str {
    check
        .failure
        .as_ref()
        .map(|f| f.problem.as_str())
        .unwrap_or_else(|| check.message.lines().next().unwrap_or(""))
}

/// The reports so far, rebuilt from the event stream: finished labs as reported, the
/// lab under way with the checks that have finished. Lets a report file be rewritten
/// after every check, so a run cut short keeps what finished.
#[derive(Default)]
pub struct Progress {
    reports: Vec<Report>,
    under_way: bool,
}

impl Progress {
    /// Takes in one event; true when it changed what [`Progress::reports`] holds.
    pub fn event(&mut self, event: &super::result::Event) -> bool {
        use super::result::{Event, FORMAT_VERSION};
        match event {
            Event::LabStarted {
                lab,
                program,
                steps,
                sandbox,
                ..
            } => {
                self.reports.push(Report {
                    format_version: FORMAT_VERSION,
                    lab: lab.id.to_string(),
                    title: lab.title.to_string(),
                    program: program.to_string(),
                    score: 0,
                    max_score: 0,
                    duration_ms: 0,
                    steps: steps.cloned(),
                    sandbox: sandbox.cloned(),
                    checks: Vec::new(),
                });
                self.under_way = true;
                false
            }
            Event::CheckFinished { result, .. } => {
                if let Some(report) = self.reports.last_mut().filter(|_| self.under_way) {
                    report.score += result.score;
                    report.max_score += result.max_score;
                    report.duration_ms += result.duration_ms;
                    report.checks.push((*result).clone());
                }
                true
            }
            Event::LabFinished { report, .. } => {
                if let Some(last) = self.reports.last_mut().filter(|_| self.under_way) {
                    *last = (*report).clone();
                }
                self.under_way = false;
                true
            }
        }
    }

    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// Starts over (the next student).
    pub fn clear(&mut self) {
        self.reports.clear();
        self.under_way = false;
    }
}

/// Writes `text` to `path` whole or not at all (a temporary file renamed over it), so
/// a reader never sees half a report.
pub fn write_atomically(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write {}", path.display()))
}
