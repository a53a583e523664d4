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

/// A moment in the machine's local time, in the parts `ctime(3)` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// The day of the week, three letters: `Sun`.
    pub weekday: &'static str,
    /// The month, three letters: `Nov`.
    pub month: &'static str,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour on a 24-hour clock, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// The second, 0 to 60 (60 for a leap second).
    pub second: u32,
    /// The year: `2026`.
    pub year: i32,
}

/// The current local time in ctime format (no trailing newline).
pub fn now() -> String {
    format(&local_now())
}

/// The current local time, in parts.
pub fn local_now() -> LocalTime {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    local(seconds as i64)
}

/// A Unix time (seconds since 1970) as local time in ctime format.
pub fn format_unix(seconds: i64) -> String {
    format(&local(seconds))
}

/// `time` in ctime format: `Sun Nov 22 17:39:27 2026`.
pub fn format(time: &LocalTime) -> String {
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        time.weekday, time.month, time.day, time.hour, time.minute, time.second, time.year
    )
}

/// A Unix time (seconds since 1970) as local time, in parts. A time the C library
/// cannot convert reads as the epoch (it cannot happen for the clock's own time).
pub fn local(seconds: i64) -> LocalTime {
    let time: libc::time_t = seconds as libc::time_t;
    // SAFETY: `tm` is plain old data; localtime_r fills it and is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    if !ok {
        return LocalTime {
            weekday: DAYS[4],
            month: MONTHS[0],
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            year: 1970,
        };
    }
    let part = |value: libc::c_int| u32::try_from(value).unwrap_or(0);
    LocalTime {
        weekday: DAYS[tm.tm_wday.rem_euclid(7) as usize],
        month: MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        day: part(tm.tm_mday),
        hour: part(tm.tm_hour),
        minute: part(tm.tm_min),
        second: part(tm.tm_sec),
        year: tm.tm_year + 1900,
    }
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

    #[test]
    fn pads_the_day_with_a_space_and_the_clock_with_zeros() {
        let time = LocalTime {
            weekday: "Mon",
            month: "Nov",
            day: 2,
            hour: 9,
            minute: 5,
            second: 3,
            year: 2026,
        };
        assert_eq!(format(&time), "Mon Nov  2 09:05:03 2026");
    }
}
