//! The grader's side of the wire: every connect, read and write has a deadline.
//!
//! Helpers here turn what goes wrong on the wire into [`Failure`]s whose hints are keyed
//! to the symptom (refused, reset, silence, early close), and read kernel state that
//! tells the truth about a program: which ports listen (`/proc/net/tcp*`), a listener's
//! backlog (`ss`), a process's open file descriptors (`/proc/PID/fd`).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{Failure, sockdiag};

/// How long the grader waits for one connect, read or write unless told otherwise.
pub const IO_LIMIT: Duration = Duration::from_secs(5);

/// The most the grader keeps of what a program sends on one connection or to one
/// grader-side peer: more than any check needs, little enough that a program that
/// streams for ever cannot fill the grader's memory.
pub const RECEIVE_CAP: usize = 32 * 1024 * 1024;

pub const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LOCALHOST_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A free port for a program under test: one source for grade, demo and bench.
pub use shared::ports::free_port;

/// Bytes as a short, readable string: `"hello\n"`, or `1048576 bytes (binary)`.
pub fn show(bytes: &[u8]) -> String {
    const LIMIT: usize = 120;
    match std::str::from_utf8(bytes) {
        Ok(text) if text.len() <= LIMIT => format!("{text:?}"),
        Ok(text) => {
            let cut = (0..=LIMIT)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            format!("{:?}... ({} bytes in all)", &text[..cut], bytes.len())
        }
        Err(_) if bytes.len() <= 40 => format!("{bytes:02x?} (binary)"),
        Err(_) => format!(
            "{} bytes (binary, starting {:02x?})",
            bytes.len(),
            &bytes[..16]
        ),
    }
}

/// Bytes as [`show`] shows them, or `nothing` in words when there are none.
pub fn show_or(bytes: &[u8], nothing: &str) -> String {
    if bytes.is_empty() {
        nothing.to_string()
    } else {
        show(bytes)
    }
}

/// Explains a failed connect with a hint for its cause.
pub fn connect_failure(addr: SocketAddr, err: &io::Error) -> Failure {
    let failure = Failure::new(format!("could not connect to {addr}: {err}"));
    match err.kind() {
        ErrorKind::ConnectionRefused => failure.hint(
            "nothing listens there: did you call listen() on that port, and bind() the \
             address the grader gave you (--host/--port)?",
        ),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => failure.hint(
            "the handshake never completed: is the listen backlog full because the \
             server never calls accept()?",
        ),
        _ => failure,
    }
}

/// A grader-side TCP connection whose every operation has a deadline.
pub struct Conn {
    pub stream: TcpStream,
    /// Everything received so far, for failure reports.
    pub received: Vec<u8>,
    /// Everything sent so far, for failure reports.
    pub sent: Vec<u8>,
    /// Read and write limit for each operation.
    pub limit: Duration,
}

/// Connects to `addr` within [`IO_LIMIT`].
pub fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
    let stream =
        TcpStream::connect_timeout(&addr, IO_LIMIT).map_err(|e| connect_failure(addr, &e))?;
    Ok(Conn::new(stream))
}

/// One whole conversation: connect, send `message`, half-close, read until the
/// program closes (at most `max` bytes).
pub fn converse(addr: SocketAddr, message: &[u8], max: usize) -> Result<Vec<u8>, Failure> {
    let mut conn = connect(addr)?;
    conn.send(message)?;
    conn.half_close()?;
    conn.read_to_eof(max)
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            received: Vec::new(),
            sent: Vec::new(),
            limit: IO_LIMIT,
        }
    }

    /// The grader's own address on this connection (what the program sees as its peer).
    pub fn local_addr(&self) -> SocketAddr {
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        self.stream.local_addr().unwrap_or(unknown)
    }

    /// The grader's own port on this connection.
    pub fn local_port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Sends all of `bytes` within the limit.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let _ = self.stream.set_write_timeout(Some(self.limit));
        match self.stream.write_all(bytes) {
            Ok(()) => {
                self.sent.extend_from_slice(bytes);
                Ok(())
            }
            Err(err) => Err(self.io_failure("sending", &err)),
        }
    }

    /// Sends `bytes` one byte per write, flushing each (TCP_NODELAY is on), so the
    /// program's recv() sees them in many small pieces.
    pub fn send_bytewise(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        for byte in bytes {
            self.send(std::slice::from_ref(byte))?;
            // Give the byte a chance to leave as its own segment: yield, don't wait.
            std::thread::yield_now();
        }
        Ok(())
    }

    /// Half-closes: "I am done sending" (the program's recv() returns 0).
    pub fn half_close(&mut self) -> Result<(), Failure> {
        self.stream
            .shutdown(Shutdown::Write)
            .map_err(|e| self.io_failure("half-closing", &e))
    }

    /// Aborts the connection with a reset (RST) instead of an orderly close.
    pub fn reset(self) {
        let socket = socket2::SockRef::from(&self.stream);
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(self);
    }

    /// Reads until exactly `n` bytes have arrived (or fails at the limit / EOF).
    pub fn read_exact_bytes(&mut self, n: usize) -> Result<Vec<u8>, Failure> {
        let start = self.received.len();
        let deadline = Instant::now() + self.limit;
        while self.received.len() - start < n {
            let want = n - (self.received.len() - start);
            if self.read_some(deadline, want)? == 0 {
                return Err(self.early_eof(n, start));
            }
        }
        Ok(self.received[start..].to_vec())
    }

    /// Reads exactly as many bytes as `expected` holds and compares them with it. A
    /// failure shows expected and got with the first differing byte marked, and says
    /// whether the rest never came, the connection closed, or the bytes differ.
    pub fn expect_bytes(&mut self, expected: &[u8]) -> Result<(), Failure> {
        let start = self.received.len();
        let deadline = Instant::now() + self.limit;
        let mut ended = None;
        while self.received.len() - start < expected.len() {
            if !expected.starts_with(&self.received[start..]) {
                break;
            }
            let want = expected.len() - (self.received.len() - start);
            match self.read_some_until(deadline, want) {
                Ok(0) => {
                    ended = Some("then the connection closed");
                    break;
                }
                Ok(_) => {}
                Err(err) if is_timeout(&err) => {
                    ended = Some("then nothing more came");
                    break;
                }
                Err(err) => return Err(self.io_failure("reading", &err)),
            }
        }
        let got = self.received[start..].to_vec();
        if got == expected {
            return Ok(());
        }
        let failure = if got.is_empty() && ended == Some("then nothing more came") {
            let waited = format!("{:.1} s", self.limit.as_secs_f64());
            Failure::new(format!("connected, but nothing came back within {waited}")).hint(
                "connected but no reply: is the program waiting for something first (more \
                 bytes, an end-of-stream), or does it never send?",
            )
        } else if expected.starts_with(&got) {
            let waited = format!("{:.1} s", self.limit.as_secs_f64());
            let ended = ended.unwrap_or("then nothing more came");
            Failure::new(format!(
                "only {} of the {} expected bytes arrived, {ended} (waited {waited})",
                got.len(),
                expected.len()
            ))
            .hint(
                "part of the answer is missing: compare expected and got; the end of a line \
                 (\\n) counts too; and a send() may send less than asked, so send the rest",
            )
        } else {
            Failure::new("the bytes that came back are not the expected ones").hint(
                "compare expected and got from the marked byte on: an extra or missing \
                 character, or bytes from an earlier message?",
            )
        };
        let failure = failure.compare(expected, &got);
        Err(if self.sent.is_empty() {
            failure
        } else {
            failure.sent_bytes(&self.sent)
        })
    }

    /// Reads until the program closes its side (EOF), at most `max` bytes.
    pub fn read_to_eof(&mut self, max: usize) -> Result<Vec<u8>, Failure> {
        let start = self.received.len();
        let deadline = Instant::now() + self.limit;
        loop {
            if self.received.len() - start > max {
                return Err(Failure::new(format!(
                    "the program sent more than {max} bytes without closing"
                ))
                .got(show(&self.received[start..])));
            }
            if self.read_some(deadline, 64 * 1024)? == 0 {
                return Ok(self.received[start..].to_vec());
            }
        }
    }

    /// Reads one line (up to and including `\n`).
    pub fn read_line(&mut self) -> Result<Vec<u8>, Failure> {
        let start = self.received.len();
        let deadline = Instant::now() + self.limit;
        loop {
            if let Some(pos) = self.received[start..].iter().position(|&b| b == b'\n') {
                // Keep whatever followed the line for the next read.
                let line_end = start + pos + 1;
                let line = self.received[start..line_end].to_vec();
                return Ok(line);
            }
            if self.received.len() - start > 64 * 1024 {
                return Err(Failure::new("more than 64 KiB arrived without a newline")
                    .got(show(&self.received[start..])));
            }
            if self.read_byte(deadline)? == 0 {
                return Err(
                    Failure::new("the connection closed before a full line arrived")
                        .got(show(&self.received[start..])),
                );
            }
        }
    }

    /// Waits up to `within` to see whether the program closes the connection.
    /// Returns the bytes that arrived meanwhile and whether EOF was seen.
    pub fn closes_within(&mut self, within: Duration) -> Result<(Vec<u8>, bool), Failure> {
        let start = self.received.len();
        let deadline = Instant::now() + within;
        loop {
            match self.read_some_until(deadline, 64 * 1024) {
                Ok(0) => return Ok((self.received[start..].to_vec(), true)),
                // A stream that keeps coming is not a close.
                Ok(_) if self.received.len() - start > 1024 * 1024 => {
                    return Ok((self.received[start..].to_vec(), false));
                }
                Ok(_) => continue,
                Err(err) if is_timeout(&err) => {
                    return Ok((self.received[start..].to_vec(), false));
                }
                Err(err) => return Err(self.io_failure("reading", &err)),
            }
        }
    }

    fn read_byte(&mut self, deadline: Instant) -> Result<usize, Failure> {
        self.read_some(deadline, 1)
    }

    /// One recv() of at most `want` bytes, failing when `deadline` passes.
    fn read_some(&mut self, deadline: Instant, want: usize) -> Result<usize, Failure> {
        self.read_some_until(deadline, want).map_err(|err| {
            if is_timeout(&err) {
                self.silence_failure()
            } else {
                self.io_failure("reading", &err)
            }
        })
    }

    fn read_some_until(&mut self, deadline: Instant, want: usize) -> io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(ErrorKind::TimedOut));
        }
        if self.received.len() >= RECEIVE_CAP {
            return Err(io::Error::new(
                ErrorKind::OutOfMemory,
                format!(
                    "the program sent more than {} MiB on one connection; the grader stopped reading",
                    RECEIVE_CAP >> 20
                ),
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut buffer = vec![0u8; want.min(64 * 1024)];
        let n = self.stream.read(&mut buffer)?;
        self.received.extend_from_slice(&buffer[..n]);
        Ok(n)
    }

    fn silence_failure(&self) -> Failure {
        let waited = format!("{:.1} s", self.limit.as_secs_f64());
        if self.received.is_empty() {
            Failure::new(format!("connected, but nothing came back within {waited}"))
                .got("nothing")
                .hint(
                    "connected but no reply: is the program waiting for more bytes than the \
                     client sent, or for an end-of-stream that never comes?",
                )
        } else {
            Failure::new(format!(
                "the reply stopped coming; waited {waited} for more"
            ))
            .got(show(&self.received))
            .hint(
                "part of the reply arrived and then nothing: does the program stop \
                     after one recv(), or wait for more input before answering the rest?",
            )
        }
    }

    fn early_eof(&self, wanted: usize, start: usize) -> Failure {
        Failure::new(format!(
            "the connection closed after {} of {wanted} expected bytes",
            self.received.len() - start
        ))
        .got(show(&self.received[start..]))
        .hint(
            "the program closed too early: one recv() is not the whole message; keep \
             reading (and sending) until the peer closes",
        )
    }

    fn io_failure(&self, doing: &str, err: &io::Error) -> Failure {
        let failure = Failure::new(format!("error while {doing}: {err}"));
        match err.kind() {
            ErrorKind::ConnectionReset => failure.hint(
                "the program reset the connection: it may have crashed, or closed the \
                 socket with unread data in it",
            ),
            ErrorKind::BrokenPipe => {
                failure.hint("the program closed the connection while the grader was sending")
            }
            _ if is_timeout(err) => failure.hint(
                "the program stopped reading: is it blocked writing to a client that does \
                 not read, or not reading at all?",
            ),
            _ => failure,
        }
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Whether a TCP socket on `port` is in LISTEN state on this machine (IPv4 or IPv6).
/// Asked of the kernel over sock_diag (cheap), or read from `/proc/net/tcp*` where that
/// is not available (see [`super::sockdiag`] for why the order matters).
pub fn is_listening(port: u16) -> bool {
    !sockdiag::listening_on_or_tables(port).is_empty()
}

/// The inodes of the TCP sockets listening on `port` (IPv4 and IPv6): whose they are is
/// then a question of `/proc/PID/fd`.
pub fn listener_inodes(port: u16) -> Vec<u64> {
    let found = sockdiag::listening_on_or_tables(port);
    found.iter().map(|l| l.inode).collect()
}

/// How many connections wait in the accept queue of the listener on `port` (`None`:
/// nothing listens there).
pub fn accept_queue(port: u16) -> Option<u64> {
    let found = sockdiag::listening_on_or_tables(port);
    found.first().map(|l| l.accept_queue)
}

/// The backlog the kernel holds for the listener on `port`, as `ss -ltn` shows it
/// (its Send-Q column). None when nothing listens there, or where only
/// `/proc/net/tcp` can be read (it does not show backlogs).
pub fn listen_backlog(port: u16) -> Option<u32> {
    let found = sockdiag::listening_on_or_tables(port);
    u32::try_from(found.first()?.backlog?).ok()
}

/// How many file descriptors process `pid` has open right now.
pub fn open_fds(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn finds_listeners_in_proc_tables() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(is_listening(port));
        // A socket bound to a port but not listening: ours for as long as the test runs,
        // so no other program on this busy machine can take the port meanwhile.
        let bound =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        bound
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let bound_port = bound.local_addr().unwrap().as_socket().unwrap().port();
        assert!(!is_listening(bound_port));
        let listener = TcpListener::bind("[::1]:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(is_listening(port), "IPv6 listeners are found too");
    }

    #[test]
    fn shows_text_and_binary() {
        assert_eq!(show(b"hi\n"), "\"hi\\n\"");
        assert!(show(&[0xff, 0]).contains("binary"));
    }
}
