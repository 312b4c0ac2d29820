//! The test control plane with the real binaries: a misbehaving KMS started with one command
//! (`kms-server --faults FILE --virtual-clock --clock-start ... --admin-token ...`) and scripted
//! with `kmsctl admin`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use kmsbox_tests::process::{Daemon, bin};
use serde_json::Value;

const ADMIN_TOKEN: &str = "admin-secret-token-0001";

/// `kmsctl --endpoint EP --domain cli -o json ARGS`: success, standard output, standard error.
fn kmsctl(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("kmsctl"))
        .args([
            "--endpoint",
            endpoint,
            "--domain",
            "cli",
            "--output",
            "json",
        ])
        .args(args)
        .env_remove("KMSCTL_ADMIN_TOKEN")
        .output()
        .expect("kmsctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_misbehaving_kms_starts_with_one_command_and_kmsctl_admin_scripts_it() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    std::fs::write(
        &faults,
        "[[faults]]\noperation = \"Encrypt\"\nfail = { error_code = \"KMSBOX.0429\" }\ncount = 1\n",
    )
    .unwrap();
    let daemon = Daemon::spawn(
        &dir.path().join("data"),
        &[
            "--faults",
            faults.to_str().unwrap(),
            "--virtual-clock",
            "--clock-start",
            "2027-01-01T00:00:00Z",
            "--admin-token",
            ADMIN_TOKEN,
        ],
    );
    let ep = daemon.endpoint.as_str();
    let ok = |args: &[&str]| -> Value {
        let (ok, out, err) = kmsctl(ep, args);
        assert!(ok, "kmsctl {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let refused = |args: &[&str]| -> String {
        let (ok, out, err) = kmsctl(ep, args);
        assert!(!ok, "kmsctl {args:?} should fail: {out}");
        err
    };
    let admin = |args: &[&str]| -> Value {
        let mut a = vec!["admin", "--admin-token", ADMIN_TOKEN];
        a.extend_from_slice(args);
        ok(&a)
    };

    // Without the admin token: refused.
    let err = refused(&["admin", "clock", "get"]);
    assert!(err.contains("KMSBOX.0401"), "{err}");

    // The clock starts where it was told; the file's rule is there.
    let clock = admin(&["clock", "get"]);
    assert_eq!(clock["now"], "2027-01-01T00:00:00.000Z");
    assert_eq!(clock["virtual"], true);
    let listed = admin(&["faults", "list"]);
    assert_eq!(listed["faults"][0]["id"], "f1");
    assert_eq!(listed["faults"][0]["action"], "fail KMSBOX.0429");

    // The file's rule throttles the first Encrypt, then retires.
    let key = ok(&["create-key"])["key_id"].as_str().unwrap().to_owned();
    let err = refused(&["encrypt", &key, "--plaintext", "hi"]);
    assert!(err.contains("KMSBOX.0429 (ResourceExhausted)"), "{err}");
    let blob = ok(&["encrypt", &key, "--plaintext", "hi"])["ciphertext_blob"]
        .as_str()
        .unwrap()
        .to_owned();
    let f1 = &admin(&["faults", "list"])["faults"][0];
    assert_eq!(
        (f1["hits"].as_u64(), f1["retired"].as_bool()),
        (Some(1), Some(true))
    );

    // A rule added while serving: Decrypt of this key fails as if it were disabled, until removed.
    let id = admin(&[
        "faults",
        "add",
        "--operation",
        "Decrypt",
        "--for-key",
        &key,
        "--fail",
        "KMS.0209",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, "f2");
    let err = refused(&["decrypt", &blob]);
    assert!(err.contains("KMS.0209 (FailedPrecondition)"), "{err}");
    admin(&["faults", "remove", &id]);
    assert_eq!(ok(&["decrypt", &blob])["plaintext"], "hi");
    let err = refused(&[
        "admin",
        "--admin-token",
        ADMIN_TOKEN,
        "faults",
        "remove",
        &id,
    ]);
    assert!(err.contains("no fault rule"), "{err}");

    // export-seed with material: a second daemon seeded from it opens the first one's blob.
    let exported = dir.path().join("exported.toml");
    let (ok_export, _, err) = kmsctl(
        ep,
        &[
            "admin",
            "--admin-token",
            ADMIN_TOKEN,
            "export-seed",
            "--include-material",
            "--out",
            exported.to_str().unwrap(),
        ],
    );
    assert!(ok_export, "{err}");
    assert!(
        err.contains("in the clear"),
        "a warning on standard error: {err}"
    );
    let twin = Daemon::spawn(
        &dir.path().join("twin"),
        &["--seed", exported.to_str().unwrap()],
    );
    let (ok_twin, out, err) = kmsctl(&twin.endpoint, &["decrypt", &blob]);
    assert!(ok_twin, "{err}");
    assert!(out.contains("\"plaintext\": \"hi\""), "{out}");
    twin.stop();

    // A deletion window ends when the clock is advanced past it.
    let pending = ok(&["schedule-key-deletion", &key, "--pending-window-days", "7"]);
    assert_eq!(pending["deletion_date"], "2027-01-08T00:00:00.000Z");
    let moved = admin(&["clock", "advance", "6d23h"]);
    assert_eq!(
        (moved["now"].as_str(), moved["purged_keys"].as_u64()),
        (Some("2027-01-07T23:00:00.000Z"), Some(0))
    );
    let moved = admin(&["clock", "set", "2027-01-08T00:00:00Z"]);
    assert_eq!(moved["purged_keys"], 1);
    let err = refused(&["describe-key", &key]);
    assert!(err.contains("KMS.0207"), "{err}");
    let err = refused(&["decrypt", &blob]);
    assert!(err.contains("KMS.0207"), "{err}");
    let err = refused(&[
        "admin",
        "--admin-token",
        ADMIN_TOKEN,
        "clock",
        "set",
        "2027-01-01T00:00:00Z",
    ]);
    assert!(err.contains("only moves forward"), "{err}");
    daemon.stop();
}

/// A bad admin token or faults file stops the start-up with a message naming it.
#[test]
fn bad_control_plane_flags_stop_the_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    std::fs::write(&faults, "[[faults]]\noperation = \"Decrypt\"\n").unwrap();
    let f = faults.to_str().unwrap();
    // (rule, flags, the message names)
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "short admin token",
            &["--admin-token", "short"],
            "shorter than 16",
        ),
        (
            "faults file rule without action",
            &["--faults", f],
            "fault 1 (Decrypt)",
        ),
        (
            "clock start without a virtual clock",
            &["--clock-start", "2027-01-01T00:00:00Z"],
            "--virtual-clock",
        ),
    ];
    for (name, flags, needle) in cases {
        let out = kmsbox_tests::process::kms_server(&dir.path().join("data"), flags)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{name}: {err}");
        assert!(
            !err.contains("'short'"),
            "{name}: a refused admin token is not echoed: {err}"
        );
    }
}
