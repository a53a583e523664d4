//! `cargo xtask watch <lab> [--poll]`: grades the lab again on every save.
//!
//! File events come from inotify(7), watching every folder of the lab (so a save by
//! rename, as many editors do it, shows as a file moved into the folder, and a new
//! folder is watched as it appears); where they cannot be had, or with `--poll`, the
//! files' sizes and modification times are compared every second.
//! A burst of events (an editor writes, renames, touches) starts one run, 300 ms after
//! the last event. Each run is this very program as a child, `xtask grade <lab>`, in a
//! process group of its own, killed with everything it started when a newer save
//! arrives or watch ends. Keys: `q` quits, `h` shows a hint (the idea, then the API on
//! a second press). On a terminal they are single key presses (non-canonical mode,
//! restored on exit, Ctrl+C included); otherwise one per line on stdin.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use shared::group::Group;

use super::{find_lab, hint, progress};

/// Options of `cargo xtask watch`.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// lab1 ... lab8.
    lab: String,
    /// Compare the files every second instead of using file events (for file systems
    /// that send none, such as some network or shared folders).
    #[arg(long)]
    poll: bool,
}

/// How long a burst of file events must be quiet before a run starts.
const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the polling fallback looks at the files.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a stopped grading run may take to clean up before it is killed outright.
const GRACE: Duration = Duration::from_secs(3);

/// What the main loop reacts to.
enum Event {
    /// A file of the lab changed.
    Changed(PathBuf),
    /// A key (or the first character of a line) from the student.
    Key(char),
    /// Ctrl+C or SIGTERM.
    Quit,
}

/// Watches until `q`, Ctrl+C or SIGTERM; always true.
pub fn run(root: &Path, args: WatchArgs) -> anyhow::Result<bool> {
    let lab = find_lab(&args.lab)?;
    let lab_dir = root.join("labs").join(progress::folder(lab));
    if !lab_dir.is_dir() {
        bail!(
            "{} is missing: `cargo xtask reset {} --yes` brings the skeleton back",
            lab_dir.display(),
            lab.id
        );
    }
    let program = std::env::current_exe().context("cannot find xtask itself")?;
    let (events, inbox) = mpsc::channel();
    let how = start_watching(&lab_dir, args.poll, events.clone());
    let quitter = events.clone();
    // Ctrl+C and SIGTERM end the loop like `q`, so the terminal and the child are
    // always cleaned up. (Failing to install it is no reason not to watch.)
    let _ = ctrlc::set_handler(move || {
        let _ = quitter.send(Event::Quit);
    });
    let _keys = read_keys(events);
    let shown_dir = lab_dir
        .strip_prefix(root)
        .unwrap_or(&lab_dir)
        .display()
        .to_string();
    let clear = std::io::stdout().is_terminal();

    let mut grading: Option<Group> = None;
    let mut runs = 0;
    let mut due: Option<Instant> = Some(Instant::now());
    let mut changed: Option<PathBuf> = None;
    loop {
        if due.is_some_and(|at| Instant::now() >= at) {
            due = None;
            if let Some(child) = grading.take() {
                stop(child);
            }
            runs += 1;
            if clear {
                print!("\x1b[2J\x1b[H");
            }
            let why = match changed.take() {
                Some(path) => {
                    let path = path.strip_prefix(&lab_dir).unwrap_or(&path).to_path_buf();
                    format!(", after a change to {}", path.display())
                }
                None => String::new(),
            };
            println!("== watch {}: grading (run {runs}{why})", lab.id);
            let _ = std::io::stdout().flush();
            grading = Some(start_grading(&program, lab.id)?);
        }
        if let Some(child) = grading.as_mut()
            && child.try_exit().is_some()
        {
            grading = None;
            println!();
            if let Ok(progress) = progress::scan(root, lab) {
                match progress.next {
                    Some(step) => println!(
                        "{} of {} steps written; next: {} ({}:{})",
                        progress.written,
                        progress.total,
                        step.title,
                        step.file.display(),
                        step.line
                    ),
                    None => println!("all {} steps written", progress.total),
                }
            }
            println!("watching {shown_dir} ({how}): save to grade again; h hint, q quit");
            let _ = std::io::stdout().flush();
        }
        match inbox.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Changed(path)) => {
                due = Some(Instant::now() + DEBOUNCE);
                changed = Some(path);
            }
            Ok(Event::Key('q' | 'Q')) | Ok(Event::Quit) => break,
            Ok(Event::Key('h' | 'H')) => {
                match hint::show_with(root, lab, false, "Press h again for the API to look at.") {
                    Ok(text) => println!("\n{text}"),
                    Err(message) => println!("\nno hint: {message:#}"),
                }
                let _ = std::io::stdout().flush();
            }
            Ok(Event::Key(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(child) = grading.take() {
        stop(child);
    }
    println!("watch stopped");
    Ok(true)
}

/// `xtask grade <lab>` as a child in its own process group, so that stopping it
/// reaches everything it started (cargo, the program under test).
fn start_grading(program: &Path, lab: &str) -> anyhow::Result<Group> {
    Group::spawn(
        Command::new(program)
            .args(["grade", lab])
            .stdin(Stdio::null()),
    )
    .with_context(|| format!("cannot run {} grade {lab}", program.display()))
}

/// Stops a grading run: SIGTERM to its group (the grader then cleans up after
/// itself), SIGKILL to whatever is still in it after the grace period.
fn stop(mut run: Group) {
    run.stop(GRACE);
}

/// A file a student edits (not build output, not an editor's swap file).
fn is_source(path: &Path) -> bool {
    !path.components().any(|c| c.as_os_str() == "target")
        && path
            .extension()
            .is_some_and(|e| e == "rs" || e == "toml" || e == "md")
}

/// Starts file events, or the polling fallback; returns a description for the status
/// line.
fn start_watching(lab_dir: &Path, poll: bool, events: Sender<Event>) -> String {
    if !poll {
        match watch_folders(lab_dir, events.clone()) {
            Ok(()) => return "file events".into(),
            Err(err) => {
                eprintln!("watch: no file events ({err}): comparing the files every second")
            }
        }
    }
    let dir = lab_dir.to_path_buf();
    // Taken before watch starts its first run, so that no save after it is missed.
    let mut before = snapshot(&dir);
    thread::spawn(move || {
        loop {
            thread::sleep(POLL_EVERY);
            let now = snapshot(&dir);
            let changed = now
                .iter()
                .find(|(path, stamp)| before.get(*path) != Some(stamp))
                .map(|(path, _)| path.clone())
                .or_else(|| before.keys().find(|p| !now.contains_key(*p)).cloned());
            if let Some(path) = changed
                && events.send(Event::Changed(path)).is_err()
            {
                return;
            }
            before = now;
        }
    });
    "polling every second".into()
}

/// Watches every folder under `lab_dir` (but `target/`) with one inotify instance, and
/// sends each source file written, created, moved or deleted there.
fn watch_folders(lab_dir: &Path, events: Sender<Event>) -> nix::Result<()> {
    use nix::sys::inotify::{AddWatchFlags as F, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
    // Written and closed, or put in place by a rename: the two ways a save ends.
    let mask = F::IN_CLOSE_WRITE | F::IN_MOVED_TO | F::IN_CREATE | F::IN_DELETE | F::IN_MOVED_FROM;
    let mut folders = BTreeMap::new();
    let mut pending = vec![lab_dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        folders.insert(inotify.add_watch(&folder, mask)?, folder.clone());
        pending.extend(subfolders(&folder));
    }
    thread::spawn(move || {
        // read_events blocks until something happens; the thread ends with watch.
        while let Ok(batch) = inotify.read_events() {
            for event in batch {
                let (Some(folder), Some(name)) = (folders.get(&event.wd), event.name) else {
                    continue;
                };
                let path = folder.join(name);
                if event.mask.contains(F::IN_ISDIR) {
                    let added = event.mask.intersects(F::IN_CREATE | F::IN_MOVED_TO);
                    if added
                        && path.file_name().is_some_and(|n| n != "target")
                        && let Ok(wd) = inotify.add_watch(&path, mask)
                    {
                        folders.insert(wd, path);
                    }
                } else if is_source(&path) && events.send(Event::Changed(path)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(())
}

/// The folders directly in `folder`, but `target/`.
fn subfolders(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != "target")
        .map(|e| e.path())
        .collect()
}

/// Size and modification time of every source file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if entry.file_name() != "target" {
                    pending.push(path);
                }
            } else if is_source(&path) {
                found.insert(path, (meta.len(), meta.modified().ok()));
            }
        }
    }
    found
}

/// The terminal's settings before watch changed them; restored when dropped.
struct Restore(Termios);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.0);
    }
}

/// Sends the student's keys as events. On a terminal, each key press at once
/// (non-canonical, no echo, until the returned guard is dropped); otherwise the first
/// character of each line.
fn read_keys(events: Sender<Event>) -> Option<Restore> {
    let stdin = std::io::stdin();
    let restore = if stdin.is_terminal() {
        termios::tcgetattr(&stdin).ok().and_then(|original| {
            let mut keys = original.clone();
            keys.local_flags
                .remove(LocalFlags::ICANON | LocalFlags::ECHO);
            keys.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
            keys.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
            termios::tcsetattr(&stdin, SetArg::TCSANOW, &keys)
                .ok()
                .map(|()| Restore(original))
        })
    } else {
        None
    };
    let single_keys = restore.is_some();
    thread::spawn(move || {
        let stdin = std::io::stdin();
        if single_keys {
            let mut byte = [0u8; 1];
            while let Ok(1) = stdin.lock().read(&mut byte) {
                if events.send(Event::Key(char::from(byte[0]))).is_err() {
                    return;
                }
            }
        } else {
            for line in stdin.lock().lines() {
                let Ok(line) = line else { return };
                if let Some(key) = line.trim().chars().next()
                    && events.send(Event::Key(key)).is_err()
                {
                    return;
                }
            }
        }
    });
    restore
}
