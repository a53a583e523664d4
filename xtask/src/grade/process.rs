//! Programs under test: each in its own process group, always killed with its children.
//!
//! [`Running`] starts a program as a [`Group`] (`shared::group`, the process runner the
//! demos and the benchmark use too), so the program and anything it forks share one
//! group that a single `killpg` ends. Dropping a `Running` kills that group and reaps
//! the program. Every live group (and every scratch folder) is also in
//! a process-wide registry, which the Ctrl+C/SIGTERM handler empties before the grader
//! exits: nothing is left behind, whichever way the grader stops.
//!
//! stdout and stderr go through pipes the grader owns, read by a thread each into a
//! bounded [`Capture`] (first and last 64 KiB and a byte count): a chatty program never
//! blocks on a full pipe, never costs the grader more than that, and cannot swap the
//! capture for a FIFO or a symlink. Every program also carries a per-check marker in its
//! environment ([`strays`](super::strays)), so whatever escapes its group (setsid, a
//! double fork, the grader's own group) is still found, killed and reaped. How each
//! program is confined (working directory, environment, uid, mounts) is the check's
//! [`Jail`](super::sandbox::Jail), applied here.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, Once};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use shared::group::{self, Group};

use super::capture::Capture;
use super::sandbox::{self, Jail};
use super::{cgroup, files, pidns, strays};

/// Process groups and folders to clean up if the grader is interrupted.
struct Registry {
    /// Every live group, with the token of the check that started it.
    groups: BTreeMap<i32, u64>,
    folders: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: BTreeMap::new(),
    folders: Vec::new(),
});

thread_local! {
    /// The check this thread is running (0: none), so that the runner can kill
    /// everything one check started when it runs past its budget.
    static CHECK_TOKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Marks the programs this thread starts from now on as belonging to check `token`.
pub fn set_check_token(token: u64) {
    CHECK_TOKEN.with(|t| t.set(token));
}

/// The check this thread is running (0 outside the runner).
pub fn check_token() -> u64 {
    CHECK_TOKEN.with(|t| t.get())
}

/// Kills every process group started by check `token` (it ran past its budget), and
/// every process carrying its marker wherever it went. The check's own thread then sees
/// its programs gone and finishes by itself.
pub fn kill_token(token: u64) {
    let (groups, owned) = {
        let reg = registry();
        let groups: Vec<i32> = reg
            .groups
            .iter()
            .filter(|(_, t)| **t == token)
            .map(|(g, _)| *g)
            .collect();
        (groups, owned(&reg))
    };
    for group in groups {
        group::kill_leader(group as u32);
    }
    cgroup::kill(token, false);
    strays::kill_marked(&strays::marker_value(token), false, &owned);
}

/// Ends what check `token` left running once its programs have been killed: processes
/// that left their group (setsid, double fork) but still carry the check's marker.
/// Returns how many there were.
pub fn end_check(token: u64) -> usize {
    let owned = owned(&registry());
    // The check's cgroup, where there is one: everything in it, whatever it did to its
    // environment. Listed first, so that the orphans among them can be reaped.
    let members: Vec<i32> = cgroup::members(token)
        .into_iter()
        .filter(|p| !owned.contains(p))
        .collect();
    cgroup::kill(token, false);
    let killed = strays::kill_marked(&strays::marker_value(token), false, &owned);
    strays::reap(members.iter().copied());
    cgroup::kill(token, true);
    killed.max(members.len())
}

/// Kills every group still registered, every process any check of this grader started,
/// and removes every scratch folder: the last thing the grader does, whichever way it
/// ends.
pub fn cleanup_all() {
    let mut reg = registry();
    let leaders: Vec<i32> = std::mem::take(&mut reg.groups).into_keys().collect();
    for &group in &leaders {
        group::kill_leader(group as u32);
    }
    let folders: Vec<PathBuf> = reg.folders.drain(..).collect();
    drop(reg);
    // The grader is ending: reap even the programs whose checks are still unwinding,
    // so that no zombie keeps a check's cgroup from being removed.
    let members = cgroup::all_members();
    cgroup::kill_all(false);
    strays::kill_marked(&format!("{}-", std::process::id()), true, &BTreeSet::new());
    strays::reap(leaders.into_iter().chain(members));
    cgroup::kill_all(true);
    for folder in folders {
        for left in files::remove_tree(&folder) {
            eprintln!("socklab: could not remove {}", left.display());
        }
    }
}

/// The pids the grader waits for itself (the programs it started directly).
fn owned(reg: &Registry) -> BTreeSet<i32> {
    reg.groups.keys().copied().collect()
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Set once Ctrl+C or SIGTERM has come: the handler is cleaning up and will exit.
/// Set once the grader is on its way out (see [`shut_down`]).
static CLOSING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The grader is ending (Ctrl+C, a reader that went away): no check may start a program
/// any more (one started after the sweep would outlive the grader), then everything is
/// swept up as [`cleanup_all`] does.
pub fn shut_down() {
    {
        let _reg = registry();
        CLOSING.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    cleanup_all();
}

/// If the grader was interrupted, waits for the handler to finish cleaning up and exit
/// with status 130 (never returns then): the checks it cut short must not be reported
/// as the grade, nor the grader exit first with another status.
pub fn wait_if_interrupted() {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        if std::time::Instant::now() >= deadline {
            // The handler never got to its exit: end as it would have.
            std::process::exit(130);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether Ctrl+C or SIGTERM has come. A check that ends after that was cut short by
/// the cleanup (its programs killed), so its verdict must not be recorded.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Installs the Ctrl+C/SIGTERM handler once: kill every group, remove every folder, exit.
pub fn install_interrupt_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            shut_down();
            // Not eprintln!: with stderr gone (the terminal or the parent that read it
            // closed, a SIGTERM's usual company), it panics, this thread dies before
            // exit, and the checks' threads wait for it for ever.
            let _ = writeln!(
                std::io::stderr(),
                "\ninterrupted: stopped every program under test and cleaned up"
            );
            std::process::exit(130);
        });
    });
}

/// Remembers a process group for interrupt cleanup.
pub fn track_group(group: i32) {
    registry()
        .groups
        .insert(group, CHECK_TOKEN.with(|t| t.get()));
}

/// Forgets a process group (it has been killed normally).
pub fn untrack_group(group: i32) {
    registry().groups.remove(&group);
}

/// Remembers a scratch folder for interrupt cleanup.
/// False once the grader is ending ([`shut_down`]): the caller must remove the folder
/// itself and give up, or it would outlive the grader.
pub fn register_folder(path: &Path) -> bool {
    let mut reg = registry();
    if CLOSING.load(std::sync::atomic::Ordering::SeqCst) {
        return false;
    }
    reg.folders.push(path.to_path_buf());
    true
}

/// Forgets a scratch folder (it is being removed normally).
pub fn forget_folder(path: &Path) {
    registry().folders.retain(|p| p != path);
}

/// What a started program reads on stdin.
pub enum Input {
    /// Nothing: stdin is /dev/null.
    Empty,
    /// These bytes, then end-of-file (a thread writes them).
    Bytes(Vec<u8>),
    /// A pipe the check writes to as it goes ([`Running::type_input`]), like a person
    /// typing; [`Running::close_input`] ends it.
    Open,
}

/// A program under test, started in its own process group.
pub struct Running {
    /// A short label for reports: `server`, `client #2`.
    pub label: String,
    /// The open stdin of a program started with [`Input::Open`].
    typing: Option<std::process::ChildStdin>,
    group: Group,
    stdout: Capture,
    stderr: Capture,
}

impl Running {
    /// Starts `argv` with its output captured through pipes (`label` names it in
    /// reports), marked as belonging to the current check.
    ///
    /// `input` says what its stdin holds.
    pub fn start(
        argv: &[String],
        label: &str,
        input: Input,
        envs: &[(&str, &str)],
        uid: Option<u32>,
        jail: Option<&Jail>,
    ) -> std::io::Result<Running> {
        strays::become_subreaper();
        let token = check_token();
        let mut command = Command::new(&argv[0]);
        Group::prepare(command.args(&argv[1..]));
        match jail {
            // The check's scratch folder and a scrubbed environment (sandbox.rs).
            Some(jail) => {
                command
                    .current_dir(&jail.cwd)
                    .env_clear()
                    .envs(jail.env.iter().cloned());
            }
            // The grader's own working directory and environment (--sandbox off).
            None => {
                command
                    .env_remove("SOCKLAB_NARRATE")
                    .env_remove("RUST_BACKTRACE");
            }
        }
        command
            .env(strays::MARKER, strays::marker_value(token))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(match input {
                Input::Empty => Stdio::null(),
                Input::Bytes(_) | Input::Open => Stdio::piped(),
            });
        for (key, value) in envs {
            command.env(key, value);
        }
        // Another user: the one the check asked for, else the check's own (strict).
        let jailed = jail.and_then(|j| j.uid);
        let uid = uid.or(jailed);
        // A non-root grader's programs: no uid of their own, no capability either.
        let drop_caps = jail.is_some_and(|j| j.drop_caps);
        let mounts = jail
            .and_then(|j| j.mounts.clone())
            .filter(|_| uid.is_some() || drop_caps);
        let procs = cgroup::procs_file(token);
        // Every sandboxed program's writable memory is capped (basic and strict).
        let cap_memory = jail.is_some();
        if uid.is_some() || procs.is_some() || drop_caps || cap_memory {
            // SAFETY: the closure only makes async-signal-safe system calls.
            unsafe {
                command.pre_exec(move || {
                    if cap_memory {
                        sandbox::cap_memory();
                    }
                    // As root still: into the check's cgroup, then down to the uid (with
                    // the sandbox's caps when it is the check's own), which no longer
                    // could write root's cgroup.procs.
                    if let Some(procs) = &procs {
                        cgroup::join_in_child(procs);
                    }
                    if let Some(mounts) = &mounts {
                        mounts.enter()?;
                    }
                    if let Some(uid) = uid {
                        sandbox::drop_to(uid, jailed.is_some())?;
                    }
                    if drop_caps {
                        sandbox::drop_in_place()?;
                    }
                    Ok(())
                });
            }
        }
        // Register before the child can fork anything, under the same lock the
        // interrupt handler takes, so no group escapes.
        let mut reg = registry();
        if CLOSING.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::other("the grader is ending"));
        }
        // Born in the check's PID namespace, when it has one (strict).
        let mut group = Group::adopt(pidns::spawn_inside(|| command.spawn())?);
        reg.groups.insert(group.pid() as i32, token);
        let child = group.child_mut();
        drop(reg);
        let stdout = Capture::start(child.stdout.take().expect("stdout is piped").into());
        let stderr = Capture::start(child.stderr.take().expect("stderr is piped").into());
        let mut typing = None;
        match input {
            Input::Bytes(bytes) => {
                let mut pipe = child.stdin.take().expect("stdin is piped");
                std::thread::spawn(move || {
                    // A program that exits without reading all of it is not our error.
                    let _ = pipe.write_all(&bytes);
                });
            }
            Input::Open => typing = child.stdin.take(),
            Input::Empty => {}
        }
        Ok(Running {
            label: label.to_string(),
            typing,
            group,
            stdout,
            stderr,
        })
    }

    /// Writes `bytes` to the stdin of a program started with [`Input::Open`].
    pub fn type_input(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.typing.as_mut() {
            Some(pipe) => pipe.write_all(bytes).and_then(|()| pipe.flush()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "stdin is closed",
            )),
        }
    }

    /// Closes the stdin of a program started with [`Input::Open`]: end of input.
    pub fn close_input(&mut self) {
        self.typing = None;
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// What the program printed on stdout so far: all of it, or its first and last
    /// 64 KiB when it printed more (see [`Capture`]).
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.bytes()
    }

    /// What the program printed on stderr so far (all, or first and last 64 KiB).
    pub fn stderr(&self) -> Vec<u8> {
        self.stderr.bytes()
    }

    /// The end of stderr (the last 64 KiB), and how many bytes were printed in all
    /// when that is more than was kept.
    pub fn stderr_tail(&self) -> (String, Option<u64>) {
        let text = String::from_utf8_lossy(&self.stderr.tail_bytes()).into_owned();
        (text, self.stderr.was_cut().then(|| self.stderr.total()))
    }

    /// stdout so far, as (lossy) text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout()).into_owned()
    }

    /// stderr so far, as (lossy) text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr()).into_owned()
    }

    /// The exit status, if the program has exited (never blocks for long: once it has
    /// exited, what is still in its output pipes is taken in first, so that its output
    /// is complete).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.wait_exit(Duration::ZERO)
    }

    /// Takes in whatever the program has written so far that the capture threads have
    /// not read yet (say, the last words it printed just before closing a connection).
    pub fn take_in_output(&self) {
        self.drain_output();
    }

    fn drain_output(&self) {
        self.stdout.drain(Duration::from_millis(300));
        self.stderr.drain(Duration::from_millis(300));
    }

    /// Waits up to `limit` for the program to exit, polling.
    /// Once it has, what is still in its output pipes is taken in first (the first time).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let already = self.group.reaped().is_some();
        let status = self.group.wait_exit(limit);
        if !already && status.is_some() {
            self.drain_output();
        }
        status
    }

    /// Sends `sig` to the program only (not its group).
    pub fn signal(&self, sig: Signal) {
        let _ = signal::kill(Pid::from_raw(self.pid() as i32), sig);
    }

    /// Kills the whole process group (and the program itself, in case it left its
    /// group) and reaps the program.
    pub fn kill(&mut self) {
        let running = self.group.reaped().is_none();
        self.group.kill();
        if running {
            self.drain_output();
        }
        registry().groups.remove(&(self.pid() as i32));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
        self.stdout.stop();
        self.stderr.stop();
    }
}

/// The exit status in words: `exit status 1`, `killed by SIGSEGV`.
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => String::from("unknown exit"),
    }
}
