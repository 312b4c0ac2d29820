//! A fleet: N daemons over one PostgreSQL store (`--store postgres://...`).
//!
//! [`open_store`] connects (migrating under the fleet's advisory lock) with the MAC computations
//! of [`crate::integrity`] under this daemon's root key. [`follow`] keeps the keyring's cache
//! within [`STALENESS_BOUND`] of the store: a blocking task `LISTEN`s for the writes of every
//! daemon and wakes the refresher, which also checks the store's change counter every
//! [`POLL_INTERVAL`], the fallback for a missed notification or a dropped connection. While the
//! store cannot be reached the daemon reports NOT_SERVING on health, serves data-path calls on
//! cached keys for at most [`STALENESS_BOUND`] after the store last answered (then refuses them
//! too, `KMSBOX.0503`, as it refuses at once what needs the store), and serves again once it can.

use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::crypto::RootKey;
use crate::error::StartupError;
use crate::integrity;
use crate::keyring::Keyring;
use crate::store::postgres::Macs;
use crate::store::{PostgresStore, StoreError};

/// How long a change acknowledged by one daemon may go unseen by another that can reach the
/// store: the refresher runs at least this often.
pub const STALENESS_BOUND: Duration = Duration::from_secs(1);

/// The period of the change-counter check, well inside [`STALENESS_BOUND`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The daemon's ID in the fleet, for its audit lines: the one kept in `<data_dir>/daemon-id`, or a
/// new random one written there (mode 0600), so that it survives restarts.
pub fn daemon_id(data_dir: &std::path::Path) -> Result<Arc<str>, StartupError> {
    let path = data_dir.join("daemon-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(Arc::from(s.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StartupError::io("reading the daemon ID")(e)),
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(StartupError::io("writing the daemon ID"))?;
        writeln!(f, "{id}").map_err(StartupError::io("writing the daemon ID"))?;
    }
    Ok(Arc::from(id))
}

/// Opens the fleet's PostgreSQL store at `url` for a daemon holding `root`, with at most
/// `pool_size` connections open at once (besides the refresher's `LISTEN` connection and its own
/// connection for reading the store).
pub async fn open_store(
    url: &str,
    root: &RootKey,
    pool_size: usize,
) -> Result<PostgresStore, StartupError> {
    let check = root.store_check_value()?.to_vec();
    let record_root = root.duplicate();
    let store_root = root.duplicate();
    let macs = Macs {
        check_record: Box::new(move |rec| integrity::check_record(&record_root, rec).is_ok()),
        store_mac: Box::new(move |id, keys| {
            integrity::store_mac(&store_root, id, keys.iter().map(|(u, m)| (*u, m)))
                .map_err(|e| StoreError::Backend(e.to_string().into()))
        }),
    };
    let url = url.to_owned();
    let store =
        tokio::task::spawn_blocking(move || PostgresStore::open(&url, &check, macs, pool_size))
            .await
            .map_err(|e| {
                StartupError::io("opening the PostgreSQL store")(std::io::Error::other(e))
            })?
            .map_err(crate::error::KmsError::from)?;
    Ok(store)
}

/// Keeps `keyring` in step with the other daemons of the fleet until `stop`, reporting whether the
/// store can be reached on `reachable_tx` (health follows it, with the audit log's state).
pub fn follow(
    store: Arc<PostgresStore>,
    keyring: Arc<Keyring>,
    reachable_tx: tokio::sync::watch::Sender<bool>,
    tasks: &TaskTracker,
    stop: CancellationToken,
) {
    let wake = Arc::new(Notify::new());
    {
        let (wake, stop) = (Arc::clone(&wake), stop.clone());
        tasks.spawn_blocking(move || listen(&store, &wake, &stop));
    }
    tasks.spawn(async move {
        let mut reachable = true;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            match keyring.refresh().await {
                Ok(_) if !reachable => {
                    reachable = true;
                    tracing::info!("the PostgreSQL store is reachable again");
                    reachable_tx.send_replace(true);
                }
                Ok(_) => {}
                Err(e) => {
                    if reachable {
                        tracing::error!(error = %e, "cannot refresh from the PostgreSQL store");
                        reachable_tx.send_replace(false);
                    }
                    reachable = false;
                }
            }
        }
    });
}

/// `LISTEN`s on the store's channel and wakes the refresher on every notification, reconnecting
/// after a failure, until `stop`.
fn listen(store: &PostgresStore, wake: &Notify, stop: &CancellationToken) {
    while !stop.is_cancelled() {
        let mut client = match store.listener() {
            Ok(c) => c,
            Err(_) => {
                std::thread::sleep(POLL_INTERVAL);
                continue;
            }
        };
        while !stop.is_cancelled() && !client.is_closed() {
            let mut n = client.notifications();
            let mut it = n.timeout_iter(POLL_INTERVAL);
            match it.next() {
                Ok(Some(_)) => wake.notify_one(),
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}
