//! Signature V4 (`AWS4-HMAC-SHA256`), in the `Authorization` header and in presigned URLs.
//!
//! The payload hash is `x-amz-content-sha256`: a hex SHA-256 (checked while the body is read),
//! `UNSIGNED-PAYLOAD`, or one of the `aws-chunked` streaming forms (decoded, and for the signed
//! forms every chunk signature checked, by [`super::chunked`]).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::chunked::{ChunkContext, ChunkSigning};
use super::{
    AuthError, Authenticated, BodyCheck, Coverage, Dialect, QueryParam, RequestView, aws_encode,
    check_skew, decode, lookup, now_secs, signatures_match,
};
use crate::credentials::Credentials;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The longest presigned URL lifetime (seven days), as S3.
const MAX_PRESIGNED_SECS: i64 = 7 * 24 * 3600;

/// The `x-amz-content-sha256` values that are no hash: how the body is sent and signed.
const PAYLOAD_MODES: [&str; 4] = [
    "UNSIGNED-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
];

/// HMAC-SHA256.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The signing key of a credential scope `date/region/service/aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Zeroizing<[u8; 32]> {
    let k = Zeroizing::new(format!("AWS4{secret}"));
    let k = Zeroizing::new(hmac(k.as_bytes(), date.as_bytes()));
    let k = Zeroizing::new(hmac(&k[..], region.as_bytes()));
    let k = Zeroizing::new(hmac(&k[..], service.as_bytes()));
    Zeroizing::new(hmac(&k[..], b"aws4_request"))
}

/// `AK/date/region/service/aws4_request`, split.
struct Scope<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> Scope<'a> {
    fn parse(credential: &'a str) -> Result<Self, AuthError> {
        let parts: Vec<&str> = credential.split('/').collect();
        match parts.as_slice() {
            [ak, date, region, service, "aws4_request"] => Ok(Self {
                access_key: ak,
                date,
                region,
                service,
            }),
            _ => Err(AuthError::MalformedHeader(format!(
                "the credential {credential:?} is not AK/date/region/service/aws4_request"
            ))),
        }
    }

    fn text(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Parses `YYYYMMDDTHHMMSSZ` into seconds since the epoch.
fn parse_amz_date(s: &str) -> Result<i64, AuthError> {
    let bad = || AuthError::Malformed(format!("unreadable x-amz-date {s:?}"));
    if s.len() != 16 {
        return Err(bad());
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    let ts: jiff::Timestamp = iso.parse().map_err(|_| bad())?;
    Ok(ts.as_second())
}

/// The canonical request's query: every parameter but `X-Amz-Signature`, encoded and sorted.
fn canonical_query(query: &[QueryParam]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|q| q.name != "X-Amz-Signature")
        .map(|q| (aws_encode(&q.name, false), aws_encode(&q.value, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_request(
    req: &RequestView<'_>,
    query: &[QueryParam],
    signed_headers: &str,
    payload: &str,
) -> Result<String, AuthError> {
    let uri = aws_encode(&decode(req.raw_path), true);
    let mut headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(AuthError::SignatureDoesNotMatch);
        }
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    Ok(format!(
        "{}\n{uri}\n{}\n{headers}\n{signed_headers}\n{payload}",
        req.method,
        canonical_query(query)
    ))
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
pub fn verify_header(
    req: &RequestView<'_>,
    auth: &str,
    credentials: &Credentials,
) -> Result<Authenticated, AuthError> {
    let rest = auth.trim_start_matches(ALGORITHM).trim();
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(AuthError::MalformedHeader(
            "Authorization needs Credential, SignedHeaders and Signature".into(),
        ));
    };
    let scope = Scope::parse(credential)?;
    let cred = lookup(credentials, scope.access_key)?;
    // The signature's time: `x-amz-date`, else (as SigV4 allows, and the OBS SDK sends) the
    // `Date` header, written in the basic ISO form for the string to sign.
    let from_date_header;
    let amz_date = match req.header("x-amz-date") {
        Some(d) => d,
        None => {
            let date = req.header("date").ok_or_else(|| {
                AuthError::Malformed("a V4 request needs x-amz-date or Date".into())
            })?;
            let t = httpdate::parse_http_date(date)
                .map_err(|_| AuthError::Malformed(format!("unreadable Date {date:?}")))?;
            let secs = t
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| AuthError::Malformed("Date before 1970".into()))?
                .as_secs();
            let ts = jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
                .map_err(|_| AuthError::Malformed("Date out of range".into()))?;
            from_date_header = ts.strftime("%Y%m%dT%H%M%SZ").to_string();
            &from_date_header
        }
    };
    let when = parse_amz_date(amz_date)?;
    if !amz_date.starts_with(scope.date) {
        return Err(AuthError::MalformedHeader(
            "the credential scope's date is not the request's".into(),
        ));
    }
    let payload = req
        .header("x-amz-content-sha256")
        .ok_or(AuthError::MissingContentSha256)?;
    let is_hash = payload.len() == 64 && payload.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hash && !PAYLOAD_MODES.contains(&payload) {
        return Err(AuthError::InvalidContentSha256(payload.to_owned()));
    }
    let query = req.query();
    let canonical = canonical_request(req, &query, signed, payload)?;
    let scope_text = scope.text();
    let sts = string_to_sign(amz_date, &scope_text, &canonical);
    let key = signing_key(&cred.secret_key, scope.date, scope.region, scope.service);
    let expected = hex::encode(hmac(&key[..], sts.as_bytes()));
    if !signatures_match(&expected, signature) {
        tracing::debug!(access_key = %cred.access_key, %canonical, "V4 signature mismatch");
        return Err(AuthError::SignatureDoesNotMatch);
    }
    check_skew(when)?;
    let signing = |signing: ChunkSigning| {
        BodyCheck::Chunked(ChunkContext {
            signing,
            key: key.clone(),
            amz_date: amz_date.to_owned(),
            scope: scope_text.clone(),
            seed_signature: expected.clone(),
        })
    };
    let body = match payload {
        "UNSIGNED-PAYLOAD" => BodyCheck::None,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => signing(ChunkSigning::Signed { trailer: false }),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            signing(ChunkSigning::Signed { trailer: true })
        }
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => signing(ChunkSigning::Unsigned),
        hash => BodyCheck::Sha256(hash.to_ascii_lowercase()),
    };
    Ok(Authenticated {
        credential: cred.clone(),
        dialect: Dialect::Amz,
        body,
        coverage: Coverage {
            signed_headers: signed.split(';').map(str::to_owned).collect(),
            all_query: true,
            ..Coverage::default()
        },
    })
}

/// A presigned V4 URL (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders`, `X-Amz-Signature`); the payload is unsigned.
pub fn verify_presigned(
    req: &RequestView<'_>,
    query: &[QueryParam],
    credentials: &Credentials,
) -> Result<Authenticated, AuthError> {
    let get = |n: &str| {
        query
            .iter()
            .find(|q| q.name == n)
            .map(|q| q.value.as_str())
            .ok_or_else(|| AuthError::MalformedQuery(format!("a presigned V4 URL needs {n}")))
    };
    if get("X-Amz-Algorithm")? != ALGORITHM {
        return Err(AuthError::MalformedQuery(
            "X-Amz-Algorithm must be AWS4-HMAC-SHA256".into(),
        ));
    }
    let as_query = |e: AuthError| AuthError::MalformedQuery(e.to_string());
    let scope = Scope::parse(get("X-Amz-Credential")?).map_err(as_query)?;
    let cred = lookup(credentials, scope.access_key)?;
    let amz_date = get("X-Amz-Date")?;
    let when = parse_amz_date(amz_date).map_err(as_query)?;
    let expires: i64 = get("X-Amz-Expires")?
        .parse()
        .map_err(|_| AuthError::MalformedQuery("X-Amz-Expires must be seconds".into()))?;
    if !(0..=MAX_PRESIGNED_SECS).contains(&expires) {
        return Err(AuthError::MalformedQuery(
            "X-Amz-Expires must be 0 to 604800 seconds (7 days)".into(),
        ));
    }
    let signed = get("X-Amz-SignedHeaders")?;
    let signature = get("X-Amz-Signature")?;
    let canonical = canonical_request(req, query, signed, "UNSIGNED-PAYLOAD")?;
    let sts = string_to_sign(amz_date, &scope.text(), &canonical);
    let key = signing_key(&cred.secret_key, scope.date, scope.region, scope.service);
    let expected = hex::encode(hmac(&key[..], sts.as_bytes()));
    if !signatures_match(&expected, signature) {
        tracing::debug!(access_key = %cred.access_key, %canonical, "presigned V4 signature mismatch");
        return Err(AuthError::SignatureDoesNotMatch);
    }
    if when + expires < now_secs() {
        return Err(AuthError::Expired);
    }
    if when - now_secs() > i64::try_from(super::MAX_SKEW.as_secs()).unwrap_or(i64::MAX) {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    Ok(Authenticated {
        credential: cred.clone(),
        dialect: Dialect::Amz,
        body: BodyCheck::None,
        coverage: Coverage {
            signed_headers: signed.split(';').map(str::to_owned).collect(),
            all_query: true,
            ..Coverage::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    /// AWS's documented example (S3 API reference, "Example: GET Object"): the canonical
    /// request, string to sign and signature for `GET /test.txt` with `Range: bytes=0-9`.
    #[test]
    fn the_aws_documented_get_object_example_signs_as_documented() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        headers.insert("range", "bytes=0-9".parse().unwrap());
        headers.insert(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap(),
        );
        headers.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        let req = RequestView {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: "",
            headers: &headers,
            host_bucket: Some("examplebucket"),
        };
        let canonical = canonical_request(
            &req,
            &[],
            "host;range;x-amz-content-sha256;x-amz-date",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &canonical,
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
            "s3",
        );
        assert_eq!(
            hex::encode(hmac(&key[..], sts.as_bytes())),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}
