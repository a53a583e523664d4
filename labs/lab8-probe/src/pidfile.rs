//! The pid file, steps 11 to 15: one line `pid;port`, written atomically by the daemon,
//! read with suspicion by `status` (and by a starting daemon).
//!
//! Writing it in place (open, truncate, write) leaves a moment when the file is empty
//! or half written, and a reader that comes then sees garbage; a crash at that moment
//! leaves the garbage behind. Instead the daemon writes a temporary file in the same
//! directory, fsync()s it so its bytes are on disk, then rename()s it over the real
//! name: rename() swaps names atomically within one file system, so a reader sees
//! either the old file or the complete new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use shared::{Context, Failure, narrate};

use crate::preview;

/// A pid file longer than this is not ours.
const MAX_PIDFILE: u64 = 64;

/// What a pid file says: the daemon's process id and the port it listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidRecord {
    /// The daemon's process id (1 or more).
    pub pid: i32,
    /// The TCP port it listens on (1 to 65535).
    pub port: u16,
}

/// Writes `pid;port` to `path` so that readers only ever see a complete file.
pub fn write_pidfile_atomically(path: &Path, record: PidRecord) -> Result<(), Failure> {
    let contents = format!("{};{}\n", record.pid, record.port);
    let Some(name) = path.file_name() else {
        return Err(Failure::new(format!(
            "bad pid file {}: it names no file",
            path.display()
        )));
    };
    let directory: PathBuf = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temporary = directory.join(format!(".{}.{}.tmp", name.to_string_lossy(), record.pid));

    // Step 11: create the temporary file in the SAME directory as the pid file, because
    // rename() is atomic only within one file system. O_EXCL (create_new) refuses to
    // follow a symlink someone planted there; a leftover of ours is removed first.
    let _ = fs::remove_file(&temporary);
    let mut file: File = {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 11: create `temporary` (it must not exist yet), write-only, mode 0644");
    };
    narrate!("open({}, O_CREAT|O_EXCL, 0644)", temporary.display());

    // Step 12: write the line, then fsync(): without it the rename could reach the disk
    // before the data, and a power cut would leave an empty pid file behind.
    let written: Result<(), Failure> = {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 12: write `contents` to `file`, then fsync it");
    };
    if let Err(failure) = written {
        let _ = fs::remove_file(&temporary);
        return Err(failure);
    }
    narrate!("write({:?}); fsync()", contents);
    drop(file);

    // Step 13: rename() replaces the pid file in one atomic step.
    let renamed: Result<(), Failure> = {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 13: rename `temporary` over `path`");
    };
    if let Err(failure) = renamed {
        let _ = fs::remove_file(&temporary);
        return Err(failure);
    }
    narrate!("rename({}, {})", temporary.display(), path.display());

    // The new name lives in the directory: fsync() it too, so the rename itself survives
    // a crash. Some file systems cannot fsync a directory; that only weakens durability.
    if let Ok(handle) = File::open(&directory) {
        let _ = handle.sync_all();
        narrate!("fsync({})", directory.display());
    }
    Ok(())
}

/// On shutdown: removes the pid file, but only while it still names `own_pid`. A newer
/// daemon may have replaced it, and its file is not ours to delete.
pub fn remove_pidfile_if_ours(path: &Path, own_pid: i32) {
    let shown = path.display();
    match read_pidfile(path) {
        Ok(record) if record.pid == own_pid => match fs::remove_file(path) {
            Ok(()) => {
                narrate!("unlink({shown})");
                println!("removed pid file {shown}");
            }
            Err(err) => eprintln!(
                "lab8: cannot remove pid file {shown}: {}",
                shared::errors::explain(&err)
            ),
        },
        Ok(record) => println!(
            "pid file {shown} now names pid {}, not us ({own_pid}): leaving it alone",
            record.pid
        ),
        Err(reason) => println!("leaving pid file {shown} alone: {reason}"),
    }
}

/// Reads and checks the pid file at `path`; the error is a `not running:` reason.
pub fn read_pidfile(path: &Path) -> Result<PidRecord, String> {
    let shown = path.display();
    // Step 14: open() the pid file, read-only. O_NONBLOCK: if someone put a FIFO there,
    // open() must not sleep waiting for a writer that never comes.
    let opened: io::Result<File> = {
        // Stuck? `cargo xtask hint lab8`
        todo!("step 14: open `path` read-only, with O_NONBLOCK");
    };
    let file = match opened {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(format!("no pid file at {shown}"));
        }
        Err(err) => {
            return Err(format!(
                "cannot read pid file {shown}: {}",
                file_error(&err)
            ));
        }
    };
    let unreadable = |err: io::Error| format!("cannot read pid file {shown}: {}", file_error(&err));
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(format!(
            "malformed pid file {shown}: it is not a regular file"
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PIDFILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    narrate!("read({shown}) -> {}", preview(&bytes));
    let record = match String::from_utf8(bytes) {
        Ok(text) if text.len() as u64 > MAX_PIDFILE => {
            Err(format!("it is longer than {MAX_PIDFILE} bytes"))
        }
        Ok(text) => parse_pidfile(&text),
        Err(_) => Err(String::from("it is not text")),
    };
    record.map_err(|why| format!("malformed pid file {shown}: {why} (expected \"pid;port\")"))
}

/// A file error in plain words (shared::errors::explain speaks of ports for EACCES).
fn file_error(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) if code == Errno::EACCES as i32 || code == Errno::EPERM as i32 => {
            String::from("permission denied")
        }
        _ => shared::errors::explain(err),
    }
}

/// Parses `pid;port`, with an optional final newline.
fn parse_pidfile(text: &str) -> Result<PidRecord, String> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(String::from("it is empty"));
    }
    if line.contains('\n') {
        return Err(String::from("it has more than one line"));
    }
    // Step 15: split the line at ';' and check both numbers before trusting them. A pid
    // of 0 or -1 is not a process: kill(0, sig) signals our whole process group, and
    // kill(-1, sig) nearly every process we may signal.
    // Stuck? `cargo xtask hint lab8`
    todo!("step 15: split `line` at ';' into a pid (1 or more) and a port (1 to 65535)");
}

/// Plain decimal digits only: no sign, no spaces, no `0x`.
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
