//! Lab 3: an iterative echo server and its client, safe for any byte stream.
//!
//! The server serves one client at a time: it accepts a connection, receives until the
//! client closes its side, sends back everything that arrived, closes the connection and
//! accepts the next client, forever. With `--timestamp` it answers each line with
//! `[<ctime>] <line>` instead. The client reads lines at a `> ` prompt and sends each one
//! over a connection of its own.
//!
//! ```text
//! server: socket() -> setsockopt(SO_REUSEADDR) -> bind() -> listen()
//!         -> loop { accept() -> setsockopt(SO_SNDTIMEO) -> loop { recv() -> send() } -> close() }
//! client: loop { socket() -> connect() -> send() -> shutdown(SHUT_WR) -> loop { recv() } -> close() }
//! ```
//!
//! The lesson: TCP carries a stream of bytes, not a stream of messages. One recv()
//! returns whatever has arrived so far (part of what was sent, or several sends glued
//! together), and one send() may take only part of what we hand it. So we read until
//! the end of the stream, write until every byte is out, and when we need messages we
//! cut the stream into them ourselves: here, lines ending in `\n`.
//!
//! Run it: `cargo run -p lab3 -- server --port 5000 --timestamp`, then in a second
//! terminal `cargo run -p lab3 -- client --port 5000`.
//!
//! Read it in this order: `server.rs` (steps 1 to 10: the echo server), `stamp.rs`
//! (steps 11 to 13: `--timestamp`, the stream cut into lines), then `client.rs` (client
//! steps 1 to 7).

mod client;
mod server;
mod stamp;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shared::cli::Endpoint;

/// How many bytes one recv() may hand us (server and client alike). Any size is
/// correct, because we keep reading until the end of the stream; a bigger buffer only
/// means fewer system calls.
const RECV_BUFFER_SIZE: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lab3",
    about = "Lab 3: an iterative echo server and its client"
)]
struct Cli {
    /// Which program to be: the server or the client.
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Listen on --host/--port; send back each client's bytes until it closes, one client at a time.
    Server {
        /// Where to listen (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
        /// Answer every line with `[<ctime>] <line>` instead of echoing the bytes.
        #[arg(long)]
        timestamp: bool,
        /// How many finished handshakes the kernel may queue while we serve one client.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(0..))]
        backlog: i32,
        /// How many seconds one send() may wait for room in a client's buffers before
        /// that client is dropped. Generous, so that slow clients are served; finite, so
        /// that a client that stops reading for ever cannot freeze a server that serves
        /// one client at a time.
        #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
        send_timeout: f64,
    },
    /// Read lines at a `> ` prompt; send each over a new connection and print the answer.
    Client {
        /// The server to connect to (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

fn main() -> ExitCode {
    shared::run("lab3", || match Cli::parse().role {
        Role::Server {
            endpoint,
            timestamp,
            backlog,
            send_timeout,
        } => {
            shared::narrate::set_role("server");
            let address = endpoint.first_address()?;
            let listener = server::open_listener(address, backlog)?;
            server::serve_forever(&listener, timestamp, Duration::from_secs_f64(send_timeout))
        }
        Role::Client { endpoint } => {
            shared::narrate::set_role("client");
            let addresses = endpoint.addresses()?;
            client::run(&addresses)
        }
    })
}

/// The first bytes of `data`, escaped for a narration line: `"hello\n"`.
fn preview(data: &[u8]) -> String {
    const SHOWN: usize = 40;
    let shown = &data[..data.len().min(SHOWN)];
    let more = if data.len() > SHOWN { "..." } else { "" };
    format!("\"{}\"{more}", shown.escape_ascii())
}

/// Parses a positive number of seconds, like `10` or `0.5`.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}
