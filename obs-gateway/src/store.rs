//! Buckets and objects on disk: object bytes in files under `<data-dir>/objects/`, metadata in
//! SQLite (`<data-dir>/gateway.sqlite`).
//!
//! A write becomes visible only when complete: the body goes to a temporary file under
//! `<data-dir>/tmp/`, is fsynced, renamed into `objects/` under a fresh name, and only then does
//! one SQLite transaction make the metadata row point at it. A dropped connection or a refused
//! request leaves only a temporary file; a crash between rename and commit leaves an unreferenced
//! file. Both are removed at the next start ([`Store::open`]), so no partial or orphaned object
//! is ever listed or served. Concurrent writers of one key each write their own file; the last
//! commit wins whole.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use kms_proto::key_id::{DomainId, RegionId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::cors::CorsRule;
use crate::lifecycle::{self, Rule};
use crate::object_lock::{LockConfig, ObjectLock};
use crate::public_access::PublicAccessBlock;

mod versions;

pub use versions::{Removal, Version, VersionEntry, VersionRef, Versioning};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("data folder: {0}")]
    Io(#[from] std::io::Error),
    /// The bucket exists already.
    #[error("the bucket exists")]
    BucketExists {
        /// Its owner.
        owner: DomainId,
    },
    /// The bucket does not exist.
    #[error("the bucket does not exist")]
    NoSuchBucket,
    /// The bucket still holds objects.
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    /// The bucket still has multipart uploads in progress.
    #[error("the bucket has multipart uploads in progress")]
    UploadsInProgress,
    /// The write's condition does not hold of the object under the key (`found`: there is one).
    #[error("the write's condition does not hold")]
    ConditionNotMet {
        /// Whether an object is under the key.
        found: bool,
    },
    /// The write would take the bucket's objects past its quota (OBS's bucket quota).
    #[error("the bucket's quota would be exceeded")]
    QuotaExceeded,
    /// The version is protected by its retention or legal hold (Object Lock).
    #[error("the object version is protected by its object lock")]
    Locked,
    /// A stored value does not parse (the database was changed by hand).
    #[error("metadata database holds an invalid value: {0}")]
    Corrupt(String),
}

/// What must hold of the object under a key for a write to replace it (checked in the
/// transaction that replaces it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Nothing: the write replaces whatever is there.
    Any,
    /// `If-None-Match: *`: no object under the key.
    Absent,
    /// `If-Match`: an object whose ETag is in this entity-tag list.
    Matches(String),
}

impl WriteCondition {
    /// Whether the object under the key now (its ETag, if there is one) meets the condition.
    pub fn holds(&self, stored_etag: Option<&str>) -> bool {
        match (self, stored_etag) {
            (Self::Any, _) => true,
            (Self::Absent, found) => found.is_none(),
            (Self::Matches(m), Some(etag)) => etag_matches(m, etag),
            (Self::Matches(_), None) => false,
        }
    }
}

/// What must hold of the object under a key for a delete to remove it (S3's conditional
/// deletes); checked in the transaction that deletes it. None of them: the delete removes
/// whatever is there, or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteCondition {
    /// `If-Match`: an entity-tag list the object's ETag is in.
    pub etag: Option<String>,
    /// `x-amz-if-match-size`: the object's size.
    pub size: Option<u64>,
    /// `x-amz-if-match-last-modified-time`: the object's last modification, in whole seconds
    /// since the Unix epoch (as `Last-Modified` shows it).
    pub modified_secs: Option<i64>,
}

impl DeleteCondition {
    /// Whether the object under the key now (its ETag, size and modification time in
    /// milliseconds, if there is one) meets the condition.
    pub fn holds(&self, stored: Option<(&str, u64, i64)>) -> bool {
        if *self == Self::default() {
            return true;
        }
        let Some((etag, size, modified_ms)) = stored else {
            return false;
        };
        self.etag.as_deref().is_none_or(|m| etag_matches(m, etag))
            && self.size.is_none_or(|s| s == size)
            && self
                .modified_secs
                .is_none_or(|t| t == modified_ms.div_euclid(1000))
    }
}

/// An entity-tag list (`"a", W/"b"` or `*`) against an ETag without quotes.
pub fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|c| c.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|c| c == "*" || c == etag)
}

/// A bucket's row.
#[derive(Debug, Clone)]
pub struct BucketRow {
    /// The name.
    pub name: String,
    /// The owning domain.
    pub owner: DomainId,
    /// The region.
    pub region: RegionId,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Default encryption: the algorithm (`kms`) and the configured key ID, if any.
    pub default_encryption: Option<(String, Option<String>)>,
    /// The bucket policy, JSON as the owner set it.
    pub policy: Option<String>,
    /// The public access block, when one is set.
    pub public_access_block: Option<PublicAccessBlock>,
    /// OBS's bucket quota in bytes; 0 is none.
    pub quota: u64,
    /// The lifecycle rules; none without a configuration.
    pub lifecycle: Vec<Rule>,
    /// Whether writes make new versions.
    pub versioning: Versioning,
    /// The Object Lock configuration, when Object Lock is on.
    pub object_lock: Option<LockConfig>,
}

/// An object's row.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The file name under `objects/` (a UUID; also the object's version in the envelope context).
    pub file: String,
    /// The plaintext length.
    pub size: u64,
    /// The ETag, without quotes.
    pub etag: String,
    /// The `Content-Type`.
    pub content_type: Option<String>,
    /// The uploader's domain.
    pub owner: DomainId,
    /// For SSE-KMS objects, the full key ID.
    pub kms_key_id: Option<String>,
    /// User metadata (`x-obs-meta-*` / `x-amz-meta-*`), lower-case names without the prefix.
    pub meta: Vec<(String, String)>,
    /// The other headers a write sets and a read answers (`Cache-Control`,
    /// `Content-Disposition`, `Content-Encoding`, `Content-Language`, `Expires`), lower-case.
    pub headers: Vec<(String, String)>,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: i64,
    /// For SSE-KMS multipart objects: the upload's envelope header and the manifest (the file
    /// holds the part bodies only, FORMAT.md section 5).
    pub multipart: Option<(Vec<u8>, Vec<u8>)>,
    /// For an object a multipart upload made: its parts' plaintext sizes, in part order (`None`
    /// for one written whole, and for a multipart object completed before schema version 3).
    pub part_sizes: Option<Vec<u64>>,
    /// The object's tags (S3's object tagging), in the order they were given.
    pub tags: Vec<(String, String)>,
    /// For an appendable object (OBS's AppendObject): the MD5 of each append, in order; `None`
    /// for a normal object.
    pub appends: Option<Vec<[u8; 16]>>,
    /// The full-object checksum its upload carried and the gateway verified: the header's name
    /// (`x-amz-checksum-crc32`, ...) and its value, answered to reads that ask for it
    /// (`x-amz-checksum-mode: ENABLED`). Kept in the `headers` column beside the stored headers.
    pub checksum: Option<(String, String)>,
    /// For an object a multipart upload with a checksum made: each part's value of the
    /// object's algorithm, in part order (GET and HEAD by `partNumber`, GetObjectAttributes).
    pub part_checksums: Option<Vec<String>>,
    /// When the object expires (OBS's `x-obs-expires`), milliseconds since the Unix epoch: from
    /// then on no call finds it and [`Store::expire`] removes it. `None`: it does not expire.
    pub expires_ms: Option<i64>,
    /// The version's ID; `None` for the `null` version (every object of a bucket that never had
    /// versioning, and what a write makes while it is suspended). Given by the store when the
    /// object is committed, from the bucket's versioning state: a writer's value is not read.
    pub version_id: Option<String>,
    /// The version's retention and legal hold (Object Lock). Without a retention of its own, a
    /// version written into a bucket with a default retention gets that one when committed.
    pub lock: ObjectLock,
}

impl ObjectRow {
    /// For an appendable object, how many bytes of its file are committed (an append being
    /// written extends the file before its row says so); `None` for a normal object, whose file
    /// is whole.
    pub fn stored_len(&self) -> Result<Option<u64>, StoreError> {
        if self.appends.is_none() {
            return Ok(None);
        }
        match &self.multipart {
            None => Ok(Some(self.size)),
            Some((_, manifest)) => envelope::multipart::Manifest::parse(manifest)
                .and_then(|m| m.sealed_len())
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("manifest: {e}"))),
        }
    }
}

/// An object's file opened for reading, that ends where its row says: an appendable object's
/// file is read only up to its committed length ([`ObjectRow::stored_len`]).
#[derive(Debug)]
pub struct ObjectFile {
    file: std::fs::File,
    end: Option<u64>,
    pos: u64,
}

impl std::io::Read for ObjectFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = match self.end {
            Some(end) => usize::try_from(end.saturating_sub(self.pos))
                .unwrap_or(usize::MAX)
                .min(buf.len()),
            None => buf.len(),
        };
        let n = self.file.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for ObjectFile {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let to = match (to, self.end) {
            (std::io::SeekFrom::End(d), Some(end)) => {
                std::io::SeekFrom::Start(end.checked_add_signed(d).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
                })?)
            }
            (to, _) => to,
        };
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

/// A multipart upload's row.
#[derive(Debug, Clone)]
pub struct UploadRow {
    /// The upload ID (a UUID; also the object's version in the envelope context).
    pub upload_id: String,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The initiator's domain.
    pub owner: DomainId,
    /// For SSE-KMS uploads, the full key ID.
    pub kms_key_id: Option<String>,
    /// For SSE-KMS uploads, the envelope multipart header (with the wrapped data key).
    pub envelope_header: Option<Vec<u8>>,
    /// The `Content-Type` of the object.
    pub content_type: Option<String>,
    /// User metadata.
    pub meta: Vec<(String, String)>,
    /// The object's other headers ([`ObjectRow::headers`]).
    pub headers: Vec<(String, String)>,
    /// The object's tags ([`ObjectRow::tags`]).
    pub tags: Vec<(String, String)>,
    /// Initiation time.
    pub created_ms: i64,
    /// The object's life in days from its completion (OBS's `x-obs-expires`), if it has one.
    pub expires_days: Option<u32>,
    /// The checksum the upload was begun with: every part carries a value of it.
    pub checksum: Option<crate::checksum::UploadChecksum>,
    /// The object lock the object it makes gets (Object Lock), asked for at initiation.
    pub lock: ObjectLock,
}

/// An uploaded part's row.
#[derive(Debug, Clone)]
pub struct PartRow {
    /// The part number.
    pub number: u32,
    /// The file under `parts/`.
    pub file: String,
    /// The plaintext length.
    pub size: u64,
    /// The part's ETag (MD5 of its plaintext), without quotes.
    pub etag: String,
    /// For SSE-KMS parts: the salt and commitment (envelope `PartInfo`).
    pub sealed_info: Option<Vec<u8>>,
    /// Upload time.
    pub modified_ms: i64,
    /// The additional checksum the part carried, verified: its header's name and value.
    pub checksum: Option<(String, String)>,
}

/// The data folder.
#[derive(Debug)]
pub struct Store {
    objects: PathBuf,
    parts: PathBuf,
    tmp: PathBuf,
    db: Mutex<Connection>,
    /// Held by an append from its check of the object to its commit: an appendable object's file
    /// is extended in place, by one append at a time.
    appends: Mutex<()>,
    /// The earliest expiry of a stored object (`i64::MAX`: none), so that [`Store::expire`]
    /// costs a request nothing until an object falls due. Written with the database lock held.
    next_expiry: AtomicI64,
    /// The day (since the Unix epoch, UTC) of the last pass of the buckets' lifecycle rules,
    /// whose expiries all fall at midnights UTC; `i64::MIN` when a pass is due at once (at start,
    /// after a configuration changed).
    lifecycle_day: AtomicI64,
}

/// The `versions` table (an object's noncurrent versions and its delete markers,
/// `store::versions`) and its indexes: made by schema version 14's migration and by a new
/// database's [`SCHEMA`] alike.
macro_rules! versions_table {
    () => {
        "CREATE TABLE versions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            bucket TEXT NOT NULL REFERENCES buckets(name),
            key TEXT NOT NULL,
            version_id TEXT,
            delete_marker INTEGER NOT NULL DEFAULT 0,
            file TEXT UNIQUE,
            size INTEGER NOT NULL DEFAULT 0,
            etag TEXT NOT NULL DEFAULT '',
            content_type TEXT,
            owner TEXT NOT NULL,
            kms_key_id TEXT,
            meta TEXT NOT NULL DEFAULT '[]',
            modified_ms INTEGER NOT NULL,
            envelope_header BLOB,
            manifest BLOB,
            headers TEXT NOT NULL DEFAULT '[]',
            part_sizes TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            appends BLOB,
            expires_ms INTEGER,
            part_checksums TEXT,
            lock_mode TEXT,
            lock_until_ms INTEGER,
            legal_hold INTEGER NOT NULL DEFAULT 0,
            noncurrent_ms INTEGER
        );
        CREATE INDEX versions_by_key ON versions(bucket, key, seq DESC);"
    };
}

/// What each schema version adds to the one before: `MIGRATIONS[i]` takes a database of version
/// `i + 1` to `i + 2`, in one transaction that also sets the new version.
const MIGRATIONS: [&str; 14] = [
    // 2: objects and uploads keep their other headers.
    "ALTER TABLE objects ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE uploads ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';",
    // 3: a multipart object keeps its parts' sizes (GET and HEAD by `partNumber`).
    "ALTER TABLE objects ADD COLUMN part_sizes TEXT;",
    // 4: objects and uploads keep their tags.
    "ALTER TABLE objects ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE uploads ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';",
    // 5: buckets keep their tags.
    "ALTER TABLE buckets ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';",
    // 6: appendable objects keep their appends' MD5s.
    "ALTER TABLE objects ADD COLUMN appends BLOB;",
    // 7: buckets keep their CORS rules.
    "ALTER TABLE buckets ADD COLUMN cors TEXT;",
    // 8: buckets keep their quota (OBS's; 0 is none).
    "ALTER TABLE buckets ADD COLUMN quota INTEGER NOT NULL DEFAULT 0;",
    // 9: buckets keep their public access block.
    "ALTER TABLE buckets ADD COLUMN public_access_block TEXT;",
    // 10: objects keep their expiry, uploads the life in days of the object they make.
    "ALTER TABLE objects ADD COLUMN expires_ms INTEGER;
     ALTER TABLE uploads ADD COLUMN expires_days INTEGER;
     CREATE INDEX IF NOT EXISTS objects_by_expiry ON objects(expires_ms) WHERE expires_ms IS NOT NULL;",
    // 11: buckets keep their lifecycle rules.
    "ALTER TABLE buckets ADD COLUMN lifecycle TEXT;",
    // 12: buckets keep their versioning state (`Suspended`, or none).
    "ALTER TABLE buckets ADD COLUMN versioning TEXT;",
    // 13: uploads keep their checksum algorithm, parts their checksums, and a multipart object
    // its parts' checksums.
    "ALTER TABLE uploads ADD COLUMN checksum TEXT;
     ALTER TABLE parts ADD COLUMN checksum TEXT;
     ALTER TABLE objects ADD COLUMN part_checksums TEXT;",
    // 14: objects keep their version's ID and object lock, buckets their object lock
    // configuration; the versions a key had before its current one, and delete markers, are
    // kept in `versions`.
    concat!(
        "ALTER TABLE objects ADD COLUMN version_id TEXT;
         ALTER TABLE objects ADD COLUMN lock_mode TEXT;
         ALTER TABLE objects ADD COLUMN lock_until_ms INTEGER;
         ALTER TABLE objects ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE buckets ADD COLUMN object_lock TEXT;
         ALTER TABLE uploads ADD COLUMN lock_mode TEXT;
         ALTER TABLE uploads ADD COLUMN lock_until_ms INTEGER;
         ALTER TABLE uploads ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;",
        versions_table!()
    ),
    // 15: `legal_hold` tells a hold lifted (2) from one never set (0), as S3's
    // GetObjectLegalHold does ([`hold_column`]); no row changes (a lift stored before reads as
    // never set). A gateway of version 14 would read 2 as ON, so it must not open this one.
    "SELECT 1;",
];

/// The metadata schema's version (`PRAGMA user_version`): the last [`MIGRATIONS`] step's. A
/// database of another version is refused rather than read wrongly.
#[expect(
    clippy::cast_possible_wrap,
    reason = "a dozen migrations, far from i64::MAX"
)]
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64 + 1;

const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    region TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    sse_algorithm TEXT,
    sse_key_id TEXT,
    policy TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    cors TEXT,
    quota INTEGER NOT NULL DEFAULT 0,
    public_access_block TEXT,
    lifecycle TEXT,
    versioning TEXT,
    object_lock TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    file TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT,
    owner TEXT NOT NULL,
    kms_key_id TEXT,
    meta TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    envelope_header BLOB,
    manifest BLOB,
    headers TEXT NOT NULL DEFAULT '[]',
    part_sizes TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    appends BLOB,
    expires_ms INTEGER,
    part_checksums TEXT,
    version_id TEXT,
    lock_mode TEXT,
    lock_until_ms INTEGER,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, key)
);

CREATE INDEX IF NOT EXISTS objects_by_expiry ON objects(expires_ms) WHERE expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY NOT NULL,
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    kms_key_id TEXT,
    envelope_header BLOB,
    content_type TEXT,
    meta TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    headers TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    expires_days INTEGER,
    checksum TEXT,
    lock_mode TEXT,
    lock_until_ms INTEGER,
    legal_hold INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL REFERENCES uploads(upload_id),
    number INTEGER NOT NULL,
    file TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    sealed_info BLOB,
    modified_ms INTEGER NOT NULL,
    checksum TEXT,
    PRIMARY KEY (upload_id, number)
);
",
    versions_table!()
);

impl Store {
    /// Opens (creating) the data folder's store, and removes what incomplete writes left: every
    /// temporary file, and every object file no metadata row references.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let objects = root.join("objects");
        let parts = root.join("parts");
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&objects)?;
        std::fs::create_dir_all(&parts)?;
        std::fs::create_dir_all(&tmp)?;
        let conn = Connection::open(root.join("gateway.sqlite"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tables: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        match (version, tables) {
            (SCHEMA_VERSION, _) => {}
            (v, _) if (1..SCHEMA_VERSION).contains(&v) => {
                for (to, step) in (2..)
                    .zip(MIGRATIONS)
                    .skip(usize::try_from(v - 1).unwrap_or(0))
                {
                    conn.execute_batch(&format!(
                        "BEGIN; {step} PRAGMA user_version = {to}; COMMIT;"
                    ))?;
                }
            }
            (0, 0) => {
                conn.execute_batch(SCHEMA)?;
                conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
            }
            (v, _) => {
                return Err(StoreError::Corrupt(format!(
                    "the metadata database has schema version {v}; this gateway reads version {SCHEMA_VERSION} only"
                )));
            }
        }
        let next_expiry = earliest_expiry(&conn)?;
        let store = Self {
            objects,
            parts,
            tmp,
            db: Mutex::new(conn),
            appends: Mutex::new(()),
            next_expiry: AtomicI64::new(next_expiry),
            lifecycle_day: AtomicI64::new(i64::MIN),
        };
        store.sweep()?;
        Ok(store)
    }

    fn sweep(&self) -> Result<(), StoreError> {
        for e in std::fs::read_dir(&self.tmp)? {
            std::fs::remove_file(e?.path())?;
        }
        let referenced: std::collections::HashSet<String> = {
            let db = self.lock();
            let mut st = db.prepare(
                "SELECT file FROM objects UNION ALL SELECT file FROM versions WHERE file IS NOT NULL",
            )?;
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()?
        };
        let parts: std::collections::HashSet<String> = {
            let db = self.lock();
            let mut st = db.prepare("SELECT file FROM parts")?;
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()?
        };
        for (dir, known) in [(&self.objects, &referenced), (&self.parts, &parts)] {
            for e in std::fs::read_dir(dir)? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) {
                    tracing::info!(file = %name, "removing a file no metadata references (an interrupted write)");
                    std::fs::remove_file(e.path())?;
                }
            }
        }
        Ok(())
    }

    /// Removes what has expired by `now_ms` and says how many objects went: the objects whose
    /// own expiry (`x-obs-expires`) has passed (with versioning on, as a delete marker), and, at the first call of each UTC day and after
    /// a lifecycle configuration changed, what the buckets' lifecycle rules expire (objects, and
    /// uploads left unfinished). Called at the start of every request with the request's time;
    /// until something falls due it reads two atomics and nothing else.
    pub fn expire(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut removed = self.apply_lifecycle(now_ms)?;
        if now_ms < self.next_expiry.load(Ordering::Acquire) {
            return Ok(removed);
        }
        let (expired, files) = {
            let mut db = self.lock();
            let tx = db.transaction()?;
            let expired = versions::expire_current(&tx, now_ms)?;
            let next = earliest_expiry(&tx)?;
            tx.commit()?;
            self.next_expiry.store(next, Ordering::Release);
            expired
        };
        for f in &files {
            tracing::info!(file = %f, "removing an expired object");
            remove_quietly(&self.object_path(f));
        }
        removed += expired;
        Ok(removed)
    }

    /// The lifecycle rules' pass, once per UTC day of `now_ms` (or at once after a change): every
    /// object without an expiry of its own that a rule has expired by then, and every upload a
    /// rule has ended, is removed. Rules expire only at midnights UTC, so nothing falls due
    /// between two passes but what a change of tags or rules makes due, which waits for the next
    /// midnight (as S3 removes expired objects asynchronously).
    fn apply_lifecycle(&self, now_ms: i64) -> Result<usize, StoreError> {
        let today = now_ms.div_euclid(crate::expiry::DAY_MS);
        let last = self.lifecycle_day.load(Ordering::Acquire);
        // One request runs the pass; the others go on.
        if last >= today
            || self
                .lifecycle_day
                .compare_exchange(last, today, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Ok(0);
        }
        let (objects, uploads, noncurrent, marker_rules) = {
            let db = self.lock();
            let buckets: Vec<(String, Option<String>)> = db
                .prepare("SELECT name, lifecycle FROM buckets WHERE lifecycle IS NOT NULL")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut objects = Vec::new();
            let mut uploads = Vec::new();
            let mut noncurrent = Vec::new();
            // The buckets whose rules remove lone delete markers, with those rules.
            let mut marker_rules = Vec::new();
            for (bucket, column) in buckets {
                let rules: Vec<Rule> = json_column(column)?.unwrap_or_default();
                if rules.iter().any(|r| r.noncurrent_expiration.is_some()) {
                    noncurrent.extend(versions::noncurrent_due(&db, &bucket, &rules, now_ms)?);
                }
                let mut st = db.prepare(
                    "SELECT key, size, tags, modified_ms, file FROM objects WHERE bucket = ?1 AND expires_ms IS NULL",
                )?;
                let mut rows = st.query([&bucket])?;
                while let Some(r) = rows.next()? {
                    let (key, size, tags, modified_ms, file): (String, i64, String, i64, String) =
                        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                    let size = u64::try_from(size).unwrap_or(0);
                    if lifecycle::object_expiry(&rules, &key, size, &from_json(&tags)?, modified_ms)
                        .is_some_and(|(at, _)| at <= now_ms)
                    {
                        objects.push((bucket.clone(), key, file));
                    }
                }
                let mut st =
                    db.prepare("SELECT upload_id, key, created_ms FROM uploads WHERE bucket = ?1")?;
                let mut rows = st.query([&bucket])?;
                while let Some(r) = rows.next()? {
                    let (id, key, created_ms): (String, String, i64) =
                        (r.get(0)?, r.get(1)?, r.get(2)?);
                    if lifecycle::upload_expiry(&rules, &key, created_ms)
                        .is_some_and(|at| at <= now_ms)
                    {
                        uploads.push(id);
                    }
                }
                if rules.iter().any(|r| r.expired_delete_markers) {
                    marker_rules.push((bucket, rules));
                }
            }
            (objects, uploads, noncurrent, marker_rules)
        };
        let mut removed = 0;
        for (bucket, key, file) in objects {
            let files = {
                let mut db = self.lock();
                let tx = db.transaction()?;
                // Unless it was replaced since it was read.
                let still: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1 AND key = ?2 AND file = ?3 AND expires_ms IS NULL)",
                    params![bucket, key, file],
                    |r| r.get(0),
                )?;
                let Some(row) = get_bucket(&tx, &bucket)?.filter(|_| still) else {
                    continue;
                };
                // As a delete naming no version: with versioning on, a delete marker, made by
                // the bucket's owner.
                let (files, _) = versions::delete_current(&tx, &row, &key, &row.owner, now_ms)?;
                tx.commit()?;
                files
            };
            tracing::info!(%bucket, %key, "expiring an object by its bucket's lifecycle");
            for f in files {
                remove_quietly(&self.object_path(&f));
            }
            removed += 1;
        }
        for seq in noncurrent {
            // Unless it became current again since it was read (a seq is never reused).
            let file: Option<String> = self
                .lock()
                .query_row(
                    "DELETE FROM versions WHERE seq = ?1 AND delete_marker = 0 RETURNING file",
                    [seq],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(f) = file {
                tracing::info!(file = %f, "removing a noncurrent version its bucket's lifecycle expired");
                remove_quietly(&self.object_path(&f));
                removed += 1;
            }
        }
        // After the versions above went: a marker they leave alone is removed the same day.
        versions::remove_expired_markers(&self.lock(), &marker_rules)?;
        for id in uploads {
            tracing::info!(upload = %id, "ending an upload its bucket's lifecycle expired");
            self.delete_upload(&id)?;
        }
        Ok(removed)
    }

    /// Replaces a bucket's lifecycle rules (none deletes its configuration); the next
    /// [`Store::expire`] applies them.
    pub fn set_bucket_lifecycle(&self, name: &str, rules: &[Rule]) -> Result<(), StoreError> {
        self.set_bucket_rules(name, "lifecycle", rules)?;
        self.lifecycle_day.store(i64::MIN, Ordering::Release);
        Ok(())
    }

    /// Sets a bucket's versioning state.
    pub fn set_bucket_versioning(&self, name: &str, state: Versioning) -> Result<(), StoreError> {
        self.update_bucket("versioning = ?2", params![name, state.column()])
    }

    /// The rules a bucket keeps as JSON in `column` (none without a configuration).
    fn bucket_rules<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        column: &str,
    ) -> Result<Vec<T>, StoreError> {
        let column = self
            .bucket_column::<Option<String>>(name, column)?
            .ok_or(StoreError::NoSuchBucket)?;
        Ok(json_column(column)?.unwrap_or_default())
    }

    /// Replaces the rules a bucket keeps in `column`; none removes its configuration.
    fn set_bucket_rules<T: serde::Serialize>(
        &self,
        name: &str,
        column: &str,
        rules: &[T],
    ) -> Result<(), StoreError> {
        let json = match rules {
            [] => None,
            _ => Some(
                serde_json::to_string(rules)
                    .map_err(|e| StoreError::Corrupt(format!("{column} rules: {e}")))?,
            ),
        };
        self.update_bucket(&format!("{column} = ?2"), params![name, json])
    }

    /// Lowers the earliest expiry to `expires_ms` (the caller holds the database lock and has
    /// just committed an object that expires then).
    fn expires_at(&self, expires_ms: Option<i64>) {
        if let Some(at) = expires_ms {
            self.next_expiry.fetch_min(at, Ordering::AcqRel);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is still usable.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh temporary file path for an upload's body.
    pub fn temp_path(&self) -> PathBuf {
        self.tmp.join(uuid::Uuid::new_v4().to_string())
    }

    /// The path of an object's file.
    pub fn object_path(&self, file: &str) -> PathBuf {
        self.objects.join(file)
    }

    /// The path of a part's file.
    pub fn part_path(&self, file: &str) -> PathBuf {
        self.parts.join(file)
    }

    /// Records a new multipart upload.
    pub fn create_upload(&self, row: &UploadRow) -> Result<(), StoreError> {
        let meta = to_json(&row.meta)?;
        let headers = to_json(&row.headers)?;
        let tags = to_json(&row.tags)?;
        self.lock().execute(
            "INSERT INTO uploads (upload_id, bucket, key, owner, kms_key_id, envelope_header, content_type, meta, created_ms, headers, tags, expires_days, checksum, lock_mode, lock_until_ms, legal_hold) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                row.upload_id,
                row.bucket,
                row.key,
                row.owner.as_str(),
                row.kms_key_id,
                row.envelope_header,
                row.content_type,
                meta,
                row.created_ms,
                headers,
                tags,
                row.expires_days,
                row.checksum.map(crate::checksum::UploadChecksum::to_column),
                row.lock.retention.map(|r| r.mode.name()),
                row.lock.retention.map(|r| r.until_ms),
                hold_column(row.lock.legal_hold)
            ],
        )?;
        Ok(())
    }

    /// An upload's row.
    pub fn upload(&self, upload_id: &str) -> Result<Option<UploadRow>, StoreError> {
        let db = self.lock();
        db.query_row(
            &format!("{UPLOAD_COLUMNS} WHERE upload_id = ?1"),
            [upload_id],
            |r| RawUpload::try_from(r),
        )
        .optional()?
        .map(upload_from_raw)
        .transpose()
    }

    /// The uploads of `bucket` whose key starts with `prefix` and that sort after `after`, in
    /// S3's order (by key, then initiation time, then upload ID), at most `limit`.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: &UploadPosition,
        limit: usize,
    ) -> Result<Vec<UploadRow>, StoreError> {
        let db = self.lock();
        let mut st = db.prepare(&format!(
            "{UPLOAD_COLUMNS} WHERE bucket = ?1 AND key >= ?2 AND (key > ?3 OR (key = ?3 AND (created_ms > ?4 OR (created_ms = ?4 AND upload_id > ?5)))) ORDER BY key, created_ms, upload_id LIMIT ?6"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut rows = st.query(params![
            bucket,
            prefix,
            after.key,
            after.created_ms,
            after.upload_id,
            limit
        ])?;
        while let Some(r) = rows.next()? {
            let raw = RawUpload::try_from(r)?;
            if !raw.2.starts_with(prefix) {
                break;
            }
            out.push(upload_from_raw(raw)?);
        }
        Ok(out)
    }

    /// Makes a complete, fsynced temporary file part `row` of the upload (replacing an earlier
    /// upload of the same part number, whose file is then removed).
    pub fn commit_part(
        &self,
        temp: &Path,
        upload_id: &str,
        row: &PartRow,
    ) -> Result<(), StoreError> {
        let dest = self.part_path(&row.file);
        if let Err(e) = std::fs::rename(temp, &dest) {
            let _ = std::fs::remove_file(temp);
            return Err(e.into());
        }
        let committed = (|| {
            std::fs::File::open(&self.parts).and_then(|d| d.sync_all())?;
            let mut db = self.lock();
            let tx = db.transaction()?;
            let exists: Option<String> = tx
                .query_row(
                    "SELECT upload_id FROM uploads WHERE upload_id = ?1",
                    [upload_id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::Corrupt("the upload is gone".into()));
            }
            let old: Option<String> = tx
                .query_row(
                    "SELECT file FROM parts WHERE upload_id = ?1 AND number = ?2",
                    params![upload_id, row.number],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "INSERT OR REPLACE INTO parts (upload_id, number, file, size, etag, sealed_info, modified_ms, checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    upload_id,
                    row.number,
                    row.file,
                    i64::try_from(row.size).map_err(|_| StoreError::Corrupt("size".into()))?,
                    row.etag,
                    row.sealed_info,
                    row.modified_ms,
                    row.checksum
                        .as_ref()
                        .map(|c| to_json(std::slice::from_ref(c)))
                        .transpose()?
                ],
            )?;
            tx.commit()?;
            Ok::<_, StoreError>(old)
        })();
        match committed {
            Ok(old) => {
                if let Some(old) = old {
                    remove_quietly(&self.part_path(&old));
                }
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                Err(e)
            }
        }
    }

    /// The parts of an upload, by part number.
    pub fn parts(&self, upload_id: &str) -> Result<Vec<PartRow>, StoreError> {
        let db = self.lock();
        let mut st = db.prepare(
            "SELECT number, file, size, etag, sealed_info, modified_ms, checksum FROM parts WHERE upload_id = ?1 ORDER BY number",
        )?;
        let rows = st
            .query_map([upload_id], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(number, file, size, etag, sealed_info, modified_ms, checksum)| {
                    Ok(PartRow {
                        number,
                        file,
                        size: u64::try_from(size)
                            .map_err(|_| StoreError::Corrupt("negative size".into()))?,
                        etag,
                        sealed_info,
                        modified_ms,
                        checksum: checksum
                            .map(|c| from_json(&c))
                            .transpose()?
                            .and_then(|pairs| pairs.into_iter().next()),
                    })
                },
            )
            .collect()
    }

    /// Removes an upload and its parts (abort, or after completion).
    pub fn delete_upload(&self, upload_id: &str) -> Result<bool, StoreError> {
        let files: Vec<String> = {
            let mut db = self.lock();
            let tx = db.transaction()?;
            let files = {
                let mut st = tx.prepare("SELECT file FROM parts WHERE upload_id = ?1")?;
                st.query_map([upload_id], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?
            };
            tx.execute("DELETE FROM parts WHERE upload_id = ?1", [upload_id])?;
            let n = tx.execute("DELETE FROM uploads WHERE upload_id = ?1", [upload_id])?;
            tx.commit()?;
            if n == 0 {
                return Ok(false);
            }
            files
        };
        for f in files {
            remove_quietly(&self.part_path(&f));
        }
        Ok(true)
    }

    /// Creates a bucket (with its versioning and Object Lock, as it is made with them).
    pub fn create_bucket(&self, row: &BucketRow) -> Result<(), StoreError> {
        let db = self.lock();
        if let Some(b) = get_bucket(&db, &row.name)? {
            return Err(StoreError::BucketExists { owner: b.owner });
        }
        db.execute(
            "INSERT INTO buckets (name, owner, region, created_ms, versioning, object_lock) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                row.name,
                row.owner.as_str(),
                row.region.as_str(),
                row.created_ms,
                row.versioning.column(),
                to_json_column(row.object_lock.as_ref())?
            ],
        )?;
        Ok(())
    }

    /// A bucket's row.
    pub fn bucket(&self, name: &str) -> Result<Option<BucketRow>, StoreError> {
        get_bucket(&self.lock(), name)
    }

    /// The buckets `owner` owns, by name.
    pub fn list_buckets(&self, owner: &DomainId) -> Result<Vec<BucketRow>, StoreError> {
        let db = self.lock();
        let mut st = db.prepare(&format!("{BUCKET_COLUMNS} WHERE owner = ?1 ORDER BY name"))?;
        let rows = st
            .query_map([owner.as_str()], |r| RawBucket::try_from(r))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(bucket_from_raw).collect()
    }

    /// Deletes an empty bucket.
    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let mut db = self.lock();
        let tx = db.transaction()?;
        // Every version and delete marker too, as S3 and OBS count them.
        let n: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM objects WHERE bucket = ?1) + (SELECT COUNT(*) FROM versions WHERE bucket = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if n > 0 {
            return Err(StoreError::BucketNotEmpty);
        }
        // An upload in progress holds parts (data) in the bucket too: it must be aborted or
        // completed first.
        let uploads: i64 = tx.query_row(
            "SELECT COUNT(*) FROM uploads WHERE bucket = ?1",
            [name],
            |r| r.get(0),
        )?;
        if uploads > 0 {
            return Err(StoreError::UploadsInProgress);
        }
        if tx.execute("DELETE FROM buckets WHERE name = ?1", [name])? == 0 {
            return Err(StoreError::NoSuchBucket);
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets (or with `None` removes) the bucket's default encryption.
    pub fn set_bucket_encryption(
        &self,
        name: &str,
        value: Option<(&str, Option<&str>)>,
    ) -> Result<(), StoreError> {
        let (alg, key) = value.map_or((None, None), |(a, k)| (Some(a), k));
        self.update_bucket(
            "sse_algorithm = ?2, sse_key_id = ?3",
            params![name, alg, key],
        )
    }

    /// Runs `UPDATE buckets SET <set> WHERE name = ?1` with `values`, the bucket's name first;
    /// [`StoreError::NoSuchBucket`] when no bucket has that name.
    fn update_bucket(&self, set: &str, values: &[&dyn rusqlite::ToSql]) -> Result<(), StoreError> {
        let n = self
            .lock()
            .execute(&format!("UPDATE buckets SET {set} WHERE name = ?1"), values)?;
        if n == 0 {
            return Err(StoreError::NoSuchBucket);
        }
        Ok(())
    }

    /// One column of a bucket's row; `None` when there is no such bucket.
    fn bucket_column<T: rusqlite::types::FromSql>(
        &self,
        name: &str,
        column: &str,
    ) -> Result<Option<T>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {column} FROM buckets WHERE name = ?1"),
                [name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sets (or with `None` removes) the bucket policy.
    pub fn set_bucket_policy(&self, name: &str, policy: Option<&str>) -> Result<(), StoreError> {
        self.update_bucket("policy = ?2", params![name, policy])
    }

    /// A bucket's tags; `None` when there is no such bucket.
    pub fn bucket_tags(&self, name: &str) -> Result<Option<Vec<(String, String)>>, StoreError> {
        self.bucket_column::<String>(name, "tags")?
            .map(|t| from_json(&t))
            .transpose()
    }

    /// Replaces a bucket's tags.
    pub fn set_bucket_tags(&self, name: &str, tags: &[(String, String)]) -> Result<(), StoreError> {
        self.update_bucket("tags = ?2", params![name, to_json(tags)?])
    }

    /// Sets or (`None`) deletes a bucket's public access block.
    pub fn set_public_access_block(
        &self,
        name: &str,
        block: Option<&PublicAccessBlock>,
    ) -> Result<(), StoreError> {
        let column = block
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("public access block: {e}")))?;
        self.update_bucket("public_access_block = ?2", params![name, column])
    }

    /// Sets a bucket's quota in bytes ([`BucketRow::quota`]); 0 removes it. Objects already
    /// past it stay.
    pub fn set_bucket_quota(&self, name: &str, quota: u64) -> Result<(), StoreError> {
        let quota = i64::try_from(quota).map_err(|_| StoreError::Corrupt("quota".into()))?;
        self.update_bucket("quota = ?2", params![name, quota])
    }

    /// [`StoreError::QuotaExceeded`] when an object of `size` bytes under `key` (replacing the
    /// one there) would take `bucket`'s objects past its quota: checked early, before a body is
    /// read; every commit checks again in its transaction.
    pub fn check_quota(&self, bucket: &BucketRow, key: &str, size: u64) -> Result<(), StoreError> {
        within_quota(&self.lock(), bucket, key, size)
    }

    /// A bucket's CORS rules (none when it has no CORS configuration).
    pub fn bucket_cors(&self, name: &str) -> Result<Vec<CorsRule>, StoreError> {
        self.bucket_rules(name, "cors")
    }

    /// Replaces a bucket's CORS rules; none deletes its CORS configuration.
    pub fn set_bucket_cors(&self, name: &str, rules: &[CorsRule]) -> Result<(), StoreError> {
        self.set_bucket_rules(name, "cors", rules)
    }

    /// An object's row.
    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>, StoreError> {
        object_row(&self.lock(), bucket, key)
    }

    /// The objects of `bucket` whose key starts with `prefix` and sorts after `after`, in key
    /// order, at most `limit`.
    pub fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<ObjectRow>, StoreError> {
        let db = self.lock();
        let mut st = db.prepare(&format!(
            "{OBJECT_COLUMNS} WHERE bucket = ?1 AND key > ?2 AND key >= ?3 ORDER BY key LIMIT ?4"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut rows = st.query(params![bucket, after, prefix, limit])?;
        while let Some(r) = rows.next()? {
            let raw = raw_object(r)?;
            if !raw.0.1.starts_with(prefix) {
                break;
            }
            out.push(object_from_raw(raw)?);
        }
        Ok(out)
    }

    /// Makes a complete, fsynced temporary file the object `row` describes: renames it into
    /// `objects/` as `row.file`, then commits the row in one transaction as the key's new
    /// current version, with the ID this returns (`None`: `null`): the one it replaces becomes
    /// a noncurrent version if the bucket's versioning is enabled, and is removed otherwise
    /// (`versions::make_room`). On failure nothing is visible and the file is gone.
    pub fn commit_object(
        &self,
        temp: &Path,
        row: &ObjectRow,
        condition: &WriteCondition,
    ) -> Result<Option<String>, StoreError> {
        let dest = self.object_path(&row.file);
        if let Err(e) = std::fs::rename(temp, &dest) {
            let _ = std::fs::remove_file(temp);
            return Err(e.into());
        }
        // The rename must be durable before the metadata points at it.
        if let Err(e) = std::fs::File::open(&self.objects).and_then(|d| d.sync_all()) {
            let _ = std::fs::remove_file(&dest);
            return Err(e.into());
        }
        let (old, version_id) = match self.upsert(row, condition) {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                return Err(e);
            }
        };
        for f in old {
            remove_quietly(&self.object_path(&f));
        }
        Ok(version_id)
    }

    /// Adds the complete, fsynced temporary file `temp` (an append's bytes, sealed or not) to the
    /// end of the appendable object `before`'s file, whose committed length is `stored_len`, and
    /// commits `after` (the object with the append: its size, ETag, time, manifest and appends).
    /// Refused with [`StoreError::ConditionNotMet`] when the object is no longer `before` (another
    /// append, a write or a delete came first); bytes past `stored_len` (an append a crash
    /// interrupted before its commit) are dropped first. Readers never see the bytes before the
    /// commit: they read an appendable object's file only up to its committed length. `temp` is
    /// removed in every case.
    pub fn append_object(
        &self,
        temp: &Path,
        before: &ObjectRow,
        stored_len: u64,
        after: &ObjectRow,
    ) -> Result<(), StoreError> {
        let result = self.append_locked(temp, before, stored_len, after);
        let _ = std::fs::remove_file(temp);
        result
    }

    fn append_locked(
        &self,
        temp: &Path,
        before: &ObjectRow,
        stored_len: u64,
        after: &ObjectRow,
    ) -> Result<(), StoreError> {
        use std::io::{Seek, SeekFrom};
        let _one_append = self.appends.lock().unwrap_or_else(|p| p.into_inner());
        let is_before = |row: &Option<ObjectRow>| {
            row.as_ref()
                .is_some_and(|r| r.file == before.file && r.size == before.size)
        };
        // Checked before the file is cut to `stored_len`: a stale `before` (another append
        // committed since) would cut that append's committed bytes. The commit checks again.
        let current = self.object(&before.bucket, &before.key)?;
        if !is_before(&current) {
            return Err(StoreError::ConditionNotMet {
                found: current.is_some(),
            });
        }
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .open(self.object_path(&before.file))
        {
            Ok(f) => f,
            // Replaced (and its file removed) since the check.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::ConditionNotMet { found: false });
            }
            Err(e) => return Err(e.into()),
        };
        file.set_len(stored_len)?;
        file.seek(SeekFrom::End(0))?;
        std::io::copy(&mut std::fs::File::open(temp)?, &mut file)?;
        file.sync_all()?;
        let size = i64::try_from(after.size).map_err(|_| StoreError::Corrupt("size".into()))?;
        let before_size =
            i64::try_from(before.size).map_err(|_| StoreError::Corrupt("size".into()))?;
        let mut db = self.lock();
        let tx = db.transaction()?;
        // Past the quota the bytes written stay uncommitted, and the next append cuts them.
        let bucket = get_bucket(&tx, &before.bucket)?.ok_or(StoreError::NoSuchBucket)?;
        within_quota(&tx, &bucket, &before.key, after.size)?;
        let changed = tx.execute(
            "UPDATE objects SET size = ?5, etag = ?6, modified_ms = ?7, manifest = ?8, appends = ?9, expires_ms = ?10 WHERE bucket = ?1 AND key = ?2 AND file = ?3 AND size = ?4",
            params![
                before.bucket,
                before.key,
                before.file,
                before_size,
                size,
                after.etag,
                after.modified_ms,
                after.multipart.as_ref().map(|m| &m.1),
                after.appends.as_deref().map(<[[u8; 16]]>::concat),
                after.expires_ms
            ],
        )?;
        if changed != 1 {
            return Err(StoreError::ConditionNotMet { found: true });
        }
        tx.commit()?;
        self.expires_at(after.expires_ms);
        Ok(())
    }

    /// Commits `row` as its key's current version: the files of the versions it removed, and
    /// its version's ID.
    fn upsert(
        &self,
        row: &ObjectRow,
        condition: &WriteCondition,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let mut db = self.lock();
        let tx = db.transaction()?;
        let bucket = get_bucket(&tx, &row.bucket)?.ok_or(StoreError::NoSuchBucket)?;
        let old: Option<String> = tx
            .query_row(
                "SELECT etag FROM objects WHERE bucket = ?1 AND key = ?2",
                params![row.bucket, row.key],
                |r| r.get(0),
            )
            .optional()?;
        if !condition.holds(old.as_deref()) {
            return Err(StoreError::ConditionNotMet {
                found: old.is_some(),
            });
        }
        within_quota(&tx, &bucket, &row.key, row.size)?;
        let (old, version_id) = versions::make_room(&tx, &bucket, &row.key, row.modified_ms)?;
        let mut lock = row.lock;
        if lock.retention.is_none()
            && let Some(default) = bucket.object_lock.and_then(|c| c.default)
        {
            lock.retention = Some(default.retention(row.modified_ms));
        }
        let meta = to_json(&row.meta)?;
        let headers = headers_column(row)?;
        let tags = to_json(&row.tags)?;
        let part_sizes = to_json_column(row.part_sizes.as_ref())?;
        let part_checksums = to_json_column(row.part_checksums.as_ref())?;
        tx.execute(
            &format!("INSERT INTO objects ({OBJECT_DATA}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"),
            params![
                row.bucket,
                row.key,
                row.file,
                i64::try_from(row.size).map_err(|_| StoreError::Corrupt("size".into()))?,
                row.etag,
                row.content_type,
                row.owner.as_str(),
                row.kms_key_id,
                meta,
                row.modified_ms,
                row.multipart.as_ref().map(|m| &m.0),
                row.multipart.as_ref().map(|m| &m.1),
                headers,
                part_sizes,
                tags,
                row.appends.as_deref().map(<[[u8; 16]]>::concat),
                row.expires_ms,
                part_checksums,
                version_id,
                lock.retention.map(|r| r.mode.name()),
                lock.retention.map(|r| r.until_ms),
                hold_column(lock.legal_hold)
            ],
        )?;
        tx.commit()?;
        self.expires_at(row.expires_ms);
        Ok((old, version_id))
    }

    /// Replaces the content type, stored headers, user metadata and expiry of the object `row`
    /// names, if it is still that object (the same file); `false` otherwise. The rest of it
    /// (body, ETag, modification time, tags) stays.
    pub fn set_object_metadata(&self, row: &ObjectRow) -> Result<bool, StoreError> {
        let meta = to_json(&row.meta)?;
        let headers = headers_column(row)?;
        let db = self.lock();
        let n = db.execute(
            "UPDATE objects SET content_type = ?4, meta = ?5, headers = ?6, expires_ms = ?7 WHERE bucket = ?1 AND key = ?2 AND file = ?3",
            params![
                row.bucket,
                row.key,
                row.file,
                row.content_type,
                meta,
                headers,
                row.expires_ms
            ],
        )?;
        self.expires_at(row.expires_ms);
        Ok(n == 1)
    }

    /// How many objects `bucket` holds and their total size in bytes, every version counted
    /// (uploads in progress and delete markers not).
    pub fn bucket_usage(&self, bucket: &str) -> Result<(u64, u64), StoreError> {
        let (count, size): (i64, i64) = self.lock().query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT size FROM objects WHERE bucket = ?1 UNION ALL SELECT size FROM versions WHERE bucket = ?1 AND delete_marker = 0)",
            [bucket],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let non_negative =
            |n: i64| u64::try_from(n).map_err(|_| StoreError::Corrupt("negative size".into()));
        Ok((non_negative(count)?, non_negative(size)?))
    }
}

/// Whether `bucket`'s objects, every version counted, with a new one of `size` bytes under
/// `key`, stay within its quota (no quota: always). The new one replaces the `null` version of
/// `key`, unless the bucket's versioning is enabled.
fn within_quota(
    db: &Connection,
    bucket: &BucketRow,
    key: &str,
    size: u64,
) -> Result<(), StoreError> {
    let quota = bucket.quota;
    if quota == 0 {
        return Ok(());
    }
    let replaces_null = bucket.versioning != Versioning::Enabled;
    let others: i64 = db.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT key, version_id, size FROM objects WHERE bucket = ?1 UNION ALL SELECT key, version_id, size FROM versions WHERE bucket = ?1) WHERE NOT (?3 AND key = ?2 AND version_id IS NULL)",
        params![bucket.name, key, replaces_null],
        |r| r.get(0),
    )?;
    let others = u64::try_from(others).map_err(|_| StoreError::Corrupt("negative size".into()))?;
    if others.saturating_add(size) > quota {
        return Err(StoreError::QuotaExceeded);
    }
    Ok(())
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        // The next start's sweep removes it.
        tracing::warn!(path = %path.display(), error = %e, "could not remove a replaced object file");
    }
}

const BUCKET_COLUMNS: &str = "SELECT name, owner, region, created_ms, sse_algorithm, sse_key_id, policy, public_access_block, quota, lifecycle, versioning, object_lock FROM buckets";

type RawBucket = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn bucket_from_raw(raw: RawBucket) -> Result<BucketRow, StoreError> {
    let (
        name,
        owner,
        region,
        created_ms,
        alg,
        key,
        policy,
        public_access_block,
        quota,
        lifecycle,
        versioning,
        object_lock,
    ) = raw;
    Ok(BucketRow {
        owner: DomainId::parse(&owner).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        region: RegionId::parse(&region).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name,
        created_ms,
        default_encryption: alg.map(|a| (a, key)),
        policy,
        public_access_block: json_column(public_access_block)?,
        quota: u64::try_from(quota).map_err(|_| StoreError::Corrupt("negative quota".into()))?,
        lifecycle: json_column(lifecycle)?.unwrap_or_default(),
        versioning: Versioning::from_column(versioning.as_deref())?,
        object_lock: json_column(object_lock)?,
    })
}

/// A JSON column's value (none when the column is NULL).
fn json_column<T: serde::de::DeserializeOwned>(
    column: Option<String>,
) -> Result<Option<T>, StoreError> {
    column
        .map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// A value as its nullable JSON column keeps it.
fn to_json_column<T: serde::Serialize>(value: Option<&T>) -> Result<Option<String>, StoreError> {
    value
        .map(|v| serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

fn get_bucket(db: &Connection, name: &str) -> Result<Option<BucketRow>, StoreError> {
    let raw = db
        .query_row(&format!("{BUCKET_COLUMNS} WHERE name = ?1"), [name], |r| {
            RawBucket::try_from(r)
        })
        .optional()?;
    raw.map(bucket_from_raw).transpose()
}

/// Where a listing of uploads resumes: after every upload of a key before `key`, and after those
/// of `key` initiated before `created_ms` (or then, with an ID up to `upload_id`).
#[derive(Debug)]
pub struct UploadPosition {
    /// The last key listed.
    pub key: String,
    /// The last listed upload's initiation time: `i64::MAX` to resume after all of `key`'s
    /// uploads, `i64::MIN` to list them all.
    pub created_ms: i64,
    /// The last listed upload's ID.
    pub upload_id: String,
}

const UPLOAD_COLUMNS: &str = "SELECT upload_id, bucket, key, owner, kms_key_id, envelope_header, content_type, meta, created_ms, headers, tags, expires_days, checksum, lock_mode, lock_until_ms, legal_hold FROM uploads";

type RawUpload = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    String,
    i64,
    String,
    String,
    Option<u32>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
);

fn upload_from_raw(
    (
        upload_id,
        bucket,
        key,
        owner,
        kms_key_id,
        envelope_header,
        content_type,
        meta,
        created_ms,
        headers,
        tags,
        expires_days,
        checksum,
        lock_mode,
        lock_until_ms,
        legal_hold,
    ): RawUpload,
) -> Result<UploadRow, StoreError> {
    Ok(UploadRow {
        upload_id,
        bucket,
        key,
        owner: DomainId::parse(&owner).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        kms_key_id,
        envelope_header,
        content_type,
        meta: from_json(&meta)?,
        headers: from_json(&headers)?,
        tags: from_json(&tags)?,
        created_ms,
        expires_days,
        checksum: checksum
            .map(|c| crate::checksum::UploadChecksum::from_column(&c))
            .transpose()
            .map_err(StoreError::Corrupt)?,
        lock: lock_from_columns(lock_mode, lock_until_ms, legal_hold)?,
    })
}

/// A legal hold as the `legal_hold` column keeps it: 0 never set (and every OFF stored before
/// schema version 15, which kept ON or OFF only), 1 ON, 2 OFF (lifted).
pub(crate) fn hold_column(hold: Option<bool>) -> i64 {
    match hold {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    }
}

/// An object lock as its three columns keep it (`lock_mode`, `lock_until_ms`, `legal_hold`).
fn lock_from_columns(
    mode: Option<String>,
    until_ms: Option<i64>,
    legal_hold: i64,
) -> Result<ObjectLock, StoreError> {
    let retention = match (mode, until_ms) {
        (Some(mode), Some(until_ms)) => Some(crate::object_lock::Retention {
            mode: crate::object_lock::LockMode::parse(&mode)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            until_ms,
        }),
        _ => None,
    };
    let legal_hold = match legal_hold {
        0 => None,
        1 => Some(true),
        2 => Some(false),
        other => return Err(StoreError::Corrupt(format!("legal hold {other}"))),
    };
    Ok(ObjectLock {
        retention,
        legal_hold,
    })
}

/// The columns of an object's row, in [`RawObjectRow`]'s order; `objects` and `versions` both
/// have them.
const OBJECT_DATA: &str = "bucket, key, file, size, etag, content_type, owner, kms_key_id, meta, modified_ms, envelope_header, manifest, headers, part_sizes, tags, appends, expires_ms, part_checksums, version_id, lock_mode, lock_until_ms, legal_hold";

const OBJECT_COLUMNS: &str = "SELECT bucket, key, file, size, etag, content_type, owner, kms_key_id, meta, modified_ms, envelope_header, manifest, headers, part_sizes, tags, appends, expires_ms, part_checksums, version_id, lock_mode, lock_until_ms, legal_hold FROM objects";

type RawObject = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    String,
    Option<String>,
    String,
    Option<Vec<u8>>,
);

/// The row of `bucket`/`key`, read on `db` (the caller holds the lock).
fn object_row(db: &Connection, bucket: &str, key: &str) -> Result<Option<ObjectRow>, StoreError> {
    db.query_row(
        &format!("{OBJECT_COLUMNS} WHERE bucket = ?1 AND key = ?2"),
        params![bucket, key],
        raw_object,
    )
    .optional()?
    .map(object_from_raw)
    .transpose()
}

/// An objects row read with [`OBJECT_COLUMNS`]: rusqlite reads tuples of at most 16 columns, so
/// the 17th to 22nd, the expiry, the parts' checksums, the version's ID and its object lock, are
/// read beside them.
fn raw_object(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawObjectRow> {
    Ok((
        RawObject::try_from(r)?,
        r.get(16)?,
        r.get(17)?,
        r.get(18)?,
        (r.get(19)?, r.get(20)?, r.get(21)?),
    ))
}

/// A whole objects row: [`RawObject`], the expiry, the parts' checksums, the version's ID and
/// its object lock (mode, until, legal hold).
type RawObjectRow = (
    RawObject,
    Option<i64>,
    Option<String>,
    Option<String>,
    (Option<String>, Option<i64>, i64),
);

/// The earliest expiry of a stored object, `i64::MAX` when none expires.
fn earliest_expiry(db: &Connection) -> Result<i64, StoreError> {
    let min: Option<i64> = db.query_row("SELECT MIN(expires_ms) FROM objects", [], |r| r.get(0))?;
    Ok(min.unwrap_or(i64::MAX))
}

fn object_from_raw(
    (raw, expires_ms, part_checksums, version_id, (lock_mode, lock_until_ms, legal_hold)): RawObjectRow,
) -> Result<ObjectRow, StoreError> {
    let lock = lock_from_columns(lock_mode, lock_until_ms, legal_hold)?;
    let (
        bucket,
        key,
        file,
        size,
        etag,
        content_type,
        owner,
        kms_key_id,
        meta,
        modified_ms,
        header,
        manifest,
        headers,
        part_sizes,
        tags,
        appends,
    ) = raw;
    let (checksum, headers): (Vec<_>, Vec<_>) = from_json(&headers)?
        .into_iter()
        .partition(|(n, _): &(String, String)| crate::checksum::Algorithm::is_header(n));
    let checksum = checksum.into_iter().next();
    Ok(ObjectRow {
        bucket,
        key,
        file,
        size: u64::try_from(size).map_err(|_| StoreError::Corrupt("negative size".into()))?,
        etag,
        content_type,
        owner: DomainId::parse(&owner).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        kms_key_id,
        meta: from_json(&meta)?,
        headers,
        checksum,
        modified_ms,
        multipart: header.zip(manifest),
        part_sizes: json_column(part_sizes)?,
        part_checksums: json_column(part_checksums)?,
        tags: from_json(&tags)?,
        expires_ms,
        version_id,
        lock,
        appends: appends
            .map(|a| {
                let (md5s, rest) = a.as_chunks::<16>();
                if rest.is_empty() {
                    Ok(md5s.to_vec())
                } else {
                    Err(StoreError::Corrupt("appends: not whole MD5s".into()))
                }
            })
            .transpose()?,
    })
}

/// Name-value pairs as their JSON column holds them.
/// The `headers` column of `row`: its stored headers, and its checksum among them.
fn headers_column(row: &ObjectRow) -> Result<String, StoreError> {
    match &row.checksum {
        None => to_json(&row.headers),
        Some(c) => to_json(&[row.headers.as_slice(), std::slice::from_ref(c)].concat()),
    }
}

fn to_json(pairs: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(pairs).map_err(|e| StoreError::Corrupt(format!("metadata: {e}")))
}

fn from_json(column: &str) -> Result<Vec<(String, String)>, StoreError> {
    serde_json::from_str(column).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn bucket(name: &str) -> BucketRow {
        BucketRow {
            name: name.into(),
            owner: DomainId::parse("d1").unwrap(),
            region: RegionId::parse("region").unwrap(),
            created_ms: 0,
            default_encryption: None,
            policy: None,
            public_access_block: None,
            quota: 0,
            lifecycle: Vec::new(),
            versioning: Versioning::Off,
            object_lock: None,
        }
    }

    pub(crate) fn owner() -> DomainId {
        DomainId::parse("d1").unwrap()
    }

    /// A plaintext object row of bucket `b`, 3 bytes, ETag `e`, for tests.
    pub(crate) fn object(key: &str, file: &str) -> ObjectRow {
        ObjectRow {
            checksum: None,
            bucket: "b".into(),
            key: key.into(),
            file: file.into(),
            size: 3,
            etag: "e".into(),
            content_type: None,
            owner: DomainId::parse("d1").unwrap(),
            kms_key_id: None,
            meta: vec![],
            headers: vec![],
            modified_ms: 0,
            multipart: None,
            part_sizes: None,
            appends: None,
            tags: vec![],
            expires_ms: None,
            part_checksums: None,
            version_id: None,
            lock: ObjectLock::default(),
        }
    }

    #[test]
    fn a_committed_write_replaces_the_old_file_and_interrupted_writes_are_swept_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket(&bucket("b")).unwrap();
        for (file, body) in [("f1", "one"), ("f2", "two")] {
            let t = store.temp_path();
            std::fs::write(&t, body).unwrap();
            store
                .commit_object(&t, &object("k", file), &WriteCondition::Any)
                .unwrap();
        }
        assert_eq!(store.object("b", "k").unwrap().unwrap().file, "f2");
        assert!(
            !store.object_path("f1").exists(),
            "the replaced file is removed"
        );
        // An interrupted upload (temporary file) and a crash after rename (unreferenced file).
        std::fs::write(store.temp_path(), "partial").unwrap();
        std::fs::write(store.object_path("orphan"), "orphan").unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(!store.object_path("orphan").exists());
        assert!(store.object_path("f2").exists());
    }

    #[test]
    fn a_conditional_write_that_does_not_hold_leaves_the_stored_object_and_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket(&bucket("b")).unwrap();
        let write = |file: &str, condition: WriteCondition| {
            let t = store.temp_path();
            std::fs::write(&t, file).unwrap();
            store.commit_object(&t, &object("k", file), &condition)
        };
        write("f1", WriteCondition::Absent).unwrap();
        for (file, condition, found) in [
            ("f2", WriteCondition::Absent, true),
            ("f3", WriteCondition::Matches("\"other\"".into()), true),
        ] {
            assert!(matches!(
                write(file, condition),
                Err(StoreError::ConditionNotMet { found: f }) if f == found
            ));
            assert!(!store.object_path(file).exists(), "{file} is removed");
        }
        assert_eq!(store.object("b", "k").unwrap().unwrap().file, "f1");
        // The stored object's ETag is "e".
        write("f4", WriteCondition::Matches("\"e\"".into())).unwrap();
        assert_eq!(store.object("b", "k").unwrap().unwrap().file, "f4");
        store
            .delete_object("b", "k", &DeleteCondition::default(), &owner(), 0)
            .unwrap();
        assert!(matches!(
            write("f5", WriteCondition::Matches("*".into())),
            Err(StoreError::ConditionNotMet { found: false })
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("objects"))
                .unwrap()
                .count(),
            0
        );
    }

    /// Schema version 15 tells a lifted legal hold from one never set; a version 14 database's
    /// rows keep what they said (0: no hold, 1: ON).
    #[test]
    fn a_version_14_database_keeps_its_legal_holds_and_tells_lifted_from_never_set_after() {
        use crate::store::versions::VersionRef;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .create_bucket(&BucketRow {
                versioning: Versioning::Enabled,
                ..bucket("b")
            })
            .unwrap();
        for (key, file, hold) in [("held", "f1", Some(true)), ("free", "f2", None)] {
            let t = store.temp_path();
            std::fs::write(&t, key).unwrap();
            let row = ObjectRow {
                lock: ObjectLock {
                    retention: None,
                    legal_hold: hold,
                },
                ..object(key, file)
            };
            store.commit_object(&t, &row, &WriteCondition::Any).unwrap();
        }
        drop(store);
        let conn = Connection::open(dir.path().join("gateway.sqlite")).unwrap();
        conn.execute_batch("PRAGMA user_version = 14;").unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        let hold = |key: &str| store.object("b", key).unwrap().unwrap().lock.legal_hold;
        assert_eq!((hold("held"), hold("free")), (Some(true), None));
        assert!(
            store
                .set_legal_hold("b", "held", VersionRef::Current, false)
                .unwrap()
        );
        assert_eq!(hold("held"), Some(false), "lifted, not never set");
    }

    #[test]
    fn older_databases_are_migrated_and_their_rows_read_without_the_new_columns() {
        // What takes a current database back to version 9; the table's statements go on from there.
        const TO_9: &str = "DROP TABLE versions; ALTER TABLE objects DROP COLUMN version_id; ALTER TABLE objects DROP COLUMN lock_mode; ALTER TABLE objects DROP COLUMN lock_until_ms; ALTER TABLE objects DROP COLUMN legal_hold; ALTER TABLE buckets DROP COLUMN object_lock; ALTER TABLE uploads DROP COLUMN lock_mode; ALTER TABLE uploads DROP COLUMN lock_until_ms; ALTER TABLE uploads DROP COLUMN legal_hold; ALTER TABLE uploads DROP COLUMN checksum; ALTER TABLE parts DROP COLUMN checksum; ALTER TABLE objects DROP COLUMN part_checksums; ALTER TABLE buckets DROP COLUMN versioning; ALTER TABLE buckets DROP COLUMN lifecycle; DROP INDEX objects_by_expiry; ALTER TABLE objects DROP COLUMN expires_ms; ALTER TABLE uploads DROP COLUMN expires_days; ";
        // (version, the statements that take a version 9 database back to it)
        for (version, back) in [
            (
                1,
                "ALTER TABLE buckets DROP COLUMN public_access_block; ALTER TABLE buckets DROP COLUMN quota; ALTER TABLE buckets DROP COLUMN cors; ALTER TABLE objects DROP COLUMN appends; ALTER TABLE buckets DROP COLUMN tags; ALTER TABLE objects DROP COLUMN tags; ALTER TABLE uploads DROP COLUMN tags; ALTER TABLE objects DROP COLUMN part_sizes; ALTER TABLE objects DROP COLUMN headers; ALTER TABLE uploads DROP COLUMN headers; PRAGMA user_version = 1;",
            ),
            (
                2,
                "ALTER TABLE buckets DROP COLUMN public_access_block; ALTER TABLE buckets DROP COLUMN quota; ALTER TABLE buckets DROP COLUMN cors; ALTER TABLE objects DROP COLUMN appends; ALTER TABLE buckets DROP COLUMN tags; ALTER TABLE objects DROP COLUMN tags; ALTER TABLE uploads DROP COLUMN tags; ALTER TABLE objects DROP COLUMN part_sizes; PRAGMA user_version = 2;",
            ),
            (
                3,
                "ALTER TABLE buckets DROP COLUMN public_access_block; ALTER TABLE buckets DROP COLUMN quota; ALTER TABLE buckets DROP COLUMN cors; ALTER TABLE objects DROP COLUMN appends; ALTER TABLE buckets DROP COLUMN tags; ALTER TABLE objects DROP COLUMN tags; ALTER TABLE uploads DROP COLUMN tags; PRAGMA user_version = 3;",
            ),
            (
                4,
                "ALTER TABLE buckets DROP COLUMN public_access_block; ALTER TABLE buckets DROP COLUMN quota; ALTER TABLE buckets DROP COLUMN cors; ALTER TABLE objects DROP COLUMN appends; ALTER TABLE buckets DROP COLUMN tags; PRAGMA user_version = 4;",
            ),
            (
                5,
                "ALTER TABLE buckets DROP COLUMN public_access_block; ALTER TABLE buckets DROP COLUMN quota; ALTER TABLE buckets DROP COLUMN cors; ALTER TABLE objects DROP COLUMN appends; PRAGMA user_version = 5;",
            ),
            (
                6,
                "ALTER TABLE buckets DROP COLUMN public_access_block; ALTER TABLE buckets DROP COLUMN quota; ALTER TABLE buckets DROP COLUMN cors; PRAGMA user_version = 6;",
            ),
            (
                7,
                "ALTER TABLE buckets DROP COLUMN public_access_block; ALTER TABLE buckets DROP COLUMN quota; PRAGMA user_version = 7;",
            ),
            (
                8,
                "ALTER TABLE buckets DROP COLUMN public_access_block; PRAGMA user_version = 8;",
            ),
            (9, "PRAGMA user_version = 9;"),
            (
                10,
                "ALTER TABLE objects ADD COLUMN expires_ms INTEGER; ALTER TABLE uploads ADD COLUMN expires_days INTEGER; PRAGMA user_version = 10;",
            ),
            (
                11,
                "ALTER TABLE objects ADD COLUMN expires_ms INTEGER; ALTER TABLE uploads ADD COLUMN expires_days INTEGER; ALTER TABLE buckets ADD COLUMN lifecycle TEXT; PRAGMA user_version = 11;",
            ),
            (
                12,
                "ALTER TABLE objects ADD COLUMN expires_ms INTEGER; ALTER TABLE uploads ADD COLUMN expires_days INTEGER; ALTER TABLE buckets ADD COLUMN lifecycle TEXT; ALTER TABLE buckets ADD COLUMN versioning TEXT; PRAGMA user_version = 12;",
            ),
            (
                13,
                "ALTER TABLE objects ADD COLUMN expires_ms INTEGER; ALTER TABLE uploads ADD COLUMN expires_days INTEGER; ALTER TABLE buckets ADD COLUMN lifecycle TEXT; ALTER TABLE buckets ADD COLUMN versioning TEXT; ALTER TABLE uploads ADD COLUMN checksum TEXT; ALTER TABLE parts ADD COLUMN checksum TEXT; ALTER TABLE objects ADD COLUMN part_checksums TEXT; PRAGMA user_version = 13;",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            store.create_bucket(&bucket("b")).unwrap();
            let t = store.temp_path();
            std::fs::write(&t, "one").unwrap();
            store
                .commit_object(&t, &object("k", "f1"), &WriteCondition::Any)
                .unwrap();
            drop(store);
            let conn = Connection::open(dir.path().join("gateway.sqlite")).unwrap();
            conn.execute_batch(&format!("{TO_9}{back}")).unwrap();
            drop(conn);
            let store = Store::open(dir.path()).unwrap();
            let got = store.object("b", "k").unwrap().unwrap();
            assert_eq!(
                store.bucket_tags("b").unwrap(),
                Some(vec![]),
                "from version {version}"
            );
            store
                .set_bucket_tags("b", &[("team".into(), "storage".into())])
                .unwrap();
            assert_eq!(store.bucket_tags("b").unwrap().unwrap().len(), 1);
            assert_eq!(store.bucket_tags("absent").unwrap(), None);
            assert_eq!(
                store.bucket_cors("b").unwrap(),
                vec![],
                "from version {version}"
            );
            let rules = crate::cors::parse("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>").unwrap();
            store.set_bucket_cors("b", &rules).unwrap();
            assert_eq!(store.bucket_cors("b").unwrap(), rules);
            store.set_bucket_cors("b", &[]).unwrap();
            assert_eq!(store.bucket_cors("b").unwrap(), vec![]);
            assert_eq!(
                store.bucket("b").unwrap().unwrap().lifecycle,
                vec![],
                "from version {version}"
            );
            let rules = crate::lifecycle::parse("<LifecycleConfiguration><Rule><ID>r</ID><Prefix>x/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>", String::new).unwrap();
            store.set_bucket_lifecycle("b", &rules).unwrap();
            assert_eq!(store.bucket("b").unwrap().unwrap().lifecycle, rules);
            store.set_bucket_lifecycle("b", &[]).unwrap();
            assert_eq!(
                store.bucket("b").unwrap().unwrap().versioning,
                Versioning::Off,
                "from version {version}"
            );
            store
                .set_bucket_versioning("b", Versioning::Suspended)
                .unwrap();
            assert_eq!(
                store.bucket("b").unwrap().unwrap().versioning,
                Versioning::Suspended
            );
            assert!(matches!(
                store.set_bucket_versioning("absent", Versioning::Enabled),
                Err(StoreError::NoSuchBucket)
            ));
            assert!(matches!(
                store.bucket_cors("absent"),
                Err(StoreError::NoSuchBucket)
            ));
            let b = store.bucket("b").unwrap().unwrap();
            assert_eq!(
                (b.quota, b.public_access_block),
                (0, None),
                "from version {version}"
            );
            store.set_bucket_quota("b", 10).unwrap();
            let block = PublicAccessBlock {
                restrict_public_buckets: true,
                ..PublicAccessBlock::default()
            };
            store.set_public_access_block("b", Some(&block)).unwrap();
            let b = store.bucket("b").unwrap().unwrap();
            assert_eq!((b.quota, b.public_access_block), (10, Some(block)));
            store.set_bucket_quota("b", 0).unwrap();
            assert!(matches!(
                store.set_bucket_quota("absent", 1),
                Err(StoreError::NoSuchBucket)
            ));
            if version < 3 {
                assert_eq!(
                    (got.file.as_str(), got.headers.len(), got.part_sizes),
                    ("f1", 0, None),
                    "from version {version}"
                );
            }
            assert!(got.tags.is_empty(), "from version {version}");
            assert_eq!(got.appends, None, "from version {version}");
            assert_eq!(got.expires_ms, None, "from version {version}");
            let with_new_columns = ObjectRow {
                headers: vec![("cache-control".into(), "no-store".into())],
                part_sizes: Some(vec![102_400, 3]),
                tags: vec![("team".into(), "storage".into())],
                appends: Some(vec![[7; 16], [8; 16]]),
                checksum: Some(("x-amz-checksum-crc32".into(), "yZRlqg==-2".into())),
                part_checksums: Some(vec!["AAAAAA==".into(), "yZRlqg==".into()]),
                expires_ms: Some(i64::MAX - 1),
                ..object("k", "f2")
            };
            let t = store.temp_path();
            std::fs::write(&t, "two").unwrap();
            store
                .commit_object(&t, &with_new_columns, &WriteCondition::Any)
                .unwrap();
            let got = store.object("b", "k").unwrap().unwrap();
            assert_eq!(
                (
                    got.headers,
                    got.part_sizes,
                    got.tags.clone(),
                    got.appends,
                    got.checksum.clone(),
                    got.part_checksums.clone(),
                    got.expires_ms
                ),
                (
                    with_new_columns.headers,
                    with_new_columns.part_sizes,
                    with_new_columns.tags,
                    with_new_columns.appends,
                    with_new_columns.checksum,
                    with_new_columns.part_checksums,
                    with_new_columns.expires_ms
                ),
                "from version {version}: the checksum reads back apart from the headers"
            );
            assert!(
                store
                    .set_object_tags("b", "k", VersionRef::Current, &[])
                    .unwrap()
            );
            let untagged = store.object("b", "k").unwrap().unwrap();
            assert_eq!(
                (untagged.tags.len(), untagged.etag, untagged.modified_ms),
                (0, got.etag, got.modified_ms),
                "a tag change keeps the rest of the object"
            );
            assert!(
                !store
                    .set_object_tags("b", "absent", VersionRef::Current, &[])
                    .unwrap()
            );
            let now: i64 = store
                .lock()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(now, SCHEMA_VERSION, "from version {version}");
        }
    }

    /// An object is removed, row and file, by the first `expire` at or after its expiry, and not
    /// before; the earliest expiry follows commits, metadata changes, removals and restarts.
    #[test]
    fn objects_are_removed_at_their_expiry_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket(&bucket("b")).unwrap();
        let put = |store: &Store, key: &str, file: &str, expires_ms: Option<i64>| {
            let t = store.temp_path();
            std::fs::write(&t, "abc").unwrap();
            let row = ObjectRow {
                expires_ms,
                ..object(key, file)
            };
            store.commit_object(&t, &row, &WriteCondition::Any).unwrap();
        };
        put(&store, "day", "f-day", Some(100));
        put(&store, "two-days", "f-two", Some(200));
        put(&store, "kept", "f-kept", None);
        let keys = |store: &Store| -> Vec<String> {
            store
                .list_objects("b", "", "", 10)
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect()
        };
        let file_exists = |f: &str| dir.path().join("objects").join(f).exists();
        // (rule, the time expire runs at, removed, keys left, the first expired file still there)
        for (rule, at, removed, left, day_file) in [
            (
                "before the expiry nothing goes",
                99,
                0,
                vec!["day", "kept", "two-days"],
                true,
            ),
            (
                "at the expiry the object goes",
                100,
                1,
                vec!["kept", "two-days"],
                false,
            ),
            (
                "nothing falls due twice",
                150,
                0,
                vec!["kept", "two-days"],
                false,
            ),
        ] {
            assert_eq!(store.expire(at).unwrap(), removed, "{rule}");
            assert_eq!(keys(&store), left, "{rule}");
            assert_eq!(file_exists("f-day"), day_file, "{rule}");
        }
        // A commit that expires sooner than anything stored is found by the next expire.
        put(&store, "soon", "f-soon", Some(160));
        assert_eq!(
            store.expire(160).unwrap(),
            1,
            "a later commit's earlier expiry"
        );
        assert!(store.object("b", "soon").unwrap().is_none());
        // A metadata change sets an expiry, and a restart reads the earliest one back.
        let kept = store.object("b", "kept").unwrap().unwrap();
        assert!(
            store
                .set_object_metadata(&ObjectRow {
                    expires_ms: Some(170),
                    ..kept
                })
                .unwrap()
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.expire(169).unwrap(), 0, "after a restart, not before");
        assert_eq!(
            store.expire(170).unwrap(),
            1,
            "after a restart, at the expiry"
        );
        assert_eq!(keys(&store), vec!["two-days"]);
        assert!(!file_exists("f-kept"));
        assert_eq!(store.expire(i64::MAX).unwrap(), 1);
        assert!(keys(&store).is_empty());
        // Nothing left to expire: the bucket can go.
        store.delete_bucket("b").unwrap();
    }

    /// A bucket's lifecycle rules remove the objects and uploads they expire at the first pass
    /// after their midnight (one a day, and one after each change of rules); an object's own
    /// expiry takes precedence over them.
    #[test]
    fn lifecycle_rules_remove_what_they_expire_once_a_day_and_after_a_change() {
        const DAY: i64 = crate::expiry::DAY_MS;
        let hour = DAY / 24;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket(&bucket("b")).unwrap();
        let put = |key: &str, file: &str, modified_ms: i64, expires_ms: Option<i64>| {
            let t = store.temp_path();
            std::fs::write(&t, "abc").unwrap();
            let row = ObjectRow {
                modified_ms,
                expires_ms,
                ..object(key, file)
            };
            store.commit_object(&t, &row, &WriteCondition::Any).unwrap();
        };
        put("logs/a", "f-a", 8 * hour, None);
        put("logs/own", "f-own", 8 * hour, Some(10 * DAY));
        put("data/x", "f-x", 8 * hour, None);
        store
            .create_upload(&UploadRow {
                upload_id: "u1".into(),
                bucket: "b".into(),
                key: "up/u".into(),
                owner: DomainId::parse("d1").unwrap(),
                kms_key_id: None,
                envelope_header: None,
                content_type: None,
                meta: vec![],
                headers: vec![],
                tags: vec![],
                created_ms: 8 * hour,
                expires_days: None,
                checksum: None,
                lock: ObjectLock::default(),
            })
            .unwrap();
        let rules = crate::lifecycle::parse(
            concat!(
                "<LifecycleConfiguration>",
                "<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
                "<Rule><ID>up</ID><Prefix>up/</Prefix><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
                "</LifecycleConfiguration>"
            ),
            String::new,
        )
        .unwrap();
        store.set_bucket_lifecycle("b", &rules).unwrap();
        let keys = || -> Vec<String> {
            store
                .list_objects("b", "", "", 10)
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect()
        };
        // (rule, the time expire runs at, objects removed, keys left, the upload left)
        for (rule, at, removed, left, upload) in [
            (
                "before the rule's midnight",
                DAY + 9 * hour,
                0,
                vec!["data/x", "logs/a", "logs/own"],
                true,
            ),
            (
                "at the first pass after it",
                2 * DAY,
                1,
                vec!["data/x", "logs/own"],
                false,
            ),
        ] {
            assert_eq!(store.expire(at).unwrap(), removed, "{rule}");
            assert_eq!(keys(), left, "{rule}");
            assert_eq!(store.upload("u1").unwrap().is_some(), upload, "{rule}");
        }
        assert!(!dir.path().join("objects/f-a").exists(), "its file is gone");
        // An object that is already due when written waits for the next pass: the next day's,
        // or the one a change of rules brings.
        put("logs/late", "f-late", 0, None);
        assert_eq!(
            store.expire(2 * DAY + hour).unwrap(),
            0,
            "the day's pass has run"
        );
        assert!(store.object("b", "logs/late").unwrap().is_some());
        store.set_bucket_lifecycle("b", &rules).unwrap();
        assert_eq!(
            store.expire(2 * DAY + hour).unwrap(),
            1,
            "a change brings a pass"
        );
        // Without rules nothing more goes (the own expiry still does).
        store.set_bucket_lifecycle("b", &[]).unwrap();
        assert_eq!(store.bucket("b").unwrap().unwrap().lifecycle, vec![]);
        assert_eq!(store.expire(9 * DAY).unwrap(), 0);
        assert_eq!(
            store.expire(10 * DAY).unwrap(),
            1,
            "logs/own at its own expiry"
        );
        assert_eq!(keys(), vec!["data/x"]);
    }

    /// An append extends the object's file in place and commits only if the object is still the
    /// one it extends; readers stop at the committed length, and bytes an interrupted append left
    /// past it are dropped by the next append.
    #[test]
    fn an_append_extends_the_committed_object_and_readers_stop_at_its_committed_length() {
        use std::io::{Read, Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket(&bucket("b")).unwrap();
        let first = ObjectRow {
            appends: Some(vec![[1; 16]]),
            ..object("k", "f1")
        };
        let t = store.temp_path();
        std::fs::write(&t, "abc").unwrap();
        store
            .commit_object(&t, &first, &WriteCondition::Absent)
            .unwrap();
        let read_all = |store: &Store| {
            let Some(Version::Object((row, mut f))) =
                store.object_file("b", "k", VersionRef::Current).unwrap()
            else {
                panic!("the object is there");
            };
            let mut out = String::new();
            f.read_to_string(&mut out).unwrap();
            (row.size, out, f.seek(SeekFrom::End(0)).unwrap())
        };
        let append = |before: &ObjectRow, bytes: &str, md5: u8| {
            let t = store.temp_path();
            std::fs::write(&t, bytes).unwrap();
            let mut appends = before.appends.clone().unwrap();
            appends.push([md5; 16]);
            let after = ObjectRow {
                size: before.size + bytes.len() as u64,
                appends: Some(appends),
                ..before.clone()
            };
            let r = store.append_object(&t, before, before.size, &after);
            assert!(!t.exists(), "the temporary file is removed");
            r.map(|()| after)
        };
        let second = append(&first, "def", 2).unwrap();
        assert_eq!(read_all(&store), (6, "abcdef".into(), 6));
        // An append whose object has changed since it looked: refused, nothing added.
        assert!(matches!(
            append(&first, "xyz", 3),
            Err(StoreError::ConditionNotMet { found: true })
        ));
        // Bytes an interrupted append left: not read, then dropped.
        let mut raw = std::fs::OpenOptions::new()
            .append(true)
            .open(store.object_path("f1"))
            .unwrap();
        raw.write_all(b"LOST").unwrap();
        assert_eq!(read_all(&store), (6, "abcdef".into(), 6));
        let third = append(&second, "ghi", 4).unwrap();
        assert_eq!(read_all(&store), (9, "abcdefghi".into(), 9));
        assert_eq!(
            std::fs::read_to_string(store.object_path("f1")).unwrap(),
            "abcdefghi"
        );
        let got = store.object("b", "k").unwrap().unwrap();
        assert_eq!(got.appends, Some(vec![[1; 16], [2; 16], [4; 16]]));
        // Replaced by a normal object: an append to the old one is refused.
        let t = store.temp_path();
        std::fs::write(&t, "new").unwrap();
        store
            .commit_object(&t, &object("k", "f2"), &WriteCondition::Any)
            .unwrap();
        assert!(matches!(
            append(&third, "jkl", 5),
            Err(StoreError::ConditionNotMet { .. })
        ));
        assert_eq!(read_all(&store), (3, "new".into(), 3));
    }

    #[test]
    fn a_database_of_another_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("gateway.sqlite")).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(conn);
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }

    #[test]
    fn a_bucket_is_deleted_only_without_objects_and_uploads_and_a_write_into_a_missing_bucket_leaves_nothing()
     {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket(&bucket("b")).unwrap();
        assert!(matches!(
            store.create_bucket(&bucket("b")),
            Err(StoreError::BucketExists { .. })
        ));
        let t = store.temp_path();
        std::fs::write(&t, "x").unwrap();
        store
            .commit_object(&t, &object("k", "f1"), &WriteCondition::Any)
            .unwrap();
        assert!(matches!(
            store.delete_bucket("b"),
            Err(StoreError::BucketNotEmpty)
        ));
        assert_eq!(
            store
                .delete_object("b", "k", &DeleteCondition::default(), &owner(), 0)
                .unwrap(),
            Removal::Removed
        );
        // An upload in progress keeps the bucket until it is aborted.
        let upload = UploadRow {
            upload_id: "u1".into(),
            bucket: "b".into(),
            key: "k".into(),
            owner: DomainId::parse("d1").unwrap(),
            kms_key_id: None,
            envelope_header: None,
            content_type: None,
            meta: vec![],
            headers: vec![],
            tags: vec![],
            created_ms: 0,
            expires_days: Some(3),
            checksum: Some(crate::checksum::UploadChecksum {
                algorithm: crate::checksum::Algorithm::Crc32c,
                combination: crate::checksum::Combination::FullObject,
            }),
            lock: ObjectLock::default(),
        };
        store.create_upload(&upload).unwrap();
        let kept = store.upload("u1").unwrap().unwrap();
        assert_eq!(
            (kept.expires_days, kept.checksum),
            (Some(3), upload.checksum),
            "an upload keeps the life of the object it makes, and its checksum"
        );
        let t = store.temp_path();
        std::fs::write(&t, "part").unwrap();
        let part = PartRow {
            number: 1,
            file: "p1".into(),
            size: 4,
            etag: "e".into(),
            sealed_info: None,
            modified_ms: 0,
            checksum: Some(("x-amz-checksum-crc32c".into(), "BNbjkA==".into())),
        };
        store.commit_part(&t, "u1", &part).unwrap();
        assert_eq!(
            store.parts("u1").unwrap()[0].checksum,
            part.checksum,
            "a part keeps its checksum"
        );
        assert!(matches!(
            store.delete_bucket("b"),
            Err(StoreError::UploadsInProgress)
        ));
        store.delete_upload("u1").unwrap();
        store.delete_bucket("b").unwrap();
        let t = store.temp_path();
        std::fs::write(&t, "x").unwrap();
        assert!(
            store
                .commit_object(&t, &object("k", "f3"), &WriteCondition::Any)
                .is_err()
        );
        assert!(!store.object_path("f3").exists());
        assert!(!t.exists());
    }
}
