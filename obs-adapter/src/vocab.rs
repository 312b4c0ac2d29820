//! The adapter's vocabulary: the operations it decides on, who calls, and the names of the SSE
//! parameters. A leaf module: it uses nothing else of the crate, so that every other module may
//! use it without a cycle.

use std::fmt;

use kms_proto::key_id::{DomainId, FullKeyId, KeyRef, RegionId};

/// The header (form field, query parameter) that selects SSE-KMS: `x-obs-server-side-encryption: kms`.
pub const SSE_HEADER: &str = "x-obs-server-side-encryption";
/// The header (form field, query parameter) that names the CMK.
pub const SSE_KEY_ID_HEADER: &str = "x-obs-server-side-encryption-kms-key-id";
/// The header that names a copy's source object.
pub const COPY_SOURCE_HEADER: &str = "x-obs-copy-source";
/// The only value of [`SSE_HEADER`] that the adapter accepts.
pub const SSE_KMS: &str = "kms";

/// The SSE-C (customer-provided key) headers, which cannot be combined with SSE-KMS.
pub const SSE_C_HEADERS: [&str; 3] = [
    "x-obs-server-side-encryption-customer-algorithm",
    "x-obs-server-side-encryption-customer-key",
    "x-obs-server-side-encryption-customer-key-md5",
];

/// The OBS operations the adapter decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `PUT /object`: SSE parameters in headers (or, for presigned URLs, in the query string).
    PutObject,
    /// `POST /` form upload: SSE parameters as form fields, never as headers.
    PostObject,
    /// `PUT /object` with `x-obs-copy-source`: SSE parameters apply to the target; the source is
    /// decrypted with its own key.
    CopyObject,
    /// `POST /object?uploads`: SSE parameters as for `PutObject`; parts and completion inherit them.
    InitiateMultipartUpload,
    /// `PUT /object?partNumber=..&uploadId=..`: no SSE parameters allowed; inherits the upload's key.
    UploadPart,
    /// `POST /object?uploadId=..`: no SSE parameters allowed; inherits the upload's key.
    CompleteMultipartUpload,
    /// `POST /object?append&position=..` (OBS's AppendObject): the first append creates the
    /// object and takes SSE parameters as `PutObject` does; a later append inherits the object's
    /// encryption, and SSE parameters given again must describe it.
    AppendObject,
    /// `GET /object`.
    GetObject,
    /// `HEAD /object`.
    HeadObject,
}

impl Operation {
    /// The bucket-policy action the operation is authorized as (`PutObject` or `GetObject`).
    pub fn policy_action(self) -> &'static str {
        match self {
            Operation::PutObject
            | Operation::PostObject
            | Operation::CopyObject
            | Operation::InitiateMultipartUpload
            | Operation::UploadPart
            | Operation::CompleteMultipartUpload
            | Operation::AppendObject => "PutObject",
            Operation::GetObject | Operation::HeadObject => "GetObject",
        }
    }

    /// The operation's name as in the OBS API reference.
    pub fn name(self) -> &'static str {
        match self {
            Operation::PutObject => "PutObject",
            Operation::PostObject => "PostObject",
            Operation::CopyObject => "CopyObject",
            Operation::InitiateMultipartUpload => "InitiateMultipartUpload",
            Operation::UploadPart => "UploadPart",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AppendObject => "AppendObject",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's domain (tenant account) ID.
    pub domain: DomainId,
    /// The caller's IAM user ID within the domain, when known (matched by policy principals of the
    /// form `domain/<domainID>:user/<userID>`).
    pub user: Option<String>,
}

impl Caller {
    /// A caller known only by domain.
    pub fn new(domain: DomainId) -> Self {
        Self { domain, user: None }
    }

    /// Adds the caller's user ID.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
}

/// The one canonical full key ID that `key` names for a caller of `domain` in `region`: a bare
/// UUID is placed in `domain` and `region`; hex digits are lower case (the parser's output); and a
/// domain ID that equals `domain` without regard to ASCII case is written as `domain` (rule 2: the
/// key-ID grammar accepts upper-case letters in domain IDs, but a tenant's domain ID names one
/// tenant however it is cased). Every spelling of one key has the same canonical form; a key of
/// another domain keeps its own domain.
pub fn canonical_key_id(key: &KeyRef, domain: &DomainId, region: &RegionId) -> FullKeyId {
    match key {
        KeyRef::Bare(uuid) => FullKeyId::new(region.clone(), domain.clone(), *uuid),
        KeyRef::Full(full)
            if full.domain != *domain
                && full.domain.as_str().eq_ignore_ascii_case(domain.as_str()) =>
        {
            FullKeyId::new(full.region.clone(), domain.clone(), full.uuid)
        }
        KeyRef::Full(full) => full.clone(),
    }
}
