//! `cargo xtask grade`: grade one lab or all, stream the report, say what to do next.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::grade::format::{self, Format, Progress};
use crate::grade::human::{Human, Style};
use crate::grade::result::{NextStep, Report, Steps};
use crate::grade::runner::{self, Plan};
use crate::grade::sandbox::Level;
use crate::grade::{self, Lab, process};
use crate::{class, labs, student};

/// Options of `cargo xtask grade`.
#[derive(clap::Args, Debug)]
pub struct GradeArgs {
    /// lab1 ... lab8, or `all`.
    lab: String,
    /// Grade the reference solution instead of your crate in labs/.
    #[arg(long, conflicts_with = "cmd")]
    solution: bool,
    /// Grade any program that honours the CLI contract, in any language, e.g.
    /// --cmd "python3 my_server.py". It is run as `CMD <role> --host H --port P ...`.
    #[arg(long)]
    cmd: Option<String>,
    /// Print the report as JSON (one object, or a list for `all`): `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// How to report: human (default), json, gradescope, junit, tap or github.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Grade a class: every subfolder of DIR is one student's submission (a copy of the
    /// lab crate, or a folder with an executable `run`). Needs --out.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["solution", "cmd"], requires = "out")]
    submissions: Option<PathBuf>,
    /// With --submissions: the folder for the gradebook, reports and summary. Otherwise:
    /// a file to write the report to instead of printing it.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Run only this check (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    only: Vec<String>,
    /// How many checks run at once (default: twice the cores; 1 runs them in turn).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// The most the whole run may take, in seconds: checks still running then are
    /// stopped and failed, those not started fail as "not run".
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    max_time: u64,
    /// How the programs under test are confined: strict (default for --cmd and
    /// --submissions: per check a private network with only lo, a PID namespace, a
    /// read-only file system but a capped scratch folder, and as root a uid of its own,
    /// capped files and processes), basic (default for your crate and --solution:
    /// the check's scratch folder as working directory, a scrubbed environment) or off.
    #[arg(long, value_enum, value_name = "LEVEL")]
    sandbox: Option<Level>,
    /// Show every failure in full, not only the first.
    #[arg(long, short)]
    verbose: bool,
}

/// Grades; true only at full marks.
pub fn run(root: &Path, args: GradeArgs) -> anyhow::Result<bool> {
    // A non-root grader gets what it can of strict in a user namespace of its own,
    // entered now, while it has a single thread (see grade::userns).
    let level = args
        .sandbox
        .unwrap_or(match args.cmd.is_some() || args.submissions.is_some() {
            true => Level::Strict,
            false => Level::Basic,
        });
    if level == Level::Strict {
        let _ = crate::grade::userns::enter();
    }
    let selected = select_labs(&args.lab)?;
    check_names(&selected, &args.only)?;
    if args.cmd.is_some() && selected.len() > 1 {
        bail!("--cmd grades one lab at a time: name the lab (e.g. lab3)");
    }
    if args.jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let format = match (args.json, args.format) {
        (true, _) => Format::Json,
        (false, format) => format.unwrap_or(Format::Human),
    };
    let jobs = args.jobs.unwrap_or_else(runner::default_jobs);
    if let Some(submissions) = &args.submissions {
        let [lab] = selected[..] else {
            bail!("--submissions grades one lab at a time: name the lab (e.g. lab3)");
        };
        let out = args.out.as_deref().expect("clap requires --out");
        let class = class::Class {
            lab,
            submissions,
            out,
            format,
            only: &args.only,
            jobs,
            sandbox: args.sandbox.unwrap_or(Level::Strict),
        };
        return class::run(root, &class, &mut io::stdout().lock());
    }
    let mut plans = Vec::new();
    match &args.cmd {
        Some(cmd) => {
            let argv = shlex::split(cmd).filter(|a| !a.is_empty()).ok_or_else(|| {
                anyhow!("--cmd {cmd:?} is not a valid command line (check the quotes)")
            })?;
            preflight(&argv[0])?;
            let level = args.sandbox.unwrap_or(Level::Strict);
            plans.push(Plan::new(selected[0], argv, &args.only).with_sandbox(level));
        }
        None => {
            let packages: Vec<String> = selected.iter().map(|l| l.package(args.solution)).collect();
            if let Err(error) = grade::build(root, &packages, false) {
                if format == Format::Human && args.out.is_none() {
                    return Err(error);
                }
                // A machine reader still gets a report: zero, saying why.
                eprintln!("xtask: error: {error:#}");
                let why = class::submissions::NotGradable {
                    reason: "does not compile (cargo build failed: its errors are in the log)"
                        .into(),
                    source: String::new(),
                    lines: Vec::new(),
                };
                let reports: Vec<Report> = selected
                    .iter()
                    .map(|lab| class::not_gradable_report(lab, &args.only, "your crate", &why))
                    .collect();
                emit(&reports, format, args.out.as_deref())?;
                return Ok(false);
            }
            for lab in &selected {
                let bin = grade::target_dir(root)
                    .join("debug")
                    .join(lab.package(args.solution));
                let level = args.sandbox.unwrap_or(Level::Basic);
                let mut plan =
                    Plan::new(lab, vec![bin.display().to_string()], &args.only).with_sandbox(level);
                plan.shown = format!("cargo run -q -p {} --", lab.package(args.solution));
                if !args.solution {
                    plan.steps = steps(root, lab);
                }
                plans.push(plan);
            }
        }
    }
    let limit = Duration::from_secs(args.max_time);
    if format != Format::Human || args.out.is_some() {
        return machine(&plans, jobs, limit, format, args.out.as_deref());
    }
    let reports = {
        let mut human = Human::new(io::stdout().lock(), Style::detect(), args.verbose);
        let reports = runner::run_within(&plans, jobs, Some(limit), &mut |event| {
            // Once interrupted, a check that ends was cut short by the cleanup: its
            // "killed by SIGKILL" is not the student's verdict.
            if !process::interrupted() {
                quiet_on_broken_pipe(human.event(event))
            }
        });
        let next_lab = next_lab(&selected);
        quiet_on_broken_pipe(human.next_step(&reports, next_lab));
        reports
    };
    // The student's own crate, graded whole: remember the score for `list` and `hint`.
    if args.cmd.is_none() && !args.solution && args.only.is_empty() {
        for (lab, report) in selected.iter().zip(&reports) {
            let progress = student::progress::scan(root, lab).ok();
            student::state::record_grade(
                root,
                lab.id,
                report.score,
                report.max_score,
                progress.as_ref(),
            );
        }
    }
    Ok(reports.iter().all(Report::full_marks))
}

/// Grades quietly and prints (or writes to `out`) the report in a machine format. With
/// `out`, the file is rewritten after every check: a run cut short keeps what finished.
fn machine(
    plans: &[Plan],
    jobs: usize,
    limit: Duration,
    format: Format,
    out: Option<&Path>,
) -> anyhow::Result<bool> {
    let mut progress = Progress::default();
    let mut trouble = None;
    let reports = runner::run_within(plans, jobs, Some(limit), &mut |event| {
        // A check that ends once the grader is interrupted was cut short by the
        // cleanup: the file keeps what finished before.
        if !process::interrupted()
            && progress.event(&event)
            && let Some(path) = out
            && trouble.is_none()
        {
            let text = format::render(format, progress.reports(), None);
            trouble = format::write_atomically(path, &text).err();
        }
    });
    if let Some(trouble) = trouble {
        return Err(trouble);
    }
    emit(&reports, format, out)?;
    Ok(reports.iter().all(Report::full_marks))
}

/// Prints (or writes to `out`) finished reports; GitHub also gets its summary and
/// Classroom result.
fn emit(reports: &[Report], format: Format, out: Option<&Path>) -> anyhow::Result<()> {
    let text = format::render(format, reports, None);
    match out {
        Some(path) => format::write_atomically(path, &text)?,
        None => quiet_on_broken_pipe(io::stdout().write_all(text.as_bytes())),
    }
    if format == Format::Github {
        format::github::publish(reports)?;
    }
    Ok(())
}

/// A reader that went away (`grade lab1 | head`) is not an error: clean up, exit quietly.
fn quiet_on_broken_pipe(result: io::Result<()>) {
    if let Err(e) = result {
        process::shut_down();
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("xtask: error: cannot write the report: {e}");
        std::process::exit(2);
    }
}

/// The student's progress through the skeleton, if it can be read.
fn steps(root: &Path, lab: &Lab) -> Option<Steps> {
    let progress = student::progress::scan(root, lab).ok()?;
    Some(Steps {
        written: progress.written,
        total: progress.total,
        next: progress.next.map(|step| NextStep {
            number: step.number,
            title: step.title,
            place: format!("{}:{}", step.file.display(), step.line),
        }),
    })
}

/// The lab after the last one graded, for "on to the next lab".
fn next_lab(selected: &[&'static Lab]) -> Option<&'static str> {
    let all = labs::all();
    let last = selected.last()?;
    let at = all.iter().position(|l| l.id == last.id)?;
    all.get(at + 1).map(|l| l.id)
}

/// One clear error for a program that cannot be started at all, instead of one failure
/// per check.
fn preflight(program: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let found: Option<PathBuf> = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
    };
    let Some(path) = found else {
        bail!("--cmd: {program:?} is not a command on PATH");
    };
    let meta = std::fs::metadata(&path)
        .with_context(|| format!("--cmd: cannot run {}", path.display()))?;
    if meta.is_dir() {
        bail!("--cmd: {} is a folder, not a program", path.display());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        bail!(
            "--cmd: {} is not executable (chmod +x it, or name its interpreter: --cmd \"python3 {}\")",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// The labs `which` names: one lab, or `all`.
pub fn select_labs(which: &str) -> anyhow::Result<Vec<&'static Lab>> {
    let with_checks = |lab: &&Lab| !lab.checks().is_empty();
    if which == "all" {
        return Ok(labs::all().into_iter().filter(with_checks).collect());
    }
    let lab = labs::find(which).ok_or_else(|| unknown_lab(which, true))?;
    if lab.checks().is_empty() {
        bail!("{} has no checks yet", lab.id);
    }
    Ok(vec![lab])
}

/// Every `--check` name must exist in some selected lab.
fn check_names(selected: &[&'static Lab], only: &[String]) -> anyhow::Result<()> {
    for name in only {
        if !selected
            .iter()
            .any(|lab| lab.checks().iter().any(|c| c.name == name))
        {
            let known: Vec<&str> = selected
                .iter()
                .flat_map(|lab| lab.checks().iter().map(|c| c.name))
                .collect();
            let which = if selected.len() == 1 {
                selected[0].id
            } else {
                "any lab"
            };
            bail!(
                "unknown check {name:?} in {which}: choose one of {}",
                known.join(", ")
            );
        }
    }
    Ok(())
}

/// "unknown lab": lists the labs (and `all` where it is accepted).
pub fn unknown_lab(which: &str, all_allowed: bool) -> anyhow::Error {
    let known: Vec<&str> = labs::all().iter().map(|l| l.id).collect();
    let all = if all_allowed { " or all" } else { "" };
    anyhow!(
        "unknown lab {which:?}: choose one of {}{all}",
        known.join(", ")
    )
}
