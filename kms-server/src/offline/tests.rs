//! The offline commands on data folders made by the daemon itself (`server::start`).

use std::path::Path;

use kms_proto::key_id::{DomainId, RegionId};

use super::*;
use crate::keyring::Caller;
use crate::server::{Config, start};

/// A data folder with one key, made by a daemon that was then shut down; returns the key's UUID.
async fn folder_with_a_key(data: &Path) -> Uuid {
    let server = start(Config::local(data)).await.unwrap();
    let caller = Caller {
        domain: DomainId::parse("alice").unwrap(),
        region: RegionId::parse("region").unwrap(),
    };
    let id = server
        .keyring()
        .create_key(&caller, "a", "")
        .await
        .unwrap()
        .uuid;
    server.shutdown().await;
    id
}

/// A rotation checks the store under the old key first: it never gives new MACs to rows changed
/// behind the daemon's back, and leaves nothing behind.
#[tokio::test]
async fn a_rotation_refuses_a_store_that_fails_its_macs_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let id = folder_with_a_key(&data).await;
    rusqlite::Connection::open(data.join(DB_FILE))
        .unwrap()
        .execute(
            "UPDATE keys SET state = 2 WHERE uuid = ?1",
            [id.to_string()],
        )
        .unwrap();
    let key = data.join("root.key");
    let before = std::fs::read(&key).unwrap();
    let err = rotate_root_key(&data, None, &data.join("audit.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&id.to_string()) && err.contains("record MAC"),
        "{err}"
    );
    assert_eq!(std::fs::read(&key).unwrap(), before);
    assert!(!new_root_key_path(&key).exists());
    assert!(!old_root_key_path(&key).exists());
}

/// An interrupted rotation whose database is under `K.new` is not finished while `K.old` holds a
/// third key: finishing would drop the key `K` holds.
#[tokio::test]
async fn an_interrupted_rotation_is_not_finished_over_a_foreign_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    folder_with_a_key(&data).await;
    let key = data.join("root.key");
    let old = std::fs::read(&key).unwrap();
    // A finished rotation, then put back as if killed between the commit and the rename.
    rotate_root_key(&data, None, &data.join("audit.jsonl")).unwrap();
    let new = std::fs::read(&key).unwrap();
    std::fs::rename(&key, new_root_key_path(&key)).unwrap();
    std::fs::copy(old_root_key_path(&key), &key).unwrap();
    std::fs::write(old_root_key_path(&key), [9u8; 32]).unwrap();
    let db_check = RootKey::from_bytes(new.clone().try_into().unwrap())
        .store_check_value()
        .unwrap();
    let current = RootKey::from_bytes(old.clone().try_into().unwrap());
    let err = finish_interrupted_rotation(&key, &db_check, current, &data.join("audit.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds a third key"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), old, "K untouched");
    assert!(new_root_key_path(&key).exists(), "K.new untouched");
    // Once the operator moved the third key away, the next start finishes the rotation.
    std::fs::remove_file(old_root_key_path(&key)).unwrap();
    let server = start(Config::local(&data)).await.unwrap();
    assert_eq!(server.keyring().key_count(), 1);
    server.shutdown().await;
    assert_eq!(std::fs::read(&key).unwrap(), new);
    assert_eq!(std::fs::read(old_root_key_path(&key)).unwrap(), old);
}
