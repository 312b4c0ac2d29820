//! The key service: the KMS's rules, over an in-memory cache of the key store.
//!
//! Every key lives in memory (metadata and *wrapped* material); a key's material is unwrapped under
//! the root key for the one call that uses it and wiped right after. Management calls write through
//! to the store before they change the cache, under one write lock, so that what a caller was told
//! is what is on disk. The data path (`generate_data_key`, `encrypt`, `decrypt`, `re_encrypt`)
//! touches neither the disk nor the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use kms_proto::key_id::{FullKeyId, KeyRef};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::blob::{self, BlobBinding, BlobHeader};
use crate::crypto::{RootKey, SecretKey, WRAP_SCHEME_V1, WrapContext};
use crate::error::{KmsError, Result};
use crate::store::{Conflict, Creator, KeyRecord, KeyState, KeyStore, StoreError, WrappedVersion};
use crate::tenancy::Caller;

/// Largest plaintext `Encrypt` takes.
pub const MAX_PLAINTEXT: usize = 4096;
/// Largest data key, in bytes.
pub const MAX_DATA_KEY: u32 = 1024;
/// Data key length when the request names none.
pub const DEFAULT_DATA_KEY: u32 = 32;
/// Largest ciphertext blob accepted.
pub const MAX_BLOB: usize = blob::HEADER_LEN + MAX_PLAINTEXT + blob::TAG_LEN;
/// Largest encryption context, in bytes of keys and values together.
pub const MAX_CONTEXT_BYTES: usize = 8192;
/// Pending window bounds and default, in days.
pub const DELETION_WINDOW_DAYS: (u32, u32, u32) = (7, 1096, 30);
/// `ListKeys` page size bounds and default.
pub const PAGE_SIZE: (u32, u32) = (1000, 100);

const DAY_MS: i64 = 86_400_000;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The full key ID of a stored key.
pub fn full_id(rec: &KeyRecord) -> String {
    format!(
        "{}:{}:key/{}",
        rec.region,
        rec.domain,
        rec.uuid.hyphenated()
    )
}

/// An encryption context as the requests carry it.
pub type Context = HashMap<String, String>;

/// A data key: plaintext (wiped on drop) and blob.
pub struct DataKey {
    /// The key it is encrypted under.
    pub key: Arc<KeyRecord>,
    /// The version used.
    pub version: u32,
    /// The plaintext data key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The ciphertext blob.
    pub blob: Vec<u8>,
}

/// The result of a decryption.
pub struct Decrypted {
    /// The key the blob was encrypted under.
    pub key: Arc<KeyRecord>,
    /// The version.
    pub version: u32,
    /// The plaintext, wiped on drop.
    pub plaintext: Zeroizing<Vec<u8>>,
}

/// (domain, region, service) of a default key.
type DefaultSlot = (String, String, String);

fn default_slot(rec: &KeyRecord) -> Option<DefaultSlot> {
    (rec.creator == Creator::Service)
        .then(|| (rec.domain.clone(), rec.region.clone(), rec.service.clone()))
}

/// A change to one key, decided under the write lock and then persisted.
enum Change {
    None,
    State(KeyState, Option<i64>),
    Version(WrappedVersion),
}

/// The key service.
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    root: RootKey,
    cache: RwLock<HashMap<Uuid, Arc<KeyRecord>>>,
    /// Service default keys by (domain, region, service): GetDefaultKey is on OBS's upload path.
    defaults: RwLock<HashMap<DefaultSlot, Uuid>>,
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyService(..)")
    }
}

impl KeyService {
    /// Loads every key from the store and checks that the root key unwraps each key version.
    pub fn open(store: Arc<dyn KeyStore>, root: RootKey) -> Result<Self> {
        let mut cache = HashMap::new();
        let mut defaults = HashMap::new();
        for rec in store.load_all()? {
            for v in &rec.versions {
                root.unwrap(&wrap_ctx(&rec, v.version), &v.wrapped)?;
            }
            if let Some(slot) = default_slot(&rec) {
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
        })
    }

    /// The number of keys held, all tenants together.
    pub fn key_count(&self) -> usize {
        self.read_cache().len()
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Arc<KeyRecord>>> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put_cache(&self, rec: Arc<KeyRecord>) {
        if let Some(slot) = default_slot(&rec) {
            self.defaults
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(slot, rec.uuid);
        }
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(rec.uuid, rec);
    }

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
            Some(r) if r.domain == caller.domain.as_str() && r.region == caller.region.as_str() => {
                Ok(r)
            }
            _ => Err(KmsError::KeyNotFound(
                FullKeyId::new(caller.region.clone(), caller.domain.clone(), uuid).to_string(),
            )),
        }
    }

    fn new_record(
        &self,
        caller: &Caller,
        uuid: Uuid,
        alias: String,
        description: String,
        creator: Creator,
        service: String,
    ) -> Result<KeyRecord> {
        let mut rec = KeyRecord {
            uuid,
            domain: caller.domain.as_str().to_owned(),
            region: caller.region.as_str().to_owned(),
            alias,
            description,
            state: KeyState::Enabled,
            creator,
            service,
            created_at_ms: now_ms(),
            deletion_date_ms: None,
            current_version: 1,
            versions: Vec::new(),
        };
        let material = SecretKey::generate()?;
        let wrapped = self.root.wrap(&wrap_ctx(&rec, 1), &material)?;
        rec.versions.push(WrappedVersion {
            version: 1,
            scheme: WRAP_SCHEME_V1,
            wrapped: wrapped.to_vec(),
        });
        Ok(rec)
    }

    /// Creates a customer key.
    pub async fn create_key(
        &self,
        caller: &Caller,
        alias: &str,
        description: &str,
    ) -> Result<Arc<KeyRecord>> {
        self.create_key_with_id(
            caller,
            Uuid::new_v4(),
            alias,
            description,
            Creator::Customer,
            "",
        )
        .await
    }

    /// Creates a key with a given UUID (CreateKey, and `--seed`).
    pub(crate) async fn create_key_with_id(
        &self,
        caller: &Caller,
        uuid: Uuid,
        alias: &str,
        description: &str,
        creator: Creator,
        service: &str,
    ) -> Result<Arc<KeyRecord>> {
        if creator == Creator::Customer {
            validate_alias(alias)?;
        }
        validate_description(description)?;
        let rec = self.new_record(
            caller,
            uuid,
            alias.to_owned(),
            description.to_owned(),
            creator,
            service.to_owned(),
        )?;
        let _w = self.writes.lock().await;
        let stored = rec.clone();
        self.blocking(move |s| s.insert_key(&stored))
            .await
            .map_err(|e| match e {
                KmsError::Store(StoreError::Conflict(Conflict::Alias)) => {
                    KmsError::AliasExists(alias.to_owned())
                }
                KmsError::Store(StoreError::Conflict(Conflict::Uuid)) => {
                    KmsError::InvalidArgument {
                        field: "key_id",
                        reason: format!("key {uuid} already exists"),
                    }
                }
                other => other,
            })?;
        let rec = Arc::new(rec);
        self.put_cache(Arc::clone(&rec));
        Ok(rec)
    }

    /// The caller's default key for `service` in the caller's region, created on first use,
    /// exactly once.
    pub async fn default_key(&self, caller: &Caller, service: &str) -> Result<Arc<KeyRecord>> {
        validate_service(service)?;
        if let Some(k) = self.cached_default(caller, service) {
            return Ok(k);
        }
        let _w = self.writes.lock().await;
        // Whoever held the lock before us may have created it.
        if let Some(k) = self.cached_default(caller, service) {
            return Ok(k);
        }
        let rec = self.new_record(
            caller,
            Uuid::new_v4(),
            format!("{service}/default"),
            format!("Default key of service {service}"),
            Creator::Service,
            service.to_owned(),
        )?;
        // The store keeps one per (domain, region, service), also against other daemons.
        let stored = self.blocking(move |s| s.insert_default_key(&rec)).await?;
        let stored = Arc::new(stored);
        self.put_cache(Arc::clone(&stored));
        Ok(stored)
    }

    fn cached_default(&self, caller: &Caller, service: &str) -> Option<Arc<KeyRecord>> {
        let slot = (
            caller.domain.as_str().to_owned(),
            caller.region.as_str().to_owned(),
            service.to_owned(),
        );
        let uuid = *self
            .defaults
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&slot)?;
        self.read_cache().get(&uuid).cloned()
    }

    /// Enables a disabled key.
    pub async fn enable(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        self.change(caller, key_id, |r| match r.state {
            KeyState::Enabled => Ok(Change::None),
            KeyState::Disabled => Ok(Change::State(KeyState::Enabled, None)),
            KeyState::PendingDeletion => Err(KmsError::KeyPendingDeletion(full_id(r))),
        })
        .await
    }

    /// Disables a key.
    pub async fn disable(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        self.change(caller, key_id, |r| {
            refuse_default(r, "disabled")?;
            match r.state {
                KeyState::Enabled => Ok(Change::State(KeyState::Disabled, None)),
                KeyState::Disabled => Ok(Change::None),
                KeyState::PendingDeletion => Err(KmsError::KeyPendingDeletion(full_id(r))),
            }
        })
        .await
    }

    /// Schedules a key for deletion after `days` (0 means the default).
    pub async fn schedule_deletion(
        &self,
        caller: &Caller,
        key_id: &str,
        days: u32,
    ) -> Result<Arc<KeyRecord>> {
        let (min, max, default) = DELETION_WINDOW_DAYS;
        let days = if days == 0 { default } else { days };
        if !(min..=max).contains(&days) {
            return Err(KmsError::DeletionWindowOutOfRange(days));
        }
        self.change(caller, key_id, |r| {
            refuse_default(r, "scheduled for deletion")?;
            match r.state {
                KeyState::PendingDeletion => Err(KmsError::KeyPendingDeletion(full_id(r))),
                _ => Ok(Change::State(
                    KeyState::PendingDeletion,
                    Some(now_ms() + i64::from(days) * DAY_MS),
                )),
            }
        })
        .await
    }

    /// Cancels a scheduled deletion; the key comes back disabled.
    pub async fn cancel_deletion(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        self.change(caller, key_id, |r| match r.state {
            KeyState::PendingDeletion => Ok(Change::State(KeyState::Disabled, None)),
            s => Err(KmsError::WrongKeyState {
                key: full_id(r),
                state: s.as_str(),
                why: "only a key pending deletion can have its deletion cancelled",
            }),
        })
        .await
    }

    /// Adds a key version and makes it current.
    pub async fn rotate(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        self.change(caller, key_id, |r| {
            refuse_default(r, "rotated")?;
            usable(r)?;
            let version = r
                .current_version
                .checked_add(1)
                .ok_or_else(|| KmsError::Internal("key version overflow".into()))?;
            let material = SecretKey::generate()?;
            let wrapped = self.root.wrap(&wrap_ctx(r, version), &material)?;
            Ok(Change::Version(WrappedVersion {
                version,
                scheme: WRAP_SCHEME_V1,
                wrapped: wrapped.to_vec(),
            }))
        })
        .await
    }

    async fn change(
        &self,
        caller: &Caller,
        key_id: &str,
        decide: impl FnOnce(&KeyRecord) -> Result<Change>,
    ) -> Result<Arc<KeyRecord>> {
        let _w = self.writes.lock().await;
        let rec = self.find(caller, key_id)?;
        let change = decide(&rec)?;
        let mut next = (*rec).clone();
        let uuid = rec.uuid;
        match change {
            Change::None => return Ok(rec),
            Change::State(state, date) => {
                self.blocking(move |s| s.set_state(uuid, state, date))
                    .await?;
                next.state = state;
                next.deletion_date_ms = date;
            }
            Change::Version(v) => {
                let stored = v.clone();
                self.blocking(move |s| s.add_version(uuid, &stored)).await?;
                next.current_version = v.version;
                next.versions.push(v);
            }
        }
        let next = Arc::new(next);
        self.put_cache(Arc::clone(&next));
        Ok(next)
    }

    /// One page of the caller's keys in the caller's region, oldest first.
    pub fn list(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: &str,
    ) -> Result<(Vec<Arc<KeyRecord>>, String)> {
        let (max, default) = PAGE_SIZE;
        let size = match page_size {
            0 => default,
            n if n <= max => n,
            n => {
                return Err(KmsError::InvalidArgument {
                    field: "page_size",
                    reason: format!("{n} is more than {max}"),
                });
            }
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(parse_page_token(page_token)?)
        };
        let mut mine: Vec<Arc<KeyRecord>> = self
            .read_cache()
            .values()
            .filter(|r| r.domain == caller.domain.as_str() && r.region == caller.region.as_str())
            .filter(|r| after.is_none_or(|a| (r.created_at_ms, r.uuid) > a))
            .cloned()
            .collect();
        mine.sort_by_key(|r| (r.created_at_ms, r.uuid));
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let next = if mine.len() > size {
            mine.truncate(size);
            mine.last()
                .map(|r| format!("{}.{}", r.created_at_ms, r.uuid))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((mine, next))
    }

    fn material(&self, rec: &KeyRecord, version: u32) -> Result<SecretKey> {
        let v = rec.version(version).ok_or(KmsError::CiphertextAuthFailed)?;
        self.root.unwrap(&wrap_ctx(rec, version), &v.wrapped)
    }

    fn seal(
        &self,
        rec: &KeyRecord,
        context: &Context,
        plaintext: &[u8],
        nonce: [u8; 12],
    ) -> Result<Vec<u8>> {
        let material = self.material(rec, rec.current_version)?;
        blob::seal(
            &material,
            rec.uuid,
            rec.current_version,
            nonce,
            &binding(rec, context),
            plaintext,
        )
    }

    /// A fresh data key of `number_of_bytes` (0 means 32), encrypted under a key.
    pub fn generate_data_key(
        &self,
        caller: &Caller,
        key_id: &str,
        number_of_bytes: u32,
        context: &Context,
    ) -> Result<DataKey> {
        let n = if number_of_bytes == 0 {
            DEFAULT_DATA_KEY
        } else {
            number_of_bytes
        };
        if n > MAX_DATA_KEY {
            return Err(KmsError::InvalidArgument {
                field: "number_of_bytes",
                reason: format!("{n} is out of range: it must be 1 to {MAX_DATA_KEY}"),
            });
        }
        validate_context("encryption_context", context)?;
        let rec = self.find(caller, key_id)?;
        usable(&rec)?;
        // One draw from the OS for the data key and the blob's nonce.
        let n = usize::try_from(n).unwrap_or(32);
        let mut plaintext = crate::crypto::random_bytes(n + 12)?;
        let nonce = nonce_from(&plaintext[n..])?;
        plaintext.truncate(n);
        let blob = self.seal(&rec, context, &plaintext, nonce)?;
        Ok(DataKey {
            version: rec.current_version,
            key: rec,
            plaintext,
            blob,
        })
    }

    /// Encrypts at most 4096 bytes under a key.
    pub fn encrypt(
        &self,
        caller: &Caller,
        key_id: &str,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<(Arc<KeyRecord>, u32, Vec<u8>)> {
        if plaintext.is_empty() {
            return Err(KmsError::InvalidArgument {
                field: "plaintext",
                reason: "empty; it must be 1 to 4096 bytes".into(),
            });
        }
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(KmsError::PayloadTooLarge {
                field: "plaintext",
                len: plaintext.len(),
                max: MAX_PLAINTEXT,
            });
        }
        validate_context("encryption_context", context)?;
        let rec = self.find(caller, key_id)?;
        usable(&rec)?;
        let blob = self.seal(&rec, context, plaintext, fresh_nonce()?)?;
        Ok((Arc::clone(&rec), rec.current_version, blob))
    }

    /// Authenticates and decrypts a ciphertext blob; `key_id`, when not empty, must name its key.
    pub fn decrypt(
        &self,
        caller: &Caller,
        blob: &[u8],
        context: &Context,
        key_id: &str,
    ) -> Result<Decrypted> {
        if blob.len() > MAX_BLOB {
            return Err(KmsError::PayloadTooLarge {
                field: "ciphertext_blob",
                len: blob.len(),
                max: MAX_BLOB,
            });
        }
        validate_context("encryption_context", context)?;
        let expected = if key_id.is_empty() {
            None
        } else {
            Some(
                key_id
                    .parse::<KeyRef>()?
                    .resolve(caller.region.as_str(), caller.domain.as_str())?,
            )
        };
        let header = BlobHeader::parse(blob)?;
        let rec = self.find_uuid(caller, header.key_uuid)?;
        if let Some(e) = expected
            && e.to_string() != full_id(&rec)
        {
            return Err(KmsError::KeyIdMismatch {
                given: key_id.to_owned(),
            });
        }
        usable(&rec)?;
        let material = self.material(&rec, header.key_version)?;
        let plaintext = blob::open(&material, &header, &binding(&rec, context), blob)?;
        Ok(Decrypted {
            key: rec,
            version: header.key_version,
            plaintext,
        })
    }

    /// Decrypts a blob and encrypts its plaintext under `destination_key_id` and context.
    pub fn re_encrypt(
        &self,
        caller: &Caller,
        blob: &[u8],
        source_context: &Context,
        source_key_id: &str,
        destination_key_id: &str,
        destination_context: &Context,
    ) -> Result<(Decrypted, Arc<KeyRecord>, u32, Vec<u8>)> {
        validate_context("destination_encryption_context", destination_context)?;
        let dest = self.find(caller, destination_key_id)?;
        usable(&dest)?;
        let source = self.decrypt(caller, blob, source_context, source_key_id)?;
        let out = self.seal(
            &dest,
            destination_context,
            &source.plaintext,
            fresh_nonce()?,
        )?;
        Ok((source, Arc::clone(&dest), dest.current_version, out))
    }

    /// Deletes, for good, every key whose pending window has passed. Returns how many.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<usize> {
        let _w = self.writes.lock().await;
        let due: Vec<Uuid> = self
            .read_cache()
            .values()
            .filter(|r| {
                r.state == KeyState::PendingDeletion
                    && r.deletion_date_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|r| r.uuid)
            .collect();
        for uuid in &due {
            let u = *uuid;
            self.blocking(move |s| s.delete_key(u)).await?;
            self.cache
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(uuid);
        }
        Ok(due.len())
    }
}

fn fresh_nonce() -> Result<[u8; 12]> {
    let mut n = [0u8; 12];
    crate::crypto::fill_random(&mut n)?;
    Ok(n)
}

fn nonce_from(bytes: &[u8]) -> Result<[u8; 12]> {
    bytes
        .try_into()
        .map_err(|_| KmsError::Internal("nonce length".into()))
}

fn wrap_ctx(rec: &KeyRecord, version: u32) -> WrapContext<'_> {
    WrapContext {
        uuid: rec.uuid,
        version,
        domain: &rec.domain,
        region: &rec.region,
    }
}

fn binding<'a>(rec: &'a KeyRecord, context: &'a Context) -> BlobBinding<'a> {
    BlobBinding {
        domain: &rec.domain,
        region: &rec.region,
        context,
    }
}

fn usable(rec: &KeyRecord) -> Result<()> {
    match rec.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::KeyDisabled(full_id(rec))),
        KeyState::PendingDeletion => Err(KmsError::KeyPendingDeletion(full_id(rec))),
    }
}

fn refuse_default(rec: &KeyRecord, action: &'static str) -> Result<()> {
    if rec.creator == Creator::Service {
        return Err(KmsError::DefaultKeyImmutable {
            key: full_id(rec),
            action,
        });
    }
    Ok(())
}

/// Checks a customer alias: optional; 1 to 255 characters of `[A-Za-z0-9_/-]`; not ending in
/// `/default`, which is reserved for service default keys.
pub fn validate_alias(alias: &str) -> Result<()> {
    let bad = |reason: &str| KmsError::InvalidArgument {
        field: "alias",
        reason: format!("{alias:?}: {reason}"),
    };
    if alias.len() > 255 {
        return Err(bad("longer than 255 characters"));
    }
    if !alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'-'))
    {
        return Err(bad("only letters, digits, '_', '/' and '-' are allowed"));
    }
    if alias.ends_with("/default") {
        return Err(bad(
            "aliases ending in /default are reserved for default keys",
        ));
    }
    Ok(())
}

fn validate_description(d: &str) -> Result<()> {
    if d.chars().count() > 255 {
        return Err(KmsError::InvalidArgument {
            field: "description",
            reason: "longer than 255 characters".into(),
        });
    }
    Ok(())
}

/// Checks a service name: 1 to 32 characters of `[a-z0-9-]`.
pub fn validate_service(service: &str) -> Result<()> {
    if service.is_empty()
        || service.len() > 32
        || !service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(KmsError::InvalidArgument {
            field: "service",
            reason: format!("{service:?}: 1 to 32 characters of a-z, 0-9 and '-'"),
        });
    }
    Ok(())
}

fn validate_context(field: &'static str, c: &Context) -> Result<()> {
    let len: usize = c.iter().map(|(k, v)| k.len() + v.len()).sum();
    if len > MAX_CONTEXT_BYTES {
        return Err(KmsError::PayloadTooLarge {
            field,
            len,
            max: MAX_CONTEXT_BYTES,
        });
    }
    Ok(())
}

fn parse_page_token(t: &str) -> Result<(i64, Uuid)> {
    let bad = || KmsError::InvalidArgument {
        field: "page_token",
        reason: "not a token from a previous ListKeys page".into(),
    };
    let (ms, uuid) = t.split_once('.').ok_or_else(bad)?;
    Ok((
        ms.parse().map_err(|_| bad())?,
        uuid.parse().map_err(|_| bad())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_rules() {
        // (alias, allowed)
        let cases = [
            ("", true),
            ("my-key", true),
            ("team/app_1", true),
            ("obs/default", false),
            ("x/default", false),
            ("default", true),
            ("has space", false),
            ("ünïcode", false),
        ];
        for (alias, ok) in cases {
            assert_eq!(validate_alias(alias).is_ok(), ok, "{alias:?}");
        }
        assert!(validate_alias(&"a".repeat(256)).is_err());
    }

    #[test]
    fn service_name_rules() {
        for (s, ok) in [
            ("obs", true),
            ("evs-2", true),
            ("", false),
            ("OBS", false),
            ("a/b", false),
        ] {
            assert_eq!(validate_service(s).is_ok(), ok, "{s:?}");
        }
    }
}
