//! Object tags (S3's object tagging, and OBS's, which spells the headers `x-obs-`):
//! `x-amz-tagging` or `x-obs-tagging` on a new object (a PUT, a copy with
//! `x-amz-tagging-directive: REPLACE`, an initiated multipart upload) or a form's `tagging`
//! document, and GET, PUT and DELETE `?tagging` by the bucket's owner; GET and HEAD answer
//! `x-amz-tagging-count`. The stricter of S3's and OBS's limits hold: at most 10 tags, each key
//! once, keys of 1 to 128 characters and values of at most 255 (OBS; S3 takes 256), of letters,
//! digits, spaces and `+ - . _ : @` (S3's set without the `=` and `/` OBS refuses). A tag change
//! keeps the object's body, ETag and modification time.
//!
//! Bucket tags (GET, PUT and DELETE `?tagging` on the bucket, S3's and OBS's `setBucketTagging`)
//! keep OBS's limits, the stricter of OBS's documents: at most 10 tags, each key once, keys of 1
//! to 36 characters and values of at most 43, without control characters or `, * | / < > = \`.

use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use super::{ApiError, Body, Ctx, MAX_DOCUMENT, empty, malformed_xml, no_content, xml_response};
use crate::xml;

/// An object's tags, in the order given.
pub(super) type Tags = Vec<(String, String)>;

/// What tags of one kind may be.
struct Rules {
    /// The most tags one object or bucket carries.
    max_tags: usize,
    /// The code of a refusal for too many (S3's `BadRequest` for objects).
    too_many: &'static str,
    /// The longest key, and the longest value, in characters.
    max_key: usize,
    max_value: usize,
    /// The characters keys and values may hold.
    allowed: fn(char) -> bool,
}

/// Object tags: what both S3 and OBS take (OBS refuses `= * < > \ , | / ? ! ;` and values over
/// 255 characters; S3 takes `+ - = . _ : / @` besides letters, digits and spaces).
const OBJECT: Rules = Rules {
    max_tags: 10,
    too_many: "BadRequest",
    max_key: 128,
    max_value: 255,
    allowed: |c| c.is_alphanumeric() || c == ' ' || "+-._:@".contains(c),
};

/// OBS's bucket tags.
const BUCKET: Rules = Rules {
    max_tags: 10,
    too_many: "InvalidTag",
    max_key: 36,
    max_value: 43,
    allowed: |c| !c.is_control() && !",*|/<>=\\".contains(c),
};

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidTag", message)
}

/// Checks tags by `rules`.
fn check(tags: &[(String, String)], rules: &Rules) -> Result<(), ApiError> {
    if tags.len() > rules.max_tags {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            rules.too_many,
            format!("tags cannot be more than {}", rules.max_tags),
        ));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > rules.max_key || !k.chars().all(rules.allowed) {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > rules.max_value || !v.chars().all(rules.allowed) {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// [`dialect_header`](super::dialect_header) as text.
fn dialect_text<'h>(headers: &'h HeaderMap, suffix: &str) -> Result<Option<&'h str>, ApiError> {
    super::dialect_header(headers, suffix)?
        .map(|v| {
            v.to_str()
                .map_err(|_| invalid(&format!("x-amz-{suffix} / x-obs-{suffix} is not text")))
        })
        .transpose()
}

/// The tags of `x-amz-tagging` or OBS's `x-obs-tagging` (`k1=v1&k2=v2`, URL-encoded), checked;
/// none without the header.
pub(super) fn of_headers(headers: &HeaderMap) -> Result<Tags, ApiError> {
    let Some(text) = dialect_text(headers, "tagging")? else {
        return Ok(Tags::new());
    };
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|d| d.into_owned())
            .map_err(|_| invalid("x-amz-tagging is not UTF-8 once decoded"))
    };
    let tags = text
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect::<Result<Tags, ApiError>>()?;
    check(&tags, &OBJECT)?;
    Ok(tags)
}

/// The object tags of a `Tagging` document, checked.
pub(super) fn of_document(doc: &str) -> Result<Tags, ApiError> {
    let tags = read_document(doc)?;
    check(&tags, &OBJECT)?;
    Ok(tags)
}

/// The tags of a `Tagging` document, unchecked.
fn read_document(doc: &str) -> Result<Tags, ApiError> {
    if !doc.contains("<Tagging") {
        return Err(malformed_xml("the body is not a Tagging document"));
    }
    xml::raw_elements(doc, "Tag")
        .into_iter()
        .map(|tag| {
            let key =
                xml::exact_text(tag, "Key").ok_or_else(|| malformed_xml("a Tag without a Key"))?;
            Ok((key, xml::exact_text(tag, "Value").unwrap_or_default()))
        })
        .collect::<Result<Tags, ApiError>>()
}

/// The tags a copy gives its target: the source's (`x-amz-tagging-directive` or
/// `x-obs-tagging-directive: COPY`, the default) or the request's (`REPLACE`).
pub(super) fn of_copy(headers: &HeaderMap, source: &[(String, String)]) -> Result<Tags, ApiError> {
    match dialect_text(headers, "tagging-directive")? {
        None | Some("COPY") => Ok(source.to_vec()),
        Some("REPLACE") => of_headers(headers),
        Some(_) => Err(ApiError::bad("the tagging directive is COPY or REPLACE")),
    }
}

fn document(tags: &[(String, String)]) -> String {
    let mut s = format!(
        "{}<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>",
        xml::DECL
    );
    for (k, v) in tags {
        s.push_str(&format!(
            "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
            xml::escape(k),
            xml::escape(v)
        ));
    }
    s.push_str("</TagSet></Tagging>");
    s
}

impl Ctx<'_> {
    /// GetObjectTagging, of the version `versionId` names: for the bucket's owner only.
    pub(super) fn get_tagging(&self, bucket: &str, key: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        let obj = self.named_version(&row, key)?;
        let mut r = xml_response(document(&obj.tags));
        self.put_version_id(r.headers_mut(), &row, obj.version_id.as_deref());
        Ok(r)
    }

    /// PutObjectTagging: replaces the object's tags.
    pub(super) async fn put_tagging(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        let obj = self.named_version(&row, key)?;
        let tags = of_document(&self.document(body, MAX_DOCUMENT).await?)?;
        self.set_tags(bucket, key, &tags)?;
        let mut r = Response::new(empty());
        self.put_version_id(r.headers_mut(), &row, obj.version_id.as_deref());
        Ok(r)
    }

    /// DeleteObjectTagging: removes every tag of the object.
    pub(super) fn delete_tagging(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(bucket)?;
        let obj = self.named_version(&row, key)?;
        self.set_tags(bucket, key, &[])?;
        let mut r = no_content();
        self.put_version_id(r.headers_mut(), &row, obj.version_id.as_deref());
        Ok(r)
    }

    /// GetBucketTagging: 404 `NoSuchTagSet` for a bucket without tags.
    pub(super) fn get_bucket_tagging(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        match self.gw.store.bucket_tags(bucket)? {
            Some(tags) if !tags.is_empty() => Ok(xml_response(document(&tags))),
            Some(_) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NoSuchTagSet",
                "The TagSet does not exist",
            )),
            None => Err(ApiError::no_bucket()),
        }
    }

    /// PutBucketTagging: replaces the bucket's tags (OBS's limits).
    pub(super) async fn put_bucket_tagging(
        &self,
        bucket: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let tags = read_document(&self.document(body, MAX_DOCUMENT).await?)?;
        check(&tags, &BUCKET)?;
        self.gw.store.set_bucket_tags(bucket, &tags)?;
        Ok(no_content())
    }

    /// DeleteBucketTagging.
    pub(super) fn delete_bucket_tagging(&self, bucket: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        self.gw.store.set_bucket_tags(bucket, &[])?;
        Ok(no_content())
    }

    fn set_tags(&self, bucket: &str, key: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
        let which = self.version_ref()?;
        if self.gw.store.set_object_tags(bucket, key, which, tags)? {
            Ok(())
        } else {
            Err(ApiError::no_key())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_tags_follow_the_stricter_of_s3s_and_obss_rules() {
        let tag = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let eleven: Tags = (0..11).map(|i| tag(&format!("k{i}"), "")).collect();
        // (rule, tags, the refusal's code or None)
        let cases: Vec<(&str, Tags, Option<&str>)> = vec![
            ("a tag", vec![tag("team", "storage")], None),
            ("an empty value", vec![tag("team", "")], None),
            (
                "letters of any script, spaces and + - . _ : @",
                vec![tag("成本 中心", "a+b-c.d_e:f@g")],
                None,
            ),
            (
                "128 characters of key, 255 of value",
                vec![tag(&"k".repeat(128), &"v".repeat(255))],
                None,
            ),
            ("ten tags", eleven[..10].to_vec(), None),
            ("eleven tags", eleven.clone(), Some("BadRequest")),
            ("an empty key", vec![tag("", "v")], Some("InvalidTag")),
            (
                "a key of 129 characters",
                vec![tag(&"k".repeat(129), "")],
                Some("InvalidTag"),
            ),
            (
                "a value of 256 characters (S3 takes it, OBS does not)",
                vec![tag("k", &"v".repeat(256))],
                Some("InvalidTag"),
            ),
            (
                "a '=' in a value (S3 takes it, OBS does not)",
                vec![tag("k", "a=b")],
                Some("InvalidTag"),
            ),
            (
                "a '/' in a key (S3 takes it, OBS does not)",
                vec![tag("a/b", "")],
                Some("InvalidTag"),
            ),
            ("'*' in a key", vec![tag("a*b", "")], Some("InvalidTag")),
            ("'<' in a value", vec![tag("a", "<b>")], Some("InvalidTag")),
            (
                "a key given twice",
                vec![tag("a", "1"), tag("a", "2")],
                Some("InvalidTag"),
            ),
        ];
        for (rule, tags, want) in cases {
            assert_eq!(check(&tags, &OBJECT).err().map(|e| e.code), want, "{rule}");
        }
    }

    #[test]
    fn bucket_tags_follow_obss_stricter_rules() {
        let tag = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        // (rule, tags, the refusal's code or None)
        let cases: Vec<(&str, Tags, Option<&str>)> = vec![
            ("a tag", tag("team", "storage"), None),
            (
                "36 and 43 characters of any script",
                tag(&"键".repeat(36), &"v".repeat(43)),
                None,
            ),
            (
                "a key of 37 characters",
                tag(&"k".repeat(37), ""),
                Some("InvalidTag"),
            ),
            (
                "a value of 44 characters",
                tag("k", &"v".repeat(44)),
                Some("InvalidTag"),
            ),
            ("a ',' in a value", tag("k", "a,b"), Some("InvalidTag")),
            ("a '/' in a key", tag("a/b", ""), Some("InvalidTag")),
            ("a '|' in a value", tag("k", "a|b"), Some("InvalidTag")),
            (
                "eleven tags",
                (0..11).map(|i| (format!("k{i}"), String::new())).collect(),
                Some("InvalidTag"),
            ),
        ];
        for (rule, tags, want) in cases {
            assert_eq!(check(&tags, &BUCKET).err().map(|e| e.code), want, "{rule}");
        }
    }

    #[test]
    fn the_header_and_the_document_read_back_what_was_written() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-tagging",
            http::HeaderValue::from_static("team=storage&cost%20center=r%2Bd+1&empty="),
        );
        let want = vec![
            ("team".to_owned(), "storage".to_owned()),
            ("cost center".to_owned(), "r+d 1".to_owned()),
            ("empty".to_owned(), String::new()),
        ];
        assert_eq!(of_headers(&h).unwrap(), want);
        let value = h.remove("x-amz-tagging").unwrap();
        h.insert("x-obs-tagging", value.clone());
        assert_eq!(of_headers(&h).unwrap(), want, "OBS's spelling");
        h.insert("x-amz-tagging", value);
        assert_eq!(
            of_headers(&h).unwrap_err().code,
            "InvalidArgument",
            "both spellings"
        );
        assert_eq!(of_document(&document(&want)).unwrap(), want);
        assert_eq!(of_headers(&HeaderMap::new()).unwrap(), Tags::new());
        assert_eq!(
            of_document("<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>")
                .unwrap_err()
                .code,
            "MalformedXML"
        );
    }
}
