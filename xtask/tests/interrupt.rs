//! Ctrl+C during grading leaves nothing behind: every program under test is killed
//! with its process group and the grader exits with status 130.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Pids of live Python processes whose command line contains `needle` (not the
/// grader, whose own command line names the script too).
fn processes_running(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        let text = String::from_utf8_lossy(&cmdline);
        let program = text.split('\0').next().unwrap_or("");
        if !zombie && program.contains("python") && text.contains(needle) {
            found.push(pid);
        }
    }
    found
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn ctrl_c_kills_every_program_under_test() {
    // A copy of the Python server under a unique name, so we find exactly our processes.
    let folder = tempfile::tempdir().unwrap();
    let script = folder.path().join("interrupt_probe_lab1.py");
    let original = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/python/lab1_server.py"
    );
    std::fs::copy(original, &script).unwrap();
    let needle = script.display().to_string();

    let mut grader = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["grade", "lab1", "--cmd", &format!("python3 {needle}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || !processes_running(&needle)
            .is_empty()),
        "the grader never started the program"
    );
    kill(Pid::from_raw(grader.id() as i32), Signal::SIGINT).unwrap();
    let status = grader.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "interrupted grader exits with 130"
    );
    assert!(
        wait_for(Duration::from_secs(5), || processes_running(&needle)
            .is_empty()),
        "programs under test survived Ctrl+C: {:?}",
        processes_running(&needle)
    );
}
