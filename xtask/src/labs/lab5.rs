//! Lab 5 (unix): its check table and classroom demo (placeholder until written).

use crate::grade::Lab;

pub static LAB: Lab = Lab {
    id: "lab5",
    slug: "unix",
    title: "unix",
    checks: &[],
    demo: None,
};
