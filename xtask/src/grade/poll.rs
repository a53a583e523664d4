//! Waiting on what a program did: ask again and again, a few milliseconds apart, until
//! the answer is there or a deadline passes.
//!
//! Checks never sleep a fixed time and hope: a program on a loaded machine may take
//! longer, and a fixed sleep either fails it or makes every run slow. They poll what
//! can be seen (a listener in the kernel's tables, a line on stdout, a process state)
//! with a limit that is only reached when something is wrong. This is the one loop
//! that does it, so each wait reads as its question and its limit.

use std::time::{Duration, Instant};

/// Calls `ready` every `every` until it returns `Some` (then that value), or `limit`
/// has passed (then `None`). It is always called at least once, and once more at the
/// deadline, so a slow first answer still counts.
pub fn until<T>(
    limit: Duration,
    every: Duration,
    mut ready: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// [`until`] for a yes-or-no question: whether `holds` became true within `limit`.
pub fn holds(limit: Duration, every: Duration, mut holds: impl FnMut() -> bool) -> bool {
    until(limit, every, || holds().then_some(())).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_answer() {
        let mut calls = 0;
        let got = until(Duration::from_secs(5), Duration::from_millis(1), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
    }

    #[test]
    fn gives_up_at_the_limit_after_asking_at_least_twice() {
        let mut calls = 0;
        let started = Instant::now();
        let held = holds(Duration::from_millis(30), Duration::from_millis(5), || {
            calls += 1;
            false
        });
        assert!(!held);
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(calls >= 2, "{calls}");
    }

    #[test]
    fn a_zero_limit_still_asks_once() {
        assert!(holds(Duration::ZERO, Duration::from_millis(5), || true));
    }
}
