//! `cargo xtask gradescope lab3 --out DIR`: the autograder package Gradescope takes.
//!
//! `DIR/autograder.zip` holds, at its root, `setup.sh` and `run_autograder` (from
//! `xtask/classroom/gradescope/`, with the lab filled in) and `socklab/`: the workspace
//! sources the grader is built from (no `target/`, no `.git`). Gradescope unzips it in
//! `/autograder/source`, runs `setup.sh` once when it builds the image, then
//! `run_autograder` for each submission.

#[cfg(feature = "tools")]
use std::fs;
#[cfg(feature = "tools")]
use std::io::Write;
#[cfg(feature = "tools")]
use std::path::Path;
use std::path::PathBuf;

#[cfg(feature = "tools")]
use anyhow::{Context, anyhow, bail};
#[cfg(feature = "tools")]
use zip::write::SimpleFileOptions;

#[cfg(feature = "tools")]
use super::grade::select_labs;
#[cfg(feature = "tools")]
use crate::grade::Lab;

#[cfg(feature = "tools")]
const SETUP: &str = include_str!("../../classroom/gradescope/setup.sh");
#[cfg(feature = "tools")]
const RUN: &str = include_str!("../../classroom/gradescope/run_autograder");

#[cfg(feature = "tools")]
/// What of the workspace goes into the package: what building and running the grader
/// needs (the lab sources come along: the grader's tests and warm-up use them).
const SOURCES: [&str; 8] = [
    "Cargo.toml",
    "Cargo.lock",
    "README.md",
    ".cargo",
    "shared",
    "xtask",
    "labs",
    "solutions",
];

/// Options of `cargo xtask gradescope`.
#[derive(clap::Args, Debug)]
pub struct GradescopeArgs {
    /// lab1 ... lab8.
    lab: String,
    /// The folder to write autograder.zip into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[cfg(feature = "tools")]
pub fn run(root: &Path, args: GradescopeArgs) -> anyhow::Result<bool> {
    if args.lab == "all" {
        bail!("a Gradescope assignment grades one lab: name it (e.g. lab3)");
    }
    let lab = select_labs(&args.lab)?[0];
    fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let zip = args.out.join("autograder.zip");
    let count = write_zip(root, lab, &zip)?;
    println!(
        "wrote {} ({count} files) for {}: upload it as the autograder of a Gradescope \
         programming assignment (see xtask/README.md, \"Gradescope\")",
        zip.display(),
        lab.id
    );
    Ok(true)
}

#[cfg(feature = "tools")]
/// A script of the package with the lab filled in.
pub fn script(template: &str, lab: &Lab) -> String {
    template
        .replace("@LAB@", lab.id)
        .replace("@SLUG@", lab.slug)
}

#[cfg(feature = "tools")]
fn write_zip(root: &Path, lab: &Lab, path: &Path) -> anyhow::Result<usize> {
    let file = fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut zip = zip::ZipWriter::new(file);
    let fail = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    // Stored, not compressed: a few hundred small text files; no codec to build.
    let plain = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let executable = plain.unix_permissions(0o755);
    for (name, template) in [("setup.sh", SETUP), ("run_autograder", RUN)] {
        zip.start_file(name, executable).map_err(|e| fail(&e))?;
        zip.write_all(script(template, lab).as_bytes())
            .map_err(|e| fail(&e))?;
    }
    let mut files = Vec::new();
    for source in SOURCES {
        collect(root, &root.join(source), &mut files)?;
    }
    for file in &files {
        let relative = file.strip_prefix(root).expect("under the root");
        let name = format!("socklab/{}", relative.display());
        let bytes = fs::read(file).with_context(|| file.display().to_string())?;
        let mode = fs::metadata(file)?;
        let options = if std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o111 != 0 {
            executable
        } else {
            plain.unix_permissions(0o644)
        };
        zip.start_file(name, options).map_err(|e| fail(&e))?;
        zip.write_all(&bytes).map_err(|e| fail(&e))?;
    }
    zip.finish().map_err(|e| fail(&e))?;
    Ok(files.len() + 2)
}

#[cfg(feature = "tools")]
/// Every regular file under `path` (or `path` itself), without build output, version
/// control or editor leftovers.
fn collect(root: &Path, path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = fs::symlink_metadata(path).with_context(|| path.display().to_string())?;
    if meta.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .with_context(|| path.display().to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_name().unwrap_or_default().to_string_lossy();
        let skip = name == "target" || name == ".git" || name.ends_with('~');
        if !skip && entry.starts_with(root) {
            collect(root, &entry, files)?;
        }
    }
    Ok(())
}
