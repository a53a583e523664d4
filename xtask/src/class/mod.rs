//! Grading a class: a folder of submissions, graded in parallel, into a gradebook,
//! one report per student and a class summary.
//!
//! `cargo xtask grade lab3 --submissions DIR --out OUT [--format F] [--jobs N]`:
//! - `submissions.rs` finds, builds and probes each student's submission;
//! - every gradable submission becomes one runner [`Plan`]; one `runner::run` grades
//!   them all, at most `--jobs` checks at a time across the class, each check isolated
//!   as always (its own process group, scratch folder and OS-chosen ports), so a verdict
//!   is the one the submission gets when graded alone;
//! - `OUT/reports/<student>.<ext>` is rewritten after each of the student's checks and
//!   `OUT/gradebook.csv` after each student, so a run cut short keeps what finished;
//! - `gradebook.rs` and `summary.rs` write the gradebook and the class summary;
//! - `bench.rs` measures the speed-up of grading in parallel (`cargo xtask bench-class`).

#[cfg(feature = "tools")]
pub mod bench;
pub mod gradebook;
pub mod submissions;
pub mod summary;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::grade::Lab;
use crate::grade::explain::plain_text;
use crate::grade::format::{self, Format, Progress};
use crate::grade::result::{CheckResult, Event, Explanation, FORMAT_VERSION, Report, Status};
use crate::grade::runner::{self, Plan};
use submissions::{NotGradable, Submission};

/// What to grade, and how.
pub struct Class<'a> {
    pub lab: &'static Lab,
    pub submissions: &'a Path,
    pub out: &'a Path,
    pub format: Format,
    pub only: &'a [String],
    pub jobs: usize,
    /// How the submissions' programs are confined.
    pub sandbox: crate::grade::sandbox::Level,
}

/// One student's result: a report (all zero when not gradable, saying why).
pub struct Graded {
    pub student: String,
    pub report: Report,
    pub not_gradable: Option<NotGradable>,
}

/// Grades the class and writes everything under `OUT`; true when the run completed.
pub fn run(root: &Path, class: &Class, say: &mut dyn Write) -> anyhow::Result<bool> {
    let (graded, took) = grade(root, class, say)?;
    let rates = summary::rates(class.lab, class.only, &graded);
    let md = summary::markdown(class.lab, &graded, &rates);
    write(&class.out.join("summary.md"), &md)?;
    summary::svg(&class.out.join("summary.svg"), class.lab, &rates)?;
    let gradable = graded.iter().filter(|g| g.not_gradable.is_none()).count();
    let _ = writeln!(
        say,
        "\ngraded {} submissions ({gradable} gradable) in {:.1} s\n  {}\n  {}\n  {}\n  {}/",
        graded.len(),
        took.as_secs_f64(),
        class.out.join("gradebook.csv").display(),
        class.out.join("summary.md").display(),
        class.out.join("summary.svg").display(),
        class.out.join("reports").display()
    );
    Ok(true)
}

/// Prepares and grades every submission; writes the reports and the gradebook.
/// Returns the students in name order and how long grading took (building excluded).
pub fn grade(
    root: &Path,
    class: &Class,
    say: &mut dyn Write,
) -> anyhow::Result<(Vec<Graded>, Duration)> {
    let students = submissions::students(class.submissions)?;
    let out = class.out;
    check_out_folder(class.submissions, out)?;
    let reports_dir = out.join("reports");
    fs::create_dir_all(&reports_dir).with_context(|| reports_dir.display().to_string())?;
    let _ = writeln!(
        say,
        "{}: {} submissions in {}",
        class.lab.id,
        students.len(),
        class.submissions.display()
    );
    let mut prepared: Vec<Submission> = Vec::new();
    for (student, dir) in &students {
        let submission = submissions::prepare(root, class.lab, student, dir, out);
        if let Err(n) = &submission.outcome {
            let _ = writeln!(say, "  {student}: not gradable: {}", n.reason);
        }
        prepared.push(submission);
    }
    let mut plans = Vec::new();
    let mut owner = Vec::new();
    for (i, submission) in prepared.iter().enumerate() {
        if let Ok(ready) = &submission.outcome {
            let mut plan =
                Plan::new(class.lab, ready.program.clone(), class.only).with_sandbox(class.sandbox);
            plan.shown = ready.shown.clone();
            plans.push(plan);
            owner.push(i);
        }
    }
    let mut finished: Vec<Option<Graded>> = prepared.iter().map(|_| None).collect();
    for (i, submission) in prepared.iter().enumerate() {
        if let Err(n) = &submission.outcome {
            let report = not_gradable_report(class.lab, class.only, &submission.student, n);
            write_report(class, &submission.student, std::slice::from_ref(&report))?;
            finished[i] = Some(Graded {
                student: submission.student.clone(),
                report,
                not_gradable: Some(n.clone()),
            });
        }
    }
    let started = Instant::now();
    let mut progress = Progress::default();
    let mut current = 0;
    let mut trouble: Option<anyhow::Error> = None;
    runner::run(&plans, class.jobs, &mut |event| {
        let student = &prepared[owner[current]].student;
        if progress.event(&event) && trouble.is_none() {
            trouble = write_report(class, student, progress.reports()).err();
        }
        if let Event::LabFinished { report, .. } = event {
            let failed = report.failed();
            let _ = writeln!(
                say,
                "  {student:20} {:>3}/{:<3} {}",
                report.score,
                report.max_score,
                if failed.is_empty() {
                    String::new()
                } else {
                    format!("failed: {}", failed.join(", "))
                }
            );
            finished[owner[current]] = Some(Graded {
                student: student.clone(),
                report: report.clone(),
                not_gradable: None,
            });
            let so_far: Vec<Graded> = finished.iter().flatten().map(Graded::clone).collect();
            if trouble.is_none() {
                trouble = write(
                    &out.join("gradebook.csv"),
                    &gradebook::render(class.lab, class.only, &so_far),
                )
                .err();
            }
            progress.clear();
            current += 1;
        }
    });
    let took = started.elapsed();
    if let Some(trouble) = trouble {
        return Err(trouble);
    }
    let graded: Vec<Graded> = finished.into_iter().flatten().collect();
    write(
        &out.join("gradebook.csv"),
        &gradebook::render(class.lab, class.only, &graded),
    )?;
    Ok((graded, took))
}

impl Graded {
    fn clone(&self) -> Graded {
        Graded {
            student: self.student.clone(),
            report: self.report.clone(),
            not_gradable: self.not_gradable.clone(),
        }
    }
}

/// OUT must not be a student: not the submissions folder, nor inside it.
fn check_out_folder(submissions: &Path, out: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(out).with_context(|| format!("--out {}", out.display()))?;
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (submissions, out_dir): (PathBuf, PathBuf) = (canonical(submissions), canonical(out));
    if out_dir.starts_with(&submissions) {
        bail!(
            "--out {} is inside --submissions {}: it would be graded as a student; put it elsewhere",
            out.display(),
            submissions.display()
        );
    }
    Ok(())
}

fn write_report(class: &Class, student: &str, reports: &[Report]) -> anyhow::Result<()> {
    let path = class
        .out
        .join("reports")
        .join(format!("{student}.{}", class.format.extension()));
    let text = format::render(class.format, reports, Some(student));
    format::write_atomically(&path, &text)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    format::write_atomically(path, text)
}

/// A report for a submission that could not be graded: every check failed, each
/// saying why, with the first lines of what the compiler or the program said.
pub fn not_gradable_report(
    lab: &'static Lab,
    only: &[String],
    student: &str,
    why: &NotGradable,
) -> Report {
    let explanation = Explanation {
        problem: format!("not gradable: the submission {}", why.reason),
        hint: Some(
            "no check can run until the program builds and starts: fix what is shown \
             first (run `cargo build` in the crate, or the `run` file by hand)"
                .into(),
        ),
        stderr: if why.lines.is_empty() {
            Vec::new()
        } else {
            vec![(why.source.clone(), why.lines.clone())]
        },
        ..Explanation::default()
    };
    let checks: Vec<CheckResult> = lab
        .checks()
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| o == c.name))
        .map(|check| CheckResult {
            name: check.name.to_string(),
            score: 0,
            max_score: check.points,
            passed: false,
            status: Status::Failed,
            message: plain_text(&explanation),
            verifies: check.verifies.to_string(),
            duration_ms: 0,
            failure: Some(explanation.clone()),
        })
        .collect();
    Report {
        format_version: FORMAT_VERSION,
        lab: lab.id.to_string(),
        title: lab.title.to_string(),
        program: format!("{student} (not gradable)"),
        score: 0,
        max_score: checks.iter().map(|c| c.max_score).sum(),
        duration_ms: 0,
        steps: None,
        sandbox: None,
        checks,
    }
}
