//! Lab 1: a TCP server, built one system call at a time.
//!
//! The server greets each client with `hello\n`, reads up to 1000 bytes, sends them
//! back, closes the connection and waits for the next client, forever. Every step the
//! kernel takes on our behalf is a call you can see below:
//!
//! ```text
//! socket() -> setsockopt(SO_REUSEADDR) -> bind() -> listen() -> loop { accept() -> send() -> recv() -> send() -> close() }
//! ```
//!
//! Run it: `cargo run -p lab1 -- server --port 5000`, then `nc 127.0.0.1 5000`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shared::cli::Endpoint;
use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The greeting every client gets first.
const GREETING: &[u8] = b"hello\n";
/// How long to wait before calling accept() again after running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// errno: this process has as many descriptors open as RLIMIT_NOFILE allows.
const EMFILE: i32 = 24;
/// errno: the whole system has run out of file descriptions.
const ENFILE: i32 = 23;
/// The most we read from one client, as in the course notes.
const MAX_MESSAGE: usize = 1000;

#[derive(Parser)]
#[command(
    name = "lab1",
    about = "Lab 1: a TCP server, one socket call at a time"
)]
struct Cli {
    /// Which program to be (the subcommand).
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Listen on --host/--port; greet, echo once and close, for each client in turn.
    Server {
        /// Where to listen (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
        /// How many finished handshakes the kernel may queue while we are busy.
        #[arg(long, default_value_t = 5)]
        backlog: i32,
    },
}

fn main() -> ExitCode {
    shared::run("lab1", || {
        let Role::Server { endpoint, backlog } = Cli::parse().role;
        shared::narrate::set_role("server");
        let address = endpoint.first_address()?;
        let listener = open_listener(address, backlog)?;
        serve_forever(&listener)
    })
}

/// Steps 1 to 5: a socket that listens on `address`.
fn open_listener(address: SocketAddr, backlog: i32) -> Result<Socket, Failure> {
    // Step 1: socket() asks the kernel for a new, unnamed endpoint. The domain must
    // match the address family (IPv4 or IPv6); STREAM + TCP means a reliable byte stream.
    let socket: Socket = {
        //- answer: step 1: create a TCP socket whose domain matches `address`
        //- hint: Ask the kernel for a new, unnamed endpoint. Its family (IPv4 or IPv6) must be the
        //- hint: one of `address`, and it must be a reliable byte stream: TCP.
        //- more: socket2's `Socket::new` takes a `Domain`, a `Type` and an optional `Protocol`;
        //- more: `Domain::for_address` picks the family from a `SocketAddr`; look at `Type::STREAM`
        //- more: and `Protocol::TCP`. Add `.context(...)` naming the call, as the other steps do.
        //- call: `socket()`
        //- why: Ask the kernel for a new endpoint. You choose the *domain* (IPv4 or IPv6: it
        //- why: must match the address you will bind) and the *type* (a `STREAM` is TCP's
        //- why: reliable, ordered byte stream). The socket has no address yet.
        Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .context("socket()")?
        //- end
    };
    narrate!("socket() -> fd {}", socket.as_raw_fd());

    // Step 2: SO_REUSEADDR lets a restarted server bind the port again at once, even
    // while connections of its previous run linger in TIME_WAIT.
    {
        //- answer: step 2: set SO_REUSEADDR on the socket
        //- hint: Turn on the socket option that lets a restarted server bind its port again at
        //- hint: once, while connections of its previous run linger in TIME_WAIT. It only helps if
        //- hint: it is set before bind().
        //- more: socket2's `Socket::set_reuse_address` (setsockopt SO_REUSEADDR, see `man 7
        //- more: socket`); name the call in errors with `.context(...)`.
        //- call: `setsockopt(SO_REUSEADDR)`
        //- why: After a server closes a connection, the kernel keeps that connection's address
        //- why: in `TIME_WAIT` for a minute or so, to catch stray late packets. Without this
        //- why: option a restarted server cannot `bind()` its own port until that has passed
        //- why: ("address already in use").
        socket
            .set_reuse_address(true)
            .context("setsockopt(SO_REUSEADDR)")?;
        //- end
    }
    narrate!("setsockopt(SO_REUSEADDR, 1)");

    // Step 3: an IPv6 socket may take IPv4 clients too: bound to the wildcard `::`, it then
    // answers on every IPv4 address as well, and sees those clients as IPv4-mapped
    // addresses (`::ffff:127.0.0.1`). Whether it does is the option IPV6_V6ONLY, whose
    // default differs between systems (off on Linux, on in OpenBSD and Windows), so a
    // server that means "every client" says so, before bind().
    if address.is_ipv6() {
        //- answer: step 3: turn IPV6_V6ONLY off, so that `::` takes IPv4 clients too
        //- hint: An IPv6 socket can serve both families: a wildcard bind then covers IPv4 as
        //- hint: well. Say so explicitly rather than trusting the system's default, and before
        //- hint: the socket gets its address.
        //- more: socket2's `Socket::set_only_v6` (setsockopt IPV6_V6ONLY, `man 7 ipv6`); name
        //- more: the call with `.context(...)`.
        socket
            .set_only_v6(false)
            .context("setsockopt(IPV6_V6ONLY)")?;
        //- end
        narrate!("setsockopt(IPV6_V6ONLY, 0)");
    }

    // Step 4: bind() gives the socket its name: the address clients will dial.
    {
        //- answer: step 4: bind the socket to `address`
        //- hint: Give the socket its name: the address and port that clients will dial. Until it is
        //- hint: bound, nobody can find it.
        //- more: socket2's `Socket::bind` wants a `&SockAddr`; a `std::net::SocketAddr` converts
        //- more: into one with `Into` (`.into()`). See `man 2 bind`; add `.context(...)` naming the
        //- more: address.
        //- call: `bind()`
        //- why: Give the socket its name: the address and port clients will dial. This fails if
        //- why: the port is taken, if the port is below 1024 and you lack the privilege, or if
        //- why: the IP address is not one of this machine's.
        socket
            .bind(&address.into())
            .context(format!("bind({address})"))?;
        //- end
    }
    narrate!("bind({address})");

    // Step 5: listen() turns it into a passive socket. The kernel now completes
    // handshakes for us and queues up to `backlog` of them until we accept().
    {
        //- answer: step 5: start listening with the given backlog
        //- hint: Make the socket passive: from now on the kernel completes handshakes for you and
        //- hint: queues the finished ones, at most as many as the backlog you were given.
        //- more: socket2's `Socket::listen`; its one argument is the backlog, the number from the
        //- more: command line. See `man 2 listen`.
        //- call: `listen(backlog)`
        //- why: Turn the socket into a *passive* one. From now on the kernel itself answers
        //- why: connection requests (the TCP three-way handshake) and queues up to `backlog`
        //- why: finished handshakes until you take them.
        socket.listen(backlog).context("listen()")?;
        //- end
    }
    narrate!("listen(backlog={backlog})");
    println!("listening on {address} (backlog {backlog})");
    Ok(socket)
}

/// Steps 6 to 9, forever: one client at a time.
fn serve_forever(listener: &Socket) -> Result<(), Failure> {
    loop {
        // Step 6: accept() sleeps (no CPU used) until a client has connected, then
        // returns a brand-new socket for that one conversation. `listener` keeps
        // listening for the next caller.
        let (connection, peer): (Socket, SockAddr) = {
            //- answer: step 6: accept the next client on `listener`
            //- hint: Wait for the next client that has finished its handshake and take the new
            //- hint: socket made for that one conversation, plus the client's address. If one
            //- hint: accept fails, say so on stderr and wait for the next client: never stop the
            //- hint: server for it.
            //- hint: When the process has no descriptor left for the new socket, pause a moment
            //- hint: before the next try: that client is still queued, and an immediate retry
            //- hint: would fail the same way, over and over.
            //- more: socket2's `Socket::accept` returns `io::Result<(Socket, SockAddr)>`;
            //- more: `shared::errors::explain` puts an error into words; `continue` goes round the
            //- more: loop again. `io::Error::raw_os_error` compared with `EMFILE`/`ENFILE` below,
            //- more: and `std::thread::sleep` with `ACCEPT_BACKOFF`.
            //- call: `accept()`
            //- why: Take the next caller off the queue. It blocks, asleep and using no CPU,
            //- why: until there is one. It returns a **new** socket for this one conversation
            //- why: plus the caller's address; the listening socket stays untouched, ready for
            //- why: the next caller.
            match listener.accept() {
                Ok(pair) => pair,
                // A client that gave up while queued is its problem, not ours. So is a
                // moment without a free descriptor (EMFILE): one comes back as soon as
                // some connection is closed.
                Err(err) => {
                    eprintln!("lab1: accept() failed: {}", shared::errors::explain(&err));
                    if matches!(err.raw_os_error(), Some(EMFILE | ENFILE)) {
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                    continue;
                }
            }
            //- end
        };
        let peer_text = describe(&peer);
        narrate!("accept() -> fd {} from {peer_text}", connection.as_raw_fd());
        println!("client {peer_text} connected");

        // One misbehaving client must never take the server down: report and go on.
        if let Err(failure) = greet_and_echo(connection) {
            eprintln!("lab1: client {peer_text}: {failure}");
        }
    }
}

/// Steps 7 to 9 for one client. Dropping `connection` at the end is close().
fn greet_and_echo(mut connection: Socket) -> Result<(), Failure> {
    // Step 7: send the greeting. write_all() repeats send() until every byte is out.
    {
        //- answer: step 7: send GREETING to the client
        //- hint: Send the greeting before anything else. One send() may take only part of the
        //- hint: bytes, so keep sending until every byte is out.
        //- more: socket2's `Socket` implements `std::io::Write`: look at `Write::write_all`; name
        //- more: the call with `.context(...)`.
        //- call: `send()`
        //- why: Send the greeting. `send()` may accept fewer bytes than you offered, so we use
        //- why: `write_all`, which repeats the call until all are out.
        connection.write_all(GREETING).context("send(greeting)")?;
        //- end
    }
    narrate!("send({:?})", String::from_utf8_lossy(GREETING));

    // Step 8: recv() up to MAX_MESSAGE bytes. It returns what has arrived so far,
    // which may be less than the client sent: this lab reads once, lab 3 reads all.
    let mut buffer = [0u8; MAX_MESSAGE];
    let received: usize = {
        //- answer: step 8: receive up to MAX_MESSAGE bytes into `buffer`
        //- hint: Read once: whatever has arrived so far, at most the size of the buffer. The
        //- hint: block's value is how many bytes came; 0 means the client closed without sending.
        //- more: socket2's `Socket` implements `std::io::Read`: look at `Read::read`, which fills a
        //- more: `&mut [u8]` and returns the count (recv(), `man 2 recv`).
        //- call: `recv()`
        //- why: Read what has arrived, up to 1000 bytes. A return of 0 means the client closed
        //- why: its side. One read returns *what has arrived so far*, not "the message": TCP has
        //- why: no message boundaries. This lab reads once (as the course notes do); lab 3 does
        //- why: it properly.
        connection.read(&mut buffer).context("recv()")?
        //- end
    };
    narrate!("recv() -> {received} bytes");

    // Step 9: echo exactly the bytes we got, then close. shutdown(Write) sends our FIN
    // right away, so the client sees end-of-stream even before the fd is freed.
    {
        //- answer: step 9: send back the `received` bytes, then shut down the write side
        //- hint: Echo exactly the bytes you received (only the first `received` bytes of the
        //- hint: buffer, not all of it), then close your sending side so the client sees
        //- hint: end-of-stream at once.
        //- more: `Write::write_all` on a slice of the buffer (`&buffer[..n]`), then socket2's
        //- more: `Socket::shutdown` with `Shutdown::Write`; an error from the shutdown can be
        //- more: ignored, the client may be gone already.
        //- call: `send()`, `close()`
        //- why: Echo the bytes back and hang up. `shutdown(Write)` sends our end-of-stream (FIN)
        //- why: straight away; dropping the socket closes the file descriptor.
        connection
            .write_all(&buffer[..received])
            .context("send(echo)")?;
        let _ = connection.shutdown(Shutdown::Write);
        //- end
    }
    narrate!("send({received} bytes); close()");
    Ok(())
}
