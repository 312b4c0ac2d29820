//! The daemon's one clock: every time the KMS rules read (creation and deletion dates, the purge of
//! keys whose deletion date has passed, the audit log's `virtual_time`) comes from a [`Clock`].
//!
//! By default it is the wall clock. A virtual clock (`--virtual-clock`) starts at the wall clock
//! or at a given instant and moves only forward, and only when told to
//! ([`Clock::advance`], [`Clock::set`]: the admin API), so that a test can make a deletion window
//! end or a year pass in one call. What a request's signature freshness or a connection's timeouts
//! measure stays on the wall clock (and on tokio's monotonic timers): clients sign with real time.
//!
//! Work that falls due with time (today the purge; automatic rotation can join it) watches
//! [`Clock::subscribe`] or is run by whoever moved the clock before that call returns.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// Milliseconds since the Unix epoch on the wall clock.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Why a virtual clock did not move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// The wall clock cannot be moved.
    #[error("the daemon runs on the wall clock; start it with --virtual-clock to move time")]
    NotVirtual,
    /// A virtual clock only moves forward.
    #[error("the clock only moves forward: {to_ms} ms since the epoch is before its time {now_ms}")]
    Backwards {
        /// The clock's time.
        now_ms: i64,
        /// The time asked for.
        to_ms: i64,
    },
    /// The step is not positive, or the result leaves the representable range.
    #[error("cannot advance the clock by {0} ms")]
    BadStep(i64),
}

/// The daemon's clock: the wall clock, or a virtual one that moves only when told.
#[derive(Debug)]
pub struct Clock {
    /// `None` on the wall clock. The mutex orders moves; reads take it too (uncontended: moves
    /// are admin calls).
    virtual_ms: Option<Mutex<i64>>,
    /// The virtual time after each move (the wall clock never sends).
    moved: watch::Sender<i64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::wall()
    }
}

impl Clock {
    /// The wall clock.
    pub fn wall() -> Self {
        Self {
            virtual_ms: None,
            moved: watch::Sender::new(wall_ms()),
        }
    }

    /// A virtual clock at `start_ms` (milliseconds since the Unix epoch).
    pub fn virtual_at(start_ms: i64) -> Self {
        Self {
            virtual_ms: Some(Mutex::new(start_ms)),
            moved: watch::Sender::new(start_ms),
        }
    }

    /// Whether the clock is virtual.
    pub fn is_virtual(&self) -> bool {
        self.virtual_ms.is_some()
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.virtual_ms {
            Some(m) => *m.lock().unwrap_or_else(PoisonError::into_inner),
            None => wall_ms(),
        }
    }

    /// The virtual time, `None` on the wall clock (the audit log writes it beside the wall time).
    pub fn virtual_now_ms(&self) -> Option<i64> {
        self.virtual_ms
            .as_ref()
            .map(|m| *m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Moves a virtual clock forward by `by_ms` (positive). Returns the new time.
    pub fn advance(&self, by_ms: i64) -> Result<i64, ClockError> {
        if by_ms <= 0 {
            return Err(ClockError::BadStep(by_ms));
        }
        self.move_to(|now| now.checked_add(by_ms).ok_or(ClockError::BadStep(by_ms)))
    }

    /// Sets a virtual clock to `to_ms`, not before its current time. Returns the new time.
    pub fn set(&self, to_ms: i64) -> Result<i64, ClockError> {
        self.move_to(|now_ms| {
            if to_ms < now_ms {
                Err(ClockError::Backwards { now_ms, to_ms })
            } else {
                Ok(to_ms)
            }
        })
    }

    fn move_to(
        &self,
        next: impl FnOnce(i64) -> Result<i64, ClockError>,
    ) -> Result<i64, ClockError> {
        let m = self.virtual_ms.as_ref().ok_or(ClockError::NotVirtual)?;
        let mut now = m.lock().unwrap_or_else(PoisonError::into_inner);
        let to = next(*now)?;
        *now = to;
        drop(now);
        self.moved.send_replace(to);
        Ok(to)
    }

    /// A receiver that sees every move of a virtual clock (its new time), for work that waits
    /// for a time of the virtual clock rather than of the wall clock.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.moved.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_moves_only_forward_and_only_when_told() {
        let c = Clock::virtual_at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(c.now_ms(), 1_000, "wall time passing does not move it");
        let mut seen = c.subscribe();
        assert_eq!(c.advance(500), Ok(1_500));
        assert_eq!(*seen.borrow_and_update(), 1_500);
        assert_eq!(c.set(2_000), Ok(2_000));
        assert_eq!(
            c.set(2_000),
            Ok(2_000),
            "setting the current time is no move back"
        );
        // (rule, attempt, refusal)
        let refused: [(&str, Result<i64, ClockError>, ClockError); 4] = [
            (
                "set backwards",
                c.set(1_999),
                ClockError::Backwards {
                    now_ms: 2_000,
                    to_ms: 1_999,
                },
            ),
            ("advance by zero", c.advance(0), ClockError::BadStep(0)),
            ("advance backwards", c.advance(-1), ClockError::BadStep(-1)),
            (
                "advance past the end of time",
                c.advance(i64::MAX),
                ClockError::BadStep(i64::MAX),
            ),
        ];
        for (rule, got, want) in refused {
            assert_eq!(got, Err(want), "{rule}");
        }
        assert_eq!(c.now_ms(), 2_000, "a refused move changes nothing");
        assert_eq!(c.virtual_now_ms(), Some(2_000));
    }

    #[test]
    fn the_wall_clock_cannot_be_moved() {
        let c = Clock::wall();
        assert!(!c.is_virtual());
        assert_eq!(c.virtual_now_ms(), None);
        assert_eq!(c.advance(1), Err(ClockError::NotVirtual));
        assert_eq!(c.set(i64::MAX), Err(ClockError::NotVirtual));
        let before = wall_ms();
        let now = c.now_ms();
        assert!(now >= before && now - before < 60_000);
    }
}
