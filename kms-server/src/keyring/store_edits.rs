//! Edits of the SQLite key database made without the root key (issue 19, point 1): each one the
//! keyring must refuse when it loads the store, naming the key when one key's row was changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kms_proto::key_id::{DomainId, RegionId};
use rusqlite::Connection;
use rusqlite::types::Value;
use uuid::Uuid;

use super::{Caller, Keyring};
use crate::crypto::RootKey;
use crate::store::{KeyState, SqliteStore};

const ROOT: [u8; 32] = [7; 32];

fn alice() -> Caller {
    Caller {
        domain: DomainId::parse("alice").unwrap(),
        region: RegionId::parse("r1").unwrap(),
    }
}

/// The keys of the edited store, by what happened to them.
struct Keys {
    /// Disabled after creation.
    disabled: Uuid,
    /// Rotated to version 2.
    rotated: Uuid,
    /// Scheduled for deletion.
    pending: Uuid,
    /// Purged.
    purged: Uuid,
    /// Alice's OBS default key.
    default: Uuid,
}

/// One table's rows of one key, as stored.
type Rows = Vec<Vec<Value>>;

fn rows(c: &Connection, table: &str, uuid: Uuid) -> Rows {
    let mut stmt = c
        .prepare(&format!("SELECT * FROM {table} WHERE uuid = ?1"))
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([uuid.to_string()], |r| {
        (0..n).map(|i| r.get::<_, Value>(i)).collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn put_rows(c: &Connection, table: &str, rows: &Rows) {
    for row in rows {
        let marks = vec!["?"; row.len()].join(", ");
        c.execute(
            &format!("INSERT OR REPLACE INTO {table} VALUES ({marks})"),
            rusqlite::params_from_iter(row),
        )
        .unwrap();
    }
}

/// A key's rows in both tables at one moment.
struct Snapshot {
    keys: Rows,
    versions: Rows,
}

fn snapshot(db: &Path, uuid: Uuid) -> Snapshot {
    let c = Connection::open(db).unwrap();
    Snapshot {
        keys: rows(&c, "keys", uuid),
        versions: rows(&c, "key_versions", uuid),
    }
}

fn put_back(c: &Connection, s: &Snapshot) {
    put_rows(c, "keys", &s.keys);
    put_rows(c, "key_versions", &s.versions);
}

/// Builds the store: the keys of [`Keys`], with snapshots of the disabled, rotated and purged keys
/// taken before those changes.
async fn build(db: &Path) -> (Keys, Snapshot, Snapshot, Snapshot) {
    let store = Arc::new(SqliteStore::open(db).unwrap());
    let k = Keyring::open(store, RootKey::from_bytes(ROOT)).unwrap();
    let a = alice();
    let mut ids = Vec::new();
    for alias in ["disabled", "rotated", "pending", "purged"] {
        ids.push(k.create_key(&a, alias, "").await.unwrap().uuid);
    }
    let default = k.default_key(&a, "obs").await.unwrap().uuid;
    let keys = Keys {
        disabled: ids[0],
        rotated: ids[1],
        pending: ids[2],
        purged: ids[3],
        default,
    };
    let before_disable = snapshot(db, keys.disabled);
    let before_rotate = snapshot(db, keys.rotated);
    let before_purge = snapshot(db, keys.purged);
    k.disable(&a, &keys.disabled.to_string()).await.unwrap();
    k.rotate(&a, &keys.rotated.to_string()).await.unwrap();
    k.schedule_deletion(&a, &keys.purged.to_string(), 7)
        .await
        .unwrap();
    assert_eq!(k.purge_expired(i64::MAX).await.unwrap(), 1);
    k.schedule_deletion(&a, &keys.pending.to_string(), 30)
        .await
        .unwrap();
    (keys, before_disable, before_rotate, before_purge)
}

/// A consistent copy of the database at `db`, as `name` beside it.
fn copy(db: &Path, name: &str) -> PathBuf {
    let to = db.with_file_name(name);
    Connection::open(db)
        .unwrap()
        .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
    to
}

/// What the keyring says when it opens the store at `db`.
fn open(db: &Path) -> Result<Keyring, String> {
    let store = Arc::new(SqliteStore::open(db).map_err(|e| e.to_string())?);
    Keyring::open(store, RootKey::from_bytes(ROOT)).map_err(|e| e.to_string())
}

/// What a refusal must say: the named key, or the store MAC.
enum Names {
    Key(Uuid),
    StoreMac,
    NoMacs,
}

#[tokio::test]
async fn every_edit_of_the_store_without_the_root_key_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kms.sqlite3");
    let (keys, before_disable, before_rotate, before_purge) = build(&db).await;
    let pending = keys.pending;
    open(&db).expect("the unedited store opens");

    let u = |id: Uuid| id.to_string();
    type Edit<'a> = Box<dyn Fn(&Connection) + 'a>;
    let sql =
        |q: String| -> Edit<'_> { Box::new(move |c: &Connection| c.execute_batch(&q).unwrap()) };
    let cases: Vec<(&str, Edit<'_>, Names)> = vec![
        (
            "a disabled key is re-enabled by its state",
            sql(format!(
                "UPDATE keys SET state = 1 WHERE uuid = '{}'",
                u(keys.disabled)
            )),
            Names::Key(keys.disabled),
        ),
        (
            "a disabled key's row from before it was disabled is put back",
            Box::new(|c| put_back(c, &before_disable)),
            Names::StoreMac,
        ),
        (
            "a rotation is undone by lowering current_version",
            sql(format!(
                "UPDATE keys SET current_version = 1 WHERE uuid = '{}'",
                u(keys.rotated)
            )),
            Names::Key(keys.rotated),
        ),
        (
            "a rotation is undone by putting back the rows from before it",
            Box::new(|c| {
                c.execute(
                    "DELETE FROM key_versions WHERE uuid = ?1",
                    [u(keys.rotated)],
                )
                .unwrap();
                put_back(c, &before_rotate);
            }),
            Names::StoreMac,
        ),
        (
            "a purged key's rows are put back",
            Box::new(|c| put_back(c, &before_purge)),
            Names::StoreMac,
        ),
        (
            "a deletion is cancelled by the state",
            sql(format!(
                "UPDATE keys SET state = 1, deletion_date_ms = NULL WHERE uuid = '{}'",
                u(pending)
            )),
            Names::Key(pending),
        ),
        (
            "a deletion date is pushed back",
            sql(format!(
                "UPDATE keys SET deletion_date_ms = deletion_date_ms + 1 WHERE uuid = '{}'",
                u(pending)
            )),
            Names::Key(pending),
        ),
        (
            "wrapped material is swapped for another key's",
            sql(format!(
                "UPDATE key_versions SET wrapped = (SELECT wrapped FROM key_versions WHERE uuid = '{}' \
                 AND version = 1) WHERE uuid = '{}'",
                u(keys.rotated),
                u(keys.disabled)
            )),
            Names::Key(keys.disabled),
        ),
        (
            "a wrap scheme is changed",
            sql(format!(
                "UPDATE key_versions SET wrap_scheme = 2 WHERE uuid = '{}'",
                u(keys.disabled)
            )),
            Names::Key(keys.disabled),
        ),
        (
            "a version row is removed",
            sql(format!(
                "DELETE FROM key_versions WHERE uuid = '{}' AND version = 2",
                u(keys.rotated)
            )),
            Names::Key(keys.rotated),
        ),
        (
            "a customer key is made a service default key",
            sql(format!(
                "UPDATE keys SET creator = 2, service = 'evs' WHERE uuid = '{}'",
                u(keys.disabled)
            )),
            Names::Key(keys.disabled),
        ),
        (
            "a default key is made a customer key (which could be disabled or deleted)",
            sql(format!(
                "UPDATE keys SET creator = 1 WHERE uuid = '{}'",
                u(keys.default)
            )),
            Names::Key(keys.default),
        ),
        (
            "a key is moved to another tenant",
            sql(format!(
                "UPDATE keys SET domain = 'mallory' WHERE uuid = '{}'",
                u(keys.rotated)
            )),
            Names::Key(keys.rotated),
        ),
        (
            "an alias is changed",
            sql(format!(
                "UPDATE keys SET alias = 'renamed' WHERE uuid = '{}'",
                u(keys.rotated)
            )),
            Names::Key(keys.rotated),
        ),
        (
            "a key's record MAC is removed",
            sql(format!(
                "UPDATE keys SET mac = NULL WHERE uuid = '{}'",
                u(keys.disabled)
            )),
            Names::Key(keys.disabled),
        ),
        (
            "a key is deleted",
            sql(format!(
                "DELETE FROM keys WHERE uuid = '{}'",
                u(keys.disabled)
            )),
            Names::StoreMac,
        ),
        (
            "the store MAC is removed",
            sql("DELETE FROM store_mac".into()),
            Names::StoreMac,
        ),
        (
            "every MAC is removed, to pass for a store from before them",
            sql("UPDATE keys SET mac = NULL; DELETE FROM store_mac".into()),
            Names::NoMacs,
        ),
    ];
    for (i, (rule, edit, names)) in cases.iter().enumerate() {
        let edited = copy(&db, &format!("edit-{i}.sqlite3"));
        edit(&Connection::open(&edited).unwrap());
        let err = match open(&edited) {
            Ok(_) => panic!("{rule}: the edited store was accepted"),
            Err(e) => e,
        };
        match names {
            Names::Key(id) => assert!(
                err.contains(&id.to_string()) && err.contains("MAC"),
                "{rule}: {err}"
            ),
            Names::StoreMac => assert!(err.contains("store MAC"), "{rule}: {err}"),
            Names::NoMacs => assert!(err.contains("add-store-macs"), "{rule}: {err}"),
        }
    }

    // Not bound: the nonce reservation only counts ahead (FORMATS.md §3), so raising it opens.
    let edited = copy(&db, "reservation.sqlite3");
    Connection::open(&edited)
        .unwrap()
        .execute_batch("UPDATE key_versions SET nonces_reserved = nonces_reserved + 1048576")
        .unwrap();
    let k = open(&edited).expect("a raised reservation is no key-state change");
    let rec = k.find(&alice(), &keys.rotated.to_string()).unwrap();
    assert_eq!(rec.state, KeyState::Enabled);
}

/// A row whose wrap scheme is unknown is refused even when its record MAC was computed over that
/// scheme (by a later daemon with the same root key, say).
#[tokio::test]
async fn an_unknown_wrap_scheme_is_refused_naming_the_key() {
    use crate::store::{KeyStore, MemoryStore};
    let store = Arc::new(MemoryStore::new());
    let root = RootKey::from_bytes(ROOT);
    let k = Keyring::open(store.clone(), RootKey::from_bytes(ROOT)).unwrap();
    let id = k.create_key(&alice(), "", "").await.unwrap().uuid;
    drop(k);
    let mut rec = store.get(id).unwrap();
    rec.versions[0].scheme = 2;
    rec.mac = Some(crate::integrity::record_mac(&root, &rec).unwrap());
    let store_mac =
        crate::integrity::store_mac(&root, Uuid::nil(), [(id, rec.mac.as_ref().unwrap())]).unwrap();
    let fresh = Arc::new(MemoryStore::new());
    fresh.insert_key(&rec, &store_mac).unwrap();
    let err = Keyring::open(fresh, root).unwrap_err().to_string();
    assert!(
        err.contains(&id.to_string()) && err.contains("scheme 2"),
        "{err}"
    );
}
