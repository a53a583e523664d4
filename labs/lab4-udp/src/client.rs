//! The UDP client: each line of stdin becomes one datagram, and each reply one line.
//!
//! ```text
//! socket(DGRAM) -> per line { sendto(server) -> setsockopt(SO_RCVTIMEO) -> recvfrom() }
//!                             no reply in time? sendto() again, at most --retries times
//! ```
//!
//! UDP does not promise delivery: our datagram or the server's reply may be lost, and
//! nobody tells us. So we never wait forever: every `recvfrom()` has a deadline, a lost
//! exchange is tried again a bounded number of times, and then we give up out loud.
//! Nor does it promise "once" or "in order": a reply is taken only if it answers the
//! line we are waiting for. With `--connect` the socket is connected to the server, so
//! the kernel filters other senders and reports "nothing listens there" (ECONNREFUSED).

use std::io::{self, BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::{RECEIVE_BUFFER, max_payload};
use shared::sockaddr::{as_uninit, describe};

/// How patient the client is with one line.
struct Patience {
    /// How long to wait for each reply (`--timeout-ms`).
    timeout: Duration,
    /// How many times to send the line again after a timeout (`--retries`).
    retries: u32,
}

/// Step 1, then steps 2 to 5 for every line of stdin.
pub fn run(
    server: SocketAddr,
    timeout_ms: u64,
    retries: u32,
    connect: bool,
) -> Result<(), Failure> {
    let patience = Patience {
        timeout: Duration::from_millis(timeout_ms),
        retries,
    };
    let socket = open_socket(server)?;
    if connect {
        connect_socket(&socket, server)?;
    }
    let server_address = SockAddr::from(server);
    let limit = max_payload(server);
    let mut reply_buffer = vec![0u8; RECEIVE_BUFFER];

    let mut stdin = io::stdin().lock();
    let interactive = stdin.is_terminal();
    let mut stdout = io::stdout().lock();
    let mut line = Vec::new();
    loop {
        if interactive {
            print!("> ");
            stdout.flush().context("write(stdout)")?;
        }
        line.clear();
        // Lines are read as bytes: a datagram need not be text.
        if stdin.read_until(b'\n', &mut line).context("read(stdin)")? == 0 {
            return Ok(()); // end of input: nothing left to send
        }
        if line.ends_with(b"\n") {
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        if line.len() > limit {
            return Err(Failure::new(format!(
                "a line of {} bytes does not fit in one UDP datagram to {server} \
                 (at most {limit} bytes)",
                line.len()
            )));
        }

        let received = exchange(
            &socket,
            &server_address,
            &line,
            &patience,
            &mut reply_buffer,
        )?;
        stdout
            .write_all(&reply_buffer[..received])
            .and_then(|()| stdout.write_all(b"\n"))
            .and_then(|()| stdout.flush())
            .context("write(stdout)")?;
    }
}

/// Step 1: an unnamed datagram socket. No bind() and no connect(): the kernel gives it
/// an ephemeral port with the first sendto(), and the server replies to that port.
fn open_socket(server: SocketAddr) -> Result<Socket, Failure> {
    let socket: Socket = {
        // Stuck? `cargo xtask hint lab4`
        todo!("step 1: create a UDP socket whose domain matches `server`");
    };
    narrate!("socket(DGRAM, UDP) -> fd {}", socket.as_raw_fd());
    Ok(socket)
}

/// With `--connect`: connect() on a UDP socket sends no packet (there is no handshake);
/// it only records a default peer in the kernel. That changes two things. The kernel now
/// drops datagrams from anyone but the server before we see them. And when our datagram
/// reaches a machine where nothing is bound to the port, that machine answers with an
/// ICMP "port unreachable"; the kernel hands it to a connected socket as ECONNREFUSED on
/// its next call (an unconnected socket is never told: it can only time out). Step 5's
/// recvfrom() then fails with that error, and the client stops at once, saying so.
fn connect_socket(socket: &Socket, server: SocketAddr) -> Result<(), Failure> {
    {
        // Stuck? `cargo xtask hint lab4`
        todo!("with --connect: connect the UDP socket to `server`");
    }
    narrate!("connect({server}) on a UDP socket: no packet, just a default peer");
    Ok(())
}

/// Step 2 (with steps 3 to 5) for one line: send it, wait for the reply, send again if
/// none came.
/// Returns the length of the reply now at the start of `reply_buffer`.
fn exchange(
    socket: &Socket,
    server: &SockAddr,
    request: &[u8],
    patience: &Patience,
    reply_buffer: &mut [u8],
) -> Result<usize, Failure> {
    let server_text = describe(server);
    discard_late_replies(socket, reply_buffer);
    let attempts = patience.retries.saturating_add(1);
    let timeout_ms = patience.timeout.as_millis();
    // Step 2: the retry loop. UDP tells us nothing when a datagram or its reply is lost:
    // silence until the timeout is the only sign. So: send, wait at most --timeout-ms,
    // and on silence send the same line again; but only `attempts` times in all, or a
    // client whose server is gone would retry for ever. Then give up out loud.
    {
        // Stuck? `cargo xtask hint lab4`
        todo!(
            "step 2: send `request` and wait for its reply, up to `attempts` times; then give up with an error"
        );
    }
}

/// Step 3: one attempt: `request` as one datagram to `server`.
fn send_request(
    socket: &Socket,
    server: &SockAddr,
    request: &[u8],
    attempt: u32,
    attempts: u32,
) -> Result<(), Failure> {
    let server_text = describe(server);
    // Step 3: sendto() names the destination on every call: the socket itself is not
    // tied to the server. The datagram goes out whole or not at all; that it left our
    // machine says nothing about whether it will arrive.
    let sent: usize = {
        // Stuck? `cargo xtask hint lab4`
        todo!("step 3: send `request` as one datagram to `server`");
    };
    narrate!("sendto({server_text}, {sent} bytes), attempt {attempt} of {attempts}");
    Ok(())
}

/// The error after the last attempt went unanswered.
fn gave_up(server_text: &str, attempts: u32, timeout: Duration) -> Failure {
    Failure::new(format!(
        "no reply from {server_text} after {attempts} attempt{} of {} ms each: giving up \
         (the datagrams or the replies were lost, or no server is there: UDP cannot tell which)",
        if attempts == 1 { "" } else { "s" },
        timeout.as_millis()
    ))
}

/// Steps 4 and 5: the reply from `server` to `request` within `timeout`, or `None`.
fn wait_for_reply(
    socket: &Socket,
    server: &SockAddr,
    request: &[u8],
    timeout: Duration,
    reply_buffer: &mut [u8],
) -> Result<Option<usize>, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        // Step 4: SO_RCVTIMEO bounds how long recvfrom() may sleep. Without it, a lost
        // datagram would leave the client blocked forever: UDP never reports a loss.
        {
            // Stuck? `cargo xtask hint lab4`
            todo!("step 4: make recvfrom() give up after `remaining`");
        }
        narrate!(
            "setsockopt(SO_RCVTIMEO, {} ms)",
            remaining.as_micros().div_ceil(1000)
        );

        // Step 5: recvfrom() returns one whole datagram and who sent it, or fails with
        // EAGAIN once the timeout has passed.
        let outcome: io::Result<(usize, SockAddr)> = {
            // Stuck? `cargo xtask hint lab4`
            todo!("step 5: receive one datagram into `reply_buffer` (keep the io::Result)");
        };
        match outcome {
            // An unconnected socket accepts datagrams from anyone who knows our port;
            // only the server's count as the reply.
            Ok((received, from)) if from.as_socket() == server.as_socket() => {
                narrate!("recvfrom() -> {received} bytes from {}", describe(&from));
                let reply = &reply_buffer[..received];
                // The server's datagram is not necessarily the answer to *this* line.
                // UDP may deliver a datagram late, twice, or after a later one: the reply
                // to a first attempt we gave up on, or a duplicate, can turn up while we
                // wait for the next line's answer. This protocol carries no request
                // number, but every answer ends with the request it answers (`[<ctime>]
                // <data>`, or the data itself with --echo), so that is what we match on;
                // the server's `error: ...` answers (a line too long to stamp) are taken
                // too. Anything else is stale: ignore it and keep waiting.
                let answers_this_line: bool = {
                    // Stuck? `cargo xtask hint lab4`
                    todo!(
                        "tell whether `reply` answers `request` (a late or duplicate reply to an earlier line does not)"
                    );
                };
                if answers_this_line {
                    return Ok(Some(received));
                }
                eprintln!(
                    "lab4: ignoring a late or duplicate reply of {received} bytes: it does not \
                     answer this line"
                );
            }
            Ok((received, from)) => {
                eprintln!(
                    "lab4: ignoring {received} bytes from {}: not the server",
                    describe(&from)
                );
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                narrate!("recvfrom() -> timed out");
                return Ok(None);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(Failure::new(format!(
                    "recvfrom() failed: {}",
                    shared::errors::explain(&err)
                )));
            }
        }
    }
}

/// Drops replies that are already waiting before a new line is sent.
///
/// When we sent a line twice because its first reply was slow, that slow reply can
/// still arrive after we moved on. What is already queued when the next line starts is
/// dropped here; what comes later still is caught by the matching in step 5 (an answer
/// ends with its request). Real protocols put a request number in each datagram (DNS
/// does); this lab keeps the data plain.
fn discard_late_replies(socket: &Socket, buffer: &mut [u8]) {
    // MSG_DONTWAIT: return at once (EAGAIN) when nothing is queued.
    while let Ok((received, from)) =
        socket.recv_from_with_flags(as_uninit(buffer), libc::MSG_DONTWAIT)
    {
        narrate!(
            "recvfrom(MSG_DONTWAIT) -> {received} late bytes from {}",
            describe(&from)
        );
        eprintln!(
            "lab4: discarding a late reply of {received} bytes from {}",
            describe(&from)
        );
    }
}
