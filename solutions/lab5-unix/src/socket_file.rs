//! A Unix socket's address is a file: naming it, creating it, and removing it.
//!
//! - [`unix_address`] turns a path into a `sockaddr_un`, refusing paths too long for it.
//! - [`bind_socket_file`] is `bind()` plus what a file brings with it: permissions
//!   (umask and chmod), and a stale socket file left by a server that died, which must
//!   go before the name can be used again, while a live server's file or any other kind
//!   of file must not.
//! - [`SocketFile`] remembers which file we created, so that we remove ours and only
//!   ours: on a normal exit (the [`RemoveOnDrop`] guard) and on SIGINT/SIGTERM
//!   ([`remove_on_signals`]).

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{Mode, umask};
use shared::{Context, Failure, narrate};
use socket2::{Domain, SockAddr, Socket, Type};

/// Size of `sun_path` in Linux's `struct sockaddr_un`. The path and its closing NUL
/// byte must both fit, so the longest usable path is one byte shorter.
pub const SUN_PATH_BYTES: usize = 108;

/// The `sockaddr_un` for `path`: family AF_UNIX, then the path itself.
pub fn unix_address(path: &Path) -> Result<SockAddr, Failure> {
    let length = path.as_os_str().len();
    if length == 0 {
        return Err(Failure::new(
            "the socket path is empty: give --path a file name",
        ));
    }
    if length >= SUN_PATH_BYTES {
        return Err(Failure::new(format!(
            "socket path too long: {:?} is {length} bytes, but a Unix socket address holds \
             at most {} (sun_path is {SUN_PATH_BYTES} bytes on Linux, one of them for the \
             closing NUL); use a shorter path, e.g. one in /tmp",
            path.display().to_string(),
            SUN_PATH_BYTES - 1
        )));
    }
    // The address of a Unix socket is a path, not host and port: sockaddr_un holds
    // the family (AF_UNIX) and the path bytes.
    let address: SockAddr = {
        //- answer: build the sockaddr_un for `path`
        //- hint: A Unix socket's address is a path in the filesystem. Build that address from
        //- hint: `path`; it fails when the path is too long to fit in a sockaddr_un, so say which
        //- hint: path.
        //- more: socket2's `SockAddr::unix` returns `io::Result<SockAddr>`; name the failure with
        //- more: `.context(...)`. See `man 7 unix` for the length limit.
        SockAddr::unix(path).context(format!("sockaddr_un({})", path.display()))?
        //- end
    };
    Ok(address)
}

/// A socket file this process created with `bind()`.
///
/// We note its device and inode: if our file was removed and another server has
/// since bound the same path, that newer file is not ours to delete.
#[derive(Clone, Debug)]
pub struct SocketFile {
    /// Where `bind()` created the file.
    path: PathBuf,
    /// The file system (device number) it was created on, from `stat()`.
    device: u64,
    /// Its inode number: with `device`, what tells our file from a newer one at `path`.
    inode: u64,
}

impl SocketFile {
    /// The path it lives at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still the one we created. Harmless to repeat.
    pub fn remove(&self) -> bool {
        let still_ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|now| now.dev() == self.device && now.ino() == self.inode);
        // unlink() is the only way a socket file goes away: closing the socket does
        // not remove its name, which is why stale files exist at all.
        still_ours && fs::remove_file(&self.path).is_ok()
    }
}

/// Removes the socket file when the owning function returns, however it returns.
pub struct RemoveOnDrop(pub SocketFile);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.remove() {
            narrate!("unlink({})", self.0.path.display());
        }
    }
}

/// `bind()` for a path: creates the socket file with permission bits `mode`.
///
/// When the path is taken, three cases are told apart:
/// - a socket file that nothing answers on (connect() is refused) is stale: the server
///   that made it is gone without removing it. We remove it and bind again.
/// - a socket file with a live socket behind it: "address in use", we leave it alone.
/// - any other file (regular file, directory, symlink...): never deleted, clear error.
pub fn bind_socket_file(
    socket: &Socket,
    path: &Path,
    address: &SockAddr,
    kind: Type,
    mode: u32,
) -> Result<SocketFile, Failure> {
    match bind_with_mode(socket, address, mode) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EADDRINUSE) => {
            remove_if_stale(path, address, kind)?;
            bind_with_mode(socket, address, mode).context(format!(
                "bind({}) after removing the stale file",
                path.display()
            ))?;
        }
        Err(err) => {
            return Err(Failure::new(format!(
                "bind({}) failed: {}",
                path.display(),
                shared::errors::explain(&err)
            )));
        }
    }
    narrate!("bind({})", path.display());

    // chmod() sets the exact bits asked for, whatever the umask or a default ACL on
    // the directory would have made of them. Connecting (or sending a datagram) to a
    // Unix socket needs write permission on its file, so these bits decide who may talk
    // to us: 0600 means only our own user (and root).
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .context(format!("chmod({}, {mode:04o})", path.display()))?;
    narrate!("chmod({}, {mode:04o})", path.display());

    let metadata = fs::symlink_metadata(path).context(format!("stat({})", path.display()))?;
    Ok(SocketFile {
        path: path.to_path_buf(),
        device: metadata.dev(),
        inode: metadata.ino(),
    })
}

/// bind() under a umask that lets no more than `mode` through.
///
/// bind() creates the file with mode 0777 minus the umask. Setting the umask first
/// means the file never exists, not even for an instant, with more permissions than
/// asked for; chmod() afterwards alone would leave that window open. The umask is
/// process-wide, so this runs before any thread is started.
fn bind_with_mode(socket: &Socket, address: &SockAddr, mode: u32) -> io::Result<()> {
    let previous = umask(Mode::from_bits_truncate(!mode & 0o777));
    // Step 2: bind() creates the socket file at the path: that file IS the address.
    let outcome: io::Result<()> = {
        //- answer: step 2: bind the socket to `address` (keep the io::Result)
        //- hint: Bind the socket to its path: this creates the socket file. Keep the result as it
        //- hint: is: the code below handles a file that is already there.
        //- more: socket2's `Socket::bind` with the `&SockAddr` you were given (it already is one);
        //- more: it returns `io::Result<()>`.
        socket.bind(address)
        //- end
    };
    umask(previous);
    outcome
}

/// Removes the file at `path` only if it is a socket file nobody answers on.
fn remove_if_stale(path: &Path, address: &SockAddr, kind: Type) -> Result<(), Failure> {
    let shown = path.display();
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        // Gone since bind() failed: the name is free again.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(Failure::new(format!(
                "stat({shown}) failed: {}",
                shared::errors::explain(&err)
            )));
        }
    };
    let file_type = metadata.file_type();
    if !file_type.is_socket() {
        let what = if file_type.is_file() {
            "a regular file"
        } else if file_type.is_dir() {
            "a directory"
        } else if file_type.is_symlink() {
            "a symbolic link"
        } else {
            "not a socket"
        };
        return Err(Failure::new(format!(
            "bind({shown}) failed: {shown} already exists and is {what}, not a socket; \
             it is never deleted for you: pick another --path, or remove it yourself"
        )));
    }

    // A socket file stays behind when its server dies without unlink(). Whether one
    // is stale or alive cannot be seen from the file; we ask it: connect() to a live
    // socket succeeds, to a dead one fails with ECONNREFUSED. A non-blocking probe
    // cannot hang on a live server whose accept queue is full (it gets EAGAIN).
    let probe: Socket = {
        //- answer: stale check: create a probe socket of the same `kind`, non-blocking
        //- hint: To learn whether an existing socket file is stale, you will try to connect to it.
        //- hint: Make a probe socket of the same kind, and make it non-blocking so that trying
        //- hint: never waits.
        //- more: socket2's `Socket::new` with `Domain::UNIX`, the given `kind` and no protocol,
        //- more: then `Socket::set_nonblocking`; name each call with `.context(...)`; the block's
        //- more: value is the probe.
        let probe = Socket::new(Domain::UNIX, kind, None).context("socket(probe)")?;
        probe
            .set_nonblocking(true)
            .context("fcntl(O_NONBLOCK) on the probe")?;
        probe
        //- end
    };
    narrate!(
        "socket(AF_UNIX) -> fd {} (probe, non-blocking)",
        probe.as_raw_fd()
    );
    let answer: io::Result<()> = {
        //- answer: stale check: connect the probe to `address` (keep the io::Result)
        //- hint: Try to connect the probe to the file's address: if someone answers, a server lives
        //- hint: there; if the connection is refused, the file is stale. Keep the result as it is
        //- hint: for the code below.
        //- more: socket2's `Socket::connect` with the `&SockAddr` you were given; it returns
        //- more: `io::Result<()>` (ECONNREFUSED in `man 7 unix`).
        probe.connect(address)
        //- end
    };
    let refused = |err: &io::Error| err.raw_os_error() == Some(libc::ECONNREFUSED);
    // Accepted, or the queue is full (EAGAIN), or a live socket of the other type
    // answered (EPROTOTYPE): someone is there.
    let someone_answered = |err: &io::Error| {
        matches!(
            err.raw_os_error(),
            Some(libc::EAGAIN | libc::EINPROGRESS | libc::EPROTOTYPE)
        )
    };
    match answer {
        Err(err) if refused(&err) => {
            narrate!("connect(probe, {shown}) -> ECONNREFUSED: stale");
            fs::remove_file(path).context(format!("unlink({shown})"))?;
            narrate!("unlink({shown})");
            println!("removed stale socket file {shown} (nothing answered on it)");
            Ok(())
        }
        Ok(()) => Err(in_use(path)),
        Err(err) if someone_answered(&err) => Err(in_use(path)),
        Err(err) => Err(Failure::new(format!(
            "bind({shown}) failed: address already in use, and probing it with connect() \
             failed too: {}; the file was left alone",
            explain(&err)
        ))),
    }
}

/// The error for a path a live socket is bound to.
fn in_use(path: &Path) -> Failure {
    narrate!("connect(probe, {}) -> answered: in use", path.display());
    Failure::new(format!(
        "bind({0}) failed: address already in use: a server is alive and answering on \
         {0}; stop it first, or pick another --path",
        path.display()
    ))
}

/// Explains an error of connect() or sendto() to a socket path.
///
/// shared's explanations speak of hosts and ports; for a path, a few errors mean
/// something of their own.
pub fn explain(err: &io::Error) -> String {
    let why = match err.raw_os_error() {
        Some(libc::ENOENT) => {
            "no such file: nothing has been bound at that path (is the server running, \
             with the same --path?)"
        }
        Some(libc::ECONNREFUSED) => {
            "connection refused: the socket file exists but no socket is bound to it any \
             more (a stale file: the server that made it is gone)"
        }
        Some(libc::EACCES) => {
            "permission denied: talking to a Unix socket needs write permission on its \
             file (and search permission on its directories): check them with ls -l"
        }
        Some(libc::EPROTOTYPE) => {
            "wrong socket type: the socket at that path is of the other type (stream \
             versus datagram)"
        }
        _ => return shared::errors::explain(err),
    };
    why.to_string()
}

/// `.path_context("connect(/tmp/x.sock)")`: like shared's `Context`, with [`explain`].
pub trait PathContext<T> {
    /// Turns the error into a [`Failure`] that reads `<what> failed: <explanation>`.
    fn path_context(self, what: impl fmt::Display) -> Result<T, Failure>;
}

impl<T> PathContext<T> for io::Result<T> {
    fn path_context(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|err| Failure::new(format!("{what} failed: {}", explain(&err))))
    }
}

/// How the process exits after SIGINT or SIGTERM has removed its socket file.
#[derive(Clone, Copy)]
pub enum OnSignal {
    /// A server: being told to stop is its normal end (status 0).
    Stop,
    /// A client: interrupted in the middle of its work (status 128 + signal number).
    Interrupted,
}

/// The signals that ask a program to stop: Ctrl+C (SIGINT), `kill` (SIGTERM), and a
/// closed terminal (SIGHUP).
fn stop_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGHUP);
    signals
}

/// Holds SIGINT, SIGTERM and SIGHUP back in this thread and in every thread it starts
/// from now on. Call it first thing, before bind() and before any thread exists:
/// a held-back signal waits, pending, until [`remove_on_signals`] collects it.
pub fn hold_stop_signals() -> Result<(), Failure> {
    stop_signals()
        .thread_block()
        .context("pthread_sigmask(SIG_BLOCK, INT+TERM+HUP)")?;
    narrate!("pthread_sigmask(SIG_BLOCK, SIGINT|SIGTERM|SIGHUP)");
    Ok(())
}

/// Starts a thread that waits for a stop signal, removes `file`, and ends the process.
///
/// Why a thread in sigwait() and not a signal handler: a handler interrupts whatever
/// the program was doing, so it may only call async-signal-safe functions; it could
/// set a flag, but then the main loop must notice that flag, and a blocking accept()
/// or recvfrom() would not return to look at it (a signal arriving just before the call
/// is missed). With every thread blocking the signals, the kernel keeps them pending
/// until this thread collects one with sigwait(), as an ordinary return value. It can
/// then do ordinary things: unlink the file, print, exit. The main loop stays a plain
/// blocking loop.
pub fn remove_on_signals(file: SocketFile, on_signal: OnSignal) -> Result<(), Failure> {
    let signals = stop_signals();
    std::thread::Builder::new()
        .name(String::from("signals"))
        .spawn(move || {
            let signal = match signals.wait().context("sigwait()") {
                Ok(signal) => signal,
                Err(failure) => {
                    eprintln!("lab5: {failure}: the socket file will not be removed on signals");
                    return;
                }
            };
            narrate!("sigwait() -> {signal}");
            let removed = file.remove();
            if removed {
                narrate!("unlink({})", file.path().display());
            }
            println!(
                "got {signal}: {} {}, exiting",
                if removed {
                    "removed"
                } else {
                    "left alone (no longer ours)"
                },
                file.path().display()
            );
            let status = match on_signal {
                OnSignal::Stop => 0,
                OnSignal::Interrupted => 128 + signal as i32,
            };
            std::process::exit(status);
        })
        .context("spawn(signal thread)")?;
    Ok(())
}

/// Parses `--mode`: octal permission bits such as `0600`, `600` or `0o660`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "{text:?} is not a file mode: give octal permission bits, e.g. 0600 or 0660 (at most 0777)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert!(parse_mode("0800").is_err());
        assert!(parse_mode("1777").is_err());
        assert!(parse_mode("").is_err());
    }

    #[test]
    fn paths_longer_than_sun_path_are_refused_clearly() {
        let too_long = format!("/tmp/{}", "x".repeat(SUN_PATH_BYTES - 5));
        assert_eq!(too_long.len(), SUN_PATH_BYTES);
        let message = unix_address(Path::new(&too_long)).unwrap_err().to_string();
        assert!(message.contains("too long"), "{message}");
        assert!(unix_address(Path::new("")).is_err());
    }
}
