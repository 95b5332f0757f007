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
//! A queue that has not drained at all for [`STALL_AFTER`] is a dead path (a
//! blackout, a frozen viewer) well before ICE calls it `disconnected` (about
//! 5 s): frames are withheld from it like drops, because everything queued
//! would arrive seconds old when the path returns and be decoded before the
//! first live frame. A slow path that still drains is not stalled.
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
/// The normal queue bound, as time worth of video at the bitrate.
pub const QUEUE_TARGET_LATENCY: Duration = Duration::from_millis(500);
/// Smallest queue target: a 1080p keyframe must always fit.
pub const MIN_QUEUE_TARGET_BYTES: usize = 512 * 1024;
/// A non-empty queue that has not shrunk for this long is stalled. SCTP
/// releases bytes when they are acknowledged, so a live path, however slow,
/// shrinks it several times a second; one retransmission timeout (1 s) is the
/// longest a live path goes without.
pub const STALL_AFTER: Duration = Duration::from_millis(1500);

/// The limits the gate enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Hard upper bound on queued bytes before a frame is admitted.
    pub ceiling: usize,
    /// Normal operating bound, for latency; `None` uses the ceiling alone.
    pub target: Option<usize>,
    /// Withhold frames from a queue that has not drained for this long; `None` never does.
    pub stall_after: Option<Duration>,
}

impl QueueLimits {
    /// The ceiling, plus a target of `latency` worth of video at `bitrate_kbps`.
    pub fn for_bitrate(bitrate_kbps: u32, latency: Duration) -> Self {
        let bytes = (bitrate_kbps as f64 * 1000.0 / 8.0 * latency.as_secs_f64()) as usize;
        QueueLimits {
            ceiling: VIDEO_QUEUE_CEILING_BYTES,
            target: Some(bytes.clamp(MIN_QUEUE_TARGET_BYTES, VIDEO_QUEUE_CEILING_BYTES)),
            stall_after: Some(STALL_AFTER),
        }
    }

    /// Only the ceiling (used by tests that exercise the 4 MiB bound itself).
    pub fn ceiling_only(ceiling: usize) -> Self {
        QueueLimits {
            ceiling,
            target: None,
            stall_after: None,
        }
    }

    /// The bound in force.
    pub fn active(&self) -> usize {
        self.target.map_or(self.ceiling, |t| t.min(self.ceiling))
    }
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits::for_bitrate(holdfast_media::encode::DEFAULT_BITRATE_KBPS, QUEUE_TARGET_LATENCY)
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
    /// The queue stopped draining: frames are withheld until it moves again.
    Stalled { queued: usize },
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
    /// The queue level last seen, and when it last shrank (or was empty).
    level: usize,
    drained_at: Option<Instant>,
    stall_reported: bool,
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
            level: 0,
            drained_at: None,
            stall_reported: false,
        }
    }

    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Records the queue level; call on every tick so drain progress is seen.
    pub fn observe(&mut self, now: Instant, queued: usize) {
        if queued == 0 || queued < self.level || self.drained_at.is_none() {
            self.drained_at = Some(now);
            self.stall_reported = false;
        }
        self.level = queued;
    }

    /// Whether the queue has held bytes without shrinking for the stall limit.
    pub fn stalled(&self, now: Instant) -> bool {
        match (self.limits.stall_after, self.drained_at) {
            (Some(limit), Some(at)) => self.level > 0 && now >= at + limit,
            _ => false,
        }
    }

    /// Decides the fate of the next frame given the bytes still queued.
    pub fn admit(&mut self, now: Instant, queued: usize) -> Admission {
        self.observe(now, queued);
        self.max_queued_seen = self.max_queued_seen.max(queued);
        if queued > self.limits.active() || self.stalled(now) {
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

    /// A frame not offered at all because the path is down (the viewer's
    /// connection is not `connected`): counted as a drop like one over the
    /// limit, and the next frame sent is a keyframe.
    pub fn skip(&mut self) -> Admission {
        self.dropped_total += 1;
        self.dropped_unreported += 1;
        self.need_keyframe = true;
        Admission::Drop
    }

    /// Records that a frame went out; a keyframe satisfies a pending request.
    pub fn sent(&mut self, keyframe: bool, queued_after: usize) {
        self.max_queued_seen = self.max_queued_seen.max(queued_after);
        // Growth by our own send is not a stall; shrinking from here is progress.
        self.level = queued_after;
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
        self.observe(now, queued);
        if !self.stall_reported && self.stalled(now) {
            self.stall_reported = true;
            return Some(GateReport::Stalled { queued });
        }
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

    /// Instants on one time line, in milliseconds.
    fn t(ms: u64) -> Instant {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    fn with_stall() -> QueueLimits {
        QueueLimits {
            ceiling: 4 * MIB,
            target: Some(MIB),
            stall_after: Some(STALL_AFTER),
        }
    }

    #[test]
    fn a_queue_that_stops_draining_is_stalled_and_frames_are_withheld_until_it_moves() {
        let mut g = VideoGate::new(with_stall());
        assert_eq!(g.admit(t(0), 0), Admission::Send { keyframe: true });
        g.sent(true, 200_000);
        // The path goes dark: nothing is acknowledged, the level stays put.
        let mut sent = 0;
        let mut now = 0;
        while now < 1400 {
            now += 66;
            g.observe(t(now), 200_000 + sent * 10_000);
            if let Admission::Send { .. } = g.admit(t(now), 200_000 + sent * 10_000) {
                sent += 1;
                g.sent(false, 200_000 + sent * 10_000);
            }
        }
        assert!(
            sent >= 20,
            "below the limit and before the stall limit frames go out ({sent})"
        );
        assert!(!g.stalled(t(1400)));
        let level = 200_000 + sent * 10_000;
        assert!(g.stalled(t(1400) + STALL_AFTER), "1.5 s without a byte released");
        assert_eq!(
            g.poll_report(t(3000), level),
            Some(GateReport::Stalled { queued: level })
        );
        assert_eq!(g.admit(t(3000), level), Admission::Drop);
        assert_eq!(g.admit(t(3066), level), Admission::Drop);
        assert!(
            !matches!(g.poll_report(t(3100), level), Some(GateReport::Stalled { .. })),
            "one report per stall"
        );
        // The path returns: the queue shrinks, and the next frame is a keyframe.
        assert_eq!(g.admit(t(9000), level - 1), Admission::Send { keyframe: true });
        g.sent(true, level + 100_000);
        assert_eq!(g.admit(t(9066), level), Admission::Send { keyframe: false });
    }

    #[test]
    fn a_slow_path_that_keeps_draining_is_never_stalled() {
        // 2 Mbit/s (250 bytes a millisecond) against frames of 30 kB every 66 ms:
        // the queue grows, but shrinks between frames, so only the byte limit drops.
        let mut g = VideoGate::new(with_stall());
        let (mut level, mut drops, mut stall_reports) = (0usize, 0, 0);
        for ms in (0..600_000u64).step_by(33) {
            level = level.saturating_sub(33 * 250);
            if matches!(g.poll_report(t(ms), level), Some(GateReport::Stalled { .. })) {
                stall_reports += 1;
            }
            assert!(!g.stalled(t(ms)), "stalled at {ms} ms with {level} queued");
            if ms % 66 == 0 {
                match g.admit(t(ms), level) {
                    Admission::Send { .. } => {
                        level += 30_000;
                        g.sent(false, level);
                    }
                    Admission::Drop => drops += 1,
                }
            }
        }
        assert_eq!(stall_reports, 0);
        assert!(drops > 0, "the byte limit still applies");
    }

    #[test]
    fn the_ceiling_only_gate_never_stalls() {
        let mut g = VideoGate::new(QueueLimits::ceiling_only(4 * MIB));
        g.admit(t(0), 0);
        g.sent(true, MIB);
        assert_eq!(g.admit(t(60_000), MIB), Admission::Send { keyframe: false });
        assert!(!g.stalled(t(60_000)));
    }

    #[test]
    fn first_frame_is_a_keyframe_then_deltas() {
        let mut g = VideoGate::new(QueueLimits::ceiling_only(4 * MIB));
        assert_eq!(g.admit(t(0), 0), Admission::Send { keyframe: true });
        g.sent(true, 100_000);
        assert_eq!(g.admit(t(0), 100_000), Admission::Send { keyframe: false });
    }

    #[test]
    fn drops_above_the_ceiling_and_demands_a_keyframe_after() {
        let mut g = VideoGate::new(QueueLimits::ceiling_only(4 * MIB));
        g.sent(true, 0);
        assert_eq!(
            g.admit(t(0), 4 * MIB),
            Admission::Send { keyframe: false },
            "at the limit is still allowed"
        );
        assert_eq!(g.admit(t(0), 4 * MIB + 1), Admission::Drop);
        assert_eq!(g.admit(t(0), 5 * MIB), Admission::Drop);
        assert_eq!(g.dropped_total(), 2);
        assert_eq!(g.admit(t(0), MIB), Admission::Send { keyframe: true });
        // A delta frame does not clear the debt; only a keyframe does.
        g.sent(false, MIB);
        assert_eq!(g.admit(t(0), MIB), Admission::Send { keyframe: true });
        g.sent(true, MIB);
        assert_eq!(g.admit(t(0), MIB), Admission::Send { keyframe: false });
    }

    #[test]
    fn target_drops_before_the_ceiling() {
        let limits = QueueLimits::for_bitrate(4000, Duration::from_millis(500));
        // 4 Mbit/s for 0.5 s is 250 kB, below the floor that fits a keyframe.
        assert_eq!(limits.active(), MIN_QUEUE_TARGET_BYTES);
        let mut g = VideoGate::new(limits);
        g.sent(true, 0);
        assert_eq!(g.admit(t(0), limits.active() + 1), Admission::Drop);
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
            g.admit(t(0), 2 * MIB);
        }
        assert_eq!(
            g.poll_report(t0, 2 * MIB),
            Some(GateReport::Dropped {
                count: 10,
                total: 10,
                queued: 2 * MIB
            })
        );
        g.admit(t(0), 2 * MIB);
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
