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

/// Labs whose solution does not read in step order yet (another change is on them).
/// The test below fails when one of them does read in order: then remove it here.
const NOT_YET_IN_ORDER: &[&str] = &[];

/// The numbered steps of one solution file, in line order: (client step?, number, line).
fn numbered_steps(text: &str) -> Vec<(bool, u32, usize)> {
    let mut steps = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(title) = trimmed
            .strip_prefix("//- answer:")
            .or_else(|| trimmed.strip_prefix("//- given:"))
        else {
            continue;
        };
        let title = title.trim();
        let Some(at) = title.find("step ") else {
            continue;
        };
        let digits: String = title[at + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !title[at + 5 + digits.len()..].starts_with(':') {
            continue; // an unnumbered step (`stale check: ...`)
        }
        steps.push((at > 0, digits.parse().unwrap(), index + 1));
    }
    steps
}

/// Where the numbers of `steps` (one group, in reading order) go down, other than back to
/// step 1, which starts another program of the same file (lab 5's server and client).
fn out_of_order(steps: &[(u32, String)]) -> Vec<String> {
    steps
        .windows(2)
        .filter(|pair| pair[1].0 < pair[0].0 && pair[1].0 != 1)
        .map(|pair| {
            format!(
                "step {} ({}) comes after step {} ({})",
                pair[1].0, pair[1].1, pair[0].0, pair[0].1
            )
        })
        .collect()
}

/// A student reads a solution top to bottom, file by file: the step numbers must follow
/// that order. Within a file, numbers never go down (except back to 1, for a second
/// program); across the files of a one-program lab, each file holds a run of steps that
/// do not interleave with another file's, so there is an order to read the files in.
#[test]
fn solutions_read_in_step_order() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let mut labs: Vec<_> = std::fs::read_dir(root.join("solutions"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    labs.sort();
    let mut problems = Vec::new();
    for lab in labs {
        let name = lab.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<_> = std::fs::read_dir(lab.join("src"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort();
        let mut found = Vec::new();
        for client in [false, true] {
            // (first number, the file's steps) for every file with steps of this group.
            let mut runs: Vec<(u32, Vec<(u32, String)>)> = Vec::new();
            let mut restarts = false;
            for file in &files {
                let text = std::fs::read_to_string(file).unwrap();
                let short = file.file_name().unwrap().to_string_lossy().to_string();
                let steps: Vec<(u32, String)> = numbered_steps(&text)
                    .into_iter()
                    .filter(|(is_client, _, _)| *is_client == client)
                    .map(|(_, number, line)| (number, format!("{short}:{line}")))
                    .collect();
                if steps.is_empty() {
                    continue;
                }
                found.extend(out_of_order(&steps));
                restarts |= steps.windows(2).any(|pair| pair[1].0 < pair[0].0);
                runs.push((steps[0].0, steps));
            }
            if !restarts {
                runs.sort_by_key(|(first, _)| *first);
                let all: Vec<(u32, String)> = runs.into_iter().flat_map(|(_, s)| s).collect();
                found.extend(out_of_order(&all));
            }
        }
        found.dedup();
        let expected_out_of_order = NOT_YET_IN_ORDER.contains(&name.as_str());
        match (found.is_empty(), expected_out_of_order) {
            (true, true) => problems.push(format!(
                "{name} reads in step order now: remove it from NOT_YET_IN_ORDER"
            )),
            (false, false) => problems.push(format!("{name}: {}", found.join("; "))),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
