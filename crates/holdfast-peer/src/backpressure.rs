//! Video backpressure for one viewer, as a pure state machine (time passed in).
//!
//! Before each frame the host asks [`VideoGate::admit`] with the `video`
//! channel's outstanding bytes. Above the limit the frame is dropped *before*
//! it is captured or encoded, and the next frame sent must be a keyframe:
//! a viewer that missed a delta frame would otherwise decode garbage until
//! the next IDR. Drops are counted and reported at most once per
//! [`DROP_LOG_INTERVAL`]; every [`QUEUE_CHECK_INTERVAL`] the queue is checked
//! and a warning raised when it is high.
//!
//! The 4 MiB ceiling comes from the seeds. It is a ceiling, not a target: at
//! 4 Mbit/s it is eight seconds of video, so [`QueueLimits::target`] (default
//! half a second at the configured bitrate) is what normally triggers drops,
//! keeping latency low; the ceiling bounds memory whatever the bitrate.

use std::time::{Duration, Instant};

/// The seeds' threshold: never queue more than this on the `video` channel.
pub const VIDEO_QUEUE_CEILING_BYTES: usize = 4 * 1024 * 1024;
/// How often the queue is inspected and a warning logged when high (seed: 5 s).
pub const QUEUE_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Queue level, as a fraction of the active limit, that the periodic check calls high.
pub const QUEUE_HIGH_FRACTION: f64 = 0.5;
/// Shortest interval between two "frames dropped" reports.
pub const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// Smallest queue target: a 1080p keyframe must always fit.
pub const MIN_QUEUE_TARGET_BYTES: usize = 512 * 1024;

/// The limits the gate enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Hard upper bound on queued bytes before a frame is admitted.
    pub ceiling: usize,
    /// Normal operating bound, for latency; `None` uses the ceiling alone.
    pub target: Option<usize>,
}

impl QueueLimits {
    /// The ceiling, plus a target of `latency` worth of video at `bitrate_kbps`.
    pub fn for_bitrate(bitrate_kbps: u32, latency: Duration) -> Self {
        let bytes = (bitrate_kbps as f64 * 1000.0 / 8.0 * latency.as_secs_f64()) as usize;
        QueueLimits {
            ceiling: VIDEO_QUEUE_CEILING_BYTES,
            target: Some(bytes.clamp(MIN_QUEUE_TARGET_BYTES, VIDEO_QUEUE_CEILING_BYTES)),
        }
    }

    /// Only the ceiling (used by tests that exercise the 4 MiB bound itself).
    pub fn ceiling_only(ceiling: usize) -> Self {
        QueueLimits { ceiling, target: None }
    }

    /// The bound in force.
    pub fn active(&self) -> usize {
        self.target.map_or(self.ceiling, |t| t.min(self.ceiling))
    }
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits::for_bitrate(holdfast_media::encode::DEFAULT_BITRATE_KBPS, Duration::from_millis(500))
    }
}

/// The gate's answer for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Capture and send; `keyframe` says it must be an IDR frame.
    Send { keyframe: bool },
    /// Skip this frame for this viewer.
    Drop,
}

/// Something worth logging, produced by the gate at a bounded rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateReport {
    /// `count` frames dropped since the last report; `total` ever.
    Dropped { count: u64, total: u64, queued: usize },
    /// The periodic check found the queue high.
    QueueHigh { queued: usize, limit: usize },
}

#[derive(Debug, Clone)]
pub struct VideoGate {
    limits: QueueLimits,
    need_keyframe: bool,
    dropped_total: u64,
    dropped_unreported: u64,
    last_drop_report: Option<Instant>,
    next_check: Option<Instant>,
    max_queued_seen: usize,
}

impl VideoGate {
    /// A new viewer's gate: its first frame must be a keyframe.
    pub fn new(limits: QueueLimits) -> Self {
        VideoGate {
            limits,
            need_keyframe: true,
            dropped_total: 0,
            dropped_unreported: 0,
            last_drop_report: None,
            next_check: None,
            max_queued_seen: 0,
        }
    }

    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Decides the fate of the next frame given the bytes still queued.
    pub fn admit(&mut self, queued: usize) -> Admission {
        self.max_queued_seen = self.max_queued_seen.max(queued);
        if queued > self.limits.active() {
            self.dropped_total += 1;
            self.dropped_unreported += 1;
            self.need_keyframe = true;
            Admission::Drop
        } else {
            Admission::Send {
                keyframe: self.need_keyframe,
            }
        }
    }

    /// Records that a frame went out; a keyframe satisfies a pending request.
    /// A frame not offered at all because the path is down (the viewer's
    /// connection is not `connected`): counted as a drop like one over the
    /// limit, and the next frame sent is a keyframe.
    pub fn skip(&mut self) -> Admission {
        self.dropped_total += 1;
        self.dropped_unreported += 1;
        self.need_keyframe = true;
        Admission::Drop
    }

    pub fn sent(&mut self, keyframe: bool, queued_after: usize) {
        self.max_queued_seen = self.max_queued_seen.max(queued_after);
        if keyframe {
            self.need_keyframe = false;
        }
    }

    /// The viewer asked for a keyframe (decoder error, loss, fresh decoder).
    pub fn request_keyframe(&mut self) {
        self.need_keyframe = true;
    }

    pub fn needs_keyframe(&self) -> bool {
        self.need_keyframe
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Highest queue level observed (before admission or right after a send).
    pub fn max_queued_seen(&self) -> usize {
        self.max_queued_seen
    }

    /// Rate-limited reports: call on every tick with the current queue level.
    pub fn poll_report(&mut self, now: Instant, queued: usize) -> Option<GateReport> {
        if self.dropped_unreported > 0 && self.last_drop_report.is_none_or(|t| now >= t + DROP_LOG_INTERVAL) {
            self.last_drop_report = Some(now);
            let count = std::mem::take(&mut self.dropped_unreported);
            return Some(GateReport::Dropped {
                count,
                total: self.dropped_total,
                queued,
            });
        }
        let next = *self.next_check.get_or_insert(now + QUEUE_CHECK_INTERVAL);
        if now >= next {
            self.next_check = Some(now + QUEUE_CHECK_INTERVAL);
            let limit = self.limits.active();
            if queued as f64 > limit as f64 * QUEUE_HIGH_FRACTION {
                return Some(GateReport::QueueHigh { queued, limit });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn first_frame_is_a_keyframe_then_deltas() {
        let mut g = VideoGate::new(QueueLimits::ceiling_only(4 * MIB));
        assert_eq!(g.admit(0), Admission::Send { keyframe: true });
        g.sent(true, 100_000);
        assert_eq!(g.admit(100_000), Admission::Send { keyframe: false });
    }

    #[test]
    fn drops_above_the_ceiling_and_demands_a_keyframe_after() {
        let mut g = VideoGate::new(QueueLimits::ceiling_only(4 * MIB));
        g.sent(true, 0);
        assert_eq!(
            g.admit(4 * MIB),
            Admission::Send { keyframe: false },
            "at the limit is still allowed"
        );
        assert_eq!(g.admit(4 * MIB + 1), Admission::Drop);
        assert_eq!(g.admit(5 * MIB), Admission::Drop);
        assert_eq!(g.dropped_total(), 2);
        assert_eq!(g.admit(MIB), Admission::Send { keyframe: true });
        // A delta frame does not clear the debt; only a keyframe does.
        g.sent(false, MIB);
        assert_eq!(g.admit(MIB), Admission::Send { keyframe: true });
        g.sent(true, MIB);
        assert_eq!(g.admit(MIB), Admission::Send { keyframe: false });
    }

    #[test]
    fn target_drops_before_the_ceiling() {
        let limits = QueueLimits::for_bitrate(4000, Duration::from_millis(500));
        // 4 Mbit/s for 0.5 s is 250 kB, below the floor that fits a keyframe.
        assert_eq!(limits.active(), MIN_QUEUE_TARGET_BYTES);
        let mut g = VideoGate::new(limits);
        g.sent(true, 0);
        assert_eq!(g.admit(limits.active() + 1), Admission::Drop);
        let huge = QueueLimits::for_bitrate(1_000_000, Duration::from_secs(1));
        assert_eq!(
            huge.active(),
            VIDEO_QUEUE_CEILING_BYTES,
            "target never exceeds the ceiling"
        );
    }

    #[test]
    fn drop_reports_are_rate_limited_and_carry_counts() {
        let t0 = Instant::now();
        let mut g = VideoGate::new(QueueLimits::ceiling_only(MIB));
        for _ in 0..10 {
            g.admit(2 * MIB);
        }
        assert_eq!(
            g.poll_report(t0, 2 * MIB),
            Some(GateReport::Dropped {
                count: 10,
                total: 10,
                queued: 2 * MIB
            })
        );
        g.admit(2 * MIB);
        assert_eq!(g.poll_report(t0 + Duration::from_millis(500), 2 * MIB), None);
        assert_eq!(
            g.poll_report(t0 + Duration::from_millis(1000), 2 * MIB),
            Some(GateReport::Dropped {
                count: 1,
                total: 11,
                queued: 2 * MIB
            })
        );
    }

    #[test]
    fn periodic_check_warns_only_when_high_and_only_every_five_seconds() {
        let t0 = Instant::now();
        let mut g = VideoGate::new(QueueLimits::ceiling_only(4 * MIB));
        assert_eq!(g.poll_report(t0, 3 * MIB), None, "first call arms the timer");
        assert_eq!(g.poll_report(t0 + Duration::from_secs(4), 3 * MIB), None);
        assert_eq!(
            g.poll_report(t0 + Duration::from_secs(5), 3 * MIB),
            Some(GateReport::QueueHigh {
                queued: 3 * MIB,
                limit: 4 * MIB
            })
        );
        assert_eq!(g.poll_report(t0 + Duration::from_secs(6), 3 * MIB), None);
        assert_eq!(
            g.poll_report(t0 + Duration::from_secs(10), MIB),
            None,
            "low queue: no warning"
        );
        // Minutes of behaviour, driven in microseconds.
        let warnings = (11..600)
            .filter_map(|s| g.poll_report(t0 + Duration::from_secs(s), 3 * MIB))
            .count();
        // At 15, 20, ..., 595 s.
        assert_eq!(warnings, 117);
    }
}
