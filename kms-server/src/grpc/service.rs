//! `kms.v1.KeyManagementService` on the wire: the path names the RPC, the body is read as one
//! message ([`framing`](super::framing)), the handler of [`KmsGrpc`] answers, and the answer is
//! framed back. It stands where tonic's generated server would, and answers as it does (headers,
//! one message, `grpc-status` trailers; a refusal trailers-only; `UNIMPLEMENTED` for an unknown
//! method or a `grpc-encoding` other than `identity`), except where it is stricter:
//! - a request that does not decode (invalid UTF-8 in a string field, a bad varint, a wrong wire
//!   type, no message, a message cut short, a second message, a compressed one) is refused as
//!   `KMS.0308`, and one over the message size limit as `KMSBOX.0413`, with the code in the
//!   `x-kms-error-code` trailer and an audit line like every other refusal (operation from the
//!   path, outcome the code, the caller when its metadata identifies one); tonic answers those
//!   with a bare `INTERNAL` or `OUT_OF_RANGE`, drops a second message, and audits nothing;
//! - request trailers are not merged into the metadata: the tenancy a call is served under comes
//!   from its headers alone.

use std::convert::Infallible;
use std::sync::Arc;

use kms_proto::ErrorCode;
use kms_proto::v1::key_management_service_server::{KeyManagementService, SERVICE_NAME};
use prost::bytes::Bytes;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::framing::{self, ReadError, UnaryBody};
use super::{KmsGrpc, with_request_id};

/// The `kms.v1.KeyManagementService` server over [`KmsGrpc`]'s handlers.
#[derive(Debug, Clone)]
pub struct KmsService {
    grpc: Arc<KmsGrpc>,
    max_message_size: usize,
}

impl KmsService {
    /// Serves `grpc`'s handlers, refusing request messages over `max_message_size` bytes.
    pub fn new(grpc: KmsGrpc, max_message_size: usize) -> Self {
        Self {
            grpc: Arc::new(grpc),
            max_message_size,
        }
    }
}

impl NamedService for KmsService {
    const NAME: &'static str = SERVICE_NAME;
}

impl Service<http::Request<Body>> for KmsService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// The call's RPC from the path and its metadata from the headers, then (in the future, which
    /// holds only what the call still needs) its message from the body and the handler's answer.
    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let Some(rpc) = Rpc::from_path(req.uri().path()) else {
            return Box::pin(std::future::ready(
                Ok(Status::unimplemented("").into_http()),
            ));
        };
        let (parts, body) = req.into_parts();
        let md = MetadataMap::from_headers(parts.headers);
        if let Some(status) = unsupported_encoding(&md) {
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        let extensions = parts.extensions;
        let grpc = Arc::clone(&self.grpc);
        let limit = self.max_message_size;
        Box::pin(async move {
            let message = match framing::read_unary(body, limit).await {
                Ok(message) => message,
                Err(ReadError::Body(status)) => return Ok(status.into_http()),
                Err(ReadError::Unframed(e)) => {
                    let code = match e {
                        framing::Unframed::TooLarge { .. } => ErrorCode::PayloadTooLarge,
                        _ => ErrorCode::InvalidArgument,
                    };
                    let refused = grpc.refuse_undecodable(rpc.name(), &md, code, e.to_string());
                    return Ok(refused.await);
                }
            };
            Ok(rpc.call(&grpc, md, extensions, message).await)
        })
    }
}

/// A request that names a `grpc-encoding` other than `identity`: this service accepts none, and
/// says so as tonic does (`UNIMPLEMENTED`, with `grpc-accept-encoding: identity`).
fn unsupported_encoding(md: &MetadataMap) -> Option<Status> {
    let encoding = md.get("grpc-encoding")?;
    if encoding.as_encoded_bytes() == b"identity" {
        return None;
    }
    let mut status = Status::unimplemented(format!(
        "Content is compressed with `{}` which isn't supported",
        String::from_utf8_lossy(encoding.as_encoded_bytes())
    ));
    status.metadata_mut().insert(
        "grpc-accept-encoding",
        tonic::metadata::MetadataValue::from_static("identity"),
    );
    Some(status)
}

/// A handler's answer on the wire: the message frame and `grpc-status: 0` trailers, its
/// metadata as headers; a refusal as a trailers-only response.
fn respond<T: prost::Message>(answer: Result<Response<T>, Status>) -> http::Response<Body> {
    let (metadata, message, extensions) = match answer {
        Ok(response) => response.into_parts(),
        Err(status) => return status.into_http(),
    };
    let frame = match framing::frame(&message) {
        Ok(frame) => frame,
        Err(status) => return status.into_http(),
    };
    let mut response = http::Response::new(Body::new(UnaryBody::new(frame)));
    *response.headers_mut() = metadata.into_headers();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        tonic::metadata::GRPC_CONTENT_TYPE,
    );
    *response.extensions_mut() = extensions;
    response
}

/// The RPCs of the service: each one's name on the wire (its path's last segment, and the
/// operation its audit lines name) and its handler.
macro_rules! rpcs {
    ($($name:ident => $handler:ident),* $(,)?) => {
        /// An RPC of `kms.v1.KeyManagementService`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Rpc {
            $($name),*
        }

        impl Rpc {
            /// Every RPC of the service.
            #[cfg(test)]
            const ALL: &[Rpc] = &[$(Rpc::$name),*];

            /// The RPC a request path names.
            fn from_path(path: &str) -> Option<Self> {
                let method = path.strip_prefix('/')?.strip_prefix(SERVICE_NAME)?.strip_prefix('/')?;
                match method {
                    $(stringify!($name) => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// The RPC's name, as its audit lines give the operation.
            fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name)),*
                }
            }

            /// Decodes `message` as the RPC's request and answers it; a message that does not
            /// decode is refused and audited.
            async fn call(
                self,
                grpc: &KmsGrpc,
                md: MetadataMap,
                extensions: http::Extensions,
                message: Bytes,
            ) -> http::Response<Body> {
                // One await per arm, and the refusal's after the match: a local held across
                // several awaits would get its own bytes in the future, once per RPC.
                let undecodable = match self {
                    $(Self::$name => match prost::Message::decode(message) {
                        Ok(m) => {
                            let answer = grpc.$handler(Request::from_parts(md, extensions, m));
                            return respond(answer.await);
                        }
                        Err(e) => e.to_string(),
                    },)*
                };
                let code = ErrorCode::InvalidArgument;
                grpc.refuse_undecodable(self.name(), &md, code, undecodable).await
            }
        }
    };
}

rpcs!(
    CreateKey => create_key,
    DescribeKey => describe_key,
    EnableKey => enable_key,
    DisableKey => disable_key,
    ScheduleKeyDeletion => schedule_key_deletion,
    CancelKeyDeletion => cancel_key_deletion,
    ListKeys => list_keys,
    RotateKey => rotate_key,
    GetDefaultKey => get_default_key,
    GenerateDataKey => generate_data_key,
    GenerateDataKeyWithoutPlaintext => generate_data_key_without_plaintext,
    Encrypt => encrypt,
    Decrypt => decrypt,
    ReEncrypt => re_encrypt,
    UpdateKeyAlias => update_key_alias,
    UpdateKeyDescription => update_key_description,
    EnableKeyRotation => enable_key_rotation,
    DisableKeyRotation => disable_key_rotation,
    UpdateKeyRotationInterval => update_key_rotation_interval,
    GetKeyRotationStatus => get_key_rotation_status,
    GenerateRandom => generate_random,
);

impl KmsGrpc {
    /// Audits a request whose body is not one decodable message and answers it with `code`.
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

    /// The RPCs this service answers are the ones the proto declares, by the same names.
    #[test]
    fn every_rpc_of_the_proto_has_a_path() {
        let set = <prost_types::FileDescriptorSet as prost::Message>::decode(
            kms_proto::FILE_DESCRIPTOR_SET,
        )
        .expect("the descriptor set decodes");
        let service = set
            .file
            .iter()
            .filter(|f| f.package() == "kms.v1")
            .flat_map(|f| &f.service)
            .find(|s| s.name() == "KeyManagementService")
            .expect("the service is declared");
        let declared: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let served: Vec<&str> = Rpc::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(served, declared);
        for rpc in Rpc::ALL {
            let path = format!("/{SERVICE_NAME}/{}", rpc.name());
            assert_eq!(Rpc::from_path(&path), Some(*rpc), "{path}");
        }
    }

    #[test]
    fn other_paths_name_no_rpc() {
        for path in [
            "",
            "/kms.v1.KeyManagementService/",
            "/kms.v1.KeyManagementService/Nope",
            "/kms.v1.KeyManagementService/encrypt",
            "/kms.admin.v1.Admin/AddFault",
            "/other.Service/Encrypt",
        ] {
            assert_eq!(Rpc::from_path(path), None, "{path}");
        }
    }
}
