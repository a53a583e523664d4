//! The servers under test: how to start each one, when it is ready, how much memory it
//! holds, and how to stop it for sure.
//!
//! Each server runs in its own process group (so killing the group also kills anything
//! it started) and gets SIGKILL from the kernel if the bench dies first
//! (PR_SET_PDEATHSIG), so no server outlives the benchmark, not even after Ctrl+C.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shared::group::Group;

/// How long a server may take to start accepting connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the memory sampler reads /proc/PID/status while the load runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// The servers the bench can compare.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKind {
    /// Lab 3: the iterative echo server, one client at a time.
    Lab3,
    /// Lab 6: one thread per client.
    Lab6,
    /// Lab 7: one thread, an epoll event loop.
    Lab7,
    /// A tokio echo server: what a Rust programmer would reach for instead.
    Tokio,
}

impl ServerKind {
    /// The short name used in tables, plots and log file names.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Lab3 => "lab3",
            ServerKind::Lab6 => "lab6",
            ServerKind::Lab7 => "lab7",
            ServerKind::Tokio => "tokio",
        }
    }

    /// The Cargo package (and binary) of a lab server; `None` for tokio, which the
    /// xtask binary itself serves.
    pub fn package(self) -> Option<&'static str> {
        match self {
            ServerKind::Lab3 => Some("lab3-solution"),
            ServerKind::Lab6 => Some("lab6-solution"),
            ServerKind::Lab7 => Some("lab7-solution"),
            ServerKind::Tokio => None,
        }
    }

    /// What a reader of the table should know about this server, if anything.
    pub fn remark(self) -> Option<&'static str> {
        match self {
            ServerKind::Lab3 => Some(
                "lab3 is iterative: it serves one client at a time, the kernel completes \
                 handshakes for only its listen backlog (5) more, later connects time out, \
                 and the queued clients wait through the whole window; its rates are those \
                 of a single connection",
            ),
            _ => None,
        }
    }

    /// The command line that starts this server on `port`, able to hold `connections`.
    pub fn command(self, program: &Path, port: u16, connections: usize) -> Command {
        let mut command = Command::new(program);
        let port = port.to_string();
        match self {
            ServerKind::Lab3 | ServerKind::Lab7 => {
                command.args(["server", "--host", "127.0.0.1", "--port", &port]);
            }
            ServerKind::Lab6 => {
                // A little headroom above the load, for the readiness probe.
                let max_clients = (connections + 16).to_string();
                command.args(["server", "--host", "127.0.0.1", "--port", &port]);
                command.args(["--max-clients", &max_clients]);
            }
            ServerKind::Tokio => {
                command.args(["bench", "--serve-tokio", &port]);
            }
        }
        command
    }
}

/// A free loopback port for a server, picked as the grader picks them (below the
/// kernel's ephemeral range, from which the load generator's connections draw).
pub fn free_port() -> anyhow::Result<u16> {
    match shared::ports::free_port(Ipv4Addr::LOCALHOST.into()) {
        0 => bail!("cannot find a free port on 127.0.0.1"),
        port => Ok(port),
    }
}

/// Memory figures of a process, from /proc/PID/status, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: Option<u64>,
    /// The highest resident set size so far ("high water mark").
    pub hwm_kib: Option<u64>,
}

/// Reads VmRSS and VmHWM of `pid`; `None` once the process is gone.
pub fn read_memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(parse_status(&status))
}

/// Picks VmRSS and VmHWM (`VmRSS:\t  1234 kB`) out of a /proc/PID/status text.
fn parse_status(status: &str) -> Memory {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?;
            value.split_whitespace().next()?.parse().ok()
        })
    };
    Memory {
        rss_kib: field("VmRSS"),
        hwm_kib: field("VmHWM"),
    }
}

/// A server process we started; dropping it kills its whole process group (Group's Drop).
pub struct RunningServer {
    /// The server's process group (shared::group), killed whole when this is dropped.
    group: Group,
    /// Where its stdout and stderr go (a server that prints a line per client would
    /// block on a pipe nobody reads).
    log: PathBuf,
}

impl RunningServer {
    /// Starts `command` with its output in `log`, and waits until `address` accepts a
    /// connection (or the server dies, or READY_TIMEOUT passes).
    pub fn start(mut command: Command, address: SocketAddr, log: &Path) -> anyhow::Result<Self> {
        let output =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let errors = output
            .try_clone()
            .with_context(|| format!("cannot share {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .env_remove("SOCKLAB_NARRATE");
        // SAFETY: the closure runs in the child between fork and exec, and only calls
        // prctl(2), which is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let group = Group::spawn(&mut command)
            .with_context(|| format!("cannot start {:?}", command.get_program()))?;
        let mut server = RunningServer {
            group,
            log: log.to_path_buf(),
        };
        server.wait_until_ready(address)?;
        Ok(server)
    }

    /// Polls `address` with short connection attempts until one succeeds.
    fn wait_until_ready(&mut self, address: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exit_status() {
                bail!(
                    "the server exited before accepting connections ({status}); {}",
                    self.log_tail()
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server did not accept connections on {address} within {} s; {}",
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// Its memory figures now.
    pub fn memory(&self) -> Option<Memory> {
        read_memory(self.pid())
    }

    /// How it ended, if it already has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.group.try_exit()
    }

    /// The last lines of its log, to explain a failure.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        if lines.is_empty() {
            format!("its log {} is empty", self.log.display())
        } else {
            let tail: Vec<&str> = lines.into_iter().rev().collect();
            format!("last lines of {}: {}", self.log.display(), tail.join(" / "))
        }
    }
}

/// Samples a process's VmRSS on a thread of its own and keeps the largest value.
pub struct MemorySampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<u64>>,
}

impl MemorySampler {
    /// Starts sampling `pid` right away, then every SAMPLE_EVERY.
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak: Option<u64> = None;
            loop {
                if let Some(rss) = read_memory(pid).and_then(|memory| memory.rss_kib) {
                    peak = Some(peak.map_or(rss, |seen| seen.max(rss)));
                }
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        MemorySampler { stop, thread }
    }

    /// Stops sampling (after one last sample) and returns the largest VmRSS seen, in KiB.
    pub fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status =
            "Name:\tlab7-solution\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1536 kB\n";
        assert_eq!(
            parse_status(status),
            Memory {
                rss_kib: Some(1536),
                hwm_kib: Some(2048)
            }
        );
        assert_eq!(parse_status("Name:\tx\n"), Memory::default());
    }
}
