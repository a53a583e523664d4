//! The sandbox holds: a hostile program (`tests/hostile/sandbox_escapes.py`) tries every
//! escape under `--cmd` (strict by default) and each attempt fails; the grader finishes
//! with a readable report, and every target is checked unchanged afterwards. Network
//! isolation is proven by inspection only: the program's network namespace is not the
//! grader's and has no interface but `lo`. No traffic ever leaves loopback.
//!
//! The protections of `strict` need root (CI runs as root); elsewhere the test checks
//! what `basic` gives (working directory, environment) and says what it skipped.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn hostile(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(name)
        .display()
        .to_string()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The findings the program sent (one datagram per start), once the grader is done.
fn findings(log: &UnixDatagram) -> Vec<Value> {
    log.set_nonblocking(true).unwrap();
    let mut found = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    while let Ok(n) = log.recv(&mut buffer) {
        found.push(serde_json::from_slice(&buffer[..n]).unwrap());
    }
    found
}

/// Live processes named like the program's left-behind sleeper.
/// The sleepers still running once those being killed have had time to go: up to 10 s
/// (the kernel ends a PID namespace's processes as its init exits, which a busy machine
/// can stretch); a sleeper that survived its check's end is still listed then.
fn sleepers() -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = sleepers_now();
        if found.is_empty() || std::time::Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn sleepers_now() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("sandbox_escapes.py-sleeper") {
            found.push(pid.to_string());
        }
    }
    found
}

/// The targets of the hostile program, in a folder of their own outside /tmp.
struct Scene {
    tmp: tempfile::TempDir,
    repo: std::path::PathBuf,
    canary: std::path::PathBuf,
    secret: std::path::PathBuf,
    grader_pid: std::path::PathBuf,
    receiver: UnixDatagram,
    program_before: Vec<u8>,
}

impl Scene {
    /// The targets, the repository's and the secret's files owned by `owner` (the
    /// grader's user).
    fn new(owner: Option<u32>) -> Scene {
        // Outside /tmp: the program gets a /tmp of its own, and must still see this.
        // (Not under target/ either: a checkout may itself live under /tmp, as CI's
        // does.)
        let tmp = tempfile::Builder::new()
            .prefix("sandbox-test")
            .tempdir_in("/var/tmp")
            .unwrap();
        // A repository as an instructor's checkout has it: folders 0755, files 0644,
        // the program under test inside it, named by a relative path.
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&repo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let canary = repo.join("canary.txt");
        std::fs::write(&canary, "the reference solution\n").unwrap();
        for file in ["sandbox_escapes.py", "common.py"] {
            std::fs::copy(hostile(file), repo.join(file)).unwrap();
            std::fs::set_permissions(repo.join(file), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        let program_before = std::fs::read(repo.join("sandbox_escapes.py")).unwrap();
        // A file only the grader's user may read.
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, "instructor's private key\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(owner) = owner {
            for path in [
                tmp.path(),
                repo.as_path(),
                canary.as_path(),
                secret.as_path(),
            ] {
                std::os::unix::fs::chown(path, Some(owner), Some(owner)).unwrap();
            }
            for file in ["sandbox_escapes.py", "common.py"] {
                std::os::unix::fs::chown(repo.join(file), Some(owner), Some(owner)).unwrap();
            }
        }
        // Where the program sends what it saw: a Unix socket anyone may write to.
        let log = tmp.path().join("log.sock");
        let receiver = UnixDatagram::bind(&log).unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        let grader_pid = tmp.path().join("grader.pid");
        Scene {
            tmp,
            repo,
            canary,
            secret,
            grader_pid,
            receiver,
            program_before,
        }
    }

    /// Grades the hostile program with `grader` (the grader's argv), started by
    /// `wrapper` (e.g. setpriv) if any.
    fn grade(&self, wrapper: &[&str], grader: &str) -> std::process::Output {
        // The grader's pid, for the program to aim at: the shell writes its own, then
        // becomes the grader.
        let cmd = format!(
            "env SANDBOX_REPO={} SANDBOX_SECRET={} SANDBOX_LOG={} SANDBOX_GRADER_PID_FILE={} \
             python3 repo/sandbox_escapes.py",
            self.repo.display(),
            self.secret.display(),
            self.tmp.path().join("log.sock").display(),
            self.grader_pid.display()
        );
        let (program, wrapped) = match wrapper.split_first() {
            Some((first, rest)) => (*first, rest),
            None => ("env", &[][..]),
        };
        Command::new(program)
            .args(wrapped)
            .args(["sh", "-c", r#"echo $$ > "$0"; exec "$@""#])
            .arg(&self.grader_pid)
            .arg(grader)
            .current_dir(self.tmp.path())
            .args(["grade", "lab1", "--cmd", &cmd, "--json"])
            .args(["--check", "listens"])
            .env("SOCKLAB_TEST_SECRET_TOKEN", "do-not-leak")
            .output()
            .unwrap()
    }

    /// The grader's pid, as the shell wrote it down.
    fn grader(&self) -> u64 {
        std::fs::read_to_string(&self.grader_pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The repository, the program and the secret are as they were.
    fn assert_unchanged(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.canary).unwrap(),
            "the reference solution\n"
        );
        assert!(!self.repo.join("planted.txt").exists());
        assert_eq!(
            std::fs::read(self.repo.join("sandbox_escapes.py")).unwrap(),
            self.program_before
        );
        assert_eq!(
            std::fs::read_to_string(&self.secret).unwrap(),
            "instructor's private key\n"
        );
    }
}

#[test]
fn every_escape_fails_under_cmd() {
    let scene = Scene::new(None);
    let output = scene.grade(&[], env!("CARGO_BIN_EXE_xtask"));
    let receiver = &scene.receiver;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The grader survived (kill_grader did not reach it) and reported.
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["score"], report["max_score"], "{stdout}");
    let sandbox = &report["sandbox"];
    assert_eq!(sandbox["level"], "strict", "{stdout}");

    let found = findings(receiver);
    assert!(
        !found.is_empty(),
        "the program never ran: {stdout}\n{stderr}"
    );
    for seen in &found {
        // Basic: started in its scratch folder, with the scrubbed environment.
        let cwd = seen["cwd"].as_str().unwrap();
        assert!(
            cwd.contains("socklab-check-"),
            "not in its scratch folder: {cwd}"
        );
        // Gone, with the 64 MiB of fillers the program left in it.
        assert!(!Path::new(cwd).exists(), "{cwd} was left behind");
        let env = seen["env"].as_object().unwrap();
        assert_eq!(env["HOME"], cwd);
        assert_eq!(env["TMPDIR"], cwd);
        assert!(!env.contains_key("SOCKLAB_TEST_SECRET_TOKEN"), "{env:?}");
        let allowed = [
            "PATH",
            "HOME",
            "TMPDIR",
            "LANG",
            "LC_ALL",
            "SOCKLAB_CHECK",
            "SANDBOX_REPO",
            "SANDBOX_SECRET",
            "SANDBOX_LOG",
            "SANDBOX_GRADER_PID_FILE",
        ];
        for key in env.keys() {
            // (env adds nothing; python may add PYTHON*-free LC_CTYPE on some systems)
            assert!(
                allowed.contains(&key.as_str()) || key == "LC_CTYPE",
                "the grader's {key} leaked into the program's environment"
            );
        }
        // Basic too: writable memory is capped (RLIMIT_DATA, 2 GiB), so 3 GiB at once
        // was refused.
        let hoard = seen["hoard_memory"].as_str().unwrap();
        assert!(hoard.starts_with("stopped: MemoryError"), "{hoard}");
        if !is_root() {
            eprintln!("strict protections skipped: not root");
            continue;
        }
        // Strict: every attempt was stopped.
        for attempt in [
            "write_repo",
            "new_file_in_repo",
            "delete_in_repo",
            "edit_self",
            "read_secret",
            "kill_grader",
            "write_elsewhere",
        ] {
            let how = seen[attempt].as_str().unwrap();
            assert!(how.starts_with("stopped: "), "{attempt}: {how}");
        }
        // The scratch folder's cap (64 MiB in all) stopped the filler, though each of
        // its files was under the file-size cap.
        let mib = seen["fill_scratch_mib"].as_u64().unwrap();
        assert!(mib <= 64, "wrote {mib} MiB into its scratch folder");
        assert!(
            seen["fill_scratch"]
                .as_str()
                .unwrap()
                .contains("No space left"),
            "{}",
            seen["fill_scratch"]
        );
        // A PID namespace of its own: the grader is out of sight (its parent is 0),
        // only its check's few processes are in /proc, and its own pid is small.
        let grader = scene.grader();
        assert_eq!(seen["sees_grader"], false, "/proc/{grader} is visible");
        assert_eq!(seen["ppid"], 0, "{seen}");
        let pids: Vec<u64> = seen["proc_pids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert!(!pids.contains(&grader), "{pids:?}");
        assert!(pids.len() < 10, "sees the machine's processes: {pids:?}");
        assert!(seen["pid"].as_u64().unwrap() < 10, "{seen}");
        // No capability at all.
        assert_eq!(seen["capabilities"], "0000000000000000", "{seen}");
        // Its own uid, in the high range, not root.
        let uid = seen["uid"].as_u64().unwrap();
        assert!(uid >= 0x4000_0000, "uid {uid}");
        // Network isolation by inspection: another namespace, with only lo in it.
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(seen["net_namespace"], ours.display().to_string());
        assert_eq!(seen["interfaces"], serde_json::json!(["lo"]));
    }
    if is_root() {
        let in_force: Vec<&str> = sandbox["in_force"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(in_force.iter().any(|p| p.contains("own uid")), "{sandbox}");
        assert!(in_force.iter().any(|p| p.contains("network")), "{sandbox}");
        assert!(in_force.iter().any(|p| p.contains("capped")), "{sandbox}");
        assert!(in_force.iter().any(|p| p.contains("PID")), "{sandbox}");
    }
    // The targets are unchanged.
    scene.assert_unchanged();
    for planted in [
        "/tmp/socklab-sandbox-planted",
        "/var/tmp/socklab-sandbox-planted",
    ] {
        let there = Path::new(planted).exists();
        let _ = std::fs::remove_file(planted);
        assert!(!there || !is_root(), "the program left {planted} behind");
    }
    // Nothing was left running, nor mounted where the machine sees it.
    assert_eq!(sleepers(), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("socklab-check-"), "{mounts}");
}

#[test]
fn the_report_says_which_protections_held() {
    // The human header's line, for a quick check (no program escapes).
    let program = format!("python3 {}", hostile("sleeps.py"));
    for (level, expected) in [
        (
            "strict",
            "sandbox: strict (scratch folder as working directory",
        ),
        (
            "off",
            "sandbox: off; not in force: own uid per check: --sandbox off",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["grade", "lab1", "--cmd", &program, "--sandbox", level])
            .args(["--check", "bad-host"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(expected), "{level}: {stdout}");
    }
    // `basic` (a student's own crate) says it in the JSON only.
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["grade", "lab1", "--cmd", &program, "--sandbox", "basic"])
        .args(["--check", "bad-host", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["sandbox"]["level"], "basic");
}

#[test]
fn a_program_other_users_cannot_read_runs_without_its_own_uid_and_says_why() {
    if !is_root() {
        eprintln!("skipped: only root starts programs as another user");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("sandbox-private")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let script = tmp.path().join("lab1_server.py");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/python/lab1_server.py"
        ),
        &script,
    )
    .unwrap();
    let program = format!("python3 {}", script.display());
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["grade", "lab1", "--cmd", &program, "--check", "greets"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let header = stdout.lines().find(|l| l.starts_with("sandbox:")).unwrap();
    assert!(
        header.contains(&format!(
            "not in force: own uid per check: other users cannot enter {}",
            tmp.path().display()
        )),
        "{header}"
    );
    assert!(header.contains("network namespace"), "{header}");
}

#[test]
fn on_a_second_host_the_program_runs_as_its_own_uid_too() {
    if !is_root() {
        eprintln!("skipped: only root starts programs as another user");
        return;
    }
    // A "server" that says who it is and stops: its stderr is in the report.
    let program =
        "python3 -c 'import os,sys; print(\"uid=%d\" % os.getuid(), file=sys.stderr); sys.exit(3)'";
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["grade", "lab1", "--cmd", program, "--json"])
        .args(["--check", "reachable-from-another-host"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let check = &report["checks"][0];
    if check["status"] == "cannot-test" {
        eprintln!("skipped: {}", check["message"]);
        return;
    }
    let message = check["message"].as_str().unwrap();
    let uid: u64 = message
        .split("uid=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no uid in {message}"));
    assert!(uid >= 0x4000_0000, "ran as uid {uid} on the second host");
}

/// Runs the test's own copy of the grader as `nobody` (the test must be root to switch):
/// a non-root grader gets what a user namespace of its own allows.
#[test]
fn a_non_root_grader_still_confines_where_user_namespaces_are_allowed() {
    if !is_root() {
        eprintln!("skipped: the test runs the grader as nobody, which takes root");
        return;
    }
    let nobody = 65534;
    let scene = Scene::new(Some(nobody));
    // The grader's binary where nobody may run it.
    let grader = scene.tmp.path().join("xtask");
    std::fs::copy(env!("CARGO_BIN_EXE_xtask"), &grader).unwrap();
    std::fs::set_permissions(&grader, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = scene.grade(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            // The workspace root it would otherwise take from where it was built.
            &format!("SOCKLAB_ROOT={}", scene.repo.display()),
        ],
        &grader.display().to_string(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["score"], report["max_score"], "{stdout}");
    let sandbox = &report["sandbox"];
    let listed = |key: &str| -> String {
        sandbox[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let (in_force, missing) = (listed("in_force"), listed("missing"));
    // No uid of its own (nothing but the grader's uid is mapped), and the report says so.
    assert!(
        missing.contains("own uid per check: the grader is not root"),
        "{sandbox}"
    );
    if missing.contains("has no user namespace") {
        // The one line says so, and only what basic gives is claimed.
        assert_eq!(
            in_force,
            "scratch folder as working directory; scrubbed environment"
        );
        eprintln!("skipped the namespace checks: user namespaces are not allowed here ({missing})");
        return;
    }
    for protection in ["no capabilities", "network", "read-only", "capped", "PID"] {
        assert!(in_force.contains(protection), "{protection}: {sandbox}");
    }
    let found = findings(&scene.receiver);
    assert!(
        !found.is_empty(),
        "the program never ran: {stdout}\n{stderr}"
    );
    let grader_pid = scene.grader();
    for seen in &found {
        // The repository belongs to the grader's user: only the read-only mounts stop
        // these. (The secret does too, and the program runs as that user: it can read
        // it. Without root there is no other uid to give it.)
        for attempt in [
            "write_repo",
            "new_file_in_repo",
            "delete_in_repo",
            "edit_self",
            "kill_grader",
            "write_elsewhere",
        ] {
            let how = seen[attempt].as_str().unwrap();
            assert!(how.starts_with("stopped: "), "{attempt}: {how}");
        }
        assert!(seen["fill_scratch_mib"].as_u64().unwrap() <= 64, "{seen}");
        let cwd = seen["cwd"].as_str().unwrap();
        assert!(!Path::new(cwd).exists(), "{cwd} was left behind");
        assert_eq!(seen["capabilities"], "0000000000000000", "{seen}");
        assert_eq!(seen["sees_grader"], false, "{seen}");
        let pids = seen["proc_pids"].as_array().unwrap();
        assert!(!pids.contains(&Value::from(grader_pid)), "{pids:?}");
        assert!(pids.len() < 10, "sees the machine's processes: {pids:?}");
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(seen["net_namespace"], ours.display().to_string());
        assert_eq!(seen["interfaces"], serde_json::json!(["lo"]));
    }
    scene.assert_unchanged();
    assert!(!Path::new("/var/tmp/socklab-sandbox-planted").exists());
    assert_eq!(sleepers(), Vec::<String>::new());
}
