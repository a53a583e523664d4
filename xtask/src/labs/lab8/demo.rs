//! Lab 8's classroom session (`cargo xtask demo lab8`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::Demo;

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let pidfile = demo.scratch().join("lab8.pid");
    let path_text = pidfile.display().to_string();
    demo.say("The daemon blocks SIGINT/SIGTERM, listens on a port the kernel picks, then writes pid;port atomically");
    let pid = demo.start("daemon", &["daemon", "--pidfile", &path_text])?;
    let deadline = Instant::now() + START_LIMIT;
    while fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| parse_record(&t))
        .is_none()
    {
        if Instant::now() >= deadline {
            anyhow::bail!("the daemon wrote no pid file");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    demo.settle();
    println!(
        "[pid file] {}",
        show(fs::read_to_string(&pidfile).unwrap_or_default().as_bytes())
    );

    demo.say("status reads the file, asks kill(pid, 0), then connects and asks for the handshake");
    demo.run(
        "status",
        &["status", "--pidfile", &path_text],
        b"",
        STATUS_LIMIT,
    )?;

    demo.say("A stale file: the pid of a process that has exited");
    let stale = demo.scratch().join("stale.pid");
    let dead = dead_pid()?;
    fs::write(&stale, format!("{dead};{}\n", demo.free_port()))?;
    let stale_text = stale.display().to_string();
    demo.run(
        "status",
        &["status", "--pidfile", &stale_text],
        b"",
        STATUS_LIMIT,
    )?;

    demo.say("A live pid (this demo's own) whose port nobody listens on");
    fs::write(
        &stale,
        format!("{};{}\n", std::process::id(), demo.free_port()),
    )?;
    demo.run(
        "status",
        &["status", "--pidfile", &stale_text],
        b"",
        STATUS_LIMIT,
    )?;

    demo.say(
        "SIGTERM: the daemon wakes from poll() through its signalfd, removes its pid file, exits 0",
    );
    demo.signal(pid, Signal::SIGTERM);
    if !demo.wait_exit(pid, Duration::from_secs(5)) {
        anyhow::bail!("the daemon did not exit on SIGTERM");
    }
    demo.run(
        "status",
        &["status", "--pidfile", &path_text],
        b"",
        STATUS_LIMIT,
    )?;
    Ok(())
}
