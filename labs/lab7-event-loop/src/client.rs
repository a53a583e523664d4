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
        // Stuck? `cargo xtask hint lab7`
        todo!("client step 1: create a TCP socket whose domain matches `address`");
    };
    narrate!("socket() -> fd {}", socket.as_raw_fd());

    // Client step 2: connect(). A blocking connect is fine here: we have nothing else to do
    // until the handshake is over.
    {
        // Stuck? `cargo xtask hint lab7`
        todo!("client step 2: connect the socket to `address`");
    }
    narrate!("connect({address})");

    // Client step 3: O_NONBLOCK from now on: send() and recv() never sleep; only poll() does.
    {
        // Stuck? `cargo xtask hint lab7`
        todo!("client step 3: make the socket non-blocking");
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
            // Stuck? `cargo xtask hint lab7`
            todo!(
                "client step 4: poll() the first `watched_count` entries of `watched`, no timeout; on EINTR poll again"
            );
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
                // Stuck? `cargo xtask hint lab7`
                todo!("client step 5: send `outgoing[start..end]`; EAGAIN means 0 bytes sent");
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
                // Stuck? `cargo xtask hint lab7`
                todo!("client step 6: half-close: shut down the write side of the socket");
            }
            narrate!("shutdown(SHUT_WR) after {sent_total} bytes");
            write_side_open = false;
        }

        // Client step 7: recv() whatever echo has arrived; 0 means the server closed: done.
        if socket_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let received: usize = {
                // Stuck? `cargo xtask hint lab7`
                todo!("client step 7: recv() the echo into `echo`; on EAGAIN go back to poll()");
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
