//! Live narration of socket calls, for instructors demoing a lab in class.
//!
//! Narration is off unless the environment variable `SOCKLAB_NARRATE` is set (to
//! anything but `0`); `cargo xtask demo labN` sets it. Each line goes to stderr, labelled
//! with the role that speaks, e.g. `[server] accept() -> fd 4 from 127.0.0.1:54012`, so
//! the lines of a server and a client interleave readably in one terminal.
//!
//! With `SOCKLAB_NARRATE_CLOCK` also set (the demo sets it), each line starts with the
//! moment it was said, `@MICROSECONDS ` since the Unix epoch (the realtime clock the
//! kernel stamps captured packets with), so the demo can merge the lines of several
//! programs and the packets on the wire in true time order; it strips the stamp before
//! printing.

use std::io::Write;
use std::sync::OnceLock;

static ROLE: OnceLock<String> = OnceLock::new();
static ENABLED: OnceLock<bool> = OnceLock::new();
static CLOCK: OnceLock<bool> = OnceLock::new();

/// Names the speaker (`server`, `client`, ...). Call once, early in `main`.
pub fn set_role(role: &str) {
    let _ = ROLE.set(role.to_string());
}

/// Whether narration is switched on for this process.
pub fn enabled() -> bool {
    *ENABLED.get_or_init(|| is_on("SOCKLAB_NARRATE"))
}

fn is_on(variable: &str) -> bool {
    std::env::var_os(variable).is_some_and(|v| v != "0")
}

/// Prints one narration line (use the [`narrate!`](crate::narrate!) macro instead).
pub fn line(text: std::fmt::Arguments<'_>) {
    if !enabled() {
        return;
    }
    let role = ROLE.get().map(String::as_str).unwrap_or("program");
    let stamp = if *CLOCK.get_or_init(|| is_on("SOCKLAB_NARRATE_CLOCK")) {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        format!("@{micros} ")
    } else {
        String::new()
    };
    // One write per line, so lines from several threads never mix mid-line.
    let line = format!("{stamp}[{role}] {text}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Narrates one step, e.g. `narrate!("listen(backlog={backlog})")`.
///
/// Costs nothing visible when narration is off.
#[macro_export]
macro_rules! narrate {
    ($($arg:tt)*) => {
        $crate::narrate::line(format_args!($($arg)*))
    };
}
