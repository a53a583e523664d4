//! The instructors' and maintainers' verbs in a student's build: `demo` and
//! `gradescope` need crates (etherparse to decode packets, zip to pack the autograder),
//! and so do `mutants` and `bench-class` (toml and serde's derive for the mutant
//! tables), that a student's `cargo xtask grade` should not wait for. The `cargo xtask` alias builds xtask without
//! them (`--no-default-features`); these verbs then hand the same command line over to
//! the full build (exec: one process, so Ctrl+C and the exit code reach it as they
//! would the first), which cargo makes once and keeps beside the lean one.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::bail;

/// The command line of a verb the full build runs, passed on unread (`--help` too).
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Passed {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Set on the full build's run, so that a build without the tools can never start
/// itself over and over.
const AGAIN: &str = "SOCKLAB_TOOLS_BUILD";

/// Replaces this process with `cargo run --package xtask` (all features) on the same
/// command line. Returns only when that cannot start.
pub fn run(root: &Path) -> anyhow::Result<bool> {
    if std::env::var_os(AGAIN).is_some() {
        bail!("this build of xtask lacks the instructor tools although it was asked for them");
    }
    eprintln!(
        "xtask: demo, gradescope, mutants and bench-class run from xtask's full build \
         (built once, then kept)"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let error = Command::new(&cargo)
        .current_dir(root)
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(std::env::args_os().skip(1))
        .env(AGAIN, "1")
        .exec();
    bail!("cannot run {cargo}: {error}")
}
