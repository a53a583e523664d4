//! Lab 2 (tcp-client): the check table and the classroom demo.
//!
//! The program under test is a client, so the grader plays the server: a one-shot
//! listener in a thread of its own that records what the client sent, whether the
//! client half-closed, and answers as each check's script says (at once, in two pieces,
//! only after end-of-file, or never). The client must send its message (from
//! `--message` or stdin), half-close, read the reply until end-of-file and put exactly
//! those bytes on stdout, report its own ephemeral port, try every address `--host`
//! stands for (a comma-separated list gives several without DNS), and fail with one
//! clear line (not a hang, not a panic) when nothing listens, when the handshake never
//! completes and when the server never answers.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::grade::demo::{Demo, Voice};
use crate::grade::net::{self, LOCALHOST_V4, LOCALHOST_V6, show};
use crate::grade::peer::{self, Late, Peer, Script, Seen, Step};
use crate::grade::row;
use crate::grade::{Ctx, Failure, Finished, Lab, ensure, expect, netns, onlan};

pub static LAB: Lab = Lab {
    id: "lab2",
    slug: "tcp-client",
    title: "a TCP client that half-closes and reads until end-of-file",
    table: &[
        row("sends-message", sends_message),
        row("sends-stdin", sends_stdin),
        row("prints-reply", prints_reply).points(2),
        row("half-closes", half_closes).points(2),
        row("reads-until-eof", reads_until_eof).points(2),
        row("prints-local-port", prints_local_port),
        row("reaches-another-host", reaches_another_host).budget(30),
        row("resolves-names", resolves_names),
        row("tries-each-address", tries_each_address).points(2),
        row("all-addresses-fail", all_addresses_fail),
        row("ipv6", ipv6),
        row("refused", refused),
        row("connect-timeout", connect_timeout).budget(40),
        row("read-timeout", read_timeout).points(2).budget(40),
    ],
    words: include_str!("../../checks/lab2.toml"),
    demo: Some(demo),
    joined: OnceLock::new(),
};

/// The client's `--timeout` in checks where nothing should time out (per wait).
const CLIENT_TIMEOUT: &str = "3";
/// The client's `--timeout` in the checks that make it time out.
const SHORT_TIMEOUT: &str = "1";
/// How long a client run may take before the grader stops it.
const RUN_LIMIT: Duration = Duration::from_secs(10);
/// How long the grader's server waits for the client to connect, and to send.
const SERVER_LIMIT: Duration = Duration::from_secs(8);

// ---------------------------------------------------------------------------------
// The grader's server
// ---------------------------------------------------------------------------------

/// The grader's server: a TCP peer on `ip` that plays `steps` with its one client.
fn grader_server(ip: IpAddr, steps: Vec<Step>) -> Result<Peer, Failure> {
    Peer::tcp_server(ip, script(steps))
}

/// `steps` with the server's deadline. A server that did not get what it reads answers
/// nothing and holds the connection: the client's own timeout must get it out.
fn script(steps: Vec<Step>) -> Script {
    Script::new(steps)
        .limit(SERVER_LIMIT)
        .when_late(Late::Stall)
}

/// A server that reads the expected bytes and answers `reply` at once.
fn answering(expect: usize, reply: &[u8]) -> Vec<Step> {
    vec![
        Step::ReadBytes(expect),
        Step::Send(reply.to_vec()),
        Step::HalfClose,
    ]
}

// ---------------------------------------------------------------------------------
// Running the client
// ---------------------------------------------------------------------------------

/// `client --host HOST --port PORT --timeout T [extra...]`, run to its end.
fn run_client(
    ctx: &mut Ctx,
    host: &str,
    port: &str,
    timeout: &str,
    extra: &[&str],
    stdin: Option<Vec<u8>>,
) -> Result<Finished, Failure> {
    let mut args = vec![
        "client",
        "--host",
        host,
        "--port",
        port,
        "--timeout",
        timeout,
    ];
    args.extend_from_slice(extra);
    ctx.run("client", &args, stdin, RUN_LIMIT)
}

/// A short, one-line view of what the client printed on stderr.
fn stderr_summary(run: &Finished) -> String {
    let lines = run.stderr_lines();
    if lines.is_empty() {
        "nothing on stderr".into()
    } else {
        lines.join(" / ")
    }
}

/// The client must have exited with status 0.
fn exited_ok(run: &Finished, doing: &str) -> Result<(), Failure> {
    ensure(run.status.success(), || {
        let mut failure = Failure::new(format!("the client failed {doing}"))
            .expected("exit status 0 after printing the reply")
            .got(format!(
                "{}; stderr: {}",
                crate::grade::process::describe_status(run.status),
                stderr_summary(run)
            ));
        if run.stderr.to_lowercase().contains("time") {
            failure = failure.hint(
                "it timed out waiting: does it half-close (shutdown(Write)) after sending, \
                 so the server knows the request is complete?",
            );
        }
        failure
    })
}

/// The client's stdout must contain `reply` (exactness is `prints-reply`'s business).
fn printed(run: &Finished, reply: &[u8], what: &str) -> Result<(), Failure> {
    let found = run.stdout.windows(reply.len()).any(|w| w == reply);
    ensure(found, || {
        let mut failure =
            Failure::new(format!("stdout did not contain {what}")).compare(reply, &run.stdout);
        if !run.stdout.is_empty() && reply.starts_with(&run.stdout) {
            failure = failure.hint(
                "only the beginning arrived: one recv() returns whatever has come so far; \
                 keep calling it until it returns 0 (end-of-file)",
            );
        }
        failure
    })
}

/// The grader's server must have received exactly `message`.
fn received_exactly(seen: &Seen, message: &[u8], how: &str) -> Result<(), Failure> {
    if seen.peer.is_none() {
        return Err(
            Failure::new("the client never connected to the grader's server")
                .hint("connect() to the --host/--port you were given"),
        );
    }
    ensure(seen.received == message, || {
        let mut failure = Failure::new("the server did not receive the message exactly")
            .sent(how.to_string())
            .compare(message, &seen.received);
        if seen.received.len() < message.len() && message.starts_with(&seen.received) {
            failure = failure.hint(
                "part of the message is missing: one send() may take only part of a buffer; \
                 use write_all() (send until every byte is out)",
            );
        } else if seen.received.starts_with(message) {
            failure = failure.hint("send the bytes as given: add nothing (no newline)");
        }
        failure
    })
}

/// `127.0.0.1:54012` (or `[::1]:54012`) appears in `text`, not followed by a digit.
fn mentions_address(text: &str, addr: SocketAddr) -> bool {
    let needle = addr.to_string();
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

// ---------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------

fn sends_message(ctx: &mut Ctx) -> Result<(), Failure> {
    let message = b"lab2 says: hello, server";
    let server = grader_server(LOCALHOST_V4, answering(message.len(), b"ok\n"))?;
    let text = std::str::from_utf8(message).unwrap_or_default();
    run_client(
        ctx,
        "127.0.0.1",
        &server.port(),
        CLIENT_TIMEOUT,
        &["--message", text],
        None,
    )?;
    let seen = server.finish();
    received_exactly(&seen, message, &format!("--message {text:?}"))
}

fn sends_stdin(ctx: &mut Ctx) -> Result<(), Failure> {
    // Several lines, a NUL and a non-UTF-8 byte, longer than one small buffer.
    let mut message = Vec::new();
    for n in 0..150 {
        message.extend_from_slice(format!("line {n:03} of the message on stdin\n").as_bytes());
    }
    message.extend_from_slice(&[0x00, 0xff, b'e', b'n', b'd']);
    let server = grader_server(LOCALHOST_V4, answering(message.len(), b"ok\n"))?;
    run_client(
        ctx,
        "127.0.0.1",
        &server.port(),
        CLIENT_TIMEOUT,
        &[],
        Some(message.clone()),
    )?;
    let seen = server.finish();
    received_exactly(
        &seen,
        &message,
        &format!("{} bytes on stdin, no --message", message.len()),
    )
    .map_err(|f| f.or_hint("without --message, read stdin until end-of-file and send it all"))
}

fn prints_reply(ctx: &mut Ctx) -> Result<(), Failure> {
    let message = b"binary please";
    // A NUL, bytes that are not UTF-8, a CRLF, and no newline at the end.
    let reply: &[u8] = b"reply\x00\xff\xfe\r\nno newline at the end";
    let server = grader_server(LOCALHOST_V4, answering(message.len(), reply))?;
    let run = run_client(
        ctx,
        "127.0.0.1",
        &server.port(),
        CLIENT_TIMEOUT,
        &["--message", "binary please"],
        None,
    )?;
    drop(server.finish());
    exited_ok(&run, "after a complete reply")?;
    ensure(run.stdout == reply, || {
        let mut failure =
            Failure::new("stdout was not exactly the server's reply").compare(reply, &run.stdout);
        if run.stdout.windows(reply.len()).any(|w| w == reply) {
            failure = failure.hint(
                "stdout must carry the reply and nothing else: print status lines \
                 (connected from ..., byte counts) on stderr",
            );
        } else if run.stdout.len() != reply.len() || run.stdout.contains(&0xff) {
            failure = failure.hint(
                "write the reply's raw bytes to stdout (write_all), without decoding it as \
                 text or adding anything",
            );
        }
        failure
    })
}

fn half_closes(ctx: &mut Ctx) -> Result<(), Failure> {
    let reply = b"got your end-of-file, here is the answer\n";
    let script = vec![Step::ReadToEof, Step::Send(reply.to_vec()), Step::HalfClose];
    let server = grader_server(LOCALHOST_V4, script)?;
    let run = run_client(
        ctx,
        "127.0.0.1",
        &server.port(),
        CLIENT_TIMEOUT,
        &["--message", "answer me when I am done"],
        None,
    )?;
    let seen = server.finish();
    if run.status.success() && run.stdout.windows(reply.len()).any(|w| w == reply) {
        // What the message said is `sends-message`'s business; here only the FIN counts.
        return Ok(());
    }
    // The client's exit also ends its side, so the server may see end-of-file then: what
    // matters is that the client timed out (or never got the answer) while waiting.
    if !seen.eof || run.stderr.to_lowercase().contains("time") {
        return Err(Failure::new(
            "the server never got the client's end-of-file while the client waited for the reply",
        )
        .sent("a server that answers only after the client's end-of-file")
        .got(format!(
            "{}; client stderr: {}",
            crate::grade::process::describe_status(run.status),
            stderr_summary(&run)
        ))
        .hint(
            "after sending, call shutdown(Write): it sends your FIN (\"I am done sending\") \
             and keeps the reading half open for the reply",
        ));
    }
    printed(&run, reply, "the reply")?;
    exited_ok(&run, "after a complete reply")
}

fn reads_until_eof(ctx: &mut Ctx) -> Result<(), Failure> {
    let message = b"send it in pieces";
    let first = b"first piece\n".to_vec();
    // Far more than any one recv() buffer, plain text.
    let second: Vec<u8> = (0..4000)
        .flat_map(|n| format!("second piece, line {n:04}\n").into_bytes())
        .collect();
    let script = vec![
        Step::ReadBytes(message.len()),
        Step::SendPieces(vec![first.clone(), second.clone()]),
        Step::HalfClose,
    ];
    let server = grader_server(LOCALHOST_V4, script)?;
    let run = run_client(
        ctx,
        "127.0.0.1",
        &server.port(),
        CLIENT_TIMEOUT,
        &["--message", "send it in pieces"],
        None,
    )?;
    drop(server.finish());
    let whole = [first.as_slice(), second.as_slice()].concat();
    printed(&run, &whole, "the whole reply (sent in two pieces)").map_err(|f| {
        f.sent(format!(
            "the reply in two pieces: {}, then (once the client had read it) {} more bytes, then end-of-file",
            show(&first),
            second.len()
        ))
    })?;
    exited_ok(&run, "after a complete reply")
}

fn prints_local_port(ctx: &mut Ctx) -> Result<(), Failure> {
    let message = b"who am I";
    let server = grader_server(LOCALHOST_V4, answering(message.len(), b"ok\n"))?;
    let server_addr = server.addr.clone();
    let run = run_client(
        ctx,
        "127.0.0.1",
        &server.port(),
        CLIENT_TIMEOUT,
        &["--message", "who am I"],
        None,
    )?;
    let seen = server.finish();
    let Some(peer) = seen.peer else {
        return Err(Failure::new(
            "the client never connected to the grader's server",
        ));
    };
    let everything = format!("{}\n{}", run.stdout_text(), run.stderr);
    ensure(mentions_address(&everything, peer), || {
        Failure::new(format!(
            "the client never printed its own address {peer}, where the server saw it come from"
        ))
        .expected(format!(
            "a line like `connected from {peer} to {server_addr}`"
        ))
        .got(format!("stderr: {}", stderr_summary(&run)))
        .hint(
            "after connect(), getsockname() (socket.local_addr()) tells which address and \
             ephemeral port the kernel picked: print them",
        )
    })
}

/// The client, run with `--host HOST --message MESSAGE`, must reach the grader's server
/// on `ip`, print its `reply` and exit 0. `missed` explains a client that never arrived.
fn reaches_server(
    ctx: &mut Ctx,
    ip: IpAddr,
    host: &str,
    message: &str,
    reply: &[u8],
    missed: Failure,
) -> Result<(), Failure> {
    let server = grader_server(ip, answering(message.len(), reply))?;
    let run = run_client(
        ctx,
        host,
        &server.port(),
        CLIENT_TIMEOUT,
        &["--message", message],
        None,
    )?;
    let seen = server.finish();
    if seen.peer.is_none() {
        return Err(missed.got(format!("stderr: {}", stderr_summary(&run))));
    }
    printed(&run, reply, "the reply")?;
    exited_ok(&run, &format!("with --host {host}"))
}

fn reaches_another_host(ctx: &mut Ctx) -> Result<(), Failure> {
    let lan = onlan::lan()?;
    let beta = SocketAddr::new(IpAddr::V4(netns::BETA_IP), 5000);
    let listener = lan
        .beta
        .listen(beta, 8)
        .map_err(|e| Failure::new(format!("the grader could not listen on beta's {beta}: {e}")))?;
    let message = "hello beta";
    let reply = b"beta here\n";
    let server = Peer::tcp_server_on(
        listener,
        Script::new(answering(message.len(), reply)).limit(SERVER_LIMIT),
    )?;
    let host = netns::BETA_IP.to_string();
    let id = onlan::spawn_inside(
        ctx,
        &lan.alpha,
        "client",
        &[
            "client",
            "--host",
            &host,
            "--port",
            "5000",
            "--timeout",
            CLIENT_TIMEOUT,
            "--message",
            message,
        ],
    )?;
    let run = ctx.finish(id, RUN_LIMIT)?;
    let seen = server.finish();
    if seen.peer.is_none() {
        return Err(Failure::new(format!(
            "run on host alpha with --host {host}, the client never reached the server on beta"
        ))
        .got(format!("stderr: {}", stderr_summary(&run)))
        .hint("connect() to the address --host gives, whatever it is: not always loopback"));
    }
    printed(&run, reply, "the reply from beta")?;
    exited_ok(&run, &format!("with --host {host} (host beta)"))
}

fn resolves_names(ctx: &mut Ctx) -> Result<(), Failure> {
    let missed = Failure::new("with --host localhost the client never connected")
        .hint("resolve the host name (ToSocketAddrs / getaddrinfo) instead of parsing it as an IP address; try every address it gives");
    reaches_server(
        ctx,
        LOCALHOST_V4,
        "localhost",
        "by name",
        b"found me by name\n",
        missed,
    )
}

fn tries_each_address(ctx: &mut Ctx) -> Result<(), Failure> {
    // Nothing listens on 127.0.0.2 (a loopback address too), so the first try is refused.
    let missed = Failure::new("the client never reached the server on the second address")
        .sent("--host 127.0.0.2,127.0.0.1 (nothing listens on 127.0.0.2; the server is on 127.0.0.1)")
        .hint("split --host on commas, resolve each name, and try every address in turn: a new socket and connect() for each, until one succeeds");
    let reply = b"reached on the second address\n";
    reaches_server(
        ctx,
        LOCALHOST_V4,
        "127.0.0.2,127.0.0.1",
        "second time lucky",
        reply,
        missed,
    )
}

fn all_addresses_fail(ctx: &mut Ctx) -> Result<(), Failure> {
    let port = net::free_port(LOCALHOST_V4).to_string();
    let run = run_client(
        ctx,
        "127.0.0.2,127.0.0.3",
        &port,
        CLIENT_TIMEOUT,
        &["--message", "anyone?"],
        None,
    )?;
    expect::clean_error(&run, &["refused"], 3)
        .map_err(|f| f.during("--host 127.0.0.2,127.0.0.3 with nothing listening"))?;
    let text = run.stderr.clone();
    let missing: Vec<&str> = ["127.0.0.2", "127.0.0.3"]
        .into_iter()
        .filter(|a| !text.contains(a))
        .collect();
    ensure(missing.is_empty(), || {
        Failure::new("the error does not say which addresses were tried")
            .sent("--host 127.0.0.2,127.0.0.3 with nothing listening")
            .expected("stderr naming both 127.0.0.2 and 127.0.0.3")
            .got(stderr_summary(&run))
            .hint(format!(
                "try every address, remember the last error, and name the ones tried (missing: {})",
                missing.join(", ")
            ))
    })
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let missed = Failure::new("with --host ::1 the client never connected")
        .hint("create each socket with the domain of the address it dials (Domain::for_address), not always IPv4");
    reaches_server(
        ctx,
        LOCALHOST_V6,
        "::1",
        "over six",
        b"IPv6 works\n",
        missed,
    )
}

fn refused(ctx: &mut Ctx) -> Result<(), Failure> {
    let port = net::free_port(LOCALHOST_V4).to_string();
    let run = run_client(
        ctx,
        "127.0.0.1",
        &port,
        CLIENT_TIMEOUT,
        &["--message", "anyone?"],
        None,
    )?;
    expect::clean_error(&run, &["refused"], 2)
        .map_err(|f| f.during(format!("nothing listens on 127.0.0.1:{port}")))
}

/// A listener whose accept queue is full (backlog 0, one connection never accepted):
/// the kernel drops further SYNs, so a connect() there never completes.
fn full_listener() -> Result<(Socket, Vec<TcpStream>, SocketAddr), Failure> {
    let grader = |e: std::io::Error| Failure::new(format!("the grader could not set up: {e}"));
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(grader)?;
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    listener.bind(&any.into()).map_err(grader)?;
    listener.listen(0).map_err(grader)?;
    let addr = listener
        .local_addr()
        .map_err(grader)?
        .as_socket()
        .ok_or_else(|| Failure::new("the grader's listener has no IP address"))?;
    let mut fillers = Vec::new();
    // Each probe either joins the queue or, once it is full, is dropped and times out.
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(stream) => fillers.push(stream),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                return Ok((listener, fillers, addr));
            }
            Err(e) => return Err(grader(e)),
        }
    }
    Err(Failure::new(
        "the grader could not fill a listen queue to make connect() hang",
    ))
}

fn connect_timeout(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_listener, _fillers, addr) = full_listener()?;
    let port = addr.port().to_string();
    let run = run_client(
        ctx,
        "127.0.0.1",
        &port,
        SHORT_TIMEOUT,
        &["--message", "hello?"],
        None,
    )
    .map_err(|f| {
        f.during("a server whose handshake never completes, --timeout 1")
            .hint("connect() can wait for minutes: use connect_timeout(addr, timeout)")
    })?;
    expect::clean_error(&run, &["timed out", "timeout", "time out"], 2)
        .map_err(|f| f.during("a server whose handshake never completes, --timeout 1"))
}

fn read_timeout(ctx: &mut Ctx) -> Result<(), Failure> {
    let message = b"are you there?";
    let script = vec![Step::ReadBytes(message.len()), Step::Stall];
    let server = grader_server(LOCALHOST_V4, script)?;
    let run = run_client(
        ctx,
        "127.0.0.1",
        &server.port(),
        SHORT_TIMEOUT,
        &["--message", "are you there?"],
        None,
    )
    .map_err(|f| {
        f.during("a server that accepts but never answers, --timeout 1")
            .hint("give the socket a receive timeout (SO_RCVTIMEO) so recv() gives up instead of waiting forever")
    })?;
    drop(server.finish());
    expect::clean_error(&run, &["timed out", "timeout", "time out"], 2)
        .map_err(|f| f.during("a server that accepts but never answers, --timeout 1"))
}

// ---------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------

/// The demo's server: for each client, read until end-of-file, then answer in two
/// pieces (the second once the client has read the first) and close. Says what it
/// does as `[server]` lines; `tables` are the TCP tables its connections are in.
fn demo_server(listener: TcpListener, stop: Receiver<()>, voice: Voice, tables: Vec<PathBuf>) {
    let say = |text: String| voice.line("server", text);
    let server_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let _ = listener.set_nonblocking(true);
    loop {
        match stop.recv_timeout(Duration::from_millis(10)) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Ok((mut stream, peer)) = listener.accept() else {
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(SERVER_LIMIT));
        say(format!(
            "accepted a client from {peer}; reading until its end-of-file"
        ));
        let mut request = Vec::new();
        // At most 1 MiB: a client that streams for ever gets no more of the grader.
        if (&stream)
            .take(1024 * 1024)
            .read_to_end(&mut request)
            .is_err()
        {
            say(format!("no end-of-file from {peer}; closing"));
            continue;
        }
        say(format!(
            "end-of-file after {} bytes: {}; answering in two pieces",
            request.len(),
            show(&request)
        ));
        let _ = stream.write_all(b"you said:\n");
        if peer::wait_until_read_in(&tables, server_port, peer.port(), &stop, SERVER_LIMIT) {
            let mut shout = request.to_ascii_uppercase();
            if !shout.ends_with(b"\n") {
                shout.push(b'\n');
            }
            let _ = stream.write_all(&shout);
        }
        say(format!("close(): our FIN to {peer}"));
    }
}

fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let wire = demo.private_network();
    let listener = demo.listen(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let port = listener.local_addr()?.port();
    let port_text = port.to_string();
    let (stop, stopped) = mpsc::channel::<()>();
    let (voice, tables) = (demo.voice(), demo.tcp_tables());
    let server = std::thread::spawn(move || demo_server(listener, stopped, voice, tables));
    let limit = Duration::from_secs(15);

    demo.say(&format!(
        "A server listens on 127.0.0.1:{port}. It answers only after the client's \
         end-of-file, in two pieces"
    ));
    demo.say(
        "The client: socket, connect (the handshake: SYN, SYN-ACK, ACK), send, \
         shutdown(SHUT_WR) (its FIN, while it keeps reading), recv until 0",
    );
    demo.run(
        "client",
        &[
            "client",
            "--port",
            &port_text,
            "--message",
            "hello from the client",
        ],
        b"",
        limit,
    )?;
    let filter = format!("sport = :{port} or dport = :{port}");
    demo.say(
        "The close: the client's FIN, acknowledged by the server (here on its first reply \
         piece), then the server's FIN and the client's last ACK. The client closed first, \
         so its side now waits in TIME-WAIT",
    );
    demo.ss(&["-tan", &filter]);

    demo.say("The message can come from stdin instead of --message");
    demo.run(
        "client",
        &["client", "--port", &port_text],
        b"two lines\nfrom stdin\n",
        limit,
    )?;

    demo.say(
        "--host 127.0.0.2,localhost: the first address refuses (a RST), the client tries the next",
    );
    demo.run(
        "client",
        &[
            "client",
            "--host",
            "127.0.0.2,localhost",
            "--port",
            &port_text,
            "--message",
            "second address",
        ],
        b"",
        limit,
    )?;

    drop(stop);
    let _ = server.join();
    let closed = if wire {
        port.to_string()
    } else {
        net::free_port(LOCALHOST_V4).to_string()
    };
    demo.say(&format!(
        "Nothing listens on port {closed} (any more): the SYN is answered with a RST, \
         connection refused, one clear line, exit 1"
    ));
    demo.run(
        "client",
        &["client", "--port", &closed, "--message", "anyone?"],
        b"",
        limit,
    )?;
    Ok(())
}
