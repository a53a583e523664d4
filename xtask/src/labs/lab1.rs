//! Lab 1 (tcp-server): the check table and the classroom demo.
//!
//! The server must: listen where told with the backlog it was given, greet each client
//! with `hello\n`, echo one read back and close, serve client after client, survive a
//! client that resets, not leak descriptors, restart at once thanks to SO_REUSEADDR,
//! work over IPv6, and fail with one clear line for an address it cannot have.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use crate::grade::ctx::running_as_root;
use crate::grade::net::{self, LOCALHOST_V4, LOCALHOST_V6, show};
use crate::grade::process::describe_status;
use crate::grade::row;
use crate::grade::standard;
use crate::grade::{Ctx, Failure, Lab, Server, common, ensure, expect, netns, onlan, tcp_table};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
    id: "lab1",
    slug: "tcp-server",
    title: "a TCP server, one socket call at a time",
    table: &[
        row("listens", listens),
        row("binds-given-host", binds_given_host),
        row("reachable-from-another-host", reachable_from_another_host).budget(30),
        row("greets", greets),
        row("echoes", echoes).points(2),
        row("serves-in-turn", serves_in_turn),
        standard::backlog::<7>(),
        standard::reuse_address(reuse_address),
        standard::ipv6(ipv6),
        row("dual-stack", dual_stack),
        standard::prints_addresses(prints_addresses),
        row("survives-reset", survives_reset),
        row("survives-emfile", survives_emfile),
        standard::no_fd_leak(no_fd_leak),
        standard::port_in_use(),
        row("privileged-port", privileged_port),
        row("bad-host", bad_host),
    ],
};

const GREETING: &[u8] = b"hello\n";

fn start(ctx: &mut Ctx) -> Result<Server, Failure> {
    ctx.start_server("server", LOCALHOST_V4, &[])
}

/// One client's whole visit: connect, send `message`, read everything until EOF.
fn visit(addr: SocketAddr, message: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut conn = net::connect(addr)?;
    conn.expect_bytes(GREETING)
        .map_err(|f| f.during("waiting for the greeting"))?;
    conn.send(message)?;
    let rest = conn.read_to_eof(64 * 1024)?;
    Ok([GREETING, &rest].concat())
}

fn listens(ctx: &mut Ctx) -> Result<(), Failure> {
    start(ctx).map(|_| ())
}

fn binds_given_host(ctx: &mut Ctx) -> Result<(), Failure> {
    // 127.0.0.2 is loopback too, but no program binds it by accident: a server that
    // binds the wildcard or a hard-coded 127.0.0.1 shows here.
    let given = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let server = ctx
        .start_server("server", given, &[])
        .map_err(|f| f.during("with --host 127.0.0.2"))?;
    let bound = bound_addresses(&server);
    ensure(
        !bound.is_empty() && bound.iter().all(|a| a.ip() == given),
        || not_bound_to_given(&bound, server.addr.port()),
    )
}

/// Where the server's listening socket is bound, read from the kernel's tables: its own
/// socket (found by inode among its descriptors), or any listener on the port if the
/// program handed the socket to a child.
fn bound_addresses(server: &Server) -> Vec<SocketAddr> {
    let tables = ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"];
    let rows = tcp_table::listeners(&tables, server.addr.port());
    let owned = tcp_table::socket_inodes(server.pid);
    let own: Vec<SocketAddr> = rows
        .iter()
        .filter(|r| owned.contains(&r.inode))
        .map(|r| r.local)
        .collect();
    if own.is_empty() {
        rows.iter().map(|r| r.local).collect()
    } else {
        own
    }
}

/// `binds-given-host`'s failure: where the socket is bound instead of 127.0.0.2.
fn not_bound_to_given(bound: &[SocketAddr], port: u16) -> Failure {
    let shown: Vec<String> = bound.iter().map(|a| a.to_string()).collect();
    let wildcard = bound.iter().any(|a| a.ip().is_unspecified());
    Failure::new("the listening socket is not bound to the address it was given")
        .sent(format!("--host 127.0.0.2 --port {port}"))
        .expected(format!("a listener on 127.0.0.2:{port} (/proc/net/tcp)"))
        .got(format!("bound to {}", shown.join(", ")))
        .hint(if wildcard {
            "bind() the --host address: the wildcard (0.0.0.0 or ::) accepts calls on \
         every interface, from the whole network, when you were asked for one"
        } else {
            "bind() the address --host names, not a fixed one"
        })
}

fn reachable_from_another_host(ctx: &mut Ctx) -> Result<(), Failure> {
    let lan = onlan::lan()?;
    // Every interface: beta calls alpha's address over the cable. The handshake
    // completing is the answer: what the server then says is for the other checks.
    onlan::start_server_inside(ctx, &lan.alpha, "0.0.0.0", 5000)
        .map_err(|f| f.during("on host alpha with --host 0.0.0.0"))?;
    drop(beta_reaches_alpha(&lan, 5000)?);
    // Loopback only: alpha itself can call, beta cannot.
    onlan::start_server_inside(ctx, &lan.alpha, "127.0.0.1", 5001)
        .map_err(|f| f.during("on host alpha with --host 127.0.0.1"))?;
    let reached = lan.beta.connect(alpha(5001), net::IO_LIMIT);
    ensure(reached.is_err(), loopback_reached_from_beta)
}

/// Alpha's address on the private network, at `port`.
fn alpha(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(netns::ALPHA_IP), port)
}

/// Host beta's connection to the server alpha started with `--host 0.0.0.0`.
fn beta_reaches_alpha(lan: &netns::Lan, port: u16) -> Result<std::net::TcpStream, Failure> {
    lan.beta.connect(alpha(port), net::IO_LIMIT).map_err(|e| {
        net::connect_failure(alpha(port), &e)
            .during("from host beta, to the server started on alpha with --host 0.0.0.0")
            .hint("bind() the address --host gives: 0.0.0.0 is every interface of the machine")
    })
}

/// `reachable-from-another-host`'s failure: a loopback-only server answered beta.
fn loopback_reached_from_beta() -> Failure {
    Failure::new("started with --host 127.0.0.1, the server still answered another host")
        .sent(format!(
            "a connection from beta ({}) to alpha's {}:5001",
            netns::BETA_IP,
            netns::ALPHA_IP
        ))
        .expected("connection refused: loopback is reachable from the machine itself only")
        .got("connected")
        .hint("bind() the --host address; binding 0.0.0.0 exposes the server to the whole network")
}

fn greets(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    let mut conn = net::connect(server.addr)?;
    conn.expect_bytes(GREETING).map_err(|f| {
        f.during("the greeting")
            .or_hint("send the greeting right after accept(), before reading")
    })
}

fn echoes(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    let message = b"ping 42\n";
    let got = visit(server.addr, message)?;
    let expected = [GREETING, message].concat();
    ensure(got == expected, || {
        Failure::new("the reply was not the greeting followed by the message")
            .sent_bytes(message)
            .compare(&expected, &got)
            .hint("recv() the client's bytes and send exactly those back, then close")
    })
}

fn serves_in_turn(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    for n in 1..=3 {
        let message = format!("client {n}\n");
        let got = visit(server.addr, message.as_bytes()).map_err(|f| {
            f.during(format!("client {n} of 3"))
                .or_hint("after one client the server must go back to accept() the next")
        })?;
        ensure(got.ends_with(message.as_bytes()), || {
            Failure::new(format!("client {n} of 3 got the wrong echo"))
                .sent_bytes(message.as_bytes())
                .got(show(&got))
        })?;
    }
    Ok(())
}

fn reuse_address(ctx: &mut Ctx) -> Result<(), Failure> {
    let first = start(ctx)?;
    // The server closes first, so its side of this connection lingers in TIME_WAIT.
    visit(first.addr, b"x")?;
    ctx.proc(first.id).kill();
    let during = "restarting on the same port right after a client was served";
    common::restarts_on_same_port(ctx, first, during)
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = common::start_over_ipv6(ctx)?;
    let got = visit(server.addr, b"six\n")?;
    ensure(got == b"hello\nsix\n", || {
        Failure::new("wrong reply over IPv6").compare(b"hello\nsix\n", &got)
    })
}

/// `--host ::` is the IPv6 wildcard; with IPV6_V6ONLY off it takes IPv4 clients too
/// (their addresses appear as `::ffff:a.b.c.d`). Binding a wildcard is only done inside
/// a private host made for the check, where every interface is its own loopback.
fn dual_stack(ctx: &mut Ctx) -> Result<(), Failure> {
    let host = netns::Host::new("dual").map_err(Failure::cannot_test_here)?;
    onlan::start_server_inside(ctx, &host, "::", 5000)
        .map_err(|f| f.during("in a private host with --host ::"))?;
    for ip in [IpAddr::V4(Ipv4Addr::LOCALHOST), LOCALHOST_V6] {
        greeted_in(&host, SocketAddr::new(ip, 5000))?;
    }
    Ok(())
}

/// A client inside `host` connects to `addr` (IPv4 or IPv6) and is greeted.
fn greeted_in(host: &netns::Host, addr: SocketAddr) -> Result<(), Failure> {
    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    let stream = host.connect(addr, net::IO_LIMIT).map_err(|e| {
        net::connect_failure(addr, &e)
            .during(format!(
                "an {family} client of the server started with --host ::"
            ))
            .hint(
                "an IPv6 socket bound to the wildcard :: can take IPv4 clients as well, \
                 but only with the socket option IPV6_V6ONLY off; some systems turn it on \
                 by default, so set it yourself, before bind()",
            )
    })?;
    net::Conn::new(stream).expect_bytes(GREETING).map_err(|f| {
        f.during(format!(
            "the greeting to an {family} client, with --host ::"
        ))
    })
}

/// The server runs out of descriptors: the grader lowers its RLIMIT_NOFILE below what
/// it holds, so its next accept() fails with EMFILE. It must report that and live on,
/// and once the limit is back serve the client that waited, and the next one.
fn survives_emfile(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    let stderr_before = ctx.proc(server.id).stderr().len();
    let usual = common::starve_descriptors(server.pid)?;
    // Its message goes out at once: had the server been waiting in accept() already
    // (with a descriptor reserved), it serves this client and the next accept() fails.
    let mut first = net::connect(server.addr)?;
    first.send(b"first\n")?;
    common::await_failed_accept(ctx, server.id, stderr_before);
    let restored = common::set_open_files_limit(server.pid, usual);
    if let Some(status) = ctx.proc(server.id).wait_exit(Duration::from_millis(200)) {
        return Err(exited_on_emfile(status));
    }
    ensure(restored.is_some(), || {
        Failure::new("the grader could not give the program its descriptors back")
    })?;
    served_after_emfile(first, server.addr)?;
    ctx.ensure_running(server.id, "after accept() failed with EMFILE")
}

/// What `survives-emfile` tells a server that treats EMFILE as fatal.
const EMFILE_HINT: &str = "EMFILE from accept() means this process has no descriptor left \
     for the new connection; they come back as connections close, so it is not fatal: \
     report it, wait a moment and accept again, instead of ending the server";

/// The server ended when accept() failed with EMFILE.
fn exited_on_emfile(status: std::process::ExitStatus) -> Failure {
    Failure::new(format!(
        "the server exited ({}) when accept() found no descriptor left (EMFILE)",
        describe_status(status)
    ))
    .hint(EMFILE_HINT)
}

/// Once the descriptors are back: the client that waited through EMFILE (`first`) gets
/// its greeting and echo, and so does a new one.
fn served_after_emfile(mut first: net::Conn, addr: SocketAddr) -> Result<(), Failure> {
    first.limit = Duration::from_secs(10);
    first
        .expect_bytes(GREETING)
        .and_then(|()| first.read_to_eof(64))
        .and_then(|echo| {
            ensure(echo == b"first\n", || {
                Failure::new("the client that waited through EMFILE got the wrong echo")
                    .compare(b"first\n", &echo)
            })
        })
        .map_err(|f| {
            f.during("the client that arrived while the server had no descriptor left")
                .or_hint(EMFILE_HINT)
        })?;
    let got = visit(addr, b"next\n").map_err(|f| {
        f.during("a client after the descriptors came back")
            .or_hint(EMFILE_HINT)
    })?;
    ensure(got == b"hello\nnext\n", || {
        Failure::new("wrong reply after the descriptors came back").compare(b"hello\nnext\n", &got)
    })
}

fn prints_addresses(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    let mut conn = net::connect(server.addr)?;
    conn.read_exact_bytes(GREETING.len())?;
    common::prints_addresses(ctx, server.id, server.addr.port(), conn.local_port())
}

fn survives_reset(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    let mut rude = net::connect(server.addr)?;
    rude.read_exact_bytes(GREETING.len())?;
    // The server now waits in recv(); a reset makes that recv() fail.
    rude.reset();
    let got =
        visit(server.addr, b"still there?\n").map_err(|f| f.during("the client after a reset"))?;
    ctx.ensure_running(server.id, "after a client reset its connection")?;
    ensure(got.ends_with(b"still there?\n"), || {
        Failure::new("wrong echo after a reset").got(show(&got))
    })
}

fn no_fd_leak(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    common::no_fd_growth(&server, |message| visit(server.addr, message).map(|_| ()))
}

fn privileged_port(ctx: &mut Ctx) -> Result<(), Failure> {
    let root = running_as_root();
    let Some(port) = privileged_port_to_try(root) else {
        return Ok(()); // every port is unprivileged on this machine: nothing to check
    };
    let port = port.to_string();
    let args = ["server", "--host", "127.0.0.1", "--port", &port];
    // Root may bind any port, so the grader runs the program as the user `nobody`,
    // once it knows `nobody` can run it at all (a folder it may not read gives
    // "Permission denied" too, and that would pass for the right answer).
    let id = if root {
        let (_holder, taken) = common::hold_tcp_port()?;
        let probe = ["server", "--host", "127.0.0.1", "--port", &taken];
        if let Err(why) = ctx.other_user_runs_it(65534, &probe) {
            return ctx.cannot_test(format!("{why:#}"));
        }
        ctx.spawn_as_user("server", &args, 65534)?
    } else {
        ctx.spawn("server", &args, None)?
    };
    let run = ctx.finish(id, Duration::from_secs(5))?;
    expect::clean_error(&run, &["permission", "privileged"], 2)
        .map_err(|f| f.during(format!("port {port} as an unprivileged user")))
}

/// A privileged port (below `ip_unprivileged_port_start`) that nobody uses: as root
/// the grader can find one by binding it briefly; otherwise the highest one will do.
fn privileged_port_to_try(root: bool) -> Option<u16> {
    let first_free: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1024);
    let mut candidates = (1..first_free.min(1024)).rev();
    if root {
        candidates.find(|&p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
    } else {
        candidates.next()
    }
}

fn bad_host(ctx: &mut Ctx) -> Result<(), Failure> {
    // 192.0.2.1 is reserved for documentation: no machine has it, and bind() sends nothing.
    let port = net::free_port(LOCALHOST_V4).to_string();
    let words = ["not available", "cannot assign", "not an address"];
    let during = "--host 192.0.2.1, an address this machine does not have";
    common::server_fails_cleanly(ctx, "192.0.2.1", &port, &words, during)
}
