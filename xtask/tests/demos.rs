//! Every lab's classroom demo plays to its end with narrated socket calls from more
//! than one speaker, interleaved.

pub mod common;

#[test]
fn every_demo_narrates_a_whole_session() {
    // The demos mostly wait on their programs, so all eight play at once.
    let played: Vec<(String, std::process::Output)> = std::thread::scope(|scope| {
        let demos: Vec<_> = (1..=8)
            .map(|n| {
                scope.spawn(move || {
                    let lab = format!("lab{n}");
                    let output = common::xtask(&["demo", &lab]);
                    (lab, output)
                })
            })
            .collect();
        demos.into_iter().map(|demo| demo.join().unwrap()).collect()
    });
    for (lab, output) in played {
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{lab} demo failed:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let speakers: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix('[')?.split(']').next())
            .collect();
        assert!(
            speakers.len() >= 2,
            "{lab}: one speaker only: {speakers:?}\n{text}"
        );
        let narrated_calls = ["socket()", "bind(", "connect(", "accept()", "recv"];
        assert!(
            narrated_calls
                .iter()
                .filter(|call| text.contains(*call))
                .count()
                >= 2,
            "{lab}: the demo narrates no socket calls:\n{text}"
        );
        assert!(text.contains(&format!("end of the {lab} demo")));
    }
}
