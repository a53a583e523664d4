//! Lab 6 (threads): its check table and classroom demo (placeholder until written).

use crate::grade::Lab;

pub static LAB: Lab = Lab {
    id: "lab6",
    slug: "threads",
    title: "threads",
    checks: &[],
    demo: None,
};
