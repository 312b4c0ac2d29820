//! The test control plane (`kms.admin.v1.Admin`) against the real daemon, in-process on loopback:
//! who may call it, faults injected into the KMS API as the OBS adapter and raw clients see them,
//! reproducible fault outcomes, and the virtual clock (deletion windows that end, dates that
//! follow it).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use kms_proto::ErrorCode;
use kms_proto::admin as apb;
use kms_proto::admin::admin_client::AdminClient;
use kms_proto::key_id::{DomainId, RegionId};
use kms_proto::v1 as pb;
use kmsbox_tests::{Tenant, TestDaemon, assert_refused, error_code};
use obs_adapter::{
    AdapterConfig, AdapterError, BucketFacts, Caller, GrpcKeyService, KeyPolicy, ObsAdapter,
    ObsRequest, Operation, StoredObject,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

const ADMIN_TOKEN: &str = "admin-secret-token-0001";
const ALICE_TOKEN: &str = "alice-secret-token-01";
const REGION: &str = "region";

fn tenants_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("tenants.toml");
    std::fs::write(
        &p,
        format!("[[tenants]]\ndomain_id = \"alice\"\ntoken = \"{ALICE_TOKEN}\"\n"),
    )
    .unwrap();
    p
}

async fn connect(d: &TestDaemon) -> Channel {
    Endpoint::from_shared(d.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A daemon on a virtual clock (starting at `start_ms`, else now), its admin client, and an OBS
/// adapter that allows customer keys.
async fn on_a_virtual_clock(
    start_ms: Option<i64>,
) -> (TestDaemon, AdminClient<Channel>, ObsAdapter<GrpcKeyService>) {
    let d = TestDaemon::start_with(move |c, _| {
        c.clock = kms_server::server::ClockConfig::Virtual { start_ms };
    })
    .await;
    let ch = connect(&d).await;
    let admin = AdminClient::new(ch.clone());
    let adapter = ObsAdapter::with_config(
        GrpcKeyService::new(ch),
        AdapterConfig {
            key_policy: KeyPolicy::AllowCustomerKeys,
        },
    );
    (d, admin, adapter)
}

/// `AdvanceClock` by `days`.
fn advance(days: i64) -> apb::AdvanceClockRequest {
    apb::AdvanceClockRequest {
        by: Some(prost_types::Duration {
            seconds: days * 86_400,
            nanos: 0,
        }),
    }
}

/// An admin request, with `authorization: Bearer <token>` when a token is given.
fn admin_req<T>(token: Option<&str>, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

/// A rule as the admin API takes it.
fn rule(operation: &str, action: apb::fault_rule::Action) -> apb::FaultRule {
    apb::FaultRule {
        operation: operation.into(),
        action: Some(action),
        ..Default::default()
    }
}

fn fail(code: &str) -> apb::fault_rule::Action {
    apb::fault_rule::Action::Fail(apb::Fail {
        error_code: code.into(),
        message: String::new(),
    })
}

fn latency_ms(ms: u64) -> apb::fault_rule::Action {
    apb::fault_rule::Action::Latency(apb::Latency {
        min: Some(prost_types::Duration {
            seconds: 0,
            nanos: i32::try_from(ms * 1_000_000).unwrap(),
        }),
        max: None,
    })
}

async fn add(admin: &mut AdminClient<Channel>, r: apb::FaultRule) -> String {
    admin
        .add_fault(admin_req(None, apb::AddFaultRequest { rule: Some(r) }))
        .await
        .unwrap()
        .into_inner()
        .id
}

async fn list(admin: &mut AdminClient<Channel>) -> Vec<apb::FaultStatus> {
    admin
        .list_faults(admin_req(None, apb::ListFaultsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .faults
}

/// The audit lines written so far, parsed.
async fn audit(d: &TestDaemon) -> Vec<serde_json::Value> {
    d.server().flush_audit().await;
    std::fs::read_to_string(d.data_dir().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn domain(s: &str) -> DomainId {
    DomainId::parse(s).unwrap()
}

fn bucket_of(owner: &str) -> BucketFacts {
    BucketFacts::new(
        "examplebucket",
        RegionId::parse(REGION).unwrap(),
        domain(owner),
    )
}

fn code(e: &AdapterError) -> (u16, &'static str) {
    let (s, c) = e.status_and_code();
    (s.as_u16(), c)
}

/// The adapter's PUT decision for an SSE-KMS upload by `owner` (with `key`, else the default key).
async fn put(
    adapter: &ObsAdapter<GrpcKeyService>,
    owner: &str,
    key: Option<&str>,
) -> Result<obs_adapter::Decision, AdapterError> {
    let mut h = HeaderMap::new();
    h.insert(
        HeaderName::from_static("x-obs-server-side-encryption"),
        HeaderValue::from_static("kms"),
    );
    if let Some(k) = key {
        h.insert(
            HeaderName::from_static("x-obs-server-side-encryption-kms-key-id"),
            HeaderValue::from_str(k).unwrap(),
        );
    }
    let c = Caller::new(domain(owner));
    let b = bucket_of(owner);
    adapter
        .decide(&ObsRequest::new(Operation::PutObject, &c, &b, "obj", &h))
        .await
}

/// Who may call the admin API: the admin token where there is one; nobody but loopback callers
/// of a daemon without tenants where there is none; never a tenant's token.
#[tokio::test]
async fn admin_calls_need_the_admin_token_and_a_tenant_token_never_opens_them() {
    let open = TestDaemon::start().await;
    let tenants_only = TestDaemon::start_with(|c, dir| c.tenants = Some(tenants_file(dir))).await;
    let both = TestDaemon::start_with(|c, dir| {
        c.tenants = Some(tenants_file(dir));
        c.admin_token = Some(kms_server::admin::AdminToken::new(ADMIN_TOKEN.into()).unwrap());
    })
    .await;
    let token_only = TestDaemon::start_with(|c, _| {
        c.admin_token = Some(kms_server::admin::AdminToken::new(ADMIN_TOKEN.into()).unwrap());
    })
    .await;
    let refused = |code: ErrorCode| Err::<(), _>(code);
    // (rule, daemon, bearer token presented, answer)
    type Case<'a> = (
        &'a str,
        &'a TestDaemon,
        Option<&'a str>,
        Result<(), ErrorCode>,
    );
    let cases: [Case<'_>; 11] = [
        (
            "loopback without tenants or admin token: open",
            &open,
            None,
            Ok(()),
        ),
        (
            "open daemon ignores a token",
            &open,
            Some("anything-at-all-0000"),
            Ok(()),
        ),
        (
            "tenants and no admin token: closed",
            &tenants_only,
            None,
            refused(ErrorCode::PermissionDenied),
        ),
        (
            "tenants and no admin token: a tenant token does not open it",
            &tenants_only,
            Some(ALICE_TOKEN),
            refused(ErrorCode::PermissionDenied),
        ),
        (
            "admin token set: none presented",
            &both,
            None,
            refused(ErrorCode::Unauthenticated),
        ),
        (
            "admin token set: a wrong one",
            &both,
            Some("not-the-admin-token-00"),
            refused(ErrorCode::Unauthenticated),
        ),
        (
            "admin token set: a tenant's token",
            &both,
            Some(ALICE_TOKEN),
            refused(ErrorCode::PermissionDenied),
        ),
        (
            "admin token set: the admin token",
            &both,
            Some(ADMIN_TOKEN),
            Ok(()),
        ),
        (
            "admin token without tenants: none presented",
            &token_only,
            None,
            refused(ErrorCode::Unauthenticated),
        ),
        (
            "admin token without tenants: a prefix of it",
            &token_only,
            Some(&ADMIN_TOKEN[..20]),
            refused(ErrorCode::Unauthenticated),
        ),
        (
            "admin token without tenants: the admin token",
            &token_only,
            Some(ADMIN_TOKEN),
            Ok(()),
        ),
    ];
    for (rule_name, d, token, want) in cases {
        let mut admin = AdminClient::new(connect(d).await);
        let got = admin
            .add_fault(admin_req(
                token,
                apb::AddFaultRequest {
                    rule: Some(rule("Decrypt", latency_ms(1))),
                },
            ))
            .await;
        match want {
            Ok(()) => assert!(got.is_ok(), "{rule_name}: {got:?}"),
            Err(c) => {
                let s = got.expect_err(rule_name);
                assert_eq!(s.code(), c.grpc_code(), "{rule_name}: {s:?}");
                assert_eq!(error_code(&s), Some(c), "{rule_name}: {s:?}");
            }
        }
    }
    // Refused calls added nothing: one rule on `both`, from the admin token.
    let mut admin = AdminClient::new(connect(&both).await);
    let rules = admin
        .list_faults(admin_req(Some(ADMIN_TOKEN), apb::ListFaultsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .faults;
    assert_eq!(rules.len(), 1);
    // The admin token is no tenant's token on the KMS API.
    let mut t = Tenant::connect(&both.endpoint(), "", None, Some(ADMIN_TOKEN)).await;
    let r = t
        .client
        .create_key(t.req(pb::CreateKeyRequest::default()))
        .await;
    assert_refused(
        r,
        Code::Unauthenticated,
        ErrorCode::Unauthenticated,
        "unknown bearer token",
    );
    // Every admin call is audited, refused ones too.
    let lines = audit(&both).await;
    let admin_lines: Vec<&str> = lines
        .iter()
        .filter(|l| l["operation"] == "Admin.AddFault")
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        admin_lines,
        ["KMSBOX.0401", "KMSBOX.0401", "KMSBOX.0403", "ok"]
    );
}

/// An injected KMS.0209 on GenerateDataKey for one domain: that domain's uploads fail as with a
/// disabled key, another domain keeps working, and the audit log marks the injected outcome.
#[tokio::test]
async fn injected_disabled_key_on_generate_data_key_hits_one_domain_only() {
    let d = TestDaemon::start().await;
    let ch = connect(&d).await;
    let mut admin = AdminClient::new(ch.clone());
    let adapter = ObsAdapter::new(GrpcKeyService::new(ch));
    let (victim, bystander) = ("victimdomain", "bystanderdomain");
    let id = add(
        &mut admin,
        apb::FaultRule {
            domain_id: victim.into(),
            ..rule("GenerateDataKey", fail("KMS.0209"))
        },
    )
    .await;
    assert_eq!(id, "f1");
    for (who, fails) in [(victim, true), (bystander, false), (victim, true)] {
        let decision = put(&adapter, who, None).await.unwrap();
        let got = adapter
            .generate_data_key(
                &Caller::new(domain(who)),
                &bucket_of(who),
                "obj",
                &decision.encryption,
            )
            .await;
        if fails {
            assert_eq!(
                code(&got.unwrap_err()),
                (400, "KMS.DisabledException"),
                "{who}"
            );
        } else {
            assert!(got.unwrap().is_some(), "{who}");
        }
    }
    let rules = list(&mut admin).await;
    assert_eq!(
        (rules[0].id.as_str(), rules[0].hits, rules[0].retired),
        ("f1", 2, false)
    );
    let gdk: Vec<(String, String, Option<String>)> = audit(&d)
        .await
        .iter()
        .filter(|l| l["operation"] == "GenerateDataKey")
        .map(|l| {
            (
                l["domain"].as_str().unwrap().to_owned(),
                l["outcome"].as_str().unwrap().to_owned(),
                l.get("injected").map(|v| v.as_str().unwrap().to_owned()),
            )
        })
        .collect();
    let injected = Some("fail KMS.0209 (rule f1)".to_owned());
    assert_eq!(
        gdk,
        [
            (victim.into(), "KMS.0209".into(), injected.clone()),
            (bystander.into(), "ok".into(), None),
            (victim.into(), "KMS.0209".into(), injected),
        ]
    );
}

/// Each injectable failure arrives with the gRPC code and trailer code of the error table, and a
/// rule with a count retires after that many failures.
#[tokio::test]
async fn injected_failures_carry_the_codes_of_the_table_and_retire_after_their_count() {
    let d = TestDaemon::start().await;
    let mut admin = AdminClient::new(connect(&d).await);
    let mut t = d.tenant("alice").await;
    let key = t
        .client
        .create_key(t.req(pb::CreateKeyRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap()
        .key_id;
    // (rule, error code, gRPC code)
    let cases = [
        ("throttled", ErrorCode::Throttled, Code::ResourceExhausted),
        (
            "region outage",
            ErrorCode::ServiceUnavailable,
            Code::Unavailable,
        ),
        (
            "disabled key",
            ErrorCode::KeyDisabled,
            Code::FailedPrecondition,
        ),
        ("key not found", ErrorCode::KeyNotFound, Code::NotFound),
    ];
    for (name, c, grpc) in cases {
        let id = add(
            &mut admin,
            apb::FaultRule {
                key_id: key.clone(),
                count: 2,
                ..rule("Encrypt", fail(c.as_str()))
            },
        )
        .await;
        let encrypt = || {
            let mut t = t.clone();
            let key = key.clone();
            async move {
                t.client
                    .encrypt(t.req(pb::EncryptRequest {
                        key_id: key,
                        plaintext: b"x".to_vec(),
                        ..Default::default()
                    }))
                    .await
            }
        };
        for _ in 0..2 {
            assert_refused(encrypt().await, grpc, c, &format!("fault rule {id}"));
        }
        assert!(encrypt().await.is_ok(), "{name}: the rule retired after 2");
        let status = list(&mut admin)
            .await
            .into_iter()
            .find(|s| s.id == id)
            .unwrap();
        assert_eq!((status.hits, status.retired), (2, true), "{name}");
    }
    // Removing a rule forgets it; removing it again is refused.
    assert!(
        admin
            .remove_fault(admin_req(None, apb::RemoveFaultRequest { id: "f1".into() }))
            .await
            .is_ok()
    );
    let again = admin
        .remove_fault(admin_req(None, apb::RemoveFaultRequest { id: "f1".into() }))
        .await;
    assert_refused(
        again,
        Code::InvalidArgument,
        ErrorCode::InvalidArgument,
        "no fault rule",
    );
    assert_eq!(list(&mut admin).await.len(), 3);
    // A rule the daemon cannot use is refused with the reason.
    let bad = admin
        .add_fault(admin_req(
            None,
            apb::AddFaultRequest {
                rule: Some(rule("Encrypt", fail("KMS.9999"))),
            },
        ))
        .await;
    assert_refused(
        bad,
        Code::InvalidArgument,
        ErrorCode::InvalidArgument,
        "unknown error code",
    );
}

/// Latency injected on Decrypt: a caller whose deadline is shorter sees the KMS as unavailable
/// (the OBS adapter answers 503), a patient one gets its data key, late.
#[tokio::test]
async fn latency_on_decrypt_meets_the_callers_deadline() {
    let d = TestDaemon::start().await;
    let ch = connect(&d).await;
    let mut admin = AdminClient::new(ch.clone());
    let impatient_ch = Endpoint::from_shared(d.endpoint())
        .unwrap()
        .timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let adapter = ObsAdapter::new(GrpcKeyService::new(ch));
    let impatient = ObsAdapter::new(GrpcKeyService::new(impatient_ch));
    let owner = "latencydomain";
    let (c, b) = (Caller::new(domain(owner)), bucket_of(owner));
    let decision = put(&adapter, owner, None).await.unwrap();
    let dk = adapter
        .generate_data_key(&c, &b, "obj", &decision.encryption)
        .await
        .unwrap()
        .unwrap();
    let stored = StoredObject::kms(domain(owner), decision.encryption.key_id().unwrap().clone());
    add(&mut admin, rule("Decrypt", latency_ms(400))).await;

    let started = Instant::now();
    let e = impatient
        .decrypt_data_key(&c, &b, "obj", &stored, &dk.ciphertext_blob)
        .await
        .unwrap_err();
    assert_eq!(code(&e), (503, "ServiceUnavailable"));
    assert!(
        started.elapsed() < Duration::from_millis(390),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let opened = adapter
        .decrypt_data_key(&c, &b, "obj", &stored, &dk.ciphertext_blob)
        .await
        .unwrap();
    assert_eq!(opened.expose(), dk.plaintext.expose());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    let decrypts: Vec<String> = audit(&d)
        .await
        .iter()
        .filter(|l| l["operation"] == "Decrypt" && l["outcome"] == "ok")
        .map(|l| l["injected"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        decrypts.iter().all(|n| n == "latency 400ms (rule f1)"),
        "{decrypts:?}"
    );
    assert!(!decrypts.is_empty());
}

/// A hang answers nothing until the caller's deadline; the audit log has the hung call.
#[tokio::test]
async fn a_hang_lasts_until_the_callers_deadline() {
    let d = TestDaemon::start().await;
    let mut admin = AdminClient::new(connect(&d).await);
    let mut t = d.tenant("alice").await;
    add(
        &mut admin,
        apb::FaultRule {
            count: 1,
            ..rule("ListKeys", apb::fault_rule::Action::Hang(apb::Hang {}))
        },
    )
    .await;
    let mut req = t.req(pb::ListKeysRequest::default());
    req.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let s = t.client.list_keys(req).await.unwrap_err();
    let waited = started.elapsed();
    // tonic's server ends a call whose `grpc-timeout` passed as CANCELLED "Timeout expired"; a
    // client enforcing its own deadline says DEADLINE_EXCEEDED. Either way: no answer.
    assert!(
        matches!(s.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{s:?}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The rule retired: the next call answers.
    assert!(
        t.client
            .list_keys(t.req(pb::ListKeysRequest::default()))
            .await
            .is_ok()
    );
    let hung: Vec<serde_json::Value> = audit(&d)
        .await
        .into_iter()
        .filter(|l| l["operation"] == "ListKeys")
        .collect();
    assert_eq!(hung[0]["outcome"], "hang");
    assert_eq!(hung[0]["injected"], "hang (rule f1)");
    assert_eq!(hung[1]["outcome"], "ok");
    assert!(hung[1].get("injected").is_none());
}

/// The outcomes of `calls` Encrypt calls on a daemon started with `faults` (and `seed`).
async fn outcomes(faults: &Path, seed: Option<u64>, calls: usize) -> Vec<String> {
    let faults = faults.to_owned();
    let d = TestDaemon::start_with(move |c, _| {
        c.faults = Some(faults);
        c.fault_seed = seed;
    })
    .await;
    let mut t = d.tenant("alice").await;
    let key = t
        .client
        .create_key(t.req(pb::CreateKeyRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap()
        .key_id;
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        let r = t
            .client
            .encrypt(t.req(pb::EncryptRequest {
                key_id: key.clone(),
                plaintext: b"x".to_vec(),
                ..Default::default()
            }))
            .await;
        out.push(match r {
            Ok(_) => "ok".to_owned(),
            Err(s) => error_code(&s).map_or_else(|| format!("{:?}", s.code()), |c| c.to_string()),
        });
    }
    d.stop().await;
    out
}

/// The same seed and the same faults file give the same sequence of outcomes; another seed
/// gives another.
#[tokio::test]
async fn the_same_seed_and_faults_file_give_the_same_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faults.toml");
    std::fs::write(
        &file,
        r#"seed = 20261202

[[faults]]
operation = "Encrypt"
fail = { error_code = "KMSBOX.0429" }
probability = 0.4

[[faults]]
operation = "Encrypt"
fail = { error_code = "KMSBOX.0502" }
probability = 0.3
count = 5
"#,
    )
    .unwrap();
    let first = outcomes(&file, None, 40).await;
    let again = outcomes(&file, None, 40).await;
    assert_eq!(first, again);
    let kinds: std::collections::BTreeSet<&str> = first.iter().map(String::as_str).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["KMSBOX.0429", "KMSBOX.0502", "ok"],
        "{first:?}"
    );
    assert_eq!(
        first.iter().filter(|o| *o == "KMSBOX.0502").count(),
        5,
        "count retires the rule"
    );
    assert_ne!(
        first,
        outcomes(&file, Some(7), 40).await,
        "--fault-seed overrides the file's"
    );
}

/// A faults file the daemon cannot use stops the start-up with a message that names the rule.
#[tokio::test]
async fn a_bad_faults_file_stops_the_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faults.toml");
    // (rule, file, the message names)
    let cases = [
        (
            "unknown operation",
            "[[faults]]\noperation = \"Frob\"\nhang = {}\n",
            "fault 1 (Frob): unknown operation",
        ),
        (
            "second rule without an action",
            "[[faults]]\noperation = \"*\"\nhang = {}\n[[faults]]\noperation = \"Decrypt\"\n",
            "fault 2 (Decrypt): a rule needs exactly one of",
        ),
        (
            "unknown field",
            "[[faults]]\noperation = \"*\"\nhang = {}\nprobabilty = 1\n",
            "unknown field",
        ),
    ];
    for (name, text, needle) in cases {
        std::fs::write(&file, text).unwrap();
        let mut config =
            kms_server::server::Config::local(&dir.path().join(name.replace(' ', "-")));
        config.faults = Some(file.clone());
        let e = kms_server::server::start(config)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{name}: {e}");
    }
}

fn rfc3339_ms(s: &str) -> i64 {
    let t: prost_types::Timestamp = s.parse().unwrap();
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

const DAY_MS: i64 = 86_400_000;

/// On a virtual clock, dates follow it, and advancing it past a deletion date purges the key
/// before the call returns: the key answers as one that never existed and its objects no longer
/// open. The OBS default key cannot be scheduled for deletion at all.
#[tokio::test]
async fn advancing_the_clock_past_a_deletion_date_purges_the_key_and_its_objects_stop_opening() {
    let start = rfc3339_ms("2027-01-01T00:00:00Z");
    let (d, mut admin, adapter) = on_a_virtual_clock(Some(start)).await;
    let owner = "clockdomain";
    let (c, b) = (Caller::new(domain(owner)), bucket_of(owner));
    let mut t = d.tenant(owner).await;
    let key = t
        .client
        .create_key(t.req(pb::CreateKeyRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    let created = key.created_at.unwrap();
    assert_eq!(
        created.seconds * 1000,
        start,
        "creation date on the virtual clock"
    );
    let decision = put(&adapter, owner, Some(&key.key_id)).await.unwrap();
    let dk = adapter
        .generate_data_key(&c, &b, "obj", &decision.encryption)
        .await
        .unwrap()
        .unwrap();
    let stored = StoredObject::kms(domain(owner), decision.encryption.key_id().unwrap().clone());

    // The default key of OBS cannot be deleted.
    let default = t
        .client
        .get_default_key(t.req(pb::GetDefaultKeyRequest {
            service: "obs".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    let r = t
        .client
        .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
            key_id: default.key_id.clone(),
            pending_window_days: 7,
        }))
        .await;
    assert_refused(
        r,
        Code::FailedPrecondition,
        ErrorCode::DefaultKeyImmutable,
        "default key",
    );

    let pending = t
        .client
        .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
            key_id: key.key_id.clone(),
            pending_window_days: 7,
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    let due = pending.deletion_date.unwrap();
    assert_eq!(
        due.seconds * 1000,
        start + 7 * DAY_MS,
        "deletion date on the virtual clock"
    );

    let six = admin
        .advance_clock(admin_req(None, advance(6)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((six.purged_keys, six.r#virtual), (0, true));
    assert_eq!(six.now.unwrap().seconds * 1000, start + 6 * DAY_MS);
    let described = t
        .client
        .describe_key(t.req(pb::DescribeKeyRequest {
            key_id: key.key_id.clone(),
        }))
        .await;
    assert!(
        described.is_ok(),
        "a day before its deletion date the key is still there"
    );

    let seven = admin
        .advance_clock(admin_req(None, advance(1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seven.purged_keys, 1, "purged before the call returned");
    let r = t
        .client
        .describe_key(t.req(pb::DescribeKeyRequest {
            key_id: key.key_id.clone(),
        }))
        .await;
    assert_refused(r, Code::NotFound, ErrorCode::KeyNotFound, "not found");
    let e = adapter
        .decrypt_data_key(&c, &b, "obj", &stored, &dk.ciphertext_blob)
        .await
        .unwrap_err();
    assert_eq!(code(&e), (400, "KMS.NotFoundException"));
    // The default key is untouched.
    assert!(
        t.client
            .describe_key(t.req(pb::DescribeKeyRequest {
                key_id: default.key_id,
            }))
            .await
            .is_ok()
    );

    // The clock moves only forward.
    let back = admin
        .set_clock(admin_req(
            None,
            apb::SetClockRequest {
                to: Some(prost_types::Timestamp {
                    seconds: start / 1000,
                    nanos: 0,
                }),
            },
        ))
        .await;
    assert_refused(
        back,
        Code::InvalidArgument,
        ErrorCode::InvalidArgument,
        "only moves forward",
    );
    let now = admin
        .get_clock(admin_req(None, apb::GetClockRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.now.unwrap().seconds * 1000, start + 7 * DAY_MS);

    // Audit lines carry the virtual time beside the wall time.
    let lines = audit(&d).await;
    let create = lines
        .iter()
        .find(|l| l["operation"] == "CreateKey")
        .unwrap();
    assert_eq!(create["virtual_time"], "2027-01-01T00:00:00.000Z");
    let wall = rfc3339_ms(create["time"].as_str().unwrap());
    assert!(
        (wall - kms_server::clock::wall_ms()).abs() < 600_000,
        "{create}"
    );
    let advanced = lines
        .iter()
        .filter(|l| l["operation"] == "Admin.AdvanceClock")
        .count();
    assert_eq!(advanced, 2);
}

/// The wall clock cannot be moved.
#[tokio::test]
async fn the_wall_clock_refuses_to_move() {
    let d = TestDaemon::start().await;
    let mut admin = AdminClient::new(connect(&d).await);
    let clock = admin
        .get_clock(admin_req(None, apb::GetClockRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(!clock.r#virtual);
    let r = admin
        .advance_clock(admin_req(
            None,
            apb::AdvanceClockRequest {
                by: Some(prost_types::Duration {
                    seconds: 86_400,
                    nanos: 0,
                }),
            },
        ))
        .await;
    assert_refused(
        r,
        Code::InvalidArgument,
        ErrorCode::InvalidArgument,
        "--virtual-clock",
    );
    let lines = audit(&d).await;
    assert!(lines.iter().all(|l| l.get("virtual_time").is_none()));
}

/// A customer key disabled between a multipart upload's initiate and complete: parts after the
/// disable get no data key (the OBS adapter answers KMS.DisabledException), parts uploaded before
/// cannot be read while it is disabled, and everything opens again once it is enabled.
#[tokio::test]
async fn a_key_disabled_between_multipart_initiate_and_complete() {
    let d = TestDaemon::start().await;
    let ch = connect(&d).await;
    let adapter = ObsAdapter::with_config(
        GrpcKeyService::new(ch),
        AdapterConfig {
            key_policy: KeyPolicy::AllowCustomerKeys,
        },
    );
    let owner = "multipartdomain";
    let (c, b) = (Caller::new(domain(owner)), bucket_of(owner));
    let mut t = d.tenant(owner).await;
    let key = t
        .client
        .create_key(t.req(pb::CreateKeyRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap()
        .key_id;
    let mut h = HeaderMap::new();
    h.insert(
        HeaderName::from_static("x-obs-server-side-encryption"),
        HeaderValue::from_static("kms"),
    );
    h.insert(
        HeaderName::from_static("x-obs-server-side-encryption-kms-key-id"),
        HeaderValue::from_str(&key).unwrap(),
    );
    let init = adapter
        .decide(&ObsRequest::new(
            Operation::InitiateMultipartUpload,
            &c,
            &b,
            "obj",
            &h,
        ))
        .await
        .unwrap();
    let upload = StoredObject {
        owner: domain(owner),
        encryption: init.encryption.clone(),
    };
    let no_headers = HeaderMap::new();
    let part = || async {
        let req =
            ObsRequest::new(Operation::UploadPart, &c, &b, "obj", &no_headers).with_stored(&upload);
        let decision = adapter.decide(&req).await?;
        adapter
            .generate_data_key(&c, &b, "obj", &decision.encryption)
            .await
            .map(Option::unwrap)
    };
    let first = part().await.unwrap();
    t.client
        .disable_key(t.req(pb::DisableKeyRequest {
            key_id: key.clone(),
        }))
        .await
        .unwrap();
    let e = part().await.unwrap_err();
    assert_eq!(code(&e), (400, "KMS.DisabledException"));
    let e = adapter
        .decrypt_data_key(&c, &b, "obj", &upload, &first.ciphertext_blob)
        .await
        .unwrap_err();
    assert_eq!(code(&e), (400, "KMS.DisabledException"));
    t.client
        .enable_key(t.req(pb::EnableKeyRequest {
            key_id: key.clone(),
        }))
        .await
        .unwrap();
    let second = part().await.unwrap();
    let done = adapter
        .decide(
            &ObsRequest::new(
                Operation::CompleteMultipartUpload,
                &c,
                &b,
                "obj",
                &no_headers,
            )
            .with_stored(&upload),
        )
        .await
        .unwrap();
    assert_eq!(done.encryption, init.encryption);
    for dk in [&first, &second] {
        let opened = adapter
            .decrypt_data_key(&c, &b, "obj", &upload, &dk.ciphertext_blob)
            .await
            .unwrap();
        assert_eq!(opened.expose(), dk.plaintext.expose());
    }
}

/// A call hung by a rule, from a caller without a deadline, does not hold up shutdown: it is
/// answered UNAVAILABLE when the daemon stops, well within the grace period.
#[tokio::test]
async fn a_hung_call_without_a_deadline_ends_when_the_daemon_stops() {
    let d = TestDaemon::start_with(|c, _| c.shutdown_grace = Duration::from_secs(20)).await;
    let mut admin = AdminClient::new(connect(&d).await);
    add(
        &mut admin,
        rule("ListKeys", apb::fault_rule::Action::Hang(apb::Hang {})),
    )
    .await;
    let t = d.tenant("alice").await;
    let hung = {
        let mut t = t.clone();
        async move {
            t.client
                .list_keys(t.req(pb::ListKeysRequest::default()))
                .await
        }
    };
    let stop = async {
        // Shut down once the call is hanging (its audit line is written when the hang begins).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = audit(&d).await;
            if lines.iter().any(|l| l["outcome"] == "hang") {
                break;
            }
            assert!(Instant::now() < deadline, "the call never hung");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let started = Instant::now();
        d.stop().await;
        started.elapsed()
    };
    let (answer, took) = tokio::join!(hung, stop);
    assert_refused(
        answer,
        Code::Unavailable,
        ErrorCode::ServiceUnavailable,
        "stopping",
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
}

/// One fault rule names a kms.v1 operation and matches the calls of every API that correspond to
/// it (gRPC `GenerateDataKey`, REST `create-datakey`, transit `datakey/plaintext`); each injected
/// refusal comes in its API's own shape, throttling as HTTP 429, other operations are untouched,
/// and the audit lines say what was injected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_rule_matches_the_corresponding_call_of_every_api() {
    use kmsbox_tests::http1::http;
    let d = TestDaemon::start().await;
    let mut admin = AdminClient::new(connect(&d).await);
    let domain = "faultapis";
    let mut t = d.tenant(domain).await;
    let key = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "faulty".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap()
        .key_id;
    let uuid = key.rsplit('/').next().unwrap().to_owned();
    let addr = d.server().local_addr();
    let rest_body = serde_json::json!({"key_id": uuid, "datakey_length": "256"}).to_string();
    let rest = || {
        http(
            addr,
            "POST",
            &format!("/v1.0/{domain}/kms/create-datakey"),
            &[("content-type", "application/json")],
            rest_body.as_bytes(),
        )
    };
    let transit = |path: &str, body: &str| {
        http(
            addr,
            "POST",
            &format!("/v1/transit/{path}/faulty"),
            &[("x-vault-token", domain)],
            body.as_bytes(),
        )
    };
    let datakey = || transit("datakey/plaintext", "{}");
    let grpc_gdk = async |t: &mut Tenant| {
        t.client
            .generate_data_key(t.req(pb::GenerateDataKeyRequest {
                key_id: key.clone(),
                ..Default::default()
            }))
            .await
    };
    assert_eq!((rest().status, datakey().status), (200, 200), "no rule yet");

    // (api, status, code): one rule, three APIs.
    add(
        &mut admin,
        apb::FaultRule {
            count: 3,
            ..rule("GenerateDataKey", fail("KMS.0209"))
        },
    )
    .await;
    assert_eq!(
        error_code(&grpc_gdk(&mut t).await.unwrap_err()),
        Some(ErrorCode::KeyDisabled)
    );
    let r = rest();
    assert_eq!(
        (r.status, r.body["error"]["error_code"].as_str()),
        (400, Some("KMS.0209")),
        "{}",
        r.body
    );
    let v = datakey();
    assert_eq!(v.status, 400, "{}", v.body);
    assert!(!v.errors().is_empty());
    let encrypt = transit("encrypt", r#"{"plaintext": "aGk="}"#);
    assert_eq!(encrypt.status, 200, "another operation: {}", encrypt.body);
    assert_eq!(
        (rest().status, datakey().status),
        (200, 200),
        "the rule retired after its count"
    );

    add(&mut admin, rule("GenerateDataKey", fail("KMSBOX.0429"))).await;
    let r = rest();
    assert_eq!(
        (r.status, r.body["error"]["error_code"].as_str()),
        (429, Some("KMSBOX.0429")),
        "{}",
        r.body
    );
    assert_eq!(datakey().status, 429, "throttled over transit");

    // The log is written in batches: wait for the lines of the calls above.
    let injected = |log: &str, operation: &str| {
        log.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["operation"] == operation && v["injected"].is_string())
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(d.data_dir().join("audit.jsonl")).unwrap();
        let counts = ["GenerateDataKey", "Vault.DataKeyPlaintext"].map(|op| injected(&log, op));
        if counts.iter().all(|&n| n >= 2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{counts:?} injected lines in\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A yearly rotation on the virtual clock, as the OBS adapter sees it: after `advance 365d` the
/// key has a new version (rotated before the call returned), an object written before still opens
/// with its stored data key, and new data keys come from the new version.
#[tokio::test]
async fn a_yearly_rotation_after_advance_365d_keeps_old_objects_readable() {
    let (d, mut admin, adapter) = on_a_virtual_clock(None).await;
    let owner = "yearly";
    let (c, b) = (Caller::new(domain(owner)), bucket_of(owner));
    let mut t = d.tenant(owner).await;
    let key = t
        .client
        .create_key(t.req(pb::CreateKeyRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap()
        .key_id;
    t.client
        .enable_key_rotation(t.req(pb::EnableKeyRotationRequest {
            key_id: key.clone(),
        }))
        .await
        .unwrap();
    let decision = put(&adapter, owner, Some(&key)).await.unwrap();
    let before = adapter
        .generate_data_key(&c, &b, "obj", &decision.encryption)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.key_version, 1);
    let stored = StoredObject::kms(domain(owner), decision.encryption.key_id().unwrap().clone());

    let early = admin
        .advance_clock(admin_req(None, advance(364)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(early.rotated_keys, 0, "the default interval is 365 days");
    let year = admin
        .advance_clock(admin_req(None, advance(1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(year.rotated_keys, 1, "rotated before the call returned");

    let opened = adapter
        .decrypt_data_key(&c, &b, "obj", &stored, &before.ciphertext_blob)
        .await
        .unwrap();
    assert_eq!(
        opened.expose(),
        before.plaintext.expose(),
        "the old object's data key still opens"
    );
    let after = adapter
        .generate_data_key(&c, &b, "obj2", &decision.encryption)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.key_version, 2, "new data keys use the new version");
}
