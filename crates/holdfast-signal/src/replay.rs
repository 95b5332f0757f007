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
    /// Numbers never given out (skipped when the room moved to another
    /// node), inclusive ranges: not counted as lost.
    gaps: Vec<(u64, u64)>,
}

/// Gaps remembered per room (each node change adds one).
const MAX_GAPS: usize = 16;

impl<T: Clone> ReplayBuffer<T> {
    pub fn new(config: ReplayConfig, now: Instant) -> Self {
        ReplayBuffer {
            config,
            last_seq: 0,
            messages: VecDeque::new(),
            last_activity: now,
            gaps: Vec::new(),
        }
    }

    /// What it holds, oldest first, and the last sequence number given out
    /// (for another node to carry the room on).
    pub fn entries(&self) -> (u64, Vec<(u64, T)>) {
        self.entries_after(0)
    }

    /// [`ReplayBuffer::entries`] numbered after `after` only.
    pub fn entries_after(&self, after: u64) -> (u64, Vec<(u64, T)>) {
        let newer = self.messages.iter().filter(|(s, _)| *s > after).cloned().collect();
        (self.last_seq, newer)
    }

    /// Numbers never given out, for another node to carry the room on.
    pub fn gaps(&self) -> &[(u64, u64)] {
        &self.gaps
    }

    /// Skips `n` numbers: the next message is numbered after them, and a
    /// member that missed them did not miss messages.
    pub fn skip(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.gaps.push((self.last_seq + 1, self.last_seq + n));
        if self.gaps.len() > MAX_GAPS {
            self.gaps.remove(0);
        }
        self.last_seq += n;
    }

    /// A buffer carrying on from [`ReplayBuffer::entries`]: the same messages,
    /// the same gaps, and numbers continuing after `last_seq`.
    pub fn carried_on(
        config: ReplayConfig,
        now: Instant,
        last_seq: u64,
        gaps: Vec<(u64, u64)>,
        entries: Vec<(u64, T)>,
    ) -> Self {
        let mut messages: VecDeque<(u64, T)> = entries.into_iter().filter(|(s, _)| *s <= last_seq).collect();
        while messages.len() > config.capacity {
            messages.pop_front();
        }
        let mut gaps: Vec<(u64, u64)> = gaps.into_iter().filter(|(a, b)| a <= b && *b <= last_seq).collect();
        if gaps.len() > MAX_GAPS {
            gaps.drain(..gaps.len() - MAX_GAPS);
        }
        ReplayBuffer {
            config,
            last_seq,
            messages,
            last_activity: now,
            gaps,
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
        let skipped: u64 = self
            .gaps
            .iter()
            .map(|&(a, b)| {
                let (lo, hi) = (a.max(seen + 1), b.min(self.last_seq));
                if hi >= lo {
                    hi - lo + 1
                } else {
                    0
                }
            })
            .sum();
        let lost = (self.last_seq - seen).saturating_sub(messages.len() as u64 + skipped);
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
    fn skipped_numbers_are_not_lost_messages() {
        let t0 = Instant::now();
        let mut b = ReplayBuffer::new(ReplayConfig::default(), t0);
        for i in 1..=3u32 {
            b.push(i, t0);
        }
        b.skip(1000);
        assert_eq!(b.push(4, t0), 1004);
        let m = b.since(1, t0);
        assert_eq!(m.messages, vec![(2, 2), (3, 3), (1004, 4)]);
        assert_eq!(m.lost, 0, "1000 numbers skipped, none lost");
        // Carried on again (another move): the gap goes with it.
        let (last, entries) = b.entries();
        let mut c = ReplayBuffer::carried_on(ReplayConfig::default(), t0, last, b.gaps().to_vec(), entries);
        c.skip(1000);
        assert_eq!(c.push(5, t0), 2005);
        assert_eq!(c.since(0, t0).lost, 0);
        // A member that saw up to 1002 (inside the gap) missed 1004 and 2005 only.
        assert_eq!(c.since(1002, t0).messages, vec![(1004, 4), (2005, 5)]);
        assert_eq!(c.since(1002, t0).lost, 0);
        // Evicted messages still count as lost.
        let small = ReplayConfig {
            capacity: 2,
            ..Default::default()
        };
        let mut d = ReplayBuffer::carried_on(small, t0, last, b.gaps().to_vec(), b.entries().1);
        assert_eq!(d.since(0, t0).lost, 2, "1 and 2 are gone, 3 and 1004 kept");
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
