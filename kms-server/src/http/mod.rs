//! The HTTP APIs, served beside gRPC on the same address: one port speaks HTTP/2 (gRPC and JSON)
//! and HTTP/1.1 (JSON), told apart per connection by hyper's protocol detection and per request by
//! path. Each API is a thin layer over the same [`Keyring`], [`Authenticator`] and [`AuditLog`] as
//! the gRPC service, and nests its own routes (with its own error shape for unknown paths under its
//! prefix) into [`routes`].
//!
//! A request no API claims gets the answer of its protocol: `UNIMPLEMENTED` for a gRPC call, a
//! plain `404 Not Found` otherwise.

pub mod huawei;
pub mod vault;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::faults::{Faults, Operation, Outcome};
use crate::keyring::{Caller, Keyring};
use crate::listener::{CallBody, ConnActivity};

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

/// The HTTP APIs' routes, each request counted as a call on its connection (so the idle timer
/// does not close a connection in the middle of one). The Huawei API claims its prefix in
/// [`join`]'s fallback instead (see [`huawei::handle`]).
pub fn routes(state: &ApiState) -> Router {
    // Each API with routes of its own merges its router here.
    Router::new()
        .merge(vault::router(state.clone()))
        .layer(axum::middleware::from_fn(mark_call))
}

/// Joins the gRPC services' routes with the HTTP APIs' ([`routes`]); what no route claims goes
/// to the Huawei API if it is under its prefix, and is answered as unclaimed otherwise.
pub fn join(
    grpc: tonic::service::Routes,
    http: Router,
    state: &ApiState,
) -> tonic::service::Routes {
    let state = state.clone();
    grpc.into_axum_router()
        .merge(http)
        .fallback(move |request: Request| {
            let state = state.clone();
            // Counted as a call, as `mark_call` counts the routes' requests.
            let call = request
                .extensions()
                .get::<ConnActivity>()
                .map(ConnActivity::begin);
            async move {
                let response = if huawei::claims(request.uri().path()) {
                    huawei::handle(state, request).await
                } else {
                    unclaimed(request).await
                };
                match call {
                    Some(call) => response.map(|body| Body::new(CallBody::new(body, call))),
                    None => response,
                }
            }
        })
        .into()
}

/// Holds a call in flight on its connection until the response body is sent.
async fn mark_call(request: Request, next: Next) -> Response {
    let call = request
        .extensions()
        .get::<ConnActivity>()
        .map(ConnActivity::begin);
    let response = next.run(request).await;
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
