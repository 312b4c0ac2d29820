//! The kmsbox key management daemon.
#![forbid(unsafe_code)]
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use kms_server::admin::AdminToken;
use kms_server::audit::{AuditFailure, AuditOptions};
use kms_server::server::{self, ClockConfig, Config, Limits, RunningServer};

/// kmsbox key management daemon: per-tenant, per-region master keys over gRPC, kept in SQLite.
///
/// Without --tenants it trusts the x-kms-domain-id request metadata and listens on loopback only.
/// Without a command it serves; the commands work on a stopped daemon's data folder.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Option<Offline>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "KMS_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Folder for the SQLite database (kms.sqlite3) and, unless --root-key-file says otherwise, the
    /// root key (root.key, created with mode 0600 on first start).
    #[arg(
        long,
        env = "KMS_DATA_DIR",
        default_value = "./kmsbox-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Default region of calls that carry no x-kms-region metadata.
    #[arg(long, env = "KMS_REGION", default_value = "region")]
    region: String,
    /// The key store: a PostgreSQL URL (`postgres://user@host:port/db`) shared by a fleet of
    /// daemons, each given the same root key file; without it, SQLite in the data folder.
    #[arg(long, env = "KMS_STORE", hide_env_values = true)]
    store: Option<String>,
    /// With --store: most connections the daemon opens to PostgreSQL at once, made when needed
    /// (two more are kept: LISTEN/NOTIFY and the refresher's). A store call that finds them all in use waits up to
    /// 10 s for one, then fails with UNAVAILABLE (KMSBOX.0503). Size PostgreSQL's
    /// max_connections for the fleet: daemons x (this + 2).
    #[arg(long, env = "KMS_STORE_POOL_SIZE", default_value_t = kms_server::store::postgres::DEFAULT_POOL_SIZE, value_parser = clap::value_parser!(u16).range(1..=1000))]
    store_pool_size: u16,
    /// This daemon's ID on each audit line in a fleet (`--store`); default a random one made once
    /// and kept in `<data-dir>/daemon-id`.
    #[arg(long, env = "KMS_DAEMON_ID")]
    daemon_id: Option<String>,
    /// TOML file of tenants ([[tenants]] domain_id, token): every call then needs
    /// `authorization: Bearer <token>`, and the domain comes from the token.
    #[arg(long, env = "KMS_TENANTS")]
    tenants: Option<PathBuf>,
    /// File holding the 32-byte root key that wraps all key material (default:
    /// <data-dir>/root.key). Serving creates it if missing; the offline commands (rotate-root-key,
    /// add-store-macs) need it to exist.
    #[arg(long, env = "KMS_ROOT_KEY_FILE", global = true)]
    root_key_file: Option<PathBuf>,
    /// TOML file of keys ([[keys]] domain_id, region, key_id, alias, description, creator,
    /// service, state, deletion_date, created_at, current_version, [[keys.versions]] material) to
    /// create at start-up if they do not exist (FORMATS.md §5); a seed that contradicts the store
    /// stops the start-up.
    #[arg(long, env = "KMS_SEED")]
    seed: Option<PathBuf>,
    /// Audit log file (JSON lines, appended, mode 0600); default <data-dir>/audit.jsonl. SIGHUP
    /// reopens it (logrotate: move the file, then signal).
    #[arg(long, env = "KMS_AUDIT_LOG", global = true)]
    audit_log: Option<PathBuf>,
    /// Rotate the audit log before a line would take it past this many bytes: FILE becomes FILE.1,
    /// FILE.1 becomes FILE.2, ... 0 never rotates (leave it to logrotate and SIGHUP).
    #[arg(long, env = "KMS_AUDIT_MAX_BYTES", default_value_t = 0)]
    audit_max_bytes: u64,
    /// Rotated audit files that --audit-max-bytes keeps (FILE.1 newest ... FILE.N); 0 keeps none.
    #[arg(long, env = "KMS_AUDIT_KEEP", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=1000))]
    audit_keep: u32,
    /// When the audit log cannot be written (disk full, file removed, permissions): `refuse`
    /// refuses every call with UNAVAILABLE (KMSBOX.0503) and reports NOT_SERVING until a write
    /// succeeds again; `continue` serves on, counting and logging the lines it loses.
    #[arg(long, env = "KMS_AUDIT_FAILURE", value_enum, default_value_t = OnAuditFailure::Refuse)]
    audit_failure: OnAuditFailure,
    /// Seconds between purges of keys past their deletion date (and rotations of keys whose
    /// rotation schedule is due).
    #[arg(long, env = "KMS_PURGE_INTERVAL_SECS", default_value_t = 60)]
    purge_interval_secs: u64,
    /// Log format on standard error: `text` for people, `json` (one object per line) for machines.
    /// The level comes from RUST_LOG (default `info`).
    #[arg(long, env = "KMS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds that shutdown (SIGTERM, Ctrl-C) waits for in-flight calls before closing connections.
    #[arg(long, env = "KMS_SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    shutdown_grace_secs: u64,
    /// Start with an empty key store although the root key was already used with one whose key
    /// database is now missing or emptied. Every key of the old store is lost; without this flag
    /// such a start is refused. A flag only (no environment variable), so that it is never left on.
    #[arg(long)]
    start_over_with_empty_store: bool,
    /// Most client connections open at once; accepting waits while this many are open.
    #[arg(long, env = "KMS_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Most concurrent streams (calls) on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "KMS_MAX_CONCURRENT_STREAMS", default_value_t = 256)]
    max_concurrent_streams: u32,
    /// Largest request header list, in bytes (SETTINGS_MAX_HEADER_LIST_SIZE).
    #[arg(long, env = "KMS_MAX_HEADER_LIST_SIZE", default_value_t = 16 * 1024)]
    max_header_list_size: u32,
    /// Largest request message, in bytes; larger ones are refused with KMSBOX.0413.
    #[arg(long, env = "KMS_MAX_MESSAGE_SIZE", default_value_t = 4 * 1024 * 1024)]
    max_message_size: usize,
    /// Seconds after which a connection with no call is closed; 0 keeps idle connections open.
    #[arg(long, env = "KMS_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Seconds between HTTP/2 keep-alive pings that find dead peers; 0 sends none.
    #[arg(long, env = "KMS_KEEPALIVE_INTERVAL_SECS", default_value_t = 30)]
    keepalive_interval_secs: u64,
    /// Seconds a keep-alive ping waits for its answer before the connection is closed.
    #[arg(long, env = "KMS_KEEPALIVE_TIMEOUT_SECS", default_value_t = 10)]
    keepalive_timeout_secs: u64,
    /// Bearer token of the admin API (kms.admin.v1.Admin: faults, the clock), at least 16
    /// characters. Without it the admin API is open when there is no --tenants file (loopback)
    /// and closed when there is one. A tenant's token never opens it.
    #[arg(long, env = "KMS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// TOML file of fault rules to inject from the start ([[faults]] operation, domain_id, region,
    /// key_id, fail/latency/hang, probability, count; optional top-level seed).
    #[arg(long, env = "KMS_FAULTS")]
    faults: Option<PathBuf>,
    /// Seed of the fault rules' random draws (default: the faults file's seed, else 0): the same
    /// seed and rules give the same outcomes.
    #[arg(long, env = "KMS_FAULT_SEED")]
    fault_seed: Option<u64>,
    /// Run on a virtual clock that moves only forward and only through the admin API
    /// (kmsctl admin clock advance 30d), for tests of deletion windows and the like.
    #[arg(long, env = "KMS_VIRTUAL_CLOCK")]
    virtual_clock: bool,
    /// Where the virtual clock starts (RFC 3339, for example 2027-01-01T00:00:00Z); default now.
    #[arg(long, env = "KMS_CLOCK_START", requires = "virtual_clock", value_parser = parse_rfc3339_ms)]
    clock_start: Option<i64>,
}

/// Checks the flags that hold secrets (a store URL's password, the admin token) after clap
/// parsed them as plain text, so that a refusal never echoes the secret as clap would.
fn secrets(
    store: Option<String>,
    admin_token: Option<String>,
) -> (Option<String>, Option<AdminToken>) {
    let refuse = |flag: &str, shown: &str, reason: String| -> ! {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value '{shown}' for '{flag}': {reason}"),
            )
            .exit()
    };
    let store = store.map(|s| {
        parse_store(&s).unwrap_or_else(|e| {
            refuse(
                "--store <STORE>",
                &kms_server::store::postgres::redacted_url(&s),
                e,
            )
        })
    });
    let admin_token = admin_token.map(|t| {
        AdminToken::new(t).unwrap_or_else(|e| refuse("--admin-token <ADMIN_TOKEN>", "<hidden>", e))
    });
    (store, admin_token)
}

/// Milliseconds since the Unix epoch of an RFC 3339 instant.
fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("not an RFC 3339 instant: {e}"))
}

/// The commands on a stopped daemon's data folder (--data-dir, --root-key-file). Each takes the
/// folder's lock, so none runs while a daemon serves it.
#[derive(clap::Subcommand, Debug)]
enum Offline {
    /// Replaces the root key with a new random one (daemon stopped).
    ///
    /// The new key re-wraps every key version and re-MACs every key, in one transaction. The old
    /// key is kept as <root key file>.old until you remove it (backups of the key database from
    /// before need it). Killed at any point, the store is left wholly under the old key or wholly
    /// under the new one; the next start or rotation finds which, and finishes.
    RotateRootKey,
    /// Adds integrity MACs to a key database from before them (daemon stopped).
    ///
    /// Gives every key its record MAC and the store its store MAC, trusting the rows as they are.
    /// Run it once, and only if nobody but kms-server can have changed the database; a database
    /// that already has MACs is refused.
    AddStoreMacs,
}

/// Runs an offline command (which audits itself); the exit status.
fn run_offline(command: &Offline, a: &Args) -> std::process::ExitCode {
    let (data, root) = (a.data_dir.as_path(), a.root_key_file.as_deref());
    let log = a
        .audit_log
        .clone()
        .unwrap_or_else(|| a.data_dir.join("audit.jsonl"));
    let done = match command {
        Offline::RotateRootKey => kms_server::offline::rotate_root_key(data, root, &log).map(|r| {
            format!(
                "rotated the root key of store {}: {} key versions of {} keys re-wrapped. The new \
                 root key is {}; the old one is kept as {}: remove it once no backup of the key \
                 database from before now needs it",
                r.store_id,
                r.versions,
                r.keys,
                r.root_key.display(),
                r.old_root_key.display()
            )
        }),
        Offline::AddStoreMacs => kms_server::offline::add_store_macs(data, root, &log).map(|r| {
            format!(
                "added record MACs to the {} keys of store {}, and its store MAC",
                r.keys, r.store_id
            )
        }),
    };
    match done {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kms-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `None` for 0 seconds.
fn secs(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OnAuditFailure {
    Refuse,
    Continue,
}

/// Reopens the audit log on every SIGHUP, for ever.
#[cfg(unix)]
async fn reopen_audit_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    running: &RunningServer,
) -> std::convert::Infallible {
    loop {
        if hup.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
        tracing::info!("SIGHUP: reopening the audit log");
        running.reopen_audit().await;
    }
}

/// SIGTERM and SIGINT (Ctrl-C), listened for from before start-up, so that neither is lost
/// between the banner and the wait.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut a = Args::parse();
    let (store, admin_token) = secrets(a.store.take(), a.admin_token.take());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match a.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    if let Some(command) = &a.command {
        return run_offline(command, &a);
    }
    let config = Config {
        listen: a.listen,
        data_dir: a.data_dir,
        region: a.region,
        store,
        store_pool_size: usize::from(a.store_pool_size),
        daemon_id: a.daemon_id,
        tenants: a.tenants,
        root_key_file: a.root_key_file,
        seed: a.seed,
        audit_log: a.audit_log,
        audit: AuditOptions {
            max_bytes: a.audit_max_bytes,
            keep: a.audit_keep,
            on_failure: match a.audit_failure {
                OnAuditFailure::Refuse => AuditFailure::Refuse,
                OnAuditFailure::Continue => AuditFailure::Continue,
            },
        },
        purge_interval: Duration::from_secs(a.purge_interval_secs.max(1)),
        shutdown_grace: Duration::from_secs(a.shutdown_grace_secs),
        start_over_with_empty_store: a.start_over_with_empty_store,
        limits: Limits {
            max_connections: a.max_connections.max(1),
            max_concurrent_streams: a.max_concurrent_streams,
            max_header_list_size: a.max_header_list_size,
            max_message_size: a.max_message_size,
            idle_timeout: secs(a.idle_timeout_secs),
            keepalive_interval: secs(a.keepalive_interval_secs),
            keepalive_timeout: Duration::from_secs(a.keepalive_timeout_secs.max(1)),
        },
        admin_token,
        faults: a.faults,
        fault_seed: a.fault_seed,
        clock: if a.virtual_clock {
            ClockConfig::Virtual {
                start_ms: a.clock_start,
            }
        } else {
            ClockConfig::Wall
        },
    };
    let mut signals = match Signals::listen() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kms-server: listening for signals: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let region = config.region.clone();
    let running = match server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kms-server: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Before the banner, so that a SIGHUP right after it reopens the log rather than killing us.
    #[cfg(unix)]
    let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kms-server: installing the SIGHUP handler: {e}");
            running.shutdown().await;
            return std::process::ExitCode::FAILURE;
        }
    };
    // One line on stdout that scripts and tests can wait for.
    println!(
        "kms-server listening on {} (default region {region})",
        running.local_addr()
    );
    let _ = std::io::stdout().flush();
    #[cfg(unix)]
    tokio::select! {
        () = signals.next() => {}
        never = reopen_audit_on_sighup(hup, &running) => match never {},
    }
    #[cfg(not(unix))]
    signals.next().await;
    tracing::info!("shutting down");
    tokio::select! {
        () = running.shutdown() => std::process::ExitCode::SUCCESS,
        () = signals.next() => {
            // A second SIGTERM or Ctrl-C: the operator will not wait out the grace period.
            // Acknowledged calls are on disk already (the store syncs each write); audit
            // records not yet written out may be lost. Exit at once, without running the
            // runtime's shutdown, which would wait for blocking tasks.
            eprintln!("kms-server: second signal during shutdown: exiting now (status 130)");
            std::process::exit(130)
        }
    }
}

/// A `--store` URL: PostgreSQL only (SQLite is the default without the flag). The client has no
/// TLS: a URL that asks for it (`sslmode=require`, `verify-ca`, `verify-full`) is refused here,
/// rather than failing at the first connection.
fn parse_store(s: &str) -> Result<String, String> {
    if !(s.starts_with("postgres://") || s.starts_with("postgresql://")) {
        return Err("expected a PostgreSQL URL, postgres://user@host:port/database".into());
    }
    let query = s.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        if let Some(("sslmode", mode)) = pair.split_once('=')
            && matches!(mode, "require" | "verify-ca" | "verify-full")
        {
            return Err(format!(
                "sslmode={mode}: TLS to PostgreSQL is not supported (the client connects without \
                 TLS); keep the database on a private network or behind a TLS tunnel, and use \
                 sslmode=disable or leave it out"
            ));
        }
    }
    Ok(s.to_owned())
}
