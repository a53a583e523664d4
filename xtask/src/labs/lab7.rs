//! Lab 7 (event-loop): its check table and classroom demo (placeholder until written).

use crate::grade::Lab;

pub static LAB: Lab = Lab {
    id: "lab7",
    slug: "event-loop",
    title: "event-loop",
    checks: &[],
    demo: None,
};
