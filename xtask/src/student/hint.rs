//! `cargo xtask hint <lab> [--more]`: a hint for the step you are at, in two tiers.
//!
//! The first time for a step it gives the idea (what the step must achieve and why);
//! asked again for the same step, or with `--more`, it names the API to look at. It
//! never gives the answer. The hints are the `//- hint:` and `//- more:` lines of the
//! reference solution's fences, read with the same parser that writes the skeletons.

use std::path::Path;

use anyhow::anyhow;

use super::progress::{self, Step};
use super::{find_lab, state, wrap};
use crate::grade::Lab;
use crate::skeletons::Fence;

/// Options of `cargo xtask hint`.
#[derive(clap::Args, Debug)]
pub struct HintArgs {
    /// lab1 ... lab8.
    lab: String,
    /// Go straight to the second tier: the functions and types to look at.
    #[arg(long)]
    more: bool,
}

/// Prints the hint; always true (a hint is not a failure).
pub fn run(root: &Path, args: HintArgs) -> anyhow::Result<bool> {
    let lab = find_lab(&args.lab)?;
    print!("{}", show(root, lab, args.more)?);
    Ok(true)
}

/// The hint text for where the student is in `lab`: tier 1 the first time for a step,
/// tier 2 when asked again (or with `more`). Counts the ask in the state file.
pub fn show(root: &Path, lab: &Lab, more: bool) -> anyhow::Result<String> {
    let again = format!(
        "Ask again (or add --more) for the API to look at: cargo xtask hint {} --more",
        lab.id
    );
    show_with(root, lab, more, &again)
}

/// [`show`], telling how to ask for the second tier with `again` (watch: "press h").
pub fn show_with(root: &Path, lab: &Lab, more: bool, again: &str) -> anyhow::Result<String> {
    let progress = progress::scan(root, lab)?;
    let Some(step) = progress.next else {
        return Ok(format!(
            "{}: every step is written ({} of {}). Grade it: cargo xtask grade {}\n",
            lab.id, progress.written, progress.total, lab.id
        ));
    };
    let fence = fence_for(root, lab, &step)?;
    let key = format!("{}:{}", step.file.display(), step.title);
    let asked_before = state::count_hint(root, lab.id, &key);
    let mut out = format!(
        "{}, {} of {} steps written. Next: {}\n  at {}:{}\n\n",
        lab.id,
        progress.written,
        progress.total,
        step.title,
        step.file.display(),
        step.line
    );
    out.push_str("The idea:\n");
    out.push_str(&wrap(&fence.hint, "  ", 88));
    if more || asked_before > 0 {
        out.push_str("\nWhere to look:\n");
        out.push_str(&wrap(&fence.more, "  ", 88));
        out.push_str(
            "\nThat is all the help there is for this step: the answer is yours to write.\n",
        );
    } else {
        out.push_str(&format!("\n{again}\n"));
    }
    Ok(out)
}

/// The solution fence that `step` (a todo! in the student's crate) stands for.
fn fence_for(root: &Path, lab: &Lab, step: &Step) -> anyhow::Result<Fence> {
    let lab_dir = Path::new("labs").join(progress::folder(lab));
    let in_crate = step.file.strip_prefix(&lab_dir).unwrap_or(&step.file);
    let candidates: Vec<Fence> = progress::solution_fences(root, lab)?
        .into_iter()
        .filter(|(file, fence)| file == in_crate && fence.title == step.title)
        .map(|(_, fence)| fence)
        .collect();
    // Two fences with the same title in one file (a server's and a client's step 1):
    // the k-th todo! with that title left in the student's file is taken for the k-th.
    let text = std::fs::read_to_string(root.join(&step.file)).unwrap_or_default();
    let earlier = progress::todos(&text)
        .into_iter()
        .filter(|(line, title)| *line < step.line && *title == step.title)
        .count();
    candidates
        .get(earlier)
        .or(candidates.last())
        .cloned()
        .ok_or_else(|| anyhow!("no hint found for {:?} in the solution", step.title))
}
