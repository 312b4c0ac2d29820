//! A bucket's public access block over HTTP (`PUT`/`GET`/`DELETE ?publicAccessBlock`: boto3's
//! `put_public_access_block`, the OBS SDK's `putBucketPublicAccessBlock`), and whether its policy
//! is public (`GET ?policyStatus`, boto3's `get_bucket_policy_status`; OBS's `?bucketStatus`).
//! What the switches do is [`crate::public_access`]'s; all of it is for the bucket's owner.

use http::{Response, StatusCode};
use hyper::body::Incoming;
use obs_adapter::BucketPolicy;

use super::{ApiError, Body, Ctx, MAX_DOCUMENT, empty, malformed_xml, no_content, xml_response};
use crate::public_access::PublicAccessBlock;
use crate::xml;

/// Which status a read asks: S3's policy status or OBS's bucket status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// `?policyStatus`: 404 `NoSuchBucketPolicy` without a policy.
    Policy,
    /// OBS's `?bucketStatus`: a bucket without a policy is not public (its ACLs never are).
    Bucket,
}

impl Ctx<'_> {
    /// PutPublicAccessBlock.
    pub(super) async fn put_public_access_block(
        &self,
        bucket: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let block = PublicAccessBlock::parse(&self.document(body, MAX_DOCUMENT).await?)
            .map_err(|why| malformed_xml(&why))?;
        self.gw
            .store
            .set_public_access_block(bucket, Some(&block))?;
        Ok(Response::new(empty()))
    }

    /// GetPublicAccessBlock.
    pub(super) fn get_public_access_block(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        let block = row.public_access_block.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NoSuchPublicAccessBlockConfiguration",
                "The public access block configuration was not found",
            )
        })?;
        Ok(xml_response(block.document()))
    }

    /// DeletePublicAccessBlock.
    pub(super) fn delete_public_access_block(
        &self,
        bucket: &str,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        self.gw.store.set_public_access_block(bucket, None)?;
        Ok(no_content())
    }

    /// GetBucketPolicyStatus (S3) or OBS's bucket status: whether the bucket policy is public.
    pub(super) fn get_public_status(
        &self,
        bucket: &str,
        status: Status,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        let public = match (&row.policy, status) {
            (Some(p), _) => BucketPolicy::parse(&row.name, p)
                .map_err(ApiError::internal)?
                .is_public(),
            (None, Status::Bucket) => false,
            (None, Status::Policy) => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NoSuchBucketPolicy",
                    "the bucket policy does not exist",
                ));
            }
        };
        let root = match status {
            Status::Policy => "PolicyStatus",
            Status::Bucket => "BucketStatus",
        };
        Ok(xml_response(format!(
            "{}<{root} xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsPublic>{public}</IsPublic></{root}>",
            xml::DECL
        )))
    }
}
