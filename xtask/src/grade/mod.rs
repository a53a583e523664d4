//! The black-box grader: runs a lab's check table against a program and reports.
//!
//! The program under test is the student's crate (`labN`), the reference
//! (`labN-solution`, with `--solution`) or any command (`--cmd "python3 lab1.py"`) that
//! honours the CLI contract `PROGRAM <role> --host H --port P [lab options]`. Every check
//! runs in a fresh [`Ctx`]; the report says, check by check, what was sent, what was
//! expected, what came back, a hint, and the last lines of the program's stderr.

pub mod check;
pub mod common;
pub mod ctx;
pub mod demo;
pub mod expect;
pub mod net;
pub mod netns;
pub mod process;
pub mod tcp_table;
pub mod wire;

use std::path::Path;
use std::process::Command;

use serde::Serialize;

pub use check::{Check, Failure, Lab, ensure};
pub use ctx::{Ctx, Finished, Server};

/// The result of one check, as `--json` prints it.
#[derive(Serialize, Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub score: u32,
    pub max_score: u32,
    pub passed: bool,
    /// Empty when passed; otherwise the whole explanation, one item per line.
    pub message: String,
    #[serde(skip)]
    pub verifies: String,
}

/// A lab's graded report, as `--json` prints it.
#[derive(Serialize, Debug, Clone)]
pub struct Report {
    pub lab: String,
    pub score: u32,
    pub max_score: u32,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn full_marks(&self) -> bool {
        self.score == self.max_score
    }

    /// The names of the checks that failed.
    pub fn failed(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.clone())
            .collect()
    }
}

/// Runs every check of `lab` (or those named in `only`) against `program`.
pub fn grade(lab: &Lab, program: &[String], only: &[String]) -> Result<Report, String> {
    process::install_interrupt_cleanup();
    let mut checks = Vec::new();
    for check in lab.checks {
        if !only.is_empty() && !only.iter().any(|name| name == check.name) {
            continue;
        }
        checks.push(run_check(check, program)?);
    }
    Ok(Report {
        lab: lab.id.to_string(),
        score: checks.iter().map(|c| c.score).sum(),
        max_score: checks.iter().map(|c| c.max_score).sum(),
        checks,
    })
}

fn run_check(check: &Check, program: &[String]) -> Result<CheckResult, String> {
    let mut ctx = Ctx::new(program)?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.run)(&mut ctx)))
        .unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(
                Failure::new(format!("the grader itself failed in this check: {text}"))
                    .hint("this is a grader bug, not yours: please report it"),
            )
        });
    let message = match outcome {
        Ok(()) => String::new(),
        Err(failure) => explain(&ctx, failure),
    };
    drop(ctx);
    let passed = message.is_empty();
    Ok(CheckResult {
        name: check.name.to_string(),
        score: if passed { check.points } else { 0 },
        max_score: check.points,
        passed,
        message,
        verifies: check.verifies.to_string(),
    })
}

/// The failure in words, with the program's own last words; an unfinished skeleton
/// step is named as such instead.
fn explain(ctx: &Ctx, failure: Failure) -> String {
    let mut lines = Vec::new();
    match ctx.not_implemented() {
        Some(step) => {
            // The program's own last words would only repeat this line.
            lines.push(format!("not implemented yet: {step}"));
            lines.push(format!("(while checking: {})", failure.problem));
            return lines.join("\n");
        }
        None => {
            lines.push(failure.problem.clone());
            let fields = [
                ("sent", &failure.sent),
                ("expected", &failure.expected),
                ("got", &failure.got),
                ("hint", &failure.hint),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    lines.push(format!("{name}: {value}"));
                }
            }
        }
    }
    for (label, tail) in ctx.stderr_tails(5) {
        lines.push(format!("stderr of {label}:"));
        lines.extend(tail.into_iter().map(|l| format!("  | {l}")));
    }
    lines.join("\n")
}

/// The report as a student reads it.
pub fn render(report: &Report, title: &str, program: &str) -> String {
    let mut out = format!("{} ({title})\nprogram: {program}\n\n", report.lab);
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        let mark = if check.passed { "PASS" } else { "FAIL" };
        out.push_str(&format!(
            "[{mark}] {:width$}  {}/{}  {}\n",
            check.name, check.score, check.max_score, check.verifies
        ));
        for line in check.message.lines() {
            out.push_str(&format!("       {line}\n"));
        }
    }
    out.push_str(&format!("\nscore: {}/{}", report.score, report.max_score));
    if report.full_marks() {
        out.push_str("  (full marks)");
    }
    out.push('\n');
    out
}

/// Builds packages with cargo, showing compiler errors as they are.
pub fn build(root: &Path, packages: &[String], release: bool) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["build", "--quiet"]);
    if release {
        command.arg("--release");
    }
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} does not compile yet: fix the errors above, then grade again",
            packages.join(", ")
        ))
    }
}

/// Where cargo puts the binaries of this workspace.
pub fn target_dir(root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}
