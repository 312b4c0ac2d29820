//! The audit log in operation: a full disk under `--audit-failure=refuse` and `continue` (a small
//! tmpfs mounted by the test), rotation by size, logrotate's move-then-SIGHUP against the real
//! binary, and `kill -9` during a burst of lifecycle calls, after which every acknowledged call has
//! its line.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kms_proto::ErrorCode;
use kms_proto::metadata::REQUEST_ID;
use kms_proto::v1 as pb;
use kms_server::audit::{AuditFailure, AuditOptions};
use kmsbox_tests::process::{Daemon, bin};
use kmsbox_tests::tmpfs::Tmpfs;
use kmsbox_tests::{Tenant, TestDaemon, error_code};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// A request with this tenant's metadata and the request ID `id`.
fn req<T>(t: &Tenant, msg: T, id: &str) -> tonic::Request<T> {
    let mut r = t.req(msg);
    r.metadata_mut().insert(REQUEST_ID, id.parse().unwrap());
    r
}

async fn encrypt(t: &mut Tenant, key_id: &str, id: &str) -> Result<(), tonic::Status> {
    let r = req(
        t,
        pb::EncryptRequest {
            key_id: key_id.into(),
            plaintext: b"audited".to_vec(),
            encryption_context: HashMap::new(),
        },
        id,
    );
    t.client.encrypt(r).await.map(|_| ())
}

async fn create(t: &mut Tenant, id: &str) -> Result<String, tonic::Status> {
    let r = req(t, pb::CreateKeyRequest::default(), id);
    let m = t.client.create_key(r).await?.into_inner().metadata.unwrap();
    Ok(m.key_id)
}

async fn health(endpoint: &str) -> i32 {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kms.v1.KeyManagementService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

/// Every line of an audit file, parsed; fails on a line that is not whole JSON.
fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends inside a line",
        path.display()
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn request_ids(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_calls_until_the_log_can_be_written_again() {
    let fs = Tmpfs::mount();
    let log = fs.path().join("audit.jsonl");
    let l = log.clone();
    let mut d = TestDaemon::start_with(|c, _| c.audit_log = Some(l)).await;
    let mut t = d.tenant("alice").await;
    let key = create(&mut t, "before").await.unwrap();
    let filler = fs.fill();

    // The last page of the log still takes a few lines; then a write fails.
    let mut acked = vec!["before".to_owned()];
    let mut refused = None;
    for i in 0..2_000 {
        let id = format!("full-{i}");
        match encrypt(&mut t, &key, &id).await {
            Ok(()) => acked.push(id),
            Err(s) => {
                refused = Some(s);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let s = refused.expect("a call is refused once the disk is full");
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    assert_eq!(error_code(&s), Some(ErrorCode::NotServing));
    assert!(s.message().contains("audit log"), "{}", s.message());
    assert_eq!(
        health(&d.endpoint()).await,
        ServingStatus::NotServing as i32
    );
    let s = create(&mut t, "create-while-full").await.unwrap_err();
    assert_eq!(error_code(&s), Some(ErrorCode::NotServing));

    // Space again: the daemon recovers by itself.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match encrypt(&mut t, &key, "after").await {
            Ok(()) => break,
            Err(s) => assert_eq!(error_code(&s), Some(ErrorCode::NotServing)),
        }
        assert!(Instant::now() < deadline, "no recovery within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acked.push("after".into());
    assert_eq!(health(&d.endpoint()).await, ServingStatus::Serving as i32);
    d.server().flush_audit().await;
    assert_eq!(d.server().audit_lines_lost(), 0);
    let rows = lines(&log);
    let ids: HashSet<String> = request_ids(&rows).into_iter().collect();
    for id in &acked {
        assert!(ids.contains(id), "acknowledged call {id} has no line");
    }
    assert!(
        rows.iter().any(|r| r["request_id"] == "create-while-full"
            && r["outcome"] == ErrorCode::NotServing.as_str()),
        "the refusals are audited once the log can be written"
    );
    d.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_continue_serves_and_counts_the_lost_lines() {
    let fs = Tmpfs::mount();
    let log = fs.path().join("audit.jsonl");
    let l = log.clone();
    let mut d = TestDaemon::start_with(|c, _| {
        c.audit_log = Some(l);
        c.audit = AuditOptions {
            on_failure: AuditFailure::Continue,
            ..AuditOptions::default()
        };
    })
    .await;
    let mut t = d.tenant("alice").await;
    let key = create(&mut t, "before").await.unwrap();
    let filler = fs.fill();
    let mut calls = 1;
    for i in 0..200 {
        encrypt(&mut t, &key, &format!("full-{i}"))
            .await
            .expect("continue serves");
        calls += 1;
        if i % 20 == 0 {
            create(&mut t, &format!("create-{i}"))
                .await
                .expect("continue serves lifecycle calls too");
            calls += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    d.server().flush_audit().await;
    let lost = d.server().audit_lines_lost();
    assert!(lost > 0, "lines are lost on a full disk");
    assert_eq!(health(&d.endpoint()).await, ServingStatus::Serving as i32);
    std::fs::remove_file(filler).unwrap();
    encrypt(&mut t, &key, "after").await.unwrap();
    calls += 1;
    d.server().flush_audit().await;
    let rows = lines(&log);
    assert_eq!(request_ids(&rows).last().unwrap(), "after");
    assert_eq!(d.server().audit_lines_lost(), lost, "nothing lost after");
    assert_eq!(
        u64::try_from(rows.len()).unwrap() + lost,
        calls,
        "every call has its line or is counted lost"
    );
    d.shut_down().await;
}

#[tokio::test]
async fn size_rotation_keeps_n_files_under_the_limit_with_every_recent_line() {
    let mut d = TestDaemon::start_with(|c, _| {
        c.audit = AuditOptions {
            max_bytes: 2_000,
            keep: 3,
            on_failure: AuditFailure::Refuse,
        };
    })
    .await;
    let mut t = d.tenant("alice").await;
    let key = create(&mut t, "k").await.unwrap();
    let sent: Vec<String> = (0..100).map(|i| format!("r-{i:03}")).collect();
    for id in &sent {
        encrypt(&mut t, &key, id).await.unwrap();
    }
    d.server().flush_audit().await;
    let base = d.data_dir().join("audit.jsonl");
    let file = |n: u32| PathBuf::from(format!("{}.{n}", base.display()));
    assert!(!file(4).exists(), "only 3 rotated files are kept");
    let mut ids = Vec::new();
    for p in [file(3), file(2), file(1), base.clone()] {
        let size = std::fs::metadata(&p).unwrap().len();
        assert!(size <= 2_000, "{} is {size} bytes", p.display());
        ids.extend(request_ids(&lines(&p)));
    }
    assert!(ids.len() > 20, "{ids:?}");
    assert_eq!(
        ids[..],
        sent[sent.len() - ids.len()..],
        "the newest lines, in order"
    );
    d.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logrotate_move_then_sighup_loses_and_splits_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let moved = dir.path().join("audit.jsonl.1");
    let mut daemon = Daemon::spawn(
        &dir.path().join("data"),
        &["--audit-log", log.to_str().unwrap()],
    );
    let mut t = Tenant::connect(&daemon.endpoint, "alice", None, None).await;
    let key = create(&mut t, "create").await.unwrap();
    let acked = Arc::new(Mutex::new(vec!["create".to_owned()]));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..2 {
        let (mut t, key, acked, stop) = (
            t.clone(),
            key.clone(),
            Arc::clone(&acked),
            Arc::clone(&stop),
        );
        #[allow(
            clippy::disallowed_methods,
            reason = "load workers, joined before the test ends"
        )]
        workers.push(tokio::spawn(async move {
            // Bounded: at most 3,000 calls per worker.
            for i in 0..3_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let id = format!("w{w}-{i}");
                encrypt(&mut t, &key, &id).await.unwrap();
                acked.lock().unwrap().push(id);
            }
        }));
    }
    let wait_for = |n: usize| {
        let acked = Arc::clone(&acked);
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while acked.lock().unwrap().len() < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(300).await;
    // logrotate: move, then signal.
    std::fs::rename(&log, &moved).unwrap();
    let n = acked.lock().unwrap().len() + 100;
    wait_for(n).await;
    daemon.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.exists() {
        assert!(Instant::now() < deadline, "SIGHUP did not reopen the log");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let n = acked.lock().unwrap().len() + 300;
    wait_for(n).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    daemon.signal("-TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());

    let old = request_ids(&lines(&moved));
    let new = request_ids(&lines(&log));
    assert!(
        !old.is_empty() && !new.is_empty(),
        "{} / {}",
        old.len(),
        new.len()
    );
    let mut all: Vec<String> = old.into_iter().chain(new).collect();
    let mut want = acked.lock().unwrap().clone();
    all.sort();
    want.sort();
    assert_eq!(all.len(), want.len(), "one line per call across both files");
    assert_eq!(all, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_line_of_an_acknowledged_lifecycle_call() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    let seeded = "522d6070-5ad3-4765-9737-9312ddc72cdb";
    std::fs::write(
        &seed,
        format!("[[keys]]\ndomain_id = \"durable\"\nkey_id = \"{seeded}\"\nalias = \"seeded\"\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut daemon = Daemon::spawn(&data, &["--seed", seed.to_str().unwrap()]);
    let t = Tenant::connect(&daemon.endpoint, "durable", None, None).await;
    // (request ID, operation, key) of every acknowledged call.
    let acked = Arc::new(Mutex::new(Vec::<(String, &'static str, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..6 {
        let (mut t, acked, stop) = (t.clone(), Arc::clone(&acked), Arc::clone(&stop));
        #[allow(
            clippy::disallowed_methods,
            reason = "load workers, joined before the test ends"
        )]
        workers.push(tokio::spawn(async move {
            // Bounded: at most 300 rounds of three calls per worker.
            for i in 0..300 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let id = format!("c-{w}-{i}");
                let Ok(key) = create(&mut t, &id).await else {
                    break;
                };
                acked.lock().unwrap().push((id, "CreateKey", key.clone()));
                let id = format!("r-{w}-{i}");
                let r = req(
                    &t,
                    pb::RotateKeyRequest {
                        key_id: key.clone(),
                    },
                    &id,
                );
                if t.client.rotate_key(r).await.is_err() {
                    break;
                }
                acked.lock().unwrap().push((id, "RotateKey", key.clone()));
                let id = format!("d-{w}-{i}");
                let r = req(
                    &t,
                    pb::DisableKeyRequest {
                        key_id: key.clone(),
                    },
                    &id,
                );
                if t.client.disable_key(r).await.is_err() {
                    break;
                }
                acked.lock().unwrap().push((id, "DisableKey", key));
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 150 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL while calls are in flight.
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 150,
        "only {} calls acknowledged",
        acked.len()
    );

    // Lines of calls not acknowledged may be missing, and the last one may be cut by the kill;
    // every other line is whole.
    let text = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let rows: Vec<serde_json::Value> = whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let have: HashSet<(String, String, String)> = rows
        .iter()
        .filter(|r| r["outcome"] == "ok")
        .map(|r| {
            (
                r["request_id"].as_str().unwrap().to_owned(),
                r["operation"].as_str().unwrap().to_owned(),
                r["key_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let missing: Vec<_> = acked
        .iter()
        .filter(|(id, op, key)| !have.contains(&(id.clone(), (*op).to_owned(), key.clone())))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged lifecycle calls have no line, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        rows.iter().any(|r| r["operation"] == "SeedKey"
            && r["key_id"] == format!("region:durable:key/{seeded}")),
        "the seeded key has its line"
    );
}

#[test]
fn help_explains_the_audit_flags() {
    let out = Command::new(bin("kms-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "--audit-log",
        "--audit-max-bytes",
        "--audit-keep",
        "--audit-failure",
        "KMS_AUDIT_MAX_BYTES",
        "KMS_AUDIT_KEEP",
        "KMS_AUDIT_FAILURE",
        "SIGHUP",
        "KMSBOX.0503",
    ] {
        assert!(help.contains(want), "--help lacks {want}");
    }
}
