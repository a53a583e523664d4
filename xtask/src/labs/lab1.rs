//! Lab 1 (tcp-server): the check table and the classroom demo.
//!
//! The server must: listen where told with the backlog it was given, greet each client
//! with `hello\n`, echo one read back and close, serve client after client, survive a
//! client that resets, not leak descriptors, restart at once thanks to SO_REUSEADDR,
//! work over IPv6, and fail with one clear line for an address it cannot have.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use crate::grade::ctx::running_as_root;
use crate::grade::demo::Demo;
use crate::grade::net::{self, LOCALHOST_V4, LOCALHOST_V6, show};
use crate::grade::{Check, Ctx, Failure, Lab, Server, common, ensure, expect, secs};

pub static LAB: Lab = Lab {
    id: "lab1",
    slug: "tcp-server",
    title: "a TCP server, one socket call at a time",
    checks: &[
        Check {
            name: "listens",
            points: 1,
            verifies: "listens on the --host/--port it is given",
            run: listens,
            budget: secs(30),
        },
        Check {
            name: "greets",
            points: 1,
            verifies: "sends hello\\n to a client first",
            run: greets,
            budget: secs(30),
        },
        Check {
            name: "echoes",
            points: 2,
            verifies: "echoes the client's message after the greeting, then closes",
            run: echoes,
            budget: secs(30),
        },
        Check {
            name: "serves-in-turn",
            points: 1,
            verifies: "serves client after client (accept in a loop)",
            run: serves_in_turn,
            budget: secs(30),
        },
        Check {
            name: "backlog",
            points: 1,
            verifies: "listen() uses --backlog (read back from the kernel with ss)",
            run: backlog,
            budget: secs(30),
        },
        Check {
            name: "reuse-address",
            points: 1,
            verifies: "restarts on the same port at once (SO_REUSEADDR)",
            run: reuse_address,
            budget: secs(30),
        },
        Check {
            name: "ipv6",
            points: 1,
            verifies: "works over IPv6 with --host ::1",
            run: ipv6,
            budget: secs(30),
        },
        Check {
            name: "prints-addresses",
            points: 1,
            verifies: "prints its port and each client's address:port",
            run: prints_addresses,
            budget: secs(30),
        },
        Check {
            name: "survives-reset",
            points: 1,
            verifies: "keeps serving after a client resets the connection",
            run: survives_reset,
            budget: secs(30),
        },
        Check {
            name: "no-fd-leak",
            points: 1,
            verifies: "open file descriptors do not grow with clients served",
            run: no_fd_leak,
            budget: secs(30),
        },
        Check {
            name: "port-in-use",
            points: 1,
            verifies: "one-line error and non-zero exit when the port is taken",
            run: common::port_in_use,
            budget: secs(30),
        },
        Check {
            name: "privileged-port",
            points: 1,
            verifies: "one-line error for a privileged port without the right",
            run: privileged_port,
            budget: secs(30),
        },
        Check {
            name: "bad-host",
            points: 1,
            verifies: "one-line error for an address this machine does not have",
            run: bad_host,
            budget: secs(30),
        },
    ],
    demo: Some(demo),
};

const GREETING: &[u8] = b"hello\n";

fn start(ctx: &mut Ctx) -> Result<Server, Failure> {
    ctx.start_server("server", LOCALHOST_V4, &[])
}

/// One client's whole visit: connect, send `message`, read everything until EOF.
fn visit(addr: SocketAddr, message: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut conn = net::connect(addr)?;
    conn.read_exact_bytes(GREETING.len())
        .map_err(|f| f.during("waiting for the greeting"))?;
    conn.send(message)?;
    let rest = conn.read_to_eof(64 * 1024)?;
    Ok([GREETING, &rest].concat())
}

fn listens(ctx: &mut Ctx) -> Result<(), Failure> {
    start(ctx).map(|_| ())
}

fn greets(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    let mut conn = net::connect(server.addr)?;
    let got = conn.read_exact_bytes(GREETING.len())?;
    ensure(got == GREETING, || {
        Failure::new("the first bytes were not the greeting")
            .expected(show(GREETING))
            .got(show(&got))
            .hint("send exactly b\"hello\\n\" right after accept(), before reading")
    })
}

fn echoes(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = start(ctx)?;
    let message = b"ping 42\n";
    let got = visit(server.addr, message)?;
    let expected = [GREETING, message].concat();
    ensure(got == expected, || {
        Failure::new("the reply was not the greeting followed by the message")
            .sent(show(message))
            .expected(show(&expected))
            .got(show(&got))
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
                .sent(show(message.as_bytes()))
                .got(show(&got))
        })?;
    }
    Ok(())
}

fn backlog(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = ctx.start_server("server", LOCALHOST_V4, &["--backlog", "7"])?;
    match net::listen_backlog(server.addr.port()) {
        Some(7) => Ok(()),
        Some(other) => Err(
            Failure::new("the listening socket's backlog is not the one asked for")
                .sent("--backlog 7")
                .expected("backlog 7 (ss -ltn, Send-Q column)")
                .got(format!("backlog {other}"))
                .hint("pass --backlog to listen(); don't hard-code it"),
        ),
        None => Err(Failure::new("could not read the backlog with `ss -ltn`")
            .hint("is iproute2 (ss) installed? the listener may also have gone")),
    }
}

fn reuse_address(ctx: &mut Ctx) -> Result<(), Failure> {
    let first = start(ctx)?;
    // The server closes first, so its side of this connection lingers in TIME_WAIT.
    visit(first.addr, b"x")?;
    ctx.proc(first.id).kill();
    let port = first.addr.port().to_string();
    let id = ctx.spawn(
        "server",
        &["server", "--host", "127.0.0.1", "--port", &port],
        None,
    )?;
    ctx.wait_listening(id, first.addr.port()).map_err(|f| {
        f.during("restarting on the same port right after a client was served")
            .hint("set SO_REUSEADDR before bind(): without it the port stays busy while the old connection is in TIME_WAIT")
    })
}

fn ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = ctx.start_server("server", LOCALHOST_V6, &[]).map_err(|f| {
        f.during("with --host ::1")
            .or_hint("create the socket with the domain of the address (Domain::for_address), not always IPv4")
    })?;
    let got = visit(server.addr, b"six\n")?;
    ensure(got == b"hello\nsix\n", || {
        Failure::new("wrong reply over IPv6")
            .expected(show(b"hello\nsix\n"))
            .got(show(&got))
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
    let first_free: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1024);
    let root = running_as_root();
    // A privileged port nobody uses; as root we can find one by binding it briefly.
    let candidates = (1..first_free.min(1024)).rev();
    let port = if root {
        candidates
            .into_iter()
            .find(|&p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
    } else {
        candidates.into_iter().next()
    };
    let Some(port) = port else {
        return Ok(()); // every port is unprivileged on this machine: nothing to check
    };
    let port = port.to_string();
    let args = ["server", "--host", "127.0.0.1", "--port", &port];
    if root {
        // First make sure `nobody` can run the program at all (a folder it may not read
        // gives "Permission denied" too, and that would pass for the right answer).
        let (_holder, taken) = common::hold_tcp_port()?;
        let probe = ["server", "--host", "127.0.0.1", "--port", &taken];
        if let Err(why) = ctx.other_user_runs_it(65534, &probe) {
            return ctx.cannot_test(why);
        }
    }
    // Root may bind any port, so the grader runs the program as the user `nobody`.
    let id = if root {
        ctx.spawn_as_user("server", &args, 65534)?
    } else {
        ctx.spawn("server", &args, None)?
    };
    let run = ctx.finish(id, Duration::from_secs(5))?;
    expect::clean_error(&run, &["permission", "privileged"], 2)
        .map_err(|f| f.during(format!("port {port} as an unprivileged user")))
}

fn bad_host(ctx: &mut Ctx) -> Result<(), Failure> {
    // 192.0.2.1 is reserved for documentation: no machine has it, and bind() sends nothing.
    let port = net::free_port(LOCALHOST_V4).to_string();
    let run = ctx.run(
        "server",
        &["server", "--host", "192.0.2.1", "--port", &port],
        None,
        Duration::from_secs(5),
    )?;
    expect::clean_error(
        &run,
        &["not available", "cannot assign", "not an address"],
        2,
    )
    .map_err(|f| f.during("--host 192.0.2.1, an address this machine does not have"))
}

fn demo(demo: &mut Demo) -> Result<(), String> {
    let port = demo.free_port();
    let port_text = port.to_string();
    demo.say(&format!(
        "The server takes its steps: socket, setsockopt, bind, listen (port {port})"
    ));
    demo.start(
        "server",
        &["server", "--host", "127.0.0.1", "--port", &port_text],
    )?;
    demo.wait_listening(port)?;
    for n in 1..=2 {
        demo.say(&format!(
            "Client {n} connects, reads the greeting, sends a line and reads the echo"
        ));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let got =
            visit(addr, format!("message from client {n}\n").as_bytes()).map_err(|f| f.problem)?;
        println!("[client {n}] received {}", show(&got));
        demo.settle();
    }
    demo.say("The server is back in accept(), asleep until the next client calls");
    Ok(())
}
