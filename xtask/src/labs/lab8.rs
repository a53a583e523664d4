//! Lab 8 (probe): its check table and classroom demo (placeholder until written).

use crate::grade::Lab;

pub static LAB: Lab = Lab {
    id: "lab8",
    slug: "probe",
    title: "probe",
    checks: &[],
    demo: None,
};
