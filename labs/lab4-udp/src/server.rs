//! The UDP timestamp server: one socket, no connections, a reply to each datagram.
//!
//! ```text
//! socket(DGRAM) -> bind() -> loop { recvfrom() -> sendto(sender) }
//! ```
//!
//! A TCP server hands each client a socket of its own. Here every client shares the one
//! bound socket: `recvfrom()` tells us who sent the datagram in hand, and `sendto()`
//! names that sender explicitly. That is all it takes to answer clients whose
//! datagrams arrive interleaved.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::{RECEIVE_BUFFER, max_payload};
use shared::sockaddr::{as_uninit, describe};

/// Steps 1 and 2, then the endless loop of steps 3 to 5.
pub fn run(address: SocketAddr, echo: bool) -> Result<(), Failure> {
    let socket = open_socket(address)?;
    serve_forever(&socket, echo)
}

/// Steps 1 and 2: a datagram socket with a name, ready to receive.
fn open_socket(address: SocketAddr) -> Result<Socket, Failure> {
    // Step 1: socket() with type DGRAM and protocol UDP. The domain must still match
    // the address family; what changes from TCP is the type: messages, not a stream.
    let socket: Socket = {
        // Stuck? `cargo xtask hint lab4`
        todo!("step 1: create a UDP socket whose domain matches `address`");
    };
    narrate!("socket(DGRAM, UDP) -> fd {}", socket.as_raw_fd());

    // Step 2: bind() names the socket, so clients know where to send. After this the
    // kernel queues every datagram addressed to host:port for us. There is nothing
    // else to set up: no listen() (there are no connections to queue) and no accept().
    {
        // Stuck? `cargo xtask hint lab4`
        todo!("step 2: bind the socket to `address`");
    }
    narrate!("bind({address})");

    // With --port 0 the kernel picked the port: print the one we really got.
    let bound = socket
        .local_addr()
        .context("getsockname()")?
        .as_socket()
        .unwrap_or(address);
    narrate!("getsockname() -> {bound}");
    println!("bound to {bound} (udp): waiting for datagrams");
    Ok(socket)
}

/// Steps 3 to 5, forever: one datagram in, one datagram back to whoever sent it.
fn serve_forever(socket: &Socket, echo: bool) -> Result<(), Failure> {
    // Every datagram fits whole in this buffer, however large (see RECEIVE_BUFFER).
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    loop {
        // Step 3: recvfrom() sleeps until a datagram arrives, then copies exactly
        // that one datagram into `buffer` and tells us who sent it. One call, one
        // datagram: two datagrams are never merged and one is never split, which is
        // why one read is enough here, while TCP needs a read loop.
        let (received, sender): (usize, SockAddr) = {
            // Stuck? `cargo xtask hint lab4`
            todo!("step 3: receive one datagram into `buffer`, with its sender's address");
        };
        let sender_text = describe(&sender);
        narrate!("recvfrom() -> {received} bytes from {sender_text}");

        let data = &buffer[..received];
        let limit = sender.as_socket().map_or(65_507, max_payload);
        // Step 5 happens in here, unless --echo: the stamp (see `Reply::for_datagram`).
        let reply = Reply::for_datagram(data, echo, limit);

        // Step 4: sendto() the sender's own address: that is the whole of "answering
        // the right client". A datagram leaves whole or not at all, so there is no
        // partial send to finish (no write_all loop, unlike TCP).
        let sent: usize = {
            // Stuck? `cargo xtask hint lab4`
            todo!("step 4: send `reply.bytes` back to `sender`");
        };
        narrate!("sendto({sender_text}, {sent} bytes)");
        println!(
            "{sender_text}: got {received} bytes{}, replied {sent} bytes{}",
            describe_data(data),
            reply.note
        );
    }
}

/// One reply datagram, and a note for the server's own log.
struct Reply {
    /// The datagram to send back: the stamped line, the echo, or an error message.
    bytes: Vec<u8>,
    /// Appended to the server's log line: empty, or why the reply is not the usual one.
    note: &'static str,
}

impl Reply {
    /// What the server answers to `data`, never longer than `limit` bytes.
    ///
    /// - `--echo`: the datagram itself, whatever it holds (an empty one gets an empty
    ///   reply: for UDP, zero bytes is a real message, not end-of-file).
    /// - otherwise `[<ctime>] ` followed by the datagram's bytes as they are: the data
    ///   need not be text, so it is never decoded and non-UTF-8 is stamped like the
    ///   rest.
    /// - a datagram too long to stamp (the 27-byte stamp would push the reply over the
    ///   UDP limit) gets one short datagram starting with `error:` that says so,
    ///   rather than a reply cut short without a word.
    fn for_datagram(data: &[u8], echo: bool, limit: usize) -> Reply {
        if echo {
            return Reply {
                bytes: data.to_vec(),
                note: "",
            };
        }
        // Step 5: the stamp is text (`[`, the ctime(3) time, `] `), and the data is not
        // ours to interpret: its bytes follow the stamp exactly as they came, never
        // decoded, so a datagram that is not UTF-8 comes back unharmed.
        let stamped: Vec<u8> = {
            // Stuck? `cargo xtask hint lab4`
            todo!(
                "step 5: the stamped reply: `[`, the ctime text of now, `] `, then `data` byte for byte"
            );
        };
        if stamped.len() > limit {
            let stamp_len = stamped.len().saturating_sub(data.len());
            let message = format!(
                "error: datagram too long to stamp: {} bytes plus the {stamp_len}-byte stamp \
                 exceeds the {limit}-byte UDP limit; send at most {} bytes, or use a server run \
                 with --echo",
                data.len(),
                limit.saturating_sub(stamp_len)
            );
            return Reply {
                bytes: message.into_bytes(),
                note: " (too long to stamp: sent an error)",
            };
        }
        Reply {
            bytes: stamped,
            note: "",
        }
    }
}

/// A word about unusual datagrams for the server's log.
fn describe_data(data: &[u8]) -> &'static str {
    if data.is_empty() {
        " (empty)"
    } else if std::str::from_utf8(data).is_err() {
        " (not UTF-8)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_keeps_empty_datagrams_empty() {
        assert!(Reply::for_datagram(b"", true, 65_507).bytes.is_empty());
    }
}
