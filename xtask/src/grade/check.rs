//! The vocabulary of a lab's check table: [`Lab`], [`Row`], [`Check`] and [`Failure`].
//!
//! A lab declares its checks as a static table of [`Row`]s, one line each: the name,
//! the points, the budget and the function that runs it. What each check verifies, in
//! words, lives beside the mutants in `xtask/checks/LAB.toml` (`verifies`: the line the
//! reports show; `details`: the lab README's check table, which `cargo xtask docs`
//! generates). [`Lab::checks`] joins the two into [`Check`]s, and a test keeps them in
//! step (every row has its words, every entry a row). Each check is a plain function
//! that drives the program under test through a [`Ctx`](super::Ctx) and returns `Ok(())`
//! or a [`Failure`] that says what was sent, what was expected, what came back, and a
//! hint keyed to what went wrong.

use std::sync::OnceLock;
use std::time::Duration;

use super::Ctx;
#[cfg(feature = "tools")]
use super::demo::Demo;
use super::words::Words;

/// A lab's scripted classroom session, played by `cargo xtask demo`.
#[cfg(feature = "tools")]
pub type DemoScript = fn(&mut Demo) -> anyhow::Result<()>;

/// One lab: its identity, its checks and its classroom demo.
pub struct Lab {
    /// `lab3`: also the student's package name; the reference is `lab3-solution`.
    pub id: &'static str,
    /// `echo`: the folder is `labs/lab3-echo` (and `solutions/lab3-echo`).
    pub slug: &'static str,
    /// One line for the report header.
    pub title: &'static str,
    /// The check table, run in order.
    pub table: &'static [Row],
    /// `xtask/checks/LAB.toml`: each check's words, keyed by its name.
    pub words: &'static str,
    /// The scripted session `cargo xtask demo` plays with the reference programs.
    #[cfg(feature = "tools")]
    pub demo: Option<DemoScript>,
    /// The table joined with its words, made on first use (set it to `OnceLock::new()`).
    pub joined: OnceLock<Vec<Check>>,
}

impl Lab {
    /// The student's package (`lab3`) or the reference's (`lab3-solution`).
    pub fn package(&self, solution: bool) -> String {
        if solution {
            format!("{}-solution", self.id)
        } else {
            self.id.to_string()
        }
    }

    /// The checks, in table order, each with its words from `xtask/checks/LAB.toml`.
    /// A row whose words are missing keeps the standard ones (or none): the test
    /// `every_row_has_its_words` makes sure that never ships.
    pub fn checks(&self) -> &[Check] {
        self.joined.get_or_init(|| {
            let words = Words::parse(self.words).unwrap_or_default();
            self.table
                .iter()
                .map(|row| {
                    let (verifies, details) = lines_of(&words, row.name);
                    Check {
                        name: row.name,
                        points: row.points,
                        verifies: verifies.unwrap_or(row.verifies),
                        details: details.unwrap_or(row.details),
                        run: row.run,
                        budget: row.budget,
                    }
                })
                .collect()
        })
    }

    /// What is wrong between the table and its words file: entries with no row, rows
    /// with no words, a file that does not parse (empty when they agree).
    pub fn words_problems(&self) -> Vec<String> {
        let words = match Words::parse(self.words) {
            Ok(words) => words,
            Err(e) => return vec![format!("xtask/checks/{}.toml: {e}", self.id)],
        };
        let mut problems = Vec::new();
        for row in self.table {
            let (verifies, details) = lines_of(&words, row.name);
            if verifies.is_none() && row.verifies.is_empty() {
                problems.push(format!("{}: no `verifies` for {}", self.id, row.name));
            }
            if details.is_none() && row.details.is_empty() {
                problems.push(format!("{}: no `details` for {}", self.id, row.name));
            }
        }
        for name in words.0.keys() {
            if !self.table.iter().any(|row| row.name == name) {
                problems.push(format!("{}: words for {name}, which no row runs", self.id));
            }
        }
        problems
    }
}

/// The check's two lines from its words file, made `'static` once per process (a few
/// kilobytes).
fn lines_of(words: &Words, name: &str) -> (Option<&'static str>, Option<&'static str>) {
    let field = |key| words.get(name, key).map(|text| &*text.to_string().leak());
    (field("verifies"), field("details"))
}

/// What a check runs: drives the program through the context, passes or fails.
pub type Run = fn(&mut Ctx) -> Result<(), Failure>;

/// One line of a lab's check table: `row("echoes", echoes).points(2)`.
#[derive(Clone, Copy)]
pub struct Row {
    /// Short, stable, kebab-case: mutant tables, words files and `--json` refer to it.
    pub name: &'static str,
    pub points: u32,
    pub run: Run,
    /// The most this check may take on a slow, loaded machine (20 s unless set).
    pub budget: Duration,
    /// A standard row's report line (see [`standard`](super::standard)); the words
    /// file may say another.
    pub verifies: &'static str,
    /// A standard row's README line, if it has one everywhere.
    pub details: &'static str,
}

/// A one-point row with the usual budget (20 s); its words come from the words file.
pub const fn row(name: &'static str, run: Run) -> Row {
    Row {
        name,
        points: 1,
        run,
        budget: secs(20),
        verifies: "",
        details: "",
    }
}

impl Row {
    /// The same row worth `points`.
    pub const fn points(mut self, points: u32) -> Row {
        self.points = points;
        self
    }

    /// The same row with a budget of `seconds`.
    pub const fn budget(mut self, seconds: u64) -> Row {
        self.budget = secs(seconds);
        self
    }
}

/// One check as the grader runs and reports it: a row joined with its words.
pub struct Check {
    /// Short, stable, kebab-case: mutant tables and `--json` refer to it.
    pub name: &'static str,
    pub points: u32,
    /// What the check verifies, in one line a student understands (the reports).
    pub verifies: &'static str,
    /// What the grader does and accepts, exactly: the "what it verifies" column of the
    /// lab README's check table, which `cargo xtask docs` generates from this (Markdown).
    pub details: &'static str,
    pub run: Run,
    /// The most this check may take on a slow, loaded machine. Past it the check fails
    /// with "no answer within N s", its programs are killed and the others go on.
    pub budget: Duration,
}

/// A budget of `n` seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Why a check failed, in the words the report shows. Boxed, so that the
/// `Result<(), Failure>` every check returns stays one pointer wide; its fields are
/// read through [`Details`].
#[derive(Debug, Clone, Default)]
pub struct Failure(Box<Details>);

/// What a [`Failure`] says.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub problem: String,
    pub sent: Option<String>,
    pub expected: Option<String>,
    pub got: Option<String>,
    pub hint: Option<String>,
    /// The exact bytes sent, when known: the "try it by hand" line replays them.
    pub sent_raw: Option<Vec<u8>>,
    /// Expected and got as bytes, when the check compared bytes: the report marks
    /// the first byte where they differ.
    pub compared: Option<(Vec<u8>, Vec<u8>)>,
    /// A command line that shows the same thing by hand (else one is derived).
    pub by_hand: Option<String>,
    /// This machine lacks what the check needs (network namespaces): nothing was
    /// tested, and the check is left out of the score ([`Failure::cannot_test_here`]).
    pub cannot_test: bool,
}

impl Failure {
    /// A failure described by what went wrong.
    pub fn new(problem: impl Into<String>) -> Self {
        Failure(Box::new(Details {
            problem: problem.into(),
            ..Details::default()
        }))
    }

    /// Everything the failure says, unboxed.
    pub fn into_details(self) -> Details {
        *self.0
    }

    /// "cannot test this here: WHY": the check could not run on this machine (say,
    /// no network namespaces). Reported as such and left out of the score, never a
    /// pass and never the program's fault.
    pub fn cannot_test_here(why: impl std::fmt::Display) -> Self {
        let mut failure = Failure::new(format!("cannot test this here: {why}"));
        failure.cannot_test = true;
        failure
    }

    /// What the grader sent (use [`show`](super::net::show) for bytes).
    pub fn sent(mut self, sent: impl Into<String>) -> Self {
        self.sent = Some(sent.into());
        self
    }

    /// The bytes the grader sent, shown readably and kept for the by-hand line.
    pub fn sent_bytes(mut self, bytes: &[u8]) -> Self {
        self.sent = Some(super::net::show(bytes));
        self.sent_raw = Some(bytes.to_vec());
        self
    }

    /// What a correct program would have answered and what came back, as bytes: the
    /// report shows both and marks the first byte where they differ.
    pub fn compare(mut self, expected: &[u8], got: &[u8]) -> Self {
        self.expected = Some(super::net::show(expected));
        self.got = Some(super::net::show(got));
        self.compared = Some((expected.to_vec(), got.to_vec()));
        self
    }

    /// What a correct program would have answered.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// What actually came back.
    pub fn got(mut self, got: impl Into<String>) -> Self {
        self.got = Some(got.into());
        self
    }

    /// What to look at; keyed to the symptom, not one fixed hint per lab.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Keeps an existing hint, or adds this one.
    pub fn or_hint(mut self, hint: impl Into<String>) -> Self {
        if self.hint.is_none() {
            self.hint = Some(hint.into());
        }
        self
    }

    /// Puts `context` in front of the problem: "second client: connection refused".
    pub fn during(mut self, context: impl std::fmt::Display) -> Self {
        self.problem = format!("{context}: {}", self.problem);
        self
    }
}

/// A failure read as an error is its problem, in the report's words: a demo script,
/// which has no report, says it on one line (`?` makes it an `anyhow::Error`).
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.problem)
    }
}

impl std::error::Error for Failure {}

impl std::ops::Deref for Failure {
    type Target = Details;

    fn deref(&self) -> &Details {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut Details {
        &mut self.0
    }
}

/// Fails with `failure` unless `condition` holds.
pub fn ensure(condition: bool, failure: impl FnOnce() -> Failure) -> Result<(), Failure> {
    if condition { Ok(()) } else { Err(failure()) }
}
