//! How far a student's skeleton is: the steps still marked `todo!("step N: ...")`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::grade::Lab;

/// One unwritten step of a skeleton.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub number: u32,
    pub title: String,
    /// Relative to the workspace root.
    pub file: PathBuf,
    /// 1-based line of the `todo!`.
    pub line: usize,
}

/// Steps written out of all steps, and the first one still to write.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub written: usize,
    pub total: usize,
    pub next: Option<Step>,
}

/// Reads the lab's skeleton (`labs/<id>-<slug>`) against its solution's fences.
pub fn scan(root: &Path, lab: &Lab) -> Result<Progress, String> {
    let folder = format!("{}-{}", lab.id, lab.slug);
    let total = rust_files(&root.join("solutions").join(&folder).join("src"))?
        .iter()
        .map(|path| {
            fs::read_to_string(path)
                .map(|text| text.matches("//- answer: step ").count())
                .unwrap_or(0)
        })
        .sum();
    let mut todo = Vec::new();
    for path in rust_files(&root.join("labs").join(&folder).join("src"))? {
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (index, line) in text.lines().enumerate() {
            let Some(at) = line.find("todo!(\"step ") else {
                continue;
            };
            let rest = &line[at + "todo!(\"".len()..];
            let rest = rest.split('"').next().unwrap_or("");
            let Some((number, title)) = rest.strip_prefix("step ").and_then(|r| r.split_once(": "))
            else {
                continue;
            };
            let Ok(number) = number.parse() else { continue };
            todo.push(Step {
                number,
                title: title.to_string(),
                file: path.strip_prefix(root).unwrap_or(&path).to_path_buf(),
                line: index + 1,
            });
        }
    }
    todo.sort_by_key(|s| s.number);
    Ok(Progress {
        written: total - todo.len().min(total),
        total,
        next: todo.into_iter().next(),
    })
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
