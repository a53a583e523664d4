//! Lab 8 (probe): its check table and classroom demo.
//!
//! `lab8 daemon --pidfile F [--host H] [--port P]` must listen, write `pid;port` to F
//! atomically once it listens, answer the handshake (`socklab-probe?\n` ->
//! `socklab-daemon <pid>\n`), survive clients that misbehave, and remove F (only if F
//! still names it) on SIGINT or SIGTERM, exiting 0.
//!
//! `lab8 status --pidfile F [--host H] [--timeout-ms N]` must print
//! `running (pid N, port P)` (exit 0) or `not running: <reason>` (exit 1) as its last
//! line. The checks build every case with real processes and sockets: no file, a
//! malformed file, a dead pid, a live pid whose port refuses, a port where the grader
//! answers garbage or says nothing, a port whose accept queue is full (connect must
//! time out), a daemon whose pid differs from the file's, and a process of another
//! user (EPERM: as root, a process of uid 65534 whose port the grader answers for, and
//! status run as uid 65533; as another user, process 1).

use std::ffi::CString;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::grade::ctx::{START_LIMIT, running_as_root};
use crate::grade::net::{self, Conn, IO_LIMIT, LOCALHOST_V4, LOCALHOST_V6, show};
use crate::grade::peer::{Late, Peer, Script, Step};
use crate::grade::row;
use crate::grade::sockdiag;
use crate::grade::{Ctx, Failure, Finished, Lab, common, ensure, expect, files, poll};

#[cfg(feature = "tools")]
mod demo;

pub static LAB: Lab = lab! {
    id: "lab8",
    slug: "probe",
    title: "is the daemon running? a pid file, kill(pid, 0) and a probe connection",
    table: &[
        row("daemon-writes-pidfile", daemon_writes_pidfile).points(2),
        row("daemon-fixed-port", daemon_fixed_port),
        row("handshake", handshake).points(2),
        row("handshake-in-pieces", handshake_in_pieces),
        row("survives-bad-clients", survives_bad_clients),
        row("silent-client", silent_client).budget(40),
        row("atomic-pidfile", atomic_pidfile),
        row("removes-pidfile-sigterm", removes_pidfile_sigterm),
        row("removes-pidfile-sigint", removes_pidfile_sigint),
        row("keeps-foreign-pidfile", keeps_foreign_pidfile),
        row("daemon-port-in-use", daemon_port_in_use),
        row("status-running", status_running).points(2),
        row("status-ipv6", status_ipv6),
        row("status-no-file", status_no_file),
        // Eleven and ten runs of `status` one after the other: room for each to start
        // slowly on a loaded machine (one run that hangs still fails at STATUS_LIMIT).
        row("status-malformed", status_malformed).budget(40),
        row("status-strict-format", status_strict_format).budget(40),
        row("status-dead-pid", status_dead_pid),
        row("status-refused", status_refused),
        row("status-garbage", status_garbage),
        row("status-silent-port", status_silent_port),
        row("status-connect-deadline", status_connect_deadline),
        row("status-pid-mismatch", status_pid_mismatch),
        row("status-eperm", status_eperm),
    ],
};

const PROBE: &[u8] = b"socklab-probe?\n";
/// How long status may take in the grader's hands, whatever --timeout-ms says.
const STATUS_LIMIT: Duration = Duration::from_secs(10);
/// The --timeout-ms the deadline checks give status.
const SHORT_TIMEOUT_MS: &str = "500";

// ---------------------------------------------------------------------------------------
// The daemon under test
// ---------------------------------------------------------------------------------------

/// A daemon the check started and whose pid file appeared.
struct Daemon {
    id: usize,
    pid: u32,
    port: u16,
    pidfile: PathBuf,
}

/// The expected handshake answer of process `pid`.
fn answer_of(pid: u32) -> Vec<u8> {
    format!("socklab-daemon {pid}\n").into_bytes()
}

/// `pid;port` with an optional final newline.
fn parse_record(text: &str) -> Option<(u32, u16)> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let (pid, port) = line.split_once(';')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(pid) || !all_digits(port) {
        return None;
    }
    Some((pid.parse().ok()?, port.parse().ok()?))
}

/// Polls until `path` holds a well-formed `pid;port`, failing early if the program exits.
fn wait_for_pidfile(ctx: &mut Ctx, id: usize, path: &Path) -> Result<(u32, u16), Failure> {
    // What the last look found (read in the poll; nothing read yet).
    let mut read = Err(std::io::ErrorKind::NotFound.into());
    let outcome = poll::until(START_LIMIT, Duration::from_millis(5), || {
        read = files::read_text(path);
        if let Some(record) = read.as_deref().ok().and_then(parse_record) {
            return Some(Ok(record));
        }
        ctx.proc(id).exited().map(Err)
    });
    match outcome {
        Some(Ok(record)) => Ok(record),
        Some(Err(_)) => Err(ctx.exited_failure(id, "before writing its pid file")),
        None => {
            let got = match read {
                Ok(text) => format!("the file holds {}", show(text.as_bytes())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from("no file"),
                // A FIFO, a symlink, a folder: say what is there (it was not opened).
                Err(e) => format!("the path cannot be read as a pid file: {e}"),
            };
            Err(Failure::new(format!(
                "no well-formed pid file at {} within {} s of starting",
                path.display(),
                START_LIMIT.as_secs()
            ))
            .expected("one line pid;port, e.g. \"4242;38117\\n\"")
            .got(got)
            .hint("write the file once the socket listens: your pid, ';', the port getsockname() returned"))
        }
    }
}

/// Starts `daemon --pidfile <scratch>/daemon.pid --host IP --port P` and waits until it
/// listens on P and its pid file is there.
fn start_daemon(ctx: &mut Ctx, ip: IpAddr) -> Result<Daemon, Failure> {
    let pidfile = ctx.scratch().join("daemon.pid");
    start_daemon_at(ctx, ip, &pidfile)
}

/// Like [`start_daemon`], with the pid file at `pidfile`.
fn start_daemon_at(ctx: &mut Ctx, ip: IpAddr, pidfile: &Path) -> Result<Daemon, Failure> {
    let (id, port) = ctx.again_if_port_taken(|ctx| {
        let port = net::free_port(ip);
        let (host, port_text) = (ip.to_string(), port.to_string());
        let id = spawn_daemon(ctx, pidfile, &["--host", &host, "--port", &port_text])?;
        ctx.wait_listening(id, port)?;
        Ok((id, port))
    })?;
    wait_for_pidfile(ctx, id, pidfile)?;
    Ok(Daemon {
        id,
        pid: ctx.proc(id).pid(),
        port,
        pidfile: pidfile.to_path_buf(),
    })
}

/// The daemon's command line: `daemon --pidfile PIDFILE extra...`.
fn daemon_args(pidfile: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "daemon".to_string(),
        "--pidfile".to_string(),
        pidfile.display().to_string(),
    ];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

/// Starts `daemon --pidfile PIDFILE extra...`, without waiting for anything.
fn spawn_daemon(ctx: &mut Ctx, pidfile: &Path, extra: &[&str]) -> Result<usize, Failure> {
    let args = daemon_args(pidfile, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ctx.spawn("daemon", &args, None)
}

/// Runs `daemon --pidfile PIDFILE extra...` to its end (stopped after `limit`): for a
/// daemon that must fail at start-up.
fn run_daemon(
    ctx: &mut Ctx,
    pidfile: &Path,
    extra: &[&str],
    limit: Duration,
) -> Result<Finished, Failure> {
    let args = daemon_args(pidfile, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ctx.run("daemon", &args, None, limit)
}

/// Waits for daemon `id`'s pid file and takes the daemon to be what it names; also says
/// whether that port listened the moment the file appeared (the file must come only once
/// the daemon listens).
fn pidfile_appears(ctx: &mut Ctx, id: usize, pidfile: PathBuf) -> Result<(Daemon, bool), Failure> {
    let (pid, port) = wait_for_pidfile(ctx, id, &pidfile)?;
    let listening = net::is_listening(port);
    let daemon = Daemon {
        id,
        pid,
        port,
        pidfile,
    };
    Ok((daemon, listening))
}

/// Sends the probe on a fresh connection and checks the answer names `daemon`.
fn probe_ok(daemon: &Daemon, ip: IpAddr) -> Result<(), Failure> {
    let mut conn = probe_sent(SocketAddr::new(ip, daemon.port), IO_LIMIT)?;
    let got = conn.read_line()?;
    answer_is(daemon, &got, "wrong answer to the probe").map_err(|f| {
        f.sent_bytes(PROBE)
            .hint("answer exactly `socklab-daemon <your pid>` and a newline")
    })
}

/// A fresh connection to `addr` whose operations may each take `limit`, the probe sent.
fn probe_sent(addr: SocketAddr, limit: Duration) -> Result<Conn, Failure> {
    let mut conn = net::connect(addr)?;
    conn.limit = limit;
    conn.send(PROBE)?;
    Ok(conn)
}

/// `got` must be `daemon`'s handshake answer; `problem` says when it is not, the
/// report marking the first differing byte.
fn answer_is(daemon: &Daemon, got: &[u8], problem: &str) -> Result<(), Failure> {
    let expected = answer_of(daemon.pid);
    ensure(got == expected, || {
        Failure::new(problem).compare(&expected, got)
    })
}

/// Writes `text` to `path` the safe way (temporary file, then rename).
fn replace_file(path: &Path, text: &str) -> Result<(), Failure> {
    let temporary = path.with_extension("grader-tmp");
    // Created anew, never through whatever the daemon may have left at that path.
    files::write_new(&temporary, text.as_bytes())
        .and_then(|()| fs::rename(&temporary, path))
        .map_err(|e| Failure::new(format!("grader could not write {}: {e}", path.display())))
}

/// The pid file names the daemon's own pid and a port that `listening` says listened
/// when the file appeared.
fn names_itself(ctx: &mut Ctx, daemon: &Daemon, listening: bool) -> Result<(), Failure> {
    let (pid, port) = (daemon.pid, daemon.port);
    let text = files::read_text(&daemon.pidfile).unwrap_or_default();
    let own_pid = ctx.proc(daemon.id).pid();
    ensure(pid == own_pid, || {
        Failure::new("the pid in the pid file is not the daemon's")
            .expected(format!("{own_pid};<port>"))
            .got(show(text.as_bytes()))
            .hint("write the daemon's own pid (getpid()), the process that keeps running")
    })?;
    ensure(port != 0 && listening, || {
        Failure::new(format!(
            "the pid file names port {port}, but nothing listens there"
        ))
        .got(show(text.as_bytes()))
        .hint("without --port, bind port 0, then ask getsockname() (local_addr) which port the kernel picked, and write that; and write the file only after listen()")
    })
}

/// The pid file names the daemon and the port it was given with `--port`.
fn names_given_port(daemon: &Daemon) -> Result<(), Failure> {
    let text = files::read_text(&daemon.pidfile).unwrap_or_default();
    let (pid, port) = parse_record(&text).unwrap_or((0, 0));
    let expected = format!("{};{}", daemon.pid, daemon.port);
    ensure(pid == daemon.pid && port == daemon.port, || {
        Failure::new("the pid file does not name the daemon and the port it was given")
            .sent(format!("--port {}", daemon.port))
            .compare(expected.as_bytes(), text.as_bytes())
    })
}

fn daemon_writes_pidfile(ctx: &mut Ctx) -> Result<(), Failure> {
    let pidfile = ctx.scratch().join("daemon.pid");
    let id = spawn_daemon(ctx, &pidfile, &["--host", "127.0.0.1"])?;
    let (daemon, listening) = pidfile_appears(ctx, id, pidfile)?;
    names_itself(ctx, &daemon, listening)?;
    probe_ok(&daemon, LOCALHOST_V4).map_err(|f| f.during("probing the port from the pid file"))
}

fn daemon_fixed_port(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    names_given_port(&daemon)
}

fn handshake(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    probe_ok(&daemon, LOCALHOST_V4)?;
    probe_ok(&daemon, LOCALHOST_V4).map_err(|f| {
        f.during("a second probe")
            .or_hint("go back to accept() after each client")
    })
}

/// The receive queue of the daemon's end of the connection from `client_port` to
/// `server_port` (IPv4, asked over sock_diag), or None once that socket is gone.
fn daemon_rx_queue(server_port: u16, client_port: u16) -> Option<u64> {
    let daemon = SocketAddr::from((Ipv4Addr::LOCALHOST, server_port));
    let client = SocketAddr::from((Ipv4Addr::LOCALHOST, client_port));
    sockdiag::connection_or_tables(daemon, client).map(|c| c.receive_queue)
}

/// Sends `first`, waits until the daemon on `port` has read it (its receive queue is
/// empty), then sends `rest`: the rest surely arrives in a later recv(). Returns what
/// was sent, for the report.
fn send_in_two_pieces(
    conn: &mut Conn,
    port: u16,
    first: &[u8],
    rest: &[u8],
) -> Result<String, Failure> {
    conn.send(first)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while daemon_rx_queue(port, conn.local_port()).is_some_and(|queued| queued > 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The daemon may have closed already (it judged the half line); that shows later.
    let _ = conn.send(rest);
    Ok(format!("{} then {}", show(first), show(rest)))
}

fn handshake_in_pieces(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    let mut conn = net::connect(SocketAddr::new(LOCALHOST_V4, daemon.port))?;
    let (first, rest) = PROBE.split_at(8);
    let sent = send_in_two_pieces(&mut conn, daemon.port, first, rest)?;
    let hint = "one recv() is not one line: keep reading until the newline arrives";
    let got = conn.read_line().map_err(|f| f.sent(&sent).or_hint(hint))?;
    answer_is(&daemon, &got, "wrong answer to a probe sent in two pieces")
        .map_err(|f| f.sent(sent).hint(hint))
}

/// Three clients that misbehave, one after the other, at `addr`.
fn bad_clients(addr: SocketAddr) -> Result<(), Failure> {
    // 1. Connects and hangs up at once (how Deluge itself checks).
    drop(net::connect(addr)?);
    // 2. Sends something else than the probe; whatever it gets back is fine.
    let mut rude = net::connect(addr)?;
    rude.send(b"GET / HTTP/1.0\r\n\r\n")?;
    let _ = rude.read_to_eof(64 * 1024);
    // 3. Sends half a probe, then resets the connection.
    let mut aborter = net::connect(addr)?;
    aborter.send(b"socklab-")?;
    aborter.reset();
    Ok(())
}

fn survives_bad_clients(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    bad_clients(SocketAddr::new(LOCALHOST_V4, daemon.port))?;
    probe_ok(&daemon, LOCALHOST_V4).map_err(|f| {
        f.during("a proper probe after clients that hung up, sent garbage and reset")
    })?;
    ctx.ensure_running(daemon.id, "after clients that misbehaved")
}

fn silent_client(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    let addr = SocketAddr::new(LOCALHOST_V4, daemon.port);
    let _silent = net::connect(addr)?;
    let mut conn = probe_sent(addr, Duration::from_secs(10))?;
    let during = "probing while another client stays connected and silent";
    let hint = "give each client's recv() a deadline (SO_RCVTIMEO, a few seconds): a client that never sends must not hold the daemon for ever";
    let got = conn.read_line().map_err(|f| f.during(during).hint(hint))?;
    let problem = "wrong answer while another client stays silent";
    answer_is(&daemon, &got, problem)
}

/// An inotify watch on one directory: which names were created, modified, renamed in.
struct DirWatch {
    fd: OwnedFd,
}

impl DirWatch {
    fn new(dir: &Path) -> Option<DirWatch> {
        // SAFETY: plain system calls on a descriptor we own.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mask = libc::IN_CREATE | libc::IN_MODIFY | libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO;
        let watch = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
        (watch >= 0).then_some(DirWatch { fd })
    }

    /// Every (mask, name) queued so far.
    fn events(&self) -> Vec<(u32, String)> {
        let mut events = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            // SAFETY: the buffer is valid for its length; the fd is non-blocking.
            let read = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if read <= 0 {
                return events;
            }
            let read = read as usize;
            let mut at = 0;
            // struct inotify_event { int wd; u32 mask; u32 cookie; u32 len; char name[len]; }
            while at + 16 <= read {
                let word = |i: usize| {
                    u32::from_ne_bytes([buffer[i], buffer[i + 1], buffer[i + 2], buffer[i + 3]])
                };
                let mask = word(at + 4);
                let len = word(at + 12) as usize;
                let end = (at + 16 + len).min(read);
                let name = String::from_utf8_lossy(&buffer[at + 16..end])
                    .trim_end_matches('\0')
                    .to_string();
                events.push((mask, name));
                at += 16 + len;
            }
        }
    }
}

/// The `events` of the pid file's folder show `name` renamed in, never written in place.
fn renamed_into_place(events: &[(u32, String)], name: &str) -> Result<(), Failure> {
    let written_in_place = events.iter().any(|(mask, n)| {
        n == name && mask & (libc::IN_CREATE | libc::IN_MODIFY | libc::IN_CLOSE_WRITE) != 0
    });
    let renamed_in = events
        .iter()
        .any(|(mask, n)| n == name && mask & libc::IN_MOVED_TO != 0);
    let seen: Vec<String> = events
        .iter()
        .map(|(mask, n)| {
            let what = match *mask {
                m if m & libc::IN_CREATE != 0 => "create",
                m if m & libc::IN_MODIFY != 0 => "write",
                m if m & libc::IN_CLOSE_WRITE != 0 => "close",
                m if m & libc::IN_MOVED_TO != 0 => "rename-to",
                _ => "other",
            };
            format!("{what} {n}")
        })
        .collect();
    ensure(!written_in_place && renamed_in, || {
        Failure::new("the pid file was written in place, not renamed into place")
            .expected("a temporary file in the same folder, written and fsync'ed, then rename()d to daemon.pid")
            .got(format!("inotify saw: {}", seen.join(", ")))
            .hint("a reader may open the file while you write it and see it empty or half done; write a temporary file next to it, fsync it, then rename() it over the pid file")
    })
}

fn atomic_pidfile(ctx: &mut Ctx) -> Result<(), Failure> {
    let folder = ctx.scratch().join("run");
    fs::create_dir(&folder)
        .map_err(|e| Failure::new(format!("grader could not create {}: {e}", folder.display())))?;
    let Some(watch) = DirWatch::new(&folder) else {
        return Ok(()); // no inotify on this machine: nothing to observe
    };
    start_daemon_at(ctx, LOCALHOST_V4, &folder.join("daemon.pid"))?;
    renamed_into_place(&watch.events(), "daemon.pid")
}

/// Signals the daemon and expects exit status 0 and its pid file gone.
fn removes_on(ctx: &mut Ctx, signal: Signal) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    ctx.proc(daemon.id).signal(signal);
    let name = signal.as_str();
    let Some(status) = ctx.proc(daemon.id).wait_exit(Duration::from_secs(5)) else {
        return Err(Failure::new(format!("the daemon did not exit within 5 s of {name}"))
            .hint("watch for the signal while waiting for clients: e.g. block it and poll() a signalfd next to the listener"));
    };
    ensure(status.code() == Some(0), || {
        Failure::new(format!("the daemon did not exit cleanly on {name}"))
            .expected("exit status 0")
            .got(crate::grade::process::describe_status(status))
            .hint(format!("catch {name} (the default action kills the process before it can clean up), remove the pid file, then exit 0"))
    })?;
    ensure(!daemon.pidfile.exists(), || {
        Failure::new(format!("the pid file is still there after {name}"))
            .got(show(
                &files::read_capped(&daemon.pidfile).unwrap_or_default(),
            ))
            .hint("remove the pid file (when it still holds your pid) before exiting")
    })
}

fn removes_pidfile_sigterm(ctx: &mut Ctx) -> Result<(), Failure> {
    removes_on(ctx, Signal::SIGTERM)
}

fn removes_pidfile_sigint(ctx: &mut Ctx) -> Result<(), Failure> {
    removes_on(ctx, Signal::SIGINT)
}

/// The daemon's exit `status` after SIGTERM (none: still running 5 s on) must be 0.
fn exited_0_on_sigterm(status: Option<ExitStatus>) -> Result<(), Failure> {
    ensure(status.is_some_and(|s| s.code() == Some(0)), || {
        Failure::new("the daemon did not exit 0 within 5 s of SIGTERM").got(
            status
                .map(crate::grade::process::describe_status)
                .unwrap_or_else(|| "still running".into()),
        )
    })
}

/// The pid file, replaced with `foreign` (another daemon's) before SIGTERM, must still
/// hold exactly that.
fn left_as_it_was(pidfile: &Path, foreign: &str) -> Result<(), Failure> {
    let left = files::read_text(pidfile).ok();
    ensure(left.as_deref() == Some(foreign), || {
        Failure::new("the daemon removed (or changed) a pid file that no longer named it")
            .sent(format!("replaced the pid file with {} before SIGTERM", show(foreign.as_bytes())))
            .expected("the file left as it was")
            .got(match &left {
                Some(text) => show(text.as_bytes()),
                None => "no file".into(),
            })
            .hint("read the pid file again before removing it, and remove it only if it still holds your own pid")
    })
}

fn keeps_foreign_pidfile(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    // Another daemon took over the file: it now names the grader.
    let foreign = record(std::process::id(), daemon.port);
    replace_file(&daemon.pidfile, &foreign)?;
    ctx.proc(daemon.id).signal(Signal::SIGTERM);
    exited_0_on_sigterm(ctx.proc(daemon.id).wait_exit(Duration::from_secs(5)))?;
    left_as_it_was(&daemon.pidfile, &foreign)
}

/// A daemon that could not listen must have written no pid file.
fn no_pidfile_left(pidfile: &Path) -> Result<(), Failure> {
    ensure(!pidfile.exists(), || {
        Failure::new("a daemon that could not listen left a pid file behind")
            .got(show(&files::read_capped(pidfile).unwrap_or_default()))
            .hint("write the pid file only after listen() succeeded")
    })
}

fn daemon_port_in_use(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_holder, port) = common::hold_tcp_port()?;
    let pidfile = ctx.scratch().join("daemon.pid");
    let extra = ["--host", "127.0.0.1", "--port", &port];
    let run = run_daemon(ctx, &pidfile, &extra, Duration::from_secs(5))?;
    expect::clean_error(&run, &["in use"], 2)
        .map_err(|f| f.during(format!("port {port} already taken by the grader")))?;
    no_pidfile_left(&pidfile)
}

// ---------------------------------------------------------------------------------------
// The status program under test
// ---------------------------------------------------------------------------------------

/// Reasons that name a missing pid file.
const NO_FILE_WORDS: &[&str] = &[
    "no pid file",
    "no such file",
    "not found",
    "missing",
    "does not exist",
    "no file",
];
/// Reasons that name a malformed pid file.
const MALFORMED_WORDS: &[&str] = &[
    "malformed",
    "invalid",
    "bad",
    "corrupt",
    "not a number",
    "parse",
    "format",
];
/// Reasons that name a process that has exited.
const GONE_WORDS: &[&str] = &[
    "gone",
    "no such process",
    "esrch",
    "dead",
    "not alive",
    "exited",
    "stale",
    "does not exist",
];
/// Reasons that name a port nobody listens on.
const REFUSED_WORDS: &[&str] = &[
    "refused",
    "nothing listens",
    "not listening",
    "no listener",
    "nobody listens",
];
/// Reasons that name a port where another program answers.
const GARBAGE_WORDS: &[&str] = &[
    "handshake",
    "reused",
    "not the daemon",
    "another program",
    "unexpected",
    "garbage",
    "wrong answer",
    "not ours",
];
/// Notes that say the process is another user's.
const EPERM_WORDS: &[&str] = &[
    "eperm",
    "permission",
    "not permitted",
    "another user",
    "other user",
    "belongs to",
];

/// Pid files no parser may take for `pid;port`.
const MALFORMED_RECORDS: &[&str] = &[
    "",
    "hello\n",
    "4242\n",
    "4242;\n",
    ";5000\n",
    "abc;def\n",
    "0;5000\n",
    "-1;5000\n",
    "4242;0\n",
    "4242;70000\n",
    "1;2;3\n",
];

/// Pid files a lax parser (trim, then parse) takes for `{pid};{port}`: signs, spaces,
/// underscores, more than one line.
const LAX_RECORDS: &[&str] = &[
    "+{pid};{port}\n",
    "{pid};+{port}\n",
    " {pid};{port}\n",
    "{pid} ;{port}\n",
    "{pid}; {port}\n",
    "{pid};{port} \n",
    "{pid};{port}\t\n",
    "{pid}_0;{port}\n",
    "{pid};{port}\n{pid};{port}\n",
    "{pid};{port}\n\n",
];

/// A pid file's one line, `pid;port\n`.
fn record(pid: u32, port: impl std::fmt::Display) -> String {
    format!("{pid};{port}\n")
}

/// Writes `text` as the pid file `name` in the scratch folder; returns its path.
fn pidfile_holding(ctx: &mut Ctx, name: &str, text: &str) -> Result<PathBuf, Failure> {
    let pidfile = ctx.scratch().join(name);
    replace_file(&pidfile, text)?;
    Ok(pidfile)
}

/// What status must say about one pid file: "not running", for a reason naming one of
/// `words`; `case` describes the file in the report, `hint` explains a wrong verdict.
struct NotRunning<'a> {
    words: &'a [&'a str],
    case: &'a str,
    hint: &'a str,
}

/// `status` on a pid file holding `text` must say what `expected` says.
fn status_says(ctx: &mut Ctx, text: &str, expected: NotRunning) -> Result<(), Failure> {
    let pidfile = pidfile_holding(ctx, "daemon.pid", text)?;
    let run = run_status(ctx, &pidfile, &[])?;
    expect_not_running(&run, expected.words, expected.case).map_err(|f| f.or_hint(expected.hint))
}

/// `status --timeout-ms 500` on a pid file naming the grader (alive) and `port`, where
/// the grader's socket never answers, must give up and say "not running". `during`
/// describes the port for a run the grader had to stop (with `hint`), `case` for the
/// verdict.
fn gives_up_on(
    ctx: &mut Ctx,
    port: u16,
    during: &str,
    case: &str,
    hint: &str,
) -> Result<(), Failure> {
    let pidfile = pidfile_holding(ctx, "daemon.pid", &record(std::process::id(), port))?;
    let run = run_status(ctx, &pidfile, &["--timeout-ms", SHORT_TIMEOUT_MS]).map_err(|f| {
        f.during(format!("{during}, --timeout-ms {SHORT_TIMEOUT_MS}"))
            .hint(hint)
    })?;
    expect_not_running(&run, &[], case)
}

/// Runs `status --pidfile F extra...` to its end.
fn run_status(ctx: &mut Ctx, pidfile: &Path, extra: &[&str]) -> Result<Finished, Failure> {
    let path_text = pidfile.display().to_string();
    let mut args = vec!["status", "--pidfile", &path_text];
    args.extend_from_slice(extra);
    ctx.run("status", &args, None, STATUS_LIMIT)
        .map_err(|f| f.hint("every probe step needs a deadline: a non-blocking connect() with poll(), and SO_RCVTIMEO/SO_SNDTIMEO for send and recv"))
}

/// The last non-empty line of stdout: the verdict.
fn verdict(run: &Finished) -> String {
    run.stdout_text()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end()
        .to_string()
}

/// Exit 0 and `running (pid N, port P)` as the last line.
fn expect_running(run: &Finished, pid: u32, port: u16) -> Result<(), Failure> {
    let wanted = format!("running (pid {pid}, port {port})");
    let got = verdict(run);
    ensure(run.status.code() == Some(0) && got == wanted, || {
        Failure::new("status did not report the daemon as running")
            .expected(format!("exit status 0 and the last line {wanted:?}"))
            .got(format!(
                "{}, stdout {}",
                crate::grade::process::describe_status(run.status),
                show(&run.stdout)
            ))
    })
}

/// Exit 1 and `not running: <reason>` as the last line, the reason mentioning one of
/// `words` (any case).
fn expect_not_running(run: &Finished, words: &[&str], case: &str) -> Result<(), Failure> {
    let got = verdict(run);
    let described = format!(
        "{}, stdout {}",
        crate::grade::process::describe_status(run.status),
        show(&run.stdout)
    );
    ensure(
        run.status.code() == Some(1) && got.starts_with("not running: "),
        || {
            Failure::new(format!("status did not say \"not running\" for {case}"))
                .expected("exit status 1 and a last line \"not running: <reason>\"")
                .got(described.clone())
        },
    )?;
    let reason = got.to_lowercase();
    ensure(
        words.is_empty() || words.iter().any(|w| reason.contains(w)),
        || {
            Failure::new(format!("the reason does not say what is wrong: {case}"))
                .expected(format!("a reason mentioning {}", words.join(" or ")))
                .got(described)
        },
    )
}

fn status_running(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    let run = run_status(ctx, &daemon.pidfile, &[])?;
    expect_running(&run, daemon.pid, daemon.port)
}

fn status_ipv6(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V6)
        .map_err(|f| f.during("daemon --host ::1").or_hint("create each socket with the domain of its address (Domain::for_address), not always IPv4"))?;
    let run = run_status(ctx, &daemon.pidfile, &["--host", "::1"])?;
    expect_running(&run, daemon.pid, daemon.port)
        .map_err(|f| f.during("status --host ::1").or_hint("create each socket with the domain of its address (Domain::for_address), not always IPv4"))
}

fn status_no_file(ctx: &mut Ctx) -> Result<(), Failure> {
    let pidfile = ctx.scratch().join("nobody-wrote-this.pid");
    let run = run_status(ctx, &pidfile, &[])?;
    expect_not_running(&run, NO_FILE_WORDS, "a pid file that does not exist")
}

fn status_malformed(ctx: &mut Ctx) -> Result<(), Failure> {
    expect_all_malformed(ctx, MALFORMED_RECORDS)
}

/// Files that a lax parser (trim, then parse) takes for `pid;port`, and the README
/// refuses: signs, spaces, underscores, more than one line. They name a live pid (the
/// grader's) and a port where nothing listens, so a program that accepts them says "not
/// running" at once, but for the wrong reason (refused, not malformed).
fn status_strict_format(ctx: &mut Ctx) -> Result<(), Failure> {
    let port = net::free_port(LOCALHOST_V4).to_string();
    let pid = std::process::id().to_string();
    let fill = |t: &&str| t.replace("{pid}", &pid).replace("{port}", &port);
    let cases: Vec<String> = LAX_RECORDS.iter().map(fill).collect();
    let hint = "take the file exactly as written: one line, digits only on each side of the ';' \
                (no sign, space, tab or underscore: int() and parse() accept some of these), at \
                most one final newline";
    expect_all_malformed(ctx, &cases).map_err(|f| f.hint(hint))
}

/// `status` on a pid file holding each of `cases` must say "not running" because the
/// file is malformed.
fn expect_all_malformed(ctx: &mut Ctx, cases: &[impl AsRef<str>]) -> Result<(), Failure> {
    for text in cases.iter().map(AsRef::as_ref) {
        let case = format!("a pid file holding {}", show(text.as_bytes()));
        let expected = NotRunning {
            words: MALFORMED_WORDS,
            case: &case,
            hint: "check the file before using it: exactly two decimal numbers, pid 1 or more (kill(0, ...) and kill(-1, ...) signal whole groups), port 1 to 65535",
        };
        status_says(ctx, text, expected)?;
    }
    Ok(())
}

/// A pid that no process has: a child that has exited and been reaped.
fn dead_pid() -> Result<u32, Failure> {
    for _ in 0..5 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .map_err(|e| Failure::new(format!("grader could not run `true`: {e}")))?;
        let pid = child.id();
        let _ = child.wait();
        if kill(Pid::from_raw(pid as i32), None) == Err(Errno::ESRCH) {
            return Ok(pid);
        }
    }
    Err(Failure::new("grader could not find a free pid")
        .hint("this is a grader problem, not yours"))
}

fn status_dead_pid(ctx: &mut Ctx) -> Result<(), Failure> {
    let pid = dead_pid()?;
    let file = record(pid, net::free_port(LOCALHOST_V4));
    let expected = NotRunning {
        words: GONE_WORDS,
        case: &format!("pid {pid}, a process that has exited"),
        hint: "kill(pid, 0) sends no signal but fails with ESRCH when no such process exists: say so",
    };
    status_says(ctx, &file, expected)
}

fn status_refused(ctx: &mut Ctx) -> Result<(), Failure> {
    let port = net::free_port(LOCALHOST_V4);
    let expected = NotRunning {
        words: REFUSED_WORDS,
        case: &format!("a live pid (the grader's) whose port {port} nobody listens on"),
        hint: "a live pid proves little: connect to the port; ECONNREFUSED means nothing listens there",
    };
    // The grader's own pid: certainly alive, and not listening on that port.
    status_says(ctx, &record(std::process::id(), port), expected)
}

/// A grader-side server for probes: for each, reads the probe line (or gives up after
/// 3 s), answers `answer`, then waits for the peer to close (at most 3 s).
fn fake_server(ip: IpAddr, answer: Vec<u8>) -> Result<Peer, Failure> {
    let steps = vec![
        Step::ReadLine,
        Step::Send(answer),
        Step::HalfClose,
        Step::ReadToEof,
    ];
    let script = Script::new(steps)
        .limit(Duration::from_secs(3))
        .when_late(Late::GoOn)
        .connections(usize::MAX);
    Peer::tcp_server(ip, script)
}

fn status_garbage(ctx: &mut Ctx) -> Result<(), Failure> {
    let server = fake_server(LOCALHOST_V4, b"SSH-2.0-OpenSSH_9.6\r\n".to_vec())?;
    let file = record(std::process::id(), server.port());
    let expected = NotRunning {
        words: GARBAGE_WORDS,
        case: "a port where another program answers \"SSH-2.0-OpenSSH_9.6\"",
        hint: "something listening is not proof: send the probe and accept only `socklab-daemon <pid>` as the answer",
    };
    status_says(ctx, &file, expected)
}

/// A listener that never accepts: the kernel completes the handshake, nobody answers.
fn never_accepting() -> Result<(TcpListener, u16), Failure> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Failure::new(format!("grader could not listen: {e}")))?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    Ok((listener, port))
}

fn status_silent_port(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_listener, port) = never_accepting()?;
    let case = "a port that accepts and never answers";
    let hint = "give recv() a deadline: set SO_RCVTIMEO to the time left before reading";
    gives_up_on(ctx, port, case, case, hint)
}

/// A listener with backlog 0 and one connection nobody accepts: the accept queue is
/// full, so the kernel drops every further SYN and a connect() stays in progress.
fn full_accept_queue() -> Result<(socket2::Socket, TcpStream, u16), Failure> {
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .and_then(|s| {
            s.bind(&SocketAddr::new(LOCALHOST_V4, 0).into())?;
            s.listen(0)?;
            Ok(s)
        })
        .map_err(|e| Failure::new(format!("grader could not listen: {e}")))?;
    let port = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .unwrap_or(0);
    let addr = SocketAddr::new(LOCALHOST_V4, port);
    let filler = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| Failure::new(format!("grader could not fill its accept queue: {e}")))?;
    Ok((listener, filler, port))
}

fn status_connect_deadline(ctx: &mut Ctx) -> Result<(), Failure> {
    let (_listener, _filler, port) = full_accept_queue()?;
    let during = "a port whose accept queue is full";
    let case = "a port whose connect() never completes";
    let hint = "a blocking connect() can wait for minutes: connect non-blocking, then poll() for POLLOUT with the time left, then read SO_ERROR";
    gives_up_on(ctx, port, during, case, hint)
}

/// Given a file naming `grader` (alive) and the port of `daemon`, which answers with its
/// own pid, status says "not running" and names the pid that answered.
fn found_stale(run: &Finished, grader: u32, daemon: &Daemon) -> Result<(), Failure> {
    let case = format!(
        "a file naming pid {grader} while the daemon on its port answers with pid {}",
        daemon.pid
    );
    expect_not_running(run, &[], &case).map_err(|f| f.or_hint("compare the pid in the handshake with the file's: a different pid means the file is stale"))?;
    names_answering_pid(run, daemon)
}

/// Status's reason names the pid `daemon` answered the handshake with.
fn names_answering_pid(run: &Finished, daemon: &Daemon) -> Result<(), Failure> {
    let numbers: Vec<String> = verdict(run)
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    ensure(numbers.contains(&daemon.pid.to_string()), || {
        Failure::new("the reason does not name the pid that answered")
            .expected(format!(
                "a reason naming pid {} (the daemon that answered on port {})",
                daemon.pid, daemon.port
            ))
            .got(show(&run.stdout))
            .hint("say which pid the handshake gave and which the file holds, so the reader sees the file is stale")
    })
}

fn status_pid_mismatch(ctx: &mut Ctx) -> Result<(), Failure> {
    let daemon = start_daemon(ctx, LOCALHOST_V4)?;
    // The file names the grader (alive), but the port is the daemon's, which answers
    // with its own pid.
    let grader = std::process::id();
    let other = pidfile_holding(ctx, "other.pid", &record(grader, daemon.port))?;
    let run = run_status(ctx, &other, &[])?;
    found_stale(&run, grader, &daemon)
}

/// A process status may not signal; the grader answers the handshake for it on a port
/// of its own.
enum Foreign {
    /// As root: one the grader started as uid 65534 (status then runs as uid 65533).
    Started(usize),
    /// Otherwise process 1, if it is another user's.
    Init,
}

impl Foreign {
    /// The foreign process to try, or none (nothing to check). As root, first makes sure
    /// uid 65533 can run the program at all (else "cannot test this here"): its error
    /// ("Permission denied") would pass for the EPERM note, or fail the program for the
    /// machine's fault.
    fn find(ctx: &mut Ctx) -> Result<Option<Foreign>, Failure> {
        if running_as_root() {
            // A process of uid 65534 (`nobody`) that sleeps until the check ends.
            let id = ctx.spawn_other("sleeper", &["sleep", "60"], Some(65534))?;
            let missing = ctx.scratch().join("missing.pid").display().to_string();
            if let Err(why) = ctx.other_user_runs_it(65533, &["status", "--pidfile", &missing]) {
                ctx.cannot_test(format!("{why:#}"))?;
            }
            Ok(Some(Foreign::Started(id)))
        } else if kill(Pid::from_raw(1), None) == Err(Errno::EPERM) {
            Ok(Some(Foreign::Init))
        } else {
            Ok(None)
        }
    }

    /// The foreign process's pid.
    fn pid(&self, ctx: &mut Ctx) -> u32 {
        match self {
            Foreign::Started(id) => ctx.proc(*id).pid(),
            Foreign::Init => 1,
        }
    }

    /// Runs `status --pidfile PIDFILE` to its end: as uid 65533 when the grader is root,
    /// so that the process of uid 65534 is another user's.
    fn run_status(&self, ctx: &mut Ctx, pidfile: &Path) -> Result<Finished, Failure> {
        match self {
            Foreign::Started(_) => {
                let path_text = pidfile.display().to_string();
                let id =
                    ctx.spawn_as_user("status", &["status", "--pidfile", &path_text], 65533)?;
                ctx.finish(id, STATUS_LIMIT)
            }
            Foreign::Init => run_status(ctx, pidfile, &[]),
        }
    }
}

/// Status said the daemon of `pid` on `port` runs, although kill(pid, 0) gave EPERM.
fn running_despite_eperm(run: &Finished, pid: u32, port: u16) -> Result<(), Failure> {
    let during = format!(
        "pid {pid} belongs to another user (kill(pid, 0) fails with EPERM) and the handshake on its port answers"
    );
    expect_running(run, pid, port).map_err(|f| {
        f.during(&during).hint(
            "EPERM means the process exists, you just may not signal it: go on and probe the port",
        )
    })
}

/// Status noted that the process belongs to another user.
fn noted_eperm(run: &Finished) -> Result<(), Failure> {
    let text = run.stdout_text().to_lowercase();
    ensure(EPERM_WORDS.iter().any(|w| text.contains(w)), || {
        Failure::new("status did not say that the process belongs to another user")
            .expected(format!("a line mentioning {}", EPERM_WORDS.join(" or ")))
            .got(show(&run.stdout))
            .hint("when kill(pid, 0) says EPERM, print a note (before the verdict) that the process exists but is another user's")
    })
}

fn status_eperm(ctx: &mut Ctx) -> Result<(), Failure> {
    let Some(foreign) = Foreign::find(ctx)? else {
        return Ok(()); // no process of another user to try: nothing to check
    };
    let pid = foreign.pid(ctx);
    let server = fake_server(LOCALHOST_V4, answer_of(pid))?;
    let pidfile = pidfile_holding(ctx, "daemon.pid", &record(pid, server.port()))?;
    let run = foreign.run_status(ctx, &pidfile)?;
    running_despite_eperm(&run, pid, server.port_number())?;
    noted_eperm(&run)
}
