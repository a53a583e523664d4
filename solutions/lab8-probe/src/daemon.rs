//! `lab8 daemon`, steps 1 to 10: a small TCP daemon that announces itself in a pid
//! file (written by [`crate::pidfile`]) and answers the probe handshake
//! ([`crate::handshake`]).
//!
//! The order of the steps matters:
//!
//! 1. SIGINT and SIGTERM are blocked and routed to a signalfd *first*, so a signal sent
//!    the moment the pid file appears is never lost (and never kills us uncleanly);
//! 2. the pid file is written only once the socket listens, so whoever reads it can
//!    connect at once;
//! 3. on a signal the daemon removes the pid file (if it is still ours) and exits 0.
//!
//! One poll() waits for both a client and a signal, so the daemon sleeps without
//! spinning and still reacts to a signal at once.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::SignalFd;
use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::handshake::{Line, PROBE_REQUEST, answer_line, read_line};
use crate::pidfile::{PidRecord, remove_pidfile_if_ours, write_pidfile_atomically};
use crate::status::{Verdict, check_status};
use crate::{preview, resolve};

/// How long one client may take to send its request and take our answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(2);
/// How long the start-up check may probe a daemon named in an existing pid file.
const STARTUP_PROBE: Duration = Duration::from_millis(1000);

/// `lab8 daemon`: runs until SIGINT or SIGTERM.
pub fn run_daemon(pidfile: &Path, host: &str, port: u16, backlog: i32) -> Result<(), Failure> {
    let signals = watch_shutdown_signals()?;
    let own_pid = std::process::id() as i32;

    // Two daemons sharing one pid file would overwrite each other's. If the file names a
    // daemon that answers, leave it be; if it is stale (or absent), take it over. This is
    // the status check itself: steps 14 and 15 (read_pidfile) and, when the file names a
    // live process, steps 17 to 23.
    match check_status(pidfile, host, STARTUP_PROBE)?.verdict {
        Verdict::Running(record) => {
            return Err(Failure::new(format!(
                "a daemon already runs (pid {}, port {}) according to {}; not starting another",
                record.pid,
                record.port,
                pidfile.display()
            )));
        }
        Verdict::NotRunning(reason) => narrate!("no daemon runs yet ({reason})"),
    }

    let address = resolve(host, port)?;
    let listener = open_listener(address, backlog)?;

    let (bound, bound_text) = bound_address(&listener)?;
    println!("listening on {bound_text} (pid {own_pid})");

    // Only now, with the socket listening, may the world learn about us.
    let record = PidRecord {
        pid: own_pid,
        port: bound.port(),
    };
    write_pidfile_atomically(pidfile, record)?;
    println!(
        "wrote pid file {}: {};{}",
        pidfile.display(),
        record.pid,
        record.port
    );

    let outcome = serve_until_signal(&listener, &signals, own_pid);
    // Whatever ended the loop, clean up the pid file we wrote (if it is still ours).
    remove_pidfile_if_ours(pidfile, own_pid);
    outcome
}

/// Step 1: SIGINT and SIGTERM stop being asynchronous interruptions and become data
/// to read from a file descriptor, which poll() can watch next to the listener.
fn watch_shutdown_signals() -> Result<SignalFd, Failure> {
    let mut shutdown = SigSet::empty();
    shutdown.add(Signal::SIGINT);
    shutdown.add(Signal::SIGTERM);
    let signals: SignalFd = {
        //- answer: step 1: block SIGINT and SIGTERM, then open a signalfd for them
        //- hint: Turn the shutdown signals into something you can read: first block them (so they
        //- hint: no longer kill the process or run a handler), then open a file descriptor that
        //- hint: becomes readable when one is pending. The value is that descriptor.
        //- more: nix's `sys::signal::sigprocmask` with `SigmaskHow::SIG_BLOCK` and the set
        //- more: `shutdown`; nix's `sys::signalfd::SignalFd::new`; name each call with
        //- more: `.context(...)`, as for std's errors.
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&shutdown), None)
            .context("sigprocmask(SIG_BLOCK)")?;
        SignalFd::new(&shutdown).context("signalfd()")?
        //- end
    };
    narrate!(
        "sigprocmask(SIG_BLOCK, {{SIGINT, SIGTERM}}); signalfd() -> fd {}",
        signals.as_raw_fd()
    );
    Ok(signals)
}

/// Steps 2 to 6: a non-blocking socket listening on `address`.
fn open_listener(address: SocketAddr, backlog: i32) -> Result<Socket, Failure> {
    // Step 2: socket(): a TCP endpoint of the address's family.
    let socket: Socket = {
        //- answer: step 2: create a TCP socket whose domain matches `address`
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

    // Step 3: SO_REUSEADDR, so a restarted daemon can take its old port at once.
    {
        //- answer: step 3: set SO_REUSEADDR on the socket
        //- hint: Turn on the socket option that lets a restarted server bind its port again at
        //- hint: once, while connections of its previous run linger in TIME_WAIT. It only helps if
        //- hint: it is set before bind().
        //- more: socket2's `Socket::set_reuse_address` (setsockopt SO_REUSEADDR, see `man 7
        //- more: socket`); name the call in errors with `.context(...)`.
        socket
            .set_reuse_address(true)
            .context("setsockopt(SO_REUSEADDR)")?;
        //- end
    }
    narrate!("setsockopt(SO_REUSEADDR, 1)");

    // Step 4: bind() names the socket. Port 0 asks the kernel for any free port.
    {
        //- answer: step 4: bind the socket to `address`
        //- hint: Give the socket its name: the address and port that clients will dial. Until it is
        //- hint: bound, nobody can find it.
        //- more: socket2's `Socket::bind` wants a `&SockAddr`; a `std::net::SocketAddr` converts
        //- more: into one with `Into` (`.into()`). See `man 2 bind`; add `.context(...)` naming the
        //- more: address.
        socket
            .bind(&address.into())
            .context(format!("bind({address})"))?;
        //- end
    }
    narrate!("bind({address})");

    // Step 5: listen(): from now on the kernel completes handshakes for us.
    {
        //- answer: step 5: start listening with the given backlog
        //- hint: Make the socket passive: from now on the kernel completes handshakes for you and
        //- hint: queues the finished ones, at most as many as the backlog you were given.
        //- more: socket2's `Socket::listen`; its one argument is the backlog, the number from the
        //- more: command line. See `man 2 listen`.
        socket.listen(backlog).context("listen()")?;
        //- end
    }
    narrate!("listen(backlog={backlog})");

    // Step 6: poll() may say "a client is waiting" and that client may give up before
    // we accept(). A blocking accept() would then sleep, deaf to signals; a non-blocking
    // one answers EWOULDBLOCK and we go back to poll().
    {
        //- answer: step 6: make the listening socket non-blocking
        //- hint: The daemon waits for connections and signals with poll(), so no call on the
        //- hint: listener may block: make it non-blocking.
        //- more: socket2's `Socket::set_nonblocking`; name the call with `.context(...)`.
        socket.set_nonblocking(true).context("fcntl(O_NONBLOCK)")?;
        //- end
    }
    narrate!("fcntl(fd {}, O_NONBLOCK)", socket.as_raw_fd());
    Ok(socket)
}

/// Step 7: with port 0, bind() let the kernel choose. getsockname() tells which port we
/// got: the one number the pid file must hold. Returns it with its text for the output.
fn bound_address(listener: &Socket) -> Result<(SocketAddr, String), Failure> {
    let bound: SockAddr = {
        //- answer: step 7: ask the kernel which address `listener` is bound to
        //- hint: You bound to port 0 so the kernel chose a free port: ask it which address and port
        //- hint: the listener actually got.
        //- more: socket2's `Socket::local_addr` (getsockname()) returns a `SockAddr`; name the call
        //- more: with `.context(...)`.
        listener.local_addr().context("getsockname()")?
        //- end
    };
    let bound_text = describe(&bound);
    let Some(bound) = bound.as_socket() else {
        return Err(Failure::new("getsockname() returned a non-IP address"));
    };
    narrate!("getsockname() -> {bound_text}");
    Ok((bound, bound_text))
}

/// Steps 8 to 10 (and 16, in `read_line`), until a shutdown signal arrives.
fn serve_until_signal(listener: &Socket, signals: &SignalFd, own_pid: i32) -> Result<(), Failure> {
    loop {
        // Step 8: poll() sleeps until a client knocks or a signal arrives, whichever
        // comes first. No timeout: there is nothing to do until then.
        let mut watched = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        let ready: nix::Result<i32> = {
            //- answer: step 8: wait, with no timeout, until one of `watched` is readable
            //- hint: Sleep, with no time limit, until one of the watched descriptors (listener or
            //- hint: signal fd) is readable. Keep the result as it is: the code below handles
            //- hint: errors.
            //- more: nix's `poll::poll` with the `PollFd` array and `PollTimeout::NONE`; it returns
            //- more: `nix::Result<i32>`.
            poll(&mut watched, PollTimeout::NONE)
            //- end
        };
        let count = match ready {
            Err(Errno::EINTR) => continue,
            other => other.context("poll()")?,
        };
        narrate!("poll(listener, signalfd) -> {count} ready");
        let readable = |fd: &PollFd| {
            fd.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
        };
        let client_waiting = readable(&watched[0]);
        let signal_waiting = readable(&watched[1]);

        if signal_waiting && let Some(info) = signals.read_signal().context("read(signalfd)")? {
            let name = Signal::try_from(info.ssi_signo as i32)
                .map(|s| s.as_str())
                .unwrap_or("a signal");
            narrate!("read(signalfd) -> {name}");
            println!("got {name}: shutting down");
            return Ok(());
        }
        if client_waiting {
            accept_one(listener, own_pid);
        }
    }
}

/// Step 9: take one waiting client and answer it. Its failures are its own: report
/// them on stderr and keep serving.
fn accept_one(listener: &Socket, own_pid: i32) {
    let accepted: io::Result<(Socket, SockAddr)> = {
        //- answer: step 9: accept the waiting client on `listener`
        //- hint: poll() said someone is waiting: accept that client. Keep the result as it is for
        //- hint: the code below.
        //- more: socket2's `Socket::accept` returns `io::Result<(Socket, SockAddr)>`.
        listener.accept()
        //- end
    };
    let (connection, peer) = match accepted {
        Ok(pair) => pair,
        // It gave up before we got to it; nothing to do.
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
        Err(err) => {
            eprintln!("lab8: accept() failed: {}", shared::errors::explain(&err));
            return;
        }
    };
    let peer_text = describe(&peer);
    narrate!("accept() -> fd {} from {peer_text}", connection.as_raw_fd());
    match answer_probe(connection, own_pid) {
        Ok(outcome) => println!("client {peer_text}: {outcome}"),
        Err(failure) => eprintln!("lab8: client {peer_text}: {failure}"),
    }
}

/// Step 16 (in `read_line`) and step 10: read the client's line and answer it, all
/// within CLIENT_DEADLINE, so a client that connects and says nothing cannot stall the
/// daemon for long.
fn answer_probe(mut connection: Socket, own_pid: i32) -> Result<String, Failure> {
    // The accepted socket is blocking (accept() does not pass O_NONBLOCK on); the
    // timeouts below bound each recv() and send().
    connection
        .set_write_timeout(Some(CLIENT_DEADLINE))
        .context("setsockopt(SO_SNDTIMEO)")?;
    let deadline = Instant::now() + CLIENT_DEADLINE;
    // Step 16 (inside read_line): recv() until a whole line has come.
    let request = read_line(&mut connection, deadline).context("recv()")?;
    let (reply, outcome) = match request {
        Line::Complete(line) if line == PROBE_REQUEST.as_bytes() => (
            answer_line(own_pid as u32),
            String::from("probed; answered"),
        ),
        Line::Complete(line) | Line::TooLong(line) => (
            format!("error: expected \"{}\"\n", PROBE_REQUEST),
            format!("sent {} instead of a probe", preview(&line)),
        ),
        // Deluge's style of check: connect, then hang up. Nothing to answer.
        Line::Closed(line) if line.is_empty() => {
            return Ok(String::from("connected and hung up"));
        }
        Line::Closed(line) => {
            return Ok(format!("hung up after a partial line {}", preview(&line)));
        }
        Line::TimedOut(_) => {
            return Err(Failure::new(format!(
                "sent no whole line within {} ms; closing",
                CLIENT_DEADLINE.as_millis()
            )));
        }
    };

    // Step 10: send the answer. write_all() repeats send() until every byte is out (or
    // SO_SNDTIMEO hits).
    {
        //- answer: step 10: send `reply` to the client
        //- hint: Send the whole reply text to the client, every byte.
        //- more: `std::io::Write::write_all` with the string's bytes (`str::as_bytes`); name the
        //- more: call with `.context(...)`.
        connection
            .write_all(reply.as_bytes())
            .context("send(answer)")?;
        //- end
    }
    narrate!("send({reply:?})");
    // Our FIN goes out now; dropping `connection` then close()s the descriptor.
    let _ = connection.shutdown(Shutdown::Write);
    narrate!("shutdown(SHUT_WR); close(fd {})", connection.as_raw_fd());
    Ok(outcome)
}
