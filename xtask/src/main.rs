//! `cargo xtask`: socklab's grader and maintainer tools.
//!
//! - `grade <lab|all> [--solution | --cmd "PROGRAM ARGS"] [--json]`: the black-box grader.
//! - `demo <lab>`: the reference programs narrate a whole session, for class.
//! - `skeletons [--check]`: regenerate `labs/` from `solutions/`.
//! - `mutants [lab...]`: prove every check can fail, with deliberately buggy programs.
//! - `bench`: load-test the servers of labs 3, 6 and 7 against tokio.
//! - `lan [shell alpha|beta]`: two hosts on a private cable, for trying things by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
// The grader is a toolkit for the lab modules: not every lab uses every helper.
#[allow(dead_code)]
mod grade;
mod labs;
mod lan;
mod mutants;
mod skeletons;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "socklab's grader and maintainer tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grade a lab (lab1 ... lab8, or `all`): your crate, the reference, or any program.
    Grade {
        /// lab1 ... lab8, or `all`.
        lab: String,
        /// Grade the reference solution instead of your crate in labs/.
        #[arg(long, conflicts_with = "cmd")]
        solution: bool,
        /// Grade any program that honours the CLI contract, in any language, e.g.
        /// --cmd "python3 my_server.py". It is run as `CMD <role> --host H --port P ...`.
        #[arg(long)]
        cmd: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Run only these checks (repeatable).
        #[arg(long = "check")]
        only: Vec<String>,
    },
    /// Play a lab's session live with the reference programs narrating every call.
    Demo {
        /// lab1 ... lab8.
        lab: String,
    },
    /// Regenerate the student skeletons in labs/ from the reference solutions.
    Skeletons {
        /// Only check that labs/ is up to date; change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Build every mutant and check it fails exactly the checks it targets.
    Mutants(mutants::MutantArgs),
    /// Load-test the lab3, lab6 and lab7 servers and tokio side by side.
    Bench(bench::BenchArgs),
    /// Two hosts, alpha and beta, on a private cable; `lan shell alpha|beta` enters one.
    Lan(lan::LanArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Grade {
            lab,
            solution,
            cmd,
            json,
            only,
        } => grade_command(&root, &lab, solution, cmd.as_deref(), json, &only),
        Command::Demo { lab } => demo_command(&root, &lab),
        Command::Skeletons { check } => skeletons::run(&root, check).map(|()| true),
        Command::Mutants(args) => mutants::run(&root, args),
        Command::Bench(args) => bench::run(&root, args).map(|()| true),
        Command::Lan(args) => lan::run(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Grades one lab or all; true only at full marks.
fn grade_command(
    root: &Path,
    which: &str,
    solution: bool,
    cmd: Option<&str>,
    json: bool,
    only: &[String],
) -> Result<bool, String> {
    let selected = select_labs(which)?;
    if cmd.is_some() && selected.len() > 1 {
        return Err("--cmd grades one lab at a time: name the lab (e.g. lab3)".into());
    }
    let program_for = |lab: &grade::Lab| -> Result<Vec<String>, String> {
        match cmd {
            Some(cmd) => {
                let argv = shlex::split(cmd).filter(|a| !a.is_empty()).ok_or_else(|| {
                    format!("--cmd {cmd:?} is not a valid command line (check the quotes)")
                })?;
                Ok(argv)
            }
            None => {
                let bin = grade::target_dir(root)
                    .join("debug")
                    .join(lab.package(solution));
                Ok(vec![bin.display().to_string()])
            }
        }
    };
    if cmd.is_none() {
        let packages: Vec<String> = selected.iter().map(|l| l.package(solution)).collect();
        grade::build(root, &packages, false)?;
    }
    let mut reports = Vec::new();
    let mut all_full = true;
    for lab in &selected {
        let program = program_for(lab)?;
        let report = grade::grade(lab, &program, only)?;
        all_full &= report.full_marks();
        if !json {
            let shown = shlex::try_join(program.iter().map(String::as_str)).unwrap_or_default();
            println!("{}", grade::render(&report, lab.title, &shown));
        }
        reports.push(report);
    }
    if json {
        let text = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])
        } else {
            serde_json::to_string_pretty(&reports)
        };
        println!("{}", text.map_err(|e| e.to_string())?);
    } else if reports.len() > 1 {
        let score: u32 = reports.iter().map(|r| r.score).sum();
        let max: u32 = reports.iter().map(|r| r.max_score).sum();
        println!("all labs: {score}/{max}");
    }
    Ok(all_full)
}

fn demo_command(root: &Path, which: &str) -> Result<bool, String> {
    let lab = labs::find(which).ok_or_else(|| unknown_lab(which))?;
    let Some(script) = lab.demo else {
        return Err(format!("{} has no demo yet", lab.id));
    };
    grade::build(root, &[lab.package(true)], false)?;
    let bin = grade::target_dir(root)
        .join("debug")
        .join(lab.package(true));
    println!("{}: {} (reference programs, narrated)", lab.id, lab.title);
    let mut demo = grade::demo::Demo::new(&[bin.display().to_string()])?;
    script(&mut demo)?;
    drop(demo);
    println!("\n=== end of the {} demo", lab.id);
    Ok(true)
}

fn select_labs(which: &str) -> Result<Vec<&'static grade::Lab>, String> {
    let with_checks = |lab: &&grade::Lab| !lab.checks.is_empty();
    if which == "all" {
        return Ok(labs::all().into_iter().filter(with_checks).collect());
    }
    let lab = labs::find(which).ok_or_else(|| unknown_lab(which))?;
    if lab.checks.is_empty() {
        return Err(format!("{} has no checks yet", lab.id));
    }
    Ok(vec![lab])
}

fn unknown_lab(which: &str) -> String {
    let known: Vec<&str> = labs::all().iter().map(|l| l.id).collect();
    format!(
        "unknown lab {which:?}: choose one of {} or all",
        known.join(", ")
    )
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
