//! The key database's integrity against the real `kms-server` binary (issue 19, point 1): rows
//! edited between two runs, without the root key, make the next start refuse and name the key; a
//! database from before record MACs is refused until `kms-server add-store-macs` gives it MACs.
//! Every edit the issue names, one by one, is in the keyring's unit tests (`store_edits.rs`).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kms_proto::v1 as pb;
use kmsbox_tests::Tenant;
use kmsbox_tests::process::{Daemon, bin, kms_server};
use rusqlite::Connection;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Starts the daemon on `data`, runs `calls` as tenant alice, stops it.
fn with_daemon<T>(data: &Path, calls: impl AsyncFnOnce(&mut Tenant) -> T) -> T {
    let d = Daemon::spawn(data, &[]);
    let rt = runtime();
    let out = rt.block_on(async {
        let mut t = Tenant::connect(&d.endpoint, "alice", None, None).await;
        calls(&mut t).await
    });
    drop(rt);
    d.stop();
    out
}

fn create(alias: &str) -> pb::CreateKeyRequest {
    pb::CreateKeyRequest {
        alias: alias.into(),
        description: String::new(),
    }
}

/// The daemon's standard error when it refuses to start on `data`.
fn refused_start(data: &Path) -> String {
    let out = kms_server(data, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("kms-server runs");
    assert!(
        !out.status.success(),
        "it started: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn db(data: &Path) -> PathBuf {
    data.join("kms.sqlite3")
}

/// The UUID of a full key ID.
fn uuid_of(key_id: &str) -> String {
    key_id.rsplit('/').next().expect("uuid").to_owned()
}

#[test]
fn a_key_re_enabled_rolled_back_or_resurrected_between_runs_stops_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (disabled, rotated, pending) = with_daemon(&data, async |t| {
        let mut ids = Vec::new();
        for a in ["disabled", "rotated", "pending"] {
            let r = t.client.create_key(t.req(create(a))).await.unwrap();
            ids.push(r.into_inner().metadata.unwrap().key_id);
        }
        (ids[0].clone(), ids[1].clone(), ids[2].clone())
    });
    // Every row as it is now, to put back later.
    Connection::open(db(&data))
        .unwrap()
        .execute_batch(
            "CREATE TABLE saved_keys AS SELECT * FROM keys;
             CREATE TABLE saved_versions AS SELECT * FROM key_versions;",
        )
        .unwrap();
    with_daemon(&data, async |t| {
        t.client
            .disable_key(t.req(pb::DisableKeyRequest {
                key_id: disabled.clone(),
            }))
            .await
            .unwrap();
        t.client
            .rotate_key(t.req(pb::RotateKeyRequest {
                key_id: rotated.clone(),
            }))
            .await
            .unwrap();
    });
    with_daemon(&data, async |t| {
        t.client
            .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
                key_id: pending.clone(),
                pending_window_days: 7,
            }))
            .await
            .unwrap();
    });
    let pristine = std::fs::read(db(&data)).unwrap();

    let u = |k: &str| uuid_of(k);
    let cases: [(&str, String, String); 3] = [
        (
            "a disabled key is re-enabled",
            format!("UPDATE keys SET state = 1 WHERE uuid = '{}'", u(&disabled)),
            u(&disabled),
        ),
        (
            "a rotation is rolled back",
            format!(
                "UPDATE keys SET current_version = 1 WHERE uuid = '{}';
                 DELETE FROM key_versions WHERE uuid = '{}' AND version = 2",
                u(&rotated),
                u(&rotated)
            ),
            u(&rotated),
        ),
        (
            "a scheduled deletion is undone by putting back the key's rows from before (as a purged \
             key's would be)",
            format!(
                "DELETE FROM keys WHERE uuid = '{p}';
                 INSERT INTO keys SELECT * FROM saved_keys WHERE uuid = '{p}';
                 INSERT INTO key_versions SELECT * FROM saved_versions WHERE uuid = '{p}'",
                p = u(&pending)
            ),
            "store MAC".to_owned(),
        ),
    ];
    for (rule, sql, named) in &cases {
        std::fs::write(db(&data), &pristine).unwrap();
        Connection::open(db(&data))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let err = refused_start(&data);
        assert!(err.contains("integrity"), "{rule}: {err}");
        assert!(
            err.contains(named.as_str()),
            "{rule}: {err} should name {named}"
        );
    }
    // The database as the daemon left it starts again.
    std::fs::write(db(&data), &pristine).unwrap();
    Daemon::spawn(&data, &[]).stop();
}

/// `kms-server add-store-macs` (or `rotate-root-key`) with `data`.
fn offline(command: &str, data: &Path) -> (bool, String, String) {
    let out = Command::new(bin("kms-server"))
        .args([command, "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("kms-server runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_database_from_before_record_macs_is_refused_until_add_store_macs_trusts_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = with_daemon(&data, async |t| {
        let r = t.client.create_key(t.req(create("old"))).await.unwrap();
        r.into_inner().metadata.unwrap().key_id
    });
    // Back to schema 4, as a daemon before record MACs (and the rotation schedule, policy and
    // tags) left it.
    Connection::open(db(&data))
        .unwrap()
        .execute_batch(
            "ALTER TABLE keys DROP COLUMN tags;
             ALTER TABLE keys DROP COLUMN context_required;
             ALTER TABLE keys DROP COLUMN deletion_allowed;
             ALTER TABLE keys DROP COLUMN rotation_enabled;
             ALTER TABLE keys DROP COLUMN rotation_interval_days;
             ALTER TABLE keys DROP COLUMN rotation_since_ms;
             ALTER TABLE key_versions DROP COLUMN created_at_ms;
             ALTER TABLE keys DROP COLUMN mac; DROP TABLE store_mac; PRAGMA user_version = 4;",
        )
        .unwrap();
    let err = refused_start(&data);
    assert!(
        err.contains("carry no record MACs") && err.contains("kms-server add-store-macs"),
        "{err}"
    );
    let (ok, out, err) = offline("add-store-macs", &data);
    assert!(ok, "{err}");
    assert!(out.contains("added record MACs to the 1 keys"), "{out}");
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"operation\":\"AddStoreMacs\""), "{audit}");
    let described = with_daemon(&data, async |t| {
        t.client
            .describe_key(t.req(pb::DescribeKeyRequest {
                key_id: key.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .metadata
            .unwrap()
            .key_id
    });
    assert_eq!(described, key);
    // Once it has MACs, a failing database is restored, never given new MACs.
    let (ok, _, err) = offline("add-store-macs", &data);
    assert!(!ok && err.contains("already has MACs"), "{err}");
}
