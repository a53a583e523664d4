//! Lab 6's classroom session (`cargo xtask demo lab6`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::Demo;
use std::net::{IpAddr, Ipv4Addr};

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let port = demo.free_port();
    let port_text = port.to_string();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let client_args = ["client", "--host", "127.0.0.1", "--port", &port_text];
    demo.say(&format!(
        "The server: socket, setsockopt, bind, listen on port {port}, then sigaction for SIGINT and SIGTERM (at most 2 clients)"
    ));
    let server = demo.start(
        "server",
        &[
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--max-clients",
            "2",
            "--grace-ms",
            "2000",
        ],
    )?;
    demo.wait_listening(port)?;

    demo.say("Two quiet clients connect: each gets a thread of its own, and says nothing");
    let mut quiet = Vec::new();
    for n in 1..=2 {
        let conn = served_client(addr, &format!("quiet client {n}"))?;
        println!("[quiet client {n}] connected and answered once, now silent");
        quiet.push(conn);
        demo.settle();
    }

    demo.say("A third client: both places are taken, so it hears busy: and is hung up on");
    demo.run(
        "client",
        &client_args,
        b"anybody there?\n",
        Duration::from_secs(10),
    )?;

    demo.say("One quiet client leaves; its place goes to the next caller, served while the other still sits silent");
    drop(quiet.remove(0));
    demo.settle();
    demo.run(
        "client",
        &client_args,
        b"hello\nthreads\n",
        Duration::from_secs(10),
    )?;

    demo.say("Ctrl+C (SIGINT): close the listener, hang up on the idle client at its next tick, say bye, exit 0");
    demo.signal(server, Signal::SIGINT);
    if !demo.wait_exit(server, Duration::from_secs(10)) {
        anyhow::bail!("the server did not exit after SIGINT");
    }
    drop(quiet);
    Ok(())
}
