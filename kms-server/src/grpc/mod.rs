//! The gRPC edge: `kms.v1.KeyManagementService` as thin handlers over the [`Keyring`]. Each one
//! authenticates the call, hands the request's fields to the keyring, audits the outcome and
//! converts the answer; the rules are all in the keyring. Other front-ends (REST, admin) sit beside
//! this one the same way.

mod convert;
mod framing;
pub(crate) mod service;

use std::future::Future;
use std::sync::Arc;

use kms_proto::ErrorCode;
use kms_proto::metadata::REQUEST_ID;
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_server::KeyManagementService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Response, Status};

use crate::audit::{AuditLine, AuditLog};
use crate::auth::Authenticator;
use crate::blob::BlobHeader;
use crate::caught::caught;
use crate::error::{KmsError, Result};
use crate::faults::{Faults, Operation, Outcome, named_key};
use crate::keyring::{Caller, Keyring, now_ms};
use crate::store::KeyRecord;

pub(crate) use convert::timestamp;
pub use convert::{metadata, rotation_status};
pub(crate) use service::undecodable;
pub use service::{
    AdminRpc, AdminService, GrpcService, KmsRpc, KmsService, RefusesUndecodable, RpcTable,
};

/// The `kms.v1.KeyManagementService` implementation.
#[derive(Debug, Clone)]
pub struct KmsGrpc {
    keyring: Arc<Keyring>,
    auth: Arc<Authenticator>,
    audit: AuditLog,
    faults: Arc<Faults>,
}

/// What a handler carries from authentication to the audit entry.
#[derive(Clone)]
struct Call {
    op: &'static str,
    request_id: String,
    /// Who is calling, once authenticated.
    caller: Option<Caller>,
    /// The key as the request named it, for the audit entry of a refused call.
    requested_key: String,
    /// What a fault rule injected, for the audit entry.
    injected: Option<String>,
}

impl Call {
    /// The call's audit line, naming `key_id`.
    fn line<'a>(&'a self, key_id: &'a str, outcome: &'static str) -> AuditLine<'a> {
        AuditLine {
            time_ms: now_ms(),
            domain: self.caller.as_ref().map_or("", |c| c.domain.as_str()),
            region: self.caller.as_ref().map_or("", |c| c.region.as_str()),
            operation: self.op,
            key_id,
            outcome,
            request_id: &self.request_id,
            injected: self.injected.as_deref(),
        }
    }

    /// The call's audit line, naming the key as the request named it.
    fn refused_line(&self, outcome: &'static str) -> AuditLine<'_> {
        self.line(&self.requested_key, outcome)
    }
}

/// A handler that panicked, refused (and audited) as the keyring's internal error.
fn panicked<T>() -> Result<T> {
    Err(KmsError::Internal("the call's handler panicked".into()))
}

/// A handler's answer and the key its audit entry names.
struct Answer<T> {
    response: T,
    audit_key: AuditKey<T>,
    /// The call changed a key's lifecycle: its audit line is on disk before the reply.
    durable: bool,
}

/// The key an answer's audit line names (full form; empty for none).
enum AuditKey<T> {
    Text(String),
    /// The response's own field, already rendered for the caller.
    InResponse(fn(&T) -> &str),
}

impl<T> Answer<T> {
    fn new(response: T, key: &KeyRecord) -> Self {
        Self::with_key(response, AuditKey::Text(key.full_id_string()))
    }

    /// An answer about no key.
    fn keyless(response: T) -> Self {
        Self::with_key(response, AuditKey::Text(String::new()))
    }

    /// An answer whose audit line names the key in the response's field `key_id`.
    fn naming(response: T, key_id: fn(&T) -> &str) -> Self {
        Self::with_key(response, AuditKey::InResponse(key_id))
    }

    fn with_key(response: T, audit_key: AuditKey<T>) -> Self {
        Self {
            response,
            audit_key,
            durable: false,
        }
    }

    /// The key its audit line names.
    fn audit_key(&self) -> &str {
        match &self.audit_key {
            AuditKey::Text(s) => s,
            AuditKey::InResponse(field) => field(&self.response),
        }
    }
}

/// The calls that change a key's lifecycle, whose audit line is durable before the reply
/// (GetDefaultKey too when it created the key).
fn changes_lifecycle(op: &str) -> bool {
    matches!(
        op,
        "CreateKey"
            | "EnableKey"
            | "DisableKey"
            | "ScheduleKeyDeletion"
            | "CancelKeyDeletion"
            | "RotateKey"
            | "UpdateKeyAlias"
            | "UpdateKeyDescription"
            | "EnableKeyRotation"
            | "DisableKeyRotation"
            | "UpdateKeyRotationInterval"
    )
}

/// The message of a call refused because the audit log cannot be written.
const AUDIT_UNAVAILABLE: &str =
    "the audit log cannot be written; calls are refused until it can (--audit-failure=refuse)";

/// The key a request names, as given (empty when it names none).
trait NamesKey {
    fn key_named(&self) -> &str;

    /// The key fault rules match the call by: the one it names, else the one its ciphertext
    /// blob names.
    fn fault_key(&self) -> Option<uuid::Uuid> {
        named_key(self.key_named())
    }
}

impl NamesKey for pb::DecryptRequest {
    fn key_named(&self) -> &str {
        &self.key_id
    }

    fn fault_key(&self) -> Option<uuid::Uuid> {
        named_key(&self.key_id).or_else(|| {
            BlobHeader::parse(&self.ciphertext_blob)
                .ok()
                .map(|h| h.key_uuid)
        })
    }
}

impl NamesKey for pb::ReEncryptRequest {
    fn key_named(&self) -> &str {
        &self.destination_key_id
    }
}

macro_rules! names_key {
    ($($t:ident => $f:ident),* ; $($none:ident),*) => {
        $(impl NamesKey for pb::$t { fn key_named(&self) -> &str { &self.$f } })*
        $(impl NamesKey for pb::$none { fn key_named(&self) -> &str { "" } })*
    };
}

names_key!(
    DescribeKeyRequest => key_id, EnableKeyRequest => key_id, DisableKeyRequest => key_id,
    ScheduleKeyDeletionRequest => key_id, CancelKeyDeletionRequest => key_id,
    RotateKeyRequest => key_id, GenerateDataKeyRequest => key_id, EncryptRequest => key_id,
    UpdateKeyAliasRequest => key_id, UpdateKeyDescriptionRequest => key_id,
    EnableKeyRotationRequest => key_id, DisableKeyRotationRequest => key_id,
    UpdateKeyRotationIntervalRequest => key_id, GetKeyRotationStatusRequest => key_id;
    CreateKeyRequest, ListKeysRequest, GetDefaultKeyRequest, GenerateRandomRequest
);

type RpcResult<T> = std::result::Result<Response<T>, Status>;

/// What `#[async_trait]` makes of an RPC method's `async fn`, written out for the data-path
/// methods: they box [`KmsGrpc::rpc`]'s future itself, where an `async fn` would box a future
/// holding the request twice (as its argument and inside the awaited call), past the size that
/// the allocator serves from its per-thread cache.
type BoxedRpc<'a, T> = std::pin::Pin<Box<dyn Future<Output = RpcResult<T>> + Send + 'a>>;

impl KmsGrpc {
    /// Wires the keyring, the caller identification and the audit log together.
    pub fn new(keyring: Arc<Keyring>, auth: Arc<Authenticator>, audit: AuditLog) -> Self {
        Self {
            keyring,
            auth,
            faults: Arc::new(Faults::new(0, tokio_util::sync::CancellationToken::new())),
            audit,
        }
    }

    /// The service with `faults` injected into its calls.
    #[must_use]
    pub fn with_faults(mut self, faults: Arc<Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// One RPC: authenticate, run `handle` on the keyring, audit, convert.
    ///
    /// The future captures its arguments in an async block: an async fn would also keep a moved
    /// copy of the request beside them.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn's future holds the request twice"
    )]
    fn rpc<Req, Resp, Fut>(
        &self,
        op: &'static str,
        req: Request<Req>,
        handle: impl FnOnce(Arc<Keyring>, Caller, Req) -> Fut,
    ) -> impl Future<Output = RpcResult<Resp>>
    where
        Req: NamesKey,
        Fut: Future<Output = Result<Answer<Resp>>>,
    {
        async move {
            let (request_id, caller) = self.auth.identify(req.metadata());
            let mut call = Call {
                op,
                request_id,
                caller: None,
                requested_key: crate::audit::requested_key_prefix(req.get_ref().key_named())
                    .to_owned(),
                injected: None,
            };
            // The paths that refuse, inject a fault or wait for the disk are boxed: their state
            // would otherwise enlarge every call's future, which is moved (copied) several times.
            let caller = match caller {
                Ok(caller) => caller,
                Err(e) => return Err(Box::pin(self.refuse(call, e)).await),
            };
            call.caller = Some(caller.clone());
            if self.audit.refusing() {
                return Err(Box::pin(self.refuse_unaudited(call)).await);
            }
            if self.faults.active()
                && let Err(status) = Box::pin(self.inject(&mut call, &caller, req.get_ref())).await
            {
                return Err(status);
            }
            let handled = handle(Arc::clone(&self.keyring), caller, req.into_inner());
            let answer = match caught("grpc", handled, panicked).await {
                Ok(a) => a,
                Err(e) => return Err(Box::pin(self.refuse(call, e)).await),
            };
            let line = call.line(answer.audit_key(), "ok");
            if answer.durable {
                if Box::pin(self.audit.record_durable(line)).await.is_err() {
                    // The change is in the store and its line is kept to be written once the log can
                    // be, but the call is not acknowledged.
                    return Err(Box::pin(self.refuse_unaudited(call)).await);
                }
            } else {
                self.audit.record(line).await;
            }
            let mut r = Response::new(answer.response);
            if let Some(v) = request_id_value(std::mem::take(&mut call.request_id)) {
                r.metadata_mut().insert(REQUEST_ID, v);
            }
            Ok(r)
        }
    }

    /// Applies the fault rule that matches the call, if any: its delay, then its failure or hang
    /// (audited here, `Err`), or nothing more (`Ok`, the call runs).
    async fn inject(
        &self,
        call: &mut Call,
        caller: &Caller,
        req: &impl NamesKey,
    ) -> std::result::Result<(), Status> {
        let Ok(operation) = call.op.parse::<Operation>() else {
            return Ok(());
        };
        let Some(injected) = self.faults.intercept(operation, caller, req.fault_key()) else {
            return Ok(());
        };
        if !injected.delay.is_zero() {
            tokio::time::sleep(injected.delay).await;
        }
        call.injected = Some(injected.note);
        match injected.outcome {
            None => Ok(()),
            Some(Outcome::Fail { code, message }) => {
                let status = with_request_id(code.status(message), &call.request_id);
                self.audit.record(call.refused_line(code.as_str())).await;
                Err(status)
            }
            Some(Outcome::Hang) => {
                // Its line now: the caller's deadline drops the call without a word.
                self.audit.record(call.refused_line("hang")).await;
                self.faults.hang().await;
                Err(with_request_id(
                    ErrorCode::ServiceUnavailable.status("the daemon is stopping"),
                    &call.request_id,
                ))
            }
        }
    }

    /// A management RPC whose answer is the key's metadata.
    fn metadata_rpc<Req, Resp, Fut>(
        &self,
        op: &'static str,
        req: Request<Req>,
        handle: impl FnOnce(Arc<Keyring>, Caller, Req) -> Fut,
        answer: fn(Option<pb::KeyMetadata>) -> Resp,
    ) -> impl Future<Output = RpcResult<Resp>>
    where
        Req: NamesKey,
        Fut: Future<Output = Result<Arc<KeyRecord>>>,
    {
        let started_ms = self.keyring.clock().now_ms();
        self.rpc(op, req, move |keyring, caller, m| async move {
            let key = handle(keyring, caller, m).await?;
            let mut a = Answer::new(answer(Some(metadata(&key))), &key);
            a.durable =
                changes_lifecycle(op) || (op == "GetDefaultKey" && key.created_at_ms >= started_ms);
            Ok(a)
        })
    }

    /// Logs, audits and converts a refused call.
    async fn refuse(&self, call: Call, e: KmsError) -> Status {
        if e.is_internal() {
            tracing::error!(op = call.op, request_id = %call.request_id, error = %e, "internal error");
        } else {
            tracing::debug!(op = call.op, request_id = %call.request_id, error = %e, "request refused");
        }
        let outcome = e.code().as_str();
        let status = with_request_id(Status::from(e), &call.request_id);
        self.audit.record(call.refused_line(outcome)).await;
        status
    }

    /// Refuses a call because the audit log cannot be written (`--audit-failure=refuse`). Its line
    /// is queued like any refusal's, and written if the log recovers before the lines kept in
    /// memory overflow.
    async fn refuse_unaudited(&self, call: Call) -> Status {
        let code = ErrorCode::NotServing;
        tracing::debug!(op = call.op, request_id = %call.request_id, "refused: the audit log cannot be written");
        let status = with_request_id(code.status(AUDIT_UNAVAILABLE), &call.request_id);
        self.audit.record(call.refused_line(code.as_str())).await;
        status
    }
}

/// `status` with the request ID in its metadata.
fn with_request_id(mut s: Status, request_id: &str) -> Status {
    if let Some(v) = request_id_value(request_id.to_owned()) {
        s.metadata_mut().insert(REQUEST_ID, v);
    }
    s
}

/// The request ID as response metadata, marked sensitive so that HPACK never indexes it: a value
/// unique to each response would only churn the connection's header table. The value takes over
/// `id`'s buffer (no copy, and no allocation when `id` has no spare capacity).
fn request_id_value(id: String) -> Option<MetadataValue<Ascii>> {
    let mut v = MetadataValue::<Ascii>::try_from(tonic::codegen::Bytes::from(id)).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[tonic::async_trait]
impl KeyManagementService for KmsGrpc {
    async fn create_key(
        &self,
        req: Request<pb::CreateKeyRequest>,
    ) -> RpcResult<pb::CreateKeyResponse> {
        self.metadata_rpc(
            "CreateKey",
            req,
            |k, c, m| async move { k.create_key(&c, &m.alias, &m.description).await },
            |metadata| pb::CreateKeyResponse { metadata },
        )
        .await
    }

    async fn describe_key(
        &self,
        req: Request<pb::DescribeKeyRequest>,
    ) -> RpcResult<pb::DescribeKeyResponse> {
        self.metadata_rpc(
            "DescribeKey",
            req,
            |k, c, m| async move { k.find(&c, &m.key_id) },
            |metadata| pb::DescribeKeyResponse { metadata },
        )
        .await
    }

    async fn enable_key(
        &self,
        req: Request<pb::EnableKeyRequest>,
    ) -> RpcResult<pb::EnableKeyResponse> {
        self.metadata_rpc(
            "EnableKey",
            req,
            |k, c, m| async move { k.enable(&c, &m.key_id).await },
            |metadata| pb::EnableKeyResponse { metadata },
        )
        .await
    }

    async fn disable_key(
        &self,
        req: Request<pb::DisableKeyRequest>,
    ) -> RpcResult<pb::DisableKeyResponse> {
        self.metadata_rpc(
            "DisableKey",
            req,
            |k, c, m| async move { k.disable(&c, &m.key_id).await },
            |metadata| pb::DisableKeyResponse { metadata },
        )
        .await
    }

    async fn schedule_key_deletion(
        &self,
        req: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> RpcResult<pb::ScheduleKeyDeletionResponse> {
        self.metadata_rpc(
            "ScheduleKeyDeletion",
            req,
            |k, c, m| async move {
                k.schedule_deletion(&c, &m.key_id, m.pending_window_days)
                    .await
            },
            |metadata| pb::ScheduleKeyDeletionResponse { metadata },
        )
        .await
    }

    async fn cancel_key_deletion(
        &self,
        req: Request<pb::CancelKeyDeletionRequest>,
    ) -> RpcResult<pb::CancelKeyDeletionResponse> {
        self.metadata_rpc(
            "CancelKeyDeletion",
            req,
            |k, c, m| async move { k.cancel_deletion(&c, &m.key_id).await },
            |metadata| pb::CancelKeyDeletionResponse { metadata },
        )
        .await
    }

    async fn rotate_key(
        &self,
        req: Request<pb::RotateKeyRequest>,
    ) -> RpcResult<pb::RotateKeyResponse> {
        self.metadata_rpc(
            "RotateKey",
            req,
            |k, c, m| async move { k.rotate(&c, &m.key_id).await },
            |metadata| pb::RotateKeyResponse { metadata },
        )
        .await
    }

    fn get_default_key<'life0, 'async_trait>(
        &'life0 self,
        req: Request<pb::GetDefaultKeyRequest>,
    ) -> BoxedRpc<'async_trait, pb::GetDefaultKeyResponse>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.metadata_rpc(
            "GetDefaultKey",
            req,
            |k, c, m| async move { k.default_key(&c, &m.service).await },
            |metadata| pb::GetDefaultKeyResponse { metadata },
        ))
    }

    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> RpcResult<pb::ListKeysResponse> {
        self.rpc("ListKeys", req, |k, c, m| async move {
            let page = k.list(&c, m.page_size, &m.page_token)?;
            Ok(Answer::keyless(pb::ListKeysResponse {
                keys: page.keys.iter().map(|k| metadata(k)).collect(),
                next_page_token: page.next_page_token,
            }))
        })
        .await
    }

    fn generate_data_key<'life0, 'async_trait>(
        &'life0 self,
        req: Request<pb::GenerateDataKeyRequest>,
    ) -> BoxedRpc<'async_trait, pb::GenerateDataKeyResponse>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.rpc("GenerateDataKey", req, |k, c, m| async move {
            let mut dk =
                k.generate_data_key(&c, &m.key_id, m.number_of_bytes, &m.encryption_context)?;
            let response = pb::GenerateDataKeyResponse {
                key_id: dk.key.full_id_string(),
                // Moved, not copied: the message is the one plaintext copy left (SECURITY.md).
                plaintext: std::mem::take(&mut *dk.plaintext),
                ciphertext_blob: dk.blob,
                key_version: dk.version,
            };
            Ok(Answer::naming(response, |r| &r.key_id))
        }))
    }

    fn generate_data_key_without_plaintext<'life0, 'async_trait>(
        &'life0 self,
        req: Request<pb::GenerateDataKeyRequest>,
    ) -> BoxedRpc<'async_trait, pb::GenerateDataKeyWithoutPlaintextResponse>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.rpc(
            "GenerateDataKeyWithoutPlaintext",
            req,
            |k, c, m| async move {
                let dk = k
                    .generate_data_key(&c, &m.key_id, m.number_of_bytes, &m.encryption_context)
                    .map_err(crate::error::KmsError::without_plaintext)?;
                let response = pb::GenerateDataKeyWithoutPlaintextResponse {
                    key_id: dk.key.full_id_string(),
                    ciphertext_blob: dk.blob,
                    key_version: dk.version,
                };
                Ok(Answer::naming(response, |r| &r.key_id))
            },
        ))
    }

    fn encrypt<'life0, 'async_trait>(
        &'life0 self,
        req: Request<pb::EncryptRequest>,
    ) -> BoxedRpc<'async_trait, pb::EncryptResponse>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.rpc("Encrypt", req, |k, c, m| async move {
            let e = k.encrypt(&c, &m.key_id, &m.plaintext, &m.encryption_context)?;
            let response = pb::EncryptResponse {
                key_id: e.key.full_id_string(),
                ciphertext_blob: e.blob,
                key_version: e.version,
            };
            Ok(Answer::naming(response, |r| &r.key_id))
        }))
    }

    fn decrypt<'life0, 'async_trait>(
        &'life0 self,
        req: Request<pb::DecryptRequest>,
    ) -> BoxedRpc<'async_trait, pb::DecryptResponse>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.rpc("Decrypt", req, |k, c, m| async move {
            let d = k.decrypt(&c, &m.ciphertext_blob, &m.encryption_context, &m.key_id)?;
            let response = pb::DecryptResponse {
                key_id: d.key.full_id_string(),
                plaintext: d.plaintext.to_vec(),
                key_version: d.version,
            };
            Ok(Answer::naming(response, |r| &r.key_id))
        }))
    }

    async fn re_encrypt(
        &self,
        req: Request<pb::ReEncryptRequest>,
    ) -> RpcResult<pb::ReEncryptResponse> {
        self.rpc("ReEncrypt", req, |k, c, m| async move {
            let r = k.re_encrypt(
                &c,
                &m.ciphertext_blob,
                &m.source_encryption_context,
                &m.source_key_id,
                &m.destination_key_id,
                &m.destination_encryption_context,
            )?;
            let response = pb::ReEncryptResponse {
                source_key_id: r.source_key.full_id_string(),
                key_id: r.encrypted.key.full_id_string(),
                ciphertext_blob: r.encrypted.blob,
                key_version: r.encrypted.version,
            };
            Ok(Answer::naming(response, |r| &r.key_id))
        })
        .await
    }

    async fn update_key_alias(
        &self,
        req: Request<pb::UpdateKeyAliasRequest>,
    ) -> RpcResult<pb::UpdateKeyAliasResponse> {
        self.metadata_rpc(
            "UpdateKeyAlias",
            req,
            |k, c, m| async move { k.update_alias(&c, &m.key_id, &m.alias).await },
            |metadata| pb::UpdateKeyAliasResponse { metadata },
        )
        .await
    }

    async fn update_key_description(
        &self,
        req: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> RpcResult<pb::UpdateKeyDescriptionResponse> {
        self.metadata_rpc(
            "UpdateKeyDescription",
            req,
            |k, c, m| async move { k.update_description(&c, &m.key_id, &m.description).await },
            |metadata| pb::UpdateKeyDescriptionResponse { metadata },
        )
        .await
    }

    async fn enable_key_rotation(
        &self,
        req: Request<pb::EnableKeyRotationRequest>,
    ) -> RpcResult<pb::EnableKeyRotationResponse> {
        self.metadata_rpc(
            "EnableKeyRotation",
            req,
            |k, c, m| async move { k.set_rotation(&c, &m.key_id, Some(true), None).await },
            |metadata| pb::EnableKeyRotationResponse { metadata },
        )
        .await
    }

    async fn disable_key_rotation(
        &self,
        req: Request<pb::DisableKeyRotationRequest>,
    ) -> RpcResult<pb::DisableKeyRotationResponse> {
        self.metadata_rpc(
            "DisableKeyRotation",
            req,
            |k, c, m| async move { k.set_rotation(&c, &m.key_id, Some(false), None).await },
            |metadata| pb::DisableKeyRotationResponse { metadata },
        )
        .await
    }

    async fn update_key_rotation_interval(
        &self,
        req: Request<pb::UpdateKeyRotationIntervalRequest>,
    ) -> RpcResult<pb::UpdateKeyRotationIntervalResponse> {
        self.metadata_rpc(
            "UpdateKeyRotationInterval",
            req,
            |k, c, m| async move {
                k.set_rotation(&c, &m.key_id, None, Some(m.rotation_interval_days))
                    .await
            },
            |metadata| pb::UpdateKeyRotationIntervalResponse { metadata },
        )
        .await
    }

    async fn get_key_rotation_status(
        &self,
        req: Request<pb::GetKeyRotationStatusRequest>,
    ) -> RpcResult<pb::GetKeyRotationStatusResponse> {
        self.rpc("GetKeyRotationStatus", req, |k, c, m| async move {
            let key = k.find(&c, &m.key_id)?;
            Ok(Answer::new(rotation_status(&key), &key))
        })
        .await
    }

    async fn generate_random(
        &self,
        req: Request<pb::GenerateRandomRequest>,
    ) -> RpcResult<pb::GenerateRandomResponse> {
        self.rpc("GenerateRandom", req, |k, _c, m| async move {
            let random = k.generate_random(m.number_of_bytes)?;
            Ok(Answer::keyless(pb::GenerateRandomResponse {
                random: random.to_vec(),
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditOptions;
    use crate::crypto::RootKey;
    use crate::store::MemoryStore;
    use kms_proto::v1 as pb;

    async fn panics(
        _: Arc<Keyring>,
        _: Caller,
        _: pb::GenerateRandomRequest,
    ) -> Result<Answer<pb::GenerateRandomResponse>> {
        panic!("a bug in the keyring")
    }

    /// A bug that panics in the keyring's part of a call is refused as `INTERNAL` with
    /// `KMSBOX.0500` and the call's request ID, and audited as every refusal is.
    #[tokio::test]
    async fn a_handler_that_panics_is_refused_as_internal_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = tokio_util::task::TaskTracker::new();
        let log = dir.path().join("audit.jsonl");
        let audit = AuditLog::start(&log, &AuditOptions::default(), &tasks).unwrap();
        let keyring = Keyring::open(Arc::new(MemoryStore::new()), RootKey::from_bytes([7; 32]));
        let auth = Authenticator::trusting(kms_proto::key_id::RegionId::parse("r1").unwrap());
        let grpc = KmsGrpc::new(Arc::new(keyring.unwrap()), Arc::new(auth), audit.clone());
        let mut req = Request::new(pb::GenerateRandomRequest { number_of_bytes: 8 });
        req.metadata_mut()
            .insert("x-kms-domain-id", "alice".parse().unwrap());
        req.metadata_mut()
            .insert(REQUEST_ID, "req-panics".parse().unwrap());
        let refused = grpc.rpc("GenerateRandom", req, panics).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Internal);
        assert_eq!(ErrorCode::of_status(&refused), Some(ErrorCode::Internal));
        assert_eq!(
            refused
                .metadata()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok()),
            Some("req-panics")
        );
        audit.flush().await;
        let lines = std::fs::read_to_string(&log).unwrap();
        let line: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
        assert_eq!(
            (
                &line["operation"],
                &line["outcome"],
                &line["request_id"],
                &line["domain"]
            ),
            (
                &serde_json::json!("GenerateRandom"),
                &serde_json::json!("KMSBOX.0500"),
                &serde_json::json!("req-panics"),
                &serde_json::json!("alice")
            )
        );
        audit.close().await;
    }
}
