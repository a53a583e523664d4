//! Lab 3's classroom session (`cargo xtask demo lab3`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::Demo;
use std::net::{IpAddr, Ipv4Addr};

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    if demo.private_network() {
        demo.ethernet_sized_packets();
    }
    let port = demo.free_port();
    let port_text = port.to_string();
    demo.say(&format!(
        "The echo server takes its steps: socket, setsockopt, bind, listen (port {port})"
    ));
    demo.start_server(port)?;
    demo.say(
        "The client sends each line over a new connection: connect, send, shutdown(SHUT_WR), \
         recv until 0, close",
    );
    demo.run(
        "client",
        &["client", "--host", "127.0.0.1", "--port", &port_text],
        b"hello\nis anybody there?\n",
        Duration::from_secs(10),
    )?;
    if demo.shows_wire() {
        bytes_not_messages(demo, port)?;
    }

    let stamp_port = demo.free_port();
    let stamp_text = stamp_port.to_string();
    demo.say(&format!(
        "With --timestamp (port {stamp_port}) the server answers whole lines: [<ctime>] <line>"
    ));
    demo.start(
        "server",
        &[
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &stamp_text,
            "--timestamp",
        ],
    )?;
    demo.wait_listening(stamp_port)?;
    demo.run(
        "client",
        &["client", "--host", "127.0.0.1", "--port", &stamp_text],
        b"what time is it?\n",
        Duration::from_secs(10),
    )?;

    demo.say(
        "Lines in pieces: TCP keeps no message boundaries, so a line is stamped only once \
         its \\n has come",
    );
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), stamp_port);
    let mut conn = demo.connect(addr)?;
    for piece in [&b"hel"[..], b"lo\nwor", b"ld\n"] {
        demo.line("grader", format!("send({})", show(piece)));
        conn.send(piece)?;
        // A visible pause, so that each piece reaches the server in a recv() of its own.
        thread::sleep(PIECE_GAP);
        demo.settle();
    }
    demo.line("grader", "shutdown(SHUT_WR)".into());
    conn.half_close()?;
    let answer = conn.read_to_eof(4096)?;
    thread::sleep(PIECE_GAP);
    demo.settle();
    demo.line("grader", format!("received {}", show(&answer)));
    demo.say("Both servers are back in accept(), asleep until the next client calls");
    Ok(())
}

/// On the wire (a private network, Ethernet-sized packets): several send()s arriving in
/// one recv(), and one send() leaving as several segments.
fn bytes_not_messages(demo: &mut Demo, port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    demo.say(
        "Three send()s, one recv(): client A keeps the server busy while client B, queued, \
         sends three pieces; three segments cross the wire",
    );
    let mut first = demo.connect(addr)?;
    first.send(b"A\n")?;
    demo.settle();
    let mut second = demo.connect(addr)?;
    for piece in [&b"one\n"[..], b"two\n", b"three\n"] {
        demo.line("client B", format!("send({})", show(piece)));
        second.send(piece)?;
    }
    demo.settle();
    demo.say("A finishes; the server accepts B, and its first recv() returns all three at once");
    first.half_close()?;
    first.read_to_eof(4096)?;
    drop(first);
    demo.settle();
    second.half_close()?;
    let echo = second.read_to_eof(4096)?;
    demo.line("client B", format!("received {}", show(&echo)));
    drop(second);

    demo.say(
        "One send() of 4000 bytes: TCP cuts it into segments that fit a 1500-byte packet \
         (the receiver may get them in one recv() or several)",
    );
    let text: Vec<u8> = (0..80)
        .flat_map(|n| {
            format!("line {n:02} of one big send() .......................\n").into_bytes()
        })
        .collect();
    let mut big = demo.connect(addr)?;
    demo.line("client C", format!("send({} bytes)", text.len()));
    big.send(&text)?;
    big.half_close()?;
    let echo = big.read_to_eof(64 * 1024)?;
    demo.line(
        "client C",
        format!("received {} bytes, then end-of-file", echo.len()),
    );
    demo.settle();
    Ok(())
}
