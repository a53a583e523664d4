//! `.socklab/state.json`: what the student loop remembers between runs (gitignored).
//!
//! Per lab: the last score, the steps written when it was graded, when that was, and
//! how many hints were asked for the step the student is at. Reading never fails (a
//! missing file, or one that is not JSON, is an empty state; a field that is missing or
//! out of range reads as unknown); writing is atomic (a temporary file
//! renamed over the old one), so an interrupted run never leaves half a file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::Value;

use super::progress::Progress;
use crate::grade::serial::serialize_fields;

/// The whole state file.
#[derive(Debug, Default)]
pub struct State {
    /// Bumped when the layout changes incompatibly.
    pub version: u32,
    /// By lab id (`lab1`).
    pub labs: BTreeMap<String, LabState>,
}
serialize_fields!(State { version, labs });

/// What is remembered about one lab.
#[derive(Debug, Default, Clone)]
pub struct LabState {
    /// The last grade: score and maximum.
    pub score: Option<u32>,
    pub max: Option<u32>,
    /// Steps written (and in all) when it was last graded.
    pub written: Option<usize>,
    pub total: Option<usize>,
    /// When it was last graded, in seconds since 1970 (UTC).
    pub graded_at: Option<u64>,
    /// The step the hints below were asked for (`file:title`).
    pub hint_step: Option<String>,
    /// How many hints were asked for `hint_step`.
    pub hints_asked: u32,
}
serialize_fields!(LabState {
    score,
    max,
    written,
    total,
    graded_at,
    hint_step,
    hints_asked,
});

impl State {
    /// Reads what `save` wrote. A field that is missing or out of range reads as
    /// unknown (`None`, 0), so a file from an older or newer xtask still loads.
    fn from_json(value: &Value) -> State {
        let labs = value.get("labs").and_then(Value::as_object);
        State {
            version: small(value, "version").unwrap_or(0),
            labs: labs
                .into_iter()
                .flatten()
                .map(|(lab, entry)| (lab.clone(), LabState::from_json(entry)))
                .collect(),
        }
    }
}

impl LabState {
    fn from_json(entry: &Value) -> LabState {
        let count = |name| small(entry, name).map(|n| n as usize);
        LabState {
            score: small(entry, "score"),
            max: small(entry, "max"),
            written: count("written"),
            total: count("total"),
            graded_at: entry.get("graded_at").and_then(Value::as_u64),
            hint_step: entry
                .get("hint_step")
                .and_then(Value::as_str)
                .map(String::from),
            hints_asked: small(entry, "hints_asked").unwrap_or(0),
        }
    }
}

/// The field `name` of an object, when it is a whole number that fits in a `u32`.
fn small(object: &Value, name: &str) -> Option<u32> {
    let number = object.get(name)?.as_u64()?;
    u32::try_from(number).ok()
}

const VERSION: u32 = 1;

/// Where the state lives: `.socklab/state.json` at the workspace root.
pub fn path(root: &Path) -> PathBuf {
    root.join(".socklab").join("state.json")
}

/// The saved state, or an empty one when there is none (or it cannot be read).
pub fn load(root: &Path) -> State {
    let Ok(text) = fs::read_to_string(path(root)) else {
        return State::default();
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => State::from_json(&value),
        Err(_) => State::default(),
    }
}

/// Writes the state atomically: a temporary file in the same folder, then rename().
pub fn save(root: &Path, state: &State) -> anyhow::Result<()> {
    let target = path(root);
    let folder = target.parent().expect("the state file sits in a folder");
    fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let text = serde_json::to_string_pretty(state)? + "\n";
    crate::grade::files::replace_atomically(&target, text.as_bytes())
        .with_context(|| format!("cannot write {}", target.display()))
}

/// Changes one lab's entry and saves; a failure is one line on stderr, never an error.
fn update(root: &Path, lab: &str, change: impl FnOnce(&mut LabState)) {
    let mut state = load(root);
    state.version = VERSION;
    change(state.labs.entry(lab.to_string()).or_default());
    if let Err(message) = save(root, &state) {
        eprintln!("xtask: note: progress not saved: {message:#}");
    }
}

/// Remembers a grade of `lab` (and how far its steps were), for `list` and `watch`.
pub fn record_grade(root: &Path, lab: &str, score: u32, max: u32, progress: Option<&Progress>) {
    update(root, lab, |entry| {
        entry.score = Some(score);
        entry.max = Some(max);
        if let Some(progress) = progress {
            entry.written = Some(progress.written);
            entry.total = Some(progress.total);
        }
        entry.graded_at = Some(now());
    });
}

/// Counts one more hint asked for `step` of `lab`; returns how many were asked for
/// that step before this one (0 the first time).
pub fn count_hint(root: &Path, lab: &str, step: &str) -> u32 {
    let mut before = 0;
    update(root, lab, |entry| {
        if entry.hint_step.as_deref() == Some(step) {
            before = entry.hints_asked;
        } else {
            entry.hint_step = Some(step.to_string());
            entry.hints_asked = 0;
        }
        entry.hints_asked += 1;
    });
    before
}

/// Forgets the hints counted for `lab` (after a reset the steps start over).
pub fn forget_hints(root: &Path, lab: &str) {
    update(root, lab, |entry| {
        entry.hint_step = None;
        entry.hints_asked = 0;
    });
}

/// Seconds since 1970, UTC.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `20261125-164100` (UTC) for a time in seconds since 1970.
pub fn stamp(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_dates() {
        assert_eq!(stamp(0), "19700101-000000");
        assert_eq!(stamp(1_764_088_861), "20251125-164101");
        assert_eq!(stamp(951_782_400), "20000229-000000");
    }

    #[test]
    fn grades_and_hints_survive_a_reload() {
        let root = tempfile::tempdir().unwrap();
        record_grade(root.path(), "lab1", 3, 10, None);
        assert_eq!(count_hint(root.path(), "lab1", "a"), 0);
        assert_eq!(count_hint(root.path(), "lab1", "a"), 1);
        assert_eq!(count_hint(root.path(), "lab1", "b"), 0);
        let saved = load(root.path()).labs.remove("lab1").unwrap();
        assert_eq!((saved.score, saved.max), (Some(3), Some(10)));
        assert_eq!(saved.hints_asked, 1);
        assert!(saved.graded_at.is_some());
    }

    #[test]
    fn every_field_survives_a_reload_and_odd_fields_read_as_unknown() {
        let root = tempfile::tempdir().unwrap();
        let mut state = State {
            version: VERSION,
            ..State::default()
        };
        let lab = LabState {
            score: Some(7),
            max: Some(9),
            written: Some(4),
            total: Some(6),
            graded_at: Some(1_764_088_861),
            hint_step: Some("src/main.rs:step 5".into()),
            hints_asked: 2,
        };
        state.labs.insert("lab3".into(), lab.clone());
        save(root.path(), &state).unwrap();
        let back = load(root.path());
        assert_eq!(back.version, VERSION);
        assert_eq!(format!("{:?}", back.labs["lab3"]), format!("{lab:?}"));

        let odd = r#"{"version": 1, "labs": {"lab2": {"score": -1, "max": 10,
            "written": "three", "hints_asked": 99999999999, "future_field": [1]}}}"#;
        fs::write(path(root.path()), odd).unwrap();
        let back = load(root.path()).labs.remove("lab2").unwrap();
        assert_eq!((back.score, back.max, back.written), (None, Some(10), None));
        assert_eq!(back.hints_asked, 0);
    }
}
