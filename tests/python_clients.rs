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

/// The Python `grpcio-reflection` client (v1alpha only) lists the daemon's services.
#[test]
fn grpcio_reflection_v1alpha_client_lists_the_services() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/list_services_v1alpha.py");
    let out = Command::new(python())
        .arg(script)
        .arg(daemon.addr.to_string())
        .output()
        .expect("the script runs");
    assert!(
        out.status.success(),
        "the v1alpha client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
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
