//! Reads the kernel's TCP tables (`/proc/net/tcp`, `/proc/net/tcp6`, or a namespace's
//! `/proc/PID/net/tcp*`): each socket's local and remote address, state, queues, timer
//! and inode.
//!
//! The tables tell the truth about a program whatever it prints: which address its
//! listening socket is bound to (the wildcard or the one it was given), and which
//! sockets are in TIME_WAIT after a close, and how much of what was sent is still unread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// One row of a TCP table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's state number: 0x0A is LISTEN, 0x06 TIME_WAIT (`include/net/tcp_states.h`).
    pub state: u8,
    /// `tx_queue`: bytes sent but not yet acknowledged.
    pub send_queue: u64,
    /// `rx_queue`: bytes received but not yet read by its program.
    pub receive_queue: u64,
    /// `tr`: the timer armed on it (0 none, 1 retransmission, 2 keepalive, ...).
    pub timer: u8,
    /// `tm->when`: when that timer fires, from now.
    pub due: Duration,
    /// The socket's inode: `/proc/PID/fd/N -> socket:[INODE]` links it to a process.
    pub inode: u64,
}

/// Every row of these tables (missing files are skipped); the demos show them.
#[cfg(feature = "tools")]
pub fn read<P: AsRef<Path>>(tables: &[P]) -> Vec<Row> {
    tables
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| parse(&text))
        .collect()
}

/// The listeners on `port` in these tables. Cheaper than [`read`] on a busy machine
/// (tens of thousands of rows): other rows are skipped before they are parsed.
pub fn listeners<P: AsRef<Path>>(tables: &[P], port: u16) -> Vec<Row> {
    let suffix = format!(":{port:04X}");
    tables
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter(|line| {
                    let mut fields = line.split_whitespace();
                    let local = fields.nth(1).unwrap_or("");
                    fields.nth(1) == Some("0A") && local.ends_with(&suffix)
                })
                .filter_map(parse_row)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Parses the text of one table.
#[cfg(any(feature = "tools", test))]
pub fn parse(text: &str) -> Vec<Row> {
    text.lines().skip(1).filter_map(parse_row).collect()
}

/// One row: `sl local remote st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode`.
fn parse_row(line: &str) -> Option<Row> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let hex_pair = |at: usize| -> Option<(u64, u64)> {
        let (a, b) = fields.get(at)?.split_once(':')?;
        Some((
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        ))
    };
    let (send_queue, receive_queue) = hex_pair(4)?;
    let (timer, ticks) = hex_pair(5)?;
    Some(Row {
        local: parse_addr(fields.get(1)?)?,
        remote: parse_addr(fields.get(2)?)?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        send_queue,
        receive_queue,
        timer: u8::try_from(timer).ok()?,
        due: Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second()),
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// The unit of `tm->when` (`USER_HZ`, 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        ticks if ticks > 0 => ticks as f64,
        _ => 100.0,
    }
}

/// `0100007F:1388` is 127.0.0.1:5000: the address is in the kernel's byte order, in
/// 32-bit words.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok())
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [word] => IpAddr::V4(Ipv4Addr::from(word.to_le_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, word) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The inodes of the sockets process `pid` has open (from `/proc/PID/fd`).
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let text = target.to_string_lossy().into_owned();
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The row of the TCP socket whose local port is `local` and remote port `remote`, from
/// these tables (the first that has it). Other rows are skipped before they are parsed.
pub fn connection<P: AsRef<Path>>(tables: &[P], local: u16, remote: u16) -> Option<Row> {
    let local_suffix = format!(":{local:04X}");
    let remote_suffix = format!(":{remote:04X}");
    tables
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let mut fields = line.split_whitespace().skip(1);
                    let (l, r) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
                    l.ends_with(&local_suffix) && r.ends_with(&remote_suffix)
                })
                .find_map(parse_row)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_families() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n";
        let rows = parse(v4);
        assert_eq!(rows[0].local, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(rows[0].state, 0x0A);
        assert_eq!(rows[0].inode, 12345);
        let busy = "header\n   1: 0100007F:1388 0100007F:9C40 01 0000000A:00000003 02:00000064 00000000     0        0 7 1\n";
        let row = &parse(busy)[0];
        assert_eq!((row.send_queue, row.receive_queue), (10, 3));
        assert_eq!(row.timer, 2);
        assert!(row.due > Duration::ZERO);
        let v6 = "header\n   0: 00000000000000000000000001000000:1388 00000000000000000000000000000000:0000 06 00000000:00000000 00:00000000 00000000     0        0 0 1\n";
        let rows = parse(v6);
        assert_eq!(rows[0].local, "[::1]:5000".parse().unwrap());
        assert_eq!(rows[0].state, 0x06);
    }

    #[test]
    fn finds_the_listeners_on_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listeners(&["/proc/thread-self/net/tcp"], addr.port());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].local, addr);
    }

    /// The tables' answer where sock_diag cannot be used: the same connection, state
    /// and unread bytes as sock_diag's.
    #[test]
    fn finds_one_connection_and_its_unread_bytes() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(b"seven!!").unwrap();
        let (ours, theirs) = (
            client.local_addr().unwrap().port(),
            server.local_addr().unwrap().port(),
        );
        let tables = ["/proc/thread-self/net/tcp"];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let row = connection(&tables, theirs, ours).expect("the server's side");
            assert_eq!((row.state, row.remote.port()), (0x01, ours));
            if row.receive_queue == 7 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{row:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(connection(&tables, theirs, 1), None);
    }
}
