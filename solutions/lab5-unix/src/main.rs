//! Lab 5: Unix domain sockets, where the address is a file.
//!
//! The same socket calls as TCP and UDP, in the UNIX domain (`AF_UNIX`): a stream echo
//! server and client, and a datagram pair. Both talk through a path such as
//! `/tmp/lab5.sock`, which `bind()` creates as a file of type socket (`ls -l` shows an
//! `s`). A file brings file questions with it, and this lab answers them:
//!
//! - who may connect: the file's permission bits (owner-only by default, `--mode`),
//! - what if the file is already there: a stale file from a dead server is removed,
//!   a live server's is "address in use", any other file is never touched,
//! - who removes it: the server, on every exit, SIGINT and SIGTERM included,
//! - how long it may be: 107 bytes (`sun_path` holds 108, with the closing NUL),
//! - who is on the other end: the kernel knows the peer's pid, uid and gid.
//!
//! ```text
//! server:       socket(UNIX, STREAM) -> bind(path) -> listen() -> loop { accept() -> SO_PEERCRED -> echo }
//! client:       socket(UNIX, STREAM) -> connect(path) -> send(stdin) -> shutdown(WR) -> recv() to end
//! dgram-server: socket(UNIX, DGRAM) -> bind(path) -> loop { recvfrom() -> sendto(sender) }
//! dgram-client: socket(UNIX, DGRAM) -> bind(own path) -> per line { sendto() -> recvfrom() } -> unlink
//! ```
//!
//! Run it: `cargo run -p lab5 -- server --path /tmp/lab5.sock`, then
//! `echo hi | cargo run -p lab5 -- client --path /tmp/lab5.sock`
//! (or `socat - UNIX-CONNECT:/tmp/lab5.sock`).

mod dgram;
mod socket_file;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lab5",
    about = "Lab 5: Unix domain sockets, where the address is a file"
)]
struct Cli {
    /// Which program to be (the subcommand).
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Stream echo server on --path: echoes each client's bytes until it half-closes.
    Server {
        /// Where the socket file is created (at most 107 bytes).
        #[arg(long)]
        path: PathBuf,
        /// Permission bits of the socket file, in octal: who may connect.
        #[arg(long, default_value = "0600", value_parser = socket_file::parse_mode)]
        mode: u32,
        /// How many connecting clients the kernel may queue while we are busy.
        #[arg(long, default_value_t = 5)]
        backlog: i32,
    },
    /// Send stdin to the stream server at --path, half-close, print the reply.
    Client {
        /// The server's socket file.
        #[arg(long)]
        path: PathBuf,
    },
    /// Datagram echo server on --path: one reply datagram per datagram, to its sender.
    DgramServer {
        /// Where the socket file is created (at most 107 bytes).
        #[arg(long)]
        path: PathBuf,
        /// Permission bits of the socket file, in octal: who may send to it.
        #[arg(long, default_value = "0600", value_parser = socket_file::parse_mode)]
        mode: u32,
    },
    /// Send each stdin line as one datagram to --path and print each reply.
    DgramClient {
        /// The server's socket file.
        #[arg(long)]
        path: PathBuf,
        /// Our own socket file, for the replies (default: a fresh one in the temp
        /// directory); removed on exit.
        #[arg(long)]
        bind: Option<PathBuf>,
        /// How long to wait for each reply, in milliseconds.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    shared::run("lab5", || match Cli::parse().role {
        Role::Server {
            path,
            mode,
            backlog,
        } => {
            shared::narrate::set_role("server");
            stream::server(&path, mode, backlog)
        }
        Role::Client { path } => {
            shared::narrate::set_role("client");
            stream::client(&path)
        }
        Role::DgramServer { path, mode } => {
            shared::narrate::set_role("dgram-server");
            dgram::server(&path, mode)
        }
        Role::DgramClient {
            path,
            bind,
            timeout_ms,
        } => {
            shared::narrate::set_role("dgram-client");
            dgram::client(&path, bind, timeout_ms)
        }
    })
}
