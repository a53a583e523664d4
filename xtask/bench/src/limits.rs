//! The open-file limit: every connection costs one descriptor in the load generator and
//! one in the server (which inherits our limit), so 10,000 connections need more than
//! the usual soft limit of 1,024.

use anyhow::bail;

/// Descriptors kept back for everything that is not a benchmark connection (stdio,
/// the runtime's epoll and wake-up fds, log files, the listening socket, ...).
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The kernel's default ceiling for any soft open-file limit (fs.nr_open).
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// The open-file limit after we tried to raise it.
#[derive(Debug, Clone, Copy)]
pub struct OpenFileLimit {
    /// The soft limit before we touched it.
    pub before: u64,
    /// The soft limit now in force (for us and every server we start).
    pub now: u64,
    /// The hard limit: the most an unprivileged process may raise its soft limit to.
    pub hard: u64,
}

impl OpenFileLimit {
    /// The most connections one benchmark cell can open with this limit.
    pub fn max_connections(&self) -> usize {
        self.now.saturating_sub(RESERVED_DESCRIPTORS) as usize
    }
}

/// Raises the soft RLIMIT_NOFILE up to the hard limit (children inherit it).
///
/// The workspace's nix is built without its `resource` feature, so this calls
/// getrlimit(2)/setrlimit(2) through libc.
pub fn raise_open_file_limit() -> anyhow::Result<OpenFileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which lives on our stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!(
            "getrlimit(RLIMIT_NOFILE) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    let before: u64 = limit.rlim_cur;
    let hard: u64 = limit.rlim_max;
    // An unlimited hard limit still cannot be used as such: the kernel refuses a soft
    // limit above fs.nr_open (1,048,576 by default).
    let target = hard.min(NR_OPEN_DEFAULT);
    if before < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            bail!(
                "setrlimit(RLIMIT_NOFILE, {target}) failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(OpenFileLimit {
        before,
        now: target.max(before),
        hard,
    })
}
