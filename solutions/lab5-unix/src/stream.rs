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
        //- answer: step 1: create a Unix stream socket
        //- hint: Ask the kernel for a local (Unix domain) endpoint that carries a byte stream, like
        //- hint: TCP but addressed by a path in the filesystem. Unix sockets need no protocol
        //- hint: number.
        //- more: socket2's `Socket::new` with `Domain::UNIX` and `Type::STREAM`, and no protocol
        //- more: (`None`); name the call with `.context(...)`.
        Socket::new(Domain::UNIX, Type::STREAM, None).context("socket(AF_UNIX, SOCK_STREAM)")?
        //- end
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
        //- answer: step 3: start listening with the given backlog
        //- hint: Make the socket passive: the kernel queues connecting clients, up to the backlog
        //- hint: you were given, until you accept them.
        //- more: socket2's `Socket::listen` with the backlog number; name the call with
        //- more: `.context(...)`.
        listener.listen(backlog).context("listen()")?;
        //- end
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
            //- answer: step 4: accept the next client on `listener`
            //- hint: Take the next waiting client's connection. If the listener itself is broken,
            //- hint: give up with the error; if only one client failed, report it and wait for the
            //- hint: next.
            //- more: socket2's `Socket::accept` returns `io::Result<(Socket, SockAddr)>`; the
            //- more: helper `listener_is_broken` tells the two cases apart; `return
            //- more: Err(err).context(...)` for the first, `continue` for the second.
            match listener.accept() {
                Ok(pair) => pair,
                // The listener itself is broken (not listening, closed): give up.
                Err(err) if listener_is_broken(&err) => return Err(err).context("accept()"),
                // A client that gave up while queued is its problem, not ours.
                Err(err) => {
                    eprintln!("lab5: accept() failed: {}", shared::errors::explain(&err));
                    continue;
                }
            }
            //- end
        };
        narrate!("accept() -> fd {}", connection.as_raw_fd());

        // Step 5: SO_PEERCRED: the kernel reports the pid, uid and gid of the process
        // that connected, as they were at connect() time. The client cannot lie about
        // them, and TCP has no such thing: over a network, the kernel does not know who
        // is on the other end. This is how local daemons decide whom to trust.
        let credentials: UnixCredentials = {
            //- answer: step 5: ask the kernel who the peer of `connection` is
            //- hint: A Unix socket can tell you who is on the other end: ask the kernel for the
            //- hint: peer's credentials (process id, user id, group id). If that fails, report it
            //- hint: and move on to the next client.
            //- more: nix's `sys::socket::getsockopt` with the option `sockopt::PeerCredentials`
            //- more: (SO_PEERCRED, `man 7 unix`), returning `nix::Result<UnixCredentials>`; name
            //- more: the call with `.context(...)`, as for std's errors, and print the `Failure`.
            match getsockopt(&connection, sockopt::PeerCredentials)
                .context("getsockopt(SO_PEERCRED)")
            {
                Ok(credentials) => credentials,
                Err(failure) => {
                    eprintln!("lab5: {failure}");
                    continue;
                }
            }
            //- end
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
            //- answer: step 6: receive into `buffer` (0 means the client is done sending)
            //- hint: Receive what the client has sent so far; 0 bytes means it is done sending. A
            //- hint: receive interrupted by a signal is simply tried again; any other error ends
            //- hint: this client.
            //- more: `std::io::Read::read` is implemented for `&Socket`, so borrow the connection
            //- more: as `&Socket` to read; match `io::ErrorKind::Interrupted`; `return
            //- more: Err(err).context(...)`.
            match (&*connection).read(&mut buffer) {
                Ok(received) => received,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err).context("recv()"),
            }
            //- end
        };
        narrate!("recv() -> {received} bytes");
        if received == 0 {
            break;
        }
        {
            //- answer: step 6: send all `received` bytes back
            //- hint: Echo back exactly the bytes you received, all of them, however many sends that
            //- hint: takes.
            //- more: `std::io::Write::write_all` through a `&Socket` borrow of the connection, on a
            //- more: slice of the buffer up to `received`; name the call with `.context(...)`.
            (&*connection)
                .write_all(&buffer[..received])
                .context("send()")?;
            //- end
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
        //- answer: step 1: create a Unix stream socket
        //- hint: Ask the kernel for a local (Unix domain) endpoint that carries a byte stream, like
        //- hint: TCP but addressed by a path in the filesystem. Unix sockets need no protocol
        //- hint: number.
        //- more: socket2's `Socket::new` with `Domain::UNIX` and `Type::STREAM`, and no protocol
        //- more: (`None`); name the call with `.context(...)`.
        Socket::new(Domain::UNIX, Type::STREAM, None).context("socket(AF_UNIX, SOCK_STREAM)")?
        //- end
    };
    narrate!("socket(AF_UNIX, SOCK_STREAM) -> fd {}", socket.as_raw_fd());

    // Step 2: connect() to the path. Typical failures name the lesson: ENOENT (no such
    // file: no server), ECONNREFUSED (a stale file: its server is dead), EACCES (the
    // file's permissions keep us out: we need write permission on it).
    {
        //- answer: step 2: connect to the server's `address`
        //- hint: Connect to the server's socket file. If it fails, the error should name the path
        //- hint: (missing file, no permission, nobody listening).
        //- more: socket2's `Socket::connect` with the `&SockAddr`; `.path_context(...)` (from
        //- more: `socket_file`) explains path errors.
        socket
            .connect(&address)
            .path_context(format!("connect({})", path.display()))?;
        //- end
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
            //- answer: step 3: shut down the sending side of `sender_socket`
            //- hint: Half-close: tell the server you will send nothing more, so it sees end-of-file
            //- hint: and knows the request is complete, while you keep reading its reply.
            //- more: socket2's `Socket::shutdown` with `std::net::Shutdown::Write`
            //- more: (shutdown(SHUT_WR)); name the call with `.context(...)`.
            sender_socket
                .shutdown(Shutdown::Write)
                .context("shutdown(SHUT_WR)")?;
            //- end
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
            //- answer: step 4: receive the reply into `buffer` (0 means the server is done)
            //- hint: Receive the next piece of the reply; 0 bytes means the server is done. Retry
            //- hint: after an interruption by a signal; any other error is a failure.
            //- more: `std::io::Read::read` through a `&Socket` borrow; match
            //- more: `io::ErrorKind::Interrupted`; `return Err(err).context(...)`.
            match (&socket).read(&mut buffer) {
                Ok(received) => received,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err).context("recv()"),
            }
            //- end
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
