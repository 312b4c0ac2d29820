//! Huawei REST `create-datakey` over loopback against a bare HTTP handler on the same server stack
//! (tonic's server with HTTP/1.1 accepted, the daemon's accept path, an axum route), in one run,
//! with gRPC `GenerateDataKey` beside it.
//!
//! Run: `cargo bench -p kms-server --bench huawei_rest [-- --secs N]`.
//! HTTP/1.1 keep-alive, 16 requests in flight (16 connections, one request each at a time, as the
//! Huawei SDK's connection pool does); the daemon has its audit log on and no tenants file (so the
//! REST calls carry no signature: the figure is the API layer and the key ring, not HMAC). Goal:
//! REST/bare at least 0.8. Bounded: each measurement runs `--secs` seconds (default 3), loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use kms_proto::Tenancy;
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INFLIGHT: usize = 16;
/// Alternating rounds; the median ratio is reported.
const ROUNDS: usize = 3;

/// The bare handler: reads the JSON body and answers a body of create-datakey's size.
async fn bare(body: axum::body::Bytes) -> ([(http::HeaderName, &'static str); 1], String) {
    let n = body.len();
    (
        [(http::header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        format!(
            "{{\"key_id\":\"0d0466b0-e727-4d9c-b35d-f84bb474a37f\",\"plain_text\":\"{}\",\"cipher_text\":\"{}\"}}",
            "A".repeat(64 + n % 2),
            "B".repeat(208)
        ),
    )
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connects");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// POSTs `body` to `path` and reads the whole answer; panics unless it is 200.
    async fn post(&mut self, addr: SocketAddr, path: &str, body: &[u8]) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream
            .write_all(&[head.as_bytes(), body].concat())
            .await
            .expect("writes");
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("ascii head");
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().expect("length"))
                    })
                    .expect("content-length");
                if self.buf.len() >= end + 4 + len {
                    return;
                }
            }
            let n = self.stream.read(&mut chunk).await.expect("reads");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Clone, Copy)]
enum Target {
    Bare,
    Rest,
    Grpc,
}

async fn measure(
    target: Target,
    secs: u64,
    bare_addr: SocketAddr,
    daemon: SocketAddr,
    key_uuid: &str,
) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let rest_body = format!("{{\"key_id\":\"{key_uuid}\",\"datakey_length\":\"256\"}}");
    let mut tasks = Vec::with_capacity(INFLIGHT);
    for _ in 0..INFLIGHT {
        let body = rest_body.clone();
        let key_uuid = key_uuid.to_owned();
        #[allow(
            clippy::disallowed_methods,
            reason = "load generators, each joined before the measurement ends"
        )]
        let task = tokio::spawn(async move {
            let mut done = 0u64;
            match target {
                Target::Bare | Target::Rest => {
                    let (addr, path) = match target {
                        Target::Bare => (bare_addr, "/bare".to_owned()),
                        _ => (daemon, "/v1.0/bench/kms/create-datakey".to_owned()),
                    };
                    let mut c = Conn::open(addr).await;
                    // Bounded by time and by count.
                    while Instant::now() < deadline && done < 5_000_000 {
                        c.post(addr, &path, body.as_bytes()).await;
                        done += 1;
                    }
                }
                Target::Grpc => {
                    let mut k = KeyManagementServiceClient::connect(format!("http://{daemon}"))
                        .await
                        .expect("connects");
                    let tenancy = Tenancy::for_domain("bench").expect("ascii");
                    while Instant::now() < deadline && done < 5_000_000 {
                        let r = tenancy.request(pb::GenerateDataKeyRequest {
                            key_id: key_uuid.clone(),
                            number_of_bytes: 32,
                            encryption_context: Default::default(),
                        });
                        k.generate_data_key(r).await.expect("GenerateDataKey");
                        done += 1;
                    }
                }
            }
            done
        });
        tasks.push(task);
    }
    let start = Instant::now();
    let mut total = 0u64;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        // `cargo test --benches` runs bench binaries in test mode: nothing to measure there.
        return;
    }
    let secs = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u64);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = kms_server::server::start(kms_server::server::Config::local(dir.path()))
        .await
        .expect("daemon starts");
    let daemon = server.local_addr();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bare_addr = listener.local_addr().expect("addr");
    let routes: tonic::service::Routes = Router::new().route("/bare", post(bare)).into();
    #[allow(
        clippy::disallowed_methods,
        reason = "the bare baseline server lives as long as the benchmark process"
    )]
    let _bare = tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            // The daemon's own accept path, so both servers' sockets are set up alike.
            .serve_with_incoming(kms_server::listener::incoming(
                listener,
                kms_server::listener::AcceptOptions::default(),
            )),
    );

    let mut setup = Conn::open(daemon).await;
    setup
        .post(
            daemon,
            "/v1.0/bench/kms/create-key",
            br#"{"key_alias": "bench"}"#,
        )
        .await;
    let answer = String::from_utf8_lossy(&setup.buf).into_owned();
    let key_uuid = answer
        .split("\"key_id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a key_id")
        .to_owned();

    // Warm-up.
    for t in [Target::Bare, Target::Rest, Target::Grpc] {
        measure(t, 1, bare_addr, daemon, &key_uuid).await;
    }
    println!(
        "create-datakey over REST vs a bare HTTP handler, HTTP/1.1 keep-alive, {INFLIGHT} in flight, {secs} s per measurement, audit log on"
    );
    println!();
    println!(
        "| round | bare req/s | REST create-datakey req/s | ratio | gRPC GenerateDataKey req/s |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        // Rounds alternate which target goes first, so that drift in the machine's load hits both.
        let (b, r) = if round % 2 == 0 {
            let b = measure(Target::Bare, secs, bare_addr, daemon, &key_uuid).await;
            (
                b,
                measure(Target::Rest, secs, bare_addr, daemon, &key_uuid).await,
            )
        } else {
            let r = measure(Target::Rest, secs, bare_addr, daemon, &key_uuid).await;
            (
                measure(Target::Bare, secs, bare_addr, daemon, &key_uuid).await,
                r,
            )
        };
        let g = measure(Target::Grpc, secs, bare_addr, daemon, &key_uuid).await;
        ratios.push(r / b);
        println!(
            "| {} | {b:.0} | {r:.0} | {:.2} | {g:.0} |",
            round + 1,
            r / b
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!();
    println!(
        "median ratio REST/bare: {:.2} (goal at least 0.8)",
        ratios[ratios.len() / 2]
    );
    server.shutdown().await;
}
