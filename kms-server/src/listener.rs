//! The one place where the daemon accepts TCP connections: every accepted socket gets
//! `TCP_NODELAY` and TCP keep-alive, running out of file descriptors backs off instead of
//! spinning, at most [`AcceptOptions::max_connections`] are open at once (accepting waits for one
//! to close, leaving new clients in the kernel's backlog), and a connection with no call for
//! [`AcceptOptions::idle_timeout`] is closed.
//!
//! Each connection's answers are written together where several are ready at once
//! (`listener/coalesce.rs`).
//!
//! tonic ignores `Server::tcp_nodelay` and `tcp_keepalive` when it is handed its own incoming
//! stream, so the options are set here, on each accepted socket.

mod coalesce;

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Bytes, Service, http};
use tonic::server::NamedService;
use tonic::transport::server::Connected;

/// How accepted connections are set up.
#[derive(Debug, Clone)]
pub struct AcceptOptions {
    /// Idle time before the first TCP keep-alive probe.
    pub keepalive_time: Duration,
    /// Time between keep-alive probes.
    pub keepalive_interval: Duration,
    /// How long accepting pauses when the process or system is out of file descriptors.
    pub exhausted_backoff: Duration,
    /// Most connections open at once; accepting waits while this many are open.
    pub max_connections: usize,
    /// A connection with no call in flight and none started for this long is closed; `None`
    /// keeps idle connections open.
    pub idle_timeout: Option<Duration>,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self {
            keepalive_time: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(10),
            exhausted_backoff: Duration::from_millis(100),
            max_connections: 1024,
            idle_timeout: Some(Duration::from_secs(60)),
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

/// The calls of one connection, shared by the connection and its requests (tonic puts it in each
/// request's extensions as the connection info): the idle timer of the connection looks at it.
#[derive(Debug, Clone, Default)]
pub struct ConnActivity(Arc<Activity>);

#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// A call started or ended since the idle timer last looked.
    touched: AtomicBool,
}

impl ConnActivity {
    /// Marks a call in flight on the connection until the guard is dropped.
    pub fn begin(&self) -> CallGuard {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        self.0.touched.store(true, Ordering::Relaxed);
        CallGuard(Arc::clone(&self.0))
    }

    /// Whether the connection has been busy since the last look (and resets that).
    fn busy_since_last_look(&self) -> bool {
        let touched = self.0.touched.swap(false, Ordering::Relaxed);
        touched || self.0.in_flight.load(Ordering::Relaxed) > 0
    }
}

/// A call in flight; see [`ConnActivity::begin`].
#[derive(Debug)]
pub struct CallGuard(Arc<Activity>);

/// Begins a call on `request`'s connection, if it came through [`incoming`].
pub(crate) fn begin_call<B>(request: &http::Request<B>) -> Option<CallGuard> {
    request
        .extensions()
        .get::<ConnActivity>()
        .map(ConnActivity::begin)
}

/// `response`, its body holding `call` in flight until it is sent or dropped.
pub(crate) fn holding_call<B>(
    response: http::Response<B>,
    call: Option<CallGuard>,
) -> http::Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    // `Body::new` hands a `Body` back as it is, without another box.
    response.map(|body| match call {
        Some(call) => Body::new(CallBody::new(body, call)),
        None => Body::new(body),
    })
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touched.store(true, Ordering::Relaxed);
    }
}

/// A service whose calls keep their connection from counting as idle: each request marks a call
/// in flight on its connection until its response body has been sent (or dropped), so a long
/// response stream (a health `Watch`) keeps the connection too.
#[derive(Debug, Clone)]
pub struct MarkCalls<S>(pub S);

impl<S: NamedService> NamedService for MarkCalls<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for MarkCalls<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let call = begin_call(&req);
        // A map, not an async block: the block would hold the inner future twice (as captured
        // and as awaited), and the box would be twice its size.
        Box::pin(futures::FutureExt::map(self.0.call(req), move |response| {
            Ok(holding_call(response?, call))
        }))
    }
}

/// A response body that holds its call in flight until it is done.
pub(crate) struct CallBody<B> {
    body: B,
    _call: CallGuard,
}

impl<B> CallBody<B> {
    /// `body`, holding `call` in flight until it is sent or dropped.
    pub(crate) fn new(body: B, call: CallGuard) -> Self {
        Self { body, _call: call }
    }
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for CallBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// An accepted connection: the socket, its place under the connection cap (released when the
/// connection is dropped) and its idle timer.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    activity: ConnActivity,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    coalescer: coalesce::Coalescer,
}

impl Conn {
    /// The accepted socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// `Err(TimedOut)` once the connection has been idle for the idle timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some((timeout, sleep)) = &mut self.idle else {
            return Ok(());
        };
        while sleep.as_mut().poll(cx).is_ready() {
            if !self.activity.busy_since_last_look() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for longer than the idle timeout",
                ));
            }
            sleep.as_mut().reset(Instant::now() + *timeout);
        }
        Ok(())
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnActivity;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.activity.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.poll_idle(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            this.coalescer.read(&buf.filled()[before..]);
        }
        read
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.coalescer.hold(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.coalescer.hold(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The accepted connections of `listener`, each configured by [`configure`]. Errors of a single
/// connection (reset before accept, option refused) skip that connection; running out of
/// descriptors pauses accepting for `exhausted_backoff`; with `max_connections` open, accepting
/// waits until one closes. The stream never ends by itself.
pub fn incoming(
    listener: TcpListener,
    options: AcceptOptions,
) -> impl Stream<Item = io::Result<Conn>> + Send + 'static {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    futures::stream::unfold(listener, move |listener| {
        let options = options.clone();
        let slots = Arc::clone(&slots);
        async move {
            // Wait for a free slot before accepting, so that a full daemon neither spins nor
            // takes descriptors it will not serve.
            let permit = slots.acquire_owned().await.ok()?;
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => match configure(&stream, &options) {
                        Ok(()) => {
                            let conn = Conn {
                                stream,
                                _permit: permit,
                                activity: ConnActivity::default(),
                                idle: options
                                    .idle_timeout
                                    .map(|t| (t, Box::pin(tokio::time::sleep(t)))),
                                coalescer: coalesce::Coalescer::default(),
                            };
                            return Some((Ok(conn), listener));
                        }
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
        let conn = accepted.next().await.unwrap().unwrap();
        let server_side = conn.stream();
        assert!(server_side.nodelay().unwrap());
        let sock = SockRef::from(server_side);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn a_connection_is_idle_only_with_no_call_in_flight_or_started() {
        use tokio::io::AsyncReadExt;
        let idle = Duration::from_millis(200);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = AcceptOptions {
            idle_timeout: Some(idle),
            ..AcceptOptions::default()
        };
        let mut accepted = Box::pin(incoming(listener, options));
        let _client = TcpStream::connect(addr).await.unwrap();
        let mut conn = accepted.next().await.unwrap().unwrap();
        let mut buf = [0u8; 8];
        // A call in flight: still open well past the idle timeout.
        let call = conn.connect_info().begin();
        let read = tokio::time::timeout(idle * 3, conn.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "no data and no error while a call is in flight"
        );
        drop(call);
        // The call just ended: not idle for one more timeout, then closed.
        let start = std::time::Instant::now();
        let e = tokio::time::timeout(idle * 5, conn.read(&mut buf))
            .await
            .expect("closed within a few idle timeouts")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= idle, "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn at_the_connection_cap_accepting_waits_for_a_connection_to_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = AcceptOptions {
            max_connections: 2,
            idle_timeout: None,
            ..AcceptOptions::default()
        };
        let mut accepted = Box::pin(incoming(listener, options));
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let first = accepted.next().await.unwrap().unwrap();
        let _second = accepted.next().await.unwrap().unwrap();
        let wait = Duration::from_millis(300);
        assert!(
            tokio::time::timeout(wait, accepted.next()).await.is_err(),
            "the third connection waits while two are open"
        );
        drop(first);
        assert!(
            tokio::time::timeout(wait, accepted.next()).await.is_ok(),
            "and is accepted once one closes"
        );
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
