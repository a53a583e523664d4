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
use std::time::Duration;

use crate::grade::ctx::START_LIMIT;
use crate::grade::net::{self, LOCALHOST_V4, LOCALHOST_V6, show};
use crate::grade::peer;
use crate::grade::process::describe_status;
use crate::grade::row;
use crate::grade::{Ctx, Failure, Finished, Lab, Server, common, ensure, expect};
use crate::grade::{stamp, standard};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
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

/// Starts `server --host IP --port P extra...` and waits until its UDP port is bound
/// (once more on a fresh port if another program took the first meanwhile).
fn start_server(ctx: &mut Ctx, ip: IpAddr, extra: &[&str]) -> Result<Server, Failure> {
    ctx.again_if_port_taken(|ctx| {
        // free_port checks UDP as well as TCP.
        let port = net::free_port(ip);
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
    })
}

/// One of the grader's client sockets, talking to the server under test. Not the
/// shared [`peer::Peer`], which plays a script in a thread of its own: a check drives
/// these step by step (three clients' datagrams sent in one order before any reply is
/// read), and their failures quote the OS error of the send or receive that failed.
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    name: &'static str,
}

impl Client {
    /// A socket on the loopback address of the server's family, named `name` in reports.
    fn new(server: SocketAddr, name: &'static str) -> Result<Client, Failure> {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (LOCALHOST_V4, 0).into(),
            SocketAddr::V6(_) => (LOCALHOST_V6, 0).into(),
        };
        let socket = UdpSocket::bind(local)
            .map_err(|e| Failure::new(format!("the grader could not bind a UDP socket: {e}")))?;
        Ok(Client {
            socket,
            server,
            name,
        })
    }

    /// The socket's own port, which the server should print as the sender's.
    fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Sends one datagram to the server.
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

    /// [`exchange`](Self::exchange), its failure saying what was being sent.
    fn ask(&self, data: &[u8], during: &str) -> Result<Vec<u8>, Failure> {
        self.exchange(data).map_err(|f| f.during(during))
    }

    /// Sends a zero-byte datagram, which must be answered like any other.
    fn ask_empty(&self, during: &str) -> Result<Vec<u8>, Failure> {
        self.ask(b"", during).map_err(|f| {
            f.or_hint("a zero-byte datagram is a real message in UDP (not end-of-file): answer it")
        })
    }

    /// Sends `data` and requires the stamped reply.
    fn expect_stamped(&self, data: &[u8]) -> Result<(), Failure> {
        expect_stamped(&self.exchange(data)?, data)
    }

    /// Sends every datagram back to back, then reads as many replies: the server holds
    /// several datagrams in its queue at once.
    fn burst(&self, datagrams: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, Failure> {
        for datagram in datagrams {
            self.send(datagram)?;
        }
        datagrams
            .iter()
            .map(|datagram| self.receive(datagram).map(|(reply, _)| reply))
            .collect()
    }
}

/// The server on 127.0.0.1 (with `extra` arguments) and one grader's client of it.
fn serve(ctx: &mut Ctx, extra: &[&str]) -> Result<(Server, Client), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, extra)?;
    let client = Client::new(server.addr, "client")?;
    Ok((server, client))
}

/// Datagrams with their senders.
type Datagrams = Vec<(Vec<u8>, SocketAddr)>;

/// Whether `reply` is `[<ctime>] ` followed by exactly `data`.
fn stamped(reply: &[u8], data: &[u8]) -> bool {
    stamp::strip(reply) == Some(data)
}

/// Fails unless `reply` is the stamp followed by `data`, byte for byte.
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

/// Three clients' datagrams, in the order sent: every one is sent before any reply is
/// read, so the server sees them interleaved.
const INTERLEAVED: [(&str, &[u8]); 4] = [
    ("client A", b"A first"),
    ("client B", b"B only"),
    ("client C", b"C only"),
    ("client A", b"A second"),
];

/// What each client must get back (sorted), and how the report says it.
const OWN_REPLIES: [(&str, &[&[u8]], &str); 3] = [
    (
        "client A",
        &[b"A first", b"A second"],
        "\"A first\" and \"A second\"",
    ),
    ("client B", &[b"B only"], "\"B only\""),
    ("client C", &[b"C only"], "\"C only\""),
];

/// A socket for each client named in `sends` (in the order each first sends), every
/// datagram sent in turn, then each client's replies read: each client with its
/// replies, sorted.
fn interleave(
    server: SocketAddr,
    sends: &[(&'static str, &[u8])],
) -> Result<Vec<(&'static str, Datagrams)>, Failure> {
    let mut clients: Vec<Client> = Vec::new();
    for (name, _) in sends {
        if !clients.iter().any(|client| client.name == *name) {
            clients.push(Client::new(server, name)?);
        }
    }
    for (name, data) in sends {
        if let Some(client) = clients.iter().find(|client| client.name == *name) {
            client.send(data)?;
        }
    }
    let mut replies = Vec::new();
    for client in &clients {
        let mut got = Vec::new();
        for (_, data) in sends.iter().filter(|(name, _)| *name == client.name) {
            got.push(client.receive(data)?);
        }
        got.sort();
        replies.push((client.name, got));
    }
    Ok(replies)
}

/// Fails unless every reply came from the server's own address.
fn replies_from(server: SocketAddr, replies: &[(&str, Datagrams)]) -> Result<(), Failure> {
    for (_, from) in replies.iter().flat_map(|(_, got)| got) {
        ensure(*from == server, || {
            Failure::new(format!("a reply came from {from}, not from {server}"))
        })?;
    }
    Ok(())
}

/// Fails unless `who` got back exactly `expected` (sorted), said `said` in the report.
fn own_replies(
    replies: &[(&str, Datagrams)],
    (who, expected, said): (&str, &[&[u8]], &str),
) -> Result<(), Failure> {
    let got: Vec<&[u8]> = replies
        .iter()
        .filter(|(name, _)| *name == who)
        .flat_map(|(_, got)| got)
        .map(|(reply, _)| reply.as_slice())
        .collect();
    ensure(got == expected, || {
        Failure::new(format!("{who} got a reply meant for another client"))
            .sent("A first, B only, C only, A second (from three sockets, before reading)")
            .expected(said.to_string())
            .got(show(&got.concat()))
            .hint(
                "answer each datagram to the address recvfrom() returned with it, not to the \
                 first client, the last one or a fixed address",
            )
    })
}

/// The datagrams, sorted: replies may come in any order.
fn sorted(datagrams: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut sorted = datagrams.to_vec();
    sorted.sort();
    sorted
}

/// The replies to a burst of datagrams were not those datagrams, one for one.
fn not_one_for_one(sent: &[Vec<u8>], got: &[Vec<u8>]) -> Failure {
    let sizes = |list: &[Vec<u8>]| {
        list.iter()
            .map(|d| d.len().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Failure::new("the replies do not match the datagrams one for one")
        .sent(format!(
            "3 datagrams of {} bytes, back to back",
            sizes(sent)
        ))
        .expected(format!("3 replies of {} bytes", sizes(sent)))
        .got(format!("replies of {} bytes", sizes(got)))
        .hint(
            "one recvfrom() is one whole datagram and one sendto() is one whole reply: \
             never split a reply into pieces nor join datagrams together",
        )
}

/// Fails unless the echo of a 65,507-byte datagram is that datagram, whole.
fn echoed_whole(reply: &[u8], big: &[u8]) -> Result<(), Failure> {
    ensure(reply == big, || {
        Failure::new("with --echo, a 65,507-byte datagram did not come back whole")
            .expected("65507 bytes")
            .got(format!("{} bytes", reply.len()))
            .hint(
                "receive into a buffer of at least 65,507 bytes (a smaller one silently cuts \
                 the datagram), and send it back in one sendto()",
            )
    })
}

/// Sends `fits`, the longest datagram whose stamped reply is still 65,507 bytes, and
/// requires it stamped whole.
fn stamped_whole(client: &Client, fits: &[u8]) -> Result<(), Failure> {
    let reply = client.ask(
        fits,
        "a 65,480-byte datagram (its stamped reply is 65,507 bytes)",
    )?;
    ensure(stamped(&reply, fits), || {
        Failure::new("a 65,480-byte datagram was not stamped whole")
            .expected("a 65,507-byte reply: the 27-byte stamp and all the data")
            .got(format!("{} bytes: {}", reply.len(), show(&reply)))
    })
}

/// Sends `big`, too long to stamp, and requires a short error datagram back.
fn too_long_refused(client: &Client, big: &[u8]) -> Result<(), Failure> {
    let reply = client.exchange(big).map_err(|f| {
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
    )
}

/// Fails unless the program's stdout comes to mention `needle` within 2 s.
fn expect_mentioned(ctx: &mut Ctx, id: usize, needle: &str, hint: &str) -> Result<(), Failure> {
    if expect::stdout_mentions(ctx, id, needle, Duration::from_secs(2)) {
        return Ok(());
    }
    Err(Failure::new(format!("stdout never mentioned {needle:?}"))
        .got(show(&ctx.proc(id).stdout()))
        .hint(hint.to_string()))
}

// ---------------------------------------------------------------------------------
// Server checks
// ---------------------------------------------------------------------------------

fn binds(ctx: &mut Ctx) -> Result<(), Failure> {
    start_server(ctx, LOCALHOST_V4, &[]).map(|_| ())
}

fn stamps(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, client) = serve(ctx, &[])?;
    client.expect_stamped(b"hello")?;
    client.expect_stamped(b"what time is it?")
}

fn echo_mode(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, client) = serve(ctx, &["--echo"])?;
    let data = b"echo me, exactly\n";
    let reply = client.exchange(data)?;
    let problem = "with --echo the reply is not the datagram itself";
    expect::echoed(data, &reply, problem)
        .map_err(|f| f.hint("--echo: sendto() the received bytes unchanged"))
}

fn replies_to_sender(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V4, &["--echo"])?;
    let replies = interleave(server.addr, &INTERLEAVED)?;
    replies_from(server.addr, &replies)?;
    OWN_REPLIES
        .into_iter()
        .try_for_each(|own| own_replies(&replies, own))
}

fn keeps_boundaries(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_, client) = serve(ctx, &["--echo"])?;
    let datagrams = [b"1".to_vec(), vec![b'b'; 3000], b"ten bytes!".to_vec()];
    let got = client.burst(&datagrams)?;
    ensure(sorted(&got) == sorted(&datagrams), || {
        not_one_for_one(&datagrams, &got)
    })
}

fn empty_datagram(ctx: &mut Ctx) -> Result<(), Failure> {
    let (stamping, client) = serve(ctx, &[])?;
    let reply = client.ask_empty("an empty datagram")?;
    expect_stamped(&reply, b"").map_err(|f| f.during("an empty datagram"))?;
    ctx.ensure_running(stamping.id, "after an empty datagram")?;
    let (_, client) = serve(ctx, &["--echo"])?;
    let reply = client.ask_empty("an empty datagram, --echo")?;
    ensure(reply.is_empty(), || {
        Failure::new("with --echo, an empty datagram must get an empty reply").got(show(&reply))
    })
}

fn max_datagram(ctx: &mut Ctx) -> Result<(), Failure> {
    let big = vec![b'm'; MAX_V4];
    let (_, echoing) = serve(ctx, &["--echo"])?;
    echoed_whole(&echoing.ask(&big, "a 65,507-byte datagram, --echo")?, &big)?;
    let (_, stamping) = serve(ctx, &[])?;
    stamped_whole(&stamping, &vec![b'f'; MAX_V4 - stamp::LEN])?;
    too_long_refused(&stamping, &big)?;
    let reply = stamping.ask(b"still there?", "a small datagram after the too-long one")?;
    expect_stamped(&reply, b"still there?")
}

fn non_utf8(ctx: &mut Ctx) -> Result<(), Failure> {
    let (server, client) = serve(ctx, &[])?;
    let data = b"\xff\xfe not text \x00\x80";
    expect_stamped(&client.exchange(data)?, data).map_err(|f| {
        f.hint("a datagram is bytes: don't decode it as UTF-8 (a lossy decode changes it); prepend the stamp to the raw bytes")
    })?;
    ctx.ensure_running(server.id, "after a datagram that is not UTF-8")
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start_server(ctx, LOCALHOST_V6, &[]).map_err(|f| {
        f.during("with --host ::1")
            .or_hint("create the socket with the domain of the address (Domain::for_address)")
    })?;
    Client::new(server.addr, "client")?.expect_stamped(b"six")
}

fn prints_senders(ctx: &mut Ctx) -> Result<(), Failure> {
    let (server, client) = serve(ctx, &[])?;
    client.exchange(b"who am I?")?;
    let hint = "print the address recvfrom() returned, e.g. `127.0.0.1:54012: got 9 bytes`";
    expect_mentioned(ctx, server.id, &format!(":{}", client.port()), hint)
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

/// What the grader's server answers to `data`.
fn answer(data: &[u8]) -> Vec<u8> {
    [b"R:", data].concat()
}

/// The grader's server answers every datagram.
fn answers_all() -> peer::Script {
    drops_first(0)
}

/// The grader's server drops the first `n` datagrams (usize::MAX: all of them), lost as
/// UDP may lose any datagram, and answers the rest.
fn drops_first(n: usize) -> peer::Script {
    peer::Script::new(Vec::new()).answer(move |count, data| {
        if count <= n {
            Vec::new()
        } else {
            vec![answer(data)]
        }
    })
}

/// The grader's server sends the client a datagram from another socket of its own just
/// before its first reply.
fn stranger_first() -> peer::Script {
    // It even looks like the answer (it ends with the request): only the sender tells
    // it apart.
    answers_all().stranger_first(b"STRANGER: ")
}

/// The grader's server holds back the reply to the very first datagram (the client
/// retries meanwhile and gets the retry's reply) and sends it, twice, just before the
/// reply to the next line: a late, duplicated reply that arrives while the client
/// waits for another one.
fn late_first() -> peer::Script {
    let mut held: Option<Vec<u8>> = None;
    peer::Script::new(Vec::new()).answer(move |count, data| {
        if count == 1 {
            held = Some(data.to_vec()); // delayed, as UDP may delay any datagram
            return Vec::new();
        }
        let mut replies = Vec::new();
        if held.as_ref().is_some_and(|first| *first != data)
            && let Some(first) = held.take()
        {
            // The late reply to the first attempt, and a duplicate of it.
            replies.push(answer(&first));
            replies.push(answer(&first));
        }
        replies.push(answer(data));
        replies
    })
}

/// `client --host 127.0.0.1 --port P --timeout-ms T --retries R extra...` with `stdin`,
/// run to its end.
fn run_client(
    ctx: &mut Ctx,
    port: &str,
    (timeout_ms, retries): (&str, &str),
    extra: &[&str],
    stdin: &[u8],
) -> Result<Finished, Failure> {
    let mut args = vec!["client", "--host", "127.0.0.1", "--port", port];
    args.extend_from_slice(&["--timeout-ms", timeout_ms, "--retries", retries]);
    args.extend_from_slice(extra);
    ctx.run("client", &args, Some(stdin.to_vec()), RUN_LIMIT)
}

/// The client, with `--timeout-ms` and `--retries` as given, run against the grader's
/// server playing `script`: the run, and every datagram the server received.
fn run_against(
    ctx: &mut Ctx,
    script: peer::Script,
    timing: (&str, &str),
    stdin: &[u8],
) -> Result<(Finished, Datagrams), Failure> {
    let server = peer::Peer::udp(LOCALHOST_V4, None, script)?;
    let run = run_client(ctx, &server.port(), timing, &[], stdin);
    let from_ip = |(data, from)| match from {
        Some(peer::Origin::Ip(addr)) => Some((data, addr)),
        _ => None,
    };
    let seen = server.finish().datagrams;
    Ok((run?, seen.into_iter().filter_map(from_ip).collect()))
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

/// The datagrams as the report shows them, in a row.
fn shown(datagrams: &[Vec<u8>]) -> String {
    datagrams
        .iter()
        .map(|d| show(d))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails unless the client sent `expected` (retries folded), a datagram for each line of
/// `stdin`; `said` is how the report says `expected`.
fn expect_lines(
    stdin: &[u8],
    datagrams: &[Vec<u8>],
    expected: &[&[u8]],
    said: &str,
) -> Result<(), Failure> {
    ensure(datagrams == expected, || {
        Failure::new("the datagrams are not the stdin lines, one per line")
            .sent_bytes(stdin)
            .expected(said)
            .got(shown(datagrams))
            .hint("send each line (newline removed) in its own sendto(); an empty line is an empty datagram")
    })
}

/// Fails unless the client's datagrams (retries folded) are one of `len` bytes.
fn one_whole_datagram(seen: &[(Vec<u8>, SocketAddr)], len: usize) -> Result<(), Failure> {
    let sizes: Vec<usize> = distinct(seen).iter().map(Vec::len).collect();
    ensure(sizes == [len], || {
        Failure::new("the long line did not arrive as one whole datagram")
            .expected(format!("one datagram of {len} bytes"))
            .got(format!("datagrams of {sizes:?} bytes"))
    })
}

/// Fails with `problem` unless the grader's server received at least `least`
/// datagrams: the client sent again when no reply came in time.
fn sent_again(
    seen: &Datagrams,
    least: usize,
    problem: &str,
    expected: &str,
) -> Result<(), Failure> {
    ensure(seen.len() >= least, || {
        Failure::new(problem)
            .expected(expected)
            .got(format!("{} datagram(s)", seen.len()))
            .hint("wait for the reply with a timeout (SO_RCVTIMEO); when it passes, send again")
    })
}

/// Fails unless the client, every datagram dropped, sent once and retried `retries`
/// times, no more, no fewer.
fn retries_bounded(seen: &Datagrams, retries: usize) -> Result<(), Failure> {
    ensure(seen.len() == retries + 1, || {
        Failure::new("the number of sends is not 1 + --retries")
            .sent(format!("--retries {retries}, every datagram dropped"))
            .expected(format!(
                "{} datagrams (the first send and {retries} retries)",
                retries + 1
            ))
            .got(format!("{} datagram(s)", seen.len()))
            .hint("bound the retries by --retries: one send, then at most that many more")
    })
}

/// Fails unless the client ran to a clean end and printed exactly `expected`.
fn expect_stdout(run: &Finished, expected: &[u8], hint: &str) -> Result<(), Failure> {
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

/// Fails with `problem` unless the client printed nothing.
fn expect_silent(run: &Finished, problem: &str) -> Result<(), Failure> {
    ensure(run.stdout.is_empty(), || {
        Failure::new(problem).got(show(&run.stdout))
    })
}

// ---------------------------------------------------------------------------------
// Client checks
// ---------------------------------------------------------------------------------

fn client_sends_lines(ctx: &mut Ctx) -> Result<(), Failure> {
    let stdin = b"one\n\ntwo words\n";
    let (run, seen) = run_against(ctx, answers_all(), ("3000", "2"), stdin)?;
    let said = "3 datagrams: \"one\", \"\" (empty) and \"two words\", without the newline";
    expect_lines(stdin, &distinct(&seen), &[b"one", b"", b"two words"], said)?;
    let hint = "print each reply followed by a newline, nothing else on stdout";
    expect_stdout(&run, b"R:one\nR:\nR:two words\n", hint)
}

fn client_prints_max(ctx: &mut Ctx) -> Result<(), Failure> {
    let line = vec![b'x'; MAX_V4 - 2];
    let stdin = [line.as_slice(), b"\n"].concat();
    let (run, seen) = run_against(ctx, answers_all(), ("3000", "2"), &stdin)?;
    one_whole_datagram(&seen, line.len())?;
    let hint =
        "the reply is 65,507 bytes: receive into a buffer at least that big, or it is cut short";
    expect_stdout(&run, &[answer(&line).as_slice(), b"\n"].concat(), hint)
}

fn client_retries(ctx: &mut Ctx) -> Result<(), Failure> {
    let (run, seen) = run_against(ctx, drops_first(1), ("300", "3"), b"again?\n")?;
    let problem = "the grader dropped the first datagram and the client never sent it again";
    let expected = "a second datagram after --timeout-ms (300 ms)";
    sent_again(&seen, 2, problem, expected)?;
    let hint = "after the retry, print the reply the second datagram got";
    expect_stdout(&run, b"R:again?\n", hint)
}

/// Words of which a client's last line must say one when it gives up.
const GAVE_UP: [&str; 6] = [
    "no reply",
    "give up",
    "giving up",
    "gave up",
    "timed out",
    "timeout",
];

fn client_gives_up(ctx: &mut Ctx) -> Result<(), Failure> {
    let (run, seen) = run_against(ctx, drops_first(usize::MAX), ("200", "2"), b"anyone?\n")?;
    retries_bounded(&seen, 2)?;
    expect::clean_error(&run, &GAVE_UP, 4).map_err(|f| f.during("every datagram dropped"))?;
    expect_silent(&run, "the client printed something although no reply came")
}

fn client_checks_sender(ctx: &mut Ctx) -> Result<(), Failure> {
    let (run, _) = run_against(ctx, stranger_first(), ("3000", "2"), b"who?\n")?;
    let hint = "an unconnected UDP socket receives from anyone: compare the address recvfrom() \
                returns with the server's, and keep waiting when it is someone else";
    expect_stdout(&run, b"R:who?\n", hint)
        .map_err(|f| f.during("a stranger's datagram arrived just before the server's reply"))
}

/// With `--connect`, a datagram to a port where nothing is bound comes back as an ICMP
/// "port unreachable", which the kernel reports to a connected socket as ECONNREFUSED.
/// The client must stop with that, not time out: the timeouts are long enough that only
/// a client that heard the ICMP error can name it.
fn client_connected_refused(ctx: &mut Ctx) -> Result<(), Failure> {
    let port = net::free_port(LOCALHOST_V4).to_string();
    let stdin = b"anyone there?\n";
    let run = run_client(ctx, &port, ("1000", "1"), &["--connect"], stdin)?;
    let during = format!("--connect, with nothing bound at 127.0.0.1:{port}");
    expect::clean_error(&run, &["refused"], 4)
        .map_err(|f| f.during(during).or_hint(CONNECT_REPORTS_REFUSED))?;
    let problem = "the client printed something although nothing answered";
    expect_silent(&run, problem)
}

/// What a client should do with `--connect` when nothing is bound at the server's port.
const CONNECT_REPORTS_REFUSED: &str = "connect() the UDP socket when --connect is given: the \
    kernel then reports the ICMP port unreachable as ECONNREFUSED on the next send or \
    receive; stop with one line that says the connection was refused";

/// The reply to the first line's first attempt comes late and twice, just before the
/// reply to the second line: the client must print each line's own reply.
fn client_ignores_stale(ctx: &mut Ctx) -> Result<(), Failure> {
    let (run, seen) = run_against(ctx, late_first(), ("500", "3"), b"first\nsecond\n")?;
    let problem = "the client did not send the first line again when its reply was late";
    let expected = "a second datagram for \"first\" after --timeout-ms (500 ms), then \"second\"";
    sent_again(&seen, 3, problem, expected)?;
    expect_stdout(&run, b"R:first\nR:second\n", STALE_REPLIES).map_err(|f| {
        f.during("the first line's first reply arrived late, twice, just before the second line's")
    })
}

/// Why a client must match each reply to its own line.
const STALE_REPLIES: &str = "a datagram may arrive late or twice: the reply to an earlier \
    attempt can turn up while you wait for the next line's answer. Every answer here ends \
    with the request it answers: ignore a reply that does not end with the line you sent, \
    and keep waiting";
