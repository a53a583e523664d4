//! `grade --format`: each machine format has the shape its consumers expect, also when a
//! hostile program prints markup, control characters and workflow commands.

pub mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use quick_xml::events::Event as Xml;
use serde_json::Value;

/// A "server" that prints everything a report must survive, then exits.
const HOSTILE: &str = r#"#!/bin/sh
printf '::error title=pwned::injected\n::add-mask::secret\n::stop-commands::x\n' >&2
printf '\001bell \033[31mred <&> "quote" '"'"'apos'"'"' ]]> %%0A end\r\n' >&2
printf '::warning::from stdout\n'
exit 3
"#;

fn hostile(dir: &Path) -> String {
    let path = dir.join("hostile");
    std::fs::write(&path, HOSTILE).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn grade(args: &[&str], envs: &[(&str, &Path)]) -> String {
    let mut command = assert_cmd::Command::cargo_bin("xtask").unwrap();
    command.arg("grade").args(args);
    command
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT");
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.code().is_some_and(|c| c < 2),
        "grade {args:?} failed to run:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("reports are UTF-8")
}

const TWO_CHECKS: [&str; 4] = ["--check", "listens", "--check", "greets"];

fn args<'a>(program: &'a [&'a str], format: &'a str) -> Vec<&'a str> {
    let mut all = vec!["lab1"];
    all.extend(program);
    all.extend(["--format", format]);
    all.extend(TWO_CHECKS);
    all
}

#[test]
fn json_is_the_report_and_json_flag_is_its_alias() {
    let text = grade(&args(&["--solution"], "json"), &[]);
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["lab"], "lab1");
    assert_eq!(report["checks"].as_array().unwrap().len(), 2);
    let mut old = vec!["lab1", "--solution", "--json"];
    old.extend(TWO_CHECKS);
    let alias: Value = serde_json::from_str(&grade(&old, &[])).unwrap();
    assert_eq!(alias["score"], report["score"]);
    assert_eq!(alias["checks"][1]["name"], "greets");
}

#[test]
fn gradescope_results_follow_the_autograder_specification() {
    let dir = tempfile::tempdir().unwrap();
    let program = hostile(dir.path());
    for (runner, passes) in [(vec!["--solution"], true), (vec!["--cmd", &program], false)] {
        let text = grade(&args(&runner, "gradescope"), &[]);
        let results: Value = serde_json::from_str(&text).unwrap();
        assert!(results["score"].is_u64() && results["execution_time"].is_u64());
        assert!(results["output"].is_string());
        let tests = results["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 2);
        let mut sum = 0;
        for test in tests {
            for key in ["name", "output", "visibility"] {
                assert!(test[key].is_string(), "{key} in {test}");
            }
            assert!(test["score"].as_u64().unwrap() <= test["max_score"].as_u64().unwrap());
            let status = test["status"].as_str().unwrap();
            assert_eq!(status, if passes { "passed" } else { "failed" });
            sum += test["score"].as_u64().unwrap();
        }
        assert_eq!(results["score"].as_u64(), Some(sum));
        if !passes {
            assert!(
                tests[0]["output"]
                    .as_str()
                    .unwrap()
                    .contains("exit status 3")
            );
        }
    }
}

#[test]
fn gradescope_results_file_is_written_with_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    let mut all = args(&["--solution"], "gradescope");
    let file_arg = file.display().to_string();
    all.extend(["--out", &file_arg]);
    assert_eq!(grade(&all, &[]), "", "with --out nothing is printed");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(results["tests"].as_array().unwrap().len(), 2);
}

#[test]
fn junit_is_well_formed_xml_even_with_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let program = hostile(dir.path());
    let text = grade(&args(&["--cmd", &program], "junit"), &[]);
    for c in text.chars() {
        let code = c as u32;
        assert!(
            matches!(code, 0x9 | 0xA | 0xD) || code >= 0x20,
            "a control character XML cannot carry: {code:#x}"
        );
    }
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut path: Vec<String> = Vec::new();
    let (mut suites, mut cases, mut failures) = (0, 0, 0);
    let mut failure_text = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Xml::Empty(e) if e.name().as_ref() == b"testcase" => {
                assert_eq!(path, ["testsuites", "testsuite"]);
                cases += 1;
            }
            Xml::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                match name.as_str() {
                    "testsuite" => {
                        assert_eq!(path, ["testsuites"]);
                        suites += 1;
                    }
                    "testcase" => {
                        assert_eq!(path, ["testsuites", "testsuite"]);
                        cases += 1;
                    }
                    "failure" => {
                        assert_eq!(path.last().map(String::as_str), Some("testcase"));
                        failures += 1;
                        let message = e.try_get_attribute("message").unwrap().unwrap();
                        let message = message.unescape_value().unwrap();
                        assert!(message.contains("exit status 3"), "{message}");
                    }
                    _ => {}
                }
                path.push(name);
            }
            Xml::Text(t) if path.last().map(String::as_str) == Some("failure") => {
                failure_text.push_str(&t.unescape().unwrap());
            }
            Xml::End(_) => {
                path.pop();
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    assert_eq!((suites, cases, failures), (1, 2, 2));
    assert!(
        failure_text.contains(r#"red <&> "quote" 'apos' ]]>"#),
        "{failure_text}"
    );
    assert!(
        failure_text.contains("\\x01bell"),
        "control characters shown visibly"
    );
}

#[test]
fn tap_has_a_plan_numbered_points_and_yaml_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let program = hostile(dir.path());
    let text = grade(&args(&["--cmd", &program], "tap"), &[]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "TAP version 14");
    assert_eq!(lines[1], "1..2");
    let mut number = 0;
    let mut in_yaml = false;
    for line in &lines[2..] {
        if in_yaml {
            if *line == "  ..." {
                in_yaml = false;
            } else {
                assert!(line.starts_with("  "), "YAML lines are indented: {line:?}");
                let (key, value) = line[2..].split_once(": ").expect("key: value");
                assert!(key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                assert!(
                    value.parse::<u64>().is_ok() || serde_json::from_str::<String>(value).is_ok(),
                    "a quoted scalar: {value}"
                );
                assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
            }
        } else if *line == "  ---" {
            in_yaml = true;
        } else if let Some(rest) = line.strip_prefix("not ok ").or(line.strip_prefix("ok ")) {
            number += 1;
            assert!(rest.starts_with(&format!("{number} - lab1: ")), "{line}");
        } else {
            assert!(line.starts_with('#'), "unexpected line {line:?}");
        }
    }
    assert!(!in_yaml);
    assert_eq!(number, 2);
    assert!(text.contains("not ok 1 - lab1: listens\n  ---\n  message: "));
}

#[test]
fn github_annotations_cannot_be_hijacked_and_classroom_points_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let program = hostile(dir.path());
    let summary = dir.path().join("summary.md");
    let output = dir.path().join("output");
    let text = grade(
        &args(&["--cmd", &program], "github"),
        &[
            ("GITHUB_STEP_SUMMARY", &summary),
            ("GITHUB_OUTPUT", &output),
        ],
    );
    let lines: Vec<&str> = text.lines().collect();
    let token = lines[0]
        .strip_prefix("::stop-commands::")
        .expect("the log starts by stopping commands");
    assert!(token.len() >= 32 && token.chars().all(|c| c.is_ascii_hexdigit()));
    let end = lines
        .iter()
        .position(|l| *l == format!("::{token}::"))
        .expect("commands resume with the same token");
    let inside = lines[1..end].join("\n");
    assert!(
        inside.contains("::error title=pwned::injected"),
        "the log is kept"
    );
    let mut errors = 0;
    for line in &lines[end + 1..] {
        let (command, rest) = line[2..].split_once(' ').unwrap_or((&line[2..], ""));
        match command {
            "error" => {
                errors += 1;
                let (title, message) = rest.split_once("::").unwrap();
                let title = title.strip_prefix("title=").unwrap();
                assert!(!title.contains([':', ',', '\n', '\r']), "{title}");
                assert!(title.starts_with("lab1%3A "), "{title}");
                assert!(message.contains("%0A"), "line breaks escaped");
                assert!(!message.contains('\r'));
            }
            "notice" => assert!(rest.starts_with("title=socklab lab1::")),
            other => panic!("unexpected command {other:?} in {line:?}"),
        }
    }
    assert_eq!(errors, 2);

    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("| check | points | result |"), "{summary}");
    assert!(summary.contains("| `listens` | 0/1 | failed: "));
    let output = std::fs::read_to_string(&output).unwrap();
    let encoded = output.strip_prefix("result=").unwrap().trim_end();
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let result: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(result["status"], "fail");
    assert_eq!(result["max_score"], 2);
    let tests = result["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 2);
    assert!(
        tests
            .iter()
            .all(|t| t["score"] == 0 && t["status"] == "fail")
    );
}

/// A lab1 "server" that listens and accepts but never says anything.
const SILENT: &str = r#"#!/usr/bin/env python3
import socket, sys
args = sys.argv[1:]
host = args[args.index("--host") + 1]
port = int(args[args.index("--port") + 1])
server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((host, port))
server.listen(5)
clients = []
while True:
    clients.append(server.accept()[0])
"#;

#[test]
fn a_report_file_cut_short_keeps_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("silent");
    std::fs::write(&program, SILENT).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let results = dir.path().join("results.json");
    // One check at a time: `listens` passes at once, `greets` waits for a greeting that
    // never comes; the grader is stopped while it waits.
    let mut grader = std::process::Command::new(assert_cmd::cargo::cargo_bin("xtask"))
        .args(["grade", "lab1", "--cmd", program.to_str().unwrap()])
        .args(["--format", "gradescope", "--jobs", "1", "--out"])
        .arg(&results)
        .args(TWO_CHECKS)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !results.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no report after the first check"
        );
        assert!(
            grader.try_wait().unwrap().is_none(),
            "the grader ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let finished_early = grader.try_wait().unwrap().is_some();
    unsafe { libc::kill(grader.id() as i32, libc::SIGTERM) };
    let status = grader.wait().unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap())
        .expect("the file holds a whole report");
    let tests = report["tests"].as_array().unwrap();
    if !finished_early {
        assert_eq!(status.code(), Some(130), "stopped by the signal");
        assert_eq!(tests.len(), 1, "{report:#}");
        assert_eq!(tests[0]["name"], "lab1: listens");
        assert_eq!(tests[0]["status"], "passed");
        assert_eq!(report["score"], 1);
    }
}
