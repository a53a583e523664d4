//! One-line, friendly explanations of socket errors.
//!
//! A student who sees `Os { code: 98, kind: AddrInUse }` learns little; one who sees
//! `bind(127.0.0.1:8080) failed: address already in use: another program (or an earlier
//! run of this one) is listening on that port` knows what to do. Lab code attaches what
//! it was doing with [`Context::context`], and [`explain`] adds the why.

use std::fmt;
use std::io;

/// An error worth one line to the user: what failed and why.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    /// A failure described by `message` (one line, no trailing period needed).
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }

    /// The message, as the user will read it.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure(explain(&err))
    }
}

/// Attaches what the program was doing to an I/O error: `.context("bind(127.0.0.1:80)")`.
pub trait Context<T> {
    /// Turns the error into a [`Failure`] that reads `<what> failed: <explanation>`.
    fn context(self, what: impl fmt::Display) -> Result<T, Failure>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|err| Failure(format!("{what} failed: {}", explain(&err))))
    }
}

/// nix's errors (an `Errno`) read exactly as std's: `<what> failed: <explanation>`.
#[cfg(feature = "nix")]
impl<T> Context<T> for nix::Result<T> {
    fn context(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|errno| io::Error::from_raw_os_error(errno as i32))
            .context(what)
    }
}

/// Explains an I/O error in words a student can act on.
pub fn explain(err: &io::Error) -> String {
    let why = match err.raw_os_error() {
        Some(libc::EADDRINUSE) => {
            "address already in use: another program (or an earlier run of this one) \
             is using that port or path"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "permission denied: ports below 1024 are privileged (pick a port of 1024 \
             or more), or you may not use this file or process"
        }
        Some(libc::EADDRNOTAVAIL) => {
            "address not available: that IP address does not belong to this machine \
             (try 127.0.0.1 or ::1)"
        }
        Some(libc::ECONNREFUSED) => {
            "connection refused: nothing is listening there (is the server running, \
             on that host and port?)"
        }
        Some(libc::ECONNRESET) => "connection reset by peer: the other side aborted the connection",
        Some(libc::EPIPE) => "broken pipe: the other side has already closed the connection",
        Some(libc::ETIMEDOUT) => "timed out: the other side never answered",
        Some(libc::EAGAIN) => "timed out: no data arrived in time",
        Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) => {
            "no route to that host: the network cannot reach it from here"
        }
        Some(libc::EAFNOSUPPORT) => {
            "address family not supported: IPv4 and IPv6 need sockets of their own domain"
        }
        Some(libc::ENAMETOOLONG) => "path too long for a Unix socket address",
        Some(libc::ENOENT) => "no such file or directory",
        _ if err.kind() == io::ErrorKind::TimedOut => "timed out: the other side never answered",
        _ if err.kind() == io::ErrorKind::WouldBlock => "timed out: no data arrived in time",
        _ => return lowercase_os_message(err),
    };
    why.to_string()
}

/// The operating system's own words, without Rust's `(os error N)` suffix.
fn lowercase_os_message(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(cut) => &text[..cut],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::from("unknown error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_the_step_and_the_reason() {
        let failed: io::Result<()> = Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
        let message = failed
            .context("bind(127.0.0.1:80)")
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("bind(127.0.0.1:80) failed: address already in use"));
    }

    #[test]
    fn unknown_errors_keep_the_os_words() {
        let err = io::Error::from_raw_os_error(libc::ENOTSOCK);
        assert_eq!(explain(&err), "socket operation on non-socket");
    }

    #[cfg(feature = "nix")]
    #[test]
    fn nix_errors_read_as_std_ones() {
        let failed: nix::Result<()> = Err(nix::errno::Errno::EADDRINUSE);
        let message = failed.context("bind()").unwrap_err().to_string();
        assert!(message.starts_with("bind() failed: address already in use"));
    }
}
