//! An in-memory key store: the same uniqueness rules as the SQLite store, nothing persists. For
//! the keyring's unit tests and for embedders that want a throw-away daemon.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

use super::{
    Attributes, Conflict, Creator, KeyRecord, KeyState, KeyStore, Mac, StoreError, WrappedVersion,
};

/// Keys in a map behind a mutex. Every write can be made to fail, to test what callers do then.
#[derive(Debug, Default)]
pub struct MemoryStore {
    keys: Mutex<Keys>,
    fail_writes: AtomicBool,
}

/// The stored keys and the store MAC, changed together.
#[derive(Debug, Default)]
struct Keys {
    map: HashMap<Uuid, KeyRecord>,
    store_mac: Option<Mac>,
}

/// The error of a write while [`MemoryStore::fail_writes`] is on.
#[derive(Debug, thiserror::Error)]
#[error("memory store: writes are failing (test switch)")]
pub struct WritesFailing;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on every write fails (`true`) or succeeds again (`false`).
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// A copy of one stored key.
    pub fn get(&self, uuid: Uuid) -> Option<KeyRecord> {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(&uuid)
            .cloned()
    }

    /// Runs a write, then stores `store_mac` if it succeeded.
    fn write<T>(
        &self,
        store_mac: &Mac,
        f: impl FnOnce(&mut HashMap<Uuid, KeyRecord>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(Box::new(WritesFailing)));
        }
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let out = f(&mut keys.map)?;
        keys.store_mac = Some(*store_mac);
        Ok(out)
    }
}

fn insert(keys: &mut HashMap<Uuid, KeyRecord>, rec: &KeyRecord) -> Result<(), StoreError> {
    if keys.contains_key(&rec.uuid) {
        return Err(StoreError::Conflict(Conflict::Uuid));
    }
    let alias_taken = !rec.alias.is_empty()
        && keys
            .values()
            .any(|k| k.domain == rec.domain && k.region == rec.region && k.alias == rec.alias);
    if alias_taken {
        return Err(StoreError::Conflict(Conflict::Alias));
    }
    keys.insert(rec.uuid, rec.clone());
    Ok(())
}

fn missing(uuid: Uuid) -> StoreError {
    StoreError::Corrupt(format!("key {uuid} is not stored"))
}

impl KeyStore for MemoryStore {
    fn load_all(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut all: Vec<KeyRecord> = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|r| (r.created_at_ms, r.uuid));
        Ok(all)
    }

    /// A memory store has no identity of its own: the nil UUID.
    fn store_id(&self) -> Result<Uuid, StoreError> {
        Ok(Uuid::nil())
    }

    fn store_mac(&self) -> Result<Option<Mac>, StoreError> {
        Ok(self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store_mac)
    }

    fn insert_key(&self, rec: &KeyRecord, store_mac: &Mac) -> Result<(), StoreError> {
        self.write(store_mac, |keys| insert(keys, rec))
    }

    fn insert_default_key(
        &self,
        rec: &KeyRecord,
        store_mac: &Mac,
    ) -> Result<KeyRecord, StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(Box::new(WritesFailing)));
        }
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let existing = keys.map.values().find(|k| {
            k.creator == Creator::Service
                && k.domain == rec.domain
                && k.region == rec.region
                && k.service == rec.service
        });
        if let Some(k) = existing {
            return Ok(k.clone());
        }
        insert(&mut keys.map, rec)?;
        keys.store_mac = Some(*store_mac);
        Ok(rec.clone())
    }

    fn set_state(
        &self,
        uuid: Uuid,
        state: KeyState,
        deletion_date_ms: Option<i64>,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError> {
        self.write(store_mac, |keys| {
            let k = keys.get_mut(&uuid).ok_or_else(|| missing(uuid))?;
            k.state = state;
            k.deletion_date_ms = deletion_date_ms;
            k.mac = Some(*mac);
            Ok(())
        })
    }

    fn set_attributes(
        &self,
        uuid: Uuid,
        attributes: &Attributes,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError> {
        self.write(store_mac, |keys| {
            let k = keys.get(&uuid).ok_or_else(|| missing(uuid))?;
            let alias = attributes.alias.as_str();
            let alias_taken = !alias.is_empty()
                && keys.values().any(|o| {
                    o.uuid != uuid
                        && o.domain == k.domain
                        && o.region == k.region
                        && o.alias == alias
                });
            if alias_taken {
                return Err(StoreError::Conflict(Conflict::Alias));
            }
            let k = keys.get_mut(&uuid).ok_or_else(|| missing(uuid))?;
            alias.clone_into(&mut k.alias);
            attributes.description.clone_into(&mut k.description);
            k.rotation = attributes.rotation;
            k.policy = attributes.policy;
            attributes.tags.clone_into(&mut k.tags);
            k.mac = Some(*mac);
            Ok(())
        })
    }

    fn add_version(
        &self,
        uuid: Uuid,
        version: &WrappedVersion,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError> {
        self.write(store_mac, |keys| {
            let k = keys.get_mut(&uuid).ok_or_else(|| missing(uuid))?;
            if k.version(version.version).is_some() {
                return Err(StoreError::Corrupt(format!(
                    "key {uuid} already has version {}",
                    version.version
                )));
            }
            k.versions.push(version.clone());
            k.current_version = version.version;
            k.mac = Some(*mac);
            Ok(())
        })
    }

    fn reserve_nonces(
        &self,
        uuid: Uuid,
        version: u32,
        block: u64,
        limit: u64,
    ) -> Result<std::ops::Range<u64>, StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(Box::new(WritesFailing)));
        }
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let k = keys.map.get_mut(&uuid).ok_or_else(|| missing(uuid))?;
        let v = k
            .versions
            .iter_mut()
            .find(|v| v.version == version)
            .ok_or_else(|| StoreError::Corrupt(format!("key {uuid} has no version {version}")))?;
        let start = v.nonces_reserved.min(limit);
        let end = v.nonces_reserved.saturating_add(block).min(limit);
        v.nonces_reserved = v.nonces_reserved.max(end);
        Ok(start..end)
    }

    fn delete_key(&self, uuid: Uuid, store_mac: &Mac) -> Result<(), StoreError> {
        self.write(store_mac, |keys| {
            keys.remove(&uuid);
            Ok(())
        })
    }
}
