//! Work that falls due with time, run for a given time of the daemon's clock: by the purge loop
//! on the wall clock, and by the admin API right after it moves a virtual clock, before its reply
//! (so that a test can advance the clock, then assert).
//!
//! That is the purge of keys whose deletion date has passed, then the automatic rotation of keys
//! whose scheduled rotation time has passed, each kind reported in [`DueWork`], so that both
//! callers run it and audit it the same way.

use std::sync::Arc;

use super::Keyring;
use crate::error::Result;
use crate::store::KeyRecord;

/// What [`Keyring::run_due`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DueWork {
    /// Keys deleted for good because their deletion date passed.
    pub purged: usize,
    /// Keys given a new version because their scheduled rotation time passed, as they are now.
    pub rotated: Vec<Arc<KeyRecord>>,
}

impl Keyring {
    /// Runs the work due at `now_ms` (milliseconds since the epoch, on the keyring's clock).
    pub async fn run_due(&self, now_ms: i64) -> Result<DueWork> {
        let purged = self.purge_expired(now_ms).await?;
        let rotated = self.rotate_due(now_ms).await?;
        Ok(DueWork { purged, rotated })
    }
}
