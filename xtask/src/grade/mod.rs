//! The black-box grader: runs a lab's check table against a program and reports.
//!
//! The program under test is the student's crate (`labN`), the reference
//! (`labN-solution`, with `--solution`) or any command (`--cmd "python3 lab1.py"`) that
//! honours the CLI contract `PROGRAM <role> --host H --port P [lab options]`.
//!
//! - `check.rs`: the vocabulary of check tables ([`Lab`], [`Check`], [`Failure`]);
//!   `standard.rs`: the rows several labs share.
//! - `ctx.rs`, `process.rs`, `net.rs`, `peer.rs`, `writer.rs`, `expect.rs`, `common.rs`:
//!   what checks use to run programs and talk to them; `poll.rs`: how they wait on what
//!   a program did; `sockdiag.rs` and `tcp_table.rs`: the kernel's view of its sockets.
//! - `words.rs`: the words files (`xtask/checks/*.toml`) that name what each check
//!   verifies; `serial.rs`: how the report types become JSON.
//! - `runner.rs`: runs checks concurrently, each in a fresh [`Ctx`], within budgets.
//! - `result.rs`: the result model (events, reports); `explain.rs` turns a failure into
//!   an explanation; `human.rs` renders the stream for a person.
//! - `demo.rs`: narrated classroom demos.

pub mod capture;
pub mod cgroup;
pub mod check;
pub mod common;
pub mod ctx;
#[cfg(feature = "tools")]
pub mod demo;
pub mod expect;
pub mod explain;
pub mod files;
pub mod format;
pub mod human;
pub mod net;
pub mod netns;
pub mod onlan;
pub mod peer;
pub mod pidns;
pub mod poll;
pub mod process;
pub mod procstat;
pub mod result;
pub mod runner;
pub mod sandbox;
pub mod scratchfs;
pub mod serial;
pub mod sockdiag;
pub mod stamp;
pub mod standard;
pub mod strays;
pub mod tcp_table;
pub mod userns;
#[cfg(feature = "tools")]
pub mod wire;
pub mod words;
pub mod writer;

use std::path::Path;
use std::process::Command;

use anyhow::{Context, anyhow};

pub use check::{Check, Failure, Lab, ensure, row};
pub use ctx::{Ctx, Finished, Server};

/// Grades one lab against `program` with every check (or those in `only`), `jobs`
/// checks at a time, without printing anything (for `mutants`).
#[cfg(feature = "tools")]
pub fn grade(
    lab: &'static Lab,
    program: &[String],
    only: &[String],
    jobs: usize,
) -> result::Report {
    let plan = runner::Plan::new(lab, program.to_vec(), only);
    runner::run(&[plan], jobs, &mut |_| {}).remove(0)
}

/// Builds packages with cargo, showing compiler errors as they are.
pub fn build(root: &Path, packages: &[String], release: bool) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["build", "--quiet"]);
    if release {
        command.arg("--release");
    }
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command.status().context("cannot run cargo")?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow!(
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
