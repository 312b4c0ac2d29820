//! The daemon's typed errors, and their one mapping to gRPC status codes.

use kms_proto::key_id::KeyIdError;
use kms_proto::metadata::ERROR_CODE;
use tonic::{Code, Status};

/// Everything a KMS call can fail with. Each variant has a stable code (see [`KmsError::code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// A key ID that does not follow the key-ID grammar.
    #[error(transparent)]
    MalformedKeyId(#[from] KeyIdError),
    /// No such key in the caller's domain and region. A foreign tenant's key gets this same error.
    #[error("key {0} not found")]
    KeyNotFound(String),
    /// The key is disabled.
    #[error("key {0} is disabled")]
    KeyDisabled(String),
    /// The key is scheduled for deletion.
    #[error("key {0} is pending deletion")]
    KeyPendingDeletion(String),
    /// `pending_window_days` outside 7..=1096.
    #[error("pending_window_days {0} is out of range: it must be 7 to 1096")]
    DeletionWindowOutOfRange(u32),
    /// Default keys cannot be disabled, scheduled for deletion or rotated.
    #[error("key {key} is a default key and cannot be {action}")]
    DefaultKeyImmutable {
        /// The key.
        key: String,
        /// What was attempted, in words.
        action: &'static str,
    },
    /// The key is not in a state that allows the call (for example cancelling a deletion that was
    /// never scheduled).
    #[error("key {key} is {state}: {why}")]
    WrongKeyState {
        /// The key.
        key: String,
        /// Its current state.
        state: &'static str,
        /// Why the call needs another state.
        why: &'static str,
    },
    /// The alias is taken in this domain and region.
    #[error("alias {0:?} already exists")]
    AliasExists(String),
    /// A request field is out of range or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A payload over its size limit.
    #[error("{field} is {len} bytes, more than the limit of {max}")]
    PayloadTooLarge {
        /// The request field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The ciphertext blob could not be parsed.
    #[error("invalid ciphertext blob: {0}")]
    MalformedCiphertext(&'static str),
    /// The ciphertext blob failed authentication.
    #[error(
        "ciphertext blob failed authentication: wrong encryption context, or the blob was tampered with"
    )]
    CiphertextAuthFailed,
    /// The `key_id` given to Decrypt or ReEncrypt is not the key the blob was encrypted under.
    #[error("key_id {given} does not match the key the ciphertext blob was encrypted under")]
    KeyIdMismatch {
        /// The key ID given in the request.
        given: String,
    },
    /// No credentials, or credentials that match no tenant.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// The credentials are valid but do not allow the call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A storage failure.
    #[error("key store error: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Anything else that should never happen; the message holds no secret.
    #[error("internal error: {0}")]
    Internal(String),
}

impl KmsError {
    /// The stable error code sent in the `x-kms-error-code` trailer: Huawei KMS's code where one
    /// exists, else a `KMSBOX.` code of our own.
    pub fn code(&self) -> &'static str {
        match self {
            KmsError::MalformedKeyId(_) => "KMS.0205",
            KmsError::KeyNotFound(_) => "KMS.0207",
            KmsError::KeyDisabled(_) => "KMS.0209",
            KmsError::KeyPendingDeletion(_) => "KMS.0210",
            KmsError::DefaultKeyImmutable { .. } => "KMS.0211",
            KmsError::DeletionWindowOutOfRange(_) => "KMS.1401",
            KmsError::WrongKeyState { .. } => "KMSBOX.0409",
            KmsError::AliasExists(_) => "KMSBOX.0410",
            KmsError::InvalidArgument { .. } => "KMSBOX.0400",
            KmsError::PayloadTooLarge { .. } => "KMSBOX.0413",
            KmsError::MalformedCiphertext(_) => "KMSBOX.0420",
            KmsError::CiphertextAuthFailed => "KMSBOX.0421",
            KmsError::KeyIdMismatch { .. } => "KMSBOX.0422",
            KmsError::Unauthenticated(_) => "KMSBOX.0401",
            KmsError::PermissionDenied(_) => "KMSBOX.0403",
            KmsError::Store(_) | KmsError::Internal(_) => "KMSBOX.0500",
        }
    }

    /// The gRPC status code.
    pub fn grpc_code(&self) -> Code {
        match self {
            KmsError::MalformedKeyId(_)
            | KmsError::DeletionWindowOutOfRange(_)
            | KmsError::InvalidArgument { .. }
            | KmsError::PayloadTooLarge { .. }
            | KmsError::MalformedCiphertext(_)
            | KmsError::CiphertextAuthFailed
            | KmsError::KeyIdMismatch { .. } => Code::InvalidArgument,
            KmsError::KeyNotFound(_) => Code::NotFound,
            KmsError::KeyDisabled(_)
            | KmsError::KeyPendingDeletion(_)
            | KmsError::DefaultKeyImmutable { .. }
            | KmsError::WrongKeyState { .. } => Code::FailedPrecondition,
            KmsError::AliasExists(_) => Code::AlreadyExists,
            KmsError::Unauthenticated(_) => Code::Unauthenticated,
            KmsError::PermissionDenied(_) => Code::PermissionDenied,
            KmsError::Store(_) | KmsError::Internal(_) => Code::Internal,
        }
    }
}

impl From<KmsError> for Status {
    fn from(e: KmsError) -> Status {
        let mut status = Status::new(e.grpc_code(), e.to_string());
        status.metadata_mut().insert(
            ERROR_CODE,
            tonic::metadata::MetadataValue::from_static(e.code()),
        );
        status
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = KmsError> = std::result::Result<T, E>;
