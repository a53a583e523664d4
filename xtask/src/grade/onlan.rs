//! Checks that need a second host: the program under test runs on alpha or beta of a
//! private [`Lan`] made for the check, and the grader dials from the other host.
//!
//! Where this machine cannot make namespaces, [`lan`] fails with
//! [`Failure::cannot_test_here`] before anything is started or dialled: the report
//! says "cannot test this here" and the check is left out of the score. Everything is
//! torn down when the check's `Lan` is dropped (with the check's `Ctx`, which kills
//! the programs first).

use std::time::{Duration, Instant};

use super::netns::{Host, Lan};
use super::process::describe_status;
use super::{Ctx, Failure};

/// A fresh alpha and beta with the cable up, or "cannot test this here".
pub fn lan() -> Result<Lan, Failure> {
    let lan = Lan::new().map_err(Failure::cannot_test_here)?;
    if !lan.wait_link(Duration::from_secs(5)) {
        return Err(Failure::cannot_test_here(
            "the private cable between alpha and beta did not come up within 5 s",
        ));
    }
    Ok(lan)
}

/// Starts the program under test with `args` (role first) inside `host`.
pub fn spawn_inside(
    ctx: &mut Ctx,
    host: &Host,
    label: &str,
    args: &[&str],
) -> Result<usize, Failure> {
    let mut argv = host.nsenter_argv();
    // Under the strict sandbox, as the check's own uid there too (not root of the host).
    if let Some(uid) = ctx.program_uid() {
        let uid = uid.to_string();
        argv.extend(["-S".to_string(), uid.clone(), "-G".to_string(), uid]);
    }
    argv.extend(ctx.program().iter().cloned());
    argv.extend(args.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ctx.spawn_other(label, &argv, None)
}

/// Starts `server --host HOST --port PORT` inside `host` and waits until it listens.
pub fn start_server_inside(
    ctx: &mut Ctx,
    host: &Host,
    bind: &str,
    port: u16,
) -> Result<usize, Failure> {
    let port_text = port.to_string();
    let id = spawn_inside(
        ctx,
        host,
        "server",
        &["server", "--host", bind, "--port", &port_text],
    )?;
    let deadline = Instant::now() + super::ctx::START_LIMIT;
    loop {
        if host.is_listening(port) {
            return Ok(id);
        }
        if let Some(status) = ctx.proc(id).exited() {
            return Err(Failure::new(format!(
                "the server on {} exited ({}) before listening on {bind}:{port}",
                host.name,
                describe_status(status)
            ))
            .hint("it stopped during start-up: its stderr below says why"));
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "nothing listened on {bind}:{port} on {} within {} s of starting",
                host.name,
                super::ctx::START_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
