//! TCP sockets asked of the kernel over `NETLINK_SOCK_DIAG` (what `ss` uses), for the
//! network namespace of the calling thread: which sockets listen, with their accept
//! queues and backlogs ([`listeners`]), and the state, timer and queues of one
//! connection ([`connection`]).
//!
//! Why not `/proc/net/tcp`: every read of it walks every bucket of the kernel's
//! established-connection hash table, whose size follows the machine's memory (a 24 GB
//! machine has hundreds of thousands of buckets), even in a namespace that holds three
//! sockets. That is about a millisecond of kernel time per read; a check polling for a
//! server that never listens kept half a core busy for its whole start-up limit, and a
//! class or the mutant run has dozens of such checks at once. A sock_diag dump asked
//! for the LISTEN state only walks the (small) listening hash, and a request for one
//! connection, named by both its addresses, is a single hash lookup.
//!
//! The request and reply layouts are those of `linux/inet_diag.h` and
//! `linux/netlink.h`; `libc` has the netlink constants but not the diag structures.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `SOCK_DIAG_BY_FAMILY` from `linux/sock_diag.h`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` is state 10; the request takes a bit mask of states.
const LISTEN_MASK: u32 = 1 << 10;
/// `struct nlmsghdr`: length, type, flags, sequence, port id.
const HEADER: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte sockid.
const REQUEST: usize = 56;
/// How long the kernel may take to answer one dump (it answers at once in practice).
const ANSWER_LIMIT: Duration = Duration::from_secs(1);

/// A TCP socket in LISTEN state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Where it listens.
    pub local: SocketAddr,
    /// Its inode: `/proc/PID/fd/N -> socket:[INODE]` names the processes holding it.
    pub inode: u64,
    /// Connections the kernel has completed that the program has not accept()ed yet
    /// (`ss -ltn`'s Recv-Q).
    pub accept_queue: u64,
    /// The backlog its listen() asked for, as the kernel holds it (`ss -ltn`'s Send-Q).
    /// `None` when read from `/proc/net/tcp`, which does not show it.
    pub backlog: Option<u64>,
}

/// One TCP connection's socket as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// `TCP_ESTABLISHED` (1) ... `TCP_CLOSE_WAIT` (8) ..., as in `include/net/tcp_states.h`.
    pub state: u8,
    /// The timer armed on it: 0 none, 1 retransmission, 2 the socket's own timer (on an
    /// established connection, keepalive), 3 TIME-WAIT, 4 zero-window probe (the `tr`
    /// column of `/proc/net/tcp`, `ss -o`'s `timer:`).
    pub timer: u8,
    /// When that timer fires, from now.
    pub due: Duration,
    /// Bytes sent but not yet acknowledged (`tx_queue`).
    pub send_queue: u64,
    /// Bytes received but not yet read by its program (`rx_queue`).
    pub receive_queue: u64,
}

/// `TCP_ESTABLISHED` in [`Connection::state`].
pub const ESTABLISHED: u8 = 1;
/// `TCP_CLOSE_WAIT`: a FIN came in, this side is still open.
pub const CLOSE_WAIT: u8 = 8;

/// Every TCP socket in LISTEN state, IPv4 and IPv6, in the calling thread's network
/// namespace. An error means sock_diag could not be used here (a kernel without it);
/// callers then read `/proc/net/tcp` instead.
pub fn listeners() -> io::Result<Vec<Listener>> {
    let socket = open()?;
    let mut found = dump(&socket, libc::AF_INET as u8)?;
    found.extend(dump(&socket, libc::AF_INET6 as u8)?);
    Ok(found)
}

/// The sockets listening on `port` (IPv4 and IPv6): from [`listeners`], or, where
/// sock_diag cannot be used, from the calling thread's `/proc/net/tcp` tables (a
/// listener's `rx_queue` there is its accept queue; its backlog is not shown).
pub fn listening_on_or_tables(port: u16) -> Vec<Listener> {
    match listeners() {
        Ok(found) => found
            .into_iter()
            .filter(|l| l.local.port() == port)
            .collect(),
        Err(_) => {
            let tables = ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"];
            let rows = super::tcp_table::listeners(&tables, port);
            rows.iter()
                .map(|row| Listener {
                    local: row.local,
                    inode: row.inode,
                    accept_queue: row.receive_queue,
                    backlog: None,
                })
                .collect()
        }
    }
}

/// The TCP socket whose own address is `local` and whose peer is `remote`.
/// `Ok(None)`: no such socket (closed, or never there). An error means sock_diag could
/// not be used here; callers then read `/proc/net/tcp` instead.
pub fn connection(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Connection>> {
    let socket = open()?;
    let mut request = [0u8; HEADER + REQUEST];
    request[0..4].copy_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    request[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    // No NLM_F_DUMP: the kernel looks the one socket up by its addresses.
    request[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    let body = &mut request[HEADER..];
    body[0] = if local.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    };
    body[1] = libc::IPPROTO_TCP as u8;
    body[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    // struct inet_diag_sockid: sport, dport (big-endian), src[16], dst[16], if, cookie.
    body[8..10].copy_from_slice(&local.port().to_be_bytes());
    body[10..12].copy_from_slice(&remote.port().to_be_bytes());
    put_ip(&mut body[12..28], local.ip());
    put_ip(&mut body[28..44], remote.ip());
    // INET_DIAG_NOCOOKIE: match by addresses, not by a cookie we do not have.
    body[48..56].copy_from_slice(&[0xff; 8]);
    send(&socket, &request)?;
    let mut buffer = vec![0u8; 4 * 1024];
    let n = receive(&socket, &mut buffer)?;
    let reply = &buffer[..n];
    if reply.len() < HEADER {
        return Err(malformed());
    }
    match u16::from_ne_bytes([reply[4], reply[5]]) as i32 {
        libc::NLMSG_ERROR => match error_code(reply) {
            libc::ENOENT => Ok(None),
            code => Err(io::Error::from_raw_os_error(code)),
        },
        _ => {
            let message = &reply[HEADER..];
            // struct inet_diag_msg: family, state, timer, retrans, the sockid (48 bytes),
            // then expires (milliseconds) at 52, rqueue at 56, wqueue at 60.
            let (Some(&state), Some(&timer)) = (message.get(1), message.get(2)) else {
                return Err(malformed());
            };
            // The kernel's lookup falls back to the listener on `local`'s port when the
            // connection itself is gone: that answer (its peer port 0) is "no such".
            let peer_port = message.get(6..8).map(|p| u16::from_be_bytes([p[0], p[1]]));
            if peer_port != Some(remote.port()) {
                return Ok(None);
            }
            let word = |at| word_at(message, at).ok_or_else(malformed);
            Ok(Some(Connection {
                state,
                timer,
                due: Duration::from_millis(word(52)?),
                send_queue: word(60)?,
                receive_queue: word(56)?,
            }))
        }
    }
}

/// The `u32` at `at` in a reply, widened.
fn word_at(message: &[u8], at: usize) -> Option<u64> {
    let bytes = message.get(at..at + 4)?;
    Some(u64::from(u32::from_ne_bytes(bytes.try_into().ok()?)))
}

/// [`connection`], or, where sock_diag cannot be used, the same facts from the calling
/// thread's `/proc/net/tcp` tables (matched by ports). `None`: no such connection.
pub fn connection_or_tables(local: SocketAddr, remote: SocketAddr) -> Option<Connection> {
    match connection(local, remote) {
        Ok(found) => found,
        Err(_) => {
            let tables = ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"];
            let row = super::tcp_table::connection(&tables, local.port(), remote.port())?;
            Some(Connection {
                state: row.state,
                timer: row.timer,
                due: row.due,
                send_queue: row.send_queue,
                receive_queue: row.receive_queue,
            })
        }
    }
}

/// An address as a sockid holds it: IPv4 in the first 4 bytes, IPv6 in all 16.
fn put_ip(field: &mut [u8], ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => field[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => field.copy_from_slice(&v6.octets()),
    }
}

/// The (positive) errno of an `NLMSG_ERROR` reply.
fn error_code(reply: &[u8]) -> i32 {
    -reply
        .get(HEADER..HEADER + 4)
        .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
        .unwrap_or(-libc::EINVAL)
}

fn malformed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "sock_diag: malformed reply")
}

/// Sends one whole request.
fn send(socket: &OwnedFd, request: &[u8]) -> io::Result<()> {
    // SAFETY: the buffer outlives the call.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one datagram of replies into `buffer`; how many bytes came.
fn receive(socket: &OwnedFd, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recv writes at most buffer.len() bytes into the buffer.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG), with a receive deadline.
fn open() -> io::Result<OwnedFd> {
    // SAFETY: plain system calls on a descriptor this function owns.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let limit = libc::timeval {
            tv_sec: ANSWER_LIMIT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&limit as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        if set != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }
}

/// One dump request for `family`'s listening TCP sockets, and the sockets it returns.
fn dump(socket: &OwnedFd, family: u8) -> io::Result<Vec<Listener>> {
    let mut request = [0u8; HEADER + REQUEST];
    request[0..4].copy_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    request[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    request[6..8].copy_from_slice(&flags.to_ne_bytes());
    request[HEADER] = family;
    request[HEADER + 1] = libc::IPPROTO_TCP as u8;
    request[HEADER + 4..HEADER + 8].copy_from_slice(&LISTEN_MASK.to_ne_bytes());
    send(socket, &request)?;
    let mut found = Vec::new();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        let n = receive(socket, &mut buffer)?;
        if n == 0 {
            return Ok(found);
        }
        if parse(&buffer[..n], &mut found)? {
            return Ok(found);
        }
    }
}

/// Reads one datagram of replies into `found`; true at the end of the dump.
fn parse(mut bytes: &[u8], found: &mut Vec<Listener>) -> io::Result<bool> {
    let u16_at = |b: &[u8], at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
    while bytes.len() >= HEADER {
        let length = u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize;
        if length < HEADER || length > bytes.len() {
            return Err(malformed());
        }
        match u16_at(bytes, 4) as i32 {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => return Err(io::Error::from_raw_os_error(error_code(bytes))),
            _ => {
                if let Some(listener) = listener(&bytes[HEADER..length]) {
                    found.push(listener);
                }
            }
        }
        // Messages are padded to 4 bytes.
        let next = (length + 3) & !3;
        bytes = &bytes[next.min(bytes.len())..];
    }
    Ok(false)
}

/// The listener one `struct inet_diag_msg` describes: family at 0, the sockid from 4
/// (source port big-endian at 4, source address at 8).
fn listener(message: &[u8]) -> Option<Listener> {
    let port = u16::from_be_bytes([*message.get(4)?, *message.get(5)?]);
    let ip = match message[0] as i32 {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(message.get(8..12)?).ok()?,
        )),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(message.get(8..24)?).ok()?,
        )),
        _ => return None,
    };
    // For a listener, rqueue (56) is its accept queue and wqueue (60) its backlog;
    // then uid at 64, inode at 68 (all u32).
    Some(Listener {
        local: SocketAddr::new(ip, port),
        inode: word_at(message, 68)?,
        accept_queue: word_at(message, 56)?,
        backlog: Some(word_at(message, 60)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v4_and_v6_listeners_and_not_mere_bound_sockets() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        // Bound but not listening: must not count.
        let bound =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        bound
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let bound_port = bound.local_addr().unwrap().as_socket().unwrap().port();
        let found = listeners().unwrap();
        let own = super::super::tcp_table::socket_inodes(std::process::id());
        for listener in [&v4, &v6] {
            let addr = listener.local_addr().unwrap();
            let row = found.iter().find(|l| l.local == addr);
            assert!(row.is_some_and(|l| own.contains(&l.inode)), "{found:?}");
        }
        assert_eq!(listening_on_or_tables(bound_port), Vec::new());
    }

    #[test]
    fn reads_one_connections_queues_and_misses_closed_ones() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (ours, theirs) = (client.local_addr().unwrap(), server.local_addr().unwrap());
        client.write_all(b"twelve bytes").unwrap();
        // Unread by the server: its receive queue holds them once they arrive.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while connection(theirs, ours).unwrap().map(|c| c.receive_queue) != Some(12) {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                connection(theirs, ours)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let unknown: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(connection(unknown, ours).unwrap(), None);
        drop(server);
    }

    #[test]
    fn a_connection_reset_in_the_accept_queue_is_gone_not_its_listener() {
        // Asked for a connection that is gone, the kernel's lookup answers with the
        // listener on the same port; that must read as "no such connection".
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, theirs) = (client.local_addr().unwrap(), listener.local_addr().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while connection(theirs, ours).unwrap().map(|c| c.state) != Some(ESTABLISHED) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        while connection(theirs, ours).unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                connection(theirs, ours)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn reads_a_listeners_backlog_and_accept_queue() {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).unwrap();
        socket.listen(7).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        let find = || listeners().unwrap().into_iter().find(|l| l.local == addr);
        assert_eq!(
            find().map(|l| (l.accept_queue, l.backlog)),
            Some((0, Some(7)))
        );
        // Completed by the kernel, never accepted: it waits in the accept queue.
        let _waiting = std::net::TcpStream::connect(addr).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while find().map(|l| l.accept_queue) != Some(1) {
            assert!(std::time::Instant::now() < deadline, "{:?}", find());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn reads_a_connections_state_and_keepalive_timer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
        socket2::SockRef::from(&server)
            .set_tcp_keepalive(&keepalive)
            .unwrap();
        let (ours, theirs) = (client.local_addr().unwrap(), server.local_addr().unwrap());
        let seen = connection(theirs, ours).unwrap().unwrap();
        assert_eq!((seen.state, seen.timer), (ESTABLISHED, 2), "{seen:?}");
        assert!(seen.due <= Duration::from_secs(30) && seen.due > Duration::from_secs(20));
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while connection(theirs, ours).unwrap().map(|c| c.state) != Some(CLOSE_WAIT) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
