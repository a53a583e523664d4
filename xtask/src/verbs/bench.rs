//! `cargo xtask bench`: runs the xtask-bench crate as a release build.
//!
//! The benchmark lives in a crate of its own (`xtask/bench`) so that grading never
//! compiles tokio or plotters; only this verb does, and only in release mode, since a
//! debug load generator is far too slow to drive 10,000 connections fairly.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// Runs `cargo run --release -p xtask-bench -- ARGS`; true when it succeeded.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<bool> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["run", "--quiet", "--release", "-p", "xtask-bench", "--"])
        .args(args)
        .status()
        .context("cannot run cargo")?;
    Ok(status.success())
}
