//! Lab 7's classroom session (`cargo xtask demo lab7`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::Demo;

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let port = demo.free_port();
    let port_text = port.to_string();
    demo.say(&format!(
        "One thread for every client: a non-blocking listener, then epoll (port {port})"
    ));
    demo.start_server(port)?;
    let client_args = ["client", "--host", "127.0.0.1", "--port", &port_text];
    demo.say("A client sends a line and half-closes: epoll wakes the server for the listener, then for the client");
    demo.run(
        "client",
        &client_args,
        b"hello, event loop\n",
        Duration::from_secs(10),
    )?;
    demo.say(
        "A client connects and stays silent: it gets a slot, and the server goes back to sleep",
    );
    let silent = net::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    // settle() waits only while output flows: give the server a moment to start talking.
    thread::sleep(Duration::from_millis(300));
    demo.settle();
    demo.say("Meanwhile another client is served at once, by the same thread: its events carry its own token");
    demo.run(
        "client",
        &client_args,
        b"I am not kept waiting\n",
        Duration::from_secs(10),
    )?;
    demo.say("The silent client leaves without a word: recv() returns 0 and its slot is freed");
    drop(silent);
    thread::sleep(Duration::from_millis(300));
    demo.settle();
    demo.say("Everyone has left: the server sleeps in epoll_wait() with no timeout, using no CPU");
    Ok(())
}
