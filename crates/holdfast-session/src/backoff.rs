//! How long to wait before the next reconnection attempt: exponential
//! backoff with *full jitter* (a uniformly random delay between zero and the
//! exponential ceiling), so a crowd of clients cut off together does not
//! come back in lockstep. The ceiling starts at [`BACKOFF_BASE`], doubles per
//! failed attempt and stops at [`BACKOFF_CAP`]; a success resets it.

use std::time::Duration;

use rand::Rng;

/// First ceiling (seed: exponential backoff; base 1 s).
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Largest ceiling (seed: 30 s).
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: BACKOFF_BASE,
            cap: BACKOFF_CAP,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    config: BackoffConfig,
    attempt: u32,
}

impl ReconnectPolicy {
    pub fn new(config: BackoffConfig) -> Self {
        ReconnectPolicy { config, attempt: 0 }
    }

    /// Failed attempts since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling for attempt `n` (0-based): `min(cap, base * 2^n)`.
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.config.base.saturating_mul(factor).min(self.config.cap)
    }

    /// The delay before the next attempt, drawn uniformly from `0..=ceiling`;
    /// counts the attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// The connection is back: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(7)
    }

    #[test]
    fn ceilings_double_from_one_second_to_thirty() {
        let p = ReconnectPolicy::new(BackoffConfig::default());
        let secs: Vec<u64> = (0..8).map(|n| p.ceiling(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(p.ceiling(10_000), BACKOFF_CAP, "no overflow, however long it fails");
    }

    #[test]
    fn every_delay_is_within_its_ceiling() {
        let mut p = ReconnectPolicy::new(BackoffConfig::default());
        let mut r = rng();
        for n in 0..200 {
            let ceiling = p.ceiling(n);
            let d = p.next_delay(&mut r);
            assert!(d <= ceiling, "attempt {n}: {d:?} > {ceiling:?}");
        }
        assert_eq!(p.attempt(), 200);
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        // Many clients at the capped attempt: delays cover 0..30 s evenly.
        let mut r = rng();
        let delays: Vec<f64> = (0..10_000)
            .map(|_| {
                let mut p = ReconnectPolicy::new(BackoffConfig::default());
                for _ in 0..6 {
                    p.next_delay(&mut r);
                }
                p.next_delay(&mut r).as_secs_f64()
            })
            .collect();
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((mean - 15.0).abs() < 0.5, "mean {mean}");
        for decile in 0..10 {
            let lo = decile as f64 * 3.0;
            let n = delays.iter().filter(|&&d| d >= lo && d < lo + 3.0).count();
            assert!((800..1200).contains(&n), "decile {decile}: {n} of 10000");
        }
    }

    #[test]
    fn success_resets_the_ceiling() {
        let mut p = ReconnectPolicy::new(BackoffConfig::default());
        let mut r = rng();
        for _ in 0..10 {
            p.next_delay(&mut r);
        }
        p.reset();
        assert_eq!(p.attempt(), 0);
        assert!(p.next_delay(&mut r) <= BACKOFF_BASE);
    }
}
