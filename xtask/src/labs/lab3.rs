//! Lab 3 (echo): its check table and classroom demo (placeholder until written).

use crate::grade::Lab;

pub static LAB: Lab = Lab {
    id: "lab3",
    slug: "echo",
    title: "echo",
    checks: &[],
    demo: None,
};
