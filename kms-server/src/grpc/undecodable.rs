//! Requests tonic refuses before any handler runs: a body that does not decode as the request
//! message (invalid UTF-8 in a string field, a bad varint, a wrong wire type, a missing message) or
//! one over the message size limit. tonic answers those with a bare `INTERNAL` or `OUT_OF_RANGE`;
//! [`CodecRefusals`] rewords them as `KMSBOX.0400` and `KMSBOX.0413` with the code in the
//! `x-kms-error-code` trailer, and audits them like every other refusal (operation from the path,
//! outcome the code, the caller when its metadata identifies one).

use std::convert::Infallible;

use kms_proto::ErrorCode;
use kms_proto::metadata::{ERROR_CODE, REQUEST_ID};
use kms_proto::v1::key_management_service_server::KeyManagementServiceServer;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::{Call, KmsGrpc, request_id_value};
use crate::auth::request_id;

/// The `kms.v1.KeyManagementService` server, with tonic's own decode and size refusals given
/// stable codes and audited.
#[derive(Debug, Clone)]
pub struct CodecRefusals {
    inner: KeyManagementServiceServer<KmsGrpc>,
    grpc: KmsGrpc,
}

impl CodecRefusals {
    /// Wraps the generated server; `grpc` audits and identifies callers.
    pub fn new(inner: KeyManagementServiceServer<KmsGrpc>, grpc: KmsGrpc) -> Self {
        Self { inner, grpc }
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
    let method = path.rsplit('/').next().unwrap_or_default();
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
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        <KeyManagementServiceServer<KmsGrpc> as Service<http::Request<Body>>>::poll_ready(
            &mut self.inner,
            cx,
        )
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // Only what authentication and the audit line read, in place and without allocating:
        // cloning every header, or building a header map, costs a tenth of a bare RPC, and is
        // needed only when refusing. Eight slots for four names keep at least two of any
        // repeated one (which authentication then refuses).
        let uri = req.uri().clone();
        let mut kept: [Option<(http::HeaderName, http::HeaderValue)>; 8] = Default::default();
        let mut slots = kept.iter_mut();
        for (name, value) in req.headers() {
            if crate::auth::SINGLE_VALUED.contains(&name.as_str()) {
                match slots.next() {
                    Some(slot) => *slot = Some((name.clone(), value.clone())),
                    None => break,
                }
            }
        }
        let fut = self.inner.call(req);
        let grpc = self.grpc.clone();
        Box::pin(async move {
            let response = fut.await?;
            let Some(code) = response
                .extensions()
                .get::<Status>()
                .and_then(codec_refusal)
            else {
                return Ok(response);
            };
            let message = response
                .extensions()
                .get::<Status>()
                .map(|s| s.message().to_owned())
                .unwrap_or_default();
            let op = operation(uri.path());
            let mut headers = http::HeaderMap::with_capacity(kept.len());
            for (name, value) in kept.into_iter().flatten() {
                headers.append(name, value);
            }
            let md = MetadataMap::from_headers(headers);
            Ok(grpc.refuse_undecodable(op, &md, code, message).await)
        })
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
        let (domain, region) = match self.auth.authenticate(md) {
            Ok(c) => (c.domain.to_string(), c.region.to_string()),
            Err(_) => (String::new(), String::new()),
        };
        let call = Call {
            op,
            request_id: request_id(md),
            domain,
            region,
            requested_key: String::new(),
            injected: None,
        };
        tracing::debug!(op, request_id = %call.request_id, error = %message, "undecodable request refused");
        let rid = request_id_value(&call.request_id);
        self.audit
            .record(super::line(call, String::new(), code.as_str()))
            .await;
        let mut status = code.status(format!("the request message does not decode: {message}"));
        if let Some(v) = rid {
            status.metadata_mut().insert(REQUEST_ID, v);
        }
        status.into_http()
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
