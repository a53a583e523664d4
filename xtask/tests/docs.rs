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

/// The top-level README's "Where each concept is taught" table names steps and checks by
/// hand; each must exist in that lab's README (whose tables `docs --check` keeps true).
#[test]
fn the_concept_table_names_real_steps_and_checks() {
    let root = common::repo();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table = readme
        .split_once("<!-- socklab:concepts:begin -->")
        .and_then(|(_, rest)| rest.split_once("<!-- socklab:concepts:end -->"))
        .map(|(table, _)| table)
        .expect("README.md has a concepts table between socklab:concepts markers");
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with("| ")).skip(2) {
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches('|').trim())
            .collect();
        let [concept, lab, steps, checks] = cells[..] else {
            panic!("a concept row has 4 cells: {line}");
        };
        let folder = std::fs::read_dir(root.join("labs"))
            .unwrap()
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("lab{lab}-"))
            })
            .unwrap_or_else(|| panic!("{concept}: no lab {lab}"));
        let lab_readme = std::fs::read_to_string(folder.path().join("README.md")).unwrap();
        for step in steps.split(", ") {
            let cell = if step.chars().all(|c| c.is_ascii_digit())
                || step.strip_prefix("client ").is_some()
            {
                format!("| {step} |")
            } else {
                step.to_string() // an unnumbered step: words of its title
            };
            assert!(
                lab_readme.contains(&cell),
                "{concept}: lab {lab} has no step {step:?} in its step tables"
            );
        }
        for check in checks.split('`').skip(1).step_by(2) {
            if check.starts_with("cargo ") {
                continue; // a demo command
            }
            assert!(
                lab_readme.contains(&format!("| `{check}` |")),
                "{concept}: lab {lab} has no check `{check}`"
            );
        }
        rows += 1;
    }
    assert!(rows >= 30, "the concept table lost rows ({rows})");
}
