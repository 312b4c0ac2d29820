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

/// A refusal's message in `dialect`. The adapter reads the OBS names and names them in its
/// refusals; an S3 client sent the S3 names, so each OBS name (matched whole) becomes the S3
/// name it was translated from, and the algorithm's value `kms` the `aws:kms` it was sent as.
pub fn message_in(message: &str, dialect: Dialect) -> String {
    if dialect == Dialect::Obs {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len() + 16);
    let mut rest = message;
    while let Some(at) = rest.find("x-obs-") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // The longest OBS name at this place that ends where a name does.
        let name = RENAMES
            .iter()
            .filter(|(_, obs, _)| {
                rest.starts_with(obs)
                    && !rest[obs.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
            })
            .max_by_key(|(_, obs, _)| obs.len());
        match name {
            Some((amz, obs, algorithm)) => {
                out.push_str(amz);
                rest = &rest[obs.len()..];
                if *algorithm && let Some(after) = rest.strip_prefix(": kms") {
                    out.push_str(": aws:kms");
                    rest = after;
                }
            }
            None => {
                out.push_str("x-obs-");
                rest = &rest["x-obs-".len()..];
            }
        }
    }
    out.push_str(rest);
    // The one place the adapter quotes the algorithm's value apart from its name, and OBS's
    // name of server-side encryption under the service's own keys (`AES256`), S3's SSE-S3.
    out.replace("only \"kms\" is supported", "only \"aws:kms\" is supported")
        .replace("SSE-OBS", "SSE-S3")
}

#[cfg(test)]
mod tests {
    use super::*;
    use obs_adapter::{AdapterError, Operation, Place};

    /// Every refusal the adapter gives of an SSE parameter, by place.
    fn refusals() -> Vec<AdapterError> {
        let malformed = "not-a-key"
            .parse::<kms_proto::key_id::KeyRef>()
            .expect_err("malformed");
        let mut all = Vec::new();
        for place in [Place::Header, Place::QueryString, Place::FormField] {
            for value in ["AES256", "dsse", "KMS"] {
                all.push(AdapterError::UnsupportedAlgorithm {
                    value: value.to_owned(),
                    place,
                });
            }
            all.push(AdapterError::KeyIdWithoutSse { place });
            all.push(AdapterError::MalformedKeyId {
                place,
                source: malformed.clone(),
            });
            for (_, name, _) in RENAMES {
                all.push(AdapterError::InvalidParameter { name, place });
                all.push(AdapterError::SseNotAllowed {
                    operation: Operation::UploadPart,
                    name,
                    place,
                    hint: "",
                });
            }
        }
        for (_, name, _) in RENAMES {
            all.push(AdapterError::ConflictingParameter { name });
            all.push(AdapterError::SseCustomerConflict { name });
            all.push(AdapterError::SseCustomerWithKmsDefault { name });
        }
        all.push(AdapterError::MissingCopySource);
        all
    }

    #[test]
    fn refusals_of_an_s3_request_name_the_s3_parameters_it_sent() {
        for e in refusals() {
            let obs = e.to_string();
            let amz = message_in(&obs, Dialect::Amz);
            assert!(!amz.contains("x-obs-"), "{amz}");
            assert!(!amz.contains("\"kms\"") && !amz.contains(": kms"), "{amz}");
            assert!(!amz.contains("SSE-OBS"), "{amz}");
            // Each OBS name given became its S3 name, and nothing else changed.
            let mut longest_first = RENAMES.to_vec();
            longest_first.sort_by_key(|(amz_name, _, _)| std::cmp::Reverse(amz_name.len()));
            let back = longest_first
                .iter()
                .fold(amz.clone(), |m, (amz_name, obs_name, _)| {
                    m.replace(amz_name, obs_name)
                });
            assert_eq!(
                back.replace("aws:kms", "kms").replace("SSE-S3", "SSE-OBS"),
                obs
            );
            assert_eq!(message_in(&obs, Dialect::Obs), obs);
        }
        assert_eq!(
            message_in(
                "the header x-obs-server-side-encryption-kms-key-id requires x-obs-server-side-encryption: kms",
                Dialect::Amz
            ),
            "the header x-amz-server-side-encryption-aws-kms-key-id requires x-amz-server-side-encryption: aws:kms"
        );
        // Names that are not the SSE parameters' stay as they are.
        assert_eq!(
            message_in(
                "the header x-obs-expires, x-obs-server-side-encryption-other",
                Dialect::Amz
            ),
            "the header x-obs-expires, x-obs-server-side-encryption-other"
        );
    }

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
