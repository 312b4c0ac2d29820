//! Object operations: put, get (whole, ranges, conditions), head, copy, delete; sealing a new
//! object under a fresh data key and opening a stored one through the adapter.

use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use envelope::multipart::MultipartObject;
use envelope::{
    Backend, DataKey, Header, ObjectContext, ObjectKey, ObjectKind, WrapScheme, WrappedKey,
};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use obs_adapter::{BucketFacts, Encryption, ObsRequest, Operation, StoredObject};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::conditions::{self, Verdict};
use super::files::{Opened, Sealing, Written, copy_object_file, read_body, write_body};
use super::{
    ApiError, Body, Ctx, MAX_PUT, QUEUE, STORED_HEADERS, empty, object_context,
    request_stored_headers, stored_facts, user_metadata, xml_response,
};
use crate::auth::chunked::ChunkDecoder;
use crate::auth::{self, BodyCheck};
use crate::checksum::{Algorithm, Combination};
use crate::lifecycle::Rule;
use crate::sse;
use crate::store::{ObjectFile, ObjectRow, Version, VersionRef};
use crate::xml;

impl Ctx<'_> {
    /// A fresh data key from the daemon (through the adapter, bound to bucket and object key) and
    /// the envelope header for it, for an object stored as `file` (for a multipart upload: its
    /// upload ID); `None` for plaintext.
    pub(super) async fn sealing(
        &self,
        facts: &BucketFacts,
        key: &str,
        file: &str,
        encryption: &Encryption,
        kind: ObjectKind,
    ) -> Result<Option<(ObjectKey, ObjectContext)>, ApiError> {
        if matches!(encryption, Encryption::Plaintext) {
            return Ok(None);
        }
        let dk = self
            .gw
            .adapter
            .generate_data_key(self.caller, facts, key, encryption)
            .await
            .map_err(|e| self.refused(e))?
            .ok_or_else(|| ApiError::internal("no data key for an SSE-KMS object"))?;
        let data_key = DataKey::from_slice(dk.plaintext.expose()).map_err(ApiError::internal)?;
        let object_key = ObjectKey::new(
            kind,
            data_key,
            &dk.key_id.to_string(),
            WrappedKey {
                scheme: WrapScheme::Kms,
                bytes: dk.ciphertext_blob,
            },
        )
        .map_err(ApiError::internal)?;
        Ok(Some((object_key, object_context(&facts.name, key, file)?)))
    }

    /// The key of an SSE-KMS object (or upload) of `facts`'s bucket stored under `hdr`: its data
    /// key unwrapped through the adapter (rule 9 again) and the header's tag checked.
    pub(super) async fn unwrap_key(
        &self,
        facts: &BucketFacts,
        object: &str,
        stored: &StoredObject,
        hdr: Header,
    ) -> Result<ObjectKey, ApiError> {
        let secret = self
            .gw
            .adapter
            .decrypt_data_key(self.caller, facts, object, stored, &hdr.wrapped_key().bytes)
            .await
            .map_err(|e| self.refused(e))?;
        let dk = DataKey::from_slice(secret.expose()).map_err(ApiError::internal)?;
        ObjectKey::open(hdr, dk).map_err(|e| ApiError::internal(format!("object {object}: {e}")))
    }

    /// For an SSE-KMS object: its header read from disk, its data key unwrapped through the
    /// adapter (rule 9 again) and the header's tag checked, before a byte is read or sent.
    pub(super) async fn opening(
        &self,
        facts: &BucketFacts,
        obj: &ObjectRow,
        file: &mut ObjectFile,
        stored: &StoredObject,
    ) -> Result<Option<Opened>, ApiError> {
        if matches!(stored.encryption, Encryption::Plaintext) {
            return Ok(None);
        }
        let what = format!("{}/{}", obj.bucket, obj.key);
        let hdr = match &obj.multipart {
            Some((header, _)) => Header::parse(header).map(|(h, _)| h),
            None => file
                .seek(SeekFrom::Start(0))
                .map_err(envelope::Error::from_io)
                .and_then(|_| Header::read_from(file)),
        }
        .map_err(|e| ApiError::internal(format!("object {what}: {e}")))?;
        let ok = self.unwrap_key(facts, &obj.key, stored, hdr).await?;
        let ctx = object_context(&obj.bucket, &obj.key, &obj.file)?;
        Ok(Some(match &obj.multipart {
            None => Opened::Single(ok, ctx),
            Some((_, manifest)) => Opened::Multipart(Box::new(
                MultipartObject::open(ok, ctx, manifest, Backend::fastest())
                    .map_err(|e| ApiError::internal(format!("object {what}: {e}")))?,
            )),
        }))
    }

    /// The object `x-obs-copy-source` (or its S3 name, translated) names: its bucket's facts,
    /// its row and its encryption facts.
    pub(super) fn copy_source(
        &self,
        obs_headers: &HeaderMap,
    ) -> Result<(BucketFacts, ObjectRow, ObjectFile, StoredObject), ApiError> {
        let source = obs_headers
            .get("x-obs-copy-source")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::bad("the copy source must be text"))?;
        let (source, query) = source.split_once('?').unwrap_or((source, ""));
        let version = auth::parse_query(query)
            .into_iter()
            .find(|q| q.name == "versionId")
            .map(|q| q.value);
        let which = super::versions::version_ref(version.as_deref())?;
        let source = auth::decode(source);
        let (src_bucket, src_key) = source
            .trim_start_matches('/')
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| ApiError::bad("the copy source must be /bucket/key"))?;
        let src_row = self.bucket_row(src_bucket)?;
        super::check_owner_is(
            self.headers,
            "x-amz-source-expected-bucket-owner",
            src_row.owner.as_str(),
        )?;
        let src_facts = self.facts(&src_row)?;
        // The source bucket's ACL (private: the owner only) before anything about its objects,
        // their existence or their conditions, is told.
        if src_facts.owner != self.caller.domain {
            return Err(ApiError::denied());
        }
        let found = self.gw.store.object_file(src_bucket, src_key, which)?;
        if which != VersionRef::Current && matches!(found, Some(Version::DeleteMarker { .. })) {
            // As S3 answers a copy that names a delete marker.
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "the source of a copy may not be a delete marker",
            ));
        }
        let (src, file) = self.found_version(&src_facts, found, which)?;
        conditions::copy_source(self.headers, &src.etag, src.modified_ms)?;
        let stored = stored_facts(&src)?;
        Ok((src_facts, src, file, stored))
    }

    pub(super) async fn copy_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.bucket_row(bucket)?;
        // A copy takes the lock it asks for, not its source's (as S3).
        let lock = self.lock_of_headers(&row)?;
        let facts = self.facts(&row)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let (src_facts, src, mut src_file, stored) = self.copy_source(&obs_headers)?;
        let tags = super::tagging::of_copy(self.headers, &src.tags)?;
        let replace = replaces_metadata(self.headers)?;
        // The checksum the copy asks for (S3's `x-amz-checksum-algorithm`), computed as it
        // copies.
        let asked = match self.headers.get("x-amz-checksum-algorithm") {
            None => None,
            Some(v) => Some(
                Algorithm::of_algorithm_name(v.to_str().unwrap_or_default())
                    .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", m))?,
            ),
        };
        let (src_bucket, src_key) = (src.bucket.clone(), src.key.clone());
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(
                    Operation::CopyObject,
                    self.caller,
                    &facts,
                    key,
                    &obs_headers,
                )
                .with_stored(&stored),
            )
            .await
            .map_err(|e| self.refused(e))?;
        self.check_acl(&facts, &decision.policy)?;
        if (src_bucket.as_str(), src_key.as_str()) == (bucket, key) && !replace {
            refuse_unchanged_copy_onto_itself(self.headers)?;
        }
        let condition = self.write_condition(bucket, key)?;
        let opening = self
            .opening(&src_facts, &src, &mut src_file, &stored)
            .await?;
        let file = uuid::Uuid::new_v4().to_string();
        let sealing = self
            .sealing(&facts, key, &file, &decision.encryption, ObjectKind::Single)
            .await?
            .map(|(k, c)| Sealing::Single(k, c));
        let (meta, content_type, stored_headers) = if replace {
            (
                user_metadata(self.headers),
                self.headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                request_stored_headers(self.headers),
            )
        } else {
            // As S3: the source's website redirect is not copied; the request may give one.
            let redirect = request_stored_headers(self.headers)
                .into_iter()
                .filter(|(n, _)| n == super::WEBSITE_REDIRECT);
            (
                src.meta.clone(),
                src.content_type.clone(),
                src.headers
                    .iter()
                    .filter(|(n, _)| n != super::WEBSITE_REDIRECT)
                    .cloned()
                    .chain(redirect)
                    .collect(),
            )
        };
        // A composite checksum is its parts' values combined, and the copy, written whole, has no
        // parts: it gets its algorithm's value of the whole object, computed as it is copied.
        let recompute = asked.or_else(|| {
            src.checksum
                .as_ref()
                .filter(|(_, v)| Combination::of_value(v) == Combination::Composite)
                .and_then(|(name, _)| Algorithm::of_name(name).ok().flatten())
        });
        let temp = self.gw.store.temp_path();
        let size = src.size;
        let t2 = temp.clone();
        let written = self
            .gw
            .tasks
            .spawn_blocking(move || {
                copy_object_file(src_file, opening, size, &t2, (sealing, recompute))
            })
            .await
            .map_err(ApiError::internal)?;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(ApiError::internal(format!(
                    "copying {src_bucket}/{src_key}: {e}"
                )));
            }
        };
        let modified_ms = self.now_ms();
        let obj = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            file,
            size: written.size,
            etag: written.md5_hex.clone(),
            content_type,
            owner: self.caller.domain.clone(),
            kms_key_id: decision.encryption.key_id().map(|k| k.to_string()),
            meta,
            headers: stored_headers,
            modified_ms,
            // A copy is a new object: its life is the request's, not the source's.
            expires_ms: self.expires_ms(modified_ms),
            multipart: None,
            part_sizes: None,
            appends: None,
            // The same bytes: the source's full-object checksum holds.
            checksum: written.checksum.clone().or_else(|| src.checksum.clone()),
            part_checksums: None,
            tags,
            version_id: None,
            lock,
        };
        let mut checksum_header = HeaderMap::new();
        let checksum_elements = self.result_checksum(obj.checksum.as_ref(), &mut checksum_header);
        // Answered once committed: the object's expiry, its own or its bucket's rules'.
        let mut expiration = HeaderMap::new();
        self.put_expiration(&mut expiration, &obj, &row.lifecycle);
        let gw = Arc::clone(self.gw);
        let version_id = self
            .gw
            .tasks
            .spawn_blocking(move || gw.store.commit_object(&temp, &obj, &condition))
            .await
            .map_err(ApiError::internal)??;
        let mut r = xml_response(format!(
            "{}<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag>{checksum_elements}</CopyObjectResult>",
            xml::DECL,
            xml::iso_time(modified_ms),
            written.md5_hex
        ));
        let h = r.headers_mut();
        h.extend(expiration);
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", written.md5_hex)) {
            h.insert(header::ETAG, v);
        }
        h.extend(checksum_header);
        self.put_version_id(h, &row, version_id.as_deref());
        if let Some(id) = &src.version_id {
            self.put_version_header(h, "copy-source-version-id", id);
        }
        h.extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    /// The checksum of an object a copy or a completion made, as its result answers it: S3's as
    /// the result document's elements, with its type; OBS's CRC64-ECMA as a header in `headers`,
    /// as OBS answers it.
    pub(super) fn result_checksum(
        &self,
        kept: Option<&(String, String)>,
        headers: &mut HeaderMap,
    ) -> String {
        let Some(kept) = kept else {
            return String::new();
        };
        if kept.0 == Algorithm::Crc64Ecma.header() {
            put_checksum(headers, self.dialect_prefix(), Some(kept));
            return String::new();
        }
        super::checksum_element(kept)
            .map(|element| {
                format!(
                    "{element}<ChecksumType>{}</ChecksumType>",
                    Combination::of_value(&kept.1).name()
                )
            })
            .unwrap_or_default()
    }

    pub(super) async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let tags = super::tagging::of_headers(self.headers)?;
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let obs_query = sse::to_obs_query(&self.t.query);
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(Operation::PutObject, self.caller, &facts, key, &obs_headers)
                    .with_query(&obs_query),
            )
            .await
            .map_err(|e| self.refused(e))?;
        self.check_acl(&facts, &decision.policy)?;
        let condition = self.write_condition(bucket, key)?;
        let lock = self.lock_of_headers(&row)?;
        if let Some(n) = declared_length(self.headers)? {
            // Refused before the body is read; the commit checks again.
            self.gw.store.check_quota(&row, key, n)?;
        }
        let file = uuid::Uuid::new_v4().to_string();
        let sealing = self
            .sealing(&facts, key, &file, &decision.encryption, ObjectKind::Single)
            .await?
            .map(|(k, c)| Sealing::Single(k, c));
        let (temp, written) = self.receive_to_temp(body, sealing).await?;
        let obj = ObjectRow {
            checksum: written.checksum.clone(),
            lock,
            ..self.new_object_row(bucket, key, file, &written, &decision.encryption, tags)
        };
        // Answered once committed: the object's expiry, its own or its bucket's rules'.
        let mut expiration = HeaderMap::new();
        self.put_expiration(&mut expiration, &obj, &row.lifecycle);
        let gw = Arc::clone(self.gw);
        let version_id = self
            .gw
            .tasks
            .spawn_blocking(move || gw.store.commit_object(&temp, &obj, &condition))
            .await
            .map_err(ApiError::internal)??;
        let mut r = Response::new(empty());
        let h = r.headers_mut();
        h.extend(expiration);
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", written.md5_hex)) {
            h.insert(header::ETAG, v);
        }
        // As S3: the checksum the upload carried, now kept.
        put_checksum(h, self.dialect_prefix(), written.checksum.as_ref());
        self.put_version_id(h, &row, version_id.as_deref());
        h.extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    /// The row of the object this request writes whole under `bucket`/`key` into `file`: the
    /// body's size and MD5 (its ETag), the request's content type, metadata and stored headers,
    /// the caller as owner.
    pub(super) fn new_object_row(
        &self,
        bucket: &str,
        key: &str,
        file: String,
        written: &Written,
        encryption: &Encryption,
        tags: Vec<(String, String)>,
    ) -> ObjectRow {
        let modified_ms = self.now_ms();
        ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            file,
            size: written.size,
            etag: written.md5_hex.clone(),
            content_type: self
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            owner: self.caller.domain.clone(),
            kms_key_id: encryption.key_id().map(|k| k.to_string()),
            meta: user_metadata(self.headers),
            headers: request_stored_headers(self.headers),
            modified_ms,
            expires_ms: self.expires_ms(modified_ms),
            multipart: None,
            part_sizes: None,
            appends: None,
            checksum: None,
            part_checksums: None,
            tags,
            version_id: None,
            lock: Default::default(),
        }
    }

    /// The headers that answer an object's metadata: its content type (S3's default when it has
    /// none), its stored headers, its user metadata in the request's dialect, when it expires
    /// (its own expiry, else its bucket's lifecycle rules'), and for an appendable object its
    /// type and next position.
    pub(super) fn metadata_headers(
        &self,
        obj: &ObjectRow,
        rules: &[Rule],
        headers: &mut HeaderMap,
    ) {
        let ct = obj.content_type.as_deref().unwrap_or("binary/octet-stream");
        if let Ok(v) = HeaderValue::from_str(ct) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        if obj.appends.is_some() {
            headers.insert("x-obs-object-type", HeaderValue::from_static("Appendable"));
            headers.insert("x-obs-next-append-position", HeaderValue::from(obj.size));
        }
        for (n, v) in &obj.headers {
            // The website redirect is kept without its prefix: answered in the request's.
            let name = match n.as_str() {
                super::WEBSITE_REDIRECT => format!("{}{n}", self.who.dialect.prefix()),
                _ => n.clone(),
            };
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(name, value);
            }
        }
        self.put_expiration(headers, obj, rules);
        let prefix = self.who.dialect.prefix();
        for (n, v) in &obj.meta {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(format!("{prefix}meta-{n}").as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(name, value);
            }
        }
    }

    /// [`Ctx::receive_body`] into a fresh temporary file, removed again if the body is refused.
    pub(super) async fn receive_to_temp(
        &self,
        body: Incoming,
        sealing: Option<Sealing>,
    ) -> Result<(PathBuf, Written), ApiError> {
        let temp = self.gw.store.temp_path();
        match self.receive_body(body, temp.clone(), sealing).await {
            Ok(w) => Ok((temp, w)),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    /// The adapter's decision on a read (`op`: GetObject or HeadObject) of the stored `obj`,
    /// refused unless the bucket's ACL or policy lets the caller read it; with what the adapter
    /// was told of `obj`.
    pub(super) async fn decide_read(
        &self,
        op: Operation,
        facts: &BucketFacts,
        key: &str,
        obj: &ObjectRow,
    ) -> Result<(obs_adapter::Decision, StoredObject), ApiError> {
        let stored = stored_facts(obj)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(op, self.caller, facts, key, &obs_headers).with_stored(&stored),
            )
            .await
            .map_err(|e| self.refused(e))?;
        self.check_acl(facts, &decision.policy)?;
        Ok((decision, stored))
    }

    /// Reads the request body (decoding `aws-chunked`, checking what the signature covers) into
    /// `temp` through a blocking task, sealed when `sealing` is given. `Err` leaves `temp` for the
    /// caller to remove.
    pub(super) async fn receive_body(
        &self,
        mut body: Incoming,
        temp: PathBuf,
        sealing: Option<Sealing>,
    ) -> Result<Written, ApiError> {
        let declared = declared_length(self.headers)?;
        if declared.is_some_and(|n| n > MAX_PUT) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "EntityTooLarge",
                "your proposed upload exceeds the maximum allowed object size (5 GiB)",
            ));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
        let writer = self
            .gw
            .tasks
            .spawn_blocking(move || write_body(&temp, sealing, rx));
        let mut decoder = match &self.who.body {
            BodyCheck::Chunked(c) => Some(ChunkDecoder::new(c.clone())),
            _ => None,
        };
        let mut sha = Sha256::new();
        // The additional checksum, from a header now or from the trailer the client announces.
        let (checksum_name, header_value, mut checksum) = match super::body_checksum(self.headers)?
        {
            Some((name, value, c)) => (Some(name), value, Some(c)),
            None => (None, None, None),
        };
        let mut total: u64 = 0;
        let feed = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "IncompleteBody",
                        format!("reading the body: {e}"),
                    )
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let data = match &mut decoder {
                    Some(d) => {
                        let mut out = Vec::with_capacity(data.len());
                        d.feed(&data, &mut out).map_err(|e| match e {
                            auth::chunked::ChunkError::Signature => ApiError::new(
                                StatusCode::FORBIDDEN,
                                "SignatureDoesNotMatch",
                                e.to_string(),
                            ),
                            auth::chunked::ChunkError::Malformed(_) => ApiError::new(
                                StatusCode::BAD_REQUEST,
                                "IncompleteBody",
                                e.to_string(),
                            ),
                        })?;
                        Bytes::from(out)
                    }
                    None => data,
                };
                if data.is_empty() {
                    continue;
                }
                sha.update(&data);
                if let Some(c) = &mut checksum {
                    c.update(&data);
                }
                total += data.len() as u64;
                if total > MAX_PUT {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "EntityTooLarge",
                        "your proposed upload exceeds the maximum allowed object size (5 GiB)",
                    ));
                }
                if tx.send(data).await.is_err() {
                    return Err(ApiError::internal("the file writer stopped"));
                }
            }
            if let Some(d) = &decoder {
                d.finish().map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "IncompleteBody", e.to_string())
                })?;
            }
            Ok(())
        };
        let fed: Result<(), ApiError> = feed.await;
        // The writer ends when the sender is gone; an incomplete body is refused here, before
        // anything is committed, and the caller removes the file.
        drop(tx);
        let written = writer.await.map_err(ApiError::internal)?;
        fed?;
        let written = written.map_err(ApiError::internal)?;
        if let Some(n) = declared
            && n != total
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "the body's length does not match its declared length",
            ));
        }
        let checksum = checksum_name.zip(checksum).map(|(name, c)| {
            let given = match header_value {
                Some(v) => Some(v),
                None => decoder.as_ref().and_then(|d| {
                    d.trailers()
                        .into_iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v)
                }),
            };
            (name, given, c)
        });
        // Kept under its algorithm's own name (OBS's CRC64-ECMA arrives `x-amz-` from the OBS
        // SDK's S3 modes), and answered in each request's dialect.
        let verified = checksum.as_ref().and_then(|(name, given, _)| {
            let kept = match Algorithm::of_name(name) {
                Ok(Some(alg)) => alg.header().to_owned(),
                _ => name.clone(),
            };
            Some((kept, given.clone()?))
        });
        super::check_digests(
            self.headers,
            &self.who.body,
            &hex::encode(sha.finalize()),
            &written.md5_hex,
            checksum,
        )?;
        Ok(Written {
            checksum: verified,
            ..written
        })
    }

    pub(super) async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        head: bool,
    ) -> Result<Response<Body>, ApiError> {
        let which = self.version_ref()?;
        let part = self
            .t
            .get("partNumber")
            .map(parse_part_number)
            .transpose()?;
        if part.is_some() && self.headers.contains_key(header::RANGE) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "cannot specify both a Range header and a partNumber query parameter",
            ));
        }
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let found = self.gw.store.object_file(bucket, key, which)?;
        let (obj, mut file) = self.found_version(&facts, found, which)?;
        let op = if head {
            Operation::HeadObject
        } else {
            Operation::GetObject
        };
        let (decision, stored) = self.decide_read(op, &facts, key, &obj).await?;
        let etag = format!("\"{}\"", obj.etag);
        let not_modified = match conditions::read(self.headers, &obj.etag, obj.modified_ms) {
            Verdict::Failed => return Err(conditions::failed()),
            Verdict::NotModified => true,
            Verdict::Serve => false,
        };
        let mut headers = HeaderMap::new();
        let range = match (
            part,
            self.headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok()),
        ) {
            (Some(n), _) => {
                let (span, parts) = part_span(n, &obj)?;
                if let Some(count) = parts {
                    headers.insert("x-amz-mp-parts-count", HeaderValue::from(count));
                }
                // An empty part (or object) has no Content-Range to give: it is answered whole.
                (!span.is_empty() && !not_modified).then_some(span)
            }
            (None, Some(r))
                if !not_modified
                    && conditions::range_applies(self.headers, &obj.etag, obj.modified_ms) =>
            {
                parse_range(r, obj.size)?
            }
            _ => None,
        };
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&conditions::http_date(obj.modified_ms)) {
            headers.insert(header::LAST_MODIFIED, v);
        }
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        self.put_version_id(&mut headers, &row, obj.version_id.as_deref());
        self.put_lock_headers(&mut headers, &obj);
        if !obj.tags.is_empty() {
            let name = format!("{}tagging-count", self.who.dialect.prefix());
            if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
                headers.insert(name, HeaderValue::from(obj.tags.len()));
            }
        }
        self.metadata_headers(&obj, &row.lifecycle, &mut headers);
        // The kept checksum, to a read that asks for it (`x-amz-checksum-mode: ENABLED`, as
        // botocore sends by default) of the whole object, or of one part of a multipart object:
        // the client checks the body against it. (Not for a byte range, nor on a 304: it has no
        // body to check, and botocore would read it as one.)
        // OBS answers its own CRC64-ECMA unasked (the OBS SDK checks what it reads against it
        // when it is there), for the whole object only.
        let obs_crc = obj
            .checksum
            .as_ref()
            .is_some_and(|(name, _)| name == Algorithm::Crc64Ecma.header());
        let asked = obs_crc
            || self
                .headers
                .get("x-amz-checksum-mode")
                .is_some_and(|m| m.as_bytes().eq_ignore_ascii_case(b"ENABLED"));
        let prefix = self.dialect_prefix();
        if asked && !not_modified {
            match (part, &obj.part_checksums) {
                (None, _) if range.is_none() => {
                    put_checksum(&mut headers, prefix, obj.checksum.as_ref());
                }
                (Some(n), Some(values)) if !obs_crc => {
                    put_part_checksum(&mut headers, prefix, &obj, values, n);
                }
                // Part 1 of an object written whole is the whole object.
                (Some(1), None) if obj.part_sizes.is_none() => {
                    put_checksum(&mut headers, prefix, obj.checksum.as_ref());
                }
                _ => {}
            }
        }
        headers.extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        response_overrides(&self.t.query, &mut headers)?;
        if not_modified {
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            *r.headers_mut() = headers;
            return Ok(r);
        }
        let (status, span) = match range {
            Some(rg) => {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "bytes {}-{}/{}",
                    rg.start,
                    rg.end - 1,
                    obj.size
                )) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                (StatusCode::PARTIAL_CONTENT, rg)
            }
            None => (StatusCode::OK, 0..obj.size),
        };
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(span.end - span.start),
        );
        if head {
            let mut r = Response::new(empty());
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            return Ok(r);
        }
        let opening = self.opening(&facts, &obj, &mut file, &stored).await?;
        let what = format!("{bucket}/{key}");
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUE);
        let whole = span.start == 0 && span.end == obj.size;
        self.gw
            .tasks
            .spawn_blocking(move || read_body(file, &what, opening, span, whole, tx));
        // The first piece decides the status: a failure before any byte is an error response.
        let first = match rx.recv().await {
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => {
                return Err(ApiError::internal(format!("reading {bucket}/{key}: {e}")));
            }
            None => None,
        };
        let stream = futures::stream::iter(first.map(Ok))
            .chain(futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            }))
            .map(|item| item.map(Frame::data));
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        *r.status_mut() = status;
        *r.headers_mut() = headers;
        Ok(r)
    }
}

/// A `partNumber` parameter (UploadPart, and GET or HEAD by part): 1 to 10,000, as S3 takes it.
pub(super) fn parse_part_number(n: &str) -> Result<u32, ApiError> {
    use envelope::multipart::MAX_PART_NUMBER;
    n.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            ApiError::bad(format!(
                "part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
            ))
        })
}

/// The bytes of part `number` of `obj` (GET and HEAD by `partNumber`), and how many parts a
/// multipart object has: a part's span of an object a multipart upload made; all of one written
/// whole, which is its part 1. A multipart object completed before the gateway kept part sizes
/// (schema version 2) cannot answer by part: `Range` reads it.
fn part_span(
    number: u32,
    obj: &ObjectRow,
) -> Result<(std::ops::Range<u64>, Option<usize>), ApiError> {
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidPartNumber",
            "the requested part number is not satisfiable",
        )
    };
    let index = usize::try_from(number - 1).map_err(|_| unsatisfiable())?;
    match &obj.part_sizes {
        Some(sizes) => {
            let size = *sizes.get(index).ok_or_else(unsatisfiable)?;
            let start: u64 = sizes[..index].iter().sum();
            Ok((start..start + size, Some(sizes.len())))
        }
        None if obj.etag.contains('-') => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "this multipart object was completed before the gateway kept part sizes: read it by Range",
        )),
        None if index == 0 => Ok((0..obj.size, None)),
        None => Err(unsatisfiable()),
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n`; `None` for a header S3 ignores (several ranges).
pub(super) fn parse_range(h: &str, size: u64) -> Result<Option<std::ops::Range<u64>>, ApiError> {
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "the requested range is not satisfiable",
        )
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(n)..size
        }
        (a, "") => {
            let a: u64 = a.parse().map_err(|_| unsatisfiable())?;
            a..size
        }
        (a, b) => {
            let a: u64 = a.parse().map_err(|_| unsatisfiable())?;
            let b: u64 = b.parse().map_err(|_| unsatisfiable())?;
            if b < a {
                return Ok(None);
            }
            a..(b + 1).min(size)
        }
    };
    if range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let name = if headers.contains_key("x-amz-decoded-content-length") {
        "x-amz-decoded-content-length"
    } else if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().starts_with(b"aws-chunked"))
    {
        return Ok(None);
    } else {
        "content-length"
    };
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad(format!("{name} is not a number")))
        })
        .transpose()
}

/// GET's `response-*` parameters: `response-` and the name of `Content-Type` or one of the
/// [`STORED_HEADERS`], replacing that header of the answer, as S3 and OBS set them (a presigned
/// link that downloads as an attachment, for instance). A value that is no header value is
/// refused.
fn response_overrides(query: &[(String, String)], headers: &mut HeaderMap) -> Result<(), ApiError> {
    for name in std::iter::once(header::CONTENT_TYPE).chain(STORED_HEADERS) {
        let param = format!("response-{name}");
        if let Some((_, v)) = query.iter().find(|(n, _)| *n == param) {
            let value = HeaderValue::from_str(v)
                .map_err(|_| ApiError::bad(format!("{param} is not a valid header value")))?;
            headers.insert(name, value);
        }
    }
    Ok(())
}

/// A kept checksum as S3 answers it: its header, and `x-amz-checksum-type` (`COMPOSITE` for a
/// multipart object's value made of its parts', else `FULL_OBJECT`); OBS's CRC64-ECMA under the
/// request dialect's `prefix`, alone.
fn put_checksum(headers: &mut HeaderMap, prefix: &str, checksum: Option<&(String, String)>) {
    if let Some((name, value)) = checksum {
        put_checksum_as(headers, prefix, name, value, Combination::of_value(value));
    }
}

/// Part `n`'s value of a multipart object's checksum (GET or HEAD by `partNumber`), with the
/// object's checksum type.
fn put_part_checksum(
    headers: &mut HeaderMap,
    prefix: &str,
    obj: &ObjectRow,
    values: &[String],
    n: u32,
) {
    let value = usize::try_from(n)
        .ok()
        .and_then(|n| values.get(n.checked_sub(1)?));
    if let (Some((name, whole)), Some(value)) = (&obj.checksum, value) {
        put_checksum_as(headers, prefix, name, value, Combination::of_value(whole));
    }
}

/// The header that answers a kept checksum `name`: S3's as they are; OBS's CRC64-ECMA under
/// the request dialect's `prefix` (the OBS SDK reads `x-obs-` or, in its S3 modes, `x-amz-`).
pub(super) fn answered_checksum_name(prefix: &str, name: &str) -> String {
    if name == Algorithm::Crc64Ecma.header() {
        format!("{prefix}checksum-crc64ecma")
    } else {
        name.to_owned()
    }
}

/// The header `name` (a kept checksum's) with `value`, and its type; see [`put_checksum`].
fn put_checksum_as(
    headers: &mut HeaderMap,
    prefix: &str,
    name: &str,
    value: &str,
    combination: Combination,
) {
    let obs_crc = name == Algorithm::Crc64Ecma.header();
    let name = answered_checksum_name(prefix, name);
    if let (Ok(name), Ok(value)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
        if !obs_crc {
            headers.insert(
                "x-amz-checksum-type",
                HeaderValue::from_static(combination.name()),
            );
        }
    }
}

/// Whether a copy takes the request's metadata (`x-amz-`/`x-obs-metadata-directive: REPLACE`)
/// rather than the source's (`COPY`, the default). Another value, or the directive in both
/// dialects, is 400 `InvalidArgument` as S3 answers it, not a silent `COPY`.
fn replaces_metadata(headers: &HeaderMap) -> Result<bool, ApiError> {
    match super::dialect_header(headers, "metadata-directive")? {
        None => Ok(false),
        Some(v) if v == "COPY" => Ok(false),
        Some(v) if v == "REPLACE" => Ok(true),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Unknown metadata directive: a copy's metadata directive is COPY or REPLACE",
        )),
    }
}

/// Refuses a copy of an object onto itself that changes nothing, as S3 does: a copy onto itself
/// must replace the metadata (`x-amz-`/`x-obs-metadata-directive: REPLACE`, checked by the
/// caller) or name an encryption or storage class; code that expects such a copy to do something
/// (touch the object, re-encrypt it under the bucket's default) fails against the cloud.
fn refuse_unchanged_copy_onto_itself(headers: &HeaderMap) -> Result<(), ApiError> {
    let changes = headers.keys().any(|n| {
        let n = n.as_str();
        ["x-amz-", "x-obs-"].iter().any(|prefix| {
            n.strip_prefix(prefix).is_some_and(|rest| {
                rest.starts_with("server-side-encryption") || rest == "storage-class"
            })
        })
    });
    if changes {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        "this copy request is illegal because it is trying to copy an object to itself without \
         changing the object's metadata, storage class or encryption attributes",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copys_metadata_directive_is_copy_or_replace_in_one_dialect() {
        // (rule, headers, replaces, or the refusal's code)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Result<bool, &'a str>);
        let cases: [Case; 7] = [
            ("none copies", &[], Ok(false)),
            ("COPY", &[("x-amz-metadata-directive", "COPY")], Ok(false)),
            (
                "REPLACE",
                &[("x-amz-metadata-directive", "REPLACE")],
                Ok(true),
            ),
            (
                "OBS's spelling",
                &[("x-obs-metadata-directive", "REPLACE")],
                Ok(true),
            ),
            (
                "another value",
                &[("x-amz-metadata-directive", "replace")],
                Err("InvalidArgument"),
            ),
            (
                "OBS's REPLACE_NEW is SetObjectMetadata's, not a copy's",
                &[("x-obs-metadata-directive", "REPLACE_NEW")],
                Err("InvalidArgument"),
            ),
            (
                "both dialects",
                &[
                    ("x-amz-metadata-directive", "COPY"),
                    ("x-obs-metadata-directive", "REPLACE"),
                ],
                Err("InvalidArgument"),
            ),
        ];
        for (rule, given, want) in cases {
            let mut h = HeaderMap::new();
            for (n, v) in given {
                h.append(*n, HeaderValue::from_static(v));
            }
            assert_eq!(replaces_metadata(&h).map_err(|e| e.code), want, "{rule}");
        }
    }

    #[test]
    fn a_part_number_names_a_parts_bytes_or_a_whole_objects_first_part() {
        let object = |etag: &str, size: u64, part_sizes: Option<Vec<u64>>| ObjectRow {
            size,
            etag: etag.into(),
            part_sizes,
            ..crate::store::tests::object("k", "f")
        };
        let three = object("e-3", 204_805, Some(vec![102_400, 102_400, 5]));
        let whole = object("e", 10, None);
        let before_v3 = object("e-2", 10, None);
        // (rule, object, part, answer: span and part count, or status and code)
        type Want = Result<(std::ops::Range<u64>, Option<usize>), (u16, &'static str)>;
        let cases: [(&str, &ObjectRow, u32, Want); 7] = [
            (
                "a multipart object's first part",
                &three,
                1,
                Ok((0..102_400, Some(3))),
            ),
            (
                "its middle part",
                &three,
                2,
                Ok((102_400..204_800, Some(3))),
            ),
            ("its last part", &three, 3, Ok((204_800..204_805, Some(3)))),
            (
                "past its last part",
                &three,
                4,
                Err((416, "InvalidPartNumber")),
            ),
            (
                "a whole object's part 1: all of it",
                &whole,
                1,
                Ok((0..10, None)),
            ),
            (
                "a whole object's part 2",
                &whole,
                2,
                Err((416, "InvalidPartNumber")),
            ),
            (
                "a multipart object without part sizes",
                &before_v3,
                1,
                Err((501, "NotImplemented")),
            ),
        ];
        for (rule, obj, n, want) in cases {
            let got = part_span(n, obj).map_err(|e| (e.status.as_u16(), e.code));
            assert_eq!(got, want, "{rule}");
        }
        for bad in ["0", "10001", "x", "-1"] {
            let e = parse_part_number(bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "InvalidArgument"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_copy_onto_itself_must_change_its_encryption_or_storage_class() {
        for (names, allowed) in [
            (&[][..], false),
            (&["content-type", "x-amz-meta-a"][..], false),
            (
                &["x-amz-copy-source-server-side-encryption-customer-key"][..],
                false,
            ),
            (&["x-amz-server-side-encryption"][..], true),
            (&["x-obs-server-side-encryption"][..], true),
            (&["x-amz-server-side-encryption-aws-kms-key-id"][..], true),
            (&["x-amz-storage-class"][..], true),
            (&["x-obs-storage-class"][..], true),
        ] {
            let mut h = HeaderMap::new();
            for n in names {
                h.insert(*n, HeaderValue::from_static("x"));
            }
            let got = refuse_unchanged_copy_onto_itself(&h);
            assert_eq!(got.is_ok(), allowed, "{names:?}");
            if let Err(e) = got {
                assert_eq!((e.status.as_u16(), e.code), (400, "InvalidRequest"));
            }
        }
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=95-200", 100).unwrap(), Some(95..100));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert_eq!(parse_range("bytes=0-1,3-4", 100).unwrap(), None);
    }
}
