//! Finding every process a check started, wherever it went, and ending it.
//!
//! A process group is not enough: a program can `setsid()`, double-fork, or even join
//! the grader's own group. So every program the grader starts carries a marker in its
//! environment, `SOCKLAB_CHECK=<grader pid>-<check token>`, which its children inherit
//! whatever group or session they move to. At the end of a check the grader reads
//! `/proc/*/environ`, kills every process with that check's marker (by pid, never by a
//! group that could be the grader's), and reaps them: the grader is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so orphans of the program become the grader's children
//! instead of init's and can be waited for.
//!
//! The grader pid in the marker keeps concurrent graders (parallel tests) apart. A
//! program that wipes its own environment before forking is not found this way; that
//! would take a cgroup per check.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// The environment variable that marks a program started by a check.
pub const MARKER: &str = "SOCKLAB_CHECK";

/// The marker value for check `token` of this grader.
pub fn marker_value(token: u64) -> String {
    format!("{}-{token}", std::process::id())
}

/// Makes the grader the reaper of every orphan among its descendants (once).
pub fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments only.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    });
}

/// The pids (not the grader's) whose environment holds `MARKER=<value>` exactly, or
/// any value starting with `<value>` when `prefix` is set.
pub fn marked(value: &str, prefix: bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    let wanted = format!("{MARKER}={value}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            environ(pid).is_some_and(|env| {
                env.split(|&b| b == 0).any(|var| {
                    if prefix {
                        var.starts_with(wanted.as_bytes())
                    } else {
                        var == wanted.as_bytes()
                    }
                })
            })
        })
        .collect()
}

/// The first 256 KiB of a process's environment block (a program cannot make the
/// grader read more).
fn environ(pid: i32) -> Option<Vec<u8>> {
    let file = std::fs::File::open(format!("/proc/{pid}/environ")).ok()?;
    let mut bytes = Vec::new();
    file.take(256 * 1024).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Kills every process marked `value` (or with values starting with it, `prefix`),
/// again and again until none is left (a forking program makes new ones meanwhile),
/// then reaps those that became the grader's children, except `owned` (children the
/// grader waits for itself). Returns how many processes were killed.
pub fn kill_marked(value: &str, prefix: bool, owned: &BTreeSet<i32>) -> usize {
    let mut killed = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut empty_scans = 0;
    loop {
        let found = marked(value, prefix);
        // Zombies keep their /proc entry but no environment, so they are not found:
        // what is found is alive (or dying) and needs a SIGKILL. A process in the middle
        // of execve() shows an empty environment for a moment (the kernel installs the
        // new memory map before it records where the environment lies in it), so one
        // empty scan is not proof: it takes two in a row, a few milliseconds apart.
        if found.is_empty() {
            empty_scans += 1;
        } else {
            empty_scans = 0;
        }
        if empty_scans >= 2 || Instant::now() >= deadline {
            break;
        }
        for pid in found {
            // Stop it first so it cannot fork while its siblings are being killed.
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGSTOP);
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    reap(killed.iter().copied().filter(|p| !owned.contains(p)));
    killed.len()
}

/// Waits (briefly) for each of `pids` to become a zombie child of the grader and reaps
/// it, so none is left a zombie (which would also keep its cgroup busy). A killed
/// grandchild becomes the grader's child (subreaper) only once its parent has died, so a
/// pid that is not the grader's child yet but still exists is waited for too.
pub fn reap(pids: impl Iterator<Item = i32>) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut waiting: Vec<i32> = pids.collect();
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain(
            |&pid| match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => true,
                Err(nix::errno::Errno::ECHILD) => {
                    std::path::Path::new(&format!("/proc/{pid}")).exists()
                }
                _ => false,
            },
        );
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_kills_what_left_its_group() {
        become_subreaper();
        // Not prefixed by our pid: `cleanup_all` (run by other tests in this binary) kills
        // every marker that starts with it.
        let value = format!("unit-test-{}-{}", std::process::id(), line!());
        // The shell starts a sleeper in a session of its own and exits at once: the
        // sleeper is an orphan in no group of ours, found only by its marker.
        let status = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 60 >/dev/null 2>&1 &"])
            .env(MARKER, &value)
            .status()
            .unwrap();
        assert!(status.success());
        // Wait until the sleeper is `sleep` itself: while the shell's child execs
        // `setsid` and then `sleep`, its environment reads empty for a moment.
        let is_sleep = |pid: &i32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !marked(&value, false).iter().any(is_sleep) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(marked(&value, false).len(), 1);
        assert_eq!(kill_marked(&value, false, &BTreeSet::new()), 1);
        assert!(marked(&value, false).is_empty());
    }
}
