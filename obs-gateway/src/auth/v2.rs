//! Signature V2: HMAC-SHA1 over the method, `Content-MD5`, `Content-Type`, the date, the dialect's
//! prefixed headers and the resource, base64. Two schemes share it: `OBS AK:sig` with `x-obs-`
//! headers and `AWS AK:sig` with `x-amz-` headers; and presigned URLs carry it in the query
//! (`AccessKeyId` or `AWSAccessKeyId`, `Expires`, `Signature`).
//!
//! The signers differ in which query parameters they sign as sub-resources: botocore signs its
//! fixed list (case-sensitive) and moves a presigned URL's prefixed headers into the query, where
//! they stay signed as headers; the OBS SDK signs its own list (case-insensitive) and every
//! prefixed query parameter as a sub-resource; for a bucket with virtual-hosted addressing it signs
//! `/bucket/`, botocore `/bucket`. A request verifies when its signature matches the string to
//! sign under one of these readings: each reading covers the same request, so none lets a
//! signature stand for another request.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::{
    AuthError, Authenticated, BodyCheck, Coverage, Dialect, QueryParam, RequestView, check_skew,
    lookup, now_secs, signatures_match,
};
use crate::credentials::{Credential, Credentials};

/// botocore's `HmacV1Auth.QSAOfInterest`, matched case-sensitively.
pub(crate) const BOTOCORE_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "cors",
    "defaultObjectAcl",
    "location",
    "logging",
    "partNumber",
    "policy",
    "requestPayment",
    "torrent",
    "versioning",
    "versionId",
    "versions",
    "website",
    "uploads",
    "uploadId",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "delete",
    "lifecycle",
    "tagging",
    "restore",
    "storageClass",
    "notification",
    "replication",
    "analytics",
    "metrics",
    "inventory",
    "select",
    "select-type",
    "object-lock",
];

/// The OBS SDK's `ALLOWED_RESOURCE_PARAMTER_NAMES`, matched on the lower-cased name.
pub(crate) const OBS_SUBRESOURCES: &[&str] = &[
    "acl",
    "backtosource",
    "policy",
    "torrent",
    "logging",
    "location",
    "storageinfo",
    "quota",
    "storageclass",
    "storagepolicy",
    "requestpayment",
    "versions",
    "versioning",
    "versionid",
    "uploads",
    "uploadid",
    "partnumber",
    "website",
    "notification",
    "dispolicy",
    "lifecycle",
    "deletebucket",
    "delete",
    "cors",
    "restore",
    "tagging",
    "replication",
    "metadata",
    "encryption",
    "publicaccessblock",
    "bucketstatus",
    "policystatus",
    "x-obs-accesslabel",
    "inventory",
    "obscompresspolicy",
    "object-lock",
    "retention",
    "directcoldaccess",
    "append",
    "position",
    "truncate",
    "modify",
    "rename",
    "length",
    "name",
    "fileinterface",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "x-image-save-bucket",
    "x-image-save-object",
    "x-image-process",
    "x-oss-process",
];

/// Which signer's reading of the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// botocore: its sub-resource list; a presigned URL's prefixed parameters are headers.
    Botocore,
    /// The OBS SDK: its list and every prefixed parameter as sub-resources.
    ObsSdk,
}

/// A V2 request's date (`Date`, or `x-amz-date` / `x-obs-date`) in seconds since the Unix epoch:
/// an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, or RFC 850's or asctime's form, as
/// `httpdate` reads them), or an RFC 2822 date with a numeric zone
/// (`Sun, 06 Nov 1994 08:49:37 +0000`), which s3cmd sends and S3 takes.
fn request_date_secs(text: &str) -> Option<i64> {
    if let Ok(when) = httpdate::parse_http_date(text) {
        return when
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok());
    }
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .ok()
        .map(|t| t.as_second())
}

/// `Authorization: OBS AK:sig` or `AWS AK:sig` (`rest` is after the scheme).
pub fn verify_header(
    req: &RequestView<'_>,
    rest: &str,
    dialect: Dialect,
    credentials: &Credentials,
) -> Result<Authenticated, AuthError> {
    let (ak, sig) = rest.trim().rsplit_once(':').ok_or_else(|| {
        AuthError::Malformed("Authorization must be `<scheme> AK:signature`".into())
    })?;
    let cred = lookup(credentials, ak)?;
    let prefixed_date = req.header(&format!("{}date", dialect.prefix()));
    let date_text = prefixed_date
        .or_else(|| req.header("date"))
        .ok_or_else(|| AuthError::Malformed("the request has no Date header".into()))?;
    let secs = request_date_secs(date_text)
        .ok_or_else(|| AuthError::Malformed(format!("unreadable date {date_text:?}")))?;
    let date_line = if prefixed_date.is_some() {
        ""
    } else {
        date_text
    };
    let query = req.query();
    let reading = verify(req, &query, cred, dialect, date_line, sig, false)?;
    check_skew(secs)?;
    Ok(Authenticated {
        credential: cred.clone(),
        dialect,
        body: BodyCheck::None,
        coverage: Coverage {
            header_prefix: Some(dialect.prefix()),
            // Only the OBS SDK's reading signs prefixed query parameters (as sub-resources).
            query_prefix: (reading == Reading::ObsSdk).then_some(dialect.prefix()),
            ..Coverage::default()
        },
    })
}

/// A presigned V2 URL.
pub fn verify_presigned(
    req: &RequestView<'_>,
    query: &[QueryParam],
    credentials: &Credentials,
) -> Result<Authenticated, AuthError> {
    let get = |n: &str| query.iter().find(|q| q.name == n).map(|q| q.value.as_str());
    let (ak, dialect) = match (get("AccessKeyId"), get("AWSAccessKeyId")) {
        (Some(ak), _) => (ak, Dialect::Obs),
        (None, Some(ak)) => (ak, Dialect::Amz),
        (None, None) => return Err(AuthError::Anonymous),
    };
    let sig = get("Signature").unwrap_or_default();
    let expires_text = get("Expires")
        .ok_or_else(|| AuthError::Malformed("a presigned URL needs Expires".into()))?;
    let expires: i64 = expires_text
        .parse()
        .map_err(|_| AuthError::Malformed("Expires must be seconds since the epoch".into()))?;
    let cred = lookup(credentials, ak)?;
    verify(req, query, cred, dialect, expires_text, sig, true)?;
    if expires < now_secs() {
        return Err(AuthError::Expired);
    }
    // Both readings sign the dialect's prefixed parameters: as headers moved into the query
    // (botocore) or as sub-resources (the OBS SDK).
    Ok(Authenticated {
        credential: cred.clone(),
        dialect,
        body: BodyCheck::None,
        coverage: Coverage {
            header_prefix: Some(dialect.prefix()),
            query_prefix: Some(dialect.prefix()),
            ..Coverage::default()
        },
    })
}

fn verify(
    req: &RequestView<'_>,
    query: &[QueryParam],
    cred: &Credential,
    dialect: Dialect,
    date_line: &str,
    given: &str,
    presigned: bool,
) -> Result<Reading, AuthError> {
    let base = match req.host_bucket {
        Some(b) => format!("/{b}{}", req.raw_path),
        None => req.raw_path.to_owned(),
    };
    let mut resources = vec![base.clone()];
    // A bucket-level request: `/bucket` and `/bucket/` are both signers' spellings.
    let trimmed = base.trim_end_matches('/');
    if trimmed.len() > 1 && !trimmed[1..].contains('/') {
        resources = vec![trimmed.to_owned(), format!("{trimmed}/")];
    }
    for resource in &resources {
        for reading in [Reading::Botocore, Reading::ObsSdk] {
            let sts = string_to_sign(req, query, dialect, date_line, resource, reading, presigned);
            if signatures_match(&sign(&cred.secret_key, &sts), given) {
                return Ok(reading);
            }
        }
    }
    tracing::debug!(
        access_key = %cred.access_key,
        first_reading = %string_to_sign(req, query, dialect, date_line, &resources[0], Reading::Botocore, presigned),
        "V2 signature mismatch"
    );
    Err(AuthError::SignatureDoesNotMatch)
}

/// HMAC-SHA1 of `sts` under `secret`, base64 (also a POST form's policy signature).
pub fn sign(secret: &str, sts: &str) -> String {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(sts.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn string_to_sign(
    req: &RequestView<'_>,
    query: &[QueryParam],
    dialect: Dialect,
    date_line: &str,
    resource: &str,
    reading: Reading,
    presigned: bool,
) -> String {
    let prefix = dialect.prefix();
    let from_query = |n: &str| {
        query
            .iter()
            .find(|q| q.name.eq_ignore_ascii_case(n))
            .map(|q| q.value.clone())
    };
    let standard = |n: &str| {
        req.header(n)
            .map(|v| v.trim().to_owned())
            .or_else(|| {
                (presigned && reading == Reading::Botocore)
                    .then(|| from_query(n))
                    .flatten()
            })
            .unwrap_or_default()
    };
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        req.method,
        standard("content-md5"),
        standard("content-type"),
        date_line
    );
    let mut custom: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in req.headers {
        let n = name.as_str();
        if n.starts_with(prefix) {
            let v = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
            custom.entry(n.to_owned()).or_default().push(v);
        }
    }
    if presigned && reading == Reading::Botocore {
        for q in query {
            let n = q.name.to_ascii_lowercase();
            if n.starts_with(prefix) {
                custom.entry(n).or_default().push(q.value.clone());
            }
        }
    }
    for (name, values) in &custom {
        s.push_str(name);
        s.push(':');
        s.push_str(&values.join(","));
        s.push('\n');
    }
    s.push_str(resource);
    let mut subs: Vec<&QueryParam> = query
        .iter()
        .filter(|q| match reading {
            Reading::Botocore => BOTOCORE_SUBRESOURCES.contains(&q.name.as_str()),
            Reading::ObsSdk => {
                let lower = q.name.to_ascii_lowercase();
                OBS_SUBRESOURCES.contains(&lower.as_str()) || lower.starts_with(prefix)
            }
        })
        .collect();
    subs.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, q) in subs.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(&q.name);
        if q.has_value {
            s.push('=');
            s.push_str(&q.value);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn creds() -> Credentials {
        Credentials::parse(
            "[[credentials]]\naccess_key = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\ndomain_id = \"d1\"\n",
            "t",
        )
        .unwrap()
    }

    #[test]
    fn a_request_date_is_an_http_date_or_an_rfc_2822_date() {
        let nov_6 = Some(784_111_777);
        // (rule, text, seconds)
        for (rule, text, want) in [
            ("IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", nov_6),
            ("RFC 850", "Sunday, 06-Nov-94 08:49:37 GMT", nov_6),
            ("asctime", "Sun Nov  6 08:49:37 1994", nov_6),
            (
                "a numeric zone, as s3cmd sends",
                "Sun, 06 Nov 1994 08:49:37 +0000",
                nov_6,
            ),
            (
                "another zone is the same instant",
                "Sun, 06 Nov 1994 09:49:37 +0100",
                nov_6,
            ),
            ("not a date", "yesterday", None),
            ("a wrong weekday", "Mon, 06 Nov 1994 08:49:37 +0000", None),
            ("empty", "", None),
        ] {
            assert_eq!(request_date_secs(text), want, "{rule}");
        }
    }

    /// The known answer of the AWS S3 developer guide's V2 example (GET, virtual-hosted
    /// `awsexamplebucket1`), with its date moved to now by checking the string to sign only.
    #[test]
    fn the_aws_documented_string_to_sign_gives_the_documented_signature() {
        let mut headers = HeaderMap::new();
        headers.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let req = RequestView {
            method: "GET",
            raw_path: "/photos/puppy.jpg",
            raw_query: "",
            headers: &headers,
            host_bucket: Some("awsexamplebucket1"),
        };
        let sts = string_to_sign(
            &req,
            &[],
            Dialect::Amz,
            "Tue, 27 Mar 2007 19:36:42 +0000",
            "/awsexamplebucket1/photos/puppy.jpg",
            Reading::Botocore,
            false,
        );
        let c = creds();
        let cred = c.get("AKIAIOSFODNN7EXAMPLE").unwrap();
        assert_eq!(sign(&cred.secret_key, &sts), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    #[test]
    fn a_wrong_secret_an_unknown_key_and_an_old_date_are_refused() {
        let c = creds();
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut headers = HeaderMap::new();
        headers.insert("date", date.parse().unwrap());
        let req = RequestView {
            method: "GET",
            raw_path: "/b/k",
            raw_query: "",
            headers: &headers,
            host_bucket: None,
        };
        let sts = format!("GET\n\n\n{date}\n/b/k");
        let good = sign("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &sts);
        let bad = sign("wrong", &sts);
        assert!(
            verify_header(
                &req,
                &format!("AKIAIOSFODNN7EXAMPLE:{good}"),
                Dialect::Amz,
                &c
            )
            .is_ok()
        );
        assert_eq!(
            verify_header(
                &req,
                &format!("AKIAIOSFODNN7EXAMPLE:{bad}"),
                Dialect::Amz,
                &c
            )
            .unwrap_err(),
            AuthError::SignatureDoesNotMatch
        );
        assert_eq!(
            verify_header(&req, &format!("NOPE:{good}"), Dialect::Amz, &c).unwrap_err(),
            AuthError::InvalidAccessKeyId
        );
        let old = "Tue, 27 Mar 2007 19:36:42 GMT";
        let mut headers = HeaderMap::new();
        headers.insert("date", old.parse().unwrap());
        let req = RequestView {
            headers: &headers,
            ..req
        };
        let sig = sign(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &format!("GET\n\n\n{old}\n/b/k"),
        );
        assert_eq!(
            verify_header(
                &req,
                &format!("AKIAIOSFODNN7EXAMPLE:{sig}"),
                Dialect::Amz,
                &c
            )
            .unwrap_err(),
            AuthError::RequestTimeTooSkewed
        );
    }
}
