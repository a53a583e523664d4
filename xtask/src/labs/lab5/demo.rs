//! Lab 5's classroom session (`cargo xtask demo lab5`): the reference programs
//! narrate their calls while this script drives them. Built only with the `tools`
//! feature, so a student's `cargo xtask grade` never compiles it (nor etherparse).

use super::*;
use crate::grade::demo::Demo;
use std::os::unix::fs::MetadataExt;

fn wait_for_socket(path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_LIMIT;
    while bound_socket(path).is_none() {
        if Instant::now() >= deadline {
            anyhow::bail!("nothing was bound at {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn describe_file(path: &Path) -> String {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => format!(
            "{} is a socket file, mode {:04o} (ls -l shows srw-------)",
            path.display(),
            m.permissions().mode() & 0o777
        ),
        Ok(_) => format!("{} exists but is not a socket", path.display()),
        Err(_) => format!("{} does not exist", path.display()),
    }
}

/// What `find DIR -type s` and `ls -l PATH` show for the socket file at `path`,
/// worked out here (no external tools needed): a socket is a file anyone can find.
fn find_sockets(demo: &mut Demo, path: &Path) {
    let Some(folder) = path.parent() else {
        return;
    };
    demo.say("A socket is a file: find -type s lists it, ls -l shows its type as s, size 0");
    let mut found: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    demo.line(
        "grader",
        format!(
            "find {} -type s -> {}",
            folder.display(),
            if found.is_empty() {
                "(nothing)".to_string()
            } else {
                found.join(" ")
            }
        ),
    );
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let mode = meta.permissions().mode();
        let mut letters = String::from(if meta.file_type().is_socket() {
            "s"
        } else {
            "-"
        });
        for (bit, letter) in [
            (0o400, 'r'),
            (0o200, 'w'),
            (0o100, 'x'),
            (0o040, 'r'),
            (0o020, 'w'),
            (0o010, 'x'),
            (0o004, 'r'),
            (0o002, 'w'),
            (0o001, 'x'),
        ] {
            letters.push(if mode & bit != 0 { letter } else { '-' });
        }
        demo.line(
            "grader",
            format!(
                "ls -l -> {letters} uid {} size {} {}",
                meta.uid(),
                meta.len(),
                path.display()
            ),
        );
    }
}

pub(super) fn demo(demo: &mut Demo) -> anyhow::Result<()> {
    let limit = Duration::from_secs(15);
    let path = demo.scratch().join("lab5.sock");
    let path_text = path.to_string_lossy().into_owned();
    demo.say(&format!(
        "The stream server: socket(AF_UNIX), bind({path_text}), chmod, listen()"
    ));
    let server = demo.start("server", &["server", "--path", &path_text])?;
    wait_for_socket(&path)?;
    demo.settle();
    demo.say(&describe_file(&path));
    find_sockets(demo, &path);

    demo.say("A client connects to the path, sends stdin, half-closes and prints the echo; the server learns its pid, uid and gid from the kernel");
    demo.run(
        "client",
        &["client", "--path", &path_text],
        b"hello over a Unix socket\n",
        limit,
    )?;

    demo.say("Ctrl+C (SIGINT): the server's signal thread removes the file, then exits");
    demo.signal(server, Signal::SIGINT);
    demo.wait_exit(server, limit);
    demo.say(&describe_file(&path));

    let dgram_path = demo.scratch().join("lab5-dgram.sock");
    let dgram_text = dgram_path.to_string_lossy().into_owned();
    demo.say("The datagram pair: the client binds a path of its own, so the server can reply");
    let dgram_server = demo.start("dgram-server", &["dgram-server", "--path", &dgram_text])?;
    wait_for_socket(&dgram_path)?;
    demo.settle();
    demo.run(
        "dgram-client",
        &["dgram-client", "--path", &dgram_text],
        b"one datagram\nanother\n",
        limit,
    )?;
    demo.signal(dgram_server, Signal::SIGTERM);
    demo.wait_exit(dgram_server, limit);
    Ok(())
}
