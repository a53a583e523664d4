//! `cargo xtask docs [--check]`: the tables of every lab's README, generated from their
//! one source of truth, so that the README cannot drift from the grader or the solution.
//!
//! Between `<!-- socklab:checks:begin -->` and `<!-- socklab:checks:end -->` goes the
//! check table, from the lab's check table in `xtask/src/labs/labN.rs` (name, points)
//! and each row's `details` in `xtask/checks/labN.toml`. Between `<!-- socklab:steps:begin [SELECTOR] -->` and
//! `<!-- socklab:steps:end -->` goes a step table, from the solution's fences (step
//! number, the `todo!` title, and the fences' `//- call:` and `//- why:` when they have
//! them). `SELECTOR` picks the rows: `main` (steps not titled `client step`), `client`,
//! a range `15-16` of main steps, or a file `stream.rs` (in the file's order); without
//! one, every step.
//! Everything outside the markers is prose and left alone. `--check` changes nothing
//! and fails when a README is not what the generator would write.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::grade::Lab;
use crate::labs;
use crate::skeletons::{self, Fence};
use crate::student::progress::{self, folder};

/// Options of `cargo xtask docs` (a maintainers' command).
#[derive(clap::Args, Debug)]
pub struct DocsArgs {
    /// Only check that the READMEs are up to date; change nothing.
    #[arg(long)]
    pub check: bool,
}

/// Writes (or, with `--check`, compares) every lab README's generated tables.
pub fn run(root: &Path, args: DocsArgs) -> anyhow::Result<bool> {
    let mut stale = Vec::new();
    for lab in labs::all() {
        // The README's check table is made from the words file: it must cover the table.
        if let Some(problem) = lab.words_problems().first() {
            bail!("{problem} (xtask/checks/{}.toml)", lab.id);
        }
        let path = root.join("labs").join(folder(lab)).join("README.md");
        let current =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let wanted = readme(root, lab, &current).with_context(|| path.display().to_string())?;
        if wanted == current {
            continue;
        }
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if args.check {
            stale.push(shown);
        } else {
            fs::write(&path, wanted).with_context(|| format!("cannot write {shown}"))?;
            println!("wrote {shown}");
        }
    }
    if !stale.is_empty() {
        bail!(
            "README tables are stale (run `cargo xtask docs`): {}",
            stale.join(", ")
        );
    }
    if args.check {
        println!("README tables are up to date");
    }
    Ok(true)
}

/// `text` (a lab's README) with the tables between its markers regenerated.
pub fn readme(root: &Path, lab: &Lab, text: &str) -> anyhow::Result<String> {
    let steps = lab_steps(root, lab)?;
    let text = between_markers(text, "checks", |_| Ok(check_table(lab)))?;
    between_markers(&text, "steps", |selector| step_table(&steps, selector))
}

/// Replaces what lies between each `<!-- socklab:KIND:begin ARG -->` and
/// `<!-- socklab:KIND:end -->` with `render(ARG)`, framed by blank lines.
fn between_markers(
    text: &str,
    kind: &str,
    render: impl Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let begin = format!("<!-- socklab:{kind}:begin");
    let end = format!("<!-- socklab:{kind}:end -->");
    let mut out = String::new();
    let mut lines = text.split_inclusive('\n').enumerate();
    while let Some((index, line)) = lines.next() {
        out.push_str(line);
        let Some(rest) = line.trim().strip_prefix(&begin) else {
            continue;
        };
        let Some(argument) = rest.strip_suffix("-->") else {
            bail!("line {}: unfinished marker {:?}", index + 1, line.trim());
        };
        let table = render(argument.trim()).with_context(|| format!("line {}", index + 1))?;
        out.push('\n');
        out.push_str(&table);
        out.push('\n');
        loop {
            let Some((_, line)) = lines.next() else {
                bail!("line {}: no {end} after it", index + 1);
            };
            if line.trim() == end {
                out.push_str(line);
                break;
            }
        }
    }
    Ok(out)
}

/// The check table: name, points and what the check verifies, in table order.
pub fn check_table(lab: &Lab) -> String {
    let mut table = String::from("| check | points | what it verifies |\n| --- | --- | --- |\n");
    for check in lab.checks() {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            check.name, check.points, check.details
        ));
    }
    table
}

/// One row of a step table.
struct StepRow {
    /// The source file, relative to the crate's `src/`: `stream.rs`.
    file: String,
    /// Titled `client step N`.
    client: bool,
    /// N, or the number of the numbered fence next to it for a fence without one.
    number: u32,
    /// Whether the title carries the number itself (otherwise the cell stays empty).
    numbered: bool,
    /// The fence itself.
    fence: Fence,
}

/// Every step (fenced answers and `//- given:` steps) of the lab's solution.
fn lab_steps(root: &Path, lab: &Lab) -> anyhow::Result<Vec<StepRow>> {
    let crate_dir = root.join("solutions").join(folder(lab));
    let mut all: Vec<(PathBuf, Fence)> = Vec::new();
    for file in skeletons::rust_files(&crate_dir.join("src"))? {
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let relative = file.strip_prefix(crate_dir.join("src")).unwrap_or(&file);
        for fence in skeletons::steps(&text).with_context(|| file.display().to_string())? {
            all.push((relative.to_path_buf(), fence));
        }
    }
    let mut rows: Vec<StepRow> = all
        .iter()
        .map(|(file, fence)| {
            let (client, number, numbered) = match progress::step_number(&fence.title) {
                Some((client, n)) => (client, n, true),
                None => (
                    false,
                    progress::inherited_number(&all, file, &fence.title),
                    false,
                ),
            };
            StepRow {
                file: file.display().to_string(),
                client,
                number,
                numbered,
                fence: fence.clone(),
            }
        })
        .collect();
    // The order a student meets them: main steps, then client steps, lowest first.
    rows.sort_by(|a, b| {
        (a.client, a.number, &a.file, a.fence.line).cmp(&(
            b.client,
            b.number,
            &b.file,
            b.fence.line,
        ))
    });
    Ok(rows)
}

/// The step table of the rows `selector` picks (see the module's doc).
fn step_table(rows: &[StepRow], selector: &str) -> anyhow::Result<String> {
    let range = selector
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)));
    let mut picked: Vec<&StepRow> = rows
        .iter()
        .filter(|row| match (selector, range) {
            ("", _) => true,
            ("main", _) => !row.client,
            ("client", _) => row.client,
            (_, Some((low, high))) => !row.client && (low..=high).contains(&row.number),
            (file, None) => row.file == file,
        })
        .collect();
    if picked.is_empty() {
        bail!("step selector {selector:?} picks no step");
    }
    if selector.ends_with(".rs") {
        // One file's table reads in the file's order (its server, then its client).
        picked.sort_by_key(|row| row.fence.line);
    }
    let mut files: Vec<&str> = picked.iter().map(|r| r.file.as_str()).collect();
    files.sort();
    files.dedup();
    let with_file = files.len() > 1;
    let with_call = picked.iter().any(|r| !r.fence.call.is_empty());
    let with_why = picked.iter().any(|r| !r.fence.why.is_empty());
    let mut header = vec!["step"];
    if with_file {
        header.push("file");
    }
    header.push("what you write");
    if with_call {
        header.push("call");
    }
    if with_why {
        header.push("why");
    }
    let mut table = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for row in picked {
        let mut cells = Vec::new();
        cells.push(match (row.numbered, row.client) {
            (false, _) => String::new(),
            (true, false) => row.number.to_string(),
            (true, true) => format!("client {}", row.number),
        });
        if with_file {
            cells.push(format!("`{}`", row.file));
        }
        let title = row
            .fence
            .title
            .split_once(": ")
            .filter(|_| row.numbered)
            .map_or(row.fence.title.as_str(), |(_, title)| title);
        let given = if row.fence.given { " (given)" } else { "" };
        cells.push(format!("{}{given}", title.replace('|', "\\|")));
        if with_call {
            cells.push(row.fence.call.clone());
        }
        if with_why {
            cells.push(row.fence.why.clone());
        }
        table.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_text_between_markers_is_replaced() {
        let text =
            "intro\n<!-- socklab:steps:begin x -->\nold\n<!-- socklab:steps:end -->\nafter\n";
        let out = between_markers(text, "steps", |arg| Ok(format!("new {arg}\n"))).unwrap();
        assert_eq!(
            out,
            "intro\n<!-- socklab:steps:begin x -->\n\nnew x\n\n<!-- socklab:steps:end -->\nafter\n"
        );
        let unclosed = "<!-- socklab:steps:begin -->\nold\n";
        assert!(between_markers(unclosed, "steps", |_| Ok(String::new())).is_err());
    }
}
