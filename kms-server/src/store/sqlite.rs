//! The SQLite key store: WAL, `synchronous=FULL`, schema migrations by `PRAGMA user_version`.

use std::path::Path;
use std::sync::Mutex;

use kms_proto::key_id::{DomainId, RegionId};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use uuid::Uuid;

use super::{
    Attributes, Conflict, Creator, KeyPolicy, KeyRecord, KeyState, KeyStore, Mac, Rotation,
    StoreError, WrappedVersion,
};

/// Schema migrations; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE keys (
        uuid TEXT PRIMARY KEY NOT NULL,
        domain TEXT NOT NULL,
        region TEXT NOT NULL,
        alias TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        state INTEGER NOT NULL,
        creator INTEGER NOT NULL,
        service TEXT NOT NULL DEFAULT '',
        created_at_ms INTEGER NOT NULL,
        deletion_date_ms INTEGER,
        current_version INTEGER NOT NULL
     );
     CREATE UNIQUE INDEX keys_alias ON keys(domain, region, alias) WHERE alias <> '';
     CREATE UNIQUE INDEX keys_default ON keys(domain, region, service) WHERE creator = 2;
     CREATE TABLE key_versions (
        uuid TEXT NOT NULL REFERENCES keys(uuid) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        wrap_scheme INTEGER NOT NULL,
        wrapped BLOB NOT NULL,
        PRIMARY KEY (uuid, version)
     );
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        domain TEXT NOT NULL,
        region TEXT NOT NULL,
        operation TEXT NOT NULL,
        key_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        request_id TEXT NOT NULL
     );",
    // 1 -> 2: the audit log moved to the daemon's own JSON-lines file.
    "DROP TABLE audit;",
    // 2 -> 3: the store's identity (one row, written at start-up; see `StoreIdentity`).
    "CREATE TABLE store_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        store_id TEXT NOT NULL,
        root_check BLOB NOT NULL
     );",
    // 3 -> 4: how many blob nonces each key version has reserved (FORMATS.md §1).
    "ALTER TABLE key_versions ADD COLUMN nonces_reserved INTEGER NOT NULL DEFAULT 0;",
    // 4 -> 5: each key's record MAC, and the store MAC over them (FORMATS.md §3). Rows from before
    // have none: the keyring refuses them until `kms-server add-store-macs` adds them.
    "ALTER TABLE keys ADD COLUMN mac BLOB;
     CREATE TABLE store_mac (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        mac BLOB NOT NULL
     );",
    // 5 -> 6: the rotation schedule (off, 365 days by default) and when each version was made
    // (0: before this migration; version 1 was made with its key).
    "ALTER TABLE keys ADD COLUMN rotation_enabled INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE keys ADD COLUMN rotation_interval_days INTEGER NOT NULL DEFAULT 365;
     ALTER TABLE keys ADD COLUMN rotation_since_ms INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE key_versions ADD COLUMN created_at_ms INTEGER NOT NULL DEFAULT 0;",
    // 6 -> 7: the key's policy (Vault's `derived` and `deletion_allowed`; both off before).
    "ALTER TABLE keys ADD COLUMN context_required INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE keys ADD COLUMN deletion_allowed INTEGER NOT NULL DEFAULT 0;",
    // 7 -> 8: the key's tags, one JSON object (none before).
    "ALTER TABLE keys ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';",
];

/// Who a key database is: its own ID, and the check value of the root key its keys are wrapped
/// under (never the key itself). Kept in the database's `store_meta` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdentity {
    /// The store's ID, drawn when the store was first used.
    pub store_id: Uuid,
    /// [`crate::crypto::RootKey::store_check_value`] of the root key.
    pub root_check: Vec<u8>,
}

/// The SQLite key store.
pub struct SqliteStore {
    keys: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Creates an empty file at `path` with mode 0600 unless it exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets mode 0600 on `path` if it exists and has any group or other bit.
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// What is wrong with the first 100 bytes of an existing database file (the SQLite header), if
/// anything. An empty file is a new database. A write version other than 1 or 2 makes SQLite open
/// the file read-only, so that the daemon would start and then fail every write.
fn check_header(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let damaged = |what: String| {
        StoreError::Corrupt(format!(
            "key database {} is damaged: {what}",
            path.display()
        ))
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::Backend(Box::new(e))),
    };
    let mut head = Vec::with_capacity(100);
    f.by_ref()
        .take(100)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    if head.is_empty() {
        return Ok(());
    }
    if head.len() < 100 {
        return Err(damaged(format!(
            "{} bytes, shorter than a SQLite header",
            head.len()
        )));
    }
    if &head[..16] != b"SQLite format 3\0" {
        return Err(damaged("not a SQLite database (bad magic)".into()));
    }
    let (write, read) = (head[18], head[19]);
    if !matches!(write, 1 | 2) || !matches!(read, 1 | 2) {
        return Err(damaged(format!(
            "header file format versions are write {write}, read {read}; they must be 1 or 2"
        )));
    }
    Ok(())
}

/// Runs SQLite's full integrity check (structure, and that every index matches its table); the
/// key database is small, so the full check costs little more than `quick_check`.
fn integrity_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let damaged = |what: String| {
        StoreError::Corrupt(format!(
            "key database {} is damaged: {what}",
            path.display()
        ))
    };
    let mut stmt = conn
        .prepare("PRAGMA integrity_check(20)")
        .map_err(|e| damaged(e.to_string()))?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| damaged(e.to_string()))?;
    if lines != ["ok"] {
        return Err(damaged(format!(
            "SQLite integrity check failed: {}",
            lines.join("; ")
        )));
    }
    Ok(())
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    check_header(path)?;
    let conn = Connection::open(path).map_err(backend)?;
    integrity_check(&conn, path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(backend)?;
    // FULL: every acknowledged transaction is on disk, not only in the OS cache.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    ///
    /// The database and its `-wal` and `-shm` files are mode 0600 whatever the umask: the
    /// database is created here with that mode before SQLite opens it (SQLite then gives its WAL
    /// and shared-memory files the database's mode), and the three are narrowed to 0600 after
    /// the open in case an older daemon made them wider.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private(path).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let mut conn = open_conn(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            restrict_to_owner(Path::new(&file)).map_err(|e| StoreError::Backend(Box::new(e)))?;
        }
        migrate(&mut conn)?;
        Ok(Self {
            keys: Mutex::new(conn),
        })
    }

    /// The store's identity, `None` while none was written (a new, emptied or pre-identity
    /// database).
    pub fn identity(&self) -> Result<Option<StoreIdentity>, StoreError> {
        self.with(|c| {
            let row: Option<(String, Vec<u8>)> = c
                .query_row(
                    "SELECT store_id, root_check FROM store_meta WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            row.map(|(id, root_check)| {
                Ok(StoreIdentity {
                    store_id: id.parse().map_err(|_| {
                        StoreError::Corrupt(format!("store_meta: bad store_id {id:?}"))
                    })?,
                    root_check,
                })
            })
            .transpose()
        })
    }

    /// Writes the store's identity, replacing any.
    pub fn set_identity(&self, id: &StoreIdentity) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO store_meta (id, store_id, root_check) VALUES (1, ?1, ?2)",
                params![id.store_id.to_string(), id.root_check],
            )
            .map_err(backend)
            .map(drop)
        })
    }

    /// Replaces every key's wrapped material and record MAC, the store MAC and the root key's
    /// check value, in one transaction: a root key rotation, or the first MACs of a store written
    /// before them (`crate::admin`). `keys` must be every stored key, with the versions it already
    /// has; `before_commit` runs inside the transaction, after every write (a test seam).
    pub fn rewrite_integrity(
        &self,
        keys: &[KeyRecord],
        store_mac: &Mac,
        root_check: &[u8],
        before_commit: impl FnOnce(),
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let stored: i64 = tx
                .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
                .map_err(backend)?;
            let versions: i64 = tx
                .query_row("SELECT count(*) FROM key_versions", [], |r| r.get(0))
                .map_err(backend)?;
            let given: usize = keys.iter().map(|k| k.versions.len()).sum();
            if usize::try_from(stored).ok() != Some(keys.len())
                || usize::try_from(versions).ok() != Some(given)
            {
                return Err(StoreError::Corrupt(format!(
                    "{stored} keys and {versions} key versions are stored, but {} keys and \
                     {given} versions were rewritten",
                    keys.len()
                )));
            }
            for rec in keys {
                let mac = rec
                    .mac
                    .ok_or_else(|| StoreError::Corrupt(format!("key {} has no MAC", rec.uuid)))?;
                let n = tx
                    .execute(
                        "UPDATE keys SET mac = ?2 WHERE uuid = ?1",
                        params![rec.uuid.to_string(), mac.as_slice()],
                    )
                    .map_err(backend)?;
                one_row(n, || format!("key {}", rec.uuid))?;
                for v in &rec.versions {
                    let n = tx
                        .execute(
                            "UPDATE key_versions SET wrap_scheme = ?3, wrapped = ?4
                             WHERE uuid = ?1 AND version = ?2",
                            params![rec.uuid.to_string(), v.version, v.scheme, v.wrapped],
                        )
                        .map_err(backend)?;
                    one_row(n, || format!("key {} version {}", rec.uuid, v.version))?;
                }
            }
            put_store_mac(&tx, store_mac).map_err(backend)?;
            let n = tx
                .execute(
                    "UPDATE store_meta SET root_check = ?1 WHERE id = 1",
                    params![root_check],
                )
                .map_err(backend)?;
            one_row(n, || "the store's identity".to_owned())?;
            before_commit();
            tx.commit().map_err(backend)
        })
    }

    /// The number of keys stored.
    pub fn key_count(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            c.query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
                .map_err(backend)
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .keys
            .lock()
            .map_err(|_| StoreError::Backend("store lock poisoned".into()))?;
        f(&mut guard)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    let target = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > target {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this daemon understands ({target})"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

/// A nonce count as SQLite's signed integer.
fn count_to_sql(n: u64) -> Result<i64, rusqlite::Error> {
    i64::try_from(n).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn conflict_of(e: &rusqlite::Error) -> Option<Conflict> {
    if let rusqlite::Error::SqliteFailure(f, msg) = e
        && f.code == ErrorCode::ConstraintViolation
    {
        let msg = msg.as_deref().unwrap_or("");
        if msg.contains("keys.alias") {
            return Some(Conflict::Alias);
        }
        if msg.contains("keys.uuid") {
            return Some(Conflict::Uuid);
        }
    }
    None
}

/// Replaces the store MAC (inside the caller's transaction).
fn put_store_mac(tx: &rusqlite::Transaction<'_>, mac: &Mac) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT OR REPLACE INTO store_mac (id, mac) VALUES (1, ?1)",
        params![mac.as_slice()],
    )
    .map(drop)
}

/// A write that must change exactly one row, else the key (or version) is not stored.
fn one_row(n: usize, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!("{} is not stored", what())))
    }
}

fn insert_in(tx: &rusqlite::Transaction<'_>, rec: &KeyRecord) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT INTO keys (uuid, domain, region, alias, description, state, creator, service,
                           created_at_ms, deletion_date_ms, current_version, mac,
                           rotation_enabled, rotation_interval_days, rotation_since_ms,
                           context_required, deletion_allowed, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18)",
        params![
            rec.uuid.to_string(),
            rec.domain.as_str(),
            rec.region.as_str(),
            rec.alias,
            rec.description,
            rec.state.to_i64(),
            rec.creator.to_i64(),
            rec.service,
            rec.created_at_ms,
            rec.deletion_date_ms,
            rec.current_version,
            rec.mac.as_ref().map(|m| m.as_slice()),
            rec.rotation.enabled,
            rec.rotation.interval_days,
            rec.rotation.since_ms,
            rec.policy.context_required,
            rec.policy.deletion_allowed,
            super::tags_to_text(&rec.tags),
        ],
    )?;
    for v in &rec.versions {
        tx.execute(
            "INSERT INTO key_versions (uuid, version, wrap_scheme, wrapped, nonces_reserved,
                                       created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                rec.uuid.to_string(),
                v.version,
                v.scheme,
                v.wrapped,
                count_to_sql(v.nonces_reserved)?,
                v.created_at_ms
            ],
        )?;
    }
    Ok(())
}

fn load_where(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<KeyRecord>, StoreError> {
    let sql = format!(
        "SELECT uuid, domain, region, alias, description, state, creator, service, created_at_ms,
                deletion_date_ms, current_version, mac, rotation_enabled, rotation_interval_days,
                rotation_since_ms, context_required, deletion_allowed, tags
         FROM keys {filter} ORDER BY created_at_ms, uuid"
    );
    let mut stmt = conn.prepare(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, u32>(10)?,
                r.get::<_, Option<Vec<u8>>>(11)?,
                Rotation {
                    enabled: r.get(12)?,
                    interval_days: r.get(13)?,
                    since_ms: r.get(14)?,
                },
                KeyPolicy {
                    context_required: r.get(15)?,
                    deletion_allowed: r.get(16)?,
                },
                r.get::<_, String>(17)?,
            ))
        })
        .map_err(backend)?;
    let mut vstmt = conn
        .prepare(
            "SELECT version, wrap_scheme, wrapped, nonces_reserved, created_at_ms FROM key_versions
             WHERE uuid = ?1 ORDER BY version",
        )
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (
            uuid,
            domain,
            region,
            alias,
            description,
            state,
            creator,
            service,
            created,
            del,
            cur,
            mac,
            rotation,
            policy,
            tags,
        ) = row.map_err(backend)?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("key {uuid}: {what}"));
        let versions = vstmt
            .query_map([&uuid], |r| {
                let reserved: i64 = r.get(3)?;
                Ok(WrappedVersion {
                    version: r.get(0)?,
                    scheme: r.get(1)?,
                    wrapped: r.get(2)?,
                    nonces_reserved: u64::try_from(reserved).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            3,
                            rusqlite::types::Type::Integer,
                            Box::new(e),
                        )
                    })?,
                    created_at_ms: r.get(4)?,
                })
            })
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        out.push(KeyRecord {
            uuid: uuid.parse().map_err(|_| corrupt("bad uuid"))?,
            domain: DomainId::parse(&domain).map_err(|_| corrupt("bad domain"))?,
            region: RegionId::parse(&region).map_err(|_| corrupt("bad region"))?,
            alias,
            description,
            state: KeyState::from_i64(state).ok_or_else(|| corrupt("bad state"))?,
            creator: Creator::from_i64(creator).ok_or_else(|| corrupt("bad creator"))?,
            service,
            created_at_ms: created,
            deletion_date_ms: del,
            current_version: cur,
            versions,
            mac: mac
                .map(|m| Mac::try_from(m.as_slice()))
                .transpose()
                .map_err(|_| corrupt("its MAC is not 32 bytes"))?,
            rotation,
            policy,
            tags: super::tags_from_text(&uuid, &tags)?,
        });
    }
    Ok(out)
}

impl KeyStore for SqliteStore {
    fn load_all(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.with(|c| load_where(c, "", &[]))
    }

    fn store_id(&self) -> Result<Uuid, StoreError> {
        Ok(self.identity()?.map_or(Uuid::nil(), |id| id.store_id))
    }

    fn store_mac(&self) -> Result<Option<Mac>, StoreError> {
        self.with(|c| {
            let mac: Option<Vec<u8>> = c
                .query_row("SELECT mac FROM store_mac WHERE id = 1", [], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            mac.map(|m| {
                Mac::try_from(m.as_slice())
                    .map_err(|_| StoreError::Corrupt("the store MAC is not 32 bytes".into()))
            })
            .transpose()
        })
    }

    fn insert_key(&self, rec: &KeyRecord, store_mac: &Mac) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction().map_err(backend)?;
            if let Err(e) = insert_in(&tx, rec) {
                return Err(conflict_of(&e).map_or_else(|| backend(e), StoreError::Conflict));
            }
            put_store_mac(&tx, store_mac).map_err(backend)?;
            tx.commit().map_err(backend)
        })
    }

    fn insert_default_key(
        &self,
        rec: &KeyRecord,
        store_mac: &Mac,
    ) -> Result<KeyRecord, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT uuid FROM keys WHERE domain = ?1 AND region = ?2 AND service = ?3 AND creator = 2",
                    params![rec.domain.as_str(), rec.region.as_str(), rec.service],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if existing.is_none() {
                insert_in(&tx, rec).map_err(|e| {
                    conflict_of(&e).map_or_else(|| backend(e), StoreError::Conflict)
                })?;
                put_store_mac(&tx, store_mac).map_err(backend)?;
            }
            let mut found = load_where(
                &tx,
                "WHERE domain = ?1 AND region = ?2 AND service = ?3 AND creator = 2",
                &[&rec.domain.as_str(), &rec.region.as_str(), &rec.service],
            )?;
            tx.commit().map_err(backend)?;
            found
                .pop()
                .ok_or_else(|| StoreError::Backend("default key vanished".into()))
        })
    }

    fn set_state(
        &self,
        uuid: Uuid,
        state: KeyState,
        deletion_date_ms: Option<i64>,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction().map_err(backend)?;
            let n = tx
                .execute(
                    "UPDATE keys SET state = ?2, deletion_date_ms = ?3, mac = ?4 WHERE uuid = ?1",
                    params![
                        uuid.to_string(),
                        state.to_i64(),
                        deletion_date_ms,
                        mac.as_slice()
                    ],
                )
                .map_err(backend)?;
            one_row(n, || format!("key {uuid}"))?;
            put_store_mac(&tx, store_mac).map_err(backend)?;
            tx.commit().map_err(backend)
        })
    }

    fn add_version(
        &self,
        uuid: Uuid,
        v: &WrappedVersion,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO key_versions (uuid, version, wrap_scheme, wrapped, nonces_reserved,
                                           created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    uuid.to_string(),
                    v.version,
                    v.scheme,
                    v.wrapped,
                    count_to_sql(v.nonces_reserved).map_err(backend)?,
                    v.created_at_ms
                ],
            )
            .map_err(backend)?;
            let n = tx
                .execute(
                    "UPDATE keys SET current_version = ?2, mac = ?3 WHERE uuid = ?1",
                    params![uuid.to_string(), v.version, mac.as_slice()],
                )
                .map_err(backend)?;
            one_row(n, || format!("key {uuid}"))?;
            put_store_mac(&tx, store_mac).map_err(backend)?;
            tx.commit().map_err(backend)
        })
    }

    fn set_attributes(
        &self,
        uuid: Uuid,
        attributes: &Attributes,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError> {
        let Attributes {
            alias,
            description,
            rotation,
            policy,
            tags,
        } = attributes;
        self.with(|c| {
            let tx = c.transaction().map_err(backend)?;
            let n = tx
                .execute(
                    "UPDATE keys SET alias = ?2, description = ?3, rotation_enabled = ?4,
                                     rotation_interval_days = ?5, rotation_since_ms = ?6, mac = ?7,
                                     context_required = ?8, deletion_allowed = ?9, tags = ?10
                     WHERE uuid = ?1",
                    params![
                        uuid.to_string(),
                        alias,
                        description,
                        rotation.enabled,
                        rotation.interval_days,
                        rotation.since_ms,
                        mac.as_slice(),
                        policy.context_required,
                        policy.deletion_allowed,
                        super::tags_to_text(tags),
                    ],
                )
                .map_err(|e| conflict_of(&e).map_or_else(|| backend(e), StoreError::Conflict))?;
            one_row(n, || format!("key {uuid}"))?;
            put_store_mac(&tx, store_mac).map_err(backend)?;
            tx.commit().map_err(backend)
        })
    }

    fn reserve_nonces(
        &self,
        uuid: Uuid,
        version: u32,
        block: u64,
        limit: u64,
    ) -> Result<std::ops::Range<u64>, StoreError> {
        self.with(|c| {
            // IMMEDIATE: the write lock is taken before the count is read, so that another
            // connection to the same file cannot read the same count in between.
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let stored: Option<i64> = tx
                .query_row(
                    "SELECT nonces_reserved FROM key_versions WHERE uuid = ?1 AND version = ?2",
                    params![uuid.to_string(), version],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let stored = stored.ok_or_else(|| {
                StoreError::Corrupt(format!("key {uuid} has no version {version}"))
            })?;
            let stored = u64::try_from(stored).map_err(|e| {
                StoreError::Corrupt(format!("key {uuid} version {version}: nonce count: {e}"))
            })?;
            let start = stored.min(limit);
            let end = stored.saturating_add(block).min(limit);
            if end > stored {
                tx.execute(
                    "UPDATE key_versions SET nonces_reserved = ?3 WHERE uuid = ?1 AND version = ?2",
                    params![
                        uuid.to_string(),
                        version,
                        count_to_sql(end).map_err(backend)?
                    ],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(start..end)
        })
    }

    fn delete_key(&self, uuid: Uuid, store_mac: &Mac) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "DELETE FROM keys WHERE uuid = ?1",
                params![uuid.to_string()],
            )
            .map_err(backend)?;
            put_store_mac(&tx, store_mac).map_err(backend)?;
            tx.commit().map_err(backend)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Tags;

    /// A store MAC: the store keeps it, the keyring's tests check it.
    const M: &Mac = &[0x5a; 32];

    fn rec(uuid: u128, alias: &str, creator: Creator, service: &str) -> KeyRecord {
        KeyRecord {
            uuid: Uuid::from_u128(uuid),
            domain: DomainId::parse("d").unwrap(),
            region: RegionId::parse("r").unwrap(),
            alias: alias.into(),
            description: String::new(),
            state: KeyState::Enabled,
            creator,
            service: service.into(),
            created_at_ms: 1,
            deletion_date_ms: None,
            current_version: 1,
            versions: vec![WrappedVersion {
                version: 1,
                scheme: 1,
                wrapped: vec![1; 40],
                nonces_reserved: 0,
                created_at_ms: 1,
            }],
            mac: Some([u8::try_from(uuid % 251).unwrap(); 32]),
            rotation: Rotation::default(),
            policy: KeyPolicy::default(),
            tags: Tags::new(),
        }
    }

    #[test]
    fn keys_persist_across_reopen_with_their_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
                .unwrap();
            s.add_version(
                Uuid::from_u128(1),
                &WrappedVersion {
                    version: 2,
                    scheme: 1,
                    wrapped: vec![2; 40],
                    nonces_reserved: 0,
                    created_at_ms: 2,
                },
                &[2; 32],
                &[0xa2; 32],
            )
            .unwrap();
            s.set_state(
                Uuid::from_u128(1),
                KeyState::PendingDeletion,
                Some(99),
                &[3; 32],
                &[0xa3; 32],
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let all = s.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].current_version, 2);
        assert_eq!(all[0].versions.len(), 2);
        assert_eq!(all[0].state, KeyState::PendingDeletion);
        assert_eq!(all[0].deletion_date_ms, Some(99));
        // The record MAC and the store MAC of the last write.
        assert_eq!(all[0].mac, Some([3; 32]));
        assert_eq!(s.store_mac().unwrap(), Some([0xa3; 32]));
        s.delete_key(Uuid::from_u128(1), &[0xa4; 32]).unwrap();
        assert!(s.load_all().unwrap().is_empty());
        assert_eq!(s.store_mac().unwrap(), Some([0xa4; 32]));
    }

    #[test]
    fn a_write_to_a_key_that_is_not_stored_fails_and_leaves_the_store_mac() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
        assert_eq!(s.store_mac().unwrap(), None);
        s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
            .unwrap();
        let ghost = Uuid::from_u128(2);
        let e = s
            .set_state(ghost, KeyState::Disabled, None, &[1; 32], &[1; 32])
            .unwrap_err();
        assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
        assert_eq!(s.store_mac().unwrap(), Some(*M));
    }

    #[test]
    fn attributes_and_version_times_persist_and_aliases_stay_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        let changed = Attributes {
            alias: "c".into(),
            description: "described".into(),
            rotation: Rotation {
                enabled: true,
                interval_days: 30,
                since_ms: 7,
            },
            policy: KeyPolicy {
                context_required: true,
                deletion_allowed: true,
            },
            tags: Tags::from([("team".to_owned(), "storage".to_owned())]),
        };
        {
            let s = SqliteStore::open(&path).unwrap();
            s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
                .unwrap();
            s.insert_key(&rec(2, "b", Creator::Customer, ""), M)
                .unwrap();
            s.set_attributes(Uuid::from_u128(1), &changed, M, M)
                .unwrap();
            let taken = Attributes {
                alias: "c".into(),
                ..rec(2, "b", Creator::Customer, "").attributes()
            };
            let e = s
                .set_attributes(Uuid::from_u128(2), &taken, M, M)
                .unwrap_err();
            assert!(matches!(e, StoreError::Conflict(Conflict::Alias)), "{e}");
            assert!(
                s.set_attributes(Uuid::from_u128(9), &changed, M, M)
                    .is_err(),
                "an absent key"
            );
        }
        let all = SqliteStore::open(&path).unwrap().load_all().unwrap();
        let (one, two) = (&all[0], &all[1]);
        assert_eq!(one.attributes(), changed);
        assert_eq!(one.versions[0].created_at_ms, 1);
        assert_eq!(
            (two.alias.as_str(), two.rotation, two.policy, two.tags.len()),
            ("b", Rotation::default(), KeyPolicy::default(), 0)
        );
    }

    #[test]
    fn alias_and_uuid_are_unique_and_a_failed_insert_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
        s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
            .unwrap();
        let e = s
            .insert_key(&rec(2, "a", Creator::Customer, ""), M)
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::Alias)), "{e}");
        let e = s
            .insert_key(&rec(1, "b", Creator::Customer, ""), M)
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(Conflict::Uuid)), "{e}");
        // Empty aliases do not collide.
        s.insert_key(&rec(3, "", Creator::Customer, ""), M).unwrap();
        s.insert_key(&rec(4, "", Creator::Customer, ""), M).unwrap();
        assert_eq!(s.load_all().unwrap().len(), 3);
    }

    #[test]
    fn default_key_insert_returns_the_first_one_stored() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
        let a = s
            .insert_default_key(&rec(10, "obs/default", Creator::Service, "obs"), M)
            .unwrap();
        let b = s
            .insert_default_key(&rec(11, "obs/default", Creator::Service, "obs"), M)
            .unwrap();
        assert_eq!(a.uuid, Uuid::from_u128(10));
        assert_eq!(b.uuid, Uuid::from_u128(10));
        assert_eq!(s.load_all().unwrap().len(), 1);
    }

    #[test]
    fn migrations_reach_the_current_version_and_drop_the_old_audit_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, i64::try_from(MIGRATIONS.len()).unwrap());
        let audit: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(audit, 0);
    }

    #[test]
    fn the_identity_round_trips_and_a_new_database_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.identity().unwrap(), None);
        let id = StoreIdentity {
            store_id: Uuid::from_u128(7),
            root_check: vec![9; 32],
        };
        s.set_identity(&id).unwrap();
        drop(s);
        assert_eq!(
            SqliteStore::open(&path).unwrap().identity().unwrap(),
            Some(id)
        );
    }

    #[test]
    fn nonce_reservations_persist_and_a_schema_3_database_starts_them_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
                .unwrap();
        }
        // Back to schema 3, as a daemon before the nonce count left it.
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(BACK_TO_SCHEMA_5).unwrap();
            c.execute_batch(
                "ALTER TABLE keys DROP COLUMN mac; DROP TABLE store_mac;
                 ALTER TABLE key_versions DROP COLUMN nonces_reserved; PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load_all().unwrap()[0].versions[0].nonces_reserved, 0);
        assert_eq!(
            s.reserve_nonces(Uuid::from_u128(1), 1, 1 << 32, 1 << 32)
                .unwrap(),
            0..1 << 32
        );
        let e = s
            .reserve_nonces(Uuid::from_u128(1), 2, 5, 1 << 32)
            .unwrap_err();
        assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            s.load_all().unwrap()[0].versions[0].nonces_reserved,
            1 << 32
        );
    }

    #[test]
    fn nonce_grants_add_up_and_stop_at_the_limit_with_a_partial_last_block() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
        s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
            .unwrap();
        let u = Uuid::from_u128(1);
        assert_eq!(s.reserve_nonces(u, 1, 10, 25).unwrap(), 0..10);
        assert_eq!(s.reserve_nonces(u, 1, 10, 25).unwrap(), 10..20);
        assert_eq!(s.reserve_nonces(u, 1, 10, 25).unwrap(), 20..25);
        assert_eq!(s.reserve_nonces(u, 1, 10, 25).unwrap(), 25..25);
        assert_eq!(s.load_all().unwrap()[0].versions[0].nonces_reserved, 25);
    }

    #[test]
    fn two_connections_on_one_file_are_granted_nonces_that_never_overlap_nor_pass_the_limit() {
        const BLOCK: u64 = 7;
        const LIMIT: u64 = 2000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        let first = SqliteStore::open(&path).unwrap();
        first
            .insert_key(&rec(1, "a", Creator::Customer, ""), M)
            .unwrap();
        let second = SqliteStore::open(&path).unwrap();
        let u = Uuid::from_u128(1);
        // The grants tile 0..LIMIT exactly: none overlaps another, none passes the limit.
        kmsbox_test_support::nonce_grants::race(
            &[&first, &second, &first, &second],
            BLOCK,
            LIMIT,
            |s| s.reserve_nonces(u, 1, BLOCK, LIMIT).unwrap(),
        );
        assert_eq!(
            second.load_all().unwrap()[0].versions[0].nonces_reserved,
            LIMIT
        );
    }

    /// Undoes migration 7 -> 8.
    const BACK_TO_SCHEMA_7: &str = "ALTER TABLE keys DROP COLUMN tags;
         PRAGMA user_version = 7;";

    /// Undoes migrations 6 -> 7 -> 8.
    const BACK_TO_SCHEMA_6: &str = "ALTER TABLE keys DROP COLUMN tags;
         ALTER TABLE keys DROP COLUMN context_required;
         ALTER TABLE keys DROP COLUMN deletion_allowed;
         PRAGMA user_version = 6;";

    /// Undoes migrations 5 -> 6 -> 7 -> 8.
    const BACK_TO_SCHEMA_5: &str = "ALTER TABLE keys DROP COLUMN tags;
         ALTER TABLE keys DROP COLUMN context_required;
         ALTER TABLE keys DROP COLUMN deletion_allowed;
         ALTER TABLE keys DROP COLUMN rotation_enabled;
         ALTER TABLE keys DROP COLUMN rotation_interval_days;
         ALTER TABLE keys DROP COLUMN rotation_since_ms;
         ALTER TABLE key_versions DROP COLUMN created_at_ms;
         PRAGMA user_version = 5;";

    /// `r` stored, the database taken back by `downgrade`, then opened (and so migrated) again:
    /// the key as the migrated database holds it.
    fn migrated_back_from(downgrade: &str, r: &KeyRecord) -> KeyRecord {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        SqliteStore::open(&path).unwrap().insert_key(r, M).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(downgrade)
            .unwrap();
        SqliteStore::open(&path)
            .unwrap()
            .load_all()
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_schema_7_database_gets_keys_without_tags() {
        let mut r = rec(1, "a", Creator::Customer, "");
        r.tags.insert("team".into(), "storage".into());
        r.policy.context_required = true;
        let k = migrated_back_from(BACK_TO_SCHEMA_7, &r);
        assert!(k.tags.is_empty());
        assert!(k.policy.context_required, "the rest of the row as it was");
    }

    #[test]
    fn tags_that_are_not_a_json_object_of_strings_are_a_corrupt_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        let s = SqliteStore::open(&path).unwrap();
        s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
            .unwrap();
        for bad in ["[]", "{\"k\": 1}", "not json"] {
            s.with(|c| {
                c.execute("UPDATE keys SET tags = ?1", [bad])
                    .map_err(backend)
            })
            .unwrap();
            let e = s.load_all().err().unwrap().to_string();
            assert!(e.contains("tags"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_schema_6_database_gets_keys_whose_policy_requires_nothing() {
        let mut r = rec(1, "a", Creator::Customer, "");
        r.rotation.enabled = true;
        r.policy.context_required = true;
        let k = migrated_back_from(BACK_TO_SCHEMA_6, &r);
        assert_eq!(k.policy, KeyPolicy::default());
        assert!(k.rotation.enabled, "the rest of the row as it was");
    }

    #[test]
    fn a_schema_5_database_gets_rotation_off_and_version_times_from_its_keys() {
        let mut r = rec(1, "a", Creator::Customer, "");
        r.created_at_ms = 1_000;
        r.versions[0].created_at_ms = 1_000;
        let k = migrated_back_from(BACK_TO_SCHEMA_5, &r);
        assert_eq!(k.rotation, Rotation::default(), "rotation off, 365 days");
        assert_eq!(k.versions[0].created_at_ms, 0, "not known");
        assert_eq!(
            k.current_version_made_ms(),
            1_000,
            "version 1 was made with its key"
        );
        assert_eq!(k.next_rotation_ms(), None);
    }

    #[test]
    fn a_schema_4_database_migrates_to_keys_without_macs_and_no_store_mac() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.insert_key(&rec(1, "a", Creator::Customer, ""), M)
                .unwrap();
        }
        // Back to schema 4, as a daemon before record MACs left it.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(BACK_TO_SCHEMA_5).unwrap();
        c.execute_batch(
            "ALTER TABLE keys DROP COLUMN mac; DROP TABLE store_mac; PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(c);
        let s = SqliteStore::open(&path).unwrap();
        let all = s.load_all().unwrap();
        assert_eq!((all.len(), all[0].mac), (1, None));
        assert_eq!(s.store_mac().unwrap(), None);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(e.contains("newer"), "{e}");
    }
}
