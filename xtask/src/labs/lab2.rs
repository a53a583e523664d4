//! Lab 2 (tcp-client): its check table and classroom demo (placeholder until written).

use crate::grade::Lab;

pub static LAB: Lab = Lab {
    id: "lab2",
    slug: "tcp-client",
    title: "tcp-client",
    checks: &[],
    demo: None,
};
