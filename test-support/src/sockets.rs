//! Socket options of this process's own TCP sockets, read back from the kernel, so that a test can
//! check how a server it runs in-process set up a socket it accepted (Linux: `/proc/self/fd`).

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use socket2::SockRef;

/// What a test checks on an accepted socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// `SO_KEEPALIVE`.
    pub keepalive: bool,
}

/// The options of the socket of this process whose local address is `local` and peer `peer`
/// (for a server's accepted socket: the server's address and the client's), or `None` if this
/// process has no such socket.
pub fn own_tcp_socket(local: SocketAddr, peer: SocketAddr) -> Option<TcpOptions> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        #[allow(unsafe_code)]
        // SAFETY: `fd` was listed as an open socket of this process a moment ago and is used only
        // for the getsockopt/getsockname calls below. A test that calls this keeps the connection
        // it asks about open, so that descriptor is not closed under us; any other descriptor that
        // is closed and reused meanwhile fails the address match or the calls, harmlessly.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = SockRef::from(&fd);
        let addrs = (sock.local_addr(), sock.peer_addr());
        let (Ok(l), Ok(p)) = addrs else { continue };
        if l.as_socket() == Some(local) && p.as_socket() == Some(peer) {
            return Some(TcpOptions {
                nodelay: sock.tcp_nodelay().ok()?,
                keepalive: sock.keepalive().ok()?,
            });
        }
    }
    None
}
