//! The admin gRPC service `kms.admin.v1.Admin`: the test control plane, served beside `kms.v1` on
//! the same address. It adds, lists and removes fault rules ([`crate::faults`]) and reads and
//! moves the daemon's clock ([`crate::clock`]); moving a virtual clock runs the work that came due
//! (the purge of keys whose deletion date has passed) before the call returns.
//!
//! Who may call it ([`AdminGrpc::authorize`]): with `--admin-token`, whoever presents
//! `authorization: Bearer <admin token>` (compared in constant time); a tenant's token is refused.
//! Without one, the API is open on a daemon without a tenants file (which listens on loopback only
//! and trusts its callers anyway) and closed on a daemon with one. Every admin call is audited
//! (`Admin.AddFault`, ...).

use std::sync::Arc;

use kms_proto::ErrorCode;
use kms_proto::admin as pb;
use kms_proto::admin::admin_server::Admin;
use kms_proto::metadata::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::audit::{AuditLine, AuditLog};
use crate::auth::{Authenticator, MIN_TOKEN_LEN, request_id};
use crate::clock::Clock;
use crate::error::KmsError;
use crate::faults::{Action, FailSpec, FaultRule, Faults, HangSpec, LatencySpec, RuleSpec};
use crate::grpc::timestamp;
use crate::grpc::{RefusesUndecodable, undecodable};
use crate::keyring::{Keyring, now_ms};

/// The admin API's bearer token (`--admin-token`). Never printed.
#[derive(Clone)]
pub struct AdminToken(Zeroizing<String>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// A token of at least [`MIN_TOKEN_LEN`] characters, like the tenants' tokens.
    pub fn new(token: String) -> Result<Self, String> {
        let token = Zeroizing::new(token);
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the admin token is shorter than {MIN_TOKEN_LEN} characters"
            ));
        }
        Ok(Self(token))
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// The `kms.admin.v1.Admin` implementation.
#[derive(Debug, Clone)]
pub struct AdminGrpc {
    keyring: Arc<Keyring>,
    auth: Arc<Authenticator>,
    /// SHA-256 of the admin token; `None` without `--admin-token`.
    token: Option<[u8; 32]>,
    faults: Arc<Faults>,
    audit: AuditLog,
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

impl AdminGrpc {
    /// Wires the admin API to the keyring (and its clock), the fault rules and the audit log.
    pub fn new(
        keyring: Arc<Keyring>,
        auth: Arc<Authenticator>,
        token: Option<&AdminToken>,
        faults: Arc<Faults>,
        audit: AuditLog,
    ) -> Self {
        Self {
            keyring,
            auth,
            token: token.map(AdminToken::digest),
            faults,
            audit,
        }
    }

    fn clock(&self) -> &Clock {
        self.keyring.clock()
    }

    /// Whether the request may use the admin API.
    pub fn authorize(&self, md: &MetadataMap) -> Result<(), KmsError> {
        let Some(digest) = &self.token else {
            return if self.auth.requires_tokens() {
                Err(KmsError::PermissionDenied(
                    "the admin API is closed: this daemon has a tenants file and no --admin-token"
                        .into(),
                ))
            } else {
                Ok(())
            };
        };
        if md.get_all(AUTHORIZATION).iter().nth(1).is_some() {
            return Err(KmsError::InvalidArgument {
                field: AUTHORIZATION,
                reason: "repeated; it may appear at most once".into(),
            });
        }
        let token = md
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(KmsError::Unauthenticated(
                "admin calls need authorization: Bearer <admin token>",
            ))?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if bool::from(presented.ct_eq(digest)) {
            return Ok(());
        }
        if self.auth.requires_tokens() && self.auth.authenticate(md).is_ok() {
            return Err(KmsError::PermissionDenied(
                "a tenant's token cannot call the admin API".into(),
            ));
        }
        Err(KmsError::Unauthenticated("unknown admin token"))
    }

    /// One admin call: authorize, run, audit.
    async fn call<Req, T>(
        &self,
        op: &'static str,
        req: Request<Req>,
        run: impl AsyncFnOnce(Req) -> Result<T, KmsError>,
    ) -> RpcResult<T> {
        let rid = request_id(req.metadata());
        let result = match self.authorize(req.metadata()) {
            Ok(()) => run(req.into_inner()).await,
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.record(op, &rid, outcome).await;
        result.map(Response::new).map_err(|e| {
            tracing::debug!(op, error = %e, "admin call refused");
            Status::from(e)
        })
    }

    /// The audit line of admin call `op`.
    async fn record(&self, op: &'static str, request_id: &str, outcome: &'static str) {
        self.audit
            .record(AuditLine {
                time_ms: now_ms(),
                domain: "",
                region: "",
                operation: op,
                key_id: "",
                outcome,
                request_id,
                injected: None,
            })
            .await;
    }

    /// The clock's answer after it moved: runs the work that came due first.
    async fn moved(&self, now_ms: i64) -> Result<pb::ClockResponse, KmsError> {
        let due = self.keyring.run_due(now_ms).await?;
        let purged = due.purged;
        self.audit
            .record_scheduled_rotations(&due.rotated, crate::keyring::now_ms())
            .await;
        if purged > 0 {
            tracing::info!(
                deleted = purged,
                "purged keys past their deletion date (clock moved)"
            );
        }
        Ok(pb::ClockResponse {
            now: Some(timestamp(now_ms)),
            r#virtual: true,
            purged_keys: u32::try_from(purged).unwrap_or(u32::MAX),
            rotated_keys: u32::try_from(due.rotated.len()).unwrap_or(u32::MAX),
        })
    }
}

/// An admin request whose body is not one decodable message is refused with `code` and audited,
/// after the caller is authorized: one that is not gets that refusal instead, and learns nothing
/// about how its message was read.
impl RefusesUndecodable for AdminGrpc {
    async fn refuse_undecodable(
        &self,
        op: &'static str,
        md: &MetadataMap,
        code: ErrorCode,
        message: String,
    ) -> tonic::codegen::http::Response<tonic::body::Body> {
        let rid = request_id(md);
        let (outcome, status) = match self.authorize(md) {
            Err(e) => (e.code().as_str(), Status::from(e)),
            Ok(()) => (code.as_str(), undecodable(code, &message)),
        };
        self.record(op, &rid, outcome).await;
        tracing::debug!(op, error = %message, "undecodable admin request refused");
        status.into_http()
    }
}

fn invalid(field: &'static str) -> impl FnOnce(String) -> KmsError {
    move |reason| KmsError::InvalidArgument { field, reason }
}

/// Milliseconds of a protobuf duration, which must not be negative.
fn duration_ms(field: &'static str, d: &prost_types::Duration) -> Result<i64, KmsError> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(invalid(field)("must not be negative".into()));
    }
    d.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(d.nanos / 1_000_000)))
        .ok_or_else(|| invalid(field)("out of range".into()))
}

fn to_spec(rule: pb::FaultRule) -> Result<RuleSpec, KmsError> {
    let (fail, latency, hang) = match rule.action {
        None => (None, None, None),
        Some(pb::fault_rule::Action::Fail(f)) => (
            Some(FailSpec {
                error_code: f.error_code,
                message: f.message,
            }),
            None,
            None,
        ),
        Some(pb::fault_rule::Action::Latency(l)) => {
            let ms = |field, d: Option<prost_types::Duration>| {
                d.map(|d| duration_ms(field, &d))
                    .transpose()
                    .map(|ms| ms.map(|ms| u64::try_from(ms).unwrap_or(0)))
            };
            let min = ms("rule.latency.min", l.min)?.unwrap_or(0);
            let max = ms("rule.latency.max", l.max)?;
            (
                None,
                Some(LatencySpec {
                    min_ms: min,
                    max_ms: max,
                }),
                None,
            )
        }
        Some(pb::fault_rule::Action::Hang(_)) => (None, None, Some(HangSpec {})),
    };
    Ok(RuleSpec {
        operation: rule.operation,
        domain_id: Some(rule.domain_id),
        region: Some(rule.region),
        key_id: Some(rule.key_id),
        fail,
        latency,
        hang,
        probability: Some(rule.probability),
        count: Some(rule.count),
    })
}

fn pb_duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn to_pb(rule: &FaultRule) -> pb::FaultRule {
    let action = match &rule.action {
        Action::Fail { code, message } => pb::fault_rule::Action::Fail(pb::Fail {
            error_code: code.as_str().to_owned(),
            message: message.clone(),
        }),
        Action::Latency { min, max } => pb::fault_rule::Action::Latency(pb::Latency {
            min: Some(pb_duration(*min)),
            max: (max != min).then(|| pb_duration(*max)),
        }),
        Action::Hang => pb::fault_rule::Action::Hang(pb::Hang {}),
    };
    pb::FaultRule {
        operation: rule
            .operation
            .map_or_else(|| "*".to_owned(), |o| o.as_str().to_owned()),
        domain_id: rule
            .domain
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        region: rule
            .region
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        key_id: rule.key.map(|k| k.to_string()).unwrap_or_default(),
        action: Some(action),
        probability: rule.probability,
        count: rule.count.unwrap_or(0),
    }
}

#[tonic::async_trait]
impl Admin for AdminGrpc {
    async fn add_fault(
        &self,
        req: Request<pb::AddFaultRequest>,
    ) -> RpcResult<pb::AddFaultResponse> {
        self.call("Admin.AddFault", req, async |m| {
            let rule = m.rule.ok_or_else(|| invalid("rule")("missing".into()))?;
            let rule = to_spec(rule)?.check().map_err(|e| invalid("rule")(e.0))?;
            let id = self.faults.add(rule).map_err(|e| invalid("rule")(e.0))?;
            tracing::info!(id, "fault rule added");
            Ok(pb::AddFaultResponse { id })
        })
        .await
    }

    async fn list_faults(
        &self,
        req: Request<pb::ListFaultsRequest>,
    ) -> RpcResult<pb::ListFaultsResponse> {
        self.call("Admin.ListFaults", req, async |_| {
            Ok(pb::ListFaultsResponse {
                faults: self
                    .faults
                    .list()
                    .iter()
                    .map(|s| pb::FaultStatus {
                        id: s.id.clone(),
                        rule: Some(to_pb(&s.rule)),
                        hits: s.hits,
                        retired: s.retired,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn remove_fault(
        &self,
        req: Request<pb::RemoveFaultRequest>,
    ) -> RpcResult<pb::RemoveFaultResponse> {
        self.call("Admin.RemoveFault", req, async |m| {
            if self.faults.remove(&m.id) {
                tracing::info!(id = m.id, "fault rule removed");
                Ok(pb::RemoveFaultResponse {})
            } else {
                Err(invalid("id")(format!("no fault rule {:?}", m.id)))
            }
        })
        .await
    }

    async fn get_clock(&self, req: Request<pb::GetClockRequest>) -> RpcResult<pb::ClockResponse> {
        self.call("Admin.GetClock", req, async |_| {
            Ok(pb::ClockResponse {
                now: Some(timestamp(self.clock().now_ms())),
                r#virtual: self.clock().is_virtual(),
                purged_keys: 0,
                rotated_keys: 0,
            })
        })
        .await
    }

    async fn advance_clock(
        &self,
        req: Request<pb::AdvanceClockRequest>,
    ) -> RpcResult<pb::ClockResponse> {
        self.call("Admin.AdvanceClock", req, async |m| {
            let by = m.by.ok_or_else(|| invalid("by")("missing".into()))?;
            let by = duration_ms("by", &by)?;
            let now = self
                .clock()
                .advance(by)
                .map_err(|e| invalid("by")(e.to_string()))?;
            self.moved(now).await
        })
        .await
    }

    async fn set_clock(&self, req: Request<pb::SetClockRequest>) -> RpcResult<pb::ClockResponse> {
        self.call("Admin.SetClock", req, async |m| {
            let to = m.to.ok_or_else(|| invalid("to")("missing".into()))?;
            let to_ms = to
                .seconds
                .checked_mul(1000)
                .and_then(|ms| ms.checked_add(i64::from(to.nanos / 1_000_000)))
                .filter(|_| (0..1_000_000_000).contains(&to.nanos))
                .ok_or_else(|| invalid("to")("out of range".into()))?;
            let now = self
                .clock()
                .set(to_ms)
                .map_err(|e| invalid("to")(e.to_string()))?;
            self.moved(now).await
        })
        .await
    }

    async fn export_seed(
        &self,
        req: Request<pb::ExportSeedRequest>,
    ) -> RpcResult<pb::ExportSeedResponse> {
        // The audit log tells an export of key material from one of metadata.
        let op = if req.get_ref().include_material {
            "Admin.ExportSeedWithMaterial"
        } else {
            "Admin.ExportSeed"
        };
        self.call(op, req, async |m| {
            if m.include_material {
                tracing::warn!("exporting every key's material in the clear (export-seed)");
            }
            let text = crate::seed::export(&self.keyring, m.include_material)?;
            Ok(pb::ExportSeedResponse {
                seed_toml: text.to_string(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_never_prints_and_short_ones_are_refused() {
        let t = AdminToken::new("admin-token-0123456789".into()).unwrap();
        assert_eq!(format!("{t:?}"), "AdminToken(..)");
        let e = AdminToken::new("short".into()).unwrap_err();
        assert!(e.contains("shorter than"), "{e}");
    }
}
