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

//- given: step 1: raise the descriptor limit
//- call: `setrlimit(RLIMIT_NOFILE)`
//- why: room for 10,000 sockets
//- end
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
        //- answer: step 2: create a TCP socket whose domain matches `address`
        //- hint: Ask the kernel for a new, unnamed endpoint. Its family (IPv4 or IPv6) must be the
        //- hint: one of `address`, and it must be a reliable byte stream: TCP.
        //- more: socket2's `Socket::new` takes a `Domain`, a `Type` and an optional `Protocol`;
        //- more: `Domain::for_address` picks the family from a `SocketAddr`; look at `Type::STREAM`
        //- more: and `Protocol::TCP`. Add `.context(...)` naming the call, as the other steps do.
        //- call: `socket()`
        //- why: as in lab 1
        Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .context("socket()")?
        //- end
    };
    narrate!("socket() -> fd {}", listener.as_raw_fd());

    // Step 3: SO_REUSEADDR, so a restarted server can bind the port again at once.
    {
        //- answer: step 3: set SO_REUSEADDR on the listener
        //- hint: Turn on the socket option that lets a restarted server bind its port again at
        //- hint: once, while connections of its previous run linger in TIME_WAIT. It only helps if
        //- hint: it is set before bind().
        //- more: socket2's `Socket::set_reuse_address` (setsockopt SO_REUSEADDR, see `man 7
        //- more: socket`); name the call in errors with `.context(...)`.
        //- call: `setsockopt(SO_REUSEADDR)`
        //- why: as in lab 1
        listener
            .set_reuse_address(true)
            .context("setsockopt(SO_REUSEADDR)")?;
        //- end
    }
    narrate!("setsockopt(SO_REUSEADDR, 1)");

    // Step 4: O_NONBLOCK on the listener. We accept() in a loop until the queue is empty;
    // a blocking accept() would then put the ONLY thread to sleep waiting for a new
    // caller, while every connected client waits for its echo.
    {
        //- answer: step 4: make the listener non-blocking
        //- hint: One thread serves everyone, so no call on the listener may ever block: switch it
        //- hint: to non-blocking mode, where accept fails with EAGAIN when nobody is waiting.
        //- more: socket2's `Socket::set_nonblocking` (fcntl F_SETFL O_NONBLOCK); name the call with
        //- more: `.context(...)`.
        //- call: `fcntl(O_NONBLOCK)` on the listener
        //- why: the accept loop ends on `EAGAIN` instead of sleeping in `accept()`
        listener
            .set_nonblocking(true)
            .context("fcntl(O_NONBLOCK)")?;
        //- end
    }
    narrate!("fcntl(fd {}, F_SETFL, O_NONBLOCK)", listener.as_raw_fd());

    // Step 5: bind() names the socket with the address clients will dial.
    {
        //- answer: step 5: bind the listener to `address`
        //- hint: Give the socket its name: the address and port that clients will dial. Until it is
        //- hint: bound, nobody can find it.
        //- more: socket2's `Socket::bind` wants a `&SockAddr`; a `std::net::SocketAddr` converts
        //- more: into one with `Into` (`.into()`). See `man 2 bind`; add `.context(...)` naming the
        //- more: address.
        //- call: `bind()`
        //- why: as in lab 1
        listener
            .bind(&address.into())
            .context(format!("bind({address})"))?;
        //- end
    }
    narrate!("bind({address})");

    // Step 6: listen(). While we are busy with other clients, the kernel completes
    // handshakes on its own and queues up to `backlog` of them; 10,000 callers arriving
    // together need a long queue, or the late ones see their SYNs dropped and retried.
    {
        //- answer: step 6: start listening with the given backlog
        //- hint: Make the socket passive: from now on the kernel completes handshakes for you and
        //- hint: queues the finished ones, at most as many as the backlog you were given.
        //- more: socket2's `Socket::listen`; its one argument is the backlog, the number from the
        //- more: command line. See `man 2 listen`.
        //- call: `listen(backlog)`
        //- why: as in lab 1, with a deep backlog
        listener.listen(backlog).context("listen()")?;
        //- end
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
        //- answer: step 7: create an epoll instance (close-on-exec)
        //- hint: Create the kernel object that watches many sockets at once and tells you which are
        //- hint: ready. Mark it close-on-exec, so a program you start never inherits it.
        //- more: nix's `sys::epoll::Epoll::new` with `EpollCreateFlags::EPOLL_CLOEXEC`
        //- more: (epoll_create1, `man 7 epoll`); its `nix::Result` takes `.context(...)` like
        //- more: std's.
        //- call: `epoll_create1()`
        //- why: the kernel object that keeps the interest list
        Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1()")?
        //- end
    };
    narrate!("epoll_create1() -> fd {}", epoll.0.as_raw_fd());

    // Step 8: watch the listener for EPOLLIN: for a listening socket, "readable" means
    // "a finished handshake is waiting to be accepted". Its token is LISTENER.
    {
        //- answer: step 8: add the listener to the epoll interest list (EPOLLIN, token LISTENER)
        //- hint: Tell epoll to watch the listener for readability (a caller waiting), and to label
        //- hint: its events with the LISTENER token so you can recognise them later.
        //- more: nix's `Epoll::add` takes the fd and an `EpollEvent`, made by `EpollEvent::new`
        //- more: from `EpollFlags::EPOLLIN` and a `u64` token; name the call with
        //- more: `.context(...)`, as for std's errors.
        //- call: `epoll_ctl(ADD, listener, EPOLLIN)`
        //- why: wake up when a caller is queued
        epoll
            .add(listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))
            .context("epoll_ctl(ADD, listener)")?;
        //- end
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
                //- answer: step 9: wait up to `timeout` (for ever, normally) for ready sockets; on EINTR simply wait again
                //- hint: Sleep until at least one watched socket is ready, for at most `timeout`
                //- hint: (which is "no limit" unless --idle-timeout is given); the events are
                //- hint: written into the events array and the value is how many. A signal waking
                //- hint: you early (EINTR) is not an error: wait again.
                //- more: nix's `Epoll::wait` takes a `&mut [EpollEvent]` and an `EpollTimeout`
                //- more: (`timeout` already is one); match `Errno::EINTR` to `continue`;
                //- more: other errors take `.context(...)` like std's.
                //- call: `epoll_wait(-1)`
                //- why: the only place the thread sleeps; `EINTR`: wait again
                match self.epoll.wait(&mut events, timeout) {
                    Ok(count) => count,
                    // A signal interrupted the sleep (even `kill -STOP` then `-CONT` does
                    // this to epoll_wait). Nothing is wrong: go back to sleep.
                    Err(Errno::EINTR) => continue,
                    Err(errno) => return Err(errno).context("epoll_wait()"),
                }
                //- end
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
                //- answer: step 10: accept the next client (non-blocking, close-on-exec); return on EAGAIN
                //- hint: Accept the next waiting client, and make its socket non-blocking and
                //- hint: close-on-exec in the same call. When nobody is left (EAGAIN) return to the
                //- hint: loop; retry on EINTR; when out of file descriptors, pause accepting; any
                //- hint: other error is one caller's problem: report it and return.
                //- more: socket2's `Socket::accept4` with the flags `libc::SOCK_NONBLOCK` and
                //- more: `libc::SOCK_CLOEXEC` combined with `|`; match `io::ErrorKind::WouldBlock`
                //- more: and `Interrupted`, and `raw_os_error` against
                //- more: `libc::EMFILE`/`libc::ENFILE` (then `self.pause_accepting`).
                //- call: `accept4(SOCK_NONBLOCK)` until `EAGAIN`
                //- why: every queued caller, each socket non-blocking from birth (on Linux,
                //- why: `accept()` does not copy `O_NONBLOCK` from the listener)
                match self
                    .listener
                    .accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                {
                    Ok(pair) => pair,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                        self.pause_accepting(&err);
                        return;
                    }
                    // E.g. ECONNABORTED: that caller hung up while it waited in the queue.
                    Err(err) => {
                        eprintln!("lab7: accept() failed: {}", explain(&err));
                        return;
                    }
                }
                //- end
            };
            let fd = socket.as_raw_fd();
            let peer = peer
                .as_socket()
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            narrate_if!(self.narrating, "accept4() -> fd {fd} from {peer}");

            //- given: step 11: turn off Nagle's algorithm on the client socket
            //- call: `setsockopt(TCP_NODELAY)`
            //- why: send small echoes at once
            //- end
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
                //- answer: step 11: turn on TCP keepalive: probe after `self.keepalive` of silence, every KEEPALIVE_INTERVAL, KEEPALIVE_PROBES times
                //- hint: Ask the kernel to check on this client when it has been silent: the first
                //- hint: probe after the --keepalive time (the kernel's own default is two hours),
                //- hint: then probes at the given interval, and give up after the given count. If
                //- hint: the option cannot be set, say so on stderr and serve the client anyway.
                //- more: socket2's `TcpKeepalive::new` with `with_time`, `with_interval` and
                //- more: `with_retries`, then `Socket::set_tcp_keepalive` (SO_KEEPALIVE, then
                //- more: TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT: `man 7 tcp`); `explain` words
                //- more: the error.
                //- call: `setsockopt(SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT)`
                //- why: the kernel finds peers that vanished without a FIN
                let keepalive = TcpKeepalive::new()
                    .with_time(self.keepalive)
                    .with_interval(KEEPALIVE_INTERVAL)
                    .with_retries(KEEPALIVE_PROBES);
                if let Err(err) = socket.set_tcp_keepalive(&keepalive) {
                    eprintln!(
                        "lab7: client {peer}: setsockopt(SO_KEEPALIVE): {}",
                        explain(&err)
                    );
                }
                //- end
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
                //- answer: step 12: add the client to epoll (EPOLLIN, token = its slot); on error drop it and go on
                //- hint: Ask epoll to watch the new client for readability, labelled with the
                //- hint: client's slot number as its token. If that fails, report it, give the slot
                //- hint: back and drop the client.
                //- more: nix's `Epoll::add` with `EpollEvent::new`, `EpollFlags::EPOLLIN` and the
                //- more: slot as `u64`; `.context(...)` names the call in the `Failure` you print;
                //- more: `self.free_slots` takes the slot back; `continue`.
                //- call: `epoll_ctl(ADD, client, EPOLLIN)`
                //- why: watch the new client, its slot index as the token
                if let Err(failure) = self
                    .epoll
                    .add(&socket, EpollEvent::new(EpollFlags::EPOLLIN, slot as u64))
                    .context("epoll_ctl(ADD)")
                {
                    eprintln!("lab7: client {peer}: {failure}");
                    self.free_slots.push(slot);
                    continue;
                }
                //- end
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

        //- given: step 13: drop a broken connection
        //- call: `EPOLLERR`/`EPOLLHUP`, `SO_ERROR`
        //- why: a broken connection: drop it
        //- end
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
                //- answer: step 14: send the queued bytes `unsent[sent_from..]`; EAGAIN means 0 sent
                //- hint: Send as much of the queued, not yet sent bytes as the kernel takes now,
                //- hint: without ever getting SIGPIPE from a vanished peer. If it would block, that
                //- hint: is 0 bytes sent for now.
                //- more: socket2's `Socket::send_with_flags` with the slice of `self.unsent` from
                //- more: `self.sent_from` on and `libc::MSG_NOSIGNAL`; the helper `try_later`
                //- more: recognises EAGAIN and EINTR; other errors: `return Err(err).context(...)`.
                //- call: `send()` from the queue on `EPOLLOUT`
                //- why: oldest bytes first; keep what did not fit
                match self
                    .socket
                    .send_with_flags(&self.unsent[self.sent_from..], libc::MSG_NOSIGNAL)
                {
                    Ok(count) => count,
                    Err(err) if try_later(&err) => 0,
                    Err(err) => return Err(err).context("send()"),
                }
                //- end
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
                //- answer: step 15: recv() into `read_buffer`; EAGAIN means nothing after all
                //- hint: Receive what the client sent into the read buffer. If nothing is there
                //- hint: after all, there is nothing to do now: keep going; 0 bytes means the
                //- hint: client finished sending.
                //- more: `std::io::Read::read` through a `&Socket` borrow of `self.socket`; on
                //- more: `try_later(&err)` return `Ok(Next::KeepGoing)`; other errors: `return
                //- more: Err(err).context(...)`.
                //- call: `recv()` on `EPOLLIN`
                //- why: one read into the one shared buffer; 0 is the FIN
                match (&self.socket).read(read_buffer) {
                    Ok(count) => count,
                    Err(err) if try_later(&err) => return Ok(Next::KeepGoing),
                    Err(err) => return Err(err).context("recv()"),
                }
                //- end
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
                    //- answer: step 16: send what you can of `read_buffer[..received]` (only if nothing is queued)
                    //- hint: Echo at once what you can, but only if nothing is already queued:
                    //- hint: sending new bytes ahead of queued ones would reorder the stream. The
                    //- hint: value is how many bytes went out (0 when something was queued or the
                    //- hint: send would block).
                    //- more: `self.unsent_len`; socket2's `Socket::send_with_flags` with the
                    //- more: received slice and `libc::MSG_NOSIGNAL`; `try_later` for EAGAIN.
                    //- call: `send()` the new bytes, queue the rest
                    //- why: straight from the read buffer when nothing is queued
                    if self.unsent_len() == 0 {
                        match self
                            .socket
                            .send_with_flags(&read_buffer[..received], libc::MSG_NOSIGNAL)
                        {
                            Ok(count) => count,
                            Err(err) if try_later(&err) => 0,
                            Err(err) => return Err(err).context("send()"),
                        }
                    } else {
                        0
                    }
                    //- end
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
            //- answer: step 17: compute the interest: EPOLLIN and/or EPOLLOUT, as explained above
            //- hint: Decide what this client should be watched for: readable while it still sends
            //- hint: and the queue has room (back-pressure), writable only while bytes are waiting
            //- hint: to go out. The value is the set of flags.
            //- more: Start from `EpollFlags::empty` and add `EpollFlags::EPOLLIN` and
            //- more: `EpollFlags::EPOLLOUT` with `|=`; the conditions use `self.peer_finished`,
            //- more: `self.unsent_len` and `max_buffer`.
            //- call: interest, then `epoll_ctl(MOD)`
            //- why: `EPOLLIN` under the bound, `EPOLLOUT` only while bytes are queued
            let mut wanted = EpollFlags::empty();
            if !self.peer_finished && self.unsent_len() < max_buffer {
                wanted |= EpollFlags::EPOLLIN;
            }
            if self.unsent_len() > 0 {
                wanted |= EpollFlags::EPOLLOUT;
            }
            wanted
            //- end
        };
        if wanted != self.interest {
            {
                //- answer: step 17: epoll_ctl(MOD) the client's interest to `wanted` (same token)
                //- hint: Change what epoll watches this client for to the new interest, keeping its
                //- hint: slot as the token.
                //- more: nix's `Epoll::modify` takes the fd and a `&mut EpollEvent` (made by
                //- more: `EpollEvent::new` from the flags and the slot as `u64`); name the call
                //- more: with `.context(...)` (epoll_ctl MOD), as for std's errors.
                epoll
                    .modify(&self.socket, &mut EpollEvent::new(wanted, slot as u64))
                    .context("epoll_ctl(MOD)")?;
                //- end
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
            //- answer: step 18: remove the client from epoll, then close its socket
            //- hint: Stop watching the client first (its error, if any, does not matter now), then
            //- hint: close its socket by letting the client go.
            //- more: nix's `Epoll::delete` with the client's socket; dropping the `Client`
            //- more: (`std::mem::drop`) closes its fd.
            //- call: `epoll_ctl(DEL)`, `close()`
            //- why: forget the client, free its slot
            let _ = self.epoll.delete(&client.socket);
            drop(client);
            //- end
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
        //- answer: step 19: the time left until `self.next_sweep`, as an epoll timeout rounded up to whole ms
        //- hint: Work out how long until the next sweep is due (none left if it is already
        //- hint: past). epoll_wait counts in whole milliseconds: round up, or you would wake a
        //- hint: fraction of a millisecond early and spin until the moment comes.
        //- more: `Instant::saturating_duration_since` (from the current instant),
        //- more: `Duration::as_micros` and `u128::div_ceil`; `EpollTimeout::try_from` takes a
        //- more: `u128` of milliseconds (fall back to `EpollTimeout::MAX` if it is too big).
        //- call: `epoll_wait(timeout)` until the next sweep
        //- why: epoll_wait's timeout is the loop's timer: wake up even when nobody talks
        let left = self.next_sweep.saturating_duration_since(Instant::now());
        EpollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(EpollTimeout::MAX)
        //- end
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
                //- answer: step 20: close the client if it has been silent for `limit` or longer
                //- hint: A client that has given no sign of life for the whole limit is closed, and
                //- hint: the log says why; the others stay. Closing is what the client sees: its
                //- hint: next read returns end-of-file.
                //- more: Compare `silent_for` with `limit`; the close method of step 18 forgets
                //- more: it; `writeln!(self.log, ...)` like the other connection lines, with
                //- more: `self.open_clients`.
                //- call: `close()` the clients silent for `--idle-timeout`
                //- why: an application timeout: a client that stopped talking loses its slot
                if silent_for >= limit {
                    self.close(slot);
                    let _ = writeln!(
                        self.log,
                        "client {peer} silent for {} s: closed ({} open)",
                        silent_for.as_secs(),
                        self.open_clients
                    );
                }
                //- end
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
