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

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::grade::net::{self, LOCALHOST_V4, LOCALHOST_V6, show};
use crate::grade::netns::{Host, Lan};
use crate::grade::peer::{Addr, Late, Peer, Script, Seen, Step};
use crate::grade::row;
use crate::grade::{Ctx, Failure, Finished, Lab, ensure, expect, netns, onlan};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
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

/// A server that reads the expected bytes, then never answers and holds the connection.
fn silent_server(expect: usize) -> Result<Peer, Failure> {
    grader_server(LOCALHOST_V4, vec![Step::ReadBytes(expect), Step::Stall])
}

/// The server on host beta (port 5000) of a two-host network, playing `steps`. Unlike
/// the loopback servers it closes when the client is late: the client runs on alpha,
/// where the grader cannot hold it.
fn beta_server(lan: &Lan, steps: Vec<Step>) -> Result<Peer, Failure> {
    let beta = SocketAddr::new(IpAddr::V4(netns::BETA_IP), 5000);
    let listener = lan
        .beta
        .listen(beta, 8)
        .map_err(|e| Failure::new(format!("the grader could not listen on beta's {beta}: {e}")))?;
    Peer::tcp_server_on(listener, Script::new(steps).limit(SERVER_LIMIT))
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

// ---------------------------------------------------------------------------------
// Running the client
// ---------------------------------------------------------------------------------

/// One run of the client under test, as data: `client --host H --port P --timeout T
/// [--message M]`, with `stdin` as its standard input, run here or inside a host of a
/// two-host network.
struct Client<'a> {
    host: &'a str,
    timeout: &'a str,
    message: Option<&'a str>,
    stdin: Option<Vec<u8>>,
    /// Where the grader's server listens: an address `host` stands for.
    server_ip: IpAddr,
    /// The host the client runs in (none: this machine's loopback).
    inside: Option<&'a Host>,
}

/// What one run showed: the client's exit and output, what the grader's server saw,
/// and where that server listened.
struct Exchange {
    run: Finished,
    seen: Seen,
    server: Addr,
}

impl<'a> Client<'a> {
    /// The client sending `--message MESSAGE` to 127.0.0.1, with a timeout that nothing
    /// should reach.
    fn says(message: &'a str) -> Self {
        Client {
            host: "127.0.0.1",
            timeout: CLIENT_TIMEOUT,
            message: Some(message),
            stdin: None,
            server_ip: LOCALHOST_V4,
            inside: None,
        }
    }

    /// The client sending what it reads on stdin (no `--message`).
    fn reads(stdin: Vec<u8>) -> Self {
        Client {
            message: None,
            stdin: Some(stdin),
            ..Client::says("")
        }
    }

    /// `--host HOST` instead of 127.0.0.1.
    fn host(self, host: &'a str) -> Self {
        Client { host, ..self }
    }

    /// The grader's server listens on `ip` (which `--host` must stand for).
    fn server_on(self, server_ip: IpAddr) -> Self {
        Client { server_ip, ..self }
    }

    /// `--timeout TIMEOUT`: the checks that want the client to give up say `1`.
    fn timeout(self, timeout: &'a str) -> Self {
        Client { timeout, ..self }
    }

    /// Runs the client inside `host` instead of on this machine.
    fn inside(self, host: &'a Host) -> Self {
        Client {
            inside: Some(host),
            ..self
        }
    }

    /// How many bytes the client sends: what the grader's server reads before answering.
    fn sends(&self) -> usize {
        match (self.message, &self.stdin) {
            (Some(message), _) => message.len(),
            (None, stdin) => stdin.as_ref().map_or(0, Vec::len),
        }
    }

    /// The client's command line, dialling `port`.
    fn args<'b>(&'b self, port: &'b str) -> Vec<&'b str> {
        let mut args = vec![
            "client",
            "--host",
            self.host,
            "--port",
            port,
            "--timeout",
            self.timeout,
        ];
        if let Some(message) = self.message {
            args.extend(["--message", message]);
        }
        args
    }

    /// Runs the client to its end (stopped after [`RUN_LIMIT`]), dialling `port`.
    fn run_to(mut self, ctx: &mut Ctx, port: &str) -> Result<Finished, Failure> {
        let stdin = self.stdin.take();
        match self.inside {
            Some(host) => {
                let id = onlan::spawn_inside(ctx, host, "client", &self.args(port))?;
                ctx.finish(id, RUN_LIMIT)
            }
            None => ctx.run("client", &self.args(port), stdin, RUN_LIMIT),
        }
    }

    /// Runs the client against a port of 127.0.0.1 where nothing listens; returns the
    /// run and the port.
    fn run_to_closed_port(self, ctx: &mut Ctx) -> Result<(Finished, String), Failure> {
        let port = net::free_port(LOCALHOST_V4).to_string();
        Ok((self.run_to(ctx, &port)?, port))
    }

    /// Runs the client against `server`, then stops the server: an error is the
    /// client's run's, never the server's.
    fn against_server(self, ctx: &mut Ctx, server: Peer) -> Result<Exchange, Failure> {
        let addr = server.addr.clone();
        let run = self.run_to(ctx, &server.port())?;
        Ok(Exchange {
            run,
            seen: server.finish(),
            server: addr,
        })
    }

    /// Runs the client against the grader's server playing `steps`.
    fn against(self, ctx: &mut Ctx, steps: Vec<Step>) -> Result<Exchange, Failure> {
        let server = grader_server(self.server_ip, steps)?;
        self.against_server(ctx, server)
    }

    /// Runs the client against a server that reads what the client sends and answers
    /// `reply` at once.
    fn answered(self, ctx: &mut Ctx, reply: &[u8]) -> Result<Exchange, Failure> {
        let steps = answering(self.sends(), reply);
        self.against(ctx, steps)
    }

    /// Runs the client against a server that reads what the client sends and answers
    /// in `pieces`, each once the client has read the one before.
    fn answered_in_pieces(self, ctx: &mut Ctx, pieces: &[&[u8]]) -> Result<Exchange, Failure> {
        let pieces = pieces.iter().map(|piece| piece.to_vec()).collect();
        let steps = vec![
            Step::ReadBytes(self.sends()),
            Step::SendPieces(pieces),
            Step::HalfClose,
        ];
        self.against(ctx, steps)
    }
}

// ---------------------------------------------------------------------------------
// What the client must have done
// ---------------------------------------------------------------------------------

/// A short, one-line view of what the client printed on stderr.
fn stderr_summary(run: &Finished) -> String {
    let lines = run.stderr_lines();
    if lines.is_empty() {
        "nothing on stderr".into()
    } else {
        lines.join(" / ")
    }
}

/// Whether the client's stderr speaks of time (a timeout, most likely).
fn speaks_of_time(run: &Finished) -> bool {
    run.stderr.to_lowercase().contains("time")
}

/// Whether `needle` occurs in `haystack` (`needle` is never empty here).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
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
        if speaks_of_time(run) {
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
    ensure(contains(&run.stdout, reply), || {
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

/// The client printed `reply` (`what` names it) and exited 0 (`doing` says when).
fn replied(run: &Finished, reply: &[u8], what: &str, doing: &str) -> Result<(), Failure> {
    printed(run, reply, what)?;
    exited_ok(run, doing)
}

/// The client's stdout must be exactly `reply`, and nothing else.
fn printed_exactly(run: &Finished, reply: &[u8]) -> Result<(), Failure> {
    ensure(run.stdout == reply, || {
        let mut failure =
            Failure::new("stdout was not exactly the server's reply").compare(reply, &run.stdout);
        if contains(&run.stdout, reply) {
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

/// The client reached the grader's server, or `missed` says it never did (with the
/// client's stderr).
fn arrived(seen: &Seen, run: &Finished, missed: Failure) -> Result<(), Failure> {
    if seen.peer.is_none() {
        return Err(missed.got(format!("stderr: {}", stderr_summary(run))));
    }
    Ok(())
}

/// Against a server that answers only after the client's end-of-file, the client got
/// `reply` and exited 0. What the message said is `sends-message`'s business; here
/// only the FIN counts.
fn half_closed(run: &Finished, seen: &Seen, reply: &[u8]) -> Result<(), Failure> {
    let answered = run.status.success() && contains(&run.stdout, reply);
    // The client's exit also ends its side, so the server may see end-of-file then: what
    // matters is that the client timed out (or never got the answer) while waiting.
    let waited_in_vain = !seen.eof || speaks_of_time(run);
    ensure(answered || !waited_in_vain, || {
        Failure::new(
            "the server never got the client's end-of-file while the client waited for the reply",
        )
        .sent("a server that answers only after the client's end-of-file")
        .got(format!(
            "{}; client stderr: {}",
            crate::grade::process::describe_status(run.status),
            stderr_summary(run)
        ))
        .hint(
            "after sending, call shutdown(Write): it sends your FIN (\"I am done sending\") \
             and keeps the reading half open for the reply",
        )
    })?;
    replied(run, reply, "the reply", "after a complete reply")
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

/// The client printed (on stdout or stderr) the address the server saw it come from.
fn printed_own_address(exchange: &Exchange) -> Result<(), Failure> {
    let Exchange { run, seen, server } = exchange;
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
        .expected(format!("a line like `connected from {peer} to {server}`"))
        .got(format!("stderr: {}", stderr_summary(run)))
        .hint(
            "after connect(), getsockname() (socket.local_addr()) tells which address and \
             ephemeral port the kernel picked: print them",
        )
    })
}

/// Run with `--host 127.0.0.2,127.0.0.3` and nothing listening, the client's error names
/// both addresses it tried.
fn named_both_addresses(run: &Finished) -> Result<(), Failure> {
    let missing: Vec<&str> = ["127.0.0.2", "127.0.0.3"]
        .into_iter()
        .filter(|a| !run.stderr.contains(a))
        .collect();
    ensure(missing.is_empty(), || {
        Failure::new("the error does not say which addresses were tried")
            .sent("--host 127.0.0.2,127.0.0.3 with nothing listening")
            .expected("stderr naming both 127.0.0.2 and 127.0.0.3")
            .got(stderr_summary(run))
            .hint(format!(
                "try every address, remember the last error, and name the ones tried (missing: {})",
                missing.join(", ")
            ))
    })
}

/// The client's run against a server that `during` describes, with `--timeout 1`, must
/// end in one clear line about the timeout; a run the grader had to stop gets `hint`.
fn gave_up(run: Result<Finished, Failure>, during: &str, hint: &str) -> Result<(), Failure> {
    let run = run.map_err(|f| f.during(during).hint(hint))?;
    expect::clean_error(&run, &["timed out", "timeout", "time out"], 2)
        .map_err(|f| f.during(during))
}

/// The client, run as `client` says, must reach the grader's server, print its `reply`
/// and exit 0. `missed` explains a client that never arrived.
fn reaches_server(
    ctx: &mut Ctx,
    client: Client,
    reply: &[u8],
    missed: Failure,
) -> Result<(), Failure> {
    let doing = format!("with --host {}", client.host);
    let exchange = client.answered(ctx, reply)?;
    arrived(&exchange.seen, &exchange.run, missed)?;
    replied(&exchange.run, reply, "the reply", &doing)
}

/// Several lines, a NUL and a non-UTF-8 byte, longer than one small buffer.
fn stdin_message() -> Vec<u8> {
    let mut message = Vec::new();
    for n in 0..150 {
        message.extend_from_slice(format!("line {n:03} of the message on stdin\n").as_bytes());
    }
    message.extend_from_slice(&[0x00, 0xff, b'e', b'n', b'd']);
    message
}

/// What the grader's server did in `reads-until-eof`, for the report.
fn in_two_pieces(first: &[u8], second: &[u8]) -> String {
    format!(
        "the reply in two pieces: {}, then (once the client had read it) {} more bytes, then end-of-file",
        show(first),
        second.len()
    )
}

/// Why a client run on alpha with `--host HOST` (beta's address) never arrived.
fn never_reached_beta(host: &str) -> Failure {
    Failure::new(format!(
        "run on host alpha with --host {host}, the client never reached the server on beta"
    ))
    .hint("connect() to the address --host gives, whatever it is: not always loopback")
}

/// Far more than any one recv() buffer, plain text.
fn long_reply() -> Vec<u8> {
    (0..4000)
        .flat_map(|n| format!("second piece, line {n:04}\n").into_bytes())
        .collect()
}

// ---------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------

fn sends_message(ctx: &mut Ctx) -> Result<(), Failure> {
    let message = "lab2 says: hello, server";
    let exchange = Client::says(message).answered(ctx, b"ok\n")?;
    let how = format!("--message {message:?}");
    received_exactly(&exchange.seen, message.as_bytes(), &how)
}

fn sends_stdin(ctx: &mut Ctx) -> Result<(), Failure> {
    let message = stdin_message();
    let exchange = Client::reads(message.clone()).answered(ctx, b"ok\n")?;
    let how = format!("{} bytes on stdin, no --message", message.len());
    received_exactly(&exchange.seen, &message, &how)
        .map_err(|f| f.or_hint("without --message, read stdin until end-of-file and send it all"))
}

fn prints_reply(ctx: &mut Ctx) -> Result<(), Failure> {
    // A NUL, bytes that are not UTF-8, a CRLF, and no newline at the end.
    let reply: &[u8] = b"reply\x00\xff\xfe\r\nno newline at the end";
    let exchange = Client::says("binary please").answered(ctx, reply)?;
    exited_ok(&exchange.run, "after a complete reply")?;
    printed_exactly(&exchange.run, reply)
}

fn half_closes(ctx: &mut Ctx) -> Result<(), Failure> {
    let reply = b"got your end-of-file, here is the answer\n";
    let server = vec![Step::ReadToEof, Step::Send(reply.to_vec()), Step::HalfClose];
    let exchange = Client::says("answer me when I am done").against(ctx, server)?;
    half_closed(&exchange.run, &exchange.seen, reply)
}

fn reads_until_eof(ctx: &mut Ctx) -> Result<(), Failure> {
    let (first, second): (&[u8], &[u8]) = (b"first piece\n", &long_reply());
    let exchange = Client::says("send it in pieces").answered_in_pieces(ctx, &[first, second])?;
    let whole = [first, second].concat();
    let what = "the whole reply (sent in two pieces)";
    printed(&exchange.run, &whole, what).map_err(|f| f.sent(in_two_pieces(first, second)))?;
    exited_ok(&exchange.run, "after a complete reply")
}

fn prints_local_port(ctx: &mut Ctx) -> Result<(), Failure> {
    let exchange = Client::says("who am I").answered(ctx, b"ok\n")?;
    printed_own_address(&exchange)
}

fn reaches_another_host(ctx: &mut Ctx) -> Result<(), Failure> {
    let lan = onlan::lan()?;
    let (host, reply) = (netns::BETA_IP.to_string(), b"beta here\n");
    let client = Client::says("hello beta").host(&host).inside(&lan.alpha);
    let server = beta_server(&lan, answering(client.sends(), reply))?;
    let exchange = client.against_server(ctx, server)?;
    arrived(&exchange.seen, &exchange.run, never_reached_beta(&host))?;
    let doing = format!("with --host {host} (host beta)");
    replied(&exchange.run, reply, "the reply from beta", &doing)
}

fn resolves_names(ctx: &mut Ctx) -> Result<(), Failure> {
    let missed = Failure::new("with --host localhost the client never connected")
        .hint("resolve the host name (ToSocketAddrs / getaddrinfo) instead of parsing it as an IP address; try every address it gives");
    let client = Client::says("by name").host("localhost");
    reaches_server(ctx, client, b"found me by name\n", missed)
}

fn tries_each_address(ctx: &mut Ctx) -> Result<(), Failure> {
    // Nothing listens on 127.0.0.2 (a loopback address too), so the first try is refused.
    let missed = Failure::new("the client never reached the server on the second address")
        .sent("--host 127.0.0.2,127.0.0.1 (nothing listens on 127.0.0.2; the server is on 127.0.0.1)")
        .hint("split --host on commas, resolve each name, and try every address in turn: a new socket and connect() for each, until one succeeds");
    let client = Client::says("second time lucky").host("127.0.0.2,127.0.0.1");
    reaches_server(ctx, client, b"reached on the second address\n", missed)
}

fn all_addresses_fail(ctx: &mut Ctx) -> Result<(), Failure> {
    let client = Client::says("anyone?").host("127.0.0.2,127.0.0.3");
    let (run, _) = client.run_to_closed_port(ctx)?;
    expect::clean_error(&run, &["refused"], 3)
        .map_err(|f| f.during("--host 127.0.0.2,127.0.0.3 with nothing listening"))?;
    named_both_addresses(&run)
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let missed = Failure::new("with --host ::1 the client never connected")
        .hint("create each socket with the domain of the address it dials (Domain::for_address), not always IPv4");
    let client = Client::says("over six").host("::1").server_on(LOCALHOST_V6);
    reaches_server(ctx, client, b"IPv6 works\n", missed)
}

fn refused(ctx: &mut Ctx) -> Result<(), Failure> {
    let (run, port) = Client::says("anyone?").run_to_closed_port(ctx)?;
    expect::clean_error(&run, &["refused"], 2)
        .map_err(|f| f.during(format!("nothing listens on 127.0.0.1:{port}")))
}

fn connect_timeout(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_listener, _fillers, addr) = full_listener()?;
    let client = Client::says("hello?").timeout(SHORT_TIMEOUT);
    let run = client.run_to(ctx, &addr.port().to_string());
    let during = "a server whose handshake never completes, --timeout 1";
    let hint = "connect() can wait for minutes: use connect_timeout(addr, timeout)";
    gave_up(run, during, hint)
}

fn read_timeout(ctx: &mut Ctx) -> Result<(), Failure> {
    let client = Client::says("are you there?").timeout(SHORT_TIMEOUT);
    let server = silent_server(client.sends())?;
    let run = client
        .against_server(ctx, server)
        .map(|exchange| exchange.run);
    let during = "a server that accepts but never answers, --timeout 1";
    let hint = "give the socket a receive timeout (SO_RCVTIMEO) so recv() gives up instead of waiting forever";
    gave_up(run, during, hint)
}
