//! `kms.v1.KeyManagementService` and `kms.admin.v1.Admin` on the wire: the path names the RPC
//! (one table per service, [`RpcTable`]), the body is read as one message
//! ([`framing`](super::framing)), the service's handler answers, and the answer is framed back. It
//! stands where tonic's generated servers would, and answers as they do (headers, one message,
//! `grpc-status` trailers; a refusal trailers-only; `UNIMPLEMENTED` for an unknown method or a
//! `grpc-encoding` other than `identity`), except where it is stricter:
//! - a request that does not decode (invalid UTF-8 in a string field, a bad varint, a wrong wire
//!   type, no message, a message cut short, a second message, a compressed one) is refused as
//!   `KMS.0308`, and one over the message size limit as `KMSBOX.0413`, with the code in the
//!   `x-kms-error-code` trailer and an audit line like every other refusal (operation from the
//!   path, outcome the code, the caller when its metadata identifies one; an admin caller must
//!   first pass the admin token, else its refusal is that one); tonic answers those with a bare
//!   `INTERNAL` or `OUT_OF_RANGE`, drops a second message, and audits nothing;
//! - request trailers are not merged into the metadata: the tenancy a call is served under comes
//!   from its headers alone.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;

use kms_proto::ErrorCode;
use kms_proto::admin::admin_server::{Admin, SERVICE_NAME as ADMIN_SERVICE};
use kms_proto::v1::key_management_service_server::{KeyManagementService, SERVICE_NAME};
use prost::bytes::Bytes;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::framing::{self, ReadError, UnaryBody};
use super::{KmsGrpc, with_request_id};
use crate::admin::AdminGrpc;
use crate::caught::caught;

/// A service's handlers' answer to a request whose body is not one decodable message.
pub trait RefusesUndecodable: Send + Sync + 'static {
    /// Audits a request to `op` whose body is not one decodable message, and answers it with
    /// `code`.
    fn refuse_undecodable(
        &self,
        op: &'static str,
        md: &MetadataMap,
        code: ErrorCode,
        message: String,
    ) -> impl Future<Output = http::Response<Body>> + Send;
}

/// A gRPC service's RPCs: which one a request path names, and how one is answered.
pub trait RpcTable: Copy + Send + Sync + 'static {
    /// The handlers the RPCs call.
    type Handlers: RefusesUndecodable;
    /// The service's full name (`package.Service`), the first segment of its paths.
    const SERVICE: &'static str;

    /// The RPC a path's method segment names.
    fn from_method(method: &str) -> Option<Self>;

    /// The RPC's name on the wire, its path's last segment.
    fn name(self) -> &'static str;

    /// The operation its audit lines name (the admin API's are `Admin.<name>`).
    fn operation(self) -> &'static str;

    /// Decodes `message` as the RPC's request and answers it; a message that does not decode is
    /// refused and audited.
    fn call(
        self,
        handlers: &Self::Handlers,
        md: MetadataMap,
        extensions: http::Extensions,
        message: Bytes,
    ) -> impl Future<Output = http::Response<Body>> + Send;

    /// The RPC a request path names.
    fn from_path(path: &str) -> Option<Self> {
        let method = path
            .strip_prefix('/')?
            .strip_prefix(Self::SERVICE)?
            .strip_prefix('/')?;
        Self::from_method(method)
    }
}

/// A gRPC service over its RPC table's handlers.
pub struct GrpcService<R: RpcTable> {
    handlers: Arc<R::Handlers>,
    max_message_size: usize,
    rpcs: PhantomData<fn() -> R>,
}

/// The `kms.v1.KeyManagementService` server over [`KmsGrpc`]'s handlers.
pub type KmsService = GrpcService<KmsRpc>;

/// The `kms.admin.v1.Admin` server over [`AdminGrpc`]'s handlers.
pub type AdminService = GrpcService<AdminRpc>;

impl<R: RpcTable> GrpcService<R> {
    /// Serves `handlers`, refusing request messages over `max_message_size` bytes.
    pub fn new(handlers: R::Handlers, max_message_size: usize) -> Self {
        Self {
            handlers: Arc::new(handlers),
            max_message_size,
            rpcs: PhantomData,
        }
    }
}

impl<R: RpcTable> Clone for GrpcService<R> {
    fn clone(&self) -> Self {
        Self {
            handlers: Arc::clone(&self.handlers),
            max_message_size: self.max_message_size,
            rpcs: PhantomData,
        }
    }
}

impl<R: RpcTable> std::fmt::Debug for GrpcService<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcService")
            .field("service", &R::SERVICE)
            .field("max_message_size", &self.max_message_size)
            .finish_non_exhaustive()
    }
}

impl<R: RpcTable> NamedService for GrpcService<R> {
    const NAME: &'static str = R::SERVICE;
}

impl<R: RpcTable> Service<http::Request<Body>> for GrpcService<R> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// The call's RPC from the path and its metadata from the headers, then (in the future, which
    /// holds only what the call still needs) its message from the body and the handler's answer.
    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let Some(rpc) = R::from_path(req.uri().path()) else {
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
        let handlers = Arc::clone(&self.handlers);
        let limit = self.max_message_size;
        Box::pin(caught(
            "grpc",
            async move {
                let message = match framing::read_unary(body, limit).await {
                    Ok(message) => message,
                    Err(ReadError::Body(status)) => return Ok(status.into_http()),
                    Err(ReadError::Unframed(e)) => {
                        let code = match e {
                            framing::Unframed::TooLarge { .. } => ErrorCode::PayloadTooLarge,
                            _ => ErrorCode::InvalidArgument,
                        };
                        let op = rpc.operation();
                        let refused = handlers.refuse_undecodable(op, &md, code, e.to_string());
                        return Ok(refused.await);
                    }
                };
                Ok(rpc.call(&handlers, md, extensions, message).await)
            },
            internal,
        ))
    }
}

/// The answer to a call whose handler panicked: `INTERNAL`, with `KMSBOX.0500` in the trailer.
pub(crate) fn internal() -> Result<http::Response<Body>, Infallible> {
    Ok(ErrorCode::Internal.status("internal error").into_http())
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

/// A service's RPC table: each RPC's name on the wire (its path's last segment; the operation its
/// audit lines name is that name after `$audited`) and its handler.
macro_rules! rpcs {
    (
        $(#[$doc:meta])*
        $table:ident: $service:expr, audited as $audited:literal => $handlers:ty {
            $($name:ident => $handler:ident),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $table {
            $(#[doc = concat!("`", stringify!($name), "`")] $name),*
        }

        impl $table {
            /// Every RPC of the service.
            #[cfg(test)]
            const ALL: &[$table] = &[$($table::$name),*];
        }

        impl RpcTable for $table {
            type Handlers = $handlers;
            const SERVICE: &'static str = $service;

            fn from_method(method: &str) -> Option<Self> {
                match method {
                    $(stringify!($name) => Some(Self::$name),)*
                    _ => None,
                }
            }

            fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name)),*
                }
            }

            fn operation(self) -> &'static str {
                match self {
                    $(Self::$name => concat!($audited, stringify!($name))),*
                }
            }

            async fn call(
                self,
                handlers: &$handlers,
                md: MetadataMap,
                extensions: http::Extensions,
                message: Bytes,
            ) -> http::Response<Body> {
                // One await per arm, and the refusal's after the match: a local held across
                // several awaits would get its own bytes in the future, once per RPC.
                let undecodable = match self {
                    $(Self::$name => match prost::Message::decode(message) {
                        Ok(m) => {
                            let answer = handlers.$handler(Request::from_parts(md, extensions, m));
                            return respond(answer.await);
                        }
                        Err(e) => e.to_string(),
                    },)*
                };
                let code = ErrorCode::InvalidArgument;
                let op = self.operation();
                handlers.refuse_undecodable(op, &md, code, undecodable).await
            }
        }
    };
}

rpcs!(
    /// An RPC of `kms.v1.KeyManagementService`.
    KmsRpc: SERVICE_NAME, audited as "" => KmsGrpc {
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
    }
);

rpcs!(
    /// An RPC of `kms.admin.v1.Admin`.
    AdminRpc: ADMIN_SERVICE, audited as "Admin." => AdminGrpc {
        AddFault => add_fault,
        ListFaults => list_faults,
        RemoveFault => remove_fault,
        GetClock => get_clock,
        AdvanceClock => advance_clock,
        SetClock => set_clock,
        ExportSeed => export_seed,
    }
);

/// The refusal of a request whose body is not one decodable message, with `code`.
pub(crate) fn undecodable(code: ErrorCode, why: &str) -> Status {
    code.status(format!("the request message does not decode: {why}"))
}

impl RefusesUndecodable for KmsGrpc {
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
        let status = undecodable(code, &message);
        with_request_id(status, &call.request_id).into_http()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `R`'s RPCs, by name, in the proto's order.
    fn served<R: RpcTable>(all: &[R]) -> Vec<&'static str> {
        all.iter().map(|r| r.name()).collect()
    }

    /// The RPCs service `service` of package `package` declares, in order.
    fn declared(package: &str, service: &str) -> Vec<String> {
        let set = <prost_types::FileDescriptorSet as prost::Message>::decode(
            kms_proto::FILE_DESCRIPTOR_SET,
        )
        .expect("the descriptor set decodes");
        set.file
            .iter()
            .filter(|f| f.package() == package)
            .flat_map(|f| &f.service)
            .find(|s| s.name() == service)
            .expect("the service is declared")
            .method
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    }

    fn every_path_names_its_rpc<R: RpcTable + std::fmt::Debug + PartialEq>(all: &[R]) {
        for rpc in all {
            let path = format!("/{}/{}", R::SERVICE, rpc.name());
            assert_eq!(R::from_path(&path), Some(*rpc), "{path}");
        }
    }

    /// The RPCs each service answers are the ones the proto declares, by the same names.
    #[test]
    fn every_rpc_of_the_proto_has_a_path() {
        assert_eq!(
            served(KmsRpc::ALL),
            declared("kms.v1", "KeyManagementService")
        );
        assert_eq!(KmsRpc::SERVICE, "kms.v1.KeyManagementService");
        every_path_names_its_rpc(KmsRpc::ALL);
        assert_eq!(served(AdminRpc::ALL), declared("kms.admin.v1", "Admin"));
        assert_eq!(AdminRpc::SERVICE, "kms.admin.v1.Admin");
        every_path_names_its_rpc(AdminRpc::ALL);
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
            assert_eq!(KmsRpc::from_path(path), None, "{path}");
        }
        for path in [
            "/kms.admin.v1.Admin/",
            "/kms.admin.v1.Admin/addFault",
            "/kms.v1.KeyManagementService/CreateKey",
            "/kms.admin.v1.AdminX/AddFault",
        ] {
            assert_eq!(AdminRpc::from_path(path), None, "{path}");
        }
    }
}
