//! Hardening (issue 9), connection side, against the real `kms-server` binary: one HTTP/2
//! connection cannot grow the daemon's memory without bound, idle connections are closed, and
//! running out of descriptors neither spins nor locks new clients out for good. Loopback only,
//! bounded in count and time.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kms_proto::v1 as pb;
use kmsbox_tests::Tenant;
use kmsbox_tests::process::{Daemon, bin, kms_server};

/// The daemon, optionally under a lowered descriptor limit (`exec` keeps its PID the child's).
fn spawn(data_dir: &Path, nofile: Option<u32>, extra: &[&str]) -> Daemon {
    let mut cmd = kms_server(data_dir, extra);
    cmd.env("RUST_LOG", "error");
    if let Some(n) = nofile {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env("RUST_LOG", "error");
        cmd = sh;
    }
    Daemon::spawn_command(cmd)
}

/// Resident memory of the daemon, in KiB.
fn rss_kib(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// User plus system CPU time of the daemon, in clock ticks.
fn cpu_ticks(d: &Daemon) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", d.pid())).expect("stat");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// Whether the peer closes `s` before `deadline` (reading past what it sent, such as the
/// server's HTTP/2 SETTINGS).
fn closed_by_peer(mut s: &std::net::TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .is_err()
        {
            return true;
        }
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// One ListKeys call with a deadline; how long it took.
async fn served_within(endpoint: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let call = async {
        let mut t = Tenant::connect(endpoint, "alice", None, None).await;
        t.client
            .list_keys(t.req(pb::ListKeysRequest::default()))
            .await
            .expect("served");
    };
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| panic!("a client was not served within {limit:?}"));
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_of_header_only_streams_cannot_grow_memory_without_bound() {
    const STREAMS: usize = 60_000;
    const FLOOD_TIME: Duration = Duration::from_secs(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = spawn(dir.path(), None, &[]);
    served_within(&daemon.endpoint.clone(), Duration::from_secs(5)).await;
    let before = rss_kib(&daemon);

    let tcp = tokio::net::TcpStream::connect(daemon.addr)
        .await
        .expect("connects");
    let (client, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    #[allow(
        clippy::disallowed_methods,
        reason = "the connection task of the flooding test client, aborted below"
    )]
    let driver = tokio::spawn(conn);
    // Let the server's SETTINGS arrive, so the client knows its stream limit.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let flooding = AtomicBool::new(true);
    let flood = async {
        let mut open = Vec::new();
        let mut client = client;
        let start = Instant::now();
        while open.len() < STREAMS && start.elapsed() < FLOOD_TIME {
            // A client that honours SETTINGS_MAX_CONCURRENT_STREAMS waits here once the limit is
            // reached; a short wait means "the server allows no more".
            match tokio::time::timeout(Duration::from_secs(2), client.ready()).await {
                Ok(Ok(c)) => client = c,
                Ok(Err(_)) | Err(_) => break,
            }
            let req = http::Request::builder()
                .method("POST")
                .uri(format!(
                    "http://{}/kms.v1.KeyManagementService/Encrypt",
                    daemon.addr
                ))
                .header("content-type", "application/grpc")
                .header("x-kms-domain-id", "alice")
                .body(())
                .expect("request");
            match client.send_request(req, false) {
                Ok(stream) => open.push(stream),
                Err(_) => break,
            }
            if open.len() % 100 == 0 {
                // Let the probe and the connection task run between bursts.
                tokio::task::yield_now().await;
            }
        }
        flooding.store(false, Ordering::Relaxed);
        open
    };
    let probe = async {
        let mut slowest = Duration::ZERO;
        while flooding.load(Ordering::Relaxed) {
            slowest =
                slowest.max(served_within(&daemon.endpoint.clone(), Duration::from_secs(1)).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slowest
    };
    let (open, slowest) = tokio::join!(flood, probe);
    // Give the daemon time to take in whatever it was sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = rss_kib(&daemon);
    let while_held = served_within(&daemon.endpoint.clone(), Duration::from_secs(1)).await;
    eprintln!(
        "streams sent: {}; RSS before {before} KiB, during {during} KiB; slowest probe {slowest:?}, \
         while held {while_held:?}",
        open.len()
    );
    assert!(
        during.saturating_sub(before) < 100 * 1024,
        "RSS grew by {} KiB with {} streams open",
        during - before,
        open.len()
    );

    drop(open);
    driver.abort();
    let _ = driver.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(&daemon);
    eprintln!("RSS after the connection went: {after} KiB");
    assert!(
        after <= during + 1024,
        "memory is not held on once the connection is gone: {during} -> {after} KiB"
    );
    served_within(&daemon.endpoint.clone(), Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_at_the_descriptor_limit_neither_spin_nor_lock_clients_out() {
    const NOFILE: u32 = 256;
    const IDLE: usize = 400;
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = spawn(dir.path(), Some(NOFILE), &["--idle-timeout-secs", "2"]);
    served_within(&daemon.endpoint.clone(), Duration::from_secs(5)).await;

    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&daemon.addr, Duration::from_secs(1)) {
            idle.push(s);
        }
    }
    let opened = idle.len();
    assert!(
        opened > usize::try_from(NOFILE).expect("small") + 100,
        "only {opened} idle sockets connected"
    );

    // Out of descriptors: accepting must back off, not spin.
    let cpu_before = cpu_ticks(&daemon);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_ticks(&daemon) - cpu_before;
    eprintln!("CPU over 2 s with {opened} idle sockets and nofile {NOFILE}: {cpu} ticks");
    assert!(
        cpu < 50,
        "the daemon used {cpu} ticks of CPU in 2 s: spinning"
    );

    // The idle sockets are closed after the idle timeout, so a new client is served.
    let took = served_within(&daemon.endpoint.clone(), Duration::from_secs(15)).await;
    eprintln!("a new client was served after {took:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let closed = idle.iter().filter(|s| closed_by_peer(s, deadline)).count();
    eprintln!("idle sockets closed by the daemon: {closed} of {opened}");
    assert_eq!(closed, opened, "every idle socket is closed");
    served_within(&daemon.endpoint.clone(), Duration::from_secs(1)).await;
}

#[test]
fn help_names_every_limit_and_its_default() {
    let out = Command::new(bin("kms-server"))
        .arg("--help")
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    // (flag, environment variable, default)
    for (flag, env, default) in [
        ("--max-connections", "KMS_MAX_CONNECTIONS", "1024"),
        (
            "--max-concurrent-streams",
            "KMS_MAX_CONCURRENT_STREAMS",
            "256",
        ),
        (
            "--max-header-list-size",
            "KMS_MAX_HEADER_LIST_SIZE",
            "16384",
        ),
        ("--max-message-size", "KMS_MAX_MESSAGE_SIZE", "4194304"),
        ("--idle-timeout-secs", "KMS_IDLE_TIMEOUT_SECS", "60"),
        (
            "--keepalive-interval-secs",
            "KMS_KEEPALIVE_INTERVAL_SECS",
            "30",
        ),
        (
            "--keepalive-timeout-secs",
            "KMS_KEEPALIVE_TIMEOUT_SECS",
            "10",
        ),
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("--help lacks {flag}"));
        let entry = &help[at..];
        let entry = &entry[..entry.find("\n  -").unwrap_or(entry.len())];
        assert!(entry.contains(env), "{flag}: {entry}");
        assert!(
            entry.contains(&format!("[default: {default}]")),
            "{flag}: {entry}"
        );
    }
}
