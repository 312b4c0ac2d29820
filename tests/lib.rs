//! Shared harness for the integration tests: a real daemon on an ephemeral loopback port with a
//! temporary data folder, and clients that speak for one tenant; [`process`] runs the real
//! binaries as child processes.
#![forbid(unsafe_code)]

pub mod debian;
pub mod http1;
pub mod mutations;
pub mod postgres;
pub mod process;
pub mod python;
pub mod tmpfs;

use std::path::{Path, PathBuf};

use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use kms_proto::v1::{DescribeKeyRequest, KeyMetadata};
use kms_proto::{ErrorCode, Tenancy};
use kms_server::server::{Config, RunningServer, start};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The key store the integration tests' daemons run on: SQLite, or, with
/// `KMSBOX_TEST_STORE=postgres`, a throwaway PostgreSQL server of their own
/// ([`postgres::PgServer`]). `tests/store_matrix.rs` runs the integration tests again so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreUnderTest {
    /// The embedded default.
    Sqlite,
    /// A fleet's store, one server per daemon.
    Postgres,
}

impl StoreUnderTest {
    /// The environment variable that selects it.
    pub const VAR: &'static str = "KMSBOX_TEST_STORE";

    /// The store `KMSBOX_TEST_STORE` names (`sqlite`, the default, or `postgres`).
    ///
    /// # Panics
    /// On any other value: a typo must not quietly test SQLite.
    pub fn from_env() -> Self {
        match std::env::var(Self::VAR).as_deref() {
            Err(_) | Ok("" | "sqlite") => Self::Sqlite,
            Ok("postgres") => Self::Postgres,
            Ok(other) => panic!("{}={other:?}: expected sqlite or postgres", Self::VAR),
        }
    }
}

/// A daemon started in this process.
pub struct TestDaemon {
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
    config: Config,
    /// The daemon's PostgreSQL server, when the tests run on PostgreSQL; stopped after the daemon.
    _pg: Option<postgres::PgServer>,
}

impl TestDaemon {
    /// Starts a daemon with the embedded defaults in a fresh temporary folder.
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// Starts a daemon after `adjust` has changed its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config, &Path)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::local(&dir.path().join("data"));
        adjust(&mut config, dir.path());
        let pg = if StoreUnderTest::from_env() == StoreUnderTest::Postgres && config.store.is_none()
        {
            let pg = tokio::task::spawn_blocking(postgres::PgServer::start)
                .await
                .expect("PostgreSQL starts");
            config.store = Some(pg.url());
            Some(pg)
        } else {
            None
        };
        let server = start(config.clone()).await.expect("daemon starts");
        Self {
            server: Some(server),
            dir,
            config,
            _pg: pg,
        }
    }

    /// The running server.
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("running")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server().local_addr())
    }

    /// The temporary folder (the data folder is `data/` inside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Shuts the daemon down gracefully and keeps its folder (`restart` starts it again).
    pub async fn shut_down(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Shuts the daemon down gracefully and starts it again on the same data (a new port).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.server = Some(start(self.config.clone()).await.expect("daemon restarts"));
    }

    /// Moves the daemon's virtual clock on by `days` through the admin API (`AdvanceClock`);
    /// what it purged and rotated on the way.
    pub async fn advance_clock_days(&self, days: i64) -> kms_proto::admin::ClockResponse {
        let mut admin = kms_proto::admin::admin_client::AdminClient::connect(self.endpoint())
            .await
            .expect("connects");
        admin
            .advance_clock(kms_proto::admin::AdvanceClockRequest {
                by: Some(prost_types::Duration {
                    seconds: days * 86_400,
                    nanos: 0,
                }),
            })
            .await
            .expect("AdvanceClock")
            .into_inner()
    }

    /// A client for `domain` in the daemon's default region.
    pub async fn tenant(&self, domain: &str) -> Tenant {
        Tenant::connect(&self.endpoint(), domain, None, None).await
    }

    /// Stops the daemon gracefully.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A client that speaks for one tenant (and optionally one region and bearer token).
#[derive(Clone)]
pub struct Tenant {
    /// The raw gRPC client.
    pub client: KeyManagementServiceClient<Channel>,
    tenancy: Tenancy,
}

impl Tenant {
    /// Connects to `endpoint`. An empty `domain` sends no `x-kms-domain-id`.
    pub async fn connect(
        endpoint: &str,
        domain: &str,
        region: Option<&str>,
        token: Option<&str>,
    ) -> Self {
        let client = KeyManagementServiceClient::connect(endpoint.to_owned())
            .await
            .expect("connects");
        let mut tenancy = if domain.is_empty() {
            Tenancy::none()
        } else {
            Tenancy::for_domain(domain).expect("domain is metadata")
        };
        if let Some(r) = region {
            tenancy = tenancy.with_region(r).expect("region is metadata");
        }
        if let Some(t) = token {
            tenancy = tenancy.with_token(t).expect("token is metadata");
        }
        Self { client, tenancy }
    }

    /// The same connection, speaking for another region.
    pub fn in_region(&self, region: &str) -> Self {
        Self {
            client: self.client.clone(),
            tenancy: self
                .tenancy
                .clone()
                .with_region(region)
                .expect("region is metadata"),
        }
    }

    /// Wraps a message with this tenant's metadata.
    pub fn req<T>(&self, msg: T) -> Request<T> {
        self.tenancy.request(msg)
    }

    /// `DescribeKey` of `key_id`: the key's metadata, or the call's refusal.
    pub async fn describe(&self, key_id: &str) -> Result<KeyMetadata, Status> {
        self.client
            .clone()
            .describe_key(self.req(DescribeKeyRequest {
                key_id: key_id.into(),
            }))
            .await
            .map(|r| r.into_inner().metadata.expect("metadata"))
    }
}

/// The `x-kms-error-code` of a status, when it carries a code of the table.
pub fn error_code(s: &Status) -> Option<ErrorCode> {
    ErrorCode::of_status(s)
}

/// Asserts that a call failed with the given gRPC code and error code, and that its message
/// contains `needle`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    r: Result<T, Status>,
    code: Code,
    kms_code: ErrorCode,
    needle: &str,
) {
    let s = r.expect_err("the call must fail");
    assert_eq!(s.code(), code, "gRPC code; message: {}", s.message());
    assert_eq!(
        error_code(&s),
        Some(kms_code),
        "error code; message: {}",
        s.message()
    );
    assert!(
        s.message().contains(needle),
        "message {:?} must contain {needle:?}",
        s.message()
    );
}
