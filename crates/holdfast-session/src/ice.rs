//! When to restart ICE, and when to give up on the peer connection and build
//! a new one inside the same session.
//!
//! - `disconnected` often heals by itself: wait the platform's timeout
//!   ([`disconnected_timeout`]: 10 s on Windows, 5 s elsewhere, as in the
//!   seeds), then restart ICE if it has not.
//! - `failed`: restart ICE at once.
//! - Poor quality held for [`POOR_QUALITY_HOLD`] (loss over 10 % or RTT over
//!   500 ms, the seeds' thresholds) on a connected link: restart ICE, at most
//!   once per [`QUALITY_RESTART_COOLDOWN`] (a path that is simply bad stays
//!   bad, and restarting it every ten seconds would only add interruptions).
//! - After [`MAX_ICE_RESTARTS`] restarts without reaching `connected`,
//!   rebuild the peer connection.
//! - A link that went through a TURN relay is rebuilt at once instead: a
//!   restart reuses its relay allocation (webrtc-rs keeps it), which is what
//!   died when the relay restarted or dropped it; a new connection allocates
//!   afresh (with the newest credentials).
//!
//! Only one side restarts, so two offers never cross: the side created as
//! [`Role::Restarter`] (the host, which made the first offer). The other side
//! reports what it sees and otherwise waits.

use std::time::{Duration, Instant};

/// Restarts tried before the peer connection is rebuilt.
pub const MAX_ICE_RESTARTS: u32 = 3;
/// How long poor quality must last before it triggers a restart.
pub const POOR_QUALITY_HOLD: Duration = Duration::from_secs(10);
/// The least time between two restarts for poor quality.
pub const QUALITY_RESTART_COOLDOWN: Duration = Duration::from_secs(60);
/// How long one restart may take before it counts as failed.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(15);

/// How long `disconnected` may last before an ICE restart, per platform.
pub const fn disconnected_timeout(windows: bool) -> Duration {
    if windows {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(5)
    }
}

/// The connection states that matter here (a subset of WebRTC's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Performs restarts (the offerer).
    Restarter,
    /// Never restarts on its own (the answerer).
    Follower,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceAction {
    RestartIce,
    /// Restarts keep failing: close this peer connection and make a new one.
    Rebuild,
}

#[derive(Debug, Clone)]
pub struct IceRecovery {
    role: Role,
    disconnected_timeout: Duration,
    state: LinkState,
    disconnected_since: Option<Instant>,
    poor_since: Option<Instant>,
    last_quality_restart: Option<Instant>,
    restart_started: Option<Instant>,
    restarts: u32,
    /// The pair in use went through a relay when last seen connected.
    relayed: bool,
}

impl IceRecovery {
    pub fn new(role: Role, disconnected_timeout: Duration) -> Self {
        IceRecovery {
            role,
            disconnected_timeout,
            state: LinkState::Connecting,
            disconnected_since: None,
            poor_since: None,
            last_quality_restart: None,
            restart_started: None,
            restarts: 0,
            relayed: false,
        }
    }

    /// What the pair in use is, as last measured while connected.
    pub fn set_relayed(&mut self, relayed: bool) {
        if self.state == LinkState::Connected {
            self.relayed = relayed;
        }
    }

    /// Restarts since the link was last connected.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    pub fn on_state(&mut self, state: LinkState, now: Instant) -> Option<IceAction> {
        // Poor quality is held on one unbroken connected stretch: an outage
        // (or a restart) in between starts the hold again, whether or not
        // quality was reported meanwhile.
        if state != self.state {
            self.poor_since = None;
        }
        self.state = state;
        match state {
            LinkState::Connected => {
                self.restarts = 0;
                self.disconnected_since = None;
                self.restart_started = None;
                None
            }
            LinkState::Disconnected => {
                self.disconnected_since.get_or_insert(now);
                None
            }
            LinkState::Failed => self.restart(now),
            LinkState::Connecting => None,
        }
    }

    /// Quality as measured now (`poor`: loss > 10 % or RTT > 500 ms). Only
    /// a connected link's quality counts: an outage is the state machine's
    /// business, and what was measured during one says nothing of the path
    /// that comes back.
    pub fn on_quality(&mut self, poor: bool, now: Instant) -> Option<IceAction> {
        if !poor || self.state != LinkState::Connected || self.restart_started.is_some() {
            self.poor_since = None;
            return None;
        }
        let since = *self.poor_since.get_or_insert(now);
        let cooled = self
            .last_quality_restart
            .is_none_or(|t| now.saturating_duration_since(t) >= QUALITY_RESTART_COOLDOWN);
        if self.role == Role::Restarter && cooled && now.saturating_duration_since(since) >= POOR_QUALITY_HOLD {
            // The link stays up through this restart (no state change need
            // follow), so it is not timed or counted like a recovery.
            self.poor_since = None;
            self.last_quality_restart = Some(now);
            return Some(IceAction::RestartIce);
        }
        None
    }

    /// Time-driven decisions: a `disconnected` that outlasted its timeout, a
    /// restart that never connected.
    pub fn poll(&mut self, now: Instant) -> Option<IceAction> {
        if let Some(started) = self.restart_started {
            if now.saturating_duration_since(started) >= RESTART_TIMEOUT {
                return self.restart(now);
            }
            return None;
        }
        match (self.state, self.disconnected_since) {
            (LinkState::Disconnected, Some(since))
                if now.saturating_duration_since(since) >= self.disconnected_timeout =>
            {
                self.restart(now)
            }
            _ => None,
        }
    }

    /// When [`poll`](Self::poll) next has something to decide.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(started) = self.restart_started {
            return Some(started + RESTART_TIMEOUT);
        }
        match (self.state, self.disconnected_since) {
            (LinkState::Disconnected, Some(since)) => Some(since + self.disconnected_timeout),
            _ => None,
        }
    }

    fn restart(&mut self, now: Instant) -> Option<IceAction> {
        if self.role == Role::Follower {
            return None;
        }
        self.disconnected_since = None;
        self.restart_started = Some(now);
        if self.relayed || self.restarts >= MAX_ICE_RESTARTS {
            self.relayed = false;
            self.restarts = 0;
            return Some(IceAction::Rebuild);
        }
        self.restarts += 1;
        Some(IceAction::RestartIce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn host() -> IceRecovery {
        IceRecovery::new(Role::Restarter, disconnected_timeout(false))
    }

    #[test]
    fn platform_timeouts_are_ten_seconds_on_windows_and_five_elsewhere() {
        assert_eq!(disconnected_timeout(true), S(10));
        assert_eq!(disconnected_timeout(false), S(5));
        let t0 = Instant::now();
        let mut w = IceRecovery::new(Role::Restarter, disconnected_timeout(true));
        w.on_state(LinkState::Connected, t0);
        w.on_state(LinkState::Disconnected, t0);
        assert_eq!(w.next_deadline(), Some(t0 + S(10)));
        assert_eq!(w.poll(t0 + S(9)), None);
        assert_eq!(w.poll(t0 + S(10)), Some(IceAction::RestartIce));
    }

    #[test]
    fn a_disconnect_that_heals_in_time_needs_no_restart() {
        let t0 = Instant::now();
        let mut h = host();
        h.on_state(LinkState::Connected, t0);
        h.on_state(LinkState::Disconnected, t0 + S(1));
        assert_eq!(h.poll(t0 + S(5)), None);
        h.on_state(LinkState::Connected, t0 + S(5));
        assert_eq!(h.poll(t0 + S(60)), None);
        assert_eq!(h.restarts(), 0);
    }

    #[test]
    fn failed_restarts_at_once_and_repeated_failure_rebuilds() {
        let t0 = Instant::now();
        let mut h = host();
        h.on_state(LinkState::Connected, t0);
        assert_eq!(h.on_state(LinkState::Failed, t0), Some(IceAction::RestartIce));
        // Each restart that does not connect within its timeout is retried...
        assert_eq!(h.poll(t0 + S(14)), None);
        assert_eq!(h.poll(t0 + S(15)), Some(IceAction::RestartIce));
        assert_eq!(h.on_state(LinkState::Failed, t0 + S(16)), Some(IceAction::RestartIce));
        assert_eq!(h.restarts(), 3);
        // ...until the peer connection itself is rebuilt.
        assert_eq!(h.poll(t0 + S(31)), Some(IceAction::Rebuild));
        // A success clears the count.
        h.on_state(LinkState::Connected, t0 + S(35));
        assert_eq!(h.restarts(), 0);
        assert_eq!(h.on_state(LinkState::Failed, t0 + S(40)), Some(IceAction::RestartIce));
    }

    #[test]
    fn only_the_restarter_restarts() {
        let t0 = Instant::now();
        let mut v = IceRecovery::new(Role::Follower, disconnected_timeout(false));
        v.on_state(LinkState::Connected, t0);
        assert_eq!(v.on_state(LinkState::Failed, t0), None);
        v.on_state(LinkState::Disconnected, t0);
        assert_eq!(v.poll(t0 + S(60)), None);
        assert_eq!(v.on_quality(true, t0 + S(100)), None);
    }

    #[test]
    fn poor_quality_held_for_ten_seconds_restarts() {
        let t0 = Instant::now();
        let mut h = host();
        h.on_state(LinkState::Connected, t0);
        assert_eq!(h.on_quality(true, t0), None);
        assert_eq!(h.on_quality(true, t0 + S(9)), None);
        assert_eq!(h.on_quality(false, t0 + S(9)), None, "a good sample resets the hold");
        assert_eq!(h.on_quality(true, t0 + S(10)), None);
        assert_eq!(h.on_quality(true, t0 + S(20)), Some(IceAction::RestartIce));
        // The link stayed up: no restart timeout, no count towards a rebuild.
        assert_eq!(h.next_deadline(), None);
        assert_eq!(h.poll(t0 + S(50)), None);
        assert_eq!(h.restarts(), 0);
    }

    #[test]
    fn a_path_that_stays_poor_is_restarted_once_a_minute_at_most() {
        let t0 = Instant::now();
        let mut h = host();
        h.on_state(LinkState::Connected, t0);
        let restarts_at: Vec<u64> = (0..=200).filter(|&s| h.on_quality(true, t0 + S(s)).is_some()).collect();
        assert_eq!(
            restarts_at,
            vec![10, 70, 130, 190],
            "held 10 s, then once per 60 s cooldown"
        );
    }

    #[test]
    fn poor_quality_during_an_outage_does_not_count() {
        let t0 = Instant::now();
        let mut h = host();
        h.on_state(LinkState::Connected, t0);
        h.on_state(LinkState::Disconnected, t0 + S(1));
        for s in 1..=4 {
            assert_eq!(h.on_quality(true, t0 + S(s)), None);
        }
        // Back before the disconnected timeout: the hold starts again from here.
        h.on_state(LinkState::Connected, t0 + S(4));
        assert_eq!(h.on_quality(true, t0 + S(5)), None);
        assert_eq!(h.on_quality(true, t0 + S(14)), None);
        assert_eq!(h.on_quality(true, t0 + S(15)), Some(IceAction::RestartIce));
        // No samples during an outage (the host measures connected links
        // only): poor before it does not carry over.
        assert_eq!(h.on_quality(true, t0 + S(20)), None);
        h.on_state(LinkState::Disconnected, t0 + S(21));
        h.on_state(LinkState::Connected, t0 + S(29));
        assert_eq!(h.on_quality(true, t0 + S(31)), None, "held since 31 s, not 20 s");
        // While a recovery restart is under way, quality is not judged.
        h.on_state(LinkState::Failed, t0 + S(100));
        h.on_state(LinkState::Connected, t0 + S(101));
        assert_eq!(h.on_state(LinkState::Failed, t0 + S(102)), Some(IceAction::RestartIce));
        assert_eq!(h.on_quality(true, t0 + S(103)), None);
    }

    #[test]
    fn a_relayed_link_that_drops_is_rebuilt_not_restarted() {
        let t0 = Instant::now();
        let mut r = host();
        r.on_state(LinkState::Connected, t0);
        r.set_relayed(true);
        r.on_state(LinkState::Disconnected, t0 + S(1));
        assert_eq!(r.poll(t0 + S(5)), None);
        assert_eq!(r.poll(t0 + S(6)), Some(IceAction::Rebuild));
        // The new connection is direct: a later drop restarts as usual.
        r.on_state(LinkState::Connected, t0 + S(8));
        r.set_relayed(false);
        r.on_state(LinkState::Failed, t0 + S(20));
        assert_eq!(r.restarts(), 1);
        // Seen relayed only while down: not taken (what a broken link shows says nothing).
        let mut r = host();
        r.on_state(LinkState::Disconnected, t0);
        r.set_relayed(true);
        assert_eq!(r.on_state(LinkState::Failed, t0 + S(1)), Some(IceAction::RestartIce));
    }
}
