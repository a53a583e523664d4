//! A small server framework in the spirit of the notes' SocketServer module.
//!
//! Whoever writes a service only writes a [`Handler`]: one `handle` method that gets the
//! connection as a buffered reader and a writer, as if it were two open files. The
//! framework owns the sockets and the threads, and every step it takes is a call you can
//! see below:
//!
//! ```text
//! Server::bind(addr)     socket() -> setsockopt(SO_REUSEADDR) -> bind() -> listen()
//! .serve_forever(h)      sigaction(SIGINT, SIGTERM)
//!                        loop { poll(listener, 100 ms) -> accept() -> room for one more?
//!                               no:  send("busy: ...") -> close()
//!                               yes: setsockopt(SO_RCVTIMEO) -> thread::spawn(h.handle()) }
//!                        after a signal: close(listener) -> wait for the clients -> return
//! ```
//!
//! Why a thread per client: lab 3 serves one caller at a time, so one slow caller puts
//! everybody else on hold. Here the main thread only answers the phone (accept) and
//! hands each call to a thread of its own, then goes straight back to the phone.
//!
//! Why a cap: every thread costs memory (its stack) and the kernel limits how many a
//! process may have. Past `max_clients` live connections a newcomer hears one `busy:`
//! line and is hung up on, and the clients already connected keep their service.
//!
//! Why poll() and read timeouts: a thread asleep in accept() or recv() never notices
//! that Ctrl+C was pressed. Waking up every [`TICK`] to look at the stop flag lets the
//! main thread stop accepting at once and lets each client's thread hang up between two
//! requests, while a request that has started arriving is always answered.

use std::ffi::c_int;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use shared::errors::explain;
use shared::sockaddr::describe;
use shared::{Context, Failure, narrate};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How often (in milliseconds) sleeping threads wake up to look at the stop flag.
const TICK_MS: u16 = 100;
/// The same tick as a [`Duration`], for socket timeouts.
pub const TICK: Duration = Duration::from_millis(TICK_MS as u64);
/// How many finished handshakes the kernel may queue while the main thread is busy.
/// Generous, so that a crowd arriving at once waits in line instead of being dropped.
const BACKLOG: i32 = 128;

/// What a service does with one client: the only code a framework user writes.
///
/// The framework calls `handle` on a thread of its own for every client, so it may
/// block as long as it likes without holding anybody else up. `reader` is buffered, so
/// `read_line`/`read_until` are cheap; `writer` sends straight away (use `write_all`).
/// Return `Ok(())` when `reader` reports end of stream: either the client hung up, or
/// the server is shutting down and this client is between two requests.
pub trait Handler: Send + Sync + 'static {
    /// Serves one client until it is done.
    fn handle(&self, reader: &mut dyn BufRead, writer: &mut dyn Write) -> io::Result<()>;
}

/// A listening socket plus the rules for serving it.
pub struct Server {
    /// The listening socket (steps 1 to 4).
    listener: Socket,
    /// The address it is bound to, for the log.
    address: SocketAddr,
    /// How many clients may be served at once; one more hears `busy:`.
    max_clients: usize,
    /// How long the connected clients get to finish after a stop signal.
    grace: Duration,
}

impl Server {
    /// Steps 1 to 4: a socket that listens on `address`.
    pub fn bind(address: SocketAddr) -> Result<Server, Failure> {
        // Step 1: socket() asks the kernel for a new TCP endpoint whose domain (IPv4 or
        // IPv6) matches the address we will bind.
        let listener: Socket = {
            //- answer: step 1: create a TCP socket whose domain matches `address`
            //- hint: Ask the kernel for a new, unnamed endpoint. Its family (IPv4 or IPv6) must be
            //- hint: the one of `address`, and it must be a reliable byte stream: TCP.
            //- more: socket2's `Socket::new` takes a `Domain`, a `Type` and an optional `Protocol`;
            //- more: `Domain::for_address` picks the family from a `SocketAddr`; look at
            //- more: `Type::STREAM` and `Protocol::TCP`. Add `.context(...)` naming the call, as
            //- more: the other steps do.
            //- call: `socket(AF_INET or AF_INET6, SOCK_STREAM, IPPROTO_TCP)`
            //- why: a new endpoint; the family must match the address you bind
            Socket::new(
                Domain::for_address(address),
                Type::STREAM,
                Some(Protocol::TCP),
            )
            .context("socket()")?
            //- end
        };
        narrate!("socket() -> fd {}", listener.as_raw_fd());

        // Step 2: SO_REUSEADDR, so that a restarted server can bind the port at once
        // even while connections of its previous run linger in TIME_WAIT.
        {
            //- answer: step 2: set SO_REUSEADDR on the listener
            //- hint: Turn on the socket option that lets a restarted server bind its port again at
            //- hint: once, while connections of its previous run linger in TIME_WAIT. It only helps
            //- hint: if it is set before bind().
            //- more: socket2's `Socket::set_reuse_address` (setsockopt SO_REUSEADDR, see `man 7
            //- more: socket`); name the call in errors with `.context(...)`.
            //- call: `setsockopt(SO_REUSEADDR)`
            //- why: a restarted server can bind the port at once, even with old connections in
            //- why: TIME_WAIT
            listener
                .set_reuse_address(true)
                .context("setsockopt(SO_REUSEADDR)")?;
            //- end
        }
        narrate!("setsockopt(SO_REUSEADDR, 1)");

        // Step 3: bind() names the socket: this is the number the callers dial.
        {
            //- answer: step 3: bind the listener to `address`
            //- hint: Give the socket its name: the address and port that clients will dial. Until
            //- hint: it is bound, nobody can find it.
            //- more: socket2's `Socket::bind` wants a `&SockAddr`; a `std::net::SocketAddr`
            //- more: converts into one with `Into` (`.into()`). See `man 2 bind`; add
            //- more: `.context(...)` naming the address.
            //- call: `bind(address)`
            //- why: the address callers dial
            listener
                .bind(&address.into())
                .context(format!("bind({address})"))?;
            //- end
        }
        narrate!("bind({address})");

        // Step 4: listen() makes it a passive socket. From now on the kernel completes
        // handshakes by itself and queues up to BACKLOG callers until we accept() them.
        {
            //- answer: step 4: start listening with BACKLOG
            //- hint: Make the socket passive, with the framework's fixed backlog: the kernel queues
            //- hint: finished handshakes until you accept them.
            //- more: socket2's `Socket::listen` with the constant `BACKLOG`; name the call with
            //- more: `.context(...)`.
            //- call: `listen(128)`
            //- why: passive socket; the kernel queues finished handshakes until we accept them,
            //- why: so a crowd arriving at once waits instead of being dropped
            listener.listen(BACKLOG).context("listen()")?;
            //- end
        }
        narrate!("listen(backlog={BACKLOG})");

        // With port 0 the kernel picked a port: ask which, so we can print it.
        let address = listener
            .local_addr()
            .ok()
            .and_then(|name| name.as_socket())
            .unwrap_or(address);
        Ok(Server {
            listener,
            address,
            max_clients: 64,
            grace: Duration::from_secs(3),
        })
    }

    /// At most `max_clients` connections are served at the same time.
    pub fn max_clients(mut self, max_clients: usize) -> Server {
        self.max_clients = max_clients.max(1);
        self
    }

    /// After SIGINT/SIGTERM, connected clients get up to `grace` to finish.
    pub fn grace(mut self, grace: Duration) -> Server {
        self.grace = grace;
        self
    }

    /// Steps 5 to 14: serve every client on its own thread until SIGINT or SIGTERM,
    /// then stop accepting, give the connected clients the grace period, and return.
    pub fn serve_forever(self, handler: impl Handler) -> Result<(), Failure> {
        let Server {
            listener,
            address,
            max_clients,
            grace,
        } = self;
        catch_stop_signals()?;
        println!(
            "listening on {address} (up to {max_clients} clients at once; \
             Ctrl+C stops, giving clients {} ms to finish)",
            grace.as_millis()
        );
        let handler = Arc::new(handler);
        let clients = Arc::new(LiveClients::new(max_clients));

        let signal = loop {
            if let Some(signal) = stop_requested() {
                break signal;
            }
            if !caller_waiting(&listener)? {
                continue;
            }

            // Step 7 (in accept_caller): take the caller off the queue.
            let Some((connection, peer)) = accept_caller(&listener) else {
                continue;
            };

            // Step 8 (in LiveClients::try_enter): take one of the max_clients places, or
            // learn that they are all taken. A caller without a place is turned away
            // (step 9, in refuse); the others get a thread of their own (steps 10 and 11,
            // in hand_over).
            match clients.try_enter() {
                Err(live) => refuse(connection, &peer, live),
                Ok(place) => {
                    println!("client {peer} connected ({} live)", place.live_on_entry);
                    hand_over(connection, peer, place, &handler);
                }
            }
        };

        // Step 13 (in stop_accepting): close the listener right away.
        stop_accepting(listener);
        println!(
            "got {signal}: no longer accepting; waiting up to {} ms for {} connected client(s)",
            grace.as_millis(),
            clients.live()
        );

        // Step 14 (in LiveClients::wait_until_empty): wait until every client's thread
        // has finished, but no longer than the grace period.
        let still_connected = clients.wait_until_empty(grace);
        if still_connected == 0 {
            println!("all clients finished; bye");
        } else {
            println!("grace period over: hanging up on {still_connected} client(s); bye");
        }
        Ok(())
    }
}

/// The number of the stop signal we caught (SIGINT or SIGTERM), or 0 while none came.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Runs inside the signal: it may interrupt any thread at any instruction, so it only
/// stores a number. Everything else happens in the threads that look at the flag.
extern "C" fn remember_stop_signal(signal: c_int) {
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

/// The stop signal caught so far, if any.
pub fn stop_requested() -> Option<Signal> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        number => Signal::try_from(number).ok(),
    }
}

/// Step 5: catch SIGINT (Ctrl+C) and SIGTERM (`kill`) instead of dying on the spot.
fn catch_stop_signals() -> Result<(), Failure> {
    // SA_RESTART: a blocking call that the signal interrupts starts again by itself
    // (poll() and timed socket reads still wake up, which is what we want).
    let action = SigAction::new(
        SigHandler::Handler(remember_stop_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        {
            //- answer: step 5: install `action` for `signal` with sigaction()
            //- hint: Tell the kernel to run the prepared handler when this signal arrives, instead
            //- hint: of killing the process. This is an unsafe call: say in a comment why it is
            //- hint: safe here (the handler only stores into an atomic). Turn an error into a
            //- hint: Failure naming the signal.
            //- more: nix's `sys::signal::sigaction` takes the `Signal` and a `&SigAction` and
            //- more: returns `nix::Result<SigAction>`, whose error takes `.context(...)` like std's
            //- more: (name the signal in it).
            //- call: `sigaction(SIGINT)`, `sigaction(SIGTERM)`
            //- why: do not die on the spot: note the signal in a flag and stop politely.
            //- why: `SA_RESTART` restarts calls a signal interrupts (except `poll()`, which
            //- why: wakes up: that is what we want)
            // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
            unsafe { sigaction(signal, &action) }.context(format!("sigaction({signal})"))?;
            //- end
        }
        narrate!("sigaction({signal}) -> note it, finish politely");
    }
    Ok(())
}

/// Step 6: sleep until a caller is waiting on `listener`, or until TICK has passed.
fn caller_waiting(listener: &Socket) -> Result<bool, Failure> {
    // poll() sleeps without using the CPU, like a blocking accept(), but it also wakes
    // up when the tick is over (or a signal arrives), so we get to look at the stop flag.
    let ready: bool = {
        //- answer: step 6: poll() the listener for POLLIN with a TICK_MS timeout
        //- hint: Sleep until a caller is waiting on the listener (it becomes readable) or until one
        //- hint: tick has passed, so the loop can look at the stop flag. Being woken by a signal
        //- hint: (EINTR) just means "nobody yet". The block's value is: is someone waiting?
        //- more: nix's `poll::poll` takes a `&mut [PollFd]` and a `PollTimeout`; build the entry
        //- more: with `PollFd::new`, the listener's `as_fd()` and `PollFlags::POLLIN`;
        //- more: `PollTimeout::from` a number of milliseconds (`TICK_MS`); match `Errno::EINTR`;
        //- more: other errors take `.context(...)` like std's.
        //- call: `poll(listener, POLLIN, 100 ms)`
        //- why: sleep until a caller is queued, but wake every tick to look at the stop flag;
        //- why: `EINTR` (a signal arrived) just means "look at the flag now"
        let mut watched = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut watched, PollTimeout::from(TICK_MS)) {
            Ok(ready_count) => ready_count > 0,
            Err(Errno::EINTR) => false,
            Err(errno) => return Err(errno).context("poll(listener)"),
        }
        //- end
    };
    if ready {
        narrate!("poll() -> the listener is readable: a caller is waiting");
    }
    Ok(ready)
}

/// Step 7: the caller poll() saw, with its address; None when accept() failed (it is
/// reported, and the main thread goes back to step 6).
fn accept_caller(listener: &Socket) -> Option<(Socket, String)> {
    // Step 7: accept() takes the next caller off the queue and returns a new socket for
    // that one conversation. poll() said one is waiting, so this does not block.
    let (connection, peer): (Socket, SockAddr) = {
        //- answer: step 7: accept the next client on `listener`
        //- hint: A caller is waiting: take its connection and address. If accepting fails,
        //- hint: report it and wait one tick before trying again, so that a lasting error
        //- hint: such as running out of file descriptors does not become a busy loop.
        //- more: socket2's `Socket::accept` returns `io::Result<(Socket, SockAddr)>`;
        //- more: `explain` words the error; `std::thread::sleep` with `TICK`; then `return None`.
        //- call: `accept()`
        //- why: take the caller off the queue: a new socket for this one conversation. A
        //- why: failed `accept()` is logged, and the loop goes on
        match listener.accept() {
            Ok(pair) => pair,
            // A caller that hung up while queued is its problem, not ours. Wait a
            // tick before trying again, so that a lasting error (out of file
            // descriptors: EMFILE) does not turn this loop into a busy spin.
            Err(err) => {
                eprintln!("lab6: accept() failed: {}", explain(&err));
                thread::sleep(TICK);
                return None;
            }
        }
        //- end
    };
    let peer = describe(&peer);
    narrate!("accept() -> fd {} from {peer}", connection.as_raw_fd());
    Some((connection, peer))
}

/// How many clients are being served right now, shared by all threads.
///
/// The count sits behind a Mutex because the main thread and every client thread change
/// it; the Condvar lets the main thread sleep until it drops (step 14).
struct LiveClients {
    /// The cap: how many clients may be live at once.
    max_clients: usize,
    /// How many are live now.
    count: Mutex<usize>,
    /// Notified whenever `count` goes down.
    changed: Condvar,
}

/// One of the `max_clients` places. Dropping it (when the client's thread ends, even by
/// a panic) gives the place back.
struct Place {
    /// The count this place belongs to, to give the place back.
    clients: Arc<LiveClients>,
    /// How many were live counting this one, for the log.
    live_on_entry: usize,
}

impl LiveClients {
    fn new(max_clients: usize) -> LiveClients {
        LiveClients {
            max_clients,
            count: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    /// The count, even if a client's thread panicked while holding the lock (a plain
    /// number cannot be left half-updated).
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> usize {
        *self.lock()
    }

    /// Step 8: one more client, if there is room; otherwise how many are live.
    fn try_enter(self: &Arc<Self>) -> Result<Place, usize> {
        let mut live = self.lock();
        {
            //- answer: step 8: refuse with Err(*live) when all max_clients places are taken; else count one more
            //- hint: With the lock held, compare the number of live clients with the cap. When
            //- hint: every place is taken, refuse with the current count as the error; otherwise
            //- hint: count one more client.
            //- more: `live` is a `MutexGuard<usize>`: dereference it (`*live`) to read or change
            //- more: the count; the cap is `self.max_clients`; return `Err` with the count to
            //- more: refuse.
            //- call: count one more client, or refuse
            //- why: under the `Mutex`: if `max_clients` are already live, refuse; otherwise
            //- why: count this one. The place is given back automatically when the client's
            //- why: thread drops it
            if *live >= self.max_clients {
                return Err(*live);
            }
            *live += 1;
            //- end
        }
        Ok(Place {
            clients: Arc::clone(self),
            live_on_entry: *live,
        })
    }
}

/// Step 9: tell a caller that all places are taken, and hang up.
fn refuse(mut connection: Socket, peer: &str, live: usize) {
    let message = format!("busy: {live} clients already connected, try again later\n");
    let sent: io::Result<()> = {
        //- answer: step 9: send `message` to the caller, then shut down our sending side
        //- hint: Send the whole message to the caller, then close your sending side so it sees
        //- hint: end-of-file at once. The block's value is the result of both, the second only if
        //- hint: the first worked.
        //- more: `std::io::Write::write_all` with the string's bytes (`str::as_bytes`), chained
        //- more: with `Result::and_then` to socket2's `Socket::shutdown` with `Shutdown::Write`.
        //- call: `send("busy: ...")`, `shutdown(SHUT_WR)`, `close()`
        //- why: tell the refused caller why, then hang up (first reading what it already sent,
        //- why: so the kernel closes normally instead of with a reset that could swallow our
        //- why: line)
        connection
            .write_all(message.as_bytes())
            .and_then(|()| connection.shutdown(Shutdown::Write))
        //- end
    };
    match sent {
        Ok(()) => narrate!("send({:?}); shutdown(SHUT_WR)", message.trim_end()),
        Err(err) => eprintln!("lab6: client {peer}: send(busy) failed: {}", explain(&err)),
    }
    discard_pending_input(&connection);
    drop(connection);
    narrate!("close()");
    println!("client {peer} refused: busy ({live} live)");
}

/// Reads and throws away whatever the refused caller already sent. Closing a socket
/// with unread data makes the kernel send a reset (RST) instead of a normal goodbye,
/// and a reset can make the caller lose our `busy:` line before reading it.
fn discard_pending_input(connection: &Socket) {
    if connection.set_nonblocking(true).is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    let mut reader: &Socket = connection;
    // Bounded: a refused caller does not get to keep the main thread busy.
    for _ in 0..16 {
        match reader.read(&mut scratch) {
            Ok(received) if received > 0 => continue,
            _ => break,
        }
    }
}

/// Steps 10 and 11: give the client its own thread, then return to the phone.
fn hand_over<H: Handler>(connection: Socket, peer: String, place: Place, handler: &Arc<H>) {
    // Step 10: SO_RCVTIMEO makes a recv() that waited TICK without data give up with
    // EAGAIN. The client's thread uses that pause to look at the stop flag (step 12).
    {
        //- answer: step 10: set a read timeout of TICK on `connection`
        //- hint: Make each receive on this connection wake up after one tick even with no data, so
        //- hint: the thread can notice a stop request. If setting it fails, report it and drop the
        //- hint: client (returning closes its socket).
        //- more: socket2's `Socket::set_read_timeout` with an `Option<Duration>` (`TICK`);
        //- more: `explain` words the error for `eprintln!`.
        //- call: `setsockopt(SO_RCVTIMEO, 100 ms)`
        //- why: a `recv()` that waited a tick without data returns `EAGAIN`, so the client's
        //- why: thread gets to look at the stop flag
        if let Err(err) = connection.set_read_timeout(Some(TICK)) {
            eprintln!(
                "lab6: client {peer}: setsockopt(SO_RCVTIMEO) failed: {}",
                explain(&err)
            );
            return;
        }
        //- end
    }
    narrate!(
        "setsockopt(fd {}, SO_RCVTIMEO, {TICK_MS} ms)",
        connection.as_raw_fd()
    );

    // Step 11: a new thread runs the handler for this client. `move` gives the thread
    // the socket, the place and a share of the handler; we keep nothing but the name,
    // and dropping the JoinHandle detaches the thread (step 14 waits for it another way).
    let thread_name = format!("client {peer}");
    let fd = connection.as_raw_fd();
    let handler = Arc::clone(handler);
    let job = move || serve_client(connection, peer, place, handler);
    let spawned: io::Result<()> = {
        //- answer: step 11: run `job` on a new thread named `thread_name`
        //- hint: Run the job on a new thread of its own, named after the client so it shows up in
        //- hint: debuggers and `ps`. Nobody waits for the thread to finish, so let its handle go;
        //- hint: the block's value says whether the thread could start.
        //- more: `std::thread::Builder`: `Builder::new`, `Builder::name`, `Builder::spawn` returns
        //- more: `io::Result<JoinHandle<()>>`; `Result::map` with `drop` detaches the thread.
        //- call: `thread::spawn` (`clone(2)` underneath)
        //- why: the client gets its own thread; the socket moves into it; the main thread goes
        //- why: back to step 6 at once
        thread::Builder::new()
            .name(thread_name.clone())
            .spawn(job)
            .map(drop)
        //- end
    };
    match spawned {
        Ok(()) => narrate!("thread::spawn() -> {thread_name:?} now owns fd {fd}"),
        // Out of threads: the job (and with it the socket) is dropped, which hangs up.
        Err(err) => eprintln!("lab6: cannot start {thread_name:?}: {}", explain(&err)),
    }
}

/// The body of a client's thread: run the handler, hang up, give the place back.
fn serve_client<H: Handler>(connection: Socket, peer: String, place: Place, handler: Arc<H>) {
    let fd = connection.as_raw_fd();
    let mut reader = BufReader::new(StopAwareReader::new(&connection));
    let mut writer: &Socket = &connection;
    // One misbehaving client must never take the server down: report it and go on.
    if let Err(err) = handler.handle(&mut reader, &mut writer) {
        eprintln!("lab6: client {peer}: {}", explain(&err));
    }
    drop(reader);
    // shutdown() sends our FIN now; dropping the socket then close()s the fd.
    let _ = connection.shutdown(Shutdown::Write);
    drop(connection);
    narrate!("close(fd {fd})");
    println!("client {peer} disconnected");
    drop(place);
}

/// The connection as the handler reads it: a socket whose timed-out reads are turned
/// into "end of stream" once a stop signal has come and the client is between requests.
struct StopAwareReader<'a> {
    /// The client's socket, with its SO_RCVTIMEO tick set (step 10).
    connection: &'a Socket,
    /// True when everything received so far ends with a newline: no request is half in.
    between_requests: bool,
}

impl<'a> StopAwareReader<'a> {
    fn new(connection: &'a Socket) -> StopAwareReader<'a> {
        StopAwareReader {
            connection,
            between_requests: true,
        }
    }
}

impl Read for StopAwareReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut socket: &Socket = self.connection;
        loop {
            match socket.read(buffer) {
                Ok(received) => {
                    narrate!("recv(fd {}) -> {received} bytes", socket.as_raw_fd());
                    if received > 0 {
                        self.between_requests = buffer[received - 1] == b'\n';
                    }
                    return Ok(received);
                }
                // The SO_RCVTIMEO tick passed without data (or a signal interrupted us).
                Err(err) if woke_up_without_data(&err) => {
                    // Step 12: if the server is stopping and no request is half
                    // received, report end of stream, so the handler returns and the
                    // thread ends. A request already started keeps being read: the
                    // client gets its answer (within the grace period).
                    //- answer: step 12: on a stop request, between requests, return Ok(0)
                    //- hint: When the server has been asked to stop and this client is between two
                    //- hint: requests (nothing half received), behave as if the client had hung up:
                    //- hint: report end of stream (zero bytes) so the handler finishes.
                    //- more: `stop_requested` returns an `Option`; the flag
                    //- more: `self.between_requests`; returning `Ok` with a count of 0 means end of
                    //- more: stream for a reader.
                    //- call: on `EAGAIN`: stop flag set and no line half in? then end of stream
                    //- why: the client's thread hangs up between requests only; a started
                    //- why: request is read and answered
                    if stop_requested().is_some() && self.between_requests {
                        narrate!("stopping: hanging up on an idle client");
                        return Ok(0);
                    }
                    //- end
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Whether a read only stopped because the timeout ran out or a signal arrived.
fn woke_up_without_data(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Step 13: close the listening socket, once a stop signal has come.
fn stop_accepting(listener: Socket) {
    // Step 13: close the listener right away. The port is free again and new callers are
    // refused by the kernel, while the connections we accepted are separate sockets and
    // live on.
    {
        //- answer: step 13: close the listening socket (drop it)
        //- hint: The server is stopping and accepts nobody else: close the listening socket
        //- hint: now, so new callers are refused at once instead of waiting in a queue nobody
        //- hint: reads.
        //- more: In Rust a socket is closed when it is dropped: `std::mem::drop` (in the
        //- more: prelude) ends the value's life right here.
        //- call: `close(listener)`
        //- why: after the signal: stop accepting **now**; the port is free and new callers
        //- why: are refused by the kernel
        drop(listener);
        //- end
    }
    narrate!("close(listener): no new callers, the port is free");
}

impl LiveClients {
    /// Step 14: sleep until no client is left or `grace` has passed; returns how many
    /// are still connected.
    fn wait_until_empty(&self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        let live: MutexGuard<'_, usize> = {
            //- answer: step 14: until the count is 0 or the deadline passed, sleep on `self.changed`
            //- hint: Wait for the live count to drop to zero, but never past the deadline. Sleep on
            //- hint: the condition variable between changes (no busy loop) and recompute the time
            //- hint: left each time you wake, since wake-ups can be early or spurious. The block's
            //- hint: value is the guard, still locked.
            //- more: `std::sync::Condvar::wait_timeout` takes the guard and a `Duration` and
            //- more: returns a `LockResult<(MutexGuard, WaitTimeoutResult)>`;
            //- more: `PoisonError::into_inner` recovers from poisoning; `Instant::now` and
            //- more: `Instant` subtraction for the time left; start from `self.lock`.
            //- call: wait on the `Condvar` until the count is 0 or the grace period is over
            //- why: every departing client wakes the main thread, which then checks the count;
            //- why: it never sleeps past the deadline
            let mut live = self.lock();
            while *live > 0 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                live = self
                    .changed
                    .wait_timeout(live, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            live
            //- end
        };
        *live
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut live = self.clients.lock();
        *live -= 1;
        // Wake the main thread if it is waiting for the clients to finish (step 14).
        self.clients.changed.notify_all();
    }
}
