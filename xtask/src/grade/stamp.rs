//! The `[<ctime>] ` stamp that the timestamp servers of labs 3 and 4 put before each
//! answer (`[Sun Nov 22 17:39:27 2026] `), recognised byte by byte.
//!
//! Written out rather than as a regular expression: the pattern is fixed and short, and
//! the regex crates were a fifth of the CPU time of a student's first build of xtask.

/// How many bytes a stamp takes: `[`, the 24 characters of ctime, `]` and a space.
pub const LEN: usize = 27;

const DAYS: [&[u8]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// If `bytes` starts with a stamp, what follows it.
pub fn strip(bytes: &[u8]) -> Option<&[u8]> {
    let (stamp, rest) = (bytes.get(..LEN)?, &bytes[LEN..]);
    let digit = |at: usize, highest: u8| stamp[at].is_ascii_digit() && stamp[at] <= highest;
    let well_formed = stamp[0] == b'['
        && DAYS.contains(&&stamp[1..4])
        && stamp[4] == b' '
        && MONTHS.contains(&&stamp[5..8])
        && stamp[8] == b' '
        // The day of the month is padded with a space: ` 5`, `15`, `31`.
        && matches!(stamp[9], b' ' | b'1' | b'2' | b'3')
        && digit(10, b'9')
        && stamp[11] == b' '
        && digit(12, b'2')
        && digit(13, b'9')
        && stamp[14] == b':'
        && digit(15, b'5')
        && digit(16, b'9')
        && stamp[17] == b':'
        && digit(18, b'6')
        && digit(19, b'9')
        && stamp[20] == b' '
        && (21..25).all(|at| digit(at, b'9'))
        && &stamp[25..] == b"] ";
    well_formed.then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ctime_stamp_is_recognised_and_stripped() {
        assert_eq!(
            strip(b"[Sun Nov 22 17:39:27 2026] hello\n"),
            Some(&b"hello\n"[..])
        );
        assert_eq!(strip(b"[Mon Feb  3 09:05:00 2025] "), Some(&b""[..]));
    }

    #[test]
    fn anything_else_is_not() {
        for wrong in [
            &b"Sun Nov 22 17:39:27 2026 hello"[..],
            b"[Sun Nov 22 17:39:27 2026]hello",
            b"[Sun Nov 22 17:39 2026] hello",
            b"[Sun Nov 42 17:39:27 2026] x",
            b"[Sun Nov 22 77:39:27 2026] x",
            b"[2026-11-22 17:39:27 UTC] x",
            b"[Sun Nov 22",
        ] {
            assert_eq!(strip(wrong), None, "{}", String::from_utf8_lossy(wrong));
        }
    }
}
