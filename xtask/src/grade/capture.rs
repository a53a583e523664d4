//! A program's stdout or stderr, read through a pipe the grader owns, kept bounded.
//!
//! The program writes into a pipe; a thread of the grader reads it as fast as it comes
//! (so the program never blocks on a full pipe) and keeps only the first [`HEAD`] bytes
//! (where a server prints `listening on ...`) and the last [`TAIL`] bytes (where the
//! error that ended it is), plus a count of everything. A program that prints a
//! gigabyte costs the grader 128 KiB, and nothing the program does to its own files can
//! change what the grader reads: the pipe is not in any folder.
//!
//! Reads happen under a lock, so [`Capture::drain`] (called once a program has exited)
//! sees every byte that was in the pipe: `Finished::stdout` is complete, not a race.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of the beginning of a stream is kept.
pub const HEAD: usize = 64 * 1024;
/// How much of the end of a stream is kept.
pub const TAIL: usize = 64 * 1024;

/// What is kept of one stream.
#[derive(Default)]
struct Kept {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    /// Every byte the program wrote (that the grader read).
    total: u64,
    /// The program (and everything it started) closed the stream.
    eof: bool,
}

impl Kept {
    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = HEAD - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= TAIL {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - TAIL..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(TAIL);
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }
}

/// The read end of the pipe and what has been kept, behind one lock.
struct Shared {
    pipe: Option<std::fs::File>,
    kept: Kept,
}

/// One captured stream; cheap to clone (the reader thread holds a clone).
#[derive(Clone)]
pub struct Capture {
    shared: Arc<Mutex<Shared>>,
    /// Set when the program is gone: the reader thread stops even if a stray still
    /// holds the pipe open.
    stop: Arc<AtomicBool>,
}

/// Most bytes one locked read pass takes, so readers of the capture are never starved.
const PASS: usize = 1024 * 1024;

impl Capture {
    /// Starts reading `pipe` (the read end) on a thread of its own.
    pub fn start(pipe: OwnedFd) -> Capture {
        set_nonblocking(&pipe);
        let capture = Capture {
            shared: Arc::new(Mutex::new(Shared {
                pipe: Some(std::fs::File::from(pipe)),
                kept: Kept::default(),
            })),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let reader = capture.clone();
        std::thread::spawn(move || reader.pump());
        capture
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reader thread: wait for bytes, read them under the lock, until EOF or stop.
    fn pump(self) {
        let fd = match &self.lock().pipe {
            Some(pipe) => pipe.as_raw_fd(),
            None => return,
        };
        while !self.stop.load(Ordering::SeqCst) {
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the fd stays open while `pipe` is Some, and only
            // this thread or `read_pass` (which set it to None at EOF, after which we
            // see `eof` and return) closes it.
            let ready = unsafe { libc::poll(&mut poll, 1, 200) };
            if ready < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
                return;
            }
            if ready > 0 && self.read_pass(PASS) {
                return;
            }
            if self.lock().kept.eof {
                return;
            }
        }
        self.lock().pipe = None;
    }

    /// Reads what the pipe holds, at most `budget` bytes; true at end of stream.
    fn read_pass(&self, budget: usize) -> bool {
        let mut shared = self.lock();
        let mut buffer = [0u8; 64 * 1024];
        let mut taken = 0;
        while taken < budget {
            let Some(pipe) = shared.pipe.as_mut() else {
                return true;
            };
            match pipe.read(&mut buffer) {
                Ok(0) => {
                    shared.kept.eof = true;
                    shared.pipe = None;
                    return true;
                }
                Ok(n) => {
                    shared.kept.push(&buffer[..n]);
                    taken += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Takes in whatever is in the pipe right now (the program has exited, so this is
    /// all it wrote), giving up after `limit` in case a stray keeps writing.
    pub fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let before = self.lock().kept.total;
            if self.read_pass(PASS) || self.lock().kept.total == before {
                return;
            }
        }
    }

    /// Stops the reader thread (the program and its strays are gone).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// What is kept: everything when it fit, else the first [`HEAD`] and last [`TAIL`]
    /// bytes joined.
    pub fn bytes(&self) -> Vec<u8> {
        let shared = self.lock();
        let mut out = shared.kept.head.clone();
        let kept_total = (shared.kept.head.len() + shared.kept.tail.len()) as u64;
        if shared.kept.total == kept_total {
            out.extend(shared.kept.tail.iter());
        } else {
            // Start the tail at a line boundary when one is near, so it reads cleanly.
            let tail: Vec<u8> = shared.kept.tail.iter().copied().collect();
            let from = tail
                .iter()
                .take(1024)
                .position(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            out.extend_from_slice(&tail[from..]);
        }
        out
    }

    /// Only the end of the stream (the tail, or everything when it fit).
    pub fn tail_bytes(&self) -> Vec<u8> {
        let shared = self.lock();
        let kept_total = (shared.kept.head.len() + shared.kept.tail.len()) as u64;
        if shared.kept.total == kept_total {
            let mut out = shared.kept.head.clone();
            out.extend(shared.kept.tail.iter());
            out
        } else {
            shared.kept.tail.iter().copied().collect()
        }
    }

    /// How many bytes the program wrote in all.
    pub fn total(&self) -> u64 {
        self.lock().kept.total
    }

    /// Whether some of what it wrote was dropped (more than head and tail hold).
    pub fn was_cut(&self) -> bool {
        self.total() > (HEAD + TAIL) as u64
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// A byte count in words: `812 bytes`, `64.0 KiB`, `1.0 GB`.
pub fn describe_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MB", b / (KIB * KIB))
    } else {
        format!("{:.1} GB", b / (KIB * KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_of_a_flood() {
        let mut kept = Kept::default();
        kept.push(b"listening on 127.0.0.1:5000\n");
        for _ in 0..100 {
            kept.push(&[b'x'; 10_000]);
        }
        kept.push(b"\nthe last words\n");
        assert_eq!(kept.head.len(), HEAD);
        assert_eq!(kept.tail.len(), TAIL);
        assert!(kept.head.starts_with(b"listening on"));
        let tail: Vec<u8> = kept.tail.iter().copied().collect();
        assert!(tail.ends_with(b"the last words\n"));
        assert_eq!(kept.total, 28 + 1_000_000 + 16);
    }

    #[test]
    fn reads_a_pipe_completely() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let capture = Capture::start(read);
        let mut file = std::fs::File::from(write);
        std::io::Write::write_all(&mut file, b"hello\n").unwrap();
        drop(file);
        capture.drain(Duration::from_secs(1));
        assert_eq!(capture.bytes(), b"hello\n");
        assert!(!capture.was_cut());
        assert_eq!(describe_size(1 << 30), "1.0 GB");
    }
}
