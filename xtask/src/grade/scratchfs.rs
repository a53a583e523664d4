//! A cap on what a check's programs can write into its scratch folder, all files
//! together (`--sandbox strict`, as root): the folder is a tmpfs of [`SCRATCH_CAP`]
//! bytes (and [`SCRATCH_FILES`] files) of its own.
//!
//! `RLIMIT_FSIZE` caps one file; a program writing many files, or many programs of a
//! check, would still fill the disk. A tmpfs mounted at the scratch path says "no space
//! left on device" past the cap. It lives in a mount namespace of the check's thread
//! only ([`enter`], `unshare(CLONE_FS | CLONE_NEWNS)`, which a thread may do alone), so
//! the grader's own socket and pid-file code for that check, and the programs it starts
//! (they inherit the thread's namespace, then make their own on top, see
//! `sandbox::Mounts`), all see it at the usual path, while the machine never does: if
//! the grader is killed, the mount goes with its last process, and nothing is left
//! mounted. [`unmount`] detaches it before the folder below is removed.

use std::cell::Cell;
use std::ffi::CString;
use std::path::Path;

use anyhow::{Context, anyhow};

/// The most a check's scratch folder holds, all files together.
pub const SCRATCH_CAP: u64 = 64 * 1024 * 1024;
/// The most files (and folders) it holds.
pub const SCRATCH_FILES: u64 = 16 * 1024;

thread_local! {
    /// Whether the calling thread has its own mount namespace (made by [`enter`]).
    static OWN: Cell<bool> = const { Cell::new(false) };
}

/// Gives the calling thread (only it) a mount namespace of its own, which still sees
/// the machine's later mounts but shows it none of its own.
pub fn enter() -> anyhow::Result<()> {
    let fail = |what: &'static str| Err(std::io::Error::last_os_error()).context(what);
    // SAFETY: unshare affects this thread only.
    unsafe {
        if libc::unshare(libc::CLONE_FS | libc::CLONE_NEWNS) != 0 {
            return fail("cannot give the check's thread a mount namespace");
        }
    }
    if super::sandbox::keep_mounts_to_self() != 0 {
        return fail("cannot make the check's mounts its own");
    }
    OWN.with(|o| o.set(true));
    Ok(())
}

/// Mounts the size-capped tmpfs at `scratch` (an empty folder), on a thread that went
/// through [`enter`]; does nothing on any other (the grader's own tools and tests), so
/// that nothing is ever mounted where the machine sees it.
pub fn mount(scratch: &Path) -> anyhow::Result<()> {
    if !OWN.with(Cell::get) {
        return Ok(());
    }
    let path = c_path(scratch)?;
    let options = CString::new(format!(
        "size={SCRATCH_CAP},nr_inodes={SCRATCH_FILES},mode=0755"
    ))
    .expect("no NUL in the options");
    // SAFETY: mount on C strings we own.
    let done = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            path.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if done != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "cannot cap the scratch folder (a tmpfs at {})",
                scratch.display()
            )
        });
    }
    Ok(())
}

/// Detaches the tmpfs at `scratch` (what it held goes with it), on the thread that
/// mounted it; the empty folder below stays, for the caller to remove.
pub fn unmount(scratch: &Path) {
    if !OWN.with(Cell::get) {
        return;
    }
    if let Ok(path) = c_path(scratch) {
        // SAFETY: umount2 on a C string we own.
        unsafe {
            libc::umount2(path.as_ptr(), libc::MNT_DETACH);
        }
    }
}

fn c_path(path: &Path) -> anyhow::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| anyhow!("a NUL in {}", path.display()))
}
