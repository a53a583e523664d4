//! Lab 2: a TCP client, built one system call at a time.
//!
//! The client dials a server, sends one message (the `--message` text, or all of
//! stdin), tells the server "I am done sending" with a half-close, then reads the reply
//! until the server closes its side and copies it, byte for byte, to stdout:
//!
//! ```text
//! getaddrinfo() -> for each address { socket() -> connect() } -> getsockname()
//!   -> setsockopt(SO_RCVTIMEO, SO_SNDTIMEO) -> send() -> shutdown(SHUT_WR)
//!   -> recv() until it returns 0 (end-of-file) -> close()
//! ```
//!
//! stdout carries the server's reply and nothing else. Everything about the connection
//! (`connected from 127.0.0.1:54012 to 127.0.0.1:5000`, addresses that failed, the
//! byte count, errors) goes to stderr, so `lab2 client ... > reply.bin` saves exactly
//! what the server sent.
//!
//! Run it: `cargo run -p lab2 -- client --port 5000 --message 'hi'` against any TCP
//! server, e.g. lab 1's.

use std::io::{self, IsTerminal, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shared::cli::Endpoint;
use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The most one recv() may bring. Any size works, because we keep reading until
/// end-of-file; a reply longer than this simply takes several recv() calls.
const CHUNK_SIZE: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lab2",
    about = "Lab 2: a TCP client, one socket call at a time"
)]
struct Cli {
    /// Which program to be (the subcommand).
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Connect to --host/--port, send the message, half-close, print the reply until EOF.
    #[command(mut_arg("host", |host| host.help(
        "Host name or IP address, or several separated by commas (127.0.0.2,localhost): \
         every address they resolve to is tried in turn until one accepts"
    )))]
    Client {
        /// The server to connect to (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
        /// The bytes to send, exactly as given (no newline is added).
        /// Without --message, everything read from stdin until end-of-file is sent.
        #[arg(long)]
        message: Option<String>,
        /// Seconds to wait for connect(), and for each send() and recv(), before giving
        /// up. Fractions are allowed (0.5).
        #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_timeout)]
        timeout: Duration,
    },
}

fn main() -> ExitCode {
    shared::run("lab2", || {
        let Role::Client {
            endpoint,
            message,
            timeout,
        } = Cli::parse().role;
        shared::narrate::set_role("client");
        let addresses = resolve(&endpoint)?;
        let (connection, server) = connect_to_any(&addresses, timeout)?;
        converse(connection, server, message, timeout)
    })
}

/// Before any socket exists: the host text becomes a list of addresses.
///
/// A name like `localhost` may stand for several addresses (`::1` and `127.0.0.1`);
/// `--host` may also list several hosts separated by commas. IP literals resolve without
/// any lookup; names are looked up in /etc/hosts, then DNS (getaddrinfo(3)).
fn resolve(endpoint: &Endpoint) -> Result<Vec<SocketAddr>, Failure> {
    let mut addresses: Vec<SocketAddr> = Vec::new();
    for name in endpoint.host.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(Failure::new(format!(
                "bad host {:?}: an empty name in the comma-separated list",
                endpoint.host
            )));
        }
        let one_host = Endpoint {
            host: name.to_string(),
            port: endpoint.port,
        };
        for address in one_host.addresses()? {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
    }
    narrate!("getaddrinfo({}) -> {}", endpoint.host, list(&addresses));
    Ok(addresses)
}

/// Tries each address in turn until one accepts the connection.
///
/// A host may resolve to an address where nothing listens (say `::1` while the server
/// only bound 127.0.0.1), so giving up after the first refusal would be wrong. We
/// remember the last error and, if every address fails, say which ones we tried.
fn connect_to_any(
    addresses: &[SocketAddr],
    timeout: Duration,
) -> Result<(Socket, SocketAddr), Failure> {
    let mut tried: Vec<String> = Vec::new();
    let mut last_failure = Failure::new("the host resolved to no address");
    for &address in addresses.iter() {
        tried.push(address.to_string());
        match open_and_connect(address, timeout) {
            Ok(connection) => return Ok((connection, address)),
            Err(failure) => {
                // The failed socket was dropped (closed) inside open_and_connect: a
                // socket that failed to connect cannot be reused for another address.
                narrate!("{address} failed, its socket is closed");
                if tried.len() < addresses.len() {
                    eprintln!("{failure}; trying the next address");
                }
                last_failure = failure;
            }
        }
    }
    Err(Failure::new(format!(
        "cannot connect: tried {}; last error: {last_failure}",
        tried.join(", ")
    )))
}

/// Steps 1 and 2 for one address: a fresh socket, then the three-way handshake.
fn open_and_connect(address: SocketAddr, timeout: Duration) -> Result<Socket, Failure> {
    // Step 1: socket() asks the kernel for a new endpoint. Its domain must match this
    // address (an IPv4 socket cannot dial ::1), which is why every address gets its own.
    let socket: Socket = {
        //- answer: step 1: create a TCP socket whose domain matches `address`
        //- hint: Ask the kernel for a new, unnamed endpoint. Its family (IPv4 or IPv6) must be the
        //- hint: one of `address`, and it must be a reliable byte stream: TCP.
        //- more: socket2's `Socket::new` takes a `Domain`, a `Type` and an optional `Protocol`;
        //- more: `Domain::for_address` picks the family from a `SocketAddr`; look at `Type::STREAM`
        //- more: and `Protocol::TCP`. Add `.context(...)` naming the call, as the other steps do.
        Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .context("socket()")?
        //- end
    };
    narrate!("socket() -> fd {}", socket.as_raw_fd());

    // Step 2: connect() performs the three-way handshake (SYN, SYN-ACK, ACK). We never
    // called bind(): the kernel picks our local address and a free ephemeral port now.
    // A plain connect() to a silent host can block for minutes, so we bound the wait:
    // connect_timeout() starts a non-blocking connect() and poll()s for at most `timeout`.
    let connected: io::Result<()> = {
        //- answer: step 2: connect `socket` to `address`, waiting at most `timeout`
        //- hint: Start the handshake with the server, but never wait longer than `timeout`: a
        //- hint: silent host would otherwise keep you blocked for minutes. Keep the result as it
        //- hint: is; the code below turns an error into a clear message.
        //- more: socket2's `Socket::connect_timeout` takes a `&SockAddr` (a `SocketAddr` converts
        //- more: with `.into()`) and a `Duration`, and returns `io::Result<()>`.
        socket.connect_timeout(&address.into(), timeout)
        //- end
    };
    let step = format!("connect({address})");
    let silence = "no answer to our connection request";
    connected.map_err(|err| failed(&step, silence, err, timeout))?;
    narrate!("connect({address}) -> connected");
    Ok(socket)
}

/// Steps 3 to 9: one exchange on an open connection, then close.
fn converse(
    mut connection: Socket,
    server: SocketAddr,
    message: Option<String>,
    timeout: Duration,
) -> Result<(), Failure> {
    // Step 3: getsockname() reveals the address the kernel chose for our end in step 2:
    // the ephemeral source port the server sees as its client's port.
    let local: SockAddr = {
        //- answer: step 3: ask the kernel for this socket's local address
        //- hint: Ask the kernel which local address and port it chose for your end when you
        //- hint: connected (you never called bind()).
        //- more: socket2's `Socket::local_addr` (getsockname(), `man 2 getsockname`) returns a
        //- more: `SockAddr`; name the call with `.context(...)`.
        connection.local_addr().context("getsockname()")?
        //- end
    };
    let local_text = describe(&local);
    narrate!("getsockname() -> {local_text}");
    eprintln!("connected from {local_text} to {server}");

    // Step 4: timeouts on each recv() and send(). Without SO_RCVTIMEO, a server that
    // never answers (and never closes) would keep us blocked in recv() forever.
    {
        //- answer: step 4: make recv() and send() give up after `timeout`
        //- hint: Bound every later receive and send by `timeout`, so a server that neither answers
        //- hint: nor closes cannot block you forever. Both directions need their own option.
        //- more: socket2's `Socket::set_read_timeout` and `Socket::set_write_timeout`, which take
        //- more: an `Option<Duration>` (SO_RCVTIMEO and SO_SNDTIMEO in `man 7 socket`).
        connection
            .set_read_timeout(Some(timeout))
            .context("setsockopt(SO_RCVTIMEO)")?;
        connection
            .set_write_timeout(Some(timeout))
            .context("setsockopt(SO_SNDTIMEO)")?;
        //- end
    }
    narrate!(
        "setsockopt(SO_RCVTIMEO and SO_SNDTIMEO = {})",
        seconds(timeout)
    );

    // Step 5: send the whole message. One send() may take only part of a large buffer;
    // write_all() calls send() again until every byte is out.
    let message: Vec<u8> = match message {
        Some(text) => text.into_bytes(),
        None => read_all_of_stdin()?,
    };
    let sent: io::Result<()> = {
        //- answer: step 5: send every byte of `message`
        //- hint: Send the whole message: one send() may take only part of it, so keep going until
        //- hint: every byte is out. Keep the result; the code below explains a failure.
        //- more: socket2's `Socket` implements `std::io::Write`: `Write::write_all` returns
        //- more: `io::Result<()>`.
        connection.write_all(&message)
        //- end
    };
    sent.map_err(|err| {
        failed(
            "send()",
            "the server stopped reading what we send",
            err,
            timeout,
        )
    })?;
    narrate!("send({} bytes)", message.len());

    // Step 6: half-close. shutdown(SHUT_WR) sends our FIN: "I am done sending". The
    // server's recv() then returns 0, so a server that reads until end-of-file knows
    // the request is complete and answers. Our reading half stays open for the reply.
    {
        //- answer: step 6: shut down the writing half of the connection
        //- hint: Half-close: tell the peer you will send nothing more (your FIN), so a reader
        //- hint: waiting for end-of-file knows the request is complete, while you can still read
        //- hint: the reply.
        //- more: socket2's `Socket::shutdown` with `std::net::Shutdown::Write` (shutdown(SHUT_WR),
        //- more: see `man 2 shutdown`).
        connection
            .shutdown(Shutdown::Write)
            .context("shutdown(SHUT_WR)")?;
        //- end
    }
    narrate!("shutdown(SHUT_WR): FIN sent, still reading");

    // Steps 7 and 8, repeated: read the reply until end-of-file. TCP is a byte stream,
    // not a message service: one recv() returns whatever has arrived so far, which may
    // be a piece of the reply however big the buffer is. Only recv() returning 0 (the
    // server closed its side) says the reply is complete. The course notes' client
    // calls recv(1024) once and hopes; that loses any reply longer than 1024 bytes or
    // sent in several pieces.
    let mut stdout = io::stdout().lock();
    let mut chunk = [0u8; CHUNK_SIZE];
    let mut reply_bytes: usize = 0;
    let mut chunk_ended_mid_line = false;
    loop {
        // Step 7: recv() waits (up to the timeout) for bytes, then returns how many it
        // copied into `chunk`.
        let received: io::Result<usize> = {
            //- answer: step 7: receive the next piece of the reply into `chunk`
            //- hint: Receive whatever part of the reply has arrived into the chunk buffer. Keep the
            //- hint: result as it is: the code below handles interruptions and errors.
            //- more: socket2's `Socket` implements `std::io::Read`: `Read::read` fills a `&mut
            //- more: [u8]` and returns `io::Result<usize>`.
            connection.read(&mut chunk)
            //- end
        };
        let received: usize = match received {
            Ok(count) => count,
            // A signal interrupted the wait before any byte came: just wait again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                return Err(failed(
                    "recv()",
                    "nothing more arrived from the server",
                    err,
                    timeout,
                ));
            }
        };
        narrate!("recv() -> {received} bytes");

        // Step 8: zero bytes is not "nothing yet" (recv() would have waited): it is
        // end-of-file, the server's FIN. Then, and only then, the reply is complete.
        let end_of_file: bool = {
            //- answer: step 8: decide whether the server has closed its side
            //- hint: A blocking receive that returns no bytes at all is not "nothing yet": it means
            //- hint: the server closed its side. Turn the count you received into that yes/no
            //- hint: answer.
            //- more: A `bool` comparison on `received`; see what `man 2 recv` says a return value
            //- more: of 0 means on a stream socket.
            received == 0
            //- end
        };
        if end_of_file {
            break;
        }
        stdout
            .write_all(&chunk[..received])
            .and_then(|()| stdout.flush())
            .context("write(stdout)")?;
        reply_bytes += received;
        chunk_ended_mid_line = chunk[received - 1] != b'\n';
    }

    // Step 9: close(). Dropping the socket frees the descriptor; both directions are
    // finished, so the connection is over.
    drop(connection);
    narrate!("close()");
    // In a terminal, stdout and stderr share the screen: start our summary on a line
    // of its own if the reply did not end with a newline. Redirected output is untouched.
    let reply_ended_mid_line = reply_bytes > 0 && chunk_ended_mid_line;
    if reply_ended_mid_line && io::stdout().is_terminal() && io::stderr().is_terminal() {
        eprintln!();
    }
    eprintln!("received {reply_bytes} bytes, then end-of-file");
    Ok(())
}

/// The message to send when no --message was given: all of stdin, until end-of-file.
fn read_all_of_stdin() -> Result<Vec<u8>, Failure> {
    let mut message = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut message)
        .context("read(stdin)")?;
    Ok(message)
}

/// One line for a failed step. A timeout says what we waited for and for how long.
fn failed(step: &str, silence: &str, err: io::Error, timeout: Duration) -> Failure {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::new(format!(
            "{step} timed out: {silence} (waited {}; --timeout changes the limit)",
            seconds(timeout)
        )),
        _ => Failure::new(format!("{step} failed: {}", shared::errors::explain(&err))),
    }
}

/// Parses `--timeout`: a positive number of seconds, fractions allowed.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(format!("{text:?}: the timeout must be more than 0 seconds"));
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(format!("{text:?}: the timeout is too small to measure")),
        Err(_) => Err(format!("{text:?}: the timeout is too large")),
    }
}

/// `10s`, `0.5s`.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// `127.0.0.1:5000, [::1]:5000`, for narration.
fn list(addresses: &[SocketAddr]) -> String {
    let texts: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    texts.join(", ")
}
