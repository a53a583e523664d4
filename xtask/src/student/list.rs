//! `cargo xtask list`: every lab on one line, with the steps written, the last score,
//! and a marker on the lab you are at.

use std::path::Path;

use super::{progress, state};

/// Options of `cargo xtask list` (none yet).
#[derive(clap::Args, Debug)]
pub struct ListArgs {}

/// Prints the list; always true.
pub fn run(root: &Path, _args: ListArgs) -> anyhow::Result<bool> {
    print!("{}", render(root));
    Ok(true)
}

/// The list as text.
pub fn render(root: &Path) -> String {
    let saved = state::load(root);
    let mut rows = Vec::new();
    let mut current = None;
    for (index, lab) in crate::labs::all().into_iter().enumerate() {
        let progress = progress::scan(root, lab).ok();
        let entry = saved.labs.get(lab.id);
        let steps = match &progress {
            Some(p) => format!("{}/{} steps", p.written, p.total),
            None => "?/? steps".to_string(),
        };
        let score = match entry.and_then(|e| e.score.zip(e.max)) {
            Some((score, max)) => format!("score {score}/{max}"),
            None => "not graded yet".to_string(),
        };
        let finished = progress.as_ref().is_some_and(|p| p.next.is_none())
            && entry
                .and_then(|e| e.score.zip(e.max))
                .is_some_and(|(score, max)| score == max);
        if current.is_none() && !finished {
            current = Some((index, progress.and_then(|p| p.next)));
        }
        rows.push((lab.id, lab.title, steps, score));
    }
    let mut out = String::new();
    for (index, (id, title, steps, score)) in rows.iter().enumerate() {
        let marker = if current.as_ref().is_some_and(|(at, _)| *at == index) {
            ">"
        } else {
            " "
        };
        out.push_str(&format!(
            "{marker} {id:<5} {steps:<12} {score:<16} {title}\n"
        ));
    }
    match current {
        Some((index, Some(step))) => out.push_str(&format!(
            "\n> you are at {}, next: {}\n  in {}:{}; stuck? cargo xtask hint {}\n",
            rows[index].0,
            step.title,
            step.file.display(),
            step.line,
            rows[index].0
        )),
        Some((index, None)) => out.push_str(&format!(
            "\n> you are at {}: every step is written; grade it: cargo xtask grade {}\n",
            rows[index].0, rows[index].0
        )),
        None => out.push_str("\nEvery lab is written and at full marks.\n"),
    }
    out
}
