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
//! mutant's list.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    #[arg(long, default_value_t = 4)]
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
pub fn run(root: &Path, args: MutantArgs) -> Result<bool, String> {
    let selected: Vec<&'static Lab> = if args.labs.is_empty() {
        labs::all()
            .into_iter()
            .filter(|lab| !lab.checks.is_empty())
            .collect()
    } else {
        args.labs
            .iter()
            .map(|id| labs::find(id).ok_or_else(|| format!("unknown lab {id:?}")))
            .collect::<Result<_, _>>()?
    };
    // The mutant workspace always holds every mutant of every lab, so that runs for
    // different labs (even at the same time) agree on it; only the selection is built.
    let mut everything = Vec::new();
    let mut problems = Vec::new();
    for lab in labs::all().into_iter().filter(|lab| !lab.checks.is_empty()) {
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
    build(&workspace, &planned)?;

    let results = Mutex::new(Vec::new());
    let queue = Mutex::new(planned.clone());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                while let Some(next) = queue.lock().unwrap().pop() {
                    let verdict = judge(&workspace, next, args.checks_jobs);
                    println!("{verdict}");
                    results.lock().unwrap().push(verdict);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let wrong: Vec<&String> = results.iter().filter(|v| !v.starts_with("ok")).collect();
    for problem in &problems {
        println!("MISSING {problem}");
    }
    println!(
        "\n{} mutants: {} behave as declared, {} do not; {} coverage problem(s)",
        results.len(),
        results.len() - wrong.len(),
        wrong.len(),
        problems.len()
    );
    Ok(wrong.is_empty() && problems.is_empty())
}

/// Builds every mutant of `lab` (for the class benchmark); returns (name, binary).
pub fn build_lab(root: &Path, lab: &'static Lab) -> Result<Vec<(String, PathBuf)>, String> {
    let mut everything = Vec::new();
    for each in labs::all().into_iter().filter(|l| !l.checks.is_empty()) {
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

fn load_table(root: &Path, lab: &Lab) -> Result<Vec<Mutant>, String> {
    let path = root.join("xtask/mutants").join(format!("{}.toml", lab.id));
    let text = fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (every lab with checks needs mutants)",
            path.display()
        )
    })?;
    let table: Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for mutant in &table.mutant {
        for name in &mutant.fails {
            if !lab.checks.iter().any(|c| c.name == name) {
                return Err(format!(
                    "{}: mutant {} names an unknown check {name:?}",
                    path.display(),
                    mutant.name
                ));
            }
        }
    }
    Ok(table.mutant)
}

/// Checks that no mutant fails (they could not be proven able to fail).
fn coverage_problems(lab: &Lab, table: &[Mutant]) -> Vec<String> {
    lab.checks
        .iter()
        .filter(|check| {
            !table
                .iter()
                .any(|m| m.fails.iter().any(|f| f == check.name))
        })
        .map(|check| format!("{} {}: no mutant fails this check", lab.id, check.name))
        .collect()
}

fn target_workspace(root: &Path) -> PathBuf {
    grade::target_dir(root).join("mutants")
}

/// Writes a small workspace holding one crate per mutant, each a copy of the lab's
/// solution with the mutant's edits applied.
fn write_workspace(root: &Path, workspace: &Path, planned: &[Planned]) -> Result<(), String> {
    let manifest_text = fs::read_to_string(root.join("Cargo.toml")).map_err(|e| e.to_string())?;
    let mut manifest: toml::Table = toml::from_str(&manifest_text).map_err(|e| e.to_string())?;
    let ws = manifest
        .get_mut("workspace")
        .and_then(|w| w.as_table_mut())
        .ok_or("the root Cargo.toml has no [workspace]")?;
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
    fs::create_dir_all(workspace).map_err(|e| e.to_string())?;
    let lock = workspace.join("Cargo.lock");
    if !lock.exists() {
        let _ = fs::copy(root.join("Cargo.lock"), &lock);
    }
    write_if_changed(
        &workspace.join("Cargo.toml"),
        &toml::to_string(&manifest).map_err(|e| e.to_string())?,
    )?;
    for plan in planned {
        let solution = root
            .join("solutions")
            .join(format!("{}-{}", plan.lab.id, plan.lab.slug));
        let dir = workspace.join(&plan.package);
        let cargo_toml =
            fs::read_to_string(solution.join("Cargo.toml")).map_err(|e| e.to_string())?;
        let renamed = cargo_toml.replace(
            &format!("\"{}-solution\"", plan.lab.id),
            &format!("\"{}\"", plan.package),
        );
        write_if_changed(&dir.join("Cargo.toml"), &renamed)?;
        copy_sources(&solution.join("src"), &dir.join("src"))?;
        for edit in &plan.mutant.edit {
            let path = dir.join(&edit.file);
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let edited = apply(&text, edit).map_err(|e| {
                format!(
                    "mutant {} of {}: {e} (did the solution change?):\n{}",
                    plan.mutant.name, plan.lab.id, edit.find
                )
            })?;
            write_if_changed(&path, &edited)?;
        }
    }
    Ok(())
}

/// `text` with the edit made: its `find` must occur exactly once in the file or, when it
/// names a step, exactly once inside that step's fences.
fn apply(text: &str, edit: &Edit) -> Result<String, String> {
    let spans = match &edit.step {
        None => std::iter::once(0..text.len()).collect(),
        Some(step) => {
            let spans = fence_spans(text, &step.label());
            if spans.is_empty() {
                return Err(format!("{} has no fence for {:?}", edit.file, step.label()));
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
            return Err(format!(
                "the text to find lies inside the fence {title:?} of {}: name it with `step = ...`",
                edit.file
            ));
        }
    }
    match found[..] {
        [at] => Ok(format!(
            "{}{}{}",
            &text[..at],
            edit.replace,
            &text[at + edit.find.len()..]
        )),
        _ => Err(format!(
            "the text to find occurs {} times in {place} (must be exactly once)",
            found.len()
        )),
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

fn copy_sources(from: &Path, to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in fs::read_dir(from).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_sources(&path, &target)?;
        } else {
            let text = fs::read_to_string(&path).map_err(|e| e.to_string())?;
            write_if_changed(&target, &text)?;
        }
    }
    Ok(())
}

/// Leaves unchanged files alone, so cargo does not rebuild what has not changed.
fn write_if_changed(path: &Path, contents: &str) -> Result<(), String> {
    if fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
    fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))
}

fn build(workspace: &Path, planned: &[&Planned]) -> Result<(), String> {
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
        // Their binaries are looked for in the mutants' own target folder, whatever
        // target folder the maintainer's shell names.
        .env_remove("CARGO_TARGET_DIR");
    for plan in planned {
        command.args(["-p", &plan.package]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("a mutant does not compile (see above): fix its edits".into());
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
                format!("        {}: {first}", c.name)
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
        assert!(unnamed.unwrap_err().contains("name it with `step"));
        let across = edit("listen(7)?;\n    //- end\n}\nfn b", None);
        assert!(apply(&seven, &across).is_ok());
        // File-wide, the text occurs twice: ambiguous.
        let anywhere = apply(SOLUTION, &edit("socket.listen(backlog)?", None));
        assert!(anywhere.unwrap_err().contains("2 times"));
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
        assert!(apply(SOLUTION, &comment).unwrap_err().contains("0 times"));
        // A step with no fence is named in the error.
        let missing = edit("x", Some(StepName::Number(9)));
        assert!(apply(SOLUTION, &missing).unwrap_err().contains("no fence"));
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
