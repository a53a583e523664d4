//! `cargo xtask classroom lab3 [--out FILE]`: the GitHub Classroom workflow for a lab.
//!
//! The template is `xtask/classroom/github/classroom.yml`. Its grading step runs
//! `cargo xtask grade LAB --format github` with the id `socklab`; the grader writes
//! `result=<base64 JSON>` to `$GITHUB_OUTPUT`, and GitHub Classroom's grading reporter
//! (`runners: socklab`) reads it from `SOCKLAB_RESULTS`: the runner id, upper-cased,
//! then `_RESULTS`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::grade::select_labs;
use crate::grade::Lab;

const TEMPLATE: &str = include_str!("../../classroom/github/classroom.yml");

/// Options of `cargo xtask classroom`.
#[derive(clap::Args, Debug)]
pub struct ClassroomArgs {
    /// lab1 ... lab8.
    lab: String,
    /// Write the workflow to this file (e.g. .github/workflows/classroom.yml) instead of
    /// printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(_root: &Path, args: ClassroomArgs) -> anyhow::Result<bool> {
    if args.lab == "all" {
        bail!("a GitHub Classroom assignment grades one lab: name it (e.g. lab3)");
    }
    let lab = select_labs(&args.lab)?[0];
    let text = workflow(lab);
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("--out {}", parent.display()))?;
            }
            std::fs::write(path, &text).with_context(|| format!("--out {}", path.display()))?;
            eprintln!(
                "wrote {}: commit it to the assignment's template repository",
                path.display()
            );
        }
    }
    Ok(true)
}

/// The workflow for `lab`.
pub fn workflow(lab: &Lab) -> String {
    TEMPLATE
        .replace("@LAB@", lab.id)
        .replace("@TITLE@", lab.title)
}
