//! `cargo xtask reset <lab> [--yes]`: puts a lab back to its pristine skeleton, after
//! asking, and after copying the student's files to `.socklab/backup/<lab>-<time>/`.

use std::fs;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{find_lab, progress, state};
use crate::skeletons;

/// Options of `cargo xtask reset`.
#[derive(clap::Args, Debug)]
pub struct ResetArgs {
    /// lab1 ... lab8.
    lab: String,
    /// Do not ask: reset at once (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
}

/// Resets the lab; true when it was reset or the student said no.
pub fn run(root: &Path, args: ResetArgs) -> anyhow::Result<bool> {
    let lab = find_lab(&args.lab)?;
    let folder = progress::folder(lab);
    let lab_dir = root.join("labs").join(&folder);
    let pristine = skeletons::generate_only(root, Some(&folder))?;
    if pristine.is_empty() {
        bail!("{}: no solution to make a skeleton from", lab.id);
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "reset asks before it overwrites your work, and stdin is not a terminal: \
                 run it in a terminal, or add --yes (cargo xtask reset {} --yes)",
                lab.id
            );
        }
        print!(
            "Reset {} to its pristine skeleton? Your files are copied to a backup first. [y/N] ",
            lab_dir.strip_prefix(root).unwrap_or(&lab_dir).display()
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            println!("Nothing changed.");
            return Ok(true);
        }
    }
    let backup = backup_folder(root, lab.id);
    if lab_dir.is_dir() {
        copy_tree(&lab_dir, &backup)?;
    }
    for file in &pristine {
        fs::create_dir_all(file.path.parent().expect("a lab file sits in a folder"))
            .and_then(|()| fs::write(&file.path, &file.contents))
            .with_context(|| format!("cannot write {}", file.path.display()))?;
    }
    state::forget_hints(root, lab.id);
    let shown = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    if lab_dir.is_dir() && backup.is_dir() {
        println!("Your files were copied to {}/", shown(&backup));
    }
    println!(
        "{} is back to its pristine skeleton ({} files). Start again with: cargo xtask hint {}",
        shown(&lab_dir),
        pristine.len(),
        lab.id
    );
    Ok(true)
}

/// `.socklab/backup/lab1-20261125-164100/`, with `-2`, `-3`... if that one exists.
fn backup_folder(root: &Path, lab: &str) -> PathBuf {
    let base = root
        .join(".socklab")
        .join("backup")
        .join(format!("{lab}-{}", state::stamp(state::now())));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    candidate
}

/// Copies every file under `from` to `to` (build output in `target/` excepted).
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries = fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&path, &target)?;
            }
        } else if kind.is_file() {
            fs::copy(&path, &target)
                .with_context(|| format!("cannot back up {}", path.display()))?;
        }
    }
    Ok(())
}
