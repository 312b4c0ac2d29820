//! A fleet: three `kms-server` processes over one throwaway PostgreSQL ([`kmsbox_tests::postgres`]),
//! each with its own data folder (audit log) and the same root key file. Every rule of one daemon
//! holds across the fleet.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kms_proto::ErrorCode;
use kms_proto::v1 as pb;
use kmsbox_tests::Tenant;
use kmsbox_tests::postgres::PgServer;
use kmsbox_tests::process::{Daemon, kms_server};
use kmsbox_tests::tmpfs::Tmpfs;
use tonic::Code;

/// The bound within which a change acknowledged by one daemon is enforced by the others.
const BOUND: Duration = Duration::from_secs(1);

/// A shared root key file (32 bytes, mode 0600) in `dir`.
fn root_key(dir: &Path) -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("fleet-root.key");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&bytes))
        .expect("root key file");
    path
}

/// A fleet of `n` daemons on `pg`, started at once.
struct Fleet {
    /// Killed (on drop) before their folders are removed.
    daemons: Vec<Daemon>,
    dir: tempfile::TempDir,
    root: PathBuf,
    url: String,
}

impl Fleet {
    fn start(pg: &PgServer, n: usize) -> Self {
        Self::start_with(pg, n, &[])
    }

    /// A fleet whose daemons all get the flags `extra`.
    fn start_with(pg: &PgServer, n: usize, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|&s| s.to_owned()).collect();
        let dir = tempfile::tempdir().unwrap();
        let root = root_key(dir.path());
        let url = pg.url();
        let starting: Vec<_> = (0..n)
            .map(|i| {
                let (data, root, url) =
                    (dir.path().join(format!("d{i}")), root.clone(), url.clone());
                let extra = extra.clone();
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the daemons start at once, to race their migrations; joined here"
                )]
                std::thread::spawn(move || spawn_daemon(&data, &root, &url, &extra))
            })
            .collect();
        let daemons = starting.into_iter().map(|t| t.join().unwrap()).collect();
        Self {
            dir,
            root,
            url,
            daemons,
        }
    }

    /// Starts daemon `i` again (after it was killed), on its own data folder.
    fn respawn(&mut self, i: usize) {
        let data = self.dir.path().join(format!("d{i}"));
        self.daemons[i] = spawn_daemon(&data, &self.root, &self.url, &[]);
    }

    async fn tenants(&self, domain: &str) -> Vec<Tenant> {
        let mut out = Vec::new();
        for d in &self.daemons {
            out.push(Tenant::connect(&d.endpoint, domain, None, None).await);
        }
        out
    }
}

fn spawn_daemon(data: &Path, root: &Path, url: &str, extra: &[String]) -> Daemon {
    let mut c = kms_server(data, &[]);
    c.arg("--root-key-file")
        .arg(root)
        .args(["--store", url])
        .args(extra);
    Daemon::spawn_command(c)
}

/// The first column of the one row `query` returns on the fleet's database, to look at what the
/// daemons stored (the blocking client runs outside the test's async workers).
fn sql_count(pg: &PgServer, query: &str) -> i64 {
    tokio::task::block_in_place(|| {
        postgres::Client::connect(&pg.url(), postgres::NoTls)
            .expect("connects to PostgreSQL")
            .query_one(query, &[])
            .expect("query")
            .get(0)
    })
}

async fn create(t: &mut Tenant, alias: &str) -> Result<String, tonic::Status> {
    t.client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: alias.into(),
            description: String::new(),
        }))
        .await
        .map(|r| r.into_inner().metadata.unwrap().key_id)
}

async fn gdk(t: &mut Tenant, key_id: &str) -> Result<pb::GenerateDataKeyResponse, tonic::Status> {
    t.client
        .generate_data_key(t.req(pb::GenerateDataKeyRequest {
            key_id: key_id.into(),
            number_of_bytes: 32,
            encryption_context: Default::default(),
        }))
        .await
        .map(tonic::Response::into_inner)
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

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
const NOT_SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_starting_at_once_migrate_once_and_200_first_get_default_key_calls_create_one_key()
{
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 3);
    let migrations = sql_count(&pg, "SELECT count(*) FROM kmsbox_migrations");
    assert_eq!(
        migrations, 3,
        "each of the three migrations is applied once across the fleet"
    );

    let tenants = fleet.tenants("racer").await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let mut t = tenants[i % tenants.len()].clone();
        calls.spawn(async move {
            t.client
                .get_default_key(t.req(pb::GetDefaultKeyRequest {
                    service: "obs".into(),
                }))
                .await
                .map(|r| r.into_inner().metadata.unwrap().key_id)
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(r) = calls.join_next().await {
        ids.insert(r.unwrap().expect("GetDefaultKey succeeds on every daemon"));
    }
    assert_eq!(
        ids.len(),
        1,
        "one default key, whichever daemon answered: {ids:?}"
    );
    let stored = sql_count(
        &pg,
        "SELECT count(*) FROM keys WHERE domain = 'racer' AND service = 'obs' AND creator = 2",
    );
    assert_eq!(stored, 1, "one default key row in the store");
    // Every daemon uses it.
    let id = ids.pop_first().unwrap();
    for mut t in tenants {
        gdk(&mut t, &id)
            .await
            .expect("the default key is usable on every daemon");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_on_one_daemon_is_usable_on_another_at_once_and_aliases_stay_unique() {
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 3);
    let mut t = fleet.tenants("alice").await;
    let id = create(&mut t[1], "shared").await.unwrap();
    // No wait: a miss in C's cache reads the store.
    let dk = gdk(&mut t[2], &id)
        .await
        .expect("created on B, usable on C at once");
    let req = t[0].req(pb::DecryptRequest {
        ciphertext_blob: dk.ciphertext_blob.clone(),
        encryption_context: Default::default(),
        key_id: String::new(),
    });
    let plain = t[0]
        .client
        .decrypt(req)
        .await
        .expect("sealed on C, opened on A")
        .into_inner()
        .plaintext;
    assert_eq!(plain, dk.plaintext);
    // The alias is taken fleet-wide, whichever daemon is asked.
    kmsbox_tests::assert_refused(
        create(&mut t[0], "shared").await,
        Code::AlreadyExists,
        ErrorCode::AliasExists,
        "shared",
    );
    // Each daemon keeps its own audit log, its ID on every line, and the IDs differ.
    let mut ids = std::collections::BTreeSet::new();
    for i in 0..3 {
        let data = fleet.dir.path().join(format!("d{i}"));
        let id = std::fs::read_to_string(data.join("daemon-id")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let log = loop {
            let log = std::fs::read_to_string(data.join("audit.jsonl")).unwrap_or_default();
            if !log.is_empty() || Instant::now() > deadline {
                break log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!log.is_empty(), "daemon {i} audited nothing");
        for line in log.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["daemon"], id.trim(), "daemon {i}'s line {line}");
        }
        ids.insert(id);
    }
    assert_eq!(ids.len(), 3, "one ID per daemon");
    // Another tenant's key stays "not found" on the other daemons too.
    let mut bob = Tenant::connect(&fleet.daemons[0].endpoint, "bob", None, None).await;
    kmsbox_tests::assert_refused(
        gdk(&mut bob, &id.replace(":alice:", ":bob:")).await,
        Code::NotFound,
        ErrorCode::KeyNotFound,
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_disabled_on_one_daemon_is_refused_by_the_others_within_the_bound() {
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 3);
    let mut t = fleet.tenants("alice").await;
    // The time until both others refuse, per trial (the issue's figure: median and maximum over
    // 100 trials; printed, measured on whatever machine runs the tests).
    let mut enforced = Vec::new();
    for trial in 0..100 {
        let id = create(&mut t[0], &format!("k{trial}")).await.unwrap();
        // B and C hold it in their caches.
        gdk(&mut t[1], &id).await.unwrap();
        gdk(&mut t[2], &id).await.unwrap();
        let req = t[0].req(pb::DisableKeyRequest { key_id: id.clone() });
        t[0].client.disable_key(req).await.unwrap();
        let acked = Instant::now();
        for (other, t) in t.iter_mut().enumerate().skip(1) {
            loop {
                match gdk(t, &id).await {
                    Ok(_) => {
                        assert!(
                            acked.elapsed() <= BOUND,
                            "daemon {other} still serves disabled key {id} after {:?}",
                            acked.elapsed()
                        );
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err(s) => {
                        assert_eq!(kmsbox_tests::error_code(&s), Some(ErrorCode::KeyDisabled));
                        break;
                    }
                }
            }
        }
        let took = acked.elapsed();
        assert!(took <= BOUND, "enforced after {took:?}");
        enforced.push(took);
    }
    enforced.sort();
    eprintln!(
        "DisableKey enforced by the two other daemons: median {:?}, max {:?} over {} trials",
        enforced[enforced.len() / 2],
        enforced[enforced.len() - 1],
        enforced.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_daemon_during_a_create_key_burst_loses_no_acknowledged_key() {
    let pg = PgServer::start();
    let mut fleet = Fleet::start(&pg, 3);
    let t = fleet.tenants("durable").await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..6 {
        let (mut t, acked, stop) = (t[w % 3].clone(), Arc::clone(&acked), Arc::clone(&stop));
        workers.spawn(async move {
            // Bounded: at most 300 calls per worker.
            for i in 0..300 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match create(&mut t, &format!("w{w}-k{i}")).await {
                    Ok(id) => acked.lock().unwrap().push(id),
                    // The killed daemon's workers stop; the others go on.
                    Err(_) => break,
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 60 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fleet.daemons[0].child.kill().unwrap();
    fleet.daemons[0].child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 60, "only {} keys acknowledged", acked.len());
    fleet.respawn(0);
    let mut t = fleet.tenants("durable").await;
    for id in &acked {
        for (i, t) in t.iter_mut().enumerate() {
            let r = t
                .client
                .describe_key(t.req(pb::DescribeKeyRequest { key_id: id.clone() }))
                .await;
            assert!(
                r.is_ok(),
                "acknowledged key {id} is lost on daemon {i}: {r:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_loses_the_database_serves_cached_keys_within_the_bound_refuses_past_it_and_recovers()
 {
    let mut pg = PgServer::start();
    let fleet = Fleet::start(&pg, 2);
    let mut t = fleet.tenants("alice").await;
    let id = create(&mut t[0], "cached").await.unwrap();
    // Cached on both, each with a block of blob nonces reserved (the one store write of the data
    // path, FORMATS.md §1: a daemon that never sealed under a key needs the store to start).
    let mut sealed = Vec::new();
    for t in &mut t {
        sealed.push(gdk(t, &id).await.unwrap());
    }
    assert_eq!(health(&fleet.daemons[0].endpoint).await, SERVING);

    // Load on the cached key on both daemons, from before the database stops until after it is
    // back; bounded in count.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for t in &t {
        let (mut t, id, stop) = (t.clone(), id.clone(), Arc::clone(&stop));
        load.spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match gdk(&mut t, &id).await {
                    Ok(_) => ok += 1,
                    Err(s) => failed.push(s.message().to_owned()),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (ok, failed)
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopped = Instant::now();
    tokio::task::block_in_place(|| pg.stop());
    // Data-path calls on cached keys are served within the staleness bound of the store's last
    // answer, and refused past it (the cache could hide another daemon's disable); what needs
    // the store is UNAVAILABLE at once.
    for (t, blob) in t.iter_mut().zip(&sealed) {
        let decrypt = |t: &mut Tenant| {
            t.req(pb::DecryptRequest {
                ciphertext_blob: blob.ciphertext_blob.clone(),
                encryption_context: Default::default(),
                key_id: String::new(),
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match gdk(t, &id).await {
                Ok(_) => {
                    assert!(
                        stopped.elapsed() < BOUND + Duration::from_millis(500),
                        "a cached key is still served {:?} after the database stopped",
                        stopped.elapsed()
                    );
                    assert!(Instant::now() < deadline, "never refused");
                    tokio::time::sleep(fleet_bound_step()).await;
                }
                Err(s) => {
                    // The store last answered up to one poll (250 ms) before it stopped.
                    assert!(
                        stopped.elapsed() >= BOUND - Duration::from_millis(300),
                        "refused {:?} after the database stopped, before the bound: {s:?}",
                        stopped.elapsed()
                    );
                    kmsbox_tests::assert_refused(
                        Err::<(), _>(s),
                        Code::Unavailable,
                        ErrorCode::NotServing,
                        "staleness bound",
                    );
                    break;
                }
            }
        }
        let req = decrypt(t);
        kmsbox_tests::assert_refused(
            t.client.decrypt(req).await.map(|_| ()),
            Code::Unavailable,
            ErrorCode::NotServing,
            "staleness bound",
        );
    }
    kmsbox_tests::assert_refused(
        create(&mut t[0], "while-down").await,
        Code::Unavailable,
        ErrorCode::NotServing,
        "the shared key store cannot be reached",
    );
    for d in &fleet.daemons {
        let deadline = Instant::now() + Duration::from_secs(5);
        while health(&d.endpoint).await != NOT_SERVING {
            assert!(
                Instant::now() < deadline,
                "health still SERVING without the database"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    tokio::task::block_in_place(|| pg.start_again());
    for d in &fleet.daemons {
        let deadline = Instant::now() + Duration::from_secs(10);
        while health(&d.endpoint).await != SERVING {
            assert!(
                Instant::now() < deadline,
                "health not SERVING once the database is back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Served again once the store answers, cached keys and sealed blobs alike.
    for (t, blob) in t.iter_mut().zip(&sealed) {
        gdk(t, &id).await.expect("served again");
        let req = t.req(pb::DecryptRequest {
            ciphertext_blob: blob.ciphertext_blob.clone(),
            encryption_context: Default::default(),
            key_id: String::new(),
        });
        let plain = t.client.decrypt(req).await.expect("decrypts again");
        assert_eq!(plain.into_inner().plaintext, blob.plaintext);
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = load.join_next().await {
        let (ok, failed) = r.unwrap();
        assert!(ok > 0, "the load ran");
        assert!(
            failed
                .iter()
                .all(|m| m.contains("shared key store cannot be reached")),
            "a cached key's data-path call failed other than for the outage: {failed:?}"
        );
    }
    let again = create(&mut t[0], "after")
        .await
        .expect("CreateKey works again");
    gdk(&mut t[1], &again)
        .await
        .expect("and the new key is usable on the other daemon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_from_a_stale_cache_is_decided_again_on_the_stored_key() {
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 2);
    let mut t = fleet.tenants("alice").await;
    for trial in 0..5 {
        let id = create(&mut t[0], &format!("k{trial}")).await.unwrap();
        gdk(&mut t[1], &id).await.unwrap();
        // Rotated on A, then at once disabled on B, whose cache may still hold version 1.
        let req = t[0].req(pb::RotateKeyRequest { key_id: id.clone() });
        t[0].client.rotate_key(req).await.unwrap();
        let req = t[1].req(pb::DisableKeyRequest { key_id: id.clone() });
        let m = t[1]
            .client
            .disable_key(req)
            .await
            .unwrap()
            .into_inner()
            .metadata
            .unwrap();
        assert_eq!(m.current_version, 2, "the disable keeps A's rotation");
        assert_eq!(m.state, pb::KeyState::Disabled as i32);
    }
    // The store still passes every MAC check: a new daemon starts on it.
    let mut fleet = fleet;
    fleet.daemons.push(spawn_daemon(
        &fleet.dir.path().join("late"),
        &fleet.root,
        &fleet.url,
        &[],
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_scheduled_rotation_run_once_per_due_key_across_the_fleet() {
    use kms_proto::admin as apb;
    use kms_proto::admin::admin_client::AdminClient;
    let pg = PgServer::start();
    let fleet = Fleet::start_with(
        &pg,
        3,
        &["--virtual-clock", "--clock-start", "2027-01-01T00:00:00Z"],
    );
    let mut t = fleet.tenants("alice").await;
    let mut doomed = Vec::new();
    let mut rotating = Vec::new();
    for i in 0..3 {
        let id = create(&mut t[0], &format!("doomed{i}")).await.unwrap();
        let req = t[0].req(pb::ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_window_days: 7,
        });
        t[0].client.schedule_key_deletion(req).await.unwrap();
        doomed.push(id);
        let id = create(&mut t[0], &format!("rotating{i}")).await.unwrap();
        let req = t[0].req(pb::UpdateKeyRotationIntervalRequest {
            key_id: id.clone(),
            rotation_interval_days: 30,
        });
        t[0].client.update_key_rotation_interval(req).await.unwrap();
        let req = t[0].req(pb::EnableKeyRotationRequest { key_id: id.clone() });
        t[0].client.enable_key_rotation(req).await.unwrap();
        rotating.push(id);
    }
    // Every daemon holds the keys (within the bound), then every clock passes both due times.
    tokio::time::sleep(BOUND + Duration::from_millis(500)).await;
    let mut advances = tokio::task::JoinSet::new();
    for d in &fleet.daemons {
        let endpoint = d.endpoint.clone();
        advances.spawn(async move {
            let mut admin = AdminClient::connect(endpoint).await.unwrap();
            admin
                .advance_clock(apb::AdvanceClockRequest {
                    by: Some(prost_types::Duration {
                        seconds: 31 * 86_400,
                        nanos: 0,
                    }),
                })
                .await
                .unwrap()
                .into_inner()
        });
    }
    let (mut purged, mut rotated) = (0, 0);
    while let Some(r) = advances.join_next().await {
        let r = r.unwrap();
        purged += r.purged_keys;
        rotated += r.rotated_keys;
    }
    assert_eq!(purged, 3, "each due deletion purged once across the fleet");
    assert_eq!(rotated, 3, "each due rotation made once across the fleet");
    let stored = sql_count(&pg, "SELECT count(*) FROM key_versions WHERE version > 1");
    assert_eq!(stored, 3, "one new version per due key in the store");
    // Every daemon sees version 2 within the bound, and never a third.
    let deadline = Instant::now() + BOUND;
    for t in &mut t {
        for id in &rotating {
            loop {
                let req = t.req(pb::DescribeKeyRequest { key_id: id.clone() });
                let m = t
                    .client
                    .describe_key(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .metadata
                    .unwrap();
                assert!(m.current_version <= 2, "key {id} rotated more than once");
                if m.current_version == 2 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "key {id}'s rotation unseen after the bound"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(
        sql_count(&pg, "SELECT count(*) FROM keys WHERE state = 3"),
        0
    );
    for id in &doomed {
        for t in &mut t {
            let req = t.req(pb::DescribeKeyRequest { key_id: id.clone() });
            assert_eq!(
                t.client
                    .describe_key(req)
                    .await
                    .map(|_| ())
                    .map_err(|s| s.code()),
                Err(Code::NotFound),
                "purged key {id} is gone from every daemon"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_put_back_behind_the_fleets_back_is_refused_not_covered_by_the_next_write() {
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 2);
    let mut t = fleet.tenants("alice").await;
    let id = create(&mut t[0], "victim").await.unwrap();
    let other = create(&mut t[1], "untouched").await.unwrap();
    let uuid = id.rsplit('/').next().unwrap().to_owned();
    let run = |statement: String| {
        tokio::task::block_in_place(|| {
            postgres::Client::connect(&pg.url(), postgres::NoTls)
                .unwrap()
                .batch_execute(&statement)
                .unwrap();
        });
    };
    // Keep the enabled row, disable the key, then put the enabled row back (its record MAC was
    // valid once).
    run(format!(
        "CREATE TABLE saved AS SELECT * FROM keys WHERE uuid = '{uuid}'"
    ));
    let req = t[0].req(pb::DisableKeyRequest { key_id: id.clone() });
    t[0].client.disable_key(req).await.unwrap();
    run(format!(
        "CREATE TABLE disabled AS SELECT * FROM keys WHERE uuid = '{uuid}'"
    ));
    run(format!(
        "UPDATE keys SET state = saved.state, mac = saved.mac FROM saved WHERE keys.uuid = '{uuid}'"
    ));
    let keys_before = sql_count(&pg, "SELECT count(*) FROM keys");
    for t in &mut t {
        kmsbox_tests::assert_refused(
            create(t, "after-edit").await,
            Code::Internal,
            ErrorCode::Internal,
            "store MAC",
        );
    }
    assert_eq!(
        sql_count(&pg, "SELECT count(*) FROM keys"),
        keys_before,
        "nothing written"
    );
    // The daemons still refuse the key: they never trusted the edited row (one that held the key
    // says it is disabled; one that never verified it does not find it; one whose refresh met
    // the edit serves no key at all until the store verifies again).
    // Several tries: the refresher runs meanwhile, and must not take the edited row either.
    for _ in 0..5 {
        for (i, t) in t.iter_mut().enumerate() {
            let r = gdk(t, &id)
                .await
                .map(|_| ())
                .map_err(|s| kmsbox_tests::error_code(&s));
            assert!(
                matches!(
                    r,
                    Err(Some(
                        ErrorCode::KeyDisabled | ErrorCode::KeyNotFound | ErrorCode::Internal
                    ))
                ),
                "daemon {i} serves the put-back row: {r:?}"
            );
        }
        tokio::time::sleep(fleet_bound_step()).await;
    }
    // Daemon A, which disabled it, says so.
    assert_eq!(
        gdk(&mut t[0], &id)
            .await
            .map(|_| ())
            .map_err(|s| kmsbox_tests::error_code(&s)),
        Err(Some(ErrorCode::KeyDisabled))
    );
    // An editor who also moves the change counter makes every daemon read the edited store: none
    // may go on serving from its cache (it could hide a disable), not even an untouched key,
    // until the store verifies again.
    run("UPDATE kmsbox_meta SET change = change + 1 WHERE id = 1".to_owned());
    let refused = |r: Result<pb::GenerateDataKeyResponse, tonic::Status>| {
        r.map(|_| ()).map_err(|s| kmsbox_tests::error_code(&s))
    };
    for (i, t) in t.iter_mut().enumerate() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match refused(gdk(t, &other).await) {
                Err(Some(ErrorCode::Internal)) => break,
                r => assert!(
                    std::time::Instant::now() < deadline,
                    "daemon {i} still serves from its cache over a store that fails its check: {r:?}"
                ),
            }
            tokio::time::sleep(fleet_bound_step()).await;
        }
    }
    // Put the disabled row back: the store verifies, and every daemon serves again, the key
    // disabled.
    run(format!(
        "UPDATE keys SET state = d.state, mac = d.mac FROM disabled d WHERE keys.uuid = '{uuid}'"
    ));
    run("UPDATE kmsbox_meta SET change = change + 1 WHERE id = 1".to_owned());
    for (i, t) in t.iter_mut().enumerate() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while refused(gdk(t, &other).await).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "daemon {i} serves again once the store verifies"
            );
            tokio::time::sleep(fleet_bound_step()).await;
        }
        assert_eq!(
            refused(gdk(t, &id).await),
            Err(Some(ErrorCode::KeyDisabled))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_grants_are_the_fleets_two_stores_never_overlap_and_two_daemons_share_the_last_block()
{
    use kms_server::keyring::nonces::{NONCE_BLOCK, NONCE_LIMIT};
    use kms_server::store::KeyStore;
    use kms_server::store::postgres::{Macs, PostgresStore};
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 2);
    let mut t = fleet.tenants("alice").await;
    let run = |statement: String| {
        tokio::task::block_in_place(|| {
            postgres::Client::connect(&pg.url(), postgres::NoTls)
                .unwrap()
                .batch_execute(&statement)
                .unwrap();
        });
    };

    // The store: two stores (as two daemons would hold) granting small blocks at once from one
    // version get grants that tile 0..limit exactly.
    let raced = create(&mut t[0], "raced").await.unwrap();
    let uuid: uuid::Uuid = raced.rsplit('/').next().unwrap().parse().unwrap();
    let grants = tokio::task::block_in_place(|| {
        let root_check: Vec<u8> = postgres::Client::connect(&pg.url(), postgres::NoTls)
            .unwrap()
            .query_one("SELECT root_check FROM kmsbox_meta", &[])
            .unwrap()
            .get(0);
        let open = || {
            let macs = Macs {
                check_record: Box::new(|_| true),
                store_mac: Box::new(|_, _| Ok([0; 32])),
            };
            PostgresStore::open(&pg.url(), &root_check, macs, 2).unwrap()
        };
        let stores = [open(), open()];
        const BLOCK: u64 = 7;
        const LIMIT: u64 = 700;
        kmsbox_test_support::nonce_grants::race(
            &[&stores[0], &stores[1], &stores[0], &stores[1]],
            BLOCK,
            LIMIT,
            |s| s.reserve_nonces(uuid, 1, BLOCK, LIMIT).unwrap(),
        )
    });
    assert!(grants.len() >= 100);

    // The daemons: a key whose version the fleet has been granted all but one block of.
    let id = create(&mut t[0], "nearly-spent").await.unwrap();
    let uuid = id.rsplit('/').next().unwrap().to_owned();
    run(format!(
        "UPDATE key_versions SET nonces_reserved = {} WHERE uuid = '{uuid}'",
        NONCE_LIMIT - NONCE_BLOCK
    ));
    // Daemon A takes the last block; B then gets nothing and refuses to seal.
    let on_a = gdk(&mut t[0], &id).await.unwrap();
    let stored = |pg: &PgServer| {
        sql_count(
            pg,
            &format!("SELECT nonces_reserved FROM key_versions WHERE uuid = '{uuid}'"),
        )
    };
    assert_eq!(stored(&pg), i64::try_from(NONCE_LIMIT).unwrap());
    for _ in 0..2 {
        kmsbox_tests::assert_refused(
            gdk(&mut t[1], &id).await,
            Code::FailedPrecondition,
            ErrorCode::WrongKeyState,
            "key version 1 has sealed 2^32 blobs; rotate the key",
        );
    }
    let req = t[1].req(pb::EncryptRequest {
        key_id: id.clone(),
        plaintext: b"x".to_vec(),
        encryption_context: Default::default(),
    });
    let e = t[1].client.encrypt(req).await;
    kmsbox_tests::assert_refused(
        e,
        Code::FailedPrecondition,
        ErrorCode::WrongKeyState,
        "2^32",
    );
    // A goes on within its grant; the count never passes the limit.
    let again_on_a = gdk(&mut t[0], &id).await.unwrap();
    assert_eq!(stored(&pg), i64::try_from(NONCE_LIMIT).unwrap());
    // The key still decrypts, on both daemons.
    for t in &mut t {
        for sealed in [&on_a, &again_on_a] {
            let req = t.req(pb::DecryptRequest {
                ciphertext_blob: sealed.ciphertext_blob.clone(),
                encryption_context: Default::default(),
                key_id: id.clone(),
            });
            let plain = t.client.decrypt(req).await.unwrap().into_inner();
            assert_eq!(plain.plaintext, sealed.plaintext);
        }
    }
}

/// A fleet daemon whose audit log cannot be written (a full disk, `--audit-failure=refuse`) while
/// its store is fine: NOT_SERVING and every call refused with `KMSBOX.0503` saying it is the audit
/// log, while another daemon on the same database serves on; recovery by itself once there is
/// space, with what the other daemon changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_audit_log_fails_while_its_store_is_fine_refuses_with_0503_and_recovers() {
    let pg = PgServer::start();
    let fs = Tmpfs::mount();
    let log = fs.path().join("audit.jsonl");
    let mut fleet = Fleet::start_with(&pg, 1, &["--audit-log", log.to_str().unwrap()]);
    let other = spawn_daemon(&fleet.dir.path().join("d1"), &fleet.root, &fleet.url, &[]);
    fleet.daemons.push(other);
    let mut t = fleet.tenants("alice").await;
    let id = create(&mut t[0], "before").await.unwrap();
    gdk(&mut t[1], &id).await.unwrap();
    let filler = fs.fill();

    // The last page of the log still takes a few lines; then a write fails.
    let mut refused = None;
    for _ in 0..2_000 {
        if let Err(s) = gdk(&mut t[0], &id).await {
            refused = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let s = refused.expect("a call is refused once the disk is full");
    let audit_refusal = |s: tonic::Status| {
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        assert_eq!(kmsbox_tests::error_code(&s), Some(ErrorCode::NotServing));
        assert!(s.message().contains("audit log"), "{}", s.message());
        assert!(!s.message().contains("key store"), "{}", s.message());
    };
    audit_refusal(s);
    audit_refusal(create(&mut t[0], "while-full").await.unwrap_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&fleet.daemons[0].endpoint).await != NOT_SERVING {
        assert!(Instant::now() < deadline, "health still SERVING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The store is fine: its change counter poll does not turn the daemon SERVING again.
    tokio::time::sleep(BOUND).await;
    assert_eq!(health(&fleet.daemons[0].endpoint).await, NOT_SERVING);
    // The other daemon, on the same database, serves on.
    assert_eq!(health(&fleet.daemons[1].endpoint).await, SERVING);
    gdk(&mut t[1], &id).await.unwrap();
    let made_meanwhile = create(&mut t[1], "meanwhile").await.unwrap();

    // Space again: the daemon recovers by itself.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match gdk(&mut t[0], &id).await {
            Ok(_) => break,
            Err(s) => audit_refusal(s),
        }
        assert!(Instant::now() < deadline, "no recovery within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&fleet.daemons[0].endpoint).await != SERVING {
        assert!(Instant::now() < deadline, "health not SERVING again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gdk(&mut t[0], &made_meanwhile)
        .await
        .expect("the key made on the other daemon meanwhile is usable");
    create(&mut t[0], "after").await.expect("CreateKey again");
    let outcomes: std::collections::HashSet<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["outcome"].to_string())
        .collect();
    assert!(
        outcomes.iter().any(|o| o.contains("KMSBOX.0503")),
        "the refusals are audited once the log can be written: {outcomes:?}"
    );
}

/// `--store-pool-size 1`: a daemon under concurrent management and data-path calls never holds
/// more than one connection to PostgreSQL for its calls (plus its `LISTEN` connection), and every
/// call still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_pool_size_bounds_a_daemons_connections() {
    let pg = PgServer::start();
    let fleet = Fleet::start_with(&pg, 1, &["--store-pool-size", "1"]);
    let t = fleet.tenants("alice").await;
    // The daemon's connections only: each poll below connects afresh, and the backend of the
    // poll before may not have exited yet, so the polls name themselves and are left out.
    let backends = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
                    AND application_name <> 'kmsbox-test-poll'";
    let poll = |query: &str| {
        tokio::task::block_in_place(|| {
            let url = format!("{}&application_name=kmsbox-test-poll", pg.url());
            postgres::Client::connect(&url, postgres::NoTls)
                .expect("connects to PostgreSQL")
                .query_one(query, &[])
                .expect("query")
                .get::<_, i64>(0)
        })
    };
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40 {
        let mut t = t[0].clone();
        calls.spawn(async move {
            let id = create(&mut t, &format!("k{i}")).await?;
            gdk(&mut t, &id).await?;
            let req = t.req(pb::GetDefaultKeyRequest {
                service: format!("svc{}", i % 4),
            });
            t.client.get_default_key(req).await?;
            Ok::<_, tonic::Status>(())
        });
    }
    let mut most = 0;
    while !calls.is_empty() {
        most = most.max(poll(backends));
        if let Some(r) = calls.try_join_next() {
            r.unwrap()
                .expect("every call succeeds on one pooled connection");
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // The daemon's LISTEN and refresher connections, and its pool of one.
    assert!(
        most <= 3,
        "{most} client connections: the pool of 1 was exceeded"
    );
    assert_eq!(sql_count(&pg, "SELECT count(*) FROM keys"), 44);
}

/// The client has no TLS: a `--store` URL that asks for it is refused at start-up, saying so;
/// `--help` tells the pool's size flag. Neither says the URL's password.
#[test]
fn a_store_url_asking_for_tls_is_refused_and_help_tells_the_pool_size() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["require", "verify-ca", "verify-full"] {
        let out = kms_server(dir.path(), &[])
            .args([
                "--store",
                &format!("postgres://kms:hunter2@127.0.0.1:1/kms?connect_timeout=1&sslmode={mode}"),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{mode}: {err}");
        assert!(
            err.contains("TLS to PostgreSQL is not supported"),
            "{mode}: {err}"
        );
        assert!(
            !err.contains("hunter2") && err.contains("postgres://kms:***@127.0.0.1:1/kms"),
            "{mode}: the refusal names the URL without its password: {err}"
        );
    }
    let out = kms_server(dir.path(), &[])
        .arg("--help")
        .env("KMS_STORE", "postgres://kms:hunter2@127.0.0.1:1/kms")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(!help.contains("hunter2"), "--help shows KMS_STORE's value");
    for want in [
        "--store-pool-size",
        "KMS_STORE_POOL_SIZE",
        "max_connections",
    ] {
        assert!(help.contains(want), "--help lacks {want}");
    }
}

/// A fifth of the bound: the pause between tries that span it.
fn fleet_bound_step() -> Duration {
    BOUND / 5
}

/// A Vault key's policy (`derived`, `deletion_allowed`) and rotation schedule are kept in the
/// shared store: set through one daemon, every daemon keeps them within the bound (neither is
/// bound by the record MAC, so a refresh must not take an unchanged MAC for an unchanged key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_keys_policy_set_on_one_daemon_holds_on_the_others() {
    use kmsbox_tests::http1::http;
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 2);
    let auth = [("X-Vault-Token", "alice")];
    let (a, b) = (fleet.daemons[0].addr, fleet.daemons[1].addr);
    // Configures the key on A, then waits (within the bound) until B reads `field` as `want`.
    let configure_on_a_until_b_reads =
        async |config: &[u8], field: &str, want: serde_json::Value| {
            http(a, "POST", "/v1/transit/keys/bk/config", &auth, config).data();
            let acked = Instant::now();
            loop {
                let read = http(b, "GET", "/v1/transit/keys/bk", &auth, b"");
                if read.data()[field] == want {
                    return read.data().clone();
                }
                assert!(
                    acked.elapsed() <= BOUND,
                    "B's {field} after the bound: {}",
                    read.body
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
    let derived = br#"{"derived":true}"#;
    http(a, "POST", "/v1/transit/keys/bk", &auth, derived).data();
    // No wait: B reads a name it does not hold from the store, as it reads a key ID.
    let datakey = br#"{"context":"YQ=="}"#;
    let at_once = http(
        b,
        "POST",
        "/v1/transit/datakey/plaintext/bk",
        &auth,
        datakey,
    );
    assert!(
        at_once.data()["plaintext"].is_string(),
        "created on A, usable by name on B"
    );
    let allow = br#"{"deletion_allowed":true,"auto_rotate_period":"30d"}"#;
    let read = configure_on_a_until_b_reads(allow, "deletion_allowed", true.into()).await;
    assert_eq!(read["derived"], true);
    assert_eq!(read["auto_rotate_period"], 30 * 86_400, "with the schedule");
    // A change of the schedule alone reaches B too.
    let rotate = br#"{"auto_rotate_period":"60d"}"#;
    configure_on_a_until_b_reads(rotate, "auto_rotate_period", (60 * 86_400).into()).await;
    let plaintext = br#"{"plaintext":"aGk="}"#;
    let bare = http(b, "POST", "/v1/transit/encrypt/bk", &auth, plaintext);
    assert_eq!(bare.status, 400, "derived on B too: {}", bare.body);
    assert!(bare.errors().contains("requires an encryption context"));
    let deleted = http(b, "DELETE", "/v1/transit/keys/bk", &auth, b"");
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let acked = Instant::now();
    let with_context = br#"{"plaintext":"aGk=","context":"YQ=="}"#;
    loop {
        let r = http(a, "POST", "/v1/transit/encrypt/bk", &auth, with_context);
        if r.status == 400 {
            assert!(r.errors().contains("pending deletion"), "{}", r.errors());
            break;
        }
        assert!(acked.elapsed() <= BOUND, "A still serves the deleted key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A key's tags are kept in the shared store: tagged over Huawei's REST API on one daemon, the
/// others list and filter by them within the bound, and a removal on another daemon reaches the
/// first (tags are not bound by the record MAC, so a refresh must compare them too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_tags_set_on_one_daemon_are_listed_on_the_others() {
    use kmsbox_tests::http1::http;
    let pg = PgServer::start();
    let fleet = Fleet::start(&pg, 2);
    let (a, b) = (fleet.daemons[0].addr, fleet.daemons[1].addr);
    let op = |path: &str| format!("/v1.0/alice/kms/{path}");
    let made = http(
        a,
        "POST",
        &op("create-key"),
        &[],
        br#"{"key_alias":"tagged"}"#,
    );
    assert_eq!(made.status, 200, "{}", made.body);
    let key = made.body["key_info"]["key_id"].as_str().unwrap().to_owned();
    // Waits (within the bound) until `on` shows the key's tags as `want`.
    let shown_on = async |on, want: serde_json::Value| {
        let acked = Instant::now();
        loop {
            let r = http(on, "GET", &op(&format!("{key}/tags")), &[], b"");
            if r.body["tags"] == want {
                return;
            }
            assert!(acked.elapsed() <= BOUND, "tags after the bound: {}", r.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let tag = br#"{"action":"create","tags":[{"key":"team","value":"storage"},{"key":"env","value":"prod"}]}"#;
    let r = http(a, "POST", &op(&format!("{key}/tags/action")), &[], tag);
    assert_eq!(r.status, 204, "{}", r.body);
    shown_on(
        b,
        serde_json::json!([{"key":"env","value":"prod"},{"key":"team","value":"storage"}]),
    )
    .await;
    let filter = br#"{"action":"filter","tags":[{"key":"team","values":["storage"]}]}"#;
    let found = http(b, "POST", &op("resource_instances/action"), &[], filter);
    assert_eq!(found.body["total_count"], 1, "{}", found.body);
    assert_eq!(found.body["resources"][0]["resource_id"], key.as_str());
    let r = http(b, "DELETE", &op(&format!("{key}/tags/env")), &[], b"");
    assert_eq!(r.status, 204, "{}", r.body);
    shown_on(a, serde_json::json!([{"key":"team","value":"storage"}])).await;
    assert_eq!(
        sql_count(
            &pg,
            "SELECT count(*) FROM keys WHERE tags = '{\"team\":\"storage\"}'"
        ),
        1,
        "one JSON object in the shared store"
    );
}
