//! The one table of stable error codes, shared by the daemon that sends them and every client that
//! reads them.
//!
//! A refused call carries its code in the `x-kms-error-code` trailer ([`ERROR_CODE`]): Huawei
//! KMS's code where Huawei has one, else a `KMSBOX.` code of kmsbox's own. README.md's error table
//! lists the same rows.

use std::fmt;
use std::str::FromStr;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::metadata::ERROR_CODE;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal => $grpc:ident,)*) => {
        /// A stable error code and the gRPC status code that goes with it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it travels, for example `KMS.0207`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }

            /// The gRPC status code a refusal with this code carries.
            pub const fn grpc_code(self) -> Code {
                match self {
                    $(ErrorCode::$variant => Code::$grpc,)*
                }
            }
        }
    };
}

error_codes! {
    /// No such operation (the Huawei REST API's unknown paths and methods).
    InvalidRequestUrl = "KMS.0201" => Unimplemented,
    /// A request body that is not JSON (the Huawei REST API).
    MalformedJson = "KMS.0202" => InvalidArgument,
    /// A request body over its limit (the Huawei REST API).
    RequestTooLong = "KMS.0203" => InvalidArgument,
    /// A required request field is missing (the Huawei REST API).
    MissingParameter = "KMS.0204" => InvalidArgument,
    /// Malformed key ID.
    MalformedKeyId = "KMS.0205" => InvalidArgument,
    /// A `sequence` that is not at most 36 characters (the Huawei REST API).
    InvalidSequence = "KMS.0206" => InvalidArgument,
    /// Key not found (also another tenant's or another region's key).
    KeyNotFound = "KMS.0207" => NotFound,
    /// Invalid encryption context: over its size limit (8192 bytes of keys and values).
    InvalidEncryptionContext = "KMS.0208" => InvalidArgument,
    /// Key disabled.
    KeyDisabled = "KMS.0209" => FailedPrecondition,
    /// Key pending deletion.
    KeyPendingDeletion = "KMS.0210" => FailedPrecondition,
    /// A default key cannot be disabled, deleted or rotated.
    DefaultKeyImmutable = "KMS.0211" => FailedPrecondition,
    /// Another malformed request field, named in the message (Huawei's generic "Invalid XXX").
    InvalidArgument = "KMS.0308" => InvalidArgument,
    /// REST key tags: a batch of tags to add or remove names none.
    EmptyTagList = "KMS.0401" => InvalidArgument,
    /// Invalid `key_alias`: not the alias grammar, a reserved `/default` suffix, or empty where
    /// one is required.
    InvalidKeyAlias = "KMS.1101" => InvalidArgument,
    /// Invalid realm: a region ID that does not follow the grammar (gRPC's `x-kms-region`).
    InvalidRealm = "KMS.1102" => InvalidArgument,
    /// Invalid `key_description`: over 255 characters.
    InvalidKeyDescription = "KMS.1103" => InvalidArgument,
    /// Alias taken (Huawei: "Duplicate key aliases").
    AliasExists = "KMS.1104" => AlreadyExists,
    /// Enabling a key that is not disabled (Huawei: "The key is not disabled").
    KeyNotDisabled = "KMS.1201" => FailedPrecondition,
    /// Disabling a key that is not enabled (Huawei: "The key is not enabled").
    KeyNotEnabled = "KMS.1301" => FailedPrecondition,
    /// Pending deletion window out of 7..=1096 days.
    DeletionWindowOutOfRange = "KMS.1401" => InvalidArgument,
    /// Scheduling the deletion of a key that is already pending deletion.
    KeyAlreadyPendingDeletion = "KMS.1402" => FailedPrecondition,
    /// Cancelling the deletion of a key that is not pending deletion.
    KeyNotPendingDeletion = "KMS.1501" => FailedPrecondition,
    /// Invalid list page size (`limit`, gRPC's `page_size`).
    InvalidLimit = "KMS.1601" => InvalidArgument,
    /// Invalid list position (`marker`, gRPC's `page_token`).
    InvalidMarker = "KMS.1602" => InvalidArgument,
    /// Length of random data out of range (`random_data_length`, gRPC's `number_of_bytes`).
    InvalidRandomLength = "KMS.1801" => InvalidArgument,
    /// `random_data_length` not a whole number of bytes.
    RandomLengthNotWholeBytes = "KMS.1802" => InvalidArgument,
    /// Data key length of create-datakey out of range (`datakey_length`, gRPC's
    /// `number_of_bytes`).
    InvalidDatakeyLength = "KMS.1901" => InvalidArgument,
    /// create-datakey: a `key_spec` other than `AES_128` or `AES_256`.
    InvalidDatakeySpec = "KMS.1902" => InvalidArgument,
    /// `datakey_length` not a whole number of bytes.
    DatakeyLengthNotWholeBytes = "KMS.1903" => InvalidArgument,
    /// Invalid data key length of create-datakey-without-plaintext.
    InvalidDatakeyLengthWithoutPlaintext = "KMS.2001" => InvalidArgument,
    /// encrypt-datakey: invalid `plain_text` (not hex).
    InvalidPlainText = "KMS.2101" => InvalidArgument,
    /// encrypt-datakey: invalid `datakey_plain_length`.
    InvalidDatakeyPlainLength = "KMS.2102" => InvalidArgument,
    /// encrypt-datakey: the digest in `plain_text` is not the SHA-256 of the data key.
    DatakeyDigestMismatch = "KMS.2103" => InvalidArgument,
    /// encrypt-datakey: `plain_text` is not `datakey_plain_length` bytes and a 32-byte digest.
    PlainTextLengthMismatch = "KMS.2104" => InvalidArgument,
    /// decrypt-datakey: invalid `cipher_text` (not hex, or not a ciphertext blob).
    InvalidCipherText = "KMS.2201" => InvalidArgument,
    /// decrypt-datakey: invalid `datakey_cipher_length`.
    InvalidDatakeyCipherLength = "KMS.2202" => InvalidArgument,
    /// decrypt-datakey: the data key in `cipher_text` is not `datakey_cipher_length` bytes.
    CipherTextLengthMismatch = "KMS.2204" => InvalidArgument,
    /// Rotation interval out of 30..=365 days.
    InvalidRotationInterval = "KMS.3001" => InvalidArgument,
    /// No or unknown credentials.
    Unauthenticated = "KMSBOX.0401" => Unauthenticated,
    /// `x-kms-domain-id` disagrees with the bearer token.
    PermissionDenied = "KMSBOX.0403" => PermissionDenied,
    /// The key's state does not allow the call.
    WrongKeyState = "KMSBOX.0409" => FailedPrecondition,
    /// A payload over its limit.
    PayloadTooLarge = "KMSBOX.0413" => InvalidArgument,
    /// Not a ciphertext blob, an unsupported version, or truncated.
    MalformedCiphertext = "KMSBOX.0420" => InvalidArgument,
    /// The ciphertext failed authentication (wrong context, tampered).
    CiphertextAuthFailed = "KMSBOX.0421" => InvalidArgument,
    /// `key_id` does not match the blob's key.
    KeyIdMismatch = "KMSBOX.0422" => InvalidArgument,
    /// Too many requests: the caller is throttled (RESOURCE_EXHAUSTED, HTTP 429); retry later.
    /// kmsbox sends it only when a fault rule injects it.
    Throttled = "KMSBOX.0429" => ResourceExhausted,
    /// Store or internal failure.
    Internal = "KMSBOX.0500" => Internal,
    /// The service is unavailable (an outage of its region, HTTP 503); retry later. kmsbox sends
    /// it only when a fault rule injects it.
    ServiceUnavailable = "KMSBOX.0502" => Unavailable,
    /// The daemon cannot serve this call now: its audit log cannot be written (it refuses calls it
    /// cannot audit, `--audit-failure=refuse`), or its shared key store (a fleet's PostgreSQL)
    /// cannot be reached and the call needs it; the message says which. Health reports
    /// NOT_SERVING meanwhile: retry once it reports SERVING. (While only the store is unreachable,
    /// data-path calls on the keys the daemon holds are still served.)
    NotServing = "KMSBOX.0503" => Unavailable,
    /// A fleet daemon's change of a key met another daemon's change of the same key, again after
    /// the daemon read the key anew and decided once more; nothing was written. Health stays
    /// SERVING: retry now.
    ConcurrentChange = "KMSBOX.0504" => Unavailable,
}

impl ErrorCode {
    /// The code in a refused call's trailer, if it carries one this table knows.
    pub fn of_status(status: &Status) -> Option<ErrorCode> {
        status
            .metadata()
            .get(ERROR_CODE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
    }

    /// A refusal with this code: the gRPC code of the table, `message`, and the code in the
    /// `x-kms-error-code` trailer.
    pub fn status(self, message: impl Into<String>) -> Status {
        let mut status = Status::new(self.grpc_code(), message);
        status
            .metadata_mut()
            .insert(ERROR_CODE, MetadataValue::from_static(self.as_str()));
        status
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is no code of the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_text_and_a_status() {
        for &code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            let status = code.status("why");
            assert_eq!(status.code(), code.grpc_code());
            assert_eq!(status.message(), "why");
            assert_eq!(ErrorCode::of_status(&status), Some(code));
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }

    #[test]
    fn a_status_without_a_known_code_has_none() {
        assert_eq!(ErrorCode::of_status(&Status::internal("x")), None);
        let mut s = Status::internal("x");
        s.metadata_mut()
            .insert(ERROR_CODE, MetadataValue::from_static("KMS.9999"));
        assert_eq!(ErrorCode::of_status(&s), None);
        assert!("kms.0207".parse::<ErrorCode>().is_err());
    }
}
