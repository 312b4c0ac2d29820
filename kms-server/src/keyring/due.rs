//! Work that falls due with time, run for a given time of the daemon's clock: by the purge loop
//! on the wall clock, and by the admin API right after it moves a virtual clock, before its reply
//! (so that a test can advance the clock, then assert).
//!
//! Today that is the purge of keys whose deletion date has passed. Other time-based work
//! (automatic rotation on a schedule) belongs here too, each kind reported in [`DueWork`], so that
//! both callers run it.

use super::Keyring;
use crate::error::Result;

/// What [`Keyring::run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DueWork {
    /// Keys deleted for good because their deletion date passed.
    pub purged: usize,
}

impl Keyring {
    /// Runs the work due at `now_ms` (milliseconds since the epoch, on the keyring's clock).
    pub async fn run_due(&self, now_ms: i64) -> Result<DueWork> {
        let purged = self.purge_expired(now_ms).await?;
        Ok(DueWork { purged })
    }
}
