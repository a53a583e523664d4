//! The iterative echo server: steps 1 to 10, in the order they run.
//!
//! ```text
//! socket() -> setsockopt(SO_REUSEADDR) -> bind() -> listen()
//!   -> loop { accept() -> setsockopt(SO_SNDTIMEO) -> loop { recv() -> send() } -> close() }
//! ```
//!
//! One client at a time: the server accepts a connection, receives until the client
//! shuts down its side, sends back everything that arrived, closes the connection and
//! accepts the next client, forever. What goes wrong with one client (a reset, a client
//! that stops reading, no descriptor left for it) ends that client only, never the
//! server. With `--timestamp` the answer is made by `stamp.rs` instead of being the
//! bytes themselves.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::stamp::LineStamper;
use crate::{RECV_BUFFER_SIZE, preview};

/// How long the server waits before it calls accept() again after running out of
/// descriptors (a few descriptors may be freed meanwhile, by clients that leave).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// errno: this process has as many descriptors open as RLIMIT_NOFILE allows.
const EMFILE: i32 = 24;
/// errno: the whole system has run out of file descriptions.
const ENFILE: i32 = 23;

/// Steps 1 to 4: a socket that listens on `address`.
pub fn open_listener(address: SocketAddr, backlog: i32) -> Result<Socket, Failure> {
    // Step 1: socket() asks the kernel for a new, unnamed endpoint. The domain must
    // match the address family (IPv4 or IPv6); STREAM + TCP means a reliable byte stream.
    let socket: Socket = {
        //- answer: step 1: create a TCP socket whose domain matches `address`
        //- hint: Ask the kernel for a new, unnamed endpoint. Its family (IPv4 or IPv6) must be the
        //- hint: one of `address`, and it must be a reliable byte stream: TCP.
        //- more: socket2's `Socket::new` takes a `Domain`, a `Type` and an optional `Protocol`;
        //- more: `Domain::for_address` picks the family from a `SocketAddr`; look at `Type::STREAM`
        //- more: and `Protocol::TCP`. Add `.context(...)` naming the call, as the other steps do.
        //- call: `socket(AF_INET or AF_INET6, SOCK_STREAM, IPPROTO_TCP)`
        //- why: a new endpoint; the family must match the address you bind
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
        //- why: restart the server on the same port at once, even while old connections sit in
        //- why: TIME_WAIT
        socket
            .set_reuse_address(true)
            .context("setsockopt(SO_REUSEADDR)")?;
        //- end
    }
    narrate!("setsockopt(SO_REUSEADDR, 1)");

    // Step 3: bind() gives the socket its name: the address clients will dial.
    {
        //- answer: step 3: bind the socket to `address`
        //- hint: Give the socket its name: the address and port that clients will dial. Until it is
        //- hint: bound, nobody can find it.
        //- more: socket2's `Socket::bind` wants a `&SockAddr`; a `std::net::SocketAddr` converts
        //- more: into one with `Into` (`.into()`). See `man 2 bind`; add `.context(...)` naming the
        //- more: address.
        //- call: `bind(address)`
        //- why: give the socket the address clients dial
        socket
            .bind(&address.into())
            .context(format!("bind({address})"))?;
        //- end
    }
    narrate!("bind({address})");

    // Step 4: listen() makes it a passive socket. While we are busy with one client,
    // the kernel completes the handshakes of the next ones and queues up to `backlog`.
    {
        //- answer: step 4: start listening with the given backlog
        //- hint: Make the socket passive: from now on the kernel completes handshakes for you and
        //- hint: queues the finished ones, at most as many as the backlog you were given.
        //- more: socket2's `Socket::listen`; its one argument is the backlog, the number from the
        //- more: command line. See `man 2 listen`.
        //- call: `listen(backlog)`
        //- why: make it passive; while we are busy with one client, the kernel finishes the
        //- why: handshakes of up to `backlog` others and queues them
        socket.listen(backlog).context("listen()")?;
        //- end
    }
    narrate!("listen(backlog={backlog})");
    println!("listening on {address} (backlog {backlog})");
    Ok(socket)
}

/// Steps 5 and 6, forever: accept one client, serve it until it closes (steps 7 to 10),
/// then the next.
pub fn serve_forever(
    listener: &Socket,
    timestamp: bool,
    send_timeout: Duration,
) -> Result<(), Failure> {
    loop {
        // Step 5: accept() sleeps until a client has connected, then returns a new
        // socket for that one conversation; `listener` goes on listening.
        narrate!("accept() ... sleeping until a client connects");
        let accepted: io::Result<(Socket, SockAddr)> = {
            //- answer: step 5: accept the next client on `listener`
            //- hint: Wait for the next client and take its connection and address. Keep the result
            //- hint: as it is: the code below decides what to do with an error.
            //- more: socket2's `Socket::accept` returns `io::Result<(Socket, SockAddr)>`.
            //- call: `accept()`
            //- why: sleep until a client is queued, then get a **new** socket for that one
            //- why: conversation
            listener.accept()
            //- end
        };
        let (connection, peer) = match accepted {
            Ok(pair) => pair,
            // EINVAL: the socket is not listening. That is our bug, and retrying cannot
            // fix it, so stop with a clear message.
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
                return Err(Failure::new(format!(
                    "accept() failed: {} (did listen() succeed?)",
                    shared::errors::explain(&err)
                )));
            }
            // Step 6: anything else is not fatal: a client that gave up while it was
            // queued (ECONNABORTED), or no descriptor left to give the new connection
            // (EMFILE: this process has as many open as its limit allows; ENFILE: the
            // whole system has). A descriptor is freed when a client leaves, so the server
            // must live on. The refused client stays in the queue, though, and accept()
            // would fail again at once: retrying straight away spins a CPU at 100% and
            // floods the log, so pause a moment first.
            Err(err) => {
                //- answer: step 6: report a failed accept(), pause if descriptors ran out, then accept again
                //- hint: One line on stderr saying what failed, and the server goes on. When the
                //- hint: error says the process (or the system) has no descriptor left, wait a
                //- hint: little before the next accept(): the client is still queued, so an
                //- hint: immediate retry would fail the same way, over and over.
                //- more: `io::Error::raw_os_error` gives the errno; compare it with the constants
                //- more: `EMFILE` and `ENFILE` above (`man 2 accept`, ERRORS). `std::thread::sleep`
                //- more: with `ACCEPT_BACKOFF`; `continue` goes back to the top of the loop.
                //- call: (`accept()` failed) report it, pause on `EMFILE`/`ENFILE`
                //- why: a failed accept() is one client's problem (or a busy moment), never the end
                //- why: of the server; an immediate retry would spin on the same error
                eprintln!("lab3: accept() failed: {}", shared::errors::explain(&err));
                if matches!(err.raw_os_error(), Some(EMFILE | ENFILE)) {
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
                continue;
                //- end
            }
        };
        let peer_text = describe(&peer);
        narrate!("accept() -> fd {} from {peer_text}", connection.as_raw_fd());
        println!("client {peer_text} connected");

        // Steps 7 to 10. A client that resets the connection or stops reading ends its
        // own conversation only: we report it and go on with the next client.
        match serve_client(connection, timestamp, send_timeout) {
            Ok(answered) => println!("client {peer_text} done ({answered} bytes sent back)"),
            Err(failure) => eprintln!("lab3: client {peer_text}: {failure}"),
        }
    }
}

/// Steps 7 to 10 for one client, whose connection this closes: returns how many bytes
/// we sent back.
fn serve_client(
    mut connection: Socket,
    timestamp: bool,
    send_timeout: Duration,
) -> Result<u64, Failure> {
    // Step 7: SO_SNDTIMEO bounds how long one send() may block. send() blocks while
    // the client's receive buffer and our send buffer are full, which lasts for ever
    // if the client never reads; the timeout turns that into an error for this client.
    // The clock runs per send() call: one that moved a few bytes before the time ran
    // out returns that short count, and the next call starts a new `send_timeout`.
    {
        //- answer: step 7: give send() on `connection` a timeout of `send_timeout`
        //- hint: Bound how long a send may block, so a client that stops reading cannot freeze the
        //- hint: server for everyone who waits behind it.
        //- more: socket2's `Socket::set_write_timeout` takes an `Option<Duration>` (SO_SNDTIMEO in
        //- more: `man 7 socket`); name the call with `.context(...)`.
        //- call: `setsockopt(SO_SNDTIMEO, 10 s)`
        //- why: a client that never reads would block our `send()` for ever, and an iterative
        //- why: server serves nobody else meanwhile; the timeout ends that one client instead
        connection
            .set_write_timeout(Some(send_timeout))
            .context("setsockopt(SO_SNDTIMEO)")?;
        //- end
    }
    narrate!("setsockopt(SO_SNDTIMEO, {send_timeout:?})");

    let mut buffer = [0u8; RECV_BUFFER_SIZE];
    // With --timestamp, the start of a line whose `\n` has not arrived yet waits here.
    let mut stamper = timestamp.then(LineStamper::default);
    let mut answered: u64 = 0;
    loop {
        // Step 8: recv() returns what has arrived so far: maybe part of what the client
        // sent, maybe several of its sends glued together. Only 0 means "no more": the
        // client shut down its sending side (or closed), so we have seen everything.
        let received: usize = {
            //- answer: step 8: receive into `buffer`, up to its size
            //- hint: Receive whatever has arrived, at most a buffer's worth. The block's value is
            //- hint: the count: 0 means the client has finished sending (end of stream).
            //- more: socket2's `Socket` implements `std::io::Read`: `Read::read` with a mutable
            //- more: borrow of the buffer returns how many bytes it copied.
            //- call: `recv()` in a loop
            //- why: take what has arrived; loop until it returns 0
            connection.read(&mut buffer).context("recv()")?
            //- end
        };
        let end_of_stream = received == 0;
        let chunk = &buffer[..received];
        if end_of_stream {
            narrate!("recv() -> 0 bytes: the client shut down its side, end of stream");
        } else {
            narrate!("recv() -> {received} bytes {}", preview(chunk));
        }

        // The answer. A plain echo sends the bytes back untouched: they need not be text,
        // let alone UTF-8. --timestamp answers whole lines only (steps 11 to 13, in
        // stamp.rs), and at the end of the stream a last line that has no `\n` yet.
        let answer: Cow<[u8]> = match stamper.as_mut() {
            None => Cow::Borrowed(chunk),
            Some(stamper) if end_of_stream => Cow::Owned(stamper.finish()),
            Some(stamper) => Cow::Owned(stamper.feed(chunk)?),
        };

        if !answer.is_empty() {
            // Step 9: send() may accept only part of the bytes (it returns how many it
            // took) when the buffers fill up; the rest would silently be lost. write_all()
            // is the send-all loop: after a partial send() it calls send() again with what
            // is left, until nothing is. If one send() waits longer than the send timeout,
            // it fails with EAGAIN and write_all() stops: that ends this client, never the
            // server.
            let sent: io::Result<()> = {
                //- answer: step 9: send all of `answer` to the client
                //- hint: Send the whole answer: one send() may take only part of it, so keep going
                //- hint: until every byte is out. Keep the result; the code below looks at it.
                //- more: socket2's `Socket` implements `std::io::Write`: `Write::write_all` returns
                //- more: `io::Result<()>`.
                //- call: `send()` via `write_all()`
                //- why: send every byte of the answer, however many `send()` calls it takes
                connection.write_all(&answer)
                //- end
            };
            sent.map_err(|err| send_failure(&err))?;
            narrate!("send({} bytes {})", answer.len(), preview(&answer));
            answered += answer.len() as u64;
        }
        if end_of_stream {
            break;
        }
        // One recv() is not the whole message: go back for more until recv() returns 0.
    }

    //- given: step 10: close the connection
    //- call: `close()`
    //- why: free the descriptor and send our FIN; forget it and you leak one descriptor per
    //- why: client (and the client waits for ever for the end of the answer)
    //- end
    // Step 10: close() frees the descriptor and, if the client has not gone already,
    // sends our FIN: the client's recv() returns 0, the end of our answer. A server
    // that forgets this leaks one descriptor per client until accept() fails. (When a
    // step above fails, `?` returns early, and dropping `connection` on the way out
    // closes it just the same: no path keeps the descriptor.)
    let fd = connection.as_raw_fd();
    drop(connection);
    narrate!("close(fd {fd})");
    Ok(answered)
}

/// The one-line story of a failed send().
fn send_failure(err: &io::Error) -> Failure {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            Failure::new("send() failed: timed out: the client stopped reading")
        }
        _ => Failure::new(format!("send() failed: {}", shared::errors::explain(err))),
    }
}
