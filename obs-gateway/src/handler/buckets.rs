//! Bucket operations: create, head, list (ListBuckets), delete when empty, location, the object
//! listings (v1 and v2), default encryption and policy (validated by the adapter), batch delete.

use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use obs_adapter::{BucketPolicy, DefaultEncryption};

use super::conditions;
use super::listing::{Page, key_encoding, page_size};
use super::versions::shown;
use super::{
    ApiError, Body, Ctx, MAX_DOCUMENT, empty, full, malformed_xml, no_content, valid_bucket_name,
    xml_response,
};
use crate::auth::Dialect;
use crate::store::{
    BucketRow, DeleteCondition, ObjectRow, Removal, StoreError, VersionRef, Versioning,
};
use crate::xml;

impl Ctx<'_> {
    /// `GET /`: the caller's buckets by name, with S3's `prefix`, `bucket-region`,
    /// `max-buckets` (1 to 10,000) and `continuation-token`: a filter ignored would answer
    /// buckets the caller did not ask for.
    pub(super) fn list_buckets(&self) -> Result<Response<Body>, ApiError> {
        let t = self.t;
        let prefix = t.get("prefix").unwrap_or("");
        let region = t.get("bucket-region");
        let max = match t.get("max-buckets") {
            None => None,
            Some(v) => Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| ApiError::bad("max-buckets must be 1 to 10000"))?,
            ),
        };
        let after = match t.get("continuation-token") {
            None => String::new(),
            Some(tok) => hex::decode(tok)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad("invalid continuation-token"))?,
        };
        let mut rows = self
            .gw
            .store
            .list_buckets(&self.caller.domain)?
            .into_iter()
            .filter(|b| {
                b.name.starts_with(prefix)
                    && b.name > after
                    && region.is_none_or(|r| b.region.as_str() == r)
            })
            .collect::<Vec<_>>();
        let truncated = max.is_some_and(|m| rows.len() > m);
        if let Some(m) = max {
            rows.truncate(m);
        }
        let mut s = format!(
            "{}<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{}</ID><DisplayName>{}</DisplayName></Owner><Buckets>",
            xml::DECL,
            self.caller.domain,
            self.caller.domain
        );
        for b in &rows {
            s.push_str(&format!(
                "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate><Location>{}</Location><BucketRegion>{}</BucketRegion></Bucket>",
                xml::escape(&b.name),
                xml::iso_time(b.created_ms),
                b.region,
                b.region
            ));
        }
        s.push_str("</Buckets>");
        if let (true, Some(last)) = (truncated, rows.last()) {
            s.push_str(&format!(
                "<ContinuationToken>{}</ContinuationToken>",
                hex::encode(last.name.as_bytes())
            ));
        }
        if t.get("prefix").is_some() {
            s.push_str(&format!("<Prefix>{}</Prefix>", xml::escape(prefix)));
        }
        s.push_str("</ListAllMyBucketsResult>");
        Ok(xml_response(s))
    }

    pub(super) async fn create_bucket(
        &self,
        name: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        if !valid_bucket_name(name) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidBucketName",
                "bucket names are 3 to 63 lower-case letters, digits, '-' and '.', start and end with a letter or digit, hold no '..', '-.' or '.-', and are no IP address",
            ));
        }
        // The region asked for (S3's `LocationConstraint`, OBS's `Location`) must be this
        // gateway's: a bucket made elsewhere than asked would resolve its SSE-KMS keys in
        // another region than its owner expects.
        let doc = self.document(body, MAX_DOCUMENT).await?;
        let asked = xml::element(&doc, "LocationConstraint", 0)
            .or_else(|| xml::element(&doc, "Location", 0))
            .map(|(r, _)| r)
            .filter(|r| !r.is_empty());
        if let Some(asked) = asked
            && asked != self.gw.region.as_str()
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidLocationConstraint",
                format!(
                    "the location constraint {asked:?} is not this gateway's region {:?}",
                    self.gw.region.as_str()
                ),
            ));
        }
        let row = BucketRow {
            name: name.to_owned(),
            owner: self.caller.domain.clone(),
            region: self.gw.region.clone(),
            created_ms: self.now_ms(),
            default_encryption: None,
            policy: None,
            public_access_block: None,
            quota: 0,
            lifecycle: Vec::new(),
            versioning: Versioning::Off,
            object_lock: None,
        };
        // S3's `x-amz-bucket-object-lock-enabled: true`: Object Lock, and with it versioning, on
        // from the start.
        let row = if super::dialect_header(self.headers, "bucket-object-lock-enabled")?
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        {
            BucketRow {
                versioning: Versioning::Enabled,
                object_lock: Some(crate::object_lock::LockConfig::default()),
                ..row
            }
        } else {
            row
        };
        match self.gw.store.create_bucket(&row) {
            Ok(()) => {}
            Err(StoreError::BucketExists { owner }) if owner == self.caller.domain => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "BucketAlreadyOwnedByYou",
                    "your previous request to create the named bucket succeeded and you already own it",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let mut r = Response::new(empty());
        if let Ok(v) = HeaderValue::from_str(&format!("/{name}")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Ok(r)
    }

    pub(super) fn head_bucket(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let mut r = Response::new(empty());
        if let Ok(v) = HeaderValue::from_str(row.region.as_str()) {
            r.headers_mut().insert("x-obs-bucket-location", v.clone());
            r.headers_mut().insert("x-amz-bucket-region", v);
        }
        Ok(r)
    }

    pub(super) fn get_location(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        Ok(xml_response(format!(
            "{}<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}</LocationConstraint>",
            xml::DECL,
            row.region
        )))
    }

    /// `GET /{bucket}?versioning`: `Enabled` or `Suspended`, or an empty configuration, as S3
    /// answers for a bucket that never had versioning.
    pub(super) fn get_versioning(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let status = row
            .versioning
            .status()
            .map(|s| format!("<Status>{s}</Status>"))
            .unwrap_or_default();
        Ok(xml_response(format!(
            "{}<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{status}</VersioningConfiguration>",
            xml::DECL
        )))
    }

    /// `PUT /{bucket}?versioning` (boto3's `put_bucket_versioning`, the OBS SDK's
    /// `setBucketVersioning`): `Enabled` or `Suspended`, kept and acted on (`store::versions`).
    /// MFA delete is 501: the gateway has no MFA devices, and a caller told otherwise would count
    /// on one being asked for.
    pub(super) async fn put_versioning(
        &self,
        name: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let doc = self.document(body, MAX_DOCUMENT).await?;
        if !doc.contains("<VersioningConfiguration") {
            return Err(malformed_xml(
                "the body is not a VersioningConfiguration document",
            ));
        }
        if xml::element(&doc, "MfaDelete", 0).is_some_and(|(m, _)| m == "Enabled") {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "MFA delete is not kept by the gateway: it has no MFA devices",
            ));
        }
        let state = match xml::element(&doc, "Status", 0).map(|(s, _)| s).as_deref() {
            Some("Enabled") => Versioning::Enabled,
            Some("Suspended") if row.object_lock.is_some() => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "InvalidBucketState",
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed",
                ));
            }
            Some("Suspended") => Versioning::Suspended,
            // S3: a configuration without a status changes nothing.
            None => return Ok(Response::new(empty())),
            Some(_) => return Err(malformed_xml("Status is Enabled or Suspended")),
        };
        self.gw.store.set_bucket_versioning(name, state)?;
        Ok(Response::new(empty()))
    }

    /// OBS's `GET /{bucket}?storageinfo`: how many objects the bucket holds and their size.
    pub(super) fn get_storage_info(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let (count, size) = self.gw.store.bucket_usage(name)?;
        Ok(xml_response(format!(
            "{}<GetBucketStorageInfoResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><Size>{size}</Size><ObjectNumber>{count}</ObjectNumber></GetBucketStorageInfoResult>",
            xml::DECL
        )))
    }

    pub(super) fn delete_bucket(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        self.gw.store.delete_bucket(name)?;
        Ok(no_content())
    }

    pub(super) fn list_objects(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let t = self.t;
        let v2 = t.get("list-type") == Some("2");
        let prefix = t.get("prefix").unwrap_or("");
        let delimiter = t.get("delimiter").filter(|d| !d.is_empty());
        let max_keys = page_size(t, "max-keys")?;
        let start = if v2 {
            match t.get("continuation-token") {
                Some(tok) => String::from_utf8(
                    hex::decode(tok).map_err(|_| ApiError::bad("invalid continuation-token"))?,
                )
                .map_err(|_| ApiError::bad("invalid continuation-token"))?,
                None => t.get("start-after").unwrap_or("").to_owned(),
            }
        } else {
            t.get("marker").unwrap_or("").to_owned()
        };
        let page = self.object_page(name, prefix, delimiter, &start, max_keys)?;
        let (contents, prefixes, truncated, last) =
            (page.items, page.prefixes, page.truncated, page.last);
        let enc = key_encoding(t);
        let mut s = format!(
            "{}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
            xml::DECL,
            xml::escape(name),
            xml::escape(&enc(prefix))
        );
        if let Some(d) = delimiter {
            s.push_str(&format!("<Delimiter>{}</Delimiter>", xml::escape(&enc(d))));
        }
        if v2 {
            s.push_str(&format!(
                "<KeyCount>{}</KeyCount>",
                contents.len() + prefixes.len()
            ));
            if let Some(tok) = t.get("continuation-token") {
                s.push_str(&format!(
                    "<ContinuationToken>{}</ContinuationToken>",
                    xml::escape(tok)
                ));
            }
            if let Some(sa) = t.get("start-after") {
                s.push_str(&format!(
                    "<StartAfter>{}</StartAfter>",
                    xml::escape(&enc(sa))
                ));
            }
            if truncated {
                s.push_str(&format!(
                    "<NextContinuationToken>{}</NextContinuationToken>",
                    hex::encode(last.as_bytes())
                ));
            }
        } else {
            s.push_str(&format!("<Marker>{}</Marker>", xml::escape(&enc(&start))));
            if truncated {
                s.push_str(&format!(
                    "<NextMarker>{}</NextMarker>",
                    xml::escape(&enc(&last))
                ));
            }
        }
        if t.get("encoding-type") == Some("url") {
            s.push_str("<EncodingType>url</EncodingType>");
        }
        for o in contents {
            s.push_str(&format!(
                "<Contents>{}</Contents>",
                // ListObjectsV2 names the owner only when asked (`fetch-owner`), as S3 does.
                listed_object(&o, &enc, None, !v2 || t.get("fetch-owner") == Some("true"))
            ));
        }
        push_prefixes(&mut s, &prefixes, &enc);
        s.push_str("</ListBucketResult>");
        Ok(xml_response(s))
    }

    /// One page of the bucket's objects under `prefix` after `start`, rolled up at `delimiter`.
    fn object_page<'p>(
        &self,
        name: &str,
        prefix: &'p str,
        delimiter: Option<&'p str>,
        start: &'p str,
        max_keys: usize,
    ) -> Result<Page<'p, ObjectRow>, ApiError> {
        let mut page = Page::new(prefix, delimiter, start, max_keys);
        let mut after = start.to_owned();
        'scan: while !page.takes_nothing() {
            let batch = self.gw.store.list_objects(name, prefix, &after, 1000)?;
            if batch.is_empty() {
                break;
            }
            for o in batch {
                after.clone_from(&o.key);
                if !page.offer(&after, o) {
                    break 'scan;
                }
            }
        }
        Ok(page)
    }

    pub(super) async fn put_encryption(
        &self,
        name: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let doc = self.document(body, MAX_DOCUMENT).await?;
        let alg = xml::element(&doc, "SSEAlgorithm", 0)
            .map(|(a, _)| a)
            .ok_or_else(|| malformed_xml("ServerSideEncryptionConfiguration needs SSEAlgorithm"))?;
        let key = xml::element(&doc, "KMSMasterKeyID", 0).map(|(k, _)| k);
        super::routes::check_bucket_key(
            xml::element(&doc, "BucketKeyEnabled", 0)
                .map(|(v, _)| v)
                .as_deref(),
        )?;
        let alg = if alg == "aws:kms" {
            "kms".to_owned()
        } else {
            alg
        };
        // Validated by the adapter's own rules (algorithm, key-ID grammar).
        DefaultEncryption::parse(&alg, key.as_deref()).map_err(|e| self.refused(e))?;
        self.gw
            .store
            .set_bucket_encryption(name, Some((&alg, key.as_deref())))?;
        Ok(Response::new(empty()))
    }

    pub(super) fn get_encryption(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let Some((alg, key)) = row.default_encryption else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ServerSideEncryptionConfigurationNotFoundError",
                "the server side encryption configuration was not found",
            ));
        };
        let alg = if self.who.dialect == Dialect::Amz {
            "aws:kms".to_owned()
        } else {
            alg
        };
        let key = key
            .map(|k| format!("<KMSMasterKeyID>{}</KMSMasterKeyID>", xml::escape(&k)))
            .unwrap_or_default();
        Ok(xml_response(format!(
            "{}<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>{alg}</SSEAlgorithm>{key}</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
            xml::DECL
        )))
    }

    pub(super) fn delete_encryption(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        self.gw.store.set_bucket_encryption(name, None)?;
        Ok(no_content())
    }

    pub(super) async fn put_policy(
        &self,
        name: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let doc = self.document(body, MAX_DOCUMENT).await?;
        // A policy's refusal quotes the document as written: not translated.
        let policy = BucketPolicy::parse(name, &doc)
            .map_err(|e| ApiError::adapter(e.into(), Dialect::Obs))?;
        if row
            .public_access_block
            .is_some_and(|b| b.block_public_policy)
            && policy.is_public()
        {
            // S3's answer: the bucket's public access block refuses public policies.
            return Err(ApiError::denied());
        }
        self.gw.store.set_bucket_policy(name, Some(&doc))?;
        Ok(no_content())
    }

    pub(super) fn get_policy(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let policy = row.policy.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NoSuchBucketPolicy",
                "the bucket policy does not exist",
            )
        })?;
        let mut r = Response::new(full(policy));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(r)
    }

    pub(super) fn delete_policy(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        self.gw.store.set_bucket_policy(name, None)?;
        Ok(no_content())
    }

    pub(super) fn delete_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let which = self.version_ref()?;
        let condition = conditions::delete_condition(self.headers)?;
        let done = self.delete_version(bucket, key, which, &condition)?;
        let mut r = no_content();
        match done {
            Deleted::Nothing => {}
            Deleted::Version(id) => {
                self.put_version_header(r.headers_mut(), "version-id", shown(id))
            }
            Deleted::Marker(id) => self.put_delete_marker(r.headers_mut(), id.as_deref()),
        }
        Ok(r)
    }

    /// A delete of the version `which` of `bucket`/`key` if `condition` holds of it: the
    /// current one (a delete marker added, with versioning on), or the one an ID names.
    fn delete_version<'v>(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef<'v>,
        condition: &DeleteCondition,
    ) -> Result<Deleted<'v>, StoreError> {
        Ok(match which {
            VersionRef::Current => match self.gw.store.delete_object(
                bucket,
                key,
                condition,
                &self.caller.domain,
                self.now_ms(),
            )? {
                Removal::Nothing | Removal::Removed => Deleted::Nothing,
                Removal::DeleteMarker(id) => Deleted::Marker(id),
            },
            VersionRef::Id(id) => match self.gw.store.delete_version(
                bucket,
                key,
                id,
                condition,
                (self.now_ms(), self.bypasses_governance()),
            )? {
                Some(true) => Deleted::Marker(id.map(str::to_owned)),
                Some(false) | None => Deleted::Version(id),
            },
        })
    }

    pub(super) async fn delete_objects(
        &self,
        bucket: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let doc = self.document(body, MAX_DOCUMENT).await?;
        let quiet = xml::element(&doc, "Quiet", 0).is_some_and(|(q, _)| q == "true");
        let mut s = format!(
            "{}<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
            xml::DECL
        );
        for object in xml::raw_elements(&doc, "Object") {
            let Some(key) = xml::exact_text(object, "Key") else {
                return Err(super::malformed_xml("every Object needs a Key"));
            };
            // A malformed version ID is refused, not taken for the current version; so is an
            // object whose conditions do not parse or hold.
            let version = xml::element(object, "VersionId", 0).map(|(v, _)| v);
            let deleted = super::versions::version_ref(version.as_deref())
                .and_then(|which| Ok((which, conditions::batch_delete_condition(object)?)))
                .and_then(|(which, condition)| {
                    self.delete_version(bucket, &key, which, &condition)
                        .map_err(|e| match e {
                            StoreError::ConditionNotMet { .. } | StoreError::Locked => {
                                ApiError::from(e)
                            }
                            other => ApiError::internal(other),
                        })
                });
            match deleted {
                Ok(_) if quiet => {}
                Ok(done) => {
                    let named = version
                        .as_deref()
                        .map(|v| format!("<VersionId>{}</VersionId>", xml::escape(v)))
                        .unwrap_or_default();
                    let marker = match done {
                        Deleted::Marker(id) => format!(
                            "<DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>{}</DeleteMarkerVersionId>",
                            shown(id.as_deref())
                        ),
                        Deleted::Nothing | Deleted::Version(_) => String::new(),
                    };
                    s.push_str(&format!(
                        "<Deleted><Key>{}</Key>{named}{marker}</Deleted>",
                        xml::escape(&key)
                    ));
                }
                Err(e) => {
                    let version = version
                        .map(|v| format!("<VersionId>{}</VersionId>", xml::escape(&v)))
                        .unwrap_or_default();
                    s.push_str(&format!(
                        "<Error><Key>{}</Key>{version}<Code>{}</Code><Message>{}</Message></Error>",
                        xml::escape(&key),
                        e.code,
                        xml::escape(&e.message)
                    ));
                }
            }
        }
        s.push_str("</DeleteResult>");
        Ok(xml_response(s))
    }
}
/// What a delete did, as its answer tells it.
enum Deleted<'v> {
    /// Versioning off: the object, if there was one, is gone.
    Nothing,
    /// The version with this ID (`None`: `null`) is gone, if there was one.
    Version(Option<&'v str>),
    /// A delete marker was added, or the one named removed: its version ID.
    Marker(Option<String>),
}

/// An object's elements in a listing (`Contents`, or with `version`, its version's ID and
/// whether it is the latest, a `Version`), with its `Owner` when `owner`.
pub(super) fn listed_object(
    o: &ObjectRow,
    enc: &impl Fn(&str) -> String,
    version: Option<(Option<&str>, bool)>,
    owner: bool,
) -> String {
    format!(
        "<Key>{}</Key>{}<LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size>{}<StorageClass>STANDARD</StorageClass>{}",
        xml::escape(&enc(&o.key)),
        version
            .map(|(id, latest)| format!(
                "<VersionId>{}</VersionId><IsLatest>{latest}</IsLatest>",
                super::versions::shown(id)
            ))
            .unwrap_or_default(),
        xml::iso_time(o.modified_ms),
        o.etag,
        o.size,
        if owner {
            format!("<Owner><ID>{}</ID></Owner>", o.owner)
        } else {
            String::new()
        },
        // OBS marks an appendable object in listings.
        if o.appends.is_some() {
            "<Type>Appendable</Type>"
        } else {
            ""
        }
    )
}

/// A listing's common prefixes.
pub(super) fn push_prefixes(s: &mut String, prefixes: &[String], enc: &impl Fn(&str) -> String) {
    for p in prefixes {
        s.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            xml::escape(&enc(p))
        ));
    }
}
