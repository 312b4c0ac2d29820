//! The operations: addressing, authentication, the adapter's decision, then the store.
//!
//! Every response carries `x-obs-request-id` and `x-amz-request-id`; every refusal is an
//! `<Error>` document (no body for HEAD). A refused or broken upload stores nothing: bodies go to
//! a temporary file that only a complete, verified upload commits ([`crate::store`]).
//!
//! This module: the shared state, the error shape, addressing, authentication and routing.
//! `buckets` (bucket operations and listings), `objects` (put, get, head, copy, delete),
//! `multipart`, `post` (form uploads), `cors` (bucket CORS, preflights), `quota` (OBS's bucket
//! quota), `lifecycle` (bucket lifecycle rules), `public_access` (the public access block), `attributes` (GetObjectAttributes), `files` (the blocking file side of bodies),
//! `listing` (a listing's page of keys and common prefixes).

use std::sync::Arc;

use bytes::Bytes;
use envelope::ObjectContext;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use kms_proto::key_id::{FullKeyId, RegionId};
use kms_server::caught::caught;
use obs_adapter::{
    AdapterError, BucketFacts, BucketPolicy, Caller, DefaultEncryption, Encryption, GrpcKeyService,
    ObsAdapter, PolicyVerdict, StoredObject,
};
use tokio_util::task::TaskTracker;

use crate::auth::{self, Authenticated, Dialect, RequestView};
use crate::clock::{Clock, wall_ms};
use crate::credentials::Credentials;
use crate::expiry::{self, ExpiryError};
use crate::lifecycle::Rule;
use crate::sse;
use crate::store::{BucketRow, ObjectRow, Store, StoreError};
use crate::xml;

mod acl;
mod append;
mod attributes;
mod buckets;
mod conditions;
mod cors;
mod files;
mod lifecycle;
mod listing;
mod metadata;
mod multipart;
mod object_lock;
mod objects;
mod post;
mod public_access;
mod quota;
mod routes;
mod tagging;
mod unkept;
mod versions;

use routes::{BucketOp, ObjectOp, Op};

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
    /// The time objects are stamped with and expire by.
    pub clock: Clock,
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
    /// Headers the refusal answers beside its document (a delete marker's).
    headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: None,
        }
    }

    /// The refusal, answering `headers` too.
    fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Some(Box::new(headers));
        self
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

impl ApiError {
    /// The adapter's refusal, its message naming the parameters in `dialect` (the request's):
    /// the adapter names the OBS ones, which an S3 client did not send.
    fn adapter(e: AdapterError, dialect: Dialect) -> Self {
        let (status, code) = e.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %e, "the adapter failed");
        }
        let obs = e.to_obs_error("");
        Self::new(status, code, sse::message_in(&obs.message, dialect))
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
            StoreError::UploadsInProgress => ApiError::new(
                StatusCode::CONFLICT,
                "BucketNotEmpty",
                "the bucket has multipart uploads in progress: abort or complete them first",
            ),
            StoreError::BucketExists { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "BucketAlreadyExists",
                "the requested bucket name is not available",
            ),
            StoreError::ConditionNotMet { found } => conditions::not_met(found),
            // S3's answer to a removal or a change an object lock does not allow.
            StoreError::Locked => ApiError::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access Denied because object protected by object lock",
            ),
            StoreError::QuotaExceeded => ApiError::new(
                StatusCode::FORBIDDEN,
                "InsufficientStorageSpace",
                "Insufficient storage space: the write would take the bucket past its quota",
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<ExpiryError> for ApiError {
    fn from(e: ExpiryError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidArgument", e.to_string())
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

/// `204 No Content`.
fn no_content() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Serves one request.
pub async fn handle(gw: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let id = request_id();
    let is_head = req.method() == Method::HEAD;
    let declares_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let t = target(&req, &gw.host_suffix);
    let resource = t.resource();
    // A page's request from another origin: its answer carries what the bucket's CORS allows.
    let cross_origin = match (&t.bucket, req.headers().get(header::ORIGIN)) {
        (Some(b), Some(o)) if req.method() != Method::OPTIONS => o
            .to_str()
            .ok()
            .map(|o| (b.clone(), o.to_owned(), req.method().clone())),
        _ => None,
    };
    let mut resp = match caught("obs-gateway", route(&gw, req, t), panicked).await {
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
            if let Some(h) = e.headers {
                r.headers_mut().extend(*h);
            }
            r
        }
    };
    // A refusal can leave the body unread. hyper then reads what follows on the connection as
    // that body, and a client that withheld the body after `Expect: 100-continue` (botocore
    // does) sends its next request there: that request would be cut and misread. So the
    // connection ends with the refusal.
    if declares_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some((bucket, origin, method)) = cross_origin {
        cors::on_answer(&gw, &bucket, &origin, &method, &mut resp);
    }
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

/// The answer to a request whose handler panicked ([`caught`] logs the panic): S3's internal
/// error (500 `InternalError`) instead of a connection closed without an answer. Nothing is left
/// half-stored by the unwinding: the store's transactions roll back when dropped and its locks
/// are taken again after a panic (`Store::lock`).
fn panicked() -> Result<Response<Body>, ApiError> {
    Err(ApiError::internal("a handler panicked"))
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
    // A browser's preflight is unsigned.
    if method == Method::OPTIONS {
        return cors::preflight(gw, &parts.headers, &t);
    }
    // The request's time; no call from then on finds an object that has expired by it.
    let clock_offset_ms = gw.clock.offset_ms().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            e.to_string(),
        )
    })?;
    gw.store.expire(wall_ms().saturating_add(clock_offset_ms))?;
    // A POST form upload carries its signature in the form.
    if method == Method::POST
        && t.key.is_none()
        && let Some(bucket) = &t.bucket
        && post::is_form(&parts.headers)
    {
        return post::post_object(gw, &parts.headers, &t, bucket, body, clock_offset_ms).await;
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
        ApiError::new(e.status(), e.code(), e.to_string())
    })?;
    if let Err(what) = who.check_coverage(&parts.headers, &view.query()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("{what} is not covered by the request's signature: sign it, or leave it out"),
        ));
    }
    let caller = Caller::new(who.credential.domain.clone());
    let op = Op::of(&method, &t, &parts.headers)?;
    // Read where it gives an object its life, before any body is.
    let expires_days = match op {
        Op::Object(
            _,
            _,
            ObjectOp::Put
            | ObjectOp::Copy
            | ObjectOp::InitiateUpload
            | ObjectOp::Append
            | ObjectOp::SetMetadata,
        ) => expiry::days(&parts.headers)?,
        _ => None,
    };
    let ctx = Ctx {
        gw,
        who: &who,
        caller: &caller,
        headers: &parts.headers,
        t: &t,
        clock_offset_ms,
        expires_days,
    };
    match op {
        Op::Bucket(b, o) if o != BucketOp::Create => ctx.check_expected_owner(b)?,
        Op::Object(
            b,
            _,
            ObjectOp::Put | ObjectOp::Copy | ObjectOp::InitiateUpload | ObjectOp::Append,
        ) => {
            ctx.check_expected_owner(b)?;
            ctx.new_object_acl(b)?;
        }
        Op::Object(b, ..) => ctx.check_expected_owner(b)?,
        _ => {}
    }
    match op {
        Op::ListBuckets => ctx.list_buckets(),
        Op::Bucket(b, op) => match op {
            BucketOp::PutAcl => ctx.put_acl(b, None, body).await,
            BucketOp::GetAcl => ctx.get_acl(b, None),
            BucketOp::PutTagging => ctx.put_bucket_tagging(b, body).await,
            BucketOp::GetTagging => ctx.get_bucket_tagging(b),
            BucketOp::DeleteTagging => ctx.delete_bucket_tagging(b),
            BucketOp::PutEncryption => ctx.put_encryption(b, body).await,
            BucketOp::GetEncryption => ctx.get_encryption(b),
            BucketOp::DeleteEncryption => ctx.delete_encryption(b),
            BucketOp::PutPolicy => ctx.put_policy(b, body).await,
            BucketOp::GetPolicy => ctx.get_policy(b),
            BucketOp::DeletePolicy => ctx.delete_policy(b),
            BucketOp::PutCors => ctx.put_cors(b, body).await,
            BucketOp::GetCors => ctx.get_cors(b),
            BucketOp::DeleteCors => ctx.delete_cors(b),
            BucketOp::PutQuota => ctx.put_quota(b, body).await,
            BucketOp::GetQuota => ctx.get_quota(b),
            BucketOp::PutLifecycle => ctx.put_lifecycle(b, body).await,
            BucketOp::GetLifecycle => ctx.get_lifecycle(b),
            BucketOp::DeleteLifecycle => ctx.delete_lifecycle(b),
            BucketOp::PutStorageClass => ctx.put_storage_class(b, body).await,
            BucketOp::PutPublicAccessBlock => ctx.put_public_access_block(b, body).await,
            BucketOp::GetPublicAccessBlock => ctx.get_public_access_block(b),
            BucketOp::DeletePublicAccessBlock => ctx.delete_public_access_block(b),
            BucketOp::GetPolicyStatus => ctx.get_public_status(b, public_access::Status::Policy),
            BucketOp::GetBucketStatus => ctx.get_public_status(b, public_access::Status::Bucket),
            BucketOp::GetLocation => ctx.get_location(b),
            BucketOp::GetVersioning => ctx.get_versioning(b),
            BucketOp::PutVersioning => ctx.put_versioning(b, body).await,
            BucketOp::PutObjectLock => ctx.put_object_lock(b, body).await,
            BucketOp::GetObjectLock => ctx.get_object_lock(b),
            BucketOp::GetStorageInfo => ctx.get_storage_info(b),
            BucketOp::Create => ctx.create_bucket(b, body).await,
            BucketOp::Head => ctx.head_bucket(b),
            BucketOp::ListObjects => ctx.list_objects(b),
            BucketOp::ListUploads => ctx.list_uploads(b),
            BucketOp::ListVersions => ctx.list_versions(b),
            BucketOp::GetUnkept(what) => ctx.get_unkept(b, what),
            BucketOp::Delete => ctx.delete_bucket(b),
            BucketOp::DeleteObjects => ctx.delete_objects(b, body).await,
        },
        Op::Object(b, k, op) => match op {
            ObjectOp::UploadPart => ctx.upload_part(b, k, body).await,
            ObjectOp::PutAcl => ctx.put_acl(b, Some(k), body).await,
            ObjectOp::GetAcl => ctx.get_acl(b, Some(k)),
            ObjectOp::PutTagging => ctx.put_tagging(b, k, body).await,
            ObjectOp::GetTagging => ctx.get_tagging(b, k),
            ObjectOp::DeleteTagging => ctx.delete_tagging(b, k),
            ObjectOp::Copy => ctx.copy_object(b, k).await,
            ObjectOp::InitiateUpload => ctx.initiate_upload(b, k).await,
            ObjectOp::CompleteUpload => ctx.complete_upload(b, k, body).await,
            ObjectOp::AbortUpload => ctx.abort_upload(b, k),
            ObjectOp::ListParts => ctx.list_parts(b, k),
            ObjectOp::Append => ctx.append_object(b, k, body).await,
            ObjectOp::SetMetadata => ctx.set_object_metadata(b, k),
            ObjectOp::GetAttributes => ctx.get_attributes(b, k).await,
            ObjectOp::PutRetention => ctx.put_retention(b, k, body).await,
            ObjectOp::GetRetention => ctx.get_retention(b, k),
            ObjectOp::PutLegalHold => ctx.put_legal_hold(b, k, body).await,
            ObjectOp::GetLegalHold => ctx.get_legal_hold(b, k),
            ObjectOp::Put => ctx.put_object(b, k, body).await,
            ObjectOp::Get => ctx.get_object(b, k, false).await,
            ObjectOp::Head => ctx.get_object(b, k, true).await,
            ObjectOp::Delete => ctx.delete_object(b, k),
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

struct Ctx<'a> {
    gw: &'a Arc<Gateway>,
    who: &'a Authenticated,
    caller: &'a Caller,
    headers: &'a HeaderMap,
    t: &'a Target,
    /// How far the gateway's clock is ahead of the wall clock for this request.
    clock_offset_ms: i64,
    /// The life in days the request gives the object it writes (`x-obs-expires`).
    expires_days: Option<u32>,
}

/// Refuses a request whose `header` (`x-amz-expected-bucket-owner`, or
/// `x-amz-source-expected-bucket-owner` for a copy's source) names another owner than the
/// bucket's, as S3 does: a client that states whose bucket it means never writes into or reads
/// from someone else's bucket of that name.
fn check_owner_is(headers: &HeaderMap, header: &str, owner: &str) -> Result<(), ApiError> {
    match headers.get(header) {
        Some(expected) if expected.as_bytes() != owner.as_bytes() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("the bucket's owner is not the {header} the request names"),
        )),
        _ => Ok(()),
    }
}

impl Ctx<'_> {
    /// The gateway's time now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64 {
        wall_ms().saturating_add(self.clock_offset_ms)
    }

    /// When the object this request writes at `modified_ms` expires, if the request says.
    fn expires_ms(&self, modified_ms: i64) -> Option<i64> {
        self.expires_days
            .map(|d| expiry::expires_ms(modified_ms, d))
    }

    /// Answers when `obj` expires (`x-obs-expiration` / `x-amz-expiration`), if it does: its own
    /// expiry, else the first its bucket's lifecycle `rules` give it, with the rule's ID.
    fn put_expiration(&self, headers: &mut HeaderMap, obj: &ObjectRow, rules: &[Rule]) {
        let (at, rule) = match obj.expires_ms {
            Some(at) => (at, None),
            None => match crate::lifecycle::object_expiry(
                rules,
                &obj.key,
                obj.size,
                &obj.tags,
                obj.modified_ms,
            ) {
                Some((at, rule)) => (at, Some(rule)),
                None => return,
            },
        };
        if let Ok(v) = HeaderValue::from_str(&expiry::expiration_value(at, rule))
            && let Ok(name) = http::HeaderName::from_bytes(
                format!("{}expiration", self.who.dialect.prefix()).as_bytes(),
            )
        {
            headers.insert(name, v);
        }
    }

    /// [`check_owner_is`] for the bucket a request names, when it exists (the operation answers
    /// a missing bucket as it does without the header).
    fn check_expected_owner(&self, bucket: &str) -> Result<(), ApiError> {
        if !self.headers.contains_key("x-amz-expected-bucket-owner") {
            return Ok(());
        }
        match self.gw.store.bucket(bucket)? {
            Some(row) => check_owner_is(
                self.headers,
                "x-amz-expected-bucket-owner",
                row.owner.as_str(),
            ),
            None => Ok(()),
        }
    }

    /// Refuses the ACL headers of a new object unless they grant the bucket's owner (who owns
    /// every object) full control and nobody anything (`acl::check_headers`). The bucket is read
    /// only for a grant header, which names the owner: a canned ACL needs no owner, and most
    /// writes carry neither. A bucket that does not exist is left to the operation to answer.
    fn new_object_acl(&self, bucket: &str) -> Result<(), ApiError> {
        let grants = self.headers.keys().any(|n| {
            let n = n.as_str();
            n.starts_with("x-amz-grant-") || n.starts_with("x-obs-grant-")
        });
        let owner = if grants {
            self.gw.store.bucket(bucket)?.map(|row| row.owner)
        } else {
            None
        };
        acl::check_headers(self.headers, owner.as_ref())
    }

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

    /// The current version of an object (`versionId`, when given, must name it), for a call
    /// that changes what only the current version keeps (OBS's metadata).
    fn existing_object(&self, bucket: &str, key: &str) -> Result<ObjectRow, ApiError> {
        self.check_current_version(bucket, key)?;
        self.gw
            .store
            .object(bucket, key)?
            .ok_or_else(ApiError::no_key)
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
        if let Some(block) = &row.public_access_block {
            facts = facts.with_restrict_public_buckets(block.restrict_public_buckets);
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

    /// The adapter's refusal of this request, in the request's dialect.
    fn refused(&self, e: AdapterError) -> ApiError {
        ApiError::adapter(e, self.dialect())
    }

    /// The header prefix of the request's signature (`x-obs-` or `x-amz-`): the one the OBS SDK
    /// reads its own headers under in each of its modes.
    fn dialect_prefix(&self) -> &'static str {
        self.who.dialect.prefix()
    }
}

fn malformed_xml(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MalformedXML", message)
}

/// The most bytes of a configuration document (a policy, a batch delete, an ACL, tags, ...).
const MAX_DOCUMENT: usize = 64 * 1024;

impl Ctx<'_> {
    /// A configuration document's body (at most `limit` bytes, as text), held to what signed it
    /// as an object's body is ([`check_digests`]). An `aws-chunked` document is refused: clients
    /// send these whole, and a body that is not checked could have been changed on the way.
    async fn document(&self, body: Incoming, limit: usize) -> Result<String, ApiError> {
        self.read_document(body, limit, true).await
    }

    /// [`Ctx::document`]; with `body_checksum` false an `x-amz-checksum-*` header is not the
    /// body's but the object's (CompleteMultipartUpload), and is left to the caller.
    async fn read_document(
        &self,
        body: Incoming,
        limit: usize,
        body_checksum: bool,
    ) -> Result<String, ApiError> {
        if matches!(self.who.body, auth::BodyCheck::Chunked(_)) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "a configuration document is sent whole, not aws-chunked",
            ));
        }
        let limited = http_body_util::Limited::new(body, limit);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| ApiError::bad(format!("reading the body: {e}")))?
            .to_bytes();
        let mut checksum = if body_checksum {
            header_checksum(self.headers)?
        } else {
            None
        };
        if let Some((_, _, c)) = &mut checksum {
            c.update(&bytes);
        }
        check_digests(
            self.headers,
            &self.who.body,
            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            &hex::encode(<md5::Md5 as md5::Digest>::digest(&bytes)),
            checksum.map(|(name, given, c)| (name, Some(given), c)),
        )?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed_xml("the body is not UTF-8"))
    }
}

/// A kept checksum (its header's name, `x-amz-checksum-crc32`, and its value) as its XML
/// element in S3's documents, `<ChecksumCRC32>value</ChecksumCRC32>`; none for OBS's
/// CRC64-ECMA, which S3's documents do not have (OBS answers it in a header).
fn checksum_element((name, value): &(String, String)) -> Option<String> {
    let element = match crate::checksum::Algorithm::of_name(name).ok()?? {
        crate::checksum::Algorithm::Crc64Ecma => return None,
        alg => alg.element(),
    };
    Some(format!("<{element}>{}</{element}>", xml::escape(value)))
}

/// The additional checksum a body carries: the `x-amz-checksum-*` header (its name, its value),
/// or the checksum trailer `x-amz-trailer` announces (its name; the value follows the body), with
/// a fresh state of its algorithm.
fn body_checksum(
    headers: &HeaderMap,
) -> Result<Option<(String, Option<String>, crate::checksum::Checksum)>, ApiError> {
    if let Some((name, value, c)) = header_checksum(headers)? {
        return Ok(Some((name, Some(value), c)));
    }
    let Some(trailer) = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return Ok(None);
    };
    Ok(crate::checksum::Algorithm::of_name(&trailer)
        .map_err(ApiError::bad)?
        .map(|alg| (trailer, None, crate::checksum::Checksum::new(alg))))
}

/// The `x-amz-checksum-*` header a request carries: its name, its value and a fresh state of its
/// algorithm.
fn header_checksum(
    headers: &HeaderMap,
) -> Result<Option<(String, String, crate::checksum::Checksum)>, ApiError> {
    let mut found = None;
    for (name, value) in headers {
        if let Some(alg) =
            crate::checksum::Algorithm::of_name(name.as_str()).map_err(ApiError::bad)?
        {
            found = Some((
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().trim().to_owned(),
                crate::checksum::Checksum::new(alg),
            ));
        }
    }
    Ok(found)
}

/// Holds a received body to what its request says of it: the signed SHA-256 of SigV4
/// (`body`), `Content-MD5` (which SigV2 signs), and the additional checksum `checksum`: its name,
/// the value given (from a header or a trailer; `None` when an announced trailer did not arrive)
/// and the state fed with the body.
fn check_digests(
    headers: &HeaderMap,
    body: &auth::BodyCheck,
    sha256_hex: &str,
    md5_hex: &str,
    checksum: Option<(String, Option<String>, crate::checksum::Checksum)>,
) -> Result<(), ApiError> {
    if let Some((name, given, c)) = checksum {
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
    if let auth::BodyCheck::Sha256(want) = body
        && sha256_hex != want
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "the provided x-amz-content-sha256 does not match what was computed",
        ));
    }
    if let Some(md5) = headers.get("content-md5") {
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
        if hex::encode(given) != md5_hex {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "BadDigest",
                "the Content-MD5 you specified did not match what we received",
            ));
        }
    }
    Ok(())
}

/// OBS's bucket naming rules (S3's, and stricter on `-.`): 3 to 63 lower-case letters, digits,
/// `-` and `.`, starting and ending with a letter or digit, no `..`, `-.` or `.-`, and not an IPv4
/// address.
fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
        && !["..", "-.", ".-"].iter().any(|s| name.contains(s))
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

/// The longest object key, in bytes of UTF-8, as in OBS and S3.
const MAX_KEY_BYTES: usize = 1024;

/// Refuses a new object's key longer than [`MAX_KEY_BYTES`].
fn check_new_key(key: &str) -> Result<(), ApiError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "KeyTooLongError",
            format!(
                "the object key is {} bytes long; at most {MAX_KEY_BYTES} are allowed",
                key.len()
            ),
        ));
    }
    Ok(())
}

/// The header `x-amz-{suffix}` or OBS's `x-obs-{suffix}`; given in both dialects (or twice) it
/// is refused (400 `InvalidArgument`), not read from one of them.
fn dialect_header<'h>(
    headers: &'h HeaderMap,
    suffix: &str,
) -> Result<Option<&'h HeaderValue>, ApiError> {
    let given: Vec<_> = ["x-amz-", "x-obs-"]
        .iter()
        .flat_map(|prefix| headers.get_all(format!("{prefix}{suffix}").as_str()))
        .collect();
    match given.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!("x-amz-{suffix} / x-obs-{suffix} is given more than once"),
        )),
    }
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

/// The headers besides `Content-Type` that a write sets and a read answers, as S3 and OBS keep
/// them.
const STORED_HEADERS: [header::HeaderName; 5] = [
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::EXPIRES,
];

/// A write's [`STORED_HEADERS`], each read with `get` (from the request's headers, or a form's
/// fields). `aws-chunked` is how the request's body was sent, not the object's encoding: it is
/// left out, as S3 does.
fn stored_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Vec<(String, String)> {
    STORED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = get(name.as_str())?;
            let value = if *name == header::CONTENT_ENCODING {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.eq_ignore_ascii_case("aws-chunked") && !c.is_empty())
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                value.to_owned()
            };
            (!value.is_empty()).then(|| (name.as_str().to_owned(), value))
        })
        .chain(
            ["x-amz-", "x-obs-"]
                .iter()
                .find_map(|prefix| get(&format!("{prefix}{WEBSITE_REDIRECT}")))
                .map(|v| (WEBSITE_REDIRECT.to_owned(), v.to_owned())),
        )
        .collect()
}

/// [`stored_headers`] of a request.
fn request_stored_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    stored_headers(|n| headers.get(n).and_then(|v| v.to_str().ok()))
}

/// The name an object's website redirect (`x-amz-website-redirect-location` /
/// `x-obs-website-redirect-location`) is kept under among its stored headers, without a
/// prefix: it is answered in the request's dialect.
const WEBSITE_REDIRECT: &str = "website-redirect-location";

/// The longest website redirect S3 takes, in bytes.
const MAX_WEBSITE_REDIRECT: usize = 2048;

/// Checks a write's website redirect, as S3 does: a path on the same site (`/...`) or an
/// `http://`/`https://` URL, at most 2 KiB (400 `InvalidRedirectLocation` otherwise), in one
/// dialect (both at once: 400).
fn check_website_redirect(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = dialect_header(headers, WEBSITE_REDIRECT)?;
    check_redirect_value(value.map(|v| v.to_str().unwrap_or("\u{0}")))
}

/// [`check_website_redirect`] of one value (a header's, or a form field's).
fn check_redirect_value(value: Option<&str>) -> Result<(), ApiError> {
    let Some(v) = value else {
        return Ok(());
    };
    let ok = v.len() <= MAX_WEBSITE_REDIRECT
        && (v.starts_with('/') || v.starts_with("http://") || v.starts_with("https://"));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRedirectLocation",
            "The website redirect location must have a prefix of 'http://' or 'https://' or '/', and be at most 2 KiB",
        ))
    }
}

/// A request's user metadata (`x-obs-meta-*`, `x-amz-meta-*`), by name without the prefix.
fn user_metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    metadata_of(
        headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))),
    )
}

/// The user metadata among name-value pairs (a request's headers, a form's fields): the
/// `x-obs-meta-*` and `x-amz-meta-*` ones, by lower-case name without the prefix.
fn metadata_of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .filter_map(|(n, v)| {
            // Compared in place: only metadata names are copied (every write reads its headers).
            let name = ["x-obs-meta-", "x-amz-meta-"].iter().find_map(|prefix| {
                n.get(..prefix.len())
                    .filter(|head| head.eq_ignore_ascii_case(prefix))
                    .map(|_| &n[prefix.len()..])
            })?;
            Some((name.to_ascii_lowercase(), v.to_owned()))
        })
        .collect()
}

/// The most user metadata an object keeps, in bytes: OBS's limit (S3's is 2 KiB).
const MAX_USER_METADATA: usize = 8 * 1024;

/// Refuses user metadata over [`MAX_USER_METADATA`], measured as OBS and S3 measure it: the
/// bytes of every name (without its prefix) and value. Checked before a body is read, so a
/// refused write stores nothing.
fn check_user_metadata(meta: &[(String, String)]) -> Result<(), ApiError> {
    let size: usize = meta.iter().map(|(n, v)| n.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            format!("the user metadata is {size} bytes; at most {MAX_USER_METADATA} are allowed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn panics() -> Result<Response<Body>, ApiError> {
        panic!("a bug in a handler")
    }

    /// A bug that panics in a handler still gets the client an answer in S3's shape.
    #[test]
    fn a_handler_that_panics_is_answered_as_an_internal_error() {
        use futures::executor::block_on;
        let e = block_on(caught("test", panics(), panicked)).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
        );
        let refused = block_on(caught(
            "test",
            async { Err(ApiError::no_bucket()) },
            panicked,
        ))
        .unwrap_err();
        assert_eq!(
            (refused.status, refused.code),
            (StatusCode::NOT_FOUND, "NoSuchBucket")
        );
        let answered = block_on(caught("test", async { Ok(no_content()) }, panicked)).unwrap();
        assert_eq!(answered.status(), StatusCode::NO_CONTENT);
    }

    #[test]
    fn a_website_redirect_is_a_path_or_an_http_url_of_at_most_2_kib() {
        let long = format!("/{}", "a".repeat(MAX_WEBSITE_REDIRECT));
        // (rule, headers, taken)
        for (rule, headers, taken) in [
            ("none", vec![], true),
            (
                "a path",
                vec![("x-amz-website-redirect-location", "/next.html")],
                true,
            ),
            (
                "an http URL",
                vec![("x-obs-website-redirect-location", "http://a.example/")],
                true,
            ),
            (
                "an https URL",
                vec![("x-amz-website-redirect-location", "https://a.example/")],
                true,
            ),
            (
                "a relative name",
                vec![("x-amz-website-redirect-location", "next.html")],
                false,
            ),
            (
                "another scheme",
                vec![("x-amz-website-redirect-location", "ftp://a.example/")],
                false,
            ),
            (
                "over 2 KiB",
                vec![("x-amz-website-redirect-location", long.as_str())],
                false,
            ),
            (
                "both dialects",
                vec![
                    ("x-amz-website-redirect-location", "/a"),
                    ("x-obs-website-redirect-location", "/a"),
                ],
                false,
            ),
        ] {
            let mut h = HeaderMap::new();
            for (n, v) in headers {
                h.insert(n, HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(check_website_redirect(&h).is_ok(), taken, "{rule}");
            if taken {
                let kept: Vec<_> = request_stored_headers(&h)
                    .into_iter()
                    .filter(|(n, _)| n == WEBSITE_REDIRECT)
                    .collect();
                assert_eq!(kept.len(), usize::from(!h.is_empty()), "{rule}: kept");
            }
        }
    }

    #[test]
    fn a_write_keeps_its_stored_headers_and_not_the_aws_chunked_encoding() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("cache-control", "max-age=5"),
            ("content-encoding", "aws-chunked, gzip"),
            ("x-amz-meta-a", "b"),
            ("content-length", "3"),
        ] {
            h.insert(n, HeaderValue::from_static(v));
        }
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            request_stored_headers(&h),
            vec![
                pair("cache-control", "max-age=5"),
                pair("content-encoding", "gzip")
            ]
        );
        h.insert("content-encoding", HeaderValue::from_static("aws-chunked"));
        assert_eq!(
            request_stored_headers(&h),
            vec![pair("cache-control", "max-age=5")]
        );
    }

    #[test]
    fn bucket_names_follow_the_naming_rules() {
        for ok in [
            "abc",
            "my-bucket.2",
            "a.b.c",
            "1bucket",
            &"a".repeat(63),
            "10.0.0.1x",
        ] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "ab",
            &long,
            "Abc",
            "a_b",
            "-ab",
            "ab-",
            ".ab",
            "ab.",
            "a..b",
            "a-.b",
            "a.-b",
            "192.168.1.1",
            "10.0.0.1",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_new_key_is_at_most_1024_bytes() {
        assert!(check_new_key(&"k".repeat(1024)).is_ok());
        assert!(check_new_key(&"é".repeat(512)).is_ok());
        let e = check_new_key(&"é".repeat(513)).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "KeyTooLongError"));
    }

    #[test]
    fn user_metadata_is_the_meta_prefixed_pairs_by_lower_case_name() {
        let got = metadata_of([
            ("x-amz-meta-a", "1"),
            ("X-Obs-Meta-Colour", "Red"),
            ("x-amz-metadata-directive", "REPLACE"),
            ("content-type", "text/plain"),
            ("x-amz-me", "short"),
        ]);
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(got, vec![pair("a", "1"), pair("colour", "Red")]);
    }

    #[test]
    fn user_metadata_is_at_most_8_kib_of_names_and_values() {
        let meta = |name: &str, value_len: usize| vec![(name.to_owned(), "v".repeat(value_len))];
        assert!(check_user_metadata(&[]).is_ok());
        assert!(check_user_metadata(&meta("a", MAX_USER_METADATA - 1)).is_ok());
        let e = check_user_metadata(&meta("ab", MAX_USER_METADATA - 1)).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "MetadataTooLarge"));
        let two = [meta("a", 4095), meta("b", 4095)].concat();
        assert!(check_user_metadata(&two).is_ok());
        let two = [meta("a", 4096), meta("b", 4095)].concat();
        assert!(check_user_metadata(&two).is_err());
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
