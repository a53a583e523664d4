//! Lab 4 (udp): the check table and the classroom demo.
//!
//! The server under test binds a UDP port and answers each datagram to its sender:
//! `[<ctime>] <data>`, or the data unchanged with `--echo`. The grader plays its
//! clients with UDP sockets of its own and checks that each reply goes to the right
//! sender with clients interleaved, that message boundaries are kept, and that empty,
//! non-UTF-8 and maximum-size (65,507-byte) datagrams are answered, never a crash.
//!
//! The client under test sends each stdin line as one datagram. The grader plays its
//! server (a UDP socket in a thread) that can drop datagrams or send a stranger's
//! datagram first: the client must print each reply on a line, retry when a datagram is
//! lost, give up cleanly (non-zero exit, a clear line) when every one is lost, and take
//! its reply only from the server.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;

use crate::grade::ctx::START_LIMIT;
use crate::grade::demo::Demo;
use crate::grade::net::{self, LOCALHOST_V4, LOCALHOST_V6, show};
use crate::grade::peer;
use crate::grade::process::describe_status;
use crate::grade::row;
use crate::grade::{Ctx, Failure, Lab, Server, common, ensure, expect};
use crate::grade::{stamp, standard};

pub static LAB: Lab = Lab {
    id: "lab4",
    slug: "udp",
    title: "UDP datagrams with sendto() and recvfrom()",
    table: &[
        row("binds", binds),
        row("stamps", stamps).points(2),
        row("echo-mode", echo_mode),
        row("replies-to-sender", replies_to_sender).points(2),
        row("keeps-boundaries", keeps_boundaries).points(2),
        row("empty-datagram", empty_datagram),
        row("max-datagram", max_datagram).points(2),
        row("non-utf8", non_utf8),
        standard::ipv6(ipv6),
        row("prints-senders", prints_senders),
        row("port-in-use", port_in_use),
        row("client-sends-lines", client_sends_lines).points(2),
        row("client-prints-max", client_prints_max),
        row("client-retries", client_retries).points(2),
        row("client-gives-up", client_gives_up).points(2),
        row("client-checks-sender", client_checks_sender),
        row("client-ignores-stale", client_ignores_stale),
        row("client-connected-refused", client_connected_refused),
    ],
    words: include_str!("../../checks/lab4.toml"),
    demo: Some(demo),
    joined: OnceLock::new(),
};

/// The largest UDP payload over IPv4.
const MAX_V4: usize = 65_507;
/// How long the grader waits for one reply.
const REPLY_LIMIT: Duration = Duration::from_secs(5);
/// How long a client run may take before the grader stops it.
const RUN_LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------
// The server under test, and the grader's clients
// ---------------------------------------------------------------------------------

/// Whether a UDP socket is bound to `port` on this machine (IPv4 or IPv6).
fn udp_bound(port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    ["/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .any(|table| {
            table.lines().skip(1).any(|line| {
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&wanted))
            })
        })
}

/// A port free for both TCP and UDP on `ip` right now.
fn free_udp_port(ip: IpAddr) -> u16 {
    for _ in 0..20 {
        let port = net::free_port(ip);
        if port != 0 && UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    0
}

/// Starts `server --host IP --port P extra...` and waits until its UDP port is bound.
fn start_server(ctx: &mut Ctx, ip: IpAddr, extra: &[&str]) -> Result<Server, Failure> {
    let port = free_udp_port(ip);
    let host = ip.to_string();
    let port_text = port.to_string();
    let mut args = vec!["server", "--host", &host, "--port", &port_text];
    args.extend_from_slice(extra);
    let id = ctx.spawn("server", &args, None)?;
    let late = Failure::new(format!(
        "no UDP socket was bound to port {port} within {} s of starting",
        START_LIMIT.as_secs()
    ))
    .hint("create a SOCK_DGRAM socket and bind() it to the --host/--port given");
    let what = format!("binding UDP port {port}");
    ctx.wait_ready(id, "server", &what, || udp_bound(port), late)?;
    Ok(Server {
        id,
        addr: SocketAddr::new(ip, port),
        pid: ctx.proc(id).pid(),
    })
}

/// One of the grader's client sockets, talking to the server under test.
struct Peer {
    socket: UdpSocket,
    server: SocketAddr,
    name: &'static str,
}

impl Peer {
    fn new(server: SocketAddr, name: &'static str) -> Result<Peer, Failure> {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (LOCALHOST_V4, 0).into(),
            SocketAddr::V6(_) => (LOCALHOST_V6, 0).into(),
        };
        let socket = UdpSocket::bind(local)
            .map_err(|e| Failure::new(format!("the grader could not bind a UDP socket: {e}")))?;
        Ok(Peer {
            socket,
            server,
            name,
        })
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    fn send(&self, data: &[u8]) -> Result<(), Failure> {
        self.socket
            .send_to(data, self.server)
            .map(|_| ())
            .map_err(|e| {
                Failure::new(format!(
                    "the grader could not send {} bytes: {e}",
                    data.len()
                ))
            })
    }

    /// The next datagram for this socket; a failure naming what was sent if none comes.
    fn receive(&self, sent: &[u8]) -> Result<(Vec<u8>, SocketAddr), Failure> {
        let _ = self.socket.set_read_timeout(Some(REPLY_LIMIT));
        let mut buffer = vec![0u8; 70_000];
        match self.socket.recv_from(&mut buffer) {
            Ok((n, from)) => Ok((buffer[..n].to_vec(), from)),
            Err(e) => Err(Failure::new(format!(
                "{}: no reply within {} s ({e})",
                self.name,
                REPLY_LIMIT.as_secs()
            ))
            .sent_bytes(sent)
            .hint(
                "recvfrom() gives the sender's address with the data: sendto() the reply to \
                 that address. A datagram that is empty, huge or not text must be answered too",
            )),
        }
    }

    /// Sends `data` and returns the one reply, which must come from the server.
    fn exchange(&self, data: &[u8]) -> Result<Vec<u8>, Failure> {
        self.send(data)?;
        let (reply, from) = self.receive(data)?;
        ensure(from == self.server, || {
            Failure::new(format!(
                "the reply came from {from}, not from {}",
                self.server
            ))
            .hint("reply from the socket you bound, so the client knows who answers")
        })?;
        Ok(reply)
    }
}

/// Whether `reply` is `[<ctime>] ` followed by exactly `data`.
fn stamped(reply: &[u8], data: &[u8]) -> bool {
    stamp::strip(reply) == Some(data)
}

fn expect_stamped(reply: &[u8], data: &[u8]) -> Result<(), Failure> {
    ensure(stamped(reply, data), || {
        Failure::new("the reply is not the stamp followed by the datagram")
            .sent_bytes(data)
            .expected(format!(
                "[<ctime>] {}  e.g. \"[Sun Nov 22 17:39:27 2026] \" then the data, byte for byte",
                show(data)
            ))
            .got(show(reply))
            .hint("reply '[' + ctime + '] ' + the datagram's bytes, as they are (no newline added)")
    })
}

// ---------------------------------------------------------------------------------
// Server checks
// ---------------------------------------------------------------------------------

fn binds(ctx: &mut Ctx) -> Result<(), Failure> {
    start_server(ctx, LOCALHOST_V4, &[]).map(|_| ())
}

fn stamps(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, &[])?;
    let peer = Peer::new(server.addr, "client")?;
    for data in [&b"hello"[..], b"what time is it?"] {
        let reply = peer.exchange(data)?;
        expect_stamped(&reply, data)?;
    }
    Ok(())
}

fn echo_mode(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, &["--echo"])?;
    let peer = Peer::new(server.addr, "client")?;
    let data = b"echo me, exactly\n";
    let reply = peer.exchange(data)?;
    ensure(reply == data, || {
        Failure::new("with --echo the reply is not the datagram itself")
            .sent_bytes(data)
            .compare(data, &reply)
            .hint("--echo: sendto() the received bytes unchanged")
    })
}

fn replies_to_sender(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, &["--echo"])?;
    let a = Peer::new(server.addr, "client A")?;
    let b = Peer::new(server.addr, "client B")?;
    let c = Peer::new(server.addr, "client C")?;
    // Every datagram is sent before any reply is read: the server sees them interleaved.
    a.send(b"A first")?;
    b.send(b"B only")?;
    c.send(b"C only")?;
    a.send(b"A second")?;
    let mut got_a = [a.receive(b"A first")?, a.receive(b"A second")?];
    let got_b = b.receive(b"B only")?;
    let got_c = c.receive(b"C only")?;
    got_a.sort();
    let wrong = |who: &str, expected: &str, got: &[u8]| {
        Failure::new(format!("{who} got a reply meant for another client"))
            .sent("A first, B only, C only, A second (from three sockets, before reading)")
            .expected(expected.to_string())
            .got(show(got))
            .hint(
                "answer each datagram to the address recvfrom() returned with it, not to the \
                 first client, the last one or a fixed address",
            )
    };
    for (reply, from) in got_a.iter().chain([&got_b, &got_c]) {
        ensure(*from == server.addr, || {
            Failure::new(format!(
                "a reply came from {from}, not from {}",
                server.addr
            ))
        })?;
        let _ = reply;
    }
    let a_texts: Vec<&[u8]> = got_a.iter().map(|(r, _)| r.as_slice()).collect();
    ensure(a_texts == [&b"A first"[..], b"A second"], || {
        wrong(
            "client A",
            "\"A first\" and \"A second\"",
            &a_texts.concat(),
        )
    })?;
    ensure(got_b.0 == b"B only", || {
        wrong("client B", "\"B only\"", &got_b.0)
    })?;
    ensure(got_c.0 == b"C only", || {
        wrong("client C", "\"C only\"", &got_c.0)
    })
}

fn keeps_boundaries(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, &["--echo"])?;
    let peer = Peer::new(server.addr, "client")?;
    let datagrams: [Vec<u8>; 3] = [b"1".to_vec(), vec![b'b'; 3000], b"ten bytes!".to_vec()];
    for datagram in &datagrams {
        peer.send(datagram)?;
    }
    let mut got = Vec::new();
    for datagram in &datagrams {
        got.push(peer.receive(datagram)?.0);
    }
    let mut expected = datagrams.to_vec();
    expected.sort();
    let mut sorted = got.clone();
    sorted.sort();
    ensure(sorted == expected, || {
        let sizes = |list: &[Vec<u8>]| {
            list.iter()
                .map(|d| d.len().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Failure::new("the replies do not match the datagrams one for one")
            .sent(format!(
                "3 datagrams of {} bytes, back to back",
                sizes(&datagrams)
            ))
            .expected(format!("3 replies of {} bytes", sizes(&datagrams)))
            .got(format!("replies of {} bytes", sizes(&got)))
            .hint(
                "one recvfrom() is one whole datagram and one sendto() is one whole reply: \
                 never split a reply into pieces nor join datagrams together",
            )
    })
}

fn empty_datagram(ctx: &mut Ctx) -> Result<(), Failure> {
    let hint = "a zero-byte datagram is a real message in UDP (not end-of-file): answer it";
    let stamping = start_server(ctx, LOCALHOST_V4, &[])?;
    let reply = Peer::new(stamping.addr, "client")?
        .exchange(b"")
        .map_err(|f| f.during("an empty datagram").or_hint(hint))?;
    expect_stamped(&reply, b"").map_err(|f| f.during("an empty datagram"))?;
    ctx.ensure_running(stamping.id, "after an empty datagram")?;

    let echoing = start_server(ctx, LOCALHOST_V4, &["--echo"])?;
    let reply = Peer::new(echoing.addr, "client")?
        .exchange(b"")
        .map_err(|f| f.during("an empty datagram, --echo").or_hint(hint))?;
    ensure(reply.is_empty(), || {
        Failure::new("with --echo, an empty datagram must get an empty reply").got(show(&reply))
    })
}

fn max_datagram(ctx: &mut Ctx) -> Result<(), Failure> {
    let big = vec![b'm'; MAX_V4];
    let echoing = start_server(ctx, LOCALHOST_V4, &["--echo"])?;
    let reply = Peer::new(echoing.addr, "client")?
        .exchange(&big)
        .map_err(|f| f.during("a 65,507-byte datagram, --echo"))?;
    ensure(reply == big, || {
        Failure::new("with --echo, a 65,507-byte datagram did not come back whole")
            .expected("65507 bytes")
            .got(format!("{} bytes", reply.len()))
            .hint(
                "receive into a buffer of at least 65,507 bytes (a smaller one silently cuts \
                 the datagram), and send it back in one sendto()",
            )
    })?;

    let stamping = start_server(ctx, LOCALHOST_V4, &[])?;
    let peer = Peer::new(stamping.addr, "client")?;
    // The longest datagram whose stamped reply still fits: exactly 65,507 bytes back.
    let fits = vec![b'f'; MAX_V4 - stamp::LEN];
    let reply = peer
        .exchange(&fits)
        .map_err(|f| f.during("a 65,480-byte datagram (its stamped reply is 65,507 bytes)"))?;
    ensure(stamped(&reply, &fits), || {
        Failure::new("a 65,480-byte datagram was not stamped whole")
            .expected("a 65,507-byte reply: the 27-byte stamp and all the data")
            .got(format!("{} bytes: {}", reply.len(), show(&reply)))
    })?;
    let reply = peer.exchange(&big).map_err(|f| {
        f.during("a 65,507-byte datagram (too long to stamp)").hint(
            "the stamped reply would exceed the UDP limit, so sendto() fails (EMSGSIZE): \
             answer with a short error datagram instead (see the README)",
        )
    })?;
    let lower = String::from_utf8_lossy(&reply[..reply.len().min(400)]).to_lowercase();
    ensure(
        reply.len() <= MAX_V4 && (lower.starts_with("error") || lower.contains("truncat")),
        || {
            Failure::new("the reply to a datagram too long to stamp is not a clear error")
                .expected("a datagram starting \"error: ...\" (or one that says it was truncated)")
                .got(show(&reply))
        },
    )?;
    let reply = peer
        .exchange(b"still there?")
        .map_err(|f| f.during("a small datagram after the too-long one"))?;
    expect_stamped(&reply, b"still there?")
}

fn non_utf8(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, &[])?;
    let peer = Peer::new(server.addr, "client")?;
    let data = b"\xff\xfe not text \x00\x80";
    let reply = peer.exchange(data)?;
    expect_stamped(&reply, data).map_err(|f| {
        f.hint("a datagram is bytes: don't decode it as UTF-8 (a lossy decode changes it); prepend the stamp to the raw bytes")
    })?;
    ctx.ensure_running(server.id, "after a datagram that is not UTF-8")
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V6, &[]).map_err(|f| {
        f.during("with --host ::1")
            .or_hint("create the socket with the domain of the address (Domain::for_address)")
    })?;
    let peer = Peer::new(server.addr, "client")?;
    let reply = peer.exchange(b"six")?;
    expect_stamped(&reply, b"six")
}

fn prints_senders(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, &[])?;
    let peer = Peer::new(server.addr, "client")?;
    peer.exchange(b"who am I?")?;
    let needle = format!(":{}", peer.port());
    if !expect::stdout_mentions(ctx, server.id, &needle, Duration::from_secs(2)) {
        return Err(Failure::new(format!("stdout never mentioned {needle:?}"))
            .got(show(&ctx.proc(server.id).stdout()))
            .hint("print the address recvfrom() returned, e.g. `127.0.0.1:54012: got 9 bytes`"));
    }
    Ok(())
}

fn port_in_use(ctx: &mut Ctx) -> Result<(), Failure> {
    let holder = UdpSocket::bind((LOCALHOST_V4, 0))
        .map_err(|e| Failure::new(format!("the grader could not bind: {e}")))?;
    let port = holder.local_addr().map_or(0, |a| a.port()).to_string();
    let during = format!("UDP port {port} already taken by the grader");
    common::server_fails_cleanly(ctx, "127.0.0.1", &port, &["in use"], during)
}

// ---------------------------------------------------------------------------------
// The grader's server, for the client checks
// ---------------------------------------------------------------------------------

/// How the grader's UDP server treats the datagrams it receives.
#[derive(Clone, Copy, Default)]
struct Script {
    /// Drop this many datagrams before answering (usize::MAX: drop them all).
    drop_first: usize,
    /// Before the first reply, send the client a datagram from another socket.
    stranger_first: bool,
    /// Hold back the reply to the very first datagram (the client retries meanwhile and
    /// gets the retry's reply); send it, twice, just before the reply to the next line:
    /// a late, duplicated reply that arrives while the client waits for another one.
    late_first: bool,
}

/// What the grader's server answers to `data`.
fn answer(data: &[u8]) -> Vec<u8> {
    [b"R:", data].concat()
}

/// Every datagram the grader's server received, with its sender.
type Received = Vec<(Vec<u8>, SocketAddr)>;

/// The grader's UDP server: a datagram peer that answers as `script` says and records
/// every datagram.
struct GraderServer(peer::Peer);

impl GraderServer {
    fn start(script: Script) -> Result<GraderServer, Failure> {
        let mut held: Option<Vec<u8>> = None;
        let replies = move |count: usize, data: &[u8]| {
            if count <= script.drop_first {
                return Vec::new(); // lost, as UDP may lose any datagram
            }
            let mut replies = Vec::new();
            if script.late_first {
                if count == 1 {
                    held = Some(data.to_vec()); // delayed, as UDP may delay any datagram
                    return replies;
                }
                if held.as_ref().is_some_and(|first| *first != data)
                    && let Some(first) = held.take()
                {
                    // The late reply to the first attempt, and a duplicate of it.
                    replies.push(answer(&first));
                    replies.push(answer(&first));
                }
            }
            replies.push(answer(data));
            replies
        };
        let mut plan = peer::Script::new(Vec::new()).answer(replies);
        if script.stranger_first {
            // It even looks like the answer (it ends with the request): only the
            // sender tells it apart.
            plan = plan.stranger_first(b"STRANGER: ");
        }
        Ok(GraderServer(peer::Peer::udp(LOCALHOST_V4, None, plan)?))
    }

    fn port(&self) -> String {
        self.0.port()
    }

    /// Stops the server and returns every datagram it received, with its sender.
    fn finish(self) -> Received {
        let from_ip = |(data, from)| match from {
            Some(peer::Origin::Ip(addr)) => Some((data, addr)),
            _ => None,
        };
        self.0
            .finish()
            .datagrams
            .into_iter()
            .filter_map(from_ip)
            .collect()
    }
}

/// `client --host 127.0.0.1 --port P --timeout-ms T --retries R`, run to its end.
fn run_client(
    ctx: &mut Ctx,
    server: &GraderServer,
    timeout_ms: &str,
    retries: &str,
    stdin: &[u8],
) -> Result<crate::grade::Finished, Failure> {
    let port = server.port();
    ctx.run(
        "client",
        &[
            "client",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--timeout-ms",
            timeout_ms,
            "--retries",
            retries,
        ],
        Some(stdin.to_vec()),
        RUN_LIMIT,
    )
}

/// The datagrams' contents, with repeats of the same datagram in a row (retries) folded.
fn distinct(seen: &[(Vec<u8>, SocketAddr)]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (data, _) in seen {
        if out.last() != Some(data) {
            out.push(data.clone());
        }
    }
    out
}

fn expect_stdout(run: &crate::grade::Finished, expected: &[u8], hint: &str) -> Result<(), Failure> {
    ensure(run.status.success() && run.stdout == expected, || {
        Failure::new(if run.status.success() {
            "the client's stdout is not the replies, one per line".to_string()
        } else {
            format!("the client failed ({})", describe_status(run.status))
        })
        .compare(expected, &run.stdout)
        .hint(hint.to_string())
    })
}

// ---------------------------------------------------------------------------------
// Client checks
// ---------------------------------------------------------------------------------

fn client_sends_lines(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = GraderServer::start(Script::default())?;
    let run = run_client(ctx, &server, "3000", "2", b"one\n\ntwo words\n")?;
    let seen = server.finish();
    let datagrams = distinct(&seen);
    let expected: [&[u8]; 3] = [b"one", b"", b"two words"];
    ensure(datagrams == expected, || {
        Failure::new("the datagrams are not the stdin lines, one per line")
            .sent_bytes(b"one\n\ntwo words\n")
            .expected("3 datagrams: \"one\", \"\" (empty) and \"two words\", without the newline")
            .got(
                datagrams
                    .iter()
                    .map(|d| show(d))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .hint("send each line (newline removed) in its own sendto(); an empty line is an empty datagram")
    })?;
    expect_stdout(
        &run,
        b"R:one\nR:\nR:two words\n",
        "print each reply followed by a newline, nothing else on stdout",
    )
}

fn client_prints_max(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = GraderServer::start(Script::default())?;
    let line = vec![b'x'; MAX_V4 - 2];
    let stdin = [line.as_slice(), b"\n"].concat();
    let run = run_client(ctx, &server, "3000", "2", &stdin)?;
    let seen = server.finish();
    let sizes: Vec<usize> = distinct(&seen).iter().map(Vec::len).collect();
    ensure(sizes == [MAX_V4 - 2], || {
        Failure::new("the long line did not arrive as one whole datagram")
            .expected(format!("one datagram of {} bytes", MAX_V4 - 2))
            .got(format!("datagrams of {sizes:?} bytes"))
    })?;
    let expected = [answer(&line).as_slice(), b"\n"].concat();
    expect_stdout(
        &run,
        &expected,
        "the reply is 65,507 bytes: receive into a buffer at least that big, or it is cut short",
    )
}

fn client_retries(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = GraderServer::start(Script {
        drop_first: 1,
        ..Script::default()
    })?;
    let run = run_client(ctx, &server, "300", "3", b"again?\n")?;
    let seen = server.finish();
    ensure(seen.len() >= 2, || {
        Failure::new("the grader dropped the first datagram and the client never sent it again")
            .expected("a second datagram after --timeout-ms (300 ms)")
            .got(format!("{} datagram(s)", seen.len()))
            .hint("wait for the reply with a timeout (SO_RCVTIMEO); when it passes, send again")
    })?;
    expect_stdout(
        &run,
        b"R:again?\n",
        "after the retry, print the reply the second datagram got",
    )
}

fn client_gives_up(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = GraderServer::start(Script {
        drop_first: usize::MAX,
        ..Script::default()
    })?;
    let run = run_client(ctx, &server, "200", "2", b"anyone?\n")?;
    let seen = server.finish();
    ensure(seen.len() == 3, || {
        Failure::new("the number of sends is not 1 + --retries")
            .sent("--retries 2, every datagram dropped")
            .expected("3 datagrams (the first send and 2 retries)")
            .got(format!("{} datagram(s)", seen.len()))
            .hint("bound the retries by --retries: one send, then at most that many more")
    })?;
    expect::clean_error(
        &run,
        &[
            "no reply",
            "give up",
            "giving up",
            "gave up",
            "timed out",
            "timeout",
        ],
        4,
    )
    .map_err(|f| f.during("every datagram dropped"))?;
    ensure(run.stdout.is_empty(), || {
        Failure::new("the client printed something although no reply came").got(show(&run.stdout))
    })
}

fn client_checks_sender(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = GraderServer::start(Script {
        stranger_first: true,
        ..Script::default()
    })?;
    let run = run_client(ctx, &server, "3000", "2", b"who?\n")?;
    drop(server);
    expect_stdout(
        &run,
        b"R:who?\n",
        "an unconnected UDP socket receives from anyone: compare the address recvfrom() \
         returns with the server's, and keep waiting when it is someone else",
    )
    .map_err(|f| f.during("a stranger's datagram arrived just before the server's reply"))
}

/// With `--connect`, a datagram to a port where nothing is bound comes back as an ICMP
/// "port unreachable", which the kernel reports to a connected socket as ECONNREFUSED.
/// The client must stop with that, not time out: the timeouts are long enough that only
/// a client that heard the ICMP error can name it.
fn client_connected_refused(ctx: &mut Ctx) -> Result<(), Failure> {
    let port = free_udp_port(LOCALHOST_V4).to_string();
    let run = ctx.run(
        "client",
        &[
            "client",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--timeout-ms",
            "1000",
            "--retries",
            "1",
            "--connect",
        ],
        Some(b"anyone there?\n".to_vec()),
        RUN_LIMIT,
    )?;
    expect::clean_error(&run, &["refused"], 4).map_err(|f| {
        f.during(format!("--connect, with nothing bound at 127.0.0.1:{port}"))
            .or_hint(
                "connect() the UDP socket when --connect is given: the kernel then reports \
                 the ICMP port unreachable as ECONNREFUSED on the next send or receive; stop \
                 with one line that says the connection was refused",
            )
    })?;
    ensure(run.stdout.is_empty(), || {
        Failure::new("the client printed something although nothing answered")
            .got(show(&run.stdout))
    })
}

/// The reply to the first line's first attempt comes late and twice, just before the
/// reply to the second line: the client must print each line's own reply.
fn client_ignores_stale(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = GraderServer::start(Script {
        late_first: true,
        ..Script::default()
    })?;
    let run = run_client(ctx, &server, "500", "3", b"first\nsecond\n")?;
    let seen = server.finish();
    ensure(seen.len() >= 3, || {
        Failure::new("the client did not send the first line again when its reply was late")
            .expected(
                "a second datagram for \"first\" after --timeout-ms (500 ms), then \"second\"",
            )
            .got(format!("{} datagram(s)", seen.len()))
            .hint("wait for the reply with a timeout (SO_RCVTIMEO); when it passes, send again")
    })?;
    expect_stdout(
        &run,
        b"R:first\nR:second\n",
        "a datagram may arrive late or twice: the reply to an earlier attempt can turn up \
         while you wait for the next line's answer. Every answer here ends with the request \
         it answers: ignore a reply that does not end with the line you sent, and keep \
         waiting",
    )
    .map_err(|f| {
        f.during("the first line's first reply arrived late, twice, just before the second line's")
    })
}

// ---------------------------------------------------------------------------------
// Demo
// ---------------------------------------------------------------------------------

fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let wire = demo.private_network();
    // In a private network every port is free; on this machine ask the kernel.
    let port = if wire {
        5000
    } else {
        free_udp_port(LOCALHOST_V4)
    };
    let port_text = port.to_string();
    let limit = Duration::from_secs(15);
    demo.say(&format!(
        "The server: socket(DGRAM), bind(127.0.0.1:{port}), then recvfrom()/sendto() for ever. \
         No listen(), no accept()"
    ));
    demo.start(
        "server",
        &["server", "--host", "127.0.0.1", "--port", &port_text],
    )?;
    demo.wait_udp_bound(port)?;

    demo.say(
        "A client sends each line as one datagram: boundaries are kept, even for an empty line \
         (no handshake on the wire: the first packet carries data)",
    );
    demo.run(
        "client",
        &["client", "--port", &port_text],
        b"first line\n\nthird line\n",
        limit,
    )?;

    demo.say("A second client: same server socket, the replies go to whoever sent each datagram");
    demo.run(
        "client",
        &["client", "--port", &port_text],
        b"from another client\n",
        limit,
    )?;

    let nobody = if wire {
        (port + 1).to_string()
    } else {
        free_udp_port(LOCALHOST_V4).to_string()
    };
    demo.say(&format!(
        "Nobody at port {nobody}: sendto() still succeeds (UDP cannot tell); the client times \
         out, sends again, and gives up"
    ));
    demo.run(
        "client",
        &[
            "client",
            "--port",
            &nobody,
            "--timeout-ms",
            "300",
            "--retries",
            "2",
        ],
        b"hello?\n",
        limit,
    )?;
    if wire {
        connected_udp_refused(demo, &nobody)?;
    }
    Ok(())
}

/// A connected UDP socket hears what an unconnected one cannot: the ICMP "port
/// unreachable" its datagram caused comes back as ECONNREFUSED on the next call.
fn connected_udp_refused(demo: &mut Demo, nobody: &str) -> anyhow::Result<()> {
    demo.say(
        "The kernel did answer each of those datagrams: an ICMP port unreachable. An \
         unconnected socket cannot be told; a connect()ed one gets ECONNREFUSED",
    );
    let port: u16 = nobody.parse().map_err(|_| anyhow::anyhow!("bad port"))?;
    let socket = demo.udp_socket()?;
    let to = SocketAddr::new(LOCALHOST_V4, port);
    socket
        .connect(to)
        .with_context(|| format!("connect({to})"))?;
    demo.line(
        "grader",
        format!("connect({to}) on a UDP socket: no packet, just a default peer"),
    );
    let sent = socket.send(b"hello?\n")?;
    demo.line("grader", format!("send({sent} bytes) -> ok"));
    let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buffer = [0u8; 64];
    let outcome = match socket.recv(&mut buffer) {
        Ok(n) => format!("recv() -> {n} bytes?!"),
        Err(e) => format!("recv() -> error: {e}"),
    };
    demo.line("grader", outcome);
    demo.settle();
    Ok(())
}
