//! `SDK-HMAC-SHA256`, the request signature of Huawei Cloud's SDKs, checked on the server side.
//!
//! The client sends `Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2;...>,
//! Signature=<hex>` and `X-Sdk-Date: 20261127T104226Z`. The signature is
//! `hex(HMAC-SHA256(SK, "SDK-HMAC-SHA256\n" + X-Sdk-Date + "\n" + hex(SHA-256(canonical))))`
//! where the canonical request is, one per line: the method; the path, each segment
//! percent-encoded, with a trailing `/`; the query, pairs sorted and percent-encoded; each signed
//! header as `name:value` (name lower-cased, value trimmed); the signed-header list; the hex
//! SHA-256 of the body. The body's hash is always computed here: a client's
//! `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` is not honoured, so every signed body is the one sent.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use http::request::Parts;
use sha2::{Digest, Sha256};

/// The signing algorithm's name, first in `Authorization` and in the string to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// The header holding the signing time.
pub const SDK_DATE: &str = "x-sdk-date";

/// How far `X-Sdk-Date` may be from the daemon's wall clock, either way.
pub const MAX_SKEW_MS: i64 = 15 * 60 * 1000;

/// Why a request's signature is refused. The messages name no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// No `Authorization`, or not an `SDK-HMAC-SHA256` one.
    #[error("missing Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...")]
    Missing,
    /// An `Authorization` that does not parse.
    #[error("malformed Authorization: {0}")]
    Malformed(&'static str),
    /// No or unreadable `X-Sdk-Date`.
    #[error("missing or malformed X-Sdk-Date (expected like 20261127T104226Z)")]
    Date,
    /// `X-Sdk-Date` is not among the signed headers.
    #[error("X-Sdk-Date must be a signed header")]
    DateUnsigned,
    /// `X-Sdk-Date` more than 15 minutes from the daemon's clock.
    #[error("X-Sdk-Date is more than 15 minutes from the server's clock")]
    Stale,
    /// A signed header the request does not carry.
    #[error("signed header {0:?} is not in the request")]
    AbsentHeader(String),
    /// No tenant has this access key.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// The signature does not match.
    #[error("the signature does not match (wrong secret key, or the request was changed)")]
    Mismatch,
}

/// The parts of an `Authorization: SDK-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// `Access=`: the access key ID.
    pub access: &'a str,
    /// `SignedHeaders=`: lower-case header names, `;`-separated, as the client listed them.
    pub signed_headers: &'a str,
    /// `Signature=`: the hex HMAC.
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses the header's value.
    pub fn parse(value: &'a str) -> Result<Self, SignError> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(SignError::Missing)?;
        let (mut access, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or(SignError::Malformed("expected key=value pairs"))?;
            let slot = match k {
                "Access" => &mut access,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => return Err(SignError::Malformed("unknown field")),
            };
            if slot.replace(v).is_some() {
                return Err(SignError::Malformed("repeated field"));
            }
        }
        Ok(Self {
            access: access.ok_or(SignError::Malformed("no Access"))?,
            signed_headers: signed_headers.ok_or(SignError::Malformed("no SignedHeaders"))?,
            signature: signature.ok_or(SignError::Malformed("no Signature"))?,
        })
    }
}

/// The daemon's wall clock in milliseconds. Signatures are made on the client's wall clock, so
/// their freshness is judged on the real one, never on the key ring's (possibly virtual) time.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `X-Sdk-Date` (`%Y%m%dT%H%M%SZ`, UTC) in milliseconds since the Unix epoch.
pub fn parse_sdk_date(s: &str) -> Result<i64, SignError> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Result<i16, SignError> {
        let part = b.get(r).ok_or(SignError::Date)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(SignError::Date);
        }
        std::str::from_utf8(part)
            .ok()
            .and_then(|p| p.parse().ok())
            .ok_or(SignError::Date)
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(SignError::Date);
    }
    let date = jiff::civil::date(digits(0..4)?, 1, 1);
    let month = i8::try_from(digits(4..6)?).map_err(|_| SignError::Date)?;
    let day = i8::try_from(digits(6..8)?).map_err(|_| SignError::Date)?;
    let hour = i8::try_from(digits(9..11)?).map_err(|_| SignError::Date)?;
    let minute = i8::try_from(digits(11..13)?).map_err(|_| SignError::Date)?;
    let second = i8::try_from(digits(13..15)?).map_err(|_| SignError::Date)?;
    let dt = jiff::civil::DateTime::new(date.year(), month, day, hour, minute, second, 0)
        .map_err(|_| SignError::Date)?;
    let ts = dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|_| SignError::Date)?
        .timestamp();
    Ok(ts.as_millisecond())
}

/// Checks a request's signature against `secret`, and its date against `now_ms`.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    auth: &Authorization<'_>,
    secret: &[u8],
    now_ms: i64,
) -> Result<(), SignError> {
    let date = header(&parts.headers, SDK_DATE).ok_or(SignError::Date)?;
    let signed_ms = parse_sdk_date(date)?;
    if !auth.signed_headers.split(';').any(|h| h == SDK_DATE) {
        return Err(SignError::DateUnsigned);
    }
    if (now_ms - signed_ms).abs() > MAX_SKEW_MS {
        return Err(SignError::Stale);
    }
    let canonical = canonical_request(parts, body, auth.signed_headers)?;
    let to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let given = hex::decode(auth.signature).map_err(|_| SignError::Mismatch)?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|_| SignError::Mismatch)?;
    mac.update(to_sign.as_bytes());
    // Constant time: `verify_slice` compares the tags with `subtle`.
    mac.verify_slice(&given).map_err(|_| SignError::Mismatch)
}

/// The canonical request the client signed.
pub fn canonical_request(
    parts: &Parts,
    body: &[u8],
    signed_headers: &str,
) -> Result<String, SignError> {
    let mut out = String::with_capacity(256);
    out.push_str(parts.method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(parts.uri.path()));
    out.push('\n');
    out.push_str(&canonical_query(parts.uri.query().unwrap_or("")));
    out.push('\n');
    for name in signed_headers.split(';') {
        let value = match name {
            // HTTP/2 carries the host as `:authority`, not as a header.
            "host" => {
                header(&parts.headers, "host").or_else(|| parts.uri.authority().map(|a| a.as_str()))
            }
            _ => header(&parts.headers, name),
        }
        .ok_or_else(|| SignError::AbsentHeader(name.chars().take(64).collect()))?;
        out.push_str(name);
        out.push(':');
        out.push_str(value.trim());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    out.push_str(&hex::encode(Sha256::digest(body)));
    Ok(out)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The path, each segment decoded and re-encoded, with a trailing `/`.
fn canonical_uri(path: &str) -> String {
    let mut out: String = path
        .split('/')
        .map(|seg| encode(&decode(seg)))
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The query's pairs, decoded, sorted, and re-encoded.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-decoding (`+` is not a space here: the SDK encodes spaces as `%20`).
pub(super) fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(byte) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Percent-encoding of everything but RFC 3986's unreserved characters (Python's
/// `quote(s, safe='~')`).
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], uri: &str) -> Parts {
        let mut b = http::Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// A known answer computed with the official Python signer (`huaweicloudsdkcore` 3.1.219,
    /// `Signer.sign`) on the same request.
    #[test]
    fn the_sdk_signature_of_a_known_request_verifies() {
        let body = br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f"}"#;
        let parts = request(
            &[
                ("content-type", "application/json;charset=UTF-8"),
                ("host", "127.0.0.1:8080"),
                ("x-project-id", "0123456789abcdef0123456789abcdef"),
                ("x-sdk-date", "20261127T104226Z"),
            ],
            "/v1.0/0123456789abcdef0123456789abcdef/kms/describe-key",
        );
        let auth = Authorization::parse(KNOWN_AUTHORIZATION).unwrap();
        assert_eq!(auth.access, "HUAWEIAKEXAMPLE");
        let signed = parse_sdk_date("20261127T104226Z").unwrap();
        let secret = b"huawei-secret-key-0123456789";
        verify(&parts, body, &auth, secret, signed).expect("the SDK's signature verifies");
        // (rule, what changes, expected error)
        type Case = (&'static str, Vec<u8>, &'static [u8], i64, SignError);
        let cases: Vec<Case> = vec![
            (
                "wrong secret key",
                body.to_vec(),
                b"another-secret-key-0123",
                signed,
                SignError::Mismatch,
            ),
            (
                "body changed",
                b"{}".to_vec(),
                secret,
                signed,
                SignError::Mismatch,
            ),
            (
                "date 16 minutes old",
                body.to_vec(),
                secret,
                signed + 16 * 60 * 1000,
                SignError::Stale,
            ),
            (
                "date 16 minutes ahead",
                body.to_vec(),
                secret,
                signed - 16 * 60 * 1000,
                SignError::Stale,
            ),
        ];
        for (rule, body, secret, now, want) in cases {
            assert_eq!(
                verify(&parts, &body, &auth, secret, now),
                Err(want),
                "{rule}"
            );
        }
        assert!(verify(&parts, body, &auth, secret, signed + 14 * 60 * 1000).is_ok());
        // Over HTTP/2 the host is the request's `:authority`, not a header.
        let h2 = request(
            &[
                ("content-type", "application/json;charset=UTF-8"),
                ("x-project-id", "0123456789abcdef0123456789abcdef"),
                ("x-sdk-date", "20261127T104226Z"),
            ],
            "http://127.0.0.1:8080/v1.0/0123456789abcdef0123456789abcdef/kms/describe-key",
        );
        verify(&h2, body, &auth, secret, signed).expect("the host from :authority");
    }

    const KNOWN_AUTHORIZATION: &str = include_str!("sign_known_answer.txt");

    #[test]
    fn malformed_authorization_and_dates_are_refused() {
        for (rule, value) in [
            ("another scheme", "Bearer abc"),
            ("no fields", "SDK-HMAC-SHA256 "),
            (
                "no signature",
                "SDK-HMAC-SHA256 Access=a, SignedHeaders=x-sdk-date",
            ),
            (
                "unknown field",
                "SDK-HMAC-SHA256 Access=a, Foo=b, SignedHeaders=x, Signature=00",
            ),
            (
                "repeated field",
                "SDK-HMAC-SHA256 Access=a, Access=b, SignedHeaders=x, Signature=00",
            ),
        ] {
            assert!(Authorization::parse(value).is_err(), "{rule}");
        }
        for date in [
            "",
            "20261127T104226",
            "20261327T104226Z",
            "2026-11-27T10:42:26Z",
            "20261127T1042+6Z",
        ] {
            assert_eq!(parse_sdk_date(date), Err(SignError::Date), "{date:?}");
        }
        assert_eq!(
            parse_sdk_date("19700101T000001Z"),
            Ok(1000),
            "one second after the epoch"
        );
    }

    #[test]
    fn canonical_paths_and_queries_follow_the_sdk() {
        assert_eq!(
            canonical_uri("/v1.0/p/kms/create-key"),
            "/v1.0/p/kms/create-key/"
        );
        assert_eq!(canonical_uri("/a%20b/c"), "/a%20b/c/");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("k=a b"), "k=a%20b");
    }
}
