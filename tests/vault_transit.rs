//! Vault's transit API (README.md, "Vault transit API") against the real `kms-server` binary:
//! `hvac` from PyPI, pinned and unmodified, drives every served call with and without a tenants
//! file; raw HTTP replays what Ceph RGW and SeaweedFS send, and the bad input the API must refuse
//! in Vault's shape while the daemon keeps serving and stores nothing.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kms_proto::v1 as pb;
use kmsbox_tests::Tenant;
use kmsbox_tests::http1::http;
use kmsbox_tests::process::Daemon;
use kmsbox_tests::python::{run_script, venv_python};
use kmsbox_tests::tmpfs::Tmpfs;
use serde_json::{Value, json};

/// hvac and everything it installs, pinned.
const REQUIREMENTS: &[&str] = &[
    "hvac==2.4.0",
    "requests==2.34.2",
    "urllib3==2.8.0",
    "idna==3.20",
    "charset-normalizer==3.5.3",
    "certifi==2026.10.19.post1",
];

const SCRIPT: &str = "vault_transit_hvac.py";

/// The virtual environment's `python`, created and filled once per test run.
fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-vault");
            venv_python(&venv, REQUIREMENTS)
        })
        .clone()
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Every line of the audit log, waiting (5 s at most) until `done` holds for them.
fn audit_lines(data_dir: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(data_dir.join("audit.jsonl")).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
            .collect();
        if done(&lines) || start.elapsed() > Duration::from_secs(5) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tenants_file(dir: &Path, tenants: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("tenants.toml");
    let text: String = tenants
        .iter()
        .map(|(d, t)| format!("[[tenants]]\ndomain_id = \"{d}\"\ntoken = \"{t}\"\n"))
        .collect();
    std::fs::write(&path, text).expect("tenants file");
    path
}

/// Runs hvac's scenario, then crosses APIs: its ciphertext opens over gRPC (encryption context
/// `vault_context`), and a gRPC ciphertext opens through hvac.
async fn scenario(daemon: &Daemon, grpc: &Tenant, tokens: [&str; 3]) {
    let url = daemon.endpoint.clone();
    let out = run_script(
        &python(),
        SCRIPT,
        &[&["scenario", &url][..], &tokens].concat(),
    );
    let made: Value = serde_json::from_str(out.trim()).expect("the scenario's JSON");
    let key_id = made["key_id"].as_str().expect("key_id").to_owned();
    let ctx = HashMap::from([(
        "vault_context".to_owned(),
        made["context"].as_str().unwrap().to_owned(),
    )]);

    // A rotation schedule set over transit is the key's own.
    let rotating = grpc
        .describe(made["rotating_key_id"].as_str().expect("rotating_key_id"))
        .await
        .expect("describe the key created rotating");
    assert!(rotating.rotation_enabled, "{rotating:?}");
    assert_eq!(rotating.rotation_interval_days, 90);
    assert!(rotating.next_rotation_time.is_some(), "{rotating:?}");
    assert!(!rotating.context_required, "not derived");

    // A derived key shows so over gRPC, and refuses gRPC calls without an encryption context.
    let derived_id = made["derived_key_id"].as_str().expect("derived_key_id");
    let derived = grpc
        .describe(derived_id)
        .await
        .expect("describe the derived key");
    assert!(derived.context_required, "{derived:?}");
    let bare = grpc
        .client
        .clone()
        .encrypt(grpc.req(pb::EncryptRequest {
            key_id: derived_id.to_owned(),
            plaintext: b"no context".to_vec(),
            encryption_context: HashMap::new(),
        }))
        .await;
    kmsbox_tests::assert_refused(
        bare,
        tonic::Code::InvalidArgument,
        kms_proto::ErrorCode::InvalidArgument,
        "requires an encryption context",
    );

    // Transit -> gRPC.
    let ciphertext = made["ciphertext"].as_str().unwrap();
    let (version, blob) = ciphertext
        .strip_prefix("vault:v")
        .and_then(|r| r.split_once(':'))
        .expect("vault:v<N>:");
    let blob = STANDARD.decode(blob).expect("base64 blob");
    let opened = grpc
        .client
        .clone()
        .decrypt(grpc.req(pb::DecryptRequest {
            ciphertext_blob: blob,
            encryption_context: ctx.clone(),
            key_id: key_id.clone(),
        }))
        .await
        .expect("a transit ciphertext decrypts over gRPC")
        .into_inner();
    assert_eq!(b64(&opened.plaintext), made["plaintext"].as_str().unwrap());
    assert_eq!(opened.key_version.to_string(), version);

    // gRPC -> transit.
    let sealed = grpc
        .client
        .clone()
        .encrypt(grpc.req(pb::EncryptRequest {
            key_id: key_id.clone(),
            plaintext: b"sealed over gRPC".to_vec(),
            encryption_context: ctx.clone(),
        }))
        .await
        .expect("gRPC encrypt")
        .into_inner();
    let text = format!(
        "vault:v{}:{}",
        sealed.key_version,
        b64(&sealed.ciphertext_blob)
    );
    let out = run_script(
        &python(),
        SCRIPT,
        &[
            "decrypt",
            &url,
            tokens[0],
            "app",
            &text,
            &ctx["vault_context"],
        ],
    );
    assert_eq!(out.trim(), b64(b"sealed over gRPC"));
}

/// A key disabled or pending deletion over gRPC is refused by transit with its Huawei code.
async fn key_states_are_refused(daemon: &Daemon, grpc: &Tenant, token: &str) {
    let key = http(
        daemon.addr,
        "GET",
        "/v1/transit/keys/app",
        &[("X-Vault-Token", token)],
        b"",
    );
    let key_id = key.data()["kmsbox_key_id"].as_str().unwrap().to_owned();
    let encrypt = || {
        http(
            daemon.addr,
            "POST",
            "/v1/transit/encrypt/app",
            &[("X-Vault-Token", token)],
            json!({"plaintext": b64(b"x")}).to_string().as_bytes(),
        )
    };
    let mut c = grpc.client.clone();
    c.disable_key(grpc.req(pb::DisableKeyRequest {
        key_id: key_id.clone(),
    }))
    .await
    .expect("disable");
    let r = encrypt();
    assert_eq!(r.status, 400);
    assert!(r.errors().contains("disabled"), "{}", r.errors());
    assert_eq!(r.header("x-kms-error-code"), Some("KMS.0209"));
    c.schedule_key_deletion(grpc.req(pb::ScheduleKeyDeletionRequest {
        key_id: key_id.clone(),
        pending_window_days: 7,
    }))
    .await
    .expect("schedule deletion");
    let r = encrypt();
    assert_eq!(r.status, 400);
    assert!(r.errors().contains("pending deletion"), "{}", r.errors());
    assert_eq!(r.header("x-kms-error-code"), Some("KMS.0210"));
}

#[tokio::test]
async fn hvac_drives_every_call_without_a_tenants_file_where_the_token_is_the_domain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let daemon = Daemon::spawn(&data, &[]);
    let grpc = Tenant::connect(&daemon.endpoint, "d1", None, None).await;
    scenario(&daemon, &grpc, ["d1", "d2", "not a domain"]).await;
    key_states_are_refused(&daemon, &grpc, "d1").await;
    drop(grpc);

    // Audited like gRPC calls: who, what, which key, the outcome.
    let has = |lines: &[Value], op: &str, domain: &str, outcome: &str| {
        lines
            .iter()
            .any(|l| l["operation"] == op && l["domain"] == domain && l["outcome"] == outcome)
    };
    let wanted = [
        ("Vault.CreateKey", "d1", "ok"),
        ("Vault.RotateKey", "d1", "ok"),
        ("Vault.ConfigKey", "d1", "ok"),
        ("Vault.DeleteKey", "d1", "ok"),
        ("Vault.ListKeys", "d1", "ok"),
        ("Vault.Random", "d1", "ok"),
        ("Vault.Encrypt", "d1", "ok"),
        ("Vault.Decrypt", "d1", "ok"),
        ("Vault.DataKeyPlaintext", "d1", "ok"),
        ("Vault.DataKeyWrapped", "d1", "ok"),
        ("Vault.Rewrap", "d1", "ok"),
        ("Vault.ReadKey", "d1", "ok"),
        ("Vault.LookupSelf", "d1", "ok"),
        ("Vault.ReadKey", "d2", "KMS.0207"),
        ("Vault.ReadKey", "", "KMSBOX.0401"),
        ("Vault.Encrypt", "d1", "KMS.0210"),
    ];
    let lines = audit_lines(&data, |l| wanted.iter().all(|(op, d, o)| has(l, op, d, o)));
    for (op, domain, outcome) in wanted {
        assert!(
            has(&lines, op, domain, outcome),
            "no audit line {op} {domain:?} {outcome}"
        );
    }
    let created = lines
        .iter()
        .find(|l| l["operation"] == "Vault.CreateKey" && l["outcome"] == "ok")
        .unwrap();
    assert!(
        created["key_id"]
            .as_str()
            .unwrap()
            .starts_with("region:d1:key/"),
        "the audit line names the key in full: {created}"
    );
    daemon.stop();
}

#[tokio::test]
async fn hvac_drives_every_call_with_tenant_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (token_a, token_b) = ("alice-token-0123456789", "bob-token-0123456789");
    let tenants = tenants_file(dir.path(), &[("alice", token_a), ("bob", token_b)]);
    let daemon = Daemon::spawn(
        &dir.path().join("data"),
        &["--tenants", tenants.to_str().unwrap()],
    );
    let grpc = Tenant::connect(&daemon.endpoint, "alice", None, Some(token_a)).await;
    scenario(&daemon, &grpc, [token_a, token_b, "wrong-token-0123456789"]).await;
    key_states_are_refused(&daemon, &grpc, token_a).await;
    // With tokens required, a domain ID is no token, and Bearer works as X-Vault-Token does.
    let r = http(
        daemon.addr,
        "GET",
        "/v1/auth/token/lookup-self",
        &[("X-Vault-Token", "alice")],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.errors().contains("permission denied"));
    let bearer = format!("Bearer {token_b}");
    let r = http(
        daemon.addr,
        "GET",
        "/v1/auth/token/lookup-self",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(r.data()["meta"]["kmsbox_domain_id"], "bob");
    drop(grpc);
    daemon.stop();
}

/// What Ceph RGW (`rgw_kms.cc`, transit engine, token auth) and SeaweedFS (`weed/kms/openbao`,
/// Vault's Go client) send, byte for byte where it matters.
#[test]
fn ceph_rgw_and_seaweedfs_request_shapes_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(&dir.path().join("data"), &[]);
    let addr = daemon.addr;
    let token = "d1";

    // Ceph RGW: the token header twice (send_request appends it twice), POST, a JSON body of
    // string fields, whatever Content-Type its HTTP client sets (Vault reads none); the key made
    // beforehand by the operator.
    let rgw = [
        ("X-Vault-Token", token),
        ("X-Vault-Token", token),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    http(
        addr,
        "POST",
        "/v1/transit/keys/rgwkey",
        &[("X-Vault-Token", token)],
        b"",
    )
    .data();
    // RGW's SSE-KMS context (make_canonical_context): base64, padded and unwrapped, of the
    // canonical JSON of the request's context with its object's ARN; the empty one as other
    // Vault clients may send it.
    let context = b64(br#"{"aws:s3:arn":"arn:aws:s3:::tenant/bucket/object","team":"a"}"#);
    for ctx in [context.as_str(), ""] {
        let made = http(
            addr,
            "POST",
            "/v1/transit/datakey/plaintext/rgwkey",
            &rgw,
            json!({ "context": ctx }).to_string().as_bytes(),
        );
        let made = made.data();
        let key = made["plaintext"].as_str().expect("data.plaintext");
        let wrapped = made["ciphertext"].as_str().expect("data.ciphertext");
        assert_eq!(STANDARD.decode(key).unwrap().len(), 32);
        let back = http(
            addr,
            "POST",
            "/v1/transit/decrypt/rgwkey",
            &rgw,
            json!({ "context": ctx, "ciphertext": wrapped })
                .to_string()
                .as_bytes(),
        );
        assert_eq!(back.data()["plaintext"], key, "context {ctx:?}");
    }

    // Ceph RGW's SSE-S3 (`rgw_crypt_sse_s3_backend = vault`, transit): PutBucketEncryption makes
    // the bucket's key (create_bucket_key, rapidjson's bytes: chacha20-poly1305, derived), each
    // object a data key under it with the object's ARN as context; DeleteBucket allows the key's
    // deletion in its config, then deletes it (delete_bucket_key), which schedules it.
    // The key's name is the bucket's ID (rgw_crypt_sse_s3_key_template's default, %bucket_id).
    let bucket_id = "7a1d1f0f-f2d4-4f5f-9f42-8d6b1a2a6c3e.4137.1";
    let bucket_key = format!("/v1/transit/keys/{bucket_id}");
    let made = http(
        addr,
        "POST",
        &bucket_key,
        &rgw,
        br#"{"type":"chacha20-poly1305","derived":true}"#,
    );
    assert_eq!(
        made.data()["type"],
        "aes256-gcm96",
        "served as a kmsbox key"
    );
    assert_eq!(made.data()["derived"], true);
    let object_ctx = b64(br#"{"aws:s3:arn":"arn:aws:s3:::bucket/object"}"#);
    let datakey = format!("/v1/transit/datakey/plaintext/{bucket_id}");
    let body = json!({ "context": object_ctx }).to_string();
    let made = http(addr, "POST", &datakey, &rgw, body.as_bytes());
    let key = made.data()["plaintext"].as_str().unwrap().to_owned();
    let body = json!({ "context": object_ctx, "ciphertext": made.data()["ciphertext"] });
    let decrypt = format!("/v1/transit/decrypt/{bucket_id}");
    let back = http(addr, "POST", &decrypt, &rgw, body.to_string().as_bytes());
    assert_eq!(back.data()["plaintext"], key.as_str());
    let bare = http(addr, "POST", &datakey, &rgw, br#"{"context":""}"#);
    assert_eq!(
        bare.status, 400,
        "a derived key takes no call without a context"
    );
    assert!(bare.errors().contains("requires an encryption context"));
    let config = http(
        addr,
        "POST",
        &format!("{bucket_key}/config"),
        &rgw,
        br#"{"deletion_allowed":true}"#,
    );
    assert_eq!(config.data()["deletion_allowed"], true);
    let delete = http(addr, "DELETE", &bucket_key, &rgw, b"");
    assert_eq!(delete.status, 204, "{}", delete.body);
    assert!(delete.body.is_null(), "no content: {}", delete.body);
    let gone = http(addr, "POST", &decrypt, &rgw, body.to_string().as_bytes());
    assert_eq!(gone.status, 400, "a deleted bucket's key serves no call");
    assert!(
        gone.errors().contains("pending deletion"),
        "{}",
        gone.errors()
    );
    let read = http(addr, "GET", &bucket_key, &rgw, b"");
    assert_eq!(read.data()["kmsbox_key_state"], "pending deletion");

    // SeaweedFS: Vault's Go client, PUT, X-Vault-Request; GET keys/:name to describe the key, then
    // encrypt a locally made data key with a context of base64 JSON, and decrypt it.
    let sw = [("X-Vault-Token", token), ("X-Vault-Request", "true")];
    http(addr, "PUT", "/v1/transit/keys/swkey", &sw, b"{}").data();
    let described = http(addr, "GET", "/v1/transit/keys/swkey", &sw, b"");
    assert_eq!(described.data()["type"], "aes256-gcm96");
    let dek = b64(&[7u8; 32]);
    let context = b64(br#"{"aws:s3:arn":"arn:aws:s3:::b/o"}"#);
    let sealed = http(
        addr,
        "PUT",
        "/v1/transit/encrypt/swkey",
        &sw,
        json!({ "plaintext": dek, "context": context })
            .to_string()
            .as_bytes(),
    );
    let ciphertext = sealed.data()["ciphertext"].as_str().unwrap().to_owned();
    assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");
    let opened = http(
        addr,
        "PUT",
        "/v1/transit/decrypt/swkey",
        &sw,
        json!({ "ciphertext": ciphertext, "context": context })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(opened.data()["plaintext"], dek);
    assert_eq!(
        opened.header("cache-control"),
        Some("no-store"),
        "no cache keeps a plaintext"
    );
    // Random bytes by the path's source and size, as Vault's CLI writes them
    // (`vault write -f transit/random/platform/48 format=hex`).
    let drawn = http(
        addr,
        "PUT",
        "/v1/transit/random/platform/48",
        &sw,
        br#"{"format":"hex"}"#,
    );
    let hexed = drawn.data()["random_bytes"].as_str().unwrap().to_owned();
    assert_eq!(hex::decode(&hexed).unwrap().len(), 48, "{hexed}");
    // Vault's CLI lists by GET with ?list=true.
    let listed = http(addr, "GET", "/v1/transit/keys?list=true", &sw, b"");
    assert_eq!(
        listed.data()["keys"],
        json!([bucket_id, "rgwkey", "swkey"]),
        "the deleted bucket's key stays listed while it waits for deletion"
    );
    // SeaweedFS tells "not found" from the message of a missing key.
    let missing = http(addr, "GET", "/v1/transit/keys/nokey", &sw, b"");
    assert_eq!(missing.status, 404);
    assert!(
        missing.errors().contains("not found"),
        "{}",
        missing.errors()
    );
    daemon.stop();
}

/// A daemon without a tenants file (the token is the domain, `d1`) in `dir`, with the key `k1`,
/// and a ciphertext of `x` under it.
fn daemon_with_k1(dir: &Path) -> (Daemon, String) {
    let daemon = Daemon::spawn(&dir.join("data"), &[]);
    let auth = [("X-Vault-Token", "d1")];
    http(daemon.addr, "POST", "/v1/transit/keys/k1", &auth, b"").data();
    let sealed = http(
        daemon.addr,
        "POST",
        "/v1/transit/encrypt/k1",
        &auth,
        json!({"plaintext": b64(b"x")}).to_string().as_bytes(),
    )
    .data()["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    (daemon, sealed)
}

#[tokio::test]
async fn bad_input_is_refused_in_vaults_shape_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (daemon, v1) = daemon_with_k1(dir.path());
    let addr = daemon.addr;
    let auth = [("X-Vault-Token", "d1")];
    let as_v2 = v1.replacen("vault:v1:", "vault:v2:", 1);
    let big = vec![b' '; 64 * 1024 + 1];
    let encrypt = "/v1/transit/encrypt/k1";
    let decrypt = "/v1/transit/decrypt/k1";
    // (rule, method, path, body, status, words of the message)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "malformed JSON",
            "POST",
            encrypt,
            b"{\"plaintext\": ".to_vec(),
            400,
            "invalid request body",
        ),
        (
            "not a JSON object",
            "POST",
            encrypt,
            b"[1]".to_vec(),
            400,
            "invalid request body",
        ),
        (
            "a number for a string",
            "POST",
            encrypt,
            br#"{"plaintext": 5}"#.to_vec(),
            400,
            "invalid request body",
        ),
        (
            "a string for a number",
            "POST",
            "/v1/transit/datakey/plaintext/k1",
            br#"{"bits": "256"}"#.to_vec(),
            400,
            "invalid request body",
        ),
        (
            "bits Vault does not allow",
            "POST",
            "/v1/transit/datakey/plaintext/k1",
            br#"{"bits": 100}"#.to_vec(),
            400,
            "bits",
        ),
        (
            "a data key under a version other than the latest",
            "POST",
            "/v1/transit/datakey/wrapped/k1",
            br#"{"key_version": 2}"#.to_vec(),
            400,
            "key_version",
        ),
        (
            "an encryption under a version other than the latest",
            "POST",
            encrypt,
            br#"{"plaintext": "eA==", "key_version": 2}"#.to_vec(),
            400,
            "key_version",
        ),
        (
            "invalid base64 plaintext",
            "POST",
            encrypt,
            br#"{"plaintext": "not base64!"}"#.to_vec(),
            400,
            "base64",
        ),
        (
            "invalid base64 context",
            "POST",
            encrypt,
            br#"{"plaintext": "eA==", "context": "%%"}"#.to_vec(),
            400,
            "base64",
        ),
        (
            "no plaintext",
            "POST",
            encrypt,
            b"{}".to_vec(),
            400,
            "missing plaintext",
        ),
        (
            "a plaintext over 4096 bytes",
            "POST",
            encrypt,
            json!({"plaintext": b64(&[0u8; 4097])})
                .to_string()
                .into_bytes(),
            400,
            "4096",
        ),
        (
            "an empty batch",
            "POST",
            encrypt,
            br#"{"batch_input": []}"#.to_vec(),
            400,
            "missing batch input",
        ),
        (
            "a ciphertext whose version prefix is not its blob's",
            "POST",
            decrypt,
            json!({"ciphertext": as_v2}).to_string().into_bytes(),
            400,
            "version",
        ),
        (
            "a ciphertext without vault:v",
            "POST",
            decrypt,
            json!({"ciphertext": b64(b"junk")}).to_string().into_bytes(),
            400,
            "invalid ciphertext",
        ),
        (
            "a ciphertext of invalid base64",
            "POST",
            decrypt,
            br#"{"ciphertext": "vault:v1:!!"}"#.to_vec(),
            400,
            "base64",
        ),
        (
            "a ciphertext that is no blob",
            "POST",
            decrypt,
            json!({"ciphertext": format!("vault:v1:{}", b64(b"junk"))})
                .to_string()
                .into_bytes(),
            400,
            "ciphertext",
        ),
        (
            "a key type kmsbox does not have",
            "POST",
            "/v1/transit/keys/rsakey",
            br#"{"type": "rsa-2048"}"#.to_vec(),
            400,
            "not supported",
        ),
        (
            "no random bytes",
            "POST",
            "/v1/transit/random/0",
            b"".to_vec(),
            400,
            "invalid bytes",
        ),
        (
            "random bytes from a seal kmsbox does not have",
            "POST",
            "/v1/transit/random/seal/16",
            b"".to_vec(),
            400,
            "entropy source",
        ),
        (
            "a convergent key",
            "POST",
            "/v1/transit/keys/convkey",
            br#"{"convergent_encryption": true, "derived": true}"#.to_vec(),
            400,
            "convergent_encryption is not supported",
        ),
        (
            "an exportable key",
            "POST",
            "/v1/transit/keys/expkey",
            br#"{"exportable": true}"#.to_vec(),
            400,
            "not supported",
        ),
        (
            "a rotation period kmsbox cannot keep",
            "POST",
            "/v1/transit/keys/k1/config",
            br#"{"auto_rotate_period": "36h"}"#.to_vec(),
            400,
            "whole days",
        ),
        (
            "a config field of the wrong type",
            "POST",
            "/v1/transit/keys/k1/config",
            br#"{"deletion_allowed": "yes"}"#.to_vec(),
            400,
            "invalid request body",
        ),
        (
            "the config of an unknown key",
            "POST",
            "/v1/transit/keys/nokey/config",
            b"{}".to_vec(),
            400,
            "not found",
        ),
        (
            "a name outside the alias grammar",
            "POST",
            "/v1/transit/keys/bad:name",
            b"".to_vec(),
            400,
            "alias",
        ),
        (
            "an unknown path",
            "POST",
            "/v1/transit/sign/k1",
            b"{}".to_vec(),
            404,
            "no handler",
        ),
        (
            "another mount",
            "GET",
            "/v1/secret/data/x",
            b"".to_vec(),
            404,
            "no handler",
        ),
        (
            "a method the path does not take",
            "GET",
            "/v1/transit/encrypt/k1",
            b"".to_vec(),
            405,
            "unsupported operation",
        ),
        (
            "a key's deletion, as for a Vault key without deletion_allowed",
            "DELETE",
            "/v1/transit/keys/k1",
            b"".to_vec(),
            400,
            "deletion is not allowed",
        ),
        ("a body over 64 KiB", "POST", encrypt, big, 413, "65536"),
    ];
    for (rule, method, path, body, status, words) in &cases {
        let r = http(addr, method, path, &auth, body);
        assert_eq!(r.status, *status, "{rule}: {}", r.body);
        assert!(
            r.errors().contains(words),
            "{rule}: {:?} lacks {words:?}",
            r.errors()
        );
        // The daemon keeps serving after each.
        let health = http(addr, "GET", "/v1/sys/health", &[], b"");
        assert_eq!(health.status, 200, "{rule}: health");
    }
    // A body that cannot be read (a malformed chunk): what broke, not the server's wrapper.
    let r = kmsbox_tests::http1::malformed_chunked(addr, encrypt, &auth);
    assert_eq!(r.status, 400, "{}", r.body);
    let errors = r.errors();
    assert!(
        errors.contains("reading the request body") && errors.contains("chunk"),
        "{errors}"
    );
    assert!(
        !errors.contains("code:") && !errors.contains("hyper::Error"),
        "{errors}"
    );
    // A batch with one bad item: 400 (or the partial_failure_response_code asked for), each
    // item's result or error in order, with its reference.
    for (extra, status) in [
        (json!({}), 400),
        (json!({"partial_failure_response_code": 207}), 207),
    ] {
        let mut body = json!({"batch_input": [
            {"plaintext": b64(b"fine"), "reference": "good"},
            {"plaintext": "not base64!", "reference": "bad"},
        ]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = http(addr, "POST", encrypt, &auth, body.to_string().as_bytes());
        assert_eq!(r.status, status, "{}", r.body);
        let results = &r.body["data"]["batch_results"];
        assert_eq!(
            (&results[0]["reference"], &results[1]["reference"]),
            (&json!("good"), &json!("bad"))
        );
        assert!(
            results[0]["ciphertext"]
                .as_str()
                .unwrap()
                .starts_with("vault:v1:")
        );
        assert!(results[1]["error"].as_str().unwrap().contains("base64"));
    }
    // Nothing was stored: the one key made above is the tenant's only key, at version 1.
    let grpc = Tenant::connect(&daemon.endpoint, "d1", None, None).await;
    let keys = grpc
        .client
        .clone()
        .list_keys(grpc.req(pb::ListKeysRequest {
            page_size: 0,
            page_token: String::new(),
        }))
        .await
        .expect("list")
        .into_inner()
        .keys;
    let aliases: Vec<(&str, u32)> = keys
        .iter()
        .map(|k| (k.alias.as_str(), k.current_version))
        .collect();
    assert_eq!(aliases, [("k1", 1)]);
    drop(grpc);
    daemon.stop();
}

/// Bad input of every shape gets Vault's error shape, never a 5xx, and a refusal stores nothing:
/// each transit call's valid body cut at about 30 places, rotated at as many, and with each field
/// given each of nine other values. Every answer is a 2xx or a 4xx with a non-empty `errors`
/// list; a refused call leaves the key as `GET keys/:name` reads it; no key is made but the one
/// whose creation was asked for by name.
#[test]
fn cut_rotated_and_retyped_bodies_of_every_transit_call_get_vault_errors_and_store_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (daemon, sealed) = daemon_with_k1(dir.path());
    let addr = daemon.addr;
    let auth = [("X-Vault-Token", "d1")];
    let calls: Vec<(&str, Value)> = vec![
        (
            "/v1/transit/encrypt/k1",
            json!({"plaintext": "eA==", "key_version": 1}),
        ),
        (
            "/v1/transit/encrypt/k1",
            json!({"batch_input": [{"plaintext": "eA=="}, {"plaintext": "eQ=="}]}),
        ),
        ("/v1/transit/decrypt/k1", json!({"ciphertext": sealed})),
        (
            "/v1/transit/decrypt/k1",
            json!({"batch_input": [{"ciphertext": sealed}]}),
        ),
        ("/v1/transit/rewrap/k1", json!({"ciphertext": sealed})),
        ("/v1/transit/datakey/plaintext/k1", json!({"bits": 256})),
        ("/v1/transit/datakey/wrapped/k1", json!({"bits": 128})),
        (
            "/v1/transit/random",
            json!({"bytes": 32, "format": "base64"}),
        ),
        (
            "/v1/transit/keys/k1/config",
            json!({"auto_rotate_period": "720h"}),
        ),
        (
            "/v1/transit/keys/k2",
            json!({"type": "aes256-gcm96", "exportable": false, "derived": false}),
        ),
        ("/v1/transit/keys/k1/rotate", json!({})),
    ];
    let state = || {
        let r = http(addr, "GET", "/v1/transit/keys/k1", &auth, b"");
        (r.status, r.body["data"].clone())
    };
    let mut sent = 0;
    for (path, valid) in &calls {
        let bodies = kmsbox_tests::mutations::bad_json_bodies(valid);
        for body in bodies {
            let before = state();
            let r = http(addr, "POST", path, &auth, &body);
            sent += 1;
            let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            assert!(
                (200..300).contains(&r.status) || (400..500).contains(&r.status),
                "{path} {shown}: {} {}",
                r.status,
                r.body
            );
            if r.status >= 400 {
                r.errors();
                assert_eq!(state(), before, "{path} {shown}: a refusal changed the key");
            }
        }
    }
    assert!(sent > 700, "{sent} bodies sent");
    let listed = http(addr, "GET", "/v1/transit/keys?list=true", &auth, b"");
    let mut names: Vec<&str> = listed.data()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["k1", "k2"]);
    daemon.stop();
}

/// A refusal sent before the request's body was read (an unknown path, an unknown Huawei
/// operation) says `Connection: close`: the daemon does not read the rest, and a client that
/// was not told would send its next call into a closed socket (hvac, on python-requests, does
/// not retry a POST: the call fails). A call whose body was read keeps its connection, refused
/// or not.
#[test]
fn a_refusal_before_the_body_closes_its_connection_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(&dir.path().join("data"), &[]);
    let addr = daemon.addr;
    let auth = [
        ("X-Vault-Token", "d1"),
        ("Content-Type", "application/json"),
    ];
    http(addr, "POST", "/v1/transit/keys/k1", &auth, b"").data();
    let body = json!({"plaintext": b64(b"x")}).to_string();
    let huawei_random = "/v1.0/d1/kms/gen-random";
    // (rule, path, body, status, closes)
    let cases: [(&str, &str, &[u8], u16, bool); 6] = [
        (
            "a served call",
            "/v1/transit/encrypt/k1",
            body.as_bytes(),
            200,
            false,
        ),
        (
            "a body read, then refused",
            "/v1/transit/encrypt/k1",
            b"{not json",
            400,
            false,
        ),
        (
            "an unserved transit path",
            "/v1/transit/hmac/k1",
            body.as_bytes(),
            404,
            true,
        ),
        (
            "another mount",
            "/v1/secret/data/x",
            body.as_bytes(),
            404,
            true,
        ),
        (
            "an unknown Huawei operation",
            "/v1.0/d1/kms/nope",
            b"{}",
            400,
            true,
        ),
        (
            "a served Huawei call",
            huawei_random,
            br#"{"random_data_length": "256"}"#,
            200,
            false,
        ),
    ];
    for (rule, path, body, status, closes) in cases {
        let (first, answered_again) = kmsbox_tests::http1::head_then_body(addr, path, &auth, body);
        assert_eq!(first.status, status, "{rule}: {}", first.body);
        assert_eq!(
            (first.header("connection"), answered_again),
            (closes.then_some("close"), !closes),
            "{rule}: {}",
            first.headers
        );
    }
    daemon.stop();
}

/// While the audit log cannot be written (a full disk, `--audit-failure=refuse`), health reads as
/// sealed (503) and every call is refused with 503 and stores nothing; the daemon recovers by
/// itself once there is space again.
#[test]
fn a_full_audit_disk_reads_as_sealed_and_refuses_calls_until_it_can_write() {
    let fs = Tmpfs::mount();
    let log = fs.path().join("audit.jsonl");
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(
        &dir.path().join("data"),
        &["--audit-log", log.to_str().unwrap()],
    );
    let addr = daemon.addr;
    let auth = [("X-Vault-Token", "d1")];
    http(addr, "POST", "/v1/transit/keys/k1", &auth, b"").data();
    let filler = fs.fill();
    let body = json!({"plaintext": b64(b"x")}).to_string();
    let encrypt = || {
        http(
            addr,
            "POST",
            "/v1/transit/encrypt/k1",
            &auth,
            body.as_bytes(),
        )
    };

    // The last page of the log still takes a few lines; then a write fails.
    let refused = (0..2_000)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(2));
            encrypt()
        })
        .find(|r| r.status != 200)
        .expect("a call is refused once the disk is full");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.errors().contains("audit log"),
        "{}",
        refused.errors()
    );
    assert_eq!(refused.header("x-kms-error-code"), Some("KMSBOX.0503"));
    let health = http(addr, "GET", "/v1/sys/health", &[], b"");
    assert_eq!((health.status, &health.body["sealed"]), (503, &json!(true)));
    let chosen = http(addr, "GET", "/v1/sys/health?sealedcode=299", &[], b"");
    assert_eq!(chosen.status, 299, "sealedcode chooses the status");
    let r = http(addr, "POST", "/v1/transit/keys/k2", &auth, b"");
    assert_eq!(r.status, 503, "{}", r.body);

    // Space again: the daemon recovers by itself.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while encrypt().status != 200 {
        assert!(Instant::now() < deadline, "no recovery within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let health = http(addr, "GET", "/v1/sys/health", &[], b"");
    assert_eq!(
        (health.status, &health.body["sealed"]),
        (200, &json!(false))
    );
    let k2 = http(addr, "GET", "/v1/transit/keys/k2", &auth, b"");
    assert_eq!(
        k2.status, 404,
        "a create refused for the audit log stored nothing"
    );
    daemon.stop();
}

/// The transit API answers over HTTP/2 (prior knowledge) on the same port, several calls on one
/// connection, as over HTTP/1.1.
#[tokio::test]
async fn transit_answers_over_http2_on_the_one_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(&dir.path().join("data"), &[]);
    let tcp = tokio::net::TcpStream::connect(daemon.addr)
        .await
        .expect("connects");
    let (client, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    #[allow(
        clippy::disallowed_methods,
        reason = "the connection task of a test client, dropped with the test"
    )]
    let driver = tokio::spawn(conn);
    let mut client = client.ready().await.expect("ready");
    let mut call = async |path: &str, body: Value| -> (u16, Value) {
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", daemon.addr))
            .header("x-vault-token", "d1")
            .body(())
            .expect("request");
        let (resp, mut send) = client.send_request(req, false).expect("send");
        send.send_data(body.to_string().into(), true).expect("body");
        let (parts, mut recv) = resp.await.expect("response").into_parts();
        let mut bytes = Vec::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.expect("data");
            let _ = recv.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        (
            parts.status.as_u16(),
            serde_json::from_slice(&bytes).expect("JSON"),
        )
    };
    let (status, _) = call("/v1/transit/keys/h2key", json!({})).await;
    assert_eq!(status, 200);
    let (status, sealed) = call(
        "/v1/transit/encrypt/h2key",
        json!({"plaintext": b64(b"over h2")}),
    )
    .await;
    assert_eq!(status, 200, "{sealed}");
    let (status, opened) = call(
        "/v1/transit/decrypt/h2key",
        json!({"ciphertext": sealed["data"]["ciphertext"]}),
    )
    .await;
    assert_eq!(
        (status, &opened["data"]["plaintext"]),
        (200, &json!(b64(b"over h2")))
    );
    let (status, refused) = call("/v1/transit/decrypt/h2key", json!({"ciphertext": 1})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["errors"][0].is_string(), "{refused}");
    driver.abort();
    daemon.stop();
}
