//! (The tools', not the labs'.) A program started in a process group of its own, and
//! ended with everything it started: the one way the grader, the demos and the
//! benchmark start and stop the programs they run.
//!
//! Why a group: a program under test may fork (a shell wrapper around `python3`, a
//! server that forks per client, a daemon). Killing only the pid it was started as would
//! leave those children running, holding ports and socket files. Started with
//! `setpgid(0, 0)` (`process_group(0)`), the program leads a group whose id is its pid,
//! its children are born in it, and one `killpg` ends them all. What each tool adds on
//! top (the grader's output capture, registry and sandbox; the demo's timeline; the
//! bench's log file) stays with that tool.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How often [`Group::wait_exit`] looks whether the program has exited.
const POLL: Duration = Duration::from_millis(5);

/// A running program that leads its own process group; dropping it kills the group and
/// reaps the program.
#[derive(Debug)]
pub struct Group {
    /// The program; its pid is also its process group's id.
    child: Child,
    /// How it ended, once it has been reaped.
    exit: Option<ExitStatus>,
}

impl Group {
    /// Makes `command` start its program as the leader of a new process group.
    pub fn prepare(command: &mut Command) -> &mut Command {
        command.process_group(0)
    }

    /// Starts `command` in a process group of its own (fork, `setpgid`, exec).
    pub fn spawn(command: &mut Command) -> std::io::Result<Group> {
        Group::prepare(command).spawn().map(Group::adopt)
    }

    /// Takes charge of a program already started with [`Group::prepare`] (by a caller
    /// that needs to spawn it its own way, e.g. inside a namespace).
    pub fn adopt(child: Child) -> Group {
        Group { child, exit: None }
    }

    /// The program's pid, which is also its group's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The program itself, to take its stdin/stdout/stderr pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// How the program ended, if it is already known to have (no system call).
    pub fn reaped(&self) -> Option<ExitStatus> {
        self.exit
    }

    /// How the program ended, if it has (`waitpid` with `WNOHANG`; never blocks).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits up to `limit` for the program to exit, polling.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Asks the whole group to end (SIGTERM), gives it `grace` to do so, then kills
    /// it ([`Group::kill`]). How the program ended.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.try_exit().is_none() {
            self.signal_group(libc::SIGTERM);
            self.wait_exit(grace);
        }
        self.kill()
    }

    /// Kills the whole group with SIGKILL (and the program by its pid too, in case it
    /// left its group), then reaps the program. Once the program has been reaped only
    /// its group is signalled: its children may still be in it. How the program ended.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.signal_group(libc::SIGKILL);
        if self.try_exit().is_none() {
            // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
            unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGKILL) };
            self.exit = self.child.wait().ok();
        }
        self.exit
    }

    /// Sends `signal` to every process of the group.
    fn signal_group(&self, signal: libc::c_int) {
        // SAFETY: killpg(2) takes plain integers; an empty group is only an error.
        unsafe { libc::killpg(self.pid() as libc::pid_t, signal) };
    }
}

/// SIGKILL to the group led by `leader` and to `leader` itself (it may have left its
/// group): for a caller that holds only the pid, such as a watchdog on another thread
/// whose [`Group`] belongs to the check it is ending. It reaps nothing: the owner does.
pub fn kill_leader(leader: u32) {
    // SAFETY: killpg(2) and kill(2) take plain integers; a gone target is only an error.
    unsafe {
        libc::killpg(leader as libc::pid_t, libc::SIGKILL);
        libc::kill(leader as libc::pid_t, libc::SIGKILL);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pids of the processes in group `group` (from /proc/PID/stat, field 5).
    fn members(group: u32) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
                // After the name: state, ppid, pgrp; a zombie (Z) is already dead.
                let fields: Vec<&str> = after.split_whitespace().collect();
                fields.get(2) == Some(&group.to_string().as_str()) && fields[0] != "Z"
            })
            .collect()
    }

    #[test]
    fn killing_the_group_ends_the_programs_children_too() {
        // A shell that starts a child in the background and waits: two processes.
        let mut group = Group::spawn(Command::new("sh").args(["-c", "sleep 30 & wait"])).unwrap();
        let pid = group.pid();
        let deadline = Instant::now() + Duration::from_secs(5);
        while members(pid).len() < 2 {
            assert!(Instant::now() < deadline, "the child never started");
            std::thread::sleep(POLL);
        }
        assert!(group.kill().is_some());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !members(pid).is_empty() {
            assert!(Instant::now() < deadline, "left alive: {:?}", members(pid));
            std::thread::sleep(POLL);
        }
    }

    #[test]
    fn stop_lets_a_program_end_on_sigterm_and_says_how() {
        use std::os::unix::process::ExitStatusExt;
        let mut group = Group::spawn(Command::new("sleep").arg("30")).unwrap();
        let status = group.stop(Duration::from_secs(5)).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }
}
