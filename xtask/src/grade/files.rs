//! Files the program under test can touch, handled so it cannot hurt the grader.
//!
//! A pid file or a socket path lives in the check's scratch folder, where the program
//! may replace it with a FIFO (an open() that blocks for ever), a symlink to `/dev/zero`
//! (a read that never ends) or a link out of the folder (a write that lands elsewhere).
//! So the grader opens them without following symlinks or blocking, checks the file
//! type before reading, reads a few KiB at most, and creates files only where nothing
//! is (`O_EXCL`). Scratch folders are removed without following links, clearing the
//! immutable and append-only flags a root program may have set.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The most the grader reads from a file the program wrote.
pub const READ_CAP: u64 = 16 * 1024;

/// Reads at most [`READ_CAP`] bytes of the regular file at `path`, without following a
/// symlink or blocking on a FIFO; anything else is an error that says what it is.
pub fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a regular file ({})", describe_type(&kind)),
        ));
    }
    let mut bytes = Vec::new();
    file.take(READ_CAP).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_capped`] as (lossy) text.
pub fn read_text(path: &Path) -> io::Result<String> {
    read_capped(path).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// What kind of file this is, in words.
pub fn describe_type(kind: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a regular file"
    }
}

/// Creates `path` anew with `bytes`, refusing to follow or reuse whatever is there: a
/// stale entry (even a symlink planted by the program) is unlinked first, then the file
/// is created with `O_EXCL | O_NOFOLLOW`, so the write cannot land anywhere else.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(bytes)
}

/// Makes a new, empty folder `PREFIX<unique>` in the system's temporary folder, open
/// to us alone (0700), and returns its path. mkdir(2) refuses a name that exists, so a
/// name another process took first is never shared: the next one is tried.
pub fn make_scratch(prefix: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("{prefix}{}-{n}-{nanos:08x}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
            Ok(()) => return Ok(path),
        }
    }
}

/// A folder from [`make_scratch`], removed with all it holds when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new scratch folder named `PREFIX<unique>`.
    pub fn new(prefix: &str) -> io::Result<Scratch> {
        make_scratch(prefix).map(Scratch)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// Replaces `path` with `bytes` in one step: they are written to a new file beside it,
/// then rename(2) puts that file in its place, so a reader (a cargo build, another
/// xtask) sees the old contents or the new, never half of them.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let staged = path.with_file_name(format!(".{name}.{}.new", std::process::id()));
    let written = write_new(&staged, bytes).and_then(|()| fs::rename(&staged, path));
    if written.is_err() {
        let _ = fs::remove_file(&staged);
    }
    written
}

const FS_IMMUTABLE_FL: libc::c_int = 0x10;
const FS_APPEND_FL: libc::c_int = 0x20;

/// Clears the immutable and append-only flags of `path` (root only), so it can go.
fn clear_flags(path: &Path) {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    else {
        return;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one int through the pointer.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0
            && flags & (FS_IMMUTABLE_FL | FS_APPEND_FL) != 0
        {
            flags &= !(FS_IMMUTABLE_FL | FS_APPEND_FL);
            libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
        }
    }
}

/// Removes the folder `root` and everything in it without following links; returns
/// what could not be removed (empty when all went).
pub fn remove_tree(root: &Path) -> Vec<PathBuf> {
    if fs::remove_dir_all(root).is_ok() || fs::symlink_metadata(root).is_err() {
        return Vec::new();
    }
    let mut left = Vec::new();
    remove_entry(root, &mut left, 0);
    left
}

fn remove_entry(path: &Path, left: &mut Vec<PathBuf>, depth: usize) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() && depth < 64 {
        clear_flags(path);
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                remove_entry(&entry.path(), left, depth + 1);
            }
        }
        if fs::remove_dir(path).is_err() {
            left.push(path.to_path_buf());
        }
    } else if fs::remove_file(path).is_err() {
        clear_flags(path);
        if fs::remove_file(path).is_err() {
            left.push(path.to_path_buf());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_folders_are_new_private_and_gone_when_dropped() {
        let (a, b) = (
            Scratch::new("socklab-test-").unwrap(),
            Scratch::new("socklab-test-").unwrap(),
        );
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::write(a.path().join("inside"), b"x").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(
            fs::symlink_metadata(&path).is_err(),
            "{} is still there",
            path.display()
        );
    }

    #[test]
    fn replacing_a_file_leaves_the_new_contents_and_nothing_beside_it() {
        let folder = Scratch::new("socklab-test-").unwrap();
        let target = folder.path().join("state.json");
        fs::write(&target, b"old").unwrap();
        replace_atomically(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read_dir(folder.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_fifos_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_capped(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(read_capped(&link).is_err());
        // Writing replaces the link itself; /dev/zero is untouched.
        write_new(&link, b"mine").unwrap();
        assert_eq!(read_capped(&link).unwrap(), b"mine");
        assert!(remove_tree(dir.path()).is_empty());
    }
}
