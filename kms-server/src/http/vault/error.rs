//! The one mapping from the keyring's errors to Vault's: an HTTP status code and
//! `{"errors": ["..."]}`, as Vault answers a refused request. The kmsbox code of the refusal
//! ([`ErrorCode`]) goes in the audit line and in the `x-kms-error-code` response header.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kms_proto::ErrorCode;
use kms_proto::metadata::ERROR_CODE;

use crate::error::KmsError;

/// A refused Vault request: its status, its one message and its kmsbox code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultError {
    /// The HTTP status, as Vault would answer.
    pub status: StatusCode,
    /// The message in `errors`.
    pub message: String,
    /// The kmsbox code (audit outcome and `x-kms-error-code`).
    pub code: ErrorCode,
}

/// Vault's status for a refusal with `code`.
fn status_for(code: ErrorCode, reading_key: bool) -> StatusCode {
    match code {
        ErrorCode::KeyNotFound if reading_key => StatusCode::NOT_FOUND,
        ErrorCode::Unauthenticated | ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::NotServing | ErrorCode::ServiceUnavailable | ErrorCode::ConcurrentChange => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Throttled => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        // Every other refusal is the caller's: a malformed field, a key in a state that does
        // not allow the call, a ciphertext that does not open.
        _ => StatusCode::BAD_REQUEST,
    }
}

impl VaultError {
    /// A refusal a fault rule injected, with its code's status (429 when throttled, 503 when
    /// unavailable).
    pub fn injected(code: ErrorCode, message: String) -> Self {
        Self {
            status: status_for(code, false),
            message,
            code,
        }
    }

    /// `400 Bad Request`: malformed or out-of-range input (Vault's `ErrInvalidRequest`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            code: ErrorCode::InvalidArgument,
        }
    }

    /// `403 Forbidden`, `permission denied`: Vault's answer to a missing or unknown token.
    pub fn permission_denied(why: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: format!("permission denied: {why}"),
            code: ErrorCode::Unauthenticated,
        }
    }

    /// `404 Not Found` for a path no transit operation serves (Vault's "no handler for route").
    pub fn no_route(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "no handler for route {path:?}: kmsbox serves the transit subset in README.md"
            ),
            code: ErrorCode::InvalidArgument,
        }
    }

    /// `404 Not Found` for a listing with nothing in it, as Vault answers one (hvac raises
    /// `InvalidPath`).
    pub fn nothing_listed(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("no {what} to list"),
            code: ErrorCode::KeyNotFound,
        }
    }

    /// `405 Method Not Allowed`: a served path with a method it does not take.
    pub fn unsupported_operation(method: &http::Method, path: &str) -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("unsupported operation: {method} {path}"),
            code: ErrorCode::InvalidArgument,
        }
    }

    /// `413 Payload Too Large`: a request body over `MAX_BODY`.
    pub fn body_too_large(max: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("request body is larger than the limit of {max} bytes"),
            code: ErrorCode::PayloadTooLarge,
        }
    }

    /// `503 Service Unavailable`: the audit log cannot be written and calls are refused.
    pub fn audit_unavailable(message: &str) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.to_owned(),
            code: ErrorCode::NotServing,
        }
    }

    /// A keyring refusal as Vault answers it. A key the caller cannot see is `404` when the call
    /// reads the key (as Vault's `GET keys/:name`) and `400` otherwise (Vault's "encryption key not
    /// found" of the data calls).
    pub fn from_kms(e: &KmsError, reading_key: bool) -> Self {
        let code = e.code();
        let status = status_for(code, reading_key);
        let message = match e {
            KmsError::Unauthenticated(why) => format!("permission denied: {why}"),
            other => other.to_string(),
        };
        Self {
            status,
            message,
            code,
        }
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": [self.message] });
        (
            self.status,
            [(ERROR_CODE, self.code.as_str())],
            axum::Json(body),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_refusals_get_vaults_status_codes() {
        // (rule, error, reading the key, status)
        let cases: &[(&str, KmsError, bool, StatusCode)] = &[
            (
                "reading an unknown key is 404",
                KmsError::KeyNotFound("x".into()),
                true,
                StatusCode::NOT_FOUND,
            ),
            (
                "using an unknown key is 400, as Vault's data calls",
                KmsError::KeyNotFound("x".into()),
                false,
                StatusCode::BAD_REQUEST,
            ),
            (
                "a disabled key is 400",
                KmsError::KeyDisabled("x".into()),
                false,
                StatusCode::BAD_REQUEST,
            ),
            (
                "a ciphertext that does not open is 400",
                KmsError::CiphertextAuthFailed,
                false,
                StatusCode::BAD_REQUEST,
            ),
            (
                "an unknown token is 403",
                KmsError::Unauthenticated("unknown token"),
                false,
                StatusCode::FORBIDDEN,
            ),
            (
                "the daemon's own failure is 500",
                KmsError::Internal("x".into()),
                false,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                "a fleet daemon that cannot reach its store is 503 (KMSBOX.0503)",
                KmsError::Store(crate::store::StoreError::Unavailable("down".into())),
                false,
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                "a change that met another daemon's is 503 (KMSBOX.0504)",
                KmsError::Store(crate::store::StoreError::Stale(uuid::Uuid::nil())),
                false,
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (rule, e, reading, status) in cases {
            let v = VaultError::from_kms(e, *reading);
            assert_eq!(v.status, *status, "{rule}");
            assert_eq!(v.code, e.code(), "{rule}");
        }
        assert!(
            VaultError::from_kms(&KmsError::Unauthenticated("unknown token"), false)
                .message
                .starts_with("permission denied")
        );
    }
}
