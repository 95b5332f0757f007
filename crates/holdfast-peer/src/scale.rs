//! Which size the host encodes the screen at, pure: big changes of the
//! screen (a new page, a keyframe) must reach the viewer within
//! [`BIG_FRAME_BUDGET`] over the slowest watching viewer's path, so the
//! picture is scaled down when, at its current size, they would not.
//!
//! What it knows:
//! - how big a big change is: the biggest frame of the recent past, per pixel
//!   of the screen (a frame at half size counts four times its bytes), so
//!   sizes measured at one scale predict another. It fades only as frames
//!   are sent (a static screen keeps it: the first change after a quiet
//!   minute is as big as before it), and starts from a prior of a busy
//!   screen's keyframe;
//! - what the path carries a big frame at (the rate controller's capacity);
//! - how big a keyframe is, per pixel of the screen (the last one): a new
//!   size starts with one, and on busy content it is several times a page
//!   switch coded against the previous picture.
//!
//! What it decides: the largest [`Scale`] whose big change fits the budget.
//! It goes down at once (a late picture is the failure this prevents), and
//! up only after [`UP_HOLD`], on the least capacity of the last
//! [`UP_WINDOW`] (a shaped link's estimate swings while SCTP recovers from
//! its drops), with room to spare ([`UP_MARGIN`]), and if the
//! keyframe the new size starts with fits the budget too: measured on this
//! content, page switches at a quarter of the area were a third of the
//! keyframe, and counting them alone took the size up and straight back down.
//! Nor up while the path is behind: if the oldest byte the viewer has not
//! acknowledged was due more than [`BIG_FRAME_BUDGET`] ago
//! ([`ScalePolicy::handle_overdue`]), the capacity is out of date, and for
//! [`UP_WINDOW`] after that no bigger size is tried. A link that falls from
//! 8 Mbit/s to 500 kbit/s under a queue of small frames shows it within a
//! second in this wall-clock age, while the capacity still reads 8 Mbit/s:
//! a step up then put a 300 KB keyframe into a 500 kbit/s path, and the
//! picture stood still for 6 s behind it.
//!
//! The start: nothing is known of the path but the rate controller's start
//! estimate. The first picture is made small enough to arrive within
//! [`FIRST_PICTURE_BUDGET`] at it, so the viewer sees the screen at once
//! (over 1 Mbit/s a 1080p page is 3 s, a quarter-size one 0.2 s); the next
//! frame is the probe: a keyframe at the largest size that takes at most
//! [`FIRST_PROBE_BUDGET`] at the start estimate. A big frame on an idle
//! channel is what the rate controller measures a path's burst capacity by,
//! so after it the size follows the path as above (a fast path goes on to
//! full size, a slow one back down).
//!
//! It also picks the encoder's tuning by the same capacity
//! ([`ScalePolicy::tuning`]): on a path fast enough that the host's CPU,
//! not the path, limits, OpenH264's camera tuning encodes in half the time;
//! elsewhere its screen-content tuning's smaller frames win.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use holdfast_media::encode::Tuning;
use holdfast_media::Scale;

/// How long the biggest change may take on the path (the acceptance aims at
/// a change shown within 400 ms: this leaves the round trip and decoding).
pub const BIG_FRAME_BUDGET: Duration = Duration::from_millis(250);
/// The first picture, sent before anything was measured, may take this long
/// at the start estimate.
pub const FIRST_PICTURE_BUDGET: Duration = Duration::from_millis(250);
/// The probe right after it: a keyframe that takes at most this long at the
/// start estimate.
pub const FIRST_PROBE_BUDGET: Duration = Duration::from_millis(1000);
/// A size is kept at least this long before a bigger one is tried.
pub const UP_HOLD: Duration = Duration::from_secs(2);
/// A bigger size is judged by the least capacity seen over this window.
pub const UP_WINDOW: Duration = Duration::from_secs(3);
/// A bigger size is taken only if its big change fits this share of the budget.
pub const UP_MARGIN: f64 = 0.6;
/// A busy screen's keyframe, bytes per pixel of the screen (1080p pages of
/// text over a photo: 370-450 KB, docs/benchmarks.md), before any was measured.
pub const PRIOR_BYTES_PER_PIXEL: f64 = 0.2;
/// A change of at least this share of the screen is coded as a keyframe
/// where the path carries one within the budget
/// ([`ScalePolicy::keyframe_above_change`]).
pub const KEYFRAME_CHANGE_SHARE: f64 = 0.2;
/// A lane whose path carries at least this is coded with OpenH264's camera
/// tuning ([`ScalePolicy::tuning`]): there the host's CPU, not the path,
/// is what limits, and the camera tuning encodes a scrolling 1080p screen
/// in half the time for 10-30 % more bytes (docs/benchmarks.md). Below
/// [`SCREEN_BELOW_BPS`] the screen-content tuning's smaller frames are
/// worth more: its keyframes are a half to two thirds the size.
pub const MOTION_ABOVE_BPS: f64 = 20_000_000.0;
/// A lane coded with the camera tuning goes back to the screen-content
/// tuning, at once, when its path carries less than this.
pub const SCREEN_BELOW_BPS: f64 = 10_000_000.0;
/// The camera tuning is taken only this long after the last change of
/// tuning (each change is a new encoder: a keyframe).
pub const TUNING_HOLD: Duration = Duration::from_secs(5);
/// Each frame sent fades the remembered big change by this factor (about
/// 200 frames, 8 s of a busy screen, to a third).
const FADE_PER_FRAME: f64 = 0.995;

/// Where the policy is in its start (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Nothing decided yet.
    Fresh,
    /// The first picture's size was decided; it is being encoded.
    FirstPicture,
    /// The first picture was encoded: the next decision is the probe.
    Probe,
    /// The path is measured as it goes.
    Done,
}

#[derive(Debug, Clone)]
pub struct ScalePolicy {
    scale: Scale,
    /// The biggest recent change, bytes per pixel of the screen.
    big_per_pixel: f64,
    /// The last keyframe, bytes per pixel of the screen.
    key_per_pixel: f64,
    /// The screen's pixels (the display size).
    screen_pixels: f64,
    /// A frame was encoded since the policy started.
    measured: bool,
    start: Start,
    changed_at: Option<Instant>,
    changes: u64,
    /// Capacities decided on over the last [`UP_WINDOW`].
    capacities: VecDeque<(Instant, f64)>,
    /// When the path was last seen behind ([`ScalePolicy::handle_overdue`]).
    behind_at: Option<Instant>,
    tuning: Tuning,
    tuning_changed_at: Option<Instant>,
}

impl Default for ScalePolicy {
    fn default() -> Self {
        ScalePolicy::new()
    }
}

impl ScalePolicy {
    pub fn new() -> Self {
        ScalePolicy {
            scale: Scale::FULL,
            big_per_pixel: PRIOR_BYTES_PER_PIXEL,
            key_per_pixel: PRIOR_BYTES_PER_PIXEL,
            screen_pixels: 0.0,
            measured: false,
            start: Start::Fresh,
            changed_at: None,
            changes: 0,
            capacities: VecDeque::new(),
            behind_at: None,
            tuning: Tuning::Screen,
            tuning_changed_at: None,
        }
    }

    /// A new policy for a screen of `width` x `height`.
    pub fn for_screen(width: u32, height: u32) -> Self {
        let mut p = ScalePolicy::new();
        p.handle_screen(width, height);
        p
    }

    /// The scale decided last.
    pub fn scale(&self) -> Scale {
        self.scale
    }

    /// How many times the scale changed (each a keyframe at the new size).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The biggest recent change at full size, bytes (for stats).
    pub fn big_change_bytes(&self) -> u64 {
        (self.big_per_pixel * self.screen_pixels).round() as u64
    }

    /// The screen is `width` x `height` (before the first frame, and when the display changes).
    pub fn handle_screen(&mut self, width: u32, height: u32) {
        self.screen_pixels = width as f64 * height as f64;
    }

    /// How long ago the oldest byte the lane's slowest viewer has not
    /// acknowledged was due ([`crate::rate::RateControl::overdue`]). More
    /// than [`BIG_FRAME_BUDGET`] says the path carries less than its capacity
    /// reads: no bigger size for [`UP_WINDOW`].
    pub fn handle_overdue(&mut self, now: Instant, overdue: Duration) {
        if overdue > BIG_FRAME_BUDGET {
            self.behind_at = Some(now);
        }
    }

    /// The viewers this size is decided for changed (a slow one left for
    /// another encoder): the capacities seen so far were theirs, so going
    /// up no longer waits for them to age out. What frames cost is kept.
    pub fn handle_viewers_changed(&mut self) {
        self.capacities.clear();
        self.changed_at = None;
        self.behind_at = None;
    }

    /// A frame of `bytes` (a keyframe or not) was encoded at `coded` pixels
    /// for a screen of `display` pixels.
    pub fn handle_encoded(&mut self, bytes: usize, keyframe: bool, coded: (u32, u32), display: (u32, u32)) {
        let coded_px = coded.0 as f64 * coded.1 as f64;
        let display_px = display.0 as f64 * display.1 as f64;
        if coded_px <= 0.0 || display_px <= 0.0 {
            return;
        }
        self.screen_pixels = display_px;
        // Bytes per coded pixel is the same per screen pixel at full size.
        let per_pixel = bytes as f64 / coded_px;
        if keyframe {
            self.key_per_pixel = per_pixel;
        }
        if self.start == Start::FirstPicture {
            self.start = Start::Probe;
        }
        if self.measured {
            self.big_per_pixel = (self.big_per_pixel * FADE_PER_FRAME).max(per_pixel);
        } else {
            self.big_per_pixel = per_pixel;
            self.measured = true;
        }
    }

    /// How long the big change takes at `scale` over `capacity_bps`.
    pub fn big_change_time(&self, scale: Scale, capacity_bps: f64) -> Duration {
        self.time_of(self.big_per_pixel, scale, capacity_bps)
    }

    /// Whether big changes are coded as keyframes over a path of
    /// `capacity_bps` (the lane's slowest), and from which share of the
    /// screen: where a keyframe at the current size fits [`BIG_FRAME_BUDGET`].
    ///
    /// OpenH264 codes a page switch as a P-frame at 960x540 and above, and
    /// its motion search over a page that matches nothing is what the change
    /// waits for: 110-215 ms at 1080p against 36-74 ms for a keyframe ~100 KB
    /// bigger, 40-59 ms at 960x540 against 22-40 ms for a keyframe *smaller*
    /// than the P-frame (76-102 KB against 117-127 KB; docs/benchmarks.md).
    /// Below that size its scene-change detection makes page switches
    /// keyframes anyway. Just after a path slowed, before the size follows,
    /// a keyframe would not fit: the frame stays a P-frame.
    pub fn keyframe_above_change(&self, capacity_bps: f64) -> Option<f64> {
        (self.keyframe_time(self.scale, capacity_bps) <= BIG_FRAME_BUDGET).then_some(KEYFRAME_CHANGE_SHARE)
    }

    /// The tuning decided last.
    pub fn current_tuning(&self) -> Tuning {
        self.tuning
    }

    /// The encoder's tuning over a path of `capacity_bps` (the lane's
    /// slowest): the camera tuning from [`MOTION_ABOVE_BPS`] (after
    /// [`TUNING_HOLD`]), back to the screen-content one below
    /// [`SCREEN_BELOW_BPS`] at once.
    pub fn tuning(&mut self, now: Instant, capacity_bps: f64) -> Tuning {
        let next = match self.tuning {
            Tuning::Screen
                if capacity_bps >= MOTION_ABOVE_BPS
                    && self
                        .tuning_changed_at
                        .is_none_or(|t| now.saturating_duration_since(t) >= TUNING_HOLD) =>
            {
                Tuning::Motion
            }
            Tuning::Motion if capacity_bps < SCREEN_BELOW_BPS => Tuning::Screen,
            t => t,
        };
        if next != self.tuning {
            tracing::info!(
                from = ?self.tuning,
                to = ?next,
                capacity_kbps = (capacity_bps / 1000.0).round(),
                "encoding with another tuning"
            );
            self.tuning = next;
            self.tuning_changed_at = Some(now);
        }
        self.tuning
    }

    /// How long a keyframe takes at `scale` over `capacity_bps`.
    pub fn keyframe_time(&self, scale: Scale, capacity_bps: f64) -> Duration {
        self.time_of(self.key_per_pixel, scale, capacity_bps)
    }

    fn time_of(&self, per_pixel: f64, scale: Scale, capacity_bps: f64) -> Duration {
        let bytes = per_pixel * self.screen_pixels * scale.area();
        Duration::from_secs_f64((bytes * 8.0 / capacity_bps.max(1.0)).min(3600.0))
    }

    /// The scale for the next frame, over a path that carries a big frame
    /// at `capacity_bps` (the slowest watching viewer's).
    pub fn decide(&mut self, now: Instant, capacity_bps: f64) -> Scale {
        let budget = if self.measured {
            BIG_FRAME_BUDGET
        } else {
            FIRST_PICTURE_BUDGET
        };
        let probe = match self.start {
            Start::Fresh if !self.measured => {
                self.start = Start::FirstPicture;
                None
            }
            Start::Probe => {
                self.start = Start::Done;
                Scale::LADDER
                    .into_iter()
                    .find(|s| self.keyframe_time(*s, capacity_bps) <= FIRST_PROBE_BUDGET)
            }
            // Frames were measured before any decision (a policy handed
            // over): nothing to probe.
            Start::Fresh => {
                self.start = Start::Done;
                None
            }
            Start::FirstPicture | Start::Done => None,
        };
        self.capacities.push_back((now, capacity_bps));
        while self
            .capacities
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > UP_WINDOW)
        {
            self.capacities.pop_front();
        }
        let sustained = self.capacities.iter().map(|(_, c)| *c).fold(capacity_bps, f64::min);
        let fits = |s: Scale, share: f64, capacity: f64| {
            self.big_change_time(s, capacity).as_secs_f64() <= budget.as_secs_f64() * share
        };
        // The largest that fits, or the smallest there is.
        let best = Scale::LADDER
            .into_iter()
            .find(|s| fits(*s, 1.0, capacity_bps))
            .unwrap_or(Scale::step(usize::MAX));
        let current = self.scale.index();
        let next = if let Some(probe) = probe.filter(|p| p.index() < current) {
            // The probe is meant to take longer than the budget: it is the
            // measurement the budget will be judged by.
            probe
        } else if best.index() > current {
            best
        } else if best.index() < current
            && self
                .changed_at
                .is_none_or(|t| now.saturating_duration_since(t) >= UP_HOLD)
            && self
                .behind_at
                .is_none_or(|t| now.saturating_duration_since(t) >= UP_WINDOW)
        {
            // Up to the largest whose big change and first keyframe both fit
            // with room to spare, if any is larger than now. The keyframe
            // needs the room too: a big change of the screen is coded as one
            // where it fits (`keyframe_above_change`), so it is the size's
            // next big change as well, and one that only just fits took the
            // size up and back down within a second (8 Mbit/s, 1/2 -> 3/4).
            Scale::LADDER[..current]
                .iter()
                .copied()
                .find(|s| {
                    fits(*s, UP_MARGIN, sustained)
                        && self.keyframe_time(*s, sustained).as_secs_f64() <= budget.as_secs_f64() * UP_MARGIN
                })
                .unwrap_or(self.scale)
        } else {
            self.scale
        };
        if next != self.scale {
            tracing::info!(
                from = %self.scale,
                to = %next,
                capacity_kbps = (capacity_bps / 1000.0).round(),
                big_change_kb = self.big_change_bytes() / 1000,
                "encoding the screen at another size"
            );
            self.scale = next;
            self.changed_at = Some(now);
            self.changes += 1;
        }
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: (u32, u32) = (1920, 1080);

    fn policy() -> ScalePolicy {
        let mut p = ScalePolicy::new();
        p.handle_screen(SCREEN.0, SCREEN.1);
        p
    }

    /// Encodes a frame of `full_bytes` (at full size) at the policy's scale.
    fn encode(p: &mut ScalePolicy, full_bytes: f64) {
        encode_as(p, full_bytes, false);
    }

    /// Decides every 100 ms for a whole [`UP_WINDOW`] (and a little) after
    /// `t` at `capacity_bps`; the time it ends at.
    fn hold(p: &mut ScalePolicy, mut t: Instant, capacity_bps: f64) -> Instant {
        let until = t + UP_WINDOW + Duration::from_millis(100);
        while t < until {
            t += Duration::from_millis(100);
            p.decide(t, capacity_bps);
        }
        t
    }

    fn encode_as(p: &mut ScalePolicy, full_bytes: f64, keyframe: bool) {
        let coded = p.scale().apply(SCREEN.0, SCREEN.1);
        let bytes = full_bytes * p.scale().area();
        p.handle_encoded(bytes as usize, keyframe, coded, SCREEN);
    }

    #[test]
    fn the_first_picture_is_small_and_the_next_frame_probes_the_start_estimate() {
        let t = Instant::now();
        // 1 Mbit/s before anything is measured: a 415 KB prior keyframe
        // takes 3.3 s at full size, 0.83 s at half, 0.21 s at a quarter.
        let mut p = policy();
        assert_eq!(p.decide(t, 1_000_000.0), Scale::step(4));
        assert_eq!(
            p.decide(t, 1_000_000.0),
            Scale::step(4),
            "no probe before the first picture is made"
        );
        encode_as(&mut p, 415_000.0, true);
        // The probe: the largest whose keyframe takes at most a second.
        assert_eq!(p.decide(t + Duration::from_millis(200), 1_000_000.0), Scale::step(2));
        // After it, the path as measured decides: still 1 Mbit/s, so down at once.
        encode_as(&mut p, 415_000.0, true);
        assert_eq!(p.decide(t + Duration::from_millis(1100), 1_000_000.0), Scale::step(4));
        assert_eq!(
            p.decide(t + Duration::from_secs(30), 1_000_000.0),
            Scale::step(4),
            "probed once"
        );
        // A path measured fast by then goes on up.
        let mut p = policy();
        p.decide(t, 1_000_000.0);
        encode_as(&mut p, 415_000.0, true);
        assert_eq!(p.decide(t, 1_000_000.0), Scale::step(2));
        encode_as(&mut p, 415_000.0, true);
        let later = t + UP_WINDOW + Duration::from_millis(100);
        assert_eq!(
            p.decide(later, 100_000_000.0),
            Scale::FULL,
            "once the start estimate left the window"
        );
        // A simple screen (small keyframes): the probe is the full size at
        // once, without waiting for the hold.
        let mut p = policy();
        p.decide(t, 1_000_000.0);
        encode_as(&mut p, 6_000.0, true);
        assert_eq!(p.decide(t + Duration::from_millis(40), 1_000_000.0), Scale::FULL);
        // A fast start estimate: full size from the first picture.
        assert_eq!(policy().decide(t, 100_000_000.0), Scale::FULL);
        // A slow one: the probe never goes below the first picture.
        let mut p = policy();
        assert_eq!(p.decide(t, 200_000.0), Scale::step(4));
        encode_as(&mut p, 415_000.0, true);
        assert_eq!(p.decide(t, 200_000.0), Scale::step(4));
    }

    #[test]
    fn the_camera_tuning_is_for_fast_paths_only() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = policy();
        assert_eq!(p.tuning(at(0), 1_000_000.0), Tuning::Screen, "the start");
        assert_eq!(p.tuning(at(100), 8_000_000.0), Tuning::Screen);
        assert_eq!(p.tuning(at(200), 19_000_000.0), Tuning::Screen);
        assert_eq!(p.tuning(at(300), 25_000_000.0), Tuning::Motion, "a LAN");
        // Between the two thresholds it stays what it is, either way.
        assert_eq!(p.tuning(at(400), 15_000_000.0), Tuning::Motion);
        assert_eq!(p.tuning(at(500), 9_000_000.0), Tuning::Screen, "down at once");
        assert_eq!(p.tuning(at(600), 15_000_000.0), Tuning::Screen);
        // Back up only after the hold (each change is a keyframe).
        assert_eq!(p.tuning(at(700), 100_000_000.0), Tuning::Screen);
        assert_eq!(p.tuning(at(500) + TUNING_HOLD, 100_000_000.0), Tuning::Motion);
    }

    #[test]
    fn a_fast_path_keeps_the_full_size() {
        let t = Instant::now();
        let mut p = policy();
        for i in 0..100 {
            encode(&mut p, 400_000.0);
            assert_eq!(p.decide(t + Duration::from_millis(40 * i), 200_000_000.0), Scale::FULL);
        }
    }

    #[test]
    fn a_slow_path_scales_down_at_once_and_back_up_when_it_is_fast_again() {
        let t0 = Instant::now();
        let mut p = policy();
        encode_as(&mut p, 300_000.0, true);
        assert_eq!(p.decide(t0, 50_000_000.0), Scale::FULL);
        // 500 kbit/s: 300 KB at full size is 4.8 s; at a quarter, 0.3 s; at
        // a ninth 0.53 s, a sixteenth 0.3 s: only the smallest fits... nearly.
        let slow = p.decide(t0 + Duration::from_millis(100), 500_000.0);
        assert_eq!(slow, Scale::step(4));
        assert!(
            p.big_change_time(slow, 500_000.0) > BIG_FRAME_BUDGET,
            "the smallest, even if it does not fit"
        );
        // 2 Mbit/s: 300 KB/9 = 33 KB is 133 ms: a third.
        let t1 = t0 + Duration::from_millis(200);
        encode(&mut p, 300_000.0);
        assert_eq!(p.decide(t1, 2_000_000.0), Scale::step(4), "held: too soon to go up");
        let t2 = t0 + UP_HOLD + Duration::from_millis(200);
        assert_eq!(
            p.decide(t2, 2_000_000.0),
            Scale::step(4),
            "500 kbit/s was seen within the window"
        );
        let t3 = t0 + UP_WINDOW + Duration::from_millis(200);
        assert_eq!(p.decide(t3, 2_000_000.0), Scale::step(3), "up, with room to spare");
        // Fast again: straight to the full size once the path has shown it
        // for the window.
        assert_eq!(
            p.decide(t3 + UP_HOLD, 100_000_000.0),
            Scale::step(3),
            "2 Mbit/s within the window"
        );
        assert_eq!(
            p.decide(t3 + UP_WINDOW + Duration::from_millis(20), 100_000_000.0),
            Scale::FULL
        );
    }

    /// The path read 8 Mbit/s and its capacity still does, but what was
    /// sent a second ago has not arrived: no bigger size (its keyframe would
    /// queue behind it) until the path has kept up for a whole window.
    #[test]
    fn a_path_that_is_behind_is_not_given_a_bigger_size() {
        let fast = 12_000_000.0;
        // 2 Mbit/s (a third of each side), then a window at 12 Mbit/s during
        // which the path is found `overdue` once, a second into it.
        let run = |overdue: Duration| {
            let t0 = Instant::now();
            let mut p = policy();
            encode_as(&mut p, 300_000.0, true);
            assert_eq!(p.decide(t0, 2_000_000.0), Scale::step(3));
            encode(&mut p, 300_000.0);
            let t1 = hold(&mut p, t0, 2_000_000.0);
            let mut t = t1;
            while t < t1 + UP_WINDOW + Duration::from_millis(200) {
                t += Duration::from_millis(100);
                let reading = if t == t1 + Duration::from_secs(1) {
                    overdue
                } else {
                    Duration::ZERO
                };
                p.handle_overdue(t, reading);
                p.decide(t, fast);
            }
            (p, t)
        };
        let (p, _) = run(BIG_FRAME_BUDGET);
        assert!(p.scale().index() < 3, "up, nothing beyond the budget: {:?}", p.scale());

        let (mut p, t) = run(Duration::from_millis(400));
        assert_eq!(p.scale(), Scale::step(3), "held: behind within the window");
        let mut up = p.scale();
        for i in 1..=10 {
            up = p.decide(t + Duration::from_millis(100) * i, fast);
        }
        assert!(up.index() < 3, "up a window after the path was behind: {up:?}");
        // Down is never held back.
        let t = t + Duration::from_secs(2);
        p.handle_overdue(t, Duration::from_secs(1));
        assert_eq!(p.decide(t, 500_000.0), Scale::step(4));
    }

    #[test]
    fn when_the_slow_viewer_leaves_the_size_goes_up_at_once() {
        let t0 = Instant::now();
        let mut p = policy();
        encode_as(&mut p, 300_000.0, true);
        assert_eq!(p.decide(t0, 500_000.0), Scale::step(4));
        encode(&mut p, 300_000.0);
        // The 500 kbit/s viewer went to another encoder: only fast paths are left.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(
            p.decide(t1, 100_000_000.0),
            Scale::step(4),
            "the slow path is still in the window"
        );
        p.handle_viewers_changed();
        assert_eq!(p.decide(t1, 100_000_000.0), Scale::FULL);
        assert_eq!(p.big_change_bytes(), 300_000, "what a change costs is kept");
    }

    #[test]
    fn a_static_screen_does_not_forget_how_big_a_change_is() {
        let t0 = Instant::now();
        let mut p = policy();
        // A simple screen's keyframe (15 KB: 120 ms at 1 Mbit/s, within the
        // room an up-switch needs), then a big change.
        encode_as(&mut p, 15_000.0, true);
        encode(&mut p, 300_000.0);
        assert_eq!(p.decide(t0, 1_000_000.0), Scale::step(4));
        // A quiet minute: nothing encoded, the decision does not creep up.
        for s in 1..=60 {
            assert_eq!(p.decide(t0 + Duration::from_secs(s), 1_000_000.0), Scale::step(4));
        }
        // Small changes (a cursor, a line of text) do fade it, slowly.
        let mut t = t0 + Duration::from_secs(61);
        for _ in 0..2_000 {
            encode(&mut p, 2_000.0);
            t += Duration::from_millis(40);
            p.decide(t, 1_000_000.0);
        }
        assert_eq!(
            p.scale(),
            Scale::FULL,
            "a screen that stays calm earns its full size back"
        );
    }

    #[test]
    fn a_size_is_not_taken_if_its_first_keyframe_would_be_late() {
        let t0 = Instant::now();
        let mut p = policy();
        // Keyframes of 440 KB at full size, page switches of a third of that.
        encode_as(&mut p, 440_000.0, true);
        assert_eq!(p.decide(t0, 1_000_000.0), Scale::step(4));
        let mut t = t0;
        for _ in 0..600 {
            encode(&mut p, 150_000.0);
            t += Duration::from_millis(60);
            // At 1 Mbit/s a third's page switch (17 KB, 133 ms) would fit
            // with room to spare, but its keyframe (49 KB, 391 ms) would not.
            assert_eq!(p.decide(t, 1_000_000.0), Scale::step(4), "at {:?}", t - t0);
        }
        // At 2 Mbit/s the keyframe fits the budget (196 ms) but not with room
        // to spare: page switches are keyframes where they fit, so it would be
        // the next big change, and take the size straight back down.
        t = hold(&mut p, t, 2_000_000.0);
        assert_eq!(p.scale(), Scale::step(4));
        // At 3 Mbit/s it does (131 ms), once the path has shown it for the window.
        hold(&mut p, t, 3_000_000.0);
        assert_eq!(p.scale(), Scale::step(3));
    }

    #[test]
    fn big_changes_are_keyframes_where_a_keyframe_fits_the_budget() {
        let t = Instant::now();
        let mut p = policy();
        // A 380 KB keyframe at full size: 36 ms at 85 Mbit/s, 760 ms at 4.
        encode_as(&mut p, 380_000.0, true);
        assert_eq!(p.decide(t, 85_000_000.0), Scale::FULL);
        encode_as(&mut p, 380_000.0, true);
        assert_eq!(p.decide(t, 85_000_000.0), Scale::FULL);
        assert_eq!(p.keyframe_above_change(85_000_000.0), Some(KEYFRAME_CHANGE_SHARE));
        assert_eq!(
            p.keyframe_above_change(4_000_000.0),
            None,
            "a slowed path, still at full size"
        );
        // At half size the same screen's keyframe is 95 KB: 190 ms at 4 Mbit/s.
        assert_eq!(p.decide(t, 4_000_000.0), Scale::step(2));
        assert_eq!(p.keyframe_above_change(4_000_000.0), Some(KEYFRAME_CHANGE_SHARE));
        assert_eq!(p.keyframe_above_change(500_000.0), None);
    }

    #[test]
    fn bytes_measured_at_one_scale_predict_another() {
        let mut p = policy();
        // A 25 KB frame at half size is 100 KB of full-size picture.
        p.handle_encoded(25_000, true, (960, 540), SCREEN);
        assert_eq!(p.big_change_bytes(), 100_000);
        let t = p.big_change_time(Scale::FULL, 8_000_000.0);
        assert!(
            t.abs_diff(Duration::from_millis(100)) < Duration::from_micros(10),
            "{t:?}"
        );
        assert_eq!(p.keyframe_time(Scale::FULL, 8_000_000.0), t);
        // Nonsense sizes are ignored.
        p.handle_encoded(1, true, (0, 0), SCREEN);
        assert_eq!(p.big_change_bytes(), 100_000);
    }
}
