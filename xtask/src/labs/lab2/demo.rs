//! Lab 2's classroom session (`cargo xtask demo lab2`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::{Demo, Voice};
use crate::grade::peer;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};

/// The demo's server: for each client, read until end-of-file, then answer in two
/// pieces (the second once the client has read the first) and close. Says what it
/// does as `[server]` lines; `tables` are the TCP tables its connections are in.
fn demo_server(listener: TcpListener, stop: Receiver<()>, voice: Voice, tables: Vec<PathBuf>) {
    let say = |text: String| voice.line("server", text);
    let server_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let _ = listener.set_nonblocking(true);
    loop {
        match stop.recv_timeout(Duration::from_millis(10)) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Ok((mut stream, peer)) = listener.accept() else {
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(SERVER_LIMIT));
        say(format!(
            "accepted a client from {peer}; reading until its end-of-file"
        ));
        let mut request = Vec::new();
        // At most 1 MiB: a client that streams for ever gets no more of the grader.
        if (&stream)
            .take(1024 * 1024)
            .read_to_end(&mut request)
            .is_err()
        {
            say(format!("no end-of-file from {peer}; closing"));
            continue;
        }
        say(format!(
            "end-of-file after {} bytes: {}; answering in two pieces",
            request.len(),
            show(&request)
        ));
        let _ = stream.write_all(b"you said:\n");
        if peer::wait_until_read_in(&tables, server_port, peer.port(), &stop, SERVER_LIMIT) {
            let mut shout = request.to_ascii_uppercase();
            if !shout.ends_with(b"\n") {
                shout.push(b'\n');
            }
            let _ = stream.write_all(&shout);
        }
        say(format!("close(): our FIN to {peer}"));
    }
}

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let wire = demo.private_network();
    let listener = demo.listen(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let port = listener.local_addr()?.port();
    let port_text = port.to_string();
    let (stop, stopped) = mpsc::channel::<()>();
    let (voice, tables) = (demo.voice(), demo.tcp_tables());
    let server = std::thread::spawn(move || demo_server(listener, stopped, voice, tables));
    let limit = Duration::from_secs(15);

    demo.say(&format!(
        "A server listens on 127.0.0.1:{port}. It answers only after the client's \
         end-of-file, in two pieces"
    ));
    demo.say(
        "The client: socket, connect (the handshake: SYN, SYN-ACK, ACK), send, \
         shutdown(SHUT_WR) (its FIN, while it keeps reading), recv until 0",
    );
    demo.run(
        "client",
        &[
            "client",
            "--port",
            &port_text,
            "--message",
            "hello from the client",
        ],
        b"",
        limit,
    )?;
    let filter = format!("sport = :{port} or dport = :{port}");
    demo.say(
        "The close: the client's FIN, acknowledged by the server (here on its first reply \
         piece), then the server's FIN and the client's last ACK. The client closed first, \
         so its side now waits in TIME-WAIT",
    );
    demo.ss(&["-tan", &filter]);

    demo.say("The message can come from stdin instead of --message");
    demo.run(
        "client",
        &["client", "--port", &port_text],
        b"two lines\nfrom stdin\n",
        limit,
    )?;

    demo.say(
        "--host 127.0.0.2,localhost: the first address refuses (a RST), the client tries the next",
    );
    demo.run(
        "client",
        &[
            "client",
            "--host",
            "127.0.0.2,localhost",
            "--port",
            &port_text,
            "--message",
            "second address",
        ],
        b"",
        limit,
    )?;

    drop(stop);
    let _ = server.join();
    let closed = if wire {
        port.to_string()
    } else {
        net::free_port(LOCALHOST_V4).to_string()
    };
    demo.say(&format!(
        "Nothing listens on port {closed} (any more): the SYN is answered with a RST, \
         connection refused, one clear line, exit 1"
    ));
    demo.run(
        "client",
        &["client", "--port", &closed, "--message", "anyone?"],
        b"",
        limit,
    )?;
    Ok(())
}
