//! Lab 4: UDP, where every message is a datagram sent with `sendto()` and received
//! with `recvfrom()`.
//!
//! There is no connection and no `listen()`/`accept()`: the server owns one socket,
//! and each datagram that arrives carries its sender's address, which is where the
//! reply goes. Several clients can take turns on that one socket.
//!
//! ```text
//! server: socket(DGRAM) -> bind() -> loop { recvfrom() -> sendto(sender) }
//! client: socket(DGRAM) -> setsockopt(SO_RCVTIMEO) -> per line { sendto(server) -> recvfrom() [timeout: send again] }
//! ```
//!
//! What UDP keeps: message boundaries (one `sendto()` is one `recvfrom()`, never merged
//! with another nor split). What it drops: delivery and order. The client therefore
//! waits with a deadline and sends again a bounded number of times.
//!
//! Run it: `cargo run -p lab4 -- server --port 5000`, then
//! `cargo run -p lab4 -- client --port 5000` (or `nc -u 127.0.0.1 5000`).

mod client;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::cli::Endpoint;

/// Room for the largest UDP payload of either family (65,507 bytes over IPv4, 65,527
/// over IPv6). A datagram never arrives in pieces, so a buffer this big always holds
/// all of it: a smaller one would silently cut off the end.
pub const RECEIVE_BUFFER: usize = 65_536;

#[derive(Parser)]
#[command(
    name = "lab4",
    about = "Lab 4: UDP datagrams with sendto() and recvfrom()"
)]
struct Cli {
    /// Which program to be (the subcommand).
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Bind --host/--port and answer every datagram, `[<ctime>] <data>`, to its sender.
    Server {
        /// Where to bind (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
        /// Send each datagram back unchanged instead of stamping it.
        #[arg(long)]
        echo: bool,
    },
    /// Send each stdin line as one datagram to --host/--port and print the reply.
    Client {
        /// The server to send to (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
        /// How long to wait for each reply, in milliseconds.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        timeout_ms: u64,
        /// How many times to send a line again when no reply came in time.
        #[arg(long, default_value_t = 3)]
        retries: u32,
        /// connect() the UDP socket to the server: the kernel then drops datagrams from
        /// anyone else and reports "nothing listens there" as ECONNREFUSED.
        #[arg(long)]
        connect: bool,
    },
}

fn main() -> ExitCode {
    shared::run("lab4", || match Cli::parse().role {
        Role::Server { endpoint, echo } => {
            shared::narrate::set_role("server");
            server::run(endpoint.first_address()?, echo)
        }
        Role::Client {
            endpoint,
            timeout_ms,
            retries,
            connect,
        } => {
            shared::narrate::set_role("client");
            client::run(endpoint.first_address()?, timeout_ms, retries, connect)
        }
    })
}

/// The largest payload one UDP datagram can carry: a 16-bit length field, less the
/// 8-byte UDP header, less the 20-byte IPv4 header (IPv6's header is not counted in
/// its payload length, so only the UDP header comes off).
/// An IPv4 peer seen through a dual-stack IPv6 socket (`::ffff:127.0.0.1`) still
/// travels as IPv4, so it gets the IPv4 limit.
pub fn max_payload(address: SocketAddr) -> usize {
    const IPV4_LIMIT: usize = 65_535 - 8 - 20;
    const IPV6_LIMIT: usize = 65_535 - 8;
    match address {
        SocketAddr::V4(_) => IPV4_LIMIT,
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => IPV4_LIMIT,
        SocketAddr::V6(_) => IPV6_LIMIT,
    }
}
