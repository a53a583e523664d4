//! The grader writing a long stream to a connection from a thread of its own, while the
//! check does something else with the same connection: reads slowly or not at all,
//! signals the program, waits for every buffer on the way to fill.
//!
//! A [`Writer`] sends a [`Body`] (bytes, or a pattern repeated to a length, then an
//! optional tail and half-close). The check sees how far it got ([`Writer::sent`]),
//! can wait until it stalls ([`Writer::wait_stalled`]: the program has stopped reading
//! and every buffer between is full), can hold it at a pause ([`Body::pause_at`],
//! [`Writer::go`]), and takes its outcome with [`Writer::finish`]. Every write has a
//! deadline, and dropping a writer that has not finished stops it: its socket is shut
//! down (a write blocked on a program that never reads returns at once) and its thread
//! joined, so no thread outlives its check.

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Failure;

/// No progress for this long means the writer is stalled (see [`Writer::wait_stalled`]).
const STALL: Duration = Duration::from_millis(300);

/// The longest a writer waits at its pause for [`Writer::go`].
const PAUSE_LIMIT: Duration = Duration::from_secs(40);

/// What a [`Writer`] sends.
pub struct Body {
    /// The bytes from position `p` on are `&buffer[p % period..]`.
    buffer: Arc<Vec<u8>>,
    period: usize,
    /// How many bytes of the pattern in all.
    len: usize,
    /// Sent after them (a line's `\n`).
    tail: Vec<u8>,
    /// Where to wait for [`Writer::go`].
    pause_at: Option<usize>,
    half_close: bool,
    /// The deadline of each write.
    limit: Duration,
}

impl Body {
    /// All of `bytes`, once.
    pub fn bytes(bytes: Arc<Vec<u8>>) -> Body {
        let len = bytes.len();
        Body::pattern(bytes, len.max(1), len)
    }

    /// `len` bytes of `byte`.
    pub fn filled(byte: u8, len: usize) -> Body {
        Body::pattern(Arc::new(vec![byte; 1024 * 1024]), 1, len)
    }

    /// `len` bytes of a pattern of `period` bytes, where `buffer` holds the pattern from
    /// position 0 on, `period` bytes and more (its length is the most one write sends).
    pub fn pattern(buffer: Arc<Vec<u8>>, period: usize, len: usize) -> Body {
        Body {
            buffer,
            period,
            len,
            tail: Vec::new(),
            pause_at: None,
            half_close: false,
            limit: Duration::from_secs(60),
        }
    }

    /// These bytes after the pattern.
    pub fn then(mut self, tail: &[u8]) -> Body {
        self.tail = tail.to_vec();
        self
    }

    /// "Done sending" (shutdown(Write)) once everything is sent.
    pub fn half_close(mut self) -> Body {
        self.half_close = true;
        self
    }

    /// Wait after `at` bytes until [`Writer::go`] (or 40 s).
    pub fn pause_at(mut self, at: usize) -> Body {
        self.pause_at = Some(at);
        self
    }

    /// The deadline of each write (60 s unless set).
    pub fn limit(mut self, limit: Duration) -> Body {
        self.limit = limit;
        self
    }
}

/// A thread sending a [`Body`] on a connection.
pub struct Writer {
    sent: Arc<AtomicUsize>,
    /// Set by [`Writer::go`] (and to stop it).
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Its own handle on the socket, to shut it down when dropped unfinished.
    stream: TcpStream,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Writer {
    /// Starts sending `body` on a clone of `stream`.
    pub fn start(stream: &TcpStream, body: Body) -> Result<Writer, Failure> {
        let clone = || {
            stream
                .try_clone()
                .map_err(|e| Failure::new(format!("grader could not clone its socket: {e}")))
        };
        let (ours, theirs) = (clone()?, clone()?);
        let sent = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let flags = (Arc::clone(&sent), Arc::clone(&go), Arc::clone(&stop));
        let thread = thread::spawn(move || send(theirs, &body, &flags.0, &flags.1, &flags.2));
        Ok(Writer {
            sent,
            go,
            stop,
            stream: ours,
            thread: Some(thread),
        })
    }

    /// The bytes sent so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether it has stopped (everything sent, or an error).
    pub fn is_done(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Lets a writer waiting at its pause go on.
    pub fn go(&self) {
        self.go.store(true, Ordering::Relaxed);
    }

    /// Returns once the writer has made no progress for 300 ms (every buffer between
    /// it and the program is full: the program has stopped reading), or is done, or
    /// `limit` has passed.
    pub fn wait_stalled(&self, limit: Duration) {
        self.stalls_within(STALL, limit);
    }

    /// Whether the writer makes no progress for `stall` (it is stalled) before it is
    /// done and before `limit` has passed; returns as soon as one of the three happens.
    pub fn stalls_within(&self, stall: Duration, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut last = self.sent();
        let mut since = Instant::now();
        while Instant::now() < deadline && !self.is_done() {
            thread::sleep(Duration::from_millis(20));
            let now = self.sent();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= stall {
                return true;
            }
        }
        false
    }

    /// Waits for the writer to end on its own and says how: everything sent, or the
    /// error that stopped it (with how far it got).
    pub fn finish(mut self) -> io::Result<()> {
        let thread = self.thread.take().expect("finish takes the writer");
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.stream.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
    }
}

/// The writer thread: the pattern (pausing where asked), the tail, the half-close.
fn send(
    mut stream: TcpStream,
    body: &Body,
    sent: &AtomicUsize,
    go: &AtomicBool,
    stop: &AtomicBool,
) -> io::Result<()> {
    let _ = stream.set_write_timeout(Some(body.limit));
    let started = Instant::now();
    let mut done = 0;
    let failed =
        |done: usize, e: io::Error| io::Error::new(e.kind(), format!("after {done} bytes: {e}"));
    while done < body.len {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::other(format!("stopped after {done} bytes")));
        }
        if body.pause_at.is_some_and(|at| done >= at)
            && !go.load(Ordering::Relaxed)
            && started.elapsed() < PAUSE_LIMIT
        {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        let from = done % body.period;
        // Up to the pause, if it is ahead: it falls between two writes.
        let until = body.pause_at.filter(|&at| at > done).unwrap_or(body.len);
        let n = (until.min(body.len) - done).min(body.buffer.len() - from);
        match stream.write(&body.buffer[from..from + n]) {
            Ok(0) => return Err(failed(done, ErrorKind::WriteZero.into())),
            Ok(count) => {
                done += count;
                sent.store(done, Ordering::Relaxed);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(failed(done, e)),
        }
    }
    stream.write_all(&body.tail).map_err(|e| failed(done, e))?;
    sent.store(done + body.tail.len(), Ordering::Relaxed);
    if body.half_close {
        stream.shutdown(Shutdown::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (ours, listener.accept().unwrap().0)
    }

    #[test]
    fn sends_a_pattern_then_its_tail_and_half_closes() {
        let (ours, mut theirs) = pair();
        let buffer: Vec<u8> = (0..1000 + 7).map(|i| (i % 7) as u8).collect();
        let body = Body::pattern(Arc::new(buffer), 7, 10_000)
            .then(b"\n")
            .half_close();
        let writer = Writer::start(&ours, body).unwrap();
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).unwrap();
        writer.finish().unwrap();
        assert_eq!(got.len(), 10_001);
        assert!(
            got[..10_000]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 7) as u8)
        );
        assert_eq!(got[10_000], b'\n');
    }

    #[test]
    fn stalls_on_a_reader_that_never_reads_and_stops_when_dropped() {
        let (ours, _theirs) = pair();
        let writer = Writer::start(&ours, Body::filled(b'z', 1 << 30)).unwrap();
        writer.wait_stalled(Duration::from_secs(30));
        let stalled_at = writer.sent();
        assert!(!writer.is_done() && stalled_at < 1 << 30, "{stalled_at}");
        let dropped = Instant::now();
        drop(writer);
        assert!(
            dropped.elapsed() < Duration::from_secs(5),
            "{:?}",
            dropped.elapsed()
        );
    }

    #[test]
    fn waits_at_its_pause_until_go() {
        let (ours, mut theirs) = pair();
        let body = Body::filled(b'a', 2000).pause_at(1000).half_close();
        let writer = Writer::start(&ours, body).unwrap();
        let mut first = vec![0; 1000];
        theirs.read_exact(&mut first).unwrap();
        writer.wait_stalled(Duration::from_secs(5));
        assert_eq!(writer.sent(), 1000);
        writer.go();
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len(), 1000);
        writer.finish().unwrap();
    }
}
