//! Where a student stands in a lab: how many answers are written and which `todo!`
//! comes next, read from `labs/` and counted against the fences in `solutions/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::grade::serial::serialize_fields;
use anyhow::Context;

use crate::grade::Lab;
use crate::skeletons::{self, Fence};

/// One step still to write: a `todo!("step N: ...")` in the student's crate.
#[derive(Debug, Clone)]
pub struct Step {
    /// N of `step N:`; a todo without a number takes the nearest numbered one's.
    pub number: u32,
    /// The whole todo message: `step 5: accept the next client on `listener``.
    pub title: String,
    /// The file, relative to the workspace root: `labs/lab1-tcp-server/src/main.rs`.
    pub file: PathBuf,
    /// 1-based line of the `todo!`.
    pub line: usize,
}
serialize_fields!(Step {
    number,
    title,
    file,
    line
});

/// How far a lab is: steps written out of all, and the next one to write.
#[derive(Debug, Clone)]
pub struct Progress {
    pub written: usize,
    pub total: usize,
    pub next: Option<Step>,
}
serialize_fields!(Progress {
    written,
    total,
    next
});

/// The lab's folder name under `labs/` and `solutions/`: `lab1-tcp-server`.
pub fn folder(lab: &Lab) -> String {
    format!("{}-{}", lab.id, lab.slug)
}

/// Every fence of the lab's solution, with the source file relative to its crate
/// (`src/main.rs`).
pub fn solution_fences(root: &Path, lab: &Lab) -> anyhow::Result<Vec<(PathBuf, Fence)>> {
    let crate_dir = root.join("solutions").join(folder(lab));
    let mut out = Vec::new();
    for file in skeletons::rust_files(&crate_dir.join("src"))? {
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let relative = file.strip_prefix(&crate_dir).unwrap_or(&file).to_path_buf();
        for fence in skeletons::fences(&text).with_context(|| file.display().to_string())? {
            out.push((relative.clone(), fence));
        }
    }
    Ok(out)
}

/// Counts the written steps of `lab` and finds the next one.
pub fn scan(root: &Path, lab: &Lab) -> anyhow::Result<Progress> {
    let fences = solution_fences(root, lab)?;
    let total = fences.len();
    let lab_dir = root.join("labs").join(folder(lab));
    let mut left: Vec<(u32, Step)> = Vec::new(); // (0 for main steps, 1 for "client step")
    let sources = lab_dir.join("src");
    let files = if sources.is_dir() {
        skeletons::rust_files(&sources)?
    } else {
        Vec::new()
    };
    for file in files {
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let in_crate = file.strip_prefix(&lab_dir).unwrap_or(&file).to_path_buf();
        for (line, title) in todos(&text) {
            // Only the todo!s the generator wrote count; a student's own todo!("later")
            // is not a step of the lab.
            if !fences.iter().any(|(_, fence)| fence.title == title) {
                continue;
            }
            let (group, number) = match step_number(&title) {
                Some((prefixed, n)) => (u32::from(prefixed), n),
                None => (0, inherited_number(&fences, &in_crate, &title)),
            };
            let relative = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
            left.push((
                group,
                Step {
                    number,
                    title,
                    file: relative,
                    line,
                },
            ));
        }
    }
    let remaining = left.len();
    let next = left
        .into_iter()
        .min_by(|(ga, a), (gb, b)| {
            (ga, a.number, &a.file, a.line).cmp(&(gb, b.number, &b.file, b.line))
        })
        .map(|(_, step)| step);
    Ok(Progress {
        written: total.saturating_sub(remaining),
        total,
        next,
    })
}

/// Every `todo!("message")` in a source file: (1-based line of the `todo!`, message).
/// rustfmt may put a long message on the line after `todo!(`; commented-out ones
/// do not count.
pub fn todos(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("todo!(").map(|i| from + i) {
        from = at + 6;
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..at].contains("//") {
            continue;
        }
        let rest = text[from..].trim_start();
        let Some(literal) = rest.strip_prefix('"') else {
            continue;
        };
        let mut message = String::new();
        let mut chars = literal.chars();
        let mut closed = false;
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => message.extend(chars.next()),
                '"' => {
                    closed = true;
                    break;
                }
                other => message.push(other),
            }
        }
        if closed {
            found.push((text[..at].matches('\n').count() + 1, message));
        }
    }
    found
}

/// `step 5: ...` is (false, 5); `client step 2: ...` is (true, 2).
pub(crate) fn step_number(title: &str) -> Option<(bool, u32)> {
    let at = title.find("step ")?;
    let digits: String = title[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if !title[at + 5 + digits.len()..].starts_with(':') {
        return None;
    }
    Some((at > 0, digits.parse().ok()?))
}

/// A fence with no number belongs to the numbered step next to it in the same file
/// (the one after it, else the one before): `build the sockaddr_un` goes with bind().
pub(crate) fn inherited_number(fences: &[(PathBuf, Fence)], file: &Path, title: &str) -> u32 {
    let same_file: Vec<&Fence> = fences
        .iter()
        .filter(|(f, _)| f == file)
        .map(|(_, fence)| fence)
        .collect();
    let Some(at) = same_file.iter().position(|f| f.title == title) else {
        return 0;
    };
    let number = |f: &&Fence| step_number(&f.title).map(|(_, n)| n);
    same_file[at..]
        .iter()
        .find_map(number)
        .or_else(|| same_file[..at].iter().rev().find_map(number))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn todo_messages_and_step_numbers_are_read() {
        let text = "a\n    todo!(\"step 5: accept `x` \\\"now\\\"\");\n// todo!(\"step 1: a\")\n    todo!(\n        \"step 2: b\"\n    );\n";
        assert_eq!(
            todos(text),
            [
                (2, "step 5: accept `x` \"now\"".to_string()),
                (4, "step 2: b".to_string())
            ]
        );
        assert_eq!(step_number("step 12: x"), Some((false, 12)));
        assert_eq!(step_number("client step 3: x"), Some((true, 3)));
        assert_eq!(step_number("stale check: x"), None);
    }

    #[test]
    fn every_skeleton_has_every_step_left() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for lab in crate::labs::all() {
            let progress = scan(root, lab).unwrap();
            assert_eq!(
                progress.written, 0,
                "{}: a todo! was not recognised",
                lab.id
            );
            assert!(progress.total > 0 && progress.next.is_some(), "{}", lab.id);
        }
        let progress = scan(root, crate::labs::find("lab1").unwrap()).unwrap();
        assert_eq!((progress.written, progress.total), (0, 9));
        let next = progress.next.unwrap();
        assert_eq!(next.number, 1);
        assert_eq!(next.file, Path::new("labs/lab1-tcp-server/src/main.rs"));
    }
}
