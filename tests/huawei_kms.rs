//! The Huawei Cloud KMS REST API (issue 11, part 1) against the real `kms-server` binary: the
//! official Python SDK (`huaweicloudsdkkms`, unmodified, pinned, installed from PyPI by the test)
//! drives every operation the daemon serves, is refused with Huawei's codes, and shares its keys
//! and ciphertexts with the gRPC API. Bad input is sent raw.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kms_proto::v1 as pb;
use kmsbox_tests::Tenant;
use kmsbox_tests::process::Daemon;
use kmsbox_tests::python::{run_script, venv_python};

/// The official SDK and its HTTP stack, pinned.
const REQUIREMENTS: &[&str] = &[
    "huaweicloudsdkcore==3.1.219",
    "huaweicloudsdkkms==3.1.219",
    "requests==2.34.2",
    "urllib3==2.8.0",
];

fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-huawei");
            venv_python(&venv, REQUIREMENTS)
        })
        .clone()
}

const ALICE: &str = "a1ice0123456789abcdef0123456789a";
const ALICE_TOKEN: &str = "alice-token-0123456789";
const ALICE_AK: &str = "AKALICE0123";
const ALICE_SK: &str = "alice-secret-key-0123456789";
/// Alice's project in the daemon's region, and her project in another region.
const ALICE_PROJECT: &str = "0123456789abcdef0123456789abcdef";
const ALICE_OTHER_PROJECT: &str = "1123456789abcdef0123456789abcdef";
const BOB_AK: &str = "AKBOB0123";
const BOB_SK: &str = "bob-secret-key-0123456789";
const BOB_PROJECT: &str = "2123456789abcdef0123456789abcdef";

/// The daemon with a tenants file of two tenants with access keys; `region` is its region.
fn daemon(dir: &Path) -> Daemon {
    let tenants = dir.join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            "[[tenants]]\ndomain_id = \"{ALICE}\"\ntoken = \"{ALICE_TOKEN}\"\n\
             access_key = \"{ALICE_AK}\"\nsecret_key = \"{ALICE_SK}\"\n\
             projects = {{ \"region\" = \"{ALICE_PROJECT}\", \"cn-north-4\" = \"{ALICE_OTHER_PROJECT}\" }}\n\
             [[tenants]]\ndomain_id = \"b0b\"\ntoken = \"bob-token-0123456789\"\n\
             access_key = \"{BOB_AK}\"\nsecret_key = \"{BOB_SK}\"\n\
             projects = {{ \"region\" = \"{BOB_PROJECT}\" }}\n"
        ),
    )
    .expect("writes the tenants file");
    let data = dir.join("data");
    std::fs::create_dir(&data).expect("data folder");
    Daemon::spawn(&data, &["--tenants", tenants.to_str().expect("utf-8 path")])
}

/// Runs a scenario of `huawei_sdk.py`; asserts that every rule it checked held, and returns its
/// artifacts.
fn sdk(scenario: &str, args: serde_json::Value) -> serde_json::Value {
    let out = run_script(&python(), "huawei_sdk.py", &[scenario, &args.to_string()]);
    let mut v: serde_json::Value =
        serde_json::from_str(out.trim()).expect("the script prints JSON");
    let failures = v["failures"].as_array().expect("failures").clone();
    assert!(
        failures.is_empty(),
        "{scenario}: rules that did not hold:\n{}",
        failures
            .iter()
            .map(|f| f.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    );
    v["artifacts"].take()
}

fn alice_args(daemon: &Daemon) -> serde_json::Value {
    serde_json::json!({
        "endpoint": daemon.endpoint,
        "ak": ALICE_AK, "sk": ALICE_SK, "project": ALICE_PROJECT,
        "domain": ALICE, "region": "region",
    })
}

/// [`alice_args`] with Bob's access key and project, for the rules about another tenant.
fn alice_and_bob_args(daemon: &Daemon) -> serde_json::Value {
    let mut args = alice_args(daemon);
    args["bob_ak"] = BOB_AK.into();
    args["bob_sk"] = BOB_SK.into();
    args["bob_project"] = BOB_PROJECT.into();
    args
}

/// Asserts that the audit log in `dir` has, for each `(rule, operation, outcome, key)`, a line of
/// that operation and outcome naming `key` (any key when empty); returns the log's lines.
#[track_caller]
fn assert_audited(dir: &Path, cases: &[(&str, &str, &str, &str)]) -> Vec<serde_json::Value> {
    let log = std::fs::read_to_string(dir.join("data/audit.jsonl")).expect("audit log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    for (rule, operation, outcome, key) in cases {
        assert!(
            lines.iter().any(|l| l["operation"] == *operation
                && l["outcome"] == *outcome
                && (key.is_empty() || l["key_id"] == *key)),
            "{rule}: no {operation} line with outcome {outcome} in\n{log}"
        );
    }
    lines
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().expect("a string")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_serves_every_operation_on_the_keys_of_the_grpc_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon(dir.path());
    let made = sdk("operations", alice_args(&daemon));
    let key_id = text(&made["key_id"]);

    // A key created over REST is the same key over gRPC, in the project's region.
    let mut grpc = Tenant::connect(&daemon.endpoint, "", Some("region"), Some(ALICE_TOKEN)).await;
    let described = grpc
        .client
        .describe_key(grpc.req(pb::DescribeKeyRequest {
            key_id: key_id.to_owned(),
        }))
        .await
        .expect("the REST-made key over gRPC")
        .into_inner()
        .metadata
        .expect("metadata");
    assert_eq!(described.alias, "sdk/first");
    assert_eq!(described.description, "made by the SDK");
    assert_eq!(described.key_uuid, key_id);

    // REST's additional_authenticated_data is the gRPC context {"additional_authenticated_data": ..}.
    let aad = HashMap::from([(
        "additional_authenticated_data".to_owned(),
        text(&made["aad"]).to_owned(),
    )]);
    let blob = BASE64.decode(text(&made["cipher_text"])).expect("base64");
    let opened = grpc
        .client
        .decrypt(grpc.req(pb::DecryptRequest {
            ciphertext_blob: blob,
            encryption_context: aad.clone(),
            key_id: String::new(),
        }))
        .await
        .expect("a REST ciphertext decrypts over gRPC")
        .into_inner();
    assert_eq!(opened.plaintext, text(&made["plain_text"]).as_bytes());

    // And back: a gRPC ciphertext decrypts over REST.
    let sealed = grpc
        .client
        .encrypt(grpc.req(pb::EncryptRequest {
            key_id: key_id.to_owned(),
            plaintext: b"sealed over gRPC".to_vec(),
            encryption_context: aad,
        }))
        .await
        .expect("encrypts over gRPC")
        .into_inner();
    let mut args = alice_args(&daemon);
    args["cipher_text"] = BASE64.encode(&sealed.ciphertext_blob).into();
    args["aad"] = made["aad"].clone();
    let back = sdk("decrypt", args);
    assert_eq!(text(&back["plain_text"]), "sealed over gRPC");
    assert_eq!(text(&back["key_id"]), key_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_tenancy_and_key_states_are_refused_with_huawei_codes_and_audited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon(dir.path());
    let bob_key = sdk(
        "create",
        serde_json::json!({
            "endpoint": daemon.endpoint, "ak": BOB_AK, "sk": BOB_SK,
            "project": BOB_PROJECT, "alias": "bobs-key",
        }),
    );
    let mut args = alice_args(&daemon);
    args["bob_project"] = BOB_PROJECT.into();
    args["other_project"] = ALICE_OTHER_PROJECT.into();
    args["bob_key"] = bob_key["key_id"].clone();
    sdk("refusals", args);

    let mut args = alice_args(&daemon);
    args["bob_project"] = BOB_PROJECT.into();
    sdk("signatures", args);

    // Each refusal is in the audit log, under the gRPC operation's name and its code.
    let lines = assert_audited(
        dir.path(),
        &[
            ("a wrong secret key", "ListKeys", "KMSBOX.0401", ""),
            ("another tenant's project", "ListKeys", "KMSBOX.0403", ""),
            ("a stale X-Sdk-Date", "ListKeys", "KMSBOX.0401", ""),
            ("another tenant's key", "DescribeKey", "KMS.0207", ""),
            ("a disabled key", "Encrypt", "KMS.0209", ""),
            ("a key pending deletion", "Encrypt", "KMS.0210", ""),
            ("a lifecycle change", "ScheduleKeyDeletion", "ok", ""),
        ],
    );
    // A refused project is audited under the tenant whose signature held.
    assert!(
        lines
            .iter()
            .any(|l| l["outcome"] == "KMSBOX.0403" && l["domain"] == ALICE),
        "the 403 line names alice: {lines:?}"
    );
}

/// Every refusal Huawei has a code of its own for (KMS.1101 to KMS.2202), as the unmodified SDK
/// raises it: `ClientRequestException` with Huawei's `error_code` and status 400. The refused calls
/// store nothing: the three keys the scenario made are all there are, in the states it left them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_sees_huaweis_own_codes_and_refused_calls_store_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon(dir.path());
    let made = sdk("huawei_codes", alice_args(&daemon));
    let mut grpc = Tenant::connect(&daemon.endpoint, "", Some("region"), Some(ALICE_TOKEN)).await;
    let keys = grpc
        .client
        .list_keys(grpc.req(pb::ListKeysRequest::default()))
        .await
        .expect("lists over gRPC")
        .into_inner()
        .keys;
    let mut aliases: Vec<&str> = keys.iter().map(|k| k.alias.as_str()).collect();
    aliases.sort_unstable();
    assert_eq!(
        aliases,
        ["sdk/codes", "sdk/codes-pending", "sdk/codes-taken"],
        "only the keys the scenario made"
    );
    assert_eq!(made["made"], 3);
    let state = |uuid: &str| {
        keys.iter()
            .find(|k| k.key_uuid == uuid)
            .map(|k| (k.state, k.alias.as_str(), k.description.as_str()))
            .expect("listed")
    };
    assert_eq!(
        state(text(&made["key_id"])),
        (pb::KeyState::Enabled as i32, "sdk/codes", ""),
        "the refused renames and descriptions changed nothing"
    );
    assert_eq!(
        state(text(&made["pending"])).0,
        pb::KeyState::PendingDeletion as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_renames_describes_and_rotates_keys_and_grpc_sees_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon(dir.path());
    let made = sdk("attributes_and_rotation", alice_args(&daemon));
    let mut grpc = Tenant::connect(&daemon.endpoint, "", Some("region"), Some(ALICE_TOKEN)).await;
    let key = grpc
        .client
        .describe_key(grpc.req(pb::DescribeKeyRequest {
            key_id: text(&made["key_id"]).to_owned(),
        }))
        .await
        .expect("the key over gRPC")
        .into_inner()
        .metadata
        .expect("metadata");
    assert_eq!(
        (
            key.alias.as_str(),
            key.description.as_str(),
            key.current_version
        ),
        ("sdk/renamed", "new words", 2)
    );
}

/// The SDK's `show_versions` and `show_version` (`GET /`, `GET /v1.0`): signed calls without a
/// project in the path, answered in Huawei's shapes and refused in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_reads_the_version_documents_with_its_signature_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon(dir.path());
    sdk("versions", alice_and_bob_args(&daemon));
    assert_audited(
        dir.path(),
        &[
            ("every version", "ShowVersions", "ok", ""),
            ("one version", "ShowVersion", "ok", ""),
            ("a wrong secret key", "ShowVersions", "KMSBOX.0401", ""),
            (
                "another tenant's project",
                "ShowVersions",
                "KMSBOX.0403",
                "",
            ),
        ],
    );
}

/// Key tags through the SDK's six tag calls (the scenario checks each answer and refusal); the
/// edits are audited as lifecycle changes, and the tags outlive a restart of the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_tags_keys_lists_and_filters_them_and_the_tags_outlive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = daemon(dir.path());
    let made = sdk("tags", alice_and_bob_args(&daemon));
    let web_full = format!("region:{ALICE}:key/{}", text(&made["web"]));
    assert_audited(
        dir.path(),
        &[
            ("one tag added", "CreateKmsTag", "ok", web_full.as_str()),
            ("a batch", "BatchKmsTags", "ok", web_full.as_str()),
            ("a tag removed", "DeleteKmsTag", "ok", web_full.as_str()),
            ("an empty batch", "BatchKmsTags", "KMS.0401", ""),
            ("the project's tags", "ListKmsTags", "ok", ""),
            ("a filter", "ListKmsByTags", "ok", ""),
        ],
    );

    // The same tags over gRPC.
    let grpc = Tenant::connect(&daemon.endpoint, "", Some("region"), Some(ALICE_TOKEN)).await;
    let described = grpc
        .describe(text(&made["web"]))
        .await
        .expect("the key over gRPC");
    assert_eq!(
        described.tags,
        std::collections::BTreeMap::from([("team".to_owned(), "storage".to_owned())])
    );

    drop(daemon);
    let daemon = Daemon::spawn(
        &dir.path().join("data"),
        &[
            "--tenants",
            dir.path()
                .join("tenants.toml")
                .to_str()
                .expect("utf-8 path"),
        ],
    );
    let mut args = alice_args(&daemon);
    args["key_id"] = made["web"].clone();
    assert_eq!(
        sdk("shown_tags", args),
        serde_json::json!({ "team": "storage" }),
        "the tags as the scenario left them, after a restart"
    );
}

/// One raw HTTP/1.1 request; the status and the JSON body of the answer.
fn raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    raw_with(addr, method, path, "", body)
}

/// [`raw`] with `headers` (whole lines, each ending in CRLF) added to the request's head.
fn raw_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("writes the head");
    // The daemon may answer (and close) before it has read an oversized body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Without a tenants file (loopback only) signatures are not checked, the project ID in the path
/// is the tenant's domain ID and the region is `--region`. Bad input of every kind gets Huawei's
/// error shape, the daemon keeps serving, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_huawei_error_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(dir.path(), &["--region", "cn-north-4"]);
    let op = |name: &str| format!("/v1.0/{ALICE}/kms/{name}");
    let oversized = format!(
        "{{\"key_alias\": \"big\", \"key_description\": \"{}\"}}",
        "x".repeat(64 * 1024)
    );
    let long_description = format!(
        "{{\"key_alias\": \"long\", \"key_description\": \"{}\"}}",
        "d".repeat(256)
    );
    // (rule, method, operation, body, status, code)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [u8], u16, &'a str);
    let cases: &[Case<'_>] = &[
        ("malformed JSON", "POST", "create-key", b"{\"key_alias\": ", 400, "KMS.0202"),
        ("not an object", "POST", "create-key", b"[1, 2]", 400, "KMS.0308"),
        ("empty body", "POST", "create-key", b"", 400, "KMS.0202"),
        ("a required field missing", "POST", "create-key", b"{}", 400, "KMS.0204"),
        ("a wrong type", "POST", "create-key", br#"{"key_alias": ["a"]}"#, 400, "KMS.0308"),
        ("a number not as a string", "POST", "gen-random", br#"{"random_data_length": 256}"#, 400, "KMS.0308"),
        ("a string that is no number", "POST", "gen-random", br#"{"random_data_length": "2S6"}"#, 400, "KMS.1801"),
        ("an unknown field", "POST", "create-key", br#"{"key_alias": "a", "colour": "red"}"#, 400, "KMS.0308"),
        ("an unsupported key_spec", "POST", "create-key", br#"{"key_alias": "a", "key_spec": "RSA_2048"}"#, 400, "KMS.0308"),
        ("an invalid alias", "POST", "create-key", br#"{"key_alias": "a//b"}"#, 400, "KMS.1101"),
        ("a sequence over 36 characters", "POST", "create-key", br#"{"key_alias": "a", "sequence": "0123456789012345678901234567890123456"}"#, 400, "KMS.0206"),
        ("an unknown operation", "POST", "create-keys", b"{}", 400, "KMS.0201"),
        ("another method", "GET", "list-keys", b"", 400, "KMS.0201"),
        ("a path under /v1.0 that is no operation", "POST", "../x", b"{}", 400, "KMS.0201"),
        ("an oversized body (64 KiB limit)", "POST", "create-key", oversized.as_bytes(), 400, "KMS.0203"),
        ("a malformed key ID", "POST", "describe-key", br#"{"key_id": "nope"}"#, 400, "KMS.0205"),
        ("an absent key", "POST", "describe-key", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f"}"#, 404, "KMS.0207"),
        ("invalid hex", "POST", "decrypt-datakey", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "cipher_text": "XYZ", "datakey_cipher_length": "32"}"#, 400, "KMS.2201"),
        ("invalid base64", "POST", "decrypt-data", br#"{"cipher_text": "!!!not base64"}"#, 400, "KMS.0308"),
        ("a ciphertext that is no blob", "POST", "decrypt-data", br#"{"cipher_text": "aGVsbG8="}"#, 400, "KMSBOX.0420"),
        ("datakey_length not a multiple of 8", "POST", "create-datakey", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "datakey_length": "100"}"#, 400, "KMS.1903"),
        ("random_data_length over 8192 bits", "POST", "gen-random", br#"{"random_data_length": "8200"}"#, 400, "KMS.1801"),
        ("a project ID that is no domain ID", "POST", "list-keys", b"{}", 400, "KMS.0308"),
        ("a description over 255 characters", "POST", "create-key", long_description.as_bytes(), 400, "KMS.1103"),
        ("random_data_length not a multiple of 8", "POST", "gen-random", br#"{"random_data_length": "100"}"#, 400, "KMS.1802"),
        ("an unsupported datakey key_spec", "POST", "create-datakey", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "key_spec": "AES_512"}"#, 400, "KMS.1902"),
        ("plain_text not the data key and its digest", "POST", "encrypt-datakey", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "plain_text": "AABB", "datakey_plain_length": "1"}"#, 400, "KMS.2104"),
        ("a rotation interval of 366 days", "POST", "update-key-rotation-interval", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "rotation_interval": 366}"#, 400, "KMS.3001"),
        ("a limit of 0", "POST", "list-keys", br#"{"limit": "0"}"#, 400, "KMS.1601"),
        ("a marker from no list", "POST", "list-keys", br#"{"marker": "garbage"}"#, 400, "KMS.1602"),
        ("datakey_length without plaintext over 8192 bits", "POST", "create-datakey-without-plaintext", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "datakey_length": "8200"}"#, 400, "KMS.2001"),
        ("datakey_plain_length 0", "POST", "encrypt-datakey", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "plain_text": "AA", "datakey_plain_length": "0"}"#, 400, "KMS.2102"),
        ("plain_text that is not hex", "POST", "encrypt-datakey", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "plain_text": "XYZ", "datakey_plain_length": "1"}"#, 400, "KMS.2101"),
        ("datakey_cipher_length over 1024", "POST", "decrypt-datakey", br#"{"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f", "cipher_text": "AA", "datakey_cipher_length": "1025"}"#, 400, "KMS.2202"),
        ("a method the tag path does not take", "PUT", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags", b"{}", 400, "KMS.0201"),
        ("a tag deletion without its tag key", "DELETE", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags", b"", 400, "KMS.0201"),
        ("an empty tag key segment", "DELETE", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags/", b"", 400, "KMS.0201"),
        ("a path past the tag key", "DELETE", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags/a/b", b"", 400, "KMS.0201"),
        ("the tags of a malformed key ID", "GET", "nope/tags", b"", 400, "KMS.0205"),
        ("the tags of an absent key", "GET", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags", b"", 404, "KMS.0207"),
        ("a tag without its key", "POST", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags", br#"{"tag": {"value": "v"}}"#, 400, "KMS.0204"),
        ("a tag with an unknown field", "POST", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags", br#"{"tag": {"key": "k", "colour": "red"}}"#, 400, "KMS.0308"),
        ("a batch without its action", "POST", "0d0466b0-e727-4d9c-b35d-f84bb474a37f/tags/action", br#"{"tags": [{"key": "k"}]}"#, 400, "KMS.0204"),
        ("a filter of eleven tag keys", "POST", "resource_instances/action", br#"{"action": "filter", "tags": [{"key":"a"},{"key":"b"},{"key":"c"},{"key":"d"},{"key":"e"},{"key":"f"},{"key":"g"},{"key":"h"},{"key":"i"},{"key":"j"},{"key":"k"}]}"#, 400, "KMS.0308"),
        ("a filter offset that is no number", "POST", "resource_instances/action", br#"{"action": "filter", "offset": "-1"}"#, 400, "KMS.0308"),
        ("the version documents by POST", "POST", "/", b"", 400, "KMS.0201"),
    ];
    for (rule, method, name, body, status, code) in cases {
        // The one case of a bad project names an operation that needs none.
        let path = match *rule {
            "a project ID that is no domain ID" => format!("/v1.0/not-a-domain/kms/{name}"),
            "the version documents by POST" => (*name).to_owned(),
            _ => op(name),
        };
        let (got_status, got) = raw(daemon.addr, method, &path, body);
        assert_eq!(
            (got_status, got["error"]["error_code"].as_str()),
            (*status, Some(*code)),
            "{rule}: {got}"
        );
        assert!(
            got["error"]["error_msg"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{rule}: a message says what was wrong: {got}"
        );
    }

    // The version documents need no signature without a tenants file, like every call.
    for (path, field) in [("/", "versions"), ("/v1.0", "version")] {
        let (status, got) = raw(daemon.addr, "GET", path, b"");
        let id = if field == "versions" {
            &got[field][0]["id"]
        } else {
            &got[field]["id"]
        };
        assert_eq!((status, id.as_str()), (200, Some("v1.0")), "{path}: {got}");
    }

    // list-keys names its own fields (limit, marker), never the gRPC API's (page_size,
    // page_token).
    for (body, field) in [
        (r#"{"limit": "1001"}"#, "invalid limit"),
        (r#"{"marker": "garbage"}"#, "invalid marker"),
    ] {
        let (status, got) = raw(daemon.addr, "POST", &op("list-keys"), body.as_bytes());
        let message = got["error"]["error_msg"].as_str().unwrap_or_default();
        assert!(
            status == 400 && message.starts_with(field) && !message.contains("page_"),
            "{body}: {got}"
        );
    }

    // A body that cannot be read (a malformed chunk) is that, not a body over the limit.
    let r = kmsbox_tests::http1::malformed_chunked(
        daemon.addr,
        &op("create-key"),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(
        (r.status, r.body["error"]["error_code"].as_str()),
        (400, Some("KMS.0308")),
        "{}",
        r.body
    );
    let message = r.body["error"]["error_msg"].as_str().unwrap_or_default();
    assert!(
        message.contains("could not be read") && message.contains("chunk"),
        "{message}"
    );

    // A header that decides the caller may appear once: a second copy could go unchecked.
    for header in ["X-Project-Id", "X-Sdk-Date", "Authorization"] {
        let twice = format!("{header}: a\r\n{header}: b\r\n");
        let (status, got) = raw_with(daemon.addr, "POST", &op("create-key"), &twice, b"{}");
        assert_eq!(
            (status, got["error"]["error_code"].as_str()),
            (400, Some("KMS.0308")),
            "{header} twice: {got}"
        );
        let message = got["error"]["error_msg"].as_str().unwrap_or_default();
        assert!(message.contains("repeated"), "{header} twice: {got}");
    }

    // Nothing was stored, and the daemon still serves: a good call works, over REST and gRPC.
    let (status, listed) = raw(daemon.addr, "POST", &op("list-keys"), b"{}");
    assert_eq!((status, &listed["keys"]), (200, &serde_json::json!([])));
    let (status, made) = raw(
        daemon.addr,
        "POST",
        &op("create-key"),
        br#"{"key_alias": "after-the-bad-input"}"#,
    );
    assert_eq!(status, 200, "{made}");
    assert_eq!(
        made["key_info"]["domain_id"], ALICE,
        "the project ID is the domain"
    );
    assert_eq!(
        made["key_info"]["region_id"], "cn-north-4",
        "the region is --region"
    );
    let mut grpc = Tenant::connect(&daemon.endpoint, ALICE, None, None).await;
    let keys = grpc
        .client
        .list_keys(grpc.req(pb::ListKeysRequest::default()))
        .await
        .expect("lists over gRPC")
        .into_inner()
        .keys;
    assert_eq!(
        keys.iter().map(|k| k.alias.as_str()).collect::<Vec<_>>(),
        ["after-the-bad-input"]
    );
}

/// Bad input of every shape gets Huawei's error shape, never a 5xx, and a refusal stores nothing:
/// every operation's valid body is sent cut at about 30 places, rotated at as many, and with each
/// field given each of nine other values (multibyte text over every limit, NUL, empty, a number,
/// a huge number, a negative, null, an array, an object). Every answer is a 2xx or a 4xx whose
/// body names a code of the table and says what was wrong; a refused call leaves the key it
/// names as it was; keys are made only by create-key calls that were answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_rotated_and_retyped_bodies_of_every_operation_get_huawei_errors_and_store_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(dir.path(), &[]);
    let op = |name: &str| format!("/v1.0/{ALICE}/kms/{name}");
    let call = |name: &str, body: &serde_json::Value| {
        raw(daemon.addr, "POST", &op(name), body.to_string().as_bytes())
    };
    let (_, made) = call("create-key", &serde_json::json!({"key_alias": "sweep"}));
    let key = text(&made["key_info"]["key_id"]).to_owned();
    let (_, datakey) = call(
        "create-datakey",
        &serde_json::json!({"key_id": key, "datakey_length": "256"}),
    );
    let datakey_cipher = text(&datakey["cipher_text"]).to_owned();
    let plain = text(&datakey["plain_text"]);
    let digest = {
        use sha2::Digest as _;
        hex::encode_upper(sha2::Sha256::digest(hex::decode(plain).expect("hex")))
    };
    let (_, sealed) = call(
        "encrypt-data",
        &serde_json::json!({"key_id": key, "plain_text": "hello"}),
    );
    let data_cipher = text(&sealed["cipher_text"]).to_owned();
    let k = key.as_str();
    let operations: Vec<(String, serde_json::Value)> = [
        ("describe-key", serde_json::json!({"key_id": k})),
        ("list-keys", serde_json::json!({"limit": "10", "key_state": "2"})),
        ("create-datakey", serde_json::json!({"key_id": k, "datakey_length": "256", "additional_authenticated_data": "aad", "sequence": "1"})),
        ("create-datakey-without-plaintext", serde_json::json!({"key_id": k, "key_spec": "AES_256"})),
        ("encrypt-datakey", serde_json::json!({"key_id": k, "plain_text": format!("{plain}{digest}"), "datakey_plain_length": "32"})),
        ("decrypt-datakey", serde_json::json!({"key_id": k, "cipher_text": datakey_cipher, "datakey_cipher_length": "32"})),
        ("encrypt-data", serde_json::json!({"key_id": k, "plain_text": "hello", "encryption_algorithm": "SYMMETRIC_DEFAULT"})),
        ("decrypt-data", serde_json::json!({"cipher_text": data_cipher})),
        ("re-encrypt", serde_json::json!({"source_key_id": k, "destination_key_id": k, "cipher_text": datakey_cipher, "datakey_cipher_length": "32"})),
        ("gen-random", serde_json::json!({"random_data_length": "256"})),
        ("update-key-alias", serde_json::json!({"key_id": k, "key_alias": "swept"})),
        ("update-key-description", serde_json::json!({"key_id": k, "key_description": "d"})),
        ("enable-key-rotation", serde_json::json!({"key_id": k})),
        ("update-key-rotation-interval", serde_json::json!({"key_id": k, "rotation_interval": 90})),
        ("get-key-rotation-status", serde_json::json!({"key_id": k})),
        ("disable-key-rotation", serde_json::json!({"key_id": k})),
        ("rotate-on-demand", serde_json::json!({"key_id": k})),
        (&format!("{k}/tags"), serde_json::json!({"tag": {"key": "team", "value": "storage"}})),
        (&format!("{k}/tags/action"), serde_json::json!({"action": "create", "tags": [{"key": "a", "value": "b"}]})),
        ("resource_instances/action", serde_json::json!({"action": "filter", "limit": "10", "offset": "0", "tags": [{"key": "a", "values": ["b"]}]})),
        ("create-key", serde_json::json!({"key_alias": "made", "key_description": "d", "key_spec": "AES_256", "key_usage": "ENCRYPT_DECRYPT", "origin": "kms"})),
        ("disable-key", serde_json::json!({"key_id": k})),
        ("enable-key", serde_json::json!({"key_id": k})),
        ("schedule-key-deletion", serde_json::json!({"key_id": k, "pending_days": "7"})),
        ("cancel-key-deletion", serde_json::json!({"key_id": k})),
    ]
    .into_iter()
    .map(|(name, body)| (name.to_owned(), body))
    .collect();
    let state = || {
        raw(
            daemon.addr,
            "POST",
            &op("describe-key"),
            format!("{{\"key_id\": \"{k}\"}}").as_bytes(),
        )
    };
    let mut made_keys = 1;
    let mut sent = 0;
    for (name, valid) in &operations {
        let bodies = kmsbox_tests::mutations::bad_json_bodies(valid);
        for body in bodies {
            let before = state();
            let (status, got) = raw(daemon.addr, "POST", &op(name), &body);
            sent += 1;
            let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            assert!(
                (200..300).contains(&status) || (400..500).contains(&status),
                "{name} {shown}: {status} {got}"
            );
            if status >= 400 {
                let code = got["error"]["error_code"].as_str().unwrap_or_default();
                assert!(
                    code.parse::<kms_proto::ErrorCode>().is_ok()
                        && got["error"]["error_msg"]
                            .as_str()
                            .is_some_and(|m| !m.is_empty()),
                    "{name} {shown}: {got}"
                );
                assert_eq!(state(), before, "{name} {shown}: a refusal changed the key");
            } else if name == "create-key" {
                made_keys += 1;
            }
        }
    }
    assert!(sent > 1500, "{sent} bodies sent");
    let (status, listed) = raw(
        daemon.addr,
        "POST",
        &op("list-keys"),
        br#"{"limit": "1000"}"#,
    );
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["keys"].as_array().map(Vec::len),
        Some(made_keys),
        "{listed}"
    );
}

/// The REST API answers over HTTP/2 (prior knowledge, as on the gRPC port) as over HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_answers_over_http2_on_the_grpc_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(dir.path(), &[]);
    let addr = daemon.addr;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let (client, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    #[allow(
        clippy::disallowed_methods,
        reason = "the connection task of a test client, dropped with the test"
    )]
    let driver = tokio::spawn(conn);
    let mut client = client.ready().await.expect("ready");
    let mut post = async |operation: &str, body: &'static [u8]| {
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/v1.0/{ALICE}/kms/{operation}"))
            .header("content-type", "application/json;charset=UTF-8")
            .body(())
            .expect("request");
        let (resp, mut send) = client.send_request(req, false).expect("send");
        send.send_data(body.into(), true).expect("body");
        let resp = resp.await.expect("response");
        let (parts, mut recv) = resp.into_parts();
        let mut out = Vec::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.expect("data");
            let _ = recv.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        let json: serde_json::Value = serde_json::from_slice(&out).expect("a JSON answer");
        (parts.status.as_u16(), json)
    };
    let (status, made) = post("create-key", br#"{"key_alias": "over-h2"}"#).await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["key_info"]["domain_id"], ALICE);
    let (status, err) = post("create-key", b"{").await;
    assert_eq!(
        (status, &err["error"]["error_code"]),
        (400, &"KMS.0202".into())
    );
    driver.abort();
}
