//! Lab 6 (threads): the check table and the classroom demo.
//!
//! The server must echo lines on persistent connections, serve many clients at once (a
//! silent one holds up nobody), refuse clients past `--max-clients` with one `busy:`
//! line and take them again when a place frees up, survive clients that reset, and stop
//! gracefully on SIGINT/SIGTERM: stop accepting at once, hang up on idle clients, answer
//! a request that has started arriving, give up after `--grace-ms`, and exit 0.
//! The client role must send stdin's lines and print the server's replies.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::grade::common::start;
use crate::grade::net::{self, Conn, LOCALHOST_V4, show};
use crate::grade::peer::{Peer, Script, Step};
use crate::grade::process::describe_status;
use crate::grade::row;
use crate::grade::standard;
use crate::grade::writer::{Body, Writer};
use crate::grade::{Ctx, Failure, Finished, Lab, Server, common, ensure};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
    id: "lab6",
    slug: "threads",
    title: "threads: everybody served at once, a cap, a graceful exit",
    table: &[
        row("echoes-lines", echoes_lines),
        row("concurrent-clients", concurrent_clients).points(2),
        row("max-clients", max_clients).points(2),
        row("frees-places", frees_places),
        row("survives-resets", survives_resets),
        standard::ipv6(ipv6),
        row("prints-clients", prints_clients),
        standard::port_in_use(),
        row("sigint-exits-cleanly", sigint_exits_cleanly).points(2),
        row("stops-accepting", stops_accepting),
        row("finishes-reply", finishes_reply).points(2),
        row("finishes-request", finishes_request).budget(40),
        row("grace-period", grace_period).budget(40),
        row("one-request", one_request),
        row("client", client),
    ],
};

/// How long a stopping server may take to do something that needs one tick of its
/// timeouts (hang up on an idle client, exit once the clients are gone). Generous on
/// purpose: it is a deadline, not a speed test.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Sends `line` and expects exactly it back.
fn echo(conn: &mut Conn, line: &[u8]) -> Result<(), Failure> {
    conn.send(line)?;
    let got = conn.read_line()?;
    ensure(got == line, || {
        let hint = if got.starts_with(b"busy") {
            "this client was refused although there was room: count a client only once it is accepted, and give its place back when it leaves"
        } else {
            "send back exactly the line that came in, newline included"
        };
        Failure::new("the echo was not the line sent")
            .sent_bytes(line)
            .compare(line, &got)
            .hint(hint)
    })
}

/// A client that was accepted and answered once, so the server counts it as live.
fn served_client(addr: SocketAddr, name: &str) -> Result<Conn, Failure> {
    let mut conn = net::connect(addr).map_err(|f| f.during(name))?;
    echo(&mut conn, format!("hello from {name}\n").as_bytes()).map_err(|f| f.during(name))?;
    Ok(conn)
}

/// Waits for the program to exit and requires status 0.
fn exits_zero(ctx: &mut Ctx, id: usize, after: &str, limit: Duration) -> Result<(), Failure> {
    match ctx.proc(id).wait_exit(limit) {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(bad_exit(status, after)),
        None => Err(Failure::new(format!(
            "the server was still running {} s {after}",
            limit.as_secs()
        ))
        .hint(
            "after the signal the server must stop accepting, let its clients finish and exit: \
             does the accept loop look at a stop flag (poll() with a timeout), and do the \
             client threads notice it (a read timeout)?",
        )),
    }
}

/// [`exits_zero`] within [`STOP_LIMIT`].
fn exits_zero_in_time(ctx: &mut Ctx, id: usize, after: &str) -> Result<(), Failure> {
    exits_zero(ctx, id, after, STOP_LIMIT)
}

fn bad_exit(status: ExitStatus, after: &str) -> Failure {
    let hint = if status.code().is_none() {
        "the signal killed the program: install a handler with sigaction() that sets a flag, \
         and exit normally once the clients are done"
    } else {
        "a graceful stop is a success: exit with status 0"
    };
    Failure::new(format!(
        "the server ended with {} {after}",
        describe_status(status)
    ))
    .expected("exit status 0")
    .hint(hint)
}

fn echoes_lines(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let mut conn = net::connect(server.addr)?;
    echo(&mut conn, b"first line\n")?;
    echo(&mut conn, b"second line, same connection\n")?;
    // One line in many small pieces: the answer still comes back whole.
    echo_in_pieces(&mut conn, b"one byte", b" at a time\n")?;
    // Binary is not text: bytes come back exactly.
    echo(&mut conn, b"\xff\x00\xfe binary\n")
        .map_err(|f| f.or_hint("treat the line as bytes, not UTF-8 text"))
}

/// Sends `bytewise` one byte per write, then `rest`: the line they make must come back
/// whole.
fn echo_in_pieces(conn: &mut Conn, bytewise: &[u8], rest: &[u8]) -> Result<(), Failure> {
    let line = [bytewise, rest].concat();
    conn.send_bytewise(bytewise)?;
    conn.send(rest)?;
    let got = conn.read_line()?;
    ensure(got == line, || {
        Failure::new("a line sent in pieces did not come back whole")
            .sent_bytes(&line)
            .got(show(&got))
            .hint("keep reading until the newline: one recv() is not one line")
    })
}

/// `--one-request`: the notes' SocketServer handler, one request per connection. Each
/// client sends one line and gets it back, then end of stream, without half-closing
/// first: the server hangs up because the request is answered, not because we left.
fn one_request(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--one-request"])?;
    for n in 1..=2 {
        answered_then_hung_up(server.addr, n)?;
    }
    ctx.ensure_running(server.id, "after two one-request connections")
}

/// Client `n` of 2 with `--one-request`: sends one line and gets it back, then end of
/// stream, without half-closing first.
fn answered_then_hung_up(addr: SocketAddr, n: usize) -> Result<(), Failure> {
    let name = format!("client {n} of 2");
    let mut conn = net::connect(addr).map_err(|f| f.during(name.clone()))?;
    let line = format!("request {n}\n");
    echo(&mut conn, line.as_bytes()).map_err(|f| f.during(name.clone()))?;
    let (more, closed) = conn
        .closes_within(Duration::from_secs(5))
        .map_err(|f| f.during(name.clone()))?;
    ensure(more.is_empty() && closed, || {
        Failure::new("with --one-request the server did not hang up after its answer")
            .sent_bytes(line.as_bytes())
            .expected(format!("{line:?}, then end of stream (within 5 s)"))
            .got(if more.is_empty() {
                format!("{line:?}, then the connection stayed open")
            } else {
                format!("{line:?}, then {}", show(&more))
            })
            .hint(
                "one request per connection: the handler reads one line, answers it and \
                 returns; returning is what makes the framework close the connection",
            )
            .during(name.clone())
    })
}

fn concurrent_clients(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--max-clients", "100"])?;
    // The silent client comes first, so a server that serves one client at a time
    // gets stuck with it.
    let mut silent = net::connect(server.addr)?;
    silent.send(b"I am slow")?;
    let _others = served_past_silent(server.addr)?;
    silent_line_completes(&mut silent)?;
    ctx.ensure_running(server.id, "while serving 50 clients")
}

/// The silent client finishes its line at last: it must come back whole.
fn silent_line_completes(silent: &mut Conn) -> Result<(), Failure> {
    silent.send(b" but here\n")?;
    let got = silent
        .read_line()
        .map_err(|f| f.during("the silent client, once it finished its line"))?;
    ensure(got == b"I am slow but here\n", || {
        Failure::new("the silent client's line did not come back whole")
            .compare(b"I am slow but here\n", &got)
    })
}

/// 49 clients connect, then each sends its line, then each must get its echo, while
/// another client sits silent mid-line. Returns them, still connected.
fn served_past_silent(addr: SocketAddr) -> Result<Vec<Conn>, Failure> {
    let mut others = Vec::new();
    for n in 1..50 {
        let conn = net::connect(addr).map_err(|f| f.during(format!("client {n} of 49")))?;
        others.push(conn);
    }
    for (n, conn) in others.iter_mut().enumerate() {
        conn.send(format!("client {}\n", n + 1).as_bytes())?;
    }
    for (n, conn) in others.iter_mut().enumerate() {
        let line = format!("client {}\n", n + 1);
        let got = conn.read_line().map_err(|f| {
            f.during(format!(
                "client {} of 49, while another client sat silent mid-line",
                n + 1
            ))
            .hint(
                "a silent client must hold up nobody: serve each client on its own thread \
                 and go straight back to accept()",
            )
        })?;
        ensure(got == line.as_bytes(), || {
            Failure::new(format!("client {} of 49 got the wrong echo", n + 1))
                .sent_bytes(line.as_bytes())
                .got(show(&got))
        })?;
    }
    Ok(others)
}

fn max_clients(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--max-clients", "3"])?;
    let mut live = served_clients(server.addr, "client", 3)?;
    let _fourth = refused_as_busy(server.addr)?;
    still_served(&mut live)?;
    ctx.ensure_running(server.id, "after refusing a client")
}

/// `count` clients named `{who} {n} of {count}`, each accepted and answered once.
fn served_clients(addr: SocketAddr, who: &str, count: usize) -> Result<Vec<Conn>, Failure> {
    (1..=count)
        .map(|n| served_client(addr, &format!("{who} {n} of {count}")))
        .collect()
}

/// The 3 live clients must still be served after a 4th was refused.
fn still_served(live: &mut [Conn]) -> Result<(), Failure> {
    for (n, conn) in live.iter_mut().enumerate() {
        echo(conn, b"still served?\n")
            .map_err(|f| f.during(format!("client {} of 3, after a 4th was refused", n + 1)))?;
    }
    Ok(())
}

/// A 4th client with --max-clients 3 must get one `busy:` line, then end of stream.
/// Returns its connection, for the check to keep.
fn refused_as_busy(addr: SocketAddr) -> Result<Conn, Failure> {
    let mut fourth = net::connect(addr)?;
    let got = fourth.read_line().map_err(|f| {
        f.during("a 4th client with --max-clients 3")
            .hint("past --max-clients, send one line starting with busy: and close the connection")
    })?;
    ensure(got.starts_with(b"busy"), || {
        Failure::new("the 4th client with --max-clients 3 was not refused")
            .expected("a line starting with busy:, then the connection closed")
            .got(show(&got))
            .hint("count the live clients; past --max-clients, refuse instead of starting a thread")
    })?;
    let (more, closed) = fourth.closes_within(Duration::from_secs(5))?;
    ensure(closed && more.is_empty(), || {
        Failure::new("after the busy: line the connection was not closed")
            .expected("end of stream right after the busy: line")
            .got(if more.is_empty() {
                "the connection stayed open".to_string()
            } else {
                show(&more)
            })
            .hint("after refusing, close the socket (and start no thread for it)")
    })?;
    Ok(fourth)
}

fn frees_places(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--max-clients", "2"])?;
    let first = served_client(server.addr, "client 1 of 2")?;
    let _second = served_client(server.addr, "client 2 of 2")?;
    let third = third_refused(server.addr)?;
    drop(third);
    drop(first);
    place_given_back(server.addr)
}

/// A 3rd client with --max-clients 2 must be refused (a `busy:` line).
fn third_refused(addr: SocketAddr) -> Result<Conn, Failure> {
    let mut third = net::connect(addr)?;
    let got = third.read_line()?;
    ensure(got.starts_with(b"busy"), || {
        Failure::new("a 3rd client with --max-clients 2 was not refused")
            .expected("a line starting with busy:")
            .got(show(&got))
    })?;
    Ok(third)
}

/// After a client left a full server, a newcomer must be served within 5 s.
fn place_given_back(addr: SocketAddr) -> Result<(), Failure> {
    // The server learns of the departure and gives the place back: poll for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut conn = net::connect(addr)?;
        conn.send(b"is there room now?\n")?;
        let got = conn.read_line()?;
        if got == b"is there room now?\n" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(
                Failure::new("5 s after a client left, newcomers were still refused")
                    .expected("the departed client's place to go to a newcomer")
                    .got(show(&got))
                    .hint("give a client's place back when its thread ends, on every path (end of stream, error): tie it to a value whose Drop does it"),
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn survives_resets(ctx: &mut Ctx) -> Result<(), Failure> {
    // Two places only: a server that does not give a reset client's place back is full
    // after the two resets below, and refuses everyone from then on.
    let server = start(ctx, &["--max-clients", "2"])?;
    reset_mid_line(server.addr)?;
    reset_while_busy(server.addr)?;
    served_after_resets(ctx, &server)
}

/// Resets mid-line: the server's recv() fails with ECONNRESET.
fn reset_mid_line(addr: SocketAddr) -> Result<(), Failure> {
    let mut rude = served_client(addr, "a client that will reset")?;
    rude.send(b"half a li")?;
    rude.reset();
    Ok(())
}

/// Resets while the server is busy with a long line (reading it, or blocked sending
/// its echo back): whichever call it is in fails. The grader writes without blocking
/// until the buffers are full, so nothing here can wait for ever.
fn reset_while_busy(addr: SocketAddr) -> Result<(), Failure> {
    let flooder = net::connect(addr)?;
    flooder.stream.set_nonblocking(true).map_err(|e| {
        Failure::new(format!(
            "grader could not make its socket non-blocking: {e}"
        ))
    })?;
    let chunk = vec![b'z'; 64 * 1024];
    let mut flooded = 0;
    while flooded < 8 * 1024 * 1024 {
        match (&flooder.stream).write(&chunk) {
            Ok(n) => flooded += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(Failure::new(format!("sending a long line failed: {e}"))),
        }
    }
    flooder.reset();
    Ok(())
}

/// After two resets on a server with two places, a polite client must be served
/// within 5 s (and the server keep running meanwhile).
fn served_after_resets(ctx: &mut Ctx, server: &Server) -> Result<(), Failure> {
    // The server learns of the resets and gives both places back: poll for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        ctx.ensure_running(server.id, "after clients reset their connections")?;
        let mut polite = net::connect(server.addr)?;
        polite.send(b"still there?\n")?;
        let got = polite
            .read_line()
            .map_err(|f| f.during("a client after two resets"))?;
        if got == b"still there?\n" {
            return Ok(());
        }
        if !got.starts_with(b"busy") || Instant::now() >= deadline {
            return Err(Failure::new(
                "a client after two resets was not served (--max-clients 2, nobody else connected)",
            )
            .sent(show(b"still there?\n"))
            .expected(show(b"still there?\n"))
            .got(show(&got))
            .hint(
                "a client whose connection fails (a reset: ECONNRESET, EPIPE) leaves too: give \
                 its place back on every path out of its thread, errors included (tie the \
                 place to a value whose Drop gives it back)",
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = common::start_over_ipv6(ctx)?;
    let mut conn = net::connect(server.addr)?;
    echo(&mut conn, b"six\n")
}

fn prints_clients(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let conn = served_client(server.addr, "a client")?;
    common::prints_addresses(ctx, server.id, server.addr.port(), conn.local_port())
}

fn sigint_exits_cleanly(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--grace-ms", "60000"])?;
    let mut idle = served_clients(server.addr, "idle client", 3)?;
    let printed_before = ctx.proc(server.id).stdout().len();
    ctx.proc(server.id).signal(Signal::SIGINT);
    idle_hung_up_on(ctx, server.id, &mut idle)?;
    exits_zero_in_time(ctx, server.id, "after SIGINT, with its clients gone")?;
    names_sigint(ctx, server.id, printed_before)
}

/// After SIGINT, each idle client must see end of stream within [`STOP_LIMIT`]; a
/// server that died of it is reported as such.
fn idle_hung_up_on(ctx: &mut Ctx, id: usize, idle: &mut [Conn]) -> Result<(), Failure> {
    for (n, conn) in idle.iter_mut().enumerate() {
        let (got, closed) = conn.closes_within(STOP_LIMIT)?;
        if closed && got.is_empty() {
            continue;
        }
        if ctx.proc(id).exited().is_some_and(|s| !s.success()) {
            let status = ctx.proc(id).exited().unwrap();
            return Err(bad_exit(status, "after SIGINT"));
        }
        return Err(Failure::new(format!(
            "idle client {} of 3 was not hung up on within {} s of SIGINT",
            n + 1,
            STOP_LIMIT.as_secs()
        ))
        .expected("end of stream: an idle client has no request to finish")
        .got(net::show_or(&got, "the connection stayed open"))
        .hint(
            "a thread blocked in recv() never sees the stop flag: give each connection a \
             read timeout (SO_RCVTIMEO) and, when it expires between two requests, look \
             at the flag and hang up",
        ));
    }
    Ok(())
}

/// What the server printed after the signal (its stdout from `printed_before` on) must
/// name SIGINT.
fn names_sigint(ctx: &mut Ctx, id: usize, printed_before: usize) -> Result<(), Failure> {
    let stdout = ctx.proc(id).stdout();
    let after = String::from_utf8_lossy(&stdout[printed_before.min(stdout.len())..]).into_owned();
    ensure(after.to_uppercase().contains("SIGINT"), || {
        Failure::new("nothing printed after SIGINT names the signal")
            .expected("a line such as `got SIGINT: no longer accepting ...`")
            .got(show(after.as_bytes()))
            .hint("print what happened before exiting, so whoever pressed Ctrl+C knows it worked")
    })
}

/// A client whose long line is being echoed while it does not read: the server is
/// blocked sending the reply when the check sends its signal.
struct PendingReply {
    stream: TcpStream,
    size: usize,
    sender: Writer,
    received: usize,
}

/// Bigger than anything the kernels' buffers can hold on both sides, so the server
/// cannot have finished sending when the signal comes.
fn long_line_size() -> usize {
    let max_of = |path: &str| -> usize {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
            .unwrap_or(4 * 1024 * 1024)
    };
    let send_buffer = max_of("/proc/sys/net/ipv4/tcp_wmem");
    (4 * send_buffer).clamp(16 * 1024 * 1024, 256 * 1024 * 1024)
}

/// Connects with a small receive buffer (set before connect(), so the window stays
/// small), sends one long line from a thread, and reads the first KiB of its echo.
fn start_pending_reply(server: &Server) -> Result<PendingReply, Failure> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(server.addr), Type::STREAM, None)
        .map_err(|e| Failure::new(format!("grader socket() failed: {e}")))?;
    let _ = socket.set_recv_buffer_size(64 * 1024);
    socket
        .connect_timeout(&server.addr.into(), net::IO_LIMIT)
        .map_err(|e| net::connect_failure(server.addr, &e))?;
    let stream: TcpStream = socket.into();
    let size = long_line_size();
    let sender = Writer::start(&stream, Body::filled(b'a', size).then(b"\n"))?;
    let mut pending = PendingReply {
        stream,
        size: size + 1,
        sender,
        received: 0,
    };
    pending
        .read_more(1024, Duration::from_secs(10))
        .map_err(|f| {
            f.during(format!(
                "waiting for the echo of a {} MiB line to start",
                size >> 20
            ))
        })?;
    Ok(pending)
}

impl PendingReply {
    /// Reads (and checks) `want` more bytes of the echo within `limit`.
    fn read_more(&mut self, want: usize, limit: Duration) -> Result<(), Failure> {
        let deadline = Instant::now() + limit;
        let mut buffer = vec![0u8; 256 * 1024];
        let target = self.received + want;
        while self.received < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.cut_short("nothing more came"));
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let room = (target - self.received).min(buffer.len());
            match self.stream.read(&mut buffer[..room]) {
                Ok(0) => return Err(self.cut_short("the server closed the connection")),
                Ok(n) => {
                    let last_is_end = self.received + n == self.size;
                    let expected_ok = buffer[..n].iter().enumerate().all(|(i, &b)| {
                        if last_is_end && i == n - 1 {
                            b == b'\n'
                        } else {
                            b == b'a'
                        }
                    });
                    if !expected_ok {
                        return Err(Failure::new(
                            "the echo of the long line contained bytes that were never sent",
                        )
                        .got(show(&buffer[..n.min(64)])));
                    }
                    self.received += n;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(self.cut_short("nothing more came"));
                }
                Err(e) => return Err(self.cut_short(&format!("reading failed: {e}"))),
            }
        }
        Ok(())
    }

    /// Reads the rest of the echo (within 60 s) once the signal was sent, and requires
    /// the whole line to have been sent; then leaves.
    fn finished_after_signal(mut self) -> Result<(), Failure> {
        let rest = self.size - self.received;
        self.read_more(rest, Duration::from_secs(60))
            .map_err(|f| f.during("reading the rest of the reply after SIGTERM"))?;
        match self.sender.finish() {
            Ok(()) => Ok(()),
            Err(_) => Err(Failure::new(
                "the server stopped reading the long line before its end",
            )),
        }
    }

    fn cut_short(&self, what: &str) -> Failure {
        Failure::new(format!(
            "the reply was cut short: {what} after {} of {} bytes",
            self.received, self.size
        ))
        .hint(
            "a reply already being sent must be finished: after the signal, do not exit (or \
             close client sockets) until each client's thread is done, within --grace-ms",
        )
    }
}

fn finishes_reply(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--grace-ms", "60000"])?;
    let pending = start_pending_reply(&server)?;
    ctx.proc(server.id).signal(Signal::SIGTERM);
    pending.finished_after_signal()?;
    let after = "after SIGTERM, once its last client had its reply and left";
    exits_zero_in_time(ctx, server.id, after)
}

fn stops_accepting(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--grace-ms", "60000"])?;
    let _pending = start_pending_reply(&server)?;
    ctx.proc(server.id).signal(Signal::SIGTERM);
    refuses_within_5_s(server.addr)
}

/// Connections to `addr` must be refused within 5 s (the listener closed).
fn refuses_within_5_s(addr: SocketAddr) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(Failure::new(
                    "5 s after SIGTERM, new clients could still connect",
                )
                .expected("connection refused: the listening socket closed right after the signal")
                .got("connect() succeeded (the kernel queued us on a listener nobody serves)")
                .hint(
                    "close the listening socket as soon as the stop flag is seen, before \
                     waiting for the connected clients to finish",
                ));
            }
            _ => thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn finishes_request(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--grace-ms", "60000"])?;
    let mut idle = served_client(server.addr, "an idle client")?;
    let mut busy = served_client(server.addr, "a client in mid-request")?;
    busy.send(b"half a li")?;
    ctx.proc(server.id).signal(Signal::SIGTERM);
    stop_seen(&mut idle)?;
    mid_line_answered(busy)?;
    exits_zero_in_time(ctx, server.id, "after SIGTERM, once its clients left")
}

/// Once the idle client is hung up on, the server's threads have seen the stop.
fn stop_seen(idle: &mut Conn) -> Result<(), Failure> {
    let (_, closed) = idle.closes_within(STOP_LIMIT)?;
    ensure(closed, || {
        Failure::new(format!(
            "an idle client was not hung up on within {} s of SIGTERM",
            STOP_LIMIT.as_secs()
        ))
        .hint("give each connection a read timeout and look at the stop flag when it expires")
    })
}

/// The client that sent `half a li` before the stop must be kept, then answered once
/// it completes its line; it leaves after that.
fn mid_line_answered(mut busy: Conn) -> Result<(), Failure> {
    let (got, closed) = busy.closes_within(Duration::from_secs(1))?;
    ensure(got.is_empty() && !closed, || {
        Failure::new("the server hung up on a client in the middle of its line")
            .sent_bytes(b"half a li")
            .expected("the connection kept open until the line is complete")
            .got(format!(
                "{}{}",
                show(&got),
                if closed { ", then end of stream" } else { "" }
            ))
            .hint(
                "hang up only between requests: when the bytes received so far end with a newline",
            )
    })?;
    busy.send(b"ne\n")?;
    let got = busy
        .read_line()
        .map_err(|f| f.during("after completing the line"))?;
    ensure(got == b"half a line\n", || {
        Failure::new("the line started before SIGTERM was not answered")
            .compare(b"half a line\n", &got)
    })
}

fn grace_period(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--grace-ms", "1000"])?;
    let mut stalled = served_client(server.addr, "a client that will stall")?;
    stalled.send(b"this line never ends")?;
    ctx.proc(server.id).signal(Signal::SIGTERM);
    let after = "after SIGTERM with --grace-ms 1000, while a client sat mid-line";
    exits_zero(ctx, server.id, after, Duration::from_secs(15)).map_err(|f| {
        f.or_hint("wait for the clients with a deadline: once --grace-ms has passed, exit anyway")
    })
}

/// A one-connection server for the client check. It answers each line with
/// `you said: <line>`; with `refusal`, it sends that line first, closes its sending
/// side, and only reads the client's first line.
fn grader_server(refusal: Option<&'static [u8]>) -> Result<(u16, Peer), Failure> {
    let patience = Step::Limit(Duration::from_secs(5));
    let steps = match refusal {
        // One line, then read what the client sends (so closing does not reset).
        Some(refusal) => vec![
            Step::Send(refusal.to_vec()),
            Step::HalfClose,
            patience,
            Step::ReadLine,
        ],
        None => vec![patience, Step::AnswerLines],
    };
    let script = Script::new(steps)
        .limit(Duration::from_secs(10))
        .answer(|_, line| {
            let text = String::from_utf8_lossy(line);
            vec![format!("you said: {}\n", text.trim_end()).into_bytes()]
        });
    let server = Peer::tcp_server(LOCALHOST_V4, script)?;
    Ok((server.port_number(), server))
}

/// The lines the grader's server received (a last one without `\n` too).
fn lines(server: Peer) -> Vec<Vec<u8>> {
    let seen = server.finish();
    seen.received
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn client(ctx: &mut Ctx) -> Result<(), Failure> {
    let (port, server) = grader_server(None)?;
    let run = ctx.run_client(&port.to_string(), &[], b"one\ntwo\n", CLIENT_LIMIT)?;
    server_got_both_lines(&lines(server))?;
    printed_replies(&run)?;
    exited_zero_at_end(&run)?;
    shows_busy_refusal(ctx)
}

/// The client must exit 0 once its stdin ends.
fn exited_zero_at_end(run: &Finished) -> Result<(), Failure> {
    ensure(run.status.success(), || {
        Failure::new(format!(
            "the client ended with {} at the end of its input",
            describe_status(run.status)
        ))
        .expected("exit status 0 when stdin ends")
    })
}

/// How long a client run of the client check may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(10);

/// The grader's server must have received stdin's two lines, newlines included.
fn server_got_both_lines(lines: &[Vec<u8>]) -> Result<(), Failure> {
    ensure(lines == [b"one\n".to_vec(), b"two\n".to_vec()], || {
        Failure::new("the grader's server did not receive stdin's lines")
            .sent("stdin: \"one\\ntwo\\n\"")
            .expected("\"one\\n\" then \"two\\n\" on one connection")
            .got(format!(
                "{:?}",
                lines.iter().map(|l| show(l)).collect::<Vec<_>>()
            ))
            .hint("send each line of stdin, newline included, on the connection")
    })
}

/// The client's stdout must hold the server's replies to both lines.
fn printed_replies(run: &Finished) -> Result<(), Failure> {
    let stdout = run.stdout_text();
    ensure(
        stdout.contains("you said: one") && stdout.contains("you said: two"),
        || {
            Failure::new("the client did not print the server's replies")
                .expected("stdout with `you said: one` and `you said: two` (the grader's replies)")
                .got(show(stdout.as_bytes()))
                .hint("after sending a line, read one reply line and print it")
        },
    )
}

/// Against a server that refuses it with a `busy:` line, the client must show that
/// line (on stdout or stderr).
fn shows_busy_refusal(ctx: &mut Ctx) -> Result<(), Failure> {
    let busy_line: &'static [u8] = b"busy: 1 clients already connected, try again later\n";
    let (port, server) = grader_server(Some(busy_line))?;
    let run = ctx
        .run_client(&port.to_string(), &[], b"hello\n", CLIENT_LIMIT)
        .map_err(|f| f.during("against a server that answers busy:"))?;
    drop(server.finish());
    showed_refusal(&run, busy_line)
}

/// The client's output (stdout or stderr) must show the server's `busy_line`.
fn showed_refusal(run: &Finished, busy_line: &[u8]) -> Result<(), Failure> {
    let shown = format!("{}{}", run.stdout_text(), run.stderr);
    ensure(shown.contains("busy"), || {
        Failure::new("the client did not show the server's busy: refusal")
            .sent_bytes(busy_line)
            .got(show(shown.as_bytes()))
            .hint("print the reply line even when it is a refusal")
    })
}
