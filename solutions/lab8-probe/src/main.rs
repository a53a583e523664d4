//! Lab 8: is the daemon running? A pid file, `kill(pid, 0)` and a probe connection.
//!
//! Deluge (the BitTorrent client) decides whether its daemon runs by reading a file that
//! holds the daemon's process id and port, then connecting to that port. This lab builds
//! both halves, and makes the check robust against every way the file can lie:
//!
//! - `lab8 daemon --pidfile F [--host H] [--port P]` listens (port 0 or none: the kernel
//!   picks one, read back with getsockname()), writes `pid;port` to F atomically, answers
//!   the probe handshake, and removes F again on SIGINT or SIGTERM.
//! - `lab8 status --pidfile F [--host H] [--timeout-ms N]` prints
//!   `running (pid N, port P)` and exits 0, or `not running: <reason>` and exits 1.
//!
//! The handshake: the prober sends `socklab-probe?\n`, the daemon answers
//! `socklab-daemon <pid>\n`. Only our daemon knows that answer, so a reused pid or port
//! cannot fool the check.
//!
//! ```text
//! daemon: sigprocmask() -> signalfd() -> socket() -> setsockopt() -> bind() -> listen()
//!         -> getsockname() -> pid file (open temp, write, fsync, rename)
//!         -> loop { poll() -> accept() -> recv() -> send() -> close() } -> unlink(pid file)
//! status: read pid file -> kill(pid, 0) -> socket() -> connect() -> poll()
//!         -> getsockopt(SO_ERROR) -> send() -> recv() -> close()
//! ```
//!
//! The program reads in step order: this file (the command line), then
//! [`daemon`] (steps 1 to 10), [`pidfile`] (11 to 15), [`handshake`] (16) and
//! [`status`] (17 to 23).
//!
//! Run it: `cargo run -p lab8 -- daemon --pidfile /tmp/lab8.pid`, then in another
//! terminal `cargo run -p lab8 -- status --pidfile /tmp/lab8.pid`.

mod daemon;
mod handshake;
mod pidfile;
mod status;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::Failure;

use crate::daemon::run_daemon;
use crate::status::run_status;

#[derive(Parser)]
#[command(
    name = "lab8",
    about = "Lab 8: is the daemon running? A pid file, kill(pid, 0) and a probe connection"
)]
struct Cli {
    /// Which program to be: the daemon, or the status check.
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Listen, write `pid;port` to the pid file, answer probes; remove the file on SIGINT/SIGTERM.
    Daemon {
        /// Where to write `pid;port` once the daemon listens.
        #[arg(long)]
        pidfile: PathBuf,
        /// Address to listen on (loopback by default, so nothing is exposed by accident).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on; 0 (the default) lets the kernel pick a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// How many finished handshakes the kernel may queue while we are busy.
        #[arg(long, default_value_t = 16)]
        backlog: i32,
    },
    /// Read the pid file and say whether its daemon runs (exit 0) or not and why (exit 1).
    Status {
        /// The pid file a daemon wrote (`pid;port`).
        #[arg(long)]
        pidfile: PathBuf,
        /// Host the daemon listens on (the pid file holds only its port).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Deadline for the whole probe (connect, send, recv), in milliseconds.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    // `status` answers "not running" with exit status 1 but no error: it did its job.
    let mut daemon_is_down = false;
    let code = shared::run("lab8", || match Cli::parse().role {
        Role::Daemon {
            pidfile,
            host,
            port,
            backlog,
        } => {
            shared::narrate::set_role("daemon");
            run_daemon(&pidfile, &host, port, backlog)
        }
        Role::Status {
            pidfile,
            host,
            timeout_ms,
        } => {
            shared::narrate::set_role("status");
            daemon_is_down = !run_status(&pidfile, &host, timeout_ms)?;
            Ok(())
        }
    });
    if daemon_is_down {
        ExitCode::FAILURE
    } else {
        code
    }
}

/// The first address `host` stands for, with `port`.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, Failure> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| Failure::new(format!("bad host {host:?}: cannot resolve it ({e})")))?
        .next()
        .ok_or_else(|| Failure::new(format!("bad host {host:?}: it resolves to no address")))
}

/// Bytes from the network, shown safely in one short line.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
    let more = if bytes.len() > 40 { "..." } else { "" };
    format!("{text:?}{more}")
}
