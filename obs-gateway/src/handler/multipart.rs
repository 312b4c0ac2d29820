//! Multipart uploads: initiate, upload part (from the body, or copied from a stored object's
//! range: UploadPartCopy), complete, abort, list parts, list a bucket's uploads.
//!
//! An SSE-KMS upload gets one data key at initiation (its envelope multipart header, with the
//! wrapped key, is kept in the upload's row); every part is sealed as an envelope part bound to
//! its part number, and completion writes the authenticated manifest next to the object
//! (FORMAT.md section 5). The object's file is the part bodies in part order; it is committed like
//! any object (temporary file, fsync, rename, one transaction), then the upload is removed.

use std::io::Write;
use std::sync::Arc;

use envelope::multipart::{PartInfo, Upload};
use envelope::{Backend, Header, ObjectKind};
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use md5::{Digest, Md5};
use obs_adapter::{ObsRequest, Operation, StoredObject};

use super::files::{Sealing, Written, copy_range_file};
use super::listing::{Page, key_encoding, page_size};
use super::{
    ApiError, Body, Ctx, checksum_element, empty, no_content, object_context, stored_encryption,
    user_metadata, xml_response,
};
use crate::checksum::{Algorithm, Combination, UploadChecksum};
use crate::sse;
use crate::store::{ObjectRow, PartRow, UploadPosition, UploadRow};
use crate::xml;

/// The largest completion document accepted (10 000 parts fit).
const MAX_COMPLETE_DOC: usize = 2 * 1024 * 1024;

fn no_upload() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "the specified multipart upload does not exist",
    )
}

fn invalid_part(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidPart", message)
}

fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

/// A header's text, if the request has it.
fn header_text<'h>(headers: &'h http::HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad(format!("{name} must be text")))
        })
        .transpose()
}

/// The checksum an initiation asks of its upload: `x-amz-checksum-algorithm` and
/// `x-amz-checksum-type`.
fn upload_checksum(headers: &http::HeaderMap) -> Result<Option<UploadChecksum>, ApiError> {
    UploadChecksum::of_headers(
        header_text(headers, "x-amz-checksum-algorithm")?,
        header_text(headers, "x-amz-checksum-type")?,
    )
    .map_err(invalid_request)
}

/// The algorithm of the additional checksum a part's request carries, as a header or as the
/// trailer it announces.
fn carried_algorithm(headers: &http::HeaderMap) -> Result<Option<Algorithm>, ApiError> {
    Ok(super::body_checksum(headers)?
        .and_then(|(name, _, _)| Algorithm::of_name(&name).ok().flatten()))
}

/// An upload's checksum as ListParts and ListMultipartUploads answer it.
fn upload_checksum_elements(c: UploadChecksum) -> String {
    format!(
        "<ChecksumAlgorithm>{}</ChecksumAlgorithm><ChecksumType>{}</ChecksumType>",
        c.algorithm.name(),
        c.combination.name()
    )
}

impl Ctx<'_> {
    /// The upload named by `uploadId`, for this bucket and key.
    fn upload_row(&self, bucket: &str, key: &str) -> Result<UploadRow, ApiError> {
        let id = self.t.get("uploadId").ok_or_else(no_upload)?;
        let row = self.gw.store.upload(id)?.ok_or_else(no_upload)?;
        if row.bucket != bucket || row.key != key {
            return Err(no_upload());
        }
        Ok(row)
    }

    fn upload_facts(&self, upload: &UploadRow) -> Result<StoredObject, ApiError> {
        Ok(StoredObject {
            owner: upload.owner.clone(),
            encryption: stored_encryption(upload.kms_key_id.as_deref())?,
        })
    }

    /// The upload's envelope `Upload` (its data key unwrapped through the adapter), for SSE-KMS.
    async fn sealed_upload(
        &self,
        facts: &obs_adapter::BucketFacts,
        upload: &UploadRow,
        stored: &StoredObject,
    ) -> Result<Option<Upload>, ApiError> {
        let Some(header) = &upload.envelope_header else {
            return Ok(None);
        };
        let version = &upload.upload_id;
        self.reopen_upload(facts, &upload.bucket, &upload.key, version, stored, header)
            .await
            .map(Some)
    }

    /// The envelope `Upload` of an SSE-KMS multipart upload, or of an SSE-KMS appendable object,
    /// under the multipart `header` it was begun with: its data key unwrapped through the
    /// adapter, its context the object's with `version` (the upload ID, or the appendable
    /// object's file).
    pub(super) async fn reopen_upload(
        &self,
        facts: &obs_adapter::BucketFacts,
        bucket: &str,
        key: &str,
        version: &str,
        stored: &StoredObject,
        header: &[u8],
    ) -> Result<Upload, ApiError> {
        let (hdr, _) = Header::parse(header).map_err(ApiError::internal)?;
        let object_key = self.unwrap_key(facts, key, stored, hdr).await?;
        let ctx = object_context(bucket, key, version)?;
        Upload::new(object_key, ctx, Backend::fastest()).map_err(ApiError::internal)
    }

    /// `POST /{bucket}/{key}?uploads`.
    pub(super) async fn initiate_upload(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        let tags = super::tagging::of_headers(self.headers)?;
        let checksum = upload_checksum(self.headers)?;
        let row = self.bucket_row(bucket)?;
        let lock = self.lock_of_headers(&row)?;
        let facts = self.facts(&row)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let decision = self
            .gw
            .adapter
            .decide(&ObsRequest::new(
                Operation::InitiateMultipartUpload,
                self.caller,
                &facts,
                key,
                &obs_headers,
            ))
            .await
            .map_err(|e| self.refused(e))?;
        self.check_acl(&facts, &decision.policy)?;
        let upload_id = uuid::Uuid::new_v4().to_string();
        let header = self
            .sealing(
                &facts,
                key,
                &upload_id,
                &decision.encryption,
                ObjectKind::Multipart,
            )
            .await?
            .map(|(k, _)| k.header().as_bytes().to_vec());
        self.gw.store.create_upload(&UploadRow {
            upload_id: upload_id.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            owner: self.caller.domain.clone(),
            kms_key_id: decision.encryption.key_id().map(|k| k.to_string()),
            envelope_header: header,
            content_type: self
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            meta: user_metadata(self.headers),
            headers: super::request_stored_headers(self.headers),
            tags,
            created_ms: self.now_ms(),
            expires_days: self.expires_days,
            checksum,
            lock,
        })?;
        let mut r = xml_response(format!(
            "{}<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId></InitiateMultipartUploadResult>",
            xml::DECL,
            xml::escape(bucket),
            xml::escape(key),
            upload_id
        ));
        if let Some(c) = checksum {
            let h = r.headers_mut();
            h.insert(
                "x-amz-checksum-algorithm",
                HeaderValue::from_static(c.algorithm.name()),
            );
            h.insert(
                "x-amz-checksum-type",
                HeaderValue::from_static(c.combination.name()),
            );
        }
        r.headers_mut().extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    /// `PUT /{bucket}/{key}?partNumber=N&uploadId=ID`.
    pub(super) async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let number = super::objects::parse_part_number(self.t.get("partNumber").unwrap_or(""))?;
        let upload = self.upload_row(bucket, key)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        // UploadPartCopy: the part's bytes come from a stored object (a range of it).
        let copied = obs_headers.contains_key("x-obs-copy-source");
        // An upload begun with a checksum takes only parts that carry a value of it (a copied
        // part's is computed as it is copied), so that its completion can check every part.
        if let Some(want) = upload.checksum
            && !copied
        {
            let carried = carried_algorithm(self.headers)?;
            if carried != Some(want.algorithm) {
                return Err(invalid_request(format!(
                    "the upload was created with the {} checksum algorithm: every part must \
                     carry its {} (this one carries {})",
                    want.algorithm.name(),
                    want.algorithm.header(),
                    carried.map_or("none", Algorithm::header)
                )));
            }
        }
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let stored = self.upload_facts(&upload)?;
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(
                    Operation::UploadPart,
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
        let sealing = self
            .sealed_upload(&facts, &upload, &stored)
            .await?
            .map(|u| Sealing::Part(Arc::new(u), number));
        let temp = self.gw.store.temp_path();
        let written = if copied {
            let checksum = upload.checksum.map(|c| c.algorithm);
            self.copy_into_part(&obs_headers, temp.clone(), (sealing, checksum))
                .await
        } else {
            self.receive_body(body, temp.clone(), sealing)
                .await
                .map(|w| (w, None))
        };
        let (written, source_version) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        let sealed_info = written.part.as_ref().map(|p| {
            let mut v = p.salt.to_vec();
            v.extend_from_slice(&p.commitment);
            v
        });
        let part = PartRow {
            number,
            file: uuid::Uuid::new_v4().to_string(),
            size: written.size,
            etag: written.md5_hex.clone(),
            sealed_info,
            modified_ms: self.now_ms(),
            checksum: written.checksum.clone(),
        };
        let gw = Arc::clone(self.gw);
        let id = upload.upload_id.clone();
        self.gw
            .tasks
            .spawn_blocking(move || gw.store.commit_part(&temp, &id, &part))
            .await
            .map_err(ApiError::internal)??;
        let mut r = if copied {
            xml_response(format!(
                "{}<CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag>{}</CopyPartResult>",
                xml::DECL,
                xml::iso_time(self.now_ms()),
                written.md5_hex,
                written
                    .checksum
                    .as_ref()
                    .and_then(checksum_element)
                    .unwrap_or_default()
            ))
        } else {
            let mut r = Response::new(empty());
            // As S3: the part's verified checksum, which the completion lists (OBS's, which the
            // OBS SDK combines into the object's, in the request's dialect).
            if let Some((name, value)) = &written.checksum {
                let name = super::objects::answered_checksum_name(self.dialect_prefix(), name);
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    r.headers_mut().insert(name, value);
                }
            }
            r
        };
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", written.md5_hex)) {
            r.headers_mut().insert(header::ETAG, v);
        }
        if let Some(id) = &source_version {
            self.put_version_header(r.headers_mut(), "copy-source-version-id", id);
        }
        r.headers_mut().extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    /// The plaintext of the copy source (whole, or `x-obs-copy-source-range` / its S3 name)
    /// written as this part, and the source's version ID. The source is read as in a copy: its
    /// bucket's owner only, its data key unwrapped through the adapter (rule 9).
    async fn copy_into_part(
        &self,
        obs_headers: &http::HeaderMap,
        temp: std::path::PathBuf,
        sealing: (Option<Sealing>, Option<Algorithm>),
    ) -> Result<(Written, Option<String>), ApiError> {
        let (src_facts, src, mut src_file, stored) = self.copy_source(obs_headers)?;
        let range = match self
            .headers
            .get("x-obs-copy-source-range")
            .or_else(|| self.headers.get("x-amz-copy-source-range"))
            .and_then(|v| v.to_str().ok())
        {
            None => 0..src.size,
            Some(r) => super::objects::parse_range(r, src.size)?
                .ok_or_else(|| ApiError::bad("the copy source range must be bytes=first-last"))?,
        };
        let opening = self
            .opening(&src_facts, &src, &mut src_file, &stored)
            .await?;
        let whole = range.start == 0 && range.end == src.size;
        let written = self
            .gw
            .tasks
            .spawn_blocking(move || {
                copy_range_file(src_file, opening, range, whole, &temp, sealing)
            })
            .await
            .map_err(ApiError::internal)?;
        written
            .map(|w| (w, src.version_id))
            .map_err(|e| ApiError::internal(format!("copying into a part: {e}")))
    }

    /// `POST /{bucket}/{key}?uploadId=ID` with the parts to keep.
    pub(super) async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let upload = self.upload_row(bucket, key)?;
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let stored = self.upload_facts(&upload)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(
                    Operation::CompleteMultipartUpload,
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
        let condition = self.write_condition(bucket, key)?;
        // A checksum header here is the object's, not the document's.
        let doc = self.read_document(body, MAX_COMPLETE_DOC, false).await?;
        let mut wanted: Vec<(u32, String)> = Vec::new();
        let mut listed: Vec<Vec<(Algorithm, String)>> = Vec::new();
        for part in xml::raw_elements(&doc, "Part") {
            let number = xml::element(part, "PartNumber", 0)
                .and_then(|(n, _)| n.parse::<u32>().ok())
                .ok_or_else(|| super::malformed_xml("every Part needs a PartNumber"))?;
            let etag = xml::element(part, "ETag", 0)
                .map(|(e, _)| e.trim_matches('"').to_owned())
                .unwrap_or_default();
            wanted.push((number, etag));
            listed.push(
                Algorithm::ALL
                    .into_iter()
                    .filter_map(|alg| xml::element(part, alg.element(), 0).map(|(v, _)| (alg, v)))
                    .collect(),
            );
        }
        if wanted.is_empty() {
            return Err(super::malformed_xml(
                "CompleteMultipartUpload needs at least one Part",
            ));
        }
        if wanted.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidPartOrder",
                "the list of parts was not in ascending order",
            ));
        }
        let have = self.gw.store.parts(&upload.upload_id)?;
        let mut chosen: Vec<PartRow> = Vec::with_capacity(wanted.len());
        for (number, etag) in &wanted {
            let p = have
                .iter()
                .find(|p| p.number == *number)
                .ok_or_else(|| invalid_part(format!("part {number} was not uploaded")))?;
            if !etag.is_empty() && *etag != p.etag {
                return Err(invalid_part(format!("part {number}'s ETag does not match")));
            }
            chosen.push(p.clone());
        }
        check_part_sizes(&chosen)?;
        check_object_size(self.headers, chosen.iter().map(|p| p.size).sum())?;
        let stated = super::header_checksum(self.headers)?
            .and_then(|(name, value, _)| Some((Algorithm::of_name(&name).ok()??, value)));
        let checksums = completion_checksum(
            upload.checksum,
            &chosen,
            &listed,
            stated.as_ref().map(|(alg, v)| (*alg, v.as_str())),
            header_text(self.headers, "x-amz-checksum-type")?,
        )?;
        let manifest = match self.sealed_upload(&facts, &upload, &stored).await? {
            None => None,
            Some(sealed) => {
                let infos = chosen
                    .iter()
                    .map(part_info)
                    .collect::<Result<Vec<_>, _>>()?;
                Some(
                    sealed
                        .complete(&infos)
                        .map_err(ApiError::internal)?
                        .as_bytes()
                        .to_vec(),
                )
            }
        };
        let mut md5s = Md5::new();
        for p in &chosen {
            md5s.update(hex::decode(&p.etag).map_err(ApiError::internal)?);
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let size = chosen.iter().map(|p| p.size).sum();
        let temp = self.gw.store.temp_path();
        let files: Vec<_> = chosen
            .iter()
            .map(|p| self.gw.store.part_path(&p.file))
            .collect();
        let t2 = temp.clone();
        let joined = self
            .gw
            .tasks
            .spawn_blocking(move || join_parts(&files, &t2))
            .await
            .map_err(ApiError::internal)?;
        if let Err(e) = joined {
            let _ = std::fs::remove_file(&temp);
            return Err(ApiError::internal(format!("joining parts: {e}")));
        }
        let modified_ms = self.now_ms();
        let obj = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            file: upload.upload_id.clone(),
            size,
            etag: etag.clone(),
            content_type: upload.content_type.clone(),
            owner: upload.owner.clone(),
            kms_key_id: upload.kms_key_id.clone(),
            meta: upload.meta.clone(),
            headers: upload.headers.clone(),
            modified_ms,
            // The life the initiation gave the object, from its completion.
            expires_ms: upload
                .expires_days
                .map(|d| crate::expiry::expires_ms(modified_ms, d)),
            multipart: upload.envelope_header.clone().zip(manifest),
            part_sizes: Some(chosen.iter().map(|p| p.size).collect()),
            appends: None,
            checksum: checksums
                .as_ref()
                .map(|(c, value, _)| (c.algorithm.header().to_owned(), value.clone())),
            part_checksums: checksums.as_ref().map(|(_, _, parts)| parts.clone()),
            tags: upload.tags.clone(),
            version_id: None,
            lock: upload.lock,
        };
        let mut checksum_header = http::HeaderMap::new();
        let checksum_elements = self.result_checksum(obj.checksum.as_ref(), &mut checksum_header);
        // Answered once committed: the object's expiry, its own or its bucket's rules'.
        let mut expiration = http::HeaderMap::new();
        self.put_expiration(&mut expiration, &obj, &row.lifecycle);
        let gw = Arc::clone(self.gw);
        let id = upload.upload_id.clone();
        let version_id = self
            .gw
            .tasks
            .spawn_blocking(move || {
                let version_id = gw.store.commit_object(&temp, &obj, &condition)?;
                gw.store.delete_upload(&id)?;
                Ok::<_, crate::store::StoreError>(version_id)
            })
            .await
            .map_err(ApiError::internal)??;
        let mut r = xml_response(format!(
            "{}<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/{}/{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>&quot;{etag}&quot;</ETag>{checksum_elements}</CompleteMultipartUploadResult>",
            xml::DECL,
            xml::escape(bucket),
            xml::escape(key),
            xml::escape(bucket),
            xml::escape(key),
        ));
        r.headers_mut().extend(expiration);
        r.headers_mut().extend(checksum_header);
        self.put_version_id(r.headers_mut(), &row, version_id.as_deref());
        r.headers_mut().extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    /// `DELETE /{bucket}/{key}?uploadId=ID`.
    pub(super) fn abort_upload(&self, bucket: &str, key: &str) -> Result<Response<Body>, ApiError> {
        let upload = self.upload_row(bucket, key)?;
        if upload.owner != self.caller.domain {
            return Err(ApiError::denied());
        }
        super::conditions::abort(self.headers, upload.created_ms)?;
        self.gw.store.delete_upload(&upload.upload_id)?;
        Ok(no_content())
    }

    /// `GET /{bucket}?uploads`: the bucket's uploads in progress, as S3's
    /// ListMultipartUploads answers (by key, then initiation time), with `prefix`, `delimiter`,
    /// `key-marker`, `upload-id-marker`, `max-uploads` and `encoding-type`. How a caller finds an
    /// upload it lost the ID of, to abort it (a bucket with uploads cannot be deleted).
    pub(super) fn list_uploads(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let t = self.t;
        let prefix = t.get("prefix").unwrap_or("");
        let delimiter = t.get("delimiter").filter(|d| !d.is_empty());
        let max = page_size(t, "max-uploads")?;
        let key_marker = t.get("key-marker").unwrap_or("");
        // As S3: an upload-id-marker counts only with a key-marker, and resumes among that key's
        // uploads after the one it names.
        let id_marker = t
            .get("upload-id-marker")
            .filter(|m| !m.is_empty() && !key_marker.is_empty());
        let mut after = UploadPosition {
            key: key_marker.to_owned(),
            created_ms: i64::MAX,
            upload_id: String::new(),
        };
        if let Some(id) = id_marker {
            match self.gw.store.upload(id)? {
                Some(u) if u.bucket == bucket && u.key == key_marker => {
                    after.created_ms = u.created_ms;
                    after.upload_id = u.upload_id;
                }
                // The marker's upload ended since the last page: list all of its key's uploads
                // again rather than miss one.
                _ => after.created_ms = i64::MIN,
            }
        }
        let mut page = Page::new(prefix, delimiter, key_marker, max);
        'scan: while !page.takes_nothing() {
            let batch = self.gw.store.list_uploads(bucket, prefix, &after, 1000)?;
            if batch.is_empty() {
                break;
            }
            for u in batch {
                after = UploadPosition {
                    key: u.key.clone(),
                    created_ms: u.created_ms,
                    upload_id: u.upload_id.clone(),
                };
                if !page.offer(&after.key, u) {
                    break 'scan;
                }
            }
        }
        let enc = key_encoding(t);
        let mut s = format!(
            "{}<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><KeyMarker>{}</KeyMarker><UploadIdMarker>{}</UploadIdMarker>",
            xml::DECL,
            xml::escape(bucket),
            xml::escape(&enc(key_marker)),
            xml::escape(id_marker.unwrap_or("")),
        );
        if !page.last.is_empty() {
            let next_id = match (page.last_is_item, page.items.last()) {
                (true, Some(u)) => u.upload_id.as_str(),
                _ => "",
            };
            s.push_str(&format!(
                "<NextKeyMarker>{}</NextKeyMarker><NextUploadIdMarker>{}</NextUploadIdMarker>",
                xml::escape(&enc(&page.last)),
                xml::escape(next_id)
            ));
        }
        if let Some(d) = delimiter {
            s.push_str(&format!("<Delimiter>{}</Delimiter>", xml::escape(&enc(d))));
        }
        s.push_str(&format!(
            "<Prefix>{}</Prefix><MaxUploads>{max}</MaxUploads><IsTruncated>{}</IsTruncated>",
            xml::escape(&enc(prefix)),
            page.truncated
        ));
        if t.get("encoding-type") == Some("url") {
            s.push_str("<EncodingType>url</EncodingType>");
        }
        for u in &page.items {
            s.push_str(&format!(
                "<Upload><Key>{}</Key><UploadId>{}</UploadId><Initiator><ID>{owner}</ID><DisplayName>{owner}</DisplayName></Initiator><Owner><ID>{owner}</ID><DisplayName>{owner}</DisplayName></Owner><StorageClass>STANDARD</StorageClass><Initiated>{}</Initiated>{}</Upload>",
                xml::escape(&enc(&u.key)),
                xml::escape(&u.upload_id),
                xml::iso_time(u.created_ms),
                u.checksum.map(upload_checksum_elements).unwrap_or_default(),
                owner = u.owner,
            ));
        }
        for p in &page.prefixes {
            s.push_str(&format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                xml::escape(&enc(p))
            ));
        }
        s.push_str("</ListMultipartUploadsResult>");
        Ok(xml_response(s))
    }

    /// `GET /{bucket}/{key}?uploadId=ID`.
    pub(super) fn list_parts(&self, bucket: &str, key: &str) -> Result<Response<Body>, ApiError> {
        let upload = self.upload_row(bucket, key)?;
        if upload.owner != self.caller.domain {
            return Err(ApiError::denied());
        }
        let marker: u32 = match self.t.get("part-number-marker") {
            None => 0,
            Some(m) => m
                .parse()
                .map_err(|_| ApiError::bad("part-number-marker must be a non-negative integer"))?,
        };
        let max = page_size(self.t, "max-parts")?;
        let parts: Vec<PartRow> = self
            .gw
            .store
            .parts(&upload.upload_id)?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = parts.len() > max;
        let shown = &parts[..parts.len().min(max)];
        let mut s = format!(
            "{}<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId><PartNumberMarker>{marker}</PartNumberMarker><NextPartNumberMarker>{}</NextPartNumberMarker><MaxParts>{max}</MaxParts><IsTruncated>{truncated}</IsTruncated>",
            xml::DECL,
            xml::escape(bucket),
            xml::escape(key),
            upload.upload_id,
            shown.last().map_or(marker, |p| p.number)
        );
        if let Some(c) = upload.checksum {
            s.push_str(&upload_checksum_elements(c));
        }
        for p in shown {
            s.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size>{}</Part>",
                p.number,
                xml::iso_time(p.modified_ms),
                p.etag,
                p.size,
                p.checksum.as_ref().and_then(checksum_element).unwrap_or_default()
            ));
        }
        s.push_str("</ListPartsResult>");
        Ok(xml_response(s))
    }
}

/// What a completion makes of the checksums: every value the document lists for a part must be
/// the part's kept one (else `InvalidPart`); an upload begun with a checksum needs its
/// algorithm's value listed for every part (`InvalidRequest`), and gets the object's value made
/// from them, which the completion's own `x-amz-checksum-*` header (`stated`), if any, must equal
/// (`BadDigest`; a composite value with or without its `-N`), as must its `x-amz-checksum-type`.
/// OBS's CRC64-ECMA is stated without an algorithm named at initiation (the OBS SDK's
/// `isAttachCrc64` states the parts' values combined): every part must have carried one, and
/// the document lists none. Returns the checksum, the object's value and its parts' values;
/// `None` for an upload without a checksum.
fn completion_checksum(
    upload: Option<UploadChecksum>,
    chosen: &[PartRow],
    listed: &[Vec<(Algorithm, String)>],
    stated: Option<(Algorithm, &str)>,
    stated_type: Option<&str>,
) -> Result<Option<(UploadChecksum, String, Vec<String>)>, ApiError> {
    let obs_crc = upload.is_none() && matches!(stated, Some((Algorithm::Crc64Ecma, _)));
    let upload = upload.or(obs_crc.then_some(UploadChecksum {
        algorithm: Algorithm::Crc64Ecma,
        combination: Combination::FullObject,
    }));
    for (p, given) in chosen.iter().zip(listed) {
        for (alg, value) in given {
            match &p.checksum {
                Some((name, kept)) if name == alg.header() && kept == value => {}
                _ => {
                    return Err(invalid_part(format!(
                        "part {}'s {} does not match the part's",
                        p.number,
                        alg.element()
                    )));
                }
            }
        }
    }
    let Some(upload) = upload else {
        if let Some((alg, _)) = stated {
            return Err(invalid_request(format!(
                "{} given, but the upload was created without a checksum algorithm",
                alg.header()
            )));
        }
        if stated_type.is_some() {
            return Err(invalid_request(
                "x-amz-checksum-type given, but the upload was created without a checksum \
                 algorithm",
            ));
        }
        return Ok(None);
    };
    if let Some(t) = stated_type
        && !t.trim().eq_ignore_ascii_case(upload.combination.name())
    {
        return Err(invalid_request(format!(
            "the upload was created with the checksum type {}; the completion says {t}",
            upload.combination.name()
        )));
    }
    let mut parts = Vec::with_capacity(chosen.len());
    for (p, given) in chosen.iter().zip(listed) {
        if obs_crc {
            let kept = p
                .checksum
                .as_ref()
                .filter(|(name, _)| name == upload.algorithm.header())
                .ok_or_else(|| {
                    invalid_request(format!(
                        "part {} carried no {}: the object's cannot be checked",
                        p.number,
                        upload.algorithm.header()
                    ))
                })?;
            parts.push((kept.1.as_str(), p.size));
            continue;
        }
        if !given.iter().any(|(alg, _)| *alg == upload.algorithm) {
            return Err(invalid_request(format!(
                "the upload was created with the {} checksum algorithm: the completion must list \
                 every part's {}, and part {} has none",
                upload.algorithm.name(),
                upload.algorithm.element(),
                p.number
            )));
        }
        // Listed and equal to the part's kept value, checked above.
        let (_, kept) = p
            .checksum
            .as_ref()
            .ok_or_else(|| ApiError::internal("a checksummed part without its checksum"))?;
        parts.push((kept.as_str(), p.size));
    }
    let value = upload.object_value(&parts).map_err(ApiError::internal)?;
    if let Some((alg, given)) = stated {
        if alg != upload.algorithm {
            return Err(invalid_request(format!(
                "{} given, but the upload was created with the {} checksum algorithm",
                alg.header(),
                upload.algorithm.name()
            )));
        }
        let bare = value.split('-').next().unwrap_or_default();
        let given = given.trim();
        if given != value && !(upload.combination == Combination::Composite && given == bare) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "BadDigest",
                format!(
                    "the {} you specified did not match the calculated checksum",
                    alg.header()
                ),
            ));
        }
    }
    let values = parts.into_iter().map(|(v, _)| v.to_owned()).collect();
    Ok(Some((upload, value, values)))
}

/// The smallest part but the last, in bytes: OBS's 100 KiB (S3's is 5 MiB).
const MIN_PART: u64 = 100 * 1024;

/// Refuses a completion whose parts, but the last, are not all at least [`MIN_PART`] long, as
/// OBS does: client code that cuts smaller parts would fail against the cloud.
fn check_part_sizes(chosen: &[PartRow]) -> Result<(), ApiError> {
    let Some((_last, others)) = chosen.split_last() else {
        return Ok(());
    };
    match others.iter().find(|p| p.size < MIN_PART) {
        None => Ok(()),
        Some(p) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            format!(
                "part {} is {} bytes; every part but the last must be at least {MIN_PART} bytes",
                p.number, p.size
            ),
        )),
    }
}

/// `x-amz-mp-object-size`, when given, is the size the parts make: a client that states it is
/// refused rather than given an object of another size (a part it did not mean to list).
fn check_object_size(headers: &http::HeaderMap, size: u64) -> Result<(), ApiError> {
    let Some(v) = headers.get("x-amz-mp-object-size") else {
        return Ok(());
    };
    let stated: u64 = v
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::bad("x-amz-mp-object-size is not a size"))?;
    if stated == size {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        format!("the parts make {size} bytes; x-amz-mp-object-size says {stated}"),
    ))
}

/// The envelope `PartInfo` a sealed part's row keeps (salt, then commitment).
fn part_info(p: &PartRow) -> Result<PartInfo, ApiError> {
    let info = p
        .sealed_info
        .as_deref()
        .ok_or_else(|| ApiError::internal("an SSE-KMS part without its envelope facts"))?;
    let (salt, commitment) = info
        .split_at_checked(envelope::chunked::SALT_SIZE)
        .ok_or_else(|| ApiError::internal("a part's envelope facts are too short"))?;
    Ok(PartInfo {
        number: p.number,
        plaintext_len: p.size,
        salt: salt.try_into().map_err(ApiError::internal)?,
        commitment: commitment.try_into().map_err(ApiError::internal)?,
    })
}

/// Concatenates the part files into `temp` and fsyncs it.
fn join_parts(files: &[std::path::PathBuf], temp: &std::path::Path) -> std::io::Result<()> {
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)?;
    let mut out = std::io::BufWriter::with_capacity(super::IO_CHUNK, out);
    for f in files {
        std::io::copy(&mut std::fs::File::open(f)?, &mut out)?;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(sizes: &[u64]) -> Vec<PartRow> {
        (1..)
            .zip(sizes)
            .map(|(number, &size)| PartRow {
                number,
                file: String::new(),
                size,
                etag: String::new(),
                sealed_info: None,
                modified_ms: 0,
                checksum: None,
            })
            .collect()
    }

    /// A completion case: its rule, the upload's checksum, the values listed per part, the
    /// stated header and type, and the object's value or the error code.
    type Case<'a> = (
        &'a str,
        Option<UploadChecksum>,
        Vec<Vec<(Algorithm, String)>>,
        Option<(Algorithm, String)>,
        Option<&'a str>,
        Result<Option<String>, &'a str>,
    );

    /// Two parts that carried CRC32 values ("one", "two" of 102,400 and 3 bytes).
    fn crc_parts() -> Vec<PartRow> {
        let mut p = parts(&[102_400, 3]);
        for (part, v) in p.iter_mut().zip(["AAAAAQ==", "AAAAAg=="]) {
            part.checksum = Some(("x-amz-checksum-crc32".into(), v.into()));
        }
        p
    }

    #[test]
    fn a_completion_lists_every_parts_checksum_and_gets_the_objects() {
        use crate::checksum::Algorithm::{Crc32, Sha256};
        let composite = Some(UploadChecksum {
            algorithm: Crc32,
            combination: Combination::Composite,
        });
        let full = Some(UploadChecksum {
            algorithm: Crc32,
            combination: Combination::FullObject,
        });
        let both = || {
            vec![
                vec![(Crc32, "AAAAAQ==".to_owned())],
                vec![(Crc32, "AAAAAg==".to_owned())],
            ]
        };
        let expect = |upload: Option<UploadChecksum>| {
            let values = [("AAAAAQ==", 102_400), ("AAAAAg==", 3)];
            upload.map(|u| u.object_value(&values).unwrap())
        };
        let composite_value = expect(composite).unwrap();
        let bare = composite_value.split('-').next().unwrap().to_owned();
        // (rule, upload, listed, stated header, stated type, Ok(object value) or Err(code))
        let cases: Vec<Case<'_>> = vec![
            (
                "composite: the parts' values combined",
                composite,
                both(),
                None,
                None,
                Ok(expect(composite)),
            ),
            (
                "full object: the whole object's CRC",
                full,
                both(),
                None,
                Some("FULL_OBJECT"),
                Ok(expect(full)),
            ),
            (
                "the stated value must be the object's",
                composite,
                both(),
                Some((Crc32, composite_value.clone())),
                None,
                Ok(expect(composite)),
            ),
            (
                "a composite value may be stated without -N",
                composite,
                both(),
                Some((Crc32, bare)),
                None,
                Ok(expect(composite)),
            ),
            (
                "a wrong stated value",
                full,
                both(),
                Some((Crc32, "AAAAAA==".into())),
                None,
                Err("BadDigest"),
            ),
            (
                "a stated value of another algorithm",
                full,
                both(),
                Some((Sha256, "AAAAAA==".into())),
                None,
                Err("InvalidRequest"),
            ),
            (
                "another type than the upload's",
                composite,
                both(),
                None,
                Some("FULL_OBJECT"),
                Err("InvalidRequest"),
            ),
            (
                "a part without its value",
                composite,
                vec![both()[0].clone(), vec![]],
                None,
                None,
                Err("InvalidRequest"),
            ),
            (
                "a part's value that is not the part's",
                composite,
                vec![both()[0].clone(), vec![(Crc32, "AAAAAw==".into())]],
                None,
                None,
                Err("InvalidPart"),
            ),
            (
                "a value of an algorithm the part did not carry",
                None,
                vec![vec![(Sha256, "AAAAAQ==".into())], vec![]],
                None,
                None,
                Err("InvalidPart"),
            ),
            (
                "no upload checksum: listed values still checked",
                None,
                both(),
                None,
                None,
                Ok(None),
            ),
            (
                "no upload checksum: nothing to state",
                None,
                both(),
                Some((Crc32, "AAAAAQ==".into())),
                None,
                Err("InvalidRequest"),
            ),
            (
                "no upload checksum: no type to state",
                None,
                both(),
                None,
                Some("COMPOSITE"),
                Err("InvalidRequest"),
            ),
        ];
        for (rule, upload, listed, stated, stated_type, want) in cases {
            let got = completion_checksum(
                upload,
                &crc_parts(),
                &listed,
                stated.as_ref().map(|(a, v)| (*a, v.as_str())),
                stated_type,
            );
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got.as_ref().map(|(_, v, _)| v.clone()), want, "{rule}");
                    if let Some((_, _, parts)) = got {
                        assert_eq!(parts, ["AAAAAQ==", "AAAAAg=="], "{rule}");
                    }
                }
                (Err(e), Err(code)) => assert_eq!(e.code, code, "{rule}: {}", e.message),
                (got, want) => panic!("{rule}: got {:?}, want {want:?}", got.map_err(|e| e.code)),
            }
        }
    }

    #[test]
    fn obs_crc64_ecma_stated_at_completion_is_the_parts_combined() {
        use crate::checksum::Checksum;
        let value = |data: &[u8]| {
            let mut c = Checksum::new(Algorithm::Crc64Ecma);
            c.update(data);
            c.finish()
        };
        let (one, two) = (vec![7u8; 102_400], b"tail".to_vec());
        let mut obs_parts = parts(&[102_400, 4]);
        for (part, data) in obs_parts.iter_mut().zip([&one, &two]) {
            part.checksum = Some(("x-obs-checksum-crc64ecma".into(), value(data)));
        }
        let whole = value(&[one.clone(), two].concat());
        let none = [vec![], vec![]];
        let check = |chosen: &[PartRow], stated: &str| {
            completion_checksum(
                None,
                chosen,
                &none,
                Some((Algorithm::Crc64Ecma, stated)),
                None,
            )
            .map(|got| got.map(|(c, v, _)| (c.algorithm, v)))
            .map_err(|e| e.code)
        };
        assert_eq!(
            check(&obs_parts, &whole),
            Ok(Some((Algorithm::Crc64Ecma, whole.clone()))),
            "the parts' values combined are the whole object's"
        );
        assert_eq!(check(&obs_parts, "12345"), Err("BadDigest"));
        assert_eq!(
            check(&crc_parts(), &whole),
            Err("InvalidRequest"),
            "parts that carried none cannot be checked"
        );
    }

    #[test]
    fn a_parts_checksum_algorithm_is_its_headers_or_its_announced_trailers() {
        for (headers, want) in [
            (&[][..], Ok(None)),
            (
                &[("x-amz-checksum-sha256", "x")][..],
                Ok(Some(Algorithm::Sha256)),
            ),
            (
                &[("x-amz-trailer", "x-amz-checksum-crc32c")][..],
                Ok(Some(Algorithm::Crc32c)),
            ),
            (
                &[("x-amz-trailer", " X-Amz-Checksum-CRC64NVME ")][..],
                Ok(Some(Algorithm::Crc64Nvme)),
            ),
            (&[("x-amz-trailer", "x-amz-checksum-md5")][..], Err(400)),
            (&[("x-amz-checksum-sha512", "x")][..], Err(400)),
            // A trailer that is no checksum carries none.
            (&[("x-amz-trailer", "x-amz-meta-late")][..], Ok(None)),
        ] {
            let mut map = http::HeaderMap::new();
            for (n, v) in headers {
                map.insert(*n, HeaderValue::from_static(v));
            }
            let got = carried_algorithm(&map).map_err(|e| e.status.as_u16());
            assert_eq!(got, want, "{headers:?}");
        }
    }

    #[test]
    fn every_part_but_the_last_is_at_least_100_kib() {
        for (sizes, refused_part) in [
            (&[1][..], None),
            (&[0][..], None),
            (&[MIN_PART, 1], None),
            (&[MIN_PART, MIN_PART, MIN_PART + 1], None),
            (&[MIN_PART - 1, 1], Some(1)),
            (&[MIN_PART, MIN_PART - 1, MIN_PART], Some(2)),
            (&[100_000, 100_000, 50_000], Some(1)),
        ] {
            let got = check_part_sizes(&parts(sizes));
            match refused_part {
                None => assert!(got.is_ok(), "{sizes:?}"),
                Some(n) => {
                    let e = got.expect_err("refused");
                    assert_eq!((e.status.as_u16(), e.code), (400, "EntityTooSmall"));
                    assert!(
                        e.message.starts_with(&format!("part {n} ")),
                        "{}",
                        e.message
                    );
                }
            }
        }
    }
}
