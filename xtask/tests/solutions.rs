//! Every reference solution gets full marks from the grader.

pub mod common;

#[test]
fn every_solution_gets_full_marks() {
    let output = common::xtask(&["grade", "all", "--solution", "--json"]);
    let reports = common::reports(&output);
    assert!(reports.len() >= 3, "labs 1-3 at least are graded");
    for report in &reports {
        for (name, passed, message) in common::checks(report) {
            assert!(
                passed,
                "{} {name} failed on the solution:\n{message}",
                report["lab"]
            );
        }
        assert_eq!(report["score"], report["max_score"], "{}", report["lab"]);
    }
    assert!(output.status.success(), "exit status 0 at full marks");
}
