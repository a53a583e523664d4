//! `cargo xtask bench-class lab1 --submissions N`: how much faster a class grades in
//! parallel, and proof that it changes no verdict.
//!
//! Makes a class of N submissions cycling through the reference, every mutant of the
//! lab and the skeleton (each a `run` that execs a prebuilt binary, so nothing is built
//! while timing), grades it once with `--jobs 1` and once with the default (or
//! `--jobs`), in one run, and reports both times, the speed-up and every verdict that
//! differs between the two. A benchmark, not a test: the figures depend on the machine.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{Class, Graded};
use crate::grade::format::Format;
use crate::grade::runner;
use crate::verbs::grade::select_labs;

/// Options of `cargo xtask bench-class`.
#[derive(clap::Args, Debug)]
pub struct BenchClassArgs {
    /// lab1 ... lab8.
    lab: String,
    /// How many submissions the class has.
    #[arg(long, default_value_t = 40)]
    submissions: usize,
    /// Checks at once in a parallel run (repeatable: one run each; default: the
    /// grader's default).
    #[arg(long)]
    jobs: Vec<usize>,
}

pub fn run(root: &Path, args: BenchClassArgs) -> anyhow::Result<bool> {
    if args.lab == "all" {
        bail!("bench-class takes one lab (e.g. lab1)");
    }
    let lab = select_labs(&args.lab)?[0];
    if args.submissions == 0 || args.jobs.contains(&0) {
        bail!("--submissions and --jobs must be at least 1");
    }
    let mut parallel_jobs = args.jobs.clone();
    if parallel_jobs.is_empty() {
        parallel_jobs.push(runner::default_jobs());
    }
    println!(
        "building the reference, the skeleton and the mutants of {} ...",
        lab.id
    );
    crate::grade::build(root, &[lab.package(true), lab.package(false)], false)?;
    let bin = crate::grade::target_dir(root).join("debug");
    let mut kinds: Vec<(String, PathBuf)> = vec![
        ("reference".into(), bin.join(lab.package(true))),
        ("skeleton".into(), bin.join(lab.package(false))),
    ];
    kinds.extend(
        crate::mutants::build_lab(root, lab)?
            .into_iter()
            .map(|(name, path)| (format!("mutant-{name}"), path)),
    );
    let scratch = crate::grade::files::Scratch::new("socklab-bench-class-")
        .context("cannot make a scratch folder")?;
    let submissions = scratch.path().join("submissions");
    for i in 0..args.submissions {
        let (kind, binary) = &kinds[i % kinds.len()];
        let run = submissions.join(format!("s{i:03}-{kind}")).join("run");
        fs::create_dir_all(run.parent().unwrap())?;
        let script = format!("#!/bin/sh\nexec '{}' \"$@\"\n", binary.display());
        fs::write(&run, script)
            .and_then(|()| fs::set_permissions(&run, fs::Permissions::from_mode(0o755)))?;
    }
    let checks = lab.checks().len() * args.submissions;
    println!(
        "{} submissions ({} kinds: reference, skeleton, {} mutants), {checks} checks",
        args.submissions,
        kinds.len(),
        kinds.len() - 2
    );
    let grade = |jobs: usize, name: &str| -> anyhow::Result<(Vec<Graded>, f64)> {
        let out = scratch.path().join(name);
        let class = Class {
            lab,
            submissions: &submissions,
            out: &out,
            format: Format::Json,
            only: &[],
            jobs,
            sandbox: crate::grade::sandbox::Level::Strict,
        };
        let (graded, took) = super::grade(root, &class, &mut io::sink())?;
        println!("  --jobs {jobs:<3} {:>7.1} s", took.as_secs_f64());
        Ok((graded, took.as_secs_f64()))
    };
    let (serial, serial_secs) = grade(1, "serial")?;
    let mut differ = Vec::new();
    let mut figures = Vec::new();
    for jobs in parallel_jobs {
        let (parallel, parallel_secs) = grade(jobs, &format!("jobs-{jobs}"))?;
        for (one, other) in serial.iter().zip(&parallel) {
            for (a, b) in one.report.checks.iter().zip(&other.report.checks) {
                if a.passed != b.passed {
                    differ.push(format!(
                        "{} {}: --jobs 1 {}, --jobs {jobs} {}",
                        one.student,
                        a.name,
                        verdict(a.passed),
                        verdict(b.passed)
                    ));
                }
            }
        }
        figures.push(format!(
            "--jobs {jobs}: {:.2}x faster than --jobs 1",
            serial_secs / parallel_secs
        ));
    }
    println!(
        "speed-up: {}; verdicts that differ from --jobs 1: {}",
        figures.join(", "),
        differ.len()
    );
    for line in &differ {
        println!("  DIFFERS {line}");
    }
    Ok(differ.is_empty())
}

fn verdict(passed: bool) -> &'static str {
    if passed { "passed" } else { "failed" }
}
