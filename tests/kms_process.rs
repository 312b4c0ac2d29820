//! Process-level tests: the real `kms-server` and `kmsctl` binaries, `kill -9`, SIGTERM, `--seed`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kms_proto::ErrorCode;
use kms_proto::v1 as pb;
use kmsbox_tests::Tenant;
use kmsbox_tests::process::{Daemon, bin};

/// The daemon with `extra` flags, checked to serve the default region.
fn spawn(data_dir: &Path, extra: &[&str]) -> Daemon {
    let d = Daemon::spawn(data_dir, extra);
    assert!(d.banner.contains("(default region region)"), "{}", d.banner);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_of_create_key_loses_no_acknowledged_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = spawn(dir.path(), &[]);
    let t = Tenant::connect(&daemon.endpoint, "durable", None, None).await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (mut t, acked, stop) = (t.clone(), Arc::clone(&acked), Arc::clone(&stop));
        #[allow(
            clippy::disallowed_methods,
            reason = "load workers, joined before the test ends"
        )]
        let worker = tokio::spawn(async move {
            // Bounded: at most 500 calls per worker.
            for i in 0..500 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = t
                    .client
                    .create_key(t.req(pb::CreateKeyRequest {
                        alias: format!("w{w}-k{i}"),
                        description: String::new(),
                    }))
                    .await;
                match r {
                    Ok(r) => acked
                        .lock()
                        .unwrap()
                        .push(r.into_inner().metadata.unwrap().key_id),
                    Err(_) => break,
                }
            }
        });
        workers.push(worker);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 100 && Instant::now() < deadline {
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
        acked.len() >= 100,
        "only {} keys acknowledged before the kill",
        acked.len()
    );

    let daemon = spawn(dir.path(), &[]);
    let mut t = Tenant::connect(&daemon.endpoint, "durable", None, None).await;
    for id in &acked {
        let r = t
            .client
            .describe_key(t.req(pb::DescribeKeyRequest { key_id: id.clone() }))
            .await;
        assert!(r.is_ok(), "acknowledged key {id} was lost: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = spawn(dir.path(), &[]);
    let mut t = Tenant::connect(&daemon.endpoint, "d1", None, None).await;
    let k = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "kept".into(),
            description: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    let ok = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let daemon = spawn(dir.path(), &[]);
    let mut t = Tenant::connect(&daemon.endpoint, "d1", None, None).await;
    let m = t
        .client
        .describe_key(t.req(pb::DescribeKeyRequest { key_id: k.key_id }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    assert_eq!(m.alias, "kept");
}

#[tokio::test]
async fn seed_file_creates_keys_with_given_ids_once() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        "[[keys]]\ndomain_id = \"783fc6652cf246c096ea836694f71855\"\n\
         key_id = \"522d6070-5ad3-4765-9737-9312ddc72cdb\"\nalias = \"seeded\"\n\
         [[keys]]\ndomain_id = \"783fc6652cf246c096ea836694f71855\"\nregion = \"cn-north-4\"\n\
         key_id = \"4f1cd4de-ab64-4807-920a-47fc42e7f0d0\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let seed_arg = seed.to_str().unwrap();
    for _ in 0..2 {
        let daemon = spawn(&data, &["--seed", seed_arg]);
        let mut t = Tenant::connect(
            &daemon.endpoint,
            "783fc6652cf246c096ea836694f71855",
            None,
            None,
        )
        .await;
        let m = t
            .client
            .describe_key(t.req(pb::DescribeKeyRequest {
                key_id: "region:783fc6652cf246c096ea836694f71855:key/522d6070-5ad3-4765-9737-9312ddc72cdb".into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .metadata
            .unwrap();
        assert_eq!(m.alias, "seeded");
        let mut other = t.in_region("cn-north-4");
        let keys = other
            .client
            .list_keys(other.req(pb::ListKeysRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .keys;
        assert_eq!(keys.len(), 1, "seeding twice creates nothing new");
        assert_eq!(keys[0].key_uuid, "4f1cd4de-ab64-4807-920a-47fc42e7f0d0");
    }
}

fn kmsctl(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("kmsctl"))
        .args(["--endpoint", endpoint, "--domain", "cli"])
        .args(args)
        .output()
        .expect("kmsctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn kmsctl_drives_every_rpc_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = spawn(dir.path(), &[]);
    let ep = daemon.endpoint.clone();
    let json = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["--output", "json"];
        a.extend_from_slice(args);
        let (ok, out, err) = kmsctl(&ep, &a);
        assert!(ok, "kmsctl {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let k = json(&["create-key", "--alias", "cli-key"]);
    let id = k["key_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("region:cli:key/"), "{id}");
    assert_eq!(json(&["describe-key", &id])["alias"], "cli-key");
    assert_eq!(json(&["list-keys"])["keys"].as_array().unwrap().len(), 1);
    let e = json(&[
        "encrypt",
        &id,
        "--plaintext",
        "hi there",
        "--context",
        "a=b",
    ]);
    let blob = e["ciphertext_blob"].as_str().unwrap().to_owned();
    let d = json(&["decrypt", &blob, "--context", "a=b"]);
    assert_eq!(d["plaintext"], "hi there");
    let dk = json(&["generate-data-key", &id, "--number-of-bytes", "16"]);
    assert_eq!(dk["plaintext_base64"].as_str().unwrap().len(), 24);
    let wo = json(&["generate-data-key", &id, "--without-plaintext"]);
    assert!(wo.get("plaintext_base64").is_none());
    let other = json(&["create-key"]);
    let re = json(&[
        "re-encrypt",
        &blob,
        "--source-context",
        "a=b",
        "--destination-key-id",
        other["key_id"].as_str().unwrap(),
    ]);
    assert_eq!(re["key_id"], other["key_id"]);
    assert_eq!(json(&["rotate-key", &id])["current_version"], 2);
    assert_eq!(json(&["disable-key", &id])["state"], "disabled");
    assert_eq!(json(&["enable-key", &id])["state"], "enabled");
    assert_eq!(
        json(&["schedule-key-deletion", &id, "--pending-window-days", "7"])["state"],
        "pending_deletion"
    );
    assert_eq!(json(&["cancel-key-deletion", &id])["state"], "disabled");
    json(&["enable-key", &id]);
    assert_eq!(json(&["get-default-key", "obs"])["alias"], "obs/default");
    assert_eq!(
        json(&["update-key-alias", &id, "cli-key-2"])["alias"],
        "cli-key-2"
    );
    assert_eq!(
        json(&["update-key-description", &id, "said anew"])["description"],
        "said anew"
    );
    let on = json(&["enable-key-rotation", &id]);
    assert_eq!(
        (&on["rotation_enabled"], &on["rotation_interval_days"]),
        (&true.into(), &365.into())
    );
    assert!(on["next_rotation_time"].is_string(), "{on}");
    assert_eq!(on["context_required"], false, "made without a policy: {on}");
    assert_eq!(on["tags"], serde_json::json!({}), "made without tags: {on}");
    let every_30 = json(&["update-key-rotation-interval", &id, "--days", "30"]);
    assert_eq!(every_30["rotation_interval_days"], 30);
    let status = json(&["get-key-rotation-status", &id]);
    assert_eq!(
        (&status["number_of_rotations"], &status["rotation_enabled"]),
        (&1.into(), &true.into())
    );
    assert!(status["last_rotation_time"].is_string(), "{status}");
    let off = json(&["disable-key-rotation", &id]);
    assert!(off["next_rotation_time"].is_null(), "{off}");
    let random = json(&["generate-random", "--number-of-bytes", "48"]);
    assert_eq!(random["random_base64"].as_str().unwrap().len(), 64);

    // The readable table by default.
    let (ok, table, _) = kmsctl(&ep, &["describe-key", &id]);
    assert!(
        ok && table.contains("alias") && table.contains("cli-key"),
        "{table}"
    );

    // Failures exit non-zero with the daemon's message and code.
    let (ok, _, err) = kmsctl(
        &ep,
        &["describe-key", "522d6070-5ad3-4765-43a7-a7d1-ab21f498482d"],
    );
    assert!(!ok);
    assert!(
        err.contains(ErrorCode::MalformedKeyId.as_str()) && err.contains("malformed key ID"),
        "{err}"
    );
    let (ok, _, err) = kmsctl(&ep, &["decrypt", &blob, "--context", "a=c"]);
    assert!(
        !ok && err.contains(ErrorCode::CiphertextAuthFailed.as_str()),
        "{err}"
    );
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(bin("kms-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--region",
        "--tenants",
        "--root-key-file",
        "--seed",
        "--start-over-with-empty-store",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    for env in [
        "KMS_LISTEN",
        "KMS_DATA_DIR",
        "KMS_REGION",
        "KMS_TENANTS",
        "KMS_ROOT_KEY_FILE",
        "KMS_SEED",
    ] {
        assert!(help.contains(env), "--help lacks {env}");
    }
}

#[tokio::test]
async fn kmsctl_seal_and_open_stream_files_pipes_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = spawn(&dir.path().join("data"), &[]);
    let ep = daemon.endpoint.clone();
    let plain = dir.path().join("plain.bin");
    // 3 chunks and a bit, with a recognisable pattern.
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&plain, &data).unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (ok, out, err) = kmsctl(&ep, &["-o", "json", "create-key"]);
    assert!(ok, "{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    let uuid = key["key_uuid"].as_str().unwrap();

    // Through the daemon.
    let ctx = ["--context", "bucket=b1", "--context", "object=o1"];
    let mut args = vec![
        "seal",
        "--key-id",
        uuid,
        "--in",
        p("plain.bin").leak(),
        "--out",
    ];
    args.push(p("sealed.bin").leak());
    args.extend(ctx);
    let (ok, _, err) = kmsctl(&ep, &args);
    assert!(ok, "seal: {err}");
    let sealed = std::fs::read(p("sealed.bin")).unwrap();
    assert!(sealed.len() > data.len());
    assert!(
        !sealed.windows(64).any(|w| w == &data[..64]),
        "no plaintext in the sealed file"
    );
    let mut args = vec![
        "open",
        "--in",
        p("sealed.bin").leak(),
        "--out",
        p("opened.bin").leak(),
    ];
    args.extend(ctx);
    let (ok, _, err) = kmsctl(&ep, &args);
    assert!(ok, "open: {err}");
    assert_eq!(std::fs::read(p("opened.bin")).unwrap(), data);

    // A range across a chunk boundary.
    let mut args = vec![
        "open",
        "--in",
        p("sealed.bin").leak(),
        "--out",
        p("range.bin").leak(),
    ];
    args.extend(["--range", "16000-17000"]);
    args.extend(ctx);
    let (ok, _, err) = kmsctl(&ep, &args);
    assert!(ok, "open --range: {err}");
    assert_eq!(std::fs::read(p("range.bin")).unwrap(), &data[16000..=17000]);

    // The wrong context, or another tenant, opens nothing.
    let args = [
        "open",
        "--in",
        p("sealed.bin").leak(),
        "--out",
        p("bad.bin").leak(),
        "--context",
        "bucket=b1",
        "--context",
        "object=o2",
    ];
    let (ok, _, err) = kmsctl(&ep, &args);
    assert!(!ok && err.contains("authentication"), "{err}");
    let out = Command::new(bin("kmsctl"))
        .args([
            "--endpoint",
            &ep,
            "--domain",
            "mallory",
            "open",
            "--in",
            p("sealed.bin").leak(),
        ])
        .args(["--out", p("bad2.bin").leak()])
        .args(ctx)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // Offline, through a pipe: seal | open.
    std::fs::write(p("kek.bin"), [9u8; 32]).unwrap();
    let kek = p("kek.bin");
    let mut seal = Command::new(bin("kmsctl"))
        .args([
            "seal",
            "--local-kek",
            &kek,
            "--key-id",
            "offline",
            "--in",
            "-",
            "--out",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let open = Command::new(bin("kmsctl"))
        .args(["open", "--local-kek", &kek, "--in", "-", "--out", "-"])
        .stdin(seal.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = seal.stdin.take().unwrap();
    let feed = data.clone();
    #[allow(
        clippy::disallowed_methods,
        reason = "feeds a child's stdin while its output is read; joined below"
    )]
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&feed).unwrap();
    });
    let opened = open.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(seal.wait().unwrap().success());
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    assert_eq!(opened.stdout, data, "the pipe round-trips the bytes");
    // Offline with files: only the same KEK opens it.
    let (ok, _, err) = kmsctl(
        &ep,
        &[
            "seal",
            "--local-kek",
            &kek,
            "--key-id",
            "offline",
            "--in",
            p("plain.bin").leak(),
            "--out",
            p("local.bin").leak(),
        ],
    );
    assert!(ok, "{err}");
    std::fs::write(p("kek2.bin"), [8u8; 32]).unwrap();
    let (ok, _, err) = kmsctl(
        &ep,
        &[
            "open",
            "--local-kek",
            p("kek2.bin").leak(),
            "--in",
            p("local.bin").leak(),
            "--out",
            p("x.bin").leak(),
        ],
    );
    assert!(!ok, "another KEK must not open it");
    assert!(!err.is_empty());
    let (ok, _, err) = kmsctl(
        &ep,
        &[
            "open",
            "--local-kek",
            &kek,
            "--in",
            p("local.bin").leak(),
            "--out",
            p("y.bin").leak(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(p("y.bin")).unwrap(), data);
}
