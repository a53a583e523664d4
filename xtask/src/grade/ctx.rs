//! [`Ctx`]: what a check uses to run the program under test and talk to it.
//!
//! A fresh `Ctx` is made for every check and dropped when the check ends, which kills
//! every program the check started (with their process groups, and whatever left them
//! carrying the check's marker) and removes the check's scratch folder. Checks never sleep to wait for a program: they poll for the state
//! they need (a listening port, an exit) with a deadline.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::Failure;
use super::capture::describe_size;
use super::process::{self, Input, Running, describe_status};
use super::sandbox::{Jail, Policy};
use super::{files, net, pidns, poll, scratchfs, strays, tcp_table};

/// How long a program may take to start listening.
pub const START_LIMIT: Duration = Duration::from_secs(5);

/// The per-check context: the program under test, its processes and a scratch folder.
pub struct Ctx {
    program: Vec<String>,
    procs: Vec<Running>,
    /// Removed by hand when the check ends (see [`files::remove_tree`]).
    scratch: PathBuf,
    /// The check this context belongs to: its programs carry this marker.
    token: u64,
    /// Why this check could not test what it is for here (it then passes, saying so).
    /// What each started program was asked to do, for the "try it by hand" line;
    /// one entry per process, `None` for programs other than the one under test.
    launches: Vec<Option<Launch>>,
    /// How this check's programs are confined (None: `--sandbox off`).
    jail: Option<Jail>,
}

/// One start of the program under test: its arguments after the program itself, and
/// whether the check then saw it listen (a server) or not (a client, a probe).
#[derive(Clone, Debug)]
pub struct Launch {
    pub args: Vec<String>,
    pub listened: bool,
}

/// A server the check started and saw listening.
#[derive(Clone, Copy, Debug)]
pub struct Server {
    /// Index for [`Ctx::proc`].
    pub id: usize,
    /// Where it listens.
    pub addr: SocketAddr,
    pub pid: u32,
}

/// A program that ran to its end.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl Ctx {
    /// A context that runs `program` (the argv prefix before the role), confined as
    /// `policy` says.
    pub fn new(program: &[String], policy: &Policy) -> anyhow::Result<Ctx> {
        // Kept (not removed on drop): the registry removes it, whichever way the grader
        // ends.
        let scratch =
            files::make_scratch("socklab-check-").context("cannot create a scratch folder")?;
        if !process::register_folder(&scratch) {
            let _ = std::fs::remove_dir_all(&scratch);
            anyhow::bail!("the grader is ending");
        }
        // Capped in size under strict (a tmpfs seen by this check's thread only).
        if policy.capped_scratch
            && let Err(e) = scratchfs::mount(&scratch)
        {
            let _ = std::fs::remove_dir(&scratch);
            process::forget_folder(&scratch);
            return Err(e);
        }
        // Readable by all, so a program started as an unprivileged user can run in it.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755));
        let token = process::check_token();
        let jail = policy.jail(token, &scratch);
        if let Some(uid) = jail.as_ref().and_then(|j| j.uid) {
            // The check's own user owns its folder (and nothing else on the machine).
            std::os::unix::fs::chown(&scratch, Some(uid), Some(uid))
                .with_context(|| format!("cannot give the scratch folder to uid {uid}"))?;
        }
        Ok(Ctx {
            program: program.to_vec(),
            procs: Vec::new(),
            scratch,
            token,
            launches: Vec::new(),
            jail,
        })
    }

    /// The uid the program under test runs as, when the sandbox gives it one of its own.
    pub fn program_uid(&self) -> Option<u32> {
        self.jail.as_ref().and_then(|j| j.uid)
    }

    /// The argv prefix of the program under test.
    pub fn program(&self) -> &[String] {
        &self.program
    }

    /// A folder private to this check, removed when it ends (pid files, socket paths).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Starts the program under test with `args` (role first), labelled `label`.
    pub fn spawn(
        &mut self,
        label: &str,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<usize, Failure> {
        self.spawn_with_env(label, args, stdin, &[])
    }

    /// Like [`spawn`](Self::spawn), with extra environment variables.
    pub fn spawn_with_env(
        &mut self,
        label: &str,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        envs: &[(&str, &str)],
    ) -> Result<usize, Failure> {
        let input = stdin.map_or(Input::Empty, Input::Bytes);
        self.launch(label, args, input, envs, None)
    }

    /// Starts the program with a stdin the check types into as it goes
    /// (`ctx.proc(id).type_input(b"line\n")`, then `close_input()`).
    pub fn spawn_interactive(&mut self, label: &str, args: &[&str]) -> Result<usize, Failure> {
        self.launch(label, args, Input::Open, &[], None)
    }

    /// Starts some other program (`argv`, not the one under test), e.g. a process of
    /// another user for a permission check. It is killed when the check ends like any.
    pub fn spawn_other(
        &mut self,
        label: &str,
        argv: &[&str],
        uid: Option<u32>,
    ) -> Result<usize, Failure> {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let label = format!("{label} #{}", self.procs.len() + 1);
        // The grader's helpers (nsenter, a sleeper) start in the scratch folder with the
        // scrubbed environment, but not as the check's uid: nsenter must still join
        // namespaces, a helper of another user must stay another user.
        let jail = self.jail.clone().map(|j| Jail {
            uid: None,
            drop_caps: false,
            ..j
        });
        let running = Running::start(&argv, &label, Input::Empty, &[], uid, jail.as_ref())
            .map_err(|e| {
                Failure::new(format!(
                    "the grader could not start {:?}: {e}",
                    argv.join(" ")
                ))
            })?;
        self.procs.push(running);
        self.launches.push(None);
        Ok(self.procs.len() - 1)
    }

    /// Starts the program as an unprivileged user (`uid`, which is also the gid).
    /// Only possible when the grader runs as root; see [`running_as_root`].
    pub fn spawn_as_user(
        &mut self,
        label: &str,
        args: &[&str],
        uid: u32,
    ) -> Result<usize, Failure> {
        self.launch(label, args, Input::Empty, &[], Some(uid))
    }

    fn launch(
        &mut self,
        label: &str,
        args: &[&str],
        input: Input,
        envs: &[(&str, &str)],
        uid: Option<u32>,
    ) -> Result<usize, Failure> {
        let mut argv = self.program.clone();
        argv.extend(args.iter().map(|a| a.to_string()));
        let label = format!("{label} #{}", self.procs.len() + 1);
        let running =
            Running::start(&argv, &label, input, envs, uid, self.jail.as_ref()).map_err(|e| {
                Failure::new(format!("could not start {:?}: {e}", argv.join(" ")))
                    .hint("is the program built, and is the --cmd path right?")
            })?;
        self.procs.push(running);
        self.launches.push(Some(Launch {
            args: args.iter().map(|a| a.to_string()).collect(),
            listened: false,
        }));
        Ok(self.procs.len() - 1)
    }

    /// Ends a check that cannot test its point on this machine (say, the other user it
    /// needs cannot run the program): the report says "cannot test this here" and why,
    /// and the check is left out of the score, instead of a verdict the program did not
    /// earn either way. The same outcome as [`Failure::cannot_test_here`].
    pub fn cannot_test(&mut self, why: impl Into<String>) -> Result<(), Failure> {
        Err(Failure::cannot_test_here(why.into()))
    }

    /// Whether user `uid` can run the program at all: `args` (a run that ends by itself)
    /// as that user must end with the same exit status as when the grader's user runs
    /// it. Otherwise (a folder that user may not read, an interpreter it may not run)
    /// returns why, in words, for [`cannot_test`](Self::cannot_test).
    pub fn other_user_runs_it(&mut self, uid: u32, args: &[&str]) -> anyhow::Result<()> {
        let limit = Duration::from_secs(5);
        let ours = self.run("probe", args, None, limit)?;
        let id = self.spawn_as_user("probe as another user", args, uid)?;
        let theirs = self.finish(id, limit)?;
        if ours.status.code() == theirs.status.code() {
            return Ok(());
        }
        let said = theirs.stderr_lines().first().map_or(String::new(), |l| {
            format!(": {}", l.chars().take(200).collect::<String>())
        });
        anyhow::bail!(
            "user {uid} cannot run the program as the grader's user does (`{}` ended with {} \
             instead of {}{said}); put it where every user may read and run it",
            args.join(" "),
            describe_status(theirs.status),
            describe_status(ours.status),
        )
    }

    /// The starts of the program under test so far, oldest first.
    pub fn launches(&self) -> impl Iterator<Item = &Launch> {
        self.launches.iter().flatten()
    }

    /// The program's processes, for the failure explanation.
    pub(super) fn procs_mut(&mut self) -> &mut [Running] {
        &mut self.procs
    }

    /// A program this check started.
    pub fn proc(&mut self, id: usize) -> &mut Running {
        &mut self.procs[id]
    }

    /// Starts `role --host IP --port P extra...` on a free port and waits until it
    /// listens there.
    pub fn start_server(
        &mut self,
        role: &str,
        ip: IpAddr,
        extra: &[&str],
    ) -> Result<Server, Failure> {
        self.again_if_port_taken(|ctx| {
            let port = net::free_port(ip);
            let host = ip.to_string();
            let port_text = port.to_string();
            let mut args = vec![role, "--host", &host, "--port", &port_text];
            args.extend_from_slice(extra);
            let id = ctx.spawn(role, &args, None)?;
            ctx.wait_listening(id, port)?;
            Ok(Server {
                id,
                addr: SocketAddr::new(ip, port),
                pid: ctx.procs[id].pid(),
            })
        })
    }

    /// Runs `start` (one start of a server on a port the grader just picked) and, if
    /// the program it started stopped because that port was in use, once more.
    ///
    /// The grader picks a port that is free, then the program binds it a moment later:
    /// in between, another program on this machine (another grader's server, a
    /// connection lingering from one) can take it, and a correct program fails through
    /// no fault of its own. Its stderr says so in every language ("Address already in
    /// use", EADDRINUSE). The first start is then forgotten, so the report reads as if
    /// only the second had happened. A program that is itself the cause (it binds the
    /// port twice, or a fixed port) fails the second start the same way.
    pub fn again_if_port_taken<T>(
        &mut self,
        mut start: impl FnMut(&mut Ctx) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let before = self.procs.len();
        match start(self) {
            Err(_) if self.lost_its_port(before) => {
                // Dropping the Running kills what is left of its process group.
                self.procs.truncate(before);
                self.launches.truncate(before);
                start(self)
            }
            other => other,
        }
    }

    /// Whether the one program started since `before` has exited saying its address
    /// was in use.
    fn lost_its_port(&mut self, before: usize) -> bool {
        if self.procs.len() != before + 1 || self.procs[before].exited().is_none() {
            return false;
        }
        let stderr = self.procs[before].stderr_text().to_lowercase();
        ["address already in use", "address in use", "eaddrinuse"]
            .iter()
            .any(|words| stderr.contains(words))
    }

    /// Polls until the program `id` (or a process it started) listens on `port`, failing
    /// early if the program exits.
    ///
    /// Whose the listener is matters: other checks and other graders start servers on
    /// ports of their own at the same time, and a skeleton that never listens must not
    /// pass because some other program took its port. A listener counts once this
    /// check's processes hold its socket (its inode among their descriptors).
    pub fn wait_listening(&mut self, id: usize, port: u16) -> Result<(), Failure> {
        let deadline = Instant::now() + START_LIMIT;
        let mut foreign = false;
        loop {
            let inodes = net::listener_inodes(port);
            if !inodes.is_empty() {
                if self.holds_any(id, &inodes) {
                    self.mark_listened(id);
                    return Ok(());
                }
                foreign = true;
            }
            if let Some(status) = self.procs[id].exited() {
                let label = &self.procs[id].label;
                let stderr = self.procs[id].stderr_text().to_lowercase();
                let hint = if foreign {
                    "another program on this machine (not this check's) listens on that port; \
                     the grader's choice of port collided with it: grade again"
                } else if stderr.contains("invalid argument") {
                    "accept() fails with EINVAL (\"invalid argument\") on a socket that is not \
                     listening: did the program call listen() after bind()?"
                } else {
                    "it stopped during start-up: its stderr below says why"
                };
                return Err(Failure::new(format!(
                    "the {label} exited ({}) before listening on port {port}",
                    describe_status(status)
                ))
                .hint(hint));
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "nothing listened on port {port} within {} s of starting",
                    START_LIMIT.as_secs()
                ))
                .hint(
                    "did the program call bind() and listen() on the --host/--port it was given?",
                ));
            }
            // A stranger's listener costs a look through /proc on every poll: poll slower.
            let pause = if foreign { 50 } else { 5 };
            std::thread::sleep(Duration::from_millis(pause));
        }
    }

    /// Whether a process of this check holds one of the sockets `inodes`: the program
    /// started as `id` (most servers), else any process carrying the check's marker (a
    /// child it forked to listen). A program whose descriptors the grader may not read
    /// (it made itself undumpable) is taken at its word.
    fn holds_any(&self, id: usize, inodes: &[u64]) -> bool {
        let holds = |pid: u32| {
            let dir = format!("/proc/{pid}/fd");
            match std::fs::read_dir(&dir) {
                Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
                Ok(_) => tcp_table::socket_inodes(pid)
                    .iter()
                    .any(|inode| inodes.contains(inode)),
            }
        };
        holds(self.procs[id].pid())
            || strays::marked(&strays::marker_value(self.token), false)
                .into_iter()
                .any(|pid| holds(pid as u32))
    }

    /// Polls until `ready()` says the program `id` (started as `role`) has set up its
    /// socket, failing early if it exits first ("the ROLE exited (STATUS) before
    /// WHAT"), and with `late` after [`START_LIMIT`].
    pub fn wait_ready(
        &mut self,
        id: usize,
        role: &str,
        what: &str,
        mut ready: impl FnMut() -> bool,
        late: Failure,
    ) -> Result<(), Failure> {
        let outcome = poll::until(START_LIMIT, Duration::from_millis(5), || {
            if ready() {
                return Some(Ok(()));
            }
            self.procs[id].exited().map(Err)
        });
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(status)) => Err(Failure::new(format!(
                "the {role} exited ({}) before {what}",
                describe_status(status)
            ))
            .hint("it stopped during start-up: its stderr below says why")),
            None => Err(late),
        }
    }

    /// Remembers that the program started as `id` listened (it is a server).
    fn mark_listened(&mut self, id: usize) {
        if let Some(Some(launch)) = self.launches.get_mut(id) {
            launch.listened = true;
        }
    }

    /// Runs the program to its end with `args` and `stdin`, killing it after `limit`.
    pub fn run(
        &mut self,
        label: &str,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        limit: Duration,
    ) -> Result<Finished, Failure> {
        let id = self.spawn(label, args, stdin)?;
        self.finish(id, limit)
    }

    /// Runs `client --host 127.0.0.1 --port PORT extra...` with `stdin` to its end,
    /// killing it after `limit`.
    pub fn run_client(
        &mut self,
        port: &str,
        extra: &[&str],
        stdin: &[u8],
        limit: Duration,
    ) -> Result<Finished, Failure> {
        let mut args = vec!["client", "--host", "127.0.0.1", "--port", port];
        args.extend_from_slice(extra);
        self.run("client", &args, Some(stdin.to_vec()), limit)
    }

    /// Waits up to `limit` for a started program to exit.
    pub fn finish(&mut self, id: usize, limit: Duration) -> Result<Finished, Failure> {
        let running = &mut self.procs[id];
        match running.wait_exit(limit) {
            Some(status) => Ok(Finished {
                status,
                stdout: running.stdout(),
                stderr: running.stderr_text(),
            }),
            None => {
                running.kill();
                Err(Failure::new(format!(
                    "the {} did not finish within {:.1} s and was stopped",
                    running.label,
                    limit.as_secs_f64()
                ))
                .got(format!("stdout so far: {}", net::show(&running.stdout())))
                .hint("is it waiting for something that never comes (a reply, an EOF)? every blocking call needs a way out"))
            }
        }
    }

    /// Fails when a server the check needs is no longer running.
    pub fn ensure_running(&mut self, id: usize, after: &str) -> Result<(), Failure> {
        if self.procs[id].exited().is_some() {
            return Err(self.exited_failure(id, after));
        }
        Ok(())
    }

    /// "the server #1 exited (exit status 1) after ...": with a hint for the usual cause.
    pub fn exited_failure(&mut self, id: usize, when: &str) -> Failure {
        use std::os::unix::process::ExitStatusExt;
        let running = &mut self.procs[id];
        let exit = running.exited();
        let status = exit.map(describe_status).unwrap_or_default();
        let failure = Failure::new(format!("the {} exited ({status}) {when}", running.label));
        if exit.and_then(|s| s.signal()) == Some(libc::SIGPIPE) {
            // C programs (and any runtime that keeps the default action) die here: the
            // symptom names its cause, which no exit status would tell a student.
            return failure.hint(
                "SIGPIPE killed it: send() on a connection the peer has reset raises SIGPIPE, \
                 whose default action ends the process. Ignore that signal once at start-up \
                 or pass MSG_NOSIGNAL to each send(); send() then fails with EPIPE, which \
                 ends that client only",
            );
        }
        failure.hint(
            "a server must survive whatever one client does: handle each client's errors \
             (report them, close that connection) instead of returning them from main",
        )
    }

    /// The last `n` stderr lines of every program this check started (each cut to
    /// [`LINE_LIMIT`] characters). A program that printed more than the grader keeps gets
    /// a first line saying how much, e.g. `(printed 1.0 GB on stderr; last lines below)`.
    pub fn stderr_tails(&self, n: usize) -> Vec<(String, Vec<String>)> {
        self.procs
            .iter()
            .map(|p| {
                let (text, cut) = p.stderr_tail();
                let lines: Vec<String> = text.lines().map(shorten).collect();
                let mut tail = lines[lines.len().saturating_sub(n)..].to_vec();
                if let Some(total) = cut.filter(|_| !tail.is_empty()) {
                    tail.insert(
                        0,
                        format!(
                            "(printed {} on stderr; last lines below)",
                            describe_size(total)
                        ),
                    );
                }
                (p.label.clone(), tail)
            })
            .filter(|(_, tail)| !tail.is_empty())
            .collect()
    }
}

/// Whether the grader runs as root (and may start programs as other users).
/// (Not a grader that is root only in a user namespace of its own: it has no other
/// user to start programs as.)
pub fn running_as_root() -> bool {
    super::userns::real_root()
}

/// How many characters of one stderr line a report shows.
pub const LINE_LIMIT: usize = 300;

/// A line cut to [`LINE_LIMIT`] characters, saying so.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(LINE_LIMIT) {
        Some((at, _)) => format!("{}... (line cut)", &line[..at]),
        None => line.to_string(),
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Kill the programs first: they may hold files in the scratch folder. Then
        // whatever escaped their groups, found by the check's marker.
        self.procs.clear();
        // The check's PID namespace (strict) goes with its init.
        pidns::end();
        process::end_check(self.token);
        scratchfs::unmount(&self.scratch);
        let left = files::remove_tree(&self.scratch);
        if left.is_empty() {
            process::forget_folder(&self.scratch);
        } else {
            // Tried again when the grader ends; say what would not go.
            for path in left {
                eprintln!("socklab: could not remove {}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program that never listens, on a port someone else listens on (another check's
    /// server, as when two graders picked the same port): not taken for a listener.
    #[test]
    fn a_strangers_listener_on_the_port_is_not_the_programs() {
        let stranger = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = stranger.local_addr().unwrap().port();
        let mut ctx = Ctx::new(&["/bin/sh".to_string()], &Policy::basic()).unwrap();
        let id = ctx.spawn("server", &["-c", "exit 3"], None).unwrap();
        let details = ctx.wait_listening(id, port).unwrap_err().into_details();
        assert!(details.problem.contains("exited"), "{details:?}");
        assert!(
            details
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("another program"),
            "{details:?}"
        );
    }

    /// A Python program that counts its starts in `starts` and says "Address already in
    /// use" on the first `refusals` of them; later starts listen on their --port.
    fn refuses_then_listens(starts: &Path, refusals: u32) -> Vec<String> {
        let script = format!(
            r#"
import socket, sys, time
path = {starts:?}
try: n = int(open(path).read())
except OSError: n = 0
open(path, "w").write(str(n + 1))
if n < {refusals}:
    sys.exit("server: bind failed: [Errno 98] Address already in use")
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1]))); s.listen()
time.sleep(30)
"#
        );
        vec!["python3".into(), "-c".into(), script]
    }

    /// The grader's port taken between its pick and the program's bind (by another
    /// program on the machine): the start is made again on a fresh port, and the report
    /// knows only that one.
    #[test]
    fn a_start_that_lost_its_port_is_made_again() {
        // A token of its own: a context that ends kills what carries its token, and
        // the other tests of this binary run beside this one.
        process::set_check_token(u64::from(line!()) << 32);
        let starts = std::env::temp_dir().join(format!("socklab-starts-{}", std::process::id()));
        let program = refuses_then_listens(&starts, 1);
        let mut ctx = Ctx::new(&program, &Policy::basic()).unwrap();
        let server = ctx.start_server("server", std::net::Ipv4Addr::LOCALHOST.into(), &[]);
        let count = std::fs::read_to_string(&starts).unwrap();
        std::fs::remove_file(&starts).unwrap();
        let server = server.unwrap();
        assert_eq!(count, "2");
        assert_eq!(ctx.procs.len(), 1);
        assert_eq!(ctx.launches().count(), 1);
        assert_eq!(ctx.proc(server.id).label, "server #1");
    }

    /// A program that is itself the cause (it fails so every time) is started twice,
    /// not more, and fails.
    #[test]
    fn a_program_that_always_finds_its_port_taken_fails() {
        process::set_check_token(u64::from(line!()) << 32);
        let starts = std::env::temp_dir().join(format!("socklab-taken-{}", std::process::id()));
        let program = refuses_then_listens(&starts, u32::MAX);
        let mut ctx = Ctx::new(&program, &Policy::basic()).unwrap();
        let server = ctx.start_server("server", std::net::Ipv4Addr::LOCALHOST.into(), &[]);
        let count = std::fs::read_to_string(&starts).unwrap();
        std::fs::remove_file(&starts).unwrap();
        let details = server.map(|_| ()).unwrap_err().into_details();
        assert_eq!(count, "2");
        assert!(details.problem.contains("before listening"), "{details:?}");
    }
}
