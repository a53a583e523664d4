//! `cargo xtask`: socklab's grader and maintainer tools.
//!
//! - `grade <lab|all> [--solution | --cmd "PROGRAM ARGS"] [--json]`: the black-box grader.
//! - `demo <lab>`: the reference programs narrate a whole session, for class.
//! - `skeletons [--check]`: regenerate `labs/` from `solutions/`.
//! - `mutants [lab]`: prove every check can fail, with deliberately buggy programs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod skeletons;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "socklab's grader and maintainer tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate the student skeletons in labs/ from the reference solutions.
    Skeletons {
        /// Only check that labs/ is up to date; change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Load-test the lab3, lab6 and lab7 servers and tokio side by side.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Skeletons { check } => skeletons::run(&root, check),
        Command::Bench(args) => bench::run(&root, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
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
