//! The adapter: for each request, the encryption decision and the response headers, or a refusal.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue};
use kms_proto::key_id::{FullKeyId, KeyRef};

use crate::default_encryption::DefaultEncryption;
use crate::error::AdapterError;
use crate::facts::{BucketFacts, Encryption, StoredObject};
use crate::kms::{
    DataKey, EncryptionContext, KeyCreator, KeyInfo, KeyScope, KeyService, KeyState, OBS_SERVICE,
    SecretBytes,
};
use crate::policy::{BucketPolicy, PolicyRequest, PolicyVerdict};
use crate::sse_headers::{self, RequestedSse};
use crate::vocab::{COPY_SOURCE_HEADER, Caller, Operation, SSE_HEADER, SSE_KEY_ID_HEADER, SSE_KMS};

/// Which keys SSE-KMS may name (rule 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyPolicy {
    /// The seed's rule: only keys created by OBS (such as the OBS default key). The default.
    #[default]
    ServiceKeysOnly,
    /// Also keys created by customers with `CreateKey`. Keys of other services stay refused.
    AllowCustomerKeys,
}

/// The adapter's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterConfig {
    /// Which keys SSE-KMS may name.
    pub key_policy: KeyPolicy,
}

/// One request, as the storage engine hands it to the adapter.
#[derive(Debug, Clone)]
pub struct ObsRequest<'a> {
    /// The operation.
    pub operation: Operation,
    /// The authenticated caller.
    pub caller: &'a Caller,
    /// The bucket (for a copy: the target bucket).
    pub bucket: &'a BucketFacts,
    /// The object key (for a copy: the target key).
    pub object_key: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The POST form fields (PostObject only), name and value.
    pub form_fields: &'a [(String, String)],
    /// The decoded query parameters, name and value (presigned URLs).
    pub query: &'a [(String, String)],
    /// The stored object's facts: the object (GetObject, HeadObject), the copy source (CopyObject) or
    /// the multipart upload (UploadPart, CompleteMultipartUpload). Ignored by the other operations.
    pub stored: Option<&'a StoredObject>,
}

impl<'a> ObsRequest<'a> {
    /// A request without form fields, query parameters or stored object.
    pub fn new(
        operation: Operation,
        caller: &'a Caller,
        bucket: &'a BucketFacts,
        object_key: &'a str,
        headers: &'a HeaderMap,
    ) -> Self {
        Self {
            operation,
            caller,
            bucket,
            object_key,
            headers,
            form_fields: &[],
            query: &[],
            stored: None,
        }
    }

    /// Sets the POST form fields.
    pub fn with_form_fields(mut self, form_fields: &'a [(String, String)]) -> Self {
        self.form_fields = form_fields;
        self
    }

    /// Sets the query parameters.
    pub fn with_query(mut self, query: &'a [(String, String)]) -> Self {
        self.query = query;
        self
    }

    /// Sets the stored object's facts.
    pub fn with_stored(mut self, stored: &'a StoredObject) -> Self {
        self.stored = Some(stored);
        self
    }
}

/// What the engine must do for an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// How to store (writes) or read (GetObject, HeadObject) the object. For UploadPart and
    /// CompleteMultipartUpload: the upload's encryption.
    pub encryption: Encryption,
    /// For CopyObject: how to read the source.
    pub source_encryption: Option<Encryption>,
    /// Headers to add to the successful response (rule 10).
    pub response_headers: HeaderMap,
    /// The bucket policy's verdict (never Deny: a Deny is refused). `NoMatch` leaves the decision to
    /// the bucket ACL, which the engine evaluates.
    pub policy: PolicyVerdict,
}

/// The encryption context the adapter binds data keys to: the bucket and the object key.
pub fn encryption_context(bucket: &str, object_key: &str) -> EncryptionContext {
    BTreeMap::from([
        ("obs:bucket".to_owned(), bucket.to_owned()),
        ("obs:object".to_owned(), object_key.to_owned()),
    ])
}

/// The response headers of rule 10 for an encryption.
pub fn response_headers(encryption: &Encryption) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Encryption::Kms { key_id } = encryption {
        h.insert(SSE_HEADER, HeaderValue::from_static(SSE_KMS));
        // A FullKeyId prints only [a-z0-9-:/A-Za-z]: always a valid header value.
        if let Ok(v) = HeaderValue::from_str(&key_id.to_string()) {
            h.insert(SSE_KEY_ID_HEADER, v);
        }
    }
    h
}

/// The OBS SSE-KMS adapter over a key service.
#[derive(Debug, Clone)]
pub struct ObsAdapter<K> {
    kms: K,
    config: AdapterConfig,
}

impl<K: KeyService> ObsAdapter<K> {
    /// An adapter with the default settings (service-created keys only).
    pub fn new(kms: K) -> Self {
        Self::with_config(kms, AdapterConfig::default())
    }

    /// An adapter with explicit settings.
    pub fn with_config(kms: K, config: AdapterConfig) -> Self {
        Self { kms, config }
    }

    /// The key service.
    pub fn key_service(&self) -> &K {
        &self.kms
    }

    /// The settings.
    pub fn config(&self) -> &AdapterConfig {
        &self.config
    }

    /// Decides a request: the order is (1) where SSE parameters may appear and their syntax,
    /// (2) the bucket policy, (3) cross-tenant checks, (4) the keys: region, tenant, existence,
    /// state and creator. Nothing is asked of the KMS before (1) to (3) pass.
    pub async fn decide(&self, req: &ObsRequest<'_>) -> Result<Decision, AdapterError> {
        let op = req.operation;
        let raw = sse_headers::read_raw(op, req.headers, req.form_fields, req.query)?;
        let requested = sse_headers::validate(&raw)?;
        if op == Operation::CopyObject && req.headers.get(COPY_SOURCE_HEADER).is_none() {
            return Err(AdapterError::MissingCopySource);
        }
        let stored = stored_for(op, req.stored)?;
        // Rule 7: the bucket default applies to uploads without encryption parameters; an SSE-C
        // upload is not one, and the adapter does not provide SSE-C.
        if let (Some(name), RequestedSse::None, DefaultEncryption::Kms { .. }) =
            (raw.sse_c, &requested, &req.bucket.default_encryption)
            && takes_bucket_default(op, stored)
        {
            return Err(AdapterError::SseCustomerWithKmsDefault { name });
        }

        // Rule 8: the policy reads the request. Parts and completions cannot carry SSE parameters,
        // and a later append need not: for them the context is the upload's (or the appendable
        // object's) encryption, checked against the policy when the upload or object was begun.
        let context = match (op, stored) {
            (
                Operation::UploadPart
                | Operation::CompleteMultipartUpload
                | Operation::AppendObject,
                Some(upload),
            ) => {
                let mut ctx = BTreeMap::new();
                if let Encryption::Kms { key_id } = &upload.encryption {
                    ctx.insert(SSE_HEADER.to_owned(), SSE_KMS.to_owned());
                    ctx.insert(SSE_KEY_ID_HEADER.to_owned(), key_id.to_string());
                }
                ctx
            }
            _ => raw.condition_context(),
        };
        let policy = match &req.bucket.policy {
            None => PolicyVerdict::NoMatch,
            Some(p) => p.evaluate(&PolicyRequest {
                domain: &req.caller.domain,
                user: req.caller.user.as_deref(),
                region: &req.bucket.region,
                action: op.policy_action(),
                object_key: req.object_key,
                context: &context,
            }),
        };
        if let PolicyVerdict::Deny { sid } = policy {
            return Err(AdapterError::PolicyDenied { sid });
        }
        // A public policy under `RestrictPublicBuckets` opens the bucket to no other tenant, by
        // any of its statements (its Deny statements still hold, above).
        let restricted = req.bucket.restrict_public_buckets
            && req
                .bucket
                .policy
                .as_ref()
                .is_some_and(BucketPolicy::is_public)
            && req.caller.domain != req.bucket.owner;
        let policy = if restricted {
            PolicyVerdict::NoMatch
        } else {
            policy
        };

        let scope = KeyScope::new(req.caller.domain.clone(), req.bucket.region.clone());
        let (encryption, source_encryption) = match (op, stored) {
            // Reads, parts and completions: the stored object's (or upload's) encryption.
            (_, Some(object)) if op != Operation::CopyObject => {
                check_owned(req.caller, object)?;
                if op == Operation::AppendObject {
                    check_inherited(&scope, &requested, &object.encryption)?;
                }
                // HEAD returns metadata only and does not ask the KMS.
                if op != Operation::HeadObject {
                    self.check_stored_key(&scope, &object.encryption).await?;
                }
                (object.encryption.clone(), None)
            }
            // Writes: the request's parameters, else the bucket default (rule 7).
            _ => {
                let wanted = match requested {
                    RequestedSse::Kms { key } => Some(key),
                    RequestedSse::None => match &req.bucket.default_encryption {
                        DefaultEncryption::Kms { key } => Some(key.clone()),
                        DefaultEncryption::None => None,
                    },
                };
                // Rule 9: the copy source must be the caller's, and no SSE-KMS object goes into
                // another tenant's bucket.
                if let Some(source) = stored {
                    check_owned(req.caller, source)?;
                }
                if wanted.is_some() && req.caller.domain != req.bucket.owner {
                    return Err(AdapterError::CrossTenant);
                }
                if let Some(source) = stored {
                    self.check_stored_key(&scope, &source.encryption).await?;
                }
                let encryption = match wanted {
                    None => Encryption::Plaintext,
                    Some(key) => {
                        let info = match key {
                            Some(key) => self.named_key(&scope, &key).await?,
                            None => self.default_key(&scope).await?,
                        };
                        Encryption::Kms {
                            key_id: info.key_id,
                        }
                    }
                };
                (encryption, stored.map(|s| s.encryption.clone()))
            }
        };
        Ok(Decision {
            response_headers: response_headers(&encryption),
            encryption,
            source_encryption,
            policy,
        })
    }

    /// Rule 5 for stored objects: the key they were stored under must still be usable.
    async fn check_stored_key(
        &self,
        scope: &KeyScope,
        encryption: &Encryption,
    ) -> Result<(), AdapterError> {
        if let Encryption::Kms { key_id } = encryption {
            // A copy source may live in another region: ask in the key's own region.
            let scope = KeyScope::new(scope.domain.clone(), key_id.region.clone());
            let info = self
                .kms
                .describe_key(&scope, &KeyRef::Full(key_id.clone()))
                .await?;
            check_state(&info)?;
        }
        Ok(())
    }

    /// Rules 2, 4 and 5 for a key the request (or the bucket default) names.
    async fn named_key(&self, scope: &KeyScope, key: &KeyRef) -> Result<KeyInfo, AdapterError> {
        // Rule 2: a bare UUID is in the scope, and the caller's own domain ID in any case is the
        // caller's domain.
        let full = scope.canonical(key);
        // Another tenant's key: refused exactly as an unknown key, without asking the KMS.
        if full.domain != scope.domain {
            return Err(AdapterError::KeyNotFound {
                key: full.to_string(),
            });
        }
        if full.region != scope.region {
            return Err(AdapterError::KeyRegionMismatch {
                key: full.to_string(),
                key_region: full.region.to_string(),
                bucket_region: scope.region.to_string(),
            });
        }
        let info = self
            .kms
            .describe_key(scope, &KeyRef::Full(full.clone()))
            .await
            .map_err(|e| match AdapterError::from(e) {
                // Name the key as the request did, whatever the KMS message says.
                AdapterError::KeyNotFound { .. } => AdapterError::KeyNotFound {
                    key: full.to_string(),
                },
                other => other,
            })?;
        self.check_info(&full, &info)?;
        Ok(info)
    }

    /// Rule 3: the caller's OBS default key in the bucket's region, created on first use.
    async fn default_key(&self, scope: &KeyScope) -> Result<KeyInfo, AdapterError> {
        let info = self.kms.get_default_key(scope, OBS_SERVICE).await?;
        if info.key_id.domain != scope.domain || info.key_id.region != scope.region {
            return Err(AdapterError::Internal(format!(
                "the KMS answered the default key {} for another tenancy",
                info.key_id
            )));
        }
        let full = info.key_id.clone();
        self.check_info(&full, &info)?;
        Ok(info)
    }

    fn check_info(&self, asked: &FullKeyId, info: &KeyInfo) -> Result<(), AdapterError> {
        if info.key_id != *asked {
            return Err(AdapterError::Internal(format!(
                "the KMS described {} when asked for {asked}",
                info.key_id
            )));
        }
        check_state(info)?;
        match (info.creator, self.config.key_policy) {
            (KeyCreator::Service, _) if info.service == OBS_SERVICE => Ok(()),
            (KeyCreator::Service, _) => Err(AdapterError::ForeignServiceKey {
                key: info.key_id.to_string(),
                service: info.service.clone(),
            }),
            (KeyCreator::Customer, KeyPolicy::AllowCustomerKeys) => Ok(()),
            (KeyCreator::Customer, KeyPolicy::ServiceKeysOnly) => {
                Err(AdapterError::CustomerKeyNotAllowed {
                    key: info.key_id.to_string(),
                })
            }
        }
    }

    /// A fresh data key for an object the decision encrypts with SSE-KMS, bound to the bucket and
    /// object key ([`encryption_context`]). `Ok(None)` for plaintext.
    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        bucket: &BucketFacts,
        object_key: &str,
        encryption: &Encryption,
    ) -> Result<Option<DataKey>, AdapterError> {
        let Encryption::Kms { key_id } = encryption else {
            return Ok(None);
        };
        let scope = KeyScope::new(caller.domain.clone(), bucket.region.clone());
        let dk = self
            .kms
            .generate_data_key(
                &scope,
                key_id,
                &encryption_context(&bucket.name, object_key),
            )
            .await?;
        Ok(Some(dk))
    }

    /// Decrypts a stored data key of an SSE-KMS object, refusing other tenants (rule 9).
    pub async fn decrypt_data_key(
        &self,
        caller: &Caller,
        bucket: &BucketFacts,
        object_key: &str,
        object: &StoredObject,
        ciphertext_blob: &[u8],
    ) -> Result<SecretBytes, AdapterError> {
        check_owned(caller, object)?;
        let Encryption::Kms { key_id } = &object.encryption else {
            return Err(AdapterError::Internal(
                "decrypt_data_key called for a plaintext object".into(),
            ));
        };
        let scope = KeyScope::new(caller.domain.clone(), key_id.region.clone());
        Ok(self
            .kms
            .decrypt(
                &scope,
                key_id,
                ciphertext_blob,
                &encryption_context(&bucket.name, object_key),
            )
            .await?)
    }
}

/// Whether the operation writes a new object that the bucket default encryption applies to
/// (an append only when it creates the object: `stored` is `None`).
fn takes_bucket_default(op: Operation, stored: Option<&StoredObject>) -> bool {
    match op {
        Operation::PutObject
        | Operation::PostObject
        | Operation::CopyObject
        | Operation::InitiateMultipartUpload => true,
        Operation::AppendObject => stored.is_none(),
        Operation::UploadPart
        | Operation::CompleteMultipartUpload
        | Operation::GetObject
        | Operation::HeadObject => false,
    }
}

/// A later append inherits its object's encryption: SSE parameters given again must describe it
/// (`kms` for an SSE-KMS object, and a key ID, if given, naming the object's key). Stricter than
/// ignoring them: an append that asks for another key or for none is told that it does not get
/// what it asked for.
fn check_inherited(
    scope: &KeyScope,
    requested: &RequestedSse,
    stored: &Encryption,
) -> Result<(), AdapterError> {
    let agrees = match (requested, stored) {
        (RequestedSse::None, _) => true,
        (RequestedSse::Kms { .. }, Encryption::Plaintext) => false,
        (RequestedSse::Kms { key: None }, Encryption::Kms { .. }) => true,
        (RequestedSse::Kms { key: Some(key) }, Encryption::Kms { key_id }) => {
            scope.canonical(key) == *key_id
        }
    };
    if agrees {
        return Ok(());
    }
    Err(AdapterError::AppendEncryptionMismatch {
        stored: match stored {
            Encryption::Plaintext => "no server-side encryption".to_owned(),
            Encryption::Kms { key_id } => format!("SSE-KMS under {key_id}"),
        },
    })
}

/// The stored object an operation needs (`None` for uploads that start a new object).
fn stored_for(
    op: Operation,
    stored: Option<&StoredObject>,
) -> Result<Option<&StoredObject>, AdapterError> {
    let what = match op {
        Operation::PutObject | Operation::PostObject | Operation::InitiateMultipartUpload => {
            return Ok(None);
        }
        // Given when the append extends an object, absent when it creates one.
        Operation::AppendObject => return Ok(stored),
        Operation::CopyObject => "copy source",
        Operation::UploadPart | Operation::CompleteMultipartUpload => "multipart upload",
        Operation::GetObject | Operation::HeadObject => "object",
    };
    stored.map(Some).ok_or(AdapterError::MissingStoredObject {
        operation: op,
        what,
    })
}

/// Rule 9: an SSE-KMS object is accessible only to its owner, under the owner's own key.
fn check_owned(caller: &Caller, object: &StoredObject) -> Result<(), AdapterError> {
    match &object.encryption {
        Encryption::Plaintext => Ok(()),
        Encryption::Kms { key_id } => {
            if object.owner == caller.domain && key_id.domain == caller.domain {
                Ok(())
            } else {
                Err(AdapterError::CrossTenant)
            }
        }
    }
}

fn check_state(info: &KeyInfo) -> Result<(), AdapterError> {
    let key = info.key_id.to_string();
    match info.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(AdapterError::KeyDisabled { key }),
        KeyState::PendingDeletion => Err(AdapterError::KeyPendingDeletion { key }),
    }
}
