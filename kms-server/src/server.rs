//! Wiring: configuration, start-up, serving, graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kms_proto::key_id::RegionId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{AdminGrpc, AdminToken};
use crate::audit::{AuditFailure, AuditLine, AuditLog, AuditOptions};
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::crypto::RootKey;
use crate::error::StartupError;
use crate::faults::{Faults, FaultsFile};
use crate::grpc::{AdminService, KmsGrpc, KmsService};
use crate::keyring::Keyring;
use crate::listener::MarkCalls;
use crate::store::{KeyStore, PostgresStore, SqliteStore};

/// The key database's file name in the data folder.
pub(crate) const DB_FILE: &str = "kms.sqlite3";

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
    /// The audit log's rotation by size, and what happens when it cannot be written.
    pub audit: AuditOptions,
    /// How often keys past their deletion date are purged and keys due for rotation rotated.
    pub purge_interval: Duration,
    /// How long shutdown waits for in-flight calls and open connections before closing them.
    pub shutdown_grace: Duration,
    /// Start with an empty key store even though the root key was already used with a store
    /// (whose keys are then lost); without it such a start is refused.
    pub start_over_with_empty_store: bool,
    /// Per-connection resource limits.
    pub limits: Limits,
    /// The admin API's bearer token (`kms.admin.v1.Admin`); without it the admin API is open
    /// without a tenants file and closed with one.
    pub admin_token: Option<AdminToken>,
    /// Fault rules to start with (TOML, see [`crate::faults`]).
    pub faults: Option<PathBuf>,
    /// The seed of the fault rules' generators; default the faults file's `seed`, else 0.
    pub fault_seed: Option<u64>,
    /// The daemon's clock.
    pub clock: ClockConfig,
    /// A shared PostgreSQL store (`postgres://...`) instead of the SQLite database in the data
    /// folder: the store of a fleet of daemons, each given the same root key file.
    pub store: Option<String>,
    /// With `store`: most connections open to PostgreSQL at once (besides one for `LISTEN`).
    pub store_pool_size: usize,
    /// The daemon's ID on each audit line in a fleet; default the one kept in
    /// `<data-dir>/daemon-id`, made once.
    pub daemon_id: Option<String>,
}

/// Which clock the daemon reads time through ([`crate::clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockConfig {
    /// The wall clock.
    #[default]
    Wall,
    /// A virtual clock, moved only by the admin API, starting at the given instant
    /// (milliseconds since the Unix epoch) or, for `None`, at the wall clock's time.
    Virtual {
        /// The start, `None` for now.
        start_ms: Option<i64>,
    },
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
            audit: AuditOptions::default(),
            purge_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
            start_over_with_empty_store: false,
            limits: Limits::default(),
            admin_token: None,
            faults: None,
            fault_seed: None,
            clock: ClockConfig::Wall,
            store: None,
            store_pool_size: usize::from(crate::store::postgres::DEFAULT_POOL_SIZE),
            daemon_id: None,
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
    /// Follows the audit log's state into the health service (refuse mode).
    audit_health: Option<(CancellationToken, JoinHandle<()>)>,
    health: tonic_health::server::HealthReporter,
    keyring: Arc<Keyring>,
    faults: Arc<Faults>,
    grace: Duration,
    /// The data folder's lock (`kms.lock`), held until the server is dropped.
    _lock: std::fs::File,
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

    /// The fault rules, for embedders and tests (the admin API edits the same ones).
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// The daemon's clock.
    pub fn clock(&self) -> &Arc<Clock> {
        self.keyring.clock()
    }

    /// Waits until every audit record so far is written (or its write has failed).
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// Reopens the audit log's path, after writing what is queued to the file open until now
    /// (SIGHUP, for logrotate).
    pub async fn reopen_audit(&self) {
        self.audit.reopen().await;
    }

    /// Audit lines dropped because they could not be written, since start.
    pub fn audit_lines_lost(&self) -> u64 {
        self.audit.lines_lost()
    }

    /// Reports NOT_SERVING, stops accepting, lets in-flight calls finish (closing connections
    /// still open after the grace period), stops the purge loop, writes the audit log out, and
    /// waits for every background task to end.
    pub async fn shutdown(mut self) {
        if let Some((stop, task)) = self.audit_health.take() {
            stop.cancel();
            let _ = task.await;
        }
        self.health.set_not_serving::<KmsService>().await;
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
    create_private_dir(&config.data_dir)?;
    let lock = lock_data_dir(&config.data_dir)?;
    let root_path = config
        .root_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("root.key"));
    let fault_file = config.faults.as_deref().map(FaultsFile::load).transpose()?;
    let clock = Arc::new(match config.clock {
        ClockConfig::Wall => Clock::wall(),
        ClockConfig::Virtual { start_ms } => {
            Clock::virtual_at(start_ms.unwrap_or_else(crate::clock::wall_ms))
        }
    });
    let root_is_new = !root_path.exists();
    let root = RootKey::load_or_create(&root_path)?;
    let audit_path = config
        .audit_log
        .clone()
        .unwrap_or_else(|| config.data_dir.join("audit.jsonl"));
    let (store, root, shared): (Arc<dyn KeyStore>, RootKey, Option<Arc<PostgresStore>>) =
        match &config.store {
            Some(url) => {
                let pg =
                    Arc::new(crate::fleet::open_store(url, &root, config.store_pool_size).await?);
                (Arc::clone(&pg) as Arc<dyn KeyStore>, root, Some(pg))
            }
            None => {
                let (s, root) = open_sqlite(&config, root_is_new, &root_path, &audit_path, root)?;
                (s, root, None)
            }
        };
    let keyring = Arc::new(
        {
            let s = Arc::clone(&store);
            tokio::task::spawn_blocking(move || Keyring::open(s, root)).await??
        }
        .with_clock(Arc::clone(&clock)),
    );
    let tasks = TaskTracker::new();
    let audit = AuditLog::start(&audit_path, &config.audit, &tasks)
        .map_err(StartupError::io("opening the audit log"))?
        .with_clock(Arc::clone(&clock))
        .with_daemon_id(match (&config.daemon_id, &config.store) {
            (Some(id), _) => Some(Arc::from(id.as_str())),
            (None, Some(_)) => Some(crate::fleet::daemon_id(&config.data_dir)?),
            (None, None) => None,
        });
    if let Some(seed) = &config.seed {
        let created = crate::seed::apply(&keyring, seed, &region).await?;
        // Like every key-lifecycle line, each is on disk before the daemon serves.
        for key in &created {
            let key_id = key.full_id_string();
            let request_id = crate::auth::request_id(&tonic::metadata::MetadataMap::new());
            let line = AuditLine {
                time_ms: crate::clock::wall_ms(),
                domain: key.domain.as_str(),
                region: key.region.as_str(),
                operation: "SeedKey",
                key_id: &key_id,
                outcome: "ok",
                request_id: &request_id,
                injected: None,
            };
            if audit.record_durable(line).await.is_err() {
                return Err(StartupError::io("writing the audit log")(
                    std::io::Error::other("the seeded keys' lines cannot be written"),
                ));
            }
        }
        tracing::info!(created = created.len(), seed = %seed.display(), "seed file applied");
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(StartupError::io("binding --listen"))?;
    let addr = listener
        .local_addr()
        .map_err(StartupError::io("local address"))?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<KmsService>().await;
    let audit_writable =
        (config.audit.on_failure == AuditFailure::Refuse).then(|| audit.writable());
    // In a fleet, whether the shared store can be reached ([`crate::fleet::follow`]).
    let (store_up_tx, store_up) = tokio::sync::watch::channel(true);
    let store_up = shared.is_some().then_some(store_up);
    let audit_health = (audit_writable.is_some() || store_up.is_some()).then(|| {
        let stop = CancellationToken::new();
        let task = tasks.spawn(follow_audit(
            audit_writable,
            store_up,
            health.clone(),
            stop.clone(),
        ));
        (stop, task)
    });
    // v1 for current tools; v1alpha for the Python grpcio-reflection client and older grpcurl.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kms_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let stop = CancellationToken::new();
    let (file_seed, rules) = fault_file.unwrap_or_default();
    let faults = Arc::new(Faults::new(
        config.fault_seed.or(file_seed).unwrap_or(0),
        stop.clone(),
    ));
    for rule in rules {
        faults.add(rule).map_err(|e| {
            StartupError::Config(crate::error::ConfigError::Invalid {
                what: "faults file",
                path: config.faults.clone().unwrap_or_default(),
                reason: e.0,
            })
        })?;
    }
    let auth = Arc::new(auth);
    let grpc = KmsGrpc::new(Arc::clone(&keyring), Arc::clone(&auth), audit.clone())
        .with_faults(Arc::clone(&faults));
    let admin = AdminGrpc::new(
        Arc::clone(&keyring),
        Arc::clone(&auth),
        config.admin_token.as_ref(),
        Arc::clone(&faults),
        audit.clone(),
    );

    let limits = &config.limits;
    let incoming = crate::listener::incoming(
        listener,
        crate::listener::AcceptOptions {
            max_connections: limits.max_connections,
            idle_timeout: limits.idle_timeout,
            ..crate::listener::AcceptOptions::default()
        },
    );
    let grpc_routes = tonic::service::Routes::new(MarkCalls(health_service))
        .add_service(MarkCalls(reflection_v1))
        .add_service(MarkCalls(reflection_v1alpha))
        .add_service(MarkCalls(AdminService::new(admin, limits.max_message_size)))
        .add_service(MarkCalls(KmsService::new(grpc, limits.max_message_size)));
    let api = crate::http::ApiState {
        keyring: Arc::clone(&keyring),
        auth: Arc::clone(&auth),
        audit: audit.clone(),
        faults: Arc::clone(&faults),
    };
    let serve = tasks.spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .max_concurrent_streams(limits.max_concurrent_streams)
            .http2_max_header_list_size(limits.max_header_list_size)
            .http2_keepalive_interval(limits.keepalive_interval)
            .http2_keepalive_timeout(Some(limits.keepalive_timeout))
            .layer(crate::http::ApiFront::new(&api))
            .add_routes(crate::http::join(grpc_routes))
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()),
    );
    if let Some(pg) = shared {
        crate::fleet::follow(pg, Arc::clone(&keyring), store_up_tx, &tasks, stop.clone());
    }
    tasks.spawn(purge_loop(
        Arc::clone(&keyring),
        audit.clone(),
        config.purge_interval,
        stop.clone(),
    ));
    tracing::info!(
        %addr,
        region = %region,
        data_dir = %config.data_dir.display(),
        tokens_required = config.tenants.is_some(),
        virtual_clock = keyring.clock().is_virtual(),
        fault_rules = faults.list().len(),
        keys = keyring.key_count(),
        "kms-server listening"
    );
    Ok(RunningServer {
        addr,
        stop,
        tasks,
        serve,
        audit,
        audit_health,
        health,
        keyring,
        faults,
        grace: config.shutdown_grace,
        _lock: lock,
    })
}

/// The embedded store: the SQLite database in the data folder, checked against the root key and
/// its marker; returns the root key to use (the new one when a root key rotation was interrupted).
fn open_sqlite(
    config: &Config,
    root_is_new: bool,
    root_path: &Path,
    audit_path: &Path,
    root: RootKey,
) -> Result<(Arc<dyn KeyStore>, RootKey), StartupError> {
    let db = config.data_dir.join(DB_FILE);
    // A missing or empty database next to a used root key is refused before SQLite creates one.
    if !root_is_new
        && !config.start_over_with_empty_store
        && std::fs::metadata(&db).map_or(true, |m| m.len() == 0)
        && let Some(m) = read_store_marker(&store_marker_path(root_path))?
    {
        return Err(missing_store(root_path, &db, m, "is missing or empty"));
    }
    let sqlite = SqliteStore::open(&db)?;
    // A `kms-server rotate-root-key` killed after its commit leaves the new key in `<root>.new`.
    let root = match sqlite.identity()? {
        Some(id) => crate::offline::finish_interrupted_rotation(
            root_path,
            &id.root_check,
            root,
            audit_path,
        )?,
        None => root,
    };
    check_store_identity(
        &sqlite,
        &root,
        &StorePaths {
            db: &db,
            root: root_path,
            root_is_new,
        },
        config.start_over_with_empty_store,
    )?;
    Ok((Arc::new(sqlite), root))
}

/// Reports NOT_SERVING while the audit log cannot be written (`--audit-failure=refuse`) or, in a
/// fleet, the shared store cannot be reached; SERVING again once every one of them (the ones
/// given) is fine, until `stop` is cancelled.
async fn follow_audit(
    writable: Option<tokio::sync::watch::Receiver<bool>>,
    store_up: Option<tokio::sync::watch::Receiver<bool>>,
    health: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    // What is not followed stays fine; its sender lives as long as this task, so that its
    // receiver never reports a closed channel.
    let (_always, fine) = tokio::sync::watch::channel(true);
    let mut writable = writable.unwrap_or_else(|| fine.clone());
    let mut store_up = store_up.unwrap_or(fine);
    // The state at start counts too (a log that failed before this task ran).
    writable.mark_changed();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = writable.changed() => if r.is_err() { return },
            r = store_up.changed() => if r.is_err() { return },
        }
        if *writable.borrow_and_update() && *store_up.borrow_and_update() {
            health.set_serving::<KmsService>().await;
        } else {
            health.set_not_serving::<KmsService>().await;
        }
    }
}

/// Creates the data folder (and any missing parent) with mode 0700; warns when an existing one is
/// open to group or others.
fn create_private_dir(dir: &Path) -> Result<(), StartupError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(StartupError::io("creating --data-dir"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(StartupError::io("reading --data-dir"))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            tracing::warn!(data_dir = %dir.display(), mode = %format!("{mode:04o}"), "the data folder is open to group or others; 0700 is advised");
        }
    }
    Ok(())
}

/// Where the key database and the root key are, for [`check_store_identity`].
pub(crate) struct StorePaths<'a> {
    pub(crate) db: &'a Path,
    pub(crate) root: &'a Path,
    /// The root key file was created by this start.
    pub(crate) root_is_new: bool,
}

/// The marker next to the root key that names the store it was used with:
/// `<root key file>.store-id`.
fn store_marker_path(root: &Path) -> PathBuf {
    let mut name = root.as_os_str().to_owned();
    name.push(".store-id");
    PathBuf::from(name)
}

/// Makes sure the key database and the root key belong together.
///
/// The database keeps its store ID and the root key's check value; next to the root key a marker
/// names the store the key was used with. A database whose check value is another root key's, or
/// whose store ID is not the marker's, is refused; so is a missing or emptied database next to a
/// root key that was already used with a store, unless `start_over` says to begin with an empty
/// store (whose new ID then replaces the marker's).
pub(crate) fn check_store_identity(
    store: &SqliteStore,
    root: &RootKey,
    paths: &StorePaths<'_>,
    start_over: bool,
) -> Result<(), StartupError> {
    let check = root.store_check_value()?.to_vec();
    let marker_path = store_marker_path(paths.root);
    let marker = read_store_marker(&marker_path)?;
    // A marker left by a root key file that is gone says nothing of this new key.
    let marker = marker.filter(|_| !paths.root_is_new);
    let (db, rk) = (paths.db.display(), paths.root.display());
    match store.identity()? {
        Some(id) => {
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                id.root_check.as_slice(),
                check.as_slice(),
            )) {
                return Err(StartupError::StoreIdentity(format!(
                    "key database {db} (store {}) was made with another root key than {rk}: its keys \
                     cannot be used with this one; restore the root key that goes with it",
                    id.store_id
                )));
            }
            match marker {
                Some(m) if m != id.store_id => {
                    return Err(StartupError::StoreIdentity(format!(
                        "key database {db} is store {}, but root key {rk} was last used with store \
                         {m}: the database was replaced by another store's; restore store {m}'s \
                         database",
                        id.store_id
                    )));
                }
                Some(_) => {}
                None => write_store_marker(&marker_path, id.store_id)?,
            }
            tracing::info!(store_id = %id.store_id, "key store identity checked");
        }
        None => {
            let keys = store.key_count()?;
            if let Some(m) = marker {
                if !start_over {
                    return Err(missing_store(
                        paths.root,
                        paths.db,
                        m,
                        &format!(
                            "holds no store ID ({keys} keys): emptied, or from before store IDs"
                        ),
                    ));
                }
                tracing::warn!(old_store_id = %m, "starting over with an empty key store as asked: the keys of the old store are lost");
            }
            let id = crate::store::StoreIdentity {
                store_id: uuid::Uuid::new_v4(),
                root_check: check,
            };
            store.set_identity(&id)?;
            write_store_marker(&marker_path, id.store_id)?;
            tracing::info!(store_id = %id.store_id, keys, "key store identity written");
        }
    }
    Ok(())
}

/// The store ID in the marker at `path`, `None` when there is no marker.
fn read_store_marker(path: &Path) -> Result<Option<uuid::Uuid>, StartupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            StartupError::StoreIdentity(format!(
                "store marker {} does not hold a store ID",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StartupError::io("reading the root key's store marker")(e)),
    }
}

/// The refusal of a start that would lose every key of store `was`.
fn missing_store(root: &Path, db: &Path, was: uuid::Uuid, what: &str) -> StartupError {
    StartupError::StoreIdentity(format!(
        "root key {} was used with store {was}, but key database {} {what}: starting would lose \
         every key of store {was}. Restore its database, or start over with an empty store with \
         --start-over-with-empty-store",
        root.display(),
        db.display()
    ))
}

/// Writes the store marker (mode 0600) through a temporary file and a rename, so that it is
/// never half written.
fn write_store_marker(path: &Path, store_id: uuid::Uuid) -> Result<(), StartupError> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        writeln!(f, "{store_id}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    match write() {
        Ok(()) => Ok(()),
        // A root key kept in a read-only place: the store still checks the root key, only a
        // deleted database goes unnoticed.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            tracing::warn!(marker = %path.display(), error = %e, "cannot write the root key's store marker: a missing or emptied key database will not be noticed");
            Ok(())
        }
        Err(e) => Err(StartupError::io("writing the root key's store marker")(e)),
    }
}

/// Takes the data folder's exclusive lock (`<data-dir>/kms.lock`, mode 0600) for the life of the
/// daemon and writes this process's PID into it; refuses when another daemon holds it. The lock
/// is the OS's (`flock`), so it goes with the process however it ends, and a stale file left by
/// a killed daemon does not block the next one.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<std::fs::File, StartupError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("kms.lock");
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&path)
        .map_err(StartupError::io("opening the data folder's lock file"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let pid = file
                .read_to_string(&mut holder)
                .ok()
                .map(|_| holder.trim().to_owned())
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            return Err(StartupError::DataDirInUse {
                dir: dir.to_owned(),
                lock: path,
                pid,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StartupError::io("locking the data folder")(e));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .map_err(StartupError::io("writing the data folder's lock file"))?;
    Ok(file)
}

/// Runs the work that falls due with time (the purge of keys past their deletion date, automatic
/// rotations) every `every`, until `stop` is cancelled.
async fn purge_loop(
    keyring: Arc<Keyring>,
    audit: AuditLog,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        match keyring.run_due(keyring.clock().now_ms()).await {
            Ok(due) => {
                if due.purged > 0 {
                    tracing::info!(deleted = due.purged, "purged keys past their deletion date");
                }
                audit
                    .record_scheduled_rotations(&due.rotated, crate::keyring::now_ms())
                    .await;
            }
            Err(e) => tracing::error!(error = %e, "purging or rotating keys failed"),
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
