//! The one place where the daemon accepts TCP connections: every accepted socket gets
//! `TCP_NODELAY` and TCP keep-alive, and running out of file descriptors backs off instead of
//! spinning.
//!
//! tonic ignores `Server::tcp_nodelay` and `tcp_keepalive` when it is handed its own incoming
//! stream, so the options are set here, on each accepted socket.

use std::io;
use std::time::Duration;

use futures::Stream;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};

/// How accepted connections are set up.
#[derive(Debug, Clone)]
pub struct AcceptOptions {
    /// Idle time before the first TCP keep-alive probe.
    pub keepalive_time: Duration,
    /// Time between keep-alive probes.
    pub keepalive_interval: Duration,
    /// How long accepting pauses when the process or system is out of file descriptors.
    pub exhausted_backoff: Duration,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self {
            keepalive_time: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(10),
            exhausted_backoff: Duration::from_millis(100),
        }
    }
}

/// Sets `TCP_NODELAY` and keep-alive on an accepted (or connecting) socket.
///
/// Without `TCP_NODELAY`, Nagle's algorithm holds back small HTTP/2 frames until the peer's
/// delayed ACK (about 40 ms on Linux), which stalls concurrent calls on one connection.
pub fn configure(stream: &TcpStream, options: &AcceptOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(options.keepalive_time)
        .with_interval(options.keepalive_interval);
    SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// Whether an accept error means "out of descriptors or memory": retrying at once would spin.
fn is_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux; std has no ErrorKind for the first three.
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// The accepted connections of `listener`, each configured by [`configure`]. Errors of a single
/// connection (reset before accept, option refused) skip that connection; running out of
/// descriptors pauses accepting for `exhausted_backoff`. The stream never ends by itself.
pub fn incoming(
    listener: TcpListener,
    options: AcceptOptions,
) -> impl Stream<Item = io::Result<TcpStream>> + Send + 'static {
    futures::stream::unfold(listener, move |listener| {
        let options = options.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => match configure(&stream, &options) {
                        Ok(()) => return Some((Ok(stream), listener)),
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "dropping a connection whose socket options failed")
                        }
                    },
                    Err(e) if is_exhaustion(&e) => {
                        tracing::warn!(error = %e, pause = ?options.exhausted_backoff, "cannot accept connections: out of file descriptors");
                        tokio::time::sleep(options.exhausted_backoff).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "accept failed"),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn accepted_sockets_have_nodelay_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut accepted = Box::pin(incoming(listener, AcceptOptions::default()));
        let _client = TcpStream::connect(addr).await.unwrap();
        let server_side = accepted.next().await.unwrap().unwrap();
        assert!(server_side.nodelay().unwrap());
        let sock = SockRef::from(&server_side);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
    }

    #[test]
    fn descriptor_exhaustion_is_told_from_other_accept_errors() {
        for (errno, exhausted) in [
            (24, true),
            (23, true),
            (105, true),
            (12, true),
            (103, false),
            (104, false),
        ] {
            assert_eq!(
                is_exhaustion(&io::Error::from_raw_os_error(errno)),
                exhausted,
                "errno {errno}"
            );
        }
    }
}
