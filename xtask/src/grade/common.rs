//! Checks that several labs run word for word, written once.
//!
//! A lab lists one of these straight in its check table (`run: common::port_in_use`) or
//! calls it from its own check with the details that differ.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use super::net::{self, LOCALHOST_V4, LOCALHOST_V6, show};
use super::{Ctx, Failure, Server, ensure, expect};

/// A TCP port the grader holds open on 127.0.0.1, and its number as text.
/// The port stays taken until the listener is dropped.
pub fn hold_tcp_port() -> Result<(TcpListener, String), Failure> {
    let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Failure::new(format!("grader could not listen: {e}")))?;
    let port = holder
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(0)
        .to_string();
    Ok((holder, port))
}

/// `server --host 127.0.0.1 --port P extra...` on a free port, seen listening.
pub fn start(ctx: &mut Ctx, extra: &[&str]) -> Result<Server, Failure> {
    ctx.start_server("server", LOCALHOST_V4, extra)
}

/// `server --host 127.0.0.1 --port P` on a port the grader already holds must fail
/// with one clear line that says the port is in use.
pub fn port_in_use(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_holder, port) = hold_tcp_port()?;
    let during = format!("port {port} already taken by the grader");
    server_fails_cleanly(ctx, "127.0.0.1", &port, &["in use"], during)
}

/// `server --host HOST --port PORT` must fail within 5 s with one clear line (at most
/// two) mentioning one of `words`; `during` says what the grader arranged.
pub fn server_fails_cleanly(
    ctx: &mut Ctx,
    host: &str,
    port: &str,
    words: &[&str],
    during: impl std::fmt::Display,
) -> Result<(), Failure> {
    let run = ctx.run(
        "server",
        &["server", "--host", host, "--port", port],
        None,
        Duration::from_secs(5),
    )?;
    expect::clean_error(&run, words, 2).map_err(|f| f.during(during))
}

/// `server --backlog N` on 127.0.0.1 must listen with a backlog of N.
pub fn backlog<const N: u32>(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = ctx.start_server("server", LOCALHOST_V4, &["--backlog", &N.to_string()])?;
    listens_with_backlog(server.addr.port(), N)
}

/// The listener on `port` must have the backlog `asked` (as `--backlog` asked it).
pub fn listens_with_backlog(port: u16, asked: u32) -> Result<(), Failure> {
    match net::listen_backlog(port) {
        Some(got) if got == asked => Ok(()),
        Some(other) => Err(
            Failure::new("the listening socket's backlog is not the one asked for")
                .sent(format!("--backlog {asked}"))
                .expected(format!("backlog {asked} (ss -ltn, Send-Q column)"))
                .got(format!("backlog {other}"))
                .hint("pass --backlog to listen(); don't hard-code it"),
        ),
        None => Err(no_backlog(port)),
    }
}

/// The backlog could not be read: nothing listens on `port` any more.
pub fn no_backlog(port: u16) -> Failure {
    Failure::new("could not read the backlog: nothing listens on the port any more")
        .expected(format!("a listener on port {port} (ss -ltn)"))
        .hint("the server closed its listening socket (or exited) right after starting")
}

/// `server --host ::1` on a free port, seen listening.
pub fn start_over_ipv6(ctx: &mut Ctx) -> Result<Server, Failure> {
    ctx.start_server("server", LOCALHOST_V6, &[]).map_err(|f| {
        f.during("with --host ::1").or_hint(
            "create the socket with the domain of the address (Domain::for_address), not always IPv4",
        )
    })
}

/// Starts the server again on the port of `first` (killed by the check, its old
/// connection lingering on the port) and requires it to listen at once. `during` says
/// how the check left the port.
pub fn restarts_on_same_port(ctx: &mut Ctx, first: Server, during: &str) -> Result<(), Failure> {
    let port = first.addr.port().to_string();
    let id = ctx.spawn(
        "server",
        &["server", "--host", "127.0.0.1", "--port", &port],
        None,
    )?;
    ctx.wait_listening(id, first.addr.port()).map_err(|f| {
        f.during(during)
            .hint("set SO_REUSEADDR before bind(): without it the port stays busy while the old connection is in TIME_WAIT")
    })
}

/// The server `id`, listening on `listen_port`, must print that port and the address
/// of its client (the grader's end, `client_port`) on stdout.
pub fn prints_addresses(
    ctx: &mut Ctx,
    id: usize,
    listen_port: u16,
    client_port: u16,
) -> Result<(), Failure> {
    let limit = Duration::from_secs(2);
    let wanted = [
        (
            listen_port.to_string(),
            "the port it listens on, e.g. `listening on 127.0.0.1:5000`",
        ),
        (
            format!(":{client_port}"),
            "each client's address as accept() returns it, e.g. `client 127.0.0.1:54012 connected`",
        ),
    ];
    for (needle, what) in wanted {
        if !expect::stdout_mentions(ctx, id, &needle, limit) {
            return Err(Failure::new(format!("stdout never mentioned {needle:?}"))
                .got(show(&ctx.proc(id).stdout()))
                .hint(format!("print {what} (and flush stdout)")));
        }
    }
    Ok(())
}

/// Serves one client, counts the server's open descriptors, serves 20 more and requires
/// the count not to have grown: each client's socket must be closed when it is done.
/// `serve` runs one whole client conversation with the given message.
pub fn no_fd_growth(
    server: &Server,
    mut serve: impl FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    serve(b"warm up\n")?;
    let baseline = expect::fds_settle(server.pid, 0, Duration::from_millis(200)).unwrap_or(0);
    for n in 0..20 {
        serve(format!("{n}\n").as_bytes())?;
    }
    let after = expect::fds_settle(server.pid, baseline, Duration::from_secs(2)).unwrap_or(0);
    ensure(after <= baseline, || {
        Failure::new("open file descriptors grew while serving clients")
            .expected(format!(
                "about {baseline} open fds after 20 more clients (as after the first)"
            ))
            .got(format!("{after} open fds (ls /proc/{}/fd)", server.pid))
            .hint("close (drop) each client's socket when you are done with it")
    })
}

/// For the EMFILE checks: lowers the soft RLIMIT_NOFILE of the program `pid` to 3, below
/// the descriptors it already holds (its listener is at least fd 3), so its next
/// accept() fails with EMFILE. Returns the soft limit to give back.
pub fn starve_descriptors(pid: u32) -> Result<libc::rlim_t, Failure> {
    set_open_files_limit(pid, 3).ok_or_else(|| {
        Failure::cannot_test_here("cannot change the program's descriptor limit (prlimit)")
    })
}

/// Waits until a failed accept() shows: a line on stderr after `stderr_before` bytes, or
/// the end of the program. A program that says nothing gets 5 s to try, then the check
/// goes on (it then passes or fails on what the program does next, never on time).
pub fn await_failed_accept(ctx: &mut Ctx, id: usize, stderr_before: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline
        && ctx.proc(id).stderr().len() == stderr_before
        && ctx.proc(id).exited().is_none()
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sets the soft RLIMIT_NOFILE of process `pid` to `soft` (its hard limit unchanged);
/// returns the soft limit it had, or None when the kernel refused.
pub fn set_open_files_limit(pid: u32, soft: libc::rlim_t) -> Option<libc::rlim_t> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit only reads `new` and writes `old`, both valid for the call.
    let got = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut old,
        )
    };
    if got != 0 {
        return None;
    }
    let new = libc::rlimit {
        rlim_cur: soft.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: as above.
    let set = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut(),
        )
    };
    (set == 0).then_some(old.rlim_cur)
}
