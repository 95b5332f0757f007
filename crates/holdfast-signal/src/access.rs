//! Limits on guessing: failed join attempts are counted per room and per
//! client address; too many within a window lock the key out, for a time that
//! doubles with each lockout. Pure, with time passed in, so minutes of
//! lockouts are tested in microseconds.
//!
//! An address is a client's IPv4 address or its IPv6 /64 (one subscriber's
//! network: rotating through its 2^64 addresses buys nothing), and the
//! limiter tracks at most [`MAX_TRACKED_KEYS`]: past that the least recently
//! seen unlocked key goes, so a flood of new addresses cannot grow it.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use holdfast_proto::RoomId;

/// Failed attempts allowed per window before a lockout.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// First lockout; each further lockout of the same key doubles it.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
/// Longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(3600);
/// Most keys the limiter remembers at once.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// The key for a client address: IPv4 as is (IPv4-mapped IPv6 unwrapped),
/// IPv6 cut to its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    pub max_failures: u32,
    pub window: Duration,
    pub first_lockout: Duration,
    pub max_lockout: Duration,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            max_failures: MAX_FAILURES,
            window: FAILURE_WINDOW,
            first_lockout: FIRST_LOCKOUT,
            max_lockout: MAX_LOCKOUT,
        }
    }
}

/// What is being limited: guesses at one room, or guesses from one address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttemptKey {
    Room(RoomId),
    Addr(IpAddr),
}

impl AttemptKey {
    /// The key for a client address ([`address_key`]: IPv6 by /64).
    pub fn addr(ip: IpAddr) -> Self {
        AttemptKey::Addr(address_key(ip))
    }
}

#[derive(Debug)]
struct Entry {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    lockouts: u32,
    last_seen: Instant,
}

/// The outcome of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// This many attempts are left in the window.
    Remaining(u32),
    /// The key is now locked for this long.
    LockedOut(Duration),
}

#[derive(Debug)]
pub struct AttemptLimiter<K = AttemptKey> {
    config: LimiterConfig,
    entries: HashMap<K, Entry>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> AttemptLimiter<K> {
    pub fn new(config: LimiterConfig) -> Self {
        Self::with_capacity(config, MAX_TRACKED_KEYS)
    }

    pub fn with_capacity(config: LimiterConfig, capacity: usize) -> Self {
        AttemptLimiter {
            config,
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Makes room for one more key: forgets stale keys, then the least
    /// recently seen unlocked one (locked keys stay: forgetting them would
    /// lift a lockout).
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.capacity {
            return;
        }
        self.purge(now);
        if self.entries.len() < self.capacity {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.locked_until.is_none_or(|t| t <= now))
            .min_by_key(|(_, e)| e.last_seen)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
        }
    }

    /// `Err(retry_after)` while the key is locked out.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.entries.get(key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Attempts left before a lockout (the full allowance for an unknown key).
    pub fn remaining(&self, key: &K, now: Instant) -> u32 {
        let used = self.entries.get(key).map_or(0, |e| {
            e.failures
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) < self.config.window)
                .count() as u32
        });
        self.config.max_failures.saturating_sub(used)
    }

    /// Records a failed attempt.
    pub fn fail(&mut self, key: &K, now: Instant) -> Failure {
        let cfg = self.config;
        if !self.entries.contains_key(key) {
            self.make_room(now);
        }
        let e = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            failures: VecDeque::new(),
            locked_until: None,
            lockouts: 0,
            last_seen: now,
        });
        e.last_seen = now;
        while e
            .failures
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= cfg.window)
        {
            e.failures.pop_front();
        }
        e.failures.push_back(now);
        let used = e.failures.len() as u32;
        if used < cfg.max_failures {
            return Failure::Remaining(cfg.max_failures - used);
        }
        let factor = 1u32.checked_shl(e.lockouts.min(20)).unwrap_or(u32::MAX);
        let lockout = cfg.first_lockout.saturating_mul(factor).min(cfg.max_lockout);
        e.lockouts += 1;
        e.failures.clear();
        e.locked_until = Some(now + lockout);
        Failure::LockedOut(lockout)
    }

    /// A right answer clears the key's failures (its lockout history stays,
    /// so an attacker who sometimes knows a code still locks out faster).
    pub fn succeed(&mut self, key: &K) {
        if let Some(e) = self.entries.get_mut(key) {
            e.failures.clear();
        }
    }

    /// Forgets everything about `key` (its failures and any lockout): for a
    /// room whose host made up a new code, old guesses say nothing.
    pub fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Forgets keys that are neither locked nor recently used, so memory stays
    /// bounded by recent activity. Lockout history decays after a quiet
    /// `max_lockout`.
    pub fn purge(&mut self, now: Instant) {
        let keep_for = self.config.window.max(self.config.max_lockout);
        self.entries.retain(|_, e| {
            let locked = e.locked_until.is_some_and(|t| t > now);
            locked || now.saturating_duration_since(e.last_seen) < keep_for
        });
    }

    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn limiter() -> AttemptLimiter<&'static str> {
        AttemptLimiter::new(LimiterConfig::default())
    }

    #[test]
    fn five_failures_in_a_minute_lock_the_key_for_a_minute() {
        let mut l = limiter();
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(l.fail(&"k", t0 + S(i)), Failure::Remaining(4 - i as u32));
            assert!(l.check(&"k", t0 + S(i)).is_ok());
        }
        assert_eq!(l.fail(&"k", t0 + S(4)), Failure::LockedOut(S(60)));
        assert_eq!(l.check(&"k", t0 + S(4)), Err(S(60)));
        assert_eq!(l.check(&"k", t0 + S(34)), Err(S(30)));
        assert!(l.check(&"k", t0 + S(64)).is_ok(), "the lockout expires");
        assert!(l.check(&"other", t0 + S(4)).is_ok(), "keys are independent");
    }

    #[test]
    fn failures_spread_beyond_the_window_never_lock() {
        let mut l = limiter();
        let t0 = Instant::now();
        for i in 0..50 {
            assert!(matches!(l.fail(&"k", t0 + S(15 * i)), Failure::Remaining(_)));
        }
        assert!(l.check(&"k", t0 + S(15 * 50)).is_ok());
    }

    #[test]
    fn lockouts_double_up_to_the_cap() {
        let mut l = limiter();
        let mut now = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..10 {
            let mut outcome = Failure::Remaining(0);
            for _ in 0..5 {
                outcome = l.fail(&"k", now);
            }
            let Failure::LockedOut(d) = outcome else {
                panic!("{outcome:?}")
            };
            seen.push(d.as_secs());
            now += d;
        }
        assert_eq!(seen, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]);
    }

    #[test]
    fn success_clears_failures_but_not_history() {
        let mut l = limiter();
        let t0 = Instant::now();
        for _ in 0..4 {
            l.fail(&"k", t0);
        }
        l.succeed(&"k");
        assert_eq!(l.remaining(&"k", t0), 5);
        for _ in 0..5 {
            l.fail(&"k", t0);
        }
        l.succeed(&"k");
        assert!(l.check(&"k", t0).is_err(), "a success does not lift a lockout");
    }

    #[test]
    fn a_flood_of_new_keys_stays_within_capacity_and_keeps_lockouts() {
        let mut l = AttemptLimiter::with_capacity(LimiterConfig::default(), 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            l.fail(&0u32, t0);
        }
        assert!(l.check(&0, t0).is_err());
        for i in 1..10_000u32 {
            l.fail(&i, t0 + Duration::from_millis(i as u64));
            assert!(l.tracked() <= 100);
        }
        assert!(l.check(&0, t0 + S(1)).is_err(), "the locked key survived the flood");
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let mut l = limiter();
        let t0 = Instant::now();
        for i in 0..10_000 {
            let key: &'static str = Box::leak(format!("k{i}").into_boxed_str());
            l.fail(&key, t0);
        }
        assert_eq!(l.tracked(), 10_000);
        l.purge(t0 + S(10));
        assert_eq!(l.tracked(), 10_000, "recent keys are kept");
        l.purge(t0 + MAX_LOCKOUT + S(1));
        assert_eq!(l.tracked(), 0);
    }
}
