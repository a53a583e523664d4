//! The client role: send stdin, half-close, print the echo, all in one `poll()` loop.
//!
//! Why not write all of stdin first and read the reply afterwards? Because the server
//! echoes while we are still sending. If we never read, the echo fills our receive
//! buffer, the server's unsent bytes for us reach its bound, it stops reading us
//! (back-pressure), our send() then waits for room that never comes, and both sides wait
//! for each other forever. So the client watches stdin and the socket together with
//! `poll()`: it sends when there is room and reads whenever echo arrives. It is the same
//! idea as the server's epoll loop, at the small scale that `poll()` suits well.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, Socket, Type};

/// Bytes moved per read() of stdin and per recv() of the echo.
const CHUNK: usize = 64 * 1024;

/// Connects to `address`, sends stdin, half-closes and prints the echo on stdout.
pub fn run(address: SocketAddr) -> Result<(), Failure> {
    // Client step 1: socket(): a TCP endpoint in the address family of `address`.
    let socket: Socket = {
        //- answer: client step 1: create a TCP socket whose domain matches `address`
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

    // Client step 2: connect(). A blocking connect is fine here: we have nothing else to do
    // until the handshake is over.
    {
        //- answer: client step 2: connect the socket to `address`
        //- hint: Dial the server: this runs TCP's three-way handshake, and the kernel picks your
        //- hint: local address and an ephemeral port on the way. Stop on failure, with the address
        //- hint: in the error.
        //- more: socket2's `Socket::connect` takes a `&SockAddr`, which a `SocketAddr` becomes with
        //- more: `.into()`; name the call with `.context(...)`. See `man 2 connect`.
        socket
            .connect(&address.into())
            .context(format!("connect({address})"))?;
        //- end
    }
    narrate!("connect({address})");

    // Client step 3: O_NONBLOCK from now on: send() and recv() never sleep; only poll() does.
    {
        //- answer: client step 3: make the socket non-blocking
        //- hint: Connected, switch the socket to non-blocking mode: from now on the client only
        //- hint: calls send and recv when poll() says they can proceed, and a call that would wait
        //- hint: fails at once with EAGAIN.
        //- more: socket2's `Socket::set_nonblocking` (fcntl O_NONBLOCK); name the call with
        //- more: `.context(...)`.
        socket.set_nonblocking(true).context("fcntl(O_NONBLOCK)")?;
        //- end
    }
    narrate!("fcntl(fd {}, F_SETFL, O_NONBLOCK)", socket.as_raw_fd());

    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    // Bytes read from stdin and not sent yet: `outgoing[start..end]`.
    let mut outgoing = vec![0u8; CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut echo = vec![0u8; CHUNK];
    let mut stdin_open = true;
    let mut write_side_open = true;
    let (mut sent_total, mut received_total) = (0usize, 0usize);

    loop {
        // Read more stdin only once the last chunk is sent: that bounds our own memory.
        let want_stdin = stdin_open && start == end;
        let socket_interest = if start < end {
            PollFlags::POLLIN | PollFlags::POLLOUT
        } else {
            PollFlags::POLLIN
        };
        let mut watched = [
            PollFd::new(socket.as_fd(), socket_interest),
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
        ];
        // Leave stdin out of the list entirely when we do not want it: poll() reports
        // POLLHUP on a closed pipe whatever we ask for, which would wake us for nothing.
        let watched_count = if want_stdin { 2 } else { 1 };

        // Client step 4: poll() sleeps until the socket (or stdin) is ready for what we asked.
        {
            //- answer: client step 4: poll() the first `watched_count` entries of `watched`, no timeout; on EINTR poll again
            //- hint: Sleep until one of the watched sockets is ready, with no time limit. Watch
            //- hint: only the entries in use (the first `watched_count`). A signal waking you up
            //- hint: early (EINTR) is no error: poll again.
            //- more: nix's `poll::poll` on a sub-slice of the `PollFd` array, with
            //- more: `PollTimeout::NONE`; match `Errno::EINTR` to `continue`; other errors take
            //- more: `.context(...)` like std's.
            match poll(&mut watched[..watched_count], PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno).context("poll()"),
            }
            //- end
        }
        let socket_ready = watched[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ready = if want_stdin {
            watched[1].revents().unwrap_or(PollFlags::empty())
        } else {
            PollFlags::empty()
        };

        // Plumbing: take the next chunk of stdin (0 bytes means end of input).
        if stdin_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(stdin.as_fd(), &mut outgoing) {
                Ok(0) => stdin_open = false,
                Ok(count) => (start, end) = (0, count),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(errno) => return Err(errno).context("read(stdin)"),
            }
        }

        // Client step 5: send() as much of the pending chunk as the kernel takes right now.
        if socket_ready.contains(PollFlags::POLLOUT) && start < end {
            let sent: usize = {
                //- answer: client step 5: send `outgoing[start..end]`; EAGAIN means 0 bytes sent
                //- hint: Send as much of the pending part of the outgoing bytes as the kernel takes
                //- hint: now; a non-blocking send may take only some. If it would block (EAGAIN) or
                //- hint: a signal interrupted it, count it as 0 bytes sent and try again when poll
                //- hint: says so.
                //- more: `std::io::Write::write` (not `write_all`) through a `&Socket` borrow, on
                //- more: the slice from `start` to `end`; match `io::ErrorKind::WouldBlock` and
                //- more: `Interrupted`, e.g. with `matches!`; other errors: `return
                //- more: Err(err).context(...)`.
                match (&socket).write(&outgoing[start..end]) {
                    Ok(count) => count,
                    Err(err)
                        if matches!(
                            err.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) =>
                    {
                        0
                    }
                    Err(err) => return Err(err).context("send()"),
                }
                //- end
            };
            narrate!("send({} bytes) -> {sent}", end - start);
            start += sent;
            sent_total += sent;
        }

        // Client step 6: stdin is over and everything is sent: shutdown(SHUT_WR) sends our FIN.
        // The server reads 0, finishes echoing, then closes: that is how we know the
        // echo is complete. (close() would also stop us from reading the echo.)
        if !stdin_open && start == end && write_side_open {
            {
                //- answer: client step 6: half-close: shut down the write side of the socket
                //- hint: Everything is sent: half-close so the server sees end-of-file and knows no
                //- hint: more is coming, while you keep reading the echo.
                //- more: socket2's `Socket::shutdown` with `Shutdown::Write` (shutdown(SHUT_WR));
                //- more: name the call with `.context(...)`.
                socket
                    .shutdown(Shutdown::Write)
                    .context("shutdown(SHUT_WR)")?;
                //- end
            }
            narrate!("shutdown(SHUT_WR) after {sent_total} bytes");
            write_side_open = false;
        }

        // Client step 7: recv() whatever echo has arrived; 0 means the server closed: done.
        if socket_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let received: usize = {
                //- answer: client step 7: recv() the echo into `echo`; on EAGAIN go back to poll()
                //- hint: Receive whatever part of the echo is there. If nothing is there after all
                //- hint: (EAGAIN) or a signal interrupted, go back to waiting in poll(); 0 bytes
                //- hint: means the server closed.
                //- more: `std::io::Read::read` through a `&Socket` borrow into the echo buffer;
                //- more: match `io::ErrorKind::WouldBlock` and `Interrupted` to `continue`; other
                //- more: errors: `return Err(err).context(...)`.
                match (&socket).read(&mut echo) {
                    Ok(count) => count,
                    Err(err)
                        if matches!(
                            err.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue;
                    }
                    Err(err) => return Err(err).context("recv()"),
                }
                //- end
            };
            if received == 0 {
                narrate!("recv() -> 0: the server closed, {received_total} bytes echoed");
                break;
            }
            received_total += received;
            stdout
                .write_all(&echo[..received])
                .context("write(stdout)")?;
        }
    }
    stdout.flush().context("write(stdout)")?;
    if stdin_open || start < end {
        return Err(Failure::new(format!(
            "the server closed the connection before we sent all of stdin \
             ({sent_total} bytes sent, {received_total} echoed)"
        )));
    }
    Ok(())
}
