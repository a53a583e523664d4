//! `--timestamp`: the byte stream cut into lines, each answered with `[<ctime>] <line>`
//! (steps 11 to 13).
//!
//! TCP keeps no message boundaries, so a line may arrive in pieces over several recv()
//! calls, and one recv() may bring several lines. [`LineStamper`] keeps the unfinished
//! part of a line until its `\n` arrives, answers each finished line, and at the end of
//! the stream answers a last line that never got its `\n`. The stamp itself is the date
//! in the fixed-width format of `ctime(3)`: `[Sun Nov 22 17:39:27 2026] hello`.

use shared::Failure;
use shared::ctime::LocalTime;

/// With `--timestamp`, the longest line we wait for. A client that sends more bytes
/// without any `\n` is cut off rather than allowed to eat all the server's memory.
const MAX_LINE_LENGTH: usize = 64 * 1024 * 1024;

/// Line framing for `--timestamp`: the bytes of the line that is not finished yet.
#[derive(Default)]
pub struct LineStamper {
    /// The bytes of the current line so far (no `\n` among them yet).
    unfinished: Vec<u8>,
}

impl LineStamper {
    /// Takes the bytes of one recv() and returns the answers to the lines they finish.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut answers = Vec::new();
        // Step 11: cut the stream into lines. Every `\n` in `chunk` finishes a line (whose
        // start may have come in earlier recv() calls); what follows the last `\n` is the
        // start of a line that is not finished yet. Each finished line gets its own stamp.
        {
            // Stuck? `cargo xtask hint lab3`
            todo!("step 11: stamp each line `chunk` finishes; keep the rest in `self.unfinished`");
        }
        if self.unfinished.len() > MAX_LINE_LENGTH {
            return Err(Failure::new(format!(
                "gave up: a line longer than {MAX_LINE_LENGTH} bytes"
            )));
        }
        Ok(answers)
    }

    /// At the end of the stream: the answer to a last line without `\n`, if any.
    pub fn finish(&mut self) -> Vec<u8> {
        // Step 12: when recv() returns 0, what is still unfinished will never get its
        // `\n`, yet it is a line the client sent: it gets its answer too.
        let mut answers = Vec::new();
        if !self.unfinished.is_empty() {
            stamp(&self.unfinished, &mut answers);
            self.unfinished.clear();
        }
        answers
    }
}

/// Appends `[<ctime>] <line>` to `answers`, ending in `\n` whether `line` had one or not.
fn stamp(line: &[u8], answers: &mut Vec<u8>) {
    let now: LocalTime = shared::ctime::local_now();
    // Step 13: the stamp is the date as `ctime(3)` writes it, between brackets. Its
    // fields have fixed widths, so stamped lines line up and a program can cut the date
    // off by position: the day of the month is padded with a space (`Nov  2`), the clock
    // with zeros (`09:05:03`).
    let stamp: String = {
        // Stuck? `cargo xtask hint lab3`
        todo!("step 13: write `now` as `[<ctime>] `, e.g. `[Sun Nov 22 17:39:27 2026] `");
    };
    answers.extend_from_slice(stamp.as_bytes());
    answers.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        answers.push(b'\n');
    }
}
