//! The Huawei Cloud KMS REST API, v1.0: `POST /v1.0/{project_id}/kms/<operation>` with a JSON
//! body, and the key tag calls on `{key_id}/tags` paths ([`Operation::route`], `tags`), signed
//! `SDK-HMAC-SHA256` ([`sign`]), answered in Huawei's shapes (`model`, [`error`]). The official
//! SDK (`huaweicloudsdkkms`) works against it unchanged.
//!
//! Who is calling: with a tenants file, the signature's access key decides the tenant and the
//! project in the path (one of that tenant's `projects`) decides the region. Without one (loopback
//! only) signatures are not checked, the project ID in the path is the tenant's domain ID and the
//! region is `--region`.
//!
//! Every operation passes through [`dispatch`], and every call is audited like a gRPC call, under
//! the gRPC operation's name where one corresponds ([`Operation::audit_name`]).

pub mod error;
mod flat;
mod model;
pub mod sign;
mod tags;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::request::Parts;
use kms_proto::ErrorCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use self::error::{HuaweiError, Recode};
use self::sign::{Authorization, SignError};
use super::{ApiState, Faulted, apply_faults};
use crate::audit::AuditLine;
use crate::auth::request_id_from;
use crate::caught::caught;
use crate::json;
use crate::keyring::validate::{MAX_DATA_KEY, PAGE_SIZE};
use crate::keyring::{Caller, Context, Keyring, now_ms};
use crate::store::{Creator, KeyRecord, KeyState};

/// The largest request body, in bytes: the largest request the API has (a 4096-byte
/// `encrypt-data` plaintext, a re-encrypted blob in hex) with room to spare. Larger ones are
/// refused with `KMS.0203` before they are parsed.
pub const MAX_BODY: usize = 64 * 1024;

/// The encryption-context entry that Huawei's `additional_authenticated_data` binds as, so that a
/// ciphertext made over REST with one decrypts over gRPC with this context, and back.
pub const AAD_CONTEXT_KEY: &str = "additional_authenticated_data";

// Header names, made once: a lookup by `&str` parses and hashes the name on every call.
const REQUEST_ID: http::HeaderName = http::HeaderName::from_static(kms_proto::metadata::REQUEST_ID);
const SDK_DATE: http::HeaderName = http::HeaderName::from_static(sign::SDK_DATE);
const PROJECT_ID: http::HeaderName = http::HeaderName::from_static("x-project-id");
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
const JSON_UTF8: http::HeaderValue =
    http::HeaderValue::from_static("application/json;charset=UTF-8");

/// The one encryption algorithm of symmetric keys.
const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

/// The message of a call refused because the audit log cannot be written.
const AUDIT_UNAVAILABLE: &str =
    "the audit log cannot be written; calls are refused until it can (--audit-failure=refuse)";

macro_rules! operations {
    ($($variant:ident = $method:ident $path:literal => $audit:literal,)*) => {
        /// An operation of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $(
                #[doc = concat!("`", $path, "`")]
                $variant,
            )*
        }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// Its path after `/v1.0/{project_id}/kms/`, for example `create-datakey`; a
            /// segment in braces is a parameter (`{key_id}`, a tag's `{key}`).
            pub const fn path(self) -> &'static str {
                match self { $(Operation::$variant => $path,)* }
            }

            /// Its HTTP method.
            pub const fn method(self) -> http::Method {
                match self { $(Operation::$variant => http::Method::$method,)* }
            }

            /// Its name in the audit log: the gRPC operation it corresponds to, where one does.
            pub const fn audit_name(self) -> &'static str {
                match self { $(Operation::$variant => $audit,)* }
            }
        }
    };
}

operations! {
    CreateKey = POST "create-key" => "CreateKey",
    DescribeKey = POST "describe-key" => "DescribeKey",
    ListKeys = POST "list-keys" => "ListKeys",
    EnableKey = POST "enable-key" => "EnableKey",
    DisableKey = POST "disable-key" => "DisableKey",
    ScheduleKeyDeletion = POST "schedule-key-deletion" => "ScheduleKeyDeletion",
    CancelKeyDeletion = POST "cancel-key-deletion" => "CancelKeyDeletion",
    CreateDatakey = POST "create-datakey" => "GenerateDataKey",
    CreateDatakeyWithoutPlaintext = POST "create-datakey-without-plaintext" => "GenerateDataKeyWithoutPlaintext",
    EncryptDatakey = POST "encrypt-datakey" => "Encrypt",
    DecryptDatakey = POST "decrypt-datakey" => "Decrypt",
    EncryptData = POST "encrypt-data" => "Encrypt",
    DecryptData = POST "decrypt-data" => "Decrypt",
    ReEncrypt = POST "re-encrypt" => "ReEncrypt",
    GenRandom = POST "gen-random" => "GenerateRandom",
    UpdateKeyAlias = POST "update-key-alias" => "UpdateKeyAlias",
    UpdateKeyDescription = POST "update-key-description" => "UpdateKeyDescription",
    EnableKeyRotation = POST "enable-key-rotation" => "EnableKeyRotation",
    DisableKeyRotation = POST "disable-key-rotation" => "DisableKeyRotation",
    UpdateKeyRotationInterval = POST "update-key-rotation-interval" => "UpdateKeyRotationInterval",
    GetKeyRotationStatus = POST "get-key-rotation-status" => "GetKeyRotationStatus",
    RotateOnDemand = POST "rotate-on-demand" => "RotateKey",
    CreateKmsTag = POST "{key_id}/tags" => "CreateKmsTag",
    BatchKmsTags = POST "{key_id}/tags/action" => "BatchKmsTags",
    DeleteKmsTag = DELETE "{key_id}/tags/{key}" => "DeleteKmsTag",
    ShowKmsTags = GET "{key_id}/tags" => "ShowKmsTags",
    ListKmsTags = GET "tags" => "ListKmsTags",
    ListKmsByTags = POST "resource_instances/action" => "ListKmsByTags",
}

/// A request's operation and the parameters its path names, as sent (percent-encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    /// The operation.
    pub op: Operation,
    /// The `{key_id}` segment, or empty.
    pub key_id: &'a str,
    /// The `{key}` segment (a tag key), or empty.
    pub tag_key: &'a str,
}

impl Operation {
    /// The operation `method` and the path after `/v1.0/{project_id}/kms/` name, with the
    /// parameters of its path; `None` when no operation has that method and path.
    pub fn route<'a>(method: &http::Method, path: &'a str) -> Option<Route<'a>> {
        let bare = |op| Route {
            op,
            key_id: "",
            tag_key: "",
        };
        // One segment: a comparison of the path per operation, as before there were patterns
        // (the data calls are all here, and a pattern match costs them 2.5% more instructions).
        if !path.contains('/') {
            return Self::ALL
                .iter()
                .copied()
                .find(|o| o.path() == path && o.method() == *method)
                .map(bare);
        }
        Self::ALL.iter().find_map(|&op| {
            let pattern = op.path();
            if !pattern.contains('/') || op.method() != *method {
                return None;
            }
            let mut route = bare(op);
            let mut segments = path.split('/');
            for p in pattern.split('/') {
                let s = segments.next().filter(|s| !s.is_empty())?;
                match p {
                    "{key_id}" => route.key_id = s,
                    "{key}" => route.tag_key = s,
                    literal if literal == s => {}
                    _ => return None,
                }
            }
            segments.next().is_none().then_some(route)
        })
    }

    /// Whether the call changes a key's lifecycle: its audit line is on disk before the reply.
    pub fn changes_lifecycle(self) -> bool {
        matches!(
            self,
            Operation::CreateKey
                | Operation::EnableKey
                | Operation::DisableKey
                | Operation::ScheduleKeyDeletion
                | Operation::CancelKeyDeletion
                | Operation::UpdateKeyAlias
                | Operation::UpdateKeyDescription
                | Operation::EnableKeyRotation
                | Operation::DisableKeyRotation
                | Operation::UpdateKeyRotationInterval
                | Operation::RotateOnDemand
                | Operation::CreateKmsTag
                | Operation::BatchKmsTags
                | Operation::DeleteKmsTag
        )
    }
}

/// The prefix of every path of the API: each one answers in Huawei's error shape.
pub const PREFIX: &str = "/v1.0/";

/// Whether a request path is the API's: its operations, and its version documents (`GET /`,
/// `GET /v1.0`).
pub fn claims(path: &str) -> bool {
    path.starts_with(PREFIX) || VersionDocument::of(path).is_some()
}

/// The API's version documents (the SDK's `show_versions` and `show_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionDocument {
    /// `GET /`: every version.
    All,
    /// `GET /v1.0`: the one version.
    V1,
}

impl VersionDocument {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/" => Some(Self::All),
            "/v1.0" | "/v1.0/" => Some(Self::V1),
            _ => None,
        }
    }

    fn audit_name(self) -> &'static str {
        match self {
            Self::All => "ShowVersions",
            Self::V1 => "ShowVersion",
        }
    }

    /// The document: `{"versions": [..]}` or `{"version": ..}`, each version an
    /// `ApiVersionDetail` (no microversions: `version` and `min_version` are empty).
    fn body(self, host: &str) -> serde_json::Value {
        let v1 = serde_json::json!({
            "id": "v1.0",
            "links": [{ "rel": "self", "href": format!("http://{host}/v1.0/") }],
            "version": "",
            "status": "CURRENT",
            "updated": "2016-10-29T02:00:00Z",
            "min_version": "",
        });
        match self {
            Self::All => serde_json::json!({ "versions": [v1] }),
            Self::V1 => serde_json::json!({ "version": v1 }),
        }
    }
}

/// What a call carries from authentication to its audit line.
struct Call {
    op: &'static str,
    request_id: String,
    /// The tenant of a request that was refused once its signature named it.
    domain: String,
    /// What a fault rule did to the call.
    injected: Option<String>,
}

impl Call {
    /// The call's audit line, for `caller` once known, naming `key_id`.
    fn line<'a>(
        &'a self,
        caller: Option<&'a Caller>,
        key_id: &'a str,
        outcome: &'static str,
    ) -> AuditLine<'a> {
        let (domain, region) = caller.map_or((self.domain.as_str(), ""), |c| {
            (c.domain.as_str(), c.region.as_str())
        });
        AuditLine {
            time_ms: now_ms(),
            domain,
            region,
            operation: self.op,
            key_id,
            outcome,
            request_id: &self.request_id,
            injected: self.injected.as_deref(),
        }
    }
}

/// A served operation's answer: the JSON body and the key its audit line names (full form).
pub struct Answer {
    /// The response body; empty for `204 No Content`.
    pub body: Vec<u8>,
    /// The key concerned, full form; empty for none.
    pub audit_key: String,
}

/// The key, not the body: a body may hold a data key or a plaintext.
impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("body", &format_args!("{} bytes", self.body.len()))
            .field("audit_key", &self.audit_key)
            .finish()
    }
}

/// A request whose handler panicked: `KMSBOX.0500`.
fn internal_error() -> HuaweiError {
    HuaweiError {
        code: ErrorCode::Internal,
        message: "internal error".to_owned(),
        internal: true,
    }
}

/// The answer to a request whose handler panicked before its caller was known: `KMSBOX.0500`,
/// 500, in Huawei's error shape.
pub(crate) fn internal() -> Response {
    internal_error().into_response_with("")
}

/// Serves one request whose path the API [`claims`], in whatever body type the server gives
/// (reached through [`super::ApiFront`], in front of the routes).
pub fn handle<B>(
    state: Arc<ApiState>,
    request: http::Request<B>,
) -> impl Future<Output = Response> + Send
where
    B: super::IncomingBody + Send,
{
    // The future owns the parts as captured, not as an async fn's arguments, which it would
    // also keep a moved copy of.
    let (parts, body) = request.into_parts();
    async move {
        let state = &*state;
        let mut call = Call {
            op: "Unknown",
            request_id: request_id_from(
                parts.headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok()),
            ),
            domain: String::new(),
            injected: None,
        };
        // /v1.0/{project_id}/kms/{operation}
        // Split at characters, not at "/kms/": a substring search costs more than the rest here.
        let target = parts
            .uri
            .path()
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(project, rest)| Some((project, rest.strip_prefix("kms/")?)))
            .map(|(project, rest)| (project, Operation::route(&parts.method, rest)));
        let (project, route) = match target {
            Some((project, Some(route))) => (project, route),
            // Off the operations' path: the version documents are not under the prefix.
            None if let Some(document) = VersionDocument::of(parts.uri.path()) => {
                return Box::pin(version_document(state, parts, body, document, call)).await;
            }
            _ => {
                let e = HuaweiError::new(
                    ErrorCode::InvalidRequestUrl,
                    format!(
                        "no operation {} {}",
                        parts.method,
                        truncate(parts.uri.path(), 256)
                    ),
                );
                return refuse(state, &call, None, "", e).await;
            }
        };
        let op = route.op;
        call.op = op.audit_name();
        let body = match super::read_body(&parts.headers, body, MAX_BODY).await {
            Ok(body) => body,
            Err(e) => return refuse(state, &call, None, "", body_refusal(e)).await,
        };
        let caller = match authenticate(state, &parts, &body, project, &mut call) {
            Ok(c) => c,
            Err(e) => return refuse(state, &call, None, &requested_key(route, &body), e).await,
        };
        let who = Some(&caller);
        if state.audit.refusing() {
            let e = HuaweiError::new(ErrorCode::NotServing, AUDIT_UNAVAILABLE);
            return refuse(state, &call, who, &requested_key(route, &body), e).await;
        }
        if state.faults.active()
            && let Some(refused) = Box::pin(inject(state, &mut call, route, &caller, &body)).await
        {
            return refused;
        }
        let dispatched = dispatch(&state.keyring, &caller, route, &body);
        let answer = match caught("huawei", dispatched, || Err(internal_error())).await {
            Ok(a) => a,
            Err(e) => return refuse(state, &call, who, &requested_key(route, &body), e).await,
        };
        let line = call.line(who, &answer.audit_key, "ok");
        if op.changes_lifecycle() {
            if Box::pin(state.audit.record_durable(line)).await.is_err() {
                // The change is in the store and its line is kept to be written once the log can be,
                // but the call is not acknowledged (as over gRPC).
                let e = HuaweiError::new(ErrorCode::NotServing, AUDIT_UNAVAILABLE);
                return e.into_response_with(&call.request_id);
            }
        } else {
            state.audit.record(line).await;
        }
        answered(answer.body, &call.request_id)
    }
}

/// A served call's response: its JSON body, or `204 No Content` for an empty one (the tag
/// edits'), with the call's request ID.
fn answered(body: Vec<u8>, request_id: &str) -> Response {
    let no_content = body.is_empty();
    let mut r = Response::new(Body::from(body));
    if no_content {
        *r.status_mut() = http::StatusCode::NO_CONTENT;
    } else {
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, JSON_UTF8);
    }
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        r.headers_mut().insert(X_REQUEST_ID, v);
    }
    r
}

/// The refusal of a body that could not be read: over the limit (`KMS.0203`), or unreadable
/// (`KMS.0308`); either is refused before parsing.
fn body_refusal(e: super::BodyError) -> HuaweiError {
    match e {
        super::BodyError::TooLarge => HuaweiError::new(
            ErrorCode::RequestTooLong,
            format!("the request body is over the limit of {MAX_BODY} bytes"),
        ),
        super::BodyError::Unreadable(why) => HuaweiError::new(
            ErrorCode::InvalidArgument,
            format!("the request body could not be read: {why}"),
        ),
    }
}

/// Logs, audits and answers a refused call; boxed, as the refusals are off the data path and
/// would otherwise each make every call's future larger.
fn refuse<'a>(
    state: &'a ApiState,
    call: &'a Call,
    caller: Option<&'a Caller>,
    key: &'a str,
    e: HuaweiError,
) -> futures::future::BoxFuture<'a, Response> {
    Box::pin(async move {
        if e.internal {
            tracing::error!(op = call.op, request_id = %call.request_id, error = %e.message, "internal error");
        } else {
            tracing::debug!(op = call.op, request_id = %call.request_id, error = %e.message, "request refused");
        }
        let response = e.into_response_with(&call.request_id);
        state
            .audit
            .record(call.line(caller, key, e.code.as_str()))
            .await;
        response
    })
}

/// Applies the fault rule that matches the call, if any: its delay, then its failure or hang
/// (audited and answered here, `Some`), or nothing more (`None`, the call runs).
async fn inject(
    state: &ApiState,
    call: &mut Call,
    route: Route<'_>,
    caller: &Caller,
    body: &[u8],
) -> Option<Response> {
    let op = route.op;
    let who = Some(caller);
    // A fault rule names the kms.v1 operation a REST operation corresponds to (its audit name).
    let fault_op = op.audit_name().parse().ok();
    let key = || crate::faults::named_key(&requested_key(route, body));
    match apply_faults(&state.faults, fault_op, caller, key).await {
        Faulted::Run(note) => {
            call.injected = note;
            None
        }
        Faulted::Fail {
            code,
            message,
            note,
        } => {
            call.injected = Some(note);
            let e = HuaweiError::new(code, message);
            Some(refuse(state, call, who, &requested_key(route, body), e).await)
        }
        Faulted::Hang(note) => {
            // Its line now: the caller's timeout drops the call without a word.
            call.injected = Some(note);
            let e = HuaweiError::new(ErrorCode::ServiceUnavailable, "the daemon is stopping");
            let response = e.into_response_with(&call.request_id);
            let key = requested_key(route, body);
            state.audit.record(call.line(who, &key, "hang")).await;
            state.faults.hang().await;
            Some(response)
        }
    }
}

/// The key a refused request names, as given, for its audit line: in its path or its body.
fn requested_key(route: Route<'_>, body: &[u8]) -> String {
    if !route.key_id.is_empty() {
        let id = String::from_utf8_lossy(&sign::decode(route.key_id)).into_owned();
        return crate::audit::requested_key_prefix(&id).to_owned();
    }
    let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(body) else {
        return String::new();
    };
    ["key_id", "destination_key_id"]
        .iter()
        .find_map(|f| m.get(*f).and_then(|v| v.as_str()))
        .map(|k| crate::audit::requested_key_prefix(k).to_owned())
        .unwrap_or_default()
}

fn truncate(s: &str, chars: usize) -> &str {
    s.char_indices().nth(chars).map_or(s, |(i, _)| &s[..i])
}

/// Answers a version document to a `GET` whose signature holds (the documents name no key and no
/// project: a signed `X-Project-Id`, which the SDK sends, must be one of the tenant's projects).
async fn version_document<B>(
    state: &ApiState,
    parts: Parts,
    body: B,
    document: VersionDocument,
    mut call: Call,
) -> Response
where
    B: super::IncomingBody + Send,
{
    call.op = document.audit_name();
    if parts.method != http::Method::GET {
        let e = HuaweiError::new(
            ErrorCode::InvalidRequestUrl,
            format!("no operation {} {}", parts.method, parts.uri.path()),
        );
        return refuse(state, &call, None, "", e).await;
    }
    let body = match super::read_body(&parts.headers, body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return refuse(state, &call, None, "", body_refusal(e)).await,
    };
    let signed = signer(state, &parts, &body, &mut call).and_then(|key| {
        let project = parts.headers.get(&PROJECT_ID);
        match (key, project) {
            (Some(key), Some(p)) if key.region_of(p.to_str().unwrap_or("")).is_none() => {
                Err(HuaweiError::new(
                    ErrorCode::PermissionDenied,
                    "X-Project-Id is not a project of the access key's tenant",
                ))
            }
            _ => Ok(()),
        }
    });
    if let Err(e) = signed {
        return refuse(state, &call, None, "", e).await;
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))
        .unwrap_or("127.0.0.1");
    let answer = match json(&document.body(host)) {
        Ok(body) => body,
        Err(e) => return refuse(state, &call, None, "", e).await,
    };
    state.audit.record(call.line(None, "", "ok")).await;
    answered(answer, &call.request_id)
}

/// Checks the signature of a request and names its signer's tenant in the call's audit line; `None`
/// without a tenants file (signatures are not checked).
fn signer<'s>(
    state: &'s ApiState,
    parts: &Parts,
    body: &[u8],
    call: &mut Call,
) -> Result<Option<&'s crate::auth::AccessKey>, HuaweiError> {
    // One pass over the headers, not a lookup per name.
    let mut seen = [false; 3];
    for name in parts.headers.iter().map(|(name, _)| name) {
        let Some(i) = [&http::header::AUTHORIZATION, &SDK_DATE, &PROJECT_ID]
            .iter()
            .position(|n| *n == name)
        else {
            continue;
        };
        if std::mem::replace(&mut seen[i], true) {
            return Err(HuaweiError::field(
                name.as_str(),
                "repeated; it may appear at most once",
            ));
        }
    }
    if !state.auth.requires_tokens() {
        return Ok(None);
    }
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(SignError::Missing)?;
    let auth = Authorization::parse(value)?;
    let key = state
        .auth
        .access_key(auth.access)
        .ok_or(SignError::UnknownAccessKey)?;
    sign::verify(parts, body, &auth, key.secret(), sign::wall_clock_ms())?;
    call.domain = key.domain().as_str().to_owned();
    Ok(Some(key))
}

/// Who is calling: the access key's tenant and the project's region; or, without a tenants file,
/// the project ID as the domain and the daemon's region. Once the signature holds, the call's
/// audit line names the tenant even if its project is refused.
fn authenticate(
    state: &ApiState,
    parts: &Parts,
    body: &[u8],
    project: &str,
    call: &mut Call,
) -> Result<Caller, HuaweiError> {
    let Some(key) = signer(state, parts, body, call)? else {
        let domain =
            crate::auth::parse_domain(project).map_err(|e| HuaweiError::field("project_id", e))?;
        return Ok(Caller {
            domain,
            region: state.auth.default_region().clone(),
        });
    };
    let denied = || {
        HuaweiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "project {:?} is not a project of the access key's tenant",
                truncate(project, 64)
            ),
        )
    };
    if let Some(h) = parts.headers.get(&PROJECT_ID)
        && h.as_bytes() != project.as_bytes()
    {
        return Err(denied());
    }
    let region = key.region_of(project).ok_or_else(denied)?;
    Ok(Caller {
        domain: key.domain().clone(),
        region: region.clone(),
    })
}

/// Runs one operation for an authenticated caller. Every REST operation passes through here.
/// The calls that change a key wait on the store in boxed futures, so that the data calls'
/// future (allocated once and moved several times per call) stays small.
pub async fn dispatch(
    keyring: &Arc<Keyring>,
    caller: &Caller,
    route: Route<'_>,
    body: &[u8],
) -> Result<Answer, HuaweiError> {
    let op = route.op;
    match op {
        Operation::CreateKey => Box::pin(create_key(keyring, caller, parse(body)?)).await,
        Operation::DescribeKey => {
            let b: model::OperateKey = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let key = keyring.find(caller, &required(b.key_id, "key_id")?)?;
            answer(&serde_json::json!({ "key_info": details(&key) }), &key)
        }
        Operation::ListKeys => list_keys(keyring, caller, parse(body)?),
        Operation::EnableKey | Operation::DisableKey | Operation::CancelKeyDeletion => {
            let b: model::OperateKey = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let id = required(b.key_id, "key_id")?;
            let key = match op {
                Operation::EnableKey => Box::pin(keyring.enable(caller, &id)).await?,
                Operation::DisableKey => Box::pin(keyring.disable(caller, &id)).await?,
                _ => Box::pin(keyring.cancel_deletion(caller, &id)).await?,
            };
            let status = status(&key);
            if op == Operation::CancelKeyDeletion {
                answer(&status, &key)
            } else {
                answer(&serde_json::json!({ "key_info": status }), &key)
            }
        }
        Operation::ScheduleKeyDeletion => {
            let b: model::ScheduleKeyDeletion = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let id = required(b.key_id, "key_id")?;
            let days = number(&required(b.pending_days, "pending_days")?, "pending_days")?;
            // Huawei has no default window: 0 is out of range, not "the default".
            if !(7..=1096).contains(&days) {
                return Err(crate::error::KmsError::DeletionWindowOutOfRange(days).into());
            }
            let key = Box::pin(keyring.schedule_deletion(caller, &id, days)).await?;
            answer(&status(&key), &key)
        }
        Operation::CreateDatakey | Operation::CreateDatakeyWithoutPlaintext => {
            let b = match model::CreateDatakey::plain(body) {
                Some(b) => b,
                None => parse(body)?,
            };
            sequence(b.sequence.as_deref())?;
            let id = required(b.key_id, "key_id")?;
            let lengths = if op == Operation::CreateDatakey {
                Lengths::DATAKEY
            } else {
                Lengths::DATAKEY_WITHOUT_PLAINTEXT
            };
            let bits = match (b.datakey_length.as_deref(), b.key_spec.as_deref()) {
                (Some(l), _) => number(l, "datakey_length").recode(lengths.range)?,
                (None, None | Some("AES_256")) => 256,
                (None, Some("AES_128")) => 128,
                (None, Some(other)) => {
                    return Err(HuaweiError::coded(
                        ErrorCode::InvalidDatakeySpec,
                        "key_spec",
                        format!("{other:?}: AES_256 or AES_128"),
                    ));
                }
            };
            let bytes = bits_to_bytes(bits, "datakey_length", lengths)?;
            let dk = keyring
                .generate_data_key(
                    caller,
                    &id,
                    bytes,
                    &context(b.additional_authenticated_data),
                )
                .map_err(|e| {
                    if op == Operation::CreateDatakey {
                        e
                    } else {
                        e.without_plaintext()
                    }
                })?;
            // `CreateDatakeyResponse`, and `CreateDatakeyWithoutPlaintextResponse` without
            // `plain_text`.
            let mut body =
                json::Object::with_capacity(96 + 2 * (dk.plaintext.len() + dk.blob.len()));
            body.uuid("key_id", &dk.key.uuid);
            if op == Operation::CreateDatakey {
                body.hex_upper("plain_text", &dk.plaintext);
            }
            body.hex_upper("cipher_text", &dk.blob);
            written(body, &dk.key)
        }
        Operation::EncryptDatakey => encrypt_datakey(keyring, caller, parse(body)?),
        Operation::DecryptDatakey => decrypt_datakey(keyring, caller, parse(body)?),
        Operation::EncryptData => {
            let b: model::EncryptData = parse(body)?;
            sequence(b.sequence.as_deref())?;
            algorithm(b.encryption_algorithm.as_deref(), "encryption_algorithm")?;
            let id = required(b.key_id, "key_id")?;
            let plain = Zeroizing::new(required(b.plain_text, "plain_text")?);
            let e = keyring.encrypt(
                caller,
                &id,
                plain.as_bytes(),
                &context(b.additional_authenticated_data),
            )?;
            // `EncryptDataResponse`.
            let mut body = json::Object::with_capacity(96 + e.blob.len() * 4 / 3);
            body.uuid("key_id", &e.key.uuid)
                .base64("cipher_text", &e.blob);
            written(body, &e.key)
        }
        Operation::DecryptData => {
            let b: model::DecryptData = parse(body)?;
            sequence(b.sequence.as_deref())?;
            algorithm(b.encryption_algorithm.as_deref(), "encryption_algorithm")?;
            let blob = BASE64
                .decode(required(b.cipher_text, "cipher_text")?)
                .map_err(|e| HuaweiError::field("cipher_text", format!("not base64: {e}")))?;
            let d = keyring.decrypt(
                caller,
                &blob,
                &context(b.additional_authenticated_data),
                b.key_id.as_deref().unwrap_or(""),
            )?;
            // `DecryptDataResponse`: `plain_text` only when the plaintext is UTF-8.
            let mut body = json::Object::with_capacity(96 + d.plaintext.len() * 3);
            body.uuid("key_id", &d.key.uuid);
            if let Ok(text) = std::str::from_utf8(&d.plaintext) {
                body.str("plain_text", text);
            }
            body.base64("plain_text_base64", &d.plaintext);
            written(body, &d.key)
        }
        Operation::ReEncrypt => {
            let b: model::ReEncrypt = parse(body)?;
            algorithm(
                b.source_encryption_algorithm.as_deref(),
                "source_encryption_algorithm",
            )?;
            algorithm(
                b.destination_encryption_algorithm.as_deref(),
                "destination_encryption_algorithm",
            )?;
            if let Some(l) = b.datakey_cipher_length.as_deref() {
                datakey_len(l, "datakey_cipher_length")?;
            }
            let blob = unhex(&required(b.cipher_text, "cipher_text")?, "cipher_text")?;
            let r = keyring.re_encrypt(
                caller,
                &blob,
                &context(b.source_additional_authenticated_data),
                b.source_key_id.as_deref().unwrap_or(""),
                &required(b.destination_key_id, "destination_key_id")?,
                &context(b.destination_additional_authenticated_data),
            )?;
            let body = model::ReEncrypted {
                key_id: bare(&r.encrypted.key),
                source_key_id: bare(&r.source_key),
                source_encryption_algorithm: SYMMETRIC_DEFAULT,
                destination_encryption_algorithm: SYMMETRIC_DEFAULT,
                cipher_text: hex::encode_upper(&r.encrypted.blob),
            };
            answer(&body, &r.encrypted.key)
        }
        Operation::UpdateKeyAlias => {
            let b: model::UpdateKeyAlias = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let id = required(b.key_id, "key_id")?;
            let alias = huawei_alias(required(b.key_alias, "key_alias")?)?;
            let key = Box::pin(keyring.update_alias(caller, &id, &alias)).await?;
            let info = model::KeyAliasInfo {
                key_id: bare(&key),
                key_alias: key.alias.clone(),
            };
            answer(&serde_json::json!({ "key_info": info }), &key)
        }
        Operation::UpdateKeyDescription => {
            let b: model::UpdateKeyDescription = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let id = required(b.key_id, "key_id")?;
            let description = b
                .key_description
                .ok_or_else(|| HuaweiError::missing("key_description"))?;
            let key = Box::pin(keyring.update_description(caller, &id, &description)).await?;
            let info = model::KeyDescriptionInfo {
                key_id: bare(&key),
                key_description: key.description.clone(),
            };
            answer(&serde_json::json!({ "key_info": info }), &key)
        }
        Operation::EnableKeyRotation | Operation::DisableKeyRotation => {
            let b: model::OperateKey = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let id = required(b.key_id, "key_id")?;
            let on = op == Operation::EnableKeyRotation;
            let key = Box::pin(keyring.set_rotation(caller, &id, Some(on), None)).await?;
            answer(&serde_json::json!({}), &key)
        }
        Operation::UpdateKeyRotationInterval => {
            let b: model::UpdateKeyRotationInterval = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let id = required(b.key_id, "key_id")?;
            let days = b
                .rotation_interval
                .ok_or_else(|| HuaweiError::missing("rotation_interval"))?;
            let key = Box::pin(keyring.set_rotation(caller, &id, None, Some(days))).await?;
            answer(&serde_json::json!({}), &key)
        }
        Operation::GetKeyRotationStatus => {
            let b: model::OperateKey = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let key = keyring.find(caller, &required(b.key_id, "key_id")?)?;
            let status = model::RotationStatus {
                key_rotation_enabled: key.rotation.enabled,
                rotation_interval: key.rotation.interval_days,
                last_rotation_time: (key.current_version > 1)
                    .then(|| key.current_version_made_ms().to_string()),
                number_of_rotations: key.current_version.saturating_sub(1),
            };
            answer(&status, &key)
        }
        Operation::RotateOnDemand => {
            let b: model::OperateKey = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let key = Box::pin(keyring.rotate(caller, &required(b.key_id, "key_id")?)).await?;
            answer(&model::Rotated { key_id: bare(&key) }, &key)
        }
        Operation::CreateKmsTag
        | Operation::BatchKmsTags
        | Operation::DeleteKmsTag
        | Operation::ShowKmsTags
        | Operation::ListKmsTags
        | Operation::ListKmsByTags => Box::pin(tags::dispatch(keyring, caller, route, body)).await,
        Operation::GenRandom => {
            let b: model::GenRandom = parse(body)?;
            sequence(b.sequence.as_deref())?;
            let bits = number(
                &required(b.random_data_length, "random_data_length")?,
                "random_data_length",
            )
            .recode(ErrorCode::InvalidRandomLength)?;
            let bytes = bits_to_bytes(bits, "random_data_length", Lengths::RANDOM)?;
            let random = keyring.generate_random(bytes)?;
            Ok(Answer {
                body: json(&model::Random {
                    random_data: hex::encode_upper(&random),
                })?,
                audit_key: String::new(),
            })
        }
    }
}

async fn create_key(
    keyring: &Keyring,
    caller: &Caller,
    b: model::CreateKey,
) -> Result<Answer, HuaweiError> {
    sequence(b.sequence.as_deref())?;
    // The one kind of key the daemon makes: say so when another is asked for.
    for (field, value, supported) in [
        ("key_spec", &b.key_spec, "AES_256"),
        ("key_usage", &b.key_usage, "ENCRYPT_DECRYPT"),
        ("origin", &b.origin, "kms"),
        ("enterprise_project_id", &b.enterprise_project_id, "0"),
    ] {
        if let Some(v) = value
            && v != supported
        {
            return Err(HuaweiError::field(
                field,
                format!("{:?}: only {supported} is supported", truncate(v, 64)),
            ));
        }
    }
    let alias = huawei_alias(required(b.key_alias, "key_alias")?)?;
    let key = keyring
        .create_key(caller, &alias, b.key_description.as_deref().unwrap_or(""))
        .await?;
    let info = model::KekInfo {
        key_id: bare(&key),
        domain_id: key.domain.to_string(),
        region_id: key.region.to_string(),
    };
    answer(&serde_json::json!({ "key_info": info }), &key)
}

fn list_keys(
    keyring: &Keyring,
    caller: &Caller,
    b: model::ListKeys,
) -> Result<Answer, HuaweiError> {
    sequence(b.sequence.as_deref())?;
    if let Some(p) = b.enterprise_project_id.as_deref()
        && p != "0"
        && p != "all"
    {
        return Err(HuaweiError::field(
            "enterprise_project_id",
            format!("{:?}: only 0 (and all) are supported", truncate(p, 64)),
        ));
    }
    // 0: the keyring's default page size.
    let limit = page_limit(b.limit.as_deref(), 0)?;
    let state: Option<&str> = match b.key_state.as_deref() {
        None | Some("") => None,
        Some(s @ ("1" | "2" | "3" | "4" | "5")) => Some(s),
        Some(other) => {
            return Err(HuaweiError::field(
                "key_state",
                format!("{:?}: one of 1 to 5", truncate(other, 16)),
            ));
        }
    };
    // Every key is AES_256; any other spec lists none.
    let spec_matches = b.key_spec.as_deref().is_none_or(|s| s == "AES_256");
    let keep = |r: &KeyRecord| spec_matches && state.is_none_or(|s| key_state(r.state) == s);
    let page = keyring
        .list_where(caller, limit, b.marker.as_deref().unwrap_or(""), keep)
        .map_err(|e| match e {
            // The keyring names gRPC's field (page_token); this API's is `marker`. (`limit` is
            // checked above, by this API's own bound.)
            crate::error::KmsError::Invalid { code, reason, .. }
                if code == ErrorCode::InvalidMarker =>
            {
                HuaweiError::coded(code, "marker", reason)
            }
            other => other.into(),
        })?;
    let body = model::KeyList {
        total: keyring.count_where(caller, keep),
        keys: page.keys.iter().map(|k| bare(k)).collect(),
        key_details: page.keys.iter().map(|k| details(k)).collect(),
        truncated: if page.next_page_token.is_empty() {
            "false"
        } else {
            "true"
        },
        next_marker: page.next_page_token,
    };
    Ok(Answer {
        body: json(&body)?,
        audit_key: String::new(),
    })
}

/// encrypt-datakey: `plain_text` is the data key followed by its SHA-256 digest, in hex; only the
/// data key is encrypted, once the digest has been checked.
fn encrypt_datakey(
    keyring: &Keyring,
    caller: &Caller,
    b: model::EncryptDatakey,
) -> Result<Answer, HuaweiError> {
    sequence(b.sequence.as_deref())?;
    let id = required(b.key_id, "key_id")?;
    let n = datakey_len(
        &required(b.datakey_plain_length, "datakey_plain_length")?,
        "datakey_plain_length",
    )
    .recode(ErrorCode::InvalidDatakeyPlainLength)?;
    let plain = unhex(&required(b.plain_text, "plain_text")?, "plain_text")
        .recode(ErrorCode::InvalidPlainText)?;
    if plain.len() != n + 32 {
        return Err(HuaweiError::coded(
            ErrorCode::PlainTextLengthMismatch,
            "plain_text",
            format!(
                "{} bytes: it must be the {n}-byte data key followed by its 32-byte SHA-256 digest",
                plain.len()
            ),
        ));
    }
    let (dek, digest) = plain.split_at(n);
    if !bool::from(Sha256::digest(dek).as_slice().ct_eq(digest)) {
        return Err(HuaweiError::coded(
            ErrorCode::DatakeyDigestMismatch,
            "plain_text",
            "the last 32 bytes are not the SHA-256 digest of the data key",
        ));
    }
    let e = keyring.encrypt(caller, &id, dek, &context(b.additional_authenticated_data))?;
    // `EncryptDatakeyResponse`.
    let mut body = json::Object::with_capacity(128 + e.blob.len() * 2);
    body.uuid("key_id", &e.key.uuid)
        .hex_upper("cipher_text", &e.blob)
        .number_str("datakey_length", n as u64);
    written(body, &e.key)
}

/// decrypt-datakey: the data key and its SHA-256 digest (`datakey_dgst`), in hex.
fn decrypt_datakey(
    keyring: &Keyring,
    caller: &Caller,
    b: model::DecryptDatakey,
) -> Result<Answer, HuaweiError> {
    sequence(b.sequence.as_deref())?;
    let id = required(b.key_id, "key_id")?;
    let n = datakey_len(
        &required(b.datakey_cipher_length, "datakey_cipher_length")?,
        "datakey_cipher_length",
    )
    .recode(ErrorCode::InvalidDatakeyCipherLength)?;
    let blob = unhex(&required(b.cipher_text, "cipher_text")?, "cipher_text")
        .recode(ErrorCode::InvalidCipherText)?;
    let d = keyring
        .decrypt(
            caller,
            &blob,
            &context(b.additional_authenticated_data),
            &id,
        )
        .map_err(|e| match e {
            // Not a ciphertext blob at all: Huawei's "invalid cipher_text" of this operation.
            crate::error::KmsError::MalformedCiphertext(why) => HuaweiError::coded(
                ErrorCode::InvalidCipherText,
                "cipher_text",
                format!("invalid ciphertext blob: {why}"),
            ),
            other => other.into(),
        })?;
    if d.plaintext.len() != n {
        return Err(HuaweiError::coded(
            ErrorCode::CipherTextLengthMismatch,
            "datakey_cipher_length",
            format!("{n}, but the data key has {} bytes", d.plaintext.len()),
        ));
    }
    // `DecryptDatakeyResponse`.
    let mut body = json::Object::with_capacity(192 + n * 2);
    body.hex_upper("data_key", &d.plaintext)
        .number_str("datakey_length", n as u64)
        .hex_upper("datakey_dgst", &Sha256::digest(&d.plaintext));
    written(body, &d.key)
}

/// A request body as the operation's fields (which may borrow from it).
fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, HuaweiError> {
    serde_json::from_slice(body).map_err(|e| error::from_json(&e))
}

fn json<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, HuaweiError> {
    serde_json::to_vec(body).map_err(|e| {
        HuaweiError::from(crate::error::KmsError::Internal(format!(
            "encoding a response: {e}"
        )))
    })
}

fn answer<T: serde::Serialize>(body: &T, key: &KeyRecord) -> Result<Answer, HuaweiError> {
    Ok(Answer {
        body: json(body)?,
        audit_key: key.full_id_string(),
    })
}

/// The answer of a data-path operation, its JSON written by hand ([`json::Object`]).
fn written(body: json::Object, key: &KeyRecord) -> Result<Answer, HuaweiError> {
    Ok(Answer {
        body: body.finish(),
        audit_key: key.full_id_string(),
    })
}

/// A `key_alias` by Huawei's own pattern, `^[a-zA-Z0-9:/_-]{1,255}$`, on top of kmsbox's alias
/// grammar (which refuses `:` and takes `.`, for Vault's names): an alias with `.` would be
/// refused in the cloud, so it is here.
fn huawei_alias(alias: String) -> Result<String, HuaweiError> {
    if alias.contains('.') {
        return Err(HuaweiError::coded(
            ErrorCode::InvalidKeyAlias,
            "key_alias",
            format!(
                "{:?}: Huawei's pattern ^[a-zA-Z0-9:/_-]{{1,255}}$ has no '.'",
                truncate(&alias, 64)
            ),
        ));
    }
    Ok(alias)
}

/// A required field; an empty string counts as missing.
fn required<S: AsRef<str>>(v: Option<S>, field: &str) -> Result<S, HuaweiError> {
    v.filter(|s| !s.as_ref().is_empty())
        .ok_or_else(|| HuaweiError::missing(field))
}

/// A list's `limit`: a decimal string from 1 to the page bound (`KMS.1601`); `default` when the
/// request names none.
fn page_limit(given: Option<&str>, default: u32) -> Result<u32, HuaweiError> {
    let Some(l) = given else {
        return Ok(default);
    };
    match number(l, "limit").recode(ErrorCode::InvalidLimit)? {
        n if (1..=PAGE_SIZE.max).contains(&n) => Ok(n),
        _ => Err(HuaweiError::coded(
            ErrorCode::InvalidLimit,
            "limit",
            format!("must be 1 to {}", PAGE_SIZE.max),
        )),
    }
}

/// A number as the API sends it: a string of decimal digits.
fn number(v: &str, field: &str) -> Result<u32, HuaweiError> {
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HuaweiError::field(
            field,
            format!("{:?} is not a decimal number", truncate(v, 32)),
        ));
    }
    v.parse()
        .map_err(|_| HuaweiError::field(field, "not a decimal number"))
}

/// Huawei's codes for a length in bits out of range, and not a whole number of bytes.
#[derive(Debug, Clone, Copy)]
struct Lengths {
    range: ErrorCode,
    whole_bytes: ErrorCode,
}

impl Lengths {
    const DATAKEY: Lengths = Lengths {
        range: ErrorCode::InvalidDatakeyLength,
        whole_bytes: ErrorCode::DatakeyLengthNotWholeBytes,
    };
    const DATAKEY_WITHOUT_PLAINTEXT: Lengths = Lengths {
        range: ErrorCode::InvalidDatakeyLengthWithoutPlaintext,
        whole_bytes: ErrorCode::DatakeyLengthNotWholeBytes,
    };
    const RANDOM: Lengths = Lengths {
        range: ErrorCode::InvalidRandomLength,
        whole_bytes: ErrorCode::RandomLengthNotWholeBytes,
    };
}

/// A length in bits: a multiple of 8 from 8 to 8192; in bytes.
fn bits_to_bytes(bits: u32, field: &str, codes: Lengths) -> Result<u32, HuaweiError> {
    let why = || {
        format!(
            "{bits} bits: a multiple of 8 from 8 to {}",
            MAX_DATA_KEY * 8
        )
    };
    if bits == 0 || bits / 8 > MAX_DATA_KEY {
        return Err(HuaweiError::coded(codes.range, field, why()));
    }
    if !bits.is_multiple_of(8) {
        return Err(HuaweiError::coded(codes.whole_bytes, field, why()));
    }
    Ok(bits / 8)
}

/// A data key's length in bytes: 1 to 1024.
fn datakey_len(v: &str, field: &str) -> Result<usize, HuaweiError> {
    match number(v, field)? {
        n @ 1..=MAX_DATA_KEY => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        n => Err(HuaweiError::field(
            field,
            format!("{n}: a data key has 1 to {MAX_DATA_KEY} bytes"),
        )),
    }
}

fn unhex(v: &str, field: &str) -> Result<Zeroizing<Vec<u8>>, HuaweiError> {
    hex::decode(v)
        .map(Zeroizing::new)
        .map_err(|e| HuaweiError::field(field, format!("not hex: {e}")))
}

/// `sequence`, the caller's own request tag: at most 36 characters.
fn sequence(s: Option<&str>) -> Result<(), HuaweiError> {
    match s {
        Some(s) if s.len() > 36 => Err(HuaweiError::new(
            ErrorCode::InvalidSequence,
            "invalid sequence: at most 36 characters",
        )),
        _ => Ok(()),
    }
}

fn algorithm(a: Option<&str>, field: &str) -> Result<(), HuaweiError> {
    match a {
        None | Some(SYMMETRIC_DEFAULT) => Ok(()),
        Some(other) => Err(HuaweiError::field(
            field,
            format!(
                "{:?}: only {SYMMETRIC_DEFAULT} is supported",
                truncate(other, 64)
            ),
        )),
    }
}

/// Huawei's `additional_authenticated_data` as an encryption context ([`AAD_CONTEXT_KEY`]).
fn context(aad: Option<String>) -> Context {
    aad.filter(|a| !a.is_empty())
        .map(|a| Context::from([(AAD_CONTEXT_KEY.to_owned(), a)]))
        .unwrap_or_default()
}

/// Huawei's key-state codes: 2 enabled, 3 disabled, 4 pending deletion.
fn key_state(s: KeyState) -> &'static str {
    match s {
        KeyState::Enabled => "2",
        KeyState::Disabled => "3",
        KeyState::PendingDeletion => "4",
    }
}

/// A key's ID as Huawei gives it: the bare UUID.
fn bare(rec: &KeyRecord) -> String {
    rec.uuid
        .hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned()
}

fn status(rec: &KeyRecord) -> model::KeyStatus {
    model::KeyStatus {
        key_id: bare(rec),
        key_state: key_state(rec.state),
    }
}

fn details(rec: &KeyRecord) -> model::KeyDetails {
    model::KeyDetails {
        key_id: bare(rec),
        domain_id: rec.domain.to_string(),
        key_alias: rec.alias.clone(),
        realm: rec.region.to_string(),
        key_spec: "AES_256",
        key_usage: "ENCRYPT_DECRYPT",
        key_description: rec.description.clone(),
        creation_date: rec.created_at_ms.to_string(),
        scheduled_deletion_date: rec.deletion_date_ms.map(|d| d.to_string()),
        key_state: key_state(rec.state),
        default_key_flag: if rec.creator == Creator::Service {
            "1"
        } else {
            "0"
        },
        origin: "kms",
        key_rotation_enabled: if rec.rotation.enabled {
            "true"
        } else {
            "false"
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_is_a_method_and_a_path_pattern_with_non_empty_parameters() {
        use http::Method;
        const KEY: &str = "0d0466b0-e727-4d9c-b35d-f84bb474a37f";
        let at = |rest: &str| format!("{KEY}/{rest}");
        // (rule, method, path after kms/, the route: operation, key ID, tag key)
        type Case = (
            &'static str,
            Method,
            String,
            Option<(Operation, &'static str, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "a flat operation",
                Method::POST,
                "create-datakey".into(),
                Some((Operation::CreateDatakey, "", "")),
            ),
            (
                "a flat operation by another method",
                Method::GET,
                "create-datakey".into(),
                None,
            ),
            (
                "one tag added",
                Method::POST,
                at("tags"),
                Some((Operation::CreateKmsTag, KEY, "")),
            ),
            (
                "a key's tags",
                Method::GET,
                at("tags"),
                Some((Operation::ShowKmsTags, KEY, "")),
            ),
            (
                "a batch",
                Method::POST,
                at("tags/action"),
                Some((Operation::BatchKmsTags, KEY, "")),
            ),
            (
                "a tag removed",
                Method::DELETE,
                at("tags/%E9%94%AE"),
                Some((Operation::DeleteKmsTag, KEY, "%E9%94%AE")),
            ),
            (
                "the project's tags",
                Method::GET,
                "tags".into(),
                Some((Operation::ListKmsTags, "", "")),
            ),
            (
                "the filter",
                Method::POST,
                "resource_instances/action".into(),
                Some((Operation::ListKmsByTags, "", "")),
            ),
            ("an empty key ID", Method::GET, "/tags".into(), None),
            ("an empty tag key", Method::DELETE, at("tags/"), None),
            ("a segment too many", Method::DELETE, at("tags/a/b"), None),
            ("a segment too few", Method::POST, "action".into(), None),
            (
                "a literal segment differs",
                Method::POST,
                at("tag/action"),
                None,
            ),
            (
                "the project's tags by POST",
                Method::POST,
                "tags".into(),
                None,
            ),
        ];
        for (rule, method, path, want) in cases {
            let got = Operation::route(&method, &path).map(|r| (r.op, r.key_id, r.tag_key));
            assert_eq!(got, want, "{rule}");
        }
    }

    #[test]
    fn every_operation_is_routed_back_from_its_own_method_and_path() {
        for &op in Operation::ALL {
            let path = op.path().replace("{key_id}", "k").replace("{key}", "t");
            assert_eq!(
                Operation::route(&op.method(), &path).map(|r| r.op),
                Some(op),
                "{op:?}"
            );
        }
    }
}
