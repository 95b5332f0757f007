//! Keepalive on the `commands` channel, as the seeds specify: the host sends
//! `\x00PING` every [`KEEPALIVE_INTERVAL`] and the viewer answers `\x00PONG`.
//! Both sides count *any* message received as a sign of life; after
//! [`DEAD_AFTER_INTERVALS`] intervals of silence the peer is declared dead,
//! once, and the session moves to its disconnected handling.
//!
//! Round-trip time is measured from each PING to the next PONG. A PONG that
//! arrives after a newer PING was sent is ignored for RTT (it would pair with
//! the wrong PING) but still counts as activity.

use std::time::{Duration, Instant};

/// How often the host pings (seed: 5 s).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Silent intervals before the peer is declared dead.
pub const DEAD_AFTER_INTERVALS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    pub interval: Duration,
    pub dead_after_intervals: u32,
    /// True on the side that sends PINGs (the host); the other side only answers.
    pub sends_pings: bool,
}

impl KeepaliveConfig {
    pub fn host() -> Self {
        KeepaliveConfig {
            interval: KEEPALIVE_INTERVAL,
            dead_after_intervals: DEAD_AFTER_INTERVALS,
            sends_pings: true,
        }
    }

    pub fn viewer() -> Self {
        KeepaliveConfig {
            sends_pings: false,
            ..Self::host()
        }
    }

    /// Silence that makes the peer dead.
    pub fn dead_after(&self) -> Duration {
        self.interval * self.dead_after_intervals
    }
}

/// What the shell must do after a [`Keepalive::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveEvent {
    /// Send `\x00PING` now.
    SendPing,
    /// Nothing heard for `silent`; reported once until activity resumes.
    PeerDead { silent: Duration },
}

#[derive(Debug, Clone)]
pub struct Keepalive {
    config: KeepaliveConfig,
    last_activity: Instant,
    next_ping: Instant,
    ping_in_flight: Option<Instant>,
    /// When the oldest PING still without any PONG was sent.
    unanswered_since: Option<Instant>,
    rtt: Option<Duration>,
    dead: bool,
    pings_sent: u64,
}

impl Keepalive {
    /// Starts counting from `now` (the channel just opened).
    pub fn new(config: KeepaliveConfig, now: Instant) -> Self {
        Keepalive {
            config,
            last_activity: now,
            next_ping: now + config.interval,
            ping_in_flight: None,
            unanswered_since: None,
            rtt: None,
            dead: false,
            pings_sent: 0,
        }
    }

    /// Any message from the peer arrived.
    pub fn on_activity(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
        self.dead = false;
    }

    /// A `\x00PONG` arrived: activity, and an RTT sample when it answers the last PING.
    pub fn on_pong(&mut self, now: Instant) {
        self.on_activity(now);
        self.unanswered_since = None;
        if let Some(sent) = self.ping_in_flight.take() {
            self.rtt = Some(now.saturating_duration_since(sent));
        }
    }

    /// The link has just come back (a reconnect, an ICE restart): ping at the
    /// next poll rather than at the next interval. The round trip of the new
    /// path is measured at once, and the peer gets something new to
    /// acknowledge; over SCTP its acknowledgment also covers data whose
    /// acknowledgment was lost in the outage, which otherwise waits for a
    /// retransmission timer.
    pub fn ping_now(&mut self, now: Instant) {
        if self.config.sends_pings {
            self.next_ping = self.next_ping.min(now);
        }
    }

    /// Advances to `now`; returns at most one event. Call again until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<KeepaliveEvent> {
        let silent = now.saturating_duration_since(self.last_activity);
        if !self.dead && silent >= self.config.dead_after() {
            self.dead = true;
            return Some(KeepaliveEvent::PeerDead { silent });
        }
        if self.config.sends_pings && now >= self.next_ping {
            // Keep a fixed cadence; after a long stall, ping once, not once per missed interval.
            self.next_ping += self.config.interval;
            if self.next_ping <= now {
                self.next_ping = now + self.config.interval;
            }
            self.ping_in_flight = Some(now);
            self.unanswered_since.get_or_insert(now);
            self.pings_sent += 1;
            return Some(KeepaliveEvent::SendPing);
        }
        None
    }

    /// When [`poll`](Self::poll) next has something to do; `None` when only
    /// activity can change anything (a dead peer, on the side that never pings).
    pub fn next_deadline(&self) -> Option<Instant> {
        let dead_at = (!self.dead).then(|| self.last_activity + self.config.dead_after());
        let ping_at = self.config.sends_pings.then_some(self.next_ping);
        match (dead_at, ping_at) {
            (Some(d), Some(p)) => Some(d.min(p)),
            (d, p) => d.or(p),
        }
    }

    /// How long the oldest unanswered PING has waited for a PONG. Other
    /// traffic does not reset this: over TCP, data can keep arriving while
    /// our own bytes sit in a retransmission backoff, and only a PONG shows
    /// that the way back works.
    pub fn unanswered_for(&self, now: Instant) -> Option<Duration> {
        self.unanswered_since.map(|sent| now.saturating_duration_since(sent))
    }

    /// Latest round-trip time measured from PING to PONG.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    pub fn is_dead(&self) -> bool {
        self.dead
    }

    pub fn pings_sent(&self) -> u64 {
        self.pings_sent
    }

    pub fn last_activity(&self) -> Instant {
        self.last_activity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Polls every `step` from `from` to `to`, collecting (time since t0, event).
    fn run(
        k: &mut Keepalive,
        t0: Instant,
        from: Duration,
        to: Duration,
        step: Duration,
    ) -> Vec<(Duration, KeepaliveEvent)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            while let Some(e) = k.poll(t0 + t) {
                out.push((t, e));
            }
            t += step;
        }
        out
    }

    #[test]
    fn host_pings_every_five_seconds_exactly() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::host(), t0);
        let mut pings = Vec::new();
        let mut t = Duration::ZERO;
        // A responsive viewer: every PING is answered 20 ms later.
        while t <= 60 * S {
            if let Some(KeepaliveEvent::SendPing) = k.poll(t0 + t) {
                pings.push(t);
                k.on_pong(t0 + t + Duration::from_millis(20));
            }
            t += Duration::from_millis(10);
        }
        let want: Vec<Duration> = (1..=12).map(|i| i * 5 * S).collect();
        assert_eq!(pings, want);
        assert_eq!(k.rtt(), Some(Duration::from_millis(20)));
        assert!(!k.is_dead());
    }

    #[test]
    fn a_link_that_comes_back_is_pinged_at_once_and_the_cadence_goes_on_from_there() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::host(), t0);
        assert_eq!(k.poll(t0 + 5 * S), Some(KeepaliveEvent::SendPing));
        // Back 1.2 s later: pinged at the next poll, not at 10 s.
        let back = t0 + 6 * S + Duration::from_millis(200);
        k.ping_now(back);
        assert_eq!(k.next_deadline(), Some(back));
        assert_eq!(k.poll(back), Some(KeepaliveEvent::SendPing));
        assert_eq!(k.poll(back), None);
        k.on_pong(back + Duration::from_millis(3));
        assert_eq!(k.rtt(), Some(Duration::from_millis(3)));
        assert_eq!(k.next_deadline(), Some(back + 5 * S));
        // The side that never pings (the viewer answers) stays silent.
        let mut quiet = Keepalive::new(KeepaliveConfig::viewer(), t0);
        quiet.ping_now(t0 + S);
        assert_eq!(quiet.poll(t0 + S), None);
    }

    #[test]
    fn a_silent_viewer_is_declared_dead_after_three_intervals_once() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::host(), t0);
        let events = run(&mut k, t0, Duration::ZERO, 40 * S, Duration::from_millis(100));
        let dead: Vec<_> = events
            .iter()
            .filter(|(_, e)| matches!(e, KeepaliveEvent::PeerDead { .. }))
            .collect();
        assert_eq!(dead.len(), 1, "reported once: {events:?}");
        assert_eq!(dead[0].0, 15 * S);
        assert_eq!(dead[0].1, KeepaliveEvent::PeerDead { silent: 15 * S });
        // Pings continue while dead (the peer may come back).
        assert_eq!(events.iter().filter(|(_, e)| *e == KeepaliveEvent::SendPing).count(), 8);
    }

    #[test]
    fn any_message_counts_as_life_and_revives_a_dead_peer() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::host(), t0);
        // Video keyframe requests or input arrive every 4 s but no PONG: still alive.
        let mut t = Duration::ZERO;
        while t < 60 * S {
            if t.as_secs().is_multiple_of(4) && t.subsec_millis() == 0 {
                k.on_activity(t0 + t);
            }
            while let Some(e) = k.poll(t0 + t) {
                assert_ne!(
                    std::mem::discriminant(&e),
                    std::mem::discriminant(&KeepaliveEvent::PeerDead { silent: S })
                );
            }
            t += Duration::from_millis(100);
        }
        // Silence after the last message (at 56 s): dead 15 s later; a message revives it.
        let events = run(&mut k, t0, 60 * S, 80 * S, Duration::from_millis(100));
        assert!(
            events
                .iter()
                .any(|(t, e)| matches!(e, KeepaliveEvent::PeerDead { .. }) && *t == 71 * S),
            "{events:?}"
        );
        assert!(k.is_dead());
        k.on_activity(t0 + 80 * S);
        assert!(!k.is_dead());
    }

    #[test]
    fn the_viewer_side_never_pings_but_still_detects_a_dead_host() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::viewer(), t0);
        let events = run(&mut k, t0, Duration::ZERO, 20 * S, Duration::from_millis(100));
        assert_eq!(events, vec![(15 * S, KeepaliveEvent::PeerDead { silent: 15 * S })]);
        assert_eq!(k.pings_sent(), 0);
    }

    #[test]
    fn a_late_pong_does_not_pair_with_a_newer_ping() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::host(), t0);
        assert_eq!(k.poll(t0 + 5 * S), Some(KeepaliveEvent::SendPing));
        k.on_pong(t0 + 5 * S + Duration::from_millis(300));
        assert_eq!(k.rtt(), Some(Duration::from_millis(300)));
        assert_eq!(k.poll(t0 + 10 * S), Some(KeepaliveEvent::SendPing));
        // A duplicate PONG for the first PING arrives after the second PING was answered.
        k.on_pong(t0 + 10 * S + Duration::from_millis(40));
        k.on_pong(t0 + 10 * S + Duration::from_millis(900));
        assert_eq!(k.rtt(), Some(Duration::from_millis(40)));
    }

    #[test]
    fn after_a_stall_the_host_pings_once_and_keeps_its_cadence() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::host(), t0);
        // The shell was not scheduled for 23 s.
        let mut events = Vec::new();
        while let Some(e) = k.poll(t0 + 23 * S) {
            events.push(e);
        }
        assert_eq!(
            events,
            vec![KeepaliveEvent::PeerDead { silent: 23 * S }, KeepaliveEvent::SendPing]
        );
        assert_eq!(k.poll(t0 + 27 * S), None);
        assert_eq!(k.poll(t0 + 28 * S), Some(KeepaliveEvent::SendPing));
    }

    #[test]
    fn next_deadline_is_the_next_ping_or_the_death_time() {
        let t0 = Instant::now();
        let k = Keepalive::new(KeepaliveConfig::host(), t0);
        assert_eq!(k.next_deadline(), Some(t0 + 5 * S));
        let mut v = Keepalive::new(KeepaliveConfig::viewer(), t0);
        assert_eq!(v.next_deadline(), Some(t0 + 15 * S));
        assert!(matches!(v.poll(t0 + 15 * S), Some(KeepaliveEvent::PeerDead { .. })));
        assert_eq!(
            v.next_deadline(),
            None,
            "dead and silent: only activity changes anything"
        );
        v.on_activity(t0 + 16 * S);
        assert_eq!(v.next_deadline(), Some(t0 + 31 * S));
        let custom = KeepaliveConfig {
            interval: Duration::from_millis(500),
            dead_after_intervals: 4,
            sends_pings: true,
        };
        assert_eq!(custom.dead_after(), Duration::from_secs(2));
    }

    #[test]
    fn an_unanswered_ping_ages_from_the_first_one_sent_until_a_pong() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::host(), t0);
        assert_eq!(k.unanswered_for(t0), None);
        assert_eq!(k.poll(t0 + 5 * S), Some(KeepaliveEvent::SendPing));
        assert_eq!(k.unanswered_for(t0 + 7 * S), Some(2 * S));
        // Other traffic does not count as an answer, and a second PING does
        // not restart the clock.
        k.on_activity(t0 + 8 * S);
        assert_eq!(k.poll(t0 + 10 * S), Some(KeepaliveEvent::SendPing));
        assert_eq!(k.unanswered_for(t0 + 11 * S), Some(6 * S));
        k.on_pong(t0 + 11 * S);
        assert_eq!(k.unanswered_for(t0 + 12 * S), None);
    }
}
