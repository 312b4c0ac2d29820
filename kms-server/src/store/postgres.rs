//! The PostgreSQL key store: one database shared by a fleet of daemons (`--store postgres://...`).
//!
//! The driver is the synchronous `postgres` crate: the [`KeyStore`] trait is synchronous and
//! called through `spawn_blocking`, exactly like SQLite, so a blocking client fits it without a
//! second async seam; its `notifications()` carries `LISTEN/NOTIFY` for the cache refresher. A
//! small pool of connections is kept, made lazily, so that a daemon that lost the database
//! reconnects by itself on the next call once it is back.
//!
//! Schema: versioned migrations (`MIGRATIONS`), applied at start-up under a session advisory lock
//! so that N daemons starting at once migrate once. Uniqueness is the database's: the primary key,
//! a unique index on (domain, region, alias) for non-empty aliases, and one on (domain, region,
//! service) for default keys, which `INSERT ... ON CONFLICT DO NOTHING` relies on.
//!
//! Integrity (FORMATS.md §3, SECURITY.md): several daemons write, so no daemon's cache is the
//! store's content, and the store MAC a daemon computes from its own cache would be wrong after
//! another daemon's write. Here every write transaction first locks the one meta row
//! (`SELECT ... FOR UPDATE`, serialising writers), makes its change, checks the written key's
//! record MAC against the row as it now stands (a daemon writing from a stale cache is refused
//! with [`StoreError::Stale`] and nothing is written), then recomputes the store MAC from the
//! rows it sees and stores it with a bumped change counter, and `NOTIFY`s the fleet. The
//! `store_mac` the keyring passes is therefore not used. The MAC computations are the keyring's
//! ([`crate::integrity`]), handed in as [`Macs`]: the database never sees the root key.

use std::sync::{Condvar, Mutex};

use kms_proto::key_id::{DomainId, RegionId};
use postgres::{Client, NoTls, Row, Transaction};
use uuid::Uuid;

use super::{
    Attributes, Conflict, Creator, KeyPolicy, KeyRecord, KeyState, KeyStore, Mac, Rotation,
    StoreError, WrappedVersion,
};

/// The channel every write notifies, with the new change counter as its payload.
pub const CHANNEL: &str = "kmsbox_keys";

/// The advisory lock key that serialises migrations across the fleet ("kmsbox" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b6d_7362_6f78;

/// The schema, one migration per version, applied in order, each once.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE kmsbox_meta (
         id INT PRIMARY KEY CHECK (id = 1),
         store_id UUID NOT NULL,
         root_check BYTEA NOT NULL,
         store_mac BYTEA,
         change BIGINT NOT NULL DEFAULT 0
     );
     CREATE TABLE keys (
         uuid UUID PRIMARY KEY,
         domain TEXT NOT NULL,
         region TEXT NOT NULL,
         alias TEXT NOT NULL,
         description TEXT NOT NULL,
         state SMALLINT NOT NULL,
         creator SMALLINT NOT NULL,
         service TEXT NOT NULL,
         created_at_ms BIGINT NOT NULL,
         deletion_date_ms BIGINT,
         current_version BIGINT NOT NULL,
         mac BYTEA NOT NULL,
         rotation_enabled BOOLEAN NOT NULL,
         rotation_interval_days BIGINT NOT NULL,
         rotation_since_ms BIGINT NOT NULL
     );
     CREATE UNIQUE INDEX keys_alias ON keys(domain, region, alias) WHERE alias <> '';
     CREATE UNIQUE INDEX keys_default ON keys(domain, region, service) WHERE creator = 2;
     CREATE TABLE key_versions (
         uuid UUID NOT NULL REFERENCES keys(uuid) ON DELETE CASCADE,
         version BIGINT NOT NULL,
         wrap_scheme BIGINT NOT NULL,
         wrapped BYTEA NOT NULL,
         nonces_reserved BIGINT NOT NULL,
         created_at_ms BIGINT NOT NULL,
         PRIMARY KEY (uuid, version)
     );",
    ),
    // The key's policy (Vault's `derived` and `deletion_allowed`; both off before).
    (
        2,
        "ALTER TABLE keys ADD COLUMN context_required BOOLEAN NOT NULL DEFAULT false;
         ALTER TABLE keys ADD COLUMN deletion_allowed BOOLEAN NOT NULL DEFAULT false;",
    ),
    // The key's tags, one JSON object (none before).
    (
        3,
        "ALTER TABLE keys ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';",
    ),
];

/// The MAC computations the store needs to keep integrity with several writers, under the root
/// key that only the daemon holds.
pub struct Macs {
    /// Whether a record's own `mac` is its record MAC.
    pub check_record: Box<dyn Fn(&KeyRecord) -> bool + Send + Sync>,
    /// The store MAC of store `store_id` holding these keys (UUID, record MAC).
    pub store_mac: Box<StoreMacFn>,
}

/// The store MAC of store `store_id` holding these keys (UUID, record MAC).
pub type StoreMacFn = dyn Fn(Uuid, &[(Uuid, Mac)]) -> Result<Mac, StoreError> + Send + Sync;

/// The PostgreSQL store of a fleet.
pub struct PostgresStore {
    url: String,
    pool: Mutex<Pool>,
    /// Signalled when a connection goes back to the pool or is closed.
    freed: Condvar,
    /// Most connections open at once (besides the refresher's `LISTEN` connection and
    /// [`PostgresStore::reader`]).
    size: usize,
    /// The refresher's own connection, for the change counter and snapshots: a pool busy with
    /// writes never delays a refresh past the staleness bound, past which the daemon would refuse
    /// its cached keys.
    reader: Mutex<Option<Client>>,
    macs: Macs,
}

/// The connections of the pool.
#[derive(Default)]
struct Pool {
    /// Open and free.
    idle: Vec<Client>,
    /// Open, idle or in use.
    open: usize,
    /// When a call last found the database unreachable: for a while after, an idle connection is
    /// checked before it is lent, since the outage may have cut it without closing it here.
    failed_at: Option<std::time::Instant>,
}

/// How long after a failure idle connections are checked before they are lent.
const CHECK_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(60);

/// How long that check may take before the connection counts as cut.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A connection taken from the pool: back to it when dropped, or closed when `discard` is set
/// (a connection whose call found it broken) or it is closed already.
struct Lease<'a> {
    store: &'a PostgresStore,
    client: Option<Client>,
    discard: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let client = self.client.take();
        let keep = client.filter(|c| !self.discard && !c.is_closed());
        let mut pool = self.store.lock_pool();
        match keep {
            Some(c) => pool.idle.push(c),
            None => pool.open = pool.open.saturating_sub(1),
        }
        drop(pool);
        self.store.freed.notify_one();
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore(..)")
    }
}

/// The default of `--store-pool-size`: most connections a daemon opens to the store at once.
pub const DEFAULT_POOL_SIZE: u16 = 8;

/// A store URL fit to print: the password of its user part (`postgres://user:***@host/db`) and
/// the value of a `password` parameter replaced by `***`. Text that is no URL prints as `***`.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// How long a store call waits for a free connection when all of the pool's are in use.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn backend(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        // The server's own error says what failed ("db error" alone does not).
        Some(db) if !e.is_closed() => StoreError::Backend(Box::new(db.clone())),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Whether a failed statement broke a uniqueness rule.
fn is_unique_violation(e: &postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| *db.code() == postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// The uniqueness rule a failed insert broke, if that is why it failed.
fn conflict_of(e: &postgres::Error) -> Option<Conflict> {
    let db = e.as_db_error()?;
    if *db.code() != postgres::error::SqlState::UNIQUE_VIOLATION {
        return None;
    }
    match db.constraint() {
        Some("keys_alias") => Some(Conflict::Alias),
        Some("keys_pkey") => Some(Conflict::Uuid),
        _ => None,
    }
}

impl PostgresStore {
    /// Connects to `url`, applies the migrations this version knows under the fleet's advisory
    /// lock, and checks (or, for a new database, writes) the store's identity: its ID and the
    /// root key's check value, so that a daemon given another root key is refused.
    ///
    /// At most `pool_size` connections (at least 1) are open at once, made when needed and kept
    /// while they work; a call that finds all of them in use waits for one, up to 10 s, then
    /// fails as [`StoreError::Unavailable`]. The refresher's `LISTEN` connection
    /// ([`Self::listener`]) is one more.
    pub fn open(
        url: &str,
        root_check: &[u8],
        macs: Macs,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        let store = Self {
            url: url.to_owned(),
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
            size: pool_size.max(1),
            reader: Mutex::new(None),
            macs,
        };
        store.with(|c| {
            migrate(c)?;
            store.identify(c, root_check)
        })?;
        Ok(store)
    }

    /// Writes the store's identity when there is none, and checks the root key against it.
    fn identify(&self, c: &mut Client, root_check: &[u8]) -> Result<(), StoreError> {
        let mut tx = c.transaction().map_err(backend)?;
        tx.execute(
            "INSERT INTO kmsbox_meta (id, store_id, root_check) VALUES (1, $1::text::uuid, $2)
             ON CONFLICT (id) DO NOTHING",
            &[&Uuid::new_v4().to_string(), &root_check],
        )
        .map_err(backend)?;
        let row = tx
            .query_one(
                "SELECT store_id::text, root_check FROM kmsbox_meta WHERE id = 1",
                &[],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        let stored: Vec<u8> = row.get(1);
        if stored != root_check {
            return Err(StoreError::Corrupt(format!(
                "PostgreSQL store {} was made with another root key than this daemon's: its keys \
                 cannot be used with this one; give the daemon the fleet's root key",
                row.get::<_, String>(0)
            )));
        }
        Ok(())
    }

    fn connect(&self) -> Result<Client, StoreError> {
        Client::connect(&self.url, NoTls).map_err(backend)
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection from the pool, or a new one while fewer than the pool's size are open, or,
    /// when all are in use, the first one freed within [`POOL_WAIT`].
    fn take(&self) -> Result<Lease<'_>, StoreError> {
        let deadline = std::time::Instant::now() + POOL_WAIT;
        let mut pool = self.lock_pool();
        loop {
            while let Some(mut c) = pool.idle.pop() {
                let check = pool
                    .failed_at
                    .is_some_and(|t| t.elapsed() < CHECK_AFTER_FAILURE);
                let usable = !c.is_closed() && {
                    if check {
                        // A round trip, without holding the pool.
                        drop(pool);
                        let alive = c.is_valid(CHECK_TIMEOUT).is_ok();
                        pool = self.lock_pool();
                        alive
                    } else {
                        true
                    }
                };
                if usable {
                    return Ok(Lease {
                        store: self,
                        client: Some(c),
                        discard: false,
                    });
                }
                pool.open = pool.open.saturating_sub(1);
            }
            if pool.open < self.size {
                pool.open += 1;
                drop(pool);
                // From here the slot is the lease's: a failed connect frees it on drop.
                let mut lease = Lease {
                    store: self,
                    client: None,
                    discard: false,
                };
                lease.client = Some(self.connect()?);
                return Ok(lease);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "all {} connections to PostgreSQL (--store-pool-size) stayed in use for {} s",
                    self.size,
                    POOL_WAIT.as_secs()
                )));
            }
            pool = self
                .freed
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Runs `f` on the refresher's own connection ([`PostgresStore::reader`]), made again when
    /// it is closed or its last call found it broken.
    fn with_reader<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_runtime(|| {
            let mut reader = self
                .reader
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if reader.as_ref().is_none_or(Client::is_closed) {
                *reader = Some(self.connect()?);
            }
            let Some(c) = reader.as_mut() else {
                return Err(StoreError::Unavailable("no connection".into()));
            };
            let r = f(c);
            if matches!(r, Err(StoreError::Unavailable(_))) {
                *reader = None;
                self.failed();
            }
            r
        })
    }

    /// Runs `f` on a pooled connection; a connection that failed is closed, not pooled.
    fn with<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_runtime(|| {
            let mut lease = self.take()?;
            let Some(c) = lease.client.as_mut() else {
                return Err(StoreError::Unavailable("no connection".into()));
            };
            let r = f(c);
            lease.discard = matches!(r, Err(StoreError::Unavailable(_)));
            if lease.discard {
                self.failed();
            }
            r
        })
    }

    /// Notes that a call found the database unreachable ([`Pool::failed_at`]).
    fn failed(&self) {
        self.lock_pool().failed_at = Some(std::time::Instant::now());
    }

    /// Runs one write: locks the meta row, runs `change`, checks `check`'s key's record MAC
    /// against its row, recomputes the store MAC, bumps the change counter and notifies.
    fn write<T: Send>(
        &self,
        check: Option<Uuid>,
        change: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction().map_err(backend)?;
            let meta = tx
                .query_one(
                    "SELECT store_id::text, store_mac FROM kmsbox_meta WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .map_err(backend)?;
            let id: Uuid = meta
                .get::<_, String>(0)
                .parse()
                .map_err(|_| StoreError::Corrupt("bad store ID".into()))?;
            // The rows as the last writer left them: a key's row put back, added or removed
            // behind the fleet's back since then fails here, before this write could cover it
            // with a new store MAC.
            let before: Option<Vec<u8>> = meta.get(1);
            if let Some(before) = before
                && !constant_time_eq(&(self.macs.store_mac)(id, &record_macs(&mut tx)?)?, &before)
            {
                return Err(StoreError::Corrupt(
                    "the PostgreSQL store fails its store MAC: keys were changed, put back, added \
                     or removed without the root key; restore the database from a backup"
                        .into(),
                ));
            }
            let out = change(&mut tx)?;
            if let Some(uuid) = check {
                let rec = load_where(&mut tx, "WHERE uuid = $1::text::uuid", &[&uuid.to_string()])?
                    .pop()
                    .ok_or_else(|| StoreError::Corrupt(format!("key {uuid} vanished")))?;
                if !(self.macs.check_record)(&rec) {
                    return Err(StoreError::Stale(uuid));
                }
            }
            let mac = (self.macs.store_mac)(id, &record_macs(&mut tx)?)?;
            let change: i64 = tx
                .query_one(
                    "UPDATE kmsbox_meta SET store_mac = $1, change = change + 1 WHERE id = 1
                     RETURNING change",
                    &[&mac.as_slice()],
                )
                .map_err(backend)?
                .get(0);
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &change.to_string()])
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
    }

    /// A dedicated connection listening on [`CHANNEL`], for the cache refresher.
    pub fn listener(&self) -> Result<Client, StoreError> {
        off_runtime(|| {
            let mut c = self.connect()?;
            c.batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(backend)?;
            Ok(c)
        })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing a connection blocks on the driver's own runtime.
        let idle = std::mem::take(
            &mut self
                .pool
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .idle,
        );
        let reader = self
            .reader
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        off_runtime(move || drop((idle, reader)));
    }
}

/// Runs `f`, which blocks on the driver's own runtime, where that is allowed. The keyring calls
/// the store through `spawn_blocking`, but the data path calls [`KeyStore::reserve_nonces`] and
/// the cache's read-through on an async worker, where the driver's `block_on` would panic: there
/// `f` runs under `block_in_place` (multi-threaded runtime) or on a scoped thread.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Err(_) => f(),
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// Every key's UUID and record MAC, as stored.
fn record_macs(tx: &mut Transaction<'_>) -> Result<Vec<(Uuid, Mac)>, StoreError> {
    tx.query("SELECT uuid::text, mac FROM keys", &[])
        .map_err(backend)?
        .iter()
        .map(|r| {
            let u: String = r.get(0);
            let m: Vec<u8> = r.get(1);
            Ok((
                u.parse()
                    .map_err(|_| StoreError::Corrupt("bad uuid".into()))?,
                Mac::try_from(m.as_slice())
                    .map_err(|_| StoreError::Corrupt(format!("key {u}: MAC not 32 bytes")))?,
            ))
        })
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// Applies the migrations not yet applied, under the fleet's advisory lock.
fn migrate(c: &mut Client) -> Result<(), StoreError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(backend)?;
    let r = (|| {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS kmsbox_migrations (
                 version INT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .map_err(backend)?;
        let applied: i32 = c
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM kmsbox_migrations",
                &[],
            )
            .map_err(backend)?
            .get(0);
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if applied > newest {
            return Err(StoreError::Corrupt(format!(
                "the PostgreSQL store is at schema {applied}, newer than this daemon's {newest}: \
                 upgrade the daemon"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
            let mut tx = c.transaction().map_err(backend)?;
            tx.batch_execute(sql).map_err(backend)?;
            tx.execute(
                "INSERT INTO kmsbox_migrations (version) VALUES ($1)",
                &[version],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            tracing::info!(version, "PostgreSQL store migrated");
        }
        Ok(())
    })();
    let unlocked = c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    r?;
    unlocked.map_err(backend)?;
    Ok(())
}

fn int<T: TryFrom<i64>>(v: i64, uuid: &str, what: &str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| StoreError::Corrupt(format!("key {uuid}: bad {what}")))
}

fn record_of(r: &Row, versions: Vec<WrappedVersion>) -> Result<KeyRecord, StoreError> {
    let uuid: String = r.get(0);
    let corrupt = |what: &str| StoreError::Corrupt(format!("key {uuid}: {what}"));
    let mac: Vec<u8> = r.get(11);
    Ok(KeyRecord {
        uuid: uuid.parse().map_err(|_| corrupt("bad uuid"))?,
        domain: DomainId::parse(r.get(1)).map_err(|_| corrupt("bad domain"))?,
        region: RegionId::parse(r.get(2)).map_err(|_| corrupt("bad region"))?,
        alias: r.get(3),
        description: r.get(4),
        state: KeyState::from_i64(i64::from(r.get::<_, i16>(5)))
            .ok_or_else(|| corrupt("bad state"))?,
        creator: Creator::from_i64(i64::from(r.get::<_, i16>(6)))
            .ok_or_else(|| corrupt("bad creator"))?,
        service: r.get(7),
        created_at_ms: r.get(8),
        deletion_date_ms: r.get(9),
        current_version: int(r.get(10), &uuid, "current version")?,
        versions,
        mac: Some(Mac::try_from(mac.as_slice()).map_err(|_| corrupt("its MAC is not 32 bytes"))?),
        rotation: Rotation {
            enabled: r.get(12),
            interval_days: int(r.get(13), &uuid, "rotation interval")?,
            since_ms: r.get(14),
        },
        policy: KeyPolicy {
            context_required: r.get(15),
            deletion_allowed: r.get(16),
        },
        tags: super::tags_from_text(&uuid, r.get(17))?,
    })
}

/// The keys matching `filter` (a `WHERE` clause over `keys`, or empty), with their versions.
fn load_where(
    c: &mut impl postgres::GenericClient,
    filter: &str,
    args: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<KeyRecord>, StoreError> {
    let rows = c
        .query(
            &format!(
                "SELECT uuid::text, domain, region, alias, description, state, creator, service,
                        created_at_ms, deletion_date_ms, current_version, mac, rotation_enabled,
                        rotation_interval_days, rotation_since_ms, context_required,
                        deletion_allowed, tags
                 FROM keys {filter} ORDER BY uuid"
            ),
            args,
        )
        .map_err(backend)?;
    let vfilter = filter.replace("WHERE ", "WHERE k.");
    let vrows = c
        .query(
            &format!(
                "SELECT v.uuid::text, v.version, v.wrap_scheme, v.wrapped, v.nonces_reserved,
                        v.created_at_ms
                 FROM key_versions v JOIN keys k ON k.uuid = v.uuid {vfilter}
                 ORDER BY v.uuid, v.version"
            ),
            args,
        )
        .map_err(backend)?;
    let mut versions: std::collections::HashMap<String, Vec<WrappedVersion>> =
        std::collections::HashMap::new();
    for v in &vrows {
        let uuid: String = v.get(0);
        let w = WrappedVersion {
            version: int(v.get(1), &uuid, "version")?,
            scheme: int(v.get(2), &uuid, "wrap scheme")?,
            wrapped: v.get(3),
            nonces_reserved: int(v.get(4), &uuid, "nonce reservation")?,
            created_at_ms: v.get(5),
        };
        versions.entry(uuid).or_default().push(w);
    }
    rows.iter()
        .map(|r| {
            record_of(
                r,
                versions.remove(&r.get::<_, String>(0)).unwrap_or_default(),
            )
        })
        .collect()
}

fn insert_in(
    tx: &mut Transaction<'_>,
    rec: &KeyRecord,
    on_conflict: &str,
) -> Result<u64, postgres::Error> {
    let mac = rec.mac.map(|m| m.to_vec()).unwrap_or_default();
    let n = tx.execute(
        &format!(
            "INSERT INTO keys (uuid, domain, region, alias, description, state, creator, service,
                               created_at_ms, deletion_date_ms, current_version, mac,
                               rotation_enabled, rotation_interval_days, rotation_since_ms,
                               context_required, deletion_allowed, tags)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                     $16, $17, $18)
             {on_conflict}"
        ),
        &[
            &rec.uuid.to_string(),
            &rec.domain.as_str(),
            &rec.region.as_str(),
            &rec.alias,
            &rec.description,
            &i16::try_from(rec.state.to_i64()).unwrap_or(0),
            &i16::try_from(rec.creator.to_i64()).unwrap_or(0),
            &rec.service,
            &rec.created_at_ms,
            &rec.deletion_date_ms,
            &i64::from(rec.current_version),
            &mac,
            &rec.rotation.enabled,
            &i64::from(rec.rotation.interval_days),
            &rec.rotation.since_ms,
            &rec.policy.context_required,
            &rec.policy.deletion_allowed,
            &super::tags_to_text(&rec.tags),
        ],
    )?;
    if n == 1 {
        for v in &rec.versions {
            insert_version(tx, rec.uuid, v)?;
        }
    }
    Ok(n)
}

fn insert_version(
    tx: &mut Transaction<'_>,
    uuid: Uuid,
    v: &WrappedVersion,
) -> Result<u64, postgres::Error> {
    tx.execute(
        "INSERT INTO key_versions (uuid, version, wrap_scheme, wrapped, nonces_reserved, created_at_ms)
         VALUES ($1::text::uuid, $2, $3, $4, $5, $6)",
        &[
            &uuid.to_string(),
            &i64::from(v.version),
            &i64::from(v.scheme),
            &v.wrapped,
            &i64::try_from(v.nonces_reserved).unwrap_or(i64::MAX),
            &v.created_at_ms,
        ],
    )
}

fn one_row(n: u64, uuid: Uuid) -> Result<(), StoreError> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "key {uuid} is not in the store"
        )))
    }
}

impl KeyStore for PostgresStore {
    fn load_all(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.load_snapshot()?.0)
    }

    fn load_snapshot(&self) -> Result<(Vec<KeyRecord>, Option<Mac>, i64), StoreError> {
        self.with_reader(|c| {
            // One snapshot: the keys and the store MAC over them, as one writer left them.
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(backend)?;
            let meta = tx
                .query_one(
                    "SELECT store_mac, change FROM kmsbox_meta WHERE id = 1",
                    &[],
                )
                .map_err(backend)?;
            let keys = load_where(&mut tx, "", &[])?;
            tx.commit().map_err(backend)?;
            let mac: Option<Vec<u8>> = meta.get(0);
            let mac = mac
                .map(|m| {
                    Mac::try_from(m.as_slice())
                        .map_err(|_| StoreError::Corrupt("the store MAC is not 32 bytes".into()))
                })
                .transpose()?;
            Ok((keys, mac, meta.get(1)))
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn change_counter(&self) -> Result<i64, StoreError> {
        self.with_reader(|c| {
            Ok(
                c.query_one("SELECT change FROM kmsbox_meta WHERE id = 1", &[])
                    .map_err(backend)?
                    .get(0),
            )
        })
    }

    fn load_key(&self, uuid: Uuid) -> Result<Option<KeyRecord>, StoreError> {
        self.with(|c| Ok(load_where(c, "WHERE uuid = $1::text::uuid", &[&uuid.to_string()])?.pop()))
    }

    fn store_id(&self) -> Result<Uuid, StoreError> {
        self.with(|c| {
            let id: String = c
                .query_one("SELECT store_id::text FROM kmsbox_meta WHERE id = 1", &[])
                .map_err(backend)?
                .get(0);
            id.parse()
                .map_err(|_| StoreError::Corrupt("bad store ID".into()))
        })
    }

    fn store_mac(&self) -> Result<Option<Mac>, StoreError> {
        Ok(self.load_snapshot()?.1)
    }

    fn insert_key(&self, rec: &KeyRecord, _store_mac: &Mac) -> Result<(), StoreError> {
        self.write(None, |tx| {
            insert_in(tx, rec, "")
                .map_err(|e| conflict_of(&e).map_or_else(|| backend(e), StoreError::Conflict))?;
            Ok(())
        })
    }

    fn insert_default_key(
        &self,
        rec: &KeyRecord,
        _store_mac: &Mac,
    ) -> Result<KeyRecord, StoreError> {
        self.write(None, |tx| {
            // The unique index on (domain, region, service) of default keys decides the race
            // between daemons; the loser reads the winner's key.
            insert_in(
                tx,
                rec,
                "ON CONFLICT (domain, region, service) WHERE creator = 2 DO NOTHING",
            )
            .map_err(|e| conflict_of(&e).map_or_else(|| backend(e), StoreError::Conflict))?;
            load_where(
                tx,
                "WHERE domain = $1 AND region = $2 AND service = $3 AND creator = 2",
                &[&rec.domain.as_str(), &rec.region.as_str(), &rec.service],
            )?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("default key vanished".into()))
        })
    }

    fn set_state(
        &self,
        uuid: Uuid,
        state: KeyState,
        deletion_date_ms: Option<i64>,
        mac: &Mac,
        _store_mac: &Mac,
    ) -> Result<(), StoreError> {
        self.write(Some(uuid), |tx| {
            let n = tx
                .execute(
                    "UPDATE keys SET state = $2, deletion_date_ms = $3, mac = $4
                     WHERE uuid = $1::text::uuid",
                    &[
                        &uuid.to_string(),
                        &i16::try_from(state.to_i64()).unwrap_or(0),
                        &deletion_date_ms,
                        &mac.as_slice(),
                    ],
                )
                .map_err(backend)?;
            one_row(n, uuid)
        })
    }

    fn add_version(
        &self,
        uuid: Uuid,
        version: &WrappedVersion,
        mac: &Mac,
        _store_mac: &Mac,
    ) -> Result<(), StoreError> {
        self.write(Some(uuid), |tx| {
            insert_version(tx, uuid, version).map_err(|e| {
                if is_unique_violation(&e) {
                    // Another daemon added this version first.
                    StoreError::Stale(uuid)
                } else {
                    backend(e)
                }
            })?;
            let n = tx
                .execute(
                    "UPDATE keys SET current_version = $2, mac = $3 WHERE uuid = $1::text::uuid",
                    &[
                        &uuid.to_string(),
                        &i64::from(version.version),
                        &mac.as_slice(),
                    ],
                )
                .map_err(backend)?;
            one_row(n, uuid)
        })
    }

    fn set_attributes(
        &self,
        uuid: Uuid,
        attributes: &Attributes,
        mac: &Mac,
        _store_mac: &Mac,
    ) -> Result<(), StoreError> {
        let Attributes {
            alias,
            description,
            rotation,
            policy,
            tags,
        } = attributes;
        let tags = super::tags_to_text(tags);
        self.write(Some(uuid), |tx| {
            let n = tx
                .execute(
                    "UPDATE keys SET alias = $2, description = $3, rotation_enabled = $4,
                            rotation_interval_days = $5, rotation_since_ms = $6, mac = $7,
                            context_required = $8, deletion_allowed = $9, tags = $10
                     WHERE uuid = $1::text::uuid",
                    &[
                        &uuid.to_string(),
                        &alias,
                        &description,
                        &rotation.enabled,
                        &i64::from(rotation.interval_days),
                        &rotation.since_ms,
                        &mac.as_slice(),
                        &policy.context_required,
                        &policy.deletion_allowed,
                        &tags,
                    ],
                )
                .map_err(|e| conflict_of(&e).map_or_else(|| backend(e), StoreError::Conflict))?;
            one_row(n, uuid)
        })
    }

    fn delete_key(&self, uuid: Uuid, _store_mac: &Mac) -> Result<(), StoreError> {
        // Only a key still pending deletion: another daemon may have purged it, or cancelled its
        // deletion, since this daemon's cache said it was due ([`StoreError::Stale`]).
        self.write(None, |tx| {
            let n = tx
                .execute(
                    "DELETE FROM keys WHERE uuid = $1::text::uuid AND state = $2",
                    &[
                        &uuid.to_string(),
                        &i16::try_from(KeyState::PendingDeletion.to_i64()).unwrap_or(0),
                    ],
                )
                .map_err(backend)?;
            if n == 1 {
                Ok(())
            } else {
                Err(StoreError::Stale(uuid))
            }
        })
    }

    fn reserve_nonces(
        &self,
        uuid: Uuid,
        version: u32,
        block: u64,
        limit: u64,
    ) -> Result<std::ops::Range<u64>, StoreError> {
        // Not covered by any MAC, and not a change other daemons must see: no meta lock. The row
        // lock (`FOR UPDATE`) makes the read and the raise one step across the fleet: a daemon
        // raising the count at the same time waits, then reads the count this one left.
        self.with(|c| {
            let mut tx = c.transaction().map_err(backend)?;
            let row = tx
                .query_opt(
                    "SELECT nonces_reserved FROM key_versions
                     WHERE uuid = $1::text::uuid AND version = $2 FOR UPDATE",
                    &[&uuid.to_string(), &i64::from(version)],
                )
                .map_err(backend)?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("key {uuid} has no version {version}"))
                })?;
            let stored: u64 = int(row.get(0), &uuid.to_string(), "nonce reservation")?;
            let start = stored.min(limit);
            let end = stored.saturating_add(block).min(limit);
            if end > stored {
                let end_sql = i64::try_from(end).map_err(|e| {
                    StoreError::Corrupt(format!("key {uuid} version {version}: nonce count: {e}"))
                })?;
                tx.execute(
                    "UPDATE key_versions SET nonces_reserved = $3
                     WHERE uuid = $1::text::uuid AND version = $2",
                    &[&uuid.to_string(), &i64::from(version), &end_sql],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(start..end)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn a_printed_store_url_hides_its_passwords() {
        // (rule, URL, as printed)
        let cases = [
            (
                "a password in the user part",
                "postgres://kms:hunter2@db:5432/kms?sslmode=require",
                "postgres://kms:***@db:5432/kms?sslmode=require",
            ),
            (
                "a password that holds an @",
                "postgresql://kms:p@ss@db/kms",
                "postgresql://kms:***@db/kms",
            ),
            (
                "a password parameter",
                "postgres://kms@db/kms?connect_timeout=1&password=hunter2",
                "postgres://kms@db/kms?connect_timeout=1&password=***",
            ),
            (
                "no password",
                "postgres://kms@127.0.0.1:1/kms",
                "postgres://kms@127.0.0.1:1/kms",
            ),
            ("no URL at all", "host=db password=hunter2", "***"),
        ];
        for (rule, url, printed) in cases {
            assert_eq!(redacted_url(url), printed, "{rule}");
        }
    }
}
