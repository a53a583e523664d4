//! The lab READMEs' check and step tables are what `cargo xtask docs` generates from the
//! check tables and the solutions' fences: one source of truth, nothing to drift.

pub mod common;

#[test]
fn readme_tables_are_generated_from_the_check_tables_and_fences() {
    let output = common::xtask(&["docs", "--check"]);
    assert!(
        output.status.success(),
        "a README's tables are stale: run `cargo xtask docs`\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
