//! The server role: one thread, one epoll instance, every client.
//!
//! The rules that keep a single thread fair and cheap:
//!
//! - Every socket is non-blocking: a call that cannot make progress fails at once with
//!   `EAGAIN` ("try again later") instead of putting the whole server to sleep.
//! - The only place we sleep is `epoll_wait()`, with no timeout: an idle server uses no
//!   CPU at all.
//! - We tell epoll only what we can use right now. `EPOLLOUT` ("you may send") is true
//!   almost all the time, so we ask for it only while echoed bytes wait unsent; asking
//!   for it always would wake us again and again for nothing (a busy loop).
//! - Back-pressure: a client that sends but does not read would make its unsent bytes
//!   grow without end. Once they reach `--max-buffer` we stop asking for `EPOLLIN`: its
//!   bytes then wait in the kernel's buffers, TCP tells it to slow down, and we read again
//!   as soon as it has caught up.
//! - No allocation per event: one read buffer serves every client in turn, the event
//!   array is reused, clients live in a `Vec` indexed by the token epoll gives back.
//! - A peer can vanish without a word (unplugged, crashed machine, a NAT that forgot
//!   the connection): no FIN, no RST, so no event ever comes for it. Two guards, for two
//!   different questions: TCP keepalive asks the kernel "is the machine still there?"
//!   (it probes after `--keepalive` seconds of silence and drops the connection when no
//!   answer comes), and `--idle-timeout` asks "is the program still talking to us?"
//!   (we close a client that has sent nothing for that long, alive or not).

use std::io::{self, BufWriter, Read, Stdout, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use shared::errors::explain;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

/// The token (the `u64` every epoll event carries back to us) of the listening socket.
/// Any other token is the index of a client's slot in [`EventLoop::slots`].
const LISTENER: u64 = u64::MAX;
/// Bytes asked for per `recv()`. One buffer of this size serves every client in turn.
const READ_CHUNK: usize = 64 * 1024;
/// The most events one `epoll_wait()` hands back; any others wait for the next round.
const EVENTS_PER_WAIT: usize = 1024;
/// Once keepalive probing has started, the time between two unanswered probes
/// (TCP_KEEPINTVL; the kernel's default is 75 s).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the kernel gives the connection up (TCP_KEEPCNT; default 9).
/// A vanished peer is found `--keepalive` + 3 x 10 s after it last spoke.
const KEEPALIVE_PROBES: u32 = 3;
/// With `--idle-timeout T`, silent clients are looked for every T / 4: a client is closed
/// between T and 1.25 T after its last word, and four passes per T cost next to nothing.
const SWEEPS_PER_TIMEOUT: u32 = 4;

/// The server's knobs, from the command line.
pub struct Limits {
    /// listen()'s backlog: finished handshakes the kernel queues until we accept() them.
    pub backlog: i32,
    /// Back-pressure: stop reading a client once this many echo bytes wait unsent.
    pub max_buffer: usize,
    /// TCP_KEEPIDLE of every client socket.
    pub keepalive: Duration,
    /// Close a client silent this long; `None`: never.
    pub idle_timeout: Option<Duration>,
}

/// Runs the server until a fatal error (a client's error is never fatal).
pub fn run(address: SocketAddr, limits: Limits) -> Result<(), Failure> {
    raise_descriptor_limit();
    let listener = open_listener(address, limits.backlog)?;
    let epoll = watch_listener(&listener)?;
    EventLoop::new(listener, epoll, &limits).serve_forever()
}

/// Step 1: every socket is a file descriptor, and a process may only hold RLIMIT_NOFILE
/// of them (the "soft" limit is often 1024). Raising it to the "hard" ceiling, which needs
/// no privilege, is what lets 10,000 clients in at once.
fn raise_descriptor_limit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok()
    {
        narrate!("setrlimit(RLIMIT_NOFILE, {soft} -> {hard})");
    }
}

/// Steps 2 to 6: a non-blocking socket that listens on `address`.
fn open_listener(address: SocketAddr, backlog: i32) -> Result<Socket, Failure> {
    // Step 2: socket(): a TCP endpoint in the address family of `address`.
    let listener: Socket = {
        // Stuck? `cargo xtask hint lab7`
        todo!("step 2: create a TCP socket whose domain matches `address`");
    };
    narrate!("socket() -> fd {}", listener.as_raw_fd());

    // Step 3: SO_REUSEADDR, so a restarted server can bind the port again at once.
    {
        // Stuck? `cargo xtask hint lab7`
        todo!("step 3: set SO_REUSEADDR on the listener");
    }
    narrate!("setsockopt(SO_REUSEADDR, 1)");

    // Step 4: O_NONBLOCK on the listener. We accept() in a loop until the queue is empty;
    // a blocking accept() would then put the ONLY thread to sleep waiting for a new
    // caller, while every connected client waits for its echo.
    {
        // Stuck? `cargo xtask hint lab7`
        todo!("step 4: make the listener non-blocking");
    }
    narrate!("fcntl(fd {}, F_SETFL, O_NONBLOCK)", listener.as_raw_fd());

    // Step 5: bind() names the socket with the address clients will dial.
    {
        // Stuck? `cargo xtask hint lab7`
        todo!("step 5: bind the listener to `address`");
    }
    narrate!("bind({address})");

    // Step 6: listen(). While we are busy with other clients, the kernel completes
    // handshakes on its own and queues up to `backlog` of them; 10,000 callers arriving
    // together need a long queue, or the late ones see their SYNs dropped and retried.
    {
        // Stuck? `cargo xtask hint lab7`
        todo!("step 6: start listening with the given backlog");
    }
    narrate!("listen(backlog={backlog})");
    println!("listening on {address} (backlog {backlog})");
    Ok(listener)
}

/// Steps 7 and 8: an epoll instance that already watches the listener.
fn watch_listener(listener: &Socket) -> Result<Epoll, Failure> {
    // Step 7: epoll_create1() makes a kernel object that remembers which descriptors we
    // care about (the "interest list") and collects those that become ready. Unlike
    // poll(), we do not hand it the whole list again on every wait: with 10,000 clients
    // that difference is the whole point.
    let epoll: Epoll = {
        // Stuck? `cargo xtask hint lab7`
        todo!("step 7: create an epoll instance (close-on-exec)");
    };
    narrate!("epoll_create1() -> fd {}", epoll.0.as_raw_fd());

    // Step 8: watch the listener for EPOLLIN: for a listening socket, "readable" means
    // "a finished handshake is waiting to be accepted". Its token is LISTENER.
    {
        // Stuck? `cargo xtask hint lab7`
        todo!("step 8: add the listener to the epoll interest list (EPOLLIN, token LISTENER)");
    }
    narrate!(
        "epoll_ctl(ADD, fd {}, EPOLLIN, token LISTENER)",
        listener.as_raw_fd()
    );
    Ok(epoll)
}

/// One connected client and the echo bytes it has not received yet.
struct Client {
    /// The connected, non-blocking socket (step 10); dropping it closes it.
    socket: Socket,
    /// Its address, for the log.
    peer: SocketAddr,
    /// Echo bytes the kernel would not take yet; `unsent[sent_from..]` is still owed.
    /// The buffer keeps its capacity, so a client that lags often does not reallocate.
    unsent: Vec<u8>,
    /// Where the owed bytes start in `unsent`: the ones before went out already.
    sent_from: usize,
    /// The client half-closed (recv() returned 0): nothing more will come from it.
    peer_finished: bool,
    /// What epoll watches for this client right now, so we only call epoll_ctl on change.
    interest: EpollFlags,
    /// When it last showed a sign of life (bytes, its FIN, reading the echo it is owed):
    /// `--idle-timeout` counts from here.
    last_heard: Instant,
}

/// What to do with a client after it has been served.
enum Next {
    /// Keep it: it may still send, or is still owed echo bytes.
    KeepGoing,
    /// It half-closed and has received every byte of its echo: close it.
    Finished,
}

/// The whole server: the listener, the epoll instance and every client.
struct EventLoop {
    /// The non-blocking listening socket (steps 2 to 6).
    listener: Socket,
    /// The epoll instance watching the listener and every client (steps 7 and 8).
    epoll: Epoll,
    /// Clients by token: the token epoll hands back is the index here, so finding a
    /// client costs one array access (no hashing). `None` is a free slot.
    slots: Vec<Option<Client>>,
    /// Free slots, reused before the vector grows.
    free_slots: Vec<usize>,
    /// Connected clients (the occupied slots), for the log.
    open_clients: usize,
    /// The one read buffer, shared by every client in turn.
    read_buffer: Box<[u8]>,
    /// Back-pressure: stop reading a client once this many echo bytes wait unsent.
    max_buffer: usize,
    /// False while we are out of file descriptors (see `pause_accepting`).
    accepting: bool,
    /// Read once: narration is off in benchmarks and must cost nothing there.
    narrating: bool,
    /// Connection lines gather here and go out in one write() before we sleep.
    log: BufWriter<Stdout>,
    /// TCP_KEEPIDLE for every client socket.
    keepalive: Duration,
    /// Close clients silent this long (`None`: never).
    idle_timeout: Option<Duration>,
    /// When to look for silent clients next.
    next_sweep: Instant,
    /// The clock, read once per wake-up: every event of one round happened "now".
    now: Instant,
}

impl EventLoop {
    fn new(listener: Socket, epoll: Epoll, limits: &Limits) -> Self {
        let now = Instant::now();
        EventLoop {
            listener,
            epoll,
            slots: Vec::with_capacity(1024),
            free_slots: Vec::with_capacity(1024),
            open_clients: 0,
            read_buffer: vec![0u8; READ_CHUNK].into_boxed_slice(),
            max_buffer: limits.max_buffer,
            accepting: true,
            narrating: shared::narrate::enabled(),
            log: BufWriter::new(io::stdout()),
            keepalive: limits.keepalive,
            idle_timeout: limits.idle_timeout,
            next_sweep: now,
            now,
        }
    }

    /// Step 9, forever: sleep until something is ready, then serve what is ready.
    fn serve_forever(&mut self) -> Result<(), Failure> {
        let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
        loop {
            // Whatever we printed during the last round goes out now, before we sleep.
            let _ = self.log.flush();
            // For ever, unless silent clients must be closed on time (steps 19 and 20).
            let timeout = self.sleep_limit();

            // Step 9: epoll_wait(): the thread sleeps, using no CPU, until at least one
            // watched socket is ready (or, with --idle-timeout, until the next sweep is
            // due). Otherwise there is no timeout: a timeout of 0 would return at once and
            // turn this loop into a busy loop burning a whole core while idle.
            let ready: usize = {
                // Stuck? `cargo xtask hint lab7`
                todo!(
                    "step 9: wait up to `timeout` (for ever, normally) for ready sockets; on EINTR simply wait again"
                );
            };
            narrate_if!(self.narrating, "epoll_wait() -> {ready} ready");
            self.now = Instant::now();

            for event in &events[..ready] {
                let token = event.data();
                let flags = event.events();
                narrate_if!(
                    self.narrating,
                    "  event {} on {}",
                    flag_names(flags),
                    if token == LISTENER {
                        String::from("the listener")
                    } else {
                        format!("slot {token}")
                    }
                );
                if token == LISTENER {
                    self.accept_everyone();
                } else {
                    self.serve_client(token as usize, flags);
                }
            }
            if let Some(limit) = self.idle_timeout
                && self.now >= self.next_sweep
            {
                self.close_silent_clients(limit);
            }
        }
    }

    /// Steps 10 to 12: take every queued caller, not just one, and watch each of them.
    fn accept_everyone(&mut self) {
        loop {
            // Step 10: accept4() the next finished handshake. SOCK_NONBLOCK makes the new
            // socket non-blocking in the same call (on Linux a socket from plain accept()
            // does NOT inherit O_NONBLOCK from the listener). EAGAIN means the queue is
            // empty: back to epoll_wait().
            let (socket, peer): (Socket, SockAddr) = {
                // Stuck? `cargo xtask hint lab7`
                todo!(
                    "step 10: accept the next client (non-blocking, close-on-exec); return on EAGAIN"
                );
            };
            let fd = socket.as_raw_fd();
            let peer = peer
                .as_socket()
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            narrate_if!(self.narrating, "accept4() -> fd {fd} from {peer}");

            // Step 11: TCP_NODELAY. An echo answers with whatever it has, at once; Nagle's
            // algorithm could hold a small leftover back until the previous segment is
            // acknowledged, a needless delay of up to tens of milliseconds.
            if let Err(err) = socket.set_tcp_nodelay(true) {
                eprintln!(
                    "lab7: client {peer}: setsockopt(TCP_NODELAY): {}",
                    explain(&err)
                );
            }
            narrate_if!(self.narrating, "setsockopt(fd {fd}, TCP_NODELAY, 1)");

            // Step 11, keepalive: a client that vanishes without a FIN (its machine lost
            // power, a NAT box forgot the connection) never makes its socket ready, and
            // its slot would be held for ever. With SO_KEEPALIVE the kernel sends a probe
            // after `--keepalive` seconds without a segment from it; a live peer's kernel
            // answers (the program need not), a dead one does not, and after a few
            // unanswered probes the socket fails with ETIMEDOUT: EPOLLERR, step 13.
            {
                // Stuck? `cargo xtask hint lab7`
                todo!(
                    "step 11: turn on TCP keepalive: probe after `self.keepalive` of silence, every KEEPALIVE_INTERVAL, KEEPALIVE_PROBES times"
                );
            }
            narrate_if!(
                self.narrating,
                "setsockopt(fd {fd}, SO_KEEPALIVE, 1); TCP_KEEPIDLE {} s, TCP_KEEPINTVL {} s, TCP_KEEPCNT {KEEPALIVE_PROBES}",
                self.keepalive.as_secs(),
                KEEPALIVE_INTERVAL.as_secs()
            );

            // Step 12: watch the client for EPOLLIN, tagged with its slot number so the
            // events about it lead straight back to its state.
            let slot = self.free_slot();
            {
                // Stuck? `cargo xtask hint lab7`
                todo!(
                    "step 12: add the client to epoll (EPOLLIN, token = its slot); on error drop it and go on"
                );
            }
            narrate_if!(
                self.narrating,
                "epoll_ctl(ADD, fd {fd}, EPOLLIN, token {slot})"
            );

            self.slots[slot] = Some(Client {
                socket,
                peer,
                unsent: Vec::new(),
                sent_from: 0,
                peer_finished: false,
                interest: EpollFlags::EPOLLIN,
                last_heard: self.now,
            });
            self.open_clients += 1;
            let _ = writeln!(
                self.log,
                "client {peer} connected ({} open)",
                self.open_clients
            );
        }
    }

    /// A free slot index: a recycled one, or a new one at the end.
    fn free_slot(&mut self) -> usize {
        match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        }
    }

    /// Out of file descriptors (EMFILE): the caller stays queued and the listener stays
    /// "readable", so level-triggered epoll would wake us for it again and again. Stop
    /// watching the listener until a client leaves and frees a descriptor.
    fn pause_accepting(&mut self, err: &io::Error) {
        eprintln!(
            "lab7: accept() failed: {}; not accepting until a client leaves",
            explain(err)
        );
        let _ = self.epoll.delete(&self.listener);
        self.accepting = false;
    }

    /// Serves one ready client, then closes it if it is finished or broken.
    fn serve_client(&mut self, slot: usize, ready: EpollFlags) {
        let Some(Some(client)) = self.slots.get_mut(slot) else {
            return; // an event for a slot that is already empty
        };
        // A sign of life, from which --idle-timeout counts: bytes or a FIN from the client
        // (EPOLLIN), or room for the echo it is owed (it is reading). Being writable with
        // nothing owed says nothing about the client.
        if ready.contains(EpollFlags::EPOLLIN) || client.unsent_len() > 0 {
            client.last_heard = self.now;
        }
        let outcome = client
            .exchange(ready, &mut self.read_buffer, self.narrating)
            .and_then(|next| match next {
                Next::KeepGoing => client
                    .update_interest(&self.epoll, slot, self.max_buffer, self.narrating)
                    .map(|()| Next::KeepGoing),
                Next::Finished => Ok(Next::Finished),
            });
        let peer = client.peer;
        match outcome {
            Ok(Next::KeepGoing) => {}
            Ok(Next::Finished) => {
                self.close(slot);
                let _ = writeln!(
                    self.log,
                    "client {peer} finished ({} open)",
                    self.open_clients
                );
            }
            // One client's failure is that client's problem: report it, drop it, go on.
            Err(failure) => {
                eprintln!("lab7: client {peer}: {failure}; dropping it");
                self.close(slot);
            }
        }
    }
}

impl Client {
    /// Echo bytes still owed to this client.
    fn unsent_len(&self) -> usize {
        self.unsent.len() - self.sent_from
    }

    /// Appends bytes the kernel would not take yet, after the ones already waiting.
    fn queue(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.sent_from > 0 {
            // Slide the still-unsent tail to the front instead of growing forever.
            self.unsent.drain(..self.sent_from);
            self.sent_from = 0;
        }
        self.unsent.extend_from_slice(bytes);
    }

    /// Records that `count` unsent bytes went out.
    fn mark_sent(&mut self, count: usize) {
        self.sent_from += count;
        if self.sent_from == self.unsent.len() {
            self.unsent.clear(); // keeps the capacity for next time
            self.sent_from = 0;
        }
    }

    /// Steps 13 to 16: does what `ready` allows, never waiting for anything.
    fn exchange(
        &mut self,
        ready: EpollFlags,
        read_buffer: &mut [u8],
        narrating: bool,
    ) -> Result<Next, Failure> {
        let fd = self.socket.as_raw_fd();

        // Step 13: EPOLLERR and EPOLLHUP come even though we never ask for them: the
        // connection is broken (usually the client reset it). SO_ERROR says why.
        if ready.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
            let why = match self.socket.take_error() {
                Ok(Some(err)) => explain(&err),
                _ => String::from("the connection hung up"),
            };
            return Err(Failure::new(why));
        }

        // Step 14: writable, and echo bytes are owed: send() as many as the kernel takes.
        // It may take only some (a partial write) or none (EAGAIN): the rest stay queued
        // and epoll tells us when there is room again. We send the OLDEST bytes first.
        if ready.contains(EpollFlags::EPOLLOUT) && self.unsent_len() > 0 {
            let sent: usize = {
                // Stuck? `cargo xtask hint lab7`
                todo!("step 14: send the queued bytes `unsent[sent_from..]`; EAGAIN means 0 sent");
            };
            narrate_if!(
                narrating,
                "send(fd {fd}, {} queued bytes) -> {sent}",
                self.unsent_len()
            );
            self.mark_sent(sent);
        }

        // Step 15: readable: ONE recv() into the shared buffer. If more is waiting, epoll
        // (level-triggered) reports the socket again next round, after the others had
        // their turn. recv() returning 0 is the client's FIN: it has finished sending.
        if ready.contains(EpollFlags::EPOLLIN) {
            let received: usize = {
                // Stuck? `cargo xtask hint lab7`
                todo!("step 15: recv() into `read_buffer`; EAGAIN means nothing after all");
            };
            narrate_if!(narrating, "recv(fd {fd}) -> {received} bytes");
            if received == 0 {
                self.peer_finished = true;
            } else {
                // Step 16: echo. If nothing is queued, send() straight from the shared
                // buffer (the usual case: no copy at all). Whatever the kernel does not
                // take joins the queue; if older bytes are queued, the new ones go
                // behind them, or the client would get its bytes out of order.
                let echoed_now: usize = {
                    // Stuck? `cargo xtask hint lab7`
                    todo!(
                        "step 16: send what you can of `read_buffer[..received]` (only if nothing is queued)"
                    );
                };
                narrate_if!(narrating, "send(fd {fd}, {received} bytes) -> {echoed_now}");
                self.queue(&read_buffer[echoed_now..received]);
            }
        }

        if self.peer_finished && self.unsent_len() == 0 {
            return Ok(Next::Finished);
        }
        Ok(Next::KeepGoing)
    }

    /// Step 17: tell epoll exactly what this client needs now, if that changed.
    fn update_interest(
        &mut self,
        epoll: &Epoll,
        slot: usize,
        max_buffer: usize,
        narrating: bool,
    ) -> Result<(), Failure> {
        // Step 17: EPOLLIN while the client has not finished sending AND its unsent echo
        // is under the bound (back-pressure: otherwise its bytes wait in the kernel and TCP
        // slows it down). EPOLLOUT only while bytes are unsent: a socket is writable
        // nearly always, so watching it otherwise would wake us endlessly for nothing.
        let wanted: EpollFlags = {
            // Stuck? `cargo xtask hint lab7`
            todo!("step 17: compute the interest: EPOLLIN and/or EPOLLOUT, as explained above");
        };
        if wanted != self.interest {
            {
                // Stuck? `cargo xtask hint lab7`
                todo!("step 17: epoll_ctl(MOD) the client's interest to `wanted` (same token)");
            }
            narrate_if!(
                narrating,
                "epoll_ctl(MOD, fd {}, {}): {} bytes unsent",
                self.socket.as_raw_fd(),
                flag_names(wanted),
                self.unsent_len()
            );
            self.interest = wanted;
        }
        Ok(())
    }
}

/// The end of a client: closing one (step 18), and closing the silent ones on time
/// (steps 19 and 20).
impl EventLoop {
    /// Step 18: forget a client and free its slot.
    fn close(&mut self, slot: usize) {
        let Some(client) = self.slots[slot].take() else {
            return;
        };
        let fd = client.socket.as_raw_fd();
        // Step 18: epoll_ctl(DEL) first, then close(). (Closing alone would also remove it,
        // unless the descriptor had been duplicated: saying so is clearer and safer.)
        {
            // Stuck? `cargo xtask hint lab7`
            todo!("step 18: remove the client from epoll, then close its socket");
        }
        narrate_if!(self.narrating, "epoll_ctl(DEL, fd {fd}); close(fd {fd})");
        self.free_slots.push(slot);
        self.open_clients -= 1;

        // A descriptor is free again: if we had paused accepting, resume.
        if !self.accepting
            && self
                .epoll
                .add(
                    &self.listener,
                    EpollEvent::new(EpollFlags::EPOLLIN, LISTENER),
                )
                .is_ok()
        {
            self.accepting = true;
        }
    }

    /// How long step 9 may sleep: for ever, unless clients are connected and
    /// `--idle-timeout` is set; then until the next sweep for silent clients.
    fn sleep_limit(&self) -> EpollTimeout {
        if self.idle_timeout.is_none() || self.open_clients == 0 {
            return EpollTimeout::NONE; // nobody can fall silent: sleep for ever
        }
        // Step 19: epoll_wait's timeout is the event loop's only clock: the loop must
        // wake at the next sweep even if no socket has anything to say.
        // Stuck? `cargo xtask hint lab7`
        todo!(
            "step 19: the time left until `self.next_sweep`, as an epoll timeout rounded up to whole ms"
        );
    }

    /// Step 20: closes every client that has been silent for `limit` or longer.
    ///
    /// One pass over the slots every `limit / 4`, not one timer per client: cheap at
    /// 10,000 clients, and no client is closed early (at most a quarter late).
    fn close_silent_clients(&mut self, limit: Duration) {
        self.next_sweep = self.now + limit / SWEEPS_PER_TIMEOUT;
        for slot in 0..self.slots.len() {
            let Some(client) = &self.slots[slot] else {
                continue; // a free slot
            };
            let peer = client.peer;
            let silent_for = self.now.saturating_duration_since(client.last_heard);
            {
                // Stuck? `cargo xtask hint lab7`
                todo!("step 20: close the client if it has been silent for `limit` or longer");
            }
        }
    }
}

/// EAGAIN ("nothing now, try later") and EINTR (a signal interrupted the call) are not
/// failures on a non-blocking socket: the next epoll round retries.
fn try_later(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// `EPOLLIN|EPOLLOUT`, for narration.
fn flag_names(flags: EpollFlags) -> String {
    let names: [(EpollFlags, &str); 5] = [
        (EpollFlags::EPOLLIN, "EPOLLIN"),
        (EpollFlags::EPOLLOUT, "EPOLLOUT"),
        (EpollFlags::EPOLLRDHUP, "EPOLLRDHUP"),
        (EpollFlags::EPOLLHUP, "EPOLLHUP"),
        (EpollFlags::EPOLLERR, "EPOLLERR"),
    ];
    let found: Vec<&str> = names
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    if found.is_empty() {
        String::from("(none)")
    } else {
        found.join("|")
    }
}
