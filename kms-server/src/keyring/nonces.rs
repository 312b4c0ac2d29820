//! Counting the blobs sealed under each key version, so that random 96-bit nonces stay below the
//! 2^-32 collision bound (FORMATS.md §1, issue 19).
//!
//! Each version has an in-memory count and a reservation kept in the store. The count starts at
//! the stored reservation when the version is first used after start-up; when it reaches the
//! reservation, the next block of [`NONCE_BLOCK`] is reserved in the store before any nonce of it
//! is used. A crash therefore can only over-count, never reuse a count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::Keyring;
use crate::error::{KmsError, Result};
use crate::store::KeyRecord;

/// How many nonces one store write reserves.
pub const NONCE_BLOCK: u64 = 1 << 20;
/// From this many blobs on a version, every newly reserved block logs a warning.
pub const NONCE_WARN: u64 = 1 << 31;
/// A version that has sealed this many blobs seals no more: the key must be rotated.
pub const NONCE_LIMIT: u64 = 1 << 32;

/// One key version's count.
#[derive(Debug)]
pub(crate) struct NonceCounter {
    /// Blobs sealed (or attempted) under the version, plus what the reservation skipped.
    sealed: AtomicU64,
    /// What the store holds: no count at or above it is used before it is raised.
    reserved: AtomicU64,
    /// Whether a warning was logged for this version.
    warned: AtomicBool,
    /// Serialises the reservation of the next block.
    reserving: Mutex<()>,
}

impl NonceCounter {
    pub(crate) fn new(reserved: u64) -> Self {
        Self {
            sealed: AtomicU64::new(reserved),
            reserved: AtomicU64::new(reserved),
            warned: AtomicBool::new(false),
            reserving: Mutex::new(()),
        }
    }

    /// Blobs counted so far.
    #[cfg(test)]
    pub(crate) fn sealed(&self) -> u64 {
        self.sealed.load(Ordering::Acquire)
    }

    /// The reservation the daemon holds.
    #[cfg(test)]
    pub(crate) fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Acquire)
    }

    /// Whether the warning threshold was crossed.
    #[cfg(test)]
    pub(crate) fn warned(&self) -> bool {
        self.warned.load(Ordering::Acquire)
    }

    /// Test seam: puts the count and the in-memory reservation where a test needs them.
    #[cfg(test)]
    pub(crate) fn set_for_test(&self, sealed: u64, reserved: u64) {
        self.sealed.store(sealed, Ordering::Release);
        self.reserved.store(reserved, Ordering::Release);
    }
}

impl Keyring {
    /// Counts one blob about to be sealed under `version`: refuses past [`NONCE_LIMIT`], reserves
    /// the next block in the store when the count reaches the reservation.
    pub(crate) fn count_nonce(
        &self,
        rec: &KeyRecord,
        version: u32,
        c: &NonceCounter,
    ) -> Result<()> {
        let n = c.sealed.fetch_add(1, Ordering::AcqRel);
        if n >= NONCE_LIMIT {
            return Err(KmsError::NoncesExhausted { version });
        }
        if n >= c.reserved.load(Ordering::Acquire) {
            self.reserve_block(rec, version, c, n)?;
        }
        Ok(())
    }

    #[cold]
    fn reserve_block(&self, rec: &KeyRecord, version: u32, c: &NonceCounter, n: u64) -> Result<()> {
        let _guard = c.reserving.lock().unwrap_or_else(PoisonError::into_inner);
        if n < c.reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        let next = (n / NONCE_BLOCK + 1)
            .saturating_mul(NONCE_BLOCK)
            .min(NONCE_LIMIT);
        self.store.reserve_nonces(rec.uuid, version, next)?;
        c.reserved.store(next, Ordering::Release);
        if n >= NONCE_WARN {
            c.warned.store(true, Ordering::Release);
            tracing::warn!(
                key = %rec.full_id(),
                version,
                sealed = n,
                limit = NONCE_LIMIT,
                "key version {version} has sealed over 2^31 blobs; it refuses to seal more at \
                 2^32: rotate the key"
            );
        }
        Ok(())
    }
}
