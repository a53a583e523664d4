//! A cgroup v2 per check, where the grader may make one (root, cgroup2 mounted).
//!
//! The environment marker ([`strays`](super::strays)) finds whatever left its process
//! group, unless the program wiped its environment before forking. A cgroup cannot be
//! left that way: every program a check starts joins the check's cgroup before it runs
//! (in `pre_exec`, as the child: it writes `0`, itself, to `cgroup.procs`), its children
//! are born in it, and at the end of the check `cgroup.kill` (Linux 5.14) kills them
//! all at once. Where no cgroup can be made (no cgroup2 mount, not root, an old kernel),
//! nothing changes: the marker still finds the rest. A program started as another user
//! (the sandbox's uid, `spawn_as_user`) joins while still root, before it drops to that
//! user (see `Running::start`), so it is in the check's cgroup too.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The cgroups of the running checks, by check token.
static GROUPS: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());

/// The cgroup v2 folder the grader itself is in, if cgroup2 is mounted.
fn own_cgroup() -> Option<&'static PathBuf> {
    static OWN: OnceLock<Option<PathBuf>> = OnceLock::new();
    OWN.get_or_init(|| {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        // `... mount-point ... - cgroup2 cgroup2 rw,...`
        let mount = mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })?;
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(mount.join(own.trim_start_matches('/')))
    })
    .as_ref()
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<u64, PathBuf>> {
    GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `cgroup.procs` file of check `token`'s cgroup, made on first use; None where no
/// cgroup can be made (or it would not be able to kill: no `cgroup.kill`).
pub fn procs_file(token: u64) -> Option<CString> {
    let mut groups = lock();
    let dir = match groups.entry(token) {
        std::collections::btree_map::Entry::Occupied(known) => known.get().clone(),
        std::collections::btree_map::Entry::Vacant(slot) => {
            let dir = own_cgroup()?.join(format!("socklab-{}-{token}", std::process::id()));
            if std::fs::create_dir(&dir).is_err() || !dir.join("cgroup.kill").exists() {
                let _ = std::fs::remove_dir(&dir);
                return None;
            }
            slot.insert(dir).clone()
        }
    };
    let procs = dir.join("cgroup.procs");
    CString::new(procs.into_os_string().into_encoded_bytes()).ok()
}

/// In the child, between fork and exec: moves the child into the cgroup whose
/// `cgroup.procs` is `procs`. Only async-signal-safe calls; failure is ignored (the
/// marker still finds the program).
pub fn join_in_child(procs: &CString) {
    // SAFETY: open/write/close on a valid C string and a local buffer.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
}

/// The pids in check `token`'s cgroup right now.
pub fn members(token: u64) -> Vec<i32> {
    let Some(dir) = lock().get(&token).cloned() else {
        return Vec::new();
    };
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Kills everything in check `token`'s cgroup (all at once, `cgroup.kill`). With
/// `remove`, waits for it to empty and removes it.
pub fn kill(token: u64, remove: bool) {
    let Some(dir) = lock().get(&token).cloned() else {
        return;
    };
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    if !remove {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        // A cgroup with members (zombies included, until reaped) cannot be removed.
        if std::fs::remove_dir(&dir).is_ok() {
            lock().remove(&token);
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills every check's cgroup, and with `remove` removes them (the grader is ending).
pub fn kill_all(remove: bool) {
    let tokens: Vec<u64> = lock().keys().copied().collect();
    for token in tokens {
        kill(token, remove);
    }
}

/// The pids in every check's cgroup right now.
pub fn all_members() -> Vec<i32> {
    let tokens: Vec<u64> = lock().keys().copied().collect();
    tokens.into_iter().flat_map(members).collect()
}
