//! Huawei REST `create-datakey` over loopback against a bare HTTP handler on the same server stack
//! (tonic's server with HTTP/1.1 accepted, the daemon's accept path, and the handler in a layer in
//! front of the gRPC routes, where the daemon serves its HTTP APIs), in one run, with gRPC
//! `GenerateDataKey` beside it.
//!
//! Run: `cargo bench -p kms-server --bench huawei_rest [-- --requests N --rounds R]`.
//! The load comes from another process, h2load (Debian's `nghttp2-client`): HTTP/1.1 keep-alive,
//! 16 connections with one request each in flight (as the Huawei SDK's connection pool does), and
//! for gRPC 4 connections of 4 streams. Both servers live in this process, idle but for the one
//! being measured, so its CPU time per request (from `/proc/self/stat`) is the server's own cost.
//! The daemon has its audit log on and no tenants file (so the REST calls carry no signature: the
//! figure is the API layer and the key ring, not HMAC). Goal: REST/bare at least 0.8. Bounded:
//! each measurement is `--requests` requests (default 40000), and h2load is killed after 120 s.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INFLIGHT: usize = 16;
/// Alternating rounds; the median ratio is reported.
const ROUNDS: usize = 3;

/// The bare handler: reads the JSON body and answers a body of create-datakey's size. It is
/// served as the daemon serves its HTTP APIs (`kms_server::http::ApiFront`): by a layer in front
/// of the gRPC routes, reading the server's body type as it comes, one allocation for the call's
/// future and two for the response body's boxes.
#[derive(Clone)]
struct Bare;

impl<S> tower_layer::Layer<S> for Bare {
    type Service = Bare;

    fn layer(&self, _routes: S) -> Bare {
        Bare
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Bare {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            use http_body::Body as _;
            let mut body = request.into_body();
            let mut n = 0;
            while let Some(frame) =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
            {
                if let Some(data) = frame.ok().and_then(|f| f.into_data().ok()) {
                    n += data.len();
                }
            }
            let text = format!(
                "{{\"key_id\":\"0d0466b0-e727-4d9c-b35d-f84bb474a37f\",\"plain_text\":\"{}\",\"cipher_text\":\"{}\"}}",
                "A".repeat(64 + n % 2),
                "B".repeat(208)
            );
            let mut response =
                http::Response::new(tonic::body::Body::new(axum::body::Body::from(text)));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json;charset=UTF-8"),
            );
            Ok(response)
        })
    }
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

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Bare,
    Rest,
    Grpc,
}

/// One measurement: requests per second, and this process's CPU time per request in
/// microseconds.
struct Measured {
    rps: f64,
    cpu_us: f64,
}

/// This process's user plus system CPU time, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("reads /proc/self/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("a command name") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

fn clock_ticks_per_second() -> u64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

/// Runs h2load against `target` and measures this process meanwhile.
fn measure(target: Target, requests: u64, urls: &Urls, hz: u64) -> Measured {
    let mut cmd = Command::new("h2load");
    cmd.args(["-n", &requests.to_string(), "-t", "1"]);
    match target {
        Target::Bare | Target::Rest => {
            cmd.args(["--h1", "-c", &INFLIGHT.to_string(), "-m", "1"]);
            cmd.args(["-H", "content-type: application/json;charset=UTF-8"]);
            cmd.arg("-d").arg(&urls.rest_body);
            cmd.arg(if target == Target::Bare {
                &urls.bare
            } else {
                &urls.rest
            });
        }
        Target::Grpc => {
            cmd.args(["-c", "4", "-m", &(INFLIGHT / 4).to_string()]);
            cmd.args(["-H", "content-type: application/grpc", "-H", "te: trailers"]);
            cmd.args(["-H", "x-kms-domain-id: bench"]);
            cmd.arg("-d").arg(&urls.grpc_body);
            cmd.arg(&urls.grpc);
        }
    }
    let t0 = cpu_ticks();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("needs h2load on PATH (Debian: apt-get install nghttp2-client)");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("h2load").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("h2load ran over 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let t1 = cpu_ticks();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("h2load output");
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_default()
    };
    let done = line("requests:");
    assert!(
        done.contains(&format!("{requests} succeeded")),
        "h2load: not every request succeeded: {done}\n{out}"
    );
    let status = line("status codes:");
    assert!(
        status.starts_with(&format!("status codes: {requests} 2xx")),
        "h2load: {status}"
    );
    let rps: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.strip_suffix(" req/s"))
        .and_then(|r| r.parse().ok())
        .expect("h2load's req/s");
    Measured {
        rps,
        cpu_us: (t1 - t0) as f64 * 1e6 / hz as f64 / requests as f64,
    }
}

struct Urls {
    bare: String,
    rest: String,
    grpc: String,
    rest_body: std::path::PathBuf,
    grpc_body: std::path::PathBuf,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        // `cargo test --benches` runs bench binaries in test mode: nothing to measure there.
        return;
    }
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let requests = arg("--requests", 40_000);
    let rounds = usize::try_from(arg("--rounds", ROUNDS as u64)).unwrap_or(ROUNDS);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = kms_server::server::start(kms_server::server::Config::local(dir.path()))
        .await
        .expect("daemon starts");
    let daemon = server.local_addr();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bare_addr = listener.local_addr().expect("addr");
    #[allow(
        clippy::disallowed_methods,
        reason = "the bare baseline server lives as long as the benchmark process"
    )]
    let _bare = tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(Bare)
            .add_routes(tonic::service::Routes::default())
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
    drop(setup);

    let rest_body = dir.path().join("create-datakey.json");
    std::fs::write(
        &rest_body,
        format!("{{\"key_id\":\"{key_uuid}\",\"datakey_length\":\"256\"}}"),
    )
    .expect("writes the body");
    // A gRPC frame: flag, length, then GenerateDataKeyRequest { key_id = 1, number_of_bytes = 2 }.
    let mut message = vec![0x0a, u8::try_from(key_uuid.len()).expect("short")];
    message.extend_from_slice(key_uuid.as_bytes());
    message.extend_from_slice(&[0x10, 32]);
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("short").to_be_bytes());
    frame.extend_from_slice(&message);
    let grpc_body = dir.path().join("gdk.bin");
    std::fs::File::create(&grpc_body)
        .and_then(|mut f| f.write_all(&frame))
        .expect("writes the frame");
    let urls = Urls {
        bare: format!("http://{bare_addr}/bare"),
        rest: format!("http://{daemon}/v1.0/bench/kms/create-datakey"),
        grpc: format!("http://{daemon}/kms.v1.KeyManagementService/GenerateDataKey"),
        rest_body,
        grpc_body,
    };
    let hz = clock_ticks_per_second();
    let run = |target: Target, n: u64| {
        let urls = &urls;
        tokio::task::block_in_place(|| measure(target, n, urls, hz))
    };

    // Warm-up.
    for t in [Target::Bare, Target::Rest, Target::Grpc] {
        run(t, requests / 10);
    }
    println!(
        "create-datakey over REST vs a bare HTTP handler on the same stack, load from h2load (another process), HTTP/1.1 keep-alive, {INFLIGHT} in flight, {requests} requests per measurement, audit log on"
    );
    println!();
    println!(
        "| round | bare req/s | REST req/s | ratio | bare us CPU/req | REST us CPU/req | CPU ratio | gRPC GenerateDataKey req/s | gRPC us CPU/req |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let host_before = host_ticks();
    let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Rounds alternate which target goes first, so that drift in the machine's load hits both.
        let (b, r) = if round % 2 == 0 {
            let b = run(Target::Bare, requests);
            (b, run(Target::Rest, requests))
        } else {
            let r = run(Target::Rest, requests);
            (run(Target::Bare, requests), r)
        };
        let g = run(Target::Grpc, requests);
        ratios.push(r.rps / b.rps);
        cpu_ratios.push(b.cpu_us / r.cpu_us);
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.2} | {:.0} | {:.1} |",
            round + 1,
            b.rps,
            r.rps,
            r.rps / b.rps,
            b.cpu_us,
            r.cpu_us,
            b.cpu_us / r.cpu_us,
            g.rps,
            g.cpu_us
        );
    }
    println!();
    println!(
        "median ratio REST/bare: throughput {:.2}, CPU per request (bare/REST) {:.2} (goal at least 0.8)",
        median(ratios),
        median(cpu_ratios)
    );
    if let (Some((t0, s0)), Some((t1, s1))) = (host_before, host_ticks()) {
        println!(
            "host: {:.0}% of CPU time stolen by the hypervisor during the rounds (close to 0 on a quiet host)",
            (s1 - s0) as f64 * 100.0 / (t1 - t0).max(1) as f64
        );
    }
    server.shutdown().await;
}

/// The machine's CPU ticks, all and stolen by the hypervisor (`/proc/stat`), so that the figures
/// say how contended the host was; `None` where there is no `/proc`.
fn host_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    Some((fields.iter().sum(), *fields.get(7)?))
}
