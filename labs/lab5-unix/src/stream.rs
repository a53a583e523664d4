//! The stream pair: an echo server and its client, talking over a path, not a port.
//!
//! ```text
//! server: socket(UNIX, STREAM) -> bind(path) -> chmod() -> listen() -> loop {
//!             accept() -> getsockopt(SO_PEERCRED) -> loop { recv() -> send() } -> close() }
//! client: socket(UNIX, STREAM) -> connect(path) -> send(stdin) -> shutdown(WR)
//!             -> recv() until end-of-stream -> close()
//! ```
//!
//! Apart from the address, the calls are the ones TCP uses: a Unix stream socket is a
//! reliable, ordered byte stream too. What is new is what the kernel can tell the
//! server about its peer: which process, user and group is on the other end.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread;

use nix::sys::socket::{UnixCredentials, getsockopt, sockopt};
use shared::{Context, Failure, narrate};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::socket_file::{self, OnSignal, PathContext, RemoveOnDrop};

/// How much we move per recv()/send() call; any size works, a stream has no messages.
const CHUNK: usize = 4096;

/// `lab5 server`: steps 1 to 6.
pub fn server(path: &Path, mode: u32, backlog: i32) -> Result<(), Failure> {
    // Signals wait (pending) from here on, until the signal thread collects them.
    socket_file::hold_stop_signals()?;
    let address = socket_file::unix_address(path)?;

    // Step 1: socket() in the UNIX domain. No protocol to choose: the kernel itself
    // carries the bytes from one process to the other, no IP and no TCP involved.
    let listener: Socket = {
        // Stuck? `cargo xtask hint lab5`
        todo!("step 1: create a Unix stream socket");
    };
    narrate!(
        "socket(AF_UNIX, SOCK_STREAM) -> fd {}",
        listener.as_raw_fd()
    );

    // Step 2: bind() creates the socket file, with owner-only permissions by default
    // (and a stale file from a dead server cleared first): see socket_file.rs.
    let file = socket_file::bind_socket_file(&listener, path, &address, Type::STREAM, mode)?;
    let _remove_on_return = RemoveOnDrop(file.clone());
    socket_file::remove_on_signals(file, OnSignal::Stop)?;

    // Step 3: listen(), exactly as for TCP: the kernel queues connecting clients.
    {
        // Stuck? `cargo xtask hint lab5`
        todo!("step 3: start listening with the given backlog");
    }
    narrate!("listen(backlog={backlog})");
    println!(
        "listening on {} (unix stream socket, mode {mode:04o})",
        path.display()
    );

    loop {
        // Step 4: accept() the next client. Its address is usually "unnamed": a client
        // rarely binds a path of its own, so the path tells us nothing about it.
        let (connection, _peer): (Socket, SockAddr) = {
            // Stuck? `cargo xtask hint lab5`
            todo!("step 4: accept the next client on `listener`");
        };
        narrate!("accept() -> fd {}", connection.as_raw_fd());

        // Step 5: SO_PEERCRED: the kernel reports the pid, uid and gid of the process
        // that connected, as they were at connect() time. The client cannot lie about
        // them, and TCP has no such thing: over a network, the kernel does not know who
        // is on the other end. This is how local daemons decide whom to trust.
        let credentials: UnixCredentials = {
            // Stuck? `cargo xtask hint lab5`
            todo!("step 5: ask the kernel who the peer of `connection` is");
        };
        let who = format!(
            "pid {} (uid {}, gid {})",
            credentials.pid(),
            credentials.uid(),
            credentials.gid()
        );
        narrate!("getsockopt(SO_PEERCRED) -> {who}");
        println!("client {who} connected");

        // One thread per client, so a slow client does not keep the others waiting.
        // A client's failure ends its own thread, never the server.
        thread::spawn(move || match echo(&connection) {
            Ok(total) => println!("client {who}: echoed {total} bytes, closed"),
            Err(failure) => eprintln!("lab5: client {who}: {failure}"),
        });
    }
}

/// Errors of accept() that will repeat for ever: retrying them would only spin.
fn listener_is_broken(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP)
    )
}

/// Step 6: echo until the client half-closes, then half-close in turn.
/// Dropping the socket when the thread ends is close().
fn echo(connection: &Socket) -> Result<u64, Failure> {
    let mut buffer = [0u8; CHUNK];
    let mut total = 0u64;
    loop {
        // Step 6: recv() whatever has arrived (any amount: a stream keeps no message
        // boundaries), send all of it back, and repeat until recv() returns 0: the
        // client's end-of-stream, its shutdown(SHUT_WR).
        let received: usize = {
            // Stuck? `cargo xtask hint lab5`
            todo!("step 6: receive into `buffer` (0 means the client is done sending)");
        };
        narrate!("recv() -> {received} bytes");
        if received == 0 {
            break;
        }
        {
            // Stuck? `cargo xtask hint lab5`
            todo!("step 6: send all `received` bytes back");
        }
        narrate!("send({received} bytes)");
        total += received as u64;
    }
    // Our own end-of-stream tells the client the reply is complete.
    connection
        .shutdown(Shutdown::Write)
        .context("shutdown(SHUT_WR)")?;
    narrate!("shutdown(SHUT_WR); close()");
    Ok(total)
}

/// `lab5 client`: steps 1 to 4.
pub fn client(path: &Path) -> Result<(), Failure> {
    let address = socket_file::unix_address(path)?;

    // Step 1: socket() in the UNIX domain, the same type as the server's.
    let socket: Socket = {
        // Stuck? `cargo xtask hint lab5`
        todo!("step 1: create a Unix stream socket");
    };
    narrate!("socket(AF_UNIX, SOCK_STREAM) -> fd {}", socket.as_raw_fd());

    // Step 2: connect() to the path. Typical failures name the lesson: ENOENT (no such
    // file: no server), ECONNREFUSED (a stale file: its server is dead), EACCES (the
    // file's permissions keep us out: we need write permission on it).
    {
        // Stuck? `cargo xtask hint lab5`
        todo!("step 2: connect to the server's `address`");
    }
    narrate!("connect({})", path.display());

    // Send and receive at the same time: if we sent everything before reading, a
    // large input could fill both directions' buffers while the server waits for us
    // to read its echo, and we wait for it to read more: a deadlock. A second thread
    // sends stdin and then half-closes (step 3) while this one reads the reply (step 4).
    let sender_socket = socket.try_clone().context("dup()")?;
    let sender = thread::spawn(move || -> Result<(), Failure> {
        send_stdin(&sender_socket)?;
        // Step 3: the half-close. The server reads to end-of-stream, so without it the
        // server would wait for more forever, and we for its end-of-stream.
        {
            // Stuck? `cargo xtask hint lab5`
            todo!("step 3: shut down the sending side of `sender_socket`");
        }
        narrate!("shutdown(SHUT_WR)");
        Ok(())
    });

    let mut buffer = [0u8; CHUNK];
    let mut stdout = io::stdout().lock();
    let mut total = 0u64;
    loop {
        // Step 4: recv() the echo, as it comes, until end-of-stream (0): the server's
        // shutdown after our own. Only then is the reply known to be complete.
        let received: usize = {
            // Stuck? `cargo xtask hint lab5`
            todo!("step 4: receive the reply into `buffer` (0 means the server is done)");
        };
        if received == 0 {
            break;
        }
        total += received as u64;
        stdout
            .write_all(&buffer[..received])
            .context("write(stdout)")?;
    }
    stdout.flush().context("write(stdout)")?;
    narrate!("recv() -> end of stream after {total} bytes; close()");
    match sender.join() {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::new("the sending thread panicked")),
    }
}

/// The sending half of step 3: all of stdin, every byte, over `socket`.
fn send_stdin(socket: &Socket) -> Result<(), Failure> {
    let mut stdin = io::stdin().lock();
    let mut buffer = [0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let read = match stdin.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).context("read(stdin)"),
        };
        // write_all() repeats send() until every byte is out.
        let mut writer = socket;
        writer.write_all(&buffer[..read]).context("send()")?;
        total += read as u64;
    }
    narrate!("send({total} bytes)");
    Ok(())
}
