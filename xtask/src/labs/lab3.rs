//! Lab 3 (echo): the check table and the classroom demo.
//!
//! The server must send back every byte until the client half-closes, however the bytes
//! are split, whatever they are (binary), however large, to a reader that is slow; with
//! `--timestamp` answer each line (not each recv()) with `[<ctime>] <line>`, the last one
//! even without its `\n`; serve client after client, survive a reset and a client that
//! never reads, not leak descriptors, restart at once (SO_REUSEADDR), honour --backlog,
//! work over IPv6, print addresses and fail with one line when the port is taken.
//!
//! The client must show a flushed `> ` prompt, send each line over a new connection,
//! half-close, print the whole answer (read until EOF), stop at an empty line or the end
//! of its input, and fail with one line when nothing listens.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitStatus;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::grade::common::start;
use crate::grade::net::{self, Conn, LOCALHOST_V4, show};
use crate::grade::peer::{Peer, Script, Seen, Step};
use crate::grade::process::describe_status;
use crate::grade::row;
use crate::grade::writer::{Body, Writer};
use crate::grade::{Ctx, Failure, Finished, Lab, Server, common, ensure, expect};
use crate::grade::{poll, procstat, sockdiag, stamp, standard};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
    id: "lab3",
    slug: "echo",
    title: "an iterative echo server and its client, safe for any byte stream",
    table: &[
        row("listens", listens),
        row("echoes", echoes),
        row("keeps-reading", keeps_reading).points(2),
        row("binary-safe", binary_safe),
        row("large-binary", large_binary).points(2),
        row("short-sends", short_sends).budget(40),
        row("timestamp-lines", timestamp_lines),
        row("timestamp-framing", timestamp_framing).points(2),
        row("timestamp-last-line", timestamp_last_line),
        row("serves-in-turn", serves_in_turn),
        row("survives-reset", survives_reset),
        row("survives-epipe", survives_epipe),
        row("survives-emfile", survives_emfile),
        row("stuck-reader", stuck_reader).budget(40),
        standard::no_fd_leak(no_fd_leak),
        standard::reuse_address(reuse_address),
        standard::backlog::<7>(),
        standard::ipv6(ipv6),
        standard::prints_addresses(prints_addresses),
        standard::port_in_use(),
        row("client-prompt", client_prompt),
        row("client-connection-per-line", client_connection_per_line).points(2),
        row("client-reads-to-eof", client_reads_to_eof),
        row("client-decodes-text", client_decodes_text),
        row("client-stops", client_stops),
        row("client-refused", client_refused),
    ],
};

/// The gap the grader leaves between the pieces of one message, so that each piece
/// reaches the other side in a recv() of its own. Nothing is judged by how long the
/// program takes: a correct program passes whatever the gap.
const PIECE_GAP: Duration = Duration::from_millis(300);
/// The deadline of each of the grader's writes from a writer thread: ends it even if
/// the program neither reads nor closes.
const WRITE_LIMIT: Duration = Duration::from_secs(90);
/// The send timeout the grader asks for with `--send-timeout` in `stuck-reader`.
const STUCK_SEND_TIMEOUT: &str = "1";
/// How long the second client may wait behind one that never reads. Each partial
/// send() restarts the server's 1 s send timeout (the kernel frees a little room now
/// and then), so dropping the stuck client takes a few seconds.
const STUCK_LIMIT: Duration = Duration::from_secs(20);
/// How long a client run may take in the client checks.
const CLIENT_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------
// Helpers: the server side
// ---------------------------------------------------------------------------------

/// One whole conversation: connect, send `message`, half-close, read until EOF.
fn converse(addr: SocketAddr, message: &[u8]) -> Result<Vec<u8>, Failure> {
    net::converse(addr, message, message.len() * 4 + 1024)
}

/// Like [`converse`], and the answer must be the message itself.
fn expect_echo(addr: SocketAddr, message: &[u8]) -> Result<(), Failure> {
    let got = converse(addr, message)?;
    expect::echoed(message, &got, "the answer was not the message sent").map_err(|f| {
        f.hint("send back exactly the bytes recv() gave you, then close when recv() returns 0")
    })
}

/// Waits up to `gap` until everything sent so far has come back (an echo server that
/// answers each recv() at once), so that the next piece is surely a new recv().
/// Returns whether the program closed the connection meanwhile.
fn await_echo(conn: &mut Conn, gap: Duration) -> Result<bool, Failure> {
    let deadline = Instant::now() + gap;
    let mut buffer = vec![0u8; 64 * 1024];
    while conn.received.len() < conn.sent.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let _ = conn.stream.set_read_timeout(Some(left));
        match conn.stream.read(&mut buffer) {
            Ok(0) => return Ok(true),
            Ok(n) => conn.received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(false);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(true),
            Err(e) => return Err(Failure::new(format!("error while reading: {e}"))),
        }
    }
    Ok(false)
}

/// The failure of a server that closed (or reset) before the message was complete.
fn closed_early(conn: &Conn, piece: usize, pieces: usize) -> Failure {
    Failure::new(format!(
        "the server closed the connection before the message was complete (seen after \
         piece {piece} of {pieces} was sent)"
    ))
    .sent_bytes(&conn.sent)
    .got(show(&conn.received))
    .hint(
        "one recv() is not the whole message: keep calling recv() (and sending back what it \
         gives) until it returns 0, which means the client has half-closed",
    )
}

/// Connects with a small receive buffer (set before connect(), so the window stays
/// small): the program's send() then has to wait as soon as the grader stops reading.
fn connect_small_window(addr: SocketAddr) -> Result<Conn, Failure> {
    let stream = connect_tuned(addr, |socket| {
        let _ = socket.set_recv_buffer_size(64 * 1024);
    })?;
    Ok(Conn::new(stream))
}

/// Connects from a socket that `tune` has set up first: the receive buffer and the
/// segment size only shape a connection when set before connect().
fn connect_tuned(addr: SocketAddr, tune: impl FnOnce(&Socket)) -> Result<TcpStream, Failure> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .map_err(|e| Failure::new(format!("grader socket() failed: {e}")))?;
    tune(&socket);
    socket
        .connect_timeout(&addr.into(), net::IO_LIMIT)
        .map_err(|e| net::connect_failure(addr, &e))?;
    Ok(socket.into())
}

/// Bigger than what the program's send buffer can park while the grader does not read,
/// so that its send() must wait (and a send() that gives up loses bytes).
fn large_size() -> usize {
    let send_buffer_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|t| t.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(4 * 1024 * 1024usize);
    (send_buffer_max + 4 * 1024 * 1024).clamp(8 * 1024 * 1024, 64 * 1024 * 1024)
}

/// Bytes that look random (every value, in no order), the same on every run.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A writer of all of `payload`, then a half-close, on `stream`.
fn push_all(stream: &TcpStream, payload: &Arc<Vec<u8>>) -> Result<Writer, Failure> {
    let body = Body::bytes(Arc::clone(payload))
        .half_close()
        .limit(WRITE_LIMIT);
    Writer::start(stream, body)
}

/// Splits a stamped answer into its lines, checking each stamp; returns the lines.
fn unstamp(answer: &[u8]) -> Result<Vec<Vec<u8>>, Failure> {
    let mut lines = Vec::new();
    for piece in answer.split_inclusive(|&b| b == b'\n') {
        // `[Sun Nov 22 17:39:27 2026] <line>\n`: one stamped answer, the line kept.
        let line = stamp::strip(piece).and_then(|rest| rest.strip_suffix(b"\n"));
        let Some(line) = line else {
            let hint = if piece.ends_with(b"\n") {
                "each answer line is `[` + the ctime date (like `Sun Nov 22 17:39:27 2026`) + `] ` + the line + `\\n`"
            } else {
                "every answer line must end with \\n (add one to a last line that had none)"
            };
            return Err(Failure::new("an answer line is not a stamped line")
                .expected("[<ctime>] <line>\\n, e.g. \"[Sun Nov 22 17:39:27 2026] hello\\n\"")
                .got(show(piece))
                .hint(hint));
        };
        lines.push(line.to_vec());
    }
    Ok(lines)
}

/// The answer must be exactly one stamped line per line in `lines`, in order.
fn expect_stamped(answer: &[u8], lines: &[&[u8]], sent: &[u8]) -> Result<(), Failure> {
    let got = unstamp(answer).map_err(|f| f.sent_bytes(sent))?;
    let wanted: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
    ensure(got == wanted, || {
        let hint = if got.len() < wanted.len() {
            "stamp every line: one recv() may bring several lines, find each \\n in the stream"
        } else if got.len() > wanted.len() {
            "stamp whole lines only: a recv() may end in the middle of a line; keep the start \
             until its \\n arrives"
        } else {
            "the text after the stamp must be the line exactly as sent (bytes, not text)"
        };
        Failure::new(format!(
            "expected {} stamped line(s), got {} that do not match",
            wanted.len(),
            got.len()
        ))
        .sent_bytes(sent)
        .expected(
            wanted
                .iter()
                .map(|l| format!("[<ctime>] {}", show(l)))
                .collect::<Vec<_>>()
                .join(", "),
        )
        .got(show(answer))
        .hint(hint)
    })
}

// ---------------------------------------------------------------------------------
// The server checks
// ---------------------------------------------------------------------------------

fn listens(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let _conn = net::connect(server.addr)?;
    ctx.ensure_running(server.id, "after a client connected")
}

fn echoes(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    expect_echo(server.addr, b"hello, echo\n")
}

fn keeps_reading(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let pieces: [&[u8]; 3] = [b"the first piece, ", b"then a second, ", b"and the last\n"];
    let mut conn = net::connect(server.addr)?;
    send_pieces(&mut conn, &pieces)?;
    conn.half_close()?;
    conn.read_to_eof(4096)
        .map_err(|f| f.during("after the client half-closed"))?;
    expect_whole_message(&conn, &pieces)
}

fn binary_safe(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    expect_echo(server.addr, &every_byte_and_bad_utf8()).map_err(|f| f.hint(RAW_BYTES_HINT))
}

fn large_binary(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let payload = Arc::new(pseudo_random(large_size()));
    let got = echo_to_slow_reader(connect_small_window(server.addr)?, &payload)?;
    expect_large_echo(&payload, &got)
}

/// A very slow reader: tiny segments (TCP_MAXSEG) and a tiny receive window, read a
/// little at a time, so the server spends most of the check blocked in send(). Every
/// 300 ms the grader also stops the server (SIGSTOP) and continues it (SIGCONT): a
/// send() blocked after it has queued some of its bytes then returns at once with that
/// short count, as it would after any signal, so short sends happen on every run, not
/// only when a timeout happens to expire first. Only a server that sends the rest (a
/// send-all loop) echoes every byte.
fn short_sends(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--send-timeout", SHORT_SEND_TIMEOUT])?;
    let payload = Arc::new(pseudo_random(SHORT_SEND_BYTES));
    let stream = connect_tiny_segments(server.addr)?;
    let writer = push_all(&stream, &payload)?;
    let (got, outcome) = read_slowly_nudging(&stream, &payload, server.pid);
    drop(stream);
    let _ = writer.finish();
    expect_slow_echo(&payload, &got, outcome)
}

fn timestamp_lines(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--timestamp"])?;
    let lines: [&[u8]; 3] = [b"one", b"two \xff\xfe (not UTF-8)", b"three"];
    let message = [lines[0], b"\n", lines[1], b"\n", lines[2], b"\n"].concat();
    let answer = converse(server.addr, &message)?;
    expect_stamped(&answer, &lines, &message)
}

fn timestamp_framing(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--timestamp"])?;
    let mut conn = net::connect(server.addr)?;
    conn.send(b"hel")?;
    expect_quiet(&mut conn, &BEFORE_THE_NEWLINE)?;
    conn.send(b"lo\nwor")?;
    expect_stamped_line(&mut conn, "hello", FRAMING_SENT)?;
    expect_quiet(&mut conn, &AFTER_HELLO)?;
    conn.send(b"ld\n")?;
    conn.half_close()?;
    let rest = conn.read_to_eof(4096)?;
    expect_stamped(&rest, &[b"world"], b"world\n").map_err(|f| f.sent(FRAMING_SENT))
}

fn timestamp_last_line(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--timestamp"])?;
    let message = b"first\nno newline at the end";
    let answer = converse(server.addr, message)?;
    expect_stamped(&answer, &[b"first", b"no newline at the end"], message)
        .map_err(|f| f.or_hint(LAST_LINE_HINT))
}

fn serves_in_turn(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    for n in 1..=3 {
        let message = format!("client {n} of 3\n");
        expect_echo(server.addr, message.as_bytes())
            .map_err(stage(format!("client {n} of 3"), NEXT_CLIENT_HINT))?;
    }
    ctx.ensure_running(server.id, "after three clients")
}

fn survives_reset(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    // The first rude client resets once some of its echo is back: the server is then
    // waiting in recv() for more, and that recv() fails.
    rude_client(server.addr, &[b'r'; 1024], 1)?;
    expect_echo_during(server.addr, b"still there?\n", AFTER_RECV_RESET, RESET_HINT)?;
    // The second one resets right after sending, without reading: the server's send()
    // of the echo (or its next recv()) fails.
    rude_client(server.addr, &[b'R'; 1024], 0)?;
    expect_echo_during(server.addr, b"and now?\n", AFTER_SEND_RESET, RESET_HINT)?;
    ctx.ensure_running(server.id, "after two clients reset their connections")
}

/// A client that sends its request, half-closes and then resets while it waits in the
/// queue behind another client. When the server gets to it, the request is still there
/// to read, but the connection is gone: its send() fails with EPIPE, and unless the
/// program ignores SIGPIPE (or sends with MSG_NOSIGNAL) the kernel kills it with that
/// signal. Rust and Python ignore SIGPIPE for you; C does not.
fn survives_epipe(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    // The first client keeps the server busy, waiting in recv() for it ...
    let mut holder = accepted_client(server.addr)?;
    // ... while the second one, queued by the kernel, sends, half-closes and resets.
    queue_and_reset(server.addr, b"hello\n")?;
    // Let the server go on: it accepts the reset connection next, reads `hello\n` and
    // answers into a connection that no longer exists.
    holder.half_close()?;
    holder.read_to_eof(16)?;
    let outcome = expect_echo(server.addr, b"after the EPIPE\n");
    not_killed(ctx, server.id, outcome.is_err(), EPIPE_WHEN)?;
    outcome.map_err(stage(EPIPE_NEXT, EPIPE_HINT))?;
    ctx.ensure_running(server.id, "after a send() that failed with EPIPE")
}

/// The server runs out of descriptors: the grader lowers its RLIMIT_NOFILE below the
/// descriptors it already has, so its next accept() fails with EMFILE. The server must
/// report that, live on, and serve the waiting client once the limit is back.
fn survives_emfile(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    let first = queued_through_emfile(ctx, &server, b"first\n")?;
    expect_echo_at_last(first, b"first\n")?;
    expect_echo_during(
        server.addr,
        b"and the next one\n",
        AFTER_EMFILE,
        EMFILE_HINT,
    )?;
    ctx.ensure_running(server.id, "after accept() failed with EMFILE")
}

fn stuck_reader(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &["--send-timeout", STUCK_SEND_TIMEOUT])?;
    let stuck = stuck_client(server.addr)?;
    expect_echo_behind_stuck(server.addr, b"next in line\n")?;
    drop(stuck);
    ctx.ensure_running(server.id, "after dropping a client that never reads")
}

fn no_fd_leak(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    common::no_fd_growth(&server, |message| expect_echo(server.addr, message))
}

fn reuse_address(ctx: &mut Ctx) -> Result<(), Failure> {
    let first = start(ctx, &[])?;
    kill_mid_conversation(ctx, &first)?;
    let during = "restarting on the same port while an old connection lingers on it";
    common::restarts_on_same_port(ctx, first, during)
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = common::start_over_ipv6(ctx)?;
    expect_echo(server.addr, b"over IPv6\n")
}

fn prints_addresses(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx, &[])?;
    // Connected and quiet: the server has accepted us and waits in recv().
    let conn = net::connect(server.addr)?;
    common::prints_addresses(ctx, server.id, server.addr.port(), conn.local_port())
}

// ---------------------------------------------------------------------------------
// How the server checks do it: their conversations and verdicts
// ---------------------------------------------------------------------------------

/// Names the stage a failure happened in, and gives it `hint` unless the failure
/// brought a sharper one of its own (silence, a reset, an early close).
fn stage(during: impl std::fmt::Display, hint: &str) -> impl FnOnce(Failure) -> Failure {
    move |f| f.during(during).or_hint(hint)
}

/// Like [`expect_echo`], for a client that comes at a later stage of the check:
/// `during` names that stage and `hint` says what a server that fails it got wrong.
fn expect_echo_during(
    addr: SocketAddr,
    message: &[u8],
    during: impl std::fmt::Display,
    hint: &str,
) -> Result<(), Failure> {
    expect_echo(addr, message).map_err(stage(during, hint))
}

/// Sends `pieces` one at a time; before each next one, waits (up to [`PIECE_GAP`]) for
/// the echo of what was sent so far, so that each piece is a recv() of its own.
fn send_pieces(conn: &mut Conn, pieces: &[&[u8]]) -> Result<(), Failure> {
    for (n, piece) in pieces.iter().enumerate() {
        conn.send(piece)
            .map_err(|f| f.during(format!("sending piece {} of {}", n + 1, pieces.len())))?;
        if n + 1 < pieces.len() && await_echo(conn, PIECE_GAP)? {
            return Err(closed_early(conn, n + 1, pieces.len()));
        }
    }
    Ok(())
}

/// Everything `conn` received must be the message `pieces` make up, whole.
fn expect_whole_message(conn: &Conn, pieces: &[&[u8]]) -> Result<(), Failure> {
    let all = pieces.concat();
    ensure(conn.received == all, || {
        Failure::new("the answer was not the whole message")
            .sent(format!(
                "{} in {} pieces, {} ms apart",
                show(&all),
                pieces.len(),
                PIECE_GAP.as_millis()
            ))
            .compare(&all, &conn.received)
            .hint("keep calling recv() until it returns 0, sending back each piece it gives")
    })
}

/// The hint for an echo that changed bytes which are not text.
const RAW_BYTES_HINT: &str = "echo the raw bytes: converting them to a String (or \
                              .decode(\"utf-8\")) rejects or changes bytes that are not UTF-8";

/// Every byte value, then sequences that are not UTF-8 (a lone continuation byte, a
/// cut-off multi-byte character, an overlong encoding): what a text conversion breaks.
fn every_byte_and_bad_utf8() -> Vec<u8> {
    let mut message: Vec<u8> = (0..=255u8).collect();
    message.extend_from_slice(&[0x80, b'x', 0xe2, 0x82, b'y', 0xc0, 0xaf, b'\n']);
    message
}

/// Sends `payload` on `conn` from another thread, then half-closes, while the grader
/// plays a slow reader: it reads nothing until its own writing stalls (by then the
/// buffers towards the grader are full and the server's send() has had to wait), then
/// reads the echo to its end.
fn echo_to_slow_reader(mut conn: Conn, payload: &Arc<Vec<u8>>) -> Result<Vec<u8>, Failure> {
    let size = payload.len();
    let writer = push_all(&conn.stream, payload)?;
    writer.wait_stalled(Duration::from_secs(30));
    conn.limit = Duration::from_secs(60);
    let read = conn.read_to_eof(size + 64 * 1024);
    let pushed = writer.finish();
    let got = read.map_err(|f| {
        f.during(format!("reading back {} MiB", size >> 20)).hint(
            "the server must echo everything until recv() returns 0, sending every byte \
             (a send-all loop such as write_all/sendall) even when the client reads slowly",
        )
    })?;
    pushed.map_err(|e| {
        Failure::new(format!("the grader could not send all {size} bytes: {e}"))
            .got(format!("{} bytes came back", got.len()))
            .hint("the server stopped reading or closed before the client half-closed")
    })?;
    Ok(got)
}

/// Where `got` first differs from `sent` (None: one is the start of the other).
fn first_mismatch(got: &[u8], sent: &[u8]) -> Option<usize> {
    got.iter().zip(sent).position(|(a, b)| a != b)
}

/// The large echo must be the payload; if not, says whether bytes went missing at the
/// end, in the middle, or came back changed.
fn expect_large_echo(payload: &[u8], got: &[u8]) -> Result<(), Failure> {
    if got == payload {
        return Ok(());
    }
    let size = payload.len();
    let first_difference = first_mismatch(got, payload).unwrap_or(got.len().min(size));
    let (problem, hint) = if got.len() < size && first_difference == got.len() {
        (
            "bytes went missing at the end",
            "send() may take only part of what you give it, and returns how many bytes it \
             took: send the rest too (write_all/sendall), and read until recv() returns 0",
        )
    } else if got.len() < size {
        (
            "bytes went missing in the middle",
            "send() may take only part of what you give it (a short send): send the rest \
             before the next recv() (write_all/sendall), and never convert bytes to text",
        )
    } else {
        (
            "the bytes came back changed",
            "echo the raw bytes: no text conversion (UTF-8 decoding replaces invalid bytes)",
        )
    };
    Err(Failure::new(format!(
        "{problem}: sent {size} bytes of binary data, got {} back, first difference at byte {first_difference}",
        got.len()
    ))
    .sent_bytes(payload)
    .got(show(got))
    .hint(hint))
}

/// The send timeout `short-sends` gives the server: long next to the grader's pauses
/// between reads, so that a send() always makes progress in time, even on a busy
/// machine where the grader is not scheduled for a while.
const SHORT_SEND_TIMEOUT: &str = "3";
/// How many bytes `short-sends` sends: well past what the kernel buffers between the
/// two (about 220 KiB), so the server spends seconds blocked in send().
const SHORT_SEND_BYTES: usize = 384 * 1024;
/// How often (in reads, 100 ms apart) the grader stops and continues the server.
const SHORT_SEND_NUDGE_EVERY: u32 = 3;

/// Connects with tiny segments (TCP_MAXSEG 536) and a tiny receive buffer, both set
/// before connect() so the connection keeps them: the server's send() blocks almost
/// at once and returns short whenever it is interrupted.
fn connect_tiny_segments(addr: SocketAddr) -> Result<TcpStream, Failure> {
    connect_tuned(addr, |socket| {
        let _ = socket.set_tcp_mss(536);
        let _ = socket.set_recv_buffer_size(4096);
    })
}

/// Reads the echo of `payload` 4 KiB at a time, 100 ms apart (for 30 s at most),
/// stopping and continuing the server `pid` every [`SHORT_SEND_NUDGE_EVERY`] reads.
/// Returns what came back, and why the reading stopped early, if it did: a byte that
/// does not continue what was sent ends it at once.
fn read_slowly_nudging(
    mut stream: &TcpStream,
    payload: &[u8],
    pid: u32,
) -> (Vec<u8>, Result<(), String>) {
    let mut got: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reads: u32 = 0;
    let outcome = loop {
        if Instant::now() >= deadline {
            break Err("the echo was still coming after 30 s".to_string());
        }
        reads += 1;
        if reads.is_multiple_of(SHORT_SEND_NUDGE_EVERY) {
            stop_and_continue(pid);
        }
        match stream.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                got.extend_from_slice(&buffer[..n]);
                // Every byte that comes back must be the next byte that was sent.
                if !payload.starts_with(&got) || got.len() > payload.len() {
                    break Err("bytes came back that do not continue what was sent".into());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break Err(format!("reading failed: {e}")),
        }
        // The slow reader's pace (about 40 KiB/s): it is what the check is about.
        thread::sleep(Duration::from_millis(100));
    };
    (got, outcome)
}

/// The slowly read echo must be all of `payload`; `outcome` says why the reading
/// stopped early, if it did.
fn expect_slow_echo(
    payload: &[u8],
    got: &[u8],
    outcome: Result<(), String>,
) -> Result<(), Failure> {
    if outcome.is_ok() && got.len() == payload.len() {
        return Ok(());
    }
    let first_difference = first_mismatch(got, payload).unwrap_or(got.len());
    let problem = match outcome {
        Err(why) => why,
        Ok(()) => "the connection closed before everything came back".into(),
    };
    Err(Failure::new(format!(
        "{problem}: sent {} bytes, {} came back, the first {first_difference} of them right",
        payload.len(),
        got.len()
    ))
    .sent(format!(
        "{} KiB of binary data, read back 4 KiB at a time, 10 times a second, the server \
         stopped and continued (kill -STOP, kill -CONT) every 300 ms",
        payload.len() >> 10
    ))
    .got(show(got))
    .hint(
        "a send() that waits for a slow reader can return early (its timeout runs out, a \
         signal arrives) with how many bytes it took, fewer than you gave it: call send() \
         again with the rest (a send-all loop: write_all, sendall; in C, also call it again \
         after EINTR) before the next recv(), or bytes go missing",
    ))
}

/// Stops the program (SIGSTOP), waits until the kernel has stopped it, and lets it go
/// on (SIGCONT). Continuing before the stop took effect would cancel it.
fn stop_and_continue(pid: u32) {
    let target = nix::unistd::Pid::from_raw(pid as i32);
    if nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGSTOP).is_err() {
        return;
    }
    // Stopped; or gone (a zombie, when a server that exits after its client has left
    // bytes in the kernel's buffers for us): nothing to wait for either way.
    procstat::wait_state(
        pid,
        |s| matches!(s, 'T' | 't' | 'Z' | 'X'),
        Duration::from_secs(2),
    );
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGCONT);
}

/// What `timestamp-framing` sends, for its failures.
const FRAMING_SENT: &str = "\"hel\", then \"lo\\nwor\", then \"ld\\n\" (300 ms apart)";

/// A moment when the server must neither answer nor close, in the words its failure
/// shows: the stage's problem, what was sent, what was expected and the hint.
struct Quiet {
    problem: &'static str,
    sent: &'static str,
    expected: &'static str,
    hint: &'static str,
}

/// A line in pieces: nothing may come back before its `\n`.
const BEFORE_THE_NEWLINE: Quiet = Quiet {
    problem: "the server answered (or closed) before the line was complete",
    sent: "\"hel\" (no \\n yet)",
    expected: "nothing yet: the line is not finished",
    hint: "stamp lines, not recv()s: keep the bytes after the last \\n until the rest of \
           the line arrives",
};

/// The end of the first line and the start of the next: exactly one answer.
const AFTER_HELLO: Quiet = Quiet {
    problem: "after the answer to \"hello\", more came (or the connection closed)",
    sent: FRAMING_SENT,
    expected: "nothing until \"world\" is complete",
    hint: "\"wor\" is the start of a line, not a line: keep it until its \\n arrives",
};

/// Fails as `quiet` says if anything arrives on `conn`, or it closes, within
/// [`PIECE_GAP`].
fn expect_quiet(conn: &mut Conn, quiet: &Quiet) -> Result<(), Failure> {
    let (early, closed) = conn.closes_within(PIECE_GAP)?;
    ensure(early.is_empty() && !closed, || {
        Failure::new(quiet.problem)
            .sent(quiet.sent)
            .expected(quiet.expected)
            .got(net::show_or(&early, "the connection closed"))
            .hint(quiet.hint)
    })
}

/// The next line on `conn` must be `line`, stamped; `sent` says what the grader had
/// sent by then, in pieces.
fn expect_stamped_line(conn: &mut Conn, line: &str, sent: &str) -> Result<(), Failure> {
    let answer = conn
        .read_line()
        .map_err(|f| f.during(format!("waiting for the answer to {line:?}")))?;
    let whole = [line.as_bytes(), b"\n"].concat();
    expect_stamped(&answer, &[line.as_bytes()], &whole).map_err(|f| f.sent(sent))
}

/// The hint for a last line, without its `\n`, that was not answered.
const LAST_LINE_HINT: &str = "when recv() returns 0, a non-empty unfinished line is still a \
                              line: stamp it and add the \\n";

/// The hint for a server that serves one client only.
const NEXT_CLIENT_HINT: &str = "after one client the server must go back to accept() the next";

/// The hint for a server that a client's reset took down.
const RESET_HINT: &str = "a reset (ECONNRESET from recv(), EPIPE from send()) ends that \
                          client only: report it, close that connection and accept the next";

/// The stage after a client that reset while the server waited in recv().
const AFTER_RECV_RESET: &str = "the client after a reset during recv()";
/// The stage after a client that reset before its echo was sent.
const AFTER_SEND_RESET: &str = "the client after a reset before the echo";

/// A rude client: connects, sends `request`, waits for the first `echoed` bytes of
/// its echo, then resets the connection.
fn rude_client(addr: SocketAddr, request: &[u8], echoed: usize) -> Result<(), Failure> {
    let mut rude = net::connect(addr)?;
    rude.send(request)?;
    rude.read_exact_bytes(echoed)?;
    rude.reset();
    Ok(())
}

/// What the server was doing when an EPIPE killed it.
const EPIPE_WHEN: &str = "answering a client that had half-closed and then reset";
/// The stage after the EPIPE.
const EPIPE_NEXT: &str = "the client after one whose answer met EPIPE";
/// The hint for a server that the EPIPE stopped serving.
const EPIPE_HINT: &str =
    "EPIPE from send() ends that client only: report it, close, accept the next";

/// Connects a client and waits until the server has accepted it and no other
/// connection waits in its queue: the server is then busy with this one.
fn accepted_client(addr: SocketAddr) -> Result<Conn, Failure> {
    let holder = net::connect(addr)?;
    let ours = holder.local_addr();
    ensure(
        wait_server_side(addr, ours, |state| state == Some(sockdiag::ESTABLISHED))
            && wait_accept_queue_empty(addr.port()),
        || {
            Failure::new("the server did not accept a client within 5 s")
                .hint("accept() the next client as soon as the previous one is done")
        },
    )?;
    Ok(holder)
}

/// A client that, still queued, sends `request`, half-closes and resets, each step
/// seen by the kernel (the server's side in CLOSE-WAIT, then gone) before the next.
fn queue_and_reset(addr: SocketAddr, request: &[u8]) -> Result<(), Failure> {
    let mut gone = net::connect(addr)?;
    let ours = gone.local_addr();
    gone.send(request)?;
    gone.half_close()?;
    ensure(
        wait_server_side(addr, ours, |state| state == Some(sockdiag::CLOSE_WAIT)),
        || Failure::new("the grader's FIN never reached the queued connection"),
    )?;
    gone.reset();
    ensure(
        wait_server_side(addr, ours, |state| state.is_none()),
        || Failure::new("the grader's reset never reached the queued connection"),
    )
}

/// Fails with how the server `id` ended (naming SIGPIPE when that is what ended it) if
/// it has exited while `when`: looked at once, or, after a client that failed
/// (`failed`), within 2 s, the time a dying server takes to be seen gone.
fn not_killed(ctx: &mut Ctx, id: usize, failed: bool, when: &str) -> Result<(), Failure> {
    let limit = if failed {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    match ctx.proc(id).wait_exit(limit) {
        Some(_) => Err(ctx.exited_failure(id, when)),
        None => Ok(()),
    }
}

/// The hint for a server that EMFILE took down or stopped.
const EMFILE_HINT: &str = "EMFILE from accept() means this process has no descriptor left for \
                           the new connection; descriptors come back as clients leave, so it \
                           is not fatal: report it, wait a moment (the client is still queued) \
                           and accept again, instead of ending the server";
/// The stage of the client that came while no descriptor could be had.
const EMFILE_WAITER: &str = "the client that arrived while the server had no descriptor left";
/// The stage of a client that came once the descriptors were back.
const AFTER_EMFILE: &str = "a client after the descriptors came back";
/// The problem of a wrong echo to that client.
const EMFILE_WRONG_ECHO: &str = "the client that waited through EMFILE got the wrong echo";

/// Starves the server of descriptors, makes a client arrive (it sends `request` and
/// half-closes) while its accept() fails with EMFILE, gives the descriptors back, and
/// requires the server to have lived through it. Returns that client, still queued or
/// being served.
fn queued_through_emfile(ctx: &mut Ctx, server: &Server, request: &[u8]) -> Result<Conn, Failure> {
    let pid = server.pid;
    let stderr_before = ctx.proc(server.id).stderr().len();
    let usual = common::starve_descriptors(pid)?;
    // A client arrives while no descriptor can be had. (Had the server already been
    // waiting in accept(), it reserved that descriptor beforehand: this client gets
    // it, and the accept() after it fails instead.)
    let mut first = net::connect(server.addr)?;
    first.send(request)?;
    first.half_close()?;
    common::await_failed_accept(ctx, server.id, stderr_before);
    let restored = common::set_open_files_limit(pid, usual);
    if let Some(status) = ctx.proc(server.id).wait_exit(Duration::from_millis(200)) {
        let status = describe_status(status);
        return Err(Failure::new(format!(
            "the server exited ({status}) when accept() found no descriptor left (EMFILE)"
        ))
        .hint(EMFILE_HINT));
    }
    ensure(restored.is_some(), || {
        Failure::new("the grader could not give the program its descriptors back")
    })?;
    Ok(first)
}

/// The echo of `request` must come back to `first`, the client that waited through
/// EMFILE (given 10 s: the server may first have waited a moment before accepting again).
fn expect_echo_at_last(mut first: Conn, request: &[u8]) -> Result<(), Failure> {
    first.limit = Duration::from_secs(10);
    let got = first
        .read_to_eof(64)
        .map_err(stage(EMFILE_WAITER, EMFILE_HINT))?;
    expect::echoed(request, &got, EMFILE_WRONG_ECHO)
}

/// A client that sends and never reads, on a small window: once its writing stalls,
/// every buffer on the way is full and the server waits in send(). Keep it (and its
/// writer) for as long as the client must stay stuck.
fn stuck_client(addr: SocketAddr) -> Result<(Conn, Writer), Failure> {
    let stuck = connect_small_window(addr)?;
    let body = Body::filled(b'z', 1 << 30).limit(WRITE_LIMIT);
    let writer = Writer::start(&stuck.stream, body)?;
    writer.wait_stalled(Duration::from_secs(30));
    Ok((stuck, writer))
}

/// A whole conversation with `message` while another client is stuck, waiting up to
/// [`STUCK_LIMIT`] for each step (the server must drop the stuck one to get to it);
/// the echo must be the message.
fn expect_echo_behind_stuck(addr: SocketAddr, message: &[u8]) -> Result<(), Failure> {
    let mut next = net::connect(addr)?;
    next.limit = STUCK_LIMIT;
    let outcome = next
        .send(message)
        .and_then(|()| next.half_close())
        .and_then(|()| next.read_to_eof(1024));
    let got = outcome.map_err(|f| {
        f.during("a second client, while the first sends but never reads")
            .hint(format!(
                "send() to a client that never reads waits for ever: give each accepted \
             connection a send timeout (SO_SNDTIMEO, --send-timeout {STUCK_SEND_TIMEOUT} s \
             here), drop that client when a send() times out, and serve the next (the \
             grader waited {} s)",
                STUCK_LIMIT.as_secs()
            ))
    })?;
    ensure(got == message, || {
        Failure::new("the second client got the wrong echo")
            .sent_bytes(message)
            .got(show(&got))
    })
}

/// Kills the server `first` in the middle of a conversation: its side closes first, so
/// the connection lingers on its port (FIN_WAIT, then TIME_WAIT).
fn kill_mid_conversation(ctx: &mut Ctx, first: &Server) -> Result<(), Failure> {
    let mut conn = net::connect(first.addr)?;
    conn.send(b"x")?;
    conn.read_exact_bytes(1)?;
    ctx.proc(first.id).kill();
    let _ = conn.closes_within(Duration::from_secs(2));
    Ok(())
}

/// Polls (up to 5 s) until the listener on `port` has no connection waiting to be
/// accepted, twice in a row.
fn wait_accept_queue_empty(port: u16) -> bool {
    let mut empty_before = false;
    poll::holds(Duration::from_secs(5), Duration::from_millis(10), || {
        let empty = net::accept_queue(port) == Some(0);
        let twice = empty && empty_before;
        empty_before = empty;
        twice
    })
}

/// Polls (up to 5 s) the state of the server's side of the connection between
/// `server` and `client` (None: no such socket) until `wanted` holds.
fn wait_server_side(
    server: SocketAddr,
    client: SocketAddr,
    wanted: impl Fn(Option<u8>) -> bool,
) -> bool {
    poll::holds(Duration::from_secs(5), Duration::from_millis(5), || {
        wanted(sockdiag::connection_or_tables(server, client).map(|c| c.state))
    })
}

// ---------------------------------------------------------------------------------
// Helpers: the client side
// ---------------------------------------------------------------------------------

/// How the stand-in answers the `n`th request (from 1): pieces, sent [`PIECE_GAP`] apart.
type Answer = fn(usize, &[u8]) -> Vec<Vec<u8>>;

/// The grader's own server for the client checks: for each connection it reads the
/// request until the client half-closes, sends the answer and closes. What it saw on
/// each connection is the request it read, and whether the client half-closed.
fn stand_in(answer: Answer) -> Result<Peer, Failure> {
    let script = Script::new(vec![Step::ReadToEof, Step::Answer])
        .connections(usize::MAX)
        .pace(PIECE_GAP)
        .answer(answer);
    Peer::tcp_server(LOCALHOST_V4, script)
}

/// `answer 2: two\n`: numbered, so the order on the client's stdout shows.
fn numbered_answer(n: usize, request: &[u8]) -> Vec<Vec<u8>> {
    let line = request.strip_suffix(b"\n").unwrap_or(request);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    vec![[format!("answer {n}: ").as_bytes(), line, b"\n"].concat()]
}

const PIECES: [&str; 3] = ["this answer ", "comes in ", "three pieces\n"];

fn answer_in_pieces(_n: usize, _request: &[u8]) -> Vec<Vec<u8>> {
    PIECES.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// Runs the client against the stand-in with `stdin`, to its end.
fn run_client(ctx: &mut Ctx, stand_in: &Peer, stdin: &[u8]) -> Result<Finished, Failure> {
    ctx.run_client(&stand_in.port(), &[], stdin, CLIENT_LIMIT)
}

/// Whether the client sent `line` and its end of line (`\n`, or `\r\n` as in the notes).
fn is_line(request: &[u8], line: &[u8]) -> bool {
    request == [line, b"\n"].concat() || request == [line, b"\r\n"].concat()
}

fn exit_failure(status: ExitStatus, stderr: &str, when: &str) -> Failure {
    Failure::new(format!(
        "the client exited ({}) {when}",
        describe_status(status)
    ))
    .got(format!(
        "stderr: {}",
        stderr.lines().last().unwrap_or("(nothing)")
    ))
    .hint("an empty line or the end of the input ends the client normally, with status 0")
}

/// Polls the client's stdout until it is exactly `wanted` (false if the client exits
/// or `limit` passes first).
fn stdout_becomes(ctx: &mut Ctx, id: usize, wanted: &[u8], limit: Duration) -> bool {
    let became = poll::until(limit, Duration::from_millis(10), || {
        let client = ctx.proc(id);
        if client.stdout() == wanted {
            return Some(true);
        }
        // Once it has exited, its stdout is complete: no need to wait further.
        client.exited().map(|_| client.stdout() == wanted)
    });
    became == Some(true)
}

/// The failure for a prompt that is not (yet) on stdout.
fn prompt_failure(ctx: &mut Ctx, id: usize, problem: &str, expected: &[u8]) -> Failure {
    let client = ctx.proc(id);
    Failure::new(problem.to_string())
        .expected(format!("stdout: {}", show(expected)))
        .got(format!("stdout: {}", show(&client.stdout())))
}

// ---------------------------------------------------------------------------------
// The client checks
// ---------------------------------------------------------------------------------

fn client_prompt(ctx: &mut Ctx) -> Result<(), Failure> {
    let stand_in = stand_in(numbered_answer)?;
    let id = spawn_typed_into(ctx, &stand_in)?;
    expect_stdout(ctx, id, b"> ", &FIRST_PROMPT)?;
    type_input(ctx, id, b"hi\n")?;
    expect_stdout(ctx, id, b"> answer 1: hi\n> ", &NEXT_PROMPT)?;
    ends_with_its_input(ctx, id)
}

fn client_connection_per_line(ctx: &mut Ctx) -> Result<(), Failure> {
    let stand_in = stand_in(numbered_answer)?;
    let run = run_client(ctx, &stand_in, b"one\ntwo\nthree\n")?;
    let visits = stand_in.finish_all();
    expect_half_closed(&visits)?;
    expect_line_per_connection(&visits, &[b"one", b"two", b"three"])?;
    exited_cleanly(&run, "at the end of its input")?;
    expect_answers_in_order(&run.stdout_text(), &["one", "two", "three"])
}

fn client_reads_to_eof(ctx: &mut Ctx) -> Result<(), Failure> {
    let stand_in = stand_in(answer_in_pieces)?;
    let run = run_client(ctx, &stand_in, b"tell me more\n")?;
    expect_whole_answer(&run.stdout_text())?;
    exited_cleanly(&run, "at the end of its input")
}

fn client_decodes_text(ctx: &mut Ctx) -> Result<(), Failure> {
    let stand_in = stand_in(latin1_answer)?;
    let run = run_client(ctx, &stand_in, b"hello\n")?;
    let sent = format!(
        "the answer {} (Latin-1, not UTF-8), then close",
        show(LATIN1_ANSWER)
    );
    survives_latin1(&run, &sent)?;
    shows_replacement_characters(&run, &sent)?;
    warns_of_lossy_decoding(&run, &sent)
}

fn client_stops(ctx: &mut Ctx) -> Result<(), Failure> {
    let stand_in = stand_in(numbered_answer)?;
    let run = run_client(ctx, &stand_in, b"first\n\nnever sent\n")?;
    exited_cleanly(&run, "at an empty line")?;
    expect_only_first_line(&stand_in.finish_all())
}

fn client_refused(ctx: &mut Ctx) -> Result<(), Failure> {
    let port = net::free_port(LOCALHOST_V4).to_string();
    let run = ctx.run_client(&port, &[], b"hello\n", CLIENT_LIMIT)?;
    expect::clean_error(&run, &["refused"], 2)
        .map_err(|f| f.during(format!("nothing listens on port {port}")))
}

// ---------------------------------------------------------------------------------
// How the client checks do it: their verdicts
// ---------------------------------------------------------------------------------

/// How long the client may take to show a prompt or to end in `client-prompt`.
const PROMPT_LIMIT: Duration = Duration::from_secs(5);

/// What the client's stdout must become, in the words its failure shows.
struct Shown {
    problem: &'static str,
    hint: &'static str,
}

/// The prompt before the first line.
const FIRST_PROMPT: Shown = Shown {
    problem: "no `> ` prompt while the client waits for a line",
    hint: "print \"> \" before reading each line, and flush stdout: without a newline the \
           prompt stays in the buffer and the user types blind",
};

/// The answer to the first line and the prompt for the next.
const NEXT_PROMPT: Shown = Shown {
    problem: "after one line, no answer and new `> ` prompt",
    hint: "print the whole answer, then \"> \" again (flushed) before reading the next line",
};

/// Starts the client against the stand-in with its stdin left open, as when a person
/// types: a prompt that is not flushed never shows.
fn spawn_typed_into(ctx: &mut Ctx, stand_in: &Peer) -> Result<usize, Failure> {
    let port = stand_in.port();
    ctx.spawn_interactive(
        "client",
        &["client", "--host", "127.0.0.1", "--port", &port],
    )
}

/// Fails as `shown` says unless the client's stdout becomes exactly `wanted` within
/// [`PROMPT_LIMIT`].
fn expect_stdout(ctx: &mut Ctx, id: usize, wanted: &[u8], shown: &Shown) -> Result<(), Failure> {
    if stdout_becomes(ctx, id, wanted, PROMPT_LIMIT) {
        return Ok(());
    }
    Err(prompt_failure(ctx, id, shown.problem, wanted).hint(shown.hint))
}

/// Types `line` into the client's stdin, as a person would.
fn type_input(ctx: &mut Ctx, id: usize, line: &[u8]) -> Result<(), Failure> {
    ctx.proc(id).type_input(line).map_err(|e| {
        Failure::new(format!("could not type into the client's stdin: {e}"))
            .hint("the client exited before reading its input")
    })
}

/// Closes the client's stdin (Ctrl+D): it must then end, with status 0.
fn ends_with_its_input(ctx: &mut Ctx, id: usize) -> Result<(), Failure> {
    ctx.proc(id).close_input();
    match ctx.proc(id).wait_exit(PROMPT_LIMIT) {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(exit_failure(
            status,
            &ctx.proc(id).stderr_text(),
            "at the end of its input",
        )),
        None => Err(
            Failure::new("the client did not end at the end of its input")
                .hint("when reading stdin returns nothing (EOF, Ctrl+D), end the client"),
        ),
    }
}

/// Fails unless the client run ended with status 0; `when` says at what.
fn exited_cleanly(run: &Finished, when: &str) -> Result<(), Failure> {
    ensure(run.status.success(), || {
        exit_failure(run.status, &run.stderr, when)
    })
}

/// The requests the stand-in read, one per connection, for a report.
fn requests(visits: &[Seen]) -> String {
    let requests: Vec<String> = visits.iter().map(|v| show(&v.received)).collect();
    format!("requests: {}", requests.join(", "))
}

/// The client must have half-closed every connection after its line.
fn expect_half_closed(visits: &[Seen]) -> Result<(), Failure> {
    match visits.iter().find(|v| !v.eof) {
        Some(visit) => Err(Failure::new("the client never half-closed after its line")
            .got(format!("request {} and then nothing for 5 s", show(&visit.received)))
            .hint("after sending the line, shutdown(SHUT_WR): the server reads until that end-of-stream before it answers")),
        None => Ok(()),
    }
}

/// One connection per line of `lines` (typed in that order), each carrying its line.
fn expect_line_per_connection(visits: &[Seen], lines: &[&[u8]]) -> Result<(), Failure> {
    ensure(visits.len() == lines.len(), || {
        Failure::new(format!(
            "the grader's server saw {} connection(s) for 3 lines",
            visits.len()
        ))
        .sent("stdin \"one\\ntwo\\nthree\\n\"")
        .expected("3 connections, one line each")
        .got(requests(visits))
        .hint(
            "open a new connection (socket + connect) for every line: after shutdown(SHUT_WR) \
             a connection cannot carry another line, and the server has closed it anyway",
        )
    })?;
    for (visit, &line) in visits.iter().zip(lines) {
        ensure(is_line(&visit.received, line), || {
            Failure::new("a request was not the line typed")
                .compare(&[line, b"\n"].concat(), &visit.received)
                .hint("send the line and its \\n, nothing else, on its own connection")
        })?;
    }
    Ok(())
}

/// The numbered answers to `lines` must all be on stdout, in order.
fn expect_answers_in_order(stdout: &str, lines: &[&str]) -> Result<(), Failure> {
    let mut rest = stdout;
    for (n, line) in lines.iter().enumerate() {
        let answer = format!("answer {}: {line}\n", n + 1);
        let Some(at) = rest.find(&answer) else {
            return Err(Failure::new("the answers are not all on stdout, in order")
                .expected(format!("{answer:?} (after the earlier answers)"))
                .got(show(stdout.as_bytes()))
                .hint("print each answer as it came, in full"));
        };
        rest = &rest[at + answer.len()..];
    }
    Ok(())
}

/// The answer the stand-in sent in [`PIECES`] must be on stdout, whole.
fn expect_whole_answer(stdout: &str) -> Result<(), Failure> {
    let whole = PIECES.concat();
    ensure(stdout.contains(&whole), || {
        Failure::new("the client did not print the whole answer")
            .sent(format!(
                "an answer in 3 pieces, {} ms apart, then close: {whole:?}",
                PIECE_GAP.as_millis()
            ))
            .expected(format!("stdout containing {whole:?}"))
            .got(show(stdout.as_bytes()))
            .hint("one recv() is not the whole answer: keep calling recv() until it returns 0 (the server closed)")
    })
}

/// An answer in Latin-1 (`caf\xe9`) with a stray `\xff`: not UTF-8.
const LATIN1_ANSWER: &[u8] = b"caf\xe9 \xff ok\n";
/// How it must be shown: one U+FFFD for each invalid sequence.
const LATIN1_SHOWN: &str = "caf\u{FFFD} \u{FFFD} ok\n";

fn latin1_answer(_n: usize, _request: &[u8]) -> Vec<Vec<u8>> {
    vec![LATIN1_ANSWER.to_vec()]
}

/// The hint for a client that mishandles an answer that is not UTF-8.
const DECODE_HINT: &str = "the answer is bytes; to print it as text, decode it as UTF-8 on \
                           purpose, with a policy for invalid bytes: replace each invalid \
                           sequence with U+FFFD (the 'replace' error handler, a lossy \
                           conversion) and carry on, never fail or print the raw bytes";

/// The client must not fail on an answer that is not UTF-8 (`sent` says which).
fn survives_latin1(run: &Finished, sent: &str) -> Result<(), Failure> {
    ensure(run.status.success(), || {
        Failure::new(format!(
            "the client exited ({}) on an answer that is not UTF-8",
            describe_status(run.status)
        ))
        .sent(sent)
        .got(format!(
            "stderr: {}",
            run.stderr.lines().last().unwrap_or("(nothing)")
        ))
        .hint(DECODE_HINT)
    })
}

/// The client must show the Latin-1 answer as text, a U+FFFD for each invalid byte.
fn shows_replacement_characters(run: &Finished, sent: &str) -> Result<(), Failure> {
    let shown = LATIN1_SHOWN.as_bytes();
    ensure(run.stdout.windows(shown.len()).any(|w| w == shown), || {
        Failure::new("the client did not show the answer as text with U+FFFD for its invalid bytes")
            .sent(sent)
            .expected(format!("stdout containing {LATIN1_SHOWN:?}"))
            .got(show(&run.stdout))
            .hint(DECODE_HINT)
    })
}

/// The client must say on stderr that it replaced bytes which were not UTF-8.
fn warns_of_lossy_decoding(run: &Finished, sent: &str) -> Result<(), Failure> {
    ensure(run.stderr.to_lowercase().contains("utf"), || {
        Failure::new("the client replaced invalid bytes without a word on stderr")
            .sent(sent)
            .expected("one line on stderr saying the answer was not valid UTF-8")
            .got(format!("stderr: {:?}", run.stderr.trim()))
            .hint(
                "a lossy decode changes what the server sent: tell the user (one line on \
                 stderr naming UTF-8), so that a `\u{FFFD}` is not taken for the server's own",
            )
    })
}

/// The stand-in must have seen one connection only: the empty line after the first
/// ends the client.
fn expect_only_first_line(visits: &[Seen]) -> Result<(), Failure> {
    ensure(visits.len() == 1, || {
        Failure::new(format!(
            "the grader's server saw {} connection(s)",
            visits.len()
        ))
        .sent("stdin \"first\\n\\nnever sent\\n\"")
        .expected("1 connection (\"first\"); the empty line ends the client")
        .got(requests(visits))
        .hint("an empty line ends the client: stop before connecting")
    })
}
