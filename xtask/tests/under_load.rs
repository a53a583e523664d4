//! Honest verdicts on a loaded machine: with two busy loops taking both cores, every
//! solution still gets full marks, three runs in a row, with checks running concurrently.

pub mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn solutions_get_full_marks_three_times_under_load() {
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n = std::hint::black_box(n.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    let mut failures = Vec::new();
    for run in 1..=3 {
        let output = common::xtask(&["grade", "all", "--solution", "--json"]);
        for report in common::reports(&output) {
            for (name, passed, message) in common::checks(&report) {
                if !passed {
                    failures.push(format!("run {run}: {} {name}: {message}", report["lab"]));
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for spinner in spinners {
        spinner.join().unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
