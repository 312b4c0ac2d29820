//! Counting the blobs sealed under each key version, so that random 96-bit nonces stay below the
//! 2^-32 collision bound (FORMATS.md §1, issue 19), over every daemon that shares the store.
//!
//! The store keeps, per version, how many nonces it has granted in all (`nonces_reserved`), and
//! grants blocks of [`NONCE_BLOCK`] by raising that count atomically, never past [`NONCE_LIMIT`]
//! ([`KeyStore::reserve_nonces`](crate::store::KeyStore::reserve_nonces)). Each daemon counts in
//! memory the blobs it seals under a version against the blocks it was granted, and asks for the
//! next block before it seals a blob the blocks it holds do not cover. N daemons therefore seal at
//! most 2^32 blobs under one version together; a crash or restart only wastes what was left of a
//! grant (the count can over-count, never under-count). Once the store grants nothing more, the
//! version refuses to seal ([`KmsError::NoncesExhausted`]) until the key is rotated.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::Keyring;
use crate::error::{KmsError, Result};
use crate::store::KeyRecord;

/// How many nonces one store write grants.
pub const NONCE_BLOCK: u64 = 1 << 20;
/// From this many nonces granted on a version (over the fleet), every newly granted block logs a
/// warning.
pub const NONCE_WARN: u64 = 1 << 31;
/// The store grants no more than this many nonces of one version, over the fleet: the key must
/// then be rotated.
pub const NONCE_LIMIT: u64 = 1 << 32;

/// One key version's count in this daemon.
#[derive(Debug)]
pub(crate) struct NonceCounter {
    /// Blobs this daemon sealed (or attempted) under the version.
    sealed: AtomicU64,
    /// How many nonces the store granted this daemon in all: no count at or above it is used
    /// before another grant raises it.
    granted: AtomicU64,
    /// The fleet-wide count the store returned with the last grant (0 before the first).
    fleet: AtomicU64,
    /// The store granted nothing more: the version seals no more blobs.
    exhausted: AtomicBool,
    /// Whether a warning was logged for this version.
    warned: AtomicBool,
    /// Serialises the requests for the next block.
    reserving: Mutex<()>,
}

impl NonceCounter {
    pub(crate) fn new() -> Self {
        Self {
            sealed: AtomicU64::new(0),
            granted: AtomicU64::new(0),
            fleet: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            reserving: Mutex::new(()),
        }
    }

    /// Blobs counted so far by this daemon.
    #[cfg(test)]
    pub(crate) fn sealed(&self) -> u64 {
        self.sealed.load(Ordering::Acquire)
    }

    /// The nonces the store granted this daemon.
    #[cfg(test)]
    pub(crate) fn granted(&self) -> u64 {
        self.granted.load(Ordering::Acquire)
    }

    /// The fleet-wide count the store returned with the last grant.
    #[cfg(test)]
    pub(crate) fn fleet(&self) -> u64 {
        self.fleet.load(Ordering::Acquire)
    }

    /// Whether the warning threshold was crossed.
    #[cfg(test)]
    pub(crate) fn warned(&self) -> bool {
        self.warned.load(Ordering::Acquire)
    }

    /// Test seam: puts the local count where a test needs it (the grants stay as they are).
    #[cfg(test)]
    pub(crate) fn set_sealed_for_test(&self, sealed: u64) {
        self.sealed.store(sealed, Ordering::Release);
    }
}

impl Keyring {
    /// Counts one blob about to be sealed under `version`: asks the store for the next block when
    /// the blocks this daemon holds are used up, and refuses once the store grants nothing more.
    pub(crate) fn count_nonce(
        &self,
        rec: &KeyRecord,
        version: u32,
        c: &NonceCounter,
    ) -> Result<()> {
        let n = c.sealed.fetch_add(1, Ordering::AcqRel);
        if n >= c.granted.load(Ordering::Acquire) {
            self.reserve_block(rec, version, c, n)?;
        }
        Ok(())
    }

    #[cold]
    fn reserve_block(&self, rec: &KeyRecord, version: u32, c: &NonceCounter, n: u64) -> Result<()> {
        let _guard = c.reserving.lock().unwrap_or_else(PoisonError::into_inner);
        // Concurrent sealers past the grant wait here; one grant usually covers them all.
        while n >= c.granted.load(Ordering::Acquire) {
            if c.exhausted.load(Ordering::Acquire) {
                return Err(KmsError::NoncesExhausted { version });
            }
            let grant = self
                .store
                .reserve_nonces(rec.uuid, version, NONCE_BLOCK, NONCE_LIMIT)?;
            let size = grant.end.saturating_sub(grant.start);
            if size == 0 {
                c.exhausted.store(true, Ordering::Release);
                tracing::warn!(
                    key = %rec.full_id(),
                    version,
                    limit = NONCE_LIMIT,
                    "key version {version} has been granted all 2^32 nonces over the fleet; it \
                     seals no more blobs: rotate the key"
                );
                return Err(KmsError::NoncesExhausted { version });
            }
            c.fleet.store(grant.end, Ordering::Release);
            c.granted.fetch_add(size, Ordering::AcqRel);
            if grant.end > NONCE_WARN {
                c.warned.store(true, Ordering::Release);
                tracing::warn!(
                    key = %rec.full_id(),
                    version,
                    granted = grant.end,
                    limit = NONCE_LIMIT,
                    "key version {version} has been granted over 2^31 nonces over the fleet; it \
                     refuses to seal more at 2^32: rotate the key"
                );
            }
        }
        Ok(())
    }
}
