//! Lab 3: an iterative echo server and its client, safe for any byte stream.
//!
//! The server serves one client at a time: it accepts a connection, receives until the
//! client closes its side, sends back everything that arrived, closes the connection and
//! accepts the next client, forever. With `--timestamp` it answers each line with
//! `[<ctime>] <line>` instead. The client reads lines at a `> ` prompt and sends each one
//! over a connection of its own.
//!
//! ```text
//! server: socket() -> setsockopt(SO_REUSEADDR) -> bind() -> listen()
//!         -> loop { accept() -> setsockopt(SO_SNDTIMEO) -> loop { recv() -> send() } -> close() }
//! client: loop { socket() -> connect() -> send() -> shutdown(SHUT_WR) -> loop { recv() } -> close() }
//! ```
//!
//! The lesson: TCP carries a stream of bytes, not a stream of messages. One recv()
//! returns whatever has arrived so far (part of what was sent, or several sends glued
//! together), and one send() may take only part of what we hand it. So we read until
//! the end of the stream, write until every byte is out, and when we need messages we
//! cut the stream into them ourselves: here, lines ending in `\n`.
//!
//! Run it: `cargo run -p lab3 -- server --port 5000 --timestamp`, then in a second
//! terminal `cargo run -p lab3 -- client --port 5000`.

use std::borrow::Cow;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shared::cli::Endpoint;
use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How many bytes one recv() may hand us. Any size is correct, because we keep reading
/// until the end of the stream; a bigger buffer only means fewer system calls.
const RECV_BUFFER_SIZE: usize = 4096;
/// With `--timestamp`, the longest line we wait for. A client that sends more bytes
/// without any `\n` is cut off rather than allowed to eat all the server's memory.
const MAX_LINE_LENGTH: usize = 64 * 1024 * 1024;
/// How long the server waits before it calls accept() again after running out of
/// descriptors (a few descriptors may be freed meanwhile, by clients that leave).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// errno: this process has as many descriptors open as RLIMIT_NOFILE allows.
const EMFILE: i32 = 24;
/// errno: the whole system has run out of file descriptions.
const ENFILE: i32 = 23;
/// What the client prints before it reads each line.
const PROMPT: &str = "> ";

#[derive(Parser)]
#[command(
    name = "lab3",
    about = "Lab 3: an iterative echo server and its client"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Listen on --host/--port; send back each client's bytes until it closes, one client at a time.
    Server {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Answer every line with `[<ctime>] <line>` instead of echoing the bytes.
        #[arg(long)]
        timestamp: bool,
        /// How many finished handshakes the kernel may queue while we serve one client.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(0..))]
        backlog: i32,
        /// How many seconds one send() may wait for room in a client's buffers before
        /// that client is dropped. Generous, so that slow clients are served; finite, so
        /// that a client that stops reading for ever cannot freeze a server that serves
        /// one client at a time.
        #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
        send_timeout: f64,
    },
    /// Read lines at a `> ` prompt; send each over a new connection and print the answer.
    Client {
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

fn main() -> ExitCode {
    shared::run("lab3", || match Cli::parse().role {
        Role::Server {
            endpoint,
            timestamp,
            backlog,
            send_timeout,
        } => {
            shared::narrate::set_role("server");
            let address = endpoint.first_address()?;
            let listener = open_listener(address, backlog)?;
            serve_forever(&listener, timestamp, Duration::from_secs_f64(send_timeout))
        }
        Role::Client { endpoint } => {
            shared::narrate::set_role("client");
            let addresses = endpoint.addresses()?;
            run_client(&addresses)
        }
    })
}

// ---------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------

/// Steps 1 to 4: a socket that listens on `address`.
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

/// Steps 5 to 11, forever: one client at a time, each until it closes.
fn serve_forever(
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
        let (mut connection, peer) = match accepted {
            Ok(pair) => pair,
            // EINVAL: the socket is not listening. That is our bug, and retrying cannot
            // fix it, so stop with a clear message.
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
                return Err(Failure::new(format!(
                    "accept() failed: {} (did listen() succeed?)",
                    shared::errors::explain(&err)
                )));
            }
            // Anything else is not fatal: a client that gave up while it was queued
            // (ECONNABORTED), or no descriptor left to give the new connection (EMFILE:
            // this process has as many open as its limit allows; ENFILE: the whole
            // system has). A descriptor is freed when a client leaves, so the server
            // must live on. The refused client stays in the queue, though, and accept()
            // would fail again at once: retrying straight away spins a CPU at 100% and
            // floods the log, so pause a moment first.
            Err(err) => {
                //- answer: report a failed accept(), pause if descriptors ran out, then accept again
                //- hint: One line on stderr saying what failed, and the server goes on. When the
                //- hint: error says the process (or the system) has no descriptor left, wait a
                //- hint: little before the next accept(): the client is still queued, so an
                //- hint: immediate retry would fail the same way, over and over.
                //- more: `io::Error::raw_os_error` gives the errno; compare it with the constants
                //- more: `EMFILE` and `ENFILE` below (`man 2 accept`, ERRORS). `std::thread::sleep`
                //- more: with `ACCEPT_BACKOFF`; `continue` goes back to the top of the loop.
                eprintln!("lab3: accept() failed: {}", shared::errors::explain(&err));
                if matches!(err.raw_os_error(), Some(EMFILE | ENFILE)) {
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
                continue;
                //- end
            }
        };
        let fd = connection.as_raw_fd();
        let peer_text = describe(&peer);
        narrate!("accept() -> fd {fd} from {peer_text}");
        println!("client {peer_text} connected");

        // Steps 6 to 10. A client that resets the connection or stops reading ends its
        // own conversation only: we report it and go on with the next client.
        match serve_client(&mut connection, timestamp, send_timeout) {
            Ok(answered) => println!("client {peer_text} done ({answered} bytes sent back)"),
            Err(failure) => eprintln!("lab3: client {peer_text}: {failure}"),
        }

        //- given: step 11: close the connection
        //- call: `close()`
        //- why: free the descriptor and send our FIN; forget it and you leak one descriptor per
        //- why: client (and the client waits for ever for the end of the answer)
        //- end
        // Step 11: close() frees the descriptor and, if the client has not gone already,
        // sends our FIN: the client's recv() returns 0, the end of our answer. A server
        // that forgets this leaks one descriptor per client until accept() fails.
        drop(connection);
        narrate!("close(fd {fd})");
    }
}

/// Steps 6 to 10 for one client: returns how many bytes we sent back.
fn serve_client(
    connection: &mut Socket,
    timestamp: bool,
    send_timeout: Duration,
) -> Result<u64, Failure> {
    // Step 6: SO_SNDTIMEO bounds how long one send() may block. send() blocks while
    // the client's receive buffer and our send buffer are full, which lasts for ever
    // if the client never reads; the timeout turns that into an error for this client.
    // The clock runs per send() call: one that moved a few bytes before the time ran
    // out returns that short count, and the next call starts a new `send_timeout`.
    {
        //- answer: step 6: give send() on `connection` a timeout of `send_timeout`
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
        // Step 7: recv() returns what has arrived so far: maybe part of what the client
        // sent, maybe several of its sends glued together. Only 0 means "no more": the
        // client shut down its sending side (or closed), so we have seen everything.
        let received: usize = {
            //- answer: step 7: receive into `buffer`, up to its size
            //- hint: Receive whatever has arrived, at most a buffer's worth. The block's value is
            //- hint: the count: 0 means the client has finished sending (end of stream).
            //- more: socket2's `Socket` implements `std::io::Read`: `Read::read` with a mutable
            //- more: borrow of the buffer returns how many bytes it copied.
            //- call: `recv()` in a loop
            //- why: take what has arrived; loop until it returns 0
            connection.read(&mut buffer).context("recv()")?
            //- end
        };
        if received == 0 {
            narrate!("recv() -> 0 bytes: the client shut down its side, end of stream");
            break;
        }
        let chunk = &buffer[..received];
        narrate!("recv() -> {received} bytes {}", preview(chunk));

        // Step 8: the answer. A plain echo sends the bytes back untouched: they need not
        // be text, let alone UTF-8. --timestamp answers whole lines only (step 8 proper
        // is in LineStamper::feed).
        let answer: Cow<[u8]> = match stamper.as_mut() {
            None => Cow::Borrowed(chunk),
            Some(stamper) => Cow::Owned(stamper.feed(chunk)?),
        };
        answered += send_all(connection, &answer)?;
        // One recv() is not the whole message: go back for more until recv() returns 0.
    }

    //- given: step 10: answer a last line that has no `\n`
    //- call: (`--timestamp`) answer the last line
    //- why: a final line without `\n` is still a line: stamp it and add the `\n`
    //- end
    // Step 10: with --timestamp, a last line that ended without `\n` is still a line.
    if let Some(stamper) = stamper.as_mut() {
        let last_answer = stamper.finish();
        answered += send_all(connection, &last_answer)?;
    }
    Ok(answered)
}

/// Step 9: sends every byte of `answer` and returns how many that was.
fn send_all(connection: &mut Socket, answer: &[u8]) -> Result<u64, Failure> {
    if answer.is_empty() {
        return Ok(0);
    }
    // Step 9: send() may accept only part of the bytes (it returns how many it took)
    // when the buffers fill up; the rest would silently be lost. write_all() is the
    // send-all loop: after a partial send() it calls send() again with what is left,
    // until nothing is. If one send() waits longer than the send timeout, it fails with
    // EAGAIN and write_all() stops: that ends this client, never the server.
    let sent: io::Result<()> = {
        //- answer: step 9: send all of `answer` to the client
        //- hint: Send the whole answer: one send() may take only part of it, so keep going until
        //- hint: every byte is out. Keep the result; the caller looks at it.
        //- more: socket2's `Socket` implements `std::io::Write`: `Write::write_all` returns
        //- more: `io::Result<()>`.
        //- call: `send()` via `write_all()`
        //- why: send every byte of the answer, however many `send()` calls it takes
        connection.write_all(answer)
        //- end
    };
    sent.map_err(|err| send_failure(&err))?;
    narrate!("send({} bytes {})", answer.len(), preview(answer));
    Ok(answer.len() as u64)
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

/// Line framing for `--timestamp`. TCP keeps no message boundaries, so a line may
/// arrive in pieces over several recv() calls, and one recv() may bring several lines.
/// The stamper keeps the unfinished part of a line until its `\n` arrives.
#[derive(Default)]
struct LineStamper {
    /// The bytes of the current line so far (no `\n` among them yet).
    unfinished: Vec<u8>,
}

impl LineStamper {
    /// Takes the bytes of one recv() and returns the answers to the lines they finish.
    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut answers = Vec::new();
        // Step 8: cut the stream into lines. Every `\n` in `chunk` finishes a line (whose
        // start may have come in earlier recv() calls); what follows the last `\n` is the
        // start of a line that is not finished yet. Each finished line gets its own stamp.
        {
            //- answer: step 8: stamp each line `chunk` finishes; keep the rest in `self.unfinished`
            //- hint: A line may arrive in pieces, or several lines in one chunk. Walk through the
            //- hint: chunk keeping each newline with the line it ends; add every piece to what is
            //- hint: unfinished, and when a piece ends a line, stamp the whole line and start
            //- hint: afresh.
            //- more: The slice method `split_inclusive` (with a closure that tests for `b'\n'`),
            //- more: `<[u8]>::ends_with`, `Vec::extend_from_slice` and `Vec::clear`; the helper
            //- more: `stamp` adds one answer to `answers`.
            //- call: line framing (`--timestamp` only)
            //- why: every `\n` ends a line, whose start may have come in earlier `recv()`s; keep
            //- why: the bytes after the last `\n` for later
            for piece in chunk.split_inclusive(|&byte| byte == b'\n') {
                self.unfinished.extend_from_slice(piece);
                if piece.ends_with(b"\n") {
                    stamp(&self.unfinished, &mut answers);
                    self.unfinished.clear();
                }
            }
            //- end
        }
        if self.unfinished.len() > MAX_LINE_LENGTH {
            return Err(Failure::new(format!(
                "gave up: a line longer than {MAX_LINE_LENGTH} bytes"
            )));
        }
        Ok(answers)
    }

    /// At the end of the stream: the answer to a last line without `\n`, if any.
    fn finish(&mut self) -> Vec<u8> {
        let mut answers = Vec::new();
        if !self.unfinished.is_empty() {
            stamp(&self.unfinished, &mut answers);
            self.unfinished.clear();
        }
        answers
    }
}

/// Appends `[<ctime>] <line>` to `answers`, ending in `\n` whether `line` had one or not.
fn stamp(line: &[u8], answers: &mut Vec<u8>) {
    answers.extend_from_slice(format!("[{}] ", shared::ctime::now()).as_bytes());
    answers.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        answers.push(b'\n');
    }
}

// ---------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------

/// The client: prompt, read a line, send it over a new connection, print the answer;
/// until an empty line or the end of the input.
fn run_client(addresses: &[SocketAddr]) -> Result<(), Failure> {
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    loop {
        // The prompt has no `\n`, so stdout keeps it in its buffer unless we flush.
        output
            .write_all(PROMPT.as_bytes())
            .and_then(|()| output.flush())
            .context("write(stdout)")?;
        let Some(line) = read_line(&mut input)? else {
            break; // end of input (Ctrl+D)
        };
        if line.is_empty() {
            break;
        }

        // A NEW connection for every line, as in the notes: the server knows our line
        // is complete when we shut down our side, and a shut-down side cannot be reopened.
        let mut connection = connect_to(addresses)?;
        let answer = exchange(&mut connection, &line)?;

        //- given: client step 6: close the connection
        //- call: `close()`
        //- why: done with this connection; a half-closed connection cannot carry a second line,
        //- why: so the next line gets a new one
        //- end
        // Client step 6: close(). The server has closed already (that is how we knew the
        // answer was complete); closing frees our descriptor too.
        let fd = connection.as_raw_fd();
        drop(connection);
        narrate!("close(fd {fd})");

        if answer.is_empty() {
            return Err(Failure::new(
                "the server closed the connection without answering",
            ));
        }
        // Client step 7: the answer is bytes; a person reads text. We print it as UTF-8
        // text, so we decode it on purpose, with a policy for bytes that are not valid
        // UTF-8 (a binary echo, a server with another encoding, a character cut in
        // half): each invalid sequence shows as U+FFFD (`�`), and one line on stderr says
        // that the answer was not all text. Failing (Python's plain `.decode()` raises,
        // Rust's `String::from_utf8(..)?` returns an error) would end the client over one
        // odd byte; printing the raw bytes would hand the terminal whatever they happen to
        // be. (The server, by contrast, never decodes: an echo must give back the bytes.)
        let shown: Cow<str> = {
            //- answer: client step 7: decode `answer` as UTF-8 for display; replace what is invalid and say so on stderr
            //- hint: Turn the bytes into text to print. When they are not valid UTF-8, do not stop
            //- hint: and do not print them raw: replace each invalid sequence with the replacement
            //- hint: character, and tell the user on stderr (one line) that the answer was not
            //- hint: all text.
            //- more: `std::str::from_utf8` says whether the bytes are valid (its error has
            //- more: `valid_up_to`); `String::from_utf8_lossy` returns a `Cow<str>` with U+FFFD in
            //- more: place of each invalid sequence. `eprintln!` writes the note.
            match std::str::from_utf8(&answer) {
                Ok(text) => Cow::Borrowed(text),
                Err(err) => {
                    eprintln!(
                        "lab3: the answer is not valid UTF-8 (first bad byte at offset {}): \
                         shown with U+FFFD in place of the invalid bytes",
                        err.valid_up_to()
                    );
                    String::from_utf8_lossy(&answer)
                }
            }
            //- end
        };
        output
            .write_all(shown.as_bytes())
            .context("write(stdout)")?;
        if !shown.ends_with('\n') {
            output.write_all(b"\n").context("write(stdout)")?;
        }
    }
    Ok(())
}

/// One line of standard input without its `\n` (or `\r\n`); None at the end of input.
/// Bytes, not a String: the line need not be UTF-8.
fn read_line(input: &mut impl BufRead) -> Result<Option<Vec<u8>>, Failure> {
    let mut line = Vec::new();
    let count = input.read_until(b'\n', &mut line).context("read(stdin)")?;
    if count == 0 {
        return Ok(None);
    }
    if line.ends_with(b"\n") {
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
    }
    Ok(Some(line))
}

/// Client steps 1 and 2 on each address of the host in turn, until one accepts:
/// `localhost` may name both ::1 and 127.0.0.1, and the server may listen on only one.
fn connect_to(addresses: &[SocketAddr]) -> Result<Socket, Failure> {
    let mut last_failure = Failure::new("the host has no address to connect to");
    for &address in addresses {
        match connect_once(address) {
            Ok(connection) => return Ok(connection),
            Err(failure) => last_failure = failure,
        }
    }
    Err(last_failure)
}

/// Client steps 1 and 2: a socket connected to `address`.
fn connect_once(address: SocketAddr) -> Result<Socket, Failure> {
    // Client step 1: socket(), as for the server: same family as the address we dial.
    let socket: Socket = {
        //- answer: client step 1: create a TCP socket whose domain matches `address`
        //- hint: Same as the server's step 1: a stream socket whose family matches the address you
        //- hint: will dial.
        //- more: socket2's `Socket::new` with `Domain::for_address`, `Type::STREAM` and
        //- more: `Protocol::TCP`.
        //- call: `socket()`
        //- why: a new socket for every line
        Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .context("socket()")?
        //- end
    };
    narrate!("socket() -> fd {}", socket.as_raw_fd());

    // Client step 2: connect() runs the three-way handshake with the server. We never
    // bind(): the kernel picks our address and a free ephemeral port for us.
    {
        //- answer: client step 2: connect the socket to `address`
        //- hint: Dial the server: this runs TCP's three-way handshake, and the kernel picks your
        //- hint: local address and an ephemeral port on the way. Stop on failure, with the address
        //- hint: in the error.
        //- more: socket2's `Socket::connect` takes a `&SockAddr`, which a `SocketAddr` becomes with
        //- more: `.into()`; name the call with `.context(...)`. See `man 2 connect`.
        //- call: `connect(address)`
        //- why: the handshake; the kernel picks our ephemeral port, no `bind()` needed
        socket
            .connect(&address.into())
            .context(format!("connect({address})"))?;
        //- end
    }
    let local = socket
        .local_addr()
        .map(|name| describe(&name))
        .unwrap_or_default();
    narrate!("connect({address}) from {local}");
    Ok(socket)
}

/// Client steps 3 to 5: send `line`, say we are done, read the whole answer.
fn exchange(connection: &mut Socket, line: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut request = line.to_vec();
    request.push(b'\n');

    // Client step 3: send the line with its `\n`. write_all() repeats send() until
    // every byte is out, like the server's step 9.
    {
        //- answer: client step 3: send all of `request`
        //- hint: Send the whole request, every byte, however many send() calls it takes.
        //- more: `std::io::Write::write_all` on the socket; name the call with `.context(...)`.
        //- call: `send()` via `write_all()`
        //- why: the line and its `\n`
        connection.write_all(&request).context("send()")?;
        //- end
    }
    narrate!("send({} bytes {})", request.len(), preview(&request));

    // Client step 4: shutdown(SHUT_WR) half-closes the connection: our FIN tells the
    // server "nothing more from me" (its recv() returns 0), yet we can still receive.
    {
        //- answer: client step 4: shut down the writing side of `connection`
        //- hint: Half-close: tell the peer you will send nothing more (your FIN), so a reader
        //- hint: waiting for end-of-file knows the request is complete, while you can still read
        //- hint: the reply.
        //- more: socket2's `Socket::shutdown` with `std::net::Shutdown::Write` (shutdown(SHUT_WR),
        //- more: see `man 2 shutdown`).
        //- call: `shutdown(SHUT_WR)`
        //- why: half-close: "that was all", yet we can still receive
        connection
            .shutdown(Shutdown::Write)
            .context("shutdown(SHUT_WR)")?;
        //- end
    }
    narrate!("shutdown(SHUT_WR): no more data from us");

    // Client step 5: the answer may come in any number of pieces; it is complete when
    // the server closes and recv() returns 0.
    let mut answer = Vec::new();
    let mut buffer = [0u8; RECV_BUFFER_SIZE];
    loop {
        let received: usize = {
            //- answer: client step 5: receive into `buffer`, up to its size
            //- hint: Receive the next piece of the echo, as the server's step 7 does: the count, 0
            //- hint: meaning the server closed its side.
            //- more: socket2's `Socket` implements `std::io::Read`: `Read::read` into the buffer,
            //- more: with `.context(...)`.
            //- call: `recv()` in a loop until 0
            //- why: the answer may come in pieces; 0 means the server closed, the answer is
            //- why: complete
            connection.read(&mut buffer).context("recv()")?
            //- end
        };
        if received == 0 {
            narrate!("recv() -> 0 bytes: the server closed, the answer is complete");
            break;
        }
        let piece = &buffer[..received];
        narrate!("recv() -> {received} bytes {}", preview(piece));
        answer.extend_from_slice(piece);
    }
    Ok(answer)
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// The first bytes of `data`, escaped for a narration line: `"hello\n"`.
fn preview(data: &[u8]) -> String {
    const SHOWN: usize = 40;
    let shown = &data[..data.len().min(SHOWN)];
    let more = if data.len() > SHOWN { "..." } else { "" };
    format!("\"{}\"{more}", shown.escape_ascii())
}

/// Parses a positive number of seconds, like `10` or `0.5`.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}
