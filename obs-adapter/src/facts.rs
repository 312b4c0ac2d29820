//! What the storage engine tells the adapter: the operation, the caller, the bucket and the stored
//! object's encryption facts.

use kms_proto::key_id::{DomainId, FullKeyId, RegionId};

use crate::default_encryption::DefaultEncryption;
use crate::policy::BucketPolicy;
pub use crate::vocab::{Caller, Operation};

/// The bucket's facts.
#[derive(Debug, Clone)]
pub struct BucketFacts {
    /// The bucket name.
    pub name: String,
    /// The bucket's region: SSE-KMS keys must live here.
    pub region: RegionId,
    /// The domain that owns the bucket.
    pub owner: DomainId,
    /// The bucket's default encryption.
    pub default_encryption: DefaultEncryption,
    /// The bucket policy, validated when it was set ([`BucketPolicy::parse`]).
    pub policy: Option<BucketPolicy>,
    /// The bucket's public access block says `RestrictPublicBuckets`: while its policy is public
    /// ([`BucketPolicy::is_public`]), the policy grants nothing to other tenants (rule 8).
    pub restrict_public_buckets: bool,
}

impl BucketFacts {
    /// A bucket without default encryption or policy.
    pub fn new(name: impl Into<String>, region: RegionId, owner: DomainId) -> Self {
        Self {
            name: name.into(),
            region,
            owner,
            default_encryption: DefaultEncryption::None,
            policy: None,
            restrict_public_buckets: false,
        }
    }

    /// Sets the default encryption.
    pub fn with_default_encryption(mut self, default_encryption: DefaultEncryption) -> Self {
        self.default_encryption = default_encryption;
        self
    }

    /// Sets the bucket policy.
    pub fn with_policy(mut self, policy: BucketPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets `RestrictPublicBuckets` of the bucket's public access block.
    pub fn with_restrict_public_buckets(mut self, restrict: bool) -> Self {
        self.restrict_public_buckets = restrict;
        self
    }
}

/// How a stored object (or multipart upload) is encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Not encrypted by the adapter.
    Plaintext,
    /// SSE-KMS under this CMK.
    Kms {
        /// The full key ID.
        key_id: FullKeyId,
    },
}

impl Encryption {
    /// The CMK, for SSE-KMS.
    pub fn key_id(&self) -> Option<&FullKeyId> {
        match self {
            Encryption::Plaintext => None,
            Encryption::Kms { key_id } => Some(key_id),
        }
    }
}

/// The encryption facts of a stored object: the object a GET or HEAD reads, the source of a copy,
/// or the multipart upload a part or completion belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The domain that owns the object (the uploader's domain).
    pub owner: DomainId,
    /// How it is encrypted.
    pub encryption: Encryption,
}

impl StoredObject {
    /// A plaintext object owned by `owner`.
    pub fn plaintext(owner: DomainId) -> Self {
        Self {
            owner,
            encryption: Encryption::Plaintext,
        }
    }

    /// An SSE-KMS object owned by `owner`.
    pub fn kms(owner: DomainId, key_id: FullKeyId) -> Self {
        Self {
            owner,
            encryption: Encryption::Kms { key_id },
        }
    }
}
