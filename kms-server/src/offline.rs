//! Offline commands on a stopped daemon's data folder: `kms-server rotate-root-key` and
//! `kms-server add-store-macs`. Each takes the data folder's lock (so no daemon runs meanwhile),
//! checks the root key and the key database belong together, and changes the database in one
//! SQLite transaction.
//!
//! ## Root key rotation, and a crash at any point
//!
//! With `K` the root key file, the rotation:
//!
//! 1. checks every key under the old root key (record MACs, store MAC, every version unwraps);
//! 2. writes a new random key to `K.new` (mode 0600, synced, its folder synced);
//! 3. in one transaction, re-wraps every key version under the new key, replaces every record MAC,
//!    the store MAC and the root key's check value, and commits (WAL, `synchronous=FULL`);
//! 4. keeps the old key as `K.old` (a hard link to `K`, or a synced copy), folder synced;
//! 5. renames `K.new` over `K` (atomic), folder synced.
//!
//! Killed before 3 commits, the database is wholly under the old key, which is still `K`; the
//! `K.new` left behind protects nothing and is removed by the next start or rotation. Killed after,
//! the database is wholly under the new key, which is in `K.new` (or already `K`); the next start
//! or rotation sees that `K.new`'s check value is the database's and finishes steps 4 and 5
//! ([`finish_interrupted_rotation`]). Either way one of the two keys is valid for the whole store,
//! and the old key is never removed: `K.old` stays until the operator deletes it.
//!
//! Each command that changed the store appends a line to the audit log, synced ([`audit`]):
//! operation `RotateRootKey` or `AddStoreMacs`, no domain, region or key. So does the finishing of
//! an interrupted rotation, at start-up or by the next command (`RotateRootKey`).
//!
//! `KMS_ROTATE_ROOT_KEY_PAUSE_AT` (a test seam: `new-key-written`, `before-commit`, `committed`,
//! `old-key-kept`) makes the rotation print `paused at <point>` on standard error and wait there
//! for ever, so that a test can `kill -9` it at that point.

use std::io::Write;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::RootKey;
use crate::error::StartupError;
use crate::integrity;
use crate::keyring::{unwrap_version, wrap_ctx};
use crate::server::{DB_FILE, StorePaths, check_store_identity, lock_data_dir};
use crate::store::{KeyRecord, KeyStore, SqliteStore};

/// The environment variable of the rotation's pause points (a test seam).
pub const PAUSE_ENV: &str = "KMS_ROTATE_ROOT_KEY_PAUSE_AT";

/// What a root key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The store.
    pub store_id: Uuid,
    /// Keys whose versions were re-wrapped and whose record MACs were replaced.
    pub keys: usize,
    /// Key versions re-wrapped.
    pub versions: usize,
    /// The root key file, which now holds the new key.
    pub root_key: PathBuf,
    /// The old root key, kept until the operator removes it.
    pub old_root_key: PathBuf,
}

/// What `add-store-macs` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacsAdded {
    /// The store.
    pub store_id: Uuid,
    /// Keys that were given a record MAC.
    pub keys: usize,
}

/// `<path><suffix>`, next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `K.new`: the new root key while a rotation is under way.
pub fn new_root_key_path(root: &Path) -> PathBuf {
    sibling(root, ".new")
}

/// `K.old`: the old root key after a rotation, until the operator removes it.
pub fn old_root_key_path(root: &Path) -> PathBuf {
    sibling(root, ".old")
}

/// Waits for ever at `point` when [`PAUSE_ENV`] names it.
fn pause(point: &str) {
    if std::env::var_os(PAUSE_ENV).is_some_and(|p| p == point) {
        eprintln!("kms-server: paused at {point}");
        let _ = std::io::stderr().flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Syncs the folder holding `path`, so that a name created, linked or renamed there is durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> StartupError {
    StartupError::io(what)
}

/// Keeps the old root key as `K.old` (unless it is there already) and renames `K.new` over `K`.
fn install_new_root_key(root: &Path) -> Result<(), StartupError> {
    let (new, old) = (new_root_key_path(root), old_root_key_path(root));
    if !old.exists() {
        if std::fs::hard_link(root, &old).is_err() {
            // A file system without hard links: a synced copy, mode 0600.
            let bytes = Zeroizing::new(std::fs::read(root).map_err(io("reading the root key"))?);
            crate::crypto::write_new_secret_file(&old, &bytes)
                .map_err(io("keeping the old root key"))?;
        }
        sync_parent(&old).map_err(io("keeping the old root key"))?;
    }
    pause("old-key-kept");
    std::fs::rename(&new, root).map_err(io("putting the new root key in place"))?;
    sync_parent(root).map_err(io("putting the new root key in place"))?;
    Ok(())
}

/// Whether two files hold the same bytes (compared in constant time when of equal length).
fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let a = Zeroizing::new(std::fs::read(a)?);
    let b = Zeroizing::new(std::fs::read(b)?);
    Ok(bool::from(a.as_slice().ct_eq(b.as_slice())))
}

/// Finishes a root key rotation that was killed, given the root key check value the key database
/// holds, and returns the root key the database is under:
///
/// - no `K.new`: `current`;
/// - `K.new` and the database under `current`: the rotation never committed; `K.new` is removed;
/// - `K.new` and the database under `K.new`'s key: the rotation committed; the old key is kept as
///   `K.old`, `K.new` becomes `K`, and the new key is returned;
/// - otherwise `current`, for the identity check to refuse.
///
/// A finished rotation is audited in `audit_log`.
pub fn finish_interrupted_rotation(
    root_path: &Path,
    db_check: &[u8],
    current: RootKey,
    audit_log: &Path,
) -> Result<RootKey, StartupError> {
    let new_path = new_root_key_path(root_path);
    if !new_path.exists() {
        return Ok(current);
    }
    if bool::from(current.store_check_value()?.as_slice().ct_eq(db_check)) {
        std::fs::remove_file(&new_path).map_err(io("removing an unused new root key"))?;
        sync_parent(&new_path).map_err(io("removing an unused new root key"))?;
        tracing::warn!(
            new_root_key = %new_path.display(),
            "removed the new root key of a rotation that was interrupted before it changed the \
             key database; the store is still under root key {}",
            root_path.display()
        );
        return Ok(current);
    }
    let Ok(new) = RootKey::load(&new_path) else {
        return Ok(current);
    };
    if !bool::from(new.store_check_value()?.as_slice().ct_eq(db_check)) {
        return Ok(current);
    }
    let old = old_root_key_path(root_path);
    if old.exists() && !same_bytes(&old, root_path).map_err(io("reading the old root key"))? {
        return Err(StartupError::Admin(format!(
            "the key database is under the new root key {} of an interrupted rotation, but {} \
             holds a third key, so {} cannot be kept there: move {} away, then start again",
            new_path.display(),
            old.display(),
            root_path.display(),
            old.display()
        )));
    }
    install_new_root_key(root_path)?;
    audit(audit_log, "RotateRootKey")?;
    tracing::warn!(
        root_key = %root_path.display(),
        old_root_key = %old.display(),
        "finished a root key rotation that was interrupted after it changed the key database: \
         the new key is now the root key; the old one is kept"
    );
    Ok(new)
}

/// A stopped daemon's data folder, locked, with its root key and key database checked to belong
/// together.
struct Offline {
    _lock: std::fs::File,
    root_path: PathBuf,
    root: RootKey,
    store: SqliteStore,
}

fn open_offline(
    data_dir: &Path,
    root_key_file: Option<&Path>,
    audit_log: &Path,
) -> Result<Offline, StartupError> {
    if !data_dir.is_dir() {
        return Err(StartupError::Admin(format!(
            "data folder {} does not exist",
            data_dir.display()
        )));
    }
    let lock = lock_data_dir(data_dir)?;
    let root_path = root_key_file.map_or_else(|| data_dir.join("root.key"), Path::to_owned);
    let root = RootKey::load(&root_path)?;
    let db = data_dir.join(DB_FILE);
    if std::fs::metadata(&db).map_or(true, |m| m.len() == 0) {
        return Err(StartupError::Admin(format!(
            "there is no key database at {}",
            db.display()
        )));
    }
    let store = SqliteStore::open(&db)?;
    let root = match store.identity()? {
        Some(id) => finish_interrupted_rotation(&root_path, &id.root_check, root, audit_log)?,
        None => root,
    };
    check_store_identity(
        &store,
        &root,
        &StorePaths {
            db: &db,
            root: &root_path,
            root_is_new: false,
        },
        false,
    )?;
    Ok(Offline {
        _lock: lock,
        root_path,
        root,
        store,
    })
}

/// The store MAC of `records` (each with its record MAC set) under `root`.
fn store_mac_of(
    root: &RootKey,
    store_id: Uuid,
    records: &[KeyRecord],
) -> Result<crate::store::Mac, StartupError> {
    Ok(integrity::store_mac(
        root,
        store_id,
        records
            .iter()
            .filter_map(|r| r.mac.as_ref().map(|m| (r.uuid, m))),
    )?)
}

/// `kms-server rotate-root-key`: a new root key for the store in `data_dir` (see the module's
/// documentation for the steps and what a crash at each leaves), audited in `audit_log`.
pub fn rotate_root_key(
    data_dir: &Path,
    root_key_file: Option<&Path>,
    audit_log: &Path,
) -> Result<Rotated, StartupError> {
    let off = open_offline(data_dir, root_key_file, audit_log)?;
    let (root_path, old_path) = (&off.root_path, old_root_key_path(&off.root_path));
    if old_path.exists() {
        return Err(StartupError::Admin(format!(
            "{} is there from an earlier rotation: remove it once no backup of the key database \
             from before that rotation needs it, then rotate again",
            old_path.display()
        )));
    }
    let store_id = off.store.store_id()?;
    let mut records = off.store.load_all()?;
    integrity::check_store(
        &off.root,
        store_id,
        &records,
        off.store.store_mac()?.as_ref(),
    )?;
    // Every version unwraps under the old key before anything is written.
    for rec in &records {
        for v in &rec.versions {
            unwrap_version(&off.root, rec, v)?;
        }
    }
    let new_path = new_root_key_path(root_path);
    let new_root = RootKey::create(&new_path)?;
    let rewritten = (|| {
        pause("new-key-written");
        let mut versions = 0;
        for rec in &mut records {
            let mut wrapped = Vec::with_capacity(rec.versions.len());
            for v in &rec.versions {
                let material = unwrap_version(&off.root, rec, v)?;
                wrapped.push(new_root.wrap(&wrap_ctx(rec, v.version), &material)?);
            }
            for (v, w) in rec.versions.iter_mut().zip(wrapped) {
                v.wrapped = w.to_vec();
                versions += 1;
            }
            rec.mac = Some(integrity::record_mac(&new_root, rec)?);
        }
        let store_mac = store_mac_of(&new_root, store_id, &records)?;
        let check = new_root.store_check_value()?;
        off.store
            .rewrite_integrity(&records, &store_mac, &check, || pause("before-commit"))?;
        Ok::<_, StartupError>(versions)
    })();
    let versions = match rewritten {
        Ok(n) => n,
        Err(e) => {
            // Nothing was committed: the new key protects nothing.
            let _ = std::fs::remove_file(&new_path);
            return Err(e);
        }
    };
    pause("committed");
    install_new_root_key(root_path)?;
    audit(audit_log, "RotateRootKey")
        .map_err(|e| done_unaudited("the root key was rotated", &e))?;
    tracing::info!(%store_id, keys = records.len(), versions, "root key rotated");
    Ok(Rotated {
        store_id,
        keys: records.len(),
        versions,
        root_key: root_path.clone(),
        old_root_key: old_path,
    })
}

/// `kms-server add-store-macs`: record MACs and a store MAC for a key database written by a daemon
/// from before them, trusting its rows as they are (each version must still unwrap under the root
/// key). Refused for a database that has any MAC: one that fails its check is restored from a
/// backup, not given new MACs. Audited in `audit_log`.
pub fn add_store_macs(
    data_dir: &Path,
    root_key_file: Option<&Path>,
    audit_log: &Path,
) -> Result<MacsAdded, StartupError> {
    let off = open_offline(data_dir, root_key_file, audit_log)?;
    let store_id = off.store.store_id()?;
    let mut records = off.store.load_all()?;
    if off.store.store_mac()?.is_some() || records.iter().any(|r| r.mac.is_some()) {
        return Err(StartupError::Admin(format!(
            "key database {} already has MACs. If the daemon refuses it, it was changed without \
             the root key: restore it from a backup (new MACs would bless the change)",
            data_dir.join(DB_FILE).display()
        )));
    }
    for rec in &mut records {
        for v in &rec.versions {
            unwrap_version(&off.root, rec, v)?;
        }
        rec.mac = Some(integrity::record_mac(&off.root, rec)?);
    }
    let store_mac = store_mac_of(&off.root, store_id, &records)?;
    let check = off.root.store_check_value()?;
    off.store
        .rewrite_integrity(&records, &store_mac, &check, || {})?;
    audit(audit_log, "AddStoreMacs").map_err(|e| done_unaudited("the MACs were added", &e))?;
    tracing::info!(%store_id, keys = records.len(), "record MACs and store MAC added");
    Ok(MacsAdded {
        store_id,
        keys: records.len(),
    })
}

/// The error of an operation that was carried out but not audited.
fn done_unaudited(what: &str, e: &StartupError) -> StartupError {
    StartupError::Admin(format!("{what}, but its audit line was not written: {e}"))
}

/// Appends the line of an offline operation to the audit log at `path` (created with mode 0600)
/// and syncs it, before any daemon opens the log: one whole line in one append.
pub fn audit(path: &Path, operation: &'static str) -> Result<(), StartupError> {
    let record = crate::audit::AuditRecord {
        time_ms: crate::keyring::now_ms(),
        domain: String::new(),
        region: String::new(),
        operation,
        key_id: String::new(),
        outcome: "ok",
        request_id: crate::auth::request_id(&tonic::metadata::MetadataMap::new()),
        virtual_time_ms: None,
        daemon: None,
        injected: None,
    };
    let mut line = serde_json::to_vec(&record)
        .map_err(|e| io("writing the audit log")(std::io::Error::other(e)))?;
    line.push(b'\n');
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io("opening the audit log"))?;
    f.write_all(&line)
        .and_then(|()| f.sync_data())
        .map_err(io("writing the audit log"))
}

#[cfg(test)]
mod tests;
