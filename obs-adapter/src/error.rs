//! The adapter's typed errors, and their one mapping to OBS error documents (rule 11).

use std::fmt;

use http::StatusCode;
use kms_proto::key_id::KeyIdError;

use crate::kms::KeyServiceError;
use crate::policy::PolicyError;
use crate::vocab::{Operation, SSE_HEADER, SSE_KEY_ID_HEADER};

/// Where a request carried an SSE parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// An HTTP header.
    Header,
    /// A POST form field.
    FormField,
    /// A query-string parameter (presigned URL).
    QueryString,
    /// The bucket's default-encryption configuration.
    BucketDefault,
}

impl Place {
    /// What the place calls the algorithm and the key ID: the parameters' names, or for the
    /// bucket default the elements of its configuration document, which has no parameters.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Place::BucketDefault => ("SSEAlgorithm", "KMSMasterKeyID"),
            _ => (SSE_HEADER, SSE_KEY_ID_HEADER),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Place::Header => "header",
            Place::FormField => "form field",
            Place::QueryString => "query parameter",
            Place::BucketDefault => "bucket default encryption's",
        })
    }
}

/// Everything the adapter refuses. Map it to an OBS error with [`AdapterError::to_obs_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// `x-obs-server-side-encryption` (or the bucket default's algorithm) is not `kms`. For
    /// `AES256` (OBS's own SSE-OBS) the message says that SSE-OBS is out of this service's scope.
    #[error(
        "the {place} {} has the unsupported value {value:?}{}: only \"kms\" is supported",
        .place.names().0,
        if value == "AES256" { " (SSE-OBS, which this service does not provide: it is out of scope, not an unknown algorithm)" } else { "" }
    )]
    UnsupportedAlgorithm {
        /// The refused value, as given (at most 100 characters).
        value: String,
        /// Where it was given.
        place: Place,
    },
    /// A key ID without `x-obs-server-side-encryption: kms`.
    #[error("the {place} {} requires {}: kms", .place.names().1, .place.names().0)]
    KeyIdWithoutSse {
        /// Where the key ID was given.
        place: Place,
    },
    /// The key ID does not follow the key-ID grammar.
    #[error("the {place} {} is invalid: {source}", .place.names().1)]
    MalformedKeyId {
        /// Where it was given.
        place: Place,
        /// The parser's reason.
        source: KeyIdError,
    },
    /// An SSE parameter given more than once in one place, or not valid UTF-8 text.
    #[error("the {place} {name} must be given once, as text")]
    InvalidParameter {
        /// The parameter name.
        name: &'static str,
        /// Where.
        place: Place,
    },
    /// The same SSE parameter given in two places with different values.
    #[error("{name} is given both as a header and as a query parameter, with different values")]
    ConflictingParameter {
        /// The parameter name.
        name: &'static str,
    },
    /// SSE parameters where the operation takes none, or in a place the operation does not read.
    #[error("{operation} does not accept the {place} {name}{hint}")]
    SseNotAllowed {
        /// The operation.
        operation: Operation,
        /// The parameter name.
        name: &'static str,
        /// Where it was given.
        place: Place,
        /// Why, in words (starts with "; " or is empty).
        hint: &'static str,
    },
    /// SSE-KMS parameters together with SSE-C (customer-provided key) headers.
    #[error("SSE-KMS cannot be combined with SSE-C: the request also carries {name}")]
    SseCustomerConflict {
        /// The SSE-C header.
        name: &'static str,
    },
    /// Rule 7: an upload with SSE-C (customer-provided key) parameters and no SSE-KMS parameter
    /// into a bucket whose default encryption is SSE-KMS. The adapter does not provide SSE-C, and
    /// the bucket default applies only to uploads without encryption parameters, so the upload is
    /// neither silently turned into SSE-KMS nor stored as plaintext.
    #[error(
        "the request asks for SSE-C with {name}, which this service does not provide, and the bucket's default encryption (SSE-KMS) applies only to uploads without encryption parameters: upload without SSE-C parameters, or with x-obs-server-side-encryption: kms"
    )]
    SseCustomerWithKmsDefault {
        /// The SSE-C parameter.
        name: &'static str,
    },
    /// A later append asked for another encryption than its object's, which it inherits.
    #[error(
        "an append inherits the encryption of the object it extends ({stored}); the SSE parameters given ask for another"
    )]
    AppendEncryptionMismatch {
        /// The object's encryption, in words.
        stored: String,
    },
    /// A copy request without `x-obs-copy-source`.
    #[error("CopyObject requires the x-obs-copy-source header")]
    MissingCopySource,
    /// The engine did not give the stored object's facts that the operation needs.
    #[error("{operation} needs the {what}'s encryption facts, and the storage engine gave none")]
    MissingStoredObject {
        /// The operation.
        operation: Operation,
        /// What was missing (`object`, `copy source` or `multipart upload`).
        what: &'static str,
    },
    /// The key lives in another region than the bucket.
    #[error(
        "the key {key} is in region {key_region}, but the bucket is in region {bucket_region}: SSE-KMS keys must be in the bucket's region"
    )]
    KeyRegionMismatch {
        /// The key ID.
        key: String,
        /// The key's region.
        key_region: String,
        /// The bucket's region.
        bucket_region: String,
    },
    /// The key does not exist, or belongs to another tenant (the two are not told apart).
    #[error("the key {key} does not exist")]
    KeyNotFound {
        /// The key ID as the request named it (full form).
        key: String,
    },
    /// The key is disabled.
    #[error("the key {key} is disabled")]
    KeyDisabled {
        /// The full key ID.
        key: String,
    },
    /// The key is scheduled for deletion.
    #[error("the key {key} is pending deletion and cannot be used")]
    KeyPendingDeletion {
        /// The full key ID.
        key: String,
    },
    /// Rule 4: a customer-created key, while the adapter admits only service-created keys.
    #[error(
        "SSE-KMS does not accept keys created by customers: the key {key} was created by a customer; use the OBS default key"
    )]
    CustomerKeyNotAllowed {
        /// The full key ID.
        key: String,
    },
    /// A key created by another service than OBS.
    #[error("the key {key} was created by the service {service:?}, not by OBS")]
    ForeignServiceKey {
        /// The full key ID.
        key: String,
        /// Its owning service.
        service: String,
    },
    /// An explicit Deny in the bucket policy.
    #[error("access denied by the bucket policy{}", sid.as_ref().map(|s| format!(" (statement {s:?})")).unwrap_or_default())]
    PolicyDenied {
        /// The denying statement's `Sid`, when it has one.
        sid: Option<String>,
    },
    /// Rule 9: another tenant's SSE-KMS object (or upload), or an SSE-KMS write into another
    /// tenant's bucket.
    #[error("access denied: SSE-KMS objects are accessible only to the tenant that owns them")]
    CrossTenant,
    /// A bucket policy that cannot be parsed or uses unsupported elements.
    #[error(transparent)]
    MalformedPolicy(#[from] PolicyError),
    /// The KMS refused the adapter's own credentials (UNAUTHENTICATED or PERMISSION_DENIED from the
    /// daemon): a server misconfiguration, answered 500 `InternalError`, never blamed on the caller.
    #[error("the KMS refused the adapter's credentials (server misconfiguration): {0}")]
    KmsAccessDenied(String),
    /// The KMS could not be reached.
    #[error("the KMS is unavailable: {0}")]
    KmsUnavailable(String),
    /// The KMS failed otherwise, or answered something inconsistent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<KeyServiceError> for AdapterError {
    fn from(e: KeyServiceError) -> Self {
        match e {
            KeyServiceError::NotFound(key) => AdapterError::KeyNotFound { key },
            KeyServiceError::Disabled(key) => AdapterError::KeyDisabled { key },
            KeyServiceError::PendingDeletion(key) => AdapterError::KeyPendingDeletion { key },
            KeyServiceError::AccessDenied(m) => AdapterError::KmsAccessDenied(m),
            KeyServiceError::Unavailable(m) => AdapterError::KmsUnavailable(m),
            // The adapter sends only parsed key IDs and its own contexts: a refusal is a fault.
            KeyServiceError::MalformedKeyId(m)
            | KeyServiceError::InvalidRequest(m)
            | KeyServiceError::Internal(m) => AdapterError::Internal(m),
        }
    }
}

/// An OBS error: HTTP status, `Code`, `Message` and `RequestId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObsError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The OBS error code, such as `KMS.DisabledException`.
    pub code: &'static str,
    /// A message for people.
    pub message: String,
    /// The request ID (`x-obs-request-id`).
    pub request_id: String,
}

impl ObsError {
    /// The XML error document OBS returns as the response body.
    pub fn to_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
            xml_escape(self.code),
            xml_escape(&self.message),
            xml_escape(&self.request_id)
        )
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push_str(&format!("&#x{:x};", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

impl AdapterError {
    /// The HTTP status and OBS error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use AdapterError as E;
        match self {
            E::UnsupportedAlgorithm { .. } => {
                (StatusCode::BAD_REQUEST, "InvalidEncryptionAlgorithmError")
            }
            E::KeyIdWithoutSse { .. }
            | E::MalformedKeyId { .. }
            | E::InvalidParameter { .. }
            | E::ConflictingParameter { .. }
            | E::SseNotAllowed { .. }
            | E::SseCustomerConflict { .. }
            | E::SseCustomerWithKmsDefault { .. }
            | E::MissingCopySource
            | E::AppendEncryptionMismatch { .. }
            | E::KeyRegionMismatch { .. }
            | E::CustomerKeyNotAllowed { .. }
            | E::ForeignServiceKey { .. } => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            E::KeyNotFound { .. } => (StatusCode::BAD_REQUEST, "KMS.NotFoundException"),
            E::KeyDisabled { .. } => (StatusCode::BAD_REQUEST, "KMS.DisabledException"),
            // S3's code for a key whose state forbids its use; OBS documents no own code.
            E::KeyPendingDeletion { .. } => {
                (StatusCode::BAD_REQUEST, "KMS.KMSInvalidStateException")
            }
            E::PolicyDenied { .. } | E::CrossTenant => (StatusCode::FORBIDDEN, "AccessDenied"),
            E::MalformedPolicy(_) => (StatusCode::BAD_REQUEST, "MalformedPolicy"),
            E::KmsUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            E::MissingStoredObject { .. } | E::Internal(_) | E::KmsAccessDenied(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
        }
    }

    /// The OBS error for this refusal. Internal details (KMS failures) are not shown to the client:
    /// their message is generic, and the engine should log the `Display` of `self` instead.
    pub fn to_obs_error(&self, request_id: &str) -> ObsError {
        let (status, code) = self.status_and_code();
        let message = match self {
            AdapterError::KmsAccessDenied(_) => {
                "the key management service refused this service's own credentials: a server configuration problem, not the caller's; retry later".to_owned()
            }
            AdapterError::KmsUnavailable(_) => {
                "the key management service is unavailable; retry later".to_owned()
            }
            AdapterError::Internal(_) | AdapterError::MissingStoredObject { .. } => {
                "we encountered an internal error; retry later".to_owned()
            }
            other => other.to_string(),
        };
        ObsError {
            status,
            code,
            message,
            request_id: request_id.to_owned(),
        }
    }
}
