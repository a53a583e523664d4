//! `cargo xtask`: socklab's grader and maintainer tools.
//!
//! - `grade <lab|all> [--solution | --cmd "PROGRAM ARGS"] [--json]`: the black-box grader.
//! - `grade <lab> --submissions DIR --out OUT`: a whole class, into a gradebook.
//! - `gradescope <lab> --out DIR`: the autograder.zip Gradescope takes.
//! - `classroom <lab>`: the GitHub Classroom workflow.
//! - `demo <lab>`: the reference programs narrate a whole session, for class.
//! - `skeletons [--check]`: regenerate `labs/` from `solutions/`.
//! - `mutants [lab...]`: prove every check can fail, with deliberately buggy programs.
//! - `bench-class <lab>`: the speed-up of grading a class in parallel.
//! - `bench`: load-test the servers of labs 3, 6 and 7 against tokio.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod class;
// The grader is a toolkit for the lab modules: not every lab uses every helper.
#[allow(dead_code)]
mod grade;
mod labs;
mod mutants;
mod skeletons;
mod student;
mod verbs;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "socklab's grader and maintainer tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grade a lab (lab1 ... lab8, or `all`): your crate, the reference, or any program.
    Grade(verbs::grade::GradeArgs),
    /// Write DIR/autograder.zip: a Gradescope autograder for one lab.
    Gradescope(verbs::gradescope::GradescopeArgs),
    /// Print (or --out FILE) the GitHub Classroom autograding workflow for one lab.
    Classroom(verbs::classroom::ClassroomArgs),
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
    /// Time grading a class with --jobs 1 and in parallel; prove no verdict differs.
    BenchClass(class::bench::BenchClassArgs),
    /// Load-test the lab3, lab6 and lab7 servers and tokio side by side.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Grade(args) => verbs::grade::run(&root, args),
        Command::Gradescope(args) => verbs::gradescope::run(&root, args),
        Command::Classroom(args) => verbs::classroom::run(&root, args),
        Command::Demo { lab } => verbs::demo::run(&root, &lab),
        Command::Skeletons { check } => skeletons::run(&root, check).map(|()| true),
        Command::Mutants(args) => mutants::run(&root, args),
        Command::BenchClass(args) => class::bench::run(&root, args),
        Command::Bench(args) => bench::run(&root, args).map(|()| true),
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

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
