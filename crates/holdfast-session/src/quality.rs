//! Connection quality, classified good / fair / poor from latency, loss and
//! jitter (from WebRTC statistics and the keepalive), with advice for the
//! user. "Poor" is the seeds' trigger for a restart: loss over 10 % or RTT
//! over 500 ms (or jitter over 100 ms, which makes video unwatchable).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Good: all three below these.
pub const GOOD_LATENCY_MS: f64 = 150.0;
pub const GOOD_LOSS_PERCENT: f64 = 2.0;
pub const GOOD_JITTER_MS: f64 = 30.0;
/// Poor: any one above these (the seeds' restart thresholds for loss and RTT).
pub const POOR_LATENCY_MS: f64 = 500.0;
pub const POOR_LOSS_PERCENT: f64 = 10.0;
pub const POOR_JITTER_MS: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Good,
    Fair,
    Poor,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub latency_ms: f64,
    pub packet_loss_percent: f64,
    pub jitter_ms: f64,
    /// Available bandwidth, if known (advice only).
    #[serde(default)]
    pub bandwidth_kbps: Option<f64>,
}

impl Metrics {
    /// Finite, non-negative, loss within 0..=100.
    pub fn is_valid(&self) -> bool {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        ok(self.latency_ms)
            && ok(self.jitter_ms)
            && ok(self.packet_loss_percent)
            && self.packet_loss_percent <= 100.0
            && self.bandwidth_kbps.is_none_or(ok)
    }

    pub fn classify(&self) -> Quality {
        if self.latency_ms > POOR_LATENCY_MS
            || self.packet_loss_percent > POOR_LOSS_PERCENT
            || self.jitter_ms > POOR_JITTER_MS
        {
            Quality::Poor
        } else if self.latency_ms < GOOD_LATENCY_MS
            && self.packet_loss_percent < GOOD_LOSS_PERCENT
            && self.jitter_ms < GOOD_JITTER_MS
        {
            Quality::Good
        } else {
            Quality::Fair
        }
    }

    /// What the user could do about it, most important first.
    pub fn recommendations(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.packet_loss_percent >= GOOD_LOSS_PERCENT {
            out.push("Packets are being lost: move closer to the Wi-Fi access point or use a wired connection");
        }
        if self.latency_ms >= GOOD_LATENCY_MS {
            out.push("High latency: close other applications that use the network");
        }
        if self.jitter_ms >= GOOD_JITTER_MS {
            out.push("Unstable timing: consider reducing video quality if experiencing lag");
        }
        if self.bandwidth_kbps.is_some_and(|b| b < 1000.0) {
            out.push("Low bandwidth: lower the frame rate or the quality in the settings");
        }
        out
    }
}

/// How far back [`QualityMonitor`] looks.
pub const QUALITY_WINDOW: Duration = Duration::from_secs(10);

/// Turns raw measurements into [`Metrics`] over a sliding window:
/// round-trip samples (keepalive PING→PONG, ICE's `currentRoundTripTime`)
/// and probe counters (ICE connectivity checks sent and answered, which run
/// all the time and see loss the reliable data channels hide).
///
/// - latency: the median RTT in the window (one late sample does not swing it);
/// - jitter: the mean difference between consecutive RTT samples (RFC 3550's idea);
/// - loss: 1 − answered / sent over the window's probes.
///
/// Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct QualityMonitor {
    window: Duration,
    rtts: VecDeque<(Instant, f64)>,
    /// Cumulative (sent, answered) counter readings.
    probes: VecDeque<(Instant, u64, u64)>,
}

impl Default for QualityMonitor {
    fn default() -> Self {
        Self::new(QUALITY_WINDOW)
    }
}

impl QualityMonitor {
    pub fn new(window: Duration) -> Self {
        QualityMonitor {
            window,
            rtts: VecDeque::new(),
            probes: VecDeque::new(),
        }
    }

    /// Forgets every sample: the path changed (a reconnection, a new peer
    /// connection), and what the old one measured says nothing of it.
    pub fn reset(&mut self) {
        self.rtts.clear();
        self.probes.clear();
    }

    /// A round-trip time was measured.
    pub fn on_rtt(&mut self, now: Instant, rtt: Duration) {
        self.rtts.push_back((now, rtt.as_secs_f64() * 1000.0));
        self.trim(now);
    }

    /// Cumulative probe counters read at `now` (they only grow; a reset, as
    /// after a new peer connection, starts the count again).
    pub fn on_probes(&mut self, now: Instant, sent: u64, answered: u64) {
        if let Some(&(_, s, a)) = self.probes.back() {
            if sent < s || answered < a {
                self.probes.clear();
            }
        }
        self.probes.push_back((now, sent, answered.min(sent)));
        self.trim(now);
    }

    fn trim(&mut self, now: Instant) {
        let old = |t: Instant| now.saturating_duration_since(t) > self.window;
        while self.rtts.front().is_some_and(|(t, _)| old(*t)) {
            self.rtts.pop_front();
        }
        // Keep one reading older than the window as the baseline for deltas.
        while self.probes.len() > 1 && self.probes.get(1).is_some_and(|(t, _, _)| old(*t)) {
            self.probes.pop_front();
        }
    }

    /// The window's metrics; `None` until there is an RTT sample.
    pub fn metrics(&mut self, now: Instant) -> Option<Metrics> {
        self.trim(now);
        if self.rtts.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.rtts.iter().map(|(_, r)| *r).collect();
        sorted.sort_by(f64::total_cmp);
        let latency_ms = sorted[sorted.len() / 2];
        let diffs: Vec<f64> = self
            .rtts
            .iter()
            .zip(self.rtts.iter().skip(1))
            .map(|((_, a), (_, b))| (b - a).abs())
            .collect();
        let jitter_ms = if diffs.is_empty() {
            0.0
        } else {
            diffs.iter().sum::<f64>() / diffs.len() as f64
        };
        let packet_loss_percent = match (self.probes.front(), self.probes.back()) {
            (Some(&(_, s0, a0)), Some(&(_, s1, a1))) if s1 > s0 => {
                let sent = (s1 - s0) as f64;
                let answered = a1.saturating_sub(a0) as f64;
                (100.0 * (1.0 - answered / sent)).clamp(0.0, 100.0)
            }
            _ => 0.0,
        };
        Some(Metrics {
            latency_ms,
            packet_loss_percent,
            jitter_ms,
            bandwidth_kbps: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(latency_ms: f64, packet_loss_percent: f64, jitter_ms: f64) -> Metrics {
        Metrics {
            latency_ms,
            packet_loss_percent,
            jitter_ms,
            bandwidth_kbps: None,
        }
    }

    #[test]
    fn the_seeds_example_is_fair() {
        // latency 150 ms, loss 2.5 %, jitter 30 ms -> "fair" in the seeds.
        assert_eq!(m(150.0, 2.5, 30.0).classify(), Quality::Fair);
    }

    #[test]
    fn thresholds() {
        assert_eq!(m(20.0, 0.0, 2.0).classify(), Quality::Good);
        assert_eq!(m(149.0, 1.9, 29.0).classify(), Quality::Good);
        assert_eq!(m(300.0, 5.0, 50.0).classify(), Quality::Fair);
        assert_eq!(
            m(500.0, 10.0, 100.0).classify(),
            Quality::Fair,
            "the poor thresholds are exclusive"
        );
        assert_eq!(m(501.0, 0.0, 0.0).classify(), Quality::Poor);
        assert_eq!(m(10.0, 10.1, 0.0).classify(), Quality::Poor);
        assert_eq!(m(10.0, 0.0, 101.0).classify(), Quality::Poor);
        // 10 % loss and 150 ms delay (the fault-injection case) reads fair or poor, never good.
        assert_ne!(m(300.0, 10.0, 5.0).classify(), Quality::Good);
    }

    #[test]
    fn advice_follows_the_problem() {
        assert!(m(20.0, 0.0, 2.0).recommendations().is_empty());
        let r = m(20.0, 12.0, 2.0).recommendations();
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("lost"));
    }

    #[test]
    fn invalid_metrics_are_recognised() {
        assert!(m(1.0, 0.0, 0.0).is_valid());
        assert!(!m(f64::NAN, 0.0, 0.0).is_valid());
        assert!(!m(1.0, 101.0, 0.0).is_valid());
        assert!(!m(-1.0, 0.0, 0.0).is_valid());
        assert!(!m(f64::INFINITY, 0.0, 0.0).is_valid());
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_clean_path_reads_good() {
        let t0 = Instant::now();
        let mut q = QualityMonitor::default();
        assert!(q.metrics(t0).is_none(), "nothing measured yet");
        for i in 0..10u32 {
            let t = t0 + i * 1000 * MS;
            q.on_rtt(t, (20 + i % 3) * MS);
            q.on_probes(t, u64::from(i) * 2, u64::from(i) * 2);
        }
        let m = q.metrics(t0 + 9 * 1000 * MS).unwrap();
        assert!((m.latency_ms - 21.0).abs() < 1e-9, "{m:?}");
        assert!(m.jitter_ms < 2.0 && m.packet_loss_percent == 0.0, "{m:?}");
        assert_eq!(q.metrics(t0 + 9 * 1000 * MS).unwrap().classify(), Quality::Good);
    }

    #[test]
    fn ten_percent_loss_and_150_ms_reads_fair_or_poor() {
        // What the fault suite applies: a probe and its answer each cross a
        // path with 10 % loss, so about one probe in five goes unanswered.
        let t0 = Instant::now();
        let mut q = QualityMonitor::default();
        let (mut sent, mut answered) = (0, 0);
        for i in 0..100u32 {
            let t = t0 + i * 100 * MS;
            sent += 1;
            if i % 5 != 0 {
                answered += 1;
            }
            q.on_probes(t, sent, answered);
            q.on_rtt(t, (300 + (i % 4) * 10) * MS);
        }
        let m = q.metrics(t0 + 9900 * MS).unwrap();
        assert!((m.packet_loss_percent - 20.0).abs() < 1.5, "{m:?}");
        assert!(m.latency_ms >= 300.0, "{m:?}");
        assert_eq!(m.classify(), Quality::Poor);
    }

    // How long poor must hold before it counts is IceRecovery's business
    // (`ice::tests::poor_quality_held_for_ten_seconds_restarts`).
    #[test]
    fn old_samples_leave_the_window() {
        let t0 = Instant::now();
        let mut q = QualityMonitor::new(Duration::from_secs(10));
        q.on_rtt(t0, 900 * MS);
        assert_eq!(q.metrics(t0).unwrap().classify(), Quality::Poor);
        q.on_rtt(t0 + 9000 * MS, 800 * MS);
        assert_eq!(q.metrics(t0 + 10_000 * MS).unwrap().classify(), Quality::Poor);
        // The path recovers: the old samples age out.
        q.on_rtt(t0 + 20_000 * MS, 30 * MS);
        assert_eq!(q.metrics(t0 + 20_000 * MS).unwrap().classify(), Quality::Good);
    }

    #[test]
    fn counters_that_restart_start_a_new_count() {
        let t0 = Instant::now();
        let mut q = QualityMonitor::default();
        q.on_rtt(t0, 10 * MS);
        q.on_probes(t0, 100, 50);
        q.on_probes(t0 + 1000 * MS, 3, 3); // a new peer connection
        q.on_probes(t0 + 2000 * MS, 5, 5);
        assert_eq!(q.metrics(t0 + 2000 * MS).unwrap().packet_loss_percent, 0.0);
    }
}
