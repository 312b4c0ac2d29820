//! `GenerateDataKey` throughput of 1, 2 and 3 daemons on one PostgreSQL, driven together, against
//! one daemon on SQLite, in one run (issue 14's figure).
//!
//! Run: `cargo bench -p kmsbox-tests --bench fleet_throughput [-- --secs N]`.
//! The daemons run in this process (in-process servers, each with its own data folder and audit
//! log, one shared root key) on a throwaway PostgreSQL ([`kmsbox_tests::postgres::PgServer`]).
//! For each set-up, 64 calls in flight spread evenly over the daemons for `--secs` seconds
//! (default 3) on one key; prints a Markdown table of calls per second. Bounded, loopback only.
//! On one machine the daemons share its cores: the figure shows the fleet's overhead on the data
//! path (none is expected: it reads only the cache), not the scaling of separate machines.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kms_proto::v1 as pb;
use kmsbox_tests::postgres::PgServer;
use kmsbox_tests::{Tenant, TestDaemon};

const IN_FLIGHT: usize = 64;

async fn daemons(n: usize, store: Option<&str>, root: &Path) -> Vec<TestDaemon> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (store, root) = (store.map(str::to_owned), root.to_owned());
        out.push(
            TestDaemon::start_with(move |c, _| {
                c.store = store;
                c.root_key_file = Some(root);
            })
            .await,
        );
    }
    out
}

/// Calls per second of `GenerateDataKey` on one key, `IN_FLIGHT` calls spread over `daemons`.
async fn drive(daemons: &[TestDaemon], secs: u64) -> f64 {
    let mut tenants = Vec::new();
    for d in daemons {
        tenants.push(d.tenant("bench").await);
    }
    let key = {
        let t = &mut tenants[0];
        let req = t.req(pb::CreateKeyRequest::default());
        t.client
            .create_key(req)
            .await
            .expect("CreateKey")
            .into_inner()
            .metadata
            .expect("metadata")
            .key_id
    };
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..IN_FLIGHT {
        let (mut t, key, done): (Tenant, String, _) = (
            tenants[i % tenants.len()].clone(),
            key.clone(),
            Arc::clone(&done),
        );
        set.spawn(async move {
            while Instant::now() < until {
                let req = t.req(pb::GenerateDataKeyRequest {
                    key_id: key.clone(),
                    number_of_bytes: 32,
                    encryption_context: Default::default(),
                });
                t.client
                    .generate_data_key(req)
                    .await
                    .expect("GenerateDataKey");
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let start = Instant::now();
    while set.join_next().await.is_some() {}
    #[allow(clippy::cast_precision_loss, reason = "a rate")]
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    rate
}

fn main() {
    let secs = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pg = PgServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        println!("| store | daemons | GenerateDataKey calls/s ({IN_FLIGHT} in flight, {secs} s) |");
        println!("|---|---|---|");
        let sqlite_root = dir.path().join("sqlite.key");
        let one = daemons(1, None, &sqlite_root).await;
        println!("| SQLite | 1 | {:.0} |", drive(&one, secs).await);
        drop(one);
        for n in 1..=3 {
            // A fresh database each time would need a new server; a fresh root key is enough
            // only with a fresh store, so each set-up gets its own database.
            let db = format!("bench{n}");
            let admin = pg.url();
            tokio::task::spawn_blocking(move || {
                postgres::Client::connect(&admin, postgres::NoTls)
                    .and_then(|mut c| c.batch_execute(&format!("CREATE DATABASE {db}")))
                    .expect("CREATE DATABASE");
            })
            .await
            .expect("create database");
            let url = pg.url().replace("/postgres?", &format!("/bench{n}?"));
            let root = dir.path().join(format!("fleet{n}.key"));
            // The first daemon makes the root key; the others start after it.
            let mut fleet = daemons(1, Some(&url), &root).await;
            fleet.extend(daemons(n - 1, Some(&url), &root).await);
            println!("| PostgreSQL | {n} | {:.0} |", drive(&fleet, secs).await);
        }
    });
}
