//! `cargo xtask demo labN`: the reference programs narrate a session, live.
//!
//! Each program runs with `SOCKLAB_NARRATE=1` in its own process group. Their stdout and
//! stderr are read line by line as they come and printed in one stream, every line
//! labelled with the role that spoke (`[server] accept() -> fd 4 from 127.0.0.1:54012`),
//! so the class sees the server's and the client's calls interleaved in real time.
//! A lab's demo script (in its `labs/labN.rs`) drives the session through [`Demo`].
//!
//! A script may move the session into a private network ([`Demo::private_network`]):
//! the programs then run inside a host of their own (see [`netns`]) whose packets are
//! captured and shown as `[wire]` lines. Narrated lines carry a timestamp
//! (`SOCKLAB_NARRATE_CLOCK`), packets carry the kernel's, and a [`Timeline`] prints
//! everything in true time order, a moment (`HOLDBACK`) after it happened.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use shared::group::Group;

use super::net::{self, Conn};
use super::netns::{self, Host};
use super::poll;
use super::wire::{self, Capture};

/// How long a line waits before it is printed, so that a packet or a line from
/// another program that happened earlier (but reached us later) goes first.
const HOLDBACK: Duration = Duration::from_millis(150);

/// A live classroom session with the reference programs.
pub struct Demo {
    program: Vec<String>,
    children: Vec<(String, Group)>,
    /// One flag per program: set when its output pipe reached end-of-file.
    drained: Vec<(u32, Arc<AtomicBool>)>,
    timeline: Timeline,
    /// The private host and its capture, once [`Demo::private_network`] made them.
    network: Option<(Host, Capture)>,
    scratch: super::files::Scratch,
}

impl Demo {
    pub fn new(program: &[String]) -> anyhow::Result<Demo> {
        super::process::install_interrupt_cleanup();
        let scratch = super::files::Scratch::new("socklab-demo-")
            .context("cannot create a scratch folder")?;
        // A demo starts before anything could have begun shutting the grader down.
        let _ = super::process::register_folder(scratch.path());
        Ok(Demo {
            program: program.to_vec(),
            children: Vec::new(),
            drained: Vec::new(),
            timeline: Timeline::start(),
            network: None,
            scratch,
        })
    }

    /// Moves the rest of the session into a private host with its own loopback, and
    /// shows its packets as `[wire]` lines. Where namespaces cannot be made, says so in
    /// one `[wire] unavailable: ...` line and goes on on this machine's loopback.
    /// Returns whether the wire is shown.
    pub fn private_network(&mut self) -> bool {
        let made = Host::new("demo").and_then(|host| {
            let timeline = self.timeline.clone();
            let capture = Capture::start(&host, move |micros, line| timeline.push(micros, line))
                .map_err(|e| netns::Unavailable(format!("cannot capture packets: {e}")))?;
            self.timeline.follow(capture.horizon());
            Ok((host, capture))
        });
        match made {
            Ok(network) => {
                self.network = Some(network);
                self.line(
                    "wire",
                    "a private network: its own loopback, every packet shown here".into(),
                );
                true
            }
            Err(why) => {
                self.line("wire", format!("{why} (the demo goes on without the wire)"));
                false
            }
        }
    }

    /// In a private network, makes its loopback carry Ethernet-sized packets (1500
    /// bytes, one TCP segment each), so a large send() shows as several segments.
    pub fn ethernet_sized_packets(&self) {
        if let Some((host, _)) = &self.network
            && let Err(why) = host.ethernet_sized_loopback()
        {
            self.line("wire", format!("loopback keeps its 64 KiB packets: {why}"));
        }
    }

    /// A UDP socket for the demo itself (playing a client), bound to an ephemeral
    /// port on 127.0.0.1, inside the private network when there is one.
    pub fn udp_socket(&self) -> anyhow::Result<std::net::UdpSocket> {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let socket = match &self.network {
            Some((host, _)) => host
                .socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
                .map(std::net::UdpSocket::from)
                .and_then(|socket| {
                    socket2::SockRef::from(&socket).bind(&local.into())?;
                    Ok(socket)
                }),
            None => std::net::UdpSocket::bind(local),
        };
        socket.context("the demo cannot make a UDP socket")
    }

    /// Polls until a UDP socket is bound to `port` (at most the start limit).
    pub fn wait_udp_bound(&mut self, port: u16) -> anyhow::Result<()> {
        let tables: Vec<std::path::PathBuf> = match &self.network {
            Some((host, _)) => ["udp", "udp6"]
                .iter()
                .map(|t| format!("/proc/{}/net/{t}", host.pid()).into())
                .collect(),
            None => vec!["/proc/net/udp".into(), "/proc/net/udp6".into()],
        };
        let bound = || {
            super::tcp_table::read(&tables)
                .iter()
                .any(|row| row.local.port() == port)
        };
        if !poll::holds(super::ctx::START_LIMIT, Duration::from_millis(10), bound) {
            bail!("nothing bound UDP port {port}");
        }
        self.settle();
        Ok(())
    }

    /// Whether packets are shown (the session runs in a private host).
    pub fn shows_wire(&self) -> bool {
        self.network.is_some()
    }

    /// A folder for socket paths and pid files, removed at the end.
    pub fn scratch(&self) -> &std::path::Path {
        self.scratch.path()
    }

    /// A line from the narrator (the instructor's voice), set apart from the programs.
    pub fn say(&self, text: &str) {
        self.settle();
        self.timeline.flush_all();
        let mut printer = self
            .timeline
            .printing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        printer.close(&mut out);
        let _ = writeln!(out);
        printer.print(&mut out, &format!("=== {text}"));
        let _ = out.flush();
    }

    /// A line of the demo's own (`[role] text`), in time order with the programs'.
    pub fn line(&self, role: &str, text: String) {
        self.timeline
            .push(wire::now_micros(), format!("[{role}] {text}"));
    }

    /// `--step`: the output pauses before each call's line and each group of packets
    /// until Enter is pressed, so an instructor can talk over it. The programs run on
    /// at their own pace; only the telling waits.
    pub fn step_by_step(&mut self) {
        let mut printer = self
            .timeline
            .printing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        printer.step = true;
        println!("(--step: press Enter for each next line or group of packets)");
    }

    /// A handle that speaks on this demo's timeline from another thread.
    pub fn voice(&self) -> Voice {
        Voice(self.timeline.clone())
    }

    /// Starts the program with `args` in the background, labelled `role`.
    pub fn start(&mut self, role: &str, args: &[&str]) -> anyhow::Result<u32> {
        self.spawn(role, args, None)
    }

    /// Starts `server --host 127.0.0.1 --port PORT` and waits until it listens.
    pub fn start_server(&mut self, port: u16) -> anyhow::Result<()> {
        let port_text = port.to_string();
        self.start(
            "server",
            &["server", "--host", "127.0.0.1", "--port", &port_text],
        )?;
        self.wait_listening(port)
    }

    /// Runs the program with `args` and `stdin` to its end (at most `limit`).
    pub fn run(
        &mut self,
        role: &str,
        args: &[&str],
        stdin: &[u8],
        limit: Duration,
    ) -> anyhow::Result<()> {
        let pid = self.spawn(role, args, Some(stdin.to_vec()))?;
        if !self.wait_exit(pid, limit) {
            bail!("the {role} did not finish within {} s", limit.as_secs());
        }
        Ok(())
    }

    /// Sends `sig` to a program started by this demo.
    pub fn signal(&self, pid: u32, sig: Signal) {
        let _ = signal::kill(Pid::from_raw(pid as i32), sig);
    }

    /// Waits until a program exits (at most `limit`); true if it did.
    pub fn wait_exit(&mut self, pid: u32, limit: Duration) -> bool {
        let Some((_, child)) = self.children.iter_mut().find(|(_, c)| c.pid() == pid) else {
            return false;
        };
        if child.wait_exit(limit).is_none() {
            return false;
        }
        self.wait_drained(pid);
        self.settle();
        true
    }

    /// Waits (at most 2 s) until everything an exited program printed is on screen.
    fn wait_drained(&self, pid: u32) {
        let Some((_, flag)) = self.drained.iter().find(|(p, _)| *p == pid) else {
            return;
        };
        let every = Duration::from_millis(5);
        poll::holds(Duration::from_secs(2), every, || {
            flag.load(Ordering::SeqCst)
        });
    }

    /// A free loopback port for a server: 5000 in a private network (nothing else
    /// is there), one the kernel picks on this machine otherwise.
    pub fn free_port(&self) -> u16 {
        match &self.network {
            Some((host, _)) => (5000..u16::MAX)
                .find(|&port| !host.is_listening(port))
                .unwrap_or(5000),
            None => net::free_port(net::LOCALHOST_V4),
        }
    }

    /// Polls until something listens on `port`.
    pub fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let listening = || match &self.network {
            Some((host, _)) => host.is_listening(port),
            None => net::is_listening(port),
        };
        let every = Duration::from_millis(10);
        if !poll::holds(super::ctx::START_LIMIT, every, listening) {
            bail!("nothing listened on port {port}");
        }
        self.settle();
        Ok(())
    }

    /// Connects the demo itself (playing a client) to `addr`, from inside the private
    /// network when there is one.
    pub fn connect(&self, addr: SocketAddr) -> anyhow::Result<Conn> {
        let conn = match &self.network {
            Some((host, _)) => host
                .connect(addr, net::IO_LIMIT)
                .map(Conn::new)
                .map_err(|e| net::connect_failure(addr, &e))?,
            None => net::connect(addr)?,
        };
        Ok(conn)
    }

    /// A listener for the demo itself (playing a server) on `ip` (port from
    /// [`free_port`](Self::free_port)), inside the private network when there is one.
    pub fn listen(&self, ip: IpAddr) -> anyhow::Result<TcpListener> {
        let addr = SocketAddr::new(ip, self.free_port());
        let listener = match &self.network {
            Some((host, _)) => host.listen(addr, 128),
            None => TcpListener::bind(addr),
        };
        listener.with_context(|| format!("the demo cannot listen on {addr}"))
    }

    /// The TCP tables that show this session's sockets (`/proc/.../net/tcp*`).
    pub fn tcp_tables(&self) -> Vec<std::path::PathBuf> {
        match &self.network {
            Some((host, _)) => host.tcp_tables(),
            None => vec!["/proc/net/tcp".into(), "/proc/net/tcp6".into()],
        }
    }

    /// Shows `ss ARGS` (run inside the private network when there is one) as `[ss]`
    /// lines; on this machine, keep `args` to a filter such as `sport = :5000`.
    pub fn ss(&self, args: &[&str]) {
        self.settle();
        let mut command = match &self.network {
            Some((host, _)) => host.command("ss"),
            None => Command::new("ss"),
        };
        let shown = format!("ss {}", args.join(" "));
        match command.args(args).stderr(Stdio::null()).output() {
            Ok(output) => {
                self.line("ss", format!("$ {shown}"));
                for line in String::from_utf8_lossy(&output.stdout).lines() {
                    let line: String = line.trim_end().chars().take(wire::WIDTH - 5).collect();
                    self.line("ss", line);
                }
            }
            Err(e) => self.line("ss", format!("cannot run {shown}: {e}")),
        }
        self.timeline.flush_all();
    }

    /// Waits until no program has printed anything for a moment (at most 2 s), so
    /// each step's narration is on screen before the next step starts.
    pub fn settle(&self) {
        let quiet = HOLDBACK + Duration::from_millis(100);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let last = self.timeline.last_input();
            if last.elapsed() >= quiet || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self, role: &str, args: &[&str], stdin: Option<Vec<u8>>) -> anyhow::Result<u32> {
        let (reader, writer) = std::io::pipe()?;
        let mut command = match &self.network {
            Some((host, _)) => host.command(&self.program[0]),
            None => Command::new(&self.program[0]),
        };
        command
            .args(&self.program[1..])
            .args(args)
            .current_dir(self.scratch.path())
            .env("SOCKLAB_NARRATE", "1")
            .env("SOCKLAB_NARRATE_CLOCK", "1")
            // One pipe for both streams keeps each program's lines in the order it
            // printed them (narration on stderr, results on stdout).
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = Group::spawn(&mut command)
            .with_context(|| format!("cannot start {}", self.program[0]))?;
        let pid = child.pid();
        super::process::track_group(pid as i32);
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.child_mut().stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        // Our copies of the write end must go, or the reader never sees EOF.
        drop(command);
        let drained = Arc::new(AtomicBool::new(false));
        forward(reader, role, self.timeline.clone(), drained.clone());
        self.drained.push((pid, drained));
        self.children.push((role.to_string(), child));
        Ok(pid)
    }
}

/// Puts each line of `pipe` on the timeline, labelled with `role` unless it already
/// carries a label, at the moment its narration stamp says (or when it arrived).
fn forward(
    pipe: impl Read + Send + 'static,
    role: &str,
    timeline: Timeline,
    drained: Arc<AtomicBool>,
) {
    let role = role.to_string();
    std::thread::spawn(move || {
        // The time of this program's previous line: its lines keep their order.
        let mut last = 0u64;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let (before, stamp, rest) = split_stamp(&line);
            let label = format!("[{role}]");
            // A prompt printed without a newline (`> `) runs into the next narration
            // line: show it as a line of its own.
            let (before, rest) = match (before, rest.find(&label)) {
                ("", Some(at)) if at > 0 && stamp.is_none() => (&rest[..at], &rest[at..]),
                pair => (pair.0, rest),
            };
            // An unstamped line (a result on stdout, an error on stderr) goes right
            // after the line its program printed before it: its arrival is later than
            // when it was printed, by however long the pipe took.
            let unstamped = |last: u64| if last == 0 { wire::now_micros() } else { last };
            if !before.trim().is_empty() {
                last = unstamped(last);
                timeline.push(last, format!("{label} {before}"));
            }
            last = match stamp {
                Some(stamp) => stamp.max(last),
                None => unstamped(last),
            };
            // A narrated line carries its label; a plain one (a result that happens
            // to start with `[`, like a ctime stamp) gets the program's.
            if stamp.is_some() && rest.starts_with('[') {
                timeline.push(last, rest.to_string());
            } else {
                timeline.push(last, format!("{label} {rest}"));
            }
        }
        drained.store(true, Ordering::SeqCst);
    });
}

/// Splits `text @1764000000123456 [role] ...` into the text before the stamp, the
/// stamp (µs) and the rest.
fn split_stamp(line: &str) -> (&str, Option<u64>, &str) {
    let mut search = 0;
    while let Some(at) = line[search..].find('@').map(|i| i + search) {
        let digits: String = line[at + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let after = at + 1 + digits.len();
        if digits.len() >= 10 && line[after..].starts_with(" [") {
            return (&line[..at], digits.parse().ok(), &line[after + 1..]);
        }
        search = at + 1;
    }
    ("", None, line)
}

/// `text` cut at spaces into lines of at most [`wire::WIDTH`] columns, the later ones
/// starting with `indent`. A word longer than a line is left whole.
fn wrap(text: &str, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if !current.trim().is_empty()
            && current.chars().count() + 1 + word.chars().count() > wire::WIDTH
        {
            lines.push(std::mem::replace(&mut current, indent.to_string()));
        } else if !current.is_empty() || !lines.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

/// Says lines on a demo's timeline from any thread ([`Demo::voice`]).
#[derive(Clone)]
pub struct Voice(Timeline);

impl Voice {
    /// `[role] text`, stamped now.
    pub fn line(&self, role: &str, text: String) {
        self.0.push(wire::now_micros(), format!("[{role}] {text}"));
    }
}

/// Lines from every source, printed in time order a moment after they happened.
#[derive(Clone)]
struct Timeline {
    inner: Arc<Mutex<Pending>>,
    stop: Arc<AtomicBool>,
    /// Held while printing, so batches come out whole and in order.
    printing: Arc<Mutex<Printer>>,
}

/// What the printer remembers between batches.
#[derive(Default)]
struct Printer {
    /// `--step`: wait for Enter before each call's line or group of packets.
    step: bool,
    /// The kind of the last line printed (`[wire]`, `[ss]`, ...), to group packets.
    last_kind: String,
    /// The last line was printed without its newline: Enter's echo ends it.
    open_line: bool,
}

impl Printer {
    fn print(&mut self, out: &mut impl Write, line: &str) {
        let kind = line.split(']').next().unwrap_or("").to_string();
        let grouped = matches!(kind.as_str(), "[wire" | "[ss") && kind == self.last_kind;
        if self.step && !grouped && self.open_line {
            // Wait for Enter; its echo ends the open line. No input: stop pausing.
            let _ = out.flush();
            let mut answer = String::new();
            let read = std::io::stdin().read_line(&mut answer).unwrap_or(0);
            if read == 0 {
                self.step = false;
            }
            // A terminal echoes the Enter; piped input does not.
            if read == 0 || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                let _ = writeln!(out);
            }
            self.open_line = false;
        } else if self.open_line {
            let _ = writeln!(out);
            self.open_line = false;
        }
        self.last_kind = kind;
        // Continuation lines are indented past the `[role] ` label (or the `=== `).
        let indent = match line.find("] ") {
            Some(at) if line.starts_with('[') => " ".repeat(at + 2),
            _ if line.starts_with("=== ") => "    ".to_string(),
            _ => String::new(),
        };
        let pieces = wrap(line, &indent);
        for (n, piece) in pieces.iter().enumerate() {
            if self.step && n + 1 == pieces.len() {
                let _ = write!(out, "{piece}");
                self.open_line = true;
            } else {
                let _ = writeln!(out, "{piece}");
            }
        }
    }

    /// Ends an open line before someone else prints.
    fn close(&mut self, out: &mut impl Write) {
        if self.open_line {
            let _ = writeln!(out);
            self.open_line = false;
        }
        self.last_kind.clear();
    }
}

struct Pending {
    /// (µs, arrival number, line)
    lines: Vec<(u64, u64, String)>,
    count: u64,
    last_input: Instant,
    /// With a capture running: the moment up to which every packet is in.
    horizon: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Timeline {
    /// A timeline with a printer thread that flushes lines older than [`HOLDBACK`].
    fn start() -> Timeline {
        let timeline = Timeline {
            inner: Arc::new(Mutex::new(Pending {
                lines: Vec::new(),
                count: 0,
                last_input: Instant::now(),
                horizon: None,
            })),
            stop: Arc::new(AtomicBool::new(false)),
            printing: Arc::new(Mutex::new(Printer::default())),
        };
        let printer = timeline.clone();
        std::thread::spawn(move || {
            while !printer.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
                let holdback = HOLDBACK.as_micros() as u64;
                let mut until = wire::now_micros().saturating_sub(holdback);
                // Never past the packets: a slow capture thread must not let a later
                // line overtake the packet that came before it.
                if let Some(horizon) = printer.horizon() {
                    until = until.min(horizon);
                }
                printer.flush_before(until);
            }
        });
        timeline
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, micros: u64, line: String) {
        let mut pending = self.lock();
        pending.count += 1;
        let n = pending.count;
        pending.lines.push((micros, n, line));
        pending.last_input = Instant::now();
    }

    fn last_input(&self) -> Instant {
        self.lock().last_input
    }

    /// Follows a capture: lines wait until the packets before them are in.
    fn follow(&self, horizon: Arc<std::sync::atomic::AtomicU64>) {
        self.lock().horizon = Some(horizon);
    }

    fn horizon(&self) -> Option<u64> {
        let pending = self.lock();
        let horizon = pending.horizon.as_ref()?;
        Some(horizon.load(Ordering::SeqCst))
    }

    /// Waits (at most 2 s) until the capture has every packet up to now.
    fn catch_up(&self) {
        let now = wire::now_micros();
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.horizon().is_some_and(|h| h < now) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Prints, in time order, every line stamped before `micros`.
    fn flush_before(&self, micros: u64) {
        let mut printer = self.printing.lock().unwrap_or_else(|p| p.into_inner());
        let lines: Vec<_> = {
            let mut pending = self.lock();
            pending.lines.sort();
            let ready = pending.lines.partition_point(|(t, _, _)| *t < micros);
            pending.lines.drain(..ready).collect()
        };
        let mut out = std::io::stdout().lock();
        for (_, _, line) in lines {
            printer.print(&mut out, &line);
        }
        let _ = out.flush();
    }

    /// Prints everything pending and ends the last line.
    fn flush_and_close(&self) {
        self.flush_all();
        let mut printer = self.printing.lock().unwrap_or_else(|p| p.into_inner());
        printer.close(&mut std::io::stdout().lock());
    }

    fn flush_all(&self) {
        self.catch_up();
        self.flush_before(u64::MAX);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.settle();
        for (_, child) in &mut self.children {
            child.kill();
            super::process::untrack_group(child.pid() as i32);
        }
        // The programs' last words and the wire's last packets, then the network goes.
        self.settle();
        self.timeline.flush_all();
        self.timeline.lock().horizon = None;
        self.network = None;
        self.timeline.flush_and_close();
        self.timeline.stop.store(true, Ordering::SeqCst);
        super::process::forget_folder(self.scratch.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_under_their_label() {
        let line = format!("[server] {}", "word ".repeat(40));
        let lines = wrap(line.trim_end(), "         ");
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= wire::WIDTH));
        assert!(lines[1].starts_with("         word"));
    }

    #[test]
    fn stamps_are_found_and_stripped() {
        assert_eq!(
            split_stamp("@1764000000123456 [server] listen(backlog=5)"),
            ("", Some(1764000000123456), "[server] listen(backlog=5)")
        );
        assert_eq!(
            split_stamp("> @1764000000123456 [client] recv() -> 0"),
            ("> ", Some(1764000000123456), "[client] recv() -> 0")
        );
        assert_eq!(
            split_stamp("mail me @ home [x]"),
            ("", None, "mail me @ home [x]")
        );
    }
}
