//! `cargo xtask demo labN`: the reference programs narrate a session, live.
//!
//! Each program runs with `SOCKLAB_NARRATE=1` in its own process group. Their stdout and
//! stderr are read line by line as they come and printed in one stream, every line
//! labelled with the role that spoke (`[server] accept() -> fd 4 from 127.0.0.1:54012`),
//! so the class sees the server's and the client's calls interleaved in real time.
//! A lab's demo script (in its `labs/labN.rs`) drives the session through [`Demo`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::net;

/// The time of the last line any program printed, to wait for quiet.
type LastOutput = Arc<Mutex<Instant>>;

/// A live classroom session with the reference programs.
pub struct Demo {
    program: Vec<String>,
    children: Vec<(String, Child)>,
    /// One flag per program: set when its output pipe reached end-of-file.
    drained: Vec<(u32, Arc<AtomicBool>)>,
    last_output: LastOutput,
    scratch: tempfile::TempDir,
}

impl Demo {
    pub fn new(program: &[String]) -> Result<Demo, String> {
        super::process::install_interrupt_cleanup();
        let scratch = tempfile::Builder::new()
            .prefix("socklab-demo-")
            .tempdir()
            .map_err(|e| format!("cannot create a scratch folder: {e}"))?;
        super::process::register_folder(scratch.path());
        Ok(Demo {
            program: program.to_vec(),
            children: Vec::new(),
            drained: Vec::new(),
            last_output: Arc::new(Mutex::new(Instant::now())),
            scratch,
        })
    }

    /// A folder for socket paths and pid files, removed at the end.
    pub fn scratch(&self) -> &std::path::Path {
        self.scratch.path()
    }

    /// A line from the narrator (the instructor's voice), set apart from the programs.
    pub fn say(&self, text: &str) {
        println!("\n=== {text}");
    }

    /// Starts the program with `args` in the background, labelled `role`.
    pub fn start(&mut self, role: &str, args: &[&str]) -> Result<u32, String> {
        self.spawn(role, args, None)
    }

    /// Runs the program with `args` and `stdin` to its end (at most `limit`).
    pub fn run(
        &mut self,
        role: &str,
        args: &[&str],
        stdin: &[u8],
        limit: Duration,
    ) -> Result<(), String> {
        let pid = self.spawn(role, args, Some(stdin.to_vec()))?;
        let index = self
            .children
            .iter()
            .position(|(_, c)| c.id() == pid)
            .unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(_)) = self.children[index].1.try_wait() {
                self.wait_drained(pid);
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the {role} did not finish within {} s",
                    limit.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.settle();
        Ok(())
    }

    /// Sends `sig` to a program started by this demo.
    pub fn signal(&self, pid: u32, sig: Signal) {
        let _ = signal::kill(Pid::from_raw(pid as i32), sig);
    }

    /// Waits until a program exits (at most `limit`); true if it did.
    pub fn wait_exit(&mut self, pid: u32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some((_, child)) = self.children.iter_mut().find(|(_, c)| c.id() == pid)
                && let Ok(Some(_)) = child.try_wait()
            {
                self.wait_drained(pid);
                self.settle();
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Waits (at most 2 s) until everything an exited program printed is on screen.
    fn wait_drained(&self, pid: u32) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let Some((_, flag)) = self.drained.iter().find(|(p, _)| *p == pid) else {
            return;
        };
        while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A free loopback port for a server.
    pub fn free_port(&self) -> u16 {
        net::free_port(net::LOCALHOST_V4)
    }

    /// Polls until something listens on `port`.
    pub fn wait_listening(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + super::ctx::START_LIMIT;
        while !net::is_listening(port) {
            if Instant::now() >= deadline {
                return Err(format!("nothing listened on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.settle();
        Ok(())
    }

    /// Waits until no program has printed anything for a moment (at most 2 s), so
    /// each step's narration is on screen before the next step starts.
    pub fn settle(&self) {
        let quiet = Duration::from_millis(250);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let last = *self.last_output.lock().unwrap();
            if last.elapsed() >= quiet || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self, role: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Result<u32, String> {
        let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        let mut command = Command::new(&self.program[0]);
        command
            .args(&self.program[1..])
            .args(args)
            .current_dir(self.scratch.path())
            .env("SOCKLAB_NARRATE", "1")
            .process_group(0)
            // One pipe for both streams keeps each program's lines in the order it
            // printed them (narration on stderr, results on stdout).
            .stdout(writer.try_clone().map_err(|e| e.to_string())?)
            .stderr(writer)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program[0]))?;
        let pid = child.id();
        super::process::track_group(pid as i32);
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        // Our copies of the write end must go, or the reader never sees EOF.
        drop(command);
        let drained = Arc::new(AtomicBool::new(false));
        forward(reader, role, self.last_output.clone(), drained.clone());
        self.drained.push((pid, drained));
        self.children.push((role.to_string(), child));
        Ok(pid)
    }
}

/// Prints each line of `pipe`, labelled with `role` unless it already carries a label.
fn forward(
    pipe: impl Read + Send + 'static,
    role: &str,
    last_output: LastOutput,
    drained: Arc<AtomicBool>,
) {
    let role = role.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            *last_output.lock().unwrap() = Instant::now();
            // A prompt printed without a newline (`> `) runs into the next narration
            // line: show it as a line of its own.
            let label = format!("[{role}]");
            let (before, rest) = match line.find(&label) {
                Some(at) if at > 0 => (&line[..at], &line[at..]),
                _ => ("", line.as_str()),
            };
            if !before.is_empty() {
                println!("{label} {before}");
            }
            if rest.starts_with('[') {
                println!("{rest}");
            } else {
                println!("{label} {rest}");
            }
        }
        drained.store(true, Ordering::SeqCst);
    });
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.settle();
        for (_, child) in &mut self.children {
            let _ = signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            super::process::untrack_group(child.id() as i32);
        }
        super::process::forget_folder(self.scratch.path());
    }
}
