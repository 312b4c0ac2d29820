//! HashiCorp Vault's transit API, the subset storage engines call (Ceph RGW's SSE-KMS with
//! `rgw_crypt_s3_kms_backend = vault` and its SSE-S3 bucket keys, SeaweedFS's OpenBao/Vault
//! provider, the `hvac` client), served under `/v1/` over the same keyring, tenancy and audit log
//! as the gRPC API.
//!
//! - A token (`X-Vault-Token`, or `Authorization: Bearer`) is a tenant's gRPC token; without a
//!   tenants file (loopback only) it is the tenant's domain ID. The region is the daemon's
//!   `--region`.
//! - `:name` is a key alias in the caller's domain and region; `POST transit/keys/:name` creates a
//!   customer key under it (or answers the existing one, as Vault does).
//! - Ciphertexts are `vault:v<version>:<base64 of the kmsbox blob>`; a `context` binds as the
//!   encryption context `{"vault_context": <base64>}` (FORMATS.md §4), so a blob made here opens
//!   through the gRPC API too.
//! - Answers are `{"data": {...}}`; refusals `{"errors": ["..."]}` with Vault's status codes
//!   (`error`). Request bodies are at most `model::MAX_BODY` bytes.
//!
//! Every operation passes through `dispatch`, named by its [`Op`] (a `batch_input` as one call,
//! item by item inside it); every call but `sys/health` is audited like a gRPC call.

mod error;
mod model;

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use kms_proto::ErrorCode;
use kms_proto::metadata::REQUEST_ID;
use zeroize::Zeroizing;

use self::model::{
    ConfigRequest, CreateKeyRequest, DATA_KEY_BITS, DataKeyRequest, DataRequest, Item, KEY_TYPE,
    KEY_TYPES_TAKEN, MAX_BODY, Period, RandomFormat, RandomRequest, check_key_version, context,
    decode_base64, encode_base64, format_ciphertext, parse_body, parse_ciphertext, random_request,
    refuse_nonce,
};
use super::{ApiState, Faulted, apply_faults};
use crate::audit::AuditLine;
use crate::auth::request_id_from;
use crate::blob::BlobHeader;
use crate::caught::caught;
use crate::error::KmsError;
use crate::keyring::validate::{DELETION_WINDOW, PAGE_SIZE};
use crate::keyring::{Caller, Configure, KeyOptions, Keyring, now_ms};
use crate::store::{KeyPolicy, KeyRecord, KeyState};

pub use self::error::VaultError;

/// The prefix of every path of the API: each one answers in Vault's shape (an unknown path too).
const PREFIX: &str = "/v1/";

/// Whether `path` is the Vault API's.
pub fn claims(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// A transit operation (and the token lookup), by the name its audit lines carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `POST transit/keys/:name`.
    CreateKey,
    /// `GET transit/keys/:name`.
    ReadKey,
    /// `POST transit/keys/:name/rotate`.
    RotateKey,
    /// `POST transit/keys/:name/config`.
    ConfigKey,
    /// `DELETE transit/keys/:name`.
    DeleteKey,
    /// `LIST transit/keys` (or `GET` with `?list=true`).
    ListKeys,
    /// `POST transit/encrypt/:name`.
    Encrypt,
    /// `POST transit/decrypt/:name`.
    Decrypt,
    /// `POST transit/datakey/plaintext/:name`.
    DataKeyPlaintext,
    /// `POST transit/datakey/wrapped/:name`.
    DataKeyWrapped,
    /// `POST transit/rewrap/:name`.
    Rewrap,
    /// `GET auth/token/lookup-self`.
    LookupSelf,
    /// `POST transit/random(/:source)(/:bytes)`.
    Random,
}

impl Op {
    /// The operation's name in the audit log.
    pub const fn name(self) -> &'static str {
        match self {
            Op::CreateKey => "Vault.CreateKey",
            Op::ReadKey => "Vault.ReadKey",
            Op::RotateKey => "Vault.RotateKey",
            Op::ConfigKey => "Vault.ConfigKey",
            Op::DeleteKey => "Vault.DeleteKey",
            Op::ListKeys => "Vault.ListKeys",
            Op::Encrypt => "Vault.Encrypt",
            Op::Decrypt => "Vault.Decrypt",
            Op::DataKeyPlaintext => "Vault.DataKeyPlaintext",
            Op::DataKeyWrapped => "Vault.DataKeyWrapped",
            Op::Rewrap => "Vault.Rewrap",
            Op::LookupSelf => "Vault.LookupSelf",
            Op::Random => "Vault.Random",
        }
    }

    /// The kms.v1 operation a fault rule names to match this call; `None` for one without a
    /// counterpart.
    pub const fn fault_operation(self) -> Option<crate::faults::Operation> {
        use crate::faults::Operation as O;
        Some(match self {
            Op::CreateKey => O::CreateKey,
            Op::ReadKey => O::DescribeKey,
            Op::RotateKey => O::RotateKey,
            // Most of what a key's configuration changes here is its rotation schedule.
            Op::ConfigKey => O::UpdateKeyRotationInterval,
            Op::DeleteKey => O::ScheduleKeyDeletion,
            Op::ListKeys => O::ListKeys,
            Op::Encrypt => O::Encrypt,
            Op::Decrypt => O::Decrypt,
            Op::DataKeyPlaintext => O::GenerateDataKey,
            Op::DataKeyWrapped => O::GenerateDataKeyWithoutPlaintext,
            Op::Rewrap => O::ReEncrypt,
            Op::LookupSelf => return None,
            Op::Random => O::GenerateRandom,
        })
    }
}

/// What a path and method ask for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Health,
    Call { op: Op, name: String },
}

/// Vault's method for listings (hvac sends it; Vault's CLI sends `GET ?list=true`).
const LIST: &str = "LIST";

/// Whether `query` sets `name` to `true`.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    query_values(query, name).any(|v| v == "true")
}

/// The values `query` gives `name`, in order (`name=value` pairs joined by `&`).
fn query_values<'a>(query: Option<&'a str>, name: &'a str) -> impl Iterator<Item = &'a str> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Vault's writes are `POST` or `PUT` alike (hvac sends `POST`, Vault's Go client `PUT`).
fn is_write(m: &Method) -> bool {
    m == Method::POST || m == Method::PUT
}

/// The route of `method` on `path` (the part after `/v1/`).
fn route(method: &Method, path: &str) -> Result<Route, VaultError> {
    let segments: Vec<&str> = path.split('/').collect();
    let call = |op: Op, name: &str| Route::Call {
        op,
        name: name.to_owned(),
    };
    let (route, allowed) = match segments.as_slice() {
        ["sys", "health"] => (
            Route::Health,
            method == Method::GET || method == Method::HEAD,
        ),
        ["auth", "token", "lookup-self"] => (
            call(Op::LookupSelf, ""),
            method == Method::GET || is_write(method),
        ),
        ["transit", "keys"] | ["transit", "keys", ""] => {
            (call(Op::ListKeys, ""), method.as_str() == LIST)
        }
        ["transit", "keys", name] if !name.is_empty() && method == Method::GET => {
            (call(Op::ReadKey, name), true)
        }
        ["transit", "keys", name] if !name.is_empty() && method == Method::DELETE => {
            (call(Op::DeleteKey, name), true)
        }
        ["transit", "keys", name] if !name.is_empty() => {
            (call(Op::CreateKey, name), is_write(method))
        }
        ["transit", "keys", name, "rotate"] if !name.is_empty() => {
            (call(Op::RotateKey, name), is_write(method))
        }
        ["transit", "keys", name, "config"] if !name.is_empty() => {
            (call(Op::ConfigKey, name), is_write(method))
        }
        ["transit", "encrypt", name] if !name.is_empty() => {
            (call(Op::Encrypt, name), is_write(method))
        }
        ["transit", "decrypt", name] if !name.is_empty() => {
            (call(Op::Decrypt, name), is_write(method))
        }
        ["transit", "rewrap", name] if !name.is_empty() => {
            (call(Op::Rewrap, name), is_write(method))
        }
        ["transit", "datakey", "plaintext", name] if !name.is_empty() => {
            (call(Op::DataKeyPlaintext, name), is_write(method))
        }
        // The rest of the path (`:source`, `:bytes`) as the call's name, read by `random`.
        ["transit", "random", rest @ ..] if rest.len() <= 2 => {
            (call(Op::Random, &rest.join("/")), is_write(method))
        }
        ["transit", "datakey", "wrapped", name] if !name.is_empty() => {
            (call(Op::DataKeyWrapped, name), is_write(method))
        }
        _ => return Err(VaultError::no_route(path)),
    };
    if !allowed {
        return Err(VaultError::unsupported_operation(method, path));
    }
    Ok(route)
}

/// A request whose handler panicked: 500 with `{"errors": ["internal error"]}`, as Vault
/// answers its own internal errors.
fn internal_error() -> VaultError {
    VaultError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "internal error".to_owned(),
        code: ErrorCode::Internal,
    }
}

/// The answer to a request whose handler panicked before its caller was known.
pub(crate) fn internal() -> Response {
    internal_error().into_response()
}

/// Serves one request whose path the API [`claims`], in whatever body type the server gives
/// (reached through [`super::ApiFront`], in front of the routes).
pub fn handle<B>(
    api: Arc<ApiState>,
    request: http::Request<B>,
) -> impl Future<Output = Response> + Send
where
    B: super::IncomingBody + Send,
{
    // Split here: the future then owns the parts once, as captured (see `huawei::handle`).
    let (mut parts, body) = request.into_parts();
    async move {
        let path = parts.uri.path().strip_prefix(PREFIX).unwrap_or_default();
        // Vault takes `GET ...?list=true` for `LIST` (for clients that cannot send LIST).
        if parts.method == Method::GET && query_flag(parts.uri.query(), "list") {
            parts.method = Method::from_bytes(LIST.as_bytes()).unwrap_or(Method::GET);
        }
        let mut response = match route(&parts.method, path) {
            Err(e) => e.into_response(),
            Ok(Route::Health) => health(&api, parts.uri.query()),
            Ok(Route::Call { op, name }) => {
                // Boxed: one call's state would otherwise be carried by the health check's
                // future too.
                Box::pin(call(&api, op, name, &parts.headers, body)).await
            }
        };
        // As Vault: answers may hold plaintexts and data keys, which no cache may keep.
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        response
    }
}

/// The message of a call refused because the audit log cannot be written.
const AUDIT_UNAVAILABLE: &str =
    "the audit log cannot be written; calls are refused until it can (--audit-failure=refuse)";

/// What the audit line of a call carries.
struct Audit {
    op: Op,
    request_id: String,
    domain: String,
    region: String,
    requested_key: String,
    /// What a fault rule did to the call.
    injected: Option<String>,
    /// Its line is written already (a hung call).
    audited: bool,
}

impl Audit {
    fn line<'a>(&'a self, key_id: &'a str, outcome: &'static str) -> AuditLine<'a> {
        AuditLine {
            time_ms: now_ms(),
            domain: &self.domain,
            region: &self.region,
            operation: self.op.name(),
            key_id,
            outcome,
            request_id: &self.request_id,
            injected: self.injected.as_deref(),
        }
    }
}

/// An operation's answer: the `data` of the response, the key it concerned, and whether its
/// audit line must be on disk before the reply (a key created or changed).
struct Answer {
    data: serde_json::Value,
    key: Option<Arc<KeyRecord>>,
    durable: bool,
    /// `200`; `204` (no body) for a deletion; or a batch's status when some of its items failed.
    status: StatusCode,
    /// The code of a batch's first failed item, for the audit line.
    failed: Option<ErrorCode>,
}

/// One call: authenticate, read the body, `dispatch`, audit, answer.
async fn call(
    api: &ApiState,
    op: Op,
    name: String,
    headers: &HeaderMap,
    body: impl super::IncomingBody,
) -> Response {
    let mut audit = Audit {
        op,
        request_id: request_id_from(headers.get(REQUEST_ID).and_then(|v| v.to_str().ok())),
        domain: String::new(),
        region: String::new(),
        // Random bytes concern no key; their name is the path's `:source` and `:bytes`.
        requested_key: if op == Op::Random {
            String::new()
        } else {
            crate::audit::requested_key_prefix(&name).to_owned()
        },
        injected: None,
        audited: false,
    };
    let result = async {
        let caller = api
            .auth
            .authenticate_token(token(headers)?)
            .map_err(|e| VaultError::from_kms(&e, false))?;
        audit.domain = caller.domain.as_str().to_owned();
        audit.region = caller.region.as_str().to_owned();
        if api.audit.refusing() {
            return Err(VaultError::audit_unavailable(AUDIT_UNAVAILABLE));
        }
        let body = read_body(headers, body).await?;
        let key = || api.keyring.find_alias(&caller, &name).ok().map(|r| r.uuid);
        let faulted = if api.faults.active() {
            // Boxed: rare, and its state would otherwise enlarge every call's future.
            Box::pin(apply_faults(
                &api.faults,
                op.fault_operation(),
                &caller,
                key,
            ))
            .await
        } else {
            Faulted::Run(None)
        };
        match faulted {
            Faulted::Run(note) => audit.injected = note,
            Faulted::Fail {
                code,
                message,
                note,
            } => {
                audit.injected = Some(note);
                return Err(VaultError::injected(code, message));
            }
            Faulted::Hang(note) => {
                // Its line now: the caller's timeout drops the call without a word.
                audit.injected = Some(note);
                api.audit
                    .record(audit.line(&audit.requested_key, "hang"))
                    .await;
                audit.audited = true;
                Box::pin(api.faults.hang()).await;
                return Err(VaultError::injected(
                    ErrorCode::ServiceUnavailable,
                    "the daemon is stopping".into(),
                ));
            }
        }
        let dispatched = dispatch(&api.keyring, &caller, op, &name, &body);
        caught("vault", dispatched, || Err(internal_error())).await
    }
    .await;
    let answer = match result {
        Ok(a) => a,
        Err(e) => return refuse(api, &audit, e).await,
    };
    let key_id = answer
        .key
        .as_ref()
        .map(|k| k.full_id().to_string())
        .unwrap_or_default();
    let line = audit.line(&key_id, answer.failed.map_or("ok", ErrorCode::as_str));
    if answer.durable {
        if Box::pin(api.audit.record_durable(line)).await.is_err() {
            // The change is in the store and its line is kept to be written once the log can
            // be, but the call is not acknowledged.
            let e = VaultError::audit_unavailable(AUDIT_UNAVAILABLE);
            return refuse(api, &audit, e).await;
        }
    } else {
        api.audit.record(line).await;
    }
    if answer.status == StatusCode::NO_CONTENT {
        return with_request_id(StatusCode::NO_CONTENT.into_response(), &audit);
    }
    let body = serde_json::json!({
        "request_id": audit.request_id,
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": answer.data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    });
    with_request_id((answer.status, axum::Json(body)).into_response(), &audit)
}

/// Logs, audits and answers a refused call; boxed, as the refusals are off the data path and
/// would otherwise each make every call's future larger.
fn refuse<'a>(
    api: &'a ApiState,
    audit: &'a Audit,
    e: VaultError,
) -> futures::future::BoxFuture<'a, Response> {
    Box::pin(async move {
        if e.status.is_server_error() {
            tracing::error!(op = audit.op.name(), request_id = %audit.request_id, error = %e.message, "vault call failed");
        } else {
            tracing::debug!(op = audit.op.name(), request_id = %audit.request_id, error = %e.message, "vault call refused");
        }
        if !audit.audited {
            api.audit
                .record(audit.line(&audit.requested_key, e.code.as_str()))
                .await;
        }
        with_request_id(e.into_response(), audit)
    })
}

fn with_request_id(mut r: Response, audit: &Audit) -> Response {
    if let Ok(v) = http::HeaderValue::from_str(&audit.request_id) {
        r.headers_mut().insert(REQUEST_ID, v);
    }
    r
}

/// The caller's token: `X-Vault-Token` (which Ceph RGW sends twice, the same), or
/// `Authorization: Bearer`. Copies that disagree are refused, so that none goes unchecked; an
/// `Authorization` of another scheme carries no token.
fn token(headers: &HeaderMap) -> Result<&str, VaultError> {
    let mut found: Option<&str> = None;
    let vault_tokens = headers.get_all("x-vault-token").iter();
    let bearer = headers.get_all(http::header::AUTHORIZATION).iter();
    if headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(VaultError::bad_request(
            "authorization is repeated; it may appear at most once",
        ));
    }
    // Another scheme is no token (as in Vault, which reads only Bearer).
    let bearer = bearer
        .filter_map(|v| v.to_str().ok()?.strip_prefix("Bearer "))
        .map(Ok);
    let vault = vault_tokens.map(|v| {
        v.to_str()
            .map_err(|_| VaultError::bad_request("X-Vault-Token is not visible ASCII"))
    });
    for t in vault.chain(bearer) {
        let t = t?;
        if t.is_empty() {
            continue;
        }
        match found {
            None => found = Some(t),
            Some(prev) if prev == t => {}
            Some(_) => {
                return Err(VaultError::bad_request(
                    "the request carries different tokens (X-Vault-Token, Authorization)",
                ));
            }
        }
    }
    found.ok_or_else(|| VaultError::permission_denied("missing client token"))
}

/// Reads a request body of at most [`MAX_BODY`] bytes ([`super::read_body`]).
async fn read_body(
    headers: &HeaderMap,
    body: impl super::IncomingBody,
) -> Result<super::RequestBody, VaultError> {
    super::read_body(headers, body, MAX_BODY)
        .await
        .map_err(|e| match e {
            super::BodyError::TooLarge => VaultError::body_too_large(MAX_BODY),
            super::BodyError::Unreadable(e) => {
                VaultError::bad_request(format!("reading the request body: {e}"))
            }
        })
}

/// Runs one operation for an authenticated caller. Every transit operation passes through here,
/// named by `op`.
async fn dispatch(
    keyring: &Keyring,
    caller: &Caller,
    op: Op,
    name: &str,
    body: &[u8],
) -> Result<Answer, VaultError> {
    let kms = |e: KmsError| VaultError::from_kms(&e, op == Op::ReadKey);
    let find = || keyring.find_alias(caller, name).map_err(kms);
    let answer = |data: serde_json::Value, key: &Arc<KeyRecord>| Answer {
        data,
        key: Some(Arc::clone(key)),
        durable: false,
        status: StatusCode::OK,
        failed: None,
    };
    match op {
        Op::LookupSelf => Ok(Answer {
            data: lookup_self(caller),
            key: None,
            durable: false,
            status: StatusCode::OK,
            failed: None,
        }),
        Op::Random => {
            let req: RandomRequest = parse_body(body)?;
            let (bytes, format) = random_request(name, &req)?;
            // The keyring's refusal names its own field; this API's is `bytes`.
            let drawn = keyring.generate_random(bytes).map_err(|e| match e {
                KmsError::Invalid { code, reason, .. } => VaultError {
                    status: StatusCode::BAD_REQUEST,
                    message: format!("invalid bytes: {reason}"),
                    code,
                },
                e => VaultError::from_kms(&e, false),
            })?;
            let text = Zeroizing::new(match format {
                RandomFormat::Base64 => encode_base64(&drawn),
                RandomFormat::Hex => hex::encode(&*drawn),
            });
            Ok(Answer {
                data: serde_json::json!({ "random_bytes": text.as_str() }),
                key: None,
                durable: false,
                status: StatusCode::OK,
                failed: None,
            })
        }
        Op::CreateKey => {
            let req: CreateKeyRequest = parse_body(body)?;
            let options = check_create(&req)?;
            match keyring.find_alias(caller, name) {
                // A name whose key was deleted (scheduled) is not free until the key is purged;
                // answering that key would hand out one that serves no call.
                Ok(rec) if rec.state == KeyState::PendingDeletion => {
                    Err(VaultError::bad_request(format!(
                        "key {name} was deleted and is pending deletion until it is purged: \
                         cancel its deletion (kmsctl cancel-key-deletion {}) or choose another \
                         name",
                        rec.full_id_string()
                    )))
                }
                // Vault answers a create of an existing key with that key, its options unchanged.
                Ok(rec) => Ok(answer(key_data(&rec), &rec)),
                // Boxed, as the rotation below: the store's wait would otherwise enlarge every
                // data call's future.
                Err(KmsError::KeyNotFound(_)) => {
                    match Box::pin(keyring.create_key_with(caller, name, options)).await {
                        Ok(rec) => Ok(Answer {
                            durable: true,
                            ..answer(key_data(&rec), &rec)
                        }),
                        // Created by a concurrent call in between.
                        Err(KmsError::AliasExists(_)) => {
                            let rec = find()?;
                            Ok(answer(key_data(&rec), &rec))
                        }
                        Err(e) => Err(kms(e)),
                    }
                }
                Err(e) => Err(kms(e)),
            }
        }
        Op::ReadKey => {
            let rec = find()?;
            Ok(answer(key_data(&rec), &rec))
        }
        Op::ListKeys => {
            let names = key_names(keyring, caller).map_err(kms)?;
            if names.is_empty() {
                // As Vault answers an empty listing (hvac: `InvalidPath`).
                return Err(VaultError::nothing_listed("keys"));
            }
            Ok(Answer {
                data: serde_json::json!({ "keys": names }),
                key: None,
                durable: false,
                status: StatusCode::OK,
                failed: None,
            })
        }
        Op::RotateKey => {
            let rec = find()?;
            let rec = Box::pin(keyring.rotate(caller, &rec.full_id().to_string()))
                .await
                .map_err(kms)?;
            Ok(Answer {
                durable: true,
                ..answer(key_data(&rec), &rec)
            })
        }
        Op::ConfigKey => {
            let req: ConfigRequest = parse_body(body)?;
            let change = check_config(&req)?;
            let rec = find()?;
            let changed = Box::pin(keyring.configure(caller, &rec.full_id_string(), change))
                .await
                .map_err(kms)?;
            Ok(Answer {
                // Audited as a change only when it is one.
                durable: !Arc::ptr_eq(&rec, &changed),
                ..answer(key_data(&changed), &changed)
            })
        }
        Op::DeleteKey => {
            let rec = find()?;
            // As Vault answers for a key without `deletion_allowed` (hvac: `InvalidRequest`).
            if !rec.policy.deletion_allowed {
                return Err(VaultError::bad_request(format!(
                    "error deleting policy {name}: deletion is not allowed for this policy \
                     (set deletion_allowed in keys/{name}/config first)"
                )));
            }
            let days = DELETION_WINDOW.min_days;
            let scheduled =
                Box::pin(keyring.schedule_deletion(caller, &rec.full_id_string(), days))
                    .await
                    .map_err(kms)?;
            Ok(Answer {
                durable: true,
                status: StatusCode::NO_CONTENT,
                ..answer(serde_json::Value::Null, &scheduled)
            })
        }
        Op::Encrypt | Op::Decrypt | Op::Rewrap => {
            let mut req: DataRequest<'_> = parse_body(body)?;
            let rec = find()?;
            let one = |item: &Item<'_>| match op {
                Op::Encrypt => encrypt_one(keyring, caller, &rec, item),
                Op::Decrypt => decrypt_one(keyring, caller, &rec, item),
                _ => rewrap_one(keyring, caller, &rec, item),
            };
            match req.batch_input.take() {
                None => Ok(answer(one(&req.item())?, &rec)),
                Some(items) => batch(&items, req.partial_failure_response_code, &rec, one),
            }
        }
        Op::DataKeyPlaintext | Op::DataKeyWrapped => {
            let req: DataKeyRequest<'_> = parse_body(body)?;
            refuse_nonce(req.nonce.as_ref())?;
            let bits = req.bits.unwrap_or(256);
            if !DATA_KEY_BITS.contains(&bits) {
                return Err(VaultError::bad_request(format!(
                    "invalid bits {bits}: 128, 256 or 512"
                )));
            }
            // Vault's datakey takes no associated data.
            let ctx = context(req.context.as_deref(), None)?;
            let rec = find()?;
            check_key_version(req.key_version, rec.current_version)?;
            let dk = keyring
                .generate_data_key(caller, &rec.full_id().to_string(), bits / 8, &ctx)
                .map_err(kms)?;
            let mut data = serde_json::json!({
                "ciphertext": format_ciphertext(dk.version, &dk.blob),
                "key_version": dk.version,
            });
            if op == Op::DataKeyPlaintext {
                let plaintext = Zeroizing::new(encode_base64(&dk.plaintext));
                data["plaintext"] = serde_json::Value::from(plaintext.as_str());
            }
            Ok(answer(data, &dk.key))
        }
    }
}

/// The encryption context of an item: its `context` and `associated_data` (FORMATS.md §4). A
/// derived key needs the `context` itself: associated data does not stand in for it.
fn item_context(rec: &KeyRecord, item: &Item<'_>) -> Result<crate::keyring::Context, VaultError> {
    if rec.policy.context_required && item.context.as_deref().is_none_or(str::is_empty) {
        return Err(VaultError::bad_request(format!(
            "key {} requires an encryption context on every call (it was created as a derived \
             key): missing 'context'",
            rec.full_id_string()
        )));
    }
    context(item.context.as_deref(), item.associated_data.as_deref())
}

/// `encrypt` of one item.
fn encrypt_one(
    keyring: &Keyring,
    caller: &Caller,
    rec: &KeyRecord,
    item: &Item<'_>,
) -> Result<serde_json::Value, VaultError> {
    refuse_nonce(item.nonce.as_ref())?;
    let plaintext = item
        .plaintext
        .as_deref()
        .ok_or_else(|| VaultError::bad_request("missing plaintext to encrypt"))?;
    let plaintext = decode_base64("plaintext", plaintext)?;
    let ctx = item_context(rec, item)?;
    check_key_version(item.key_version, rec.current_version)?;
    let e = keyring
        .encrypt(caller, &rec.full_id().to_string(), &plaintext, &ctx)
        .map_err(|e| VaultError::from_kms(&e, false))?;
    Ok(serde_json::json!({
        "ciphertext": format_ciphertext(e.version, &e.blob),
        "key_version": e.version,
    }))
}

/// `decrypt` of one item.
fn decrypt_one(
    keyring: &Keyring,
    caller: &Caller,
    rec: &KeyRecord,
    item: &Item<'_>,
) -> Result<serde_json::Value, VaultError> {
    refuse_nonce(item.nonce.as_ref())?;
    let blob = ciphertext_blob(item.ciphertext.as_deref())?;
    let ctx = item_context(rec, item)?;
    let d = keyring
        .decrypt(caller, &blob, &ctx, &rec.full_id().to_string())
        .map_err(|e| VaultError::from_kms(&e, false))?;
    let plaintext = Zeroizing::new(encode_base64(&d.plaintext));
    Ok(serde_json::json!({ "plaintext": plaintext.as_str() }))
}

/// `rewrap` of one item: decrypted and sealed again under the key's latest version, same context.
fn rewrap_one(
    keyring: &Keyring,
    caller: &Caller,
    rec: &KeyRecord,
    item: &Item<'_>,
) -> Result<serde_json::Value, VaultError> {
    refuse_nonce(item.nonce.as_ref())?;
    let blob = ciphertext_blob(item.ciphertext.as_deref())?;
    let ctx = item_context(rec, item)?;
    check_key_version(item.key_version, rec.current_version)?;
    let full = rec.full_id().to_string();
    let r = keyring
        .re_encrypt(caller, &blob, &ctx, &full, &full, &ctx)
        .map_err(|e| VaultError::from_kms(&e, false))?;
    Ok(serde_json::json!({
        "ciphertext": format_ciphertext(r.encrypted.version, &r.encrypted.blob),
        "key_version": r.encrypted.version,
    }))
}

/// A `batch_input`: each item run on its own, its result or its error in `batch_results` (with
/// its `reference`). As Vault: `400` if an item was refused for its input, else `500` if one
/// failed inside, else `200`; `partial_failure_response_code` replaces the first two when some
/// items succeeded.
fn batch(
    items: &[Item<'_>],
    partial_failure_response_code: Option<u16>,
    rec: &Arc<KeyRecord>,
    one: impl Fn(&Item<'_>) -> Result<serde_json::Value, VaultError>,
) -> Result<Answer, VaultError> {
    if items.is_empty() {
        return Err(VaultError::bad_request("missing batch input to process"));
    }
    let mut results = Vec::with_capacity(items.len());
    let (mut succeeded, mut user_error, mut internal_error) = (false, false, false);
    let mut failed = None;
    for item in items {
        let reference = item.reference.clone().unwrap_or_default();
        match one(item) {
            Ok(mut result) => {
                succeeded = true;
                result["reference"] = serde_json::Value::from(reference);
                results.push(result);
            }
            Err(e) => {
                if e.status.is_server_error() {
                    internal_error = true;
                } else {
                    user_error = true;
                }
                failed.get_or_insert(e.code);
                results.push(serde_json::json!({ "error": e.message, "reference": reference }));
            }
        }
    }
    let mut status = if user_error {
        StatusCode::BAD_REQUEST
    } else if internal_error {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    if status != StatusCode::OK
        && succeeded
        && let Some(code) = partial_failure_response_code.and_then(|c| StatusCode::from_u16(c).ok())
    {
        status = code;
    }
    Ok(Answer {
        data: serde_json::json!({ "batch_results": results }),
        key: Some(Arc::clone(rec)),
        durable: false,
        status,
        failed,
    })
}

/// The blob of a request's `ciphertext`, whose `vault:v<version>:` must be the version the blob
/// was sealed under.
fn ciphertext_blob(given: Option<&str>) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let text = given.ok_or_else(|| VaultError::bad_request("missing ciphertext to decrypt"))?;
    let (version, blob) = parse_ciphertext(text)?;
    let header = BlobHeader::parse(&blob).map_err(|e| VaultError::from_kms(&e, false))?;
    if header.key_version != version {
        return Err(VaultError::bad_request(format!(
            "invalid ciphertext: its prefix says version {version}, its blob was sealed under version {}",
            header.key_version
        )));
    }
    Ok(blob)
}

/// The key options kmsbox cannot honour are refused, not ignored; answers the options to create
/// the key with.
fn check_create(req: &CreateKeyRequest) -> Result<KeyOptions, VaultError> {
    if let Some(t) = req.key_type.as_deref()
        && !KEY_TYPES_TAKEN.contains(&t)
    {
        return Err(VaultError::bad_request(format!(
            "key type {t:?} is not supported: kmsbox keys are {KEY_TYPE} (chacha20-poly1305 is \
             taken and served as {KEY_TYPE})"
        )));
    }
    if req.convergent_encryption == Some(true) {
        return Err(VaultError::bad_request(
            "convergent_encryption is not supported: kmsbox draws a fresh nonce for every \
             ciphertext",
        ));
    }
    refuse_options(&[
        ("exportable", req.exportable),
        ("allow_plaintext_backup", req.allow_plaintext_backup),
    ])?;
    Ok(KeyOptions {
        rotation_days: req
            .auto_rotate_period
            .as_ref()
            .map_or(Ok(None), Period::rotation_days)?,
        policy: KeyPolicy {
            context_required: req.derived == Some(true),
            deletion_allowed: false,
        },
    })
}

/// Checks a key's new configuration whole before any of it is applied; answers the change.
fn check_config(req: &ConfigRequest) -> Result<Configure, VaultError> {
    if let Some(v) = req.min_decryption_version
        && v > 1
    {
        return Err(VaultError::bad_request(format!(
            "min_decryption_version {v} is not supported: kmsbox decrypts under every version of \
             a key (0 or 1)"
        )));
    }
    if let Some(v) = req.min_encryption_version
        && v != 0
    {
        return Err(VaultError::bad_request(format!(
            "min_encryption_version {v} is not supported: kmsbox encrypts under the latest version \
             of a key (0)"
        )));
    }
    refuse_options(&[
        ("exportable", req.exportable),
        ("allow_plaintext_backup", req.allow_plaintext_backup),
    ])?;
    let rotation = req
        .auto_rotate_period
        .as_ref()
        .map(Period::rotation_days)
        .transpose()?;
    Ok(Configure {
        rotation_enabled: rotation.map(|days| days.is_some()),
        rotation_days: rotation.flatten(),
        deletion_allowed: req.deletion_allowed,
    })
}

/// Refuses each option asked to be on that would let key material out.
fn refuse_options(asked: &[(&str, Option<bool>)]) -> Result<(), VaultError> {
    match asked.iter().find(|(_, on)| *on == Some(true)) {
        Some((field, _)) => Err(VaultError::bad_request(format!(
            "{field} is not supported: key material never leaves kmsbox"
        ))),
        None => Ok(()),
    }
}

/// The names of the caller's keys in its region that a transit path can name (an alias without
/// `/`), sorted, as Vault lists them.
fn key_names(keyring: &Keyring, caller: &Caller) -> Result<Vec<String>, KmsError> {
    let named = |r: &KeyRecord| !r.alias.is_empty() && !r.alias.contains('/');
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = keyring.list_where(caller, PAGE_SIZE.max, &token, named)?;
        names.extend(page.keys.iter().map(|r| r.alias.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    names.sort_unstable();
    Ok(names)
}

/// A key as `GET transit/keys/:name` shows it. `keys` maps each version to when it was made, a
/// Unix time in seconds; a version made before the store kept that time shows the key's creation
/// (the latest time it can be sure of). `kmsbox_key_id` and `kmsbox_key_state` are kmsbox's own,
/// for the gRPC API.
fn key_data(rec: &KeyRecord) -> serde_json::Value {
    let keys: serde_json::Map<String, serde_json::Value> = rec
        .versions
        .iter()
        .map(|v| {
            let made_ms = v.created_at_ms.max(rec.created_at_ms);
            (
                v.version.to_string(),
                serde_json::Value::from(made_ms.div_euclid(1000)),
            )
        })
        .collect();
    serde_json::json!({
        "name": rec.alias,
        "type": KEY_TYPE,
        "keys": keys,
        "latest_version": rec.current_version,
        "min_decryption_version": 1,
        "min_encryption_version": 0,
        "min_available_version": 0,
        "deletion_allowed": rec.policy.deletion_allowed,
        "derived": rec.policy.context_required,
        "exportable": false,
        "allow_plaintext_backup": false,
        "imported_key": false,
        "auto_rotate_period": Period::of(&rec.rotation),
        "supports_encryption": true,
        "supports_decryption": true,
        "supports_derivation": true,
        "supports_signing": false,
        "kmsbox_key_id": rec.full_id().to_string(),
        "kmsbox_key_state": rec.state.as_str(),
    })
}

/// `auth/token/lookup-self`: the tenant the token stands for. No expiry, no policies.
fn lookup_self(caller: &Caller) -> serde_json::Value {
    serde_json::json!({
        "display_name": format!("kmsbox-{}", caller.domain),
        "meta": {
            "kmsbox_domain_id": caller.domain.as_str(),
            "kmsbox_region": caller.region.as_str(),
        },
        "policies": [],
        "ttl": 0,
        "explicit_max_ttl": 0,
        "expire_time": null,
        "renewable": false,
        "num_uses": 0,
        "orphan": true,
        "type": "service",
    })
}

/// `sys/health`: `200` while the daemon serves, `503` (reported as sealed) while it refuses calls
/// because its audit log cannot be written; `activecode` and `sealedcode` choose other codes, as
/// in Vault. Not audited (no tenant, no key), like the gRPC health service.
fn health(api: &ApiState, query: Option<&str>) -> Response {
    let refusing = api.audit.refusing();
    let asked = |name: &str| {
        query_values(query, name)
            .next()
            .and_then(|v| v.parse::<u16>().ok())
            .and_then(|c| StatusCode::from_u16(c).ok())
    };
    let status = if refusing {
        asked("sealedcode").unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        asked("activecode").unwrap_or(StatusCode::OK)
    };
    let body = serde_json::json!({
        "initialized": true,
        "sealed": refusing,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now_ms().div_euclid(1000),
        "version": concat!(env!("CARGO_PKG_VERSION"), "+kmsbox"),
    });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_vaults_paths_and_methods() {
        let post = Method::POST;
        let put = Method::PUT;
        let get = Method::GET;
        let list = Method::from_bytes(LIST.as_bytes()).unwrap();
        let call = |op, name: &str| {
            Ok::<_, StatusCode>(Route::Call {
                op,
                name: name.into(),
            })
        };
        // (rule, method, path, route or status)
        let cases: Vec<(&str, &Method, &str, Result<Route, StatusCode>)> = vec![
            ("health", &get, "sys/health", Ok(Route::Health)),
            (
                "health by HEAD",
                &Method::HEAD,
                "sys/health",
                Ok(Route::Health),
            ),
            (
                "lookup-self",
                &get,
                "auth/token/lookup-self",
                call(Op::LookupSelf, ""),
            ),
            (
                "create",
                &post,
                "transit/keys/k1",
                call(Op::CreateKey, "k1"),
            ),
            (
                "create by PUT",
                &put,
                "transit/keys/k1",
                call(Op::CreateKey, "k1"),
            ),
            ("read", &get, "transit/keys/k1", call(Op::ReadKey, "k1")),
            (
                "rotate",
                &post,
                "transit/keys/k1/rotate",
                call(Op::RotateKey, "k1"),
            ),
            (
                "encrypt",
                &post,
                "transit/encrypt/k1",
                call(Op::Encrypt, "k1"),
            ),
            (
                "decrypt by PUT",
                &put,
                "transit/decrypt/k1",
                call(Op::Decrypt, "k1"),
            ),
            ("rewrap", &post, "transit/rewrap/k1", call(Op::Rewrap, "k1")),
            (
                "plaintext data key",
                &post,
                "transit/datakey/plaintext/k1",
                call(Op::DataKeyPlaintext, "k1"),
            ),
            (
                "wrapped data key",
                &post,
                "transit/datakey/wrapped/k1",
                call(Op::DataKeyWrapped, "k1"),
            ),
            (
                "delete",
                &Method::DELETE,
                "transit/keys/k1",
                call(Op::DeleteKey, "k1"),
            ),
            (
                "encrypt by GET",
                &get,
                "transit/encrypt/k1",
                Err(StatusCode::METHOD_NOT_ALLOWED),
            ),
            (
                "unknown data key kind",
                &post,
                "transit/datakey/raw/k1",
                Err(StatusCode::NOT_FOUND),
            ),
            (
                "key config",
                &post,
                "transit/keys/k1/config",
                call(Op::ConfigKey, "k1"),
            ),
            ("list", &list, "transit/keys", call(Op::ListKeys, "")),
            (
                "list, the path ending in /",
                &list,
                "transit/keys/",
                call(Op::ListKeys, ""),
            ),
            (
                "the key list by GET without ?list=true",
                &get,
                "transit/keys",
                Err(StatusCode::METHOD_NOT_ALLOWED),
            ),
            ("random", &post, "transit/random", call(Op::Random, "")),
            (
                "random of a size",
                &post,
                "transit/random/64",
                call(Op::Random, "64"),
            ),
            (
                "random of a source and size",
                &put,
                "transit/random/platform/64",
                call(Op::Random, "platform/64"),
            ),
            (
                "random, more in the path",
                &post,
                "transit/random/platform/64/x",
                Err(StatusCode::NOT_FOUND),
            ),
            (
                "random by GET",
                &get,
                "transit/random",
                Err(StatusCode::METHOD_NOT_ALLOWED),
            ),
            (
                "key config by GET",
                &get,
                "transit/keys/k1/config",
                Err(StatusCode::METHOD_NOT_ALLOWED),
            ),
            (
                "another mount",
                &post,
                "secret/data/x",
                Err(StatusCode::NOT_FOUND),
            ),
            (
                "empty name",
                &post,
                "transit/encrypt/",
                Err(StatusCode::NOT_FOUND),
            ),
        ];
        for (rule, method, path, want) in cases {
            let got = route(method, path).map_err(|e| e.status);
            assert_eq!(got, want, "{rule}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_listing_asks_by_list_true_only() {
        // (query, whether it asks for a listing)
        let cases = [
            (None, false),
            (Some("list=true"), true),
            (Some("a=b&list=true"), true),
            (Some("list=false"), false),
            (Some("list"), false),
            (Some("listing=true"), false),
        ];
        for (query, want) in cases {
            assert_eq!(query_flag(query, "list"), want, "{query:?}");
        }
    }

    #[tokio::test]
    async fn the_key_list_names_the_callers_keys_a_path_can_name_sorted() {
        use crate::crypto::RootKey;
        use crate::store::MemoryStore;
        use kms_proto::key_id::{DomainId, RegionId};
        let k = Keyring::open(Arc::new(MemoryStore::new()), RootKey::from_bytes([7; 32])).unwrap();
        let caller = |d: &str, r: &str| Caller {
            domain: DomainId::parse(d).unwrap(),
            region: RegionId::parse(r).unwrap(),
        };
        let alice = caller("alice", "r1");
        assert!(key_names(&k, &alice).unwrap().is_empty());
        for alias in ["zeta", "alpha", "team/app", "", "b.1"] {
            k.create_key(&alice, alias, "").await.unwrap();
        }
        k.create_key(&caller("bob", "r1"), "bobs", "")
            .await
            .unwrap();
        k.create_key(&caller("alice", "r2"), "elsewhere", "")
            .await
            .unwrap();
        k.default_key(&alice, "obs").await.unwrap();
        assert_eq!(
            key_names(&k, &alice).unwrap(),
            ["alpha", "b.1", "zeta"],
            "no key without a name or with '/', none of another tenant or region"
        );
    }

    #[test]
    fn the_token_comes_from_either_header_and_copies_must_agree() {
        // (rule, headers, token or status)
        type Case<'a> = (
            &'a str,
            Vec<(&'static str, &'a str)>,
            Result<&'a str, StatusCode>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("X-Vault-Token", vec![("x-vault-token", "t1")], Ok("t1")),
            ("Bearer", vec![("authorization", "Bearer t1")], Ok("t1")),
            (
                "the same token twice, as Ceph RGW sends it",
                vec![("x-vault-token", "t1"), ("x-vault-token", "t1")],
                Ok("t1"),
            ),
            (
                "both headers agreeing",
                vec![("x-vault-token", "t1"), ("authorization", "Bearer t1")],
                Ok("t1"),
            ),
            (
                "two different tokens",
                vec![("x-vault-token", "t1"), ("x-vault-token", "t2")],
                Err(StatusCode::BAD_REQUEST),
            ),
            (
                "headers disagreeing",
                vec![("x-vault-token", "t1"), ("authorization", "Bearer t2")],
                Err(StatusCode::BAD_REQUEST),
            ),
            ("no token", vec![], Err(StatusCode::FORBIDDEN)),
            (
                "an empty token",
                vec![("x-vault-token", "")],
                Err(StatusCode::FORBIDDEN),
            ),
            (
                "another scheme is no token",
                vec![("authorization", "Basic dDE=")],
                Err(StatusCode::FORBIDDEN),
            ),
            (
                "another scheme beside X-Vault-Token is ignored",
                vec![("x-vault-token", "t1"), ("authorization", "Basic dDE=")],
                Ok("t1"),
            ),
        ];
        for (rule, pairs, want) in cases {
            let h = headers(&pairs);
            let got = token(&h).map_err(|e| e.status);
            assert_eq!(got, want, "{rule}");
        }
    }

    #[test]
    fn each_version_shows_when_it_was_made_else_the_keys_creation() {
        use crate::store::{Creator, KeyState, Rotation, WrappedVersion};
        use kms_proto::key_id::{DomainId, RegionId};
        let created_ms = 1_700_000_000_000;
        // (rule, the version's stored time, the time `keys` shows in seconds)
        let cases = [
            ("version 1 is made with its key", created_ms, 1_700_000_000),
            (
                "a rotation shows its own time",
                created_ms + 86_400_500,
                1_700_086_400,
            ),
            (
                "a version from before versions kept a time shows the key's",
                0,
                1_700_000_000,
            ),
        ];
        let versions = (1..)
            .zip(&cases)
            .map(|(version, &(_, made, _))| WrappedVersion {
                version,
                scheme: 1,
                wrapped: vec![1; 40],
                nonces_reserved: 0,
                created_at_ms: made,
            })
            .collect::<Vec<_>>();
        let rec = KeyRecord {
            uuid: uuid::Uuid::from_u128(7),
            domain: DomainId::parse("d1").unwrap(),
            region: RegionId::parse("r1").unwrap(),
            alias: "app".into(),
            description: String::new(),
            state: KeyState::Enabled,
            creator: Creator::Customer,
            service: String::new(),
            created_at_ms: created_ms,
            deletion_date_ms: None,
            current_version: 3,
            versions,
            mac: None,
            rotation: Rotation::default(),
            policy: KeyPolicy::default(),
            tags: crate::store::Tags::new(),
        };
        let shown = key_data(&rec);
        for (version, (rule, _, secs)) in (1..).zip(cases) {
            assert_eq!(shown["keys"][version.to_string()], secs, "{rule}");
        }
    }
}
