//! Connection quality, classified good / fair / poor from latency, loss and
//! jitter (from WebRTC statistics and the keepalive), with advice for the
//! user. "Poor" is the seeds' trigger for a restart: loss over 10 % or RTT
//! over 500 ms (or jitter over 100 ms, which makes video unwatchable).

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
}
