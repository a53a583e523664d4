//! `lab8 status`, steps 17 to 23: does the daemon named in the pid file really run?
//!
//! A pid file can lie in many ways, and each is checked in turn:
//!
//! 1. there is no file, or it is not `pid;port`;
//! 2. `kill(pid, 0)` says ESRCH: no such process (the daemon died without cleaning up);
//!    EPERM means the process exists but belongs to another user, so we go on;
//! 3. connecting to the port is refused: the process lives, but nothing listens there;
//! 4. something answers the port, but not with our handshake: the pid (or the port) was
//!    reused by another program;
//! 5. a socklab daemon answers, but with a pid other than the file's: the file is stale.
//!
//! Every network step has a deadline, so a port that swallows packets or a program that
//! accepts and then says nothing cannot make `status` hang.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, Socket, Type};

use crate::handshake::{Line, PROBE_REQUEST, parse_answer, read_line, time_left};
use crate::pidfile::{PidRecord, read_pidfile};
use crate::{preview, resolve};

/// What `status` concluded.
pub enum Verdict {
    /// The daemon the file names runs and answered the handshake.
    Running(PidRecord),
    /// It does not; the reason, in words.
    NotRunning(String),
}

/// The verdict plus remarks worth printing before it (e.g. about EPERM).
pub struct Report {
    /// Remarks printed before the verdict (another user's process, ...).
    pub notes: Vec<String>,
    /// Running or not, and why.
    pub verdict: Verdict,
}

/// `lab8 status`: prints the notes and the verdict; true when the daemon runs.
pub fn run_status(pidfile: &Path, host: &str, timeout_ms: u64) -> Result<bool, Failure> {
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
pub fn check_status(pidfile: &Path, host: &str, timeout: Duration) -> Result<Report, Failure> {
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
        // Stuck? `cargo xtask hint lab8`
        todo!("step 17: ask the kernel whether process `pid` exists, sending no signal");
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
        Err(other) => return Err(other).context(format!("kill({pid}, 0)")),
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

/// Steps 18 to 22, then [`ask`] (step 23 and step 16): connect to `address`, ask, and
/// read the answer, all before `deadline`.
fn probe(address: SocketAddr, deadline: Instant) -> Result<Probe, Failure> {
    // Step 18: a TCP socket of the address's family, as for any client.
    let socket: Socket = {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 18: create a TCP socket whose domain matches `address`");
    };
    narrate!("socket() -> fd {}", socket.as_raw_fd());

    // Step 19: a blocking connect() waits as long as the kernel likes (minutes, if the
    // SYNs vanish). In non-blocking mode it returns at once, and we do the waiting, with
    // our own deadline.
    {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 19: make the socket non-blocking");
    }
    narrate!("fcntl(fd {}, O_NONBLOCK)", socket.as_raw_fd());

    // Step 20: connect() sends the SYN. Non-blocking, it usually answers EINPROGRESS:
    // "started, not finished". On loopback it may also finish or fail right away.
    let started: io::Result<()> = {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 20: start connecting to `address`");
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

    ask(socket, deadline)
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
            // Stuck? `cargo xtask hint lab8`
            todo!("step 21: wait until `watched` is writable, at most `wait`");
        };
        match ready {
            Err(Errno::EINTR) => continue,
            Err(err) => return Err(err).context("poll()"),
            Ok(0) => {
                narrate!("poll(POLLOUT, {} ms) -> timed out", left.as_millis());
                return Ok(Some(Probe::ConnectTimedOut));
            }
            Ok(_) => narrate!("poll(POLLOUT, {} ms) -> ready", left.as_millis()),
        }

        // Step 22: "writable" means only that connect() is over. getsockopt(SO_ERROR)
        // tells how: no error is success, ECONNREFUSED means nobody listens, and so on.
        let outcome: Option<io::Error> = {
            // Stuck? `cargo xtask hint lab8`
            todo!("step 22: read (and clear) the socket's pending error");
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

/// Step 23, then step 16 (in [`read_line`]): ask the question on the connected `socket`
/// and read the answer, before `deadline`.
fn ask(mut socket: Socket, deadline: Instant) -> Result<Probe, Failure> {
    // Step 23: ask the question. write_all() repeats send() until every byte is out.
    let Some(left) = time_left(deadline) else {
        return Ok(Probe::Silent("accepted the connection"));
    };
    socket
        .set_write_timeout(Some(left))
        .context("setsockopt(SO_SNDTIMEO)")?;
    let request = format!("{}\n", PROBE_REQUEST);
    let sent: io::Result<()> = {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 23: send the probe `request` to the port");
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

    // Step 16 again: read one whole line, however many recv() calls it takes (read_line).
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
