//! The report a person reads: one line per check as it finishes, then one block that
//! says what to do next.
//!
//! The stream is rendered from the runner's [`Event`]s. A skeleton's next step is named
//! once, with `file:line`; otherwise the first failing check is shown in full (sent,
//! expected, got with the first differing byte marked, the hint, the program's last
//! words, a line to try it by hand) and the other failures one line each. `--verbose`
//! shows every failure in full. Colour only on a terminal, never with `NO_COLOR`.

use std::io::{self, IsTerminal, Write};

use super::explain::caret_column;
use super::result::{CheckResult, Event, Explanation, Report, Status, Steps};
use super::sandbox::Level;

/// Terminal colours, or none.
#[derive(Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset (no-color.org).
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: io::stdout().is_terminal() && !no_color,
        }
    }

    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn mark(&self, status: Status) -> String {
        match status {
            Status::Passed => self.paint("32", "PASS"),
            Status::Failed => self.paint("31", "FAIL"),
            Status::NotImplemented => self.paint("33", "TODO"),
            Status::TimedOut => self.paint("31", "TIME"),
            Status::CannotTest => self.paint("36", "SKIP"),
        }
    }
}

/// Renders events as they come to `out`.
pub struct Human<W: Write> {
    out: W,
    style: Style,
    verbose: bool,
    width: usize,
}

impl<W: Write> Human<W> {
    pub fn new(out: W, style: Style, verbose: bool) -> Self {
        Human {
            out,
            style,
            verbose,
            width: 0,
        }
    }

    /// Writes what `event` adds to the report.
    pub fn event(&mut self, event: Event) -> io::Result<()> {
        match event {
            Event::LabStarted {
                lab,
                program,
                steps,
                sandbox,
                ..
            } => {
                self.width = lab.checks().iter().map(|c| c.name.len()).max().unwrap_or(0);
                let title = self.style.bold(&format!("{}: {}", lab.id, lab.title));
                writeln!(self.out, "{title}")?;
                let mut line = format!("program: {program}");
                if let Some(steps) = steps {
                    line.push_str(&format!(
                        "   steps written: {} of {}",
                        steps.written, steps.total
                    ));
                }
                writeln!(self.out, "{line}")?;
                // `basic` is what a student grading their own crate always gets: said in
                // the JSON, not in every header. `strict` and `off` are said here.
                if let Some(sandbox) = sandbox.filter(|s| s.level != Level::Basic) {
                    writeln!(self.out, "{}", sandbox_line(sandbox))?;
                }
            }
            Event::CheckFinished { result, .. } => {
                let summary = match (&result.failure, result.status) {
                    (_, Status::Passed) => result.verifies.clone(),
                    (Some(e), Status::NotImplemented) => match &e.step {
                        Some(step) => format!("stops at {} (not written yet)", step_number(step)),
                        None => e.problem.clone(),
                    },
                    (Some(e), _) => e.problem.clone(),
                    (None, _) => String::new(),
                };
                writeln!(
                    self.out,
                    "  {}  {:w$}  {}/{}  {}",
                    self.style.mark(result.status),
                    result.name,
                    result.score,
                    result.max_score,
                    summary,
                    w = self.width
                )?;
                // A check that could not run has said all there is in its summary.
                if self.verbose
                    && result.status != Status::CannotTest
                    && let Some(e) = &result.failure
                {
                    self.full(e, "        ")?;
                }
            }
            Event::LabFinished { report, .. } => {
                let mut line = format!("score: {}/{}", report.score, report.max_score);
                if report.full_marks() {
                    line.push_str("  (full marks)");
                }
                writeln!(self.out, "{}\n", self.style.bold(&line))?;
            }
        }
        self.out.flush()
    }

    /// The closing block: what to do next, for the first lab that is not at full marks.
    pub fn next_step(&mut self, reports: &[Report], next_lab: Option<&str>) -> io::Result<()> {
        if reports.len() > 1 {
            let score: u32 = reports.iter().map(|r| r.score).sum();
            let max: u32 = reports.iter().map(|r| r.max_score).sum();
            writeln!(
                self.out,
                "{}\n",
                self.style.bold(&format!("all labs: {score}/{max}"))
            )?;
        }
        let heading = self.style.bold("what to do next");
        writeln!(self.out, "== {heading}")?;
        let Some(report) = reports.iter().find(|r| !r.full_marks()) else {
            match next_lab {
                Some(next) => writeln!(
                    self.out,
                    "Full marks. On to the next lab: read its README, then `cargo xtask grade {next}`."
                )?,
                None => writeln!(self.out, "Full marks.")?,
            }
            return self.out.flush();
        };
        let failing: Vec<&CheckResult> = report.checks.iter().filter(|c| !c.passed).collect();
        let first = failing[0];
        let e = first.failure.clone().unwrap_or_default();
        if first.status == Status::NotImplemented {
            self.write_step(report, &e, &failing)?;
        } else {
            writeln!(
                self.out,
                "Fix {} `{}` ({})",
                report.lab, first.name, first.verifies
            )?;
            self.full(&e, "  ")?;
            let others: Vec<&&CheckResult> = failing[1..].iter().collect();
            if !others.is_empty() {
                let more = if self.verbose {
                    "(shown in full above)"
                } else {
                    "(one line each; --verbose shows them in full)"
                };
                writeln!(self.out, "Also failing {more}:")?;
                let width = others.iter().map(|c| c.name.len()).max().unwrap_or(0);
                for other in others {
                    let problem = other
                        .failure
                        .as_ref()
                        .map(|f| match &f.step {
                            Some(step) => format!("stops at {}", step_title(step)),
                            None => f.problem.clone(),
                        })
                        .unwrap_or_default();
                    writeln!(self.out, "  {:width$}  {problem}", other.name)?;
                }
            }
        }
        self.out.flush()
    }

    /// "Write step 5 ..." for a skeleton, named once with its place.
    fn write_step(
        &mut self,
        report: &Report,
        e: &Explanation,
        failing: &[&CheckResult],
    ) -> io::Result<()> {
        let (title, place) = match report.steps.as_ref().and_then(|s| s.next.as_ref()) {
            Some(next) => (next.title.clone(), Some(next.place.clone())),
            None => {
                let step = e.step.clone().unwrap_or_default();
                (step_title(&step), step_place(&step))
            }
        };
        writeln!(self.out, "Write {title}")?;
        if let Some(place) = place {
            writeln!(self.out, "  in {place}")?;
        }
        let waiting = failing
            .iter()
            .filter(|c| c.status == Status::NotImplemented)
            .count();
        let progress = match &report.steps {
            Some(Steps { written, total, .. }) => {
                format!(" ({written} of {total} steps written so far)")
            }
            None => String::new(),
        };
        writeln!(
            self.out,
            "  {waiting} check(s) stop at an unwritten step{progress}; grade again after writing it."
        )?;
        writeln!(
            self.out,
            "  Stuck? `cargo xtask hint {}` explains the step without giving it away.",
            report.lab
        )
    }

    /// One failure in full, each line indented by `indent`.
    fn full(&mut self, e: &Explanation, indent: &str) -> io::Result<()> {
        writeln!(self.out, "{indent}{}", e.problem)?;
        let label = |name: &str| format!("{indent}{name:<9} ");
        if let Some(sent) = &e.sent {
            writeln!(self.out, "{}{sent}", label("sent:"))?;
        }
        if let Some(expected) = &e.expected {
            writeln!(self.out, "{}{expected}", label("expected:"))?;
        }
        if let Some(got) = &e.got {
            writeln!(self.out, "{}{got}", label("got:"))?;
        }
        if let Some(difference) = &e.difference {
            let column = caret_from(e);
            match column {
                Some(column) => writeln!(
                    self.out,
                    "{}{}^ {difference}",
                    label(""),
                    " ".repeat(column)
                )?,
                None => writeln!(self.out, "{}{difference}", label(""))?,
            }
        }
        if let Some(hint) = &e.hint {
            writeln!(self.out, "{}{hint}", label("hint:"))?;
        }
        for (who, tail) in &e.stderr {
            writeln!(self.out, "{indent}last words of the {who} (stderr):")?;
            for line in tail {
                writeln!(self.out, "{indent}  | {line}")?;
            }
        }
        if let Some(by_hand) = &e.by_hand {
            writeln!(self.out, "{indent}try it by hand: {by_hand}")?;
        }
        Ok(())
    }
}

/// The caret column under `got`, when the explanation came from a byte comparison.
fn caret_from(e: &Explanation) -> Option<usize> {
    let (expected, got) = e.compared.as_ref()?;
    caret_column(expected, got)
}

/// `step 5` of `step 5: accept ...` (`client step 2` likewise); a step named by what it
/// does, without a number, is shown whole.
fn step_number(step: &str) -> String {
    let title = step_title(step);
    match title.split_once(": ") {
        Some((label, _)) if label.starts_with("step ") || label.starts_with("client step ") => {
            label.to_string()
        }
        _ => title,
    }
}

/// `step 5: accept ...` without its `(file:line)`.
fn step_title(step: &str) -> String {
    match step.rfind(" (") {
        Some(at) if step.ends_with(')') => step[..at].to_string(),
        _ => step.to_string(),
    }
}

/// The `file:line` at the end of a not-implemented line, if any.
fn step_place(step: &str) -> Option<String> {
    let at = step.rfind(" (")?;
    step.ends_with(')')
        .then(|| step[at + 2..step.len() - 1].to_string())
}

/// The report header's sandbox line: the level, what held, what did not and why.
pub fn sandbox_line(sandbox: &crate::grade::sandbox::Summary) -> String {
    let mut line = format!("sandbox: {}", sandbox.level.name());
    if !sandbox.in_force.is_empty() {
        line.push_str(&format!(" ({})", sandbox.in_force.join(", ")));
    }
    if !sandbox.missing.is_empty() {
        line.push_str(&format!("; not in force: {}", sandbox.missing.join("; ")));
    }
    line
}
