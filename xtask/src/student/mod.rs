//! The student loop: where you are in a lab, hints on request, a list of every lab,
//! a safe reset, and a watch mode that re-grades on every save.
//!
//! - `progress`: which steps are written and which `todo!` comes next.
//! - `state`: `.socklab/state.json`, what the loop remembers across runs.
//! - `hint`, `list`, `reset`, `watch`: the `cargo xtask` verbs of the same names.

pub mod hint;
pub mod list;
pub mod progress;
pub mod reset;
pub mod state;
pub mod watch;

use anyhow::anyhow;

use crate::grade::Lab;
/// The lab called `id` (`lab1`), or a one-line error naming the labs there are.
pub fn find_lab(id: &str) -> anyhow::Result<&'static Lab> {
    crate::labs::find(id).ok_or_else(|| {
        let known: Vec<&str> = crate::labs::all().iter().map(|l| l.id).collect();
        anyhow!("unknown lab {id:?}: choose one of {}", known.join(", "))
    })
}

/// Wraps `text` into lines of at most `width` characters, each starting with `indent`.
pub(crate) fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}
