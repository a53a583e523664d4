//! Lab 6: a server that answers everybody at once, one thread per client.
//!
//! Lab 3 answers one caller at a time: while it talks to one client, every other client
//! waits on hold, and a client that goes quiet holds up the whole line. This server is a
//! line-echo service built on a small framework (`framework.rs`, in the spirit of the
//! notes' SocketServer module): the framework accepts callers and gives each one its
//! own thread, and the service itself is just a [`Handler`] that reads lines and writes
//! them back.
//!
//! ```text
//! server:  Server::bind(addr)?.serve_forever(LineEcho)      (see framework.rs)
//!          LineEcho::handle: loop { read one line -> send it back } until end of stream
//! client:  socket() -> connect() -> loop { read stdin -> send() -> recv() a line -> print }
//! ```
//!
//! The server caps the number of live clients (`--max-clients`; the next caller gets a
//! one-line `busy:` refusal) and exits cleanly on Ctrl+C or SIGTERM: it stops accepting
//! at once, lets connected clients finish the request they started (`--grace-ms`) and
//! exits with status 0.
//!
//! Run it: `cargo run -p lab6 -- server --port 5000`, then in other terminals
//! `cargo run -p lab6 -- client --port 5000` or `nc 127.0.0.1 5000`.

mod framework;

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use framework::{Handler, Server};
use shared::cli::Endpoint;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, Socket, Type};

/// The longest piece of a line the server holds in memory. A longer line is echoed in
/// pieces of this size: the client still gets every byte back, in order, and a client
/// that never sends a newline cannot make the server eat all the memory.
const MAX_LINE: u64 = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "lab6",
    about = "Lab 6: a thread per client, a cap, and a graceful exit"
)]
struct Cli {
    /// Which program to be (the subcommand).
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Echo every line back, serving each client on its own thread.
    Server {
        /// Where to listen (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
        /// How many clients may be connected at once; the next one is told `busy:`.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
        max_clients: u32,
        /// After Ctrl+C/SIGTERM, how long (in milliseconds) connected clients get to finish.
        #[arg(long, default_value_t = 3000)]
        grace_ms: u64,
        /// Answer one line per connection, then hang up (the notes' SocketServer shape).
        #[arg(long)]
        one_request: bool,
    },
    /// Send each line typed on stdin to the server and print its reply.
    Client {
        /// The server to connect to (`--host`, `--port`).
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

fn main() -> ExitCode {
    shared::run("lab6", || match Cli::parse().role {
        Role::Server {
            endpoint,
            max_clients,
            grace_ms,
            one_request,
        } => {
            shared::narrate::set_role("server");
            let address = endpoint.first_address()?;
            let server = Server::bind(address)?
                .max_clients(max_clients as usize)
                .grace(Duration::from_millis(grace_ms));
            if one_request {
                server.serve_forever(OneRequest)
            } else {
                server.serve_forever(LineEcho)
            }
        }
        Role::Client { endpoint } => {
            shared::narrate::set_role("client");
            run_client(endpoint.first_address()?)
        }
    })
}

/// The service: every line a client sends comes straight back.
struct LineEcho;

impl Handler for LineEcho {
    /// Steps 15 and 16, for one client, on that client's own thread.
    fn handle(&self, reader: &mut dyn BufRead, writer: &mut dyn Write) -> io::Result<()> {
        let mut line: Vec<u8> = Vec::new();
        loop {
            line.clear();
            // Step 15: read one whole request, up to and including its newline. The
            // buffered reader calls recv() as often as needed: TCP is a byte stream,
            // so one recv() may bring half a line or three lines (the notes' single
            // recv(1024) per message only works by luck). `take` bounds the piece.
            let received: usize = {
                //- answer: step 15: read up to MAX_LINE bytes, stopping after a newline, into `line`
                //- hint: Read one whole request, up to and including its newline, but never more
                //- hint: than MAX_LINE bytes, however many receives it takes. The block's value is
                //- hint: how many bytes you got (0 at end of stream).
                //- more: `std::io::Read::take` limits any reader to a number of bytes (call it as
                //- more: `Read::take` on a reborrow of the `dyn BufRead`); `BufRead::read_until`
                //- more: with `b'\n'` appends to a `Vec<u8>`; use `?` for errors.
                //- call: `read_until(b'\n')` on the buffered reader (at most 64 KiB)
                //- why: one whole line, however many `recv()` calls it takes: one `recv()` is
                //- why: not one message. The bound means a client that never sends a newline
                //- why: cannot eat all the memory (a longer line comes back in 64 KiB pieces,
                //- why: every byte in order)
                Read::take(&mut *reader, MAX_LINE).read_until(b'\n', &mut line)?
                //- end
            };
            // 0 bytes: end of stream. The client hung up, or the server is stopping.
            if received == 0 {
                return Ok(());
            }

            // Step 16: send it back. write_all() repeats send() until every byte is
            // out; a single send() may take only part of a long line.
            {
                //- answer: step 16: send the bytes of `line` back to the client
                //- hint: Send the line back to the client, every byte of it.
                //- more: `std::io::Write::write_all` on the writer; use `?` for errors.
                //- call: `write_all(line)`
                //- why: send every byte of the answer, however many `send()` calls it takes
                writer.write_all(&line)?;
                //- end
            }
            narrate!("send({received} bytes)");
        }
    }
}

/// The service with `--one-request`, in the shape of the notes' SocketServer handler:
/// one request per connection. The handler reads one line, answers it and returns; the
/// framework then hangs up. A client with a second line connects again.
struct OneRequest;

impl Handler for OneRequest {
    fn handle(&self, reader: &mut dyn BufRead, writer: &mut dyn Write) -> io::Result<()> {
        // Returning is what ends the conversation: the framework closes the connection
        // (the client's recv() returns 0) and frees the client's place. One line, one
        // answer, one connection: simple, and each request is independent of the last,
        // at the price of a handshake for every line.
        {
            //- answer: --one-request: read one line (at most MAX_LINE bytes), send it back, and return
            //- hint: The same read and answer as steps 15 and 16, but only once: after the answer
            //- hint: the handler returns, and returning is what hangs up. A connection that ends
            //- hint: before a whole line came gets no answer.
            //- more: `Read::take` and `BufRead::read_until` as in step 15, `Write::write_all` as in
            //- more: step 16, then `Ok(())`.
            let mut request: Vec<u8> = Vec::new();
            if Read::take(&mut *reader, MAX_LINE).read_until(b'\n', &mut request)? > 0 {
                writer.write_all(&request)?;
                narrate!(
                    "send({} bytes), then hang up: one request per connection",
                    request.len()
                );
            }
            Ok(())
            //- end
        }
    }
}

/// Steps 17 to 20: the client role, for trying the server by hand.
fn run_client(address: SocketAddr) -> Result<(), Failure> {
    // Step 17: socket(), in the domain of the server's address.
    let socket: Socket = {
        //- answer: step 17: create a TCP socket whose domain matches `address`
        //- hint: Ask the kernel for a new, unnamed endpoint. Its family (IPv4 or IPv6) must be the
        //- hint: one of `address`, and it must be a reliable byte stream: TCP.
        //- more: socket2's `Socket::new` takes a `Domain`, a `Type` and an optional `Protocol`;
        //- more: `Domain::for_address` picks the family from a `SocketAddr`; look at `Type::STREAM`
        //- more: and `Protocol::TCP`. Add `.context(...)` naming the call, as the other steps do.
        //- call: `socket()`
        //- why: a TCP socket in the server address's family
        Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .context("socket()")?
        //- end
    };
    narrate!("socket() -> fd {}", socket.as_raw_fd());

    // Step 18: connect() does the three-way handshake with the server's listener. It
    // succeeds as soon as the kernel queues us, even before the server calls accept().
    {
        //- answer: step 18: connect the socket to `address`
        //- hint: Dial the server: this runs TCP's three-way handshake, and the kernel picks your
        //- hint: local address and an ephemeral port on the way. Stop on failure, with the address
        //- hint: in the error.
        //- more: socket2's `Socket::connect` takes a `&SockAddr`, which a `SocketAddr` becomes with
        //- more: `.into()`; name the call with `.context(...)`. See `man 2 connect`.
        //- call: `connect(address)`
        //- why: the handshake. It succeeds once the kernel has queued us, before the server has
        //- why: even called `accept()`: a refusal (`busy:`) comes later, as the reply to our
        //- why: first line
        socket
            .connect(&address.into())
            .context(format!("connect({address})"))?;
        //- end
    }
    narrate!("connect({address})");
    println!("connected to {address}; type lines, Ctrl+D to quit");

    let mut replies = BufReader::new(&socket);
    // Sockets are files: a socket is reached through a file descriptor like any open
    // file, so the plain file calls read(2) and write(2) work on it too (write() is
    // send() without flags and address). Here we send through a std File opened on a
    // duplicate (dup(2)) of the socket's descriptor: File::write is write(2), nothing
    // socket-specific. The duplicate is a second descriptor for the same connection;
    // the connection ends when both are closed (or at shutdown()).
    let mut sender: File = {
        //- answer: make `sender`, a `File` on a duplicate of the socket's descriptor
        //- hint: Get a second descriptor for the same connection and wrap it in the standard
        //- hint: library's plain file type: from then on, writing to it is an ordinary write(),
        //- hint: the call you would use for any open file.
        //- more: socket2's `Socket::try_clone` duplicates the descriptor (dup(2)); the result
        //- more: converts into `std::os::fd::OwnedFd` (`OwnedFd::from`), and an `OwnedFd` into
        //- more: `std::fs::File` (`File::from`). Name the call with `.context(...)`.
        File::from(OwnedFd::from(socket.try_clone().context("dup()")?))
        //- end
    };
    narrate!(
        "dup(fd {}) -> fd {}: the same connection, to be written with write(2)",
        socket.as_raw_fd(),
        sender.as_raw_fd()
    );
    let mut stdin = io::stdin().lock();
    let mut typed: Vec<u8> = Vec::new();
    let mut reply: Vec<u8> = Vec::new();
    // The prompt is for people: when stdin is a file or a pipe, it would only be noise.
    let interactive = stdin.is_terminal();
    loop {
        if interactive {
            print!("> ");
            io::stdout().flush().context("flush(stdout)")?;
        }
        typed.clear();
        if stdin.read_until(b'\n', &mut typed).context("read(stdin)")? == 0 {
            if interactive {
                println!();
            }
            return Ok(());
        }
        // The server answers whole lines only: make sure the last one is finished.
        if !typed.ends_with(b"\n") {
            typed.push(b'\n');
        }

        // Step 19: send the whole line. write_all() loops over write(2) here, the file
        // call, exactly as it would loop over send(2) on the socket itself.
        {
            //- answer: step 19: write all of `typed` to `sender`
            //- hint: Send the whole typed line through the file you made on the socket's
            //- hint: descriptor, every byte, however many writes that takes.
            //- more: `std::io::Write::write_all` on `sender` (a `File`: each call is write(2));
            //- more: name the call with `.context(...)`.
            //- call: `write(2)` via `write_all(line)`
            //- why: the line and its `\n` (added if the input's last line lacks it)
            sender.write_all(&typed).context("write()")?;
            //- end
        }
        narrate!("write(fd {}, {} bytes)", sender.as_raw_fd(), typed.len());

        // Step 20: receive one reply line, however many recv() calls it takes.
        reply.clear();
        let received: usize = {
            //- answer: step 20: read one reply line from `replies` into `reply`
            //- hint: Receive exactly one reply line (up to and including its newline), however many
            //- hint: receives it takes. The value is how many bytes you got; 0 means the server
            //- hint: closed.
            //- more: `BufRead::read_until` with `b'\n'` on the buffered reader, appending to the
            //- more: reply `Vec`; name the call with `.context(...)`.
            //- call: `read_until(b'\n')`
            //- why: one reply line, however many `recv()`s; 0 bytes means the server closed
            replies.read_until(b'\n', &mut reply).context("recv()")?
            //- end
        };
        narrate!("recv() -> {received} bytes");
        if received == 0 {
            return Err(Failure::new("the server closed the connection"));
        }
        let text = String::from_utf8_lossy(&reply);
        println!("{}", text.trim_end_matches('\n'));
        if text.starts_with("busy:") {
            return Err(Failure::new("the server is full, try again later"));
        }
    }
}
