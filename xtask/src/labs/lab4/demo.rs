//! Lab 4's classroom session (`cargo xtask demo lab4`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::Demo;
use anyhow::Context as _;

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let wire = demo.private_network();
    // In a private network every port is free; on this machine ask the kernel.
    let port = if wire {
        5000
    } else {
        net::free_port(LOCALHOST_V4)
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
        net::free_port(LOCALHOST_V4).to_string()
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
