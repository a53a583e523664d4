//! The generated skeletons are up to date, and the grader reports them kindly:
//! zero points, every check "not implemented yet", never a grader crash.

pub mod common;

#[test]
fn skeletons_are_generated_from_the_solutions() {
    let output = common::xtask(&["skeletons", "--check"]);
    assert!(
        output.status.success(),
        "labs/ is stale: run `cargo xtask skeletons`\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn skeletons_score_zero_with_readable_reports() {
    let output = common::xtask(&["grade", "all", "--json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "not full marks, but no crash (2)"
    );
    for report in common::reports(&output) {
        assert_eq!(
            report["score"], 0,
            "{} skeleton scored points",
            report["lab"]
        );
        for check in report["checks"].as_array().unwrap() {
            let name = &check["name"];
            if check["status"] == "cannot-test" {
                continue;
            }
            assert_eq!(check["passed"], false, "{} {name}", report["lab"]);
            assert_eq!(
                check["status"], "not-implemented",
                "{} {name}: the report should name the unfinished step, got:\n{}",
                report["lab"], check["message"]
            );
            let step = check["failure"]["step"].as_str().unwrap_or("");
            assert!(!step.is_empty(), "{} {name}: no step named", report["lab"]);
        }
    }
}
