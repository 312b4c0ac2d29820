//! OBS's SetObjectMetadata (`PUT /{bucket}/{key}?metadata`, the OBS SDK's `setObjectMetadata`):
//! an object's content type, stored headers and user metadata changed without rewriting it.
//!
//! The directive (`x-obs-metadata-directive`, `x-amz-` in the S3 dialect) is required, as OBS
//! documents it: `REPLACE_NEW` replaces or adds the headers given and keeps the others, and the
//! user metadata given replaces the object's (kept when none is given); `REPLACE` makes the
//! object's metadata exactly the request's (what is not given is removed). The object's body,
//! ETag, modification time, encryption and tags are unchanged. The bucket's owner alone may do
//! it, as for the object's tags.

use http::{Response, StatusCode, header};

use super::{
    ApiError, Body, Ctx, check_user_metadata, empty, request_stored_headers, user_metadata,
};
use crate::expiry;
use crate::store::ObjectRow;

/// How the request's metadata combines with the object's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    /// Given headers replace or add; the rest is kept.
    ReplaceNew,
    /// The request's metadata is the object's; the rest is removed.
    Replace,
}

fn directive(headers: &http::HeaderMap) -> Result<Directive, ApiError> {
    match super::dialect_header(headers, "metadata-directive")? {
        Some(v) => match v.to_str() {
            Ok("REPLACE_NEW") => Ok(Directive::ReplaceNew),
            Ok("REPLACE") => Ok(Directive::Replace),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "the metadata directive must be REPLACE_NEW or REPLACE",
            )),
        },
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "setting an object's metadata needs x-obs-metadata-directive: REPLACE_NEW (change \
             what is given) or REPLACE (the request's metadata only)",
        )),
    }
}

/// What SetObjectMetadata changes of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Metadata {
    content_type: Option<String>,
    /// The stored headers (`Cache-Control`, ...), lower-case names.
    headers: Vec<(String, String)>,
    /// User metadata, names without their prefix.
    meta: Vec<(String, String)>,
}

/// The object's metadata after a request that gives `given`.
fn combined(directive: Directive, obj: &ObjectRow, given: Metadata) -> Metadata {
    match directive {
        Directive::Replace => given,
        Directive::ReplaceNew => {
            let mut headers: Vec<(String, String)> = obj
                .headers
                .iter()
                .filter(|(n, _)| !given.headers.iter().any(|(g, _)| g == n))
                .cloned()
                .collect();
            headers.extend(given.headers);
            Metadata {
                content_type: given.content_type.or_else(|| obj.content_type.clone()),
                headers,
                meta: if given.meta.is_empty() {
                    obj.meta.clone()
                } else {
                    given.meta
                },
            }
        }
    }
}

impl Ctx<'_> {
    /// `PUT /{bucket}/{key}?metadata`.
    pub(super) fn set_object_metadata(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        let obj = self.existing_object(bucket, key)?;
        let directive = directive(self.headers)?;
        super::check_website_redirect(self.headers)?;
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let given = Metadata {
            content_type,
            headers: request_stored_headers(self.headers),
            meta: user_metadata(self.headers),
        };
        let Metadata {
            content_type,
            headers,
            meta,
        } = combined(directive, &obj, given);
        check_user_metadata(&meta)?;
        // An expiry is changed only when asked (and never to one already past); kept otherwise.
        let expires_ms = match self.expires_days {
            Some(days) => Some(expiry::changed_expiry(
                obj.modified_ms,
                days,
                self.now_ms(),
            )?),
            None => obj.expires_ms,
        };
        let changed = ObjectRow {
            content_type,
            headers,
            meta,
            expires_ms,
            ..obj
        };
        if !self.gw.store.set_object_metadata(&changed)? {
            return Err(ApiError::no_key());
        }
        let mut r = Response::new(empty());
        self.metadata_headers(&changed, &row.lifecycle, r.headers_mut());
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn replace_new_changes_what_is_given_and_replace_keeps_only_it() {
        let obj = ObjectRow {
            content_type: Some("text/plain".into()),
            headers: pairs(&[("cache-control", "no-store"), ("content-language", "en")]),
            meta: pairs(&[("a", "1"), ("b", "2")]),
            ..crate::store::tests::object("k", "f")
        };
        let given_headers = pairs(&[("content-language", "de")]);
        let cases = [
            (
                "REPLACE_NEW with headers only keeps the type and the user metadata",
                Directive::ReplaceNew,
                None,
                vec![],
                (
                    Some("text/plain"),
                    pairs(&[("cache-control", "no-store"), ("content-language", "de")]),
                    pairs(&[("a", "1"), ("b", "2")]),
                ),
            ),
            (
                "REPLACE_NEW with user metadata replaces the user metadata",
                Directive::ReplaceNew,
                Some("image/png"),
                pairs(&[("c", "3")]),
                (
                    Some("image/png"),
                    pairs(&[("cache-control", "no-store"), ("content-language", "de")]),
                    pairs(&[("c", "3")]),
                ),
            ),
            (
                "REPLACE keeps only what is given",
                Directive::Replace,
                None,
                pairs(&[("c", "3")]),
                (
                    None,
                    pairs(&[("content-language", "de")]),
                    pairs(&[("c", "3")]),
                ),
            ),
        ];
        for (rule, directive, content_type, meta, (want_type, want_headers, want_meta)) in cases {
            let given = Metadata {
                content_type: content_type.map(str::to_owned),
                headers: given_headers.clone(),
                meta,
            };
            let want = Metadata {
                content_type: want_type.map(str::to_owned),
                headers: want_headers,
                meta: want_meta,
            };
            assert_eq!(combined(directive, &obj, given), want, "{rule}");
        }
    }

    #[test]
    fn the_directive_is_required_once_and_spelled_as_obs_spells_it() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (n, v) in pairs {
                h.append(*n, http::HeaderValue::from_static(v));
            }
            directive(&h).map_err(|e| e.code)
        };
        assert_eq!(
            with(&[("x-obs-metadata-directive", "REPLACE_NEW")]),
            Ok(Directive::ReplaceNew)
        );
        assert_eq!(
            with(&[("x-amz-metadata-directive", "REPLACE")]),
            Ok(Directive::Replace)
        );
        for bad in [
            &[][..],
            &[("x-obs-metadata-directive", "COPY")][..],
            &[("x-obs-metadata-directive", "replace")][..],
            &[
                ("x-obs-metadata-directive", "REPLACE"),
                ("x-amz-metadata-directive", "REPLACE"),
            ][..],
        ] {
            assert_eq!(with(bad), Err("InvalidArgument"), "{bad:?}");
        }
    }
}
