//! The operations: addressing, authentication, the adapter's decision, then the store.
//!
//! Every response carries `x-obs-request-id` and `x-amz-request-id`; every refusal is an
//! `<Error>` document (no body for HEAD). A refused or broken upload stores nothing: bodies go to
//! a temporary file that only a complete, verified upload commits ([`crate::store`]).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use envelope::multipart::{MultipartObject, PartInfo, PartWriter, Upload};
use envelope::{
    Backend, DataKey, Header, ObjectContext, ObjectKey, ObjectKind, WrapScheme, WrappedKey,
};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use kms_proto::key_id::{FullKeyId, RegionId};
use md5::Md5;
use obs_adapter::{
    AdapterError, BucketFacts, BucketPolicy, Caller, DefaultEncryption, Encryption, GrpcKeyService,
    ObsAdapter, ObsRequest, Operation, PolicyVerdict, StoredObject,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::auth::chunked::ChunkDecoder;
use crate::auth::{self, Authenticated, BodyCheck, Dialect, RequestView};
use crate::checksum::{Algorithm, Checksum};
use crate::credentials::Credentials;
use crate::sse;
use crate::store::{BucketRow, ObjectRow, Store, StoreError};
use crate::xml;

mod multipart;
mod post;

/// A response body: whole or streamed.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// The largest single PUT, as OBS and S3 (5 GiB).
pub const MAX_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// Bytes per message between the body and the blocking file task; with [`QUEUE`] messages in
/// flight, an upload or download holds at most about `(QUEUE + 2) * IO_CHUNK` bytes of body.
const IO_CHUNK: usize = 256 * 1024;
const QUEUE: usize = 4;

/// Everything a request needs.
pub struct Gateway {
    /// Buckets and objects.
    pub store: Store,
    /// The access keys.
    pub credentials: Credentials,
    /// The SSE-KMS rules over the daemon.
    pub adapter: ObsAdapter<GrpcKeyService>,
    /// The region of new buckets.
    pub region: RegionId,
    /// Virtual-hosted style: `Host: {bucket}.{host_suffix}`.
    pub host_suffix: String,
    /// Blocking file work, waited for at shutdown.
    pub tasks: TaskTracker,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("region", &self.region)
            .field("host_suffix", &self.host_suffix)
            .finish_non_exhaustive()
    }
}

/// A refusal in the protocol's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "we encountered an internal error; retry later",
        )
    }

    fn no_bucket() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "the specified bucket does not exist",
        )
    }

    fn no_key() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "the specified key does not exist",
        )
    }

    fn denied() -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", "access denied")
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }
}

impl From<AdapterError> for ApiError {
    fn from(e: AdapterError) -> Self {
        let (status, code) = e.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %e, "the adapter failed");
        }
        let obs = e.to_obs_error("");
        Self::new(status, code, obs.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchBucket => ApiError::no_bucket(),
            StoreError::BucketNotEmpty => ApiError::new(
                StatusCode::CONFLICT,
                "BucketNotEmpty",
                "the bucket you tried to delete is not empty",
            ),
            StoreError::BucketExists { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "BucketAlreadyExists",
                "the requested bucket name is not available",
            ),
            other => ApiError::internal(other),
        }
    }
}

/// The parsed request line: addressing and query.
struct Target {
    bucket: Option<String>,
    key: Option<String>,
    host_bucket: Option<String>,
    query: Vec<(String, String)>,
}

impl Target {
    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(n, _)| n == name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".into(),
        }
    }
}

fn host_bucket(headers: &HeaderMap, suffix: &str) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let bucket = host.strip_suffix(suffix)?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| bucket.to_owned())
}

fn target(req: &Request<Incoming>, suffix: &str) -> Target {
    let host_bucket = host_bucket(req.headers(), suffix);
    let path = req.uri().path();
    let query = auth::parse_query(req.uri().query().unwrap_or(""))
        .into_iter()
        .map(|q| (q.name, q.value))
        .collect();
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = match &host_bucket {
        Some(b) => (
            Some(b.clone()),
            (!rest.is_empty()).then(|| auth::decode(rest)),
        ),
        None => match rest.split_once('/') {
            Some((b, k)) => (
                Some(auth::decode(b)),
                (!k.is_empty()).then(|| auth::decode(k)),
            ),
            None if rest.is_empty() => (None, None),
            None => (Some(auth::decode(rest)), None),
        },
    };
    Target {
        bucket,
        key,
        host_bucket,
        query,
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string().to_uppercase()
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

/// Serves one request.
pub async fn handle(gw: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let id = request_id();
    let is_head = req.method() == Method::HEAD;
    let t = target(&req, &gw.host_suffix);
    let resource = t.resource();
    let mut resp = match route(&gw, req, t).await {
        Ok(r) => r,
        Err(e) => {
            let body = if is_head {
                empty()
            } else {
                full(xml::error(e.code, &e.message, &id, &id, &resource))
            };
            let mut r = Response::new(body);
            *r.status_mut() = e.status;
            if !is_head {
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/xml"),
                );
            }
            r.headers_mut()
                .insert("x-obs-error-code", HeaderValue::from_static(e.code));
            r
        }
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-obs-request-id", v.clone());
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-obs-id-2", v.clone());
        h.insert("x-amz-id-2", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now())) {
        h.insert(header::DATE, v);
    }
    h.insert(header::SERVER, HeaderValue::from_static("OBS"));
    resp
}

async fn route(
    gw: &Arc<Gateway>,
    req: Request<Incoming>,
    t: Target,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    // OBS answers the API version without authentication; the SDK asks it to pick its dialect.
    if method == Method::HEAD && t.has("apiversion") {
        let mut r = Response::new(empty());
        r.headers_mut()
            .insert("x-obs-api", HeaderValue::from_static("3.0"));
        return Ok(r);
    }
    let (parts, body) = req.into_parts();
    // A POST form upload carries its signature in the form.
    if method == Method::POST
        && t.key.is_none()
        && let Some(bucket) = &t.bucket
        && post::is_form(&parts.headers)
    {
        return post::post_object(gw, &parts.headers, &t, bucket, body).await;
    }
    let view = RequestView {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        host_bucket: t.host_bucket.as_deref(),
    };
    let who = auth::authenticate(&view, &gw.credentials).map_err(|e| {
        tracing::debug!(error = %e, "authentication refused");
        let status = match e {
            auth::AuthError::Malformed(_) if parts.headers.contains_key(header::AUTHORIZATION) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, e.code(), e.to_string())
    })?;
    if let Err(what) = who.check_coverage(&parts.headers, &view.query()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("{what} is not covered by the request's signature: sign it, or leave it out"),
        ));
    }
    let caller = Caller::new(who.credential.domain.clone());
    let ctx = Ctx {
        gw,
        who: &who,
        caller: &caller,
        headers: &parts.headers,
        t: &t,
    };
    match (&t.bucket, &t.key, &method) {
        (None, None, &Method::GET) => ctx.list_buckets(),
        (None, _, _) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the specified method is not allowed against this resource",
        )),
        (Some(b), None, m) => match *m {
            Method::PUT if t.has("encryption") => ctx.put_encryption(b, body).await,
            Method::GET if t.has("encryption") => ctx.get_encryption(b),
            Method::DELETE if t.has("encryption") => ctx.delete_encryption(b),
            Method::PUT if t.has("policy") => ctx.put_policy(b, body).await,
            Method::GET if t.has("policy") => ctx.get_policy(b),
            Method::DELETE if t.has("policy") => ctx.delete_policy(b),
            Method::GET if t.has("location") => ctx.get_location(b),
            Method::PUT => ctx.create_bucket(b),
            Method::HEAD => ctx.head_bucket(b),
            Method::GET => ctx.list_objects(b),
            Method::DELETE => ctx.delete_bucket(b),
            Method::POST if t.has("delete") => ctx.delete_objects(b, body).await,
            _ => Err(not_implemented()),
        },
        (Some(b), Some(k), m) => match *m {
            // UploadPartCopy.
            Method::PUT
                if t.has("uploadId")
                    && (parts.headers.contains_key("x-obs-copy-source")
                        || parts.headers.contains_key("x-amz-copy-source")) =>
            {
                Err(not_implemented())
            }
            Method::PUT
                if parts.headers.contains_key("x-obs-copy-source")
                    || parts.headers.contains_key("x-amz-copy-source") =>
            {
                ctx.copy_object(b, k).await
            }
            Method::PUT if t.has("uploadId") => ctx.upload_part(b, k, body).await,
            Method::POST if t.has("uploads") => ctx.initiate_upload(b, k).await,
            Method::POST if t.has("uploadId") => ctx.complete_upload(b, k, body).await,
            Method::DELETE if t.has("uploadId") => ctx.abort_upload(b, k),
            Method::GET if t.has("uploadId") => ctx.list_parts(b, k),
            Method::PUT => ctx.put_object(b, k, body).await,
            Method::GET => ctx.get_object(b, k, false).await,
            Method::HEAD => ctx.get_object(b, k, true).await,
            Method::DELETE => ctx.delete_object(b, k),
            _ => Err(not_implemented()),
        },
    }
}

fn not_implemented() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "this operation is not implemented by the gateway yet",
    )
}

fn xml_response(body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

struct Ctx<'a> {
    gw: &'a Arc<Gateway>,
    who: &'a Authenticated,
    caller: &'a Caller,
    headers: &'a HeaderMap,
    t: &'a Target,
}

impl Ctx<'_> {
    fn bucket_row(&self, name: &str) -> Result<BucketRow, ApiError> {
        self.gw.store.bucket(name)?.ok_or_else(ApiError::no_bucket)
    }

    /// The bucket, for operations only its owner may do.
    fn owned_bucket(&self, name: &str) -> Result<BucketRow, ApiError> {
        let row = self.bucket_row(name)?;
        if row.owner != self.caller.domain {
            return Err(ApiError::denied());
        }
        Ok(row)
    }

    fn facts(&self, row: &BucketRow) -> Result<BucketFacts, ApiError> {
        let mut facts = BucketFacts::new(row.name.clone(), row.region.clone(), row.owner.clone());
        if let Some((alg, key)) = &row.default_encryption {
            facts = facts.with_default_encryption(
                DefaultEncryption::parse(alg, key.as_deref()).map_err(ApiError::internal)?,
            );
        }
        if let Some(p) = &row.policy {
            facts =
                facts.with_policy(BucketPolicy::parse(&row.name, p).map_err(ApiError::internal)?);
        }
        Ok(facts)
    }

    /// The bucket ACL (private): the owner, or a caller the policy allows.
    fn check_acl(&self, facts: &BucketFacts, verdict: &PolicyVerdict) -> Result<(), ApiError> {
        if facts.owner == self.caller.domain || matches!(verdict, PolicyVerdict::Allow { .. }) {
            Ok(())
        } else {
            Err(ApiError::denied())
        }
    }

    fn dialect(&self) -> Dialect {
        sse::request_dialect(self.headers, &self.t.query, self.who.dialect)
    }

    fn list_buckets(&self) -> Result<Response<Body>, ApiError> {
        let rows = self.gw.store.list_buckets(&self.caller.domain)?;
        let mut s = format!(
            "{}<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{}</ID><DisplayName>{}</DisplayName></Owner><Buckets>",
            xml::DECL,
            self.caller.domain,
            self.caller.domain
        );
        for b in rows {
            s.push_str(&format!(
                "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate><Location>{}</Location></Bucket>",
                xml::escape(&b.name),
                xml::iso_time(b.created_ms),
                b.region
            ));
        }
        s.push_str("</Buckets></ListAllMyBucketsResult>");
        Ok(xml_response(s))
    }

    fn create_bucket(&self, name: &str) -> Result<Response<Body>, ApiError> {
        if !valid_bucket_name(name) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidBucketName",
                "bucket names are 3 to 63 lower-case letters, digits, '-' and '.'",
            ));
        }
        let row = BucketRow {
            name: name.to_owned(),
            owner: self.caller.domain.clone(),
            region: self.gw.region.clone(),
            created_ms: now_ms(),
            default_encryption: None,
            policy: None,
        };
        match self.gw.store.create_bucket(&row) {
            Ok(()) => {}
            Err(StoreError::BucketExists { owner }) if owner == self.caller.domain => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "BucketAlreadyOwnedByYou",
                    "your previous request to create the named bucket succeeded and you already own it",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let mut r = Response::new(empty());
        if let Ok(v) = HeaderValue::from_str(&format!("/{name}")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Ok(r)
    }

    fn head_bucket(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let mut r = Response::new(empty());
        if let Ok(v) = HeaderValue::from_str(row.region.as_str()) {
            r.headers_mut().insert("x-obs-bucket-location", v.clone());
            r.headers_mut().insert("x-amz-bucket-region", v);
        }
        Ok(r)
    }

    fn get_location(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        Ok(xml_response(format!(
            "{}<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}</LocationConstraint>",
            xml::DECL,
            row.region
        )))
    }

    fn delete_bucket(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        self.gw.store.delete_bucket(name)?;
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        Ok(r)
    }

    fn list_objects(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let t = self.t;
        let v2 = t.get("list-type") == Some("2");
        let prefix = t.get("prefix").unwrap_or("");
        let delimiter = t.get("delimiter").filter(|d| !d.is_empty());
        let max_keys: usize = match t.get("max-keys") {
            None => 1000,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| ApiError::bad("max-keys must be a non-negative integer"))?
                .min(1000),
        };
        let start = if v2 {
            match t.get("continuation-token") {
                Some(tok) => String::from_utf8(
                    hex::decode(tok).map_err(|_| ApiError::bad("invalid continuation-token"))?,
                )
                .map_err(|_| ApiError::bad("invalid continuation-token"))?,
                None => t.get("start-after").unwrap_or("").to_owned(),
            }
        } else {
            t.get("marker").unwrap_or("").to_owned()
        };
        let mut contents = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut after = start.clone();
        let mut truncated = false;
        let mut last = String::new();
        'scan: loop {
            let batch = self.gw.store.list_objects(name, prefix, &after, 1000)?;
            if batch.is_empty() {
                break;
            }
            for o in batch {
                after = o.key.clone();
                let rest = &o.key[prefix.len()..];
                let entry = delimiter.and_then(|d| {
                    rest.find(d)
                        .map(|i| format!("{prefix}{}", &rest[..i + d.len()]))
                });
                if contents.len() + prefixes.len() >= max_keys {
                    // One more entry exists: only a new one (not a known prefix) truncates.
                    if entry.as_ref().is_none_or(|p| prefixes.last() != Some(p)) {
                        truncated = true;
                        break 'scan;
                    }
                    continue;
                }
                match entry {
                    Some(p) => {
                        if prefixes.last() != Some(&p) {
                            last = p.clone();
                            prefixes.push(p);
                        }
                    }
                    None => {
                        last = o.key.clone();
                        contents.push(o);
                    }
                }
            }
        }
        let enc = |s: &str| {
            if t.get("encoding-type") == Some("url") {
                auth::aws_encode(s, true)
            } else {
                s.to_owned()
            }
        };
        let mut s = format!(
            "{}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
            xml::DECL,
            xml::escape(name),
            xml::escape(&enc(prefix))
        );
        if let Some(d) = delimiter {
            s.push_str(&format!("<Delimiter>{}</Delimiter>", xml::escape(&enc(d))));
        }
        if v2 {
            s.push_str(&format!(
                "<KeyCount>{}</KeyCount>",
                contents.len() + prefixes.len()
            ));
            if let Some(tok) = t.get("continuation-token") {
                s.push_str(&format!(
                    "<ContinuationToken>{}</ContinuationToken>",
                    xml::escape(tok)
                ));
            }
            if let Some(sa) = t.get("start-after") {
                s.push_str(&format!(
                    "<StartAfter>{}</StartAfter>",
                    xml::escape(&enc(sa))
                ));
            }
            if truncated {
                s.push_str(&format!(
                    "<NextContinuationToken>{}</NextContinuationToken>",
                    hex::encode(last.as_bytes())
                ));
            }
        } else {
            s.push_str(&format!("<Marker>{}</Marker>", xml::escape(&enc(&start))));
            if truncated {
                s.push_str(&format!(
                    "<NextMarker>{}</NextMarker>",
                    xml::escape(&enc(&last))
                ));
            }
        }
        if t.get("encoding-type") == Some("url") {
            s.push_str("<EncodingType>url</EncodingType>");
        }
        for o in contents {
            s.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><Owner><ID>{}</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>",
                xml::escape(&enc(&o.key)),
                xml::iso_time(o.modified_ms),
                o.etag,
                o.size,
                o.owner
            ));
        }
        for p in prefixes {
            s.push_str(&format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                xml::escape(&enc(&p))
            ));
        }
        s.push_str("</ListBucketResult>");
        Ok(xml_response(s))
    }

    async fn put_encryption(&self, name: &str, body: Incoming) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let doc = small_body(body, 64 * 1024).await?;
        let alg = xml::element(&doc, "SSEAlgorithm", 0)
            .map(|(a, _)| a)
            .ok_or_else(|| malformed_xml("ServerSideEncryptionConfiguration needs SSEAlgorithm"))?;
        let key = xml::element(&doc, "KMSMasterKeyID", 0).map(|(k, _)| k);
        let alg = if alg == "aws:kms" {
            "kms".to_owned()
        } else {
            alg
        };
        // Validated by the adapter's own rules (algorithm, key-ID grammar).
        DefaultEncryption::parse(&alg, key.as_deref())?;
        self.gw
            .store
            .set_bucket_encryption(name, Some((&alg, key.as_deref())))?;
        Ok(Response::new(empty()))
    }

    fn get_encryption(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let Some((alg, key)) = row.default_encryption else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ServerSideEncryptionConfigurationNotFoundError",
                "the server side encryption configuration was not found",
            ));
        };
        let alg = if self.who.dialect == Dialect::Amz {
            "aws:kms".to_owned()
        } else {
            alg
        };
        let key = key
            .map(|k| format!("<KMSMasterKeyID>{}</KMSMasterKeyID>", xml::escape(&k)))
            .unwrap_or_default();
        Ok(xml_response(format!(
            "{}<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>{alg}</SSEAlgorithm>{key}</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
            xml::DECL
        )))
    }

    fn delete_encryption(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        self.gw.store.set_bucket_encryption(name, None)?;
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        Ok(r)
    }

    async fn put_policy(&self, name: &str, body: Incoming) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        let doc = small_body(body, 64 * 1024).await?;
        BucketPolicy::parse(name, &doc).map_err(AdapterError::from)?;
        self.gw.store.set_bucket_policy(name, Some(&doc))?;
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        Ok(r)
    }

    fn get_policy(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let row = self.owned_bucket(name)?;
        let policy = row.policy.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NoSuchBucketPolicy",
                "the bucket policy does not exist",
            )
        })?;
        let mut r = Response::new(full(policy));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(r)
    }

    fn delete_policy(&self, name: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(name)?;
        self.gw.store.set_bucket_policy(name, None)?;
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        Ok(r)
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        self.gw.store.delete_object(bucket, key)?;
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        Ok(r)
    }

    async fn delete_objects(
        &self,
        bucket: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        self.owned_bucket(bucket)?;
        let doc = small_body(body, 64 * 1024).await?;
        let quiet = xml::element(&doc, "Quiet", 0).is_some_and(|(q, _)| q == "true");
        let mut s = format!(
            "{}<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
            xml::DECL
        );
        for key in xml::elements(&doc, "Key") {
            match self.gw.store.delete_object(bucket, &key) {
                Ok(_) if quiet => {}
                Ok(_) => s.push_str(&format!(
                    "<Deleted><Key>{}</Key></Deleted>",
                    xml::escape(&key)
                )),
                Err(e) => {
                    tracing::error!(error = %e, "batch delete");
                    s.push_str(&format!(
                        "<Error><Key>{}</Key><Code>InternalError</Code><Message>internal error</Message></Error>",
                        xml::escape(&key)
                    ));
                }
            }
        }
        s.push_str("</DeleteResult>");
        Ok(xml_response(s))
    }

    /// A fresh data key from the daemon (through the adapter, bound to bucket and object key) and
    /// the envelope header for it, for an object stored as `file` (for a multipart upload: its
    /// upload ID); `None` for plaintext.
    async fn sealing(
        &self,
        facts: &BucketFacts,
        key: &str,
        file: &str,
        encryption: &Encryption,
        kind: ObjectKind,
    ) -> Result<Option<(ObjectKey, ObjectContext)>, ApiError> {
        if matches!(encryption, Encryption::Plaintext) {
            return Ok(None);
        }
        let dk = self
            .gw
            .adapter
            .generate_data_key(self.caller, facts, key, encryption)
            .await?
            .ok_or_else(|| ApiError::internal("no data key for an SSE-KMS object"))?;
        let data_key = DataKey::from_slice(dk.plaintext.expose()).map_err(ApiError::internal)?;
        let object_key = ObjectKey::new(
            kind,
            data_key,
            &dk.key_id.to_string(),
            WrappedKey {
                scheme: WrapScheme::Kms,
                bytes: dk.ciphertext_blob,
            },
        )
        .map_err(ApiError::internal)?;
        Ok(Some((object_key, object_context(&facts.name, key, file)?)))
    }

    /// For an SSE-KMS object: its header read from disk, its data key unwrapped through the
    /// adapter (rule 9 again) and the header's tag checked, before a byte is read or sent.
    async fn opening(
        &self,
        facts: &BucketFacts,
        obj: &ObjectRow,
        stored: &StoredObject,
    ) -> Result<Option<Opened>, ApiError> {
        if matches!(stored.encryption, Encryption::Plaintext) {
            return Ok(None);
        }
        let path = self.gw.store.object_path(&obj.file);
        let what = format!("{}/{}", obj.bucket, obj.key);
        let hdr = match &obj.multipart {
            Some((header, _)) => Header::parse(header).map(|(h, _)| h),
            None => std::fs::File::open(&path)
                .map_err(envelope::Error::from_io)
                .and_then(|mut f| Header::read_from(&mut f)),
        }
        .map_err(|e| ApiError::internal(format!("object {what}: {e}")))?;
        let secret = self
            .gw
            .adapter
            .decrypt_data_key(
                self.caller,
                facts,
                &obj.key,
                stored,
                &hdr.wrapped_key().bytes,
            )
            .await?;
        let dk = DataKey::from_slice(secret.expose()).map_err(ApiError::internal)?;
        let ok = ObjectKey::open(hdr, dk)
            .map_err(|e| ApiError::internal(format!("object {what}: {e}")))?;
        let ctx = object_context(&obj.bucket, &obj.key, &obj.file)?;
        Ok(Some(match &obj.multipart {
            None => Opened::Single(ok, ctx),
            Some((_, manifest)) => Opened::Multipart(Box::new(
                MultipartObject::open(ok, ctx, manifest, Backend::default())
                    .map_err(|e| ApiError::internal(format!("object {what}: {e}")))?,
            )),
        }))
    }

    async fn copy_object(&self, bucket: &str, key: &str) -> Result<Response<Body>, ApiError> {
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let source = obs_headers
            .get("x-obs-copy-source")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::bad("the copy source must be text"))?;
        let source = auth::decode(source.split('?').next().unwrap_or(""));
        let (src_bucket, src_key) = source
            .trim_start_matches('/')
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| ApiError::bad("the copy source must be /bucket/key"))?;
        let src_row = self.bucket_row(src_bucket)?;
        let src_facts = self.facts(&src_row)?;
        let src = self
            .gw
            .store
            .object(src_bucket, src_key)?
            .ok_or_else(ApiError::no_key)?;
        let stored = stored_facts(&src)?;
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(
                    Operation::CopyObject,
                    self.caller,
                    &facts,
                    key,
                    &obs_headers,
                )
                .with_stored(&stored),
            )
            .await?;
        self.check_acl(&facts, &decision.policy)?;
        // Reading the source: its bucket's ACL (private: the owner only).
        if src_facts.owner != self.caller.domain {
            return Err(ApiError::denied());
        }
        let opening = self.opening(&src_facts, &src, &stored).await?;
        let file = uuid::Uuid::new_v4().to_string();
        let sealing = self
            .sealing(&facts, key, &file, &decision.encryption, ObjectKind::Single)
            .await?
            .map(|(k, c)| Sealing::Single(k, c));
        let replace = self
            .headers
            .get("x-obs-metadata-directive")
            .or_else(|| self.headers.get("x-amz-metadata-directive"))
            .is_some_and(|v| v == "REPLACE");
        let (meta, content_type) = if replace {
            (
                user_metadata(self.headers),
                self.headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            )
        } else {
            (src.meta.clone(), src.content_type.clone())
        };
        let temp = self.gw.store.temp_path();
        let src_path = self.gw.store.object_path(&src.file);
        let size = src.size;
        let t2 = temp.clone();
        let written = self
            .gw
            .tasks
            .spawn_blocking(move || copy_object_file(&src_path, opening, size, &t2, sealing))
            .await
            .map_err(ApiError::internal)?;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(ApiError::internal(format!(
                    "copying {src_bucket}/{src_key}: {e}"
                )));
            }
        };
        let modified_ms = now_ms();
        let obj = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            file,
            size: written.size,
            etag: written.md5_hex.clone(),
            content_type,
            owner: self.caller.domain.clone(),
            kms_key_id: decision.encryption.key_id().map(|k| k.to_string()),
            meta,
            modified_ms,
            multipart: None,
        };
        let gw = Arc::clone(self.gw);
        self.gw
            .tasks
            .spawn_blocking(move || gw.store.commit_object(&temp, &obj))
            .await
            .map_err(ApiError::internal)??;
        let mut r = xml_response(format!(
            "{}<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag></CopyObjectResult>",
            xml::DECL,
            xml::iso_time(modified_ms),
            written.md5_hex
        ));
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", written.md5_hex)) {
            h.insert(header::ETAG, v);
        }
        h.extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Incoming,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let obs_headers = sse::to_obs_headers(self.headers);
        let obs_query = sse::to_obs_query(&self.t.query);
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(Operation::PutObject, self.caller, &facts, key, &obs_headers)
                    .with_query(&obs_query),
            )
            .await?;
        self.check_acl(&facts, &decision.policy)?;
        let file = uuid::Uuid::new_v4().to_string();
        let sealing = self
            .sealing(&facts, key, &file, &decision.encryption, ObjectKind::Single)
            .await?
            .map(|(k, c)| Sealing::Single(k, c));
        let temp = self.gw.store.temp_path();
        let written = self.receive_body(body, temp.clone(), sealing).await;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        let meta = user_metadata(self.headers);
        let obj = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            file,
            size: written.size,
            etag: written.md5_hex.clone(),
            content_type: self
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            owner: self.caller.domain.clone(),
            kms_key_id: decision.encryption.key_id().map(|k| k.to_string()),
            meta,
            modified_ms: now_ms(),
            multipart: None,
        };
        let gw = Arc::clone(self.gw);
        self.gw
            .tasks
            .spawn_blocking(move || gw.store.commit_object(&temp, &obj))
            .await
            .map_err(ApiError::internal)??;
        let mut r = Response::new(empty());
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", written.md5_hex)) {
            h.insert(header::ETAG, v);
        }
        h.extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        Ok(r)
    }

    /// Reads the request body (decoding `aws-chunked`, checking what the signature covers) into
    /// `temp` through a blocking task, sealed when `sealing` is given. `Err` leaves `temp` for the
    /// caller to remove.
    async fn receive_body(
        &self,
        mut body: Incoming,
        temp: PathBuf,
        sealing: Option<Sealing>,
    ) -> Result<Written, ApiError> {
        let declared = declared_length(self.headers)?;
        if declared.is_some_and(|n| n > MAX_PUT) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "EntityTooLarge",
                "your proposed upload exceeds the maximum allowed object size (5 GiB)",
            ));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
        let writer = self
            .gw
            .tasks
            .spawn_blocking(move || write_body(&temp, sealing, rx));
        let mut decoder = match &self.who.body {
            BodyCheck::Chunked(c) => Some(ChunkDecoder::new(c.clone())),
            _ => None,
        };
        let mut sha = Sha256::new();
        // The additional checksum, from a header now or from the trailer the client announces.
        let mut header_checksum: Option<(String, String)> = None;
        for (name, value) in self.headers {
            if let Some(_alg) = Algorithm::of_name(name.as_str()).map_err(ApiError::bad)? {
                header_checksum = Some((
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        let announced = self
            .headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase());
        let checksum_name = match (&header_checksum, &announced) {
            (Some((n, _)), _) => Some(n.clone()),
            (None, Some(t)) => Algorithm::of_name(t)
                .map_err(ApiError::bad)?
                .map(|_| t.clone()),
            (None, None) => None,
        };
        let mut checksum = checksum_name
            .as_deref()
            .map(|n| Algorithm::of_name(n).map(|a| a.map(Checksum::new)))
            .transpose()
            .map_err(ApiError::bad)?
            .flatten();
        let mut total: u64 = 0;
        let feed = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "IncompleteBody",
                        format!("reading the body: {e}"),
                    )
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let data = match &mut decoder {
                    Some(d) => {
                        let mut out = Vec::with_capacity(data.len());
                        d.feed(&data, &mut out).map_err(|e| match e {
                            auth::chunked::ChunkError::Signature => ApiError::new(
                                StatusCode::FORBIDDEN,
                                "SignatureDoesNotMatch",
                                e.to_string(),
                            ),
                            auth::chunked::ChunkError::Malformed(_) => ApiError::new(
                                StatusCode::BAD_REQUEST,
                                "IncompleteBody",
                                e.to_string(),
                            ),
                        })?;
                        Bytes::from(out)
                    }
                    None => data,
                };
                if data.is_empty() {
                    continue;
                }
                sha.update(&data);
                if let Some(c) = &mut checksum {
                    c.update(&data);
                }
                total += data.len() as u64;
                if total > MAX_PUT {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "EntityTooLarge",
                        "your proposed upload exceeds the maximum allowed object size (5 GiB)",
                    ));
                }
                if tx.send(data).await.is_err() {
                    return Err(ApiError::internal("the file writer stopped"));
                }
            }
            if let Some(d) = &decoder {
                d.finish().map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "IncompleteBody", e.to_string())
                })?;
            }
            Ok(())
        };
        let fed: Result<(), ApiError> = feed.await;
        // The writer ends when the sender is gone; an incomplete body is refused here, before
        // anything is committed, and the caller removes the file.
        drop(tx);
        let written = writer.await.map_err(ApiError::internal)?;
        fed?;
        let written = written.map_err(ApiError::internal)?;
        if let Some(n) = declared
            && n != total
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "the body's length does not match its declared length",
            ));
        }
        if let (Some(name), Some(c)) = (checksum_name, checksum) {
            let given = match header_checksum {
                Some((_, v)) => Some(v),
                None => decoder.as_ref().and_then(|d| {
                    d.trailers()
                        .into_iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v)
                }),
            };
            let Some(given) = given else {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    format!("the announced trailer {name} did not arrive"),
                ));
            };
            if c.finish() != given.trim() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "BadDigest",
                    format!("the {name} you specified did not match the calculated checksum"),
                ));
            }
        }
        if let BodyCheck::Sha256(want) = &self.who.body
            && hex::encode(sha.finalize()) != *want
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "the provided x-amz-content-sha256 does not match what was computed",
            ));
        }
        if let Some(md5) = self.headers.get("content-md5") {
            use base64::Engine;
            let given = base64::engine::general_purpose::STANDARD
                .decode(md5.as_bytes())
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidDigest",
                        "Content-MD5 is not base64",
                    )
                })?;
            if hex::encode(given) != written.md5_hex {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "BadDigest",
                    "the Content-MD5 you specified did not match what we received",
                ));
            }
        }
        Ok(written)
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        head: bool,
    ) -> Result<Response<Body>, ApiError> {
        let row = self.bucket_row(bucket)?;
        let facts = self.facts(&row)?;
        let obj = self
            .gw
            .store
            .object(bucket, key)?
            .ok_or_else(ApiError::no_key)?;
        let stored = stored_facts(&obj)?;
        let op = if head {
            Operation::HeadObject
        } else {
            Operation::GetObject
        };
        let obs_headers = sse::to_obs_headers(self.headers);
        let decision = self
            .gw
            .adapter
            .decide(
                &ObsRequest::new(op, self.caller, &facts, key, &obs_headers).with_stored(&stored),
            )
            .await?;
        self.check_acl(&facts, &decision.policy)?;
        let etag = format!("\"{}\"", obj.etag);
        if let Some(m) = self
            .headers
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            && !etag_matches(m, &obj.etag)
        {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "at least one of the preconditions you specified did not hold",
            ));
        }
        let not_modified = self
            .headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| etag_matches(m, &obj.etag));
        let range = match self
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
        {
            Some(r) if !not_modified => parse_range(r, obj.size)?,
            _ => None,
        };
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(obj.modified_ms).unwrap_or(0)),
        )) {
            headers.insert(header::LAST_MODIFIED, v);
        }
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let ct = obj.content_type.as_deref().unwrap_or("binary/octet-stream");
        if let Ok(v) = HeaderValue::from_str(ct) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        let prefix = self.who.dialect.prefix();
        for (n, v) in &obj.meta {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(format!("{prefix}meta-{n}").as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(name, value);
            }
        }
        headers.extend(sse::response_headers(
            &decision.response_headers,
            self.dialect(),
        ));
        if not_modified {
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            *r.headers_mut() = headers;
            return Ok(r);
        }
        let (status, span) = match range {
            Some(rg) => {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "bytes {}-{}/{}",
                    rg.start,
                    rg.end - 1,
                    obj.size
                )) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                (StatusCode::PARTIAL_CONTENT, rg)
            }
            None => (StatusCode::OK, 0..obj.size),
        };
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(span.end - span.start),
        );
        if head {
            let mut r = Response::new(empty());
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            return Ok(r);
        }
        let path = self.gw.store.object_path(&obj.file);
        let opening = self.opening(&facts, &obj, &stored).await?;
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUE);
        let whole = span.start == 0 && span.end == obj.size;
        self.gw
            .tasks
            .spawn_blocking(move || read_body(&path, opening, span, whole, tx));
        // The first piece decides the status: a failure before any byte is an error response.
        let first = match rx.recv().await {
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => {
                return Err(ApiError::internal(format!("reading {bucket}/{key}: {e}")));
            }
            None => None,
        };
        let stream = futures::stream::iter(first.map(Ok))
            .chain(futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            }))
            .map(|item| item.map(Frame::data));
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        *r.status_mut() = status;
        *r.headers_mut() = headers;
        Ok(r)
    }
}

fn malformed_xml(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MalformedXML", message)
}

/// A configuration document's body (at most 64 KiB, as text).
async fn small_body(body: Incoming, limit: usize) -> Result<String, ApiError> {
    let limited = http_body_util::Limited::new(body, limit);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| ApiError::bad(format!("reading the body: {e}")))?
        .to_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed_xml("the body is not UTF-8"))
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
}

fn object_context(bucket: &str, key: &str, version: &str) -> Result<ObjectContext, ApiError> {
    ObjectContext::new()
        .with("obs:bucket", bucket)
        .and_then(|c| c.with("obs:object", key))
        .and_then(|c| c.with("obs:version", version))
        .map_err(|e| ApiError::bad(format!("the object key cannot be bound: {e}")))
}

fn stored_facts(obj: &ObjectRow) -> Result<StoredObject, ApiError> {
    Ok(StoredObject {
        owner: obj.owner.clone(),
        encryption: stored_encryption(obj.kms_key_id.as_deref())?,
    })
}

/// A stored row's encryption: its full key ID, or plaintext.
fn stored_encryption(kms_key_id: Option<&str>) -> Result<Encryption, ApiError> {
    Ok(match kms_key_id {
        None => Encryption::Plaintext,
        Some(k) => Encryption::Kms {
            key_id: k.parse::<FullKeyId>().map_err(ApiError::internal)?,
        },
    })
}

fn etag_matches(condition: &str, etag: &str) -> bool {
    condition
        .split(',')
        .map(|c| c.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|c| c == "*" || c == etag)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n`; `None` for a header S3 ignores (several ranges).
fn parse_range(h: &str, size: u64) -> Result<Option<std::ops::Range<u64>>, ApiError> {
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "the requested range is not satisfiable",
        )
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(n)..size
        }
        (a, "") => {
            let a: u64 = a.parse().map_err(|_| unsatisfiable())?;
            a..size
        }
        (a, b) => {
            let a: u64 = a.parse().map_err(|_| unsatisfiable())?;
            let b: u64 = b.parse().map_err(|_| unsatisfiable())?;
            if b < a {
                return Ok(None);
            }
            a..(b + 1).min(size)
        }
    };
    if range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let name = if headers.contains_key("x-amz-decoded-content-length") {
        "x-amz-decoded-content-length"
    } else if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().starts_with(b"aws-chunked"))
    {
        return Ok(None);
    } else {
        "content-length"
    };
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad(format!("{name} is not a number")))
        })
        .transpose()
}

fn user_metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, v) in headers {
        let n = n.as_str();
        let name = n
            .strip_prefix("x-obs-meta-")
            .or_else(|| n.strip_prefix("x-amz-meta-"));
        if let (Some(name), Ok(v)) = (name, v.to_str()) {
            out.push((name.to_owned(), v.to_owned()));
        }
    }
    out
}

/// How to write an object's plaintext: sealed as a single object, or as one part of an
/// SSE-KMS multipart upload.
enum Sealing {
    Single(ObjectKey, ObjectContext),
    Part(Box<Upload>, u32),
}

/// How to read a stored SSE-KMS object: its key checked, and for a multipart object its
/// manifest authenticated.
enum Opened {
    Single(ObjectKey, ObjectContext),
    Multipart(Box<MultipartObject>),
}

/// What the writer produced.
#[derive(Debug)]
struct Written {
    size: u64,
    md5_hex: String,
    /// For a part of an SSE-KMS multipart upload: what the manifest needs.
    part: Option<PartInfo>,
}

/// Where an object's plaintext goes: `temp`, sealed or not, with its MD5 and length counted.
/// [`Sink::finish`] seals the last chunk and fsyncs the file.
enum SinkOut {
    Plain(std::io::BufWriter<std::fs::File>),
    Sealed(Box<envelope::Encryptor<std::io::BufWriter<std::fs::File>>>),
    Part(Box<PartWriter<std::io::BufWriter<std::fs::File>>>),
}

struct Sink {
    out: SinkOut,
    md5: Md5,
    size: u64,
}

fn envelope_io(e: envelope::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Sink {
    fn create(temp: &std::path::Path, sealing: Option<Sealing>) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)?;
        let buffered = std::io::BufWriter::with_capacity(IO_CHUNK, file);
        let out = match sealing {
            None => SinkOut::Plain(buffered),
            Some(Sealing::Single(key, ctx)) => SinkOut::Sealed(Box::new(
                envelope::Encryptor::new(&key, &ctx, buffered, Backend::default())
                    .map_err(envelope_io)?,
            )),
            Some(Sealing::Part(upload, number)) => SinkOut::Part(Box::new(
                upload.part_writer(number, buffered).map_err(envelope_io)?,
            )),
        };
        Ok(Self {
            out,
            md5: Md5::new(),
            size: 0,
        })
    }

    fn finish(self) -> std::io::Result<Written> {
        let (buffered, part) = match self.out {
            SinkOut::Plain(b) => (b, None),
            SinkOut::Sealed(e) => (e.finish().map_err(envelope_io)?, None),
            SinkOut::Part(p) => {
                let (b, info) = p.finish().map_err(envelope_io)?;
                (b, Some(info))
            }
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(Written {
            size: self.size,
            md5_hex: hex::encode(self.md5.finalize()),
            part,
        })
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.md5.update(data);
        self.size += data.len() as u64;
        match &mut self.out {
            SinkOut::Plain(w) => w.write_all(data)?,
            SinkOut::Sealed(w) => w.write_all(data)?,
            SinkOut::Part(w) => w.write_all(data)?,
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the body's pieces from `rx` to `temp`. Ends when the sender goes away; the caller
/// decides whether the body was complete and removes the file on any error.
fn write_body(
    temp: &std::path::Path,
    sealing: Option<Sealing>,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<Written> {
    let mut sink = Sink::create(temp, sealing)?;
    while let Some(b) = rx.blocking_recv() {
        sink.write_all(&b)?;
    }
    sink.finish()
}

/// Copies an object's plaintext (decrypting with `opening`) into `temp` (sealing with `sealing`).
fn copy_object_file(
    source: &std::path::Path,
    opening: Option<Opened>,
    size: u64,
    temp: &std::path::Path,
    sealing: Option<Sealing>,
) -> std::io::Result<Written> {
    let mut sink = Sink::create(temp, sealing)?;
    copy_plaintext(source, opening, 0..size, true, &mut sink)?;
    sink.finish()
}

/// Writes `span` of the object's plaintext to `w`; only authenticated bytes reach `w`.
fn copy_plaintext<W: Write>(
    path: &std::path::Path,
    opening: Option<Opened>,
    span: std::ops::Range<u64>,
    whole: bool,
    w: &mut W,
) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    match opening {
        None => {
            f.seek(SeekFrom::Start(span.start))?;
            std::io::copy(&mut f.take(span.end - span.start), w)?;
        }
        Some(Opened::Single(key, ctx)) if whole => {
            f.seek(SeekFrom::Start(key.header().len() as u64))?;
            let input = std::io::BufReader::with_capacity(IO_CHUNK, f);
            envelope::Decryptor::with_key(&key, &ctx, input, Backend::default())
                .map_err(envelope_io)?
                .copy_to(w)
                .map_err(envelope_io)?;
        }
        Some(Opened::Single(key, ctx)) => {
            envelope::open_range_with_key(&key, &ctx, &mut f, span, w, Backend::default())
                .map_err(envelope_io)?;
        }
        Some(Opened::Multipart(m)) if whole => {
            let input = std::io::BufReader::with_capacity(IO_CHUNK, f);
            m.copy_to(input, w).map_err(envelope_io)?;
        }
        Some(Opened::Multipart(m)) => {
            m.read_range(&mut f, span, w).map_err(envelope_io)?;
        }
    }
    Ok(())
}

/// A `Write` that hands the bytes to the response body in [`IO_CHUNK`] pieces.
struct ChannelWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(IO_CHUNK),
        ));
        self.tx.blocking_send(Ok(b)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= IO_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Streams `span` of the object's plaintext into `tx`; an error goes down the channel, which
/// aborts the response (never a wrong byte: the decryptor releases only authenticated chunks).
fn read_body(
    path: &std::path::Path,
    opening: Option<Opened>,
    span: std::ops::Range<u64>,
    whole: bool,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut w = ChannelWriter {
        buf: Vec::with_capacity(IO_CHUNK),
        tx: tx.clone(),
    };
    let result = copy_plaintext(path, opening, span, whole, &mut w).and_then(|()| w.flush());
    if let Err(e) = result {
        tracing::error!(path = %path.display(), error = %e, "reading an object failed; the response is aborted");
        let _ = tx.blocking_send(Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=95-200", 100).unwrap(), Some(95..100));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert_eq!(parse_range("bytes=0-1,3-4", 100).unwrap(), None);
    }

    #[test]
    fn hosts_name_buckets_only_under_the_suffix() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("b1.obs.localhost:9000"),
        );
        assert_eq!(host_bucket(&h, "obs.localhost").as_deref(), Some("b1"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9000"));
        assert_eq!(host_bucket(&h, "obs.localhost"), None);
        h.insert(header::HOST, HeaderValue::from_static("obs.localhost"));
        assert_eq!(host_bucket(&h, "obs.localhost"), None);
    }
}
