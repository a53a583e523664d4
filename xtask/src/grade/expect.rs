//! Reusable verdicts that many labs need, so every lab judges them the same way.

use std::time::Duration;

use super::{Ctx, Failure, Finished, net, poll};

/// The program must have failed with a clear, one-line error: a non-zero exit, at most
/// `max_lines` lines on stderr, one of which mentions one of `words` (any case), and no
/// panic or backtrace.
pub fn clean_error(run: &Finished, words: &[&str], max_lines: usize) -> Result<(), Failure> {
    let lines = run.stderr_lines();
    let shown = if lines.is_empty() {
        "nothing on stderr".to_string()
    } else {
        lines.join(" / ")
    };
    if run.status.success() {
        return Err(
            Failure::new("the program exited with status 0 after an error")
                .expected("a non-zero exit status and a one-line error on stderr")
                .got(shown)
                .hint(
                    "when the program cannot go on, print one line and exit with a non-zero status",
                ),
        );
    }
    let text = run.stderr.to_lowercase();
    if text.contains("not implemented yet") || text.contains("not yet implemented") {
        return Err(Failure::new("the program stopped at an unfinished step")
            .got(shown)
            .hint("finish the todo!() steps first"));
    }
    if text.contains("panicked") || text.contains("backtrace") || text.contains("traceback") {
        return Err(Failure::new("the program crashed instead of reporting the error")
            .expected(format!("a one-line error mentioning {}", words.join(" or ")))
            .got(shown)
            .hint("a socket call that can fail for ordinary reasons must not crash the program (a Rust unwrap(), an uncaught Python exception): print one line that names the problem instead"));
    }
    if lines.len() > max_lines {
        return Err(
            Failure::new(format!("the error took {} lines on stderr", lines.len()))
                .expected(format!("at most {max_lines} line(s)"))
                .got(shown)
                .hint("one clear line is enough: say what failed and why"),
        );
    }
    if !words.iter().any(|w| text.contains(&w.to_lowercase())) {
        return Err(Failure::new("the error message does not name the problem")
            .expected(format!("a message mentioning {}", words.join(" or ")))
            .got(shown)
            .hint("explain the OS error in words: e.g. 'address already in use' for EADDRINUSE"));
    }
    Ok(())
}

/// Fails with `problem` unless `got` is exactly what was `sent` (an echo): the report
/// shows what was sent, and expected and got with the first differing byte marked.
pub fn echoed(sent: &[u8], got: &[u8], problem: &str) -> Result<(), Failure> {
    if got == sent {
        return Ok(());
    }
    Err(Failure::new(problem).sent_bytes(sent).compare(sent, got))
}

/// Polls the program's stdout until it contains `needle` (or `limit` passes).
pub fn stdout_mentions(ctx: &mut Ctx, id: usize, needle: &str, limit: Duration) -> bool {
    poll::holds(limit, Duration::from_millis(10), || {
        ctx.proc(id).stdout_text().contains(needle)
    })
}

/// Polls until the process has at most `at_most` open fds (or `limit` passes);
/// returns the last count seen (`None` once its descriptors cannot be read).
pub fn fds_settle(pid: u32, at_most: usize, limit: Duration) -> Option<usize> {
    let mut count = None;
    poll::holds(limit, Duration::from_millis(10), || {
        count = net::open_fds(pid);
        count.is_none_or(|count| count <= at_most)
    });
    count
}
