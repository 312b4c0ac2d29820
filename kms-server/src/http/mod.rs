//! The HTTP APIs, served beside gRPC on the same address: one port speaks HTTP/2 (gRPC and JSON)
//! and HTTP/1.1 (JSON), told apart per connection by hyper's protocol detection and per request by
//! path. Each API is a thin layer over the same [`Keyring`], [`Authenticator`] and [`AuditLog`] as
//! the gRPC service. Each claims a path prefix and parses its own paths (with its own error shape
//! for unknown paths under it); [`ApiFront`] hands it those requests ahead of the gRPC routes.
//!
//! A request no API claims gets the answer of its protocol: `UNIMPLEMENTED` for a gRPC call, a
//! plain `404 Not Found` otherwise.

pub mod huawei;
pub mod vault;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use zeroize::Zeroizing;

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::caught::caught;
use crate::faults::{Faults, Operation, Outcome};
use crate::keyring::{Caller, Keyring};
use crate::listener::{CallBody, CallGuard, begin_call, holding_call};

/// What every HTTP API serves from: the daemon's one key ring, authenticator and audit log.
#[derive(Clone)]
pub struct ApiState {
    /// The key ring, shared with the gRPC service.
    pub keyring: Arc<Keyring>,
    /// Tenancy and tokens, shared with the gRPC service.
    pub auth: Arc<Authenticator>,
    /// The audit log, shared with the gRPC service.
    pub audit: AuditLog,
    /// The fault rules, shared with the gRPC service: a rule names an operation by its kms.v1
    /// name, and matches the REST and transit calls that correspond to it.
    pub faults: Arc<Faults>,
}

/// What the fault rules decided for one HTTP call.
pub(crate) enum Faulted {
    /// Run it (after the injected delay, already waited); the note is for its audit line.
    Run(Option<String>),
    /// Refuse it with this code and message.
    Fail {
        /// The injected code.
        code: kms_proto::ErrorCode,
        /// The injected message.
        message: String,
        /// For the audit line.
        note: String,
    },
    /// Never answer: the caller must audit it, then await [`Faults::hang`].
    Hang(String),
}

/// Applies the fault rules to a call of `op` (the kms.v1 operation an HTTP call corresponds to;
/// `None` for one with no counterpart) by `caller` naming `key`, waiting out any injected delay.
pub(crate) async fn apply_faults(
    faults: &Faults,
    op: Option<Operation>,
    caller: &Caller,
    key: impl FnOnce() -> Option<uuid::Uuid>,
) -> Faulted {
    let Some(op) = op.filter(|_| faults.active()) else {
        return Faulted::Run(None);
    };
    let Some(injected) = faults.intercept(op, caller, key()) else {
        return Faulted::Run(None);
    };
    if !injected.delay.is_zero() {
        tokio::time::sleep(injected.delay).await;
    }
    match injected.outcome {
        None => Faulted::Run(Some(injected.note)),
        Some(Outcome::Fail { code, message }) => Faulted::Fail {
            code,
            message,
            note: injected.note,
        },
        Some(Outcome::Hang) => Faulted::Hang(injected.note),
    }
}

/// The gRPC services' routes, with what no route claims answered as unclaimed. The HTTP APIs'
/// paths never reach them: [`ApiFront`] serves those in front of the router.
pub fn join(grpc: tonic::service::Routes) -> tonic::service::Routes {
    grpc.into_axum_router()
        .fallback(|request: Request| counted(request, unclaimed))
        .into()
}

/// The layer, in front of the gRPC routes, that serves the HTTP APIs' paths itself: the Huawei
/// API's ([`huawei::claims`]) and Vault's ([`vault::claims`]). Each API parses its own paths;
/// through axum's router they would cost a catch-all route whose path parameter axum decodes and
/// stores on every call, and the router's layers (together a seventh of a create-datakey).
#[derive(Clone)]
pub struct ApiFront {
    /// One reference count per call rather than one per part of the state.
    state: Arc<ApiState>,
}

impl ApiFront {
    /// The layer serving the HTTP APIs from `state`.
    pub fn new(state: &ApiState) -> Self {
        Self {
            state: Arc::new(state.clone()),
        }
    }
}

impl<S> tower_layer::Layer<S> for ApiFront {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// [`ApiFront`]'s service: an HTTP API, or `inner` for every other path.
#[derive(Clone)]
pub struct Front<S> {
    inner: S,
    state: Arc<ApiState>,
}

type TonicRequest = http::Request<tonic::body::Body>;
type TonicResponse = http::Response<tonic::body::Body>;

impl<S> tonic::codegen::Service<TonicRequest> for Front<S>
where
    S: tonic::codegen::Service<TonicRequest, Response = TonicResponse>,
{
    type Response = TonicResponse;
    type Error = S::Error;
    type Future = futures::future::Either<
        S::Future,
        futures::future::BoxFuture<'static, Result<TonicResponse, S::Error>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: TonicRequest) -> Self::Future {
        let path = request.uri().path();
        let huawei = huawei::claims(path);
        if !huawei && !vault::claims(path) {
            return futures::future::Either::Left(self.inner.call(request));
        }
        // Counted as a call on its connection, so that the idle timer does not close the
        // connection in the middle of it.
        let call = begin_call(&request);
        let state = Arc::clone(&self.state);
        // Only a request that announces a body over HTTP/1 is watched (a flag allocated per
        // call); any other passes through the wrapper unwatched.
        let ended = (request.version() <= http::Version::HTTP_11
            && declares_body(request.headers()))
        .then(|| Arc::new(AtomicBool::new(false)));
        let request = request.map(|inner| Watched {
            inner,
            ended: ended.clone(),
        });
        // Each API's future boxed on its own: together (an `Either`) every call would carry the
        // larger of the two.
        futures::future::Either::Right(if huawei {
            let served = caught("huawei", huawei::handle(state, request), huawei::internal);
            in_flight(close_if_unread(served, ended), call)
        } else {
            let served = caught("vault", vault::handle(state, request), vault::internal);
            in_flight(close_if_unread(served, ended), call)
        })
    }
}

/// `served`, whose answer says `Connection: close` when `ended` (a watched body) was not read to
/// its end: a refusal answered before the body was read (an unknown path, a bad signature, a
/// body over the limit). hyper then closes the connection rather than read the rest, and a
/// client that was not told would send its next request into a closed socket (python-requests
/// does not retry a POST: the call fails).
fn close_if_unread(
    served: impl Future<Output = Response>,
    ended: Option<Arc<AtomicBool>>,
) -> impl Future<Output = Response> {
    futures::FutureExt::map(served, move |mut response| {
        if ended.is_some_and(|e| !e.load(Ordering::Relaxed)) {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        response
    })
}

/// Whether an HTTP/1 request announces a body (a `Content-Length` above 0, or a
/// `Transfer-Encoding`).
fn declares_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// A request body that notes, when watched, whether it was read to its end.
struct Watched<B> {
    inner: B,
    ended: Option<Arc<AtomicBool>>,
}

impl<B: http_body::Body + Unpin> http_body::Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let (std::task::Poll::Ready(None), Some(ended)) = (&polled, &self.ended) {
            ended.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `served`, boxed, holding `call` in flight until its response body is sent: one allocation
/// for the call's future (a map, not an async block, which would hold `served` twice), and one
/// for its response body.
fn in_flight<E>(
    served: impl Future<Output = Response> + Send + 'static,
    call: Option<CallGuard>,
) -> futures::future::BoxFuture<'static, Result<TonicResponse, E>> {
    Box::pin(futures::FutureExt::map(served, move |response| {
        Ok(holding_call(response, call))
    }))
}

/// A request body read whole ([`read_body`]).
pub(crate) enum RequestBody {
    /// A body of one frame (a small JSON request), as it arrived: no copy is made.
    Frame(axum::body::Bytes),
    /// A body of several frames, joined into memory that is wiped on drop.
    Joined(Zeroizing<Vec<u8>>),
}

impl std::ops::Deref for RequestBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RequestBody::Frame(b) => b,
            RequestBody::Joined(b) => b,
        }
    }
}

/// Why a request body was not read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Longer than the limit, as declared or as sent.
    TooLarge,
    /// The body could not be read (the connection failed mid-body).
    Unreadable(String),
}

/// A request body as the server hands it over, read frame by frame where it lies: the one bound
/// every API's reader puts on its body type.
pub trait IncomingBody:
    http_body::Body<Data = axum::body::Bytes, Error: std::error::Error> + Unpin
{
}

impl<B> IncomingBody for B where
    B: http_body::Body<Data = axum::body::Bytes, Error: std::error::Error> + Unpin
{
}

/// What went wrong reading a body, for the caller: the causes under the server's wrapper
/// (tonic's `Status` prints as a debug dump), from the outermost, `: `-joined.
fn body_error_message(e: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut at = e.source();
    while let Some(cause) = at {
        causes.push(cause.to_string());
        at = cause.source();
    }
    if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    }
}

/// Reads a request body of at most `limit` bytes, refusing one whose `Content-Length` declares
/// more before reading any of it. One frame is kept as it came, without the copy and the buffer
/// list that collecting it costs; several are joined into a buffer reserved for the limit up
/// front, so that growing it never leaves an unwiped copy behind.
pub(crate) async fn read_body(
    headers: &http::HeaderMap,
    mut body: impl IncomingBody,
    limit: usize,
) -> Result<RequestBody, BodyError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut read = None;
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| BodyError::Unreadable(body_error_message(&e)))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let so_far = read.as_deref().map_or(0, <[u8]>::len);
        if so_far + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        read = Some(match read {
            None => RequestBody::Frame(data),
            Some(RequestBody::Frame(first)) => {
                let mut joined = Zeroizing::new(Vec::with_capacity(limit));
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&data);
                RequestBody::Joined(joined)
            }
            Some(RequestBody::Joined(mut joined)) => {
                joined.extend_from_slice(&data);
                RequestBody::Joined(joined)
            }
        });
    }
    Ok(read.unwrap_or(RequestBody::Frame(axum::body::Bytes::new())))
}

/// Runs `serve` on `request`, holding a call in flight on its connection until the response
/// body is sent.
async fn counted<F: Future<Output = Response>>(
    request: Request,
    serve: impl FnOnce(Request) -> F,
) -> Response {
    let call = begin_call(&request);
    let response = serve(request).await;
    match call {
        Some(call) => response.map(|body| Body::new(CallBody::new(body, call))),
        None => response,
    }
}

/// A request no route claims.
async fn unclaimed(request: Request) -> Response {
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) =
            tonic::Status::unimplemented(format!("no gRPC service at {}", request.uri().path()))
                .into_http::<()>()
                .into_parts();
        Response::from_parts(parts, Body::empty())
    } else {
        (
            http::StatusCode::NOT_FOUND,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no API at {}\n", request.uri().path()),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(frames: &[&'static [u8]]) -> Body {
        let frames: Vec<Result<axum::body::Bytes, std::io::Error>> = frames
            .iter()
            .map(|f| Ok(axum::body::Bytes::from_static(f)))
            .collect();
        Body::from_stream(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_any_frames_and_refused_past_its_limit() {
        /// Frames sent, the limit, and the body read (`None`: refused as too large).
        type Case = (&'static [&'static [u8]], usize, Option<&'static [u8]>);
        let cases: &[Case] = &[
            (&[], 8, Some(b"")),
            (&[b"{}"], 8, Some(b"{}")),
            (&[b"", b"{}"], 8, Some(b"{}")),
            (&[b"{\"a\"", b":", b"1}"], 8, Some(b"{\"a\":1}")),
            (&[b"12345678"], 8, Some(b"12345678")),
            (&[b"1234", b"5678"], 8, Some(b"12345678")),
            (&[b"123456789"], 8, None),
            (&[b"1234", b"56789"], 8, None),
            (&[b"12", b"34", b"56", b"78", b"9"], 8, None),
        ];
        for (frames, limit, expected) in cases {
            let got = read_body(&http::HeaderMap::new(), body_of(frames), *limit).await;
            match expected {
                Some(body) => assert_eq!(got.as_deref().ok(), Some(*body), "{frames:?}"),
                None => assert_eq!(got.err(), Some(BodyError::TooLarge), "{frames:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_body_declared_over_its_limit_is_refused_before_it_is_read() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("9"),
        );
        let got = read_body(&headers, body_of(&[b"1"]), 8).await;
        assert_eq!(got.err(), Some(BodyError::TooLarge));
    }

    #[tokio::test]
    async fn a_body_that_fails_to_arrive_is_refused() {
        let frames: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
            Ok(axum::body::Bytes::from_static(b"{")),
            Err(std::io::Error::other("reset")),
        ];
        let body = Body::from_stream(futures::stream::iter(frames));
        let got = read_body(&http::HeaderMap::new(), body, 64).await;
        assert!(matches!(got, Err(BodyError::Unreadable(_))));
    }

    #[test]
    fn a_body_error_names_its_causes_not_the_servers_wrapper() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidInput, "Invalid chunk body CR");
        assert_eq!(body_error_message(&io), "Invalid chunk body CR");
        let status = tonic::Status::from_error(Box::new(io));
        assert_eq!(body_error_message(&status), "Invalid chunk body CR");
    }
}
