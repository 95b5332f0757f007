//! The grace window: a dropped session is kept for [`GRACE_PERIOD`] (the
//! seeds' 300 s). Within it the session resumes (same ID, code, consent);
//! after it the session ends, once, and cannot come back.

use std::time::{Duration, Instant};

/// How long a dropped session survives (seed: 300 s).
pub const GRACE_PERIOD: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraceState {
    Live,
    Dropped { since: Instant },
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraceError {
    /// The window ran out; the session is over.
    Expired,
}

#[derive(Debug, Clone)]
pub struct GraceWindow {
    period: Duration,
    state: GraceState,
}

impl GraceWindow {
    pub fn new(period: Duration) -> Self {
        GraceWindow {
            period,
            state: GraceState::Live,
        }
    }

    pub fn state(&self) -> GraceState {
        self.state
    }

    /// The connection dropped at `now` (a second drop keeps the first time).
    pub fn dropped(&mut self, now: Instant) {
        if self.state == GraceState::Live {
            self.state = GraceState::Dropped { since: now };
        }
    }

    /// The peer is back: `Ok(how long it was gone)`, or `Expired` past the window.
    pub fn resume(&mut self, now: Instant) -> Result<Duration, GraceError> {
        self.poll(now);
        match self.state {
            GraceState::Live => Ok(Duration::ZERO),
            GraceState::Dropped { since } => {
                self.state = GraceState::Live;
                Ok(now.saturating_duration_since(since))
            }
            GraceState::Ended => Err(GraceError::Expired),
        }
    }

    /// The window's length.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Adopts another length (the server's, which it announces when it
    /// admits a client): the server's clock is the one that counts.
    pub fn set_period(&mut self, period: Duration) {
        self.period = period;
    }

    /// Time left to resume, while dropped.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        match self.state {
            GraceState::Dropped { since } => Some(self.period.saturating_sub(now.saturating_duration_since(since))),
            _ => None,
        }
    }

    /// When the window runs out, if it is running.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            GraceState::Dropped { since } => Some(since + self.period),
            _ => None,
        }
    }

    /// True exactly once: when the window has just run out.
    pub fn poll(&mut self, now: Instant) -> bool {
        if let Some(deadline) = self.deadline() {
            if now >= deadline {
                self.state = GraceState::Ended;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_drop_resumed_within_five_minutes_survives() {
        let t0 = Instant::now();
        let mut g = GraceWindow::new(GRACE_PERIOD);
        g.dropped(t0);
        assert_eq!(g.remaining(t0 + S(60)), Some(S(240)));
        assert!(!g.poll(t0 + S(299)));
        assert_eq!(g.resume(t0 + S(299)), Ok(S(299)));
        assert_eq!(g.state(), GraceState::Live);
        // A later drop gets a whole new window.
        g.dropped(t0 + S(400));
        assert_eq!(g.remaining(t0 + S(400)), Some(GRACE_PERIOD));
    }

    #[test]
    fn the_window_ends_once_at_exactly_300_s_and_stays_ended() {
        let t0 = Instant::now();
        let mut g = GraceWindow::new(GRACE_PERIOD);
        g.dropped(t0);
        g.dropped(t0 + S(100)); // flapping does not extend the window
        assert_eq!(g.deadline(), Some(t0 + S(300)));
        assert!(g.poll(t0 + S(300)));
        assert!(!g.poll(t0 + S(301)), "reported once");
        assert_eq!(g.resume(t0 + S(301)), Err(GraceError::Expired));
        g.dropped(t0 + S(302));
        assert_eq!(g.state(), GraceState::Ended, "an ended session cannot drop again");
    }

    #[test]
    fn resuming_late_without_a_poll_is_still_refused() {
        let t0 = Instant::now();
        let mut g = GraceWindow::new(S(5));
        g.dropped(t0);
        assert_eq!(g.resume(t0 + S(6)), Err(GraceError::Expired));
    }
}
