//! Wiring: configuration, start-up, serving, graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kms_proto::key_id::RegionId;
use kms_proto::v1::key_management_service_server::KeyManagementServiceServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::crypto::RootKey;
use crate::error::StartupError;
use crate::grpc::{CodecRefusals, KmsGrpc};
use crate::keyring::{Keyring, now_ms};
use crate::listener::MarkCalls;
use crate::store::{KeyStore, SqliteStore};

/// The daemon's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Folder of the SQLite database and, by default, the root key.
    pub data_dir: PathBuf,
    /// The default region of calls that name none.
    pub region: String,
    /// TOML tenants file; without it the daemon trusts `x-kms-domain-id` and listens on loopback only.
    pub tenants: Option<PathBuf>,
    /// Root key file; default `<data_dir>/root.key`.
    pub root_key_file: Option<PathBuf>,
    /// Keys to create at start-up.
    pub seed: Option<PathBuf>,
    /// The audit log (JSON lines); default `<data_dir>/audit.jsonl`.
    pub audit_log: Option<PathBuf>,
    /// How often keys past their deletion date are purged.
    pub purge_interval: Duration,
    /// How long shutdown waits for in-flight calls and open connections before closing them.
    pub shutdown_grace: Duration,
    /// Per-connection resource limits.
    pub limits: Limits,
}

/// What one client can hold of the daemon: connections, streams, header and message sizes, idle
/// time. The defaults are in [`Limits::default`] and the README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once; accepting waits while this many are open (default 1024).
    pub max_connections: usize,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` of each HTTP/2 connection (default 256).
    pub max_concurrent_streams: u32,
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`: largest request header list, in bytes (default 16 KiB).
    pub max_header_list_size: u32,
    /// Largest request message, in bytes (default 4 MiB); larger ones are `KMSBOX.0413`.
    pub max_message_size: usize,
    /// A connection with no call for this long is closed (default 60 s); `None` never.
    pub idle_timeout: Option<Duration>,
    /// Interval of the HTTP/2 keep-alive pings that find dead peers (default 30 s); `None` sends
    /// none. Ping traffic does not keep a connection from counting as idle.
    pub keepalive_interval: Option<Duration>,
    /// How long a keep-alive ping waits for its answer before the connection is closed
    /// (default 10 s).
    pub keepalive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_concurrent_streams: 256,
            max_header_list_size: 16 * 1024,
            max_message_size: 4 * 1024 * 1024,
            idle_timeout: Some(Duration::from_secs(60)),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// The embedded default: data under `data_dir`, region `region`, loopback on a free port.
    pub fn local(data_dir: &Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_owned(),
            region: "region".into(),
            tenants: None,
            root_key_file: None,
            seed: None,
            audit_log: None,
            purge_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
            limits: Limits::default(),
        }
    }
}

/// A running daemon.
///
/// Its background tasks (the server, the purge loop, the audit writer) belong to its task
/// tracker: [`RunningServer::shutdown`] stops them and waits for each. Dropping it without
/// `shutdown` stops serving and purging too, without waiting.
pub struct RunningServer {
    addr: SocketAddr,
    /// Cancelled to stop serving and purging.
    stop: CancellationToken,
    tasks: TaskTracker,
    serve: JoinHandle<Result<(), tonic::transport::Error>>,
    audit: AuditLog,
    health: tonic_health::server::HealthReporter,
    keyring: Arc<Keyring>,
    grace: Duration,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The keyring, for embedders and tests.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Waits until every audit record so far is written.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// Reports NOT_SERVING, stops accepting, lets in-flight calls finish (closing connections
    /// still open after the grace period), stops the purge loop, writes the audit log out, and
    /// waits for every background task to end.
    pub async fn shutdown(mut self) {
        self.health
            .set_not_serving::<KeyManagementServiceServer<KmsGrpc>>()
            .await;
        self.stop.cancel();
        match tokio::time::timeout(self.grace, &mut self.serve).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "connections still open after the grace period; closing them");
                self.serve.abort();
            }
        }
        self.audit.close().await;
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Starts the daemon and returns once it is listening.
pub async fn start(config: Config) -> Result<RunningServer, StartupError> {
    let region = RegionId::parse(&config.region).map_err(|source| StartupError::Flag {
        flag: "--region",
        source,
    })?;
    let auth = match &config.tenants {
        Some(path) => Authenticator::from_file(path, region.clone())?,
        None => {
            if !config.listen.ip().is_loopback() {
                return Err(StartupError::NonLoopbackWithoutTenants(config.listen));
            }
            Authenticator::trusting(region.clone())
        }
    };
    std::fs::create_dir_all(&config.data_dir).map_err(StartupError::io("creating --data-dir"))?;
    let root_path = config
        .root_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("root.key"));
    let root = RootKey::load_or_create(&root_path)?;
    let db = config.data_dir.join("kms.sqlite3");
    let store: Arc<dyn KeyStore> = Arc::new(SqliteStore::open(&db)?);
    let keyring = Arc::new({
        let s = Arc::clone(&store);
        tokio::task::spawn_blocking(move || Keyring::open(s, root)).await??
    });
    if let Some(seed) = &config.seed {
        let n = crate::seed::apply(&keyring, seed, &region).await?;
        tracing::info!(created = n, seed = %seed.display(), "seed file applied");
    }
    let audit_path = config
        .audit_log
        .clone()
        .unwrap_or_else(|| config.data_dir.join("audit.jsonl"));
    let tasks = TaskTracker::new();
    let audit =
        AuditLog::start(&audit_path, &tasks).map_err(StartupError::io("opening the audit log"))?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(StartupError::io("binding --listen"))?;
    let addr = listener
        .local_addr()
        .map_err(StartupError::io("local address"))?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<KeyManagementServiceServer<KmsGrpc>>()
        .await;
    // v1 for current tools; v1alpha for the Python grpcio-reflection client and older grpcurl.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kms_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let grpc = KmsGrpc::new(Arc::clone(&keyring), Arc::new(auth), audit.clone());

    let stop = CancellationToken::new();
    let limits = &config.limits;
    let incoming = crate::listener::incoming(
        listener,
        crate::listener::AcceptOptions {
            max_connections: limits.max_connections,
            idle_timeout: limits.idle_timeout,
            ..crate::listener::AcceptOptions::default()
        },
    );
    let serve = tasks.spawn(
        tonic::transport::Server::builder()
            .max_concurrent_streams(limits.max_concurrent_streams)
            .http2_max_header_list_size(limits.max_header_list_size)
            .http2_keepalive_interval(limits.keepalive_interval)
            .http2_keepalive_timeout(Some(limits.keepalive_timeout))
            .add_service(MarkCalls(health_service))
            .add_service(MarkCalls(reflection_v1))
            .add_service(MarkCalls(reflection_v1alpha))
            .add_service(MarkCalls(CodecRefusals::new(
                KeyManagementServiceServer::new(grpc.clone())
                    .max_decoding_message_size(limits.max_message_size),
                grpc,
            )))
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()),
    );
    tasks.spawn(purge_loop(
        Arc::clone(&keyring),
        config.purge_interval,
        stop.clone(),
    ));
    tracing::info!(
        %addr,
        region = %region,
        data_dir = %config.data_dir.display(),
        tokens_required = config.tenants.is_some(),
        keys = keyring.key_count(),
        "kms-server listening"
    );
    Ok(RunningServer {
        addr,
        stop,
        tasks,
        serve,
        audit,
        health,
        keyring,
        grace: config.shutdown_grace,
    })
}

/// Purges keys past their deletion date every `every`, until `stop` is cancelled.
async fn purge_loop(keyring: Arc<Keyring>, every: Duration, stop: CancellationToken) {
    loop {
        match keyring.purge_expired(now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "purged keys past their deletion date"),
            Err(e) => tracing::error!(error = %e, "purging keys failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Runs the daemon until `shutdown` completes, then shuts it down gracefully.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartupError> {
    let server = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
