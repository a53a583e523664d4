//! A class's submissions: find them, build them, and decide whether each can be graded.
//!
//! Every subfolder of the submissions folder is one student (its name is the student):
//! - a folder with an executable `run` is any program honouring the command-line
//!   contract (Python, C, ...); it is started once with `--help` to prove it can be
//!   executed at all (a missing interpreter is "not gradable", not 26 failures);
//! - a folder with a `Cargo.toml` (or a whole socklab clone, with `labs/labN-*/`) is a
//!   copy of the lab crate: it is copied into a tiny workspace of its own under
//!   `OUT/build/<student>/` (the lab crates inherit from socklab's workspace and use its
//!   `shared` crate, which the wrapper points at) and built there with cargo, with one
//!   target folder (`OUT/target/`) for the whole class so dependencies build once.
//!
//! A submission that cannot be graded keeps the first lines of what the compiler or the
//! program said, for its report.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::grade::Lab;
use crate::grade::process::{Input, Running};

/// How long one submission may take to build (a build script could loop for ever).
const BUILD_LIMIT: Duration = Duration::from_secs(600);
/// How long `run --help` may take before the probe stops waiting (and grades it anyway).
const PROBE_LIMIT: Duration = Duration::from_secs(5);
/// How many lines of the compiler's or program's output a not-gradable report keeps.
const FIRST_LINES: usize = 15;

/// One student's submission, ready to grade or not.
pub struct Submission {
    pub student: String,
    pub outcome: Result<Ready, NotGradable>,
}

/// A program to grade: its argv prefix and how reports show it.
pub struct Ready {
    pub program: Vec<String>,
    pub shown: String,
}

/// Why a submission cannot be graded, with the first lines of what was said.
#[derive(Debug, Clone)]
pub struct NotGradable {
    /// `does not build`, `cannot be started`, ...
    pub reason: String,
    /// Where the lines come from (`cargo build`, `run --help`).
    pub source: String,
    pub lines: Vec<String>,
}

/// The students' folders of `dir`, sorted by name (hidden folders skipped).
pub fn students(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let entries = fs::read_dir(dir).with_context(|| format!("--submissions {}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        found.push((name, path));
    }
    found.sort();
    if found.is_empty() {
        bail!(
            "--submissions {}: no student folders in it (each subfolder is one student)",
            dir.display()
        );
    }
    Ok(found)
}

/// Builds or probes one submission. `out` is the class's output folder.
pub fn prepare(root: &Path, lab: &Lab, student: &str, dir: &Path, out: &Path) -> Submission {
    let outcome = match classify(lab, dir) {
        Err(reason) => Err(NotGradable {
            reason: format!("{reason:#}"),
            source: String::new(),
            lines: Vec::new(),
        }),
        Ok(Kind::Run(run)) => probe(&run, out, student).map(|()| Ready {
            shown: format!("{student}/run"),
            program: vec![run.display().to_string()],
        }),
        Ok(Kind::Crate(krate)) => build(root, &krate, out, student).map(|binary| Ready {
            shown: format!("{student} (built with cargo)"),
            program: vec![binary.display().to_string()],
        }),
    };
    Submission {
        student: student.to_string(),
        outcome,
    }
}

enum Kind {
    Run(PathBuf),
    Crate(PathBuf),
}

fn classify(lab: &Lab, dir: &Path) -> anyhow::Result<Kind> {
    let run = dir.join("run");
    if run.is_file() {
        let mode = fs::metadata(&run)?.permissions().mode();
        if mode & 0o111 == 0 {
            bail!("its `run` is not executable (chmod +x run)");
        }
        let run = run.canonicalize()?;
        return Ok(Kind::Run(run));
    }
    if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
        return Ok(Kind::Crate(dir.to_path_buf()));
    }
    let inside = dir.join("labs").join(format!("{}-{}", lab.id, lab.slug));
    if inside.join("Cargo.toml").is_file() {
        return Ok(Kind::Crate(inside));
    }
    Err(anyhow!(
        "neither a crate (Cargo.toml and src/, or labs/{}-{}/) nor an executable `run`",
        lab.id,
        lab.slug
    ))
}

/// Starts `run --help` once: a program that cannot even be executed is not gradable.
fn probe(run: &Path, out: &Path, student: &str) -> Result<(), NotGradable> {
    let folder = out.join("build").join(student);
    let _ = fs::create_dir_all(&folder);
    let argv = vec![run.display().to_string(), "--help".to_string()];
    let cannot = |lines: Vec<String>| NotGradable {
        reason: "its `run` cannot be started".into(),
        source: "run --help".into(),
        lines,
    };
    // Started in its build folder with a scrubbed environment, like every check's programs.
    let argv = crate::grade::sandbox::absolute_argv(&argv);
    let jail = crate::grade::sandbox::Policy::basic().jail(0, &folder);
    let mut running = Running::start(&argv, "probe", Input::Empty, &[], None, jail.as_ref())
        .map_err(|e| cannot(cannot_execute(run, &e)))?;
    let status = running.wait_exit(PROBE_LIMIT);
    let said = first_lines(&running.stderr_text());
    drop(running);
    match status.and_then(|s| s.code()) {
        // The shell's "cannot execute" and "command not found".
        Some(126 | 127) => Err(cannot(said)),
        _ => Ok(()),
    }
}

/// Why the system could not execute `run`, with its `#!` line when that is the cause.
fn cannot_execute(run: &Path, error: &std::io::Error) -> Vec<String> {
    let mut lines = vec![format!("cannot execute {}: {error}", run.display())];
    let first = fs::read(run).ok().and_then(|bytes| {
        let line = bytes.split(|b| *b == b'\n').next()?.to_vec();
        String::from_utf8(line).ok()
    });
    match first {
        Some(line) if line.starts_with("#!") => lines.push(format!(
            "its first line is `{line}`: is that interpreter installed at that path?"
        )),
        _ if error.raw_os_error() == Some(libc::ENOEXEC) => lines
            .push("it is neither a program for this machine nor a script starting with #!".into()),
        _ => {}
    }
    lines
}

/// Builds a crate submission in a workspace of its own; returns its binary.
fn build(root: &Path, krate: &Path, out: &Path, student: &str) -> Result<PathBuf, NotGradable> {
    let fail = |reason: &str, lines: Vec<String>| NotGradable {
        reason: reason.to_string(),
        source: "cargo build".into(),
        lines,
    };
    let workspace = out.join("build").join(student);
    let _ = fs::remove_dir_all(&workspace);
    copy_crate(krate, &workspace.join("crate"))
        .and_then(|()| write_wrapper(root, &workspace))
        .map_err(|e| fail("cannot be copied for building", vec![format!("{e:#}")]))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = workspace.join("Cargo.toml");
    let argv: Vec<String> = [
        cargo.as_str(),
        "build",
        "--bins",
        "--color",
        "never",
        "--message-format",
        "json-render-diagnostics",
        "--manifest-path",
        &manifest.display().to_string(),
        "--target-dir",
        &out.join("target").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cargo = Running::start(&argv, "cargo", Input::Empty, &[], None, None)
        .map_err(|e| fail("cannot be built", vec![format!("cannot run cargo: {e}")]))?;
    let status = cargo.wait_exit(BUILD_LIMIT);
    let stdout = cargo.stdout_text();
    let stderr = cargo.stderr_text();
    drop(cargo);
    match status {
        None => {
            return Err(fail(
                "does not build",
                vec![format!(
                    "the build ran past {} s and was stopped",
                    BUILD_LIMIT.as_secs()
                )],
            ));
        }
        Some(status) if !status.success() => {
            return Err(fail("does not build", compiler_errors(&stderr)));
        }
        Some(_) => {}
    }
    let built = executable(&stdout, &workspace.join("crate")).ok_or_else(|| {
        fail(
            "does not build a program",
            vec!["cargo built no binary".into()],
        )
    })?;
    // Copied away at once: the next student's build may reuse the same file name.
    let binary = out.join("bin").join(student);
    fs::create_dir_all(binary.parent().unwrap())
        .and_then(|()| fs::copy(&built, &binary))
        .map_err(|e| fail("cannot be copied after building", vec![e.to_string()]))?;
    Ok(binary)
}

/// The executable cargo reported for the package in `krate` (from its JSON messages).
fn executable(stdout: &str, krate: &Path) -> Option<PathBuf> {
    let krate = krate.canonicalize().ok()?;
    let mut found = None;
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(path) = message["executable"].as_str() else {
            continue;
        };
        let manifest = message["manifest_path"].as_str().map(PathBuf::from);
        if manifest.is_some_and(|m| m.parent().is_some_and(|dir| dir == krate)) {
            found = Some(PathBuf::from(path));
        }
    }
    found
}

/// The first lines that matter of a failed build: from the first error on.
fn compiler_errors(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("error"))
        .unwrap_or(0);
    first_lines(&lines[start..].join("\n"))
}

fn first_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(FIRST_LINES)
        .map(str::to_string)
        .collect()
}

/// Copies a crate's files (not its `target/`, hidden folders or symbolic links).
fn copy_crate(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| to.display().to_string())?;
    let entries = fs::read_dir(from).with_context(|| from.display().to_string())?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if text.starts_with('.') || text == "target" || kind.is_symlink() {
            continue;
        }
        let target = to.join(&name);
        if kind.is_dir() {
            copy_crate(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target).with_context(|| target.display().to_string())?;
        }
    }
    Ok(())
}

/// The wrapper workspace: socklab's workspace settings with one member, the copy, and
/// the `shared` crate at its real place; socklab's Cargo.lock pins the same versions.
fn write_wrapper(root: &Path, workspace: &Path) -> anyhow::Result<()> {
    let text = fs::read_to_string(root.join("Cargo.toml"))?;
    let text = wrapper_manifest(&text, &root.join("shared"))?;
    fs::write(workspace.join("Cargo.toml"), text)?;
    // The student's own lock file, if any, is theirs; socklab's pins what it tested.
    let _ = fs::remove_file(workspace.join("crate/Cargo.lock"));
    fs::copy(root.join("Cargo.lock"), workspace.join("Cargo.lock"))?;
    Ok(())
}

/// socklab's own Cargo.toml, edited line by line (it is ours, and a student's build
/// does not link a TOML writer): in `[workspace]` the members become the one copy and
/// any `exclude` goes; in `[workspace.dependencies]` `shared`'s path becomes the real
/// `shared` folder. A layout it does not expect is an error naming the line it needed.
fn wrapper_manifest(text: &str, shared: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut section = "";
    let (mut members, mut path) = (false, false);
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed;
        }
        let edited = match section {
            "[workspace]" if trimmed.starts_with("members") || trimmed.starts_with("exclude") => {
                if !trimmed.ends_with(']') {
                    bail!("socklab's Cargo.toml: keep `{trimmed}` on one line");
                }
                if trimmed.starts_with("exclude") {
                    continue;
                }
                members = true;
                "members = [\"crate\"]".to_string()
            }
            "[workspace.dependencies]" if trimmed.starts_with("shared ") => {
                let quoted = serde_json::to_string(&shared.display().to_string())?;
                path = trimmed.contains("path = \"shared\"");
                line.replace("path = \"shared\"", &format!("path = {quoted}"))
            }
            _ => line.to_string(),
        };
        out.push_str(&edited);
        out.push('\n');
    }
    if !members || !path {
        bail!(
            "socklab's Cargo.toml: [workspace] needs `members = [...]` and \
             [workspace.dependencies] `shared = {{ path = \"shared\", ... }}`"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod wrapper_tests {
    use super::*;

    /// The wrapper of the real Cargo.toml is TOML with one member and `shared` where
    /// it really is, and keeps everything else (the labs' dependencies, profiles).
    #[test]
    fn the_wrapper_manifest_points_at_the_copy_and_the_real_shared() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let text = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let shared = Path::new("/some \"odd\" place/shared");
        let wrapper: toml::Table =
            toml::from_str(&wrapper_manifest(&text, shared).unwrap()).unwrap();
        let original: toml::Table = toml::from_str(&text).unwrap();
        let workspace = wrapper["workspace"].as_table().unwrap();
        assert_eq!(
            workspace["members"].as_array().unwrap(),
            &vec![toml::Value::from("crate")]
        );
        assert!(!workspace.contains_key("exclude"));
        let dependency = &workspace["dependencies"]["shared"];
        assert_eq!(
            dependency["path"].as_str(),
            Some("/some \"odd\" place/shared")
        );
        assert_eq!(
            dependency["package"],
            original["workspace"]["dependencies"]["shared"]["package"]
        );
        assert_eq!(workspace["package"], original["workspace"]["package"]);
        assert_eq!(wrapper["profile"], original["profile"]);
    }
}
