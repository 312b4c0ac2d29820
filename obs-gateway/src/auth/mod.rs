//! Who is calling: Signature V2 (`OBS` and `AWS` schemes, header and presigned URL) and
//! Signature V4 (header and presigned URL, signed payloads, `UNSIGNED-PAYLOAD`, `aws-chunked`
//! bodies). Every signature is compared in constant time; dates must be within
//! [`MAX_SKEW`] of the gateway's clock, presigned URLs must not have expired.

pub mod chunked;
pub mod v2;
pub mod v4;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use subtle::ConstantTimeEq;

use crate::credentials::{Credential, Credentials};

/// The largest accepted difference between a request's date and the gateway's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The header dialect a request speaks, from its signature scheme: `x-obs-` or `x-amz-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `OBS AK:sig`, `x-obs-` headers.
    Obs,
    /// `AWS AK:sig` or `AWS4-HMAC-SHA256`, `x-amz-` headers.
    Amz,
}

impl Dialect {
    /// The header prefix, `x-obs-` or `x-amz-`.
    pub fn prefix(self) -> &'static str {
        match self {
            Dialect::Obs => "x-obs-",
            Dialect::Amz => "x-amz-",
        }
    }
}

/// How the body must be checked while it is read (Signature V4).
#[derive(Debug, Clone)]
pub enum BodyCheck {
    /// Nothing to check (V2, `UNSIGNED-PAYLOAD`).
    None,
    /// The body's SHA-256 must be this (lower-case hex).
    Sha256(String),
    /// An `aws-chunked` body: decode it, and check its chunk signatures when it is signed.
    Chunked(chunked::ChunkContext),
}

/// Which prefixed (`x-obs-`, `x-amz-`) headers and query parameters a verified signature covers.
///
/// A prefixed name the signature does not cover could have been added or removed by anyone on
/// the way (an SSE parameter dropped turns an SSE-KMS upload into plaintext), so a request that
/// carries one is refused ([`Authenticated::check_coverage`]).
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// V2: every header with this prefix is signed.
    pub header_prefix: Option<&'static str>,
    /// V4: the signed headers.
    pub signed_headers: Vec<String>,
    /// V2: every query parameter with this prefix is signed.
    pub query_prefix: Option<&'static str>,
    /// V4: the whole query is signed.
    pub all_query: bool,
}

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The caller's credential.
    pub credential: Credential,
    /// The dialect of its signature.
    pub dialect: Dialect,
    /// The body check.
    pub body: BodyCheck,
    /// What the signature covers.
    pub coverage: Coverage,
}

fn prefixed(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-obs-") || n.starts_with("x-amz-")
}

/// Prefixed names that only answers carry (the request IDs every answer has): a request that
/// sends one back changes nothing, so it need not be signed. s3cmd's `modify` sends back the
/// headers a HEAD answered, removing only S3's own request IDs, and signs V2 over `x-amz-` names.
const ANSWER_ONLY: [&str; 4] = [
    "x-amz-id-2",
    "x-amz-request-id",
    "x-obs-id-2",
    "x-obs-request-id",
];

impl Authenticated {
    /// `Err(name)` for the first prefixed header or query parameter the signature does not cover.
    pub fn check_coverage(&self, headers: &HeaderMap, query: &[QueryParam]) -> Result<(), String> {
        let c = &self.coverage;
        for name in headers.keys() {
            let n = name.as_str();
            let covered = c.signed_headers.iter().any(|s| s == n)
                || c.header_prefix.is_some_and(|p| n.starts_with(p));
            if prefixed(n) && !covered && !ANSWER_ONLY.contains(&n) {
                return Err(format!("the header {n}"));
            }
        }
        for q in query {
            let n = q.name.to_ascii_lowercase();
            let covered = c.all_query || c.query_prefix.is_some_and(|p| n.starts_with(p));
            if prefixed(&n) && !covered {
                return Err(format!("the query parameter {}", q.name));
            }
        }
        Ok(())
    }
}

/// Why a request is not authenticated (403 unless said otherwise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No signature at all.
    #[error("anonymous access is not allowed: sign the request")]
    Anonymous,
    /// The access key is unknown.
    #[error("the access key ID you provided does not exist in our records")]
    InvalidAccessKeyId,
    /// The signature does not match.
    #[error(
        "the request signature we calculated does not match the signature you provided; check your key and signing method"
    )]
    SignatureDoesNotMatch,
    /// The request's date is too far from the gateway's clock.
    #[error("the difference between the request time and the server's time is too large")]
    RequestTimeTooSkewed,
    /// A presigned URL has expired.
    #[error("request has expired")]
    Expired,
    /// The signature's parts are missing or unreadable (a date, a V2 header or URL).
    #[error("{0}")]
    Malformed(String),
    /// A V4 `Authorization` header that is not SigV4's shape.
    #[error("{0}")]
    MalformedHeader(String),
    /// A presigned V4 URL whose `X-Amz-*` parameters are missing or unreadable.
    #[error("{0}")]
    MalformedQuery(String),
    /// A V4 request without `x-amz-content-sha256`, which S3 requires of every one.
    #[error("missing required header for this request: x-amz-content-sha256")]
    MissingContentSha256,
    /// An `x-amz-content-sha256` that is no hash and no payload mode S3 knows.
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), STREAMING-UNSIGNED-PAYLOAD-TRAILER or a SHA-256 in hex, not {0:?}"
    )]
    InvalidContentSha256(String),
}

impl AuthError {
    /// The S3/OBS error code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Anonymous | AuthError::Expired => "AccessDenied",
            AuthError::InvalidAccessKeyId => "InvalidAccessKeyId",
            AuthError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            AuthError::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            AuthError::Malformed(_) => "AccessDenied",
            AuthError::MalformedHeader(_) => "AuthorizationHeaderMalformed",
            AuthError::MalformedQuery(_) => "AuthorizationQueryParametersError",
            AuthError::MissingContentSha256 => "InvalidRequest",
            AuthError::InvalidContentSha256(_) => "InvalidArgument",
        }
    }

    /// The HTTP status S3 answers it with: 400 for a request whose V4 signature is not of
    /// SigV4's shape, else 403.
    pub fn status(&self) -> http::StatusCode {
        match self {
            AuthError::MalformedHeader(_)
            | AuthError::MalformedQuery(_)
            | AuthError::MissingContentSha256
            | AuthError::InvalidContentSha256(_) => http::StatusCode::BAD_REQUEST,
            _ => http::StatusCode::FORBIDDEN,
        }
    }
}

/// What authentication reads of a request.
#[derive(Debug)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a str,
    /// The path exactly as received (percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as received, without `?`.
    pub raw_query: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The bucket named by the `Host` header (virtual-hosted style), if any.
    pub host_bucket: Option<&'a str>,
}

impl RequestView<'_> {
    /// The decoded query parameters in order (a name without `=` has an empty value and
    /// `has_value` false).
    pub fn query(&self) -> Vec<QueryParam> {
        parse_query(self.raw_query)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One decoded query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    /// The decoded name.
    pub name: String,
    /// The decoded value.
    pub value: String,
    /// Whether the parameter had `=`.
    pub has_value: bool,
}

/// Decodes a raw query string.
pub fn parse_query(raw: &str) -> Vec<QueryParam> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v, has_value) = match p.split_once('=') {
                Some((n, v)) => (n, v, true),
                None => (p, "", false),
            };
            QueryParam {
                name: decode(n),
                value: decode(v),
                has_value,
            }
        })
        .collect()
}

/// Percent-decodes (lossily for invalid UTF-8).
pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The characters AWS leaves unencoded: `A-Z a-z 0-9 - _ . ~`.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// AWS URI encoding; `/` kept when `keep_slash`.
pub fn aws_encode(s: &str, keep_slash: bool) -> String {
    if keep_slash {
        s.split('/')
            .map(|seg| utf8_percent_encode(seg, AWS_ENCODE).to_string())
            .collect::<Vec<_>>()
            .join("/")
    } else {
        utf8_percent_encode(s, AWS_ENCODE).to_string()
    }
}

/// Constant-time equality of two signatures as text.
pub fn signatures_match(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn check_skew(request_secs: i64) -> Result<(), AuthError> {
    let skew = i64::try_from(MAX_SKEW.as_secs()).unwrap_or(i64::MAX);
    if (now_secs() - request_secs).abs() > skew {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    Ok(())
}

/// Authenticates a request against `credentials`: the scheme is chosen by the `Authorization`
/// header or the presigned query parameters; a request with neither is [`AuthError::Anonymous`].
pub fn authenticate(
    req: &RequestView<'_>,
    credentials: &Credentials,
) -> Result<Authenticated, AuthError> {
    let query = req.query();
    let has = |n: &str| query.iter().any(|q| q.name == n);
    if let Some(auth) = req.header("authorization") {
        if auth.starts_with("AWS4-HMAC-SHA256 ") {
            return v4::verify_header(req, auth, credentials);
        }
        if let Some(rest) = auth.strip_prefix("OBS ") {
            return v2::verify_header(req, rest, Dialect::Obs, credentials);
        }
        if let Some(rest) = auth.strip_prefix("AWS ") {
            return v2::verify_header(req, rest, Dialect::Amz, credentials);
        }
        return Err(AuthError::MalformedHeader(
            "unsupported Authorization scheme: use OBS, AWS or AWS4-HMAC-SHA256".into(),
        ));
    }
    if has("X-Amz-Algorithm") {
        return v4::verify_presigned(req, &query, credentials);
    }
    if has("Signature") && (has("AccessKeyId") || has("AWSAccessKeyId")) {
        return v2::verify_presigned(req, &query, credentials);
    }
    Err(AuthError::Anonymous)
}

fn lookup<'c>(credentials: &'c Credentials, ak: &str) -> Result<&'c Credential, AuthError> {
    credentials.get(ak).ok_or(AuthError::InvalidAccessKeyId)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Access key `A`, secret `s`, of domain `d1`.
    fn one_credential() -> Credentials {
        Credentials::parse(
            "[[credentials]]\naccess_key = \"A\"\nsecret_key = \"s\"\ndomain_id = \"d1\"\n",
            "t",
        )
        .unwrap()
    }

    /// A refused signature is answered as S3 answers it: 400 with the code of what is wrong
    /// when a V4 signature is not of SigV4's shape, 403 otherwise.
    #[test]
    fn refused_signatures_have_s3s_status_and_code() {
        let creds = one_credential();
        let v4 = "AWS4-HMAC-SHA256 Credential=A/20261204/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
        let date = ("x-amz-date", "20261204T120000Z");
        let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20261204%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261204T120000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
        // (rule, headers, query, (status, code))
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, (u16, &'a str));
        let cases: [Case<'_>; 8] = [
            (
                "V4 without x-amz-content-sha256",
                vec![("authorization", v4), date],
                String::new(),
                (400, "InvalidRequest"),
            ),
            (
                "V4 with an unknown payload mode",
                vec![
                    ("authorization", v4),
                    date,
                    ("x-amz-content-sha256", "SOMETHING"),
                ],
                String::new(),
                (400, "InvalidArgument"),
            ),
            (
                "V4 without a signature",
                vec![
                    (
                        "authorization",
                        "AWS4-HMAC-SHA256 Credential=A/20261204/us-east-1/s3/aws4_request",
                    ),
                    date,
                ],
                String::new(),
                (400, "AuthorizationHeaderMalformed"),
            ),
            (
                "V4 with a short credential scope",
                vec![
                    (
                        "authorization",
                        "AWS4-HMAC-SHA256 Credential=A/20261204, SignedHeaders=host, Signature=00",
                    ),
                    date,
                ],
                String::new(),
                (400, "AuthorizationHeaderMalformed"),
            ),
            (
                "an unknown scheme",
                vec![("authorization", "Bearer x")],
                String::new(),
                (400, "AuthorizationHeaderMalformed"),
            ),
            (
                "a presigned V4 URL without its expiry",
                vec![],
                presigned.to_owned(),
                (400, "AuthorizationQueryParametersError"),
            ),
            (
                "a presigned V4 URL valid for 8 days",
                vec![],
                format!("{presigned}&X-Amz-Expires=691200"),
                (400, "AuthorizationQueryParametersError"),
            ),
            (
                "V2 without a date",
                vec![("authorization", "AWS A:c2ln")],
                String::new(),
                (403, "AccessDenied"),
            ),
        ];
        for (rule, headers, query, want) in cases {
            let mut h = HeaderMap::new();
            for (n, v) in headers {
                h.insert(n, v.parse().unwrap());
            }
            let req = RequestView {
                method: "GET",
                raw_path: "/b/k",
                raw_query: &query,
                headers: &h,
                host_bucket: None,
            };
            let e = authenticate(&req, &creds).expect_err(rule);
            assert_eq!((e.status().as_u16(), e.code()), want, "{rule}: {e}");
        }
    }

    #[test]
    fn prefixed_names_outside_the_signature_are_reported() {
        let creds = one_credential();
        let v2 = Authenticated {
            credential: creds.get("A").unwrap().clone(),
            dialect: Dialect::Amz,
            body: BodyCheck::None,
            coverage: Coverage {
                header_prefix: Some("x-amz-"),
                ..Coverage::default()
            },
        };
        let mut h = HeaderMap::new();
        h.insert("x-amz-server-side-encryption", "aws:kms".parse().unwrap());
        assert!(v2.check_coverage(&h, &[]).is_ok());
        // An answer's request IDs sent back change nothing: not refused unsigned.
        for id in [
            "x-obs-request-id",
            "x-obs-id-2",
            "x-amz-request-id",
            "x-amz-id-2",
        ] {
            let mut h = HeaderMap::new();
            h.insert(id, "0123".parse().unwrap());
            assert!(v2.check_coverage(&h, &[]).is_ok(), "{id}");
        }
        h.insert("x-obs-server-side-encryption", "kms".parse().unwrap());
        assert!(v2.check_coverage(&h, &[]).is_err());
        let q = parse_query("x-amz-server-side-encryption=aws%3Akms");
        assert!(v2.check_coverage(&HeaderMap::new(), &q).is_err());
        let v4 = Authenticated {
            coverage: Coverage {
                signed_headers: vec!["host".into(), "x-amz-date".into()],
                all_query: true,
                ..Coverage::default()
            },
            ..v2
        };
        let mut h = HeaderMap::new();
        h.insert("x-amz-date", "x".parse().unwrap());
        assert!(v4.check_coverage(&h, &q).is_ok());
        h.insert("x-amz-server-side-encryption", "aws:kms".parse().unwrap());
        assert!(v4.check_coverage(&h, &q).is_err());
    }

    #[test]
    fn aws_encoding_keeps_only_unreserved_characters() {
        assert_eq!(aws_encode("a b/c~d+e", true), "a%20b/c~d%2Be");
        assert_eq!(aws_encode("a/b", false), "a%2Fb");
    }

    #[test]
    fn query_parameters_decode_with_and_without_values() {
        let q = parse_query("uploads&prefix=a%2Fb&x=");
        assert_eq!(q[0].name, "uploads");
        assert!(!q[0].has_value);
        assert_eq!(q[1].value, "a/b");
        assert!(q[2].has_value);
    }
}
