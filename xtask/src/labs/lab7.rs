//! Lab 7 (event-loop): the check table and the classroom demo.
//!
//! The server is one thread on non-blocking sockets and epoll. It must: echo every
//! byte and close once the client has half-closed and has its echo, hold 2,000 clients
//! at once, keep serving everyone while one client sends without reading, stop reading
//! that client instead of buffering without bound (back-pressure), lose and reorder
//! nothing when send() takes only part of a buffer, sleep while nothing happens, survive
//! a stop/continue (EINTR) and clients that reset, not leak descriptors, listen with a
//! deep backlog, and fail with one clear line when its port is taken. The client role
//! sends stdin, half-closes and prints exactly the echo.
//!
//! The long streams of the slow-reader checks follow a pattern (byte `i` is `i % 251`,
//! a prime cycle), so any lost, repeated or reordered chunk shows up as a wrong byte.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::grade::common::start;
use crate::grade::net::{self, LOCALHOST_V4, show};
use crate::grade::peer::{Peer, Script, Seen, Step};
use crate::grade::row;
use crate::grade::sockdiag;
use crate::grade::writer::{Body, Writer};
use crate::grade::{self, procstat, standard};
use crate::grade::{Ctx, Failure, Finished, Lab, Server, common, ensure, expect};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
    id: "lab7",
    slug: "event-loop",
    title: "one thread, ten thousand callers: an echo server on epoll",
    table: &[
        row("echoes", echoes).points(2),
        standard::ipv6(ipv6),
        row("many-clients", many_clients).points(3),
        row("slow-reader-no-stall", slow_reader_no_stall)
            .points(2)
            .budget(40),
        row("back-pressure", back_pressure).points(2).budget(40),
        row("slow-reader-intact", slow_reader_intact)
            .points(2)
            .budget(40),
        row("idle-sleeps", idle_sleeps).points(2).budget(40),
        row("stop-continue", stop_continue),
        row("survives-resets", survives_resets),
        standard::no_fd_leak(no_fd_leak),
        row("keepalive", keepalive).points(2),
        row("idle-timeout", idle_timeout).points(2).budget(30),
        row("backlog", backlog),
        standard::port_in_use(),
        row("client", client).points(2),
    ],
};

/// The back-pressure bound the slow-reader checks give the server.
const MAX_BUFFER: &str = "65536";
/// Clients of the `many-clients` check, all connected at once.
const MANY: usize = 2000;
/// Bytes each of them sends.
const MANY_MESSAGE: usize = 1000;
/// A sender that makes no progress for this long is stalled: the server stopped taking
/// its bytes (with correct back-pressure, it stays stalled for ever).
const STALL: Duration = Duration::from_secs(1);
/// What a client that never reads offers the server in `back-pressure`. A server with
/// back-pressure stalls it after a few MiB (the kernel's socket buffers).
const PRESSURE_LIMIT: usize = 128 << 20;
/// How much the server's VmRSS may grow while that client does not read.
const RSS_GROWTH_LIMIT_KIB: u64 = 32 * 1024;
/// The stream the slow reader of `slow-reader-intact` sends: more than the kernel's
/// buffers and the server's bound together, so the server's queue surely fills up.
const INTACT_BYTES: usize = 32 << 20;
/// The bound `slow-reader-intact` gives the server: bigger than the room a socket's send
/// buffer reports when it wakes a writer (about a third of it, at most 4 MiB in all), so
/// sending a full queue surely takes several partial send()s.
const INTACT_MAX_BUFFER: &str = "4194304";
/// The prime cycle of the pattern streams.
const CYCLE: usize = 251;
/// Bytes per write of a pattern stream.
const CHUNK: usize = 64 * 1024;

/// One whole visit: connect, send `message`, half-close, read until the server closes.
fn visit(addr: SocketAddr, message: &[u8]) -> Result<Vec<u8>, Failure> {
    net::converse(addr, message, message.len() + 1024)
}

/// A visit whose echo must be exactly `message`.
fn expect_echo(addr: SocketAddr, message: &[u8], who: &str) -> Result<(), Failure> {
    let got = visit(addr, message).map_err(|f| f.during(who))?;
    ensure(got == message, || {
        Failure::new(format!("{who}: the echo differs from what was sent"))
            .sent_bytes(message)
            .got(show(&got))
            .hint(
                "send back exactly the bytes received, all of them, and close only after \
                 recv() returned 0 and every byte went out",
            )
    })
}

/// The pattern stream's bytes from position 0 to `CHUNK + CYCLE`: the bytes from any
/// position `p` on are `&buffer[p % CYCLE..]`.
fn pattern_buffer() -> Vec<u8> {
    (0..CHUNK + CYCLE).map(|i| (i % CYCLE) as u8).collect()
}

/// Raises our soft open-file limit to the hard one (the server we start inherits it),
/// and returns the limit now in force.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into `limit`, which lives on our stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max.min(1 << 20),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads `raised`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

/// The process's resident memory (VmRSS), in KiB.
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Polls until `pid` sleeps in an epoll/poll/select wait (its `/proc` wait channel);
/// false when it never does within `limit` (a program that waits some other way).
fn waits_in_epoll(pid: u32, limit: Duration) -> bool {
    grade::poll::holds(limit, Duration::from_millis(2), || {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        ["epoll", "poll", "select"]
            .iter()
            .any(|w| wchan.contains(w))
    })
}

/// A client that sent without ever reading, until the server stopped taking its bytes.
struct Stuffed {
    /// Kept open (and unread) for as long as the check needs the pressure.
    _stream: TcpStream,
    /// Still blocked in send() on the full socket when it stalled; shut down with it.
    _writer: Option<Writer>,
    pushed: usize,
    /// True when its sends stalled; false when it reached the limit still sending.
    stalled: bool,
}

/// Sends the pattern stream without reading until no byte goes out for [`STALL`], or
/// `limit` bytes went out, or a minute passed.
fn stuff(addr: SocketAddr, limit: usize) -> Result<Stuffed, Failure> {
    let stream = net::connect(addr)?.stream;
    let body = Body::pattern(Arc::new(pattern_buffer()), CYCLE, limit);
    let writer = Writer::start(&stream, body)?;
    let stalled = writer.stalls_within(STALL, Duration::from_secs(60));
    let pushed = writer.sent();
    if !writer.is_done() {
        let _writer = Some(writer);
        return Ok(Stuffed {
            _stream: stream,
            _writer,
            pushed,
            stalled,
        });
    }
    match writer.finish() {
        Ok(()) => Ok(Stuffed {
            _stream: stream,
            _writer: None,
            pushed,
            stalled: false,
        }),
        Err(err) => Err(Failure::new(format!(
            "error while sending to the server without reading: {err}"
        ))
        .got(format!("{pushed} bytes sent before the error"))
        .hint(
            "the server dropped a client that was only slow to read: it must keep \
             such a client, stop reading from it for a while, and resume later",
        )),
    }
}

fn echoes(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    expect_echo(server.addr, b"hello, event loop\n", "one client")?;
    // Bytes that are not text, in many small pieces, must come back just the same.
    let binary: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    expect_piecemeal_echo(server.addr, &binary)
}

/// A visit that sends `binary` with its first 64 bytes one per write, so the server's
/// recv()s see small pieces, and whose echo must be exactly `binary`.
fn expect_piecemeal_echo(addr: SocketAddr, binary: &[u8]) -> Result<(), Failure> {
    let mut conn = net::connect(addr)?;
    conn.send_bytewise(&binary[..64])?;
    conn.send(&binary[64..])?;
    conn.half_close()?;
    let got = conn
        .read_to_eof(binary.len() + 1024)
        .map_err(|f| f.during("a client that sent 512 binary bytes, the first 64 one by one"))?;
    ensure(got == binary, || {
        Failure::new("the echo of 512 binary bytes differs from what was sent")
            .sent_bytes(binary)
            .got(show(&got))
            .hint("echo raw bytes: no text conversion, nothing added, nothing dropped")
    })
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = common::start_over_ipv6(ctx)?;
    expect_echo(server.addr, b"over IPv6\n", "a client over IPv6")
}

/// Client `i`'s own message: its number, repeated, so mixed-up echoes show.
fn many_message(i: usize) -> Vec<u8> {
    let mut message: Vec<u8> = format!("client {i:04}; ")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(MANY_MESSAGE - 1)
        .collect();
    message.push(b'\n');
    message
}

fn many_clients(ctx: &mut Ctx) -> Result<(), Failure> {
    enough_open_files()?;
    // A backlog as deep as the crowd, so that this check needs no particular default.
    let server = start(ctx, &["--backlog", "2048"])?;
    let mut streams = connect_crowd(server.addr)?;
    send_own_messages(&mut streams)?;
    let echoes = read_every_echo(&streams)?;
    every_echo_its_own(&echoes)
}

/// Fails unless the grader may open a descriptor for each of the [`MANY`] clients
/// (after raising its own limit as far as it may).
fn enough_open_files() -> Result<(), Failure> {
    let limit = raise_open_file_limit();
    if limit < (MANY + 100) as u64 {
        return Err(Failure::new(format!(
            "the grader may open only {limit} files, too few for {MANY} connections"
        ))
        .hint("raise the open-file limit before grading (ulimit -n 4096)"));
    }
    Ok(())
}

/// Connects all [`MANY`] clients first, so that all of them are open at the same time.
fn connect_crowd(addr: SocketAddr) -> Result<Vec<TcpStream>, Failure> {
    let mut streams = Vec::with_capacity(MANY);
    for i in 0..MANY {
        let conn = net::connect(addr).map_err(|f| {
            f.during(format!("opening connection {} of {MANY}", i + 1))
                .or_hint("accept every queued caller each time the listener is ready")
        })?;
        streams.push(conn.stream);
    }
    Ok(streams)
}

/// Each client sends its own message ([`many_message`]) and half-closes.
fn send_own_messages(streams: &mut [TcpStream]) -> Result<(), Failure> {
    for (i, stream) in streams.iter_mut().enumerate() {
        let sent = stream
            .set_write_timeout(Some(net::IO_LIMIT))
            .and_then(|()| stream.write_all(&many_message(i)))
            .and_then(|()| stream.shutdown(Shutdown::Write));
        if let Err(err) = sent {
            return Err(Failure::new(format!(
                "client {i}: error while sending its message: {err}"
            ))
            .hint("keep every connection open until its client is done"));
        }
    }
    Ok(())
}

/// Reads every client's echo as it comes, all connections watched at once with poll(),
/// until each has seen end-of-stream (or a minute passed).
fn read_every_echo(streams: &[TcpStream]) -> Result<Vec<Vec<u8>>, Failure> {
    let mut echoes: Vec<Vec<u8>> = vec![Vec::new(); MANY];
    let mut waiting: Vec<usize> = (0..MANY).collect();
    for stream in streams {
        let _ = stream.set_nonblocking(true);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiting.is_empty() {
        if Instant::now() >= deadline {
            let example = waiting[0];
            return Err(Failure::new(format!(
                "{} of {MANY} clients were still waiting for the end of their echo after 60 s",
                waiting.len()
            ))
            .got(format!(
                "client {example} received {}",
                show(&echoes[example])
            ))
            .hint(
                "every ready client must be served: recv(), send() what it takes, and \
                 close after the client's FIN once all is sent",
            ));
        }
        for i in readable(streams, &waiting) {
            let ended = drain(&streams[i], &mut echoes[i]).map_err(|err| {
                Failure::new(format!(
                    "client {i} of {MANY}: error while reading its echo: {err}"
                ))
                .got(show(&echoes[i]))
                .hint(
                    "the server reset a client: does it fail when many are connected \
                         (descriptor limit, a full event array)?",
                )
            })?;
            if ended {
                waiting.retain(|&w| w != i);
            }
        }
    }
    Ok(echoes)
}

/// Which of the `waiting` streams have something to read (or an end), within 200 ms.
fn readable(streams: &[TcpStream], waiting: &[usize]) -> Vec<usize> {
    let mut watched: Vec<PollFd> = waiting
        .iter()
        .map(|&i| PollFd::new(streams[i].as_fd(), PollFlags::POLLIN))
        .collect();
    let _ = poll(&mut watched, PollTimeout::from(200u16));
    watched
        .iter()
        .zip(waiting)
        .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
        .map(|(_, &i)| i)
        .collect()
}

/// Reads what a non-blocking `stream` has into `echo`; true once its echo is over
/// (end-of-file, or more than any echo here can be, which is wrong anyway).
fn drain(mut stream: &TcpStream, echo: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(true),
            Ok(_) if echo.len() > net::RECEIVE_CAP => return Ok(true),
            Ok(count) => echo.extend_from_slice(&buffer[..count]),
            Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Fails unless every client's echo is exactly its own message.
fn every_echo_its_own(echoes: &[Vec<u8>]) -> Result<(), Failure> {
    let wrong: Vec<usize> = (0..MANY)
        .filter(|&i| echoes[i] != many_message(i))
        .collect();
    match wrong.first() {
        None => Ok(()),
        Some(&first) => Err(Failure::new(format!(
            "{} of {MANY} clients got a wrong echo",
            wrong.len()
        ))
        .sent(format!("client {first}: {}", show(&many_message(first))))
        .got(format!("client {first}: {}", show(&echoes[first])))
        .hint("keep one state per connection (indexed by the epoll token) and echo each client's own bytes")),
    }
}

fn slow_reader_no_stall(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--max-buffer", MAX_BUFFER])?;
    let stuffed = stuff(server.addr, 64 << 20)?;
    for n in 1..=5 {
        served_beside(server.addr, n, &stuffed)?;
    }
    ctx.ensure_running(server.id, "while a client sent without reading")
}

/// Client `n` of 5 must get its echo while `stuffed` sits on the server unread.
fn served_beside(addr: SocketAddr, n: usize, stuffed: &Stuffed) -> Result<(), Failure> {
    let who = format!(
        "client {n} of 5, while another client sent {} bytes and read none",
        stuffed.pushed
    );
    let message = format!("client {n} is not stuck\n");
    expect_echo(addr, message.as_bytes(), &who).map_err(|f| {
        f.hint(
            "one client that does not read must not stop the server: make every client \
             socket non-blocking (accept4 with SOCK_NONBLOCK), keep what send() did not \
             take, and go back to epoll_wait()",
        )
    })
}

fn back_pressure(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--max-buffer", MAX_BUFFER])?;
    expect_echo(server.addr, b"warming up\n", "a first client")?;
    let before = vm_rss_kib(server.pid).unwrap_or(0);
    let stuffed = stuff(server.addr, PRESSURE_LIMIT)?;
    let after = vm_rss_kib(server.pid).unwrap_or(0);
    ctx.ensure_running(server.id, "while a client sent without reading")?;
    held_back(&stuffed, before, after)
}

/// Fails unless the client that never read was stalled, and the server's VmRSS grew
/// from `before` to `after` KiB by less than [`RSS_GROWTH_LIMIT_KIB`] meanwhile.
fn held_back(stuffed: &Stuffed, before: u64, after: u64) -> Result<(), Failure> {
    let memory = format!("the server's VmRSS went from {} to {} KiB", before, after);
    ensure(stuffed.stalled, || {
        Failure::new(format!(
            "a client that never reads sent {} MiB and the server still took more",
            stuffed.pushed >> 20
        ))
        .expected(format!(
            "with --max-buffer {MAX_BUFFER}, the server stops reading that client, so its \
             sends stall after a few MiB (what the kernel's socket buffers hold)"
        ))
        .got(memory.clone())
        .hint(
            "back-pressure: once a client's unsent echo reaches --max-buffer, drop EPOLLIN \
             from its interest (epoll_ctl MOD) and add it back when the bytes have gone out",
        )
    })?;
    ensure(after.saturating_sub(before) <= RSS_GROWTH_LIMIT_KIB, || {
        Failure::new("the server's memory grew with the bytes of a client that does not read")
            .expected(format!(
                "VmRSS growth well under {} MiB (--max-buffer {MAX_BUFFER})",
                RSS_GROWTH_LIMIT_KIB / 1024
            ))
            .got(memory.clone())
            .hint("stop reading a client whose unsent bytes reached --max-buffer")
    })
}

fn slow_reader_intact(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--max-buffer", INTACT_MAX_BUFFER])?;
    let stream = net::connect(server.addr)?.stream;
    let writer = paused_writer(&stream)?;
    wait_server_queue(&writer, server.addr.port(), &stream);
    // Phase 2: read everything back, comparing every byte with the pattern.
    let outcome = read_pattern_back(&stream);
    let _ = stream.shutdown(Shutdown::Both); // frees the writer if it is still blocked
    came_back_whole(outcome, writer.finish())
}

/// The writer of `slow-reader-intact`'s pattern stream ([`INTACT_BYTES`], then a
/// half-close), paused halfway until [`wait_server_queue`] lets it go on.
///
/// The pause keeps bytes coming in while the server has a queue to send and room to
/// send it: the moment a server that sends new bytes ahead of queued ones gets them
/// wrong. (Without the pause, a server that reads without bound has swallowed the whole
/// stream before the grader reads anything, and never has that moment.)
fn paused_writer(stream: &TcpStream) -> Result<Writer, Failure> {
    let pattern = Arc::new(pattern_buffer());
    let body = Body::pattern(pattern, CYCLE, INTACT_BYTES)
        .pause_at(INTACT_BYTES / 2)
        .half_close()
        .limit(Duration::from_secs(30));
    Writer::start(stream, body)
}

/// Phase 1, the slow part: read nothing until the kernel shows the server's send()s
/// meeting a full buffer: bytes waiting in the server's own send queue for this
/// connection (tx_queue in /proc/net/tcp), which on loopback happens only once our
/// receive window is full. Seen twice in a row, it is no scheduling accident of a busy
/// machine: from then on the server holds a queue and its send()s are partial or fail
/// with EAGAIN. (A writer that reaches its halfway pause ends the phase too.) Then lets
/// the writer go on.
fn wait_server_queue(writer: &Writer, server_port: u16, stream: &TcpStream) {
    let our_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut full_in_a_row = 0;
    while !writer.is_done()
        && writer.sent() < INTACT_BYTES / 2
        && full_in_a_row < 2
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(50));
        if send_queue(server_port, our_port).is_some_and(|queued| queued > 0) {
            full_in_a_row += 1;
        } else {
            full_in_a_row = 0;
        }
    }
    writer.go();
}

/// The verdict of `slow-reader-intact`: what reading back found (`outcome`, the bytes
/// that came back), then how the writer fared, then whether nothing was lost.
fn came_back_whole(
    outcome: Result<usize, Failure>,
    written: std::io::Result<()>,
) -> Result<(), Failure> {
    let received = outcome?;
    if let Err(err) = written {
        return Err(
            Failure::new(format!("error while sending the stream: {err}"))
                .hint("the server must keep a slow client and read from it again later"),
        );
    }
    ensure(received == INTACT_BYTES, || {
        Failure::new(format!(
            "the echo ended after {received} of {INTACT_BYTES} bytes: {} bytes were lost",
            INTACT_BYTES - received
        ))
        .hint(
            "when send() takes only part of the bytes, or fails with EAGAIN, keep the rest \
             and send it when EPOLLOUT says there is room; never drop it",
        )
    })
}

/// Bytes in the send queue of the server's socket for the connection between its `port`
/// and ours (`tx_queue` of `/proc/net/tcp`, asked over sock_diag): data the kernel could
/// not deliver yet.
fn send_queue(port: u16, peer_port: u16) -> Option<u64> {
    let (server, ours) = (loopback(port), loopback(peer_port));
    sockdiag::connection_or_tables(server, ours).map(|c| c.send_queue)
}

/// `127.0.0.1:port`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Reads the pattern stream until EOF, failing at the first wrong byte. Returns how
/// many bytes came back.
fn read_pattern_back(stream: &TcpStream) -> Result<usize, Failure> {
    let _ = stream.set_read_timeout(Some(net::IO_LIMIT));
    let pattern = pattern_buffer();
    let mut buffer = vec![0u8; CHUNK];
    let mut position = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "the echo was still coming after 60 s ({position} of {INTACT_BYTES} bytes)"
            )));
        }
        let count = match (&*stream).read(&mut buffer) {
            Ok(0) => return Ok(position),
            Ok(count) => count,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::new(format!(
                    "the echo stopped after {position} of {INTACT_BYTES} bytes"
                ))
                .hint(
                    "a client that reads again must get the rest: when its unsent bytes \
                     drain, send the queue on EPOLLOUT and read from it again",
                ));
            }
            Err(err) => {
                return Err(Failure::new(format!(
                    "error after {position} bytes of the echo: {err}"
                )));
            }
        };
        expect_pattern(&pattern, position, &buffer[..count])?;
        position += count;
        if position > INTACT_BYTES {
            return Err(Failure::new(format!(
                "the echo is longer ({position} bytes) than what was sent ({INTACT_BYTES})"
            )));
        }
    }
}

/// `got`, read at `position` of the pattern stream, must be the pattern's bytes there.
fn expect_pattern(pattern: &[u8], position: usize, got: &[u8]) -> Result<(), Failure> {
    let from = position % CYCLE;
    let expected = &pattern[from..from + got.len()];
    let Some(at) = (0..got.len()).find(|&k| got[k] != expected[k]) else {
        return Ok(());
    };
    Err(Failure::new(format!(
        "byte {} of the echo is wrong: bytes were lost, repeated or reordered",
        position + at
    ))
    .expected(format!(
        "{} (the stream's byte {})",
        expected[at],
        position + at
    ))
    .got(format!("{}", got[at]))
    .hint(
        "keep every unsent byte, in order: what a partial send() did not take stays at the \
         front of the queue, and newly read bytes go behind it",
    ))
}

fn idle_sleeps(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let _quiet = quiet_clients(server.addr)?;
    let idle = IdleUse::measure(server.pid);
    ctx.ensure_running(server.id, "while its clients were quiet")?;
    idle.asleep()
}

/// A few clients that talk once and then stay connected, silent (while kept).
fn quiet_clients(addr: SocketAddr) -> Result<Vec<net::Conn>, Failure> {
    (1..=5).map(|n| quiet_client(addr, n)).collect()
}

/// Quiet client `n`: connected, echoed once, then silent for as long as it is kept.
fn quiet_client(addr: SocketAddr, n: usize) -> Result<net::Conn, Failure> {
    let message = format!("quiet client {n}\n");
    let mut conn = net::connect(addr)?;
    conn.send(message.as_bytes())?;
    let got = conn
        .read_exact_bytes(message.len())
        .map_err(|f| f.during(format!("quiet client {n}")))?;
    ensure(got == message.as_bytes(), || {
        Failure::new("wrong echo")
            .sent_bytes(message.as_bytes())
            .got(show(&got))
    })?;
    Ok(conn)
}

/// What a server did during one second in which nothing happened: its CPU time
/// before and after, and how often it was found running or waiting for a core.
struct IdleUse {
    before: Option<f64>,
    after: Option<f64>,
    elapsed: f64,
    samples: u32,
    runnable_samples: u32,
}

impl IdleUse {
    /// The measurement itself: one second in which nothing happens. CPU time alone is
    /// not enough on a busy machine, where a spinning server may get little of a core;
    /// but a spinning server is always running or waiting for a core (state R), and a
    /// sleeping one almost never is, however loaded the machine: so the state is
    /// sampled too.
    fn measure(pid: u32) -> IdleUse {
        let started = Instant::now();
        let before = procstat::cpu_seconds(pid);
        let (mut samples, mut runnable_samples) = (0u32, 0u32);
        while started.elapsed() < Duration::from_secs(1) {
            samples += 1;
            if procstat::runnable(pid) {
                runnable_samples += 1;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let after = procstat::cpu_seconds(pid);
        let elapsed = started.elapsed().as_secs_f64();
        IdleUse {
            before,
            after,
            elapsed,
            samples,
            runnable_samples,
        }
    }

    /// Fails unless the server used about no CPU time and was seldom runnable.
    fn asleep(&self) -> Result<(), Failure> {
        let (Some(before), Some(after)) = (self.before, self.after) else {
            return Err(Failure::new(
                "could not read the server's CPU time from /proc",
            ));
        };
        let IdleUse {
            elapsed,
            samples,
            runnable_samples,
            ..
        } = *self;
        let used = after - before;
        let busy_share = f64::from(runnable_samples) / f64::from(samples.max(1));
        ensure(used <= 0.1 * elapsed && busy_share <= 0.5, || {
            Failure::new("the server used CPU while nothing happened")
                .expected(format!(
                    "about 0 s of CPU time in {elapsed:.1} s with 5 quiet clients (asleep in epoll_wait)"
                ))
                .got(format!(
                    "{used:.2} s of CPU time (/proc/PID/stat utime + stime), running or \
                     waiting for a core in {runnable_samples} of {samples} looks"
                ))
                .hint(
                    "a busy loop: wait with no timeout (-1, not 0), and ask for EPOLLOUT only \
                     while bytes are unsent: a socket is writable almost always, so a watched \
                     EPOLLOUT wakes you again at once",
                )
        })
    }
}

fn stop_continue(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let before: &[u8] = b"before the stop\n";
    expect_echo(server.addr, before, "a client before kill -STOP")?;
    stop_in_epoll_then_continue(ctx, &server)?;
    served_after_continue(ctx, &server)
}

/// Stops the server with SIGSTOP while it sleeps in epoll_wait(), then continues it.
///
/// The lesson is about a stop that lands while the server sleeps in epoll_wait():
/// wait until the kernel says it is there (its wait channel), so the verdict does
/// not depend on where the server happened to be on a busy machine.
fn stop_in_epoll_then_continue(ctx: &mut Ctx, server: &Server) -> Result<(), Failure> {
    waits_in_epoll(server.pid, Duration::from_secs(2));
    ctx.proc(server.id).signal(Signal::SIGSTOP);
    if !procstat::wait_state(server.pid, |s| s == 'T', Duration::from_secs(5)) {
        return Err(Failure::new(
            "the server did not stop on SIGSTOP (grader problem?)",
        ));
    }
    ctx.proc(server.id).signal(Signal::SIGCONT);
    procstat::wait_state(server.pid, |s| s != 'T', Duration::from_secs(5));
    Ok(())
}

/// After the stop and continue, a client must get its echo and the server must not
/// exit (within 200 ms); an exit is reported before a wrong echo, since it explains it.
fn served_after_continue(ctx: &mut Ctx, server: &Server) -> Result<(), Failure> {
    let after = expect_echo(
        server.addr,
        b"after the continue\n",
        "a client after kill -CONT",
    );
    if ctx
        .proc(server.id)
        .wait_exit(Duration::from_millis(200))
        .is_some()
    {
        return Err(ctx
            .exited_failure(server.id, "after kill -STOP then kill -CONT")
            .hint(
                "epoll_wait() fails with EINTR when the process is stopped and continued \
                 (or a signal handler runs): that is no error, just wait again",
            ));
    }
    after
}

fn survives_resets(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    (0..10).try_for_each(|_| three_rude_clients(server.addr))?;
    let after_rude_ones = "a client after 30 rude ones";
    expect_echo(server.addr, b"still there?\n", after_rude_ones)?;
    ctx.ensure_running(server.id, "after clients reset their connections")
}

/// Three clients that leave rudely, each in its own way.
fn three_rude_clients(addr: SocketAddr) -> Result<(), Failure> {
    // Sends 64 KiB, then resets without reading the echo.
    let mut rude = net::connect(addr)?;
    rude.send(&[b'r'; 64 * 1024])?;
    rude.reset();
    // Connects and resets at once.
    net::connect(addr)?.reset();
    // Sends a line and closes without reading: the echo then meets a reset.
    let mut hasty = net::connect(addr)?;
    hasty.send(b"bye\n")?;
    drop(hasty);
    Ok(())
}

fn no_fd_leak(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    expect_echo(server.addr, b"warming up\n", "a first client")?;
    let baseline = expect::fds_settle(server.pid, 0, Duration::from_millis(200)).unwrap_or(0);
    for n in 0..20 {
        polite_then_resetting(server.addr, n)?;
    }
    let after = expect::fds_settle(server.pid, baseline, Duration::from_secs(3)).unwrap_or(0);
    ensure(after <= baseline, || fds_grew(baseline, after, server.pid))
}

/// Visit `n` of a polite client (echo, then close) and of one that resets.
fn polite_then_resetting(addr: SocketAddr, n: usize) -> Result<(), Failure> {
    let message = format!("visit {n}\n");
    expect_echo(addr, message.as_bytes(), "a polite client")?;
    // This one gets its echo, so the server surely has it, then resets.
    let mut rude = net::connect(addr)?;
    rude.send(b"about to reset\n")?;
    rude.read_exact_bytes(15)?;
    rude.reset();
    Ok(())
}

/// The failure of a server whose open fds grew from `baseline` to `after`.
fn fds_grew(baseline: usize, after: usize, pid: u32) -> Failure {
    Failure::new("open file descriptors grew while clients came and went")
        .expected(format!(
            "about {baseline} open fds after 20 polite and 20 resetting clients"
        ))
        .got(format!("{after} open fds (ls /proc/{pid}/fd)"))
        .hint("close every client's socket when it leaves, on the error paths too")
}

fn backlog(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--backlog", "700"])?;
    common::listens_with_backlog(server.addr.port(), 700)?;
    let default = start(ctx, &[])?;
    default_backlog_fits_crowd(default.addr.port())
}

/// The listener on `port`, started without --backlog, must have a backlog of 1024 or
/// more (or net.core.somaxconn, when the kernel caps it lower).
fn default_backlog_fits_crowd(port: u16) -> Result<(), Failure> {
    // The kernel caps any backlog at net.core.somaxconn.
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(4096);
    let wanted = somaxconn.min(1024);
    match net::listen_backlog(port) {
        Some(found) if found >= wanted => Ok(()),
        Some(found) => Err(Failure::new("the default backlog is too short for a crowd")
            .sent("no --backlog")
            .expected(format!("a backlog of at least {wanted}"))
            .got(format!("backlog {found}"))
            .hint(
                "thousands of callers arriving together queue up before accept(): make the \
                 default --backlog 1024 or more",
            )),
        None => Err(common::no_backlog(port)),
    }
}

/// The grader's echo server for the client check: accepts one connection, echoes what
/// it reads, notes whether the client half-closed, then closes. Once everything has
/// come, a correct client half-closes at once: then 3 s of silence end the wait.
fn echo_server(expected: usize) -> Result<Peer, Failure> {
    let steps = vec![
        Step::EchoBytes(expected),
        Step::Limit(Duration::from_secs(3)),
        Step::EchoToEof,
    ];
    Peer::tcp_server(
        LOCALHOST_V4,
        Script::new(steps).limit(Duration::from_secs(10)),
    )
}

fn client(ctx: &mut Ctx) -> Result<(), Failure> {
    // 64 KiB of every byte value: more than one send() and recv(), and not text.
    let data: Vec<u8> = (0..64 * 1024)
        .map(|i: usize| (i * 7 + i / 256) as u8)
        .collect();
    let (run, seen) = run_client_against(ctx, echo_server(data.len())?, &data);
    let run = run?;
    server_got_stdin(&seen, &data)?;
    client_printed_echo(&run, &data)
}

/// Runs the client on `server`'s port with `stdin`, then collects what the server saw
/// (even when the run failed, so that the grader's server thread ends).
fn run_client_against(
    ctx: &mut Ctx,
    server: Peer,
    stdin: &[u8],
) -> (Result<Finished, Failure>, Seen) {
    let port = server.port();
    let run = ctx.run(
        "client",
        &["client", "--host", "127.0.0.1", "--port", &port],
        Some(stdin.to_vec()),
        Duration::from_secs(20),
    );
    (run, server.finish())
}

/// The grader's echo server must have been connected to, received exactly `data`,
/// then a half-close.
fn server_got_stdin(seen: &Seen, data: &[u8]) -> Result<(), Failure> {
    if !seen.connected {
        return Err(
            Failure::new("the grader's echo server: the client never connected")
                .hint("the client must connect to --host/--port"),
        );
    }
    ensure(seen.received == data, || {
        Failure::new("the server did not receive exactly the client's stdin")
            .sent(format!("stdin: {}", show(data)))
            .got(format!("the server received {}", show(&seen.received)))
            .hint("send all of stdin (a send() may take only part of a buffer)")
    })?;
    ensure(seen.eof, || {
        Failure::new("the client never half-closed after sending stdin")
            .expected("a FIN (the server's recv() returns 0) once stdin is all sent")
            .hint("after the last byte, shutdown(Shutdown::Write); keep reading the echo until EOF")
    })
}

/// The client must have exited 0 having printed exactly the echo of `data`.
fn client_printed_echo(run: &Finished, data: &[u8]) -> Result<(), Failure> {
    ensure(run.status.success(), || {
        Failure::new(format!("the client exited with {}", run.status))
            .got(run.stderr_lines().join(" / "))
    })?;
    ensure(run.stdout == data, || {
        Failure::new("the client's stdout is not exactly the echo")
            .compare(data, &run.stdout)
            .hint("print the raw echo and nothing else on stdout, until the server closes")
    })
}

/// The `--keepalive` (TCP_KEEPIDLE, seconds) the keepalive check gives the server.
const KEEPALIVE_IDLE: f64 = 1.0;
/// The probe interval (TCP_KEEPINTVL) the lab's contract sets, in seconds.
const KEEPALIVE_INTERVAL: f64 = 10.0;
/// The kernel's default probe interval (net.ipv4.tcp_keepalive_intvl), in seconds: a
/// timer far beyond it after the first probe can only be the idle time left unset.
const KERNEL_KEEPALIVE_INTERVAL: f64 = 75.0;
/// Slack on the timer values read back (they count down in hundredths of a second).
const TIMER_SLACK: f64 = 0.5;

/// The timer of the server's socket (at `server`) for its connection with `peer`, as
/// the kernel shows it (sock_diag; `ss -o`, the `tr` column of `/proc/net/tcp`):
/// (timer, seconds until it fires). Timer 2 is the socket's own timer, which on an
/// established connection is the keepalive timer; 0 is no timer (1 retransmission,
/// 4 zero-window probe). Asked from the check's thread, which lives in the check's
/// network namespace, where the connection is.
fn keepalive_timer(server: SocketAddr, peer: SocketAddr) -> Option<(u8, f64)> {
    let found = sockdiag::connection_or_tables(server, peer)?;
    Some((found.timer, found.due.as_secs_f64()))
}

/// Polls the connection's timer until `wanted` holds (or `limit` passes); returns the
/// last value seen either way, and whether `wanted` held.
fn wait_timer(
    server: SocketAddr,
    peer: SocketAddr,
    limit: Duration,
    wanted: impl Fn(u8, f64) -> bool,
) -> (Option<(u8, f64)>, bool) {
    let mut last = None;
    let seen = grade::poll::holds(limit, Duration::from_millis(10), || {
        last = keepalive_timer(server, peer).or(last);
        last.is_some_and(|(active, when)| wanted(active, when))
    });
    (last, seen)
}

/// A timer as the report shows it.
fn show_timer(timer: Option<(u8, f64)>) -> String {
    match timer {
        None => String::from("the kernel shows no such connection (ss -tno)"),
        Some((0, _)) => String::from("tr 0: no timer armed on the server's socket"),
        Some((2, when)) => format!("tr 2: the keepalive timer, due in {when:.2} s"),
        Some((other, when)) => format!("tr {other}: a timer due in {when:.2} s"),
    }
}

fn keepalive(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--keepalive", "1"])?;
    let connected = Instant::now();
    let conn = echoed_once(server.addr)?;
    let ours = conn.local_addr();
    let seen = keepalive_armed(server.addr, ours)?;
    first_probe_in_time(seen, connected)?;
    probes_at_interval(server.addr, ours)?;
    drop(conn);
    ctx.ensure_running(server.id, "with keepalive on")
}

/// A connection whose echo came back: proof the server accepted (and set up) it.
fn echoed_once(addr: SocketAddr) -> Result<net::Conn, Failure> {
    let mut conn = net::connect(addr)?;
    conn.send(b"are you there?\n")?;
    conn.read_exact_bytes(15)?;
    Ok(conn)
}

/// Waits for the keepalive timer on the server's socket (at `server`) for its connection
/// with `ours`; returns the timer seen.
fn keepalive_armed(server: SocketAddr, ours: SocketAddr) -> Result<Option<(u8, f64)>, Failure> {
    let (seen, armed) = wait_timer(server, ours, Duration::from_secs(3), |active, _| {
        active == 2
    });
    ensure(armed, || {
        Failure::new("the server's socket for this connection has no keepalive timer")
            .sent("--keepalive 1, then one echo")
            .expected("tr 2 (the keepalive timer) in the connection's row of /proc/net/tcp")
            .got(show_timer(seen))
            .hint(
                "turn on SO_KEEPALIVE on every accepted socket, e.g. socket2's \
                 set_tcp_keepalive with a TcpKeepalive; without it a peer that vanishes \
                 without a FIN holds its slot for ever",
            )
    })?;
    Ok(seen)
}

/// Fails unless the timer `seen` (on a connection made at `connected`) is due within
/// --keepalive, or, once the first probe may have gone, within the probe interval.
fn first_probe_in_time(seen: Option<(u8, f64)>, connected: Instant) -> Result<(), Failure> {
    // Read before the first probe (1 s after accept()), the timer shows the --keepalive
    // time; read later (a busy machine can hold the grader up), it may already have been
    // re-armed for the probe interval. Either reading is judged, so no timing decides
    // the verdict: only a timer too long for both is wrong.
    let due = seen.map_or(0.0, |(_, when)| when);
    let probe_may_have_fired = connected.elapsed().as_secs_f64() >= KEEPALIVE_IDLE - 0.1;
    let first_probe_pending = due <= KEEPALIVE_IDLE + TIMER_SLACK;
    let within_interval = due <= KEEPALIVE_INTERVAL + TIMER_SLACK;
    ensure(
        first_probe_pending || (probe_may_have_fired && within_interval),
        || {
            let idle_wrong = !probe_may_have_fired || due > 2.0 * KERNEL_KEEPALIVE_INTERVAL;
            if idle_wrong {
                Failure::new("the keepalive timer is not set to --keepalive")
                    .sent("--keepalive 1")
                    .expected(format!("the first probe due within {KEEPALIVE_IDLE} s"))
                    .got(show_timer(seen))
                    .hint(
                        "set TCP_KEEPIDLE to --keepalive (TcpKeepalive::with_time): \
                         SO_KEEPALIVE alone waits the kernel's default of two hours \
                         (net.ipv4.tcp_keepalive_time) before the first probe",
                    )
            } else {
                interval_failure(seen)
            }
        },
    )
}

/// Waits for the timer to be re-armed after the first probe, and requires it due
/// within the probe interval.
fn probes_at_interval(server: SocketAddr, ours: SocketAddr) -> Result<(), Failure> {
    // The first probe goes out after 1 s; the grader's kernel answers it, and the timer
    // is re-armed for the probe interval.
    let (seen, rearmed) = wait_timer(server, ours, Duration::from_secs(5), |active, when| {
        active == 2 && when > KEEPALIVE_IDLE + TIMER_SLACK
    });
    ensure(rearmed, || {
        Failure::new("the keepalive timer was never re-armed after the first probe")
            .expected(format!(
                "after {KEEPALIVE_IDLE} s a probe, then the timer due within {KEEPALIVE_INTERVAL} s"
            ))
            .got(show_timer(seen))
            .hint("keep SO_KEEPALIVE on for the whole life of the connection")
    })?;
    let due = seen.map_or(0.0, |(_, when)| when);
    ensure(due <= KEEPALIVE_INTERVAL + TIMER_SLACK, || {
        interval_failure(seen)
    })
}

/// The failure of a probe interval longer than the contract's.
fn interval_failure(seen: Option<(u8, f64)>) -> Failure {
    Failure::new("the keepalive probe interval is not 10 s")
        .expected(format!(
            "after the first probe, the next one due within {KEEPALIVE_INTERVAL} s"
        ))
        .got(show_timer(seen))
        .hint(
            "set TCP_KEEPINTVL to 10 s (TcpKeepalive::with_interval): the kernel's \
             default of 75 s between probes makes a dead peer take minutes to find",
        )
}

/// The `--idle-timeout` of the idle check.
const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long past the timeout a silent client may still be open (a sweep every quarter
/// of the timeout, and a busy machine).
const IDLE_MARGIN: Duration = Duration::from_secs(4);
/// The chatty client's pace.
const CHAT_PACE: Duration = Duration::from_millis(200);

/// How a wait for a connection's end turned out.
enum Ending {
    /// End-of-stream (or a reset): the server closed it, after this long.
    Closed(Duration),
    /// Still open when the wait ended.
    Open,
}

/// Waits up to `limit` for the server to close `conn`, counting from `since`. Bytes
/// that arrive instead are a failure: nobody asked for them.
fn wait_closed(conn: &mut net::Conn, since: Instant, limit: Duration) -> Result<Ending, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Ending::Open);
        }
        let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut watched = [PollFd::new(conn.stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut watched, PollTimeout::from(millis)) {
            Ok(0) | Err(_) => continue,
            Ok(_) => {}
        }
        let mut byte = [0u8; 64];
        return match (&conn.stream).read(&mut byte) {
            Ok(0) => Ok(Ending::Closed(since.elapsed())),
            Ok(count) => {
                Err(Failure::new("a client that sent nothing received bytes")
                    .got(show(&byte[..count])))
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == ErrorKind::WouldBlock => continue,
            Err(_) => Ok(Ending::Closed(since.elapsed())),
        };
    }
}

fn idle_timeout(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--idle-timeout", "1"])?;
    let started = Instant::now();
    let (mut silent, mut chatty) = (net::connect(server.addr)?, net::connect(server.addr)?);
    // Phase 1: one client talks every 0.2 s, the other says nothing.
    let (closed_after, last_line) = chat_until_silent_closed(&mut silent, &mut chatty, started)?;
    not_closed_early(closed_after)?;
    // Phase 2: it falls silent too, and nothing else happens.
    closed_once_silent(&mut chatty, last_line)
}

/// Round `round` of the chatty client (connected at `started`): sends a line and
/// expects its echo; returns when the line was sent.
fn chat(chatty: &mut net::Conn, round: usize, started: Instant) -> Result<Instant, Failure> {
    let line = format!("line {round:03}\n");
    let sent_at = Instant::now();
    chatty.send(line.as_bytes())?;
    chatty.expect_bytes(line.as_bytes()).map_err(|f| {
        f.during(format!(
            "a client that sends a line every 0.2 s, {:.1} s after it connected",
            started.elapsed().as_secs_f64()
        ))
        .hint(
            "close only clients silent for the whole --idle-timeout: count from each \
             client's last event, not from when it connected",
        )
    })?;
    Ok(sent_at)
}

/// Phase 1 of `idle-timeout`: the chatty client talks every [`CHAT_PACE`] while the
/// silent one must be closed, and the chatty one must not be. Returns how long after
/// `started` the silent client was closed, and when the chatty one sent its last line.
fn chat_until_silent_closed(
    silent: &mut net::Conn,
    chatty: &mut net::Conn,
    started: Instant,
) -> Result<(Duration, Instant), Failure> {
    let mut round = 0;
    let mut silent_closed = None;
    let mut last_line = chat(chatty, round, started)?;
    while silent_closed.is_none() || started.elapsed() < 2 * IDLE_TIMEOUT + 2 * CHAT_PACE {
        if silent_closed.is_none() {
            if let Ending::Closed(after) = wait_closed(silent, started, CHAT_PACE)? {
                silent_closed = Some(after);
            } else if started.elapsed() > IDLE_TIMEOUT + IDLE_MARGIN {
                return Err(still_open(
                    "a silent client was never closed",
                    "--idle-timeout 1; a client connects and sends nothing",
                    ("it connected", started),
                    "remember when each client last showed a sign of life, and close those \
                     silent for --idle-timeout",
                ));
            }
        } else if let Ending::Closed(after) = wait_closed(chatty, started, CHAT_PACE)? {
            return Err(Failure::new("a client that kept talking was closed")
                .sent("--idle-timeout 1; a line every 0.2 s")
                .got(format!(
                    "end-of-stream {:.1} s after it connected",
                    after.as_secs_f64()
                ))
                .hint(
                    "close only clients silent for the whole --idle-timeout: count from each \
                     client's last event, not from when it connected",
                ));
        }
        round += 1;
        last_line = chat(chatty, round, started)?;
    }
    Ok((silent_closed.unwrap_or_default(), last_line))
}

/// Fails when the silent client was closed (`closed_after` its connect) before
/// --idle-timeout had passed.
fn not_closed_early(closed_after: Duration) -> Result<(), Failure> {
    ensure(closed_after >= IDLE_TIMEOUT, || {
        Failure::new("a silent client was closed before --idle-timeout had passed")
            .sent("--idle-timeout 1 (seconds)")
            .got(format!(
                "end-of-stream {:.2} s after it connected",
                closed_after.as_secs_f64()
            ))
            .hint("--idle-timeout is in seconds; close a client silent for at least that long")
    })
}

/// Phase 2 of `idle-timeout`: the chatty client, silent since `last_line`, must be
/// closed, neither before --idle-timeout nor long after. With nothing else happening,
/// only a loop that wakes up on its own (epoll_wait's timeout) can close it in time.
fn closed_once_silent(chatty: &mut net::Conn, last_line: Instant) -> Result<(), Failure> {
    match wait_closed(chatty, last_line, IDLE_TIMEOUT + IDLE_MARGIN)? {
        Ending::Closed(after) if after >= IDLE_TIMEOUT => Ok(()),
        Ending::Closed(after) => Err(Failure::new(
            "a client was closed before it had been silent for --idle-timeout",
        )
        .got(format!(
            "end-of-stream {:.2} s after its last line",
            after.as_secs_f64()
        ))
        .hint("count the silence from the client's last event")),
        Ending::Open => Err(still_open(
            "a client that fell silent was never closed while nothing else happened",
            "--idle-timeout 1; the only client stops talking",
            ("its last line", last_line),
            "with nothing to read, epoll_wait(-1) sleeps for ever: give it a timeout until \
             the next look for silent clients",
        )),
    }
}

/// A client still open past --idle-timeout and its margin, counted from `since`.
fn still_open(problem: &str, sent: &str, (what, since): (&str, Instant), hint: &str) -> Failure {
    Failure::new(problem)
        .sent(sent)
        .expected(format!(
            "end-of-stream within {} s of {what}",
            (IDLE_TIMEOUT + IDLE_MARGIN).as_secs()
        ))
        .got(format!(
            "still open {:.1} s after {what}",
            since.elapsed().as_secs_f64()
        ))
        .hint(hint)
}
