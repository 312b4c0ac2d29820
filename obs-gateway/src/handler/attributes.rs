//! S3's GetObjectAttributes (`GET /{bucket}/{key}?attributes`, boto3's
//! `get_object_attributes`): the attributes `x-amz-object-attributes` names (`ETag`,
//! `ObjectSize`, `StorageClass`, `ObjectParts`, `Checksum`) of the current version, for whoever
//! may HEAD the object. `Checksum` answers the checksum a PUT or a checksummed multipart upload
//! carried and the gateway kept, with its type (none for other objects, as S3 for an object
//! uploaded without one); `ObjectParts` is given for an object a multipart upload made, its
//! parts' plaintext sizes (and their checksums, when kept) paged by `x-amz-max-parts` and
//! `x-amz-part-number-marker`.

use http::{HeaderValue, Response, header};
use obs_adapter::Operation;

use super::{ApiError, Body, Ctx, checksum_element, conditions, xml_response};
use crate::checksum::Combination;
use crate::store::ObjectRow;
use crate::xml;

/// The attributes a request may name.
const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

/// The most parts one answer lists (S3's default and limit).
const MAX_PARTS: usize = 1000;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
struct Ask {
    attributes: Vec<&'static str>,
    max_parts: usize,
    part_marker: usize,
}

fn ask(headers: &http::HeaderMap) -> Result<Ask, ApiError> {
    let mut attributes = Vec::new();
    for v in headers.get_all("x-amz-object-attributes") {
        let v = v
            .to_str()
            .map_err(|_| ApiError::bad("x-amz-object-attributes must be text"))?;
        for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let known = ATTRIBUTES.iter().find(|a| **a == name).ok_or_else(|| {
                ApiError::bad(format!("Invalid attribute name specified: {name}"))
            })?;
            if !attributes.contains(known) {
                attributes.push(*known);
            }
        }
    }
    if attributes.is_empty() {
        return Err(ApiError::bad(
            "x-amz-object-attributes header specifying the attributes to be retrieved is either \
             missing or empty",
        ));
    }
    let number = |name: &str, default: usize| match headers.get(name) {
        None => Ok(default),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| ApiError::bad(format!("{name} is not a whole number"))),
    };
    Ok(Ask {
        attributes,
        max_parts: number("x-amz-max-parts", MAX_PARTS)?.min(MAX_PARTS),
        part_marker: number("x-amz-part-number-marker", 0)?,
    })
}

/// The answer's document.
fn document(obj: &ObjectRow, ask: &Ask) -> String {
    let mut s = format!(
        "{}<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        xml::DECL
    );
    for attribute in &ask.attributes {
        match *attribute {
            "ETag" => s.push_str(&format!("<ETag>{}</ETag>", xml::escape(&obj.etag))),
            "ObjectSize" => s.push_str(&format!("<ObjectSize>{}</ObjectSize>", obj.size)),
            "StorageClass" => s.push_str("<StorageClass>STANDARD</StorageClass>"),
            "ObjectParts" => {
                if let Some(sizes) = &obj.part_sizes {
                    s.push_str(&parts(sizes, part_checksums(obj), ask));
                }
            }
            "Checksum" => {
                if let Some(kept) = &obj.checksum
                    && let Some(element) = checksum_element(kept)
                {
                    s.push_str(&format!(
                        "<Checksum>{element}<ChecksumType>{}</ChecksumType></Checksum>",
                        Combination::of_value(&kept.1).name()
                    ));
                }
            }
            _ => {}
        }
    }
    s.push_str("</GetObjectAttributesResponse>");
    s
}

/// A multipart object's parts' checksums: its checksum's header name, and each part's value.
fn part_checksums(obj: &ObjectRow) -> Option<(&String, &[String])> {
    Some((&obj.checksum.as_ref()?.0, obj.part_checksums.as_deref()?))
}

fn parts(sizes: &[u64], checksums: Option<(&String, &[String])>, ask: &Ask) -> String {
    let listed: Vec<(usize, u64)> = sizes
        .iter()
        .enumerate()
        .map(|(i, size)| (i + 1, *size))
        .filter(|(n, _)| *n > ask.part_marker)
        .take(ask.max_parts)
        .collect();
    let truncated = listed.last().is_some_and(|(last, _)| *last < sizes.len());
    let mut s = format!(
        "<ObjectParts><PartsCount>{}</PartsCount><PartNumberMarker>{}</PartNumberMarker>",
        sizes.len(),
        ask.part_marker
    );
    if let Some((last, _)) = listed.last() {
        s.push_str(&format!(
            "<NextPartNumberMarker>{last}</NextPartNumberMarker>"
        ));
    }
    s.push_str(&format!(
        "<MaxParts>{}</MaxParts><IsTruncated>{truncated}</IsTruncated>",
        ask.max_parts
    ));
    for (n, size) in listed {
        let checksum = checksums
            .and_then(|(name, values)| Some((name.clone(), values.get(n - 1)?.clone())))
            .and_then(|kept| checksum_element(&kept))
            .unwrap_or_default();
        s.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><Size>{size}</Size>{checksum}</Part>"
        ));
    }
    s.push_str("</ObjectParts>");
    s
}

impl Ctx<'_> {
    /// GetObjectAttributes: the same access as HEAD (the bucket's ACL or policy, and the
    /// adapter's rules for SSE-KMS objects).
    pub(super) async fn get_attributes(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        let which = self.version_ref()?;
        let ask = ask(self.headers)?;
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let found = self.gw.store.object_version(bucket, key, which)?;
        let obj = self.found_version(&facts, found, which)?;
        self.decide_read(Operation::HeadObject, &facts, key, &obj)
            .await?;
        let mut r = xml_response(document(&obj, &ask));
        self.put_version_id(r.headers_mut(), &row, obj.version_id.as_deref());
        if let Ok(v) = HeaderValue::from_str(&conditions::http_date(obj.modified_ms)) {
            r.headers_mut().insert(header::LAST_MODIFIED, v);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_request_names_known_attributes_once_each() {
        let got = ask(&headers(&[
            ("x-amz-object-attributes", "ETag,ObjectSize"),
            ("x-amz-object-attributes", "ETag, StorageClass"),
            ("x-amz-max-parts", "2"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            Ask {
                attributes: vec!["ETag", "ObjectSize", "StorageClass"],
                max_parts: 2,
                part_marker: 0
            }
        );
        for bad in [
            &[][..],
            &[("x-amz-object-attributes", "")][..],
            &[("x-amz-object-attributes", "etag")][..],
            &[
                ("x-amz-object-attributes", "ETag"),
                ("x-amz-max-parts", "-1"),
            ][..],
        ] {
            let e = ask(&headers(bad)).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "InvalidArgument"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_multipart_objects_parts_are_paged_after_the_marker() {
        let ask = |max_parts, part_marker| Ask {
            attributes: vec!["ObjectParts"],
            max_parts,
            part_marker,
        };
        let sizes = [10, 20, 5];
        // (max parts, marker, the listed parts, truncated)
        let cases = [
            (1000, 0, vec![(1, 10), (2, 20), (3, 5)], false),
            (2, 0, vec![(1, 10), (2, 20)], true),
            (2, 2, vec![(3, 5)], false),
            (2, 3, vec![], false),
        ];
        for (max, marker, listed, truncated) in cases {
            let got = parts(&sizes, None, &ask(max, marker));
            let want_parts: String = listed
                .iter()
                .map(|(n, s)| format!("<Part><PartNumber>{n}</PartNumber><Size>{s}</Size></Part>"))
                .collect();
            assert!(got.contains(&want_parts), "{max} {marker}: {got}");
            assert_eq!(got.matches("<Part>").count(), listed.len(), "{got}");
            assert!(
                got.contains(&format!("<IsTruncated>{truncated}</IsTruncated>")),
                "{got}"
            );
            // S3 names the total `PartsCount` on the wire (`TotalPartsCount` in the SDKs).
            assert!(got.contains("<PartsCount>3</PartsCount>"), "{got}");
        }
    }

    #[test]
    fn a_part_of_an_object_with_a_checksum_answers_its_own_value() {
        let ask = Ask {
            attributes: vec!["ObjectParts"],
            max_parts: 2,
            part_marker: 1,
        };
        let values = ["MQ==".to_owned(), "Mg==".to_owned(), "Mw==".to_owned()];
        let name = "x-amz-checksum-sha256".to_owned();
        let got = parts(&[10, 20, 5], Some((&name, &values)), &ask);
        assert!(
            got.contains(concat!(
                "<Part><PartNumber>2</PartNumber><Size>20</Size><ChecksumSHA256>Mg==</ChecksumSHA256></Part>",
                "<Part><PartNumber>3</PartNumber><Size>5</Size><ChecksumSHA256>Mw==</ChecksumSHA256></Part>"
            )),
            "{got}"
        );
    }
}
