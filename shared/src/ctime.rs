//! The `ctime(3)` time format of the course notes: `Sun Nov 22 17:39:27 2026`.
//!
//! Timestamp servers answer `[<ctime>] <data>`. The format is fixed-width: a
//! three-letter day and month, the day of the month padded with a space
//! (`Nov  2`), a 24-hour clock and a four-digit year, in the machine's local time.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The current local time in ctime format (no trailing newline).
pub fn now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_unix(seconds as i64)
}

/// A Unix time (seconds since 1970) as local time in ctime format.
pub fn format_unix(seconds: i64) -> String {
    let time: libc::time_t = seconds as libc::time_t;
    // SAFETY: `tm` is plain old data; localtime_r fills it and is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    if !ok {
        return String::from("??? ??? ?? ??:??:?? ????");
    }
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_fixed_ctime_shape() {
        let text = now();
        assert_eq!(text.len(), 24, "{text:?}");
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields.len(), 5, "{text:?}");
        assert!(DAYS.contains(&fields[0]));
        assert!(MONTHS.contains(&fields[1]));
    }
}
