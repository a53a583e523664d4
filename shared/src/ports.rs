//! Ports for programs under test: a port that is free now, below the kernel's ephemeral
//! range, and never handed out twice by one process.
//!
//! The grader, its demos and the benchmark start servers on ports they pick before the
//! server binds them; this is the one place that picks. It is not a lab's socket step
//! (no lab calls it): it lives here because it is the crate every socklab tool shares.

use std::net::{IpAddr, TcpListener};
use std::time::{Duration, Instant};

/// A port the kernel says is free right now on `ip`, for TCP and UDP alike, and not
/// handed to another check of this grader, or of another grader on this machine, in the
/// last two minutes.
///
/// Checks run side by side: a port one check was given and has not bound yet is free
/// again in the kernel's eyes, and bind(0) may hand it out twice. Two UDP servers that
/// both set SO_REUSEADDR then share the port and receive each other's datagrams, so the
/// grader remembers what it gave out, and checks UDP too. Other graders (a class graded
/// while the tests run, parallel test binaries) cannot see that memory, so each port
/// given out is also claimed machine-wide by [`Claim`] for as long as it is remembered.
pub fn free_port(ip: IpAddr) -> u16 {
    use std::collections::HashMap;
    use std::sync::Mutex;
    /// Each port given out: when, and its claim (if one could be made).
    type Given = HashMap<u16, (Instant, Option<Claim>)>;
    static GIVEN: Mutex<Option<Given>> = Mutex::new(None);
    const REMEMBER: Duration = Duration::from_secs(120);
    let range = server_ports();
    for _ in 0..256 {
        let port = match &range {
            Some(range) => {
                range.start + (next_offset() % u32::from(range.end - range.start)) as u16
            }
            None => match TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()) {
                Ok(addr) => addr.port(),
                Err(_) => return 0,
            },
        };
        if !unused(ip, port) {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        let given = given.get_or_insert_with(HashMap::new);
        given.retain(|_, (at, _)| at.elapsed() < REMEMBER);
        if given.contains_key(&port) {
            continue;
        }
        let claim = match Claim::take(port) {
            Ok(claim) => Some(claim),
            // Another grader gave this port out: try the next.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            // Out of descriptors, say: this grader's own memory still holds.
            Err(_) => None,
        };
        given.insert(port, (Instant::now(), claim));
        return port;
    }
    // Nothing free below the ephemeral range after 256 tries: one the kernel picks is
    // still better than none (0: the caller's server would be told to bind any port).
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map_or(0, |addr| addr.port())
}

/// Whether no socket on this machine uses `port` on `ip`, for TCP or UDP: a TCP socket
/// bound there without SO_REUSEADDR succeeds only if no connection lingers on the port
/// either (TIME_WAIT), so a program that does not set SO_REUSEADDR can bind it too.
/// (std's `TcpListener::bind` sets SO_REUSEADDR, which would let such ports through.)
fn unused(ip: IpAddr, port: u16) -> bool {
    use socket2::{Domain, Socket, Type};
    let addr = std::net::SocketAddr::new(ip, port);
    let tcp = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .and_then(|socket| socket.bind(&addr.into()));
    tcp.is_ok() && std::net::UdpSocket::bind(addr).is_ok()
}

/// A machine-wide claim on a port between graders: an abstract Unix socket named
/// `socklab-port-PORT`. Only one socket can hold a name, the kernel frees it when the
/// socket closes (the grader exits or forgets the port), and it leaves no file behind.
/// Abstract names belong to a network namespace, as ports do.
struct Claim(#[allow(dead_code)] std::os::unix::net::UnixDatagram);

impl Claim {
    fn take(port: u16) -> std::io::Result<Claim> {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("socklab-port-{port}");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        std::os::unix::net::UnixDatagram::bind_addr(&addr).map(Claim)
    }
}

/// Where servers' ports come from: below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), from which every connect() of the grader's takes its
/// local port. A port bind(0) handed out lies in that range: between the grader giving
/// it to a program and the program binding it, one of the many connections of another
/// check could take it, and the program would fail with EADDRINUSE. `None` where the
/// range starts too low to leave room (then bind(0) picks, as before).
fn server_ports() -> Option<std::ops::Range<u16>> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u16 = range.split_whitespace().next()?.parse().ok()?;
    (low >= 12_000).then_some(10_000..low)
}

/// The next place to try in the range: scattered, and independent between graders.
fn next_offset() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    offset(std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The `n`th offset of process `pid`: a hash of both (splitmix64's finaliser), so that
/// consecutive offsets land far apart and two graders' sequences are unrelated. (A
/// fixed stride from a per-process start made every grader walk the same sequence,
/// shifted: one whose start fell among the ports another had just claimed met a claim
/// at every step, gave up after 256 and handed out port 0, failing a check in CI.)
fn offset(pid: u32, n: u32) -> u32 {
    let mut z = ((u64::from(pid) << 32) | u64::from(n)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_port(LOCALHOST_V4)).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(!distinct.contains(&0));
    }

    /// A grader that starts while another has just claimed thousands of ports (a mutant
    /// run) still finds one within a few tries, wherever the two sequences start.
    #[test]
    fn two_graders_sequences_do_not_follow_each_other() {
        const RANGE: u32 = 22_768;
        for i in 0..50 {
            let (busy, newcomer) = (1000 + 7919 * i, 3 + 104_729 * i);
            let claimed: std::collections::HashSet<u32> =
                (0..8000).map(|n| offset(busy, n) % RANGE).collect();
            let misses = (0..256)
                .take_while(|&n| claimed.contains(&(offset(newcomer, n) % RANGE)))
                .count();
            assert!(
                misses < 32,
                "{newcomer} after {busy}: {misses} misses in a row"
            );
        }
    }

    /// A port whose last connection lingers in TIME_WAIT is not handed out: a program
    /// that does not set SO_REUSEADDR could not bind it (std's bind, which sets it, can).
    #[test]
    fn a_port_with_a_lingering_connection_is_not_unused() {
        use std::io::Read;
        let listener = TcpListener::bind((LOCALHOST_V4, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = std::net::TcpStream::connect((LOCALHOST_V4, port)).unwrap();
        let (served, _) = listener.accept().unwrap();
        // The server closes first, so its end waits in TIME_WAIT once the client closes.
        drop(served);
        drop(listener);
        assert_eq!(client.read(&mut [0; 1]).unwrap(), 0);
        drop(client);
        assert!(TcpListener::bind((LOCALHOST_V4, port)).is_ok());
        assert!(!unused(LOCALHOST_V4, port));
    }

    #[test]
    fn a_port_handed_out_is_claimed_for_other_graders_too() {
        // What another grader would try, and be refused (so it picks another port).
        let port = free_port(LOCALHOST_V4);
        let claimed_twice = Claim::take(port);
        assert!(claimed_twice.is_err(), "port {port} could be claimed twice");
    }
}
