//! How much file data a sender keeps outstanding on its channel: a
//! delay-based limit in the manner of LEDBAT (RFC 6817), so that a file
//! fills what the path leaves free without building a queue in front of
//! the session's video, input and acknowledgements. Pure: time passed in.
//!
//! The only signal is the channel's outstanding bytes (queued or in flight,
//! not yet acknowledged by the peer's SCTP) against the bytes written to it.
//! Their difference, over time, is the drain rate; outstanding ÷ drain rate
//! is how long a byte written now waits, which includes any queue at the
//! bottleneck. The lowest such delay lately is the path's own; what is above
//! it is queue. The limit grows by a quarter a step until a queue shows,
//! then moves in proportion to how far the queue is from [`TARGET_QUEUE`]
//! (a tenth of itself a step at most), growing only while the sender is
//! using all of it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Queueing the sender may add (LEDBAT's target is 100 ms; a remote
/// session's input and video are more sensitive).
pub const TARGET_QUEUE: Duration = Duration::from_millis(25);
/// How often the limit is revised.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Bounds on the limit.
pub const MIN_LIMIT: usize = 32 * 1024;
pub const MAX_LIMIT: usize = 16 * 1024 * 1024;
/// The limit to start with: small, so that the first delays measured are
/// the path's own, not a queue this sender built (it grows by a quarter
/// every 50 ms while there is no queue: to 8 MiB in about 1.3 s).
pub const START_LIMIT: usize = MIN_LIMIT;
/// How long the lowest delay is remembered: long, because a queue that
/// lasts longer than this becomes part of the "base" and is never drained
/// (LEDBAT keeps ten minutes; a path's own delay changes seldom within one).
const BASE_SPAN: Duration = Duration::from_secs(120);
/// The span the drain rate is measured over.
const RATE_SPAN: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Pacer {
    limit: usize,
    /// (time, bytes acknowledged so far).
    acked: VecDeque<(Instant, u64)>,
    /// (time, delay) minima, for the base delay.
    delays: VecDeque<(Instant, Duration)>,
    last_revised: Option<Instant>,
    /// The sender had data waiting while the limit held it back.
    limited: bool,
    /// Growing fast until the first sign of a queue.
    slow_start: bool,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            limit: START_LIMIT,
            acked: VecDeque::new(),
            delays: VecDeque::new(),
            last_revised: None,
            limited: false,
            slow_start: true,
        }
    }
}

impl Pacer {
    /// Bytes that may be outstanding now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The sender wanted to write more but the limit held it back.
    pub fn on_limited(&mut self) {
        self.limited = true;
    }

    /// The channel has `outstanding` bytes unacknowledged after `written`
    /// were written to it in all; revises the limit every [`SAMPLE_EVERY`].
    pub fn on_sample(&mut self, now: Instant, written: u64, outstanding: usize) {
        let acked = written.saturating_sub(outstanding as u64);
        self.acked.push_back((now, acked));
        while self.acked.len() > 2 && now.duration_since(self.acked[1].0) >= RATE_SPAN {
            self.acked.pop_front();
        }
        if self.last_revised.is_some_and(|t| now.duration_since(t) < SAMPLE_EVERY) {
            return;
        }
        self.last_revised = Some(now);
        let limited = std::mem::take(&mut self.limited);
        let Some(rate) = self.drain_rate() else { return };
        if rate <= 0.0 {
            return;
        }
        let delay = Duration::from_secs_f64(outstanding as f64 / rate);
        while self
            .delays
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > BASE_SPAN)
        {
            self.delays.pop_front();
        }
        while self.delays.back().is_some_and(|(_, d)| *d >= delay) {
            self.delays.pop_back();
        }
        self.delays.push_back((now, delay));
        let base = self.delays.front().map_or(delay, |(_, d)| *d);
        let queue = delay.saturating_sub(base);
        let off_target =
            ((TARGET_QUEUE.as_secs_f64() - queue.as_secs_f64()) / TARGET_QUEUE.as_secs_f64()).clamp(-1.0, 1.0);
        if queue >= TARGET_QUEUE / 2 {
            self.slow_start = false;
        }
        let next = if self.slow_start {
            // Far from any queue: a quarter more each time the limit held it back.
            if limited {
                self.limit as f64 * 1.25
            } else {
                self.limit as f64
            }
        } else if off_target > 0.0 && !limited {
            // Under the target but not using what it has: no reason to grow.
            self.limit as f64
        } else {
            // In proportion to how far from the target (LEDBAT): at most a tenth a step.
            self.limit as f64 * (1.0 + 0.1 * off_target)
        };
        self.limit = (next as usize).clamp(MIN_LIMIT, MAX_LIMIT);
    }

    /// Bytes a second the channel drained lately.
    pub fn drain_rate(&self) -> Option<f64> {
        let (t0, a0) = *self.acked.front()?;
        let (t1, a1) = *self.acked.back()?;
        let span = t1.duration_since(t0).as_secs_f64();
        (span >= 0.1).then(|| a1.saturating_sub(a0) as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bottleneck of `rate` bytes/s with `base` one-way-and-back delay and
    /// an unbounded queue, fed by a sender that always has data.
    fn run(rate: f64, base: Duration, secs: u64) -> (Pacer, Vec<(Duration, usize)>) {
        let mut p = Pacer::default();
        let t0 = Instant::now();
        let step = Duration::from_millis(5);
        let (mut written, mut delivered) = (0u64, 0f64);
        // Acknowledged = delivered `base` ago.
        let mut history: VecDeque<(Instant, f64)> = VecDeque::new();
        let mut waits = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(secs) {
            now += step;
            delivered = (delivered + rate * step.as_secs_f64()).min(written as f64);
            history.push_back((now, delivered));
            let acked = history
                .iter()
                .rev()
                .find(|(t, _)| now.duration_since(*t) >= base)
                .map_or(0.0, |(_, d)| *d);
            let outstanding = written - acked as u64;
            // It always has more: it writes up to the limit and is held there.
            if (outstanding as usize) < p.limit() {
                written += (p.limit() - outstanding as usize) as u64;
            }
            p.on_limited();
            let outstanding = written - acked as u64;
            p.on_sample(now, written, outstanding as usize);
            let queued = written as f64 - delivered;
            waits.push((now - t0, queued as usize));
        }
        (p, waits)
    }

    #[test]
    fn it_fills_the_path_with_little_queue() {
        for (rate, base) in [
            (2.5e6, Duration::from_millis(2)),
            (2.5e6, Duration::from_millis(60)),
            (60e6, Duration::from_millis(1)),
        ] {
            let (p, waits) = run(rate, base, 30);
            let drained = p.drain_rate().unwrap();
            let late: Vec<usize> = waits
                .iter()
                .filter(|(t, _)| t.as_secs() >= 15)
                .map(|(_, q)| *q)
                .collect();
            let worst_queue = Duration::from_secs_f64(*late.iter().max().unwrap() as f64 / rate);
            eprintln!(
                "rate {:.1} MB/s, base {base:?}: drained {:.2} MB/s, limit {} KB, worst queue {worst_queue:?}",
                rate / 1e6,
                drained / 1e6,
                p.limit() / 1024
            );
            assert!(drained >= 0.85 * rate, "the path is used: {drained} of {rate}");
            assert!(worst_queue <= Duration::from_millis(80), "queue {worst_queue:?}");
        }
    }

    #[test]
    fn the_limit_never_leaves_its_bounds() {
        let mut p = Pacer::default();
        let t0 = Instant::now();
        // Nothing drains: the limit must not grow.
        for i in 0..200u64 {
            p.on_limited();
            p.on_sample(t0 + Duration::from_millis(50 * i), 1 << 20, 1 << 20);
        }
        assert!(p.limit() <= START_LIMIT);
        assert!(p.limit() >= MIN_LIMIT);
    }
}
