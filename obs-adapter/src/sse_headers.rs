//! The SSE-KMS request parameters (rules 1, 2 and 6): where each operation reads them, and how they
//! are validated.
//!
//! Names are matched without regard to ASCII case in every place (headers, form fields, query
//! parameters): a parameter that was meant as an SSE parameter is never silently ignored, which
//! would store plaintext. Values are matched exactly.

use std::collections::BTreeMap;

use http::HeaderMap;
use kms_proto::key_id::KeyRef;

use crate::error::{AdapterError, Place};
use crate::vocab::Operation;

pub use crate::vocab::{COPY_SOURCE_HEADER, SSE_C_HEADERS, SSE_HEADER, SSE_KEY_ID_HEADER, SSE_KMS};

const NAMES: [&str; 2] = [SSE_HEADER, SSE_KEY_ID_HEADER];

/// The SSE parameters exactly as the request gave them (after the place rules), before validation.
/// The bucket policy's conditions read these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSse {
    /// The value of `x-obs-server-side-encryption`, and where it was given.
    pub algorithm: Option<(String, Place)>,
    /// The value of `x-obs-server-side-encryption-kms-key-id`, and where it was given.
    pub key_id: Option<(String, Place)>,
    /// The first SSE-C (customer-provided key) parameter the request carries, in any place.
    pub sse_c: Option<&'static str>,
}

impl RawSse {
    /// The policy condition context: lower-case parameter name to value.
    pub fn condition_context(&self) -> BTreeMap<String, String> {
        let mut ctx = BTreeMap::new();
        if let Some((v, _)) = &self.algorithm {
            ctx.insert(SSE_HEADER.to_owned(), v.clone());
        }
        if let Some((v, _)) = &self.key_id {
            ctx.insert(SSE_KEY_ID_HEADER.to_owned(), v.clone());
        }
        ctx
    }
}

/// What the request asks for, validated (rules 1 and 2, syntax only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedSse {
    /// No SSE parameter.
    None,
    /// SSE-KMS, with or without a key ID.
    Kms {
        /// The named key, when given.
        key: Option<KeyRef>,
    },
}

/// One place's values of the two names: `Err` when a name occurs twice or is not text.
type Found = [Option<String>; 2];

fn from_headers(headers: &HeaderMap) -> Result<Found, AdapterError> {
    let mut found: Found = [None, None];
    for (slot, name) in found.iter_mut().zip(NAMES) {
        let mut values = headers.get_all(name).iter();
        if let Some(v) = values.next() {
            let bad = || AdapterError::InvalidParameter {
                name,
                place: Place::Header,
            };
            if values.next().is_some() {
                return Err(bad());
            }
            *slot = Some(v.to_str().map_err(|_| bad())?.to_owned());
        }
    }
    Ok(found)
}

fn from_pairs(pairs: &[(String, String)], place: Place) -> Result<Found, AdapterError> {
    let mut found: Found = [None, None];
    for (slot, name) in found.iter_mut().zip(NAMES) {
        for (k, v) in pairs {
            if k.eq_ignore_ascii_case(name) {
                if slot.is_some() {
                    return Err(AdapterError::InvalidParameter { name, place });
                }
                *slot = Some(v.clone());
            }
        }
    }
    Ok(found)
}

fn refuse_any(
    found: &Found,
    operation: Operation,
    place: Place,
    hint: &'static str,
) -> Result<(), AdapterError> {
    for (slot, name) in found.iter().zip(NAMES) {
        if slot.is_some() {
            return Err(AdapterError::SseNotAllowed {
                operation,
                name,
                place,
                hint,
            });
        }
    }
    Ok(())
}

/// Reads the SSE parameters from the places `operation` takes them from (rule 6), refusing them in
/// every other place:
///
/// - PutObject, CopyObject, InitiateMultipartUpload, AppendObject: headers, or query parameters
///   (presigned URLs);
///   a parameter given in both must have the same value in both.
/// - PostObject: form fields only.
/// - UploadPart, CompleteMultipartUpload, GetObject, HeadObject: none.
pub fn read_raw(
    operation: Operation,
    headers: &HeaderMap,
    form_fields: &[(String, String)],
    query: &[(String, String)],
) -> Result<RawSse, AdapterError> {
    let h = from_headers(headers)?;
    let f = from_pairs(form_fields, Place::FormField)?;
    let q = from_pairs(query, Place::QueryString)?;
    let chosen: [Option<(String, Place)>; 2] = match operation {
        Operation::PutObject
        | Operation::CopyObject
        | Operation::InitiateMultipartUpload
        | Operation::AppendObject => {
            refuse_any(
                &f,
                operation,
                Place::FormField,
                "; only POST uploads take it as a form field",
            )?;
            let mut out = [None, None];
            for ((slot, name), (hv, qv)) in out.iter_mut().zip(NAMES).zip(h.into_iter().zip(q)) {
                *slot = match (hv, qv) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(AdapterError::ConflictingParameter { name });
                    }
                    (Some(a), _) => Some((a, Place::Header)),
                    (None, Some(b)) => Some((b, Place::QueryString)),
                    (None, None) => None,
                };
            }
            out
        }
        Operation::PostObject => {
            let hint = "; POST uploads take it as a form field";
            refuse_any(&h, operation, Place::Header, hint)?;
            refuse_any(&q, operation, Place::QueryString, hint)?;
            let [a, b] = f;
            [
                a.map(|v| (v, Place::FormField)),
                b.map(|v| (v, Place::FormField)),
            ]
        }
        Operation::UploadPart | Operation::CompleteMultipartUpload => {
            let hint = "; parts and the completion inherit the encryption of the multipart upload";
            refuse_any(&h, operation, Place::Header, hint)?;
            refuse_any(&f, operation, Place::FormField, hint)?;
            refuse_any(&q, operation, Place::QueryString, hint)?;
            [None, None]
        }
        Operation::GetObject | Operation::HeadObject => {
            let hint = "; an object is read with the key it was stored under";
            refuse_any(&h, operation, Place::Header, hint)?;
            refuse_any(&f, operation, Place::FormField, hint)?;
            refuse_any(&q, operation, Place::QueryString, hint)?;
            [None, None]
        }
    };
    let [algorithm, key_id] = chosen;
    let sse_c = SSE_C_HEADERS.into_iter().find(|name| {
        headers.contains_key(*name)
            || form_fields
                .iter()
                .chain(query)
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
    });
    if (algorithm.is_some() || key_id.is_some())
        && let Some(name) = sse_c
    {
        return Err(AdapterError::SseCustomerConflict { name });
    }
    Ok(RawSse {
        algorithm,
        key_id,
        sse_c,
    })
}

/// Validates the raw parameters (rules 1 and 2, syntax): the algorithm must be exactly `kms`, a key
/// ID needs the algorithm, and a key ID must follow the key-ID grammar of `kms_proto::key_id`.
pub fn validate(raw: &RawSse) -> Result<RequestedSse, AdapterError> {
    match (&raw.algorithm, &raw.key_id) {
        (None, None) => Ok(RequestedSse::None),
        (None, Some((_, place))) => Err(AdapterError::KeyIdWithoutSse { place: *place }),
        (Some((value, place)), _) if value != SSE_KMS => Err(AdapterError::UnsupportedAlgorithm {
            value: value.chars().take(100).collect(),
            place: *place,
        }),
        (Some(_), None) => Ok(RequestedSse::Kms { key: None }),
        (Some(_), Some((key, place))) => {
            let key = key
                .parse::<KeyRef>()
                .map_err(|source| AdapterError::MalformedKeyId {
                    place: *place,
                    source,
                })?;
            Ok(RequestedSse::Kms { key: Some(key) })
        }
    }
}
