//! The key store: where CMK metadata and wrapped material persist.
//!
//! A trait, so that the SQLite store of a single daemon can later give way to a replicated store
//! shared by a fleet. The key service keeps every record in memory and writes through on management
//! calls; the data path calls it only to be granted the next block of a key version's blob nonces
//! ([`KeyStore::reserve_nonces`], once per 2^20 blobs).
//!
//! The store authenticates nothing itself: it keeps the MACs the keyring computes under the root key
//! (each key's record MAC, and the store MAC over every key's; FORMATS.md §3) and hands them back.
//! Every write that changes a key also replaces the store MAC, in the same transaction.

pub mod memory;
pub mod postgres;
pub mod sqlite;

use kms_proto::key_id::{DomainId, FullKeyId, RegionId};
use uuid::Uuid;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::{SqliteStore, StoreIdentity};

/// A key's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// Not usable until enabled.
    Disabled,
    /// Scheduled for deletion; not usable; can be cancelled.
    PendingDeletion,
}

impl KeyState {
    /// Its integer in the store.
    pub fn to_i64(self) -> i64 {
        match self {
            KeyState::Enabled => 1,
            KeyState::Disabled => 2,
            KeyState::PendingDeletion => 3,
        }
    }

    /// From its integer in the store.
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            1 => Some(KeyState::Enabled),
            2 => Some(KeyState::Disabled),
            3 => Some(KeyState::PendingDeletion),
            _ => None,
        }
    }

    /// In words, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending deletion",
        }
    }
}

/// Who created a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creator {
    /// A customer, with CreateKey.
    Customer,
    /// A service: a default key.
    Service,
}

impl Creator {
    /// Its integer in the store.
    pub fn to_i64(self) -> i64 {
        match self {
            Creator::Customer => 1,
            Creator::Service => 2,
        }
    }

    /// From its integer in the store.
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            1 => Some(Creator::Customer),
            2 => Some(Creator::Service),
            _ => None,
        }
    }
}

/// One key version's material, wrapped under the root key (FORMATS.md §2).
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedVersion {
    /// The version, from 1.
    pub version: u32,
    /// The wrapping scheme (1).
    pub scheme: u32,
    /// The wrapped material.
    pub wrapped: Vec<u8>,
    /// How many blob nonces of this version were granted, to every daemon that ever used the
    /// store together: no daemon seals a blob under the version that this count does not cover,
    /// and it never passes the limit (2^32; FORMATS.md §1). Raised only by
    /// [`KeyStore::reserve_nonces`].
    pub nonces_reserved: u64,
    /// When the version was made, in milliseconds since the Unix epoch (0: made before the
    /// store kept it; version 1 was made with its key).
    pub created_at_ms: i64,
}

impl std::fmt::Debug for WrappedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedVersion {{ version: {}, .. }}", self.version)
    }
}

/// A MAC kept in the store: a key's record MAC or the store MAC (HMAC-SHA-256, FORMATS.md §3).
pub type Mac = [u8; 32];

/// Everything stored about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key's UUID.
    pub uuid: Uuid,
    /// The owning domain.
    pub domain: DomainId,
    /// The key's region.
    pub region: RegionId,
    /// Alias, or empty.
    pub alias: String,
    /// Description, or empty.
    pub description: String,
    /// Lifecycle state.
    pub state: KeyState,
    /// Who created it.
    pub creator: Creator,
    /// For service keys, the service (for example `obs`); else empty.
    pub service: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When pending deletion, the deletion time in milliseconds since the Unix epoch.
    pub deletion_date_ms: Option<i64>,
    /// The version new encryptions use.
    pub current_version: u32,
    /// Every version, oldest first.
    pub versions: Vec<WrappedVersion>,
    /// The record MAC under the root key (FORMATS.md §3); `None` in a row written by a daemon
    /// from before record MACs.
    pub mac: Option<Mac>,
    /// The automatic rotation schedule.
    pub rotation: Rotation,
    /// What the key's data calls and deletion require beyond its state.
    pub policy: KeyPolicy,
    /// The key's tags (Huawei's key tags), by tag key.
    pub tags: Tags,
}

/// A key's tags: labels a caller lists and filters keys by, tag key to value. They grant nothing
/// and the data path never reads them.
pub type Tags = std::collections::BTreeMap<String, String>;

/// Tags as the stores keep them: one JSON object, keys in order (FORMATS.md §3).
pub fn tags_to_text(tags: &Tags) -> String {
    // A map of strings always encodes.
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".to_owned())
}

/// Tags from the stores' text; what is not a JSON object of strings is a corrupt row.
pub fn tags_from_text(uuid: &str, text: &str) -> Result<Tags, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "key {uuid}: its tags are not a JSON object of strings: {e}"
        ))
    })
}

/// What a key's data calls and deletion require beyond its state: the options Vault's transit keys
/// carry, kept in the core so that every API keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyPolicy {
    /// Every data call under the key must give a non-empty encryption context (Vault's
    /// `derived`): a caller cannot forget to bind its ciphertexts to their context.
    pub context_required: bool,
    /// Vault's `DELETE transit/keys/:name` may schedule the key's deletion (Vault's
    /// `deletion_allowed`); the other APIs schedule deletion without it.
    pub deletion_allowed: bool,
}

/// What a caller may change of a key besides its state and versions, all as they will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Alias, or empty.
    pub alias: String,
    /// Description, or empty.
    pub description: String,
    /// The automatic rotation schedule.
    pub rotation: Rotation,
    /// The key's policy.
    pub policy: KeyPolicy,
    /// The key's tags.
    pub tags: Tags,
}

/// A key's automatic rotation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Whether the key rotates by itself.
    pub enabled: bool,
    /// Days between rotations.
    pub interval_days: u32,
    /// When the schedule was last enabled or its interval set: the next rotation is one interval
    /// after the later of this and the current version's making.
    pub since_ms: i64,
}

impl Default for Rotation {
    /// Off, with Huawei's default interval of 365 days.
    fn default() -> Self {
        Self {
            enabled: false,
            interval_days: 365,
            since_ms: 0,
        }
    }
}

impl KeyRecord {
    /// The key's full ID, `region:domain:key/<uuid>`.
    pub fn full_id(&self) -> FullKeyId {
        FullKeyId::new(self.region.clone(), self.domain.clone(), self.uuid)
    }

    /// The key's full ID as text: `full_id().to_string()` without the copies.
    pub fn full_id_string(&self) -> String {
        FullKeyId::render(&self.region, &self.domain, self.uuid)
    }

    /// When the current version was made: for version 1 (and versions made before the store kept
    /// the time) the key's creation.
    pub fn current_version_made_ms(&self) -> i64 {
        self.version(self.current_version)
            .map_or(0, |v| v.created_at_ms)
            .max(self.created_at_ms)
    }

    /// When the key is next rotated by its schedule; `None` when the schedule is off.
    pub fn next_rotation_ms(&self) -> Option<i64> {
        const DAY_MS: i64 = 86_400_000;
        self.rotation.enabled.then(|| {
            self.rotation.since_ms.max(self.current_version_made_ms())
                + i64::from(self.rotation.interval_days) * DAY_MS
        })
    }

    /// What a caller may change of the key besides its state and versions, as they are.
    pub fn attributes(&self) -> Attributes {
        Attributes {
            alias: self.alias.clone(),
            description: self.description.clone(),
            rotation: self.rotation,
            policy: self.policy,
            tags: self.tags.clone(),
        }
    }

    /// The wrapped material of one version.
    pub fn version(&self, v: u32) -> Option<&WrappedVersion> {
        self.versions.iter().find(|w| w.version == v)
    }
}

/// Which uniqueness rule an insert broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The alias is taken in this domain and region.
    Alias,
    /// The UUID is taken.
    Uuid,
}

/// A key store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was broken.
    #[error("conflict on {0:?}")]
    Conflict(Conflict),
    /// The stored data is not what this version understands.
    #[error("corrupt key store: {0}")]
    Corrupt(String),
    /// The store cannot be reached (a shared store's database is down or unreachable); the call
    /// may be retried once it is back.
    #[error(
        "the shared key store cannot be reached; calls that need it are refused until it can \
         (health reports NOT_SERVING meanwhile): {0}"
    )]
    Unavailable(String),
    /// A shared store refused a write made from a stale copy of the key (another daemon changed
    /// it first); nothing was written, and the call may be retried once the cache is refreshed.
    #[error("key {0} was changed by another daemon; retry")]
    Stale(Uuid),
    /// The backend failed; the backend's own error is the source.
    #[error("{0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// A place that persists keys. Every method is durable when it returns `Ok`.
///
/// `store_mac` is the store MAC after the write; a write stores it with its change, atomically.
pub trait KeyStore: Send + Sync + 'static {
    /// Every key, for the in-memory cache at start-up.
    fn load_all(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Every key and the store MAC, read in one snapshot, with the store's change counter (0 for
    /// a store with one writer).
    fn load_snapshot(&self) -> Result<(Vec<KeyRecord>, Option<Mac>, i64), StoreError> {
        Ok((self.load_all()?, self.store_mac()?, 0))
    }
    /// Whether other daemons write to this store too (a fleet's PostgreSQL): then the keyring's
    /// cache is refreshed from it, and a cache miss reads it.
    fn is_shared(&self) -> bool {
        false
    }
    /// The store's change counter, bumped by every write of any daemon (0 for a store with one
    /// writer).
    fn change_counter(&self) -> Result<i64, StoreError> {
        Ok(0)
    }
    /// One key as stored now; `None` when absent, and always for a store with one writer (whose
    /// cache holds every key).
    fn load_key(&self, _uuid: Uuid) -> Result<Option<KeyRecord>, StoreError> {
        Ok(None)
    }
    /// The store's ID, which the store MAC binds (the nil UUID for a store that has none yet).
    fn store_id(&self) -> Result<Uuid, StoreError>;
    /// The store MAC, `None` while none was written.
    fn store_mac(&self) -> Result<Option<Mac>, StoreError>;
    /// Inserts a new key with its versions and its record MAC.
    fn insert_key(&self, rec: &KeyRecord, store_mac: &Mac) -> Result<(), StoreError>;
    /// Inserts a service default key unless one exists for its (domain, region, service), in
    /// which case nothing is written (the store MAC neither); returns the one that is stored
    /// afterwards.
    fn insert_default_key(&self, rec: &KeyRecord, store_mac: &Mac)
    -> Result<KeyRecord, StoreError>;
    /// Sets a key's state, deletion date and record MAC.
    fn set_state(
        &self,
        uuid: Uuid,
        state: KeyState,
        deletion_date_ms: Option<i64>,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError>;
    /// Adds a new version, makes it current, and sets the key's record MAC.
    fn add_version(
        &self,
        uuid: Uuid,
        version: &WrappedVersion,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError>;
    /// Sets what a caller may change of a key besides its state and versions, with the record's
    /// new MAC. An alias taken in the key's domain and region is [`Conflict::Alias`].
    fn set_attributes(
        &self,
        uuid: Uuid,
        attributes: &Attributes,
        mac: &Mac,
        store_mac: &Mac,
    ) -> Result<(), StoreError>;
    /// Deletes a key and its versions for good.
    fn delete_key(&self, uuid: Uuid, store_mac: &Mac) -> Result<(), StoreError>;
    /// Grants the caller up to `block` more blob nonces of one key version, never past `limit`
    /// over everyone who shares the store: in one atomic step the stored count `r` becomes
    /// `min(r + block, limit)`, and the grant is `r..min(r + block, limit)` (a last block may be
    /// partial; the grant is empty once the count is at `limit`). Grants to concurrent callers,
    /// in this process or in other daemons on the same database, never overlap. The keyring calls
    /// this before it seals the first blob the grant covers; a crash only wastes a grant.
    fn reserve_nonces(
        &self,
        uuid: Uuid,
        version: u32,
        block: u64,
        limit: u64,
    ) -> Result<std::ops::Range<u64>, StoreError>;
}
