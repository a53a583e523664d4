//! Reads the kernel's TCP tables (`/proc/net/tcp`, `/proc/net/tcp6`, or a namespace's
//! `/proc/PID/net/tcp*`): each socket's local and remote address, state and inode.
//!
//! The tables tell the truth about a program whatever it prints: which address its
//! listening socket is bound to (the wildcard or the one it was given), and which
//! sockets are in TIME_WAIT after a close, and how much of what was sent is still unread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// One row of a TCP table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's state number: 0x0A is LISTEN, 0x06 TIME_WAIT (`include/net/tcp_states.h`).
    pub state: u8,
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

fn parse_row(line: &str) -> Option<Row> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(Row {
        local: parse_addr(fields.get(1)?)?,
        remote: parse_addr(fields.get(2)?)?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
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

/// `(tx_queue, rx_queue)` of the TCP socket whose local port is `local` and remote port
/// `remote`, from these tables: bytes sent but not yet acknowledged, and bytes received
/// but not yet read by its program.
pub fn queues<P: AsRef<Path>>(tables: &[P], local: u16, remote: u16) -> Option<(u64, u64)> {
    let local_suffix = format!(":{local:04X}");
    let remote_suffix = format!(":{remote:04X}");
    tables
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| {
            table.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (local_field, remote_field, queue_field) =
                    (fields.get(1)?, fields.get(2)?, fields.get(4)?);
                if !local_field.ends_with(&local_suffix) || !remote_field.ends_with(&remote_suffix)
                {
                    return None;
                }
                let (tx, rx) = queue_field.split_once(':')?;
                Some((
                    u64::from_str_radix(tx, 16).ok()?,
                    u64::from_str_radix(rx, 16).ok()?,
                ))
            })
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
}
