//! The KMS as the adapter sees it: an async trait, the key facts it returns, and its typed errors.
//!
//! Two implementations ship with the crate: [`grpc::GrpcKeyService`] over the kmsbox daemon's gRPC
//! API, and (with the `test-support` feature) `fake::FakeKeyService`, an in-memory stand-in for
//! tests.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use kms_proto::key_id::{DomainId, FullKeyId, KeyRef, RegionId};
use zeroize::Zeroizing;

#[cfg(feature = "test-support")]
pub mod fake;
pub mod grpc;

/// The OBS service name under which default keys are requested (`GetDefaultKey(service = "obs")`).
pub const OBS_SERVICE: &str = "obs";

/// The scope a KMS call is made in: the caller's domain (tenant) and the region (the bucket's
/// region, or for a stored object its key's region). Keys are visible only in their own scope.
///
/// This is the adapter's typed view (parsed [`DomainId`] and [`RegionId`]); on the wire
/// [`grpc::GrpcKeyService`] turns it into a [`kms_proto::Tenancy`] (the metadata carrier, with the
/// bearer token), see [`KeyScope::tenancy`]. The two are distinct types with distinct names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    /// The caller's domain ID, sent as `x-kms-domain-id`.
    pub domain: DomainId,
    /// The region ID, sent as `x-kms-region`.
    pub region: RegionId,
}

impl KeyScope {
    /// Builds a scope from its parts.
    pub fn new(domain: DomainId, region: RegionId) -> Self {
        Self { domain, region }
    }

    /// The canonical full key ID that `key` names in this scope (see
    /// [`crate::vocab::canonical_key_id`]).
    pub fn canonical(&self, key: &KeyRef) -> FullKeyId {
        crate::vocab::canonical_key_id(key, &self.domain, &self.region)
    }

    /// The wire tenancy of a call in this scope: `x-kms-domain-id` and `x-kms-region`.
    pub fn tenancy(&self) -> Result<kms_proto::Tenancy, kms_proto::tenancy::TenancyError> {
        kms_proto::Tenancy::for_domain(self.domain.as_str())?.with_region(self.region.as_str())
    }
}

/// A key's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// Disabled: cannot encrypt or decrypt until enabled again.
    Disabled,
    /// Scheduled for deletion: unusable.
    PendingDeletion,
}

/// Who created a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCreator {
    /// A customer, with `CreateKey`.
    Customer,
    /// A cloud service, such as OBS's default key from `GetDefaultKey`.
    Service,
}

/// What the adapter needs to know about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The full key ID `regionID:domainID:key/<uuid>`.
    pub key_id: FullKeyId,
    /// Its state.
    pub state: KeyState,
    /// Who created it.
    pub creator: KeyCreator,
    /// For service-created keys, the owning service (such as `obs`); empty for customer keys.
    pub service: String,
}

/// An encryption context: authenticated with a data key, and required again to decrypt it.
pub type EncryptionContext = BTreeMap<String, String>;

/// Secret bytes that are wiped when dropped and never printed.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The number of secret bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no secret bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes, redacted)", self.0.len())
    }
}

/// A fresh data key: in plaintext (to encrypt the object) and encrypted under the CMK (to store).
#[derive(Debug)]
pub struct DataKey {
    /// The full ID of the CMK that encrypted the data key.
    pub key_id: FullKeyId,
    /// The plaintext data key.
    pub plaintext: SecretBytes,
    /// The data key encrypted under the CMK; store it with the object.
    pub ciphertext_blob: Vec<u8>,
    /// The CMK version used.
    pub key_version: u32,
}

/// Why a KMS call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyServiceError {
    /// The key ID is malformed (daemon code `KMS.0205`).
    #[error("malformed key ID: {0}")]
    MalformedKeyId(String),
    /// No such key for this tenant, or a key of another tenant (daemon code `KMS.0207`).
    #[error("key {0} not found")]
    NotFound(String),
    /// The key is disabled (daemon code `KMS.0209`).
    #[error("key {0} is disabled")]
    Disabled(String),
    /// The key is pending deletion (daemon code `KMS.0210`).
    #[error("key {0} is pending deletion")]
    PendingDeletion(String),
    /// The KMS refused the caller's credentials or permissions.
    #[error("KMS access denied: {0}")]
    AccessDenied(String),
    /// The KMS refused a request argument (for example a wrong encryption context).
    #[error("KMS refused the request: {0}")]
    InvalidRequest(String),
    /// The KMS could not be reached or timed out.
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("KMS internal error: {0}")]
    Internal(String),
}

/// The KMS operations the adapter uses.
///
/// Every call is made on behalf of a [`KeyScope`]: the caller's domain and the bucket's region. An
/// implementation must answer a key of another tenant exactly as an unknown key
/// ([`KeyServiceError::NotFound`]).
pub trait KeyService: Send + Sync {
    /// The tenant's default key for `service` in the region, created on first use exactly once.
    fn get_default_key(
        &self,
        scope: &KeyScope,
        service: &str,
    ) -> impl Future<Output = Result<KeyInfo, KeyServiceError>> + Send;

    /// A key's facts. A bare UUID names a key in the scope's domain and region.
    fn describe_key(
        &self,
        scope: &KeyScope,
        key: &KeyRef,
    ) -> impl Future<Output = Result<KeyInfo, KeyServiceError>> + Send;

    /// A fresh 32-byte data key encrypted under `key`, bound to `context`.
    fn generate_data_key(
        &self,
        scope: &KeyScope,
        key: &FullKeyId,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, KeyServiceError>> + Send;

    /// Decrypts a data key that [`KeyService::generate_data_key`] produced under `key` and `context`.
    fn decrypt(
        &self,
        scope: &KeyScope,
        key: &FullKeyId,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<SecretBytes, KeyServiceError>> + Send;
}

impl<T: KeyService> KeyService for std::sync::Arc<T> {
    fn get_default_key(
        &self,
        scope: &KeyScope,
        service: &str,
    ) -> impl Future<Output = Result<KeyInfo, KeyServiceError>> + Send {
        (**self).get_default_key(scope, service)
    }

    fn describe_key(
        &self,
        scope: &KeyScope,
        key: &KeyRef,
    ) -> impl Future<Output = Result<KeyInfo, KeyServiceError>> + Send {
        (**self).describe_key(scope, key)
    }

    fn generate_data_key(
        &self,
        scope: &KeyScope,
        key: &FullKeyId,
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<DataKey, KeyServiceError>> + Send {
        (**self).generate_data_key(scope, key, context)
    }

    fn decrypt(
        &self,
        scope: &KeyScope,
        key: &FullKeyId,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> impl Future<Output = Result<SecretBytes, KeyServiceError>> + Send {
        (**self).decrypt(scope, key, ciphertext_blob, context)
    }
}
