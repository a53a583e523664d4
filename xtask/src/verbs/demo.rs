//! `cargo xtask demo`: the reference programs play a lab's session, narrating each call.

use std::path::Path;

use anyhow::bail;

use crate::{grade, labs};

/// Plays `which`'s demo; true when it ran to its end.
pub fn run(root: &Path, which: &str, step: bool) -> anyhow::Result<bool> {
    let lab = labs::find(which).ok_or_else(|| super::grade::unknown_lab(which, false))?;
    let Some(script) = lab.demo else {
        bail!("{} has no demo yet", lab.id);
    };
    grade::build(root, &[lab.package(true)], false)?;
    let bin = grade::target_dir(root)
        .join("debug")
        .join(lab.package(true));
    // Every line of a demo fits 100 columns (a projector): a long title gets its own.
    let header = format!("{}: {} (reference programs, narrated)", lab.id, lab.title);
    if header.chars().count() <= 100 {
        println!("{header}");
    } else {
        println!("{}: {}\n(reference programs, narrated)", lab.id, lab.title);
    }
    let mut demo = grade::demo::Demo::new(&[bin.display().to_string()])?;
    if step {
        demo.step_by_step();
    }
    script(&mut demo)?;
    drop(demo);
    println!("\n=== end of the {} demo", lab.id);
    Ok(true)
}
