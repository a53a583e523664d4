//! Building what the bench runs, in release mode: the lab solutions.
//!
//! The bench itself runs as a release build (`cargo xtask bench` asks cargo for one),
//! fast enough to drive 10,000 connections fairly. The lab servers are built one package
//! at a time, so one missing or broken lab only skips that lab.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow};

use super::server::ServerKind;

/// The cargo that runs us (cargo sets $CARGO for `cargo run`), or the one on $PATH.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Where cargo puts the release binaries of this workspace.
pub fn release_dir(root: &Path) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    target.join("release")
}

/// `cargo build --release -p PACKAGE`, quietly; on failure, the first error line.
pub fn build_release(root: &Path, package: &str) -> anyhow::Result<()> {
    let output = Command::new(cargo())
        .args(["build", "--release", "--quiet", "-p", package])
        .current_dir(root)
        .output()
        .context("cannot run cargo")?;
    if output.status.success() {
        return Ok(());
    }
    let errors = String::from_utf8_lossy(&output.stderr);
    let first = errors
        .lines()
        .find(|line| line.starts_with("error"))
        .or_else(|| errors.lines().find(|line| !line.trim().is_empty()))
        .unwrap_or("no message");
    Err(anyhow!(
        "`cargo build --release -p {package}` failed: {}",
        first.trim()
    ))
}

/// The program that serves `kind`, built first unless `build` is false.
pub fn server_program(root: &Path, kind: ServerKind, build: bool) -> anyhow::Result<PathBuf> {
    let Some(package) = kind.package() else {
        // tokio: this very binary, started with --serve-tokio.
        return std::env::current_exe().context("cannot find the running xtask binary");
    };
    if build {
        build_release(root, package)?;
    }
    let program = release_dir(root).join(package);
    if program.is_file() {
        Ok(program)
    } else {
        Err(anyhow!(
            "{} does not exist (build it with `cargo build --release -p {package}`)",
            program.display()
        ))
    }
}
