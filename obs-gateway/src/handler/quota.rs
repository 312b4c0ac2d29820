//! OBS's bucket quota (`PUT`/`GET /{bucket}?quota`, the OBS SDK's `setBucketQuota` and
//! `getBucketQuota`): the most bytes the bucket's objects may hold, 0 for no limit. A write that
//! would take the objects past it (a PUT, a copy, a multipart completion, an append; an object
//! replaced counts its new size only) is `403 InsufficientStorageSpace`, as OBS answers, and
//! stores nothing; the store checks it in the transaction that commits ([`crate::store`]).
//! Parts of uploads in progress do not count until their upload completes.

use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::unkept::OBS_NS;
use super::{ApiError, Body, Ctx, MAX_DOCUMENT, empty, malformed_xml, xml_response};
use crate::xml;

/// The quota a `Quota` document sets.
fn read_document(doc: &str) -> Result<u64, ApiError> {
    if !doc.contains("<Quota") {
        return Err(malformed_xml("the body is not a Quota document"));
    }
    let (text, _) = xml::element(doc, "StorageQuota", 0)
        .ok_or_else(|| malformed_xml("a Quota document names its StorageQuota"))?;
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!("the storage quota {text:?} is not a number of bytes"),
        )
    })
}

impl Ctx<'_> {
    /// SetBucketQuota, by the bucket's owner.
    pub(super) async fn put_quota(
        &self,
        bucket: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let quota = read_document(&self.document(body, MAX_DOCUMENT).await?)?;
        self.gw.store.set_bucket_quota(bucket, quota)?;
        Ok(Response::new(empty()))
    }

    /// GetBucketQuota, by the bucket's owner.
    pub(super) fn get_quota(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        let quota = self.owned_bucket(bucket)?.quota;
        Ok(xml_response(format!(
            "{}<Quota xmlns=\"{OBS_NS}\"><StorageQuota>{quota}</StorageQuota></Quota>",
            xml::DECL
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_is_a_whole_number_of_bytes() {
        // (rule, document, the quota or the refusal's code)
        let cases = [
            (
                "the SDK's document",
                "<Quota><StorageQuota>10240</StorageQuota></Quota>",
                Ok(10_240),
            ),
            (
                "0 removes the quota",
                "<Quota><StorageQuota>0</StorageQuota></Quota>",
                Ok(0),
            ),
            (
                "negative",
                "<Quota><StorageQuota>-1</StorageQuota></Quota>",
                Err("InvalidArgument"),
            ),
            (
                "not a number",
                "<Quota><StorageQuota>1GB</StorageQuota></Quota>",
                Err("InvalidArgument"),
            ),
            ("no StorageQuota", "<Quota></Quota>", Err("MalformedXML")),
            ("another document", "<Tagging/>", Err("MalformedXML")),
        ];
        for (rule, doc, want) in cases {
            assert_eq!(read_document(doc).map_err(|e| e.code), want, "{rule}");
        }
    }
}
