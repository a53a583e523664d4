//! Lab 5 (unix): the check table and the classroom demo.
//!
//! Unix domain sockets: the address is a file. Programs take `--path P` instead of
//! `--host/--port`, and every path the grader gives lives in the check's scratch folder
//! (removed when the check ends).
//!
//! The stream server must create a socket file at the path (owner-only by default,
//! `--mode` to change), echo each client until it half-closes, print each peer's pid,
//! uid and gid (SO_PEERCRED), remove its file on SIGINT and SIGTERM, replace a stale
//! file, refuse a live server's path ("in use") and a regular file (never deleted), and
//! refuse a path longer than `sun_path` holds. The stream client sends stdin,
//! half-closes and prints the reply. The datagram pair echoes datagram by datagram; the
//! datagram client binds a path of its own (or it could get no reply) and removes it.

use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::grade::ctx::START_LIMIT;
use crate::grade::net::{self, show};
use crate::grade::peer::{Origin, Peer, Script, Seen, Step};
use crate::grade::process::describe_status;
use crate::grade::row;
use crate::grade::{Ctx, Failure, Finished, Lab, ensure, expect, files, poll};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
    id: "lab5",
    slug: "unix",
    title: "Unix domain sockets, where the address is a file",
    table: &[
        row("listens-on-path", listens_on_path),
        row("echoes", echoes).points(2),
        row("echoes-large", echoes_large),
        row("serves-in-turn", serves_in_turn),
        row("owner-only", owner_only),
        row("mode-option", mode_option),
        row("peer-credentials", peer_credentials).points(2),
        row("removes-on-sigint", removes_on_sigint),
        row("removes-on-sigterm", removes_on_sigterm),
        row("removes-stale", removes_stale).points(2),
        row("live-in-use", live_in_use),
        row("keeps-regular-file", keeps_regular_file),
        row("path-too-long", path_too_long),
        row("client-sends-stdin", client_sends_stdin).points(2),
        row("client-no-server", client_no_server),
        row("dgram-echo", dgram_echo).points(2),
        row("dgram-unnamed-sender", dgram_unnamed_sender),
        row("dgram-stuck-client", dgram_stuck_client).budget(30),
        row("dgram-removes-on-signal", dgram_removes_on_signal),
        row("dgram-client", dgram_client).points(2),
        row("dgram-client-cleanup", dgram_client_cleanup),
    ],
};

/// Size of Linux's `sun_path`: paths must be shorter, for the closing NUL.
const SUN_PATH_BYTES: usize = 108;
/// How long the grader waits for one connect, read or write.
const IO_LIMIT: Duration = Duration::from_secs(5);
/// How long a client run may take before the grader stops it.
const RUN_LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------
// The programs under test, and the grader's side of the socket
// ---------------------------------------------------------------------------------

/// What `/proc/net/unix` says about a socket bound to `path`: (type, listening).
/// Type 1 is SOCK_STREAM, 2 SOCK_DGRAM; only a live socket is listed, not a stale file.
fn bound_socket(path: &Path) -> Option<(u32, bool)> {
    let wanted = path.to_str()?;
    let table = std::fs::read_to_string("/proc/thread-self/net/unix").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || fields[7] != wanted {
            return None;
        }
        let flags = u32::from_str_radix(fields[3], 16).ok()?;
        let kind = u32::from_str_radix(fields[4], 16).ok()?;
        Some((kind, flags & 0x10000 != 0))
    })
}

/// Starts `role --path PATH extra...` and waits until a socket of the right kind is
/// bound there (listening, for the stream server).
fn start(ctx: &mut Ctx, role: &str, path: &Path, extra: &[&str]) -> Result<usize, Failure> {
    let path_text = path.to_string_lossy().into_owned();
    let mut args = vec![role, "--path", &path_text];
    args.extend_from_slice(extra);
    let id = ctx.spawn(role, &args, None)?;
    let stream = role == "server";
    let ready = || match bound_socket(path) {
        Some((1, listening)) if stream => listening,
        Some((2, _)) if !stream => true,
        _ => false,
    };
    let late = Failure::new(format!(
        "no {} socket was bound at {path_text} within {} s of starting",
        if stream {
            "listening stream"
        } else {
            "datagram"
        },
        START_LIMIT.as_secs()
    ))
    .hint(if stream {
        "socket(AF_UNIX, SOCK_STREAM), bind() to --path, then listen()"
    } else {
        "socket(AF_UNIX, SOCK_DGRAM), then bind() to --path"
    });
    let what = format!("its socket was ready at {path_text}");
    ctx.wait_ready(id, role, &what, ready, late)?;
    Ok(id)
}

/// Connects to the stream socket at `path` within [`IO_LIMIT`].
fn connect(path: &Path) -> Result<UnixStream, Failure> {
    let fail = |err: std::io::Error| {
        let failure = Failure::new(format!("could not connect to {}: {err}", path.display()));
        match err.raw_os_error() {
            Some(libc::ENOENT) => failure.hint("there is no file at that path: bind() creates it"),
            Some(libc::ECONNREFUSED) => {
                failure.hint("the file is there but nothing listens on it: call listen()")
            }
            _ => failure,
        }
    };
    let address = SockAddr::unix(path).map_err(fail)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        match socket.connect(&address) {
            Ok(()) => break,
            // A Unix listener's queue is full: it is not accept()ing.
            Err(err) if err.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                return Err(
                    fail(err).hint("the server's accept queue stays full: does it accept()?")
                );
            }
            Err(err) => return Err(fail(err)),
        }
    }
    socket.set_nonblocking(false).map_err(fail)?;
    Ok(socket.into())
}

/// One client's visit: connect, send `data` (from a second thread, so a large echo
/// cannot deadlock), half-close, read everything until end-of-file.
fn visit(path: &Path, data: &[u8]) -> Result<Vec<u8>, Failure> {
    let stream = connect(path)?;
    let sender = stream
        .try_clone()
        .map_err(|e| Failure::new(format!("the grader could not dup its socket: {e}")))?;
    let sending = Peer::unix_on(
        sender,
        Script::new(vec![Step::Send(data.to_vec()), Step::HalfClose]),
    );
    let read = read_echo(&stream, data);
    if read.is_err() {
        // Frees the sender if the server stopped reading.
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    let write_error = sending.finish().write_error;
    let received = read?;
    if let Some(err) = write_error {
        return Err(Failure::new(format!("sending to the server failed: {err}"))
            .got(show(&received))
            .hint("keep reading the whole time the client sends, until it half-closes"));
    }
    Ok(received)
}

/// Reads the echo of `data` until end-of-file (20 s at most, 5 s of silence at most).
fn read_echo(mut reader: &UnixStream, data: &[u8]) -> Result<Vec<u8>, Failure> {
    let _ = reader.set_read_timeout(Some(IO_LIMIT));
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + IO_LIMIT * 4;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(n) if received.len() + n > 2 * data.len() + 64 * 1024 => {
                return Err(Failure::new(format!(
                    "the server sent back more than {} bytes for {} sent",
                    received.len() + n,
                    data.len()
                ))
                .hint("an echo sends back exactly what it received, once"));
            }
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => {
                let silent = matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
                let problem = match silent {
                    true => format!(
                        "no more bytes and no end-of-file within {} s",
                        IO_LIMIT.as_secs()
                    ),
                    false => format!("error while reading the echo: {err}"),
                };
                return Err(Failure::new(problem)
                    .sent_bytes(data)
                    .got(show(&received))
                    .hint(
                        "read until recv() returns 0 (the client's half-close), sending back \
                         everything read; then shut down or close the connection",
                    ));
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::new("the echo never ended").got(show(&received)));
        }
    }
}

/// [`visit`] and require the exact echo.
fn expect_echo(path: &Path, data: &[u8]) -> Result<(), Failure> {
    let got = visit(path, data)?;
    expect::echoed(data, &got, "the reply is not the bytes the client sent").map_err(|f| {
        f.hint("send back every byte received, unchanged, until the client's end-of-stream")
    })
}

/// A path in the check's scratch folder.
fn scratch_path(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.scratch().join(name)
}

/// The stream server on `server.sock` in the scratch folder, with `extra` arguments,
/// once it listens: its id and its path.
fn serve(ctx: &mut Ctx, extra: &[&str]) -> Result<(usize, PathBuf), Failure> {
    let path = scratch_path(ctx, "server.sock");
    let id = start(ctx, "server", &path, extra)?;
    Ok((id, path))
}

/// What is at `path`, not following a link; a failure when nothing is.
fn metadata(path: &Path) -> Result<std::fs::Metadata, Failure> {
    std::fs::symlink_metadata(path)
        .map_err(|e| Failure::new(format!("no file at {}: {e}", path.display())))
}

/// `server --path PATH` (labelled `label`), run to its end: a server expected to give up.
fn run_server(ctx: &mut Ctx, label: &str, path: &Path) -> Result<Finished, Failure> {
    let path_text = path.to_string_lossy().into_owned();
    let args = ["server", "--path", &path_text];
    ctx.run(label, &args, None, Duration::from_secs(10))
}

/// `server --path PATH` must give up with a clean error naming one of `words`.
fn server_refuses(ctx: &mut Ctx, path: &Path, words: &[&str], during: &str) -> Result<(), Failure> {
    let run = run_server(ctx, "server", path)?;
    expect::clean_error(&run, words, 2).map_err(|f| f.during(during))
}

/// The designs that get a blocked accept()/recvfrom() loop out on a signal.
const SIGNAL_DESIGNS: &str = "a flag set by the handler is not enough: a blocking accept() \
    or recvfrom() is restarted after the handler returns (SA_RESTART; Python always retries, \
    PEP 475), so the loop never looks at the flag. Designs that work: a self-pipe (the \
    handler writes a byte to a pipe; poll() the socket and the pipe), signalfd() with the \
    signals blocked, Python's signal.set_wakeup_fd() with select(), a thread in sigwait(), \
    or a timeout on accept() (SO_RCVTIMEO / settimeout) so the loop checks the flag often; \
    then remove the socket file and exit";

/// Sends `signal` to the program and requires it to exit and its file to be gone.
fn expect_removed_on(ctx: &mut Ctx, id: usize, path: &Path, signal: Signal) -> Result<(), Failure> {
    ctx.proc(id).signal(signal);
    let Some(status) = ctx.proc(id).wait_exit(IO_LIMIT) else {
        return Err(Failure::new(format!(
            "the program did not exit within {} s of {signal}",
            IO_LIMIT.as_secs()
        ))
        .hint(SIGNAL_DESIGNS));
    };
    let left = std::fs::symlink_metadata(path).is_ok();
    ensure(!left, || {
        Failure::new(format!(
            "the socket file is still there after {signal} ({})",
            describe_status(status)
        ))
        .expected(format!("{} removed", path.display()))
        .hint(format!(
            "the default action of {signal} kills the process before it can unlink(): catch \
             the signal and remove the file before exiting. {SIGNAL_DESIGNS}"
        ))
    })
}

// ---------------------------------------------------------------------------------
// Stream server checks
// ---------------------------------------------------------------------------------

fn listens_on_path(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, path) = serve(ctx, &[])?;
    ensure(metadata(&path)?.file_type().is_socket(), || {
        Failure::new("the file at --path is not a socket")
            .hint("bind() creates the socket file itself: don't create the file first")
    })
}

fn echoes(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, path) = serve(ctx, &[])?;
    expect_echo(&path, b"hello over a path\n\x00\xff not text\n")
}

fn echoes_large(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, path) = serve(ctx, &[])?;
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let got = visit(&path, &data)?;
    ensure(got == data, || {
        Failure::new("1 MiB did not come back whole")
            .expected(format!("{} bytes, the same", data.len()))
            .got(format!("{} bytes", got.len()))
            .hint(ONE_RECV_IS_NOT_ALL)
    })
}

/// Why a large echo comes back short.
const ONE_RECV_IS_NOT_ALL: &str = "one recv() returns whatever has arrived: loop recv() and \
    send-all until recv() returns 0";

fn serves_in_turn(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, path) = serve(ctx, &[])?;
    for n in 1..=3 {
        let client = format!("client {n} of 3");
        expect_echo(&path, format!("{client}\n").as_bytes()).map_err(|f| {
            f.during(&client)
                .or_hint("after one client, go back to accept() the next")
        })?;
    }
    Ok(())
}

/// Fails unless the file at `path` has exactly the permission bits `wanted`.
fn expect_mode(path: &Path, wanted: u32, hint: &str) -> Result<(), Failure> {
    let mode = metadata(path)?.permissions().mode() & 0o777;
    ensure(mode == wanted, || {
        Failure::new("the socket file has the wrong permissions")
            .expected(format!("mode {wanted:04o}"))
            .got(format!("mode {mode:04o}"))
            .hint(hint.to_string())
    })
}

fn owner_only(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, path) = serve(ctx, &[])?;
    let hint = "bind() creates the file with 0777 minus the umask: set a umask first (and/or \
                chmod after bind) so that only the owner may connect by default";
    expect_mode(&path, 0o600, hint)
}

fn mode_option(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, path) = serve(ctx, &["--mode", "0660"])?;
    let hint = "parse --mode as octal and give the file exactly those bits (chmod after bind)";
    expect_mode(&path, 0o660, hint)
}

fn peer_credentials(ctx: &mut Ctx) -> Result<(), Failure> {
    let (id, path) = serve(ctx, &[])?;
    expect_echo(&path, b"who am I?\n")?;
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    expect_credentials(ctx, id, (std::process::id(), uid, gid))
}

/// Polls the server's stdout (2 s at most) until it names the grader's pid, uid and
/// gid, the credentials SO_PEERCRED gives for the grader's connection.
fn expect_credentials(
    ctx: &mut Ctx,
    id: usize,
    (pid, uid, gid): (u32, u32, u32),
) -> Result<(), Failure> {
    let wanted = [("pid", pid), ("uid", uid), ("gid", gid)];
    let (mut stdout, mut missing) = (String::new(), Vec::new());
    let mentioned = poll::holds(Duration::from_secs(2), Duration::from_millis(10), || {
        stdout = ctx.proc(id).stdout_text();
        missing = wanted
            .iter()
            .filter(|(name, value)| !names_value(&stdout, name, *value))
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        missing.is_empty()
    });
    ensure(mentioned, || {
        Failure::new(format!(
            "stdout never mentioned the client's {}",
            missing.join(", ")
        ))
        .expected(format!(
            "a line like `client pid {pid} (uid {uid}, gid {gid}) connected`"
        ))
        .got(show(stdout.as_bytes()))
        .hint(
            "getsockopt(SO_PEERCRED) on the accepted socket gives the peer's pid, uid and \
             gid (nix: sockopt::PeerCredentials): print them, not your own",
        )
    })
}

fn removes_on_sigint(ctx: &mut Ctx) -> Result<(), Failure> {
    let (id, path) = serve(ctx, &[])?;
    expect_removed_on(ctx, id, &path, Signal::SIGINT)
}

fn removes_on_sigterm(ctx: &mut Ctx) -> Result<(), Failure> {
    let (id, path) = serve(ctx, &[])?;
    expect_removed_on(ctx, id, &path, Signal::SIGTERM)
}

fn removes_stale(ctx: &mut Ctx) -> Result<(), Failure> {
    let path = scratch_path(ctx, "server.sock");
    leave_stale_file(&path)?;
    start(ctx, "server", &path, &[]).map_err(|f| {
        f.during("a stale socket file was at --path")
            .or_hint(STALE_FILE)
    })?;
    expect_echo(&path, b"after the stale file\n")
}

/// How a server tells a stale socket file from a live one, and replaces it.
const STALE_FILE: &str = "bind() fails with EADDRINUSE: connect() to the path, and if that \
    is refused (ECONNREFUSED) nobody is there: unlink() the file and bind() again";

/// Leaves at `path` what a server that died without unlink() leaves: its socket file,
/// with nothing behind it.
fn leave_stale_file(path: &Path) -> Result<(), Failure> {
    UnixListener::bind(path)
        .map(drop)
        .map_err(|e| Failure::new(format!("the grader could not bind: {e}")))
}

fn live_in_use(ctx: &mut Ctx) -> Result<(), Failure> {
    let (first, path) = serve(ctx, &[])?;
    let second = run_server(ctx, "second server", &path)?;
    expect::clean_error(&second, &["in use"], 2)
        .map_err(|f| f.during("a second server on the path of a live one"))?;
    ctx.ensure_running(first, "when a second server tried its path")?;
    expect_echo(&path, b"still the first server\n").map_err(|f| {
        f.during("the first server, after the second one gave up")
            .or_hint(LIVE_IS_NOT_STALE)
    })
}

/// Why a second server must leave a live server's file alone.
const LIVE_IS_NOT_STALE: &str = "the second server must not delete a live server's file: only \
    a file that refuses connect() is stale";

/// A server on a fresh path must work, so the error checks below cannot pass by
/// failing for every path.
fn working_server(ctx: &mut Ctx) -> Result<(), Failure> {
    let path = scratch_path(ctx, "working.sock");
    start(ctx, "server", &path, &[]).map_err(|f| f.during("on a free path"))?;
    expect_echo(&path, b"ok\n").map_err(|f| f.during("on a free path"))
}

fn keeps_regular_file(ctx: &mut Ctx) -> Result<(), Failure> {
    working_server(ctx)?;
    let path = scratch_path(ctx, "precious.txt");
    let contents = b"precious data, not a socket\n";
    files::write_new(&path, contents)
        .map_err(|e| Failure::new(format!("the grader could not write a file: {e}")))?;
    let run = run_server(ctx, "server", &path)?;
    left_alone(&path, contents)?;
    let words = ["not a socket", "regular file", "exists", "is a file"];
    expect::clean_error(&run, &words, 2).map_err(|f| f.during("a regular file at --path"))
}

/// Fails unless the file at `path` still holds `contents`.
fn left_alone(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    let now = files::read_capped(path).unwrap_or_default();
    ensure(now == contents, || {
        Failure::new("the regular file at --path was deleted or changed")
            .expected(format!("{} left alone", path.display()))
            .hint(
                "only a socket file that refuses connect() is stale: never unlink() any other file",
            )
    })
}

fn path_too_long(ctx: &mut Ctx) -> Result<(), Failure> {
    let name_len = longest_name(ctx)?;
    let longest = scratch_path(ctx, &"L".repeat(name_len));
    start(ctx, "server", &longest, &[]).map_err(|f| {
        f.during("with a 107-byte path, the longest sun_path holds")
            .or_hint("107 bytes plus the closing NUL fit in sun_path's 108")
    })?;
    expect_echo(&longest, b"long but legal\n")?;
    let too_long = scratch_path(ctx, &"X".repeat(name_len + 1));
    let during = "a 108-byte path (sun_path holds 107 and a NUL)";
    server_refuses(ctx, &too_long, &["too long", "long"], during)
}

/// The longest name a file in the scratch folder may have for its path to fit in
/// `sun_path` with the closing NUL.
fn longest_name(ctx: &Ctx) -> Result<usize, Failure> {
    let scratch_len = ctx.scratch().as_os_str().len();
    ensure(scratch_len + 2 < SUN_PATH_BYTES - 1, || {
        Failure::new("the grader's scratch folder path is too long for this check")
            .hint("set TMPDIR to a shorter folder")
    })?;
    Ok(SUN_PATH_BYTES - 1 - scratch_len - 1)
}

// ---------------------------------------------------------------------------------
// Stream client checks
// ---------------------------------------------------------------------------------

fn client_sends_stdin(ctx: &mut Ctx) -> Result<(), Failure> {
    let stdin = b"first line\nsecond \xff line\n";
    let (run, seen) = client_against(ctx, answers_after_eof(), stdin)?;
    let request = served(seen).map_err(|f| f.during("the grader's server").hint(HALF_CLOSE))?;
    ensure(request == stdin, || {
        Failure::new("the client did not send stdin byte for byte").compare(stdin, &request)
    })?;
    let expected = [b"you sent: ".as_slice(), stdin].concat();
    let problem = "the client's stdout is not exactly the reply";
    let hint = "read until end-of-file and write exactly those bytes to stdout, then exit 0";
    printed(&run, &expected, problem).map_err(|f| f.hint(hint))
}

/// Why the grader's server got no end-of-file.
const HALF_CLOSE: &str = "after sending stdin, shutdown(SHUT_WR): the server reads until \
    end-of-file before it answers";

/// The grader's stream server: it answers `you sent: <request>` only after the
/// client's end-of-file.
fn answers_after_eof() -> Script {
    Script::new(vec![Step::ReadToEof, Step::Answer])
        .limit(RUN_LIMIT)
        .answer(|_, request| vec![[b"you sent: ".as_slice(), request].concat()])
}

/// `client --path PATH` with `stdin`, run to its end.
fn run_client(ctx: &mut Ctx, path: &Path, stdin: &[u8]) -> Result<Finished, Failure> {
    let args = ["client", "--path", &path.to_string_lossy()];
    ctx.run("client", &args, Some(stdin.to_vec()), RUN_LIMIT)
}

/// The client run against the grader's stream server playing `script`: the run, and
/// what the server saw.
fn client_against(
    ctx: &mut Ctx,
    script: Script,
    stdin: &[u8],
) -> Result<(Finished, Seen), Failure> {
    let path = scratch_path(ctx, "grader.sock");
    let server = Peer::unix_server(&path, script)?;
    let run = run_client(ctx, &path, stdin);
    let seen = server.finish();
    Ok((run?, seen))
}

/// Fails with `problem` unless the client exited 0 having printed exactly `expected`.
fn printed(run: &Finished, expected: &[u8], problem: &str) -> Result<(), Failure> {
    ensure(run.status.success() && run.stdout == expected, || {
        Failure::new(format!("{problem} ({})", describe_status(run.status)))
            .compare(expected, &run.stdout)
    })
}

/// The request the grader's stream server read until the client's end-of-file, or why
/// it got none.
fn served(seen: Seen) -> Result<Vec<u8>, Failure> {
    if !seen.connected {
        Err(Failure::new("no client connected"))
    } else if seen.received.len() > net::RECEIVE_CAP {
        Err(Failure::new("the client sent more than the grader keeps"))
    } else if !seen.eof {
        Err(Failure::new(format!(
            "no end-of-file from the client after {}",
            show(&seen.received)
        )))
    } else {
        Ok(seen.received)
    }
}

fn client_no_server(ctx: &mut Ctx) -> Result<(), Failure> {
    let path = scratch_path(ctx, "nobody-here.sock");
    let run = run_client(ctx, &path, b"hello?\n")?;
    expect::clean_error(&run, &["no such file", "not exist", "not found"], 2)
        .map_err(|f| f.during("no socket file at --path"))
}

// ---------------------------------------------------------------------------------
// Datagram checks
// ---------------------------------------------------------------------------------

/// The grader's datagram socket, bound to a path of its own so replies can reach it.
fn grader_dgram(path: &Path) -> Result<UnixDatagram, Failure> {
    let socket = UnixDatagram::bind(path)
        .map_err(|e| Failure::new(format!("the grader could not bind {}: {e}", path.display())))?;
    let _ = socket.set_read_timeout(Some(IO_LIMIT));
    let _ = socket.set_write_timeout(Some(IO_LIMIT));
    Ok(socket)
}

/// The next datagram for the grader's socket, and its sender's path; `after` says what
/// the grader did before, if none comes.
fn receive(socket: &UnixDatagram, after: &str) -> Result<(Vec<u8>, Option<PathBuf>), Failure> {
    let mut buffer = vec![0u8; 70_000];
    match socket.recv_from(&mut buffer) {
        Ok((n, from)) => Ok((
            buffer[..n].to_vec(),
            from.as_pathname().map(Path::to_path_buf),
        )),
        Err(e) => Err(Failure::new(format!(
            "no reply within {} s after {after} ({e})",
            IO_LIMIT.as_secs()
        ))
        .hint(
            "recvfrom() returns the sender's path: sendto() the reply to it (every datagram, \
             the empty one too)",
        )),
    }
}

/// The datagram server on `dgram.sock` in the scratch folder, once it is bound: its id
/// and its path.
fn serve_dgram(ctx: &mut Ctx) -> Result<(usize, PathBuf), Failure> {
    let path = scratch_path(ctx, "dgram.sock");
    let id = start(ctx, "dgram-server", &path, &[])?;
    Ok((id, path))
}

/// Sends one datagram from `socket` to `to`.
fn send(socket: &UnixDatagram, data: &[u8], to: &Path) -> Result<(), Failure> {
    socket
        .send_to(data, to)
        .map(drop)
        .map_err(|e| Failure::new(format!("the grader could not send: {e}")))
}

/// Sends `data` from the grader's socket `me` to the server at `to`, and returns the
/// reply; if none comes, the failure says what came `after` and gives `hint`.
fn ask(
    me: &UnixDatagram,
    (data, to): (&[u8], &Path),
    after: &str,
    hint: &str,
) -> Result<Vec<u8>, Failure> {
    send(me, data, to)?;
    receive(me, after)
        .map(|(reply, _)| reply)
        .map_err(|f| f.hint(hint))
}

/// Sends every datagram back to back, then reads one reply for each, each of which
/// must come from the server's path.
fn burst(me: &UnixDatagram, datagrams: &[&[u8]], server: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    for datagram in datagrams {
        send(me, datagram, server)?;
    }
    let mut got = Vec::new();
    for datagram in datagrams {
        let (reply, from) = receive(me, &format!("sending {}", show(datagram)))?;
        ensure(from.as_deref() == Some(server), || {
            Failure::new("a reply did not come from the server's path")
                .expected(server.display().to_string())
                .got(format!("{from:?}"))
        })?;
        got.push(reply);
    }
    Ok(got)
}

/// The datagrams as the report shows them, in a row.
fn shown<T: AsRef<[u8]>>(datagrams: &[T]) -> String {
    datagrams
        .iter()
        .map(|d| show(d.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dgram_echo(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, server) = serve_dgram(ctx)?;
    let me = grader_dgram(&scratch_path(ctx, "grader.sock"))?;
    let datagrams: [&[u8]; 3] = [b"first", b"", b"the third one"];
    let got = burst(&me, &datagrams, &server)?;
    ensure(got == datagrams, || {
        Failure::new("the replies do not match the datagrams one for one")
            .sent("\"first\", \"\" (empty), \"the third one\", back to back")
            .got(shown(&got))
            .hint("one recvfrom(), one sendto() of exactly those bytes: never join or split datagrams")
    })
}

fn dgram_unnamed_sender(ctx: &mut Ctx) -> Result<(), Failure> {
    let (id, server) = serve_dgram(ctx)?;
    let unnamed = UnixDatagram::unbound()
        .map_err(|e| Failure::new(format!("the grader could not make a socket: {e}")))?;
    send(&unnamed, b"no return address", &server)?;
    let me = grader_dgram(&scratch_path(ctx, "grader.sock"))?;
    let after = "a datagram from an unnamed socket, then one from a named one";
    let reply = ask(&me, (b"and now?", &server), after, UNNAMED_SENDER)?;
    ctx.ensure_running(id, "after a datagram from an unnamed socket")?;
    ensure(reply == b"and now?", || {
        Failure::new("the reply to the named socket is wrong").compare(b"and now?", &reply)
    })
}

/// What a server does with a datagram from a socket that never bound a path.
const UNNAMED_SENDER: &str = "a sender that never bound a path has no address: recvfrom() \
    returns an unnamed one and sendto() it fails. Report it and go on serving";

/// How many datagrams the stuck client sends: more than any receive queue of unread
/// datagrams holds (net.unix.max_dgram_qlen is 10 by default, 512 at most).
const STUCK_DATAGRAMS: usize = 600;

fn dgram_stuck_client(ctx: &mut Ctx) -> Result<(), Failure> {
    let (id, server) = serve_dgram(ctx)?;
    let stuck = grader_dgram(&scratch_path(ctx, "stuck.sock"))?;
    let sent = flood(&stuck, &server)?;
    let me = grader_dgram(&scratch_path(ctx, "grader.sock"))?;
    let after = format!("{sent} datagrams from a client that never reads its replies");
    let reply = ask(&me, (b"am I served?", &server), &after, NEVER_BLOCK)?;
    ctx.ensure_running(id, "after a client that never reads")?;
    drop(stuck);
    ensure(reply == b"am I served?", || {
        Failure::new("the reply to the second client is wrong")
            .expected(show(b"am I served?"))
            .got(show(&reply))
    })
}

/// Why one client that never reads must not stop the server serving the others.
const NEVER_BLOCK: &str = "a client that never reads fills its receive queue; a blocking \
    sendto() to it then waits for ever and nobody else is served. Send replies with \
    MSG_DONTWAIT (or a non-blocking socket) and drop the reply when the queue is full \
    (EAGAIN)";

/// Plays the stuck client from `stuck`: sends and sends, never reads its replies, so
/// its queue fills and a sendto() to it blocks (unless the server says MSG_DONTWAIT).
/// Returns how many datagrams went out ([`STUCK_DATAGRAMS`], or fewer within
/// [`IO_LIMIT`]).
fn flood(stuck: &UnixDatagram, server: &Path) -> Result<usize, Failure> {
    let _ = stuck.set_nonblocking(true);
    let mut sent = 0;
    let deadline = Instant::now() + IO_LIMIT;
    while sent < STUCK_DATAGRAMS && Instant::now() < deadline {
        match stuck.send_to(b"I never read my replies", server) {
            Ok(_) => sent += 1,
            // The server's own queue is full: it is busy (or stuck). Let it work.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => {
                return Err(Failure::new(format!("the grader could not send: {e}")));
            }
        }
    }
    Ok(sent)
}

fn dgram_removes_on_signal(ctx: &mut Ctx) -> Result<(), Failure> {
    let (id, path) = serve_dgram(ctx)?;
    expect_removed_on(ctx, id, &path, Signal::SIGTERM)
}

/// Every datagram the grader's datagram server received, with the sender's path
/// (None for an unnamed sender).
type Received = Vec<(Vec<u8>, Option<PathBuf>)>;

/// The grader's datagram server: replies `R:<data>` to each sender that has a path,
/// and records (data, sender path).
fn grader_dgram_server(path: &Path) -> Result<Peer, Failure> {
    let script = Script::new(Vec::new()).answer(|_, data| vec![[b"R:".as_slice(), data].concat()]);
    Peer::unix_dgram(path, None, script)
}

/// What the grader's datagram server received: (data, sender path) pairs.
fn received(seen: Seen) -> Received {
    let sender = |from: Option<Origin>| match from {
        Some(Origin::Path(path)) => Some(path),
        _ => None,
    };
    seen.datagrams
        .into_iter()
        .map(|(data, from)| (data, sender(from)))
        .collect()
}

/// Runs `dgram-client --path <grader's server>` with `stdin`; returns the run and what
/// the grader's server saw.
fn run_dgram_client(ctx: &mut Ctx, stdin: &[u8]) -> Result<(Finished, Received), Failure> {
    let server = grader_dgram_server(&scratch_path(ctx, "grader.sock"))?;
    let path_text = server.addr.path();
    let run = ctx.run(
        "dgram-client",
        &["dgram-client", "--path", &path_text],
        Some(stdin.to_vec()),
        RUN_LIMIT,
    );
    let seen = received(server.finish());
    // Whatever the client left behind is the grader's to tidy (outside the scratch
    // folder too), once the check has looked.
    Ok((run?, seen))
}

/// Removes the socket files a datagram client left (after the check looked at them).
fn tidy(seen: &Received) {
    for path in seen.iter().filter_map(|(_, p)| p.as_ref()) {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn dgram_client(ctx: &mut Ctx) -> Result<(), Failure> {
    let (run, seen) = run_dgram_client(ctx, b"x\ny y\n")?;
    tidy(&seen);
    all_named(&seen)?;
    let said = "\"x\" then \"y y\" (one datagram per line, newline removed)";
    lines_sent(&seen, &[b"x", b"y y"], said)?;
    let problem = "the client's stdout is not the replies, one per line";
    printed(&run, b"R:x\nR:y y\n", problem)
}

/// Fails unless the client's datagrams are `expected`, a datagram for each stdin line;
/// `said` is how the report says `expected`.
fn lines_sent(seen: &Received, expected: &[&[u8]], said: &str) -> Result<(), Failure> {
    let data: Vec<&[u8]> = seen.iter().map(|(d, _)| d.as_slice()).collect();
    ensure(data == expected, || {
        Failure::new("the datagrams are not the stdin lines")
            .expected(said)
            .got(shown(&data))
    })
}

/// Fails unless the client sent datagrams, every one from a path of its own (the
/// server could not reply to the others).
fn all_named(seen: &Received) -> Result<(), Failure> {
    ensure(
        !seen.is_empty() && seen.iter().all(|(_, p)| p.is_some()),
        || {
            Failure::new("the client's datagrams came from an unnamed socket")
                .got(format!(
                    "{} datagram(s), none with a return address",
                    seen.len()
                ))
                .hint(
                    "a Unix datagram socket has no address until it binds one: bind() a path of \
                 your own before sendto(), or the server cannot reply",
                )
        },
    )
}

fn dgram_client_cleanup(ctx: &mut Ctx) -> Result<(), Failure> {
    let (run, seen) = run_dgram_client(ctx, b"bye\n")?;
    let own: Vec<PathBuf> = seen.iter().filter_map(|(_, p)| p.clone()).collect();
    let left = still_there(&own);
    tidy(&seen);
    exchanged_from_own_path(&run, own.len())?;
    none_left(&left)
}

/// The paths among `paths` where something still is (before the grader tidies).
fn still_there(paths: &[PathBuf]) -> Vec<&PathBuf> {
    paths
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect()
}

/// Fails unless the client left none of its own socket files behind.
fn none_left(left: &[&PathBuf]) -> Result<(), Failure> {
    ensure(left.is_empty(), || {
        Failure::new("the client's own socket file is still there after it exited")
            .got(left[0].display().to_string())
            .hint("unlink() the path you bound before exiting (on errors too)")
    })
}

/// Fails unless the client exited 0 having sent from a path of its own (`named`
/// datagrams with a return address).
fn exchanged_from_own_path(run: &Finished, named: usize) -> Result<(), Failure> {
    ensure(run.status.success() && named > 0, || {
        Failure::new(format!(
            "the client did not finish its exchange from a path of its own ({})",
            describe_status(run.status)
        ))
        .got(format!("{named} datagram(s) with a return address"))
        .hint("bind() a path, send, receive the reply, then unlink() the path")
    })
}

/// Whether `text` says `name` then `value`, as in `pid 42`, `PID: 42` or `uid=1000`: the
/// name as a word in any case, at most three other characters that are not digits, and
/// the value as a whole number.
fn names_value(text: &str, name: &str, value: u32) -> bool {
    let text = text.to_ascii_lowercase();
    let (name, value) = (name.to_ascii_lowercase(), value.to_string());
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(&name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        if before.is_some_and(is_word) {
            return false;
        }
        let after = &text[at + name.len()..];
        let gap = after
            .chars()
            .take_while(|c| !c.is_ascii_digit())
            .take(4)
            .count();
        if gap > 3 {
            return false;
        }
        let rest = &after[after
            .char_indices()
            .nth(gap)
            .map_or(after.len(), |(i, _)| i)..];
        rest.strip_prefix(&value)
            .is_some_and(|tail| !tail.chars().next().is_some_and(is_word))
    })
}

#[cfg(test)]
mod tests {
    use super::names_value;

    #[test]
    fn a_name_and_its_value_are_found_in_any_usual_shape() {
        for text in [
            "pid 42",
            "PID: 42",
            "my pid=42\n",
            "Pid->42.",
            "(pid42)",
            "pid: x42",
        ] {
            assert!(names_value(text, "pid", 42), "{text}");
        }
        for text in ["pid 421", "pid 4", "rapid 42", "pid is 42", "ppid 42"] {
            assert!(!names_value(text, "pid", 42), "{text}");
        }
    }
}
