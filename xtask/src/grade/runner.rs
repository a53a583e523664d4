//! The concurrent runner: runs check tables with a bound on how many checks run at once.
//!
//! Every check has its own [`Ctx`] (programs, scratch folder, OS-chosen ports), so checks
//! can run side by side: grading is mostly waiting on programs, not computing. Each
//! check runs on a thread of its own; the coordinating thread starts up to `jobs` at a
//! time, enforces each check's budget (past it the check fails "no answer within N s"
//! and its programs are killed) and emits results in table order, so the report reads
//! the same whatever order the checks end in.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::ctx::Ctx;
use super::explain::{explain, plain_text};
use super::process;
use super::result::{CheckResult, Event, Explanation, FORMAT_VERSION, Report, Status, Steps};
use super::sandbox::{self, Level, Policy};
use super::{Check, Failure, Lab};

/// One lab to grade: which checks, against which program.
pub struct Plan {
    pub lab: &'static Lab,
    /// The argv prefix of the program under test (the role comes after it).
    pub program: Vec<String>,
    /// The checks to run, in table order.
    pub checks: Vec<&'static Check>,
    /// How the program is shown in reports (`cargo run -p lab1 --`, `python3 x.py`).
    pub shown: String,
    /// How far the student's skeleton is, when grading the student's own crate.
    pub steps: Option<Steps>,
    /// How the program's checks are confined (`basic` unless set).
    pub sandbox: Policy,
}

impl Plan {
    /// Every check of `lab`, or those named in `only` (names already validated).
    pub fn new(lab: &'static Lab, program: Vec<String>, only: &[String]) -> Plan {
        let checks = lab
            .checks()
            .iter()
            .filter(|c| only.is_empty() || only.iter().any(|name| name == c.name))
            .collect();
        let shown = shlex::try_join(program.iter().map(String::as_str)).unwrap_or_default();
        // Programs start in their scratch folder: relative paths must not depend on it.
        let program = sandbox::absolute_argv(&program);
        Plan {
            lab,
            program,
            checks,
            shown,
            steps: None,
            sandbox: Policy::basic(),
        }
    }

    /// Confines this plan's programs at `level` (deciding what holds on this machine).
    pub fn with_sandbox(mut self, level: Level) -> Plan {
        if level == Level::Strict && super::userns::real_root() {
            sandbox::for_others(&mut self.program);
        }
        self.sandbox = Policy::decide(level, &self.program);
        if let Some(why) = sandbox::shares_pids(self.lab.id) {
            self.sandbox = self.sandbox.sharing_pids(why);
        }
        self
    }
}

/// A sensible default for `--jobs`: checks mostly wait, so twice the cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// A check handed to a thread: which plan, which row, and its kill token.
struct Job {
    plan: usize,
    row: usize,
    token: u64,
    started: Instant,
    budget: Duration,
}

/// Runs every plan with at most `jobs` checks at once; `sink` sees every event in
/// order. Returns one report per plan.
pub fn run(plans: &[Plan], jobs: usize, sink: &mut dyn FnMut(Event)) -> Vec<Report> {
    run_within(plans, jobs, None, sink)
}

/// Like [`run`], with a bound on the whole run: when `limit` has passed, the checks
/// still running are stopped and failed like a check past its budget, and those not
/// started yet fail with "not run": a run ends in bounded time whatever the program.
pub fn run_within(
    plans: &[Plan],
    jobs: usize,
    limit: Option<Duration>,
    sink: &mut dyn FnMut(Event),
) -> Vec<Report> {
    process::install_interrupt_cleanup();
    let run_deadline = limit.map(|limit| Instant::now() + limit);
    let order: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(p, plan)| (0..plan.checks.len()).map(move |r| (p, r)))
        .collect();
    // The checks with the largest budgets are the slow ones: start them first, so the
    // run ends soon after its slowest check instead of after a queue of quick ones.
    let mut order = order;
    order.sort_by_key(|&(p, r)| std::cmp::Reverse(plans[p].checks[r].budget));
    let mut results: Vec<Vec<Option<CheckResult>>> =
        plans.iter().map(|p| vec![None; p.checks.len()]).collect();
    let (tx, rx) = mpsc::channel::<(usize, usize, CheckResult)>();
    let live_threads = Arc::new(AtomicUsize::new(0));
    let mut running: Vec<Job> = Vec::new();
    let mut next = 0;
    // What has been emitted: plan index and row within it.
    let mut emitted_plan = 0;
    let mut emitted_row = 0;
    let mut lab_started = vec![false; plans.len()];
    let mut lab_clock = vec![None; plans.len()];
    let mut reports: Vec<Option<Report>> = vec![None; plans.len()];

    loop {
        if let (Some(deadline), Some(limit)) = (run_deadline, limit)
            && Instant::now() >= deadline
        {
            for &(p, r) in &order[next..] {
                results[p][r] = Some(not_run(plans[p].checks[r], limit));
            }
            next = order.len();
            for job in running.drain(..) {
                process::kill_token(job.token);
                let check = plans[job.plan].checks[job.row];
                let mut result = timed_out(check, job.started.elapsed());
                if let Some(e) = result.failure.as_mut() {
                    e.problem = format!(
                        "stopped after {} s: the whole run's time limit ({} s) ran out",
                        job.started.elapsed().as_secs(),
                        limit.as_secs()
                    );
                    result.message = plain_text(e);
                }
                results[job.plan][job.row] = Some(result);
            }
        }
        while running.len() < jobs.max(1) && next < order.len() {
            let (p, r) = order[next];
            next += 1;
            lab_clock[p].get_or_insert_with(Instant::now);
            let check = plans[p].checks[r];
            let token = next_token();
            running.push(Job {
                plan: p,
                row: r,
                token,
                started: Instant::now(),
                budget: check.budget,
            });
            let program = plans[p].program.clone();
            let policy = plans[p].sandbox.clone();
            let tx = tx.clone();
            let live = Arc::clone(&live_threads);
            live.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                process::set_check_token(token);
                let result = run_check(check, &program, &policy, token);
                let _ = tx.send((p, r, result));
                live.fetch_sub(1, Ordering::SeqCst);
            });
        }
        // Emit whatever is ready, in table order.
        while emitted_plan < plans.len() {
            let plan = &plans[emitted_plan];
            if !lab_started[emitted_plan] {
                lab_started[emitted_plan] = true;
                sink(Event::LabStarted {
                    lab: plan.lab,
                    program: &plan.shown,
                    steps: plan.steps.as_ref(),
                    sandbox: Some(&plan.sandbox.summary),
                });
            }
            if emitted_row == plan.checks.len() {
                let elapsed = lab_clock[emitted_plan].map_or(Duration::ZERO, |t| t.elapsed());
                let checks: Vec<CheckResult> = results[emitted_plan]
                    .iter_mut()
                    .map(|r| r.take().expect("every result is in"))
                    .collect();
                let report = report(plan, checks, elapsed);
                sink(Event::LabFinished { report: &report });
                reports[emitted_plan] = Some(report);
                emitted_plan += 1;
                emitted_row = 0;
                continue;
            }
            match &results[emitted_plan][emitted_row] {
                Some(result) => {
                    sink(Event::CheckFinished { result });
                    emitted_row += 1;
                }
                None => break,
            }
        }
        if emitted_plan == plans.len() {
            break;
        }
        // Interrupted: the handler is cleaning up and exits with 130; report nothing more.
        process::wait_if_interrupted();
        // Wait for the next result or the next budget to run out.
        let now = Instant::now();
        let wait = running
            .iter()
            .map(|job| job.started + job.budget)
            .chain(run_deadline)
            .map(|at| at.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_millis(50));
        match rx.recv_timeout(wait) {
            Ok((p, r, result)) => {
                if let Some(at) = running.iter().position(|j| j.plan == p && j.row == r) {
                    running.remove(at);
                    results[p][r] = Some(result);
                }
                // Otherwise the check already timed out; its late result is ignored.
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                running.retain(|job| {
                    if now < job.started + job.budget {
                        return true;
                    }
                    process::kill_token(job.token);
                    let check = plans[job.plan].checks[job.row];
                    results[job.plan][job.row] = Some(timed_out(check, now - job.started));
                    false
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the runner holds a sender"),
        }
    }
    // Checks that timed out may still be unwinding: give them a moment to remove their
    // scratch folders, then clean up whatever is left.
    let grace = Instant::now() + Duration::from_secs(5);
    while live_threads.load(Ordering::SeqCst) > 0 && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(10));
    }
    if live_threads.load(Ordering::SeqCst) > 0 {
        process::cleanup_all();
    }
    process::wait_if_interrupted();
    reports
        .into_iter()
        .map(|r| r.expect("every lab reported"))
        .collect()
}

fn next_token() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn report(plan: &Plan, checks: Vec<CheckResult>, elapsed: Duration) -> Report {
    Report {
        format_version: FORMAT_VERSION,
        lab: plan.lab.id.to_string(),
        title: plan.lab.title.to_string(),
        program: plan.shown.clone(),
        score: checks.iter().map(|c| c.score).sum(),
        max_score: checks.iter().map(|c| c.max_score).sum(),
        duration_ms: elapsed.as_millis() as u64,
        steps: plan.steps.clone(),
        sandbox: Some(plan.sandbox.summary.clone()),
        checks,
    }
}

/// Runs one check in a fresh context and turns its outcome into a result.
fn run_check(check: &Check, program: &[String], policy: &Policy, token: u64) -> CheckResult {
    let started = Instant::now();
    let mut untestable = false;
    // The check's thread (only it) moves into a network namespace of its own: the
    // grader's sockets, the programs and the tables it reads for this check live there.
    let prepared = sandbox::prepare_thread(policy, token);
    let explanation = match prepared.and_then(|()| Ctx::new(program, policy)) {
        Err(e) => Some(Explanation {
            problem: format!("the grader could not prepare this check: {e:#}"),
            hint: Some("this is the grader's machine, not your program".into()),
            ..Explanation::default()
        }),
        Ok(mut ctx) => {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.run)(&mut ctx)))
                    .unwrap_or_else(|panic| Err(grader_bug(panic)));
            // Explained before the context is dropped: the programs' stderr is still there.
            outcome.err().map(|failure| {
                untestable = failure.cannot_test;
                explain(&mut ctx, failure)
            })
        }
    };
    let status = match &explanation {
        None => Status::Passed,
        Some(_) if untestable => Status::CannotTest,
        Some(e) if e.step.is_some() => Status::NotImplemented,
        Some(_) => Status::Failed,
    };
    finished(check, status, explanation, started.elapsed())
}

fn grader_bug(panic: Box<dyn std::any::Any + Send>) -> Failure {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    Failure::new(format!("the grader itself failed in this check: {text}"))
        .hint("this is a grader bug, not yours: please report it")
}

/// A check the run had no time left to start.
fn not_run(check: &Check, limit: Duration) -> CheckResult {
    let explanation = Explanation {
        problem: format!(
            "not run: the whole run's time limit ({} s) ran out before this check started",
            limit.as_secs()
        ),
        hint: Some(
            "earlier checks used up the time, each waiting for the program until its budget: \
             fix those first (or raise --max-time)"
                .into(),
        ),
        ..Explanation::default()
    };
    finished(check, Status::TimedOut, Some(explanation), Duration::ZERO)
}

fn timed_out(check: &Check, after: Duration) -> CheckResult {
    let explanation = Explanation {
        problem: format!(
            "no answer within {} s: the check ran past its budget and its programs were stopped",
            after.as_secs()
        ),
        hint: Some(
            "the program kept the grader waiting: is some call blocking for ever (a recv() \
             that never returns, a send() to a peer that does not read)? every wait needs a \
             way out"
                .into(),
        ),
        ..Explanation::default()
    };
    finished(check, Status::TimedOut, Some(explanation), after)
}

fn finished(
    check: &Check,
    status: Status,
    failure: Option<Explanation>,
    duration: Duration,
) -> CheckResult {
    let passed = status == Status::Passed;
    CheckResult {
        name: check.name.to_string(),
        score: if passed { check.points } else { 0 },
        // A check this machine cannot run is left out of the score.
        max_score: if status == Status::CannotTest {
            0
        } else {
            check.points
        },
        passed,
        status,
        message: failure.as_ref().map(plain_text).unwrap_or_default(),
        verifies: check.verifies.to_string(),
        duration_ms: duration.as_millis() as u64,
        failure,
    }
}
