//! Programs under test: each in its own process group, always killed with its children.
//!
//! [`Running`] starts a program with `process_group(0)`, so the program and anything it
//! forks share one group that a single `killpg` ends. Dropping a `Running` kills that
//! group and reaps the program. Every live group (and every scratch folder) is also in
//! a process-wide registry, which the Ctrl+C/SIGTERM handler empties before the grader
//! exits: nothing is left behind, whichever way the grader stops.
//!
//! stdout and stderr go to files in the check's scratch folder, so a chatty program can
//! never block on a full pipe and the grader can read them at any time.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

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

/// Kills every process group started by check `token` (it ran past its budget).
/// The check's own thread then sees its programs gone and finishes by itself.
pub fn kill_token(token: u64) {
    let groups: Vec<i32> = registry()
        .groups
        .iter()
        .filter(|(_, t)| **t == token)
        .map(|(g, _)| *g)
        .collect();
    for group in groups {
        let _ = signal::killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
}

/// Kills every group still registered and removes every scratch folder: the last
/// thing the grader does, whichever way it ends.
pub fn cleanup_all() {
    let mut reg = registry();
    for group in std::mem::take(&mut reg.groups).into_keys() {
        let _ = signal::killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
    for folder in reg.folders.drain(..) {
        let _ = fs::remove_dir_all(folder);
    }
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the Ctrl+C/SIGTERM handler once: kill every group, remove every folder, exit.
pub fn install_interrupt_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            cleanup_all();
            eprintln!("\ninterrupted: stopped every program under test and cleaned up");
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
pub fn register_folder(path: &Path) {
    registry().folders.push(path.to_path_buf());
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
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Running {
    /// Starts `argv` with output captured to files named after `label` in `folder`.
    ///
    /// `input` says what its stdin holds.
    pub fn start(
        argv: &[String],
        label: &str,
        folder: &Path,
        input: Input,
        envs: &[(&str, &str)],
        uid: Option<u32>,
    ) -> std::io::Result<Running> {
        let safe = label.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let stdout_path = folder.join(format!("{safe}.stdout"));
        let stderr_path = folder.join(format!("{safe}.stderr"));
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            // The grader's own working directory, so relative paths in --cmd work.
            .process_group(0)
            .env_remove("SOCKLAB_NARRATE")
            .env_remove("RUST_BACKTRACE")
            .stdout(File::create(&stdout_path)?)
            .stderr(File::create(&stderr_path)?)
            .stdin(match input {
                Input::Empty => Stdio::null(),
                Input::Bytes(_) | Input::Open => Stdio::piped(),
            });
        for (key, value) in envs {
            command.env(key, value);
        }
        if let Some(uid) = uid {
            // Only root may do this; the program then has no privileges of its own.
            command.uid(uid).gid(uid);
        }
        // Register before the child can fork anything, under the same lock the
        // interrupt handler takes, so no group escapes.
        let mut reg = registry();
        let mut child = command.spawn()?;
        reg.groups
            .insert(child.id() as i32, CHECK_TOKEN.with(|t| t.get()));
        drop(reg);
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
            child,
            stdout_path,
            stderr_path,
            exit: None,
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
        self.child.id()
    }

    /// Everything the program printed on stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        fs::read(&self.stdout_path).unwrap_or_default()
    }

    /// Everything the program printed on stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        fs::read(&self.stderr_path).unwrap_or_default()
    }

    /// stdout so far, as (lossy) text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout()).into_owned()
    }

    /// stderr so far, as (lossy) text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr()).into_owned()
    }

    /// The exit status, if the program has exited (never blocks).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits up to `limit` for the program to exit, polling.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig` to the program only (not its group).
    pub fn signal(&self, sig: Signal) {
        let _ = signal::kill(Pid::from_raw(self.pid() as i32), sig);
    }

    /// Kills the whole process group and reaps the program.
    pub fn kill(&mut self) {
        let group = self.pid() as i32;
        let _ = signal::killpg(Pid::from_raw(group), Signal::SIGKILL);
        if self.exit.is_none() {
            self.exit = self.child.wait().ok();
        }
        registry().groups.remove(&group);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
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
