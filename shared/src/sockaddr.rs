//! Small helpers around socket2's types that every lab needs for logs and reads.

use std::mem::MaybeUninit;

use socket2::SockAddr;

/// An address as people write it: `127.0.0.1:54012`, `[::1]:54012`, or a socket path.
pub fn describe(address: &SockAddr) -> String {
    if let Some(address) = address.as_socket() {
        return address.to_string();
    }
    match address.as_pathname() {
        Some(path) => path.display().to_string(),
        None => String::from("(unnamed)"),
    }
}

/// Lets an ordinary byte buffer receive data through socket2's `recv_from`, which takes
/// `&mut [MaybeUninit<u8>]` so that it could also fill memory nobody initialised.
pub fn as_uninit(buffer: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the kernel only ever writes
    // initialised bytes into it, so the slice stays fully initialised.
    unsafe { &mut *(buffer as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_ip_and_path_addresses() {
        let ip: SockAddr = "127.0.0.1:5000"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into();
        assert_eq!(describe(&ip), "127.0.0.1:5000");
        let path = SockAddr::unix("/tmp/x.sock").unwrap();
        assert_eq!(describe(&path), "/tmp/x.sock");
    }
}
