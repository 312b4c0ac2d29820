//! Bucket lifecycle over HTTP: PutBucketLifecycleConfiguration (and OBS's setBucketLifecycle),
//! GetBucketLifecycleConfiguration and DeleteBucketLifecycle, for the bucket's owner. The rules
//! and when they expire what are [`crate::lifecycle`]; the store applies them.

use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{ApiError, Body, Ctx, MAX_DOCUMENT, empty, no_content, xml_response};
use crate::lifecycle;

impl Ctx<'_> {
    /// PutBucketLifecycleConfiguration: replaces the bucket's rules.
    pub(super) async fn put_lifecycle(
        &self,
        bucket: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        // S3's limit for this document is larger than for the others: 1,000 rules.
        let doc = self.document(body, 16 * MAX_DOCUMENT).await?;
        let rules =
            lifecycle::parse(&doc, || uuid::Uuid::new_v4().simple().to_string()).map_err(|e| {
                let status = match e {
                    lifecycle::LifecycleError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
                    _ => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, e.code(), e.to_string())
            })?;
        self.gw.store.set_bucket_lifecycle(bucket, &rules)?;
        Ok(Response::new(empty()))
    }

    /// GetBucketLifecycleConfiguration.
    pub(super) fn get_lifecycle(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        match self.owned_bucket(bucket)?.lifecycle {
            rules if rules.is_empty() => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NoSuchLifecycleConfiguration",
                "The lifecycle configuration does not exist",
            )),
            rules => Ok(xml_response(lifecycle::document(&rules))),
        }
    }

    /// DeleteBucketLifecycle.
    pub(super) fn delete_lifecycle(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        self.gw.store.set_bucket_lifecycle(bucket, &[])?;
        Ok(no_content())
    }
}
