//! The Huawei REST API's errors: `{"error": {"error_code": "KMS.0207", "error_msg": "..."}}` with
//! an HTTP status. The code is the one table's ([`ErrorCode`]); this is the one place that maps a
//! code to an HTTP status and a refusal of this API to a code.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kms_proto::ErrorCode;

use super::sign::SignError;
use crate::error::KmsError;

/// A refused REST call: its code and message.
#[derive(Debug)]
pub struct HuaweiError {
    /// The stable code (Huawei's where Huawei has one).
    pub code: ErrorCode,
    /// What was wrong, for the caller; holds no secret.
    pub message: String,
    /// The daemon's fault, not the caller's (logged as an error).
    pub internal: bool,
}

impl HuaweiError {
    /// A refusal with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            internal: false,
        }
    }

    /// A malformed field, named.
    pub fn field(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidArgument,
            format!("invalid {field}: {reason}"),
        )
    }

    /// A malformed field Huawei has a code of its own for (`KMS.1601` for `limit`, ...).
    pub fn coded(code: ErrorCode, field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(code, format!("invalid {field}: {reason}"))
    }

    /// A required field that is missing.
    pub fn missing(field: &str) -> Self {
        Self::new(
            ErrorCode::MissingParameter,
            format!("missing parameter {field}"),
        )
    }

    /// The HTTP status that goes with the code.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    /// The response, with `X-Request-Id` unless `request_id` is empty.
    pub fn into_response_with(&self, request_id: &str) -> Response {
        let body = serde_json::json!({
            "error": { "error_code": self.code.as_str(), "error_msg": &self.message }
        });
        let mut r = (self.status(), axum::Json(body)).into_response();
        if !request_id.is_empty()
            && let Ok(v) = http::HeaderValue::from_str(request_id)
        {
            r.headers_mut().insert("x-request-id", v);
        }
        r
    }
}

impl From<KmsError> for HuaweiError {
    fn from(e: KmsError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
            internal: e.is_internal(),
        }
    }
}

impl From<SignError> for HuaweiError {
    fn from(e: SignError) -> Self {
        Self::new(ErrorCode::Unauthenticated, e.to_string())
    }
}

/// The HTTP status of a code on this API. Huawei's error-code table lists 400 for each of its
/// `KMS.` codes; `KMS.0207` (key not found), which that table no longer lists, keeps 404. kmsbox's
/// own `KMSBOX.` codes take their gRPC code's usual HTTP counterpart.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use tonic::Code;
    if code == ErrorCode::KeyNotFound {
        return StatusCode::NOT_FOUND;
    }
    if code.as_str().starts_with("KMS.") {
        return StatusCode::BAD_REQUEST;
    }
    match code.grpc_code() {
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::Unimplemented => StatusCode::NOT_FOUND,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Internal | Code::Unknown | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A refusal with `code` in place of the generic `KMS.0308`, for a field Huawei has a code
/// of its own for; any other refusal is left as it is.
pub trait Recode {
    /// `code` for a generic invalid argument.
    #[must_use]
    fn recode(self, code: ErrorCode) -> Self;
}

impl<T> Recode for Result<T, HuaweiError> {
    fn recode(self, code: ErrorCode) -> Self {
        self.map_err(|mut e| {
            if e.code == ErrorCode::InvalidArgument {
                e.code = code;
            }
            e
        })
    }
}

/// A request body that does not decode into the operation's fields: not JSON at all (`KMS.0202`),
/// a missing field (`KMS.0204`), or a field of the wrong type or an unknown one (`KMS.0308`).
pub fn from_json(e: &serde_json::Error) -> HuaweiError {
    use serde_json::error::Category;
    let msg = e.to_string();
    match e.classify() {
        Category::Data if msg.starts_with("missing field") => {
            HuaweiError::new(ErrorCode::MissingParameter, msg)
        }
        Category::Data => HuaweiError::new(ErrorCode::InvalidArgument, msg),
        Category::Syntax | Category::Eof | Category::Io => HuaweiError::new(
            ErrorCode::MalformedJson,
            format!("the request body is not valid JSON: {msg}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_status_huawei_lists_or_its_kind_calls_for() {
        // (code, status): Huawei's table says 400 for each of its codes.
        let cases = [
            (ErrorCode::KeyNotFound, 404),
            (ErrorCode::KeyDisabled, 400),
            (ErrorCode::KeyPendingDeletion, 400),
            (ErrorCode::InvalidRequestUrl, 400),
            (ErrorCode::MalformedJson, 400),
            (ErrorCode::RequestTooLong, 400),
            (ErrorCode::InvalidKeyAlias, 400),
            (ErrorCode::InvalidRealm, 400),
            (ErrorCode::InvalidKeyDescription, 400),
            (ErrorCode::AliasExists, 400),
            (ErrorCode::DeletionWindowOutOfRange, 400),
            (ErrorCode::KeyAlreadyPendingDeletion, 400),
            (ErrorCode::KeyNotPendingDeletion, 400),
            (ErrorCode::InvalidLimit, 400),
            (ErrorCode::InvalidMarker, 400),
            (ErrorCode::InvalidRandomLength, 400),
            (ErrorCode::InvalidDatakeyLength, 400),
            (ErrorCode::InvalidDatakeyLengthWithoutPlaintext, 400),
            (ErrorCode::InvalidPlainText, 400),
            (ErrorCode::InvalidDatakeyPlainLength, 400),
            (ErrorCode::DatakeyDigestMismatch, 400),
            (ErrorCode::InvalidCipherText, 400),
            (ErrorCode::InvalidDatakeyCipherLength, 400),
            (ErrorCode::RandomLengthNotWholeBytes, 400),
            (ErrorCode::InvalidDatakeySpec, 400),
            (ErrorCode::DatakeyLengthNotWholeBytes, 400),
            (ErrorCode::PlainTextLengthMismatch, 400),
            (ErrorCode::CipherTextLengthMismatch, 400),
            (ErrorCode::InvalidRotationInterval, 400),
            (ErrorCode::InvalidArgument, 400),
            (ErrorCode::Unauthenticated, 401),
            (ErrorCode::PermissionDenied, 403),
            (ErrorCode::WrongKeyState, 400),
            (ErrorCode::Throttled, 429),
            (ErrorCode::Internal, 500),
            (ErrorCode::NotServing, 503),
            (ErrorCode::ConcurrentChange, 503),
        ];
        for (code, status) in cases {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
        // Every Huawei code is 400 but key not found.
        for &code in ErrorCode::ALL {
            if code.as_str().starts_with("KMS.") && code != ErrorCode::KeyNotFound {
                assert_eq!(status_of(code), StatusCode::BAD_REQUEST, "{code}");
            }
        }
    }

    #[test]
    fn recode_replaces_only_the_generic_code() {
        let generic: Result<(), _> = Err(HuaweiError::field("limit", "x"));
        assert_eq!(
            generic.recode(ErrorCode::InvalidLimit).unwrap_err().code,
            ErrorCode::InvalidLimit
        );
        let missing: Result<(), _> = Err(HuaweiError::missing("limit"));
        assert_eq!(
            missing.recode(ErrorCode::InvalidLimit).unwrap_err().code,
            ErrorCode::MissingParameter
        );
    }

    #[test]
    fn json_errors_are_told_apart() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code, reason = "only decoded")]
        struct Body {
            key_id: String,
        }
        // (rule, body, code)
        let cases = [
            ("not JSON", "{", ErrorCode::MalformedJson),
            ("missing field", "{}", ErrorCode::MissingParameter),
            (
                "a number, not a string",
                r#"{"key_id": 5}"#,
                ErrorCode::InvalidArgument,
            ),
            (
                "unknown field",
                r#"{"key_id": "a", "x": "1"}"#,
                ErrorCode::InvalidArgument,
            ),
        ];
        for (rule, body, code) in cases {
            let e = serde_json::from_str::<Body>(body).unwrap_err();
            assert_eq!(from_json(&e).code, code, "{rule}");
        }
    }
}
