//! Wiring: the credentials, the store, the daemon channel, and the accept loop.
//!
//! Connections are accepted by `kms_server::listener::incoming`, the workspace's one accept path
//! (every socket gets `TCP_NODELAY` and TCP keep-alive; running out of descriptors backs off; a
//! connection cap). Its idle timer is off here: it counts gRPC calls, and an HTTP/1 connection
//! streaming a large body has no call to count. The channel to the daemon sets `TCP_NODELAY` too.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use kms_proto::key_id::RegionId;
use kms_server::listener::{AcceptOptions, incoming};
use obs_adapter::{AdapterConfig, GrpcKeyService, KeyPolicy, ObsAdapter};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::clock::{AdminToken, Clock};
use crate::credentials::{Credentials, CredentialsError};
use crate::handler::{Gateway, handle};
use crate::store::{Store, StoreError};

/// How long a connection may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The gateway's settings (the binary's flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The daemon's gRPC endpoint.
    pub kms_endpoint: String,
    /// The region of buckets.
    pub region: String,
    /// The credentials file; `None`: `<data-dir>/credentials.toml`, created on first start,
    /// and loopback only.
    pub credentials: Option<PathBuf>,
    /// The adapter's switch: admit customer-created keys.
    pub allow_customer_keys: bool,
    /// Virtual-hosted style suffix.
    pub host_suffix: String,
    /// Follow the daemon's clock (its admin API) instead of the wall clock: for tests that move
    /// a virtual clock and see objects expire.
    pub kms_clock: bool,
    /// The daemon's admin token, for `kms_clock` against a daemon whose admin API asks for one.
    pub kms_admin_token: Option<AdminToken>,
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The credentials file.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The data folder.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A flag's value.
    #[error("{0}")]
    Config(String),
    /// Binding or serving.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the gateway until `shutdown` completes, then finishes the requests in flight.
/// `on_listening` is called once with the bound address.
pub async fn run(
    config: Config,
    on_listening: impl FnOnce(SocketAddr, Option<&str>, &std::path::Path),
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let region = RegionId::parse(&config.region)
        .map_err(|e| StartError::Config(format!("--region: {e}")))?;
    std::fs::create_dir_all(&config.data_dir)?;
    let (credentials, created, cred_path) = match &config.credentials {
        Some(p) => (Credentials::load(p)?, None, p.clone()),
        None => {
            if !config.listen.ip().is_loopback() {
                return Err(StartError::Config(
                    "without --credentials the gateway uses a generated default key and listens on loopback only: pass --credentials FILE to listen on another address".into(),
                ));
            }
            let p = config.data_dir.join("credentials.toml");
            let (c, created) = Credentials::load_or_create(&p)?;
            (c, created, p)
        }
    };
    let store = Store::open(&config.data_dir)?;
    let endpoint = tonic::transport::Endpoint::from_shared(config.kms_endpoint.clone())
        .map_err(|e| StartError::Config(format!("--kms-endpoint: {e}")))?
        .tcp_nodelay(true);
    let channel = endpoint.connect_lazy();
    let clock = if config.kms_clock {
        Clock::daemon(channel.clone(), config.kms_admin_token.as_ref())
            .map_err(|e| StartError::Config(format!("--kms-admin-token: {e}")))?
    } else {
        Clock::Wall
    };
    let mut kms = GrpcKeyService::new(channel);
    for c in credentials.iter() {
        if let Some(token) = &c.kms_token {
            kms = kms.with_token(c.domain.clone(), token.as_str());
        }
    }
    let key_policy = if config.allow_customer_keys {
        KeyPolicy::AllowCustomerKeys
    } else {
        KeyPolicy::ServiceKeysOnly
    };
    let tasks = TaskTracker::new();
    let gw = Arc::new(Gateway {
        store,
        credentials,
        adapter: ObsAdapter::with_config(kms, AdapterConfig { key_policy }),
        region,
        host_suffix: config.host_suffix.clone(),
        tasks: tasks.clone(),
        clock,
    });
    let listener = TcpListener::bind(config.listen).await?;
    on_listening(listener.local_addr()?, created.as_deref(), &cred_path);
    let options = AcceptOptions {
        idle_timeout: None,
        ..AcceptOptions::default()
    };
    let mut accepted = Box::pin(incoming(listener, options));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = accepted.next() => c,
            () = &mut shutdown => break,
        };
        let Some(conn) = conn else { break };
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "accept");
                continue;
            }
        };
        let gw = Arc::clone(&gw);
        let service = service_fn(move |req| {
            let gw = Arc::clone(&gw);
            async move { Ok::<_, Infallible>(handle(gw, req).await) }
        });
        // A client must send a request's headers within HEADER_READ_TIMEOUT (slow-header
        // clients would otherwise hold one of the capped connections forever).
        let http = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(conn), service);
        let watched = graceful.watch(http);
        tasks.spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(accepted);
    graceful.shutdown().await;
    tasks.close();
    tasks.wait().await;
    Ok(())
}
