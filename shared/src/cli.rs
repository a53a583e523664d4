//! Command-line arguments that every lab program shares.
//!
//! The grader runs every implementation as `PROGRAM <role> --host H --port P [options]`,
//! so all labs spell these two options the same way. Flatten [`Endpoint`] into a clap
//! subcommand with `#[command(flatten)]`.

use std::net::{SocketAddr, ToSocketAddrs};

use clap::Args;

use crate::errors::Failure;

/// Where a server listens, or where a client connects.
#[derive(Args, Debug, Clone)]
pub struct Endpoint {
    /// Host name or IP address (IPv4 like 127.0.0.1 or IPv6 like ::1).
    /// Servers default to loopback so nothing is exposed by accident.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// TCP or UDP port number (1-65535; 0 lets the kernel pick a free one).
    #[arg(long)]
    pub port: u16,
}

impl Endpoint {
    /// Every socket address the host name stands for, in the resolver's order.
    ///
    /// IP literals resolve without any network traffic; names are looked up in
    /// `/etc/hosts` and then DNS.
    pub fn addresses(&self) -> Result<Vec<SocketAddr>, Failure> {
        // `[::1]` and `::1` both name IPv6 loopback; `ToSocketAddrs` wants the bare form
        // together with the port as a tuple.
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = (host, self.port)
            .to_socket_addrs()
            .map_err(|e| {
                Failure::new(format!(
                    "bad host {:?}: cannot resolve it to an address ({e})",
                    self.host
                ))
            })?
            .collect();
        if found.is_empty() {
            return Err(Failure::new(format!(
                "bad host {:?}: it resolves to no address",
                self.host
            )));
        }
        Ok(found)
    }

    /// The first address the host stands for: what a server binds.
    pub fn first_address(&self) -> Result<SocketAddr, Failure> {
        Ok(self.addresses()?[0])
    }
}
