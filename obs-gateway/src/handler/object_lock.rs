//! Object Lock at the edge (`crate::object_lock` holds the rules): a bucket's configuration
//! (`?object-lock`), a version's retention (`?retention`) and legal hold (`?legal-hold`), a PUT's
//! lock headers, and the headers a read answers.

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;

use super::{ApiError, Body, Ctx, MAX_DOCUMENT, empty, xml_response};
use crate::object_lock::{self as lock, LockError, ObjectLock, Retention};
use crate::store::{BucketRow, ObjectRow, Versioning};
use crate::xml;

impl From<LockError> for ApiError {
    fn from(e: LockError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string())
    }
}

/// S3's refusal of a lock on an object in a bucket without Object Lock.
fn no_lock_configuration() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        "Bucket is missing Object Lock Configuration",
    )
}

fn no_object_lock(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NoSuchObjectLockConfiguration",
        format!("The specified object does not have a {what}"),
    )
}

impl Ctx<'_> {
    /// Whether the caller bypasses governance retention (`x-amz-bypass-governance-retention:
    /// true`); every caller here may, being the bucket's owner.
    pub(super) fn bypasses_governance(&self) -> bool {
        super::dialect_header(self.headers, "bypass-governance-retention")
            .ok()
            .flatten()
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    }

    /// The object lock a PUT's headers ask for (`x-amz-object-lock-mode` with
    /// `-retain-until-date`, `-legal-hold`): refused for a bucket without Object Lock, a mode
    /// without a date or the other way round, and a date not in the future.
    pub(super) fn lock_of_headers(&self, bucket: &BucketRow) -> Result<ObjectLock, ApiError> {
        let header = |name: &str| -> Result<Option<String>, ApiError> {
            Ok(super::dialect_header(self.headers, name)?
                .map(|v| v.to_str().unwrap_or("?").to_owned()))
        };
        // S3's newer event holds (`x-amz-object-lock-event-hold...`) are not kept: refused, not
        // dropped, as the version would be believed held.
        for name in self.headers.keys() {
            let kind = ["x-amz-object-lock-", "x-obs-object-lock-"]
                .iter()
                .find_map(|p| name.as_str().strip_prefix(p));
            if kind.is_some_and(|k| !["mode", "retain-until-date", "legal-hold"].contains(&k)) {
                return Err(ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "NotImplemented",
                    format!("{name} is not kept by the gateway"),
                ));
            }
        }
        let (mode, until, hold) = (
            header("object-lock-mode")?,
            header("object-lock-retain-until-date")?,
            header("object-lock-legal-hold")?,
        );
        if mode.is_none() && until.is_none() && hold.is_none() {
            return Ok(ObjectLock::default());
        }
        if bucket.object_lock.is_none() {
            return Err(no_lock_configuration());
        }
        let retention = match (mode, until) {
            (None, None) => None,
            (Some(mode), Some(until)) => {
                Some(
                    self.future_retention(Retention {
                        mode: lock::LockMode::parse(&mode)
                            .map_err(|e| LockError::Invalid(e.to_string()))?,
                        until_ms: lock::parse_until(&until)?,
                    })?,
                )
            }
            _ => {
                return Err(ApiError::bad(
                    "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied",
                ));
            }
        };
        Ok(ObjectLock {
            retention,
            legal_hold: hold
                .map(|h| lock::parse_hold(&h).map_err(|e| LockError::Invalid(e.to_string())))
                .transpose()?,
        })
    }

    /// `r`, if it ends in the future (as S3 requires of a retention being set).
    fn future_retention(&self, r: Retention) -> Result<Retention, ApiError> {
        if r.until_ms <= self.now_ms() {
            return Err(ApiError::bad(
                "The retain until date must be in the future!",
            ));
        }
        Ok(r)
    }

    /// Answers a version's object lock on a read, as S3 does.
    pub(super) fn put_lock_headers(&self, h: &mut HeaderMap, obj: &ObjectRow) {
        let mut put = |name: &str, value: &str| {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(
                    format!("{}object-lock-{name}", self.dialect_prefix()).as_bytes(),
                ),
                HeaderValue::from_str(value),
            ) {
                h.insert(n, v);
            }
        };
        if let Some(r) = obj.lock.retention {
            put("mode", r.mode.name());
            put("retain-until-date", &xml::iso_time(r.until_ms));
        }
        // As `GET ?legal-hold`: none where a hold was never set, `OFF` once one was lifted.
        if let Some(on) = obj.lock.legal_hold {
            put("legal-hold", if on { "ON" } else { "OFF" });
        }
    }

    /// PutObjectLockConfiguration: turns Object Lock on (for good) with a default retention or
    /// none; versioning must be enabled (409 `InvalidBucketState`).
    pub(super) async fn put_object_lock(
        &self,
        name: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let config = lock::parse_config(&self.document(body, MAX_DOCUMENT).await?)?;
        if row.versioning != Versioning::Enabled {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "InvalidBucketState",
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
            ));
        }
        self.gw.store.set_bucket_object_lock(name, &config)?;
        Ok(Response::new(empty()))
    }

    /// GetObjectLockConfiguration.
    pub(super) fn get_object_lock(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let config = row.object_lock.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ObjectLockConfigurationNotFoundError",
                "Object Lock configuration does not exist for this bucket",
            )
        })?;
        Ok(xml_response(lock::config_document(&config)))
    }

    /// The version `versionId` names (or the current one) of an object in a bucket with Object
    /// Lock, for a call on its retention or legal hold; the bucket's owner only.
    fn locked_version(&self, bucket: &str, key: &str) -> Result<(BucketRow, ObjectRow), ApiError> {
        let row = self.owned_bucket(bucket)?;
        if row.object_lock.is_none() {
            return Err(no_lock_configuration());
        }
        let obj = self.named_version(&row, key)?;
        Ok((row, obj))
    }

    /// PutObjectRetention: sets, lengthens or (in GOVERNANCE, bypassing it) shortens or lifts a
    /// version's retention; a COMPLIANCE retention is only lengthened (403 `AccessDenied`).
    pub(super) async fn put_retention(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let (row, obj) = self.locked_version(bucket, key)?;
        let retention = lock::parse_retention(&self.document(body, MAX_DOCUMENT).await?)?
            .map(|r| self.future_retention(r))
            .transpose()?;
        let which = self.version_ref()?;
        let changed = self.gw.store.set_retention(
            bucket,
            key,
            which,
            retention,
            (self.now_ms(), self.bypasses_governance()),
        )?;
        self.lock_changed(changed, &row, &obj)
    }

    /// The answer to a change of the lock of `obj` (in the bucket `row`): NoSuchKey if it went
    /// in the meantime.
    fn lock_changed(
        &self,
        changed: bool,
        row: &BucketRow,
        obj: &ObjectRow,
    ) -> Result<Response<Body>, ApiError> {
        if !changed {
            return Err(ApiError::no_key());
        }
        let mut r = Response::new(empty());
        self.put_version_id(r.headers_mut(), row, obj.version_id.as_deref());
        Ok(r)
    }

    /// GetObjectRetention: 404 `NoSuchObjectLockConfiguration` for a version without one.
    pub(super) fn get_retention(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        let (_, obj) = self.locked_version(bucket, key)?;
        let retention = obj
            .lock
            .retention
            .ok_or_else(|| no_object_lock("retention"))?;
        Ok(xml_response(lock::retention_document(&retention)))
    }

    /// PutObjectLegalHold: `ON` or `OFF`.
    pub(super) async fn put_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let (row, obj) = self.locked_version(bucket, key)?;
        let on = lock::parse_legal_hold(&self.document(body, MAX_DOCUMENT).await?)?;
        let changed = self
            .gw
            .store
            .set_legal_hold(bucket, key, self.version_ref()?, on)?;
        self.lock_changed(changed, &row, &obj)
    }

    /// GetObjectLegalHold: the version's status.
    pub(super) fn get_legal_hold(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        let (_, obj) = self.locked_version(bucket, key)?;
        let on = obj
            .lock
            .legal_hold
            .ok_or_else(|| no_object_lock("legal hold"))?;
        Ok(xml_response(lock::legal_hold_document(on)))
    }
}
