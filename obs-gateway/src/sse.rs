//! The two SSE dialects. `obs-adapter` reads the OBS names (`x-obs-server-side-encryption: kms`,
//! `x-obs-server-side-encryption-kms-key-id`); S3 clients send `x-amz-server-side-encryption:
//! aws:kms` and `x-amz-server-side-encryption-aws-kms-key-id`. Requests are translated to the OBS
//! names before the adapter decides (a parameter given in both dialects reaches the adapter twice
//! and is refused as given twice, never silently merged), and responses are written back in the
//! dialect of the request, always with the full key ID.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::auth::Dialect;

/// S3 name, OBS name, and whether the value is the algorithm (`aws:kms` -> `kms`).
const RENAMES: &[(&str, &str, bool)] = &[
    (
        "x-amz-server-side-encryption",
        "x-obs-server-side-encryption",
        true,
    ),
    (
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-obs-server-side-encryption-kms-key-id",
        false,
    ),
    (
        "x-amz-server-side-encryption-customer-algorithm",
        "x-obs-server-side-encryption-customer-algorithm",
        false,
    ),
    (
        "x-amz-server-side-encryption-customer-key",
        "x-obs-server-side-encryption-customer-key",
        false,
    ),
    (
        "x-amz-server-side-encryption-customer-key-md5",
        "x-obs-server-side-encryption-customer-key-md5",
        false,
    ),
    ("x-amz-copy-source", "x-obs-copy-source", false),
];

fn obs_value(algorithm: bool, value: &str) -> String {
    if algorithm && value == "aws:kms" {
        "kms".to_owned()
    } else {
        value.to_owned()
    }
}

/// The headers with the S3 SSE names added under their OBS names.
pub fn to_obs_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for (amz, obs, algorithm) in RENAMES {
        for v in headers.get_all(*amz) {
            let v = match v.to_str() {
                Ok(s) => {
                    HeaderValue::from_str(&obs_value(*algorithm, s)).unwrap_or_else(|_| v.clone())
                }
                Err(_) => v.clone(),
            };
            out.append(HeaderName::from_static(obs), v);
        }
    }
    out
}

/// Query parameters (a presigned URL's) with the S3 SSE names renamed to the OBS names.
pub fn to_obs_query(query: &[(String, String)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(n, v)| {
            let lower = n.to_ascii_lowercase();
            match RENAMES.iter().find(|(amz, _, _)| *amz == lower) {
                Some((_, obs, algorithm)) => ((*obs).to_owned(), obs_value(*algorithm, v)),
                None => (n.clone(), v.clone()),
            }
        })
        .collect()
}

/// The dialect to answer in: the SSE parameters' own, else the signature's.
pub fn request_dialect(headers: &HeaderMap, query: &[(String, String)], auth: Dialect) -> Dialect {
    let uses = |prefix: &str| {
        let name = format!("{prefix}server-side-encryption");
        headers.keys().any(|k| k.as_str().starts_with(&name))
            || query
                .iter()
                .any(|(n, _)| n.to_ascii_lowercase().starts_with(&name))
    };
    if uses("x-obs-") {
        Dialect::Obs
    } else if uses("x-amz-") {
        Dialect::Amz
    } else {
        auth
    }
}

/// The adapter's (OBS) response headers in `dialect`.
pub fn response_headers(obs: &HeaderMap, dialect: Dialect) -> HeaderMap {
    if dialect == Dialect::Obs {
        return obs.clone();
    }
    let mut out = HeaderMap::new();
    for (name, value) in obs {
        match RENAMES.iter().find(|(_, o, _)| *o == name.as_str()) {
            Some((amz, _, algorithm)) => {
                let v = if *algorithm && value == "kms" {
                    HeaderValue::from_static("aws:kms")
                } else {
                    value.clone()
                };
                out.append(HeaderName::from_static(amz), v);
            }
            None => {
                out.append(name.clone(), value.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_names_reach_the_adapter_as_obs_names_and_answers_return_in_the_request_dialect() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-server-side-encryption",
            HeaderValue::from_static("aws:kms"),
        );
        h.insert(
            "x-amz-server-side-encryption-aws-kms-key-id",
            HeaderValue::from_static("r:d:key/x"),
        );
        let o = to_obs_headers(&h);
        assert_eq!(o["x-obs-server-side-encryption"], "kms");
        assert_eq!(o["x-obs-server-side-encryption-kms-key-id"], "r:d:key/x");
        assert_eq!(request_dialect(&h, &[], Dialect::Obs), Dialect::Amz);
        let back = response_headers(
            &obs_adapter::response_headers(&obs_adapter::Encryption::Plaintext),
            Dialect::Amz,
        );
        assert!(back.is_empty());
        let mut obs = HeaderMap::new();
        obs.insert(
            "x-obs-server-side-encryption",
            HeaderValue::from_static("kms"),
        );
        let back = response_headers(&obs, Dialect::Amz);
        assert_eq!(back["x-amz-server-side-encryption"], "aws:kms");
        // Both dialects at once: the adapter sees the parameter twice.
        h.insert(
            "x-obs-server-side-encryption",
            HeaderValue::from_static("kms"),
        );
        assert_eq!(
            to_obs_headers(&h)
                .get_all("x-obs-server-side-encryption")
                .iter()
                .count(),
            2
        );
    }
}
