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

/// Client steps 3 to 6: send `line`, say we are done, read the whole answer, close.
fn exchange(mut connection: Socket, line: &[u8]) -> Result<Vec<u8>, Failure> {
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
            //- hint: Receive the next piece of the echo, as the server's step 8 does: the count, 0
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
        //- answer: client step 7: decode `answer` as UTF-8 for display; replace what is invalid and say so on stderr
        //- hint: Turn the bytes into text to print. When they are not valid UTF-8, do not stop
        //- hint: and do not print them raw: replace each invalid sequence with the replacement
        //- hint: character, and tell the user on stderr (one line) that the answer was not
        //- hint: all text.
        //- more: `std::str::from_utf8` says whether the bytes are valid (its error has
        //- more: `valid_up_to`); `String::from_utf8_lossy` returns a `Cow<str>` with U+FFFD in
        //- more: place of each invalid sequence. `eprintln!` writes the note.
        //- call: decode UTF-8, lossily
        //- why: a person reads text: decode on purpose, and say so when bytes had to be replaced
        match std::str::from_utf8(answer) {
            Ok(text) => Cow::Borrowed(text),
            Err(err) => {
                eprintln!(
                    "lab3: the answer is not valid UTF-8 (first bad byte at offset {}): \
                     shown with U+FFFD in place of the invalid bytes",
                    err.valid_up_to()
                );
                String::from_utf8_lossy(answer)
            }
        }
        //- end
    }
}
