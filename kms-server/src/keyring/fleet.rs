//! The keyring in a fleet: several daemons over one shared store (PostgreSQL). Another daemon's
//! change reaches this cache through [`Keyring::refresh`], which the server runs on every
//! `NOTIFY` and on a short period (the fallback when a notification is missed or the connection
//! dropped); a key this cache does not hold is read from the store on a miss
//! ([`Keyring::read_through`], [`Keyring::read_through_alias`]), so a key created on another
//! daemon is usable here at once, by ID or by name.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{AliasSlot, Keyring};
use crate::error::Result;
use crate::integrity;
use crate::store::KeyRecord;

impl Keyring {
    /// Brings the cache to what the shared store holds when its change counter moved since the
    /// last refresh: checks the snapshot's record MACs and store MAC like at start-up, then puts
    /// changed and new keys and drops purged ones. Returns whether anything was read; an error
    /// when the store cannot be reached (the cache is then kept as it is).
    pub async fn refresh(&self) -> Result<bool> {
        if !self.store.is_shared() {
            return Ok(false);
        }
        let change = self.blocking(|s| s.change_counter()).await?;
        self.contact.touch();
        if change == self.seen_change.load(Ordering::Acquire) {
            return Ok(false);
        }
        // Local writes hold this lock while they write through and update the cache: holding it
        // across the read, the snapshot is never older than what this daemon wrote itself.
        let _w = self.writes.lock().await;
        let (records, mac, change) = self.blocking(|s| s.load_snapshot()).await?;
        if let Err(e) = integrity::check_store(&self.root, self.store_id, &records, mac.as_ref()) {
            // The snapshot cannot be taken, so the cache may hide another daemon's change (a
            // disable): serve no key until a refresh passes, rather than the cache indefinitely.
            self.untrusted.store(true, Ordering::Release);
            return Err(e);
        }
        let stored: HashSet<Uuid> = records.iter().map(|r| r.uuid).collect();
        let gone: Vec<Uuid> = self
            .read_cache()
            .keys()
            .filter(|u| !stored.contains(u))
            .copied()
            .collect();
        for uuid in &gone {
            self.remove_cache(uuid);
        }
        for rec in records {
            // The record MAC covers most of what a caller changes, but not the rotation schedule,
            // the policy or the tags (FORMATS.md §3): a change of those alone leaves the MAC as it
            // was.
            let same = self.read_cache().get(&rec.uuid).is_some_and(|c| {
                c.mac == rec.mac
                    && c.versions.len() == rec.versions.len()
                    && c.rotation == rec.rotation
                    && c.policy == rec.policy
                    && c.tags == rec.tags
            });
            if !same {
                self.put_cache(Arc::new(rec));
            }
        }
        self.seen_change.store(change, Ordering::Release);
        self.untrusted.store(false, Ordering::Release);
        Ok(true)
    }

    /// Refuses every key look-up while the shared store fails its integrity check, or when it
    /// has not answered for longer than the staleness bound (the cache could then hide another
    /// daemon's disable past the bound the fleet promises).
    pub(super) fn trusted(&self) -> Result<()> {
        if !self.store.is_shared() {
            return Ok(());
        }
        let silent = self.contact.age();
        if silent > crate::fleet::STALENESS_BOUND {
            return Err(crate::error::KmsError::Store(
                crate::store::StoreError::Unavailable(format!(
                    "it last answered {} ms ago, and cached keys are not served past the \
                     fleet's staleness bound of {} ms",
                    silent.as_millis(),
                    crate::fleet::STALENESS_BOUND.as_millis()
                )),
            ));
        }
        if self.untrusted.load(Ordering::Acquire) {
            return Err(crate::error::KmsError::StoreIntegrity(
                "the shared key store failed its integrity check at the last refresh (its store \
                 MAC does not cover its rows); no key is served until a refresh passes"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Reads one key again from the store into the cache (or drops it when the store no longer
    /// holds it), after the store refused a write made from a stale copy.
    pub(super) async fn reload_key(&self, uuid: Uuid) -> Result<()> {
        let _w = self.writes.lock().await;
        self.reload_key_locked(uuid).await
    }

    /// [`Self::reload_key`], for a caller that holds the write lock.
    pub(super) async fn reload_key_locked(&self, uuid: Uuid) -> Result<()> {
        match self.blocking(move |s| s.load_key(uuid)).await? {
            Some(rec) => {
                integrity::check_record(&self.root, &rec)?;
                self.put_cache(Arc::new(rec));
            }
            None => self.remove_cache(&uuid),
        }
        Ok(())
    }

    /// A key absent from the cache, read from a shared store and cached. `None` for a store with
    /// one writer, a key the store does not hold, or a store that cannot be reached or fails its
    /// checks.
    ///
    /// Every new key moves the store's change counter, so a miss costs one read of the counter
    /// when nothing changed since the last refresh (a made-up key ID reads nothing more). Otherwise
    /// the key is taken from a whole snapshot whose record MACs and store MAC hold, never from its
    /// row alone: a row put back behind the fleet's back carries a record MAC that was valid once,
    /// which only the store MAC tells from the present.
    pub(super) fn read_through(&self, uuid: Uuid) -> Option<Arc<KeyRecord>> {
        self.read_through_where(|r| r.uuid == uuid, || self.read_cache().get(&uuid).cloned())
    }

    /// [`Self::read_through`] of the key holding an alias (a Vault name): a key created by name on
    /// another daemon is usable by that name here at once too.
    pub(super) fn read_through_alias(&self, slot: &AliasSlot) -> Option<Arc<KeyRecord>> {
        self.read_through_where(
            |r| {
                !r.alias.is_empty()
                    && r.alias == slot.alias
                    && r.domain == slot.domain
                    && r.region == slot.region
            },
            || self.cached_alias(slot),
        )
    }

    /// The first key of a checked snapshot that `wanted` takes, cached, unless the store's change
    /// counter has not moved (then `cached`, which the refresher may have filled since the miss).
    fn read_through_where(
        &self,
        wanted: impl Fn(&KeyRecord) -> bool,
        cached: impl Fn() -> Option<Arc<KeyRecord>>,
    ) -> Option<Arc<KeyRecord>> {
        if !self.store.is_shared() {
            return None;
        }
        // The store runs its blocking client off the async workers itself.
        let change = self.store.change_counter().ok()?;
        if change == self.seen_change.load(Ordering::Acquire) {
            return cached();
        }
        let (records, mac, _) = self.store.load_snapshot().ok()?;
        if let Err(e) = integrity::check_store(&self.root, self.store_id, &records, mac.as_ref()) {
            tracing::error!(error = %e, "the shared store fails its checks; key not read");
            return None;
        }
        let rec = Arc::new(records.into_iter().find(|r| wanted(r))?);
        // Only a key still absent: one cached meanwhile is as new or newer (the refresher's).
        if let Some(c) = self.read_cache().get(&rec.uuid) {
            return Some(Arc::clone(c));
        }
        self.put_cache(Arc::clone(&rec));
        Some(rec)
    }
}

/// When the shared store last answered: milliseconds since a fixed instant, on the monotonic
/// clock (the virtual clock moves key dates, not this).
#[derive(Debug)]
pub(crate) struct Contact {
    base: Instant,
    last_ms: AtomicU64,
}

impl Contact {
    /// A contact made now.
    pub(crate) fn now() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// The store answered now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// How long since the store last answered.
    pub(crate) fn age(&self) -> Duration {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Acquire)))
    }
}
