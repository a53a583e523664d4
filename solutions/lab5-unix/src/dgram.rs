//! The datagram pair: lab 4's sendto()/recvfrom() split, on paths instead of ports.
//!
//! ```text
//! server: socket(UNIX, DGRAM) -> bind(path) -> loop { recvfrom() -> sendto(sender's path) }
//! client: socket(UNIX, DGRAM) -> bind(own path) -> per line { sendto(server) -> recvfrom() }
//!             -> unlink(own path)
//! ```
//!
//! As with UDP, each datagram arrives whole and is answered to its sender. Unlike UDP,
//! the kernel does not invent a return address: a UDP client gets an ephemeral port on
//! its first sendto(), but a Unix datagram socket that never bound a path is unnamed,
//! and the server has nowhere to send its reply. So the client binds a path of its own,
//! and, like the server, removes it when it is done.
//!
//! Also unlike UDP, nothing is lost between two processes on one machine: when the
//! receiver's queue is full, the kernel makes the sender wait (or fail with EAGAIN)
//! instead of dropping the datagram. The client still keeps a deadline, since the
//! server may be busy or gone.

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::sockaddr::as_uninit;
use shared::{Context, Failure, narrate};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::socket_file::{self, OnSignal, PathContext, RemoveOnDrop};

/// The largest datagram the server echoes. A Unix datagram can be bigger (up to the
/// socket's send buffer); recvfrom() would then silently cut it, so we ask with
/// MSG_TRUNC for its real length and answer an error instead of a cut-off echo.
const DATAGRAM_BUFFER: usize = 65_536;

/// `lab5 dgram-server`: steps 1 to 4.
pub fn server(path: &Path, mode: u32) -> Result<(), Failure> {
    socket_file::hold_stop_signals()?;
    let address = socket_file::unix_address(path)?;

    // Step 1: socket() in the UNIX domain with type DGRAM: messages, kept whole.
    let socket: Socket = {
        //- answer: step 1: create a Unix datagram socket
        //- hint: Ask the kernel for a local (Unix domain) endpoint that carries datagrams: each
        //- hint: send arrives whole, as one message, or not at all. Unix sockets need no protocol
        //- hint: number.
        //- more: socket2's `Socket::new` with `Domain::UNIX` and `Type::DGRAM`, and no protocol
        //- more: (`None`); name the call with `.context(...)`.
        Socket::new(Domain::UNIX, Type::DGRAM, None).context("socket(AF_UNIX, SOCK_DGRAM)")?
        //- end
    };
    narrate!("socket(AF_UNIX, SOCK_DGRAM) -> fd {}", socket.as_raw_fd());

    // Step 2: bind() the path (see socket_file.rs). No listen(), no accept(): as with
    // UDP, the one bound socket receives every client's datagrams.
    let file = socket_file::bind_socket_file(&socket, path, &address, Type::DGRAM, mode)?;
    let _remove_on_return = RemoveOnDrop(file.clone());
    socket_file::remove_on_signals(file, OnSignal::Stop)?;
    println!(
        "bound to {} (unix datagram socket, mode {mode:04o}): waiting for datagrams",
        path.display()
    );

    let mut buffer = vec![0u8; DATAGRAM_BUFFER];
    loop {
        // Step 3: recvfrom() one whole datagram and its sender's address: the path the
        // sender bound, or nothing if it did not bind one. MSG_TRUNC makes it return
        // the datagram's real length even when that is more than fits in `buffer`.
        let (length, sender): (usize, SockAddr) = {
            //- answer: step 3: receive one datagram into `buffer` with MSG_TRUNC, and its sender
            //- hint: Receive one datagram and its sender. Ask the kernel to report the datagram's
            //- hint: real length even when it did not fit the buffer, so you can tell a truncated
            //- hint: message from a full one. An error is reported and the server goes on.
            //- more: socket2's `Socket::recv_from_with_flags` with `as_uninit` of the buffer and
            //- more: the flag `libc::MSG_TRUNC` (see `man 2 recv`); `shared::errors::explain`;
            //- more: `continue`.
            match socket.recv_from_with_flags(as_uninit(&mut buffer), libc::MSG_TRUNC) {
                Ok(pair) => pair,
                Err(err) => {
                    eprintln!("lab5: recvfrom() failed: {}", shared::errors::explain(&err));
                    continue;
                }
            }
            //- end
        };
        let Some(sender_path) = sender.as_pathname().map(Path::to_path_buf) else {
            narrate!("recvfrom() -> {length} bytes from an unnamed socket");
            eprintln!(
                "lab5: a datagram of {length} bytes came from an unnamed socket: there is \
                 no address to reply to (a datagram client must bind() a path of its own)"
            );
            continue;
        };
        let shown = sender_path.display();
        narrate!("recvfrom() -> {length} bytes from {shown}");

        let reply: Vec<u8> = if length > buffer.len() {
            format!(
                "error: datagram of {length} bytes is larger than this server's {}-byte \
                 buffer; only its start arrived, so it is not echoed",
                buffer.len()
            )
            .into_bytes()
        } else {
            buffer[..length].to_vec()
        };

        // Step 4: sendto() the sender's path. MSG_DONTWAIT: a client whose queue is
        // full (it sends without reading) gets no reply rather than freezing the
        // server for everyone else; a client that is gone gives ECONNREFUSED or ENOENT.
        let sent: usize = {
            //- answer: step 4: send `reply` to `sender` without blocking
            //- hint: Send the reply to the sender's address, but never block: a client that stopped
            //- hint: reading must not freeze the server. Report a failure (with the socket path)
            //- hint: and go on.
            //- more: socket2's `Socket::send_to_with_flags` with the reply, the sender's
            //- more: `&SockAddr` and `libc::MSG_DONTWAIT`; `socket_file::explain` words the error;
            //- more: `continue`.
            match socket.send_to_with_flags(&reply, &sender, libc::MSG_DONTWAIT) {
                Ok(sent) => sent,
                Err(err) => {
                    eprintln!(
                        "lab5: sendto({shown}) failed: {}",
                        socket_file::explain(&err)
                    );
                    continue;
                }
            }
            //- end
        };
        narrate!("sendto({shown}, {sent} bytes)");
        println!("{shown}: got {length} bytes, replied {sent} bytes");
    }
}

/// `lab5 dgram-client`: steps 1 to 5.
pub fn client(
    server_path: &Path,
    own_path: Option<PathBuf>,
    timeout_ms: u64,
) -> Result<(), Failure> {
    socket_file::hold_stop_signals()?;
    let server = socket_file::unix_address(server_path)?;
    // Our own address: a fresh name per process, in the temp directory unless asked.
    let own_path = own_path.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("lab5-dgram-client-{}.sock", std::process::id()))
    });
    let own_address = socket_file::unix_address(&own_path)?;

    // Step 1: socket() in the UNIX domain with type DGRAM, like the server's.
    let socket: Socket = {
        //- answer: step 1: create a Unix datagram socket
        //- hint: Ask the kernel for a local (Unix domain) endpoint that carries datagrams: each
        //- hint: send arrives whole, as one message, or not at all. Unix sockets need no protocol
        //- hint: number.
        //- more: socket2's `Socket::new` with `Domain::UNIX` and `Type::DGRAM`, and no protocol
        //- more: (`None`); name the call with `.context(...)`.
        Socket::new(Domain::UNIX, Type::DGRAM, None).context("socket(AF_UNIX, SOCK_DGRAM)")?
        //- end
    };
    narrate!("socket(AF_UNIX, SOCK_DGRAM) -> fd {}", socket.as_raw_fd());

    // Step 2: bind() a path of our own. This is the step UDP clients never need: it
    // gives our datagrams a return address. Owner-only, like the server's file; the
    // server (the same user here) needs write permission on it to reply.
    let file = socket_file::bind_socket_file(&socket, &own_path, &own_address, Type::DGRAM, 0o600)?;
    // Removed whether we finish, fail, or are stopped by a signal.
    let _remove_on_return = RemoveOnDrop(file.clone());
    socket_file::remove_on_signals(file, OnSignal::Interrupted)?;

    // Step 3: a deadline for each reply: the server may be busy, stuck or gone.
    let timeout = Duration::from_millis(timeout_ms);
    {
        //- answer: step 3: make recvfrom() give up after `timeout`
        //- hint: A lost or unanswered request must not keep the client waiting forever: bound how
        //- hint: long each receive may wait by `timeout`.
        //- more: socket2's `Socket::set_read_timeout` takes an `Option<Duration>` (SO_RCVTIMEO);
        //- more: name the call with `.context(...)`.
        socket
            .set_read_timeout(Some(timeout))
            .context("setsockopt(SO_RCVTIMEO)")?;
        //- end
    }
    narrate!("setsockopt(SO_RCVTIMEO, {timeout_ms} ms)");

    let mut stdin = io::stdin().lock();
    let interactive = stdin.is_terminal();
    let mut stdout = io::stdout().lock();
    let mut line = Vec::new();
    let mut reply = vec![0u8; DATAGRAM_BUFFER];
    loop {
        if interactive {
            print!("> ");
            stdout.flush().context("write(stdout)")?;
        }
        line.clear();
        if stdin.read_until(b'\n', &mut line).context("read(stdin)")? == 0 {
            return Ok(());
        }
        if line.ends_with(b"\n") {
            line.pop();
        }

        // Step 4: sendto() the server's path: one line, one datagram. ENOENT means no
        // such file; ECONNREFUSED a file whose server is gone.
        let sent: usize = {
            //- answer: step 4: send `line` as one datagram to `server`
            //- hint: Send the line as one datagram addressed to the server's socket file. The
            //- hint: block's value is how many bytes went out; an error should name the path.
            //- more: socket2's `Socket::send_to` with the bytes and the server's `&SockAddr`;
            //- more: `.path_context(...)` (from `socket_file`) explains path errors such as a
            //- more: missing file.
            socket
                .send_to(&line, &server)
                .path_context(format!("sendto({})", server_path.display()))?
            //- end
        };
        narrate!("sendto({}, {sent} bytes)", server_path.display());

        let received = receive_reply(&socket, server_path, &mut reply, timeout_ms)?;
        stdout
            .write_all(&reply[..received])
            .and_then(|()| stdout.write_all(b"\n"))
            .and_then(|()| stdout.flush())
            .context("write(stdout)")?;
    }
}

/// Step 5: the server's reply, one whole datagram, within the deadline.
fn receive_reply(
    socket: &Socket,
    server_path: &Path,
    reply: &mut [u8],
    timeout_ms: u64,
) -> Result<usize, Failure> {
    loop {
        // Step 5: recvfrom(): one datagram and who sent it; EAGAIN once the
        // SO_RCVTIMEO deadline has passed.
        let outcome: io::Result<(usize, SockAddr)> = {
            //- answer: step 5: receive one datagram into `reply` (keep the io::Result)
            //- hint: Receive one datagram, the reply, into the reply buffer. Keep the result as it
            //- hint: is: the code below handles a timeout.
            //- more: socket2's `Socket::recv_from` with `as_uninit` of the buffer; it returns
            //- more: `io::Result<(usize, SockAddr)>`.
            socket.recv_from(as_uninit(reply))
            //- end
        };
        match outcome {
            // Anyone allowed to write to our socket file can send to it: only the
            // server's datagrams are replies.
            Ok((received, from)) if is_server(&from, server_path) => {
                narrate!(
                    "recvfrom() -> {received} bytes from {}",
                    server_path.display()
                );
                return Ok(received);
            }
            Ok((received, from)) => eprintln!(
                "lab5: ignoring {received} bytes from {}: not the server (a server that \
                 bound a relative path must be given the same path here)",
                from.as_pathname()
                    .map_or(String::from("an unnamed socket"), |p| p
                        .display()
                        .to_string())
            ),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Failure::new(format!(
                    "no reply from {} within {timeout_ms} ms: giving up (is the server busy or stuck?)",
                    server_path.display()
                )));
            }
            Err(err) => return Err(err).context("recvfrom()"),
        }
    }
}

/// Whether a datagram from `from` comes from the server at `server_path`.
///
/// The sender's address is the path exactly as the server passed it to bind(), which
/// may be spelled differently from ours (`srv.sock` vs `/tmp/srv.sock`): the same
/// spelling or the same file (device and inode) both count.
fn is_server(from: &SockAddr, server_path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(sender_path) = from.as_pathname() else {
        return false;
    };
    if sender_path == server_path {
        return true;
    }
    match (
        std::fs::symlink_metadata(sender_path),
        std::fs::symlink_metadata(server_path),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
