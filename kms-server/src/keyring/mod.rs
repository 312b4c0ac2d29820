//! The keyring: the KMS's rules over an in-memory cache of the key store. No transport here: the
//! gRPC handlers ([`crate::grpc`]) and any other front-end are thin layers over [`Keyring`].
//!
//! Every key lives in memory (metadata and *wrapped* material); a key version's material is
//! unwrapped under the root key the first time a call uses it and kept, keyed into its cipher,
//! until the key is purged (`versions`). Management calls
//! ([`lifecycle`]) write through to the store before they change the cache, under one write lock,
//! so that what a caller was told is what is on disk. The data path ([`data_path`]:
//! `generate_data_key`, `encrypt`, `decrypt`, `re_encrypt`) touches neither the disk nor the store,
//! except for one store write per 2^20 blobs sealed under a key version ([`nonces`]).
//! Request fields are checked in [`validate`].
//!
//! The keyring is the store's one writer and the holder of the root key: it checks every key's
//! record MAC and the store MAC when it loads the store ([`crate::integrity`]), and computes both for
//! every change it writes, the store MAC from its own cache (what it verified and wrote), never
//! from what the store holds now.

pub mod data_path;
pub mod due;
mod fleet;
pub mod lifecycle;
pub mod nonces;
pub mod seeding;
#[cfg(test)]
mod store_edits;
pub mod tags;
#[cfg(test)]
mod tests;
pub mod validate;
mod versions;

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use kms_proto::key_id::{DomainId, FullKeyId, KeyRef, RegionId};
use uuid::Uuid;

use crate::clock::Clock;
use crate::crypto::{RootKey, SecretKey, WRAP_SCHEME_V1, WrapContext};
use crate::error::{KmsError, Result};
use crate::integrity;
use crate::store::{Creator, KeyRecord, KeyStore, Mac, StoreError, WrappedVersion};

pub use data_path::{DataKey, Decrypted, Encrypted, ReEncrypted};
pub use lifecycle::{Configure, KeyOptions, KeyPage};
pub use tags::{TagEdit, TagFilter};
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

/// Where an alias names a key: aliases are unique per domain and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AliasSlot {
    domain: DomainId,
    region: RegionId,
    alias: String,
}

impl AliasSlot {
    fn of(rec: &KeyRecord) -> Option<Self> {
        (!rec.alias.is_empty()).then(|| Self {
            domain: rec.domain.clone(),
            region: rec.region.clone(),
            alias: rec.alias.clone(),
        })
    }
}

/// A map keyed by key UUIDs, which the data path looks up on every call. foldhash (seeded at
/// random per map) in place of std's SipHash, which took 170 to 210 instructions a lookup: the
/// UUIDs are drawn by the daemon, not named by callers, so no caller can aim entries at one
/// bucket. The maps keyed by what callers name (aliases, default-key slots) keep SipHash, as
/// foldhash does not claim to resist an attacker who can probe it.
type UuidMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The keyring: every key of every tenant, the KMS's rules, and the store behind them.
pub struct Keyring {
    store: Arc<dyn KeyStore>,
    root: RootKey,
    /// The store's ID, which the store MAC binds.
    store_id: Uuid,
    cache: RwLock<UuidMap<Uuid, Arc<KeyRecord>>>,
    /// Service default keys by slot: GetDefaultKey is on OBS's upload path.
    defaults: RwLock<HashMap<DefaultSlot, Uuid>>,
    /// Keys by alias: the Vault transit API names keys so, on its data path.
    aliases: RwLock<HashMap<AliasSlot, Uuid>>,
    writes: tokio::sync::Mutex<()>,
    /// Keyed ciphers and blob counts of the key versions in use (`versions`).
    versions: RwLock<UuidMap<(Uuid, u32), Arc<versions::VersionState>>>,
    /// The time of creation and deletion dates and of the purge.
    clock: Arc<Clock>,
    /// The shared store's change counter the cache reflects ([`fleet`]).
    seen_change: AtomicI64,
    /// The shared store failed its integrity check at the last refresh: the cache may miss other
    /// daemons' changes, so no key is served until a refresh passes ([`fleet`]).
    untrusted: std::sync::atomic::AtomicBool,
    /// When the shared store last answered the refresher: cached keys are not served past
    /// [`crate::fleet::STALENESS_BOUND`] after it ([`fleet`]).
    contact: fleet::Contact,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// Loads every key from the store, checks each key's record MAC and the store MAC
    /// ([`integrity::check_store`]), and checks that the root key unwraps each key version.
    pub fn open(store: Arc<dyn KeyStore>, root: RootKey) -> Result<Self> {
        let mut cache = UuidMap::default();
        let mut defaults = HashMap::new();
        let store_id = store.store_id()?;
        let (records, store_mac, change) = store.load_snapshot()?;
        integrity::check_store(&root, store_id, &records, store_mac.as_ref())?;
        let mut aliases = HashMap::new();
        for rec in records {
            for v in &rec.versions {
                unwrap_version(&root, &rec, v)?;
            }
            if let Some(slot) = DefaultSlot::of(&rec) {
                defaults.insert(slot, rec.uuid);
            }
            if let Some(slot) = AliasSlot::of(&rec) {
                aliases.insert(slot, rec.uuid);
            }
            cache.insert(rec.uuid, Arc::new(rec));
        }
        Ok(Self {
            store,
            root,
            store_id,
            cache: RwLock::new(cache),
            defaults: RwLock::new(defaults),
            aliases: RwLock::new(aliases),
            writes: tokio::sync::Mutex::new(()),
            versions: RwLock::new(UuidMap::default()),
            clock: Arc::new(Clock::wall()),
            seen_change: AtomicI64::new(change),
            untrusted: std::sync::atomic::AtomicBool::new(false),
            contact: fleet::Contact::now(),
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

    fn read_cache(&self) -> RwLockReadGuard<'_, UuidMap<Uuid, Arc<KeyRecord>>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// `rec` with its record MAC set.
    fn with_mac(&self, mut rec: KeyRecord) -> Result<KeyRecord> {
        rec.mac = Some(integrity::record_mac(&self.root, &rec)?);
        Ok(rec)
    }

    /// The store MAC once `put` is stored (new, or replacing the key of its UUID) and `remove`
    /// deleted, computed over the cache. Called under the write lock, so that the cache is what the
    /// store holds.
    fn store_mac_after(&self, put: Option<&KeyRecord>, remove: Option<Uuid>) -> Result<Mac> {
        let cache = self.read_cache();
        let mut keys = Vec::with_capacity(cache.len() + 1);
        let kept = cache
            .values()
            .map(|r| &**r)
            .filter(|r| Some(r.uuid) != remove && put.is_none_or(|p| p.uuid != r.uuid));
        for r in kept.chain(put) {
            let mac = r.mac.as_ref().ok_or_else(|| {
                KmsError::Internal(format!("key {} has no record MAC in memory", r.uuid))
            })?;
            keys.push((r.uuid, mac));
        }
        integrity::store_mac(&self.root, self.store_id, keys)
    }

    fn put_cache(&self, rec: Arc<KeyRecord>) {
        if let Some(slot) = DefaultSlot::of(&rec) {
            self.defaults
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(slot, rec.uuid);
        }
        let (new_slot, uuid) = (AliasSlot::of(&rec), rec.uuid);
        let old = self
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(rec.uuid, rec);
        self.move_alias(uuid, old.as_deref().and_then(AliasSlot::of), new_slot);
    }

    fn remove_cache(&self, uuid: &Uuid) {
        let old = self
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(uuid);
        self.move_alias(*uuid, old.as_deref().and_then(AliasSlot::of), None);
        self.forget_versions(*uuid);
    }

    /// Keeps the alias index in step with a key whose alias went from `old` to `new`.
    fn move_alias(&self, uuid: Uuid, old: Option<AliasSlot>, new: Option<AliasSlot>) {
        if old == new {
            return;
        }
        let mut aliases = self.aliases.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = old
            && aliases.get(&old) == Some(&uuid)
        {
            aliases.remove(&old);
        }
        if let Some(new) = new {
            aliases.insert(new, uuid);
        }
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
        // The common case, a full ID in the caller's own region and domain, without copying its
        // parts; anything else goes through the full grammar (and its errors).
        if let Some(uuid) = key_id
            .strip_prefix(caller.region.as_str())
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|r| r.strip_prefix(caller.domain.as_str()))
            .and_then(|r| r.strip_prefix(":key/"))
            .and_then(|u| kms_proto::key_id::parse_key_uuid(u).ok())
        {
            return self.find_uuid(caller, uuid);
        }
        match key_id.parse::<KeyRef>()? {
            KeyRef::Bare(uuid) => self.find_uuid(caller, uuid),
            KeyRef::Full(full) if full.domain != caller.domain || full.region != caller.region => {
                Err(KmsError::KeyNotFound(full.to_string()))
            }
            KeyRef::Full(full) => self.find_uuid(caller, full.uuid),
        }
    }

    /// Looks a key up by its alias in the caller's domain and region (the name the Vault transit
    /// API gives a key). An empty alias names no key; another tenant's alias is "not found".
    pub fn find_alias(&self, caller: &Caller, alias: &str) -> Result<Arc<KeyRecord>> {
        let slot = AliasSlot {
            domain: caller.domain.clone(),
            region: caller.region.clone(),
            alias: alias.to_owned(),
        };
        self.trusted()?;
        let rec = self
            .cached_alias(&slot)
            .or_else(|| self.read_through_alias(&slot));
        match rec {
            Some(r) if caller.owns(&r) && r.alias == alias => Ok(r),
            _ => Err(KmsError::KeyNotFound(format!("alias {alias:?}"))),
        }
    }

    /// The cached key holding an alias slot.
    fn cached_alias(&self, slot: &AliasSlot) -> Option<Arc<KeyRecord>> {
        let uuid = self
            .aliases
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(slot)
            .copied()?;
        self.read_cache().get(&uuid).cloned()
    }

    fn find_uuid(&self, caller: &Caller, uuid: Uuid) -> Result<Arc<KeyRecord>> {
        self.trusted()?;
        let rec = self.read_cache().get(&uuid).cloned();
        match rec.or_else(|| self.read_through(uuid)) {
            Some(r) if caller.owns(&r) => Ok(r),
            _ => Err(KmsError::KeyNotFound(
                FullKeyId::new(caller.region.clone(), caller.domain.clone(), uuid).to_string(),
            )),
        }
    }
}

/// Unwraps one stored key version under `root`, refusing a wrap scheme other than FORMATS.md §2's.
pub(crate) fn unwrap_version(
    root: &RootKey,
    rec: &KeyRecord,
    v: &WrappedVersion,
) -> Result<SecretKey> {
    if v.scheme != WRAP_SCHEME_V1 {
        return Err(KmsError::StoreIntegrity(format!(
            "key {} version {} is wrapped with scheme {}; this daemon knows only scheme \
             {WRAP_SCHEME_V1}",
            rec.full_id(),
            v.version,
            v.scheme
        )));
    }
    root.unwrap(&wrap_ctx(rec, v.version), &v.wrapped)
}

/// The identity a key version's material is wrapped under.
pub(crate) fn wrap_ctx(rec: &KeyRecord, version: u32) -> WrapContext<'_> {
    WrapContext {
        uuid: rec.uuid,
        version,
        domain: rec.domain.as_str(),
        region: rec.region.as_str(),
    }
}
