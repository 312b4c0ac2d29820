//! OBS's AppendObject (`POST /{bucket}/{key}?append&position=N`): an appendable object grows by
//! appends, each at the position its object's length has reached.
//!
//! The first append (position 0, no object under the key) creates the object with its metadata,
//! tags and encryption, as a PUT would; a later append adds its bytes and inherits the rest. An
//! SSE-KMS appendable object is an envelope multipart object (FORMAT.md section 5) whose parts are
//! its appends: one data key for the object, each append sealed as the next part, the manifest
//! extended and its tag renewed by every append. Its file grows in place, one append at a time
//! ([`Store::append_object`](crate::store::Store::append_object)); readers take it only up to its
//! committed length. A PUT or a copy over it makes a normal object; a copy of it is a normal object.

use std::sync::Arc;

use envelope::multipart::{MAX_PART_NUMBER, Manifest, Upload};
use envelope::{Backend, ObjectKind};
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use md5::{Digest, Md5};
use obs_adapter::{ObsRequest, Operation, StoredObject};

use super::files::Sealing;
use super::{ApiError, Body, Ctx, empty, stored_facts};
use crate::sse;
use crate::store::{ObjectRow, StoreError, Versioning, WriteCondition};

/// `409 PositionNotEqualToLength`: the append's position is not the object's length.
fn position_not_length(length: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "PositionNotEqualToLength",
        format!("the position of the append is not the object's length ({length})"),
    )
}

/// `409 ObjectNotAppendable`.
fn not_appendable(why: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "ObjectNotAppendable", why.to_owned())
}

/// The `position` parameter: a byte count.
fn parse_position(position: Option<&str>) -> Result<u64, ApiError> {
    let position = position.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "an append needs the position parameter (0 for the append that creates the object)",
        )
    })?;
    position
        .parse::<u64>()
        .ok()
        .filter(|_| position.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                format!("the position {position:?} is not a byte count"),
            )
        })
}

/// An appendable object's ETag: the MD5 of its appends' MD5s and their count, as S3 forms a
/// multipart object's from its parts'. Every append changes it.
fn appendable_etag(appends: &[[u8; 16]]) -> String {
    let mut md5 = Md5::new();
    for a in appends {
        md5.update(a);
    }
    format!("{}-{}", hex::encode(md5.finalize()), appends.len())
}

fn md5_bytes(md5_hex: &str) -> Result<[u8; 16], ApiError> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(md5_hex, &mut out).map_err(ApiError::internal)?;
    Ok(out)
}

impl Ctx<'_> {
    /// `POST /{bucket}/{key}?append&position=N`.
    pub(super) async fn append_object(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let position = parse_position(self.t.get("position"))?;
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let existing = self.gw.store.object(bucket, key)?;
        let found = existing.is_some();
        // The object an append extends, with its facts (a normal object is not one: refused
        // below, after the caller is known to be allowed to write here).
        let extended = existing
            .filter(|o| o.appends.is_some())
            .map(|o| stored_facts(&o).map(|stored| (o, stored)))
            .transpose()?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let obs_query = sse::to_obs_query(&self.t.query);
        let mut request = ObsRequest::new(
            Operation::AppendObject,
            self.caller,
            &facts,
            key,
            &obs_headers,
        )
        .with_query(&obs_query);
        if let Some((_, stored)) = &extended {
            request = request.with_stored(stored);
        }
        let decision = self
            .gw
            .adapter
            .decide(&request)
            .await
            .map_err(|e| self.refused(e))?;
        self.check_acl(&facts, &decision.policy)?;
        if row.versioning == Versioning::Enabled {
            // An append changes a version in place; a version, once made, does not change.
            return Err(not_appendable(
                "a bucket whose versioning is enabled takes no appends: each write there makes a new version",
            ));
        }
        let (row, answer) = match extended {
            Some((before, _)) if position != before.size => {
                return Err(position_not_length(before.size));
            }
            Some((before, stored)) => self.later_append(&facts, before, &stored, body).await?,
            None if found => {
                return Err(not_appendable(
                    "the object was not made by an append: only an appendable object takes appends",
                ));
            }
            None if position != 0 => return Err(position_not_length(0)),
            None => {
                self.first_append(&facts, bucket, key, &decision, body)
                    .await?
            }
        };
        let mut r = Response::new(empty());
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(answer))) {
            h.insert(header::ETAG, v);
        }
        h.insert("x-obs-next-append-position", HeaderValue::from(row.size));
        h.extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    /// The append that creates the object: its row and the MD5 of the append.
    async fn first_append(
        &self,
        facts: &obs_adapter::BucketFacts,
        bucket: &str,
        key: &str,
        decision: &obs_adapter::Decision,
        body: Incoming,
    ) -> Result<(ObjectRow, [u8; 16]), ApiError> {
        let tags = super::tagging::of_headers(self.headers)?;
        let file = uuid::Uuid::new_v4().to_string();
        let upload = self
            .sealing(
                facts,
                key,
                &file,
                &decision.encryption,
                ObjectKind::Multipart,
            )
            .await?
            .map(|(k, c)| Upload::new(k, c, Backend::fastest()).map(Arc::new))
            .transpose()
            .map_err(ApiError::internal)?;
        let sealing = upload.clone().map(|u| Sealing::Part(u, 1));
        let (temp, written) = self.receive_to_temp(body, sealing).await?;
        let md5 = md5_bytes(&written.md5_hex)?;
        let multipart = match (&upload, &written.part) {
            (Some(u), Some(part)) => {
                let manifest = u
                    .complete(std::slice::from_ref(part))
                    .map_err(ApiError::internal)?;
                Some((u.header().as_bytes().to_vec(), manifest.as_bytes().to_vec()))
            }
            _ => None,
        };
        let obj = ObjectRow {
            etag: appendable_etag(&[md5]),
            multipart,
            appends: Some(vec![md5]),
            ..self.new_object_row(bucket, key, file, &written, &decision.encryption, tags)
        };
        let gw = Arc::clone(self.gw);
        let row = obj.clone();
        let committed = self
            .gw
            .tasks
            .spawn_blocking(move || gw.store.commit_object(&temp, &row, &WriteCondition::Absent))
            .await
            .map_err(ApiError::internal)?;
        match committed {
            Ok(_) => Ok((obj, md5)),
            // Another write made an object under the key in the meantime.
            Err(StoreError::ConditionNotMet { .. }) => Err(position_not_length(0)),
            Err(e) => Err(e.into()),
        }
    }

    /// An append to the appendable object `before`: the object's new row and the append's MD5.
    async fn later_append(
        &self,
        facts: &obs_adapter::BucketFacts,
        before: ObjectRow,
        stored: &StoredObject,
        body: Incoming,
    ) -> Result<(ObjectRow, [u8; 16]), ApiError> {
        let appends = before.appends.clone().unwrap_or_default();
        let number = u32::try_from(appends.len() + 1)
            .ok()
            .filter(|n| *n <= MAX_PART_NUMBER)
            .ok_or_else(|| {
                not_appendable("the object has 10000 appends, the most an appendable object takes")
            })?;
        let upload = match &before.multipart {
            None => None,
            Some((header, _)) => Some(Arc::new(
                self.reopen_upload(
                    facts,
                    &before.bucket,
                    &before.key,
                    &before.file,
                    stored,
                    header,
                )
                .await?,
            )),
        };
        let stored_len = before
            .stored_len()?
            .ok_or_else(|| ApiError::internal("an appendable object without a length"))?;
        let sealing = upload.clone().map(|u| Sealing::Part(u, number));
        let (temp, written) = self.receive_to_temp(body, sealing).await?;
        let md5 = md5_bytes(&written.md5_hex)?;
        let manifest = match (&upload, &before.multipart, written.part) {
            (Some(u), Some((_, prior)), Some(part)) => Some(
                u.extend(prior, &[part])
                    .map(|m: Manifest| m.as_bytes().to_vec())
                    .map_err(ApiError::internal)?,
            ),
            _ => None,
        };
        let mut appends = appends;
        appends.push(md5);
        let modified_ms = self.now_ms();
        let after = ObjectRow {
            size: before.size + written.size,
            etag: appendable_etag(&appends),
            modified_ms,
            // An append that gives a life restarts it; one that does not keeps the object's.
            expires_ms: self.expires_ms(modified_ms).or(before.expires_ms),
            multipart: before
                .multipart
                .clone()
                .map(|(header, prior)| (header, manifest.unwrap_or(prior))),
            appends: Some(appends),
            checksum: None,
            ..before.clone()
        };
        let gw = Arc::clone(self.gw);
        let row = after.clone();
        let committed = self
            .gw
            .tasks
            .spawn_blocking(move || gw.store.append_object(&temp, &before, stored_len, &row))
            .await
            .map_err(ApiError::internal)?;
        match committed {
            Ok(()) => Ok((after, md5)),
            // Another append, a write or a delete came first: the position no longer holds.
            Err(StoreError::ConditionNotMet { .. }) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "PositionNotEqualToLength",
                "the object changed while the append was received: read its length and append \
                 again",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_a_byte_count() {
        for (given, want) in [
            (Some("0"), Ok(0)),
            (Some("12345"), Ok(12_345)),
            (None, Err("InvalidArgument")),
            (Some(""), Err("InvalidArgument")),
            (Some("-1"), Err("InvalidArgument")),
            (Some("+1"), Err("InvalidArgument")),
            (Some("1.5"), Err("InvalidArgument")),
            (Some("99999999999999999999999"), Err("InvalidArgument")),
        ] {
            assert_eq!(parse_position(given).map_err(|e| e.code), want, "{given:?}");
        }
    }

    #[test]
    fn every_append_changes_the_etag() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let one = appendable_etag(&[a]);
        let two = appendable_etag(&[a, b]);
        assert!(one.ends_with("-1") && two.ends_with("-2"), "{one} {two}");
        assert_ne!(one, two);
        assert_ne!(
            appendable_etag(&[b, a]),
            two,
            "the order of the appends counts"
        );
    }
}
