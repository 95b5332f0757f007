//! The per-room replay buffer (seed 001): every relayed message gets the
//! room's next sequence number; the last [`REPLAY_MESSAGES`] are kept for
//! [`REPLAY_TTL`] after the room's last activity, oldest discarded first, so
//! a peer that reconnects can be sent what it missed, in order, exactly once.
//! Pure, with time passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Messages kept per room (seed: 50).
pub const REPLAY_MESSAGES: usize = 50;
/// How long they are kept after the room's last activity (seed: 5 minutes).
pub const REPLAY_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayConfig {
    pub capacity: usize,
    pub ttl: Duration,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            capacity: REPLAY_MESSAGES,
            ttl: REPLAY_TTL,
        }
    }
}

/// What a reconnecting peer missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed<T> {
    /// In sequence order, each once.
    pub messages: Vec<(u64, T)>,
    /// Messages it missed that are no longer kept (evicted or expired).
    pub lost: u64,
}

#[derive(Debug, Clone)]
pub struct ReplayBuffer<T> {
    config: ReplayConfig,
    /// Sequence number of the last message pushed (0: none yet).
    last_seq: u64,
    messages: VecDeque<(u64, T)>,
    last_activity: Instant,
}

impl<T: Clone> ReplayBuffer<T> {
    pub fn new(config: ReplayConfig, now: Instant) -> Self {
        ReplayBuffer {
            config,
            last_seq: 0,
            messages: VecDeque::new(),
            last_activity: now,
        }
    }

    /// What it holds, oldest first, and the last sequence number given out
    /// (for another node to carry the room on).
    pub fn entries(&self) -> (u64, Vec<(u64, T)>) {
        (self.last_seq, self.messages.iter().cloned().collect())
    }

    /// A buffer carrying on from [`ReplayBuffer::entries`]: the same messages,
    /// and numbers continuing after `last_seq`.
    pub fn carried_on(config: ReplayConfig, now: Instant, last_seq: u64, entries: Vec<(u64, T)>) -> Self {
        let mut messages: VecDeque<(u64, T)> = entries.into_iter().filter(|(s, _)| *s <= last_seq).collect();
        while messages.len() > config.capacity {
            messages.pop_front();
        }
        ReplayBuffer {
            config,
            last_seq,
            messages,
            last_activity: now,
        }
    }

    /// A buffer whose first message gets `base + 1` (see `HubConfig::seq_base`).
    pub fn starting_after(config: ReplayConfig, now: Instant, base: u64) -> Self {
        ReplayBuffer {
            last_seq: base,
            ..Self::new(config, now)
        }
    }

    /// Numbers and keeps `message`; returns its sequence number (from 1, or `base + 1`).
    pub fn push(&mut self, message: T, now: Instant) -> u64 {
        self.expire(now);
        self.last_seq += 1;
        self.messages.push_back((self.last_seq, message));
        while self.messages.len() > self.config.capacity {
            self.messages.pop_front();
        }
        self.last_activity = now;
        self.last_seq
    }

    /// The last sequence number given out.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Everything after `seen` (the last sequence number the peer received).
    pub fn since(&mut self, seen: u64, now: Instant) -> Missed<T> {
        self.expire(now);
        let seen = seen.min(self.last_seq);
        let messages: Vec<(u64, T)> = self.messages.iter().filter(|(s, _)| *s > seen).cloned().collect();
        let lost = (self.last_seq - seen) - messages.len() as u64;
        Missed { messages, lost }
    }

    /// Drops everything once the room has been idle for the TTL.
    pub fn expire(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_activity) >= self.config.ttl {
            self.messages.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn missed_messages_come_back_in_order_once() {
        let t0 = Instant::now();
        let mut b = ReplayBuffer::new(ReplayConfig::default(), t0);
        for i in 1..=10u32 {
            assert_eq!(b.push(i, t0), i as u64);
        }
        let m = b.since(7, t0);
        assert_eq!(m.messages, vec![(8, 8), (9, 9), (10, 10)]);
        assert_eq!(m.lost, 0);
        assert!(b.since(10, t0).messages.is_empty(), "nothing after the last one");
        assert!(
            b.since(99, t0).messages.is_empty(),
            "a sequence from the future gets nothing"
        );
    }

    #[test]
    fn only_the_last_fifty_are_kept_oldest_discarded_first() {
        let t0 = Instant::now();
        let mut b = ReplayBuffer::new(ReplayConfig::default(), t0);
        for i in 1..=120u64 {
            b.push(i, t0);
        }
        assert_eq!(b.len(), REPLAY_MESSAGES);
        let m = b.since(0, t0);
        assert_eq!(m.messages.first(), Some(&(71, 71)));
        assert_eq!(m.messages.last(), Some(&(120, 120)));
        assert!(m.messages.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        assert_eq!(m.lost, 70);
    }

    #[test]
    fn everything_expires_five_minutes_after_the_last_activity() {
        let t0 = Instant::now();
        let mut b = ReplayBuffer::new(ReplayConfig::default(), t0);
        b.push("a", t0);
        b.push("b", t0 + S(200));
        // 299 s after the last message: still there (the TTL runs from the last activity).
        assert_eq!(b.since(0, t0 + S(499)).messages.len(), 2);
        let m = b.since(0, t0 + S(500));
        assert!(m.messages.is_empty());
        assert_eq!(m.lost, 2);
        // Numbering goes on.
        assert_eq!(b.push("c", t0 + S(501)), 3);
    }
}
