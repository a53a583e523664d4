//! A PID namespace per check (`--sandbox strict`): the programs a check starts see only
//! each other, never the grader, its other checks or the machine's processes.
//!
//! `unshare(CLONE_NEWPID)` does not move the caller: it only decides where the caller's
//! *next children* are born, and the first of them becomes that namespace's init (pid 1;
//! when it dies, the kernel kills everything in the namespace). So the check's thread
//! makes the namespace and at once starts a tiny init in it, the grader's own binary
//! with [`INIT_ARG`] ([`run_init`]: it only reaps orphans). It then goes back to its own
//! namespace for children, and around each program it starts ([`spawn_inside`]) joins
//! the check's namespace for that one `fork`: the program is pid 2, 3, ... in it, but
//! still the grader's own child, in its own process group, carrying the check's marker,
//! in the check's cgroup, all seen with their real pids from the grader's `/proc`, so
//! process tracking is unchanged. Its orphans go to the init, which reaps them.
//!
//! Ending the init ends the namespace: [`end`] kills it when the check's context goes,
//! it is registered like a program's process group (so a check past its budget, Ctrl+C
//! and the grader's last sweep kill it), and it dies with the check's thread
//! (`PR_SET_PDEATHSIG`), whichever comes first.
//!
//! A program's pids differ inside (its `getpid()` is small): labs whose contract passes
//! pids between the program and the grader run without one (see `Policy::sharing_pids`).

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use anyhow::Context;

use super::process;
use super::sandbox::Unsupported;

/// The first argument that makes the grader's binary a PID namespace's init.
pub const INIT_ARG: &str = "__socklab-pid-init";

/// The check thread's namespace: its init, and the two namespaces to switch between.
struct Namespace {
    init: Child,
    /// The check's namespace (`/proc/<init>/ns/pid`).
    inside: File,
    /// The grader's own (`/proc/thread-self/ns/pid`).
    outside: File,
}

thread_local! {
    static CURRENT: RefCell<Option<Namespace>> = const { RefCell::new(None) };
}

/// Whether a check can have a PID namespace here: tried once, on a thread that ends
/// right after.
pub fn available() -> Result<(), Unsupported> {
    static ANSWER: OnceLock<Result<(), Unsupported>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            std::thread::spawn(|| {
                enter(0)?;
                end();
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| Err(Unsupported("the probe thread panicked".into())))
        })
        .clone()
}

/// Makes a PID namespace for the calling thread's check `token` and starts its init.
pub fn enter(token: u64) -> anyhow::Result<()> {
    end();
    let outside =
        File::open("/proc/thread-self/ns/pid").context("cannot open the grader's PID namespace")?;
    // SAFETY: unshare on the calling thread; it changes only where its children go.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot make a PID namespace");
    }
    // The grader's own binary, even if it was rebuilt since it started.
    let mut command = Command::new("/proc/self/exe");
    command
        .arg(INIT_ARG)
        .env_clear()
        .current_dir("/")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe system calls in the child.
    unsafe {
        command.pre_exec(move || {
            // Dies with the check's thread, whatever happens to the grader.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
    let spawned = command.spawn();
    // Back to the grader's namespace before anything else: the thread cannot even start
    // threads while its children would be born elsewhere.
    let back = join(&outside);
    let mut init = spawned.context("cannot start the PID namespace's init")?;
    let pid = init.id() as i32;
    match back.and_then(|()| File::open(format!("/proc/{pid}/ns/pid"))) {
        Ok(inside) => {
            if token != 0 {
                process::track_group(pid);
            }
            let namespace = Namespace {
                init,
                inside,
                outside,
            };
            CURRENT.with(|c| *c.borrow_mut() = Some(namespace));
            Ok(())
        }
        Err(e) => {
            let _ = init.kill();
            let _ = init.wait();
            Err(e).context("cannot switch PID namespaces")
        }
    }
}

/// Runs `spawn` (one fork) with the children of the calling thread born in its check's
/// PID namespace, when it has one.
pub fn spawn_inside<T>(spawn: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    CURRENT.with(|c| {
        let current = c.borrow();
        let Some(namespace) = current.as_ref() else {
            return spawn();
        };
        join(&namespace.inside)?;
        let spawned = spawn();
        // Must not fail (the thread could not start threads): the grader's own
        // namespace, an ancestor of the check's, may always be joined again.
        join(&namespace.outside).expect("the grader rejoins its own PID namespace");
        spawned
    })
}

/// Ends the calling thread's PID namespace (kills its init, and so everything in it).
pub fn end() {
    if let Some(mut namespace) = CURRENT.with(|c| c.borrow_mut().take()) {
        process::untrack_group(namespace.init.id() as i32);
        let _ = namespace.init.kill();
        let _ = namespace.init.wait();
    }
}

/// setns(2) into a PID namespace (for the calling thread's future children).
fn join(namespace: &File) -> std::io::Result<()> {
    // SAFETY: setns on a descriptor we own.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The init of a check's PID namespace: reaps whatever is orphaned in it until it is
/// killed. Never returns.
pub fn run_init() -> ! {
    loop {
        // SAFETY: waitpid with a null status pointer.
        let reaped = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
        if reaped < 0 {
            // No child right now: orphans come later, from the programs.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
