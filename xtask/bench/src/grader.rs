//! `cargo xtask bench --grader`: how much the concurrent runner saves, measured.
//!
//! In one run, side by side: `grade all --solution` with `--jobs 1` and with the default,
//! checking that every verdict is the same; then `grade lab3 --solution` against its
//! slowest check run alone. The grader is driven as a separate process (the debug xtask
//! students use), so the figures are what a student waits for.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// One timed `cargo xtask grade ... --json`: its reports and how long it took.
fn grade(root: &Path, args: &[&str]) -> anyhow::Result<(Vec<Value>, Duration)> {
    let xtask = root.join("target/debug/xtask");
    let started = Instant::now();
    let output = Command::new(&xtask)
        .current_dir(root)
        .args(["grade"])
        .args(args)
        .arg("--json")
        .output()
        .with_context(|| format!("cannot run {}", xtask.display()))?;
    let took = started.elapsed();
    let value: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("grade {args:?} printed no JSON"))?;
    let reports = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    Ok((reports, took))
}

/// (lab, check, passed) for every check, in order.
fn verdicts(reports: &[Value]) -> Vec<(String, String, bool)> {
    reports
        .iter()
        .flat_map(|r| {
            let lab = r["lab"].as_str().unwrap_or("").to_string();
            r["checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |c| {
                    (
                        lab.clone(),
                        c["name"].as_str().unwrap_or("").to_string(),
                        c["passed"].as_bool().unwrap_or(false),
                    )
                })
        })
        .collect()
}

/// Runs the comparison and prints it.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "--quiet", "-p", "xtask", "-p", "lab3-solution"])
        .args([
            "-p",
            "lab1-solution",
            "-p",
            "lab2-solution",
            "-p",
            "lab4-solution",
        ])
        .args([
            "-p",
            "lab5-solution",
            "-p",
            "lab6-solution",
            "-p",
            "lab7-solution",
        ])
        .args(["-p", "lab8-solution"])
        .status()
        .context("cannot run cargo")?;
    if !built.success() {
        bail!("the grader or a solution does not build");
    }
    let (serial, serial_time) = grade(root, &["all", "--solution", "--jobs", "1"])?;
    let (parallel, parallel_time) = grade(root, &["all", "--solution"])?;
    let a = verdicts(&serial);
    let b = verdicts(&parallel);
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len());
    println!("grade all --solution");
    println!("  --jobs 1        {:6.1} s", serial_time.as_secs_f64());
    println!("  default jobs    {:6.1} s", parallel_time.as_secs_f64());
    println!(
        "  speed-up        {:6.2}x   ({} verdicts, {differ} differ)",
        serial_time.as_secs_f64() / parallel_time.as_secs_f64(),
        a.len()
    );

    let (lab3, lab3_time) = grade(root, &["lab3", "--solution"])?;
    let mut slowest = (String::new(), Duration::ZERO);
    for (_, name, _) in verdicts(&lab3) {
        let (_, alone) = grade(root, &["lab3", "--solution", "--check", &name])?;
        if alone > slowest.1 {
            slowest = (name, alone);
        }
    }
    println!("grade lab3 --solution");
    println!("  all checks      {:6.1} s", lab3_time.as_secs_f64());
    println!(
        "  slowest alone   {:6.1} s   ({})",
        slowest.1.as_secs_f64(),
        slowest.0
    );
    println!(
        "  ratio           {:6.2}x",
        lab3_time.as_secs_f64() / slowest.1.as_secs_f64()
    );
    if differ > 0 {
        bail!("{differ} verdicts differ between --jobs 1 and the default");
    }
    Ok(())
}
