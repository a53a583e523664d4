//! Lab 4 (udp): its check table and classroom demo (placeholder until written).

use crate::grade::Lab;

pub static LAB: Lab = Lab {
    id: "lab4",
    slug: "udp",
    title: "udp",
    checks: &[],
    demo: None,
};
