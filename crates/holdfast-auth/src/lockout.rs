//! The host's own count of failed password joins, kept apart from the
//! server's (which a hostile server would not keep): [`MAX_FAILURES`] in
//! [`WINDOW_SECS`] lock password joins for [`FIRST_LOCK_SECS`], doubling
//! with each lock after that, up to [`MAX_LOCK_SECS`]. While locked, the
//! right password is refused too, so the lock cannot be used as an oracle.
//!
//! Pure state with the time passed in (seconds since the Unix epoch, so it
//! can be kept in a file across restarts of the host).

use serde::{Deserialize, Serialize};

/// Failed attempts that lock password joins.
pub const MAX_FAILURES: usize = 5;
/// The window those failures are counted in.
pub const WINDOW_SECS: u64 = 15 * 60;
/// The first lock's length; each later one doubles.
pub const FIRST_LOCK_SECS: u64 = 5 * 60;
/// The longest lock.
pub const MAX_LOCK_SECS: u64 = 24 * 60 * 60;
/// A success, or this long after a lock ended, forgives earlier locks.
pub const FORGIVE_SECS: u64 = 24 * 60 * 60;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    /// When each recent failure happened (oldest first).
    failures: Vec<u64>,
    /// Password joins are refused until then.
    locked_until: Option<u64>,
    /// Locks so far (each doubles the next).
    locks: u32,
}

/// Password joins are refused until this time (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub until: u64,
}

impl Lockout {
    /// Whether a password join may be tried at `now`.
    pub fn check(&self, now: u64) -> Result<(), Locked> {
        match self.locked_until {
            Some(until) if now < until => Err(Locked { until }),
            _ => Ok(()),
        }
    }

    /// A failed attempt at `now` (a wrong password or second factor). Returns
    /// the lock it caused, if any.
    pub fn on_failure(&mut self, now: u64) -> Option<Locked> {
        if self.check(now).is_err() {
            return None;
        }
        if self
            .locked_until
            .is_some_and(|until| now.saturating_sub(until) >= FORGIVE_SECS)
        {
            self.locks = 0;
        }
        self.failures.retain(|&t| now.saturating_sub(t) < WINDOW_SECS);
        self.failures.push(now);
        if self.failures.len() < MAX_FAILURES {
            return None;
        }
        let secs = FIRST_LOCK_SECS
            .saturating_mul(1u64 << self.locks.min(16))
            .min(MAX_LOCK_SECS);
        self.locks += 1;
        self.failures.clear();
        let until = now + secs;
        self.locked_until = Some(until);
        Some(Locked { until })
    }

    /// A password join succeeded: earlier failures are forgotten.
    pub fn on_success(&mut self) {
        self.failures.clear();
        self.locks = 0;
    }

    /// Failed attempts counted now (for the host's screen and tests).
    pub fn recent_failures(&self, now: u64) -> usize {
        self.failures
            .iter()
            .filter(|&&t| now.saturating_sub(t) < WINDOW_SECS)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    #[test]
    fn five_failures_in_a_window_lock_and_the_lock_doubles() {
        let mut l = Lockout::default();
        for i in 0..4 {
            assert_eq!(l.on_failure(T0 + i), None);
            assert!(l.check(T0 + i).is_ok());
        }
        assert_eq!(l.on_failure(T0 + 4), Some(Locked { until: T0 + 4 + 300 }));
        assert_eq!(l.check(T0 + 5), Err(Locked { until: T0 + 304 }));
        // A failure during the lock changes nothing.
        assert_eq!(l.on_failure(T0 + 100), None);
        assert_eq!(l.check(T0 + 303), Err(Locked { until: T0 + 304 }));
        assert!(l.check(T0 + 304).is_ok());
        for i in 0..4 {
            assert_eq!(l.on_failure(T0 + 400 + i), None);
        }
        assert_eq!(l.on_failure(T0 + 404), Some(Locked { until: T0 + 404 + 600 }));
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_lock() {
        let mut l = Lockout::default();
        for i in 0..50 {
            assert_eq!(l.on_failure(T0 + i * (WINDOW_SECS / 4 + 1)), None, "failure {i}");
        }
    }

    #[test]
    fn a_success_forgets_failures_and_earlier_locks() {
        let mut l = Lockout::default();
        for i in 0..5 {
            l.on_failure(T0 + i);
        }
        l.on_success();
        for i in 0..4 {
            assert_eq!(l.on_failure(T0 + 1000 + i), None);
        }
        assert_eq!(l.on_failure(T0 + 1004), Some(Locked { until: T0 + 1004 + 300 }));
    }

    #[test]
    fn locks_stop_growing_at_a_day_and_survive_a_round_trip_through_json() {
        let mut l = Lockout::default();
        let mut now = T0;
        let mut last = 0;
        for _ in 0..20 {
            for _ in 0..5 {
                if let Some(Locked { until }) = l.on_failure(now) {
                    last = until - now;
                    now = until;
                }
                now += 1;
            }
        }
        assert_eq!(last, MAX_LOCK_SECS);
        let again: Lockout = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(again, l);
    }
}
