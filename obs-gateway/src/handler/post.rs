//! POST form uploads (`multipart/form-data` to the bucket): the policy document and its
//! signature (V2: `AccessKeyId`/`AWSAccessKeyId` + `signature`; V4: `x-amz-credential`,
//! `x-amz-date`, `x-amz-signature`), the SSE parameters as form fields (the adapter reads them
//! there, and only there, for PostObject), then the `file` field streamed into the store.
//!
//! The policy must not have expired, each of its conditions must hold, and every form field
//! (but the signature's own and `file`) must be named by a condition: a field the policy does not
//! cover could have been added by anyone holding the form, so it is refused, as the S3 rules say.

use std::sync::Arc;

use bytes::Bytes;
use envelope::ObjectKind;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use obs_adapter::{Caller, ObsRequest, Operation};
use tokio::sync::mpsc;

use super::files::{Sealing, Written, write_body};
use super::{ApiError, Body, Ctx, Gateway, Target, empty, xml_response};
use crate::auth::{self, AuthError, Authenticated, BodyCheck, Coverage, Dialect};
use crate::sse;
use crate::store::ObjectRow;
use crate::xml;

/// The most form-field bytes before `file`.
const MAX_FIELDS: usize = 64 * 1024;

/// Fields that are the signature's own, not covered by the policy.
const EXEMPT: &[&str] = &[
    "accesskeyid",
    "awsaccesskeyid",
    "signature",
    "policy",
    "file",
    "x-amz-signature",
];

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MalformedPOSTRequest", message)
}

/// The request body, read as far as the form needs.
struct FormReader {
    body: Incoming,
    buf: Vec<u8>,
    ended: bool,
}

impl FormReader {
    /// Reads one more frame; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, ApiError> {
        if self.ended {
            return Ok(false);
        }
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(|e| bad_form(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
                return Ok(true);
            }
        }
        self.ended = true;
        Ok(false)
    }

    /// Reads until `needle` is in the buffer; its offset.
    async fn find(&mut self, needle: &[u8], limit: usize) -> Result<usize, ApiError> {
        loop {
            if let Some(i) = self.buf.windows(needle.len()).position(|w| w == needle) {
                return Ok(i);
            }
            if self.buf.len() > limit {
                return Err(bad_form("form fields too large"));
            }
            if !self.fill().await? {
                return Err(bad_form("the form ended early"));
            }
        }
    }
}

/// One part's name and file name, from its headers.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let line = head
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let param = |p: &str| {
        line.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k.eq_ignore_ascii_case(p)).then(|| v.trim().trim_matches('"').to_owned())
        })
    };
    Some((param("name")?, param("filename")))
}

fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    ct.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Whether a request is a POST form upload.
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    boundary(headers).is_some()
}

/// Where a browser is sent after a form upload that names `success_action_redirect` (or the
/// older `redirect`), as S3 and OBS send it: the URL with the bucket, the key and the ETag
/// added to its query. `None`, so that `success_action_status` answers, when the field is not an
/// `http(s)` URL (S3 ignores such a value).
fn success_redirect(to: &str, bucket: &str, key: &str, etag: &str) -> Option<String> {
    let to = to.trim();
    let scheme_ok = ["http://", "https://"]
        .iter()
        .any(|s| to.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
    if !scheme_ok || to.len() <= "https://".len() || to.contains(char::is_whitespace) {
        return None;
    }
    let enc = |v: &str| crate::auth::aws_encode(v, false);
    let joint = if to.contains('?') { '&' } else { '?' };
    Some(format!(
        "{to}{joint}bucket={}&key={}&etag={}",
        enc(bucket),
        enc(key),
        enc(etag)
    ))
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Verifies the form's signature over its policy; the caller and the decoded policy.
fn authenticate_form(
    gw: &Gateway,
    fields: &[(String, String)],
) -> Result<(Authenticated, serde_json::Value), AuthError> {
    let policy_b64 = field(fields, "policy").ok_or(AuthError::Anonymous)?;
    let (cred, dialect, expected, given) =
        if let Some(credential) = field(fields, "x-amz-credential") {
            let parts: Vec<&str> = credential.split('/').collect();
            let [ak, date, region, service, "aws4_request"] = parts.as_slice() else {
                return Err(AuthError::Malformed("x-amz-credential is malformed".into()));
            };
            let cred = gw
                .credentials
                .get(ak)
                .ok_or(AuthError::InvalidAccessKeyId)?;
            let key = auth::v4::signing_key(&cred.secret_key, date, region, service);
            let expected = hex::encode(auth::v4::hmac(&key[..], policy_b64.as_bytes()));
            let given = field(fields, "x-amz-signature").unwrap_or_default();
            (cred, Dialect::Amz, expected, given)
        } else {
            let (ak, dialect) = match (
                field(fields, "AccessKeyId"),
                field(fields, "AWSAccessKeyId"),
            ) {
                (Some(ak), _) => (ak, Dialect::Obs),
                (None, Some(ak)) => (ak, Dialect::Amz),
                (None, None) => return Err(AuthError::Anonymous),
            };
            let cred = gw
                .credentials
                .get(ak)
                .ok_or(AuthError::InvalidAccessKeyId)?;
            let expected = auth::v2::sign(&cred.secret_key, policy_b64);
            let given = field(fields, "signature").unwrap_or_default();
            (cred, dialect, expected, given)
        };
    if !auth::signatures_match(&expected, given) {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    use base64::Engine;
    let policy = base64::engine::general_purpose::STANDARD
        .decode(policy_b64.trim())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .ok_or_else(|| AuthError::Malformed("the policy is not base64 JSON".into()))?;
    Ok((
        Authenticated {
            credential: cred.clone(),
            dialect,
            body: BodyCheck::None,
            coverage: Coverage::default(),
        },
        policy,
    ))
}

/// The policy's conditions against the fields (and the bucket); `Ok(length range)`.
fn check_policy(
    policy: &serde_json::Value,
    bucket: &str,
    fields: &[(String, String)],
) -> Result<Option<(u64, u64)>, ApiError> {
    let denied = |m: String| ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", m);
    let expiration = policy["expiration"]
        .as_str()
        .and_then(|e| e.parse::<jiff::Timestamp>().ok())
        .ok_or_else(|| denied("the policy has no valid expiration".into()))?;
    if expiration < jiff::Timestamp::now() {
        return Err(denied("the policy has expired".into()));
    }
    let value_of = |name: &str| -> String {
        if name.eq_ignore_ascii_case("bucket") {
            bucket.to_owned()
        } else {
            field(fields, name).unwrap_or_default().to_owned()
        }
    };
    let mut covered: Vec<String> = Vec::new();
    let mut range = None;
    for c in policy["conditions"].as_array().into_iter().flatten() {
        if let Some(obj) = c.as_object() {
            for (name, want) in obj {
                let want = want.as_str().unwrap_or_default();
                if value_of(name) != want {
                    return Err(denied(format!(
                        "the policy condition on {name} does not hold"
                    )));
                }
                covered.push(name.to_ascii_lowercase());
            }
        } else if let Some([op, name, want]) = c.as_array().map(Vec::as_slice) {
            let op = op.as_str().unwrap_or_default().to_ascii_lowercase();
            if op == "content-length-range" {
                let (Some(lo), Some(hi)) = (name.as_u64(), want.as_u64()) else {
                    return Err(denied("content-length-range needs two numbers".into()));
                };
                range = Some((lo, hi));
                continue;
            }
            let name = name
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('$')
                .to_ascii_lowercase();
            let want = want.as_str().unwrap_or_default();
            let have = value_of(&name);
            let holds = match op.as_str() {
                "eq" => have == want,
                "starts-with" => have.starts_with(want),
                _ => false,
            };
            if !holds {
                return Err(denied(format!(
                    "the policy condition on {name} does not hold"
                )));
            }
            covered.push(name);
        } else {
            return Err(denied("the policy has a condition it cannot read".into()));
        }
    }
    for (name, _) in fields {
        let n = name.to_ascii_lowercase();
        let exempt = EXEMPT.contains(&n.as_str()) || n.starts_with("x-ignore-");
        // The V4 signature's own fields are named by the credential and checked by it.
        let v4_own = matches!(
            n.as_str(),
            "x-amz-algorithm" | "x-amz-credential" | "x-amz-date"
        );
        if !exempt && !v4_own && !covered.contains(&n) {
            return Err(denied(format!(
                "the form field {name} is not covered by the policy"
            )));
        }
    }
    Ok(range)
}

/// Serves a POST form upload to `bucket`.
pub(super) async fn post_object(
    gw: &Arc<Gateway>,
    headers: &HeaderMap,
    t: &Target,
    bucket: &str,
    body: Incoming,
    clock_offset_ms: i64,
) -> Result<Response<Body>, ApiError> {
    let boundary = boundary(headers).ok_or_else(|| bad_form("not multipart/form-data"))?;
    let delim = format!("--{boundary}").into_bytes();
    let mut r = FormReader {
        body,
        buf: Vec::new(),
        ended: false,
    };
    // The first boundary, then part after part until `file`.
    let at = r.find(&delim, MAX_FIELDS).await?;
    r.buf.drain(..at + delim.len());
    let mut fields: Vec<(String, String)> = Vec::new();
    let filename = loop {
        let end = r.find(b"\r\n\r\n", MAX_FIELDS).await?;
        let head = String::from_utf8_lossy(&r.buf[..end]).into_owned();
        r.buf.drain(..end + 4);
        let (name, file) = disposition(&head).ok_or_else(|| bad_form("a part without a name"))?;
        if name.eq_ignore_ascii_case("file") {
            break file.unwrap_or_default();
        }
        let mut sep = b"\r\n".to_vec();
        sep.extend_from_slice(&delim);
        let end = r.find(&sep, MAX_FIELDS).await?;
        let value = String::from_utf8(r.buf[..end].to_vec())
            .map_err(|_| bad_form("a form field is not UTF-8"))?;
        r.buf.drain(..end + sep.len());
        fields.push((name, value));
        if fields.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() > MAX_FIELDS {
            return Err(bad_form("form fields too large"));
        }
        // `--` ends the form (no file); CRLF starts the next part.
        while r.buf.len() < 2 {
            if !r.fill().await? {
                return Err(bad_form("the form ended early"));
            }
        }
        if r.buf.starts_with(b"--") {
            return Err(bad_form("the form has no file field"));
        }
        r.buf.drain(..2);
    };
    let (who, policy) = authenticate_form(gw, &fields)
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e.code(), e.to_string()))?;
    let range = check_policy(&policy, bucket, &fields)?;
    let key = field(&fields, "key")
        .ok_or_else(|| bad_form("the form has no key field"))?
        .replace("${filename}", &filename);
    if key.is_empty() {
        return Err(bad_form("the key is empty"));
    }
    super::check_new_key(&key)?;
    let meta = super::metadata_of(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    super::check_user_metadata(&meta)?;
    if let Some(acl) = field(&fields, "acl") {
        super::acl::check_canned(acl)?;
    }
    for prefix in ["x-amz-", "x-obs-"] {
        super::routes::check_storage_class(field(&fields, &format!("{prefix}storage-class")))?;
        super::check_redirect_value(field(
            &fields,
            &format!("{prefix}{}", super::WEBSITE_REDIRECT),
        ))?;
    }
    super::routes::check_bucket_key(field(&fields, super::routes::BUCKET_KEY))?;
    // A form's object lock is not kept (a bucket's default retention still applies): refused,
    // not dropped.
    if let Some((name, _)) = fields.iter().find(|(n, _)| {
        let n = n.to_ascii_lowercase();
        n.starts_with("x-amz-object-lock-") || n.starts_with("x-obs-object-lock-")
    }) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("a form's {name} is not kept by the gateway"),
        ));
    }
    super::routes::refuse_sse_c(fields.iter().map(|(n, _)| n.as_str()), [])?;
    let tags = field(&fields, "tagging")
        .map(super::tagging::of_document)
        .transpose()?
        .unwrap_or_default();
    let expires_days = field(&fields, crate::expiry::HEADER)
        .map(crate::expiry::parse_days)
        .transpose()?;
    let caller = Caller::new(who.credential.domain.clone());
    let ctx = Ctx {
        gw,
        who: &who,
        caller: &caller,
        headers,
        t,
        clock_offset_ms,
        expires_days,
    };
    let row = ctx.bucket_row(bucket)?;
    let facts = ctx.facts(&row)?;
    // The adapter reads SSE parameters from form fields for PostObject, by their OBS names;
    // refusals and answers name them as the form did.
    let form = sse::to_obs_query(&fields);
    let dialect = if fields.iter().any(|(n, _)| {
        n.to_ascii_lowercase()
            .starts_with("x-obs-server-side-encryption")
    }) {
        Dialect::Obs
    } else {
        who.dialect
    };
    let decision = gw
        .adapter
        .decide(
            &ObsRequest::new(
                Operation::PostObject,
                &caller,
                &facts,
                &key,
                &HeaderMap::new(),
            )
            .with_form_fields(&form),
        )
        .await
        .map_err(|e| ApiError::adapter(e, dialect))?;
    ctx.check_acl(&facts, &decision.policy)?;
    let file = uuid::Uuid::new_v4().to_string();
    let sealing = ctx
        .sealing(
            &facts,
            &key,
            &file,
            &decision.encryption,
            ObjectKind::Single,
        )
        .await?
        .map(|(k, c)| Sealing::Single(k, c));
    let temp = gw.store.temp_path();
    let written = match stream_file(gw, &mut r, &delim, temp.clone(), sealing).await {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    if let Some((lo, hi)) = range
        && !(lo..=hi).contains(&written.size)
    {
        let _ = std::fs::remove_file(&temp);
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "the file's size is outside the policy's content-length-range",
        ));
    }
    let modified_ms = ctx.now_ms();
    let obj = ObjectRow {
        bucket: bucket.to_owned(),
        key: key.clone(),
        file,
        size: written.size,
        etag: written.md5_hex.clone(),
        content_type: field(&fields, "content-type").map(str::to_owned),
        owner: caller.domain.clone(),
        kms_key_id: decision.encryption.key_id().map(|k| k.to_string()),
        meta,
        headers: super::stored_headers(|n| field(&fields, n)),
        modified_ms,
        expires_ms: ctx.expires_ms(modified_ms),
        multipart: None,
        part_sizes: None,
        appends: None,
        checksum: None,
        part_checksums: None,
        tags,
        version_id: None,
        lock: Default::default(),
    };
    let g = Arc::clone(gw);
    let version_id = gw
        .tasks
        .spawn_blocking(move || {
            g.store
                .commit_object(&temp, &obj, &crate::store::WriteCondition::Any)
        })
        .await
        .map_err(ApiError::internal)??;
    let status = field(&fields, "success_action_status").unwrap_or("204");
    let etag = format!("\"{}\"", written.md5_hex);
    let redirect = field(&fields, "success_action_redirect")
        .or_else(|| field(&fields, "redirect"))
        .and_then(|to| success_redirect(to, bucket, &key, &etag));
    let mut resp = if let Some(location) = redirect {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    } else if status == "201" {
        let mut r = xml_response(format!(
            "{}<PostResponse><Location>/{}/{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
            xml::DECL,
            xml::escape(bucket),
            xml::escape(&key),
            xml::escape(bucket),
            xml::escape(&key),
            xml::escape(&etag)
        ));
        *r.status_mut() = StatusCode::CREATED;
        r
    } else {
        let mut r = Response::new(empty());
        *r.status_mut() = if status == "200" {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        r
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    ctx.put_version_id(resp.headers_mut(), &row, version_id.as_deref());
    resp.headers_mut()
        .extend(sse::response_headers(&decision.response_headers, dialect));
    Ok(resp)
}

/// Streams the `file` part (up to the next boundary) into `temp`.
async fn stream_file(
    gw: &Arc<Gateway>,
    r: &mut FormReader,
    delim: &[u8],
    temp: std::path::PathBuf,
    sealing: Option<Sealing>,
) -> Result<Written, ApiError> {
    let mut end_marker = b"\r\n".to_vec();
    end_marker.extend_from_slice(delim);
    let (tx, rx) = mpsc::channel::<Bytes>(super::QUEUE);
    let writer = gw
        .tasks
        .spawn_blocking(move || write_body(&temp, sealing, rx));
    let fed = async {
        let mut total = 0u64;
        loop {
            if let Some(i) = r
                .buf
                .windows(end_marker.len())
                .position(|w| w == end_marker.as_slice())
            {
                let last = Bytes::copy_from_slice(&r.buf[..i]);
                total += last.len() as u64;
                if !last.is_empty() && tx.send(last).await.is_err() {
                    return Err(ApiError::internal("the file writer stopped"));
                }
                return Ok(total);
            }
            // Keep what could be the start of the boundary; send the rest.
            let keep = end_marker.len().min(r.buf.len());
            let send = r.buf.len() - keep;
            if send > 0 {
                let chunk = Bytes::copy_from_slice(&r.buf[..send]);
                r.buf.drain(..send);
                total += chunk.len() as u64;
                if total > super::MAX_PUT {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "EntityTooLarge",
                        "your proposed upload exceeds the maximum allowed object size (5 GiB)",
                    ));
                }
                if tx.send(chunk).await.is_err() {
                    return Err(ApiError::internal("the file writer stopped"));
                }
            }
            if !r.fill().await? {
                return Err(bad_form("the form ended inside the file"));
            }
        }
    };
    let fed: Result<u64, ApiError> = fed.await;
    drop(tx);
    let written = writer.await.map_err(ApiError::internal)?;
    fed?;
    written.map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_upload_redirects_to_an_http_url_with_the_object_named() {
        for (to, want) in [
            (
                "http://example.invalid/done",
                Some("http://example.invalid/done?bucket=b&key=a%20b%2Fc&etag=%22e1%22"),
            ),
            (
                "HTTPS://example.invalid/done?x=1",
                Some("HTTPS://example.invalid/done?x=1&bucket=b&key=a%20b%2Fc&etag=%22e1%22"),
            ),
            // Not a URL S3 redirects to: success_action_status answers instead.
            ("ftp://example.invalid/", None),
            ("/relative", None),
            ("https://", None),
            ("http://a b", None),
        ] {
            assert_eq!(
                success_redirect(to, "b", "a b/c", "\"e1\"").as_deref(),
                want,
                "{to}"
            );
        }
    }
}
