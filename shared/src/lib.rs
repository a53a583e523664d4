//! What every socklab program shares, so that each lab can keep to its own lesson.
//!
//! Nothing in here performs a lab's socket steps: `socket()`, `bind()`, `listen()`,
//! `accept()`, `connect()` and friends always stay visible in the lab's own code.
//! This crate holds only the plumbing around them:
//!
//! - [`cli`]: the arguments every program takes (`--host`, `--port`),
//! - [`narrate`]: the instructor's live commentary of each socket call,
//! - [`errors`]: one-line, friendly explanations of socket errors,
//! - [`ctime`]: the `Sun Nov 22 17:39:27 2026` time format of the notes,
//! - [`run`]: a `main` wrapper that turns errors and `todo!()`s into one clear line,
//! - [`sockaddr`]: addresses as people write them, and buffers for `recv_from`,
//! - [`ports`]: (the tools', not the labs') a free port for a program under test,
//! - [`group`]: (the tools', not the labs') a program run in a process group of its own.

pub mod cli;
pub mod ctime;
pub mod errors;
pub mod group;
pub mod narrate;
pub mod ports;
pub mod run;
pub mod sockaddr;

pub use errors::{Context, Failure};
pub use run::run;
