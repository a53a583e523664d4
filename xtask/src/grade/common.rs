//! Checks that several labs run word for word, written once.
//!
//! A lab lists one of these straight in its check table (`run: common::port_in_use`) or
//! calls it from its own check with the details that differ.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use super::net::show;
use super::{Ctx, Failure, expect};

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

/// `server --host 127.0.0.1 --port P` on a port the grader already holds must fail
/// with one clear line that says the port is in use.
pub fn port_in_use(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_holder, port) = hold_tcp_port()?;
    let run = ctx.run(
        "server",
        &["server", "--host", "127.0.0.1", "--port", &port],
        None,
        Duration::from_secs(5),
    )?;
    expect::clean_error(&run, &["in use"], 2)
        .map_err(|f| f.during(format!("port {port} already taken by the grader")))
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
