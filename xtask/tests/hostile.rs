//! The hostile suite: programs that flood, stall, escape and booby-trap, graded through
//! `--cmd`. Whatever they do, the grader must finish in bounded time and memory, print a
//! readable report (exit status 0 or 1, never a panic), and leave no process, scratch
//! folder, cgroup or file behind, nor write outside its scratch folders.
//!
//! The programs are in `tests/hostile/` (Python 3, which CI has); each test grades one
//! of them against a few representative checks of the labs it targets, under
//! `ulimit -v`, and prints a line of figures (time, grader peak RSS, strays). Run
//! `cargo test -p xtask --test hostile -- --nocapture --test-threads 2` to see them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most a grade of a few checks may take, whatever the program does.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// The most memory the grader may use (peak resident set), whatever the program does.
const RSS_LIMIT_KB: u64 = 200 * 1024;
/// Address-space cap on the grader, so a regression cannot take the machine down.
const ULIMIT_V_KB: u64 = 4_000_000;

/// (lab, checks) a program is graded against.
type Target = (&'static str, &'static [&'static str]);

const LAB1: Target = ("lab1", &["listens", "echoes", "serves-in-turn"]);
const LAB3: Target = ("lab3", &["echoes", "large-binary", "stuck-reader"]);
const LAB5: Target = (
    "lab5",
    &["echoes", "keeps-regular-file", "removes-on-sigterm"],
);
const LAB8: Target = (
    "lab8",
    &[
        "daemon-writes-pidfile",
        "handshake",
        "removes-pidfile-sigterm",
    ],
);

fn hostile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(format!("{name}.py"))
}

/// What one grade cost and left behind.
struct Figures {
    seconds: f64,
    peak_rss_kb: u64,
    strays: Vec<String>,
    leftovers: Vec<String>,
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The grader's peak resident set so far (VmHWM), in KiB.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Live processes (not zombies) carrying `marker` in their environment or naming
/// `needle` on their command line, described for a failure message.
fn strays(marker: &str, needle: &str) -> Vec<String> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let marked = environ
            .split(|&b| b == 0)
            .any(|var| var.starts_with(marker.as_bytes()));
        // The program itself (python3 .../hostile/NAME.py), not a grader naming it.
        let argv0 = cmdline.split(' ').next().unwrap_or("");
        let named = cmdline.contains(needle) && !argv0.ends_with("xtask");
        if marked || named {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Grades `lab` (only `checks`) against the hostile program `name` in a temp folder of
/// its own, measuring time and peak RSS, then looks for what was left behind.
fn grade(name: &str, (lab, checks): Target, canary: &Path) -> Figures {
    let tmp = tempfile::Builder::new()
        .prefix("sh")
        .tempdir_in("/tmp")
        .unwrap();
    let program = hostile(name);
    // The canary reaches the program through its command line: the sandbox scrubs the
    // grader's environment.
    let cmd = format!(
        "env HOSTILE_CANARY={} python3 {}",
        canary.display(),
        program.display()
    );
    let mut args = vec![
        "grade".to_string(),
        lab.to_string(),
        "--cmd".into(),
        cmd,
        "--json".into(),
        "--jobs".into(),
        "16".into(),
    ];
    for check in checks {
        args.push("--check".into());
        args.push(check.to_string());
    }
    let stdout_path = tmp.path().join("report.json");
    let stderr_path = tmp.path().join("grader.stderr");
    let scratch = tmp.path().join("t");
    std::fs::create_dir(&scratch).unwrap();
    let started = Instant::now();
    // `exec` keeps the pid: the shell only sets the limit.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ULIMIT_V_KB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .env("TMPDIR", &scratch)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = peak_rss(pid) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIME_LIMIT * 2 {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = started.elapsed().as_secs_f64();
    // Whatever is still alive now was left behind (give dying ones a moment).
    let marker = format!("SOCKLAB_CHECK={pid}-");
    let needle = format!("hostile/{name}.py");
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut left = strays(&marker, &needle);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = strays(&marker, &needle);
    }
    let mut leftovers: Vec<String> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .collect();
    leftovers.extend(hostile_suite::cgroups_of(pid));
    let figures = Figures {
        seconds,
        peak_rss_kb: peak,
        strays: left,
        leftovers,
        status: status.code(),
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    };
    // Kill what was left so one failure does not poison the next tests.
    for stray in &figures.strays {
        if let Some(pid) = stray.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    figures
}

/// Grades `name` against each target and asserts the grader held up.
fn survives(name: &str, targets: &[Target]) {
    let canary = tempfile::Builder::new()
        .prefix("canary")
        .tempdir_in("/tmp")
        .unwrap();
    let mut problems = Vec::new();
    for &target in targets {
        let f = grade(name, target, canary.path());
        let line = format!(
            "| {name} | {} | {:.1} s | {:.0} MB | {} | {} | {:?} |",
            target.0,
            f.seconds,
            f.peak_rss_kb as f64 / 1024.0,
            f.strays.len(),
            f.leftovers.len(),
            f.status
        );
        eprintln!("{line}");
        // HOSTILE_FIGURES=path collects the lines (program, lab, time, grader peak RSS,
        // strays, leftovers, exit status) into a table.
        if let Ok(path) = std::env::var("HOSTILE_FIGURES") {
            use std::io::Write;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{line}");
            }
        }
        let lab = target.0;
        if f.seconds > TIME_LIMIT.as_secs_f64() {
            problems.push(format!("{lab}: took {:.0} s", f.seconds));
        }
        if f.peak_rss_kb > RSS_LIMIT_KB {
            problems.push(format!("{lab}: grader peak RSS {} KiB", f.peak_rss_kb));
        }
        if !matches!(f.status, Some(0) | Some(1)) {
            problems.push(format!(
                "{lab}: grader exit {:?}; stderr: {}",
                f.status,
                f.stderr.chars().take(2000).collect::<String>()
            ));
        }
        match serde_json::from_str::<serde_json::Value>(&f.stdout) {
            Ok(report) => {
                let bug = report["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["message"].as_str())
                    .find(|m| m.contains("grader itself failed"));
                if let Some(bug) = bug {
                    problems.push(format!("{lab}: {bug}"));
                }
            }
            Err(e) => problems.push(format!("{lab}: no JSON report ({e}): {}", f.stdout)),
        }
        if f.stderr.contains("panicked") {
            problems.push(format!("{lab}: the grader panicked: {}", f.stderr));
        }
        if !f.strays.is_empty() {
            problems.push(format!("{lab}: processes left running: {:?}", f.strays));
        }
        if !f.leftovers.is_empty() {
            problems.push(format!("{lab}: left in the temp folder: {:?}", f.leftovers));
        }
    }
    let outside: Vec<_> = std::fs::read_dir(canary.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    if !outside.is_empty() {
        problems.push(format!(
            "the grader wrote outside its scratch folder: {outside:?}"
        ));
    }
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

/// The programs, one test each. In a module of their own, so that a test run can pick
/// or skip the suite by name (`hostile_suite::`): CI runs it with more tests at a time.
mod hostile_suite {
    use super::*;

    #[test]
    fn stderr_flood() {
        survives("stderr_flood", &[LAB3, LAB8]);
    }

    #[test]
    fn stdout_flood() {
        survives("stdout_flood", &[LAB3, LAB8]);
    }

    #[test]
    fn endless_stream() {
        survives("endless_stream", &[LAB1, LAB3, LAB5]);
    }

    #[test]
    fn replaces_capture() {
        survives("replaces_capture", &[LAB5, LAB8]);
    }

    #[test]
    fn pidfile_fifo() {
        survives("pidfile_fifo", &[LAB8]);
    }

    #[test]
    fn escapes() {
        survives("escapes", &[LAB1, LAB3, LAB5, LAB8]);
    }

    #[test]
    fn keeps_port() {
        survives("keeps_port", &[LAB1, LAB3]);
    }

    #[test]
    fn never_reads() {
        survives("never_reads", &[LAB1, LAB3]);
    }

    #[test]
    fn trickle() {
        survives("trickle", &[LAB3]);
    }

    #[test]
    fn ignores_signals() {
        survives("ignores_signals", &[LAB3, LAB5]);
    }

    #[test]
    fn spins() {
        survives("spins", &[LAB3]);
    }

    #[test]
    fn sleeps() {
        survives("sleeps", &[LAB3]);
    }

    #[test]
    fn plants_symlinks() {
        survives("plants_symlinks", &[LAB5, LAB8]);
    }

    /// The cgroups the grader `pid` made (`socklab-<pid>-*`) that are still there. It makes
    /// them in its own cgroup, which is this test's.
    pub fn cgroups_of(pid: u32) -> Vec<String> {
        let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return Vec::new();
        };
        let mount = mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        });
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            });
        let (Some(mount), Some(own)) = (mount, own) else {
            return Vec::new();
        };
        let prefix = format!("socklab-{pid}-");
        std::fs::read_dir(mount.join(own.trim_start_matches('/')))
            .map(|dir| {
                dir.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the grader can make a cgroup v2 per check here: tries as it does (a folder
    /// in this process's own cgroup, with `cgroup.kill`), then removes it.
    fn cgroups_here() -> bool {
        let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return false;
        };
        let mount = mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        });
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            });
        let (Some(mount), Some(own)) = (mount, own) else {
            return false;
        };
        let probe = mount
            .join(own.trim_start_matches('/'))
            .join(format!("socklab-probe-{}", std::process::id()));
        let made = std::fs::create_dir(&probe).is_ok();
        let works = made && probe.join("cgroup.kill").exists();
        if made {
            let _ = std::fs::remove_dir(&probe);
        }
        works
    }

    #[test]
    fn wipes_env() {
        // Its sleeper carries no marker and leaves every group: only a cgroup finds it.
        if !cgroups_here() {
            eprintln!("wipes_env: skipped, the grader can make no cgroup v2 here (needs root)");
            return;
        }
        survives("wipes_env", &[LAB1]);
    }
}
