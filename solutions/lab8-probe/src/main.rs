//! Lab 8: is the daemon running? A pid file, `kill(pid, 0)` and a probe connection.
//!
//! Deluge (the BitTorrent client) decides whether its daemon runs by reading a file that
//! holds the daemon's process id and port, then connecting to that port. This lab builds
//! both halves, and makes the check robust against every way the file can lie:
//!
//! - `lab8 daemon --pidfile F [--host H] [--port P]` listens (port 0 or none: the kernel
//!   picks one, read back with getsockname()), writes `pid;port` to F atomically, answers
//!   the probe handshake, and removes F again on SIGINT or SIGTERM.
//! - `lab8 status --pidfile F [--host H] [--timeout-ms N]` prints
//!   `running (pid N, port P)` and exits 0, or `not running: <reason>` and exits 1.
//!
//! The handshake: the prober sends `socklab-probe?\n`, the daemon answers
//! `socklab-daemon <pid>\n`. Only our daemon knows that answer, so a reused pid or port
//! cannot fool the check.
//!
//! ```text
//! daemon: sigprocmask() -> signalfd() -> socket() -> setsockopt() -> bind() -> listen()
//!         -> getsockname() -> pid file (open temp, write, fsync, rename)
//!         -> loop { poll() -> accept() -> recv() -> send() -> close() } -> unlink(pid file)
//! status: read pid file -> kill(pid, 0) -> socket() -> connect() -> poll()
//!         -> getsockopt(SO_ERROR) -> send() -> recv() -> close()
//! ```
//!
//! Run it: `cargo run -p lab8 -- daemon --pidfile /tmp/lab8.pid`, then in another
//! terminal `cargo run -p lab8 -- status --pidfile /tmp/lab8.pid`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;
use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// What the prober sends, without the newline.
const PROBE_REQUEST: &str = "socklab-probe?";
/// The first word of the daemon's answer; the daemon's pid follows after one space.
const ANSWER_WORD: &str = "socklab-daemon";
/// The longest line either side accepts, newline included.
const MAX_LINE: usize = 128;

#[derive(Parser)]
#[command(
    name = "lab8",
    about = "Lab 8: is the daemon running? A pid file, kill(pid, 0) and a probe connection"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Listen, write `pid;port` to the pid file, answer probes; remove the file on SIGINT/SIGTERM.
    Daemon {
        /// Where to write `pid;port` once the daemon listens.
        #[arg(long)]
        pidfile: PathBuf,
        /// Address to listen on (loopback by default, so nothing is exposed by accident).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on; 0 (the default) lets the kernel pick a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// How many finished handshakes the kernel may queue while we are busy.
        #[arg(long, default_value_t = 16)]
        backlog: i32,
    },
    /// Read the pid file and say whether its daemon runs (exit 0) or not and why (exit 1).
    Status {
        /// The pid file a daemon wrote (`pid;port`).
        #[arg(long)]
        pidfile: PathBuf,
        /// Host the daemon listens on (the pid file holds only its port).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Deadline for the whole probe (connect, send, recv), in milliseconds.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    // `status` answers "not running" with exit status 1 but no error: it did its job.
    let mut daemon_is_down = false;
    let code = shared::run("lab8", || match Cli::parse().role {
        Role::Daemon {
            pidfile,
            host,
            port,
            backlog,
        } => {
            shared::narrate::set_role("daemon");
            run_daemon(&pidfile, &host, port, backlog)
        }
        Role::Status {
            pidfile,
            host,
            timeout_ms,
        } => {
            shared::narrate::set_role("status");
            daemon_is_down = !run_status(&pidfile, &host, timeout_ms)?;
            Ok(())
        }
    });
    if daemon_is_down {
        ExitCode::FAILURE
    } else {
        code
    }
}

// ======================================================================================
// `lab8 daemon`: a small TCP daemon that announces itself in a pid file.
//
// The order of the steps matters:
//
// 1. SIGINT and SIGTERM are blocked and routed to a signalfd *first*, so a signal sent
//    the moment the pid file appears is never lost (and never kills us uncleanly);
// 2. the pid file is written only once the socket listens, so whoever reads it can
//    connect at once;
// 3. on a signal the daemon removes the pid file (if it is still ours) and exits 0.
//
// One poll() waits for both a client and a signal, so the daemon sleeps without
// spinning and still reacts to a signal at once.
// ======================================================================================

/// How long one client may take to send its request and take our answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(2);
/// How long the start-up check may probe a daemon named in an existing pid file.
const STARTUP_PROBE: Duration = Duration::from_millis(1000);

/// `lab8 daemon`: runs until SIGINT or SIGTERM.
fn run_daemon(pidfile: &Path, host: &str, port: u16, backlog: i32) -> Result<(), Failure> {
    let signals = watch_shutdown_signals()?;
    let own_pid = std::process::id() as i32;

    // Two daemons sharing one pid file would overwrite each other's. If the file names a
    // daemon that answers, leave it be; if it is stale (or absent), take it over. This is
    // the status check itself: steps 2 and 3 (read_pidfile) and, when the file names a
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

    // Step 9: with port 0, bind() let the kernel choose. getsockname() tells which port
    // we got: the one number the pid file must hold.
    let bound: SockAddr = {
        //- answer: step 9: ask the kernel which address `listener` is bound to
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
        //- more: `shutdown`; nix's `sys::signalfd::SignalFd::new`; turn each `Errno` into a
        //- more: `Failure` (`Errno::desc` gives the words).
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&shutdown), None)
            .map_err(|e| Failure::new(format!("sigprocmask() failed: {}", e.desc())))?;
        SignalFd::new(&shutdown)
            .map_err(|e| Failure::new(format!("signalfd() failed: {}", e.desc())))?
        //- end
    };
    narrate!(
        "sigprocmask(SIG_BLOCK, {{SIGINT, SIGTERM}}); signalfd() -> fd {}",
        signals.as_raw_fd()
    );
    Ok(signals)
}

/// Steps 4 to 8: a non-blocking socket listening on `address`.
fn open_listener(address: SocketAddr, backlog: i32) -> Result<Socket, Failure> {
    // Step 4: socket(): a TCP endpoint of the address's family.
    let socket: Socket = {
        //- answer: step 4: create a TCP socket whose domain matches `address`
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

    // Step 5: SO_REUSEADDR, so a restarted daemon can take its old port at once.
    {
        //- answer: step 5: set SO_REUSEADDR on the socket
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

    // Step 6: bind() names the socket. Port 0 asks the kernel for any free port.
    {
        //- answer: step 6: bind the socket to `address`
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

    // Step 7: listen(): from now on the kernel completes handshakes for us.
    {
        //- answer: step 7: start listening with the given backlog
        //- hint: Make the socket passive: from now on the kernel completes handshakes for you and
        //- hint: queues the finished ones, at most as many as the backlog you were given.
        //- more: socket2's `Socket::listen`; its one argument is the backlog, the number from the
        //- more: command line. See `man 2 listen`.
        socket.listen(backlog).context("listen()")?;
        //- end
    }
    narrate!("listen(backlog={backlog})");

    // Step 8: poll() may say "a client is waiting" and that client may give up before
    // we accept(). A blocking accept() would then sleep, deaf to signals; a non-blocking
    // one answers EWOULDBLOCK and we go back to poll().
    {
        //- answer: step 8: make the listening socket non-blocking
        //- hint: The daemon waits for connections and signals with poll(), so no call on the
        //- hint: listener may block: make it non-blocking.
        //- more: socket2's `Socket::set_nonblocking`; name the call with `.context(...)`.
        socket.set_nonblocking(true).context("fcntl(O_NONBLOCK)")?;
        //- end
    }
    narrate!("fcntl(fd {}, O_NONBLOCK)", socket.as_raw_fd());
    Ok(socket)
}

/// Steps 13 to 16, until a shutdown signal arrives.
fn serve_until_signal(listener: &Socket, signals: &SignalFd, own_pid: i32) -> Result<(), Failure> {
    loop {
        // Step 13: poll() sleeps until a client knocks or a signal arrives, whichever
        // comes first. No timeout: there is nothing to do until then.
        let mut watched = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        let ready: nix::Result<i32> = {
            //- answer: step 13: wait, with no timeout, until one of `watched` is readable
            //- hint: Sleep, with no time limit, until one of the watched descriptors (listener or
            //- hint: signal fd) is readable. Keep the result as it is: the code below handles
            //- hint: errors.
            //- more: nix's `poll::poll` with the `PollFd` array and `PollTimeout::NONE`; it returns
            //- more: `nix::Result<i32>`.
            poll(&mut watched, PollTimeout::NONE)
            //- end
        };
        match ready {
            Ok(count) => narrate!("poll(listener, signalfd) -> {count} ready"),
            Err(Errno::EINTR) => continue,
            Err(err) => return Err(Failure::new(format!("poll() failed: {}", err.desc()))),
        }
        let readable = |fd: &PollFd| {
            fd.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
        };
        let client_waiting = readable(&watched[0]);
        let signal_waiting = readable(&watched[1]);

        if signal_waiting {
            match signals.read_signal() {
                Ok(Some(info)) => {
                    let name = Signal::try_from(info.ssi_signo as i32)
                        .map(|s| s.as_str())
                        .unwrap_or("a signal");
                    narrate!("read(signalfd) -> {name}");
                    println!("got {name}: shutting down");
                    return Ok(());
                }
                Ok(None) => {}
                Err(err) => {
                    return Err(Failure::new(format!(
                        "read(signalfd) failed: {}",
                        err.desc()
                    )));
                }
            }
        }
        if client_waiting {
            accept_one(listener, own_pid);
        }
    }
}

/// Step 14: take one waiting client and answer it. Its failures are its own: report
/// them on stderr and keep serving.
fn accept_one(listener: &Socket, own_pid: i32) {
    let accepted: io::Result<(Socket, SockAddr)> = {
        //- answer: step 14: accept the waiting client on `listener`
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

/// Steps 15 and 16: read the client's line and answer it, all within CLIENT_DEADLINE,
/// so a client that connects and says nothing cannot stall the daemon for long.
fn answer_probe(mut connection: Socket, own_pid: i32) -> Result<String, Failure> {
    // The accepted socket is blocking (accept() does not pass O_NONBLOCK on); the
    // timeouts below bound each recv() and send().
    connection
        .set_write_timeout(Some(CLIENT_DEADLINE))
        .context("setsockopt(SO_SNDTIMEO)")?;
    let deadline = Instant::now() + CLIENT_DEADLINE;
    // Step 15 (inside read_line): recv() until a whole line has come.
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

    // Step 16: send the answer. write_all() repeats send() until every byte is out (or
    // SO_SNDTIMEO hits).
    {
        //- answer: step 16: send `reply` to the client
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

// ======================================================================================
// The pid file: one line `pid;port`, written atomically, read with suspicion.
//
// Writing it in place (open, truncate, write) leaves a moment when the file is empty
// or half written, and a reader that comes then sees garbage; a crash at that moment
// leaves the garbage behind. Instead the daemon writes a temporary file in the same
// directory, fsync()s it so its bytes are on disk, then rename()s it over the real
// name: rename() swaps names atomically within one file system, so a reader sees
// either the old file or the complete new one, never a mix.
// ======================================================================================

/// A pid file longer than this is not ours.
const MAX_PIDFILE: u64 = 64;

/// What a pid file says: the daemon's process id and the port it listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PidRecord {
    pid: i32,
    port: u16,
}

/// Writes `pid;port` to `path` so that readers only ever see a complete file.
fn write_pidfile_atomically(path: &Path, record: PidRecord) -> Result<(), Failure> {
    let contents = format!("{};{}\n", record.pid, record.port);
    let Some(name) = path.file_name() else {
        return Err(Failure::new(format!(
            "bad pid file {}: it names no file",
            path.display()
        )));
    };
    let directory: PathBuf = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temporary = directory.join(format!(".{}.{}.tmp", name.to_string_lossy(), record.pid));

    // Step 10: create the temporary file in the SAME directory as the pid file, because
    // rename() is atomic only within one file system. O_EXCL (create_new) refuses to
    // follow a symlink someone planted there; a leftover of ours is removed first.
    let _ = fs::remove_file(&temporary);
    let mut file: File = {
        //- answer: step 10: create `temporary` (it must not exist yet), write-only, mode 0644
        //- hint: To write the pid file atomically, first create a temporary file next to it.
        //- hint: Creating must fail if the file already exists (never overwrite someone else's),
        //- hint: and the file is write-only, readable by everyone (mode 0644).
        //- more: `std::fs::OpenOptions` with `write`, `create_new` and `mode` (from
        //- more: `std::os::unix::fs::OpenOptionsExt`), then `open`; name the call with
        //- more: `.context(...)` (open with O_CREAT|O_EXCL).
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)
            .context(format!("open({}, O_CREAT|O_EXCL)", temporary.display()))?
        //- end
    };
    narrate!("open({}, O_CREAT|O_EXCL, 0644)", temporary.display());

    // Step 11: write the line, then fsync(): without it the rename could reach the disk
    // before the data, and a power cut would leave an empty pid file behind.
    let written: Result<(), Failure> = {
        //- answer: step 11: write `contents` to `file`, then fsync it
        //- hint: Write the contents into the temporary file and make sure they reach the disk
        //- hint: before the rename, so no reader ever sees a half-written pid file. Each failure
        //- hint: should name the file.
        //- more: `std::io::Write::write_all` with the string's bytes, `File::sync_all` (fsync),
        //- more: chained with `Result::and_then`; `.context(...)` on each.
        file.write_all(contents.as_bytes())
            .context(format!("write({})", temporary.display()))
            .and_then(|()| {
                file.sync_all()
                    .context(format!("fsync({})", temporary.display()))
            })
        //- end
    };
    if let Err(failure) = written {
        let _ = fs::remove_file(&temporary);
        return Err(failure);
    }
    narrate!("write({:?}); fsync()", contents);
    drop(file);

    // Step 12: rename() replaces the pid file in one atomic step.
    let renamed: Result<(), Failure> = {
        //- answer: step 12: rename `temporary` over `path`
        //- hint: Move the finished temporary file over the real pid file in one step: readers see
        //- hint: either the old file or the new one, never a partial one.
        //- more: `std::fs::rename` (atomic within one filesystem, `man 2 rename`); name the call
        //- more: with `.context(...)` showing both paths.
        fs::rename(&temporary, path).context(format!(
            "rename({}, {})",
            temporary.display(),
            path.display()
        ))
        //- end
    };
    if let Err(failure) = renamed {
        let _ = fs::remove_file(&temporary);
        return Err(failure);
    }
    narrate!("rename({}, {})", temporary.display(), path.display());

    // The new name lives in the directory: fsync() it too, so the rename itself survives
    // a crash. Some file systems cannot fsync a directory; that only weakens durability.
    if let Ok(handle) = File::open(&directory) {
        let _ = handle.sync_all();
        narrate!("fsync({})", directory.display());
    }
    Ok(())
}

/// On shutdown: removes the pid file, but only while it still names `own_pid`. A newer
/// daemon may have replaced it, and its file is not ours to delete.
fn remove_pidfile_if_ours(path: &Path, own_pid: i32) {
    let shown = path.display();
    match read_pidfile(path) {
        Ok(record) if record.pid == own_pid => match fs::remove_file(path) {
            Ok(()) => {
                narrate!("unlink({shown})");
                println!("removed pid file {shown}");
            }
            Err(err) => eprintln!(
                "lab8: cannot remove pid file {shown}: {}",
                shared::errors::explain(&err)
            ),
        },
        Ok(record) => println!(
            "pid file {shown} now names pid {}, not us ({own_pid}): leaving it alone",
            record.pid
        ),
        Err(reason) => println!("leaving pid file {shown} alone: {reason}"),
    }
}

/// Reads and checks the pid file at `path`; the error is a `not running:` reason.
fn read_pidfile(path: &Path) -> Result<PidRecord, String> {
    let shown = path.display();
    // Step 2: open() the pid file, read-only. O_NONBLOCK: if someone put a FIFO there,
    // open() must not sleep waiting for a writer that never comes.
    let opened: io::Result<File> = {
        //- answer: step 2: open `path` read-only, with O_NONBLOCK
        //- hint: Open the pid file for reading only, with O_NONBLOCK, so that a FIFO or device put
        //- hint: there by someone else cannot make the probe hang. Keep the result as it is for the
        //- hint: code below.
        //- more: `std::fs::OpenOptions` with `read` and `custom_flags` (from `OpenOptionsExt`),
        //- more: given `OFlag::O_NONBLOCK` from nix as raw bits (`.bits()`), then `open`.
        OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
        //- end
    };
    let file = match opened {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(format!("no pid file at {shown}"));
        }
        Err(err) => {
            return Err(format!(
                "cannot read pid file {shown}: {}",
                file_error(&err)
            ));
        }
    };
    let unreadable = |err: io::Error| format!("cannot read pid file {shown}: {}", file_error(&err));
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(format!(
            "malformed pid file {shown}: it is not a regular file"
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PIDFILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    narrate!("read({shown}) -> {}", preview(&bytes));
    let record = match String::from_utf8(bytes) {
        Ok(text) if text.len() as u64 > MAX_PIDFILE => {
            Err(format!("it is longer than {MAX_PIDFILE} bytes"))
        }
        Ok(text) => parse_pidfile(&text),
        Err(_) => Err(String::from("it is not text")),
    };
    record.map_err(|why| format!("malformed pid file {shown}: {why} (expected \"pid;port\")"))
}

/// A file error in plain words (shared::errors::explain speaks of ports for EACCES).
fn file_error(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) if code == Errno::EACCES as i32 || code == Errno::EPERM as i32 => {
            String::from("permission denied")
        }
        _ => shared::errors::explain(err),
    }
}

/// Parses `pid;port`, with an optional final newline.
fn parse_pidfile(text: &str) -> Result<PidRecord, String> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(String::from("it is empty"));
    }
    if line.contains('\n') {
        return Err(String::from("it has more than one line"));
    }
    // Step 3: split the line at ';' and check both numbers before trusting them. A pid
    // of 0 or -1 is not a process: kill(0, sig) signals our whole process group, and
    // kill(-1, sig) nearly every process we may signal.
    //- answer: step 3: split `line` at ';' into a pid (1 or more) and a port (1 to 65535)
    //- hint: The line holds a pid and a port separated by ';'. Split it there, parse both, and
    //- hint: refuse a pid below 1 or a port of 0, with an error that says which part is wrong. The
    //- hint: value is the `PidRecord`.
    //- more: `str::split_once`; the helper `number` parses one field (turbofish for the type: `i32`
    //- more: for the pid, `u16` for the port); `Option::filter` and `Option::ok_or_else` turn a bad
    //- more: value into an error message.
    let Some((pid_text, port_text)) = line.split_once(';') else {
        return Err(format!("no ';' between pid and port in {line:?}"));
    };
    let pid = number::<i32>(pid_text)
        .filter(|&pid| pid > 0)
        .ok_or_else(|| format!("pid {pid_text:?} is not a number from 1 to {}", i32::MAX))?;
    let port = number::<u16>(port_text)
        .filter(|&port| port > 0)
        .ok_or_else(|| format!("port {port_text:?} is not a number from 1 to 65535"))?;
    Ok(PidRecord { pid, port })
    //- end
}

/// Plain decimal digits only: no sign, no spaces, no `0x`.
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

// ======================================================================================
// `lab8 status`: does the daemon named in the pid file really run?
//
// A pid file can lie in many ways, and each is checked in turn:
//
// 1. there is no file, or it is not `pid;port`;
// 2. `kill(pid, 0)` says ESRCH: no such process (the daemon died without cleaning up);
//    EPERM means the process exists but belongs to another user, so we go on;
// 3. connecting to the port is refused: the process lives, but nothing listens there;
// 4. something answers the port, but not with our handshake: the pid (or the port) was
//    reused by another program;
// 5. a socklab daemon answers, but with a pid other than the file's: the file is stale.
//
// Every network step has a deadline, so a port that swallows packets or a program that
// accepts and then says nothing cannot make `status` hang.
// ======================================================================================

/// What `status` concluded.
enum Verdict {
    Running(PidRecord),
    NotRunning(String),
}

/// The verdict plus remarks worth printing before it (e.g. about EPERM).
struct Report {
    notes: Vec<String>,
    verdict: Verdict,
}

/// `lab8 status`: prints the notes and the verdict; true when the daemon runs.
fn run_status(pidfile: &Path, host: &str, timeout_ms: u64) -> Result<bool, Failure> {
    let report = check_status(pidfile, host, Duration::from_millis(timeout_ms))?;
    for note in &report.notes {
        println!("{note}");
    }
    match report.verdict {
        Verdict::Running(record) => {
            println!("running (pid {}, port {})", record.pid, record.port);
            Ok(true)
        }
        Verdict::NotRunning(reason) => {
            println!("not running: {reason}");
            Ok(false)
        }
    }
}

/// Reads `pidfile`, checks its process, probes its port on `host` within `timeout`.
fn check_status(pidfile: &Path, host: &str, timeout: Duration) -> Result<Report, Failure> {
    let mut notes = Vec::new();
    let not_running = |notes: Vec<String>, reason: String| {
        Ok(Report {
            notes,
            verdict: Verdict::NotRunning(reason),
        })
    };

    let record = match read_pidfile(pidfile) {
        Ok(record) => record,
        Err(reason) => return not_running(notes, reason),
    };
    let PidRecord { pid, port } = record;

    // Step 17: kill() with no signal (the "signal 0" of kill(2)) delivers nothing; the
    // kernel only checks that the process exists and that we may signal it.
    let existence: nix::Result<()> = {
        //- answer: step 17: ask the kernel whether process `pid` exists, sending no signal
        //- hint: Ask the kernel whether the process exists without disturbing it: sending "no
        //- hint: signal" only checks that it exists and that you may signal it. Keep the result for
        //- hint: the code below (ESRCH means no such process).
        //- more: nix's `sys::signal::kill` with a `Pid` built by `Pid::from_raw` and `None` for the
        //- more: signal (kill(pid, 0), `man 2 kill`).
        kill(Pid::from_raw(pid), None)
        //- end
    };
    let owner = match existence {
        Ok(()) => {
            narrate!("kill({pid}, 0) -> ok: the process exists");
            ""
        }
        Err(Errno::ESRCH) => {
            narrate!("kill({pid}, 0) -> ESRCH");
            return not_running(
                notes,
                format!(
                    "process {pid} is gone (kill({pid}, 0): no such process), \
                     so pid file {} is stale",
                    pidfile.display()
                ),
            );
        }
        // EPERM: the process exists, but belongs to another user. That is no proof
        // either way (the daemon may run as another user), so the port must tell.
        Err(Errno::EPERM) => {
            narrate!("kill({pid}, 0) -> EPERM");
            notes.push(format!(
                "process {pid} exists but belongs to another user (kill({pid}, 0): EPERM, \
                 operation not permitted); probing port {port} to see whether it is the daemon"
            ));
            " (another user's)"
        }
        Err(other) => {
            return Err(Failure::new(format!(
                "kill({pid}, 0) failed: {}",
                other.desc()
            )));
        }
    };

    let address = resolve(host, port)?;
    let deadline = Instant::now() + timeout;
    let ms = timeout.as_millis();
    let reason = match probe(address, deadline)? {
        Probe::Answered(answered) if i64::from(answered) == i64::from(pid) => {
            return Ok(Report {
                notes,
                verdict: Verdict::Running(record),
            });
        }
        // Decision: a socklab daemon that is not the file's pid does not make the file's
        // daemon run. The file is stale (say the daemon was restarted under another pid
        // file, and this pid was reused), so report it rather than trust it.
        Probe::Answered(answered) => format!(
            "port {port} is answered by a socklab daemon with pid {answered}, not pid {pid} \
             from pid file {}: the file is stale",
            pidfile.display()
        ),
        Probe::Refused => format!(
            "process {pid}{owner} is alive but nothing listens on port {port} (connection refused)"
        ),
        Probe::ConnectTimedOut => format!(
            "process {pid}{owner} is alive but port {port} did not accept a connection \
             within {ms} ms"
        ),
        Probe::Silent(what) => format!(
            "port {port} {what} but no daemon handshake within {ms} ms: process {pid}{owner} \
             is probably another program that reused the pid"
        ),
        Probe::Closed(bytes) if bytes.is_empty() => format!(
            "port {port} closed the connection without the daemon handshake: process {pid}{owner} \
             is probably another program that reused the pid"
        ),
        Probe::Closed(bytes) | Probe::Garbage(bytes) => format!(
            "port {port} answered {}, not the daemon handshake: process {pid}{owner} \
             is probably another program that reused the pid",
            preview(&bytes)
        ),
        Probe::Failed(why) => format!("cannot probe port {port}: {why}"),
    };
    not_running(notes, reason)
}

/// What the port said when probed.
enum Probe {
    /// A socklab daemon answered with this pid.
    Answered(u32),
    /// Nothing listens there: the kernel answered the SYN with a RST.
    Refused,
    /// The connection did not complete before the deadline.
    ConnectTimedOut,
    /// Connected, but no whole line came in time (what happened, in words).
    Silent(&'static str),
    /// The peer closed before a whole line; the bytes that came first.
    Closed(Vec<u8>),
    /// A line that is not our handshake.
    Garbage(Vec<u8>),
    /// Any other network error, explained.
    Failed(String),
}

/// Steps 18 to 23, then 15 again: connect to `address`, ask, and read the answer, all
/// before `deadline`.
fn probe(address: SocketAddr, deadline: Instant) -> Result<Probe, Failure> {
    // Step 18: a TCP socket of the address's family, as for any client.
    let mut socket: Socket = {
        //- answer: step 18: create a TCP socket whose domain matches `address`
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

    // Step 19: a blocking connect() waits as long as the kernel likes (minutes, if the
    // SYNs vanish). In non-blocking mode it returns at once, and we do the waiting, with
    // our own deadline.
    {
        //- answer: step 19: make the socket non-blocking
        //- hint: The probe must never wait longer than its deadline, so the socket must not block:
        //- hint: switch it to non-blocking mode before connecting.
        //- more: socket2's `Socket::set_nonblocking`; name the call with `.context(...)`.
        socket.set_nonblocking(true).context("fcntl(O_NONBLOCK)")?;
        //- end
    }
    narrate!("fcntl(fd {}, O_NONBLOCK)", socket.as_raw_fd());

    // Step 20: connect() sends the SYN. Non-blocking, it usually answers EINPROGRESS:
    // "started, not finished". On loopback it may also finish or fail right away.
    let started: io::Result<()> = {
        //- answer: step 20: start connecting to `address`
        //- hint: Start the handshake. On a non-blocking socket it normally fails at once with
        //- hint: EINPROGRESS: that means "started", not an error. Keep the result for the code
        //- hint: below.
        //- more: socket2's `Socket::connect` with the address turned into a `SockAddr` (`.into()`);
        //- more: see EINPROGRESS in `man 2 connect`.
        socket.connect(&address.into())
        //- end
    };
    match started {
        Ok(()) => narrate!("connect({address}) -> connected at once"),
        Err(err) if err.raw_os_error() == Some(Errno::EINPROGRESS as i32) => {
            narrate!("connect({address}) -> EINPROGRESS");
            if let Some(outcome) = wait_for_connect(&socket, deadline)? {
                return Ok(outcome);
            }
        }
        Err(err) => {
            narrate!("connect({address}) -> {err}");
            return Ok(connect_failed(&err));
        }
    }

    // A rare TCP corner: with nobody listening, the kernel may pick the very port we
    // dial as our own source port, and the socket then connects to itself. That is no
    // daemon; it means nothing listens.
    if socket.local_addr().ok().and_then(|local| local.as_socket()) == Some(address) {
        narrate!("getsockname() -> {address}: connected to ourselves");
        return Ok(Probe::Refused);
    }

    // Back to blocking mode: from here, SO_SNDTIMEO and SO_RCVTIMEO bound each call.
    socket
        .set_nonblocking(false)
        .context("fcntl(~O_NONBLOCK)")?;

    // Step 23: ask the question. write_all() repeats send() until every byte is out.
    let Some(left) = time_left(deadline) else {
        return Ok(Probe::Silent("accepted the connection"));
    };
    socket
        .set_write_timeout(Some(left))
        .context("setsockopt(SO_SNDTIMEO)")?;
    let request = format!("{}\n", PROBE_REQUEST);
    let sent: io::Result<()> = {
        //- answer: step 23: send the probe `request` to the port
        //- hint: Send the probe request, every byte. Keep the result for the code below.
        //- more: `std::io::Write::write_all` with the string's bytes (`str::as_bytes`).
        socket.write_all(request.as_bytes())
        //- end
    };
    match sent {
        Ok(()) => narrate!("send({request:?})"),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Ok(Probe::Silent(
                "accepted the connection but would not take our probe",
            ));
        }
        // The peer may have said its piece and closed already: read what it said.
        Err(err) => narrate!("send({request:?}) -> {err}; reading what the peer said"),
    }

    // Step 15 again: read one whole line, however many recv() calls it takes (read_line).
    let answer = match read_line(&mut socket, deadline) {
        Ok(answer) => answer,
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
            return Ok(Probe::Closed(Vec::new()));
        }
        Err(err) => {
            return Ok(Probe::Failed(format!(
                "recv() failed: {}",
                shared::errors::explain(&err)
            )));
        }
    };
    // Closing is polite either way; the answer is already in hand.
    let _ = socket.shutdown(Shutdown::Both);
    narrate!("close(fd {})", socket.as_raw_fd());
    Ok(match answer {
        Line::Complete(line) => match parse_answer(&String::from_utf8_lossy(&line)) {
            Some(pid) => Probe::Answered(pid),
            None => Probe::Garbage(line),
        },
        Line::Closed(bytes) => Probe::Closed(bytes),
        Line::TooLong(bytes) => Probe::Garbage(bytes),
        Line::TimedOut(bytes) if bytes.is_empty() => Probe::Silent("accepted the connection"),
        Line::TimedOut(_) => Probe::Silent("sent part of a line"),
    })
}

/// Steps 21 and 22: wait for a non-blocking connect() to finish, and learn how it ended.
/// None means connected; Some is the probe's outcome already.
fn wait_for_connect(socket: &Socket, deadline: Instant) -> Result<Option<Probe>, Failure> {
    loop {
        let Some(left) = time_left(deadline) else {
            return Ok(Some(Probe::ConnectTimedOut));
        };
        let wait = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);

        // Step 21: poll() sleeps until the socket is writable (the handshake finished,
        // well or badly) or the time is up.
        let mut watched = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
        let ready: nix::Result<i32> = {
            //- answer: step 21: wait until `watched` is writable, at most `wait`
            //- hint: Wait until the socket becomes writable (the handshake has finished, one way or
            //- hint: the other), but no longer than the time left. The value is how many
            //- hint: descriptors are ready (0 means the time ran out).
            //- more: nix's `poll::poll` with the `PollFd` array and the `PollTimeout` you were
            //- more: given (`wait`).
            poll(&mut watched, wait)
            //- end
        };
        match ready {
            Err(Errno::EINTR) => continue,
            Err(err) => return Err(Failure::new(format!("poll() failed: {}", err.desc()))),
            Ok(0) => {
                narrate!("poll(POLLOUT, {} ms) -> timed out", left.as_millis());
                return Ok(Some(Probe::ConnectTimedOut));
            }
            Ok(_) => narrate!("poll(POLLOUT, {} ms) -> ready", left.as_millis()),
        }

        // Step 22: "writable" means only that connect() is over. getsockopt(SO_ERROR)
        // tells how: no error is success, ECONNREFUSED means nobody listens, and so on.
        let outcome: Option<io::Error> = {
            //- answer: step 22: read (and clear) the socket's pending error
            //- hint: Writable does not mean connected: read the socket's pending error to learn
            //- hint: whether the handshake succeeded (no error) or failed (e.g. connection
            //- hint: refused). Reading it also clears it.
            //- more: socket2's `Socket::take_error` (getsockopt SO_ERROR) returns
            //- more: `io::Result<Option<io::Error>>`; name the call with `.context(...)`.
            socket.take_error().context("getsockopt(SO_ERROR)")?
            //- end
        };
        return Ok(match outcome {
            None => {
                narrate!("getsockopt(SO_ERROR) -> 0: connected");
                None
            }
            Some(err) => {
                narrate!("getsockopt(SO_ERROR) -> {err}");
                Some(connect_failed(&err))
            }
        });
    }
}

/// What a failed connect() means for the probe.
fn connect_failed(err: &io::Error) -> Probe {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Probe::Refused,
        io::ErrorKind::TimedOut => Probe::ConnectTimedOut,
        _ => Probe::Failed(format!(
            "connect() failed: {}",
            shared::errors::explain(err)
        )),
    }
}

// ======================================================================================
// The probe handshake both sides speak, and a line reader with a deadline.
//
// Connecting to a port proves only that *something* listens there. Ports and pids are
// both reused: after a crash, another program may own the pid, the port, or both. So
// the prober asks a question only our daemon answers correctly:
//
// ```text
// status -> daemon:  socklab-probe?\n
// daemon -> status:  socklab-daemon <pid>\n      (e.g. "socklab-daemon 4242\n")
// ```
//
// Each message is one line ending in `\n` (a `\r` before it is ignored, so telnet works),
// at most `MAX_LINE` bytes. TCP is a byte stream: a line may arrive in several pieces,
// so we read until the newline instead of trusting one recv() to hold it all.
// ======================================================================================

/// The daemon's answer for process `pid`, newline included.
fn answer_line(pid: u32) -> String {
    format!("{ANSWER_WORD} {pid}\n")
}

/// The pid in a daemon's answer line (newline already removed), or None if the line is
/// not our handshake at all.
fn parse_answer(line: &str) -> Option<u32> {
    let digits = line.strip_prefix(ANSWER_WORD)?.strip_prefix(' ')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How one attempt to read a line ended.
enum Line {
    /// A whole line arrived (without its `\n` or `\r\n`).
    Complete(Vec<u8>),
    /// The peer closed the connection first; these bytes came before the end.
    Closed(Vec<u8>),
    /// More than `MAX_LINE` bytes without a newline.
    TooLong(Vec<u8>),
    /// The deadline passed first; these bytes came in time.
    TimedOut(Vec<u8>),
}

/// Reads one line from `socket`, giving up at `deadline`.
///
/// Other errors (a reset connection, ...) come back as they are.
fn read_line(socket: &mut Socket, deadline: Instant) -> io::Result<Line> {
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = [0u8; MAX_LINE];
    loop {
        let Some(left) = time_left(deadline) else {
            return Ok(Line::TimedOut(line));
        };
        // SO_RCVTIMEO bounds each recv() by the time left: the whole line, not each
        // piece, must arrive before the deadline.
        socket.set_read_timeout(Some(left))?;
        narrate!("setsockopt(SO_RCVTIMEO, {} ms)", left.as_millis());

        // Step 15: recv() returns whatever has arrived, at least 1 byte, or 0 once the
        // peer has closed its side. Ask only for what may still fit in one line.
        let room = MAX_LINE - line.len();
        let received: io::Result<usize> = {
            //- answer: step 15: recv up to `room` bytes of the line into `chunk`
            //- hint: Receive at most `room` bytes of the answer line into the chunk, never more
            //- hint: than the line may still hold. Keep the result for the code below; 0 means the
            //- hint: peer closed.
            //- more: socket2's `Socket` implements `std::io::Read`: `Read::read` on a slice of
            //- more: `chunk` (up to `room`).
            socket.read(&mut chunk[..room])
            //- end
        };
        let count = match received {
            Ok(count) => count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                narrate!("recv() -> timed out");
                return Ok(Line::TimedOut(line));
            }
            Err(err) => return Err(err),
        };
        narrate!("recv() -> {count} bytes");
        if count == 0 {
            return Ok(Line::Closed(line));
        }
        line.extend_from_slice(&chunk[..count]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Complete(line));
        }
        if line.len() >= MAX_LINE {
            return Ok(Line::TooLong(line));
        }
    }
}

/// The time left until `deadline`, or None once it has passed.
fn time_left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    // A zero timeout means "wait forever" to setsockopt(): never hand one over.
    (left >= Duration::from_millis(1)).then_some(left)
}

/// The first address `host` stands for, with `port`.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, Failure> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| Failure::new(format!("bad host {host:?}: cannot resolve it ({e})")))?
        .next()
        .ok_or_else(|| Failure::new(format!("bad host {host:?}: it resolves to no address")))
}

/// Bytes from the network, shown safely in one short line.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
    let more = if bytes.len() > 40 { "..." } else { "" };
    format!("{text:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        let line = answer_line(4242);
        assert_eq!(line, "socklab-daemon 4242\n");
        assert_eq!(parse_answer(line.trim_end()), Some(4242));
    }

    #[test]
    fn other_lines_are_not_answers() {
        for line in [
            "",
            "socklab-daemon",
            "socklab-daemon ",
            "socklab-daemon -1",
            "socklab-daemon 12x",
            "SSH-2.0-OpenSSH_9.6",
            "socklab-daemon  12",
        ] {
            assert_eq!(parse_answer(line), None, "{line:?}");
        }
    }
}
