//! The numbers of one measurement: rates and latency percentiles, from raw round trips.
//!
//! Everything here is pure arithmetic on what the load generator recorded, so it is
//! unit-tested without any socket.

use std::time::Duration;

/// Rates and latency percentiles of one server at one connection count.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Completed round trips (message out, full echo back) per second.
    pub messages_per_sec: f64,
    /// Echoed payload per second, in MB (10^6 bytes), counted once (not out + back).
    pub megabytes_per_sec: f64,
    /// Median round-trip latency in microseconds; `None` when nothing completed.
    pub p50_us: Option<f64>,
    /// 99th percentile round-trip latency in microseconds.
    pub p99_us: Option<f64>,
    /// 99.9th percentile round-trip latency in microseconds.
    pub p999_us: Option<f64>,
}

/// The value below which `fraction` (0.0 to 1.0) of the sorted samples lie, by the
/// nearest-rank method: the smallest sample such that at least that share of all
/// samples is less than or equal to it. `None` for no samples.
pub fn percentile(sorted: &[u64], fraction: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let wanted_rank = (fraction.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    let index = wanted_rank.clamp(1, sorted.len()) - 1;
    Some(sorted[index])
}

/// Summarises one measurement. `latencies_ns` holds one entry per completed round
/// trip (it gets sorted in place); `elapsed` is the length of the measuring window.
pub fn summarize(latencies_ns: &mut [u64], message_size: usize, elapsed: Duration) -> Summary {
    latencies_ns.sort_unstable();
    let seconds = elapsed.as_secs_f64();
    let round_trips = latencies_ns.len() as f64;
    let messages_per_sec = if seconds > 0.0 {
        round_trips / seconds
    } else {
        0.0
    };
    let in_micros = |nanos: u64| nanos as f64 / 1_000.0;
    Summary {
        messages_per_sec,
        megabytes_per_sec: messages_per_sec * message_size as f64 / 1_000_000.0,
        p50_us: percentile(latencies_ns, 0.50).map(in_micros),
        p99_us: percentile(latencies_ns, 0.99).map(in_micros),
        p999_us: percentile(latencies_ns, 0.999).map(in_micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let samples: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&samples, 0.50), Some(500));
        assert_eq!(percentile(&samples, 0.99), Some(990));
        assert_eq!(percentile(&samples, 0.999), Some(999));
        assert_eq!(percentile(&samples, 1.0), Some(1000));
        assert_eq!(percentile(&samples, 0.0), Some(1));
    }

    #[test]
    fn percentile_of_few_samples_is_the_largest_for_high_fractions() {
        assert_eq!(percentile(&[7], 0.5), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 0.999), Some(3));
        assert_eq!(percentile(&[1, 2, 3], 0.5), Some(2));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn summary_turns_counts_into_rates() {
        let mut latencies = vec![3_000, 1_000, 2_000, 4_000];
        let summary = summarize(&mut latencies, 500, Duration::from_secs(2));
        assert_eq!(summary.messages_per_sec, 2.0);
        assert_eq!(summary.megabytes_per_sec, 0.001);
        assert_eq!(summary.p50_us, Some(2.0));
        assert_eq!(summary.p999_us, Some(4.0));
    }

    #[test]
    fn summary_of_nothing_has_no_percentiles() {
        let summary = summarize(&mut [], 64, Duration::from_secs(1));
        assert_eq!(summary.messages_per_sec, 0.0);
        assert_eq!(summary.p99_us, None);
    }
}
