//! The wire beside the syscalls: packets captured inside a private host, as `[wire]`
//! lines for the demos.
//!
//! [`Capture`] opens an `AF_PACKET` socket inside a [`Host`](super::netns::Host) (so it
//! sees that host's traffic only, and needs no privilege outside it), asks the kernel
//! to timestamp every packet (`SO_TIMESTAMPNS`, the same realtime clock the programs'
//! narration is stamped with) and hands each one, parsed with `etherparse` and
//! rendered by [`Tracker`], to a callback. TCP sequence numbers are shown relative to
//! each side's first (SYN) number, as Wireshark does, so a handshake reads
//! `seq=0`, `seq=0 ack=1`, `seq=1 ack=1`.

use std::collections::HashMap;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::netns::Host;

/// The widest `[wire]` line, so a projector shows it whole.
pub const WIDTH: usize = 100;

/// A running capture; stops (and joins its thread) when dropped.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    horizon: Arc<AtomicU64>,
}

impl Capture {
    /// Captures every IP packet of `host`, calling `sink(microseconds since the Unix
    /// epoch, line)` for each, in the order the kernel saw them.
    pub fn start(host: &Host, sink: impl Fn(u64, String) + Send + 'static) -> io::Result<Capture> {
        let protocol = (libc::ETH_P_ALL as u16).to_be() as i32;
        // SOCK_DGRAM: the kernel strips the link header, so loopback and veth alike
        // hand us an IP packet.
        let socket = host.socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            protocol,
        )?;
        set_int(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        // Wake up now and then to notice `stop`.
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: setsockopt with a timeval of the right size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let horizon = Arc::new(AtomicU64::new(now_micros()));
        let reached = horizon.clone();
        let thread = std::thread::spawn(move || {
            let mut tracker = Tracker::default();
            let mut buffer = vec![0u8; 65536];
            while !stopping.load(Ordering::SeqCst) {
                let asked = now_micros();
                let Some((len, micros, outgoing)) = receive(&socket, &mut buffer) else {
                    // Nothing was waiting: every packet stamped before `asked` is in.
                    reached.fetch_max(asked, Ordering::SeqCst);
                    continue;
                };
                reached.fetch_max(micros, Ordering::SeqCst);
                // On loopback each packet passes twice (out, then in): show it once.
                if outgoing && is_loopback(&buffer[..len]) {
                    continue;
                }
                if let Some(line) = tracker.render(&buffer[..len]) {
                    sink(micros, line);
                }
            }
        });
        Ok(Capture {
            stop,
            thread: Some(thread),
            horizon,
        })
    }

    /// The moment (µs since the epoch) up to which every packet has been handed to
    /// the sink: a line stamped later may still have packets before it.
    pub fn horizon(&self) -> Arc<AtomicU64> {
        self.horizon.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn set_int(socket: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: setsockopt with an int of the right size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<i32>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One packet: its length, kernel timestamp (µs since the epoch) and whether this host
/// sent it. None on timeout or error.
fn receive(socket: &OwnedFd, buffer: &mut [u8]) -> Option<(usize, u64, bool)> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: msghdr points at live buffers of the sizes given; sockaddr_ll is plain data.
    unsafe {
        let mut from: libc::sockaddr_ll = zeroed();
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        let n = libc::recvmsg(socket.as_raw_fd(), &mut msg, 0);
        if n <= 0 {
            return None;
        }
        let mut micros = now_micros();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let stamp: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                micros = stamp.tv_sec as u64 * 1_000_000 + stamp.tv_nsec as u64 / 1000;
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        let outgoing = from.sll_pkttype == libc::PACKET_OUTGOING;
        Some((n as usize, micros, outgoing))
    }
}

/// Microseconds since the Unix epoch, the clock narrated lines are stamped with.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn is_loopback(packet: &[u8]) -> bool {
    match SlicedPacket::from_ip(packet) {
        Ok(SlicedPacket {
            net: Some(NetSlice::Ipv4(ip)),
            ..
        }) => ip.header().destination_addr().is_loopback(),
        Ok(SlicedPacket {
            net: Some(NetSlice::Ipv6(ip)),
            ..
        }) => ip.header().destination_addr().is_loopback(),
        _ => false,
    }
}

/// Renders packets as lines, remembering each TCP direction's first sequence number.
#[derive(Default)]
pub struct Tracker {
    /// (from, to) -> the sequence number of from's SYN.
    first_seq: HashMap<(SocketAddr, SocketAddr), u32>,
}

impl Tracker {
    /// `[wire] 127.0.0.1:54012 -> 127.0.0.1:5000  SYN  seq=0`, or None for packets
    /// that are not IP.
    pub fn render(&mut self, packet: &[u8]) -> Option<String> {
        let sliced = SlicedPacket::from_ip(packet).ok()?;
        let (source, destination) = match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                IpAddr::V6(ip.header().source_addr()),
                IpAddr::V6(ip.header().destination_addr()),
            ),
            _ => return None,
        };
        let line = match &sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let from = SocketAddr::new(source, tcp.source_port());
                let to = SocketAddr::new(destination, tcp.destination_port());
                let mut flags = Vec::new();
                for (set, name) in [
                    (tcp.syn(), "SYN"),
                    (tcp.fin(), "FIN"),
                    (tcp.rst(), "RST"),
                    (tcp.psh(), "PSH"),
                    (tcp.ack(), "ACK"),
                ] {
                    if set {
                        flags.push(name);
                    }
                }
                if tcp.syn() {
                    self.first_seq.insert((from, to), tcp.sequence_number());
                }
                let relative = |first: Option<&u32>, n: u32| match first {
                    Some(first) => n.wrapping_sub(*first),
                    None => n,
                };
                let mut numbers = format!(
                    "seq={}",
                    relative(self.first_seq.get(&(from, to)), tcp.sequence_number())
                );
                if tcp.ack() {
                    let ack =
                        relative(self.first_seq.get(&(to, from)), tcp.acknowledgment_number());
                    numbers.push_str(&format!(" ack={ack}"));
                }
                let payload = tcp.payload();
                if !payload.is_empty() {
                    numbers.push_str(&format!(" len={}", payload.len()));
                }
                let head = format!("[wire] {from} -> {to}  {:<7}  {numbers}", flags.join("-"));
                with_payload(head, payload)
            }
            Some(TransportSlice::Udp(udp)) => {
                let from = SocketAddr::new(source, udp.source_port());
                let to = SocketAddr::new(destination, udp.destination_port());
                let payload = udp.payload();
                let head = format!("[wire] {from} -> {to}  UDP      len={}", payload.len());
                with_payload(head, payload)
            }
            Some(TransportSlice::Icmpv4(icmp)) => {
                let what = match (icmp.type_u8(), icmp.code_u8()) {
                    (3, 3) => match quoted_destination(icmp.payload()) {
                        Some(to) => format!("port unreachable (for {to})"),
                        None => "port unreachable".to_string(),
                    },
                    (3, code) => format!("destination unreachable (code {code})"),
                    (8, _) => "echo request (ping)".to_string(),
                    (0, _) => "echo reply".to_string(),
                    (kind, code) => format!("type {kind} code {code}"),
                };
                format!("[wire] {source} -> {destination}  ICMP     {what}")
            }
            _ => return None,
        };
        Some(line)
    }
}

/// Where the packet an ICMP error quotes was going: `127.0.0.1:5001 UDP`. The error
/// carries the offending packet's IP header and first 8 bytes (its ports).
fn quoted_destination(quoted: &[u8]) -> Option<String> {
    let header_len = usize::from(quoted.first()? & 0x0f) * 4;
    let protocol = match quoted.get(9)? {
        6 => "TCP",
        17 => "UDP",
        _ => return None,
    };
    let ip = std::net::Ipv4Addr::new(
        *quoted.get(16)?,
        *quoted.get(17)?,
        *quoted.get(18)?,
        *quoted.get(19)?,
    );
    let port = u16::from_be_bytes([*quoted.get(header_len + 2)?, *quoted.get(header_len + 3)?]);
    Some(format!("{ip}:{port} {protocol}"))
}

/// Adds a quoted preview of `payload` to `head`, cut to fit [`WIDTH`] columns.
fn with_payload(head: String, payload: &[u8]) -> String {
    if payload.is_empty() {
        return head;
    }
    let room = WIDTH.saturating_sub(head.chars().count() + 1);
    let text = String::from_utf8_lossy(payload);
    let quoted = format!("{text:?}");
    if quoted.chars().count() <= room {
        return format!("{head} {quoted}");
    }
    if room < 8 {
        return head;
    }
    let cut: String = quoted.chars().take(room - 4).collect();
    format!("{head} {cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp(
        from: ([u8; 4], u16),
        to: ([u8; 4], u16),
        seq: u32,
        flags: &str,
        ack: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut builder = PacketBuilder::ipv4(from.0, to.0, 64).tcp(from.1, to.1, seq, 65495);
        if flags.contains("SYN") {
            builder = builder.syn();
        }
        if flags.contains("FIN") {
            builder = builder.fin();
        }
        if flags.contains("RST") {
            builder = builder.rst();
        }
        if flags.contains("ACK") {
            builder = builder.ack(ack);
        }
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn a_handshake_reads_with_relative_numbers() {
        let client = ([127, 0, 0, 1], 54012);
        let server = ([127, 0, 0, 1], 5000);
        let mut tracker = Tracker::default();
        let lines: Vec<String> = [
            tcp(client, server, 1000, "SYN", 0, b""),
            tcp(server, client, 7000, "SYN-ACK", 1001, b""),
            tcp(client, server, 1001, "ACK", 7001, b""),
            tcp(server, client, 7001, "ACK", 1001, b"hello\n"),
            tcp(client, server, 1001, "FIN-ACK", 7007, b""),
            tcp(server, client, 7007, "RST", 0, b""),
        ]
        .iter()
        .map(|p| tracker.render(p).unwrap())
        .collect();
        assert_eq!(
            lines[0],
            "[wire] 127.0.0.1:54012 -> 127.0.0.1:5000  SYN      seq=0"
        );
        assert!(lines[1].contains("SYN-ACK  seq=0 ack=1"), "{}", lines[1]);
        assert!(lines[2].contains("ACK      seq=1 ack=1"), "{}", lines[2]);
        assert!(lines[3].ends_with("len=6 \"hello\\n\""), "{}", lines[3]);
        assert!(lines[4].contains("FIN-ACK  seq=1 ack=7"), "{}", lines[4]);
        assert!(lines[5].contains("RST"), "{}", lines[5]);
    }

    #[test]
    fn captures_a_handshake_inside_a_host() {
        use std::sync::Mutex;
        let host = match Host::new("capture") {
            Ok(host) => host,
            Err(why) if !nix::unistd::geteuid().is_root() => return eprintln!("skipped: {why}"),
            Err(why) => panic!("as root, namespaces must work: {why}"),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let capture = Capture::start(&host, move |micros, line| {
            sink.lock().unwrap().push((micros, line));
        })
        .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], 5000));
        let listener = host.listen(addr, 5).unwrap();
        let before = now_micros();
        let _client = host
            .connect(addr, std::time::Duration::from_secs(5))
            .unwrap();
        let _server = listener.accept().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while seen.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(capture);
        let seen = seen.lock().unwrap();
        let flags: Vec<&str> = seen
            .iter()
            .map(|(_, l)| l.split("  ").nth(1).unwrap_or("").trim())
            .collect();
        assert_eq!(flags[..3], ["SYN", "SYN-ACK", "ACK"], "{seen:?}");
        // Stamped by the kernel on the clock narration uses, once each (not twice on lo).
        assert!(seen.iter().all(|(t, _)| *t >= before - 1000), "{seen:?}");
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[test]
    fn long_payloads_are_cut_to_the_width() {
        let mut tracker = Tracker::default();
        let big = vec![b'x'; 5000];
        let line = tracker
            .render(&tcp(
                ([198, 51, 100, 2], 54012),
                ([198, 51, 100, 1], 5000),
                1,
                "ACK",
                1,
                &big,
            ))
            .unwrap();
        assert!(line.chars().count() <= WIDTH, "{line}");
        assert!(line.ends_with("..."));
    }
}
