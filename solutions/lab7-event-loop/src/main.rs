//! Lab 7: one thread, ten thousand callers: an echo server on `epoll`.
//!
//! Earlier labs gave every client its own thread (or process) that sleeps in `recv()`.
//! Here ONE thread serves every client. All sockets are non-blocking, so no call ever
//! sleeps on one client; a single `epoll_wait()` sleeps until *any* socket is ready, and
//! the loop then does the little work each ready socket allows before sleeping again.
//!
//! ```text
//! server: socket() -> setsockopt(SO_REUSEADDR) -> O_NONBLOCK -> bind() -> listen()
//!         epoll_create1() -> epoll_ctl(ADD, listener, EPOLLIN)
//!         loop {
//!             epoll_wait(no timeout)                      asleep, 0% CPU, until something happens
//!             listener ready:  accept4(SOCK_NONBLOCK) until EAGAIN, epoll_ctl(ADD, client, EPOLLIN)
//!             client readable: recv() -> send() what fits -> keep the rest as "unsent"
//!             client writable: send() more of the unsent bytes
//!             then epoll_ctl(MOD): EPOLLOUT only while bytes are unsent,
//!                                  EPOLLIN only while unsent bytes stay under --max-buffer
//!             with --idle-timeout: close the clients silent that long
//!         }
//!         every accepted socket: SO_KEEPALIVE, so the kernel finds peers that vanished
//! client: socket() -> connect() -> O_NONBLOCK -> loop { poll(socket, stdin) -> send()/recv() }
//!         -> shutdown(SHUT_WR) when stdin ends -> recv() until the server's FIN
//! ```
//!
//! Run it: `cargo run -p lab7 -- server --port 5000`, then
//! `echo hello | cargo run -p lab7 -- client --port 5000`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shared::Failure;
use shared::cli::Endpoint;

/// `narrate!` for the event loop's hot path. `$on` is a flag read ONCE at start-up, so
/// with narration off (the default, and always in benchmarks) each call site costs one
/// well-predicted branch: nothing is formatted and no function is called.
macro_rules! narrate_if {
    ($on:expr, $($arg:tt)*) => {
        if $on {
            shared::narrate!($($arg)*);
        }
    };
}

mod client;
mod server;

/// The default listen backlog: room for a crowd of callers arriving at once. (The kernel
/// caps it at /proc/sys/net/core/somaxconn, 4096 on current Linux.)
const DEFAULT_BACKLOG: i32 = 1024;
/// The default bound on echoed-but-unsent bytes per client before we stop reading it.
const DEFAULT_MAX_BUFFER: usize = 64 * 1024;
/// The default TCP_KEEPIDLE: a minute of silence before the kernel probes a client (its
/// own default, net.ipv4.tcp_keepalive_time, is two hours).
const DEFAULT_KEEPALIVE_SECS: u64 = 60;
/// The kernel's ceiling for TCP_KEEPIDLE (MAX_TCP_KEEPIDLE, `man 7 tcp`).
const MAX_KEEPALIVE_SECS: u64 = 32_767;

#[derive(Parser)]
#[command(
    name = "lab7",
    about = "Lab 7: one thread, ten thousand callers (an echo server on epoll)"
)]
struct Cli {
    /// Which program to be (the subcommand).
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Echo every byte back to every client, all from one thread with epoll.
    Server {
        /// Where to listen (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
        /// How many finished handshakes the kernel may queue before we accept() them.
        #[arg(long, default_value_t = DEFAULT_BACKLOG)]
        backlog: i32,
        /// Back-pressure bound: stop reading from a client while this many bytes of its
        /// echo wait unsent (it is not reading); resume once it catches up.
        #[arg(long, default_value_t = DEFAULT_MAX_BUFFER)]
        max_buffer: usize,
        /// TCP keepalive: after this many seconds without a segment from a client, the
        /// kernel probes it (every 10 s, 3 times) and drops the connection if nobody answers.
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_KEEPALIVE_SECS)]
        keepalive: u64,
        /// Close a client that has sent nothing for this many seconds (default: never).
        #[arg(long, value_name = "SECS")]
        idle_timeout: Option<u64>,
    },
    /// Send stdin to the server, half-close, and print everything it sends back.
    Client {
        /// The server to connect to (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

fn main() -> ExitCode {
    shared::run("lab7", || match Cli::parse().role {
        Role::Server {
            endpoint,
            backlog,
            max_buffer,
            keepalive,
            idle_timeout,
        } => {
            shared::narrate::set_role("server");
            if max_buffer == 0 {
                return Err(Failure::new("--max-buffer must be at least 1 byte"));
            }
            if !(1..=MAX_KEEPALIVE_SECS).contains(&keepalive) {
                return Err(Failure::new(format!(
                    "--keepalive must be 1 to {MAX_KEEPALIVE_SECS} seconds (the kernel's \
                     range for TCP_KEEPIDLE), not {keepalive}"
                )));
            }
            if idle_timeout == Some(0) {
                return Err(Failure::new("--idle-timeout must be at least 1 second"));
            }
            let address = endpoint.first_address()?;
            let limits = server::Limits {
                backlog,
                max_buffer,
                keepalive: Duration::from_secs(keepalive),
                idle_timeout: idle_timeout.map(Duration::from_secs),
            };
            server::run(address, limits)
        }
        Role::Client { endpoint } => {
            shared::narrate::set_role("client");
            let address = endpoint.first_address()?;
            client::run(address)
        }
    })
}
