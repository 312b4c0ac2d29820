//! Hardening of the data folder (issue 9), against the real `kms-server` binary: one daemon per
//! data folder, the store and the root key knowing each other, file modes, a second signal.

use kmsbox_tests::process::{Daemon, bin, kms_server};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the daemon expecting it to refuse to start; returns its standard error.
fn refused(data_dir: &Path, extra: &[&str]) -> String {
    let mut child = kms_server(data_dir, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kms-server starts");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "kms-server did not refuse to start: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!status.success(), "exit {status:?}; stderr {stderr}");
    assert!(
        !stdout.contains("listening"),
        "it started: {stdout}; {stderr}"
    );
    stderr
}

#[test]
fn a_second_daemon_on_the_same_data_folder_refuses_to_start_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::spawn(dir.path(), &[]);
    let err = refused(dir.path(), &[]);
    assert!(err.contains("in use by another kms-server"), "{err}");
    assert!(
        err.contains(&format!("(PID {})", first.child.id())),
        "{err}"
    );
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    // The first daemon is unharmed, and once it is gone the folder is free again.
    first.stop();
    Daemon::spawn(dir.path(), &[]).stop();
}

/// Starts a daemon on `data`, creates keys with the given aliases, and stops it gracefully.
fn with_keys(data: &Path, extra: &[&str], aliases: &[&str]) {
    let d = Daemon::spawn(data, extra);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut t = kmsbox_tests::Tenant::connect(&d.endpoint, "alice", None, None).await;
        for a in aliases {
            t.client
                .create_key(t.req(kms_proto::v1::CreateKeyRequest {
                    alias: (*a).to_owned(),
                    description: String::new(),
                }))
                .await
                .expect("CreateKey");
        }
    });
    // The client's connection goes with its runtime, so that shutdown need not wait for it.
    drop(rt);
    d.stop();
}

fn remove_db(data: &Path) {
    for f in ["kms.sqlite3", "kms.sqlite3-wal", "kms.sqlite3-shm"] {
        let _ = std::fs::remove_file(data.join(f));
    }
}

#[test]
fn a_deleted_key_database_next_to_a_used_root_key_is_refused_until_start_over_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    with_keys(&data, &[], &["a"]);
    remove_db(&data);
    let err = refused(&data, &[]);
    assert!(err.contains("is missing or empty"), "{err}");
    assert!(err.contains("--start-over-with-empty-store"), "{err}");
    // The refused start created nothing.
    assert!(!data.join("kms.sqlite3").exists());
    assert!(
        err.contains(&data.join("kms.sqlite3").display().to_string()),
        "{err}"
    );
    // Asked explicitly, it starts over; the new store is then the root key's store.
    Daemon::spawn(&data, &["--start-over-with-empty-store"]).stop();
    with_keys(&data, &[], &["b"]);
}

#[test]
fn an_emptied_key_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    with_keys(&data, &[], &["a"]);
    remove_db(&data);
    std::fs::write(data.join("kms.sqlite3"), b"").unwrap();
    let err = refused(&data, &[]);
    assert!(err.contains("is missing or empty"), "{err}");
    // Emptied of its rows: a database with the schema but no keys and no store ID.
    remove_db(&data);
    drop(kms_server::store::SqliteStore::open(&data.join("kms.sqlite3")).unwrap());
    let err = refused(&data, &[]);
    assert!(err.contains("holds no store ID (0 keys)"), "{err}");
}

#[test]
fn another_stores_key_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    with_keys(&a, &[], &["a"]);
    with_keys(&b, &[], &["b"]);
    // c shares a's root key (copied before c's first start) but is a store of its own.
    std::fs::create_dir_all(&c).unwrap();
    std::fs::copy(a.join("root.key"), c.join("root.key")).unwrap();
    with_keys(&c, &[], &["c"]);

    remove_db(&a);
    std::fs::copy(b.join("kms.sqlite3"), a.join("kms.sqlite3")).unwrap();
    let err = refused(&a, &[]);
    assert!(err.contains("was made with another root key"), "{err}");

    remove_db(&a);
    std::fs::copy(c.join("kms.sqlite3"), a.join("kms.sqlite3")).unwrap();
    let err = refused(&a, &[]);
    assert!(err.contains("was replaced by another store's"), "{err}");
}

/// Every offset of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_damaged_key_database_is_refused_naming_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    with_keys(&data, &[], &["MARKED-alias-one", "other"]);
    let db = data.join("kms.sqlite3");
    let pristine = std::fs::read(&db).unwrap();
    assert!(
        std::fs::metadata(data.join("kms.sqlite3-wal")).map_or(0, |m| m.len()) == 0,
        "the WAL was checkpointed on shutdown"
    );

    // The header's write version (byte 18): SQLite would open the file read-only.
    let mut bytes = pristine.clone();
    bytes[18] = 3;
    std::fs::write(&db, &bytes).unwrap();
    let err = refused(&data, &[]);
    assert!(
        err.contains("is damaged") && err.contains("write 3"),
        "{err}"
    );

    // One flipped bit in the alias index's copy of an alias: the table and its index disagree.
    let mut bytes = pristine.clone();
    let hits = find_all(&bytes, b"MARKED-alias-one");
    assert_eq!(hits.len(), 2, "the alias is in the table and in its index");
    bytes[hits[1]] ^= 0x20;
    std::fs::write(&db, &bytes).unwrap();
    let err = refused(&data, &[]);
    assert!(
        err.contains("is damaged") && err.contains("integrity check failed"),
        "{err}"
    );

    // A b-tree page's header (the page type of page 2, the keys table).
    let mut bytes = pristine.clone();
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    bytes[page] ^= 0xff;
    std::fs::write(&db, &bytes).unwrap();
    let err = refused(&data, &[]);
    assert!(err.contains("is damaged"), "{err}");

    // The pristine file starts again.
    std::fs::write(&db, &pristine).unwrap();
    Daemon::spawn(&data, &[]).stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_grace_period_ends_the_daemon_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::spawn(dir.path(), &["--shutdown-grace-secs", "120"]);
    // A Health.Watch stream never ends by itself: it keeps the grace period busy.
    let channel = tonic::transport::Channel::from_shared(d.endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "kms.v1.KeyManagementService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().unwrap();

    d.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the open stream keeps the daemon in its grace period"
    );
    let start = Instant::now();
    d.signal("-TERM");
    let status = d.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(watch);
}

#[test]
fn a_ctrl_c_after_sigterm_ends_the_daemon_at_once_too() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut d = Daemon::spawn(dir.path(), &["--shutdown-grace-secs", "120"]);
    let _watch = rt.block_on(async {
        let channel = tonic::transport::Channel::from_shared(d.endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let mut watch = health
            .watch(tonic_health::pb::HealthCheckRequest {
                service: "kms.v1.KeyManagementService".into(),
            })
            .await
            .unwrap()
            .into_inner();
        watch.message().await.unwrap().unwrap();
        watch
    });
    d.signal("-TERM");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "still in its grace period"
    );
    d.signal("-INT");
    let status = d.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{status:?}");
}

/// `path`'s permission bits.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// Every file and folder under `root`, `root` included.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_owned()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&out[i])
                .expect("read_dir")
                .map(|e| e.expect("entry").path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

fn assert_private(root: &Path) -> usize {
    let all = walk(root);
    for p in &all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{} is {:04o}", p.display(), mode(p));
    }
    all.len()
}

#[test]
fn every_file_the_daemon_creates_is_0600_and_its_folders_0700_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data/nested");
    let keys = dir.path().join("keys/nested");
    let root_key = keys.join("root.key");
    // umask 000: the modes must come from the daemon, not from the umask.
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(bin("kms-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--root-key-file")
        .arg(&root_key)
        .env("RUST_LOG", "warn");
    let d = Daemon::spawn_command(c);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut t = kmsbox_tests::Tenant::connect(&d.endpoint, "alice", None, None).await;
        t.client
            .create_key(t.req(kms_proto::v1::CreateKeyRequest {
                alias: "a".into(),
                description: String::new(),
            }))
            .await
            .unwrap();
    });
    drop(rt);
    // While it runs: the database, its WAL and shared-memory files, the lock, the audit log.
    for f in [
        "kms.sqlite3",
        "kms.sqlite3-wal",
        "kms.sqlite3-shm",
        "kms.lock",
        "audit.jsonl",
    ] {
        assert!(data.join(f).exists(), "{f} exists");
    }
    assert!(keys.join("root.key.store-id").exists());
    let running =
        assert_private(&dir.path().join("data")) + assert_private(&dir.path().join("keys"));
    d.stop();
    assert_private(&dir.path().join("data"));
    assert_private(&dir.path().join("keys"));
    assert!(running >= 10, "{running} paths checked");
}

#[test]
fn a_root_key_open_to_group_or_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    Daemon::spawn(dir.path(), &[]).stop();
    let key = dir.path().join("root.key");
    for m in [0o644, 0o666, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(m)).unwrap();
        let err = refused(dir.path(), &[]);
        assert!(err.contains(&format!("its mode is {m:04o}")), "{err}");
        assert!(err.contains(&key.display().to_string()), "{err}");
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    Daemon::spawn(dir.path(), &[]).stop();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    Daemon::spawn(dir.path(), &[]).stop();
}
