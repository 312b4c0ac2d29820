//! Stock Python gRPC tooling against the real `kms-server` binary. The pinned clients are
//! installed from PyPI into a virtual environment under the build's target folder by the test
//! itself; a client that cannot be installed fails the test, never skips it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kmsbox_tests::process::Daemon;
use kmsbox_tests::python::venv_python;

/// The Python clients, pinned. grpcio-reflection's client speaks only `grpc.reflection.v1alpha`.
const REQUIREMENTS: &[&str] = &[
    "grpcio==1.85.3",
    "grpcio-reflection==1.85.1",
    "protobuf==7.36.2",
];

/// The virtual environment's `python`, created and filled once per test run.
fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-clients");
            venv_python(&venv, REQUIREMENTS)
        })
        .clone()
}

/// Runs `tests/python/<script> HOST:PORT <args>` against a fresh daemon and returns what it
/// printed; a script that fails fails the test.
fn run_against_a_daemon(script: &str, args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(dir.path(), &[]);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = Command::new(python())
        .arg(path)
        .arg(daemon.addr.to_string())
        .args(args)
        .output()
        .expect("the script runs");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The Python `grpcio-reflection` client (v1alpha only) lists the daemon's services.
#[test]
fn grpcio_reflection_v1alpha_client_lists_the_services() {
    let stdout = run_against_a_daemon("list_services_v1alpha.py", &[]);
    let listed: Vec<String> = String::from_utf8_lossy(&stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for service in [
        "kms.v1.KeyManagementService",
        "kms.admin.v1.Admin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            listed.iter().any(|s| s == service),
            "{service} missing from {listed:?}"
        );
    }
}

/// grpcio's C core, unmodified, calls the key service: the daemon reads grpcio's request framing
/// and grpcio reads the daemon's answers, refusals (status, error code and request ID in the
/// trailers) included. The message classes come from the daemon's reflection service.
#[test]
fn grpcio_calls_the_key_service_and_reads_its_answers_and_refusals() {
    use kms_proto::ErrorCode;
    let stdout = run_against_a_daemon("grpcio_kms_calls.py", &["alice"]);
    let got: serde_json::Value = serde_json::from_slice(&stdout).expect("one JSON object");
    let key_id = got["created"]["key_id"]
        .as_str()
        .expect("a key was created");
    assert!(key_id.starts_with("region:alice:key/"), "{key_id}");
    assert_eq!(got["created"]["alias"], "grpcio");
    assert_eq!(got["gdk"]["key_id"], key_id);
    assert_eq!(got["gdk"]["plaintext_len"], 32);
    assert_eq!(
        got["gdk"]["request_id"], "grpcio-gdk-1",
        "the caller's request ID comes back in the response headers"
    );
    assert_eq!(got["gdk_opens"], true, "the data key's blob decrypts to it");
    assert_eq!(got["encrypt_4096_opens"], true);
    assert_eq!(got["random_len"], 64);
    // (call, gRPC status, error code in the trailers)
    let refusals = [
        (
            "decrypt_garbage",
            "INVALID_ARGUMENT",
            Some(ErrorCode::MalformedCiphertext),
        ),
        (
            "wrong_context",
            "INVALID_ARGUMENT",
            Some(ErrorCode::CiphertextAuthFailed),
        ),
        (
            "undecodable",
            "INVALID_ARGUMENT",
            Some(ErrorCode::InvalidArgument),
        ),
        ("gzip", "UNIMPLEMENTED", None),
    ];
    for (call, status, code) in refusals {
        let r = &got[call];
        assert_eq!(r["code"], status, "{call}: {r}");
        assert_eq!(
            r["error_code"].as_str(),
            code.map(ErrorCode::as_str),
            "{call}: {r}"
        );
        if code.is_some() {
            assert!(r["request_id"].is_string(), "{call}: a request ID: {r}");
        }
    }
    assert_eq!(got["undecodable"]["request_id"], "grpcio-bad-1");
}
