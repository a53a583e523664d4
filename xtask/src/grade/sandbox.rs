//! The sandbox every program under test runs in: `--sandbox strict|basic|off`.
//!
//! An instructor grading a class runs other people's code, often as root. What each
//! level gives every program a check starts:
//! - `basic`: its working directory is the check's scratch folder (never the repository),
//!   and its environment is scrubbed: `PATH`, `HOME` and `TMPDIR` (the scratch folder),
//!   `LANG`/`LC_ALL`, the check's marker and the variables the check passes; nothing else
//!   of the grader's environment (no tokens, no `CARGO_*`, no `SSH_AUTH_SOCK`); and at
//!   most [`MEMORY_CAP`] of writable memory per program (`RLIMIT_DATA`).
//! - `strict` (where the machine allows it): as `basic`, and, as root, a uid of its own
//!   per check (so it cannot write the repository, read root's files or signal the grader
//!   or another check's programs), `no_new_privs` (no setuid binary gives root back), a cap
//!   on file size and on its processes; and a network namespace per check with only `lo`:
//!   the check's thread enters it before the check runs, so the grader's own sockets for
//!   that check, the programs it starts (they inherit the thread's namespace) and the
//!   `/proc/thread-self/net/*` tables the checks read all live there, and the program
//!   cannot reach any other address; and (root, Linux 5.12) a mount namespace per program
//!   in which the whole file system is read-only but its scratch folder (bound at its
//!   own path) and a private 64 MiB tmpfs `/tmp` ([`Mounts`]): nothing it writes
//!   outlives its check or reaches another submission; its scratch folder capped at
//!   64 MiB in all ([`scratchfs`]); and a PID namespace per check ([`pidns`], with a
//!   /proc of its own), but for the labs whose contract passes pids ([`shares_pids`]).
//!   A non-root grader gets the namespaces, not the uid, from a user namespace of its
//!   own ([`userns`]), its programs holding no capability.
//! - `off`: as the grader itself (the repository as working directory, the whole
//!   environment): for debugging the grader only.
//!
//! [`Policy::decide`] says once per graded program which protections hold here, and
//! why the others do not ([`Summary`], shown in the report's header and JSON).
//! [`Jail`] is one check's share of it, applied by [`Running::start`](super::process).

use std::ffi::{CString, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::serial::{serialize_by_name, serialize_fields};
use anyhow::Context;

use super::{pidns, scratchfs, userns};

/// How much the programs under test are confined.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Own uid per check (as root), private network, capped files and processes.
    Strict,
    /// Scratch folder as working directory, scrubbed environment.
    Basic,
    /// As the grader itself (debugging the grader).
    Off,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Strict => "strict",
            Level::Basic => "basic",
            Level::Off => "off",
        }
    }
}
serialize_by_name!(Level);

/// Why a protection of `strict` cannot be had on this machine, in one line for the
/// report's sandbox line ("network namespace per check (only lo): WHY"). Not an error
/// of the grader: [`Policy::decide`] records it and grades on. A type of its own (not
/// `anyhow::Error`) because each probe's answer is kept for the whole run and cloned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl From<anyhow::Error> for Unsupported {
    /// A step that failed while trying the protection: its whole chain on one line.
    fn from(e: anyhow::Error) -> Self {
        Unsupported(format!("{e:#}"))
    }
}

/// Which protections were in force for a graded program, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub level: Level,
    pub in_force: Vec<String>,
    /// Protections of `strict` that were not in force, each with why.
    pub missing: Vec<String>,
}
serialize_fields!(Summary {
    level,
    in_force,
    missing
});

/// What the checks of one graded program get.
#[derive(Clone, Debug)]
pub struct Policy {
    pub level: Level,
    /// Each check's programs run as a uid of their own (root only).
    pub own_uid: bool,
    /// Each check runs in a network namespace of its own with only `lo`.
    pub private_network: bool,
    /// Each program sees the file system read-only but for its scratch folder and a
    /// private /tmp (a mount namespace of its own).
    pub read_only_files: bool,
    /// The programs run as the grader's user without any capability (a non-root
    /// grader in a user namespace of its own, [`userns`]).
    pub drop_caps: bool,
    /// Each check's scratch folder is a tmpfs capped at 64 MiB ([`scratchfs`]).
    pub capped_scratch: bool,
    /// Each check's programs live in a PID namespace of their own ([`pidns`]).
    pub pid_namespace: bool,
    /// The folders of the program's files under /tmp, bound (read-only) into each
    /// program's private /tmp so that it still finds them there; None when one of its
    /// files is in /tmp itself: then /tmp is only read-only, not private.
    keep: Option<Vec<PathBuf>>,
    pub summary: Summary,
}

/// The labs whose contract passes pids between the program and the grader, and how:
/// their programs run without a PID namespace (their pids must be the grader's).
const SHARED_PIDS: &[(&str, &str)] = &[
    (
        "lab5",
        "lab5's server prints its client's pid (SO_PEERCRED), which must be the grader's",
    ),
    (
        "lab8",
        "lab8's pid files carry real pids both ways (the daemon's getpid(), processes \
         the grader starts for status)",
    ),
];

/// Why `lab`'s programs must see real pids, if they must.
pub fn shares_pids(lab: &str) -> Option<&'static str> {
    SHARED_PIDS
        .iter()
        .find(|(id, _)| *id == lab)
        .map(|(_, why)| *why)
}

/// The largest file a confined program may write (`RLIMIT_FSIZE`).
pub const FILE_SIZE_CAP: u64 = 64 * 1024 * 1024;
/// How many processes a check's uid may have at once (`RLIMIT_NPROC`): no fork bomb.
pub const PROCESS_CAP: u64 = 256;
/// How much writable memory one program may map (`RLIMIT_DATA`: its heap, anonymous
/// mappings and thread stacks), under `basic` and `strict`. Not `RLIMIT_AS`: address
/// space merely reserved (a JVM's heap, V8's pointer cage, glibc's malloc arenas) does
/// not count, so no runtime is refused at start-up, while a program that really
/// allocates without end gets ENOMEM at 2 GiB instead of taking the machine.
pub const MEMORY_CAP: u64 = 2 * 1024 * 1024 * 1024;

/// In the child, between fork and exec: the memory cap. Async-signal-safe.
///
/// # Safety
/// Call only in a forked child before exec.
pub unsafe fn cap_memory() {
    cap(libc::RLIMIT_DATA, MEMORY_CAP);
}

/// Sets both the soft and the hard limit of `resource` to `value` (setrlimit(2), which
/// is async-signal-safe: callable between fork and exec).
fn cap(resource: libc::__rlimit_resource_t, value: u64) {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: a system call on a stack value.
    unsafe {
        libc::setrlimit(resource, &limit);
    }
}

const SCRATCH_CWD: &str = "scratch folder as working directory";
const SCRUBBED_ENV: &str = "scrubbed environment";
const OWN_UID: &str = "own uid per check";
const LIMITS: &str = "no new privileges, files up to 64 MiB, 256 processes";
const NO_CAPS: &str = "no capabilities, no new privileges, files up to 64 MiB";
const NETWORK: &str = "network namespace per check (only lo)";
const FILES: &str = "read-only file system but the scratch folder and a private 64 MiB /tmp";
const SCRATCH_CAP: &str = "scratch folder capped at 64 MiB in all";
const PIDS: &str = "PID namespace per check (the grader and other checks out of sight)";

impl Policy {
    /// The policy for `program` (absolute argv, see [`absolute_argv`]) at `level`.
    pub fn decide(level: Level, program: &[String]) -> Policy {
        let mut in_force = Vec::new();
        let mut missing = Vec::new();
        let (mut own_uid, mut private_network, mut read_only_files) = (false, false, false);
        let (mut capped_scratch, mut pid_namespace) = (false, false);
        let drop_caps = level == Level::Strict && userns::inside();
        if level != Level::Off {
            in_force.push(SCRATCH_CWD.to_string());
            in_force.push(SCRUBBED_ENV.to_string());
        }
        match level {
            Level::Strict => {
                if drop_caps {
                    in_force.push(NO_CAPS.to_string());
                }
                match uid_available().and_then(|()| readable_by_others(program)) {
                    Ok(()) => {
                        own_uid = true;
                        in_force.push(OWN_UID.to_string());
                        in_force.push(LIMITS.to_string());
                    }
                    Err(why) => missing.push(format!("{OWN_UID}: {why}")),
                }
                match network_available() {
                    Ok(()) => {
                        private_network = true;
                        in_force.push(NETWORK.to_string());
                    }
                    Err(why) => missing.push(format!("{NETWORK}: {why}")),
                }
                match mounts_available() {
                    Ok(()) if own_uid || drop_caps => {
                        read_only_files = true;
                        in_force.push(match folders_on_tmp(program) {
                            Some(_) => FILES.to_string(),
                            None => "read-only file system but the scratch folder (the program \
                                     is in /tmp itself: /tmp is read-only, not private)"
                                .to_string(),
                        });
                    }
                    Ok(()) => missing.push(format!("{FILES}: the program has no uid of its own")),
                    Err(why) => missing.push(format!("{FILES}: {why}")),
                }
                match mounts_available() {
                    Ok(()) => {
                        capped_scratch = true;
                        in_force.push(SCRATCH_CAP.to_string());
                    }
                    Err(why) => missing.push(format!("{SCRATCH_CAP}: {why}")),
                }
                match pidns::available() {
                    Ok(()) => {
                        pid_namespace = true;
                        in_force.push(PIDS.to_string());
                    }
                    Err(why) => missing.push(format!("{PIDS}: {why}")),
                }
            }
            Level::Basic | Level::Off => {
                let why = format!("--sandbox {}", level.name());
                missing.push(format!("{OWN_UID}: {why}"));
                missing.push(format!("{NETWORK}: {why}"));
                missing.push(format!("{FILES}: {why}"));
                missing.push(format!("{SCRATCH_CAP}: {why}"));
                missing.push(format!("{PIDS}: {why}"));
            }
        }
        Policy {
            level,
            own_uid,
            private_network,
            read_only_files,
            drop_caps,
            capped_scratch,
            pid_namespace,
            keep: folders_on_tmp(program),
            summary: Summary {
                level,
                in_force,
                missing,
            },
        }
    }

    /// The same policy without a PID namespace, for a lab whose contract passes pids
    /// between the program and the grader (`why`): inside one, the program's pids are
    /// not the grader's.
    pub fn sharing_pids(mut self, why: &str) -> Policy {
        if self.pid_namespace {
            self.pid_namespace = false;
            self.summary.in_force.retain(|p| p != PIDS);
            self.summary.missing.push(format!("{PIDS}: {why}"));
        }
        self
    }

    /// The policy of the grader's own tests and tools: `basic`.
    pub fn basic() -> Policy {
        Policy::decide(Level::Basic, &[])
    }

    /// Check `token`'s share, with `scratch` as its folder; None at `off`.
    pub fn jail(&self, token: u64, scratch: &Path) -> Option<Jail> {
        if self.level == Level::Off {
            return None;
        }
        let scratch_text = scratch.as_os_str().to_os_string();
        let path = match self.own_uid {
            // Only the folders the check's user may enter (not root's ~/.cargo/bin).
            true => others_path(),
            false => std::env::var_os("PATH").filter(|p| !p.is_empty()),
        }
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), scratch_text.clone()),
            ("TMPDIR".into(), scratch_text),
            ("LANG".into(), "C.UTF-8".into()),
            ("LC_ALL".into(), "C.UTF-8".into()),
        ];
        Some(Jail {
            cwd: scratch.to_path_buf(),
            env,
            uid: self.own_uid.then(|| check_uid(token)),
            drop_caps: self.drop_caps,
            mounts: self
                .read_only_files
                .then(|| Mounts::new(scratch, self.keep.as_deref(), self.pid_namespace))
                .flatten(),
        })
    }
}

/// One check's confinement, applied to every program the check starts.
#[derive(Clone, Debug)]
pub struct Jail {
    /// The working directory: the check's scratch folder.
    pub cwd: PathBuf,
    /// The whole environment (before the marker and the check's own variables).
    pub env: Vec<(OsString, OsString)>,
    /// The check's own uid (also its gid), when it has one.
    pub uid: Option<u32>,
    /// The programs lose every capability (a non-root grader's user namespace).
    pub drop_caps: bool,
    /// The program's private view of the file system, when it gets one.
    pub mounts: Option<Mounts>,
}

/// What a program's mount namespace is made of, prepared before fork (no allocation
/// after it): the scratch folder, and the folders to make on the private /tmp so that
/// the scratch folder keeps its path there.
#[derive(Clone, Debug)]
pub struct Mounts {
    scratch: CString,
    /// The folders bound at their own path over the private /tmp: the scratch folder
    /// first, then the program's (at most [`KEPT`] in all).
    bound: Vec<CString>,
    /// `/tmp/a`, `/tmp/a/b`, ... down to each bound folder under /tmp, parents first.
    on_tmp: Vec<CString>,
    /// Whether /tmp is a fresh tmpfs (else it is the machine's, read-only).
    private_tmp: bool,
    /// Whether /proc is mounted afresh, showing only the check's PID namespace.
    own_proc: bool,
}

/// The most folders bound into a program's private /tmp.
const KEPT: usize = 8;

impl Mounts {
    fn new(scratch: &Path, keep: Option<&[PathBuf]>, own_proc: bool) -> Option<Mounts> {
        let text = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).ok();
        let private_tmp = keep.is_some();
        let keep = keep.unwrap_or_default();
        let mut on_tmp = Vec::new();
        let mut bound = Vec::new();
        for folder in std::iter::once(scratch).chain(keep.iter().map(PathBuf::as_path)) {
            let below = folder.strip_prefix("/tmp").ok().filter(|_| private_tmp);
            let Some(below) = below else {
                if folder == scratch {
                    bound.push(text(folder)?);
                }
                continue;
            };
            if bound.len() == KEPT {
                break;
            }
            let mut path = PathBuf::from("/tmp");
            for part in below.components() {
                path.push(part);
                let made = text(&path)?;
                if !on_tmp.contains(&made) {
                    on_tmp.push(made);
                }
            }
            bound.push(text(folder)?);
        }
        Some(Mounts {
            scratch: text(scratch)?,
            bound,
            on_tmp,
            private_tmp,
            own_proc,
        })
    }

    /// In the child, as root, before exec: a mount namespace of its own where
    /// everything is read-only, /tmp is a fresh 64 MiB tmpfs, and the scratch folder
    /// (bound at its own path) is writable; then back into the scratch folder.
    ///
    /// # Safety
    /// Call only in a forked child before exec: system calls only.
    pub unsafe fn enter(&self) -> std::io::Result<()> {
        let fail = || Err(std::io::Error::last_os_error());
        let none = std::ptr::null::<libc::c_char>();
        // SAFETY: system calls on C strings prepared before fork.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return fail();
            }
            let root = c"/".as_ptr();
            if libc::mount(
                none,
                root,
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                none.cast(),
            ) != 0
            {
                return fail();
            }
            // The program is in the check's PID namespace (pidns.rs): a /proc of that
            // namespace shows it only its own check's processes.
            if self.own_proc && mount_own_proc() != 0 {
                return fail();
            }
            // Held open across the new /tmp, to bind them back at their own paths.
            let mut held = [-1; KEPT];
            for (slot, folder) in held.iter_mut().zip(&self.bound) {
                *slot = libc::open(
                    folder.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                );
                if *slot < 0 {
                    return fail();
                }
            }
            let tmp = c"/tmp".as_ptr();
            let options = c"size=64m,mode=1777".as_ptr();
            if self.private_tmp
                && libc::mount(
                    c"tmpfs".as_ptr(),
                    tmp,
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    options.cast(),
                ) != 0
            {
                return fail();
            }
            for folder in &self.on_tmp {
                libc::mkdir(folder.as_ptr(), 0o755);
            }
            // The scratch folder and the program's, bound at their own paths (over the
            // fresh /tmp, when there).
            for (&fd, folder) in held.iter().zip(&self.bound) {
                let mut source = [0 as libc::c_char; 32];
                if fd_path(fd, &mut source) == 0
                    || libc::mount(
                        source.as_ptr(),
                        folder.as_ptr(),
                        none,
                        libc::MS_BIND,
                        none.cast(),
                    ) != 0
                {
                    return fail();
                }
                libc::close(fd);
            }
            if set_read_only(root, true, true) != 0
                || (self.private_tmp && set_read_only(tmp, false, false) != 0)
                || set_read_only(self.scratch.as_ptr(), false, false) != 0
                || libc::chdir(self.scratch.as_ptr()) != 0
            {
                return fail();
            }
        }
        Ok(())
    }
}

/// The folders of the program and of its file arguments that are under /tmp (absolute
/// argv), which a private /tmp would hide.
fn folders_on_tmp(program: &[String]) -> Option<Vec<PathBuf>> {
    let mut folders: Vec<PathBuf> = Vec::new();
    let first = program.first().and_then(|p| program_path(p));
    let files = program
        .iter()
        .skip(1)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_file());
    for file in first.into_iter().chain(files) {
        let Some(folder) = file.parent() else {
            continue;
        };
        if folder == Path::new("/tmp") {
            return None;
        }
        if folder.starts_with("/tmp") {
            let folder = folder.to_path_buf();
            if !folders.contains(&folder) {
                folders.push(folder);
            }
        }
    }
    Some(folders)
}

/// Mounts a /proc of the caller's PID namespace over /proc (in its own mount
/// namespace); 0 or -1 as mount(2). A system call only.
pub fn mount_own_proc() -> libc::c_int {
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: mount on constant C strings.
    unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            none.cast(),
        )
    }
}

/// Makes every mount of the caller's (new) mount namespace follow the machine's but
/// show it none of its own; 0 or -1 as mount(2). A system call only.
pub fn keep_mounts_to_self() -> libc::c_int {
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: mount on constant C strings.
    unsafe {
        libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_SLAVE,
            none.cast(),
        )
    }
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// mount_setattr(2) on `path`: read-only (or writable), the mounts below too
/// (`recursive`).
///
/// # Safety
/// A system call on a C string.
unsafe fn set_read_only(path: *const libc::c_char, read_only: bool, recursive: bool) -> i64 {
    let attr = MountAttr {
        attr_set: if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if read_only { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the kernel reads `attr` (its size given) and the path.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path,
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    }
}

/// Writes `/proc/self/fd/<fd>` and a NUL into `out` without allocating; returns its
/// length (0 if it does not fit).
fn fd_path(fd: i32, out: &mut [libc::c_char; 32]) -> usize {
    let prefix = b"/proc/self/fd/";
    let mut digits = [0u8; 12];
    let (mut n, mut value) = (0, fd.max(0) as u32);
    loop {
        digits[n] = b'0' + (value % 10) as u8;
        n += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    if prefix.len() + n + 1 > out.len() {
        return 0;
    }
    for (slot, byte) in out.iter_mut().zip(prefix) {
        *slot = *byte as libc::c_char;
    }
    for i in 0..n {
        out[prefix.len() + i] = digits[n - 1 - i] as libc::c_char;
    }
    out[prefix.len() + n] = 0;
    prefix.len() + n
}

/// The uid (and gid) of check `token`'s programs: `0x4000_0000 | pid << 8 | token`, a
/// range no distribution hands out, distinct across the checks of this grader that can
/// be alive at once (256 apart at least) and across concurrent graders (their pids).
pub fn check_uid(token: u64) -> u32 {
    let pid = std::process::id() & 0x3F_FFFF;
    0x4000_0000 | (pid << 8) | (token as u32 & 0xFF)
}

/// In the child, between fork and exec, for a non-root grader in its own user namespace:
/// the file-size cap, then no capability survives exec. Only async-signal-safe calls.
///
/// # Safety
/// Call only in a forked child before exec.
pub unsafe fn drop_in_place() -> std::io::Result<()> {
    cap(libc::RLIMIT_FSIZE, FILE_SIZE_CAP);
    // SAFETY: system calls on stack values.
    unsafe {
        libc::umask(0o022);
        userns::drop_capabilities()
    }
}

/// In the child, between fork and exec: caps, then drops to `uid`. Only async-signal
/// safe system calls.
///
/// # Safety
/// Call only in a forked child before exec.
pub unsafe fn drop_to(uid: u32, limits: bool) -> std::io::Result<()> {
    // SAFETY: plain system calls on integers and stack values.
    unsafe {
        if limits {
            cap(libc::RLIMIT_FSIZE, FILE_SIZE_CAP);
            cap(libc::RLIMIT_NPROC, PROCESS_CAP);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // The check's thread creates files group-writable (umask 002, see
        // share_files_with); the program gets the usual umask.
        libc::umask(0o022);
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(uid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether programs can be started as a uid of their own here (root, and a uid outside
/// any container's narrow mapping): tried once with `true`.
fn uid_available() -> Result<(), Unsupported> {
    static ANSWER: OnceLock<Result<(), Unsupported>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            if userns::inside() {
                return Err(Unsupported(
                    "the grader is not root: its user namespace maps only its own \
                            uid, so the programs run as the grader's user"
                        .into(),
                ));
            }
            if !nix::unistd::geteuid().is_root() {
                return Err(not_root("only root can start programs as another user"));
            }
            use std::os::unix::process::CommandExt;
            let uid = check_uid(0);
            let mut command = std::process::Command::new("true");
            // SAFETY: drop_to makes system calls only.
            unsafe {
                command.pre_exec(move || drop_to(uid, true));
            }
            match command.status() {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(Unsupported(format!(
                    "`true` as uid {uid} ended with {status}"
                ))),
                Err(e) => Err(Unsupported(format!("cannot switch to uid {uid} here: {e}"))),
            }
        })
        .clone()
}

/// Whether a program can be given its private, read-only view of the file system here
/// (root, mount_setattr: Linux 5.12): tried once with `true` on a scratch folder.
fn mounts_available() -> Result<(), Unsupported> {
    static ANSWER: OnceLock<Result<(), Unsupported>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                return Err(not_root("mounts need CAP_SYS_ADMIN"));
            }
            use std::os::unix::process::CommandExt;
            let folder = super::files::Scratch::new("socklab-probe-")
                .map_err(|e| Unsupported(format!("cannot make a folder to try it: {e}")))?;
            let mounts = Mounts::new(folder.path(), Some(&[]), false)
                .ok_or_else(|| Unsupported("an unusual temp path".into()))?;
            let mut command = std::process::Command::new("true");
            // SAFETY: Mounts::enter makes system calls only.
            unsafe {
                command.pre_exec(move || mounts.enter());
            }
            match command.status() {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(Unsupported(format!(
                    "`true` in a mount namespace ended with {status}"
                ))),
                Err(e) => Err(Unsupported(format!(
                    "cannot make a read-only mount namespace here: {e}"
                ))),
            }
        })
        .clone()
}

/// Why a non-root grader lacks a protection (`need`), and why it has no user namespace
/// of its own either.
fn not_root(need: &str) -> Unsupported {
    Unsupported(match userns::why_not() {
        Some(why) => format!("the grader is not root ({need}) and has no user namespace: {why}"),
        None => format!("the grader is not root ({need})"),
    })
}

/// Whether a thread may make a network namespace of its own here: tried once, on a
/// thread that ends right after.
fn network_available() -> Result<(), Unsupported> {
    static ANSWER: OnceLock<Result<(), Unsupported>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                return Err(not_root(
                    "the grader's own sockets must join the namespace, which needs \
                     CAP_SYS_ADMIN",
                ));
            }
            std::thread::spawn(|| Ok(enter_private_network()?))
                .join()
                .unwrap_or_else(|_| Err(Unsupported("the probe thread panicked".into())))
        })
        .clone()
}

/// Prepares the calling thread, which is about to run check `token`: its network
/// namespace, and (with an own uid) files it makes belong to the check's group.
pub fn prepare_thread(policy: &Policy, token: u64) -> anyhow::Result<()> {
    if policy.private_network {
        enter_private_network()?;
    }
    if policy.capped_scratch {
        scratchfs::enter()?;
    }
    if policy.pid_namespace {
        pidns::enter(token)?;
    }
    if policy.own_uid {
        share_files_with(check_uid(token))?;
    }
    Ok(())
}

/// Makes the files, folders and Unix sockets this thread creates (a folder for a pid
/// file, the grader's own socket in the scratch folder) usable by the check's programs
/// and by no other check's: group `gid` (the check's), group-writable. The thread gets
/// its own umask (`unshare(CLONE_FS)`) and file-system gid (`setfsgid`, per thread);
/// root keeps every other right.
fn share_files_with(gid: u32) -> anyhow::Result<()> {
    // SAFETY: system calls on integers; both affect the calling thread only.
    unsafe {
        if libc::unshare(libc::CLONE_FS) != 0 {
            return Err(std::io::Error::last_os_error())
                .context("cannot give the check's thread its own umask");
        }
        libc::umask(0o002);
        libc::setfsgid(gid);
    }
    Ok(())
}

/// Moves the calling thread (only it) into a new network namespace and brings its `lo`
/// up. Every socket the thread makes from then on, every thread it spawns and every
/// program it starts live there. The namespace goes when the last of them ends.
pub fn enter_private_network() -> anyhow::Result<()> {
    // SAFETY: unshare affects the calling thread only for CLONE_NEWNET.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot make a network namespace");
    }
    loopback_up().context("cannot bring lo up in the check's namespace")
}

/// `ip link set lo up`, with one ioctl on a socket of the current namespace.
fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: a socket we own, and an ifreq on the stack.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The program's argv with relative paths made absolute: the program (when it names a
/// file, `./server` or `bin/server`) and every argument naming an existing file relative
/// to the grader's working directory (`python3 my_server.py`), since programs start in
/// their scratch folder.
pub fn absolute_argv(argv: &[String]) -> Vec<String> {
    let Ok(here) = std::env::current_dir() else {
        return argv.to_vec();
    };
    argv.iter()
        .enumerate()
        .map(|(i, arg)| {
            let path = Path::new(arg);
            let names_file = if i == 0 {
                arg.contains('/')
            } else {
                !arg.starts_with('-') && path.exists()
            };
            if path.is_relative() && names_file {
                here.join(path).display().to_string()
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// The grader's PATH without the folders other users cannot enter.
fn others_path() -> Option<OsString> {
    let paths = std::env::var_os("PATH")?;
    let kept: Vec<PathBuf> = std::env::split_paths(&paths)
        .filter(|dir| searchable_by_others(dir))
        .collect();
    std::env::join_paths(kept).ok()
}

/// Whether `dir` and every folder above it may be entered by any user.
fn searchable_by_others(dir: &Path) -> bool {
    dir.is_absolute()
        && dir.ancestors().all(|folder| {
            std::fs::metadata(folder)
                .is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
        })
}

/// For a program named without a folder (`python3`): the first one on the PATH other
/// users can reach, as an absolute path (the grader's own may be in root's home, as a
/// pyenv shim is). Unchanged when none is, or when the program has a folder.
pub fn for_others(argv: &mut [String]) {
    let Some(first) = argv.first_mut() else {
        return;
    };
    if first.contains('/') {
        return;
    }
    let found = others_path().and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&*first))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = found {
        *first = path.display().to_string();
    }
}

/// The program as a path: itself when it has a `/`, else found on PATH.
fn program_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether a user that is neither owner nor group can run `program` (absolute argv):
/// every folder on the way searchable by others, the program executable by others,
/// file arguments readable by others. Otherwise why, naming the path.
pub fn readable_by_others(program: &[String]) -> Result<(), Unsupported> {
    let Some(first) = program.first() else {
        return Ok(());
    };
    let mut wanted: Vec<(PathBuf, u32)> = Vec::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    if let Some(path) = program_path(first) {
        if first.contains('/') {
            folders.extend(path.parent().map(Path::to_path_buf));
        }
        wanted.push((path, 0o001));
    }
    for arg in &program[1..] {
        let path = Path::new(arg);
        if path.is_absolute() && path.is_file() {
            folders.extend(path.parent().map(Path::to_path_buf));
            wanted.push((path.to_path_buf(), 0o004));
        }
    }
    // The files next to the program (a submission's `run` and the script it starts)
    // are read too: each must be readable by others.
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten().take(500) {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                wanted.push((entry.path(), 0o004));
            }
        }
    }
    for (path, bit) in wanted {
        for folder in path.ancestors().skip(1) {
            if folder.as_os_str().is_empty() {
                continue;
            }
            let mode = std::fs::metadata(folder).map_or(0, |m| m.permissions().mode());
            if mode & 0o001 == 0 {
                return Err(Unsupported(format!(
                    "other users cannot enter {} (chmod o+x it, or grade with --sandbox basic)",
                    folder.display()
                )));
            }
        }
        let mode = std::fs::metadata(&path).map_or(0, |m| m.permissions().mode());
        if mode & bit == 0 {
            let what = if bit == 0o001 { "run" } else { "read" };
            return Err(Unsupported(format!(
                "other users cannot {what} {} (chmod o+{}, or grade with --sandbox basic)",
                path.display(),
                if bit == 0o001 { "rx" } else { "r" }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute() {
        let here = std::env::current_dir().unwrap();
        let argv: Vec<String> = ["python3", "Cargo.toml", "--port", "x/none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = absolute_argv(&argv);
        assert_eq!(got[0], "python3");
        assert_eq!(got[1], here.join("Cargo.toml").display().to_string());
        assert_eq!(&got[2..], &argv[2..]);
        let got = absolute_argv(&["./run".to_string()]);
        assert_eq!(got[0], here.join("./run").display().to_string());
    }

    #[test]
    fn labs_that_pass_pids_go_without_a_pid_namespace_and_say_why() {
        assert!(shares_pids("lab8").is_some());
        assert!(shares_pids("lab3").is_none());
        let mut policy = Policy::basic();
        policy.pid_namespace = true;
        policy.summary.in_force.push(PIDS.to_string());
        let policy = policy.sharing_pids("pids go both ways");
        assert!(!policy.pid_namespace);
        assert!(!policy.summary.in_force.iter().any(|p| p == PIDS));
        assert!(
            policy
                .summary
                .missing
                .contains(&format!("{PIDS}: pids go both ways"))
        );
    }

    #[test]
    fn check_uids_are_high_and_distinct() {
        assert!(check_uid(1) >= 0x4000_0000);
        assert_ne!(check_uid(1), check_uid(2));
        assert!(check_uid(u64::MAX) < 0x8000_0000);
    }
}
