//! The gRPC edge: thin handlers that authenticate, call the key service, audit, and convert.

use std::sync::Arc;

use kms_proto::metadata::REQUEST_ID;
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_server::KeyManagementService;
use tonic::{Request, Response, Status};

use crate::audit::{AuditLog, AuditRecord};
use crate::error::{KmsError, Result};
use crate::service::{KeyService, full_id, now_ms};
use crate::store::{Creator, KeyRecord, KeyState};
use crate::tenancy::{Caller, Tenancy, request_id};

/// The `kms.v1.KeyManagementService` implementation.
#[derive(Debug, Clone)]
pub struct KmsGrpc {
    svc: Arc<KeyService>,
    tenancy: Arc<Tenancy>,
    audit: AuditLog,
}

/// What a handler carries from [`KmsGrpc::begin`] to [`KmsGrpc::finish`].
struct Call {
    op: &'static str,
    request_id: String,
    domain: String,
    region: String,
    /// The key as the request named it, for the audit entry of a refused call.
    requested_key: String,
}

/// The key a request names, as given (empty when it names none).
trait NamesKey {
    fn key_named(&self) -> &str;
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
    DecryptRequest => key_id, ReEncryptRequest => destination_key_id;
    CreateKeyRequest, ListKeysRequest, GetDefaultKeyRequest
);

/// At most this many characters of a requested key ID go into the audit log.
const AUDIT_KEY_CHARS: usize = 256;

impl KmsGrpc {
    /// Wires the service, the caller identification and the audit log together.
    pub fn new(svc: Arc<KeyService>, tenancy: Arc<Tenancy>, audit: AuditLog) -> Self {
        Self {
            svc,
            tenancy,
            audit,
        }
    }

    async fn begin<T: NamesKey>(
        &self,
        op: &'static str,
        req: &Request<T>,
    ) -> Result<(Caller, Call), Status> {
        let mut call = Call {
            op,
            request_id: request_id(req.metadata()),
            domain: String::new(),
            region: String::new(),
            requested_key: req
                .get_ref()
                .key_named()
                .chars()
                .take(AUDIT_KEY_CHARS)
                .collect(),
        };
        match self.tenancy.authenticate(req.metadata()) {
            Ok(caller) => {
                call.domain = caller.domain.to_string();
                call.region = caller.region.to_string();
                Ok((caller, call))
            }
            Err(e) => Err(self.refuse(call, e).await),
        }
    }

    async fn finish<T>(
        &self,
        call: Call,
        result: Result<(T, String)>,
    ) -> Result<Response<T>, Status> {
        let (resp, key_id) = match result {
            Ok(ok) => ok,
            Err(e) => return Err(self.refuse(call, e).await),
        };
        let rid = request_id_value(&call.request_id);
        self.audit(call, key_id, "ok").await;
        let mut r = Response::new(resp);
        if let Some(v) = rid {
            r.metadata_mut().insert(REQUEST_ID, v);
        }
        Ok(r)
    }

    /// Logs, audits and converts a refused call.
    async fn refuse(&self, mut call: Call, e: KmsError) -> Status {
        if matches!(e, KmsError::Store(_) | KmsError::Internal(_)) {
            tracing::error!(op = call.op, request_id = %call.request_id, error = %e, "internal error");
        } else {
            tracing::debug!(op = call.op, request_id = %call.request_id, error = %e, "request refused");
        }
        let rid = request_id_value(&call.request_id);
        let key = std::mem::take(&mut call.requested_key);
        self.audit(call, key, e.code()).await;
        let mut s = Status::from(e);
        if let Some(v) = rid {
            s.metadata_mut().insert(REQUEST_ID, v);
        }
        s
    }

    async fn audit(&self, call: Call, key_id: String, outcome: &'static str) {
        self.audit
            .record(AuditRecord {
                time_ms: now_ms(),
                domain: call.domain,
                region: call.region,
                operation: call.op,
                key_id,
                outcome,
                request_id: call.request_id,
            })
            .await;
    }
}

/// The request ID as response metadata, marked sensitive so that HPACK never indexes it: a value
/// unique to each response would only churn the connection's header table.
fn request_id_value(id: &str) -> Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    let mut v: tonic::metadata::MetadataValue<tonic::metadata::Ascii> = id.parse().ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// A key's metadata as the API returns it.
pub fn metadata(rec: &KeyRecord) -> pb::KeyMetadata {
    pb::KeyMetadata {
        key_id: full_id(rec),
        region: rec.region.clone(),
        domain_id: rec.domain.clone(),
        alias: rec.alias.clone(),
        description: rec.description.clone(),
        state: match rec.state {
            KeyState::Enabled => pb::KeyState::Enabled,
            KeyState::Disabled => pb::KeyState::Disabled,
            KeyState::PendingDeletion => pb::KeyState::PendingDeletion,
        } as i32,
        creator: match rec.creator {
            Creator::Customer => pb::KeyCreator::Customer,
            Creator::Service => pb::KeyCreator::Service,
        } as i32,
        created_at: Some(timestamp(rec.created_at_ms)),
        deletion_date: rec.deletion_date_ms.map(timestamp),
        current_version: rec.current_version,
        service: rec.service.clone(),
        key_uuid: rec.uuid.hyphenated().to_string(),
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

fn with_meta(rec: &KeyRecord) -> (Option<pb::KeyMetadata>, String) {
    (Some(metadata(rec)), full_id(rec))
}

/// A management RPC whose answer is the key's metadata: authenticate, call the service, audit.
///
/// It spells out the signature that `#[tonic::async_trait]` gives the trait's methods, because that
/// attribute does not look inside macro invocations.
macro_rules! metadata_rpc {
    ($name:ident, $op:literal, $req:ident => $resp:ident, |$svc:ident, $caller:ident, $m:ident| $call:expr) => {
        fn $name<'life0, 'async_trait>(
            &'life0 self,
            req: Request<pb::$req>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = Result<Response<pb::$resp>, Status>>
                    + Send
                    + 'async_trait,
            >,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                let ($caller, call) = self.begin($op, &req).await?;
                let ($svc, $m) = (&self.svc, req.into_inner());
                let r = $call.map(|k| {
                    let (metadata, id) = with_meta(&k);
                    (pb::$resp { metadata }, id)
                });
                self.finish(call, r).await
            })
        }
    };
}

impl KmsGrpc {
    /// GenerateDataKey and GenerateDataKeyWithoutPlaintext share everything but the answer.
    async fn data_key<T>(
        &self,
        op: &'static str,
        req: Request<pb::GenerateDataKeyRequest>,
        answer: impl FnOnce(crate::service::DataKey, String) -> T,
    ) -> Result<Response<T>, Status> {
        let (caller, call) = self.begin(op, &req).await?;
        let m = req.get_ref();
        let r = self
            .svc
            .generate_data_key(&caller, &m.key_id, m.number_of_bytes, &m.encryption_context)
            .map(|dk| {
                let id = full_id(&dk.key);
                (answer(dk, id.clone()), id)
            });
        self.finish(call, r).await
    }
}

#[tonic::async_trait]
impl KeyManagementService for KmsGrpc {
    metadata_rpc!(create_key, "CreateKey", CreateKeyRequest => CreateKeyResponse,
        |svc, caller, m| svc.create_key(&caller, &m.alias, &m.description).await);
    metadata_rpc!(describe_key, "DescribeKey", DescribeKeyRequest => DescribeKeyResponse,
        |svc, caller, m| svc.find(&caller, &m.key_id));
    metadata_rpc!(enable_key, "EnableKey", EnableKeyRequest => EnableKeyResponse,
        |svc, caller, m| svc.enable(&caller, &m.key_id).await);
    metadata_rpc!(disable_key, "DisableKey", DisableKeyRequest => DisableKeyResponse,
        |svc, caller, m| svc.disable(&caller, &m.key_id).await);
    metadata_rpc!(schedule_key_deletion, "ScheduleKeyDeletion",
        ScheduleKeyDeletionRequest => ScheduleKeyDeletionResponse,
        |svc, caller, m| svc.schedule_deletion(&caller, &m.key_id, m.pending_window_days).await);
    metadata_rpc!(cancel_key_deletion, "CancelKeyDeletion",
        CancelKeyDeletionRequest => CancelKeyDeletionResponse,
        |svc, caller, m| svc.cancel_deletion(&caller, &m.key_id).await);
    metadata_rpc!(rotate_key, "RotateKey", RotateKeyRequest => RotateKeyResponse,
        |svc, caller, m| svc.rotate(&caller, &m.key_id).await);
    metadata_rpc!(get_default_key, "GetDefaultKey", GetDefaultKeyRequest => GetDefaultKeyResponse,
        |svc, caller, m| svc.default_key(&caller, &m.service).await);

    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let (caller, call) = self.begin("ListKeys", &req).await?;
        let m = req.get_ref();
        let r = self
            .svc
            .list(&caller, m.page_size, &m.page_token)
            .map(|(keys, next)| {
                let resp = pb::ListKeysResponse {
                    keys: keys.iter().map(|k| metadata(k)).collect(),
                    next_page_token: next,
                };
                (resp, String::new())
            });
        self.finish(call, r).await
    }

    async fn generate_data_key(
        &self,
        req: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        self.data_key("GenerateDataKey", req, |dk, key_id| {
            pb::GenerateDataKeyResponse {
                key_id,
                plaintext: dk.plaintext.to_vec(),
                ciphertext_blob: dk.blob,
                key_version: dk.version,
            }
        })
        .await
    }

    async fn generate_data_key_without_plaintext(
        &self,
        req: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyWithoutPlaintextResponse>, Status> {
        self.data_key("GenerateDataKeyWithoutPlaintext", req, |dk, key_id| {
            pb::GenerateDataKeyWithoutPlaintextResponse {
                key_id,
                ciphertext_blob: dk.blob,
                key_version: dk.version,
            }
        })
        .await
    }

    async fn encrypt(
        &self,
        req: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        let (caller, call) = self.begin("Encrypt", &req).await?;
        let m = req.get_ref();
        let r = self
            .svc
            .encrypt(&caller, &m.key_id, &m.plaintext, &m.encryption_context)
            .map(|(key, version, blob)| {
                let id = full_id(&key);
                let resp = pb::EncryptResponse {
                    key_id: id.clone(),
                    ciphertext_blob: blob,
                    key_version: version,
                };
                (resp, id)
            });
        self.finish(call, r).await
    }

    async fn decrypt(
        &self,
        req: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, Status> {
        let (caller, call) = self.begin("Decrypt", &req).await?;
        let m = req.get_ref();
        let r = self
            .svc
            .decrypt(
                &caller,
                &m.ciphertext_blob,
                &m.encryption_context,
                &m.key_id,
            )
            .map(|d| {
                let id = full_id(&d.key);
                let resp = pb::DecryptResponse {
                    key_id: id.clone(),
                    plaintext: d.plaintext.to_vec(),
                    key_version: d.version,
                };
                (resp, id)
            });
        self.finish(call, r).await
    }

    async fn re_encrypt(
        &self,
        req: Request<pb::ReEncryptRequest>,
    ) -> Result<Response<pb::ReEncryptResponse>, Status> {
        let (caller, call) = self.begin("ReEncrypt", &req).await?;
        let m = req.get_ref();
        let r = self
            .svc
            .re_encrypt(
                &caller,
                &m.ciphertext_blob,
                &m.source_encryption_context,
                &m.source_key_id,
                &m.destination_key_id,
                &m.destination_encryption_context,
            )
            .map(|(source, dest, version, blob)| {
                let id = full_id(&dest);
                let resp = pb::ReEncryptResponse {
                    source_key_id: full_id(&source.key),
                    key_id: id.clone(),
                    ciphertext_blob: blob,
                    key_version: version,
                };
                (resp, id)
            });
        self.finish(call, r).await
    }
}
