//! `GenerateDataKey` over loopback against a bare tonic echo RPC, in the same run.
//!
//! Run: `cargo bench -p kms-server --bench grpc_throughput [-- --secs N]`.
//! For each number of requests in flight (1, 16, 64) it measures requests per second and p50/p99
//! latency of the real daemon (audit log on, SQLite store, tenancy checks) and of an echo service on
//! the same tonic stack, alternating the two, and prints a Markdown table with the ratio.
//! Bounded: each measurement runs `--secs` seconds (default 3), loopback only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_proto::Tenancy;
use kms_proto::bench::echo_client::EchoClient;
use kms_proto::bench::echo_server::{Echo, EchoServer};
use kms_proto::bench::{EchoRequest, EchoResponse};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Alternating echo/GenerateDataKey rounds per concurrency; the median round is reported.
const ROUNDS: usize = 3;

struct EchoSvc;

#[tonic::async_trait]
impl Echo for EchoSvc {
    async fn echo(&self, req: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            payload: req.into_inner().payload,
        }))
    }
}

#[derive(Clone, Copy)]
enum Target {
    Echo,
    GenerateDataKey,
}

struct Stats {
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    /// CPU time of this whole process (client and servers) per request, in microseconds: less
    /// sensitive than throughput to what else the shared machine runs.
    cpu_us_per_req: f64,
}

/// User plus system CPU time of this process so far, in seconds (Linux `/proc/self/stat`).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

async fn measure(
    target: Target,
    inflight: usize,
    secs: u64,
    echo: &[EchoClient<Channel>],
    kms: &[KeyManagementServiceClient<Channel>],
    key_id: &Arc<String>,
) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(inflight);
    for i in 0..inflight {
        let mut e = echo[i % echo.len()].clone();
        let mut k = kms[i % kms.len()].clone();
        let key_id = Arc::clone(key_id);
        #[allow(
            clippy::disallowed_methods,
            reason = "load generators, each joined before the measurement ends"
        )]
        let task = tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let ctx: HashMap<String, String> =
                [("obs:bucket".to_owned(), "bench".to_owned())].into();
            let tenancy = Tenancy::for_domain("bench").expect("ascii");
            // Bounded by time and by count.
            while Instant::now() < deadline && lat.len() < 5_000_000 {
                let t0 = Instant::now();
                match target {
                    Target::Echo => {
                        e.echo(EchoRequest {
                            payload: vec![7u8; 96],
                        })
                        .await
                        .expect("echo");
                    }
                    Target::GenerateDataKey => {
                        let r = tenancy.request(pb::GenerateDataKeyRequest {
                            key_id: (*key_id).clone(),
                            number_of_bytes: 32,
                            encryption_context: ctx.clone(),
                        });
                        k.generate_data_key(r).await.expect("GenerateDataKey");
                    }
                }
                lat.push(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            lat
        });
        tasks.push(task);
    }
    let start = Instant::now();
    let cpu0 = process_cpu_secs();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu0;
    all.sort_unstable();
    // The `percent`th percentile, nearest rank below.
    let pct = |percent: usize| all[all.len().saturating_sub(1) * percent / 100];
    Stats {
        rps: all.len() as f64 / elapsed,
        p50_us: pct(50),
        p99_us: pct(99),
        cpu_us_per_req: cpu * 1e6 / all.len() as f64,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut secs = 3u64;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--secs") {
        secs = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(3);
    }
    // `--only echo|gdk [--inflight N]`: one target alone, for profiling (callgrind, perf).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let only_inflight: usize = args
        .iter()
        .position(|a| a == "--inflight")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    if args.iter().any(|a| a == "--test" || a == "--list") {
        // `cargo test --benches` runs bench binaries in test mode: nothing to measure there.
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let server = kms_server::server::start(kms_server::server::Config::local(dir.path()))
        .await
        .expect("daemon starts");

    let echo_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let echo_addr = echo_listener.local_addr().expect("addr");
    #[allow(
        clippy::disallowed_methods,
        reason = "the echo baseline server lives as long as the benchmark process"
    )]
    let _echo = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EchoServer::new(EchoSvc))
            // The daemon's own accept path, so both servers' sockets are set up alike.
            .serve_with_incoming(kms_server::listener::incoming(
                echo_listener,
                kms_server::listener::AcceptOptions::default(),
            )),
    );

    // A few HTTP/2 connections, as a real client pool would use.
    let mut echo = Vec::new();
    let mut kms = Vec::new();
    for _ in 0..4 {
        echo.push(
            EchoClient::connect(format!("http://{echo_addr}"))
                .await
                .expect("echo connects"),
        );
        kms.push(
            KeyManagementServiceClient::connect(format!("http://{}", server.local_addr()))
                .await
                .expect("kms connects"),
        );
    }
    let r = Tenancy::for_domain("bench")
        .expect("ascii")
        .request(pb::CreateKeyRequest {
            alias: "bench".into(),
            description: String::new(),
        });
    let key_id = Arc::new(
        kms[0]
            .clone()
            .create_key(r)
            .await
            .expect("CreateKey")
            .into_inner()
            .metadata
            .expect("metadata")
            .key_id,
    );

    if let Some(which) = only {
        let target = if which == "echo" {
            Target::Echo
        } else {
            Target::GenerateDataKey
        };
        let s = measure(target, only_inflight, secs, &echo, &kms, &key_id).await;
        println!(
            "{which}: {:.0} req/s, {:.0} requests",
            s.rps,
            (s.rps * secs as f64).trunc()
        );
        server.shutdown().await;
        return;
    }

    // Warm-up.
    measure(Target::Echo, 16, 1, &echo, &kms, &key_id).await;
    measure(Target::GenerateDataKey, 16, 1, &echo, &kms, &key_id).await;

    println!("GenerateDataKey vs echo over loopback, {secs} s per measurement, audit log on");
    println!();
    println!(
        "| in flight | echo req/s | echo p50/p99 (us) | GenerateDataKey req/s | GDK p50/p99 (us) | throughput ratio, median of {ROUNDS} rounds (all) | CPU us/req echo / GDK | CPU ratio echo/GDK |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for inflight in [1usize, 16, 64] {
        // Rounds alternate which target goes first, so that drift in the machine's load hits both.
        let mut rounds = Vec::new();
        for round in 0..ROUNDS {
            let (e, g) = if round % 2 == 0 {
                let e = measure(Target::Echo, inflight, secs, &echo, &kms, &key_id).await;
                (
                    e,
                    measure(
                        Target::GenerateDataKey,
                        inflight,
                        secs,
                        &echo,
                        &kms,
                        &key_id,
                    )
                    .await,
                )
            } else {
                let g = measure(
                    Target::GenerateDataKey,
                    inflight,
                    secs,
                    &echo,
                    &kms,
                    &key_id,
                )
                .await;
                (
                    measure(Target::Echo, inflight, secs, &echo, &kms, &key_id).await,
                    g,
                )
            };
            rounds.push((g.rps / e.rps, e, g));
        }
        rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ratio, e, g) = &rounds[rounds.len() / 2];
        let all: Vec<String> = rounds.iter().map(|r| format!("{:.2}", r.0)).collect();
        println!(
            "| {inflight} | {:.0} | {}/{} | {:.0} | {}/{} | {:.2} ({}) | {:.1} / {:.1} | {:.2} |",
            e.rps,
            e.p50_us,
            e.p99_us,
            g.rps,
            g.p50_us,
            g.p99_us,
            ratio,
            all.join(", "),
            e.cpu_us_per_req,
            g.cpu_us_per_req,
            e.cpu_us_per_req / g.cpu_us_per_req
        );
    }
    server.flush_audit().await;
    server.shutdown().await;
}
