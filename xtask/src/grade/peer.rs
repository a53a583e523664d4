//! The grader's own end of a conversation, for checks whose program under test needs
//! someone to talk to: a server for a client lab, a client for a server lab.
//!
//! A [`Peer`] is a TCP or Unix-stream connection (or listener), or a UDP or
//! Unix-datagram socket, driven in a thread of its own by a [`Script`]: steps as data
//! (send, send in pieces, read until end-of-file / N bytes / a line, expect bytes,
//! stall, half-close, reset). It records what it saw in [`Seen`]. Every operation has a
//! deadline. The check's [`Ctx`](super::Ctx) owns its peers: when the check ends they
//! are stopped, their threads joined and their sockets closed.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::net::{IO_LIMIT, RECEIVE_CAP};
use super::{Failure, poll, sockdiag, tcp_table};

/// The most a stalled peer holds its connection (the check ends it sooner).
const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// The most a datagram server serves (the check ends it sooner).
const SERVE_LIMIT: Duration = Duration::from_secs(60);

/// The most a datagram peer keeps of what it receives: a program that floods gets its
/// first datagrams kept, not all of them.
const MAX_DATAGRAMS: usize = 1000;

/// What the program's `n`th message (from 1) is answered with: the replies, in order
/// (none: the message is dropped, as UDP may drop any datagram).
pub type Answer = Box<dyn FnMut(usize, &[u8]) -> Vec<Vec<u8>> + Send>;

/// One thing the peer does, in order.
pub enum Step {
    /// Send all of these bytes (a datagram peer: one datagram).
    Send(Vec<u8>),
    /// Send these pieces; before each piece after the first, wait until the program has
    /// read everything sent so far (its receive queue is empty), so the pieces reach its
    /// recv() separately whatever the timing.
    SendPieces(Vec<Vec<u8>>),
    /// Read until the program's end-of-file.
    ReadToEof,
    /// Read until this many bytes have arrived in all (or the program's end-of-file).
    ReadBytes(usize),
    /// Read up to and including the next `\n` (or until end-of-file).
    ReadLine,
    #[cfg_attr(not(test), expect(dead_code, reason = "for client checks yet to port"))]
    /// Read as many bytes as given and compare: a mismatch is kept in
    /// [`Seen::failure`], rendered by [`Failure::compare`], and ends the script.
    Expect(Vec<u8>),
    /// Answer what has been read so far on this connection (the `n`th, from 1) with
    /// the answer function's pieces, sent as [`Step::SendPieces`] sends them.
    Answer,
    /// Read lines until the program's end-of-file, answering each (a last one without
    /// `\n` too) with the answer function's pieces.
    AnswerLines,
    /// Send back what arrives, as it arrives, until this many bytes have come (or the
    /// program's end-of-file); the deadline is the program's silence, not the whole.
    EchoBytes(usize),
    /// Send back what arrives, as it arrives, until the program's end-of-file.
    EchoToEof,
    /// The deadline of each operation from here on.
    Limit(Duration),
    /// Hold the connection open, neither reading nor writing, until the check ends.
    Stall,
    /// "I am done sending" (shutdown(Write)): the program's recv() returns 0.
    HalfClose,
    #[cfg_attr(not(test), expect(dead_code, reason = "for client checks yet to port"))]
    /// Abort the connection with a reset (SO_LINGER 0, then close).
    Reset,
}

/// What a peer does when a read step runs out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Late {
    /// Close the connection (the script ends).
    Close,
    /// Hold the connection open until the check ends: a server that needs the
    /// program's bytes says nothing without them, and the program's own timeout must
    /// get it out.
    Stall,
    /// Go on with the next step, as if the bytes had come.
    GoOn,
}

/// How a peer behaves: its steps, and the deadline of each.
pub struct Script {
    pub steps: Vec<Step>,
    /// The deadline of each accept, connect, read and write.
    pub limit: Duration,
    /// What a read step that runs out of time does.
    pub when_late: Late,
    /// Send pieces this far apart, instead of each once the program has read the last.
    pub pace: Option<Duration>,
    /// A UDP server: before its first reply, a datagram from another socket of the
    /// grader's (this prefix and the request), which only its sender tells apart.
    pub stranger: Option<Vec<u8>>,
    /// A server peer: how many connections it serves, one after the other, each by
    /// the whole script (a datagram peer: ignored).
    pub connections: usize,
    /// What [`Step::Answer`] sends, and what a datagram server answers each datagram.
    pub answer: Option<Answer>,
}

impl Script {
    /// These steps, each with the default deadline, for one connection.
    pub fn new(steps: Vec<Step>) -> Script {
        Script {
            steps,
            limit: IO_LIMIT,
            when_late: Late::Close,
            pace: None,
            stranger: None,
            connections: 1,
            answer: None,
        }
    }

    /// Each operation may take up to `limit`.
    pub fn limit(mut self, limit: Duration) -> Script {
        self.limit = limit;
        self
    }

    /// What a read step that runs out of time does (closing, by default).
    pub fn when_late(mut self, late: Late) -> Script {
        self.when_late = late;
        self
    }

    /// Send pieces `gap` apart (a pace the check names in its report).
    pub fn pace(mut self, gap: Duration) -> Script {
        self.pace = Some(gap);
        self
    }

    /// A UDP server: a stranger's datagram (`prefix` and the request) comes first.
    pub fn stranger_first(mut self, prefix: &[u8]) -> Script {
        self.stranger = Some(prefix.to_vec());
        self
    }

    /// Serve `n` connections in turn (`usize::MAX`: until the check ends).
    pub fn connections(mut self, n: usize) -> Script {
        self.connections = n;
        self
    }

    /// Answer with `answer` ([`Step::Answer`], or each datagram).
    pub fn answer(
        mut self,
        answer: impl FnMut(usize, &[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) -> Script {
        self.answer = Some(Box::new(answer));
        self
    }
}

/// What a peer saw on one connection (a datagram peer: in all).
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// Whether the connection was made (accepted, or connected to).
    pub connected: bool,
    /// The program's address, as accept() (or recvfrom()) returned it.
    pub peer: Option<SocketAddr>,
    /// Every byte the program sent (a datagram peer: every datagram, in
    /// [`datagrams`](Self::datagrams), and here one after the other).
    pub received: Vec<u8>,
    /// Whether the program's end-of-file arrived.
    pub eof: bool,
    /// The pieces the peer managed to send (a datagram peer: the datagrams).
    pub pieces_sent: usize,
    /// The datagrams received, with their sender (a Unix sender: its path, if named).
    pub datagrams: Vec<(Vec<u8>, Option<Origin>)>,
    /// Why sending failed, if it did (the OS error).
    pub write_error: Option<String>,
    /// The first [`Step::Expect`] that did not get its bytes.
    pub failure: Option<Failure>,
    /// Anything that went wrong on the peer's side.
    pub note: Option<String>,
}

/// Who sent a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Ip(SocketAddr),
    Path(PathBuf),
}

/// Where a peer is: what the program under test is told to dial or bind.
#[derive(Debug, Clone)]
pub enum Addr {
    Ip(SocketAddr),
    Path(PathBuf),
}

impl Addr {
    /// The IP address and port (a Unix peer: none).
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            Addr::Ip(addr) => Some(*addr),
            Addr::Path(_) => None,
        }
    }

    /// The port as text, for `--port` (a Unix peer: empty).
    pub fn port(&self) -> String {
        self.ip().map(|a| a.port().to_string()).unwrap_or_default()
    }

    /// The path as text, for `--path` (an IP peer: empty).
    pub fn path(&self) -> String {
        match self {
            Addr::Path(path) => path.to_string_lossy().into_owned(),
            Addr::Ip(_) => String::new(),
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Ip(addr) => addr.fmt(f),
            Addr::Path(path) => path.display().fmt(f),
        }
    }
}

/// A peer running in its thread. Stopped (thread joined, sockets closed) by
/// [`finish`](Self::finish), or when dropped.
pub struct Peer {
    pub addr: Addr,
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<Vec<Seen>>>,
}

/// The socket a peer starts with.
enum Start {
    Connected(Wire),
    TcpListen(TcpListener),
    TcpConnect(SocketAddr),
    UnixListen(UnixListener),
    UnixConnect(PathBuf),
    Udp(UdpSocket, Option<SocketAddr>),
    UnixDgram(UnixDatagram, Option<PathBuf>),
}

impl Peer {
    /// A TCP server on `ip` (a port the kernel picks) that serves by `script`.
    pub fn tcp_server(ip: IpAddr, script: Script) -> Result<Peer, Failure> {
        let listener = TcpListener::bind((ip, 0))
            .map_err(|e| Failure::new(format!("the grader could not listen on {ip}: {e}")))?;
        Peer::tcp_server_on(listener, script)
    }

    /// A TCP server on `listener` (say, one inside a private host).
    pub fn tcp_server_on(listener: TcpListener, script: Script) -> Result<Peer, Failure> {
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::new(format!("the grader's listener has no address: {e}")))?;
        Ok(Peer::spawn(
            Addr::Ip(addr),
            Start::TcpListen(listener),
            script,
        ))
    }

    #[cfg_attr(not(test), expect(dead_code, reason = "for client checks yet to port"))]
    /// A TCP client of `addr`, connecting in its thread.
    pub fn tcp_client(addr: SocketAddr, script: Script) -> Peer {
        Peer::spawn(Addr::Ip(addr), Start::TcpConnect(addr), script)
    }

    /// Plays the script on a Unix stream connection the check already has (a clone of
    /// its socket): say, sends from this thread while the check reads the answer.
    pub fn unix_on(stream: UnixStream, script: Script) -> Peer {
        let path = stream
            .peer_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_path_buf))
            .unwrap_or_default();
        Peer::spawn(
            Addr::Path(path),
            Start::Connected(Wire::Unix(stream)),
            script,
        )
    }

    /// A Unix stream server on `path`.
    pub fn unix_server(path: &Path, script: Script) -> Result<Peer, Failure> {
        let listener = UnixListener::bind(path).map_err(|e| {
            Failure::new(format!(
                "the grader could not listen on {}: {e}",
                path.display()
            ))
        })?;
        Ok(Peer::spawn(
            Addr::Path(path.into()),
            Start::UnixListen(listener),
            script,
        ))
    }

    #[cfg_attr(not(test), expect(dead_code, reason = "for client checks yet to port"))]
    /// A Unix stream client of `path`.
    pub fn unix_client(path: &Path, script: Script) -> Peer {
        Peer::spawn(
            Addr::Path(path.into()),
            Start::UnixConnect(path.into()),
            script,
        )
    }

    /// A UDP socket on `ip` (a port the kernel picks): a server answering each
    /// datagram by the script's answer function when `to` is None, else a client that
    /// sends its script's datagrams to `to`.
    pub fn udp(ip: IpAddr, to: Option<SocketAddr>, script: Script) -> Result<Peer, Failure> {
        let socket = UdpSocket::bind((ip, 0))
            .map_err(|e| Failure::new(format!("the grader could not bind: {e}")))?;
        let addr = socket
            .local_addr()
            .map_err(|e| Failure::new(format!("the grader's socket has no address: {e}")))?;
        Ok(Peer::spawn(Addr::Ip(addr), Start::Udp(socket, to), script))
    }

    /// A Unix datagram socket bound to `path`: a server (`to` None) or a client of `to`.
    pub fn unix_dgram(path: &Path, to: Option<PathBuf>, script: Script) -> Result<Peer, Failure> {
        let socket = UnixDatagram::bind(path).map_err(|e| {
            Failure::new(format!("the grader could not bind {}: {e}", path.display()))
        })?;
        Ok(Peer::spawn(
            Addr::Path(path.into()),
            Start::UnixDgram(socket, to),
            script,
        ))
    }

    fn spawn(addr: Addr, start: Start, script: Script) -> Peer {
        let (stop, stopped) = mpsc::channel();
        let handle = std::thread::spawn(move || run(start, script, &stopped));
        Peer {
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// The port as text, for `--port`.
    pub fn port(&self) -> String {
        self.addr.port()
    }

    /// The port (a Unix peer: 0).
    pub fn port_number(&self) -> u16 {
        self.addr.ip().map_or(0, |a| a.port())
    }

    /// Stops the peer (whatever it is waiting for) and returns what it saw on its
    /// first connection (or datagram socket).
    pub fn finish(self) -> Seen {
        self.finish_all().into_iter().next().unwrap_or_default()
    }

    /// Stops the peer and returns what it saw on each connection, in order.
    pub fn finish_all(mut self) -> Vec<Seen> {
        drop(self.stop.take());
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    #[cfg_attr(not(test), expect(dead_code, reason = "for client checks yet to port"))]
    /// Waits up to `limit` for the peer to end its script by itself (without stopping
    /// it); true if it did.
    pub fn ended_within(&self, limit: Duration) -> bool {
        poll::holds(limit, Duration::from_millis(5), || {
            self.handle.as_ref().is_none_or(|h| h.is_finished())
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Whether the check has asked the peer to stop (or is gone).
fn stop_asked(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(TryRecvError::Empty))
}

/// Keeps whatever the peer holds open (by not returning) until the check ends.
fn hold(stop: &Receiver<()>) {
    let _ = stop.recv_timeout(HOLD_LIMIT);
}

fn run(start: Start, mut script: Script, stop: &Receiver<()>) -> Vec<Seen> {
    match start {
        Start::Connected(wire) => {
            let mut seen = Seen::default();
            converse(wire, 1, &mut script, stop, &mut seen);
            vec![seen]
        }
        Start::TcpListen(listener) => {
            let server_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
            serve(&mut script, stop, |limit| {
                accept(&listener, stop, limit, |l| l.accept()).map(|(stream, peer)| {
                    let _ = stream.set_nodelay(true);
                    let ports = Some((server_port, peer.port()));
                    (Wire::Tcp(stream, ports), Some(peer))
                })
            })
        }
        Start::UnixListen(listener) => serve(&mut script, stop, |limit| {
            accept(&listener, stop, limit, |l| l.accept())
                .map(|(stream, _)| (Wire::Unix(stream), None))
        }),
        Start::TcpConnect(addr) => {
            let mut seen = Seen::default();
            match TcpStream::connect_timeout(&addr, script.limit) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let ports = stream
                        .local_addr()
                        .ok()
                        .map(|local| (local.port(), addr.port()));
                    seen.peer = Some(addr);
                    converse(Wire::Tcp(stream, ports), 1, &mut script, stop, &mut seen);
                }
                Err(e) => seen.note = Some(format!("could not connect to {addr}: {e}")),
            }
            vec![seen]
        }
        Start::UnixConnect(path) => {
            let mut seen = Seen::default();
            match UnixStream::connect(&path) {
                Ok(stream) => converse(Wire::Unix(stream), 1, &mut script, stop, &mut seen),
                Err(e) => seen.note = Some(format!("could not connect to {}: {e}", path.display())),
            }
            vec![seen]
        }
        Start::Udp(socket, to) => {
            let dgram = Dgram::Udp(socket, to.map(Origin::Ip));
            vec![datagrams(dgram, &mut script, stop)]
        }
        Start::UnixDgram(socket, to) => {
            let dgram = Dgram::Unix(socket, to.map(Origin::Path));
            vec![datagrams(dgram, &mut script, stop)]
        }
    }
}

/// Serves `script.connections` connections in turn, each got from `next`.
fn serve(
    script: &mut Script,
    stop: &Receiver<()>,
    mut next: impl FnMut(Duration) -> anyhow::Result<(Wire, Option<SocketAddr>)>,
) -> Vec<Seen> {
    let mut all = Vec::new();
    for n in 1..=script.connections {
        let mut seen = Seen::default();
        // The one client has the script's limit to come; a server of many serves them
        // whenever they come, until the check ends.
        let limit = if script.connections == 1 {
            script.limit
        } else {
            SERVE_LIMIT
        };
        match next(limit) {
            Ok((wire, peer)) => {
                seen.peer = peer;
                converse(wire, n, script, stop, &mut seen);
                all.push(seen);
            }
            Err(note) if n == 1 => {
                seen.note = Some(format!("{note:#}"));
                all.push(seen);
                break;
            }
            Err(_) => break,
        }
        if stop_asked(stop) {
            break;
        }
    }
    all
}

/// Accepts one connection within `limit`, polling so a stop request is noticed.
fn accept<L: AsRawListener, S: Blocking, A>(
    listener: &L,
    stop: &Receiver<()>,
    limit: Duration,
    accept: impl Fn(&L) -> io::Result<(S, A)>,
) -> anyhow::Result<(S, A)> {
    let deadline = Instant::now() + limit;
    if listener.nonblocking().is_err() {
        anyhow::bail!("the grader's listener cannot poll");
    }
    loop {
        match accept(listener) {
            Ok((stream, addr)) => {
                stream.blocking();
                return Ok((stream, addr));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if stop_asked(stop) || Instant::now() >= deadline {
                    anyhow::bail!("no client connected to the grader's server");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("the grader's accept() failed"),
        }
    }
}

/// A listener that can be made non-blocking.
trait AsRawListener {
    fn nonblocking(&self) -> io::Result<()>;
}

impl AsRawListener for TcpListener {
    fn nonblocking(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

impl AsRawListener for UnixListener {
    fn nonblocking(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

/// An accepted stream, made blocking again (each operation then has a timeout).
trait Blocking {
    fn blocking(&self);
}

impl Blocking for TcpStream {
    fn blocking(&self) {
        let _ = self.set_nonblocking(false);
    }
}

impl Blocking for UnixStream {
    fn blocking(&self) {
        let _ = self.set_nonblocking(false);
    }
}

/// A connected stream: TCP (with its local and remote ports, for the kernel's tables)
/// or Unix.
enum Wire {
    Tcp(TcpStream, Option<(u16, u16)>),
    Unix(UnixStream),
}

impl Wire {
    fn set_read_timeout(&self, limit: Duration) {
        let _ = match self {
            Wire::Tcp(s, _) => s.set_read_timeout(Some(limit)),
            Wire::Unix(s) => s.set_read_timeout(Some(limit)),
        };
    }

    fn write_all(&mut self, bytes: &[u8], limit: Duration) -> io::Result<()> {
        match self {
            Wire::Tcp(s, _) => {
                s.set_write_timeout(Some(limit))?;
                s.write_all(bytes)
            }
            Wire::Unix(s) => {
                s.set_write_timeout(Some(limit))?;
                s.write_all(bytes)
            }
        }
    }

    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s, _) => s.read(buffer),
            Wire::Unix(s) => s.read(buffer),
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Wire::Tcp(s, _) => s.shutdown(Shutdown::Write),
            Wire::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Closes with a reset (TCP) or at once (Unix).
    fn reset(self) {
        if let Wire::Tcp(stream, _) = &self {
            let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
        }
        drop(self);
    }

    /// Whether the program has read everything sent so far; waits up to `limit`.
    fn wait_until_read(&self, stop: &Receiver<()>, limit: Duration) -> bool {
        match self {
            Wire::Tcp(stream, Some((local, remote))) => {
                match (stream.local_addr(), stream.peer_addr()) {
                    (Ok(ours), Ok(theirs)) => wait_until_read_by(ours, theirs, stop, limit),
                    _ => wait_until_read_in(&own_tables(), *local, *remote, stop, limit),
                }
            }
            Wire::Tcp(_, None) => true,
            Wire::Unix(stream) => {
                use std::os::fd::AsRawFd;
                let read = poll::until(limit, Duration::from_millis(2), || {
                    // A Unix socket's send queue holds what the other end has not read.
                    let mut unread: libc::c_int = 0;
                    // SAFETY: TIOCOUTQ writes one int through the valid pointer.
                    let got =
                        unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut unread) };
                    if got != 0 || unread == 0 {
                        return Some(true);
                    }
                    stop_asked(stop).then_some(false)
                });
                read == Some(true)
            }
        }
    }
}

/// How a read step ended.
enum Ended {
    Done,
    Eof,
    Late,
    Stopped,
    Broken,
}

/// Plays the script on connection `n` (from 1).
fn converse(wire: Wire, n: usize, script: &mut Script, stop: &Receiver<()>, seen: &mut Seen) {
    seen.connected = true;
    // The steps stay the script's, for the next connection; the answer is used meanwhile.
    let steps = std::mem::take(&mut script.steps);
    play(wire, n, &steps, script, stop, seen);
    script.steps = steps;
}

fn play(
    mut wire: Wire,
    n: usize,
    steps: &[Step],
    script: &mut Script,
    stop: &Receiver<()>,
    seen: &mut Seen,
) {
    let mut limit = script.limit;
    let mut buffer = vec![0u8; 64 * 1024];
    for step in steps {
        let start = seen.received.len();
        let outcome = match step {
            Step::Send(bytes) => {
                if let Err(err) = wire.write_all(bytes, limit) {
                    // The program is gone (or stopped reading): its output will tell.
                    seen.write_error = Some(err.to_string());
                    return;
                }
                seen.pieces_sent += 1;
                continue;
            }
            Step::SendPieces(pieces) => {
                send_pieces(&mut wire, pieces, script, limit, stop, seen);
                continue;
            }
            Step::Answer => {
                let pieces = answer(script, n, &seen.received);
                send_pieces(&mut wire, &pieces, script, limit, stop, seen);
                continue;
            }
            Step::Limit(new) => {
                limit = *new;
                continue;
            }
            Step::AnswerLines => loop {
                let line_start = seen.received.len();
                let outcome = read_line(&mut wire, seen, &mut buffer, stop, limit);
                if seen.received.len() > line_start {
                    let pieces = answer(script, n, &seen.received[line_start..]);
                    send_pieces(&mut wire, &pieces, script, limit, stop, seen);
                }
                if !matches!(outcome, Ended::Done) {
                    break outcome;
                }
            },
            Step::EchoBytes(_) | Step::EchoToEof => loop {
                let chunk_start = seen.received.len();
                let outcome = read(&mut wire, seen, &mut buffer, None, stop, limit, |got| {
                    !got.is_empty()
                });
                let chunk = seen.received[chunk_start..].to_vec();
                if !chunk.is_empty() {
                    if wire.write_all(&chunk, limit).is_err() {
                        return;
                    }
                    seen.pieces_sent += 1;
                }
                let enough =
                    matches!(step, Step::EchoBytes(n) if seen.received.len() - start >= *n);
                if enough || !matches!(outcome, Ended::Done) {
                    break outcome;
                }
            },
            Step::Stall => {
                hold(stop);
                return;
            }
            Step::HalfClose => {
                wire.shutdown_write();
                continue;
            }
            Step::Reset => {
                wire.reset();
                return;
            }
            Step::ReadToEof => read(&mut wire, seen, &mut buffer, None, stop, limit, |_| false),
            Step::ReadBytes(n) => {
                let n = *n;
                read(&mut wire, seen, &mut buffer, None, stop, limit, |got| {
                    got.len() >= n
                })
            }
            Step::ReadLine => read_line(&mut wire, seen, &mut buffer, stop, limit),
            Step::Expect(expected) => {
                // Never more than expected: what follows is the next step's.
                let cap = Some(expected.len());
                let outcome = read(&mut wire, seen, &mut buffer, cap, stop, limit, |got| {
                    got.len() >= expected.len() || !expected.starts_with(got)
                });
                let got = &seen.received[start..];
                if got != expected.as_slice() {
                    let problem = match outcome {
                        Ended::Eof => "the connection closed before the expected bytes came",
                        Ended::Late => "the expected bytes did not all come in time",
                        _ => "the bytes that came are not the expected ones",
                    };
                    seen.failure = Some(Failure::new(problem).compare(expected, got));
                    return;
                }
                continue;
            }
        };
        match outcome {
            Ended::Done | Ended::Eof => {}
            Ended::Late => {
                seen.note = Some(format!(
                    "the grader waited {} s for the program's bytes",
                    limit.as_secs()
                ));
                match script.when_late {
                    Late::GoOn => continue,
                    Late::Stall => hold(stop),
                    Late::Close => {}
                }
                return;
            }
            Ended::Stopped | Ended::Broken => return,
        }
    }
}

/// The answer function's pieces for `message` on connection `n` (none without one).
fn answer(script: &mut Script, n: usize, message: &[u8]) -> Vec<Vec<u8>> {
    script
        .answer
        .as_mut()
        .map(|answer| answer(n, message))
        .unwrap_or_default()
}

/// Sends `pieces`, each after the program has read the last (or at the script's pace).
fn send_pieces(
    wire: &mut Wire,
    pieces: &[Vec<u8>],
    script: &Script,
    limit: Duration,
    stop: &Receiver<()>,
    seen: &mut Seen,
) {
    for (index, piece) in pieces.iter().enumerate() {
        if index > 0 {
            if let Some(gap) = script.pace {
                std::thread::sleep(gap);
            } else if !wire.wait_until_read(stop, limit) {
                seen.note = Some(format!(
                    "the program did not read piece {index} within {} s",
                    limit.as_secs()
                ));
                break;
            }
        }
        if wire.write_all(piece, limit).is_err() {
            break; // the program is gone (or stopped reading): its output will tell
        }
        seen.pieces_sent += 1;
    }
}

/// Reads until `enough(bytes read by this step)`, end-of-file or `limit`, in short waits
/// so a stop request is noticed quickly once the program is quiet; never more than
/// `cap` bytes in all.
fn read(
    wire: &mut Wire,
    seen: &mut Seen,
    buffer: &mut [u8],
    cap: Option<usize>,
    stop: &Receiver<()>,
    limit: Duration,
    enough: impl Fn(&[u8]) -> bool,
) -> Ended {
    let start = seen.received.len();
    let deadline = Instant::now() + limit;
    wire.set_read_timeout(Duration::from_millis(50));
    loop {
        if start < seen.received.len() && enough(&seen.received[start..]) {
            return Ended::Done;
        }
        if seen.eof {
            return Ended::Eof;
        }
        if Instant::now() >= deadline {
            return Ended::Late;
        }
        // A step that reads a bounded amount reads no further.
        let want = cap.map_or(buffer.len(), |cap| {
            cap.saturating_sub(seen.received.len() - start)
                .clamp(1, buffer.len())
        });
        match wire.read(&mut buffer[..want]) {
            Ok(0) => seen.eof = true,
            Ok(n) => {
                seen.received.extend_from_slice(&buffer[..n]);
                if seen.received.len() > RECEIVE_CAP {
                    seen.note = Some("the program sent more than the grader keeps".into());
                    return Ended::Broken;
                }
            }
            // Quiet: time to notice a stop request (what had come is read first).
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop_asked(stop) {
                    return Ended::Stopped;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                seen.note = Some(format!("reading the program's bytes failed: {e}"));
                return Ended::Broken;
            }
        }
    }
}

/// Reads up to and including the next `\n`, byte by byte so nothing after it is taken.
fn read_line(
    wire: &mut Wire,
    seen: &mut Seen,
    buffer: &mut [u8],
    stop: &Receiver<()>,
    limit: Duration,
) -> Ended {
    let one_byte = &mut buffer[..1];
    read(wire, seen, one_byte, None, stop, limit, |got| {
        got.ends_with(b"\n")
    })
}

/// A datagram socket: UDP or Unix, with the address a client peer sends to.
enum Dgram {
    Udp(UdpSocket, Option<Origin>),
    Unix(UnixDatagram, Option<Origin>),
}

impl Dgram {
    fn set_read_timeout(&self, limit: Duration) {
        let _ = match self {
            Dgram::Udp(s, _) => s.set_read_timeout(Some(limit)),
            Dgram::Unix(s, _) => s.set_read_timeout(Some(limit)),
        };
    }

    fn recv(&self, buffer: &mut [u8]) -> io::Result<(usize, Option<Origin>)> {
        match self {
            Dgram::Udp(s, _) => s.recv_from(buffer).map(|(n, a)| (n, Some(Origin::Ip(a)))),
            Dgram::Unix(s, _) => s.recv_from(buffer).map(|(n, a): (usize, UnixAddr)| {
                (n, a.as_pathname().map(|p| Origin::Path(p.into())))
            }),
        }
    }

    fn send(&self, bytes: &[u8], to: &Origin) -> bool {
        match (self, to) {
            (Dgram::Udp(s, _), Origin::Ip(addr)) => s.send_to(bytes, addr).is_ok(),
            (Dgram::Unix(s, _), Origin::Path(path)) => s.send_to(bytes, path).is_ok(),
            _ => false,
        }
    }

    fn target(&self) -> Option<&Origin> {
        match self {
            Dgram::Udp(_, to) | Dgram::Unix(_, to) => to.as_ref(),
        }
    }
}

/// Plays the script on a datagram socket. A client sends its steps' datagrams to its
/// target; a server (no target) answers every datagram with the answer function, to
/// senders it can answer, until the check stops it. Both record every datagram.
fn datagrams(dgram: Dgram, script: &mut Script, stop: &Receiver<()>) -> Seen {
    let mut seen = Seen::default();
    let mut buffer = vec![0u8; 70_000];
    let mut limit = script.limit;
    let note = |seen: &mut Seen, data: &[u8], from: Option<Origin>| {
        if let Some(Origin::Ip(addr)) = &from {
            seen.peer.get_or_insert(*addr);
        }
        if seen.datagrams.len() < MAX_DATAGRAMS {
            seen.received.extend_from_slice(data);
            seen.datagrams.push((data.to_vec(), from));
        }
    };
    dgram.set_read_timeout(Duration::from_millis(20));
    let Some(target) = dgram.target().cloned() else {
        let mut stranger = script.stranger.clone().and_then(|prefix| {
            let Dgram::Udp(socket, _) = &dgram else {
                return None;
            };
            let ip = socket.local_addr().ok()?.ip();
            Some((UdpSocket::bind((ip, 0)).ok()?, prefix))
        });
        let deadline = Instant::now() + SERVE_LIMIT;
        while !stop_asked(stop) && Instant::now() < deadline {
            let Ok((n, from)) = dgram.recv(&mut buffer) else {
                continue;
            };
            let data = buffer[..n].to_vec();
            note(&mut seen, &data, from.clone());
            let count = seen.datagrams.len();
            let replies = script
                .answer
                .as_mut()
                .map(|answer| answer(count, &data))
                .unwrap_or_default();
            if !replies.is_empty()
                && let Some((socket, prefix)) = stranger.take()
                && let Some(Origin::Ip(to)) = &from
            {
                let _ = socket.send_to(&[prefix.as_slice(), &data].concat(), to);
            }
            for reply in replies {
                if from.as_ref().is_some_and(|to| dgram.send(&reply, to)) {
                    seen.pieces_sent += 1;
                }
            }
        }
        // Whatever was queued when the check said stop still counts as received.
        dgram.set_read_timeout(Duration::from_millis(1));
        while seen.datagrams.len() < MAX_DATAGRAMS
            && let Ok((n, from)) = dgram.recv(&mut buffer)
        {
            let data = buffer[..n].to_vec();
            note(&mut seen, &data, from);
        }
        return seen;
    };
    for step in &script.steps {
        match step {
            Step::Send(bytes) if dgram.send(bytes, &target) => seen.pieces_sent += 1,
            Step::SendPieces(pieces) => {
                for piece in pieces {
                    if dgram.send(piece, &target) {
                        seen.pieces_sent += 1;
                    }
                }
            }
            Step::ReadBytes(_) | Step::ReadLine | Step::ReadToEof | Step::Expect(_) => {
                let deadline = Instant::now() + limit;
                let got = loop {
                    if stop_asked(stop) || Instant::now() >= deadline {
                        break None;
                    }
                    if let Ok((n, from)) = dgram.recv(&mut buffer) {
                        let data = buffer[..n].to_vec();
                        note(&mut seen, &data, from);
                        break Some(data);
                    }
                };
                if let Step::Expect(expected) = step
                    && got.as_ref() != Some(expected)
                {
                    let problem = if got.is_some() {
                        "the datagram that came is not the expected one"
                    } else {
                        "the expected datagram did not come in time"
                    };
                    let got = got.unwrap_or_default();
                    seen.failure = Some(Failure::new(problem).compare(expected, &got));
                    return seen;
                }
                if got.is_none() {
                    seen.note = Some(format!("no datagram came within {} s", limit.as_secs()));
                }
            }
            Step::Stall => {
                hold(stop);
                return seen;
            }
            Step::Limit(new) => limit = *new,
            _ => {}
        }
    }
    seen
}

/// The check's own TCP tables (it may run in a network namespace of its own).
pub fn own_tables() -> Vec<PathBuf> {
    vec![
        "/proc/thread-self/net/tcp".into(),
        "/proc/thread-self/net/tcp6".into(),
    ]
}

/// Polls the kernel (sock_diag: one hash lookup a socket) until everything sent on the
/// connection `local`<->`remote` has been acknowledged and read by the program at
/// `remote` (its receive queue is empty). True when that happened, or when the
/// program's socket is gone; false at `limit` or on a stop request. Where sock_diag
/// cannot be used, reads the TCP tables instead.
pub fn wait_until_read_by(
    local: SocketAddr,
    remote: SocketAddr,
    stop: &Receiver<()>,
    limit: Duration,
) -> bool {
    let queues = |ours: bool| {
        let (from, to) = if ours {
            (local, remote)
        } else {
            (remote, local)
        };
        sockdiag::connection_or_tables(from, to).map(|c| (c.send_queue, c.receive_queue))
    };
    wait_until_drained(queues, stop, limit)
}

/// [`wait_until_read_by`], read from these TCP `tables` (matched by ports): for a
/// connection in another network namespace, whose tables the caller names.
pub fn wait_until_read_in(
    tables: &[PathBuf],
    local: u16,
    remote: u16,
    stop: &Receiver<()>,
    limit: Duration,
) -> bool {
    let queues = |ours: bool| {
        let (from, to) = if ours {
            (local, remote)
        } else {
            (remote, local)
        };
        tcp_table::connection(tables, from, to).map(|row| (row.send_queue, row.receive_queue))
    };
    wait_until_drained(queues, stop, limit)
}

/// Polls `queues` (`true`: our socket's `(send, receive)` queues, `false`: the
/// program's) until nothing we sent is unacknowledged or unread, or the program's
/// socket is gone (true); false at `limit` or on a stop request.
fn wait_until_drained(
    queues: impl Fn(bool) -> Option<(u64, u64)>,
    stop: &Receiver<()>,
    limit: Duration,
) -> bool {
    let read = poll::until(limit, Duration::from_millis(2), || {
        let unacked = queues(true).map(|(tx, _)| tx);
        let unread = queues(false).map(|(_, rx)| rx);
        match (unacked, unread) {
            (Some(0), Some(0)) | (_, None) => Some(true),
            _ => stop_asked(stop).then_some(false),
        }
    });
    read == Some(true)
}

#[cfg_attr(not(test), expect(dead_code, reason = "for client checks yet to port"))]
impl Seen {
    /// The datagrams' payloads, in order.
    pub fn payloads(&self) -> Vec<&[u8]> {
        self.datagrams.iter().map(|(d, _)| d.as_slice()).collect()
    }

    #[cfg_attr(not(test), expect(dead_code, reason = "for client checks yet to port"))]
    /// Fails with what the peer's first [`Step::Expect`] saw, if it did not get its
    /// bytes; `sent` says what the grader had sent before.
    pub fn expectations(&self, sent: &[u8]) -> Result<(), Failure> {
        match &self.failure {
            Some(failure) if sent.is_empty() => Err(failure.clone()),
            Some(failure) => Err(failure.clone().sent_bytes(sent)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::net::LOCALHOST_V4;

    #[test]
    fn a_server_and_a_client_peer_talk() {
        let server = Peer::tcp_server(
            LOCALHOST_V4,
            Script::new(vec![
                Step::ReadToEof,
                Step::SendPieces(vec![b"one ".to_vec(), b"two".to_vec()]),
                Step::HalfClose,
            ]),
        )
        .unwrap();
        let addr = server.addr.ip().unwrap();
        let client = Peer::tcp_client(
            addr,
            Script::new(vec![
                Step::Send(b"hello".to_vec()),
                Step::HalfClose,
                Step::Expect(b"one two".to_vec()),
                Step::ReadToEof,
            ]),
        );
        let heard = client.finish_after();
        assert!(heard.failure.is_none(), "{:?}", heard.failure);
        assert!(heard.eof);
        let seen = server.finish();
        assert_eq!(seen.received, b"hello");
        assert!(seen.eof);
        assert_eq!(seen.pieces_sent, 2);
    }

    #[test]
    fn expect_renders_its_own_failure() {
        let server = Peer::tcp_server(
            LOCALHOST_V4,
            Script::new(vec![Step::Send(b"abXd".to_vec()), Step::HalfClose]),
        )
        .unwrap();
        let client = Peer::tcp_client(
            server.addr.ip().unwrap(),
            Script::new(vec![Step::Expect(b"abcd".to_vec())]),
        );
        let heard = client.finish_after();
        let failure = heard.expectations(b"").unwrap_err();
        assert_eq!(failure.compared, Some((b"abcd".to_vec(), b"abXd".to_vec())));
    }

    #[test]
    fn a_reset_is_seen_as_an_error_not_an_end_of_file() {
        let server = Peer::tcp_server(
            LOCALHOST_V4,
            Script::new(vec![Step::ReadBytes(2), Step::Reset]),
        )
        .unwrap();
        let client = Peer::tcp_client(
            server.addr.ip().unwrap(),
            Script::new(vec![Step::Send(b"hi".to_vec()), Step::ReadToEof]),
        );
        let heard = client.finish_after();
        assert!(!heard.eof, "a reset is no end-of-file");
        assert!(heard.note.is_some_and(|n| n.contains("reset")));
        assert_eq!(server.finish().received, b"hi");
    }

    #[test]
    fn udp_and_unix_datagram_peers_answer() {
        let server = Peer::udp(
            LOCALHOST_V4,
            None,
            Script::new(vec![]).answer(|_, d| vec![[b"R:", d].concat()]),
        )
        .unwrap();
        let client = Peer::udp(
            LOCALHOST_V4,
            server.addr.ip(),
            Script::new(vec![
                Step::Send(b"hi".to_vec()),
                Step::Expect(b"R:hi".to_vec()),
            ]),
        )
        .unwrap();
        assert!(client.finish_after().failure.is_none());
        assert_eq!(server.finish().payloads(), vec![b"hi".as_slice()]);

        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let server = Peer::unix_dgram(
            &a,
            None,
            Script::new(vec![]).answer(|_, d| vec![d.to_vec()]),
        )
        .unwrap();
        let client = Peer::unix_dgram(
            &b,
            Some(a.clone()),
            Script::new(vec![Step::Send(b"x".to_vec()), Step::Expect(b"x".to_vec())]),
        )
        .unwrap();
        assert!(client.finish_after().failure.is_none());
        let seen = server.finish();
        assert_eq!(seen.datagrams[0].1, Some(Origin::Path(b)));
    }

    #[test]
    fn lines_are_answered_and_bytes_echoed() {
        let server = Peer::tcp_server(
            LOCALHOST_V4,
            Script::new(vec![Step::AnswerLines])
                .answer(|_, line| vec![[b"you said: ".as_slice(), line].concat()]),
        )
        .unwrap();
        let client = Peer::tcp_client(
            server.addr.ip().unwrap(),
            Script::new(vec![
                Step::Send(b"one\ntwo".to_vec()),
                Step::HalfClose,
                Step::Expect(b"you said: one\nyou said: two".to_vec()),
            ]),
        );
        assert!(client.finish_after().failure.is_none());
        assert_eq!(server.finish().received, b"one\ntwo");

        let echo = Peer::tcp_server(
            LOCALHOST_V4,
            Script::new(vec![
                Step::EchoBytes(3),
                Step::Limit(Duration::from_secs(1)),
                Step::EchoToEof,
            ]),
        )
        .unwrap();
        let client = Peer::tcp_client(
            echo.addr.ip().unwrap(),
            Script::new(vec![
                Step::Send(b"abc".to_vec()),
                Step::Expect(b"abc".to_vec()),
                Step::Send(b"d".to_vec()),
                Step::HalfClose,
                Step::Expect(b"d".to_vec()),
                Step::ReadToEof,
            ]),
        );
        let heard = client.finish_after();
        assert!(heard.failure.is_none() && heard.eof);
        assert!(echo.finish().eof);
    }

    #[test]
    fn a_stalled_peer_is_torn_down_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let server = Peer::unix_server(&path, Script::new(vec![Step::Stall])).unwrap();
        let client = Peer::unix_client(&path, Script::new(vec![Step::Stall]));
        let started = Instant::now();
        drop(client);
        drop(server);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    impl Peer {
        /// For tests: waits for a client peer to end its script, then what it saw.
        fn finish_after(self) -> Seen {
            assert!(self.ended_within(Duration::from_secs(10)));
            self.finish()
        }
    }
}
