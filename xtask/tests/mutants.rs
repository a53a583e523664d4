//! Every check can fail: each mutant fails exactly the checks it declares, and every
//! check is failed by at least one mutant.

pub mod common;

#[test]
fn every_mutant_fails_exactly_its_checks() {
    let output = common::xtask(&["mutants"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
