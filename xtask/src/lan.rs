//! `cargo xtask lan`: two laptops on one. Starts the hosts `alpha` (198.51.100.1) and
//! `beta` (198.51.100.2) on one private cable and keeps them until Enter or Ctrl+C;
//! `cargo xtask lan shell alpha|beta` opens a shell inside one of them, so a student
//! can run a server on alpha and `nc`, `telnet` or a lab 2 client on beta by hand.
//!
//! The hosts are network namespaces ([`crate::grade::netns`]): nothing typed inside
//! them reaches the real network, and they vanish (with anything still running in
//! them) when `lan` ends. The running `lan` leaves the hosts' holder pids in a small
//! file in the temporary folder, which `lan shell` reads to find them.

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};

use crate::grade::netns::{self, ALPHA_IP, BETA_IP, Lan};

#[derive(Args)]
pub struct LanArgs {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Subcommand)]
enum Action {
    /// Open a shell inside a host of the running `cargo xtask lan`.
    Shell {
        /// alpha or beta.
        host: String,
    },
}

/// Runs `lan` or `lan shell HOST`.
pub fn run(args: LanArgs) -> anyhow::Result<bool> {
    match args.action {
        None => serve(),
        Some(Action::Shell { host }) => shell(&host),
    }
}

/// Where the running `lan` writes `alpha PID` and `beta PID`.
fn state_file() -> PathBuf {
    let uid = nix::unistd::geteuid().as_raw();
    std::env::temp_dir().join(format!("socklab-lan-{uid}"))
}

/// The holder pid of `host` in the running lan, if one runs.
///
/// Only a file we wrote and a holder of ours count: joining a namespace someone else
/// owns would put our shell in their hands.
fn running_holder(host: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let path = state_file();
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let pid: u32 = text.lines().find_map(|line| {
        let (name, pid) = line.split_once(' ')?;
        (name == host).then(|| pid.trim().parse().ok())?
    })?;
    // The holder is a `cat` of ours; anything else means the file is stale.
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let owner = std::fs::metadata(format!("/proc/{pid}")).ok()?.uid();
    (command.trim() == "cat" && owner == me).then_some(pid)
}

fn serve() -> anyhow::Result<bool> {
    if let Some(pid) = running_holder("alpha") {
        bail!(
            "a lan is already running (alpha's holder is pid {pid}): open a shell with \
             `cargo xtask lan shell alpha`, or end that lan first"
        );
    }
    let lan = Lan::new().map_err(|why| anyhow!("{why}"))?;
    if !lan.wait_link(Duration::from_secs(5)) {
        bail!("the cable between alpha and beta did not come up within 5 s");
    }
    let state = state_file();
    // A file of our own, readable by us only (never one someone else left there).
    let _ = std::fs::remove_file(&state);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&state)
        .with_context(|| format!("cannot write {}", state.display()))?;
    writeln!(file, "alpha {}\nbeta {}", lan.alpha.pid(), lan.beta.pid())
        .with_context(|| format!("cannot write {}", state.display()))?;

    let (done, ended) = mpsc::channel::<&str>();
    let on_interrupt = done.clone();
    ctrlc::set_handler(move || {
        let _ = on_interrupt.send("Ctrl+C");
    })
    .context("cannot catch Ctrl+C")?;
    std::thread::spawn(move || {
        // Enter ends the lan; a closed stdin (no terminal) leaves only Ctrl+C.
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
            let _ = done.send("Enter");
        }
    });

    println!("lan: two hosts on one private cable (nothing reaches your real network)");
    println!("  alpha  {ALPHA_IP}  eth0  ->  cargo xtask lan shell alpha");
    println!("  beta   {BETA_IP}  eth0  ->  cargo xtask lan shell beta");
    println!("Each host has its own loopback (127.0.0.1) too. The walk-through is in");
    println!("labs/lab1-tcp-server/README.md. Press Enter or Ctrl+C to take them down.");
    let why = ended.recv().unwrap_or("end");
    drop(lan);
    let _ = std::fs::remove_file(&state);
    println!("lan: {why}: alpha and beta are gone, with everything that ran in them");
    Ok(true)
}

fn shell(host: &str) -> anyhow::Result<bool> {
    if !["alpha", "beta"].contains(&host) {
        bail!("unknown host {host:?}: choose alpha or beta");
    }
    let pid = running_holder(host)
        .context("no lan is running: start one with `cargo xtask lan` in another terminal")?;
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    let (me, other, other_ip) = match host {
        "alpha" => (ALPHA_IP, "beta", BETA_IP),
        _ => (BETA_IP, "alpha", ALPHA_IP),
    };
    println!("{host} ({me}): a shell inside {host}; {other} is {other_ip}. `exit` to leave.");
    let mut command = netns::command_in(pid, &shell)
        .map_err(|e| anyhow!("cannot enter {host}: {e} (is the lan still running?)"))?;
    let error = command.env("SOCKLAB_HOST", host).exec();
    Err(anyhow!("cannot start {shell} inside {host}: {error}"))
}
