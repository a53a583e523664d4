//! Lab 1's classroom session (`cargo xtask demo lab1`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::Demo;

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    demo.private_network();
    let port = demo.free_port();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    demo.say(&format!(
        "The server takes its steps: socket, setsockopt, bind, listen (127.0.0.1:{port})"
    ));
    demo.start_server(port)?;
    let filter = format!("sport = :{port}");
    demo.say("The kernel's view of the listening socket: Send-Q is the backlog");
    demo.ss(&["-ltn", &filter]);

    demo.say(
        "Client 1 connects: the kernel completes the handshake (SYN, SYN-ACK, ACK) \
         before accept() returns",
    );
    let mut first = demo.connect(addr)?;
    let greeting = first.read_exact_bytes(GREETING.len())?;
    demo.line("client 1", format!("received {}", show(&greeting)));

    demo.say(
        "The server now waits in recv() for client 1. Clients 2 and 3 call meanwhile: \
         their handshakes complete anyway and they wait in the queue (the backlog)",
    );
    let second = demo.connect(addr)?;
    let third = demo.connect(addr)?;
    demo.line(
        "client 2",
        "connect() returned: queued, not accepted yet".into(),
    );
    demo.line(
        "client 3",
        "connect() returned: queued, not accepted yet".into(),
    );
    demo.say("ss shows them: Recv-Q of the listener counts finished handshakes not accepted");
    demo.ss(&["-ltn", &filter]);

    demo.say("Client 1 sends a line; the server echoes it and closes: a FIN from each side");
    first.send(b"message from client 1\n")?;
    let echo = first.read_to_eof(64 * 1024)?;
    demo.line(
        "client 1",
        format!("received {} then end-of-file", show(&echo)),
    );
    drop(first);

    demo.say("The server accepts client 2 from the queue and serves it");
    let mut second = second;
    let greeting = second.read_exact_bytes(GREETING.len())?;
    second.send(b"message from client 2\n")?;
    let echo = second.read_to_eof(64 * 1024)?;
    demo.line(
        "client 2",
        format!("received {}", show(&[greeting, echo].concat())),
    );

    demo.say(
        "Client 3 gives up without a goodbye: closing with SO_LINGER 0 sends a reset (RST) \
         instead of a FIN; the server reports it and carries on",
    );
    third.reset();
    demo.settle();
    let closed = SocketAddr::new(addr.ip(), demo.free_port());
    demo.say(&format!(
        "Nothing listens on port {}: the kernel answers the SYN with a RST, connection refused",
        closed.port()
    ));
    match demo.connect(closed) {
        Ok(_) => demo.line("client 4", "connected?! something listens there".into()),
        Err(why) => demo.line("client 4", format!("{why:#}")),
    }
    demo.say("The server is back in accept(), asleep until the next client calls");
    Ok(())
}
