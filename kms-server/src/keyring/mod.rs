//! The keyring: the KMS's rules over an in-memory cache of the key store. No transport here: the
//! gRPC handlers ([`crate::grpc`]) and any other front-end are thin layers over [`Keyring`].
//!
//! Every key lives in memory (metadata and *wrapped* material); a key's material is unwrapped under
//! the root key for the one call that uses it and wiped right after. Management calls
//! ([`lifecycle`]) write through to the store before they change the cache, under one write lock,
//! so that what a caller was told is what is on disk. The data path ([`data_path`]:
//! `generate_data_key`, `encrypt`, `decrypt`, `re_encrypt`) touches neither the disk nor the store,
//! except for one store write per 2^20 blobs sealed under a key version ([`nonces`]).
//! Request fields are checked in [`validate`].

pub mod data_path;
pub mod due;
pub mod lifecycle;
pub mod nonces;
pub mod seeding;
#[cfg(test)]
mod tests;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use kms_proto::key_id::{DomainId, FullKeyId, KeyRef, RegionId};
use uuid::Uuid;

use crate::clock::Clock;
use crate::crypto::{RootKey, WrapContext};
use crate::error::{KmsError, Result};
use crate::store::{Creator, KeyRecord, KeyStore, StoreError};

pub use data_path::{DataKey, Decrypted, Encrypted, ReEncrypted};
pub use lifecycle::KeyPage;
pub use validate::Context;

/// An authenticated caller: the tenant and the region a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's tenant.
    pub domain: DomainId,
    /// The region the call is for.
    pub region: RegionId,
}

impl Caller {
    /// Whether `rec` is in the caller's domain and region.
    pub fn owns(&self, rec: &KeyRecord) -> bool {
        rec.domain == self.domain && rec.region == self.region
    }
}

/// Milliseconds since the Unix epoch on the wall clock. The KMS rules read the keyring's
/// [`Clock`] instead ([`Keyring::clock`]), which may be virtual.
pub fn now_ms() -> i64 {
    crate::clock::wall_ms()
}

/// Where a service default key sits: one per domain, region and service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DefaultSlot {
    domain: DomainId,
    region: RegionId,
    service: String,
}

impl DefaultSlot {
    fn of(rec: &KeyRecord) -> Option<Self> {
        (rec.creator == Creator::Service).then(|| Self {
            domain: rec.domain.clone(),
            region: rec.region.clone(),
            service: rec.service.clone(),
        })
    }
}

/// The keyring: every key of every tenant, the KMS's rules, and the store behind them.
pub struct Keyring {
    store: Arc<dyn KeyStore>,
    root: RootKey,
    cache: RwLock<HashMap<Uuid, Arc<KeyRecord>>>,
    /// Service default keys by slot: GetDefaultKey is on OBS's upload path.
    defaults: RwLock<HashMap<DefaultSlot, Uuid>>,
    writes: tokio::sync::Mutex<()>,
    /// Blobs sealed per key version ([`nonces`]).
    nonces: RwLock<HashMap<(Uuid, u32), Arc<nonces::NonceCounter>>>,
    /// The time of creation and deletion dates and of the purge.
    clock: Arc<Clock>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// Loads every key from the store and checks that the root key unwraps each key version.
    pub fn open(store: Arc<dyn KeyStore>, root: RootKey) -> Result<Self> {
        let mut cache = HashMap::new();
        let mut defaults = HashMap::new();
        for rec in store.load_all()? {
            for v in &rec.versions {
                root.unwrap(&wrap_ctx(&rec, v.version), &v.wrapped)?;
            }
            if let Some(slot) = DefaultSlot::of(&rec) {
                defaults.insert(slot, rec.uuid);
            }
            cache.insert(rec.uuid, Arc::new(rec));
        }
        Ok(Self {
            store,
            root,
            cache: RwLock::new(cache),
            defaults: RwLock::new(defaults),
            writes: tokio::sync::Mutex::new(()),
            nonces: RwLock::new(HashMap::new()),
            clock: Arc::new(Clock::wall()),
        })
    }

    /// The keyring on `clock` instead of the wall clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock the keyring reads time through.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// The number of keys held, all tenants together.
    pub fn key_count(&self) -> usize {
        self.read_cache().len()
    }

    fn read_cache(&self) -> RwLockReadGuard<'_, HashMap<Uuid, Arc<KeyRecord>>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn put_cache(&self, rec: Arc<KeyRecord>) {
        if let Some(slot) = DefaultSlot::of(&rec) {
            self.defaults
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(slot, rec.uuid);
        }
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(rec.uuid, rec);
    }

    fn remove_cache(&self, uuid: &Uuid) {
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(uuid);
        self.forget_nonces(*uuid);
    }

    /// Runs a store call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn KeyStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| KmsError::Internal(format!("store task: {e}")))?
            .map_err(KmsError::from)
    }

    /// Looks a key up by its ID as a request gives it. Another tenant's or region's key is
    /// "not found", exactly like a key that does not exist.
    pub fn find(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        match key_id.parse::<KeyRef>()? {
            KeyRef::Bare(uuid) => self.find_uuid(caller, uuid),
            KeyRef::Full(full) if full.domain != caller.domain || full.region != caller.region => {
                Err(KmsError::KeyNotFound(full.to_string()))
            }
            KeyRef::Full(full) => self.find_uuid(caller, full.uuid),
        }
    }

    fn find_uuid(&self, caller: &Caller, uuid: Uuid) -> Result<Arc<KeyRecord>> {
        let rec = self.read_cache().get(&uuid).cloned();
        match rec {
            Some(r) if caller.owns(&r) => Ok(r),
            _ => Err(KmsError::KeyNotFound(
                FullKeyId::new(caller.region.clone(), caller.domain.clone(), uuid).to_string(),
            )),
        }
    }
}

/// The identity a key version's material is wrapped under.
fn wrap_ctx(rec: &KeyRecord, version: u32) -> WrapContext<'_> {
    WrapContext {
        uuid: rec.uuid,
        version,
        domain: rec.domain.as_str(),
        region: rec.region.as_str(),
    }
}
