//! Which operation a request names, and the sub-resources each one serves.
//!
//! S3 and OBS name many operations by a query parameter on the same path as the plain object or
//! bucket call (`PUT /b/k?tagging`, `DELETE /b?cors`, `PUT /b/k?metadata`). Routed as the plain
//! call, such a request would do something else than asked and destroy data: replace the object
//! with the tagging document, delete the bucket. So a request that names a sub-resource its
//! operation does not serve is refused with `501 NotImplemented` before anything is read or
//! written. The `response-*` parameters are GET's header overrides, not sub-resources.

use http::{HeaderMap, Method, StatusCode};

use super::unkept::{UNKEPT, Unkept};
use super::{ApiError, Target, not_implemented};
use crate::auth::v2::{BOTOCORE_SUBRESOURCES, OBS_SUBRESOURCES};

/// Sub-resources of S3 or OBS that neither signer's list names (newer operations), lower-case.
const UNLISTED_SUBRESOURCES: &[&str] = &[
    "abac",
    "attributes",
    "intelligent-tiering",
    "legal-hold",
    "metadataconfiguration",
    "metadatatable",
    "ownershipcontrols",
    "renameobject",
    "session",
];

/// A request's operation, with the bucket and key it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op<'a> {
    /// `GET /`.
    ListBuckets,
    /// An operation on a bucket.
    Bucket(&'a str, BucketOp),
    /// An operation on an object (bucket, key).
    Object(&'a str, &'a str, ObjectOp),
}

/// The bucket operations the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BucketOp {
    PutAcl,
    GetAcl,
    PutTagging,
    GetTagging,
    DeleteTagging,
    PutEncryption,
    GetEncryption,
    DeleteEncryption,
    PutPolicy,
    GetPolicy,
    DeletePolicy,
    PutCors,
    GetCors,
    DeleteCors,
    PutQuota,
    GetQuota,
    PutLifecycle,
    GetLifecycle,
    DeleteLifecycle,
    /// OBS's default storage class (`STANDARD` only).
    PutStorageClass,
    PutPublicAccessBlock,
    GetPublicAccessBlock,
    DeletePublicAccessBlock,
    /// S3's GetBucketPolicyStatus.
    GetPolicyStatus,
    /// OBS's bucket public status.
    GetBucketStatus,
    GetLocation,
    /// S3's PutBucketVersioning: `Enabled` or `Suspended`.
    PutVersioning,
    GetVersioning,
    PutObjectLock,
    GetObjectLock,
    GetStorageInfo,
    /// A read of a configuration the gateway does not keep.
    GetUnkept(Unkept),
    Create,
    Head,
    ListObjects,
    ListVersions,
    ListUploads,
    Delete,
    DeleteObjects,
}

/// The object operations the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ObjectOp {
    /// UploadPart, and UploadPartCopy (a copy source with an upload ID).
    UploadPart,
    PutAcl,
    GetAcl,
    PutTagging,
    GetTagging,
    DeleteTagging,
    Copy,
    InitiateUpload,
    CompleteUpload,
    AbortUpload,
    ListParts,
    /// OBS's AppendObject.
    Append,
    /// OBS's SetObjectMetadata.
    SetMetadata,
    /// S3's GetObjectAttributes.
    GetAttributes,
    PutRetention,
    GetRetention,
    PutLegalHold,
    GetLegalHold,
    Put,
    Get,
    Head,
    Delete,
}

impl BucketOp {
    /// The sub-resources a request for this operation may name (compared without regard to case).
    fn serves(self) -> &'static [&'static str] {
        match self {
            Self::PutAcl | Self::GetAcl => &["acl"],
            Self::PutTagging | Self::GetTagging | Self::DeleteTagging => &["tagging"],
            Self::PutEncryption | Self::GetEncryption | Self::DeleteEncryption => &["encryption"],
            Self::PutPolicy | Self::GetPolicy | Self::DeletePolicy => &["policy"],
            Self::PutCors | Self::GetCors | Self::DeleteCors => &["cors"],
            Self::PutQuota | Self::GetQuota => &["quota"],
            Self::PutLifecycle | Self::GetLifecycle | Self::DeleteLifecycle => &["lifecycle"],
            Self::PutStorageClass => &["storageclass", "storagepolicy"],
            Self::PutPublicAccessBlock
            | Self::GetPublicAccessBlock
            | Self::DeletePublicAccessBlock => &["publicaccessblock"],
            Self::GetPolicyStatus => &["policystatus"],
            Self::GetBucketStatus => &["bucketstatus"],
            Self::GetLocation => &["location"],
            Self::PutVersioning | Self::GetVersioning => &["versioning"],
            Self::PutObjectLock | Self::GetObjectLock => &["object-lock"],
            Self::GetStorageInfo => &["storageinfo"],
            Self::GetUnkept(what) => what.serves(),
            Self::DeleteObjects => &["delete"],
            Self::ListUploads => &["uploads"],
            Self::ListVersions => &["versions"],
            Self::Create | Self::Head | Self::ListObjects | Self::Delete => &[],
        }
    }
}

impl ObjectOp {
    /// The sub-resources a request for this operation may name (compared without regard to case).
    fn serves(self) -> &'static [&'static str] {
        match self {
            Self::UploadPart => &["uploadid", "partnumber"],
            Self::PutAcl | Self::GetAcl => &["acl", "versionid"],
            Self::PutTagging | Self::GetTagging | Self::DeleteTagging => &["tagging", "versionid"],
            Self::InitiateUpload => &["uploads"],
            Self::Append => &["append", "position"],
            Self::SetMetadata => &["metadata", "versionid"],
            Self::GetAttributes => &["attributes", "versionid"],
            Self::PutRetention | Self::GetRetention => &["retention", "versionid"],
            Self::PutLegalHold | Self::GetLegalHold => &["legal-hold", "versionid"],
            Self::CompleteUpload | Self::AbortUpload | Self::ListParts => &["uploadid"],
            // A version by its ID (`versionId`); a part of it by number.
            Self::Get | Self::Head => &["versionid", "partnumber"],
            Self::Delete => &["versionid"],
            Self::Copy | Self::Put => &[],
        }
    }
}

impl<'a> Op<'a> {
    /// The operation `method` on `t` names, or its refusal: `405` for a method the resource does
    /// not take, `501` for an operation or sub-resource the gateway does not serve.
    pub(super) fn of(
        method: &Method,
        t: &'a Target,
        headers: &HeaderMap,
    ) -> Result<Self, ApiError> {
        let op = match (t.bucket.as_deref(), t.key.as_deref()) {
            (None, None) if method == Method::GET => Self::ListBuckets,
            (None, _) => {
                return Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "the specified method is not allowed against this resource",
                ));
            }
            (Some(b), None) => Self::Bucket(b, bucket_op(method, t).ok_or_else(not_implemented)?),
            (Some(b), Some(k)) => Self::Object(
                b,
                k,
                object_op(method, t, headers).ok_or_else(not_implemented)?,
            ),
        };
        if let Self::Object(
            _,
            key,
            ObjectOp::Put | ObjectOp::Copy | ObjectOp::InitiateUpload | ObjectOp::Append,
        ) = op
        {
            super::check_new_key(key)?;
            super::check_user_metadata(&super::user_metadata(headers))?;
            super::check_website_redirect(headers)?;
            unserved_object_headers(
                headers,
                matches!(
                    op,
                    Self::Object(
                        _,
                        _,
                        ObjectOp::Put | ObjectOp::Copy | ObjectOp::InitiateUpload
                    )
                ),
            )?;
            // The bucket's owner owns the object: its grants are checked against the bucket's
            // owner once the bucket is read (`new_object_acl`).
        }
        if let Self::Object(..) = op {
            refuse_sse_c(
                headers.keys().map(http::HeaderName::as_str),
                t.query.iter().map(|(n, _)| n.as_str()),
            )?;
        }
        if let Self::Bucket(_, BucketOp::Create) = op {
            super::acl::check_new_bucket(headers)?;
        }
        let serves = match op {
            Self::ListBuckets => &[][..],
            Self::Bucket(_, o) => o.serves(),
            Self::Object(_, _, o) => o.serves(),
        };
        match sub_resources(&t.query).find(|s| !serves.iter().any(|n| n.eq_ignore_ascii_case(s))) {
            Some(s) => Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                format!("the sub-resource ?{s} is not served by the gateway"),
            )),
            None => Ok(op),
        }
    }
}

fn bucket_op(method: &Method, t: &Target) -> Option<BucketOp> {
    use BucketOp as B;
    Some(match *method {
        Method::PUT if t.has("acl") => B::PutAcl,
        Method::GET if t.has("acl") => B::GetAcl,
        Method::PUT if t.has("tagging") => B::PutTagging,
        Method::GET if t.has("tagging") => B::GetTagging,
        Method::DELETE if t.has("tagging") => B::DeleteTagging,
        Method::PUT if t.has("encryption") => B::PutEncryption,
        Method::GET if t.has("encryption") => B::GetEncryption,
        Method::DELETE if t.has("encryption") => B::DeleteEncryption,
        Method::PUT if t.has("policy") => B::PutPolicy,
        Method::GET if t.has("policy") => B::GetPolicy,
        Method::DELETE if t.has("policy") => B::DeletePolicy,
        Method::PUT if t.has("cors") => B::PutCors,
        Method::GET if t.has("cors") => B::GetCors,
        Method::DELETE if t.has("cors") => B::DeleteCors,
        Method::PUT if t.has("quota") => B::PutQuota,
        Method::GET if t.has("quota") => B::GetQuota,
        Method::PUT if t.has("lifecycle") => B::PutLifecycle,
        Method::GET if t.has("lifecycle") => B::GetLifecycle,
        Method::DELETE if t.has("lifecycle") => B::DeleteLifecycle,
        Method::PUT if t.has("storageClass") || t.has("storagePolicy") => B::PutStorageClass,
        Method::PUT if t.has("publicAccessBlock") => B::PutPublicAccessBlock,
        Method::GET if t.has("publicAccessBlock") => B::GetPublicAccessBlock,
        Method::DELETE if t.has("publicAccessBlock") => B::DeletePublicAccessBlock,
        Method::GET if t.has("policyStatus") => B::GetPolicyStatus,
        Method::GET if t.has("bucketStatus") => B::GetBucketStatus,
        Method::GET if t.has("location") => B::GetLocation,
        Method::GET if t.has("versioning") => B::GetVersioning,
        Method::PUT if t.has("versioning") => B::PutVersioning,
        Method::PUT if t.has("object-lock") => B::PutObjectLock,
        Method::GET if t.has("object-lock") => B::GetObjectLock,
        Method::GET if t.has("storageinfo") => B::GetStorageInfo,
        Method::GET if t.has("uploads") => B::ListUploads,
        Method::GET if let Some((_, what)) = UNKEPT.iter().find(|(n, _)| t.has(n)) => {
            B::GetUnkept(*what)
        }
        Method::GET if t.has("versions") => B::ListVersions,
        Method::PUT => B::Create,
        Method::HEAD => B::Head,
        Method::GET => B::ListObjects,
        Method::DELETE => B::Delete,
        Method::POST if t.has("delete") => B::DeleteObjects,
        _ => return None,
    })
}

fn object_op(method: &Method, t: &Target, headers: &HeaderMap) -> Option<ObjectOp> {
    use ObjectOp as O;
    let copy =
        headers.contains_key("x-obs-copy-source") || headers.contains_key("x-amz-copy-source");
    Some(match *method {
        Method::PUT if t.has("acl") => O::PutAcl,
        Method::GET if t.has("acl") => O::GetAcl,
        Method::PUT if t.has("tagging") => O::PutTagging,
        Method::GET if t.has("tagging") => O::GetTagging,
        Method::DELETE if t.has("tagging") => O::DeleteTagging,
        Method::PUT if t.has("uploadId") => O::UploadPart,
        Method::PUT if t.has("metadata") => O::SetMetadata,
        Method::GET if t.has("attributes") => O::GetAttributes,
        Method::PUT if t.has("retention") => O::PutRetention,
        Method::GET if t.has("retention") => O::GetRetention,
        Method::PUT if t.has("legal-hold") => O::PutLegalHold,
        Method::GET if t.has("legal-hold") => O::GetLegalHold,
        Method::PUT if copy => O::Copy,
        Method::POST if t.has("uploads") => O::InitiateUpload,
        Method::POST if t.has("uploadId") => O::CompleteUpload,
        Method::DELETE if t.has("uploadId") => O::AbortUpload,
        Method::GET if t.has("uploadId") => O::ListParts,
        Method::POST if t.has("append") => O::Append,
        Method::PUT => O::Put,
        Method::GET => O::Get,
        Method::HEAD => O::Head,
        Method::DELETE => O::Delete,
        _ => return None,
    })
}

/// The storage classes of S3 and OBS other than `STANDARD`: the gateway keeps none of them.
const OTHER_STORAGE_CLASSES: &[&str] = &[
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
    "WARM",
    "COLD",
];

/// Refuses a storage class other than `STANDARD` for a new object (a header, or a form's field):
/// one S3 or OBS knows is 501 `NotImplemented` (the object would be stored as `STANDARD` while
/// the caller believes it archived or cheaper), any other 400 `InvalidStorageClass`, as S3
/// answers it.
pub(super) fn check_storage_class(class: Option<&str>) -> Result<(), ApiError> {
    match class {
        None | Some("STANDARD") => Ok(()),
        Some(c) if OTHER_STORAGE_CLASSES.contains(&c) => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("the storage class {c} is not kept by the gateway: objects are STANDARD"),
        )),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidStorageClass",
            "The storage class you specified is not valid",
        )),
    }
}

/// The header (and form field) that asks S3 for a Bucket Key.
pub(super) const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";

/// Refuses an S3 Bucket Key (`true` in [`BUCKET_KEY`], or a bucket encryption configuration's
/// `BucketKeyEnabled`): 501 `NotImplemented`. The gateway gives every SSE-KMS object a data key
/// of its own from the KMS; a Bucket Key would mean one bucket-level key from which objects'
/// keys are derived, with fewer KMS calls and another encryption context, which a caller (or a
/// test counting KMS calls) would believe in. `false` is what every object has; another value
/// is 400 `InvalidArgument`.
pub(super) fn check_bucket_key(value: Option<&str>) -> Result<(), ApiError> {
    match value.map(str::trim) {
        None => Ok(()),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(()),
        Some(v) if v.eq_ignore_ascii_case("true") => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "S3 Bucket Keys are not provided: every SSE-KMS object gets a data key of its own \
             from the KMS (omit the Bucket Key, or set it false)",
        )),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "a Bucket Key setting is true or false",
        )),
    }
}

/// Refuses headers of a new object that ask for what the gateway does not keep: an object lock
/// on an append (501: it would make a version that looks protected and is not; a PUT's, a
/// copy's and a multipart upload's are kept, or refused for a bucket without Object Lock, by
/// `handler/object_lock.rs`) and a storage class other than `STANDARD`.
fn unserved_object_headers(headers: &HeaderMap, lock_kept: bool) -> Result<(), ApiError> {
    for prefix in ["x-amz-", "x-obs-"] {
        let class = headers.get(format!("{prefix}storage-class").as_str());
        check_storage_class(class.map(|v| v.to_str().unwrap_or("?")))?;
        let locks = headers.keys().any(|n| {
            n.as_str()
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with("object-lock-"))
        });
        if locks && !lock_kept {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "an append keeps no object lock: an appendable object is not a version",
            ));
        }
    }
    // S3 Express's append at an offset: as a PUT it would replace the object.
    if headers.contains_key("x-amz-write-offset-bytes") {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "x-amz-write-offset-bytes (an append at an offset) is not served: as a PUT it would \
             replace the object; OBS's AppendObject (POST ?append&position=N) is",
        ));
    }
    check_bucket_key(
        headers
            .get(BUCKET_KEY)
            .map(|v| v.to_str().unwrap_or("not text")),
    )?;
    // S3's encryption context for SSE-KMS: the data key would not be bound to it, and a read
    // would not answer it.
    if headers.contains_key("x-amz-server-side-encryption-context") {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "x-amz-server-side-encryption-context is not kept by the gateway: the object's data \
             key would not be bound to it",
        ));
    }
    Ok(())
}

/// Refuses server-side encryption with customer-provided keys (SSE-C): its parameters, for the
/// object or for a copy's source, in either dialect, as headers, query parameters (`names`) or
/// form fields. The gateway does not provide SSE-C: an object stored under such a request would
/// be kept without the customer's key and read back without it. S3 and OBS take SSE-C over
/// HTTPS only and answer a plain-HTTP request with it `400 InvalidRequest`; the gateway speaks
/// plain HTTP, so it answers that, before anything is read or written.
pub(super) fn refuse_sse_c<'n>(
    names: impl IntoIterator<Item = &'n str>,
    more: impl IntoIterator<Item = &'n str>,
) -> Result<(), ApiError> {
    let is_sse_c = |name: &str| {
        let lower = name.to_ascii_lowercase();
        ["x-amz-", "x-obs-"].iter().any(|prefix| {
            lower.strip_prefix(prefix).is_some_and(|rest| {
                let rest = rest.strip_prefix("copy-source-").unwrap_or(rest);
                rest.starts_with("server-side-encryption-customer-")
            })
        })
    };
    match names.into_iter().chain(more).find(|n| is_sse_c(n)) {
        None => Ok(()),
        Some(name) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            format!(
                "{name}: server-side encryption with customer-provided keys (SSE-C) is not \
                 provided by this gateway (S3 and OBS take it over HTTPS only): the object would \
                 be stored without the customer's key"
            ),
        )),
    }
}

/// The query parameters that name a sub-resource, as sent: every name either signer treats as
/// one (OBS's list is case-insensitive, so all are compared in lower case), and newer ones,
/// except GET's `response-*` header overrides.
fn sub_resources(query: &[(String, String)]) -> impl Iterator<Item = &str> {
    query.iter().map(|(n, _)| n.as_str()).filter(|n| {
        let lower = n.to_ascii_lowercase();
        !lower.starts_with("response-")
            && (OBS_SUBRESOURCES.contains(&lower.as_str())
                || UNLISTED_SUBRESOURCES.contains(&lower.as_str())
                || BOTOCORE_SUBRESOURCES
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&lower)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(bucket: Option<&str>, key: Option<&str>, query: &[&str]) -> Target {
        Target {
            bucket: bucket.map(str::to_owned),
            key: key.map(str::to_owned),
            host_bucket: None,
            query: query
                .iter()
                .map(|q| match q.split_once('=') {
                    Some((n, v)) => (n.to_owned(), v.to_owned()),
                    None => ((*q).to_owned(), String::new()),
                })
                .collect(),
        }
    }

    /// What the request names: `Ok(operation)`, or the refusal's code.
    fn routed(method: Method, bucket: Option<&str>, key: Option<&str>, query: &[&str]) -> String {
        let t = target(bucket, key, query);
        let mut headers = HeaderMap::new();
        if query.contains(&"copy") {
            headers.insert(
                "x-amz-copy-source",
                http::HeaderValue::from_static("/b/src"),
            );
        }
        match Op::of(&method, &t, &headers) {
            Ok(Op::ListBuckets) => "ListBuckets".into(),
            Ok(Op::Bucket(_, o)) => format!("{o:?}"),
            Ok(Op::Object(_, _, o)) => format!("{o:?}"),
            Err(e) => format!("{} {}", e.status.as_u16(), e.code),
        }
    }

    #[test]
    fn a_sub_resource_the_operation_does_not_serve_is_refused_not_routed_as_the_plain_call() {
        let (b, k) = (Some("bkt"), Some("key"));
        let cases: &[(Method, Option<&str>, &[&str], &str)] = &[
            // Served: the plain calls and their own sub-resources.
            (Method::PUT, k, &[], "Put"),
            (Method::GET, k, &["response-content-type=text/plain"], "Get"),
            (Method::GET, k, &["versionId=null"], "Get"),
            (
                Method::PUT,
                k,
                &["uploadId=u", "partNumber=1"],
                "UploadPart",
            ),
            (
                Method::PUT,
                k,
                &["copy", "uploadId=u", "partNumber=1"],
                "UploadPart",
            ),
            (Method::PUT, k, &["copy"], "Copy"),
            (Method::POST, k, &["uploads"], "InitiateUpload"),
            (
                Method::GET,
                None,
                &["list-type=2", "prefix=a", "x-id=ListObjectsV2"],
                "ListObjects",
            ),
            (Method::PUT, None, &["encryption"], "PutEncryption"),
            (Method::PUT, k, &["acl"], "PutAcl"),
            (Method::PUT, k, &["tagging"], "PutTagging"),
            (Method::GET, k, &["tagging", "versionId=null"], "GetTagging"),
            (Method::DELETE, k, &["tagging"], "DeleteTagging"),
            (Method::GET, k, &["acl", "versionId=null"], "GetAcl"),
            (Method::PUT, None, &["acl"], "PutAcl"),
            (Method::GET, None, &["acl"], "GetAcl"),
            (
                Method::GET,
                None,
                &["uploads", "prefix=a", "max-uploads=1"],
                "ListUploads",
            ),
            (Method::POST, None, &["delete"], "DeleteObjects"),
            // Sub-resources of operations the gateway does not have: never the plain call.
            (Method::POST, k, &["tagging"], "501 NotImplemented"),
            (Method::PUT, None, &["tagging"], "PutTagging"),
            (Method::DELETE, None, &["tagging"], "DeleteTagging"),
            (Method::DELETE, k, &["acl"], "501 NotImplemented"),
            (Method::DELETE, None, &["acl"], "501 NotImplemented"),
            (Method::PUT, k, &["metadata"], "SetMetadata"),
            (
                Method::PUT,
                k,
                &["metadata", "versionId=null"],
                "SetMetadata",
            ),
            (Method::GET, k, &["metadata"], "501 NotImplemented"),
            (
                Method::PUT,
                k,
                &["truncate", "length=0"],
                "501 NotImplemented",
            ),
            (Method::GET, k, &["attributes"], "GetAttributes"),
            (Method::GET, None, &["attributes"], "501 NotImplemented"),
            (
                Method::GET,
                k,
                &["x-image-process=resize"],
                "501 NotImplemented",
            ),
            (Method::GET, k, &["partNumber=2"], "Get"),
            (Method::DELETE, k, &["partNumber=2"], "501 NotImplemented"),
            (Method::PUT, k, &["copy", "tagging"], "PutTagging"),
            (Method::POST, k, &["append", "position=0"], "Append"),
            (
                Method::PUT,
                k,
                &["append", "position=0"],
                "501 NotImplemented",
            ),
            (
                Method::POST,
                k,
                &["uploads", "append", "position=0"],
                "501 NotImplemented",
            ),
            (Method::DELETE, None, &["cors"], "DeleteCors"),
            (Method::DELETE, None, &["lifecycle"], "DeleteLifecycle"),
            (Method::PUT, None, &["versioning"], "PutVersioning"),
            (Method::GET, None, &["versioning"], "GetVersioning"),
            (Method::GET, None, &["storageinfo"], "GetStorageInfo"),
            (Method::GET, None, &["quota"], "GetQuota"),
            (Method::PUT, None, &["quota"], "PutQuota"),
            (Method::PUT, None, &["storageClass"], "PutStorageClass"),
            (Method::PUT, None, &["storagePolicy"], "PutStorageClass"),
            (Method::DELETE, None, &["quota"], "501 NotImplemented"),
            (Method::GET, None, &["cors"], "GetCors"),
            (Method::GET, None, &["lifecycle"], "GetLifecycle"),
            (
                Method::GET,
                None,
                &["publicAccessBlock"],
                "GetPublicAccessBlock",
            ),
            (
                Method::PUT,
                None,
                &["publicAccessBlock"],
                "PutPublicAccessBlock",
            ),
            (Method::GET, None, &["policyStatus"], "GetPolicyStatus"),
            (Method::GET, None, &["bucketStatus"], "GetBucketStatus"),
            (Method::PUT, None, &["cors"], "PutCors"),
            (Method::PUT, None, &["lifecycle"], "PutLifecycle"),
            (Method::GET, k, &["cors"], "501 NotImplemented"),
            (
                Method::GET,
                None,
                &["website", "lifecycle"],
                "501 NotImplemented",
            ),
            (Method::GET, None, &["cors", "policy"], "501 NotImplemented"),
            (
                Method::GET,
                None,
                &["versions", "key-marker=a", "version-id-marker=null"],
                "ListVersions",
            ),
            (Method::DELETE, None, &["versions"], "501 NotImplemented"),
            (Method::GET, None, &["Tagging"], "501 NotImplemented"),
            // A served sub-resource on another operation: refused too.
            (
                Method::PUT,
                k,
                &["uploadid=u", "partnumber=1"],
                "501 NotImplemented",
            ),
            (Method::GET, None, &["delete"], "501 NotImplemented"),
            (
                Method::PUT,
                None,
                &["encryption", "policy"],
                "501 NotImplemented",
            ),
            (Method::POST, k, &[], "501 NotImplemented"),
        ];
        for (method, key, query, want) in cases {
            assert_eq!(
                routed(method.clone(), b, *key, query),
                *want,
                "{method} {key:?} {query:?}"
            );
        }
        assert_eq!(routed(Method::GET, None, None, &[]), "ListBuckets");
        let with_header = |method: Method, query: &[&str], name: &'static str| {
            let t = target(b, k, query);
            let mut headers = HeaderMap::new();
            headers.insert(name, http::HeaderValue::from_static("x"));
            Op::of(&method, &t, &headers)
                .map(|_| ())
                .map_err(|e| format!("{} {}", e.status.as_u16(), e.code))
        };
        for name in [
            "x-amz-object-lock-mode",
            "x-amz-object-lock-retain-until-date",
            "x-amz-object-lock-legal-hold",
            "x-obs-object-lock-mode",
            "x-obs-object-lock-retain-until-date",
        ] {
            assert!(with_header(Method::PUT, &[], name).is_ok(), "{name}");
            assert!(
                with_header(Method::POST, &["uploads"], name).is_ok(),
                "{name}"
            );
            assert_eq!(
                with_header(Method::POST, &["append", "position=0"], name).unwrap_err(),
                "501 NotImplemented",
                "append {name}"
            );
        }
        assert!(with_header(Method::PUT, &[], "x-obs-tagging").is_ok());
        // A Bucket Key: not provided (every object has its own data key); false is what is.
        for (method, query) in [
            (Method::PUT, &[][..]),
            (Method::POST, &["uploads"][..]),
            (Method::POST, &["append", "position=0"][..]),
        ] {
            for (value, want) in [
                ("true", Err("501 NotImplemented")),
                ("TRUE", Err("501 NotImplemented")),
                ("false", Ok(())),
                ("yes", Err("400 InvalidArgument")),
            ] {
                let t = target(b, k, query);
                let mut headers = HeaderMap::new();
                headers.insert(BUCKET_KEY, http::HeaderValue::from_static(value));
                let got = Op::of(&method, &t, &headers)
                    .map(|_| ())
                    .map_err(|e| format!("{} {}", e.status.as_u16(), e.code));
                assert_eq!(got, want.map_err(str::to_owned), "{method} {value}");
            }
        }
        // Storage classes: STANDARD is what every object is; another one S3 or OBS knows is not
        // kept, an unknown one is not valid.
        let with_class = |name: &'static str, class: &'static str| {
            let t = target(b, k, &[]);
            let mut headers = HeaderMap::new();
            headers.insert(name, http::HeaderValue::from_static(class));
            Op::of(&Method::PUT, &t, &headers)
                .map(|_| ())
                .map_err(|e| format!("{} {}", e.status.as_u16(), e.code))
        };
        for (name, class, want) in [
            ("x-amz-storage-class", "STANDARD", Ok(())),
            ("x-obs-storage-class", "STANDARD", Ok(())),
            ("x-amz-storage-class", "GLACIER", Err("501 NotImplemented")),
            ("x-obs-storage-class", "WARM", Err("501 NotImplemented")),
            (
                "x-amz-storage-class",
                "standard",
                Err("400 InvalidStorageClass"),
            ),
            (
                "x-amz-storage-class",
                "CHEAP",
                Err("400 InvalidStorageClass"),
            ),
        ] {
            assert_eq!(
                with_class(name, class),
                want.map_err(str::to_owned),
                "{name}: {class}"
            );
        }
        assert!(with_header(Method::PUT, &[], "x-amz-tagging").is_ok());
        // An ACL other than the owner's alone on a new bucket, in S3's words for that call ("x" is
        // no canned ACL). A new object's ACL is checked against its bucket's owner once the
        // bucket is read (`Ctx::new_object_acl`).
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-acl", http::HeaderValue::from_static("x"));
        let got = Op::of(&Method::PUT, &target(b, None, &[]), &headers)
            .map(|_| ())
            .map_err(|e| format!("{} {}", e.status.as_u16(), e.code));
        assert_eq!(got.unwrap_err(), "400 InvalidBucketAclWithObjectOwnership");
        // OBS's options of a new bucket: what every bucket is, taken; what it is not, refused.
        for (name, value, want) in [
            ("x-obs-az-redundancy", "3az", Err("501 NotImplemented")),
            ("x-obs-az-redundancy", "2az", Err("400 InvalidArgument")),
            ("x-obs-bucket-redundancy", "CLASSIC", Ok(())),
            (
                "x-amz-bucket-redundancy",
                "FUSION",
                Err("501 NotImplemented"),
            ),
            ("x-obs-fusion-allow-upgrade", "false", Ok(())),
            (
                "x-obs-fusion-allow-upgrade",
                "true",
                Err("501 NotImplemented"),
            ),
            (
                "x-obs-fusion-allow-alternative",
                "true",
                Err("501 NotImplemented"),
            ),
            (
                "x-obs-fs-file-interface",
                "Enabled",
                Err("501 NotImplemented"),
            ),
            ("x-obs-fs-file-interface", "Disabled", Ok(())),
            ("x-obs-epid", "0", Ok(())),
            (
                "x-amz-epid",
                "9d1c7c3a-enterprise",
                Err("501 NotImplemented"),
            ),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(name, http::HeaderValue::from_static(value));
            let got = Op::of(&Method::PUT, &target(b, None, &[]), &headers)
                .map(|_| ())
                .map_err(|e| format!("{} {}", e.status.as_u16(), e.code));
            assert_eq!(got, want.map_err(str::to_owned), "{name}: {value}");
        }
        // A new bucket's object ownership: BucketOwnerEnforced is what every bucket has.
        for (value, want) in [
            ("BucketOwnerEnforced", Ok(())),
            ("ObjectWriter", Err("501 NotImplemented")),
            ("BucketOwnerPreferred", Err("501 NotImplemented")),
            ("Writer", Err("400 InvalidArgument")),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-amz-object-ownership",
                http::HeaderValue::from_static(value),
            );
            let got = Op::of(&Method::PUT, &target(b, None, &[]), &headers)
                .map(|_| ())
                .map_err(|e| format!("{} {}", e.status.as_u16(), e.code));
            assert_eq!(got, want.map_err(str::to_owned), "{value}");
        }
        // Reads and deletes do not carry them; a header of another operation is not looked at.
        assert!(with_header(Method::GET, &[], "x-amz-object-lock-mode").is_ok());
        assert_eq!(
            routed(Method::GET, None, None, &["acl"]),
            "501 NotImplemented"
        );
        assert_eq!(routed(Method::PUT, None, None, &[]), "405 MethodNotAllowed");
    }

    #[test]
    fn sse_c_parameters_are_refused_in_either_dialect_for_the_object_or_its_copy_source() {
        // (name, refused)
        let cases = [
            ("x-amz-server-side-encryption-customer-algorithm", true),
            ("x-amz-server-side-encryption-customer-key", true),
            ("X-Amz-Server-Side-Encryption-Customer-Key-MD5", true),
            ("x-obs-server-side-encryption-customer-algorithm", true),
            (
                "x-amz-copy-source-server-side-encryption-customer-key",
                true,
            ),
            (
                "x-obs-copy-source-server-side-encryption-customer-key-md5",
                true,
            ),
            ("x-amz-server-side-encryption", false),
            ("x-amz-server-side-encryption-aws-kms-key-id", false),
            ("x-obs-server-side-encryption-kms-key-id", false),
            ("x-amz-copy-source", false),
            ("x-amz-meta-server-side-encryption-customer-key", false),
        ];
        for (name, refused) in cases {
            let as_header = refuse_sse_c([name], []);
            let as_query = refuse_sse_c([], [name]);
            assert_eq!(as_header.is_err(), refused, "{name}");
            assert_eq!(as_query.is_err(), refused, "{name} in the query");
            if let Err(e) = as_header {
                assert_eq!((e.status.as_u16(), e.code), (400, "InvalidRequest"));
            }
        }
    }
}
