//! `cargo xtask mutants`: proof that every check can fail.
//!
//! A mutant is the reference solution with a deliberate bug, written as small
//! find-and-replace edits in `xtask/mutants/<lab>.toml`:
//!
//! ```toml
//! [[mutant]]
//! name = "no-reuseaddr"
//! about = "forgets SO_REUSEADDR, so a restart fails while TIME_WAIT lingers"
//! fails = ["reuse-address"]
//! [[mutant.edit]]
//! file = "src/main.rs"          # optional; this is the default
//! find = ".set_reuse_address(true)"
//! replace = ".set_reuse_address(false)"
//! step = 2                      # optional: the fence the edit lies in
//! ```
//!
//! An edit that names its `step` (`step = 4`, `step = "client step 2"`, or a fence's
//! title without a number, `step = "stale check"`) must find its text exactly once
//! inside that step's fences (between `//- answer: step 4: ...` and `//- end`), so a
//! reworded comment elsewhere cannot silently break or move it. Without `step`, the text
//! must occur exactly once in the whole file (for code outside any fence).
//!
//! Deriving mutants from the solutions keeps one source of truth: when a solution
//! changes so that an edit no longer applies, this command says so. Each mutant is
//! built as a crate of its own (in `target/mutants/`), graded through `--cmd`, and must
//! fail exactly the checks in its `fails` list; every check of a lab must be in some
//! mutant's list. A wrong verdict is graded once more: wrong again fails the run, right
//! the second time is reported as a `FLIP` (a flaky check, printed for a maintainer to
//! fix) without failing it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;

use crate::grade::{self, Lab};
use crate::labs;

/// Options of `cargo xtask mutants`.
#[derive(clap::Args, Debug)]
pub struct MutantArgs {
    /// Labs to check (default: every lab with a mutant table).
    labs: Vec<String>,
    /// Only the mutant with this name.
    #[arg(long)]
    only: Option<String>,
    /// How many mutants to grade at once.
    /// (Grading is mostly waiting on programs, so more than the cores pays off.)
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// How many checks of one mutant run at once.
    #[arg(long, default_value_t = 4)]
    checks_jobs: usize,
}

#[derive(Deserialize)]
struct Table {
    mutant: Vec<Mutant>,
}

#[derive(Deserialize, Clone)]
struct Mutant {
    name: String,
    about: String,
    fails: Vec<String>,
    edit: Vec<Edit>,
}

#[derive(Deserialize, Clone)]
struct Edit {
    #[serde(default = "default_file")]
    file: String,
    find: String,
    replace: String,
    /// The step whose fences hold `find`; `None`: anywhere in the file.
    #[serde(default)]
    step: Option<StepName>,
}

/// How an edit names a step: `4` (main step 4) or a title's label: `"client step 2"`.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum StepName {
    Number(u32),
    Label(String),
}

impl StepName {
    /// The label a fence's title starts with: `step 4`, `client step 2`, `stale check`.
    fn label(&self) -> String {
        match self {
            StepName::Number(n) => format!("step {n}"),
            StepName::Label(label) => label.clone(),
        }
    }
}

fn default_file() -> String {
    "src/main.rs".into()
}

/// A mutant ready to build: which lab, what it is, where its crate goes.
struct Planned {
    lab: &'static Lab,
    mutant: Mutant,
    package: String,
}

/// Builds and grades the mutants; true when every one fails exactly its checks.
pub fn run(root: &Path, args: MutantArgs) -> anyhow::Result<bool> {
    let selected: Vec<&'static Lab> = if args.labs.is_empty() {
        labs::all()
            .into_iter()
            .filter(|lab| !lab.checks().is_empty())
            .collect()
    } else {
        args.labs
            .iter()
            .map(|id| labs::find(id).ok_or_else(|| anyhow!("unknown lab {id:?}")))
            .collect::<Result<_, _>>()?
    };
    // The mutant workspace always holds every mutant of every lab, so that runs for
    // different labs (even at the same time) agree on it; only the selection is built.
    let mut everything = Vec::new();
    let mut problems = Vec::new();
    for lab in labs::all()
        .into_iter()
        .filter(|lab| !lab.checks().is_empty())
    {
        let table = load_table(root, lab)?;
        if selected.iter().any(|chosen| chosen.id == lab.id) {
            problems.extend(coverage_problems(lab, &table));
        }
        for mutant in table {
            everything.push(Planned {
                lab,
                package: format!("{}-mutant-{}", lab.id, mutant.name),
                mutant,
            });
        }
    }
    let planned: Vec<&Planned> = everything
        .iter()
        .filter(|plan| selected.iter().any(|chosen| chosen.id == plan.lab.id))
        .filter(|plan| {
            args.only
                .as_ref()
                .is_none_or(|only| *only == plan.mutant.name)
        })
        .collect();
    let workspace = target_workspace(root);
    write_workspace(root, &workspace, &everything)?;

    // Building is CPU work and grading is mostly waiting on programs, so the two run
    // side by side: one thread builds lab after lab (the labs whose mutants take
    // longest to grade first), and the graders take each lab's mutants as soon as they
    // are built.
    let mut batches: Vec<Vec<&Planned>> = Vec::new();
    for lab in &selected {
        let batch: Vec<&Planned> = planned
            .iter()
            .copied()
            .filter(|plan| plan.lab.id == lab.id)
            .collect();
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    batches.sort_by_key(|batch| std::cmp::Reverse(grading_weight(batch[0].lab)));
    let (ready, built) = mpsc::channel::<&Planned>();
    let built = Mutex::new(built);
    let results = Mutex::new(Vec::new());
    let workspace_dir = workspace.as_path();
    let build_failure = std::thread::scope(|scope| {
        let builder = scope.spawn(move || {
            for batch in &batches {
                build(workspace_dir, batch)?;
                for plan in batch {
                    // The graders only stop reading when this side is gone.
                    let _ = ready.send(plan);
                }
            }
            anyhow::Ok(())
        });
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = built.lock().unwrap().recv();
                    let Ok(next) = next else { break };
                    let started = Instant::now();
                    let mut verdict = judge(&workspace, next, args.checks_jobs);
                    if !verdict.starts_with("ok") {
                        // Graded again once: a verdict that differs between two runs is
                        // a flaky check (a bug to fix, so it is printed as FLIP with the
                        // wrong run's details), not a mutant that behaves otherwise.
                        let again = judge(&workspace, next, args.checks_jobs);
                        verdict = if again.starts_with("ok") {
                            format!(
                                "FLIP  {}\n        graded again: {again}",
                                verdict.trim_start_matches("WRONG ")
                            )
                        } else {
                            again
                        };
                    }
                    let verdict = format!("{verdict} [{:.1} s]", started.elapsed().as_secs_f64());
                    println!("{verdict}");
                    results.lock().unwrap().push(verdict);
                }
            });
        }
        builder.join().expect("the mutant builder panicked").err()
    });
    if let Some(failure) = build_failure {
        return Err(failure);
    }
    let results = results.into_inner().unwrap();
    let wrong: Vec<&String> = results.iter().filter(|v| v.starts_with("WRONG")).collect();
    let flipped = results.iter().filter(|v| v.starts_with("FLIP")).count();
    for problem in &problems {
        println!("MISSING {problem}");
    }
    println!(
        "\n{} mutants: {} behave as declared, {} do not, {flipped} flipped (wrong once, right when \
         graded again: a flaky check to fix); {} coverage problem(s)",
        results.len(),
        results.len() - wrong.len() - flipped,
        wrong.len(),
        problems.len()
    );
    Ok(wrong.is_empty() && problems.is_empty())
}

/// Builds every mutant of `lab` (for the class benchmark); returns (name, binary).
pub fn build_lab(root: &Path, lab: &'static Lab) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut everything = Vec::new();
    for each in labs::all().into_iter().filter(|l| !l.checks().is_empty()) {
        for mutant in load_table(root, each)? {
            everything.push(Planned {
                lab: each,
                package: format!("{}-mutant-{}", each.id, mutant.name),
                mutant,
            });
        }
    }
    let workspace = target_workspace(root);
    write_workspace(root, &workspace, &everything)?;
    let mine: Vec<&Planned> = everything.iter().filter(|p| p.lab.id == lab.id).collect();
    build(&workspace, &mine)?;
    Ok(mine
        .iter()
        .map(|p| {
            let binary = workspace.join("target/debug").join(&p.package);
            (p.mutant.name.clone(), binary)
        })
        .collect())
}

fn load_table(root: &Path, lab: &Lab) -> anyhow::Result<Vec<Mutant>> {
    let path = root.join("xtask/mutants").join(format!("{}.toml", lab.id));
    let text = fs::read_to_string(&path).map_err(|e| {
        anyhow!(
            "{}: {e} (every lab with checks needs mutants)",
            path.display()
        )
    })?;
    let table: Table = toml::from_str(&text).with_context(|| path.display().to_string())?;
    for mutant in &table.mutant {
        for name in &mutant.fails {
            if !lab.checks().iter().any(|c| c.name == name) {
                bail!(
                    "{}: mutant {} names an unknown check {name:?}",
                    path.display(),
                    mutant.name
                );
            }
        }
    }
    Ok(table.mutant)
}

/// Checks that no mutant fails (they could not be proven able to fail).
fn coverage_problems(lab: &Lab, table: &[Mutant]) -> Vec<String> {
    lab.checks()
        .iter()
        .filter(|check| {
            !table
                .iter()
                .any(|m| m.fails.iter().any(|f| f == check.name))
        })
        .map(|check| format!("{} {}: no mutant fails this check", lab.id, check.name))
        .collect()
}

/// Roughly how long one mutant of `lab` takes to grade (its checks' budgets), so the
/// slowest labs are built and started first.
fn grading_weight(lab: &Lab) -> u64 {
    lab.checks()
        .iter()
        .map(|check| check.budget.as_secs())
        .sum()
}

fn target_workspace(root: &Path) -> PathBuf {
    grade::target_dir(root).join("mutants")
}

/// Writes a small workspace holding one crate per mutant, each a copy of the lab's
/// solution with the mutant's edits applied.
fn write_workspace(root: &Path, workspace: &Path, planned: &[Planned]) -> anyhow::Result<()> {
    let manifest_text = fs::read_to_string(root.join("Cargo.toml"))?;
    let mut manifest: toml::Table = toml::from_str(&manifest_text)?;
    let ws = manifest
        .get_mut("workspace")
        .and_then(|w| w.as_table_mut())
        .context("the root Cargo.toml has no [workspace]")?;
    let members: Vec<toml::Value> = planned.iter().map(|p| p.package.clone().into()).collect();
    ws.insert("members".into(), members.into());
    if let Some(shared) = ws
        .get_mut("dependencies")
        .and_then(|d| d.get_mut("shared"))
        .and_then(|s| s.as_table_mut())
    {
        shared.insert(
            "path".into(),
            root.join("shared").display().to_string().into(),
        );
    }
    // Mutants are built once and never debugged: without debug info or incremental
    // state the hundred-odd builds compile and link faster.
    let mut dev = toml::Table::new();
    dev.insert("debug".into(), false.into());
    dev.insert("incremental".into(), false.into());
    let mut profile = toml::Table::new();
    profile.insert("dev".into(), dev.into());
    manifest.insert("profile".into(), profile.into());
    fs::create_dir_all(workspace)?;
    let lock = workspace.join("Cargo.lock");
    if !lock.exists() {
        let _ = fs::copy(root.join("Cargo.lock"), &lock);
    }
    write_if_changed(&workspace.join("Cargo.toml"), &toml::to_string(&manifest)?)?;
    for plan in planned {
        let solution = root
            .join("solutions")
            .join(format!("{}-{}", plan.lab.id, plan.lab.slug));
        let dir = workspace.join(&plan.package);
        let cargo_toml = fs::read_to_string(solution.join("Cargo.toml"))?;
        let renamed = cargo_toml.replace(
            &format!("\"{}-solution\"", plan.lab.id),
            &format!("\"{}\"", plan.package),
        );
        write_if_changed(&dir.join("Cargo.toml"), &renamed)?;
        // The mutant's sources are made in memory (the solution's, then the edits) and
        // only written where they differ, so a second run (even one at the same time,
        // for another lab) rewrites nothing and cargo rebuilds nothing.
        let mut sources = BTreeMap::new();
        read_sources(&solution, Path::new("src"), &mut sources)?;
        for edit in &plan.mutant.edit {
            let text = sources
                .get_mut(Path::new(&edit.file))
                .ok_or_else(|| anyhow!("mutant {}: no file {}", plan.mutant.name, edit.file))?;
            *text = apply(text, edit).map_err(|e| {
                anyhow!(
                    "mutant {} of {}: {e:#} (did the solution change?):\n{}",
                    plan.mutant.name,
                    plan.lab.id,
                    edit.find
                )
            })?;
        }
        for (path, text) in &sources {
            write_if_changed(&dir.join(path), text)?;
        }
    }
    Ok(())
}

/// Why a mutant's edit cannot be made: the table and the solution no longer agree.
/// Typed so that the tests can tell the three ways apart.
#[derive(Debug, PartialEq, Eq)]
enum EditError {
    /// The edit names a step that has no fence in the file.
    NoFence { file: String, step: String },
    /// The edit's text lies in a fence but the edit does not name that fence's step.
    InsideUnnamedFence { title: String, file: String },
    /// The edit's text is not found exactly once where it looks.
    NotExactlyOnce { count: usize, place: String },
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::NoFence { file, step } => write!(f, "{file} has no fence for {step:?}"),
            EditError::InsideUnnamedFence { title, file } => write!(
                f,
                "the text to find lies inside the fence {title:?} of {file}: name it with \
                 `step = ...`"
            ),
            EditError::NotExactlyOnce { count, place } => write!(
                f,
                "the text to find occurs {count} times in {place} (must be exactly once)"
            ),
        }
    }
}

impl std::error::Error for EditError {}

/// `text` with the edit made: its `find` must occur exactly once in the file or, when it
/// names a step, exactly once inside that step's fences.
fn apply(text: &str, edit: &Edit) -> Result<String, EditError> {
    let spans = match &edit.step {
        None => std::iter::once(0..text.len()).collect(),
        Some(step) => {
            let spans = fence_spans(text, &step.label());
            if spans.is_empty() {
                return Err(EditError::NoFence {
                    file: edit.file.clone(),
                    step: step.label(),
                });
            }
            spans
        }
    };
    let found: Vec<usize> = spans
        .iter()
        .flat_map(|span| {
            text[span.clone()]
                .match_indices(&edit.find)
                .map(move |(at, _)| span.start + at)
        })
        .collect();
    let place = match &edit.step {
        None => edit.file.clone(),
        Some(step) => format!("the fences of {:?} in {}", step.label(), edit.file),
    };
    if let ([at], None) = (&found[..], &edit.step) {
        // Text inside a fence must be found by its step, so that no other text can move it.
        if let Some(title) = fence_holding(text, *at..*at + edit.find.len()) {
            return Err(EditError::InsideUnnamedFence {
                title,
                file: edit.file.clone(),
            });
        }
    }
    match found[..] {
        [at] => Ok(format!(
            "{}{}{}",
            &text[..at],
            edit.replace,
            &text[at + edit.find.len()..]
        )),
        _ => Err(EditError::NotExactlyOnce {
            count: found.len(),
            place,
        }),
    }
}

/// The title of the fence whose code holds all of `range`, if any.
fn fence_holding(text: &str, range: std::ops::Range<usize>) -> Option<String> {
    let mut open: Option<(String, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(title) = trimmed.strip_prefix("//- answer:") {
            open = Some((title.trim().to_string(), offset + line.len()));
        } else if trimmed.starts_with("//- end")
            && let Some((title, start)) = open.take()
            && start <= range.start
            && range.end <= offset
        {
            return Some(title);
        }
        offset += line.len();
    }
    None
}

/// The byte ranges of the code inside the fences whose title is `label` or starts with
/// `label:` (from the line after `//- answer:` up to the `//- end` line).
fn fence_spans(text: &str, label: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut open: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(title) = trimmed.strip_prefix("//- answer:") {
            let title = title.trim();
            let named = title == label
                || title
                    .strip_prefix(label)
                    .is_some_and(|rest| rest.starts_with(':'));
            open = named.then_some(offset + line.len());
        } else if trimmed.starts_with("//- end")
            && let Some(start) = open.take()
        {
            spans.push(start..offset);
        }
        offset += line.len();
    }
    spans
}

/// Reads every file below `root/relative` into `into`, keyed by its path from `root`.
fn read_sources(
    root: &Path,
    relative: &Path,
    into: &mut BTreeMap<PathBuf, String>,
) -> anyhow::Result<()> {
    let folder = root.join(relative);
    for entry in fs::read_dir(&folder).with_context(|| folder.display().to_string())? {
        let name = relative.join(entry?.file_name());
        let path = root.join(&name);
        if path.is_dir() {
            read_sources(root, &name, into)?;
        } else {
            let text = fs::read_to_string(&path).with_context(|| path.display().to_string())?;
            into.insert(name, text);
        }
    }
    Ok(())
}

/// Leaves unchanged files alone, so cargo does not rebuild what has not changed. A
/// changed file is written beside and renamed into place, so a cargo build running at
/// the same time never reads half of it.
fn write_if_changed(path: &Path, contents: &str) -> anyhow::Result<()> {
    if fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    let folder = path.parent().unwrap();
    fs::create_dir_all(folder)?;
    crate::grade::files::replace_atomically(path, contents.as_bytes())
        .with_context(|| path.display().to_string())
}

fn build(workspace: &Path, planned: &[&Planned]) -> anyhow::Result<()> {
    if planned.is_empty() {
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--quiet", "--manifest-path", "Cargo.toml"])
        // Mutants are meant to be buggy; their warnings are noise here.
        .env("RUSTFLAGS", "--cap-lints=allow")
        // The binaries are looked for in the mutant workspace's own target folder: a
        // CARGO_TARGET_DIR of the caller's would send them elsewhere.
        .env_remove("CARGO_TARGET_DIR");
    for plan in planned {
        command.args(["-p", &plan.package]);
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("a mutant does not compile (see above): fix its edits");
    }
    Ok(())
}

/// Grades one mutant and says whether it failed exactly the checks it declares.
fn judge(workspace: &Path, plan: &Planned, jobs: usize) -> String {
    let binary = workspace.join("target/debug").join(&plan.package);
    let label = format!("{} {}", plan.lab.id, plan.mutant.name);
    let report = grade::grade(plan.lab, &[binary.display().to_string()], &[], jobs);
    let failed: BTreeSet<String> = report.failed().into_iter().collect();
    // A check this machine cannot run (no namespaces) cannot be failed here either.
    let untestable = report.untestable();
    let declared: BTreeSet<String> = plan
        .mutant
        .fails
        .iter()
        .filter(|name| !untestable.contains(name))
        .cloned()
        .collect();
    if failed == declared {
        format!(
            "ok    {label} ({}) fails {}",
            plan.mutant.about,
            join(&failed)
        )
    } else {
        let details: Vec<String> = report
            .checks
            .iter()
            .filter(|c| failed.symmetric_difference(&declared).any(|n| *n == c.name))
            .map(|c| {
                let first = c.message.lines().next().unwrap_or("passed");
                // The program's own last words say why an unexpected failure happened
                // (a flip seen once in a long run cannot be asked again).
                let last_words = c
                    .failure
                    .iter()
                    .flat_map(|f| &f.stderr)
                    .filter_map(|(label, lines)| {
                        Some(format!("\n          {label} said: {}", lines.last()?))
                    })
                    .collect::<String>();
                format!("        {}: {first}{last_words}", c.name)
            })
            .collect();
        format!(
            "WRONG {label}: declared to fail {}, but failed {}\n{}",
            join(&declared),
            join(&failed),
            details.join("\n")
        )
    }
}

fn join(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOLUTION: &str = "// listen(backlog) is explained here\nfn a() {\n    //- answer: step 4: listen\n    //- hint: h\n    //- more: m\n    socket.listen(backlog)?;\n    //- end\n}\nfn b() {\n    //- answer: client step 4: listen too\n    //- hint: h\n    //- more: m\n    socket.listen(backlog)?;\n    //- end\n}\n";

    fn edit(find: &str, step: Option<StepName>) -> Edit {
        Edit {
            file: "src/main.rs".into(),
            find: find.into(),
            replace: "socket.listen(1)?".into(),
            step,
        }
    }

    #[test]
    fn a_step_scoped_find_counts_only_inside_that_steps_fences() {
        // Text inside a fence must name its step; text across a fence's end need not.
        let seven = SOLUTION.replacen("socket.listen(backlog)?", "socket.listen(7)?", 1);
        let unnamed = apply(&seven, &edit("socket.listen(7)?", None));
        assert!(matches!(
            unnamed.unwrap_err(),
            EditError::InsideUnnamedFence { title, .. } if title.starts_with("step 4")
        ));
        let across = edit("listen(7)?;\n    //- end\n}\nfn b", None);
        assert!(apply(&seven, &across).is_ok());
        // File-wide, the text occurs twice: ambiguous.
        let anywhere = apply(SOLUTION, &edit("socket.listen(backlog)?", None));
        assert!(matches!(
            anywhere.unwrap_err(),
            EditError::NotExactlyOnce { count: 2, .. }
        ));
        // In step 4's fence it occurs once; the client's fence is left alone.
        let main = apply(
            SOLUTION,
            &edit("socket.listen(backlog)?", Some(StepName::Number(4))),
        );
        let main = main.unwrap();
        assert!(main.contains("    socket.listen(1)?;\n    //- end\n}\nfn b"));
        assert_eq!(main.matches("socket.listen(backlog)?").count(), 1);
        let client = edit(
            "socket.listen(backlog)?",
            Some(StepName::Label("client step 4".into())),
        );
        assert!(
            apply(SOLUTION, &client)
                .unwrap()
                .ends_with("socket.listen(1)?;\n    //- end\n}\n")
        );
        // Text outside the fence (a comment) is not found in the step, however worded.
        let comment = edit("listen(backlog) is explained", Some(StepName::Number(4)));
        assert!(matches!(
            apply(SOLUTION, &comment).unwrap_err(),
            EditError::NotExactlyOnce { count: 0, .. }
        ));
        // A step with no fence is named in the error.
        let missing = edit("x", Some(StepName::Number(9)));
        let error = apply(SOLUTION, &missing).unwrap_err();
        assert_eq!(
            error,
            EditError::NoFence {
                file: "src/main.rs".into(),
                step: "step 9".into()
            }
        );
        assert!(error.to_string().contains("no fence"));
    }

    #[test]
    fn steps_are_named_by_number_or_label() {
        let table: Table = toml::from_str(
            "[[mutant]]\nname = \"m\"\nabout = \"a\"\nfails = []\n[[mutant.edit]]\nfind = \"f\"\nreplace = \"r\"\nstep = 3\n[[mutant.edit]]\nfind = \"f\"\nreplace = \"r\"\nstep = \"client step 2\"\n",
        )
        .unwrap();
        let labels: Vec<String> = table.mutant[0]
            .edit
            .iter()
            .map(|e| e.step.as_ref().unwrap().label())
            .collect();
        assert_eq!(labels, ["step 3", "client step 2"]);
    }
}
