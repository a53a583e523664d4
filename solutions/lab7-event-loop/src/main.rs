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
//!         }
//! client: socket() -> connect() -> O_NONBLOCK -> loop { poll(socket, stdin) -> send()/recv() }
//!         -> shutdown(SHUT_WR) when stdin ends -> recv() until the server's FIN
//! ```
//!
//! Run it: `cargo run -p lab7 -- server --port 5000`, then
//! `echo hello | cargo run -p lab7 -- client --port 5000`.

use std::process::ExitCode;

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

#[derive(Parser)]
#[command(
    name = "lab7",
    about = "Lab 7: one thread, ten thousand callers (an echo server on epoll)"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Echo every byte back to every client, all from one thread with epoll.
    Server {
        #[command(flatten)]
        endpoint: Endpoint,
        /// How many finished handshakes the kernel may queue before we accept() them.
        #[arg(long, default_value_t = DEFAULT_BACKLOG)]
        backlog: i32,
        /// Back-pressure bound: stop reading from a client while this many bytes of its
        /// echo wait unsent (it is not reading); resume once it catches up.
        #[arg(long, default_value_t = DEFAULT_MAX_BUFFER)]
        max_buffer: usize,
    },
    /// Send stdin to the server, half-close, and print everything it sends back.
    Client {
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
        } => {
            shared::narrate::set_role("server");
            if max_buffer == 0 {
                return Err(Failure::new("--max-buffer must be at least 1 byte"));
            }
            let address = endpoint.first_address()?;
            server::run(address, backlog, max_buffer)
        }
        Role::Client { endpoint } => {
            shared::narrate::set_role("client");
            let address = endpoint.first_address()?;
            client::run(address)
        }
    })
}
