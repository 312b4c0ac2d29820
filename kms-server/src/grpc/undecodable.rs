//! Requests tonic refuses before any handler runs: a body that does not decode as the request
//! message (invalid UTF-8 in a string field, a bad varint, a wrong wire type, a missing message) or
//! one over the message size limit. tonic answers those with a bare `INTERNAL` or `OUT_OF_RANGE`;
//! [`CodecRefusals`] rewords them as `KMS.0308` and `KMSBOX.0413` with the code in the
//! `x-kms-error-code` trailer, and audits them like every other refusal (operation from the path,
//! outcome the code, the caller when its metadata identifies one).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kms_proto::ErrorCode;
use kms_proto::metadata::ERROR_CODE;
use kms_proto::v1::key_management_service_server::KeyManagementServiceServer;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::{KmsGrpc, with_request_id};

/// The `kms.v1.KeyManagementService` server, with tonic's own decode and size refusals given
/// stable codes and audited.
#[derive(Debug, Clone)]
pub struct CodecRefusals {
    inner: KeyManagementServiceServer<KmsGrpc>,
    grpc: Arc<KmsGrpc>,
}

impl CodecRefusals {
    /// Wraps the generated server; `grpc` audits and identifies callers.
    pub fn new(inner: KeyManagementServiceServer<KmsGrpc>, grpc: KmsGrpc) -> Self {
        Self {
            inner,
            grpc: Arc::new(grpc),
        }
    }
}

impl NamedService for CodecRefusals {
    const NAME: &'static str = <KeyManagementServiceServer<KmsGrpc> as NamedService>::NAME;
}

/// The RPC names of the service, for the audit entry of a request no handler saw.
const OPERATIONS: [&str; 15] = [
    "CreateKey",
    "DescribeKey",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "RotateKey",
    "GetDefaultKey",
    "ListKeys",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "Unknown",
];

/// The operation a request path names (`/kms.v1.KeyManagementService/Encrypt` is `Encrypt`).
fn operation(path: &str) -> &'static str {
    // A byte scan from the end: `rsplit` costs more than the rest of this wrapper.
    let method = path
        .bytes()
        .rposition(|b| b == b'/')
        .map_or(path, |slash| path.get(slash + 1..).unwrap_or_default());
    OPERATIONS
        .iter()
        .find(|op| **op == method)
        .copied()
        .unwrap_or("Unknown")
}

/// The stable code for a status tonic itself produced, if it is a decode or size refusal.
fn codec_refusal(status: &Status) -> Option<ErrorCode> {
    if status.metadata().get(ERROR_CODE).is_some() {
        return None; // A handler's refusal, already coded and audited.
    }
    match status.code() {
        Code::Internal => Some(ErrorCode::InvalidArgument),
        Code::OutOfRange => Some(ErrorCode::PayloadTooLarge),
        _ => None,
    }
}

impl Service<http::Request<Body>> for CodecRefusals {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Refusals;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        <KeyManagementServiceServer<KmsGrpc> as Service<http::Request<Body>>>::poll_ready(
            &mut self.inner,
            cx,
        )
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let op = operation(req.uri().path());
        let kept = Kept::of(req.headers());
        Refusals {
            call: self.inner.call(req),
            refusal: Some((op, kept, Arc::clone(&self.grpc))),
            refusing: None,
        }
    }
}

/// The metadata authentication and the audit line read, kept in place while the call runs:
/// cloning every header, or building a header map, costs a tenth of a bare RPC, and is needed only
/// when refusing. Eight slots for four names keep at least two of any repeated one (which
/// authentication then refuses).
struct Kept {
    /// Each value, with the index of its name in [`crate::auth::SINGLE_VALUED`].
    values: [Option<(u8, http::HeaderValue)>; 8],
}

impl Kept {
    fn of(headers: &http::HeaderMap) -> Self {
        let mut kept = Self {
            values: Default::default(),
        };
        let mut slots = kept.values.iter_mut();
        for (name, value) in headers {
            let Some(i) = crate::auth::SINGLE_VALUED
                .iter()
                .position(|n| *n == name.as_str())
            else {
                continue;
            };
            match slots.next() {
                Some(slot) => *slot = Some((u8::try_from(i).unwrap_or(u8::MAX), value.clone())),
                None => break,
            }
        }
        kept
    }

    fn into_metadata(self) -> MetadataMap {
        let mut headers = http::HeaderMap::with_capacity(self.values.len());
        for (i, value) in self.values.into_iter().flatten() {
            if let Some(name) = crate::auth::SINGLE_VALUED.get(usize::from(i)) {
                headers.append(http::HeaderName::from_static(name), value);
            }
        }
        MetadataMap::from_headers(headers)
    }
}

/// The future of [`CodecRefusals::call`]: the generated server's answer, passed on as it is
/// unless tonic refused the request itself; then the refusal is audited and reworded (a second,
/// boxed future, made only on that path, so that a served call costs no extra allocation).
pub struct Refusals {
    call: BoxFuture<http::Response<Body>, Infallible>,
    refusal: Option<(&'static str, Kept, Arc<KmsGrpc>)>,
    refusing: Option<BoxFuture<http::Response<Body>, Infallible>>,
}

impl Future for Refusals {
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(refusing) = &mut this.refusing {
            return refusing.as_mut().poll(cx);
        }
        let Ok(response) = std::task::ready!(this.call.as_mut().poll(cx));
        let refused = response
            .extensions()
            .get::<Status>()
            .and_then(|s| Some((codec_refusal(s)?, s.message().to_owned())));
        let (Some((code, message)), Some((op, kept, grpc))) = (refused, this.refusal.take()) else {
            return Poll::Ready(Ok(response));
        };
        let mut refusing: BoxFuture<_, _> = Box::pin(async move {
            let md = kept.into_metadata();
            Ok(grpc.refuse_undecodable(op, &md, code, message).await)
        });
        let polled = refusing.as_mut().poll(cx);
        this.refusing = Some(refusing);
        polled
    }
}

impl KmsGrpc {
    /// Audits a request tonic could not decode and answers it with `code`.
    async fn refuse_undecodable(
        &self,
        op: &'static str,
        md: &MetadataMap,
        code: ErrorCode,
        message: String,
    ) -> http::Response<Body> {
        let (request_id, caller) = self.auth.identify(md);
        let call = super::Call {
            op,
            request_id,
            caller: caller.ok(),
            requested_key: String::new(),
            injected: None,
        };
        tracing::debug!(op, request_id = %call.request_id, error = %message, "undecodable request refused");
        self.audit.record(call.refused_line(code.as_str())).await;
        let status = code.status(format!("the request message does not decode: {message}"));
        with_request_id(status, &call.request_id).into_http()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_come_from_the_path() {
        for (path, op) in [
            ("/kms.v1.KeyManagementService/Encrypt", "Encrypt"),
            ("/kms.v1.KeyManagementService/CreateKey", "CreateKey"),
            ("/kms.v1.KeyManagementService/Nope", "Unknown"),
            ("", "Unknown"),
        ] {
            assert_eq!(operation(path), op, "{path}");
        }
    }

    #[test]
    fn only_uncoded_internal_and_out_of_range_are_reworded() {
        assert_eq!(
            codec_refusal(&Status::internal("invalid wire type")),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(
            codec_refusal(&Status::out_of_range("too large")),
            Some(ErrorCode::PayloadTooLarge)
        );
        assert_eq!(codec_refusal(&Status::unimplemented("no")), None);
        assert_eq!(
            codec_refusal(&ErrorCode::Internal.status("store failed")),
            None,
            "a handler's coded refusal stays as it is"
        );
    }
}
