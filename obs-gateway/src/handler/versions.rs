//! Object versions at the edge: which version a request names (`versionId`), how a read of a
//! missing version or of a delete marker is refused, the version headers answered, and the
//! versions listing (ListObjectVersions, the OBS SDK's `listVersions`).

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use obs_adapter::BucketFacts;

use super::conditions;
use super::listing::{Page, key_encoding, page_size};
use super::{ApiError, Body, Ctx, xml_response};
use crate::store::{BucketRow, ObjectRow, Version, VersionEntry, VersionRef, Versioning};
use crate::xml;

/// What a `versionId` parameter names: absent, the current version; `null`, the `null` version;
/// else a version ID, which must be one the gateway could have made (32 lower-case hex digits),
/// or the request is refused as S3 refuses a malformed one (400 InvalidArgument).
pub(super) fn version_ref(param: Option<&str>) -> Result<VersionRef<'_>, ApiError> {
    let which = VersionRef::of(param);
    match which {
        VersionRef::Id(Some(id))
            if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Err(ApiError::bad("invalid version id specified"))
        }
        _ => Ok(which),
    }
}

/// A version ID as answered: `null` for the `null` version.
pub(super) fn shown(version_id: Option<&str>) -> &str {
    version_id.unwrap_or("null")
}

fn no_version() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NoSuchVersion",
        "the specified version does not exist",
    )
}

impl Ctx<'_> {
    /// The version the request's `versionId` names ([`version_ref`]).
    pub(super) fn version_ref(&self) -> Result<VersionRef<'_>, ApiError> {
        version_ref(self.t.get("versionId"))
    }

    /// The object a read of the version `which` found, or its refusal: to anyone but the
    /// bucket's owner AccessDenied, as for a key that exists, so that nobody learns what a
    /// private bucket holds (S3 answers so a caller without s3:ListBucket); to the owner NoSuchKey (no current version) or NoSuchVersion; a delete marker is NoSuchKey when
    /// it is the current version and 405 MethodNotAllowed when named, both marked as S3 marks
    /// them (`x-amz-delete-marker`, its version ID). A version named by ID is the bucket
    /// owner's alone: a bucket policy's `GetObject` reaches current objects only (S3 asks
    /// `GetObjectVersion` for a `versionId`, which the adapter's policies do not grant), so an
    /// object replaced or deleted is not read through a policy meant for what is there now.
    pub(super) fn found_version<T>(
        &self,
        facts: &BucketFacts,
        found: Option<Version<T>>,
        which: VersionRef<'_>,
    ) -> Result<T, ApiError> {
        if which != VersionRef::Current && facts.owner != self.caller.domain {
            return Err(ApiError::denied());
        }
        match (found, which) {
            (Some(Version::Object(found)), _) => Ok(found),
            _ if facts.owner != self.caller.domain => Err(ApiError::denied()),
            (None, VersionRef::Current) => Err(ApiError::no_key()),
            (None, VersionRef::Id(_)) => Err(no_version()),
            (
                Some(Version::DeleteMarker {
                    version_id,
                    modified_ms,
                }),
                which,
            ) => {
                let mut h = HeaderMap::new();
                self.put_delete_marker(&mut h, version_id.as_deref());
                if which == VersionRef::Current {
                    return Err(ApiError::no_key().with_headers(h));
                }
                if let Ok(v) = HeaderValue::from_str(&conditions::http_date(modified_ms)) {
                    h.insert(header::LAST_MODIFIED, v);
                }
                Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "the specified method is not allowed against a delete marker",
                )
                .with_headers(h))
            }
        }
    }

    /// The version of an object in the bucket `row` that a call on its sub-resources (its tags,
    /// its ACL, its lock) names (`versionId`, or the current one), with the refusal of a
    /// missing one or a delete marker. The caller has read the bucket as its owner's.
    pub(super) fn named_version(&self, row: &BucketRow, key: &str) -> Result<ObjectRow, ApiError> {
        let which = self.version_ref()?;
        let found = self.gw.store.object_version(&row.name, key, which)?;
        self.found_version(&self.facts(row)?, found, which)
    }

    /// Answers the version ID of the object a call read or made in the bucket `row`: its ID, or
    /// `null` for the `null` version of a bucket whose versioning has been set (enabled or
    /// suspended), as S3 answers; nothing in a bucket that never had versioning.
    pub(super) fn put_version_id(
        &self,
        h: &mut HeaderMap,
        row: &BucketRow,
        version_id: Option<&str>,
    ) {
        if version_id.is_some() || row.versioning != Versioning::Off {
            self.put_version_header(h, "version-id", shown(version_id));
        }
    }

    /// Answers that a call made, removed or met the delete marker `version_id`.
    pub(super) fn put_delete_marker(&self, h: &mut HeaderMap, version_id: Option<&str>) {
        self.put_version_header(h, "delete-marker", "true");
        self.put_version_header(h, "version-id", shown(version_id));
    }

    /// Answers `value` as the version header `name` (`version-id`, ...) in the request's dialect.
    pub(super) fn put_version_header(&self, h: &mut HeaderMap, name: &str, value: &str) {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(format!("{}{name}", self.dialect_prefix()).as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    }

    /// `GET /{bucket}?versions` (ListObjectVersions, the OBS SDK's `listVersions`): every
    /// version and delete marker, by key and then newest first, under `prefix`, rolled up at
    /// `delimiter`, resuming after `key-marker` (all of its versions, or with
    /// `version-id-marker` those up to that one). boto3's `bucket.object_versions.delete()`,
    /// how much code empties a versioned bucket, lists them so.
    pub(super) fn list_versions(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let t = self.t;
        let prefix = t.get("prefix").unwrap_or("");
        let delimiter = t.get("delimiter").filter(|d| !d.is_empty());
        let max_keys = page_size(t, "max-keys")?;
        let key_marker = t.get("key-marker").unwrap_or("");
        let version_marker = t.get("version-id-marker").unwrap_or("");
        let mut after_seq = i64::MIN;
        if !version_marker.is_empty() {
            if key_marker.is_empty() {
                return Err(ApiError::bad(
                    "a version-id-marker cannot be specified without a key-marker",
                ));
            }
            let VersionRef::Id(id) = version_ref(Some(version_marker))? else {
                unreachable!("a version-id-marker is given");
            };
            after_seq = self
                .gw
                .store
                .version_seq(name, key_marker, id)?
                .ok_or_else(|| ApiError::bad("the version-id-marker names no version"))?;
        }
        let mut page: Page<'_, VersionEntry> = Page::new(prefix, delimiter, key_marker, max_keys);
        let mut after = key_marker.to_owned();
        'scan: while !page.takes_nothing() {
            let batch = self
                .gw
                .store
                .list_versions(name, prefix, &after, after_seq, 1000)?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                after.clone_from(&e.row.key);
                after_seq = e.seq;
                if !page.offer(&after, e) {
                    break 'scan;
                }
            }
        }
        let enc = key_encoding(t);
        let mut s = format!(
            "{}<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyMarker>{}</KeyMarker><VersionIdMarker>{}</VersionIdMarker>",
            xml::DECL,
            xml::escape(name),
            xml::escape(&enc(prefix)),
            xml::escape(&enc(key_marker)),
            xml::escape(version_marker)
        );
        if page.truncated {
            s.push_str(&format!(
                "<NextKeyMarker>{}</NextKeyMarker>",
                xml::escape(&enc(&page.last))
            ));
            if page.last_is_item
                && let Some(last) = page.items.last()
            {
                s.push_str(&format!(
                    "<NextVersionIdMarker>{}</NextVersionIdMarker>",
                    shown(last.row.version_id.as_deref())
                ));
            }
        }
        s.push_str(&format!(
            "<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{}</IsTruncated>",
            page.truncated
        ));
        if let Some(d) = delimiter {
            s.push_str(&format!("<Delimiter>{}</Delimiter>", xml::escape(&enc(d))));
        }
        if t.get("encoding-type") == Some("url") {
            s.push_str("<EncodingType>url</EncodingType>");
        }
        for e in &page.items {
            let version = Some((e.row.version_id.as_deref(), e.latest));
            if e.delete_marker {
                s.push_str(&format!(
                    "<DeleteMarker>{}</DeleteMarker>",
                    listed_marker(&e.row, &enc, e.latest)
                ));
            } else {
                s.push_str(&format!(
                    "<Version>{}</Version>",
                    super::buckets::listed_object(&e.row, &enc, version, true)
                ));
            }
        }
        super::buckets::push_prefixes(&mut s, &page.prefixes, &enc);
        s.push_str("</ListVersionsResult>");
        Ok(xml_response(s))
    }
}

/// A delete marker's elements in a listing of versions.
fn listed_marker(row: &ObjectRow, enc: &impl Fn(&str) -> String, latest: bool) -> String {
    format!(
        "<Key>{}</Key><VersionId>{}</VersionId><IsLatest>{latest}</IsLatest><LastModified>{}</LastModified><Owner><ID>{}</ID></Owner>",
        xml::escape(&enc(&row.key)),
        shown(row.version_id.as_deref()),
        xml::iso_time(row.modified_ms),
        row.owner
    )
}

impl Ctx<'_> {
    /// For a call on what the gateway keeps of an object's current version only (OBS's
    /// metadata): `Ok` when `versionId` is absent or names the current object's version. A
    /// noncurrent version is 501, a delete marker 405, and a version that does not exist
    /// NoSuchVersion.
    pub(super) fn check_current_version(&self, bucket: &str, key: &str) -> Result<(), ApiError> {
        let which = self.version_ref()?;
        let VersionRef::Id(id) = which else {
            return Ok(());
        };
        let found = self.gw.store.object_version(bucket, key, which)?;
        let current = self.gw.store.object(bucket, key)?;
        let row = self.found_version(&self.facts(&self.bucket_row(bucket)?)?, found, which)?;
        if current.is_some_and(|c| c.version_id.as_deref() == id && c.file == row.file) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "the gateway sets the metadata of an object's current version only",
        ))
    }
}
