//! Private networks for demos, checks and `cargo xtask lan`: hosts in namespaces.
//!
//! A [`Host`] is a user + network (+ UTS) namespace of its own, kept alive by a holder
//! process (`cat` reading a pipe only we write to: when the grader ends, however it
//! ends, the pipe closes, `cat` exits and the kernel tears the namespace down). Its `lo`
//! is up, so a program inside can serve on 127.0.0.1 without touching the machine's own
//! loopback. [`Lan`] is two hosts, `alpha` (198.51.100.1) and `beta` (198.51.100.2),
//! joined by a veth pair (`eth0` on each side): two laptops on one. The addresses come
//! from a documentation range (RFC 5737) that no real network routes, and they exist
//! only inside these namespaces: a test host is dialled only from inside a host made
//! here. When namespaces cannot be made, [`Unavailable`] says why in one line and how to
//! allow them, before any socket is opened.
//!
//! No root is needed: the holder makes a user namespace first (where it may then make
//! a network namespace), mapping our own uid to root inside. Other processes join with
//! `setns` in a freshly forked child (user namespace first, which a multithreaded
//! process could not do), so the grader can also get sockets that live inside a host
//! ([`Host::socket`]: made in a child, passed back over a Unix socket).

use std::fs::File;
use std::io::{self, Write};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};
use socket2::Socket;

use super::tcp_table;

/// Set (to anything) to behave as if this machine could not make namespaces: for the
/// tests of the fallback path and for anyone who wants the old single-loopback demos.
pub const DISABLE_ENV: &str = "SOCKLAB_NO_NAMESPACES";

/// alpha's address on the private LAN (TEST-NET-2, reserved for documentation).
pub const ALPHA_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// beta's address on the private LAN.
pub const BETA_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// Why namespaces cannot be made here, and how to allow them; one line.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unavailable: {}", self.0)
    }
}

/// One host: its own network stack (and hostname), alive while this value lives.
pub struct Host {
    pub name: String,
    /// Its address on the LAN, if it is on one.
    pub ip: Option<Ipv4Addr>,
    holder: Child,
    user: File,
    net: File,
    uts: File,
}

/// Two hosts on one cable.
pub struct Lan {
    pub alpha: Host,
    pub beta: Host,
}

impl Host {
    /// A host of its own with `lo` up (for demos on a private loopback).
    pub fn new(name: &str) -> Result<Host, Unavailable> {
        check_allowed()?;
        let host = Host::spawn(name, None)?;
        host.ip(&["link set lo up"])?;
        Ok(host)
    }

    /// Starts the holder: a new user namespace (or `parent`'s) with a new network and
    /// UTS namespace, hostname `name`.
    fn spawn(name: &str, parent: Option<&Host>) -> Result<Host, Unavailable> {
        let mut command = Command::new("cat");
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let hostname = name.to_string();
        let parent_user = parent.map(|p| p.user.as_raw_fd());
        // SAFETY: between fork and exec the child only makes system calls.
        unsafe {
            command.pre_exec(move || {
                match parent_user {
                    Some(fd) => {
                        if libc::setns(fd, libc::CLONE_NEWUSER) != 0 {
                            return Err(io::Error::last_os_error());
                        }
                        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS)?;
                    }
                    None => unshare(
                        CloneFlags::CLONE_NEWUSER
                            | CloneFlags::CLONE_NEWNET
                            | CloneFlags::CLONE_NEWUTS,
                    )?,
                }
                nix::unistd::sethostname(&hostname)?;
                Ok(())
            });
        }
        let mut holder = command.spawn().map_err(|e| explain_unshare(&e))?;
        let pid = holder.id();
        super::process::track_group(pid as i32);
        let open = |kind: &str| {
            File::open(format!("/proc/{pid}/ns/{kind}"))
                .map_err(|e| Unavailable(format!("cannot open {name}'s {kind} namespace: {e}")))
        };
        let opened = (|| {
            if parent.is_none() {
                map_root(pid)?;
            }
            Ok([open("user")?, open("net")?, open("uts")?])
        })();
        match opened {
            Ok([user, net, uts]) => Ok(Host {
                name: name.to_string(),
                ip: None,
                holder,
                user,
                net,
                uts,
            }),
            Err(why) => {
                let _ = holder.kill();
                let _ = holder.wait();
                super::process::untrack_group(pid as i32);
                Err(why)
            }
        }
    }

    /// The holder's pid: `/proc/PID/net/...` shows this host's sockets.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A command that runs inside this host (as root of its user namespace).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        let fds = self.fds();
        // SAFETY: between fork and exec the child only makes system calls.
        unsafe {
            command.pre_exec(move || join(fds));
        }
        command
    }

    /// `nsenter` arguments that run a command inside this host, for launchers that
    /// take a plain argv (the checks' `Ctx::spawn_other`).
    pub fn nsenter_argv(&self) -> Vec<String> {
        // --preserve-credentials: no setgroups(), which an unprivileged user may not
        // call in a namespace whose setgroups is denied; our uid is root there anyway.
        let pid = self.pid().to_string();
        [
            "nsenter",
            "-t",
            &pid,
            "-U",
            "-n",
            "-u",
            "--preserve-credentials",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Runs `ip -batch -` inside this host with these commands.
    fn ip(&self, commands: &[&str]) -> Result<(), Unavailable> {
        let mut child = self
            .command("ip")
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Unavailable(
                    "`ip` is missing: install iproute2 (apt-get install iproute2)".into(),
                ),
                _ => Unavailable(format!("cannot enter {}: {e}", self.name)),
            })?;
        let script = commands.join("\n") + "\n";
        let _ = child
            .stdin
            .take()
            .map(|mut s| s.write_all(script.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|e| Unavailable(format!("ip: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&output.stderr);
            Err(Unavailable(format!(
                "setting up {} failed: {}",
                self.name,
                text.lines().next().unwrap_or("ip failed")
            )))
        }
    }

    /// Makes this host's loopback look like Ethernet: 1500-byte packets, and no
    /// offloading (one segment per packet, as the wire would carry them), so a big
    /// send() shows as the several segments TCP cuts it into.
    #[cfg(feature = "tools")]
    pub fn ethernet_sized_loopback(&self) -> Result<(), Unavailable> {
        self.ip(&["link set dev lo mtu 1500 gso_max_segs 1"])
    }

    /// A socket made inside this host (it stays there: binds and connects happen in
    /// this host's network, whichever thread uses it).
    pub fn socket(&self, domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
        socket_inside(self.fds(), domain, kind, protocol)
    }

    /// A TCP listener inside this host.
    pub fn listen(&self, addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
        let socket = self.tcp_socket(addr)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        Ok(socket.into())
    }

    /// Connects from inside this host to `addr`, giving up after `limit`.
    pub fn connect(&self, addr: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
        let socket = self.tcp_socket(addr)?;
        socket.connect_timeout(&addr.into(), limit)?;
        Ok(socket.into())
    }

    fn tcp_socket(&self, addr: SocketAddr) -> io::Result<Socket> {
        let domain = match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        let fd = self.socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)?;
        Ok(Socket::from(fd))
    }

    /// This host's TCP tables (`/proc/PID/net/tcp` and `tcp6`).
    pub fn tcp_tables(&self) -> Vec<PathBuf> {
        let pid = self.pid();
        vec![
            PathBuf::from(format!("/proc/{pid}/net/tcp")),
            PathBuf::from(format!("/proc/{pid}/net/tcp6")),
        ]
    }

    /// Whether something listens on `port` inside this host.
    pub fn is_listening(&self, port: u16) -> bool {
        !tcp_table::listeners(&self.tcp_tables(), port).is_empty()
    }

    fn fds(&self) -> [RawFd; 3] {
        [
            self.user.as_raw_fd(),
            self.net.as_raw_fd(),
            self.uts.as_raw_fd(),
        ]
    }

    /// The inode of this host's network namespace (`/proc/PID/ns/net`).
    fn net_inode(&self) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        self.net.metadata().ok().map(|m| m.ino())
    }
}

impl Lan {
    /// alpha and beta, joined by a veth pair (`eth0` on each side).
    pub fn new() -> Result<Lan, Unavailable> {
        check_allowed()?;
        let mut alpha = Host::spawn("alpha", None)?;
        let mut beta = Host::spawn("beta", Some(&alpha))?;
        let peer = format!(
            "link add eth0 type veth peer name eth0 netns {}",
            beta.pid()
        );
        let alpha_addr = format!("addr add {ALPHA_IP}/24 dev eth0");
        let beta_addr = format!("addr add {BETA_IP}/24 dev eth0");
        alpha.ip(&["link set lo up", &peer, &alpha_addr, "link set eth0 up"])?;
        beta.ip(&["link set lo up", &beta_addr, "link set eth0 up"])?;
        alpha.ip = Some(ALPHA_IP);
        beta.ip = Some(BETA_IP);
        Ok(Lan { alpha, beta })
    }

    /// Polls (at most `limit`) until the cable carries packets: `eth0` is `state UP`
    /// on both sides (the kernel switches a veth on shortly after `ip` returns).
    pub fn wait_link(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let up = |host: &Host| {
            host.command("ip")
                .args(["-o", "link", "show", "dev", "eth0"])
                .stderr(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("state UP"))
                .unwrap_or(false)
        };
        loop {
            if up(&self.alpha) && up(&self.beta) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Anything still inside (a program, a student's shell) would keep the network
        // alive: it goes too.
        if let Some(inode) = self.net_inode() {
            kill_inside(inode, self.pid());
        }
        drop(self.holder.stdin.take()); // end of input: cat exits
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.holder.wait();
        super::process::untrack_group(self.pid() as i32);
    }
}

/// Kills every process (other than `holder`) whose network namespace is `inode`.
fn kill_inside(inode: u64, holder: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 == holder || pid as u32 == std::process::id() {
            continue;
        }
        let same = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .map(|m| m.ino() == inode)
            .unwrap_or(false);
        if same {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A command that runs inside the host whose holder is `pid` (a host another process
/// made: `cargo xtask lan shell`).
pub fn command_in(pid: u32, program: &str) -> io::Result<Command> {
    let open = |kind: &str| File::open(format!("/proc/{pid}/ns/{kind}"));
    let files = [open("user")?, open("net")?, open("uts")?];
    let fds = [
        files[0].as_raw_fd(),
        files[1].as_raw_fd(),
        files[2].as_raw_fd(),
    ];
    let mut command = Command::new(program);
    // SAFETY: between fork and exec the child only makes system calls. The closure
    // owns the files, so their descriptors stay open until the command is dropped.
    unsafe {
        command.pre_exec(move || {
            let _keep = &files;
            join(fds)
        });
    }
    Ok(command)
}

fn check_allowed() -> Result<(), Unavailable> {
    refuse_when(std::env::var_os(DISABLE_ENV).is_some())
}

fn refuse_when(disabled: bool) -> Result<(), Unavailable> {
    if disabled {
        return Err(Unavailable(format!(
            "{DISABLE_ENV} is set; unset it to use private networks"
        )));
    }
    Ok(())
}

/// Maps our uid and gid to root inside the holder's new user namespace. As root, every
/// uid is mapped to itself instead, so that a program inside can still be run as an
/// unprivileged user (the sandbox's uid for the check: `nsenter -S UID -G GID`).
fn map_root(pid: u32) -> Result<(), Unavailable> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/{pid}/{file}"), text)
            .map_err(|e| Unavailable(format!("cannot write /proc/{pid}/{file}: {e}")))
    };
    // Root on the machine maps every id; root only in the grader's own user namespace
    // (a non-root grader under strict, see userns.rs) has one id to map, as a user.
    if uid == 0 && !super::userns::inside() {
        write("uid_map", "0 0 4294967295".into())?;
        return write("gid_map", "0 0 4294967295".into());
    }
    // An unprivileged process may map its gid only once setgroups is denied.
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1"))?;
    write("gid_map", format!("0 {gid} 1"))
}

/// Turns a failed unshare into the reason and the way to allow it.
fn explain_unshare(err: &io::Error) -> Unavailable {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if err.kind() == io::ErrorKind::NotFound {
        return Unavailable("`cat` is missing (coreutils)".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Unavailable(
            "this kernel forbids unprivileged user namespaces; allow them with \
             `sudo sysctl -w kernel.unprivileged_userns_clone=1`"
                .into(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Unavailable(
            "AppArmor forbids unprivileged user namespaces; allow them with \
             `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
                .into(),
        );
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Unavailable(
            "user namespaces are switched off (user.max_user_namespaces = 0); allow them \
             with `sudo sysctl -w user.max_user_namespaces=10000`"
                .into(),
        );
    }
    Unavailable(format!(
        "cannot make a user + network namespace ({err}); in a container, allow the \
         unshare and setns system calls (e.g. docker run --privileged)"
    ))
}

/// In a forked child: joins the user, network and UTS namespaces of `fds`.
fn join(fds: [RawFd; 3]) -> io::Result<()> {
    let kinds = [libc::CLONE_NEWUSER, libc::CLONE_NEWNET, libc::CLONE_NEWUTS];
    for (fd, kind) in fds.into_iter().zip(kinds) {
        // SAFETY: setns on a descriptor we own; only a system call.
        if unsafe { libc::setns(fd, kind) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Makes a socket inside the namespaces of `fds`: a forked child joins them, calls
/// socket() and passes the descriptor back over a Unix socket pair (SCM_RIGHTS).
fn socket_inside(fds: [RawFd; 3], domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
    let mut pair = [0 as RawFd; 2];
    // SAFETY: plain system calls on descriptors this function owns.
    unsafe {
        if libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let ours = OwnedFd::from_raw_fd(pair[0]);
        let theirs = OwnedFd::from_raw_fd(pair[1]);
        let child = libc::fork();
        if child < 0 {
            return Err(io::Error::last_os_error());
        }
        if child == 0 {
            // The child of a multithreaded process: system calls only, then _exit.
            let code = child_make_socket(fds, theirs.as_raw_fd(), domain, kind, protocol);
            libc::_exit(code);
        }
        drop(theirs);
        let received = receive_fd(ours.as_raw_fd());
        let mut status = 0;
        libc::waitpid(child, &mut status, 0);
        received
    }
}

/// The child's side of [`socket_inside`]. Returns its exit code.
///
/// # Safety
/// Only system calls and stack memory: safe after fork in a multithreaded process.
unsafe fn child_make_socket(
    fds: [RawFd; 3],
    channel: RawFd,
    domain: i32,
    kind: i32,
    protocol: i32,
) -> i32 {
    let kinds = [libc::CLONE_NEWUSER, libc::CLONE_NEWNET, libc::CLONE_NEWUTS];
    let mut errno: i32 = 0;
    for (fd, ns) in fds.into_iter().zip(kinds) {
        if unsafe { libc::setns(fd, ns) } != 0 {
            errno = unsafe { *libc::__errno_location() };
            break;
        }
    }
    let socket = if errno == 0 {
        let s = unsafe { libc::socket(domain, kind, protocol) };
        if s < 0 {
            errno = unsafe { *libc::__errno_location() };
        }
        s
    } else {
        -1
    };
    unsafe { send_fd(channel, socket, errno) };
    0
}

/// Sends `errno` as data, with `fd` attached when it is a descriptor.
///
/// # Safety
/// Stack memory and system calls only.
unsafe fn send_fd(channel: RawFd, fd: RawFd, errno: i32) {
    let mut data = errno;
    let mut iov = libc::iovec {
        iov_base: (&raw mut data).cast(),
        iov_len: size_of::<i32>(),
    };
    // Room for one cmsg holding one descriptor, aligned for cmsghdr.
    let mut space = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if fd >= 0 {
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as _;
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        unsafe {
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
    }
    unsafe { libc::sendmsg(channel, &msg, 0) };
}

/// Receives what [`send_fd`] sent: the descriptor, or the child's errno.
fn receive_fd(channel: RawFd) -> io::Result<OwnedFd> {
    let mut errno: i32 = 0;
    let mut iov = libc::iovec {
        iov_base: (&raw mut errno).cast(),
        iov_len: size_of::<i32>(),
    };
    let mut space = [0u64; 8];
    // SAFETY: msghdr points at live stack buffers of the sizes given.
    unsafe {
        let mut msg: libc::msghdr = zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>() as _;
        let n = libc::recvmsg(channel, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::Error::other("the namespace helper died"));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    Err(io::Error::from_raw_os_error(if errno == 0 {
        libc::EIO
    } else {
        errno
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// `ip:port` on the LAN.
    fn lan_addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(ip), port)
    }
    use std::io::{Read, Write};

    /// Namespaces are available when running as root (CI); elsewhere they may not be.
    fn lan_or_skip() -> Option<Lan> {
        match Lan::new() {
            Ok(lan) => Some(lan),
            Err(why) if !nix::unistd::geteuid().is_root() => {
                eprintln!("skipped: {why}");
                None
            }
            Err(why) => panic!("as root, namespaces must work: {why}"),
        }
    }

    #[test]
    fn a_host_has_its_own_loopback() {
        let Some(lan) = lan_or_skip() else { return };
        let listener = lan
            .alpha
            .listen(SocketAddr::from(([127, 0, 0, 1], 5000)), 5)
            .unwrap();
        assert!(lan.alpha.is_listening(5000));
        assert!(!lan.beta.is_listening(5000));
        let mut client = lan
            .alpha
            .connect(
                SocketAddr::from(([127, 0, 0, 1], 5000)),
                Duration::from_secs(5),
            )
            .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        // beta's loopback is another machine's: nothing listens there.
        let refused = lan.beta.connect(
            SocketAddr::from(([127, 0, 0, 1], 5000)),
            Duration::from_secs(5),
        );
        assert_eq!(
            refused.unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
    }

    #[test]
    fn beta_reaches_alpha_over_the_cable_and_teardown_removes_everything() {
        let Some(lan) = lan_or_skip() else { return };
        assert!(lan.wait_link(Duration::from_secs(5)));
        let listener = lan.alpha.listen(lan_addr(ALPHA_IP, 7000), 5).unwrap();
        let mut client = lan
            .beta
            .connect(lan_addr(ALPHA_IP, 7000), Duration::from_secs(5))
            .unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(BETA_IP));
        client.write_all(b"x").unwrap();
        let holders = [lan.alpha.pid(), lan.beta.pid()];
        let mut inside = lan
            .alpha
            .command("cat")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        drop(lan);
        for pid in holders {
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
        // A process left inside was ended with the host.
        assert!(inside.wait().is_ok());
        // The machine's own network never saw the LAN's addresses.
        let own = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
        assert!(!own.contains("198.51.100."));
    }

    #[test]
    fn disabled_namespaces_say_so_in_one_line() {
        // (The variable itself is tested end to end by the demo tests, in a process
        // of their own: setting it here would race with the other tests.)
        let text = refuse_when(true).unwrap_err().to_string();
        assert!(text.starts_with("unavailable: "), "{text}");
        assert!(!text.contains('\n'));
    }
}
