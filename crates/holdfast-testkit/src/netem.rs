//! A userspace stand-in for `tc netem`: seeded random loss and a fixed delay
//! on packets crossing a link, one direction at a time.
//!
//! This machine's kernel has no `sch_netem` (nor tc classifiers or nftables),
//! so the fault suite cannot impair a link in the kernel. Instead the
//! `holdfast-netem` binary takes a switch port off the bridge and carries its
//! frames itself (AF_PACKET sockets on both sides); [`Lane`] decides, with
//! time passed in, which frames are lost and when each of the others leaves.
//! Like netem, delay keeps order and loss is independent per packet.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What one direction of an impaired link does to its packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Each packet is lost with this probability (0.0..=1.0).
    pub loss: f64,
    /// Each packet that is not lost leaves this long after it arrived.
    pub delay: Duration,
}

/// At most this many packets wait in one direction (netem's default limit);
/// more are dropped, as a full queue would.
pub const QUEUE_LIMIT: usize = 1000;

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LaneCounters {
    pub passed: u64,
    pub lost: u64,
    /// Dropped because [`QUEUE_LIMIT`] packets were already waiting.
    pub overflow: u64,
}

/// One direction: a seeded loss decision and a delay line.
#[derive(Debug)]
pub struct Lane {
    imp: Impairment,
    rng: u64,
    queue: VecDeque<(Instant, Vec<u8>)>,
    counters: LaneCounters,
}

impl Lane {
    pub fn new(imp: Impairment, seed: u64) -> Self {
        Lane {
            imp,
            // xorshift64* must not start at zero.
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            queue: VecDeque::new(),
            counters: LaneCounters::default(),
        }
    }

    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A packet arrived at `now`: lost, or queued to leave after the delay.
    pub fn arrive(&mut self, now: Instant, packet: Vec<u8>) {
        if self.uniform() < self.imp.loss {
            self.counters.lost += 1;
        } else if self.queue.len() >= QUEUE_LIMIT {
            self.counters.overflow += 1;
        } else {
            self.queue.push_back((now + self.imp.delay, packet));
        }
    }

    /// The next packet due at `now`, if any, in arrival order.
    pub fn due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.queue.front().is_some_and(|(t, _)| *t <= now) {
            self.counters.passed += 1;
            return self.queue.pop_front().map(|(_, p)| p);
        }
        None
    }

    /// When the next queued packet is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }

    pub fn counters(&self) -> LaneCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_leave_after_the_delay_in_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut lane = Lane::new(
            Impairment {
                loss: 0.0,
                delay: ms(150),
            },
            1,
        );
        lane.arrive(t0, vec![1]);
        lane.arrive(t0 + ms(10), vec![2]);
        assert_eq!(lane.next_due(), Some(t0 + ms(150)));
        assert_eq!(lane.due(t0 + ms(149)), None);
        assert_eq!(lane.due(t0 + ms(150)), Some(vec![1]));
        assert_eq!(lane.due(t0 + ms(150)), None);
        assert_eq!(lane.due(t0 + ms(400)), Some(vec![2]));
        assert_eq!(lane.counters().passed, 2);
    }

    #[test]
    fn loss_is_near_the_rate_and_repeatable_for_a_seed() {
        let t0 = Instant::now();
        let imp = Impairment {
            loss: 0.10,
            delay: Duration::ZERO,
        };
        let run = |seed| {
            let mut lane = Lane::new(imp, seed);
            let mut kept = Vec::new();
            for i in 0..20_000u32 {
                lane.arrive(t0, i.to_be_bytes().to_vec());
                while let Some(p) = lane.due(t0) {
                    kept.push(p);
                }
            }
            (lane.counters(), kept)
        };
        let (c, kept) = run(7);
        let rate = c.lost as f64 / 20_000.0;
        assert!((0.09..0.11).contains(&rate), "lost {rate}");
        assert_eq!(c.passed as usize, kept.len());
        assert_eq!(run(7).1, kept, "same seed, same losses");
        assert_ne!(run(8).1, kept, "another seed, other losses");
    }

    #[test]
    fn a_full_queue_drops_like_netem() {
        let t0 = Instant::now();
        let mut lane = Lane::new(
            Impairment {
                loss: 0.0,
                delay: Duration::from_secs(1),
            },
            1,
        );
        for _ in 0..QUEUE_LIMIT + 5 {
            lane.arrive(t0, vec![0]);
        }
        assert_eq!(lane.counters().overflow, 5);
    }
}
