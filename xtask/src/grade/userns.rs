//! `--sandbox strict` for a grader that is not root: a user namespace of its own.
//!
//! Where the kernel lets unprivileged users make user namespaces, the grader moves into
//! one at start-up ([`enter`], while it still has a single thread: a multithreaded
//! process cannot), mapping its own uid and gid to 0. It then holds the capabilities
//! of that namespace, enough to give each check a network, mount and PID namespace of
//! its own, as root would. It cannot give a check a uid of its own: only its own uid
//! is mapped, so the programs still run as the grader's user (they can read what that
//! user can read). The programs do not keep the namespace's capabilities (they could
//! undo their read-only mounts): [`drop_capabilities`] takes them all before exec.
//!
//! A PID namespace per check needs one more step: the grader's thread must switch its
//! children between its own PID namespace and the check's, which takes privilege over
//! both. So the grader also makes a PID (and mount) namespace owned by its user
//! namespace and runs on in it as the init of that namespace, with a /proc of its own
//! ([`INNER`]); the process that was started stays outside only to wait for it,
//! passing on SIGINT, SIGTERM and SIGHUP, and exits with its status.
//!
//! Files the grader makes still belong to its real user; to the rest of the machine
//! nothing changes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use super::sandbox::Unsupported;

/// Set in the environment of the grader that runs on inside the namespaces.
const INNER: &str = "SOCKLAB_USERNS_INNER";

/// Whether the grader moved into a user namespace of its own, or why not.
static ENTERED: OnceLock<Result<(), Unsupported>> = OnceLock::new();

/// Moves the grader (a non-root user) into a user namespace where its uid is 0; call
/// before any thread starts. Does nothing as root. The outcome is kept for the report.
pub fn enter() -> Result<(), Unsupported> {
    ENTERED.get_or_init(try_enter).clone()
}

fn try_enter() -> Result<(), Unsupported> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    if std::env::var_os(INNER).is_some() {
        // SAFETY: the grader still has a single thread (see enter).
        unsafe { std::env::remove_var(INNER) };
        return match uid {
            0 => Ok(()),
            _ => Err(Unsupported(
                "the grader's user namespace was not made".into(),
            )),
        };
    }
    if uid == 0 {
        return Err(Unsupported("the grader is root".into()));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .map(str::trim);
    if threads != Some("1") {
        return Err(Unsupported("the grader already runs threads".into()));
    }
    // SAFETY: unshare on a single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(Unsupported(format!(
            "this kernel does not let users make user namespaces ({})",
            std::io::Error::last_os_error()
        )));
    }
    let map = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text)
            .map_err(|e| Unsupported(format!("cannot write /proc/self/{file}: {e}")))
    };
    map("setgroups", "deny".into())?;
    map("uid_map", format!("0 {uid} 1"))?;
    map("gid_map", format!("0 {gid} 1"))?;
    // SAFETY: unshare on a single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID) } == 0 {
        run_inner();
    }
    // No PID namespace for the grader: the checks get none either (and say why).
    Ok(())
}

/// The grader's pid 1 inside the namespaces, for the signal handler to pass signals on.
static INNER_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(signal: libc::c_int) {
    let pid = INNER_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Runs the grader again as the init of the new PID namespace, with a /proc of that
/// namespace, waits for it and exits with its status. Never returns.
fn run_inner() -> ! {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    // The grader's own binary, even if it was rebuilt since it started.
    let mut command = std::process::Command::new("/proc/self/exe");
    command.args(std::env::args_os().skip(1)).env(INNER, "1");
    // SAFETY: only system calls in the child.
    unsafe {
        command.pre_exec(|| {
            use super::sandbox::{keep_mounts_to_self, mount_own_proc};
            if keep_mounts_to_self() != 0 || mount_own_proc() != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("xtask: error: cannot run the grader in its own namespaces: {e}");
            std::process::exit(2);
        }
    };
    INNER_PID.store(child.id() as i32, Ordering::SeqCst);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a handler that only makes an async-signal-safe call.
        unsafe {
            libc::signal(
                signal,
                pass_on as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    let status = loop {
        match child.wait() {
            Ok(status) => break status,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => std::process::exit(2),
        }
    };
    std::process::exit(
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
    )
}

/// Whether the grader is in a user namespace of its own ([`enter`] succeeded).
pub fn inside() -> bool {
    ENTERED.get().is_some_and(Result::is_ok)
}

/// Why the grader is not in a user namespace of its own, when it is not root either.
pub fn why_not() -> Option<String> {
    ENTERED.get().and_then(|r| r.clone().err()).map(|why| why.0)
}

/// Whether the grader is root on the machine (not only in its own user namespace).
pub fn real_root() -> bool {
    nix::unistd::geteuid().is_root() && !inside()
}

/// In the child, between fork and exec: no capability survives exec, ever (root's
/// exec rule is off and locked, the bounding set is empty), and no new privileges.
/// Only async-signal-safe system calls.
///
/// # Safety
/// Call only in a forked child before exec.
pub unsafe fn drop_capabilities() -> std::io::Result<()> {
    const PR_SET_SECUREBITS: libc::c_int = 28;
    // SECBIT_NOROOT | _LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | _LOCKED
    const SECURE: libc::c_ulong = 0x01 | 0x02 | 0x40 | 0x80;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let fail = || Err(std::io::Error::last_os_error());
    // SAFETY: prctl and capset with integers and stack values.
    unsafe {
        if libc::prctl(PR_SET_SECUREBITS, SECURE, 0, 0, 0) != 0 {
            return fail();
        }
        for cap in 0..64 {
            // EINVAL past the last capability this kernel knows.
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        let header = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let none = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header, none.as_ptr()) != 0 {
            return fail();
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return fail();
        }
    }
    Ok(())
}
