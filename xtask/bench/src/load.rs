//! The load generator: opens N connections to one server, then has every connection
//! send a message, wait for the whole echo and record the round-trip time, again and
//! again until the measuring window closes.
//!
//! It runs on tokio (epoll underneath), so one process on one or two cores can keep
//! 10,000 connections busy. Connections are opened gradually: a bounded number of
//! attempts at a time, each holding its slot until its first message has come back.
//!
//! Nothing in it can hang: every connect and warm-up has its own deadline, opening as
//! a whole has one, and every write and read of the measuring window is cut off when
//! the window ends. A server that never answers (the iterative lab 3 server is busy
//! with another client) simply completes fewer round trips.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

/// What to do against one server.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The server's address (always on loopback).
    pub address: SocketAddr,
    /// Connections to open.
    pub connections: usize,
    /// Bytes in each message.
    pub message_size: usize,
    /// Length of the measuring window.
    pub duration: Duration,
    /// Stop early once this many round trips (over all connections) were started.
    pub max_messages: Option<u64>,
    /// Connection attempts (connect plus first round trip) in flight at once.
    pub connect_concurrency: usize,
    /// Deadline of a single connection attempt.
    pub connect_timeout: Duration,
    /// Deadline of the whole opening phase.
    pub opening_timeout: Duration,
    /// Worker threads of the generator's runtime.
    pub threads: usize,
}

/// The connections that the opening phase got.
pub struct OpenConnections {
    streams: Vec<Opened>,
    /// Attempts that failed or ran out of time.
    pub failed: usize,
    /// Connections never attempted because the opening phase ran out of time.
    pub not_attempted: usize,
    /// The first failure, to explain the count.
    pub first_error: Option<String>,
    /// How long opening took.
    pub elapsed: Duration,
}

impl OpenConnections {
    /// How many connections are open.
    pub fn count(&self) -> usize {
        self.streams.len()
    }
}

/// What the measuring window produced.
pub struct Exchange {
    /// One round-trip time per completed round trip, in nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Connections that completed at least one round trip.
    pub served: usize,
    /// Connections that failed (reset, closed early, wrong echo) during the window.
    pub failed: usize,
    /// The first such failure.
    pub first_error: Option<String>,
    /// The measuring window's real length.
    pub elapsed: Duration,
}

/// The load generator with its own tokio runtime.
pub struct Generator {
    runtime: Runtime,
    plan: LoadPlan,
}

impl Generator {
    /// Builds the runtime for `plan`.
    pub fn new(plan: LoadPlan) -> anyhow::Result<Self> {
        let mut builder = if plan.threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(plan.threads);
            builder
        };
        let runtime = builder
            .enable_all()
            .build()
            .context("cannot start the load generator's runtime")?;
        Ok(Generator { runtime, plan })
    }

    /// Opens the connections, at most `connect_concurrency` attempts at a time.
    pub fn open(&self) -> OpenConnections {
        self.runtime.block_on(open_connections(self.plan.clone()))
    }

    /// Runs the measuring window over `connections` and closes them.
    pub fn exchange(&self, connections: OpenConnections) -> Exchange {
        self.runtime
            .block_on(exchange(self.plan.clone(), connections.streams))
    }
}

/// The message every connection sends: printable letters ending in a newline, so a
/// line-oriented server echoes it as one line too.
pub fn make_message(size: usize) -> Vec<u8> {
    let mut message: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    if let Some(last) = message.last_mut() {
        *last = b'\n';
    }
    message
}

/// How long a new connection waits for the echo of its first message before it is
/// counted as open anyway (an iterative server may not get to it for a long time).
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection that the opening phase got.
struct Opened {
    stream: TcpStream,
    /// Echo bytes of the warm-up message still on their way (0 when it came back).
    echo_pending: usize,
}

/// Opens the connections. An attempt holds one of `connect_concurrency` slots until
/// its warm-up message has come back, which proves the server accepted it; so the
/// server's accept queue never holds more than that many of our connections. (Counting
/// only connect() would flood a slow accept loop: past its backlog the kernel drops
/// SYNs, and each dropped SYN costs the client a 1 s retransmission.)
async fn open_connections(plan: LoadPlan) -> OpenConnections {
    let started = Instant::now();
    let opening_deadline = started + plan.opening_timeout;
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let message: Arc<[u8]> = make_message(plan.message_size).into();
    let mut attempts = JoinSet::new();
    let mut launched = 0;
    while launched < plan.connections {
        // Wait for a free slot: this is what opens connections gradually.
        let permit = match timeout_at(opening_deadline, Arc::clone(&permits).acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            _ => break,
        };
        let connect_deadline = opening_deadline.min(Instant::now() + plan.connect_timeout);
        let address = plan.address;
        let message = Arc::clone(&message);
        attempts.spawn(async move {
            let result = connect(address, connect_deadline, &message).await;
            drop(permit);
            result
        });
        launched += 1;
    }
    let mut streams = Vec::with_capacity(plan.connections);
    let mut failed = 0;
    let mut first_error = None;
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok(Ok(opened)) => streams.push(opened),
            Ok(Err(error)) => {
                failed += 1;
                first_error.get_or_insert(format!("{error:#}"));
            }
            Err(panic) => {
                failed += 1;
                first_error.get_or_insert(format!("connect task failed: {panic}"));
            }
        }
    }
    OpenConnections {
        streams,
        failed,
        not_attempted: plan.connections - launched,
        first_error,
        elapsed: started.elapsed(),
    }
}

/// One connection attempt (given up at `deadline`) and its warm-up round trip.
async fn connect(address: SocketAddr, deadline: Instant, message: &[u8]) -> anyhow::Result<Opened> {
    let mut stream = match timeout_at(deadline, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(anyhow!("connect(): {error}")),
        Err(_) => return Err(anyhow!("connect() timed out")),
    };
    // Each message goes out at once; Nagle's algorithm would hold back small writes.
    stream
        .set_nodelay(true)
        .context("setsockopt(TCP_NODELAY)")?;
    let warm_up_deadline = Instant::now() + WARM_UP_TIMEOUT;
    match timeout_at(warm_up_deadline, stream.write_all(message)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(anyhow!("send() of the first message: {e}")),
        Err(_) => return Err(anyhow!("send() of the first message timed out")),
    }
    // Read the echo piece by piece, so that a timeout knows how much is still due.
    let mut echo = vec![0u8; message.len()];
    let mut received = 0;
    while received < echo.len() {
        match timeout_at(warm_up_deadline, stream.read(&mut echo[received..])).await {
            Ok(Ok(0)) => return Err(anyhow!("the server closed the connection at once")),
            Ok(Ok(count)) => received += count,
            Ok(Err(e)) => return Err(anyhow!("recv() of the first echo: {e}")),
            // Not served yet (or the server is slow): open all the same.
            Err(_) => break,
        }
    }
    if echo[..received] != message[..received] {
        bail!("the first echo differs from the message sent");
    }
    Ok(Opened {
        stream,
        echo_pending: message.len() - received,
    })
}

/// How one connection's measuring window went.
struct ConnectionReport {
    latencies_ns: Vec<u64>,
    error: Option<String>,
}

async fn exchange(plan: LoadPlan, streams: Vec<Opened>) -> Exchange {
    let message: Arc<[u8]> = make_message(plan.message_size).into();
    let budget = plan
        .max_messages
        .map(|count| Arc::new(AtomicU64::new(count)));
    let started = Instant::now();
    let window_end = started + plan.duration;
    let mut connections = JoinSet::new();
    for opened in streams {
        connections.spawn(ping_pong(
            opened,
            Arc::clone(&message),
            window_end,
            budget.clone(),
        ));
    }
    let mut latencies_ns = Vec::new();
    let (mut served, mut failed, mut first_error) = (0, 0, None);
    while let Some(joined) = connections.join_next().await {
        let report = match joined {
            Ok(report) => report,
            Err(panic) => ConnectionReport {
                latencies_ns: Vec::new(),
                error: Some(format!("connection task failed: {panic}")),
            },
        };
        if !report.latencies_ns.is_empty() {
            served += 1;
        }
        if let Some(error) = report.error {
            failed += 1;
            first_error.get_or_insert(format!("{error:#}"));
        }
        latencies_ns.extend(report.latencies_ns);
    }
    let elapsed = Instant::now().min(window_end) - started;
    Exchange {
        latencies_ns,
        served,
        failed,
        first_error,
        elapsed,
    }
}

/// Takes one message from the shared budget; false when it is used up.
fn take_one(budget: &Option<Arc<AtomicU64>>) -> bool {
    match budget {
        None => true,
        Some(left) => left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok(),
    }
}

/// Round trips on one connection until the window ends or the budget is spent.
/// The stream is closed when this returns.
async fn ping_pong(
    opened: Opened,
    message: Arc<[u8]>,
    window_end: Instant,
    budget: Option<Arc<AtomicU64>>,
) -> ConnectionReport {
    let Opened {
        mut stream,
        echo_pending,
    } = opened;
    let mut echo = vec![0u8; message.len()];
    let mut latencies_ns = Vec::new();
    let mut error = None;
    // First the rest of the warm-up echo, if the server had not sent it yet: it is
    // not a round trip of this window.
    if echo_pending > 0 {
        let rest = &mut echo[..echo_pending];
        match timeout_at(window_end, stream.read_exact(rest)).await {
            Err(_) => {} // still not served when the window closed
            Ok(Err(e)) => error = Some(format!("recv() of the first echo: {e}")),
            Ok(Ok(_)) if rest[..] != message[message.len() - echo_pending..] => {
                error = Some("the first echo differs from the message sent".into());
            }
            Ok(Ok(_)) => {}
        }
        if error.is_some() || Instant::now() >= window_end {
            return ConnectionReport {
                latencies_ns,
                error,
            };
        }
    }
    while take_one(&budget) {
        let sent_at = Instant::now();
        // write_all: a large message may need several send() calls.
        match timeout_at(window_end, stream.write_all(&message)).await {
            Err(_) => break,
            Ok(Err(e)) => {
                error = Some(format!("send(): {e}"));
                break;
            }
            Ok(Ok(())) => {}
        }
        // read_exact: the echo may arrive in pieces; wait for all of it.
        match timeout_at(window_end, stream.read_exact(&mut echo)).await {
            Err(_) => break,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                error = Some("the server closed the connection".into());
                break;
            }
            Ok(Err(e)) => {
                error = Some(format!("recv(): {e}"));
                break;
            }
            Ok(Ok(_)) => {}
        }
        let round_trip = sent_at.elapsed();
        if echo[..] != message[..] {
            error = Some("the echo differs from the message sent".into());
            break;
        }
        latencies_ns.push(u64::try_from(round_trip.as_nanos()).unwrap_or(u64::MAX));
    }
    ConnectionReport {
        latencies_ns,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_printable_and_ends_with_a_newline() {
        assert_eq!(make_message(5), b"abcd\n");
        assert_eq!(make_message(1), b"\n");
        assert!(make_message(0).is_empty());
        assert_eq!(make_message(30)[26], b'a');
    }

    #[test]
    fn budget_runs_out() {
        let budget = Some(Arc::new(AtomicU64::new(2)));
        assert!(take_one(&budget));
        assert!(take_one(&budget));
        assert!(!take_one(&budget));
        assert!(take_one(&None));
    }
}
