//! ACLs as S3 keeps them where the bucket owner owns every object (`BucketOwnerEnforced`, S3's
//! default for new buckets since April 2023): the owner has full control of the bucket and of
//! each object in it, and nobody else has a grant; a bucket policy is what opens objects to
//! others. Reading an ACL answers that. An ACL that says the same is taken and changes nothing
//! (the canned `private` and `bucket-owner-full-control`, a full-control grant to the owner); any
//! other is refused as S3 refuses it (`AccessControlListNotSupported`, and
//! `InvalidBucketAclWithObjectOwnership` when a bucket is made), so that code asking for
//! `public-read` learns that nothing was made public rather than believing it was.

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use kms_proto::key_id::DomainId;

use super::{ApiError, Body, Ctx, MAX_DOCUMENT, empty, xml_response};
use crate::xml;

/// The canned ACLs that grant the owner full control and nobody anything.
const OWNER_ONLY: &[&str] = &["private", "bucket-owner-full-control"];

fn not_supported() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "AccessControlListNotSupported",
        "The bucket does not allow ACLs: its owner has full control of it and of its objects, and \
         nobody else has a grant (a bucket policy grants others access)",
    )
}

/// Whether a canned ACL (`x-amz-acl`, `x-obs-acl`, a form's `acl` field) grants the owner alone.
pub(super) fn check_canned(value: &str) -> Result<(), ApiError> {
    if OWNER_ONLY
        .iter()
        .any(|c| c.eq_ignore_ascii_case(value.trim()))
    {
        Ok(())
    } else {
        Err(not_supported())
    }
}

/// Refuses the ACL headers of a request unless they grant the owner (`owner`, when known) full
/// control and nobody anything: the canned ACL, and the grant headers (`x-amz-grant-*`,
/// `x-obs-grant-*`), of which only a full-control grant to the owner's ID is taken.
pub(super) fn check_headers(headers: &HeaderMap, owner: Option<&DomainId>) -> Result<(), ApiError> {
    for (name, value) in headers {
        let name = name.as_str();
        // Only the ACL headers' values are read: another header may hold bytes that are no text.
        let value = || value.to_str().map_err(|_| not_supported());
        if name == "x-amz-acl" || name == "x-obs-acl" {
            check_canned(value()?)?;
        } else if let Some(grant) = name
            .strip_prefix("x-amz-grant-")
            .or_else(|| name.strip_prefix("x-obs-grant-"))
        {
            let value = value()?;
            let to_owner = owner.is_some_and(|o| {
                value
                    .split(',')
                    .all(|g| g.trim().trim_start_matches("id=").trim_matches('"') == o.as_str())
            });
            if !(grant == "full-control" && to_owner) {
                return Err(not_supported());
            }
        }
    }
    Ok(())
}

/// Refuses options of a bucket being made that the gateway does not keep, and an ACL, in S3's
/// words for that call. Object Lock is `true` or `false`.
pub(super) fn check_new_bucket(headers: &HeaderMap) -> Result<(), ApiError> {
    let lock = super::dialect_header(headers, "bucket-object-lock-enabled")?;
    if lock.is_some_and(|v| {
        !v.as_bytes().eq_ignore_ascii_case(b"false") && !v.as_bytes().eq_ignore_ascii_case(b"true")
    }) {
        return Err(ApiError::bad(
            "x-amz-bucket-object-lock-enabled is true or false",
        ));
    }
    check_bucket_options(headers)?;
    // Every bucket here is BucketOwnerEnforced (what reading its ownership controls answers): a
    // bucket asked for with ACLs enabled would keep the writer's ownership it was promised not.
    match headers
        .get("x-amz-object-ownership")
        .map(HeaderValue::as_bytes)
    {
        None | Some(b"BucketOwnerEnforced") => {}
        Some(b"ObjectWriter" | b"BucketOwnerPreferred") => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "object ownership other than BucketOwnerEnforced is not served: the bucket's \
                 owner owns every object and ACLs are disabled",
            ));
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "x-amz-object-ownership is one of BucketOwnerEnforced, BucketOwnerPreferred, \
                 ObjectWriter",
            ));
        }
    }
    check_headers(headers, None).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidBucketAclWithObjectOwnership",
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        )
    })
}

/// Refuses the OBS options of a new bucket that the gateway does not keep, rather than making a
/// plain bucket under a caller who believes otherwise (the OBS SDK's `CreateBucketHeader`):
/// storage across three availability zones or OBS's fusion redundancy (the gateway keeps one
/// copy on one disk), a parallel file system bucket (its file operations are not served), an
/// enterprise project other than the default `0`. Each is 501; a value that names none of
/// OBS's is 400. What every bucket here is (`CLASSIC`, no zone option, `false`, `0`) is taken.
fn check_bucket_options(headers: &HeaderMap) -> Result<(), ApiError> {
    let not_kept = |what: &str| {
        Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!(
                "{what} is not kept by the gateway: every bucket is a plain bucket on one disk"
            ),
        ))
    };
    let invalid = |name: &str| {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!("{name} has a value OBS does not know"),
        ))
    };
    let text = |v: &HeaderValue| v.to_str().unwrap_or_default().trim().to_ascii_lowercase();
    if let Some(v) = headers.get("x-obs-az-redundancy") {
        return match text(v).as_str() {
            "3az" => not_kept("storage across three availability zones (x-obs-az-redundancy)"),
            _ => invalid("x-obs-az-redundancy"),
        };
    }
    if let Some(v) = super::dialect_header(headers, "bucket-redundancy")? {
        match text(v).as_str() {
            "classic" => {}
            "fusion" => return not_kept("OBS's fusion redundancy (bucket-redundancy: FUSION)"),
            _ => return invalid("bucket-redundancy"),
        }
    }
    for option in ["fusion-allow-upgrade", "fusion-allow-alternative"] {
        if let Some(v) = super::dialect_header(headers, option)? {
            match text(v).as_str() {
                "false" => {}
                "true" => return not_kept(&format!("OBS's fusion redundancy ({option})")),
                _ => return invalid(option),
            }
        }
    }
    if let Some(v) = super::dialect_header(headers, "fs-file-interface")? {
        match text(v).as_str() {
            "disabled" => {}
            "enabled" => return not_kept("a parallel file system bucket (fs-file-interface)"),
            _ => return invalid("fs-file-interface"),
        }
    }
    if let Some(v) = super::dialect_header(headers, "epid")?
        && text(v) != "0"
    {
        return not_kept("an enterprise project other than the default 0 (epid)");
    }
    Ok(())
}

/// Refuses an `AccessControlPolicy` document unless each of its grants (one at least) gives the
/// owner full control, and it names no other owner.
fn check_document(doc: &str, owner: &DomainId) -> Result<(), ApiError> {
    if !doc.contains("<AccessControlPolicy") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MalformedACLError",
            "the ACL is not an AccessControlPolicy document",
        ));
    }
    if let Some((id, _)) =
        xml::element(doc, "Owner", 0).and_then(|(owner_doc, _)| xml::element(&owner_doc, "ID", 0))
        && id != owner.as_str()
    {
        return Err(not_supported());
    }
    let grants = xml::raw_elements(doc, "Grant");
    let owner_only = !grants.is_empty()
        && grants.iter().all(|g| {
            xml::element(g, "ID", 0).is_some_and(|(id, _)| id == owner.as_str())
                && xml::element(g, "Permission", 0).is_some_and(|(p, _)| p == "FULL_CONTROL")
                && ["URI", "EmailAddress", "Canned"]
                    .iter()
                    .all(|other| xml::element(g, other, 0).is_none())
        });
    if owner_only {
        Ok(())
    } else {
        Err(not_supported())
    }
}

/// The ACL of the bucket, or of an object in it: its owner's full control.
fn document(owner: &DomainId) -> String {
    format!(
        "{}<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{owner}</ID><DisplayName>{owner}</DisplayName></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>{owner}</ID><DisplayName>{owner}</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>",
        xml::DECL
    )
}

impl Ctx<'_> {
    /// GetBucketAcl, GetObjectAcl (`key`): for the bucket's owner only.
    pub(super) fn get_acl(
        &self,
        bucket: &str,
        key: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        if let Some(key) = key {
            // Every version's ACL is the owner's alone.
            self.named_version(&row, key)?;
        }
        Ok(xml_response(document(&row.owner)))
    }

    /// PutBucketAcl, PutObjectAcl (`key`): takes an ACL that grants the owner alone, which
    /// changes nothing; refuses any other.
    pub(super) async fn put_acl(
        &self,
        bucket: &str,
        key: Option<&str>,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        check_headers(self.headers, Some(&row.owner))?;
        let doc = self.document(body, MAX_DOCUMENT).await?;
        if !doc.trim().is_empty() {
            check_document(&doc, &row.owner)?;
        }
        if let Some(key) = key {
            self.named_version(&row, key)?;
        }
        Ok(Response::new(empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_acl_that_grants_the_owner_alone_is_taken() {
        let owner = DomainId::parse("d1").unwrap();
        let grant = |id: &str, perm: &str| {
            format!(
                "<Grant><Grantee xsi:type=\"CanonicalUser\"><ID>{id}</ID></Grantee><Permission>{perm}</Permission></Grant>"
            )
        };
        let doc = |owner_id: &str, grants: &str| {
            format!(
                "<AccessControlPolicy><Owner><ID>{owner_id}</ID></Owner><AccessControlList>{grants}</AccessControlList></AccessControlPolicy>"
            )
        };
        let all_users = "<Grant><Grantee xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>";
        // (rule, document, taken)
        let cases = [
            (
                "the owner's full control",
                doc("d1", &grant("d1", "FULL_CONTROL")),
                true,
            ),
            (
                "another owner",
                doc("d2", &grant("d1", "FULL_CONTROL")),
                false,
            ),
            (
                "the owner reads only",
                doc("d1", &grant("d1", "READ")),
                false,
            ),
            (
                "another tenant's grant",
                doc(
                    "d1",
                    &format!("{}{}", grant("d1", "FULL_CONTROL"), grant("d2", "READ")),
                ),
                false,
            ),
            (
                "everyone reads",
                doc("d1", &format!("{}{all_users}", grant("d1", "FULL_CONTROL"))),
                false,
            ),
            ("no grant", doc("d1", ""), false),
            ("not an ACL", "<Tagging/>".to_owned(), false),
        ];
        for (rule, d, taken) in cases {
            assert_eq!(check_document(&d, &owner).is_ok(), taken, "{rule}");
        }
    }

    #[test]
    fn acl_headers_are_taken_only_when_they_grant_the_owner_alone() {
        let owner = DomainId::parse("d1").unwrap();
        // (rule, header, value, taken)
        let cases = [
            ("canned private", "x-amz-acl", "private", true),
            (
                "canned owner full control",
                "x-amz-acl",
                "bucket-owner-full-control",
                true,
            ),
            ("OBS's canned private", "x-obs-acl", "private", true),
            ("public read", "x-amz-acl", "public-read", false),
            (
                "OBS's public read delivered",
                "x-obs-acl",
                "public-read-delivered",
                false,
            ),
            (
                "authenticated read",
                "x-amz-acl",
                "authenticated-read",
                false,
            ),
            (
                "full control to the owner",
                "x-amz-grant-full-control",
                "id=\"d1\"",
                true,
            ),
            (
                "full control to another",
                "x-amz-grant-full-control",
                "id=\"d2\"",
                false,
            ),
            ("read to the owner", "x-amz-grant-read", "id=\"d1\"", false),
            (
                "read to everyone",
                "x-amz-grant-read",
                "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
                false,
            ),
            ("OBS's grant", "x-obs-grant-read", "id=d2", false),
            ("another header", "x-amz-meta-acl", "public-read", true),
        ];
        for (rule, name, value, taken) in cases {
            let mut h = HeaderMap::new();
            h.insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
            assert_eq!(check_headers(&h, Some(&owner)).is_ok(), taken, "{rule}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-meta-name",
            http::HeaderValue::from_bytes("中".as_bytes()).unwrap(),
        );
        assert!(
            check_headers(&h, Some(&owner)).is_ok(),
            "another header's bytes are not read"
        );
    }
}
