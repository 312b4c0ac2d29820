//! Bucket configurations the gateway does not keep (website, replication, logging,
//! notifications, request payment, transfer acceleration, default storage class)
//! and the object ownership it enforces: reading one answers what S3 or OBS
//! answers for a bucket that has none (a 404 with the configuration's own code, or the empty or
//! default document), which is true of every bucket here. Tools that read a bucket's whole
//! configuration (Terraform's refresh, `aws s3api get-bucket-*`, the OBS SDK's `getBucket*`) get
//! answers instead of 501. Setting or deleting one stays 501 (`routes.rs`).

use http::{Response, StatusCode};

use super::{ApiError, Body, Ctx, xml_response};
use crate::xml;

/// A bucket configuration that is read but not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unkept {
    Website,
    Replication,
    Logging,
    Notification,
    RequestPayment,
    Accelerate,
    OwnershipControls,
    StorageClass,
    StoragePolicy,
}

const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// The namespace of OBS's own configuration documents.
pub(super) const OBS_NS: &str = "http://obs.myhwclouds.com/doc/2015-06-30/";

/// Every one, with its sub-resource's name as S3 or OBS spells it (a read names it exactly so).
pub(super) static UNKEPT: [(&str, Unkept); 9] = [
    ("website", Unkept::Website),
    ("replication", Unkept::Replication),
    ("logging", Unkept::Logging),
    ("notification", Unkept::Notification),
    ("requestPayment", Unkept::RequestPayment),
    ("accelerate", Unkept::Accelerate),
    ("ownershipControls", Unkept::OwnershipControls),
    ("storageClass", Unkept::StorageClass),
    ("storagePolicy", Unkept::StoragePolicy),
];

impl Unkept {
    /// The sub-resource a read of it names, from [`UNKEPT`].
    pub(super) fn serves(self) -> &'static [&'static str] {
        UNKEPT
            .iter()
            .find(|(_, u)| *u == self)
            .map_or(&[], |(name, _)| std::slice::from_ref(name))
    }

    /// What a read answers: the document of a bucket without the configuration, or the refusal
    /// S3 and OBS give for one that has none.
    fn answer(self) -> Result<String, ApiError> {
        let missing = |code: &'static str, message: &'static str| {
            Err(ApiError::new(StatusCode::NOT_FOUND, code, message))
        };
        let doc = |body: String| Ok(format!("{}{body}", xml::DECL));
        match self {
            Unkept::Website => missing(
                "NoSuchWebsiteConfiguration",
                "The specified bucket does not have a website configuration",
            ),
            Unkept::Replication => missing(
                "ReplicationConfigurationNotFoundError",
                "The replication configuration was not found",
            ),
            Unkept::Logging => doc(format!("<BucketLoggingStatus xmlns=\"{S3_NS}\"/>")),
            Unkept::Notification => doc(format!("<NotificationConfiguration xmlns=\"{S3_NS}\"/>")),
            Unkept::RequestPayment => doc(format!(
                "<RequestPaymentConfiguration xmlns=\"{S3_NS}\"><Payer>BucketOwner</Payer></RequestPaymentConfiguration>"
            )),
            Unkept::Accelerate => doc(format!("<AccelerateConfiguration xmlns=\"{S3_NS}\"/>")),
            // The ACLs are S3's `BucketOwnerEnforced` (`acl.rs`).
            Unkept::OwnershipControls => doc(format!(
                "<OwnershipControls xmlns=\"{S3_NS}\"><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>"
            )),
            // OBS's default storage class, in its own and in the S3 dialect.
            Unkept::StorageClass => doc(format!(
                "<StorageClass xmlns=\"{OBS_NS}\">STANDARD</StorageClass>"
            )),
            Unkept::StoragePolicy => doc(format!(
                "<StoragePolicy xmlns=\"{S3_NS}\"><DefaultStorageClass>STANDARD</DefaultStorageClass></StoragePolicy>"
            )),
        }
    }
}

/// The class a default storage class document names: OBS's `<StorageClass>X</StorageClass>`
/// (`?storageClass`) or its S3-dialect `<StoragePolicy><DefaultStorageClass>X</...>`
/// (`?storagePolicy`).
fn default_class(doc: &str) -> Result<String, ApiError> {
    xml::element(doc, "DefaultStorageClass", 0)
        .or_else(|| xml::element(doc, "StorageClass", 0))
        .map(|(class, _)| class)
        .ok_or_else(|| super::malformed_xml("the body names no storage class"))
}

impl Ctx<'_> {
    /// OBS's SetBucketStoragePolicy (`PUT ?storageClass` or `?storagePolicy`), by the bucket's
    /// owner: `STANDARD`, every bucket's here, is taken and changes nothing; another class S3 or
    /// OBS knows is 501 (the objects would stay `STANDARD`), an unknown one 400
    /// `InvalidStorageClass`, as on an object.
    pub(super) async fn put_storage_class(
        &self,
        name: &str,
        body: hyper::body::Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let class = default_class(&self.document(body, super::MAX_DOCUMENT).await?)?;
        super::routes::check_storage_class(Some(&class))?;
        Ok(Response::new(super::empty()))
    }

    /// `GET /{bucket}?<configuration>` of a configuration the gateway does not keep, by the
    /// bucket's owner.
    pub(super) fn get_unkept(&self, name: &str, what: Unkept) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        what.answer().map(xml_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_storage_class_is_read_from_either_dialects_document() {
        let cases = [
            ("<StorageClass>STANDARD</StorageClass>", Ok("STANDARD")),
            (
                "<StoragePolicy><DefaultStorageClass>WARM</DefaultStorageClass></StoragePolicy>",
                Ok("WARM"),
            ),
            ("<StorageClass />", Err("MalformedXML")),
        ];
        for (doc, want) in cases {
            assert_eq!(
                default_class(doc).as_deref().map_err(|e| e.code),
                want,
                "{doc}"
            );
        }
    }
}
