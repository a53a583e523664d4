//! What the kernel says of a program's process in `/proc/PID/stat`: its state letter
//! (running, sleeping, stopped, zombie), its CPU time, and waits on them. Checks that
//! judge how a program behaves (stopped by SIGSTOP, spinning while idle) read these
//! rather than guess from timers.

use std::path::Path;
use std::time::Duration;

/// The fields of a `stat` file after the command name: [0] is the state, [11] utime,
/// [12] stime (in clock ticks). The name is skipped up to its last `)`, as it may hold
/// spaces and parentheses.
fn fields_of(path: &Path) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

/// The fields of `/proc/PID/stat` after the command name (see [`fields_of`]).
pub fn fields(pid: u32) -> Option<Vec<String>> {
    fields_of(Path::new(&format!("/proc/{pid}/stat")))
}

/// The process's state letter (`R`, `S`, `T`, `Z`, ...); `None` once it is reaped.
pub fn state(pid: u32) -> Option<char> {
    fields(pid)?.first()?.chars().next()
}

/// CPU time the process has used so far (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let fields = fields(pid)?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = if per_second > 0 {
        per_second as f64
    } else {
        100.0
    };
    Some(ticks as f64 / per_second)
}

/// Whether any thread of the process is running or waiting for a core (state R).
pub fn runnable(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        fields_of(&task.path().join("stat"))
            .is_some_and(|fields| fields.first().is_some_and(|state| state == "R"))
    })
}

/// Polls until the process's state letter satisfies `wanted` (or `limit` passes);
/// false as soon as the process is gone.
pub fn wait_state(pid: u32, wanted: impl Fn(char) -> bool, limit: Duration) -> bool {
    let seen = super::poll::until(limit, Duration::from_millis(5), || match state(pid) {
        Some(letter) if wanted(letter) => Some(true),
        None => Some(false),
        Some(_) => None,
    });
    seen == Some(true)
}
