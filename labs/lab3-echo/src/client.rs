//! The echo client: client steps 1 to 7, a new connection for every line typed.
//!
//! ```text
//! loop { socket() -> connect() -> send() -> shutdown(SHUT_WR) -> loop { recv() } -> close() }
//! ```
//!
//! The client reads a line at a `> ` prompt, sends it over a connection of its own,
//! half-closes so that the server knows the line is complete, reads the whole answer
//! (it is complete when the server closes) and prints it as text. An empty line or the
//! end of the input ends the client.

use std::borrow::Cow;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;

use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{RECV_BUFFER_SIZE, preview};

/// What the client prints before it reads each line.
const PROMPT: &str = "> ";

/// The client: prompt, read a line, send it over a new connection, print the answer;
/// until an empty line or the end of the input.
pub fn run(addresses: &[SocketAddr]) -> Result<(), Failure> {
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
        let connection = connect_to(addresses)?;
        let answer = exchange(connection, &line)?;
        if answer.is_empty() {
            return Err(Failure::new(
                "the server closed the connection without answering",
            ));
        }

        let shown = decode(&answer);
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
        // Stuck? `cargo xtask hint lab3`
        todo!("client step 1: create a TCP socket whose domain matches `address`");
    };
    narrate!("socket() -> fd {}", socket.as_raw_fd());

    // Client step 2: connect() runs the three-way handshake with the server. We never
    // bind(): the kernel picks our address and a free ephemeral port for us.
    {
        // Stuck? `cargo xtask hint lab3`
        todo!("client step 2: connect the socket to `address`");
    }
    let local = socket
        .local_addr()
        .map(|name| describe(&name))
        .unwrap_or_default();
    narrate!("connect({address}) from {local}");
    Ok(socket)
}

/// Client steps 3 to 6: send `line`, say we are done, read the whole answer, close.
fn exchange(mut connection: Socket, line: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut request = line.to_vec();
    request.push(b'\n');

    // Client step 3: send the line with its `\n`. write_all() repeats send() until
    // every byte is out, like the server's step 9.
    {
        // Stuck? `cargo xtask hint lab3`
        todo!("client step 3: send all of `request`");
    }
    narrate!("send({} bytes {})", request.len(), preview(&request));

    // Client step 4: shutdown(SHUT_WR) half-closes the connection: our FIN tells the
    // server "nothing more from me" (its recv() returns 0), yet we can still receive.
    {
        // Stuck? `cargo xtask hint lab3`
        todo!("client step 4: shut down the writing side of `connection`");
    }
    narrate!("shutdown(SHUT_WR): no more data from us");

    // Client step 5: the answer may come in any number of pieces; it is complete when
    // the server closes and recv() returns 0.
    let mut answer = Vec::new();
    let mut buffer = [0u8; RECV_BUFFER_SIZE];
    loop {
        let received: usize = {
            // Stuck? `cargo xtask hint lab3`
            todo!("client step 5: receive into `buffer`, up to its size");
        };
        if received == 0 {
            narrate!("recv() -> 0 bytes: the server closed, the answer is complete");
            break;
        }
        let piece = &buffer[..received];
        narrate!("recv() -> {received} bytes {}", preview(piece));
        answer.extend_from_slice(piece);
    }

    // Client step 6: close(). The server has closed already (that is how we knew the
    // answer was complete); closing frees our descriptor too.
    let fd = connection.as_raw_fd();
    drop(connection);
    narrate!("close(fd {fd})");
    Ok(answer)
}

/// Client step 7: the answer, as text to print.
fn decode(answer: &[u8]) -> Cow<'_, str> {
    // Client step 7: the answer is bytes; a person reads text. We print it as UTF-8
    // text, so we decode it on purpose, with a policy for bytes that are not valid
    // UTF-8 (a binary echo, a server with another encoding, a character cut in
    // half): each invalid sequence shows as U+FFFD (`�`), and one line on stderr says
    // that the answer was not all text. Failing (Python's plain `.decode()` raises,
    // Rust's `String::from_utf8(..)?` returns an error) would end the client over one
    // odd byte; printing the raw bytes would hand the terminal whatever they happen to
    // be. (The server, by contrast, never decodes: an echo must give back the bytes.)
    {
        // Stuck? `cargo xtask hint lab3`
        todo!(
            "client step 7: decode `answer` as UTF-8 for display; replace what is invalid and say so on stderr"
        );
    }
}
