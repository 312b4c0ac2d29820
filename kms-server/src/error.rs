//! The daemon's typed errors: [`KmsError`] for calls, [`ConfigError`] and [`StartupError`] for
//! start-up. A call's error has a stable code ([`ErrorCode`], whose table also holds the
//! gRPC status code of each). The conversion to a gRPC status is at the gRPC edge
//! ([`crate::grpc`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use kms_proto::ErrorCode;
use kms_proto::key_id::KeyIdError;

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
    /// Enabling a key that is already enabled.
    #[error("key {0} is not disabled: only a disabled key can be enabled")]
    NotDisabled(String),
    /// Disabling a key that is already disabled.
    #[error("key {0} is not enabled: only an enabled key can be disabled")]
    NotEnabled(String),
    /// Scheduling the deletion of a key already pending deletion.
    #[error("key {0} is already pending deletion")]
    AlreadyPendingDeletion(String),
    /// Cancelling the deletion of a key that is not pending deletion.
    #[error("key {key} is {state}: only a key pending deletion can have its deletion cancelled")]
    NotPendingDeletion {
        /// The key.
        key: String,
        /// Its current state.
        state: &'static str,
    },
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
    /// The key's current version has sealed as many blobs as random 96-bit nonces allow
    /// (FORMATS.md §1); the key must be rotated before it encrypts again.
    #[error("key version {version} has sealed 2^32 blobs; rotate the key")]
    NoncesExhausted {
        /// The exhausted version.
        version: u32,
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
    /// A request field out of range or malformed that Huawei KMS has a code of its own for
    /// (`KMS.1101` invalid key_alias, `KMS.1601` invalid limit, ...).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Huawei's code for it.
        code: ErrorCode,
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
    /// The key store fails its integrity check under the root key (FORMATS.md §3): a key's record
    /// MAC, the store MAC, or a wrap scheme this daemon does not know. The message names the key
    /// when one key is at fault.
    #[error("key store integrity: {0}")]
    StoreIntegrity(String),
    /// Anything else that should never happen; the message holds no secret.
    #[error("internal error: {0}")]
    Internal(String),
}

impl KmsError {
    /// The stable error code sent in the `x-kms-error-code` trailer: Huawei KMS's code where one
    /// exists, else a `KMSBOX.` code of our own. The code also decides the gRPC status code
    /// ([`ErrorCode::grpc_code`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            KmsError::MalformedKeyId(_) => ErrorCode::MalformedKeyId,
            KmsError::KeyNotFound(_) => ErrorCode::KeyNotFound,
            KmsError::KeyDisabled(_) => ErrorCode::KeyDisabled,
            KmsError::KeyPendingDeletion(_) => ErrorCode::KeyPendingDeletion,
            KmsError::DefaultKeyImmutable { .. } => ErrorCode::DefaultKeyImmutable,
            KmsError::DeletionWindowOutOfRange(_) => ErrorCode::DeletionWindowOutOfRange,
            KmsError::AlreadyPendingDeletion(_) => ErrorCode::KeyAlreadyPendingDeletion,
            KmsError::NotDisabled(_) => ErrorCode::KeyNotDisabled,
            KmsError::NotEnabled(_) => ErrorCode::KeyNotEnabled,
            KmsError::NotPendingDeletion { .. } => ErrorCode::KeyNotPendingDeletion,
            KmsError::WrongKeyState { .. } | KmsError::NoncesExhausted { .. } => {
                ErrorCode::WrongKeyState
            }
            KmsError::AliasExists(_) => ErrorCode::AliasExists,
            KmsError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            KmsError::Invalid { code, .. } => *code,
            KmsError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            KmsError::MalformedCiphertext(_) => ErrorCode::MalformedCiphertext,
            KmsError::CiphertextAuthFailed => ErrorCode::CiphertextAuthFailed,
            KmsError::KeyIdMismatch { .. } => ErrorCode::KeyIdMismatch,
            KmsError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            KmsError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            KmsError::Store(crate::store::StoreError::Unavailable(_)) => ErrorCode::NotServing,
            KmsError::Store(crate::store::StoreError::Stale(_)) => ErrorCode::ConcurrentChange,
            KmsError::Store(_) | KmsError::StoreIntegrity(_) | KmsError::Internal(_) => {
                ErrorCode::Internal
            }
        }
    }

    /// The same refusal as create-datakey-without-plaintext (GenerateDataKeyWithoutPlaintext)
    /// gives it: Huawei has a code of its own for that operation's data key length (`KMS.2001`).
    pub fn without_plaintext(self) -> Self {
        match self {
            KmsError::Invalid {
                code: ErrorCode::InvalidDatakeyLength,
                field,
                reason,
            } => KmsError::Invalid {
                code: ErrorCode::InvalidDatakeyLengthWithoutPlaintext,
                field,
                reason,
            },
            other => other,
        }
    }

    /// Whether this is the daemon's fault (store or internal failure) rather than the caller's.
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::Internal
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = KmsError> = std::result::Result<T, E>;

/// A configuration file that cannot be used: the tenants file, the seed file, the root key file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (or, for the root key, created).
    #[error("{action} {what} {}: {source}", path.display())]
    Io {
        /// `reading` or `creating`.
        action: &'static str,
        /// Which file, in words (`tenants file`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{what} {}: {source}", path.display())]
    Toml {
        /// Which file, in words.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A domain or region ID in the file does not follow the grammar.
    #[error("{what} {}: {source}", path.display())]
    Id {
        /// Which file, in words.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The grammar error.
        #[source]
        source: KeyIdError,
    },
    /// The file breaks a rule of its own (a short token, a clashing seed key, a root key of the
    /// wrong length).
    #[error("{what} {}: {reason}", path.display())]
    Invalid {
        /// Which file, in words.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// A flag's value does not follow its grammar.
    #[error("{flag}: {source}")]
    Flag {
        /// The flag, for example `--region`.
        flag: &'static str,
        /// The grammar error.
        #[source]
        source: KeyIdError,
    },
    /// Without a tenants file only loopback addresses are allowed.
    #[error(
        "refusing to listen on {0} without --tenants: without bearer tokens anyone could claim any domain, so only loopback is allowed"
    )]
    NonLoopbackWithoutTenants(SocketAddr),
    /// A configuration file cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An I/O step of start-up failed (the data folder, the audit log, the listener).
    #[error("{what}: {source}")]
    Io {
        /// The step, in words (`binding --listen`).
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another daemon holds the data folder's lock.
    #[error(
        "data folder {} is in use by another kms-server{}: one daemon per data folder (lock file {})",
        dir.display(),
        pid.as_ref().map(|p| format!(" (PID {p})")).unwrap_or_default(),
        lock.display()
    )]
    DataDirInUse {
        /// The data folder.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// The PID written by the holder, when it could be read.
        pid: Option<String>,
    },
    /// The key database and the root key do not belong together: the database is missing,
    /// emptied or replaced, or the root key is another one.
    #[error("{0}")]
    StoreIdentity(String),
    /// The key store could not be opened.
    #[error("key store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// An offline command (`rotate-root-key`, `add-store-macs`) cannot be carried out, or a root
    /// key rotation cannot be finished.
    #[error("{0}")]
    Admin(String),
    /// The keyring could not be loaded (for example a key version the root key does not unwrap).
    #[error("loading keys: {0}")]
    Keyring(#[from] KmsError),
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A start-up task panicked or was cancelled.
    #[error("start-up task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl StartupError {
    /// An I/O step that failed.
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn a_lost_store_is_0503_and_a_change_met_by_another_daemons_is_0504() {
        let lost = KmsError::Store(StoreError::Unavailable("connection refused".into()));
        assert_eq!(lost.code(), ErrorCode::NotServing);
        assert_eq!(lost.code().as_str(), "KMSBOX.0503");
        assert!(
            lost.to_string()
                .contains("the shared key store cannot be reached"),
            "{lost}"
        );
        let stale = KmsError::Store(StoreError::Stale(uuid::Uuid::nil()));
        assert_eq!(stale.code(), ErrorCode::ConcurrentChange);
        assert_eq!(stale.code().as_str(), "KMSBOX.0504");
        assert!(stale.to_string().contains("changed by another daemon"));
        assert_eq!(
            KmsError::Store(StoreError::Corrupt("x".into())).code(),
            ErrorCode::Internal
        );
    }
}
