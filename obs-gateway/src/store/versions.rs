//! Object versions, as S3 and OBS keep them for a bucket whose versioning is enabled or
//! suspended.
//!
//! The current version of a key, when it is an object, is its row in `objects`; every other
//! version and every delete marker is a row in `versions`, ordered by `seq` (the order in which
//! it stopped being current, which is the order the versions were made in). So a key's latest
//! version is its `objects` row if it has one, else its `versions` row of the highest `seq`,
//! which is then a delete marker: when a current version goes and the next newest is an object,
//! that object is moved back into `objects` ([`promote`]). Reads and listings of current objects
//! read `objects` alone, as they did before versions were kept.
//!
//! A bucket has at most one `null` version of each key (`version_id` NULL): the one every write
//! makes while versioning is off or suspended, and which each such write replaces.

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    BucketRow, DeleteCondition, OBJECT_DATA, ObjectFile, ObjectRow, Store, StoreError, get_bucket,
    object_from_raw, raw_object, remove_quietly,
};
use crate::object_lock::ObjectLock;
use kms_proto::key_id::DomainId;

/// A bucket's versioning state (S3's and OBS's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Never configured: each key has one version, `null`, which a write replaces and a delete
    /// removes.
    Off,
    /// Each write makes a new version; a delete without a version ID adds a delete marker.
    Enabled,
    /// Writes make the `null` version (replacing the `null` version only) and a delete adds a
    /// `null` delete marker; the versions made while versioning was enabled stay.
    Suspended,
}

impl Versioning {
    /// The state as S3's `Status` names it; none when versioning was never configured.
    pub fn status(self) -> Option<&'static str> {
        match self {
            Self::Off => None,
            Self::Enabled => Some("Enabled"),
            Self::Suspended => Some("Suspended"),
        }
    }

    /// The state as the `buckets.versioning` column keeps it (S3's `Status`, or NULL).
    pub(crate) fn column(self) -> Option<&'static str> {
        self.status()
    }

    pub(super) fn from_column(column: Option<&str>) -> Result<Self, StoreError> {
        match column {
            None => Ok(Self::Off),
            Some("Enabled") => Ok(Self::Enabled),
            Some("Suspended") => Ok(Self::Suspended),
            Some(other) => Err(StoreError::Corrupt(format!("versioning state {other:?}"))),
        }
    }
}

/// Which version of a key a call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef<'a> {
    /// The current one (no `versionId`).
    Current,
    /// The version with this ID; `None` is the `null` version.
    Id(Option<&'a str>),
}

impl<'a> VersionRef<'a> {
    /// What a `versionId` parameter names: absent, the current version; `null`, the `null`
    /// version.
    pub fn of(param: Option<&'a str>) -> Self {
        match param {
            None => Self::Current,
            Some("null") => Self::Id(None),
            Some(id) => Self::Id(Some(id)),
        }
    }
}

/// A version of a key: an object, or a delete marker.
#[derive(Debug)]
pub enum Version<T> {
    /// An object's version (its row, and whatever was read with it).
    Object(T),
    /// A delete marker.
    DeleteMarker {
        /// Its version ID (`None`: `null`).
        version_id: Option<String>,
        /// When it was made.
        modified_ms: i64,
    },
}

/// What a delete that names no version did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Versioning off, and there was no object.
    Nothing,
    /// Versioning off: the object was removed.
    Removed,
    /// Versioning enabled or suspended: a delete marker with this version ID (`None`: `null`)
    /// is now the key's latest version.
    DeleteMarker(Option<String>),
}

/// One entry of a listing of versions.
#[derive(Debug)]
pub struct VersionEntry {
    /// The version's row; for a delete marker only its key, version ID, owner and time mean
    /// anything.
    pub row: ObjectRow,
    /// Whether it is a delete marker.
    pub delete_marker: bool,
    /// Whether it is its key's latest version.
    pub latest: bool,
    /// Its place among its key's versions, where a listing resumes ([`Store::list_versions`]).
    pub seq: i64,
}

/// The place of a key's current object among its versions: above every `versions` row.
const CURRENT_SEQ: i64 = i64::MAX;

const VERSION_COLUMNS: &str = "SELECT bucket, key, COALESCE(file, ''), size, etag, content_type, owner, kms_key_id, meta, modified_ms, envelope_header, manifest, headers, part_sizes, tags, appends, expires_ms, part_checksums, version_id, lock_mode, lock_until_ms, legal_hold, delete_marker, seq FROM versions";

/// A new version's ID: 32 characters, unguessable, never `null`.
fn new_version_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn version_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(super::RawObjectRow, bool, i64)> {
    Ok((raw_object(r)?, r.get(22)?, r.get(23)?))
}

/// Makes room in `bucket` for a new version of `key` made at `now_ms`, in the caller's
/// transaction: the current object (if any) becomes a noncurrent version, noncurrent since
/// then; unless versioning is enabled, the `null` version goes wherever it is. Returns the files
/// of what went (to remove once committed) and the new version's ID (`None`: `null`).
pub(super) fn make_room(
    db: &Connection,
    bucket: &BucketRow,
    key: &str,
    now_ms: i64,
) -> Result<(Vec<String>, Option<String>), StoreError> {
    let mut removed = Vec::new();
    let new_id = (bucket.versioning == Versioning::Enabled).then(new_version_id);
    if new_id.is_none() {
        let mut st = db.prepare(
            "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id IS NULL RETURNING file",
        )?;
        for f in st.query_map(params![bucket.name, key], |r| r.get::<_, Option<String>>(0))? {
            removed.extend(f?);
        }
        let mut st = db.prepare(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id IS NULL RETURNING file",
        )?;
        for f in st.query_map(params![bucket.name, key], |r| r.get::<_, String>(0))? {
            removed.push(f?);
        }
    }
    db.execute(
        &format!(
            "INSERT INTO versions ({OBJECT_DATA}, noncurrent_ms) SELECT {OBJECT_DATA}, ?3 FROM objects WHERE bucket = ?1 AND key = ?2"
        ),
        params![bucket.name, key, now_ms],
    )?;
    db.execute(
        "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
        params![bucket.name, key],
    )?;
    Ok((removed, new_id))
}

/// A delete of `key` that names no version, in the caller's transaction: without versioning the
/// object goes; with it, a delete marker by `owner` at `now_ms` becomes the latest version
/// ([`make_room`]). Returns the files of what went and what was done.
pub(super) fn delete_current(
    db: &Connection,
    bucket: &BucketRow,
    key: &str,
    owner: &DomainId,
    now_ms: i64,
) -> Result<(Vec<String>, Removal), StoreError> {
    let had: bool = db.query_row(
        "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1 AND key = ?2)",
        params![bucket.name, key],
        |r| r.get(0),
    )?;
    let (removed, id) = make_room(db, bucket, key, now_ms)?;
    if bucket.versioning == Versioning::Off {
        return Ok((
            removed,
            if had {
                Removal::Removed
            } else {
                Removal::Nothing
            },
        ));
    }
    db.execute(
        "INSERT INTO versions (bucket, key, version_id, delete_marker, owner, modified_ms) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
        params![bucket.name, key, id, owner.as_str(), now_ms],
    )?;
    Ok((removed, Removal::DeleteMarker(id)))
}

/// After a key's version was removed: when it has no current object and its newest version is
/// an object, not a delete marker, that object becomes current again.
pub(super) fn promote(db: &Connection, bucket: &str, key: &str) -> Result<(), StoreError> {
    let current: bool = db.query_row(
        "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1 AND key = ?2)",
        params![bucket, key],
        |r| r.get(0),
    )?;
    if current {
        return Ok(());
    }
    let newest: Option<(i64, bool)> = db
        .query_row(
            "SELECT seq, delete_marker FROM versions WHERE bucket = ?1 AND key = ?2 ORDER BY seq DESC LIMIT 1",
            params![bucket, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((seq, false)) = newest {
        db.execute(
            &format!("INSERT INTO objects ({OBJECT_DATA}) SELECT {OBJECT_DATA} FROM versions WHERE seq = ?1"),
            [seq],
        )?;
        db.execute("DELETE FROM versions WHERE seq = ?1", [seq])?;
    }
    Ok(())
}

/// Expires every current object whose own expiry (`x-obs-expires`) is at or before `now_ms`, in
/// the caller's transaction, as a lifecycle `Expiration` does: without versioning it is removed;
/// with versioning on, a delete marker made by the bucket's owner becomes its key's latest
/// version and the object stays as a noncurrent one, its expiry spent (noncurrent versions go by
/// ID or by a lifecycle rule). Returns how many expired and the files of what went.
pub(super) fn expire_current(
    db: &Connection,
    now_ms: i64,
) -> Result<(usize, Vec<String>), StoreError> {
    let due: Vec<(String, String)> = db
        .prepare("SELECT bucket, key FROM objects WHERE expires_ms <= ?1")?
        .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut files = Vec::new();
    for (bucket, key) in &due {
        let Some(row) = get_bucket(db, bucket)? else {
            continue;
        };
        db.execute(
            "UPDATE objects SET expires_ms = NULL WHERE bucket = ?1 AND key = ?2",
            params![bucket, key],
        )?;
        files.extend(delete_current(db, &row, key, &row.owner, now_ms)?.0);
    }
    Ok((due.len(), files))
}

/// What holds of a row its object lock does not protect at `?1` (milliseconds since the Unix
/// epoch), from anyone: a lifecycle rule bypasses nothing.
pub(super) const UNPROTECTED: &str =
    "legal_hold != 1 AND (lock_until_ms IS NULL OR lock_until_ms <= ?1)";

/// The noncurrent versions of `bucket` (their `seq`) that its lifecycle `rules` have expired by
/// `now_ms` (`NoncurrentVersionExpiration`) and their object lock does not protect, read on
/// `db`.
pub(super) fn noncurrent_due(
    db: &Connection,
    bucket: &str,
    rules: &[crate::lifecycle::Rule],
    now_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut st = db.prepare(&format!(
        "SELECT seq, key, size, tags, noncurrent_ms, {UNPROTECTED} FROM versions WHERE bucket = ?2 AND delete_marker = 0 ORDER BY key, seq DESC"
    ))?;
    let mut rows = st.query(params![now_ms, bucket])?;
    let mut due = Vec::new();
    // The key of the versions read so far, and how many of its noncurrent versions they were.
    let (mut key_of, mut newer) = (String::new(), 0usize);
    while let Some(r) = rows.next()? {
        let (seq, key, size, tags, since, unprotected): (
            i64,
            String,
            i64,
            String,
            Option<i64>,
            bool,
        ) = (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        );
        if key != key_of {
            key_of = key;
            newer = 0;
        }
        let size = u64::try_from(size).unwrap_or(0);
        let tags = super::from_json(&tags)?;
        if since
            .and_then(|since| {
                crate::lifecycle::noncurrent_expiry(rules, &key_of, size, &tags, since, newer)
            })
            .is_some_and(|at| at <= now_ms)
            && unprotected
        {
            due.push(seq);
        }
        newer += 1;
    }
    Ok(due)
}

/// Removes every delete marker that is the only version of its key left, in each of `buckets`
/// whose lifecycle rules (given with it, as the day's pass read them) say so for its key
/// (`ExpiredObjectDeleteMarker`).
pub(super) fn remove_expired_markers(
    db: &Connection,
    buckets: &[(String, Vec<crate::lifecycle::Rule>)],
) -> Result<(), StoreError> {
    for (bucket, rules) in buckets {
        let alone: Vec<(i64, String)> = db
            .prepare(
                "SELECT v.seq, v.key FROM versions v WHERE v.bucket = ?1 AND v.delete_marker = 1
                 AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.bucket = v.bucket AND o.key = v.key)
                 AND NOT EXISTS (SELECT 1 FROM versions w WHERE w.bucket = v.bucket AND w.key = v.key AND w.seq != v.seq)",
            )?
            .query_map([bucket], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (seq, key) in alone {
            if crate::lifecycle::removes_expired_marker(rules, &key) {
                tracing::info!(%bucket, %key, "removing a delete marker no version is left behind");
                db.execute("DELETE FROM versions WHERE seq = ?1", [seq])?;
            }
        }
    }
    Ok(())
}

/// A version of `key` named by `which`, read on `db`.
fn find(
    db: &Connection,
    bucket: &str,
    key: &str,
    which: VersionRef<'_>,
) -> Result<Option<Version<ObjectRow>>, StoreError> {
    let current = match which {
        VersionRef::Current => db
            .query_row(
                &format!("{} WHERE bucket = ?1 AND key = ?2", super::OBJECT_COLUMNS),
                params![bucket, key],
                raw_object,
            )
            .optional()?,
        VersionRef::Id(id) => db
            .query_row(
                &format!(
                    "{} WHERE bucket = ?1 AND key = ?2 AND version_id IS ?3",
                    super::OBJECT_COLUMNS
                ),
                params![bucket, key, id],
                raw_object,
            )
            .optional()?,
    };
    if let Some(raw) = current {
        return Ok(Some(Version::Object(object_from_raw(raw)?)));
    }
    let other = match which {
        // Without a current object the newest version is a delete marker, if there is one.
        VersionRef::Current => db
            .query_row(
                &format!(
                    "{VERSION_COLUMNS} WHERE bucket = ?1 AND key = ?2 ORDER BY seq DESC LIMIT 1"
                ),
                params![bucket, key],
                version_from_row,
            )
            .optional()?
            .filter(|(_, marker, _)| *marker),
        VersionRef::Id(id) => db
            .query_row(
                &format!("{VERSION_COLUMNS} WHERE bucket = ?1 AND key = ?2 AND version_id IS ?3"),
                params![bucket, key, id],
                version_from_row,
            )
            .optional()?,
    };
    other
        .map(|(raw, marker, _)| {
            let row = object_from_raw(raw)?;
            Ok(if marker {
                Version::DeleteMarker {
                    version_id: row.version_id,
                    modified_ms: row.modified_ms,
                }
            } else {
                Version::Object(row)
            })
        })
        .transpose()
}

impl Store {
    /// The version of `bucket`/`key` that `which` names. For [`VersionRef::Current`]: the current
    /// object, or the delete marker that is the key's latest version.
    pub fn object_version(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef<'_>,
    ) -> Result<Option<Version<ObjectRow>>, StoreError> {
        find(&self.lock(), bucket, key, which)
    }

    /// [`Store::object_version`], and for an object its file, opened while the row is read: a
    /// write or a delete unlinks a file only after its row is gone, so the file opened here is
    /// the row's even if the version is removed while it is read.
    pub fn object_file(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef<'_>,
    ) -> Result<Option<Version<(ObjectRow, ObjectFile)>>, StoreError> {
        let db = self.lock();
        let found = match find(&db, bucket, key, which)? {
            None => return Ok(None),
            Some(Version::DeleteMarker {
                version_id,
                modified_ms,
            }) => Version::DeleteMarker {
                version_id,
                modified_ms,
            },
            Some(Version::Object(row)) => {
                let file = std::fs::File::open(self.object_path(&row.file))?;
                drop(db);
                let end = row.stored_len()?;
                Version::Object((row, ObjectFile { file, end, pos: 0 }))
            }
        };
        Ok(Some(found))
    }

    /// Removes the version `version_id` (`None`: `null`) of `bucket`/`key`, an object or a
    /// delete marker, if `condition` holds of it and its object lock does not protect it at
    /// `now_ms` from a caller that does or does not bypass governance retention
    /// ([`StoreError::Locked`]); when it was the latest, the next newest takes its place. `None`
    /// when there is no such version (nothing changes), else whether it was a delete marker.
    pub fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        condition: &DeleteCondition,
        (now_ms, bypass_governance): (i64, bool),
    ) -> Result<Option<bool>, StoreError> {
        let (file, marker) = {
            let mut db = self.lock();
            let tx = db.transaction()?;
            let Some(found) = find(&tx, bucket, key, VersionRef::Id(version_id))? else {
                if *condition != DeleteCondition::default() {
                    return Err(StoreError::ConditionNotMet { found: false });
                }
                return Ok(None);
            };
            let (file, marker) = match found {
                Version::Object(row) => {
                    if !condition.holds(Some((&row.etag, row.size, row.modified_ms))) {
                        return Err(StoreError::ConditionNotMet { found: true });
                    }
                    if row.lock.protects(now_ms, bypass_governance) {
                        return Err(StoreError::Locked);
                    }
                    tx.execute(
                        "DELETE FROM objects WHERE bucket = ?1 AND key = ?2 AND file = ?3",
                        params![bucket, key, row.file],
                    )?;
                    tx.execute(
                        "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND file = ?3",
                        params![bucket, key, row.file],
                    )?;
                    (Some(row.file), false)
                }
                Version::DeleteMarker { .. } => {
                    if *condition != DeleteCondition::default() {
                        return Err(StoreError::ConditionNotMet { found: false });
                    }
                    tx.execute(
                        "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND delete_marker = 1 AND version_id IS ?3",
                        params![bucket, key, version_id],
                    )?;
                    (None, true)
                }
            };
            promote(&tx, bucket, key)?;
            tx.commit()?;
            (file, marker)
        };
        if let Some(f) = file {
            remove_quietly(&self.object_path(&f));
        }
        Ok(Some(marker))
    }

    /// Replaces the tags of the version `which` of `bucket`/`key` (an object, not a delete
    /// marker), leaving the rest of it as it is; `false` when there is no such object.
    pub fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef<'_>,
        tags: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let tags = super::to_json(tags)?;
        let db = self.lock();
        let n = match which {
            VersionRef::Current => db.execute(
                "UPDATE objects SET tags = ?3 WHERE bucket = ?1 AND key = ?2",
                params![bucket, key, tags],
            )?,
            VersionRef::Id(id) => {
                db.execute(
                    "UPDATE objects SET tags = ?3 WHERE bucket = ?1 AND key = ?2 AND version_id IS ?4",
                    params![bucket, key, tags, id],
                )? + db.execute(
                    "UPDATE versions SET tags = ?3 WHERE bucket = ?1 AND key = ?2 AND version_id IS ?4 AND delete_marker = 0",
                    params![bucket, key, tags, id],
                )?
            }
        };
        Ok(n == 1)
    }

    /// Sets the retention of the version `which` of `bucket`/`key` (an object) to `retention`
    /// (none lifts it), if its present retention allows that at `now_ms` to a caller that does
    /// or does not bypass governance retention ([`StoreError::Locked`] otherwise); `false` when
    /// there is no such object.
    pub fn set_retention(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef<'_>,
        retention: Option<crate::object_lock::Retention>,
        (now_ms, bypass_governance): (i64, bool),
    ) -> Result<bool, StoreError> {
        self.change_lock(bucket, key, which, |old| {
            if crate::object_lock::change_allowed(
                old.retention.as_ref(),
                retention.as_ref(),
                now_ms,
                bypass_governance,
            ) {
                Ok(ObjectLock { retention, ..old })
            } else {
                Err(StoreError::Locked)
            }
        })
    }

    /// Puts a legal hold on the version `which` of `bucket`/`key` (an object), or lifts it;
    /// `false` when there is no such object.
    pub fn set_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef<'_>,
        on: bool,
    ) -> Result<bool, StoreError> {
        self.change_lock(bucket, key, which, |old| {
            Ok(ObjectLock {
                legal_hold: Some(on),
                ..old
            })
        })
    }

    /// Replaces the object lock of the version `which` of `bucket`/`key` (an object) with what
    /// `change` makes of it, in one transaction; `false` when there is no such object.
    fn change_lock(
        &self,
        bucket: &str,
        key: &str,
        which: VersionRef<'_>,
        change: impl FnOnce(ObjectLock) -> Result<ObjectLock, StoreError>,
    ) -> Result<bool, StoreError> {
        let mut db = self.lock();
        let tx = db.transaction()?;
        let Some(Version::Object(row)) = find(&tx, bucket, key, which)? else {
            return Ok(false);
        };
        let new = change(row.lock)?;
        for table in ["objects", "versions"] {
            tx.execute(
                &format!(
                    "UPDATE {table} SET lock_mode = ?2, lock_until_ms = ?3, legal_hold = ?4 WHERE file = ?1"
                ),
                params![
                    row.file,
                    new.retention.map(|r| r.mode.name()),
                    new.retention.map(|r| r.until_ms),
                    super::hold_column(new.legal_hold)
                ],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Turns Object Lock on for `bucket` with `config` (its default retention), and with it
    /// versioning, for good.
    pub fn set_bucket_object_lock(
        &self,
        bucket: &str,
        config: &crate::object_lock::LockConfig,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(config)
            .map_err(|e| StoreError::Corrupt(format!("object lock: {e}")))?;
        self.update_bucket(
            "object_lock = ?2, versioning = 'Enabled'",
            params![bucket, json],
        )
    }

    /// Where a listing of versions resumes after the version `version_id` (`None`: `null`) of
    /// `key`: its place among the key's versions; `None` when there is no such version.
    pub fn version_seq(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        let db = self.lock();
        let current: bool = db.query_row(
            "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id IS ?3)",
            params![bucket, key, version_id],
            |r| r.get(0),
        )?;
        if current {
            return Ok(Some(CURRENT_SEQ));
        }
        Ok(db
            .query_row(
                "SELECT seq FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id IS ?3",
                params![bucket, key, version_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The versions and delete markers of `bucket` whose key starts with `prefix`, after the
    /// version at `after_seq` of `after_key` (`i64::MIN`: after all of that key's), in S3's
    /// order: by key, then newest first; at most `limit`.
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after_key: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<VersionEntry>, StoreError> {
        let db = self.lock();
        // Each side limited in its own index's order, then merged: a page costs its own rows,
        // not a sort of the rest of the bucket.
        let mut st = db.prepare(&format!(
            "SELECT * FROM (
                {objects}, 0 AS delete_marker, {CURRENT_SEQ} AS seq FROM objects
                WHERE bucket = ?1 AND key >= ?2 AND (key > ?3 OR (key = ?3 AND {CURRENT_SEQ} < ?4))
                ORDER BY key LIMIT ?5)
             UNION ALL
             SELECT * FROM ({VERSION_COLUMNS}
                WHERE bucket = ?1 AND key >= ?2 AND (key > ?3 OR (key = ?3 AND seq < ?4))
                ORDER BY key, seq DESC LIMIT ?5)
             ORDER BY key, seq DESC LIMIT ?5",
            objects = super::OBJECT_COLUMNS.trim_end_matches(" FROM objects"),
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = st.query(params![bucket, prefix, after_key, after_seq, limit])?;
        let mut out: Vec<VersionEntry> = Vec::new();
        while let Some(r) = rows.next()? {
            let (raw, delete_marker, seq) = version_from_row(r)?;
            if !raw.0.1.starts_with(prefix) {
                break;
            }
            let row = object_from_raw(raw)?;
            let latest = match out.last() {
                Some(prev) if prev.row.key == row.key => false,
                // The first entry of a key on this page: the newest unless the page resumed
                // inside the key.
                _ => !(row.key == after_key && after_seq != i64::MIN),
            };
            out.push(VersionEntry {
                row,
                delete_marker,
                latest,
                seq,
            });
        }
        Ok(out)
    }

    /// A delete of `bucket`/`key` that names no version, if `condition` holds of its current
    /// object: without versioning the object goes; with it, a delete marker made by `owner` at
    /// `now_ms` becomes its latest version.
    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        condition: &DeleteCondition,
        owner: &DomainId,
        now_ms: i64,
    ) -> Result<Removal, StoreError> {
        let (files, removal) = {
            let mut db = self.lock();
            let tx = db.transaction()?;
            let bucket_row = get_bucket(&tx, bucket)?.ok_or(StoreError::NoSuchBucket)?;
            let found: Option<(String, i64, i64)> = tx
                .query_row(
                    "SELECT etag, size, modified_ms FROM objects WHERE bucket = ?1 AND key = ?2",
                    params![bucket, key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let stored = found.as_ref().map(|(etag, size, modified)| {
                (etag.as_str(), u64::try_from(*size).unwrap_or(0), *modified)
            });
            if !condition.holds(stored) {
                return Err(StoreError::ConditionNotMet {
                    found: found.is_some(),
                });
            }
            let done = delete_current(&tx, &bucket_row, key, owner, now_ms)?;
            tx.commit()?;
            done
        };
        for f in &files {
            remove_quietly(&self.object_path(f));
        }
        Ok(removal)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::store::WriteCondition;
    use crate::store::tests::{bucket, object, owner};

    /// A store with bucket `b` in versioning `state`.
    fn store_in(state: Versioning) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket(&bucket("b")).unwrap();
        store.set_bucket_versioning("b", state).unwrap();
        (dir, store)
    }

    /// Writes `body` under `key` into the file `file`: the new version's ID.
    fn write(store: &Store, key: &str, file: &str, body: &str) -> Option<String> {
        let t = store.temp_path();
        std::fs::write(&t, body).unwrap();
        let row = ObjectRow {
            size: body.len() as u64,
            ..object(key, file)
        };
        store.commit_object(&t, &row, &WriteCondition::Any).unwrap()
    }

    /// What `which` of `k` reads: its body, or `marker` for a delete marker, or `none`.
    fn read(store: &Store, which: VersionRef<'_>) -> String {
        match store.object_file("b", "k", which).unwrap() {
            None => "none".into(),
            Some(Version::DeleteMarker { .. }) => "marker".into(),
            Some(Version::Object((_, mut f))) => {
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                s
            }
        }
    }

    /// The versions of `b` listed: (key, body file or `marker`, latest).
    fn listed(store: &Store) -> Vec<(String, String, bool)> {
        store
            .list_versions("b", "", "", i64::MIN, 100)
            .unwrap()
            .into_iter()
            .map(|e| {
                let what = if e.delete_marker {
                    "marker".to_owned()
                } else {
                    e.row.file
                };
                (e.row.key, what, e.latest)
            })
            .collect()
    }

    fn entry(key: &str, what: &str, latest: bool) -> (String, String, bool) {
        (key.into(), what.into(), latest)
    }

    #[test]
    fn each_write_keeps_the_last_version_and_a_delete_adds_a_marker_when_enabled() {
        let (dir, store) = store_in(Versioning::Enabled);
        let v1 = write(&store, "k", "f1", "one").expect("a version ID");
        let v2 = write(&store, "k", "f2", "two").expect("a version ID");
        assert_ne!(v1, v2);
        assert_eq!(read(&store, VersionRef::Current), "two");
        assert_eq!(read(&store, VersionRef::Id(Some(&v1))), "one");
        assert_eq!(read(&store, VersionRef::Id(None)), "none");
        let Removal::DeleteMarker(Some(m)) = store
            .delete_object("b", "k", &DeleteCondition::default(), &owner(), 5)
            .unwrap()
        else {
            panic!("a delete marker with an ID");
        };
        assert!(
            store.object("b", "k").unwrap().is_none(),
            "no current object"
        );
        assert_eq!(read(&store, VersionRef::Current), "marker");
        assert_eq!(
            listed(&store),
            [
                entry("k", "marker", true),
                entry("k", "f2", false),
                entry("k", "f1", false)
            ]
        );
        // Every version's file outlives a restart's sweep.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(read(&store, VersionRef::Id(Some(&v1))), "one");
        // Removing the marker makes the newest version current again; removing that, the next.
        assert_eq!(
            store
                .delete_version("b", "k", Some(&m), &DeleteCondition::default(), (0, false))
                .unwrap(),
            Some(true)
        );
        assert_eq!(read(&store, VersionRef::Current), "two");
        assert_eq!(
            store
                .delete_version("b", "k", Some(&v2), &DeleteCondition::default(), (0, false))
                .unwrap(),
            Some(false)
        );
        assert_eq!(read(&store, VersionRef::Current), "one");
        assert!(
            !store.object_path("f2").exists(),
            "a removed version's file goes"
        );
        assert_eq!(
            store
                .delete_version("b", "k", Some(&v2), &DeleteCondition::default(), (0, false))
                .unwrap(),
            None,
            "a version removed twice"
        );
        assert_eq!(listed(&store), [entry("k", "f1", true)]);
    }

    #[test]
    fn a_suspended_bucket_replaces_only_the_null_version() {
        let (_dir, store) = store_in(Versioning::Enabled);
        let v1 = write(&store, "k", "f1", "one").unwrap();
        store
            .set_bucket_versioning("b", Versioning::Suspended)
            .unwrap();
        assert_eq!(write(&store, "k", "f2", "two"), None);
        assert_eq!(write(&store, "k", "f3", "three"), None);
        assert!(
            !store.object_path("f2").exists(),
            "the null version replaced"
        );
        assert_eq!(read(&store, VersionRef::Id(None)), "three");
        // A delete replaces the null version with a null delete marker.
        assert_eq!(
            store
                .delete_object("b", "k", &DeleteCondition::default(), &owner(), 5)
                .unwrap(),
            Removal::DeleteMarker(None)
        );
        assert!(!store.object_path("f3").exists());
        assert_eq!(
            listed(&store),
            [entry("k", "marker", true), entry("k", "f1", false)]
        );
        assert_eq!(read(&store, VersionRef::Id(Some(&v1))), "one");
        assert!(matches!(
            store.delete_bucket("b"),
            Err(StoreError::BucketNotEmpty)
        ));
    }

    #[test]
    fn versions_count_toward_usage_and_quota() {
        let (_dir, store) = store_in(Versioning::Enabled);
        write(&store, "k", "f1", "12345");
        write(&store, "k", "f2", "1234");
        store.set_bucket_quota("b", 12).unwrap();
        let b = store.bucket("b").unwrap().unwrap();
        assert_eq!(store.bucket_usage("b").unwrap(), (2, 9));
        assert!(store.check_quota(&b, "k", 3).is_ok());
        assert!(matches!(
            store.check_quota(&b, "k", 4),
            Err(StoreError::QuotaExceeded)
        ));
        // Without versioning a write replaces the null version: what it had counts no more.
        store
            .set_bucket_versioning("b", Versioning::Suspended)
            .unwrap();
        write(&store, "k", "f3", "123");
        let b = store.bucket("b").unwrap().unwrap();
        assert!(store.check_quota(&b, "k", 3).is_ok());
        assert_eq!(store.bucket_usage("b").unwrap(), (3, 12));
    }

    #[test]
    fn an_expired_current_version_gives_way_to_a_delete_marker_and_stays() {
        let (_dir, store) = store_in(Versioning::Enabled);
        write(&store, "k", "f1", "one");
        let t = store.temp_path();
        std::fs::write(&t, "two").unwrap();
        let expiring = ObjectRow {
            expires_ms: Some(1_000),
            ..object("k", "f2")
        };
        store
            .commit_object(&t, &expiring, &WriteCondition::Any)
            .unwrap();
        assert_eq!(store.expire(999).unwrap(), 0);
        assert_eq!(read(&store, VersionRef::Current), "two");
        assert_eq!(store.expire(1_000).unwrap(), 1);
        // As a lifecycle expiration: a marker, the version kept, not the older one brought back.
        assert_eq!(read(&store, VersionRef::Current), "marker");
        assert_eq!(
            listed(&store),
            [
                entry("k", "marker", true),
                entry("k", "f2", false),
                entry("k", "f1", false)
            ]
        );
        assert_eq!(store.expire(10_000).unwrap(), 0, "its expiry is spent");
    }

    #[test]
    fn a_lifecycle_expiry_adds_a_delete_marker_when_versioning_is_on() {
        let (_dir, store) = store_in(Versioning::Enabled);
        write(&store, "k", "f1", "one");
        let rules = crate::lifecycle::parse(
            "<LifecycleConfiguration><Rule><ID>r</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
            String::new,
        )
        .unwrap();
        store.set_bucket_lifecycle("b", &rules).unwrap();
        assert_eq!(store.expire(2 * crate::expiry::DAY_MS).unwrap(), 1);
        assert_eq!(read(&store, VersionRef::Current), "marker");
        assert_eq!(
            listed(&store),
            [entry("k", "marker", true), entry("k", "f1", false)]
        );
    }

    #[test]
    fn lifecycle_rules_expire_noncurrent_versions_and_markers_left_alone() {
        let (_dir, store) = store_in(Versioning::Enabled);
        // Four versions of k, the three older ones noncurrent from days 1, 2 and 3.
        let day = crate::expiry::DAY_MS;
        for (n, file) in ["f1", "f2", "f3", "f4"].into_iter().enumerate() {
            let t = store.temp_path();
            std::fs::write(&t, file).unwrap();
            let row = ObjectRow {
                modified_ms: day * i64::try_from(n).unwrap(),
                ..object("k", file)
            };
            store.commit_object(&t, &row, &WriteCondition::Any).unwrap();
        }
        let rules = crate::lifecycle::parse(
            "<LifecycleConfiguration><Rule><ID>r</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration><NoncurrentVersionExpiration><NoncurrentDays>10</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>",
            String::new,
        )
        .unwrap();
        store.set_bucket_lifecycle("b", &rules).unwrap();
        // Day 11: f1 (noncurrent since day 1, two newer) is due; f2 (since day 2) not yet; f3,
        // the newest noncurrent one, is kept whatever its age.
        assert_eq!(store.expire(11 * day).unwrap(), 1);
        assert_eq!(
            listed(&store),
            [
                entry("k", "f4", true),
                entry("k", "f3", false),
                entry("k", "f2", false)
            ]
        );
        assert!(!store.object_path("f1").exists());
        assert_eq!(store.expire(12 * day).unwrap(), 1, "f2 on its day");
        // Removing the versions by hand leaves a marker alone, which the next pass removes.
        store
            .delete_object("b", "k", &DeleteCondition::default(), &owner(), 13 * day)
            .unwrap();
        for e in store.list_versions("b", "", "", i64::MIN, 10).unwrap() {
            if !e.delete_marker {
                store
                    .delete_version(
                        "b",
                        "k",
                        e.row.version_id.as_deref(),
                        &DeleteCondition::default(),
                        (0, false),
                    )
                    .unwrap();
            }
        }
        assert_eq!(listed(&store), [entry("k", "marker", true)]);
        store.expire(14 * day).unwrap();
        assert_eq!(listed(&store), []);
        store.delete_bucket("b").unwrap();
    }

    #[test]
    fn an_object_lock_keeps_a_version_until_its_retention_ends_or_its_hold_is_lifted() {
        use crate::object_lock::{DefaultRetention, LockConfig, LockMode, Period, Retention};
        let (_dir, store) = store_in(Versioning::Enabled);
        let day = crate::expiry::DAY_MS;
        store
            .set_bucket_object_lock(
                "b",
                &LockConfig {
                    default: Some(DefaultRetention {
                        mode: LockMode::Governance,
                        period: Period::Days(2),
                    }),
                },
            )
            .unwrap();
        // Written at 0 without a retention of its own: the bucket's default, two days.
        let v1 = write(&store, "k", "f1", "one").unwrap();
        let Some(Version::Object(row)) = store
            .object_version("b", "k", VersionRef::Id(Some(&v1)))
            .unwrap()
        else {
            panic!("v1 is there");
        };
        assert_eq!(
            row.lock.retention,
            Some(Retention {
                mode: LockMode::Governance,
                until_ms: 2 * day
            })
        );
        let remove = |now, bypass| {
            store.delete_version(
                "b",
                "k",
                Some(&v1),
                &DeleteCondition::default(),
                (now, bypass),
            )
        };
        assert!(matches!(remove(day, false), Err(StoreError::Locked)));
        // A delete naming no version still adds a marker.
        assert!(matches!(
            store.delete_object("b", "k", &DeleteCondition::default(), &owner(), day),
            Ok(Removal::DeleteMarker(Some(_)))
        ));
        // Compliance: lengthened, never shortened, not even bypassing governance.
        let compliance = |until_ms| {
            Some(Retention {
                mode: LockMode::Compliance,
                until_ms,
            })
        };
        let set = |r, now, bypass| {
            store.set_retention("b", "k", VersionRef::Id(Some(&v1)), r, (now, bypass))
        };
        assert!(set(compliance(5 * day), day, false).unwrap());
        assert!(matches!(
            set(compliance(4 * day), day, true),
            Err(StoreError::Locked)
        ));
        assert!(matches!(set(None, day, true), Err(StoreError::Locked)));
        assert!(matches!(remove(4 * day, true), Err(StoreError::Locked)));
        // A legal hold outlasts the retention; lifted, the version can go.
        assert!(
            store
                .set_legal_hold("b", "k", VersionRef::Id(Some(&v1)), true)
                .unwrap()
        );
        assert!(matches!(remove(6 * day, false), Err(StoreError::Locked)));
        assert!(
            store
                .set_legal_hold("b", "k", VersionRef::Id(Some(&v1)), false)
                .unwrap()
        );
        assert_eq!(remove(6 * day, false).unwrap(), Some(false));
    }

    #[test]
    fn an_expiry_of_a_locked_version_keeps_it_behind_a_marker() {
        use crate::object_lock::{LockConfig, LockMode, Retention};
        let (_dir, store) = store_in(Versioning::Enabled);
        store
            .set_bucket_object_lock("b", &LockConfig::default())
            .unwrap();
        let t = store.temp_path();
        std::fs::write(&t, "x").unwrap();
        let row = ObjectRow {
            expires_ms: Some(1_000),
            lock: crate::object_lock::ObjectLock {
                retention: Some(Retention {
                    mode: LockMode::Compliance,
                    until_ms: 5_000,
                }),
                legal_hold: None,
            },
            ..object("k", "f1")
        };
        store.commit_object(&t, &row, &WriteCondition::Any).unwrap();
        assert_eq!(store.expire(2_000).unwrap(), 1);
        assert_eq!(
            listed(&store),
            [entry("k", "marker", true), entry("k", "f1", false)]
        );
        assert!(store.object_path("f1").exists(), "retained until 5,000");
    }

    #[test]
    fn concurrent_writes_and_deletes_each_make_one_version_and_lose_none() {
        let (_dir, store) = store_in(Versioning::Enabled);
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..10 {
                        if i % 5 == 4 {
                            store
                                .delete_object("b", "k", &DeleteCondition::default(), &owner(), 0)
                                .unwrap();
                        } else {
                            write(store, "k", &format!("f{t}-{i}"), "x").unwrap();
                        }
                    }
                });
            }
        });
        let all = store.list_versions("b", "", "", i64::MIN, 100).unwrap();
        assert_eq!(all.len(), 40, "32 versions and 8 markers");
        assert_eq!(all.iter().filter(|e| e.delete_marker).count(), 8);
        assert_eq!(all.iter().filter(|e| e.latest).count(), 1);
        assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
        let ids: std::collections::HashSet<_> =
            all.iter().map(|e| e.row.version_id.clone()).collect();
        assert_eq!(ids.len(), 40, "every version its own ID");
        for e in all.iter().filter(|e| !e.delete_marker) {
            assert!(store.object_path(&e.row.file).exists(), "{}", e.row.file);
        }
    }

    #[test]
    fn a_listing_resumes_inside_a_keys_versions() {
        let (_dir, store) = store_in(Versioning::Enabled);
        for (key, file) in [
            ("a", "f1"),
            ("k", "f2"),
            ("k", "f3"),
            ("k", "f4"),
            ("z", "f5"),
        ] {
            write(&store, key, file, "x");
        }
        let all = store.list_versions("b", "", "", i64::MIN, 100).unwrap();
        let files = |from: usize| -> Vec<(String, bool)> {
            store
                .list_versions("b", "", &all[from].row.key, all[from].seq, 100)
                .unwrap()
                .into_iter()
                .map(|e| (e.row.file, e.latest))
                .collect()
        };
        assert_eq!(
            files(1),
            [
                ("f3".to_owned(), false),
                ("f2".to_owned(), false),
                ("f5".to_owned(), true)
            ]
        );
        assert_eq!(files(3), [("f5".to_owned(), true)]);
        let after_k = store.list_versions("b", "", "k", i64::MIN, 100).unwrap();
        assert_eq!(after_k.len(), 1, "all of k's versions skipped");
        let under_k = store.list_versions("b", "k", "", i64::MIN, 100).unwrap();
        assert_eq!(under_k.len(), 3);
    }
}
