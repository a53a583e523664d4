//! The probe handshake both sides speak (step 16: reading a line with a deadline).
//!
//! Connecting to a port proves only that *something* listens there. Ports and pids are
//! both reused: after a crash, another program may own the pid, the port, or both. So
//! the prober asks a question only our daemon answers correctly:
//!
//! ```text
//! status -> daemon:  socklab-probe?\n
//! daemon -> status:  socklab-daemon <pid>\n      (e.g. "socklab-daemon 4242\n")
//! ```
//!
//! Each message is one line ending in `\n` (a `\r` before it is ignored, so telnet works),
//! at most `MAX_LINE` bytes. TCP is a byte stream: a line may arrive in several pieces,
//! so we read until the newline instead of trusting one recv() to hold it all.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use shared::narrate;
use socket2::Socket;

/// What the prober sends, without the newline.
pub const PROBE_REQUEST: &str = "socklab-probe?";
/// The first word of the daemon's answer; the daemon's pid follows after one space.
const ANSWER_WORD: &str = "socklab-daemon";
/// The longest line either side accepts, newline included.
const MAX_LINE: usize = 128;

/// The daemon's answer for process `pid`, newline included.
pub fn answer_line(pid: u32) -> String {
    format!("{ANSWER_WORD} {pid}\n")
}

/// The pid in a daemon's answer line (newline already removed), or None if the line is
/// not our handshake at all.
pub fn parse_answer(line: &str) -> Option<u32> {
    let digits = line.strip_prefix(ANSWER_WORD)?.strip_prefix(' ')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How one attempt to read a line ended.
pub enum Line {
    /// A whole line arrived (without its `\n` or `\r\n`).
    Complete(Vec<u8>),
    /// The peer closed the connection first; these bytes came before the end.
    Closed(Vec<u8>),
    /// More than `MAX_LINE` bytes without a newline.
    TooLong(Vec<u8>),
    /// The deadline passed first; these bytes came in time.
    TimedOut(Vec<u8>),
}

/// Reads one line from `socket`, giving up at `deadline`.
///
/// Other errors (a reset connection, ...) come back as they are.
pub fn read_line(socket: &mut Socket, deadline: Instant) -> io::Result<Line> {
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = [0u8; MAX_LINE];
    loop {
        let Some(left) = time_left(deadline) else {
            return Ok(Line::TimedOut(line));
        };
        // SO_RCVTIMEO bounds each recv() by the time left: the whole line, not each
        // piece, must arrive before the deadline.
        socket.set_read_timeout(Some(left))?;
        narrate!("setsockopt(SO_RCVTIMEO, {} ms)", left.as_millis());

        // Step 16: recv() returns whatever has arrived, at least 1 byte, or 0 once the
        // peer has closed its side. Ask only for what may still fit in one line.
        let room = MAX_LINE - line.len();
        let received: io::Result<usize> = {
            //- answer: step 16: recv up to `room` bytes of the line into `chunk`
            //- hint: Receive at most `room` bytes of the answer line into the chunk, never more
            //- hint: than the line may still hold. Keep the result for the code below; 0 means the
            //- hint: peer closed.
            //- more: socket2's `Socket` implements `std::io::Read`: `Read::read` on a slice of
            //- more: `chunk` (up to `room`).
            socket.read(&mut chunk[..room])
            //- end
        };
        let count = match received {
            Ok(count) => count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                narrate!("recv() -> timed out");
                return Ok(Line::TimedOut(line));
            }
            Err(err) => return Err(err),
        };
        narrate!("recv() -> {count} bytes");
        if count == 0 {
            return Ok(Line::Closed(line));
        }
        line.extend_from_slice(&chunk[..count]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Complete(line));
        }
        if line.len() >= MAX_LINE {
            return Ok(Line::TooLong(line));
        }
    }
}

/// The time left until `deadline`, or None once it has passed.
pub fn time_left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    // A zero timeout means "wait forever" to setsockopt(): never hand one over.
    (left >= Duration::from_millis(1)).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        let line = answer_line(4242);
        assert_eq!(line, "socklab-daemon 4242\n");
        assert_eq!(parse_answer(line.trim_end()), Some(4242));
    }

    #[test]
    fn other_lines_are_not_answers() {
        for line in [
            "",
            "socklab-daemon",
            "socklab-daemon ",
            "socklab-daemon -1",
            "socklab-daemon 12x",
            "SSH-2.0-OpenSSH_9.6",
            "socklab-daemon  12",
        ] {
            assert_eq!(parse_answer(line), None, "{line:?}");
        }
    }
}
