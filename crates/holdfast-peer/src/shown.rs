//! Capture-to-screen times from a viewer's `frame-shown` acknowledgements.
//!
//! The viewer's own figure (capture to decoded, on its clock against the
//! host's capture stamp) leaves out what happens after decoding and trusts the
//! two clocks to agree. Here the host measures on its own clock: a frame's
//! capture time is noted when it goes out, and when the viewer says it drew it
//! `after_ms` after its last byte arrived, the time from capture to the ack's
//! arrival, less the ack's own way back (half the keepalive round-trip floor),
//! is the capture-to-screen time. Pure: times are passed in.

use std::collections::VecDeque;
use std::time::Duration;

use thiserror::Error;

/// Frames remembered for matching acknowledgements (4 s at 30 fps).
const SENT_REMEMBERED: usize = 128;
/// Capture-to-screen times the figures are taken over (4 s at 30 fps).
const SAMPLES_KEPT: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShownFigures {
    pub p50_ms: u32,
    pub p95_ms: u32,
    pub samples: usize,
}

/// Why an acknowledgement was not taken (it changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ShownError {
    #[error("frame {0} was not sent to this viewer recently")]
    Unknown(u32),
    #[error("frame {0} was already acknowledged")]
    Repeated(u32),
    #[error("frame {0} cannot have waited {1} ms: it was captured later than that")]
    Impossible(u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    frame: u32,
    capture_us: u64,
    acked: bool,
}

#[derive(Debug, Default)]
pub struct ShownTracker {
    sent: VecDeque<Sent>,
    samples: VecDeque<u32>,
    /// Samples taken since the last report.
    unreported: usize,
}

impl ShownTracker {
    /// Frame `frame`, captured at `capture_us` (Unix µs), went out.
    pub fn on_sent(&mut self, frame: u32, capture_us: u64) {
        if self.sent.len() == SENT_REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back(Sent {
            frame,
            capture_us,
            acked: false,
        });
    }

    /// The viewer drew `frame` `after_ms` after it arrived; the ack arrived at
    /// `now_us`. `rtt_floor` is the least recent keepalive round trip.
    /// Returns the capture-to-screen time taken.
    pub fn on_shown(
        &mut self,
        now_us: u64,
        frame: u32,
        after_ms: u32,
        rtt_floor: Option<Duration>,
    ) -> Result<Duration, ShownError> {
        let sent = self
            .sent
            .iter_mut()
            .rev()
            .find(|s| s.frame == frame)
            .ok_or(ShownError::Unknown(frame))?;
        if sent.acked {
            return Err(ShownError::Repeated(frame));
        }
        let since_capture = Duration::from_micros(now_us.saturating_sub(sent.capture_us));
        let held = Duration::from_millis(after_ms.into());
        if held > since_capture {
            return Err(ShownError::Impossible(frame, after_ms));
        }
        sent.acked = true;
        let way_back = rtt_floor.unwrap_or_default() / 2;
        let shown = since_capture.saturating_sub(way_back).max(held);
        if self.samples.len() == SAMPLES_KEPT {
            self.samples.pop_front();
        }
        self.samples
            .push_back(u32::try_from(shown.as_millis()).unwrap_or(u32::MAX));
        self.unreported += 1;
        Ok(shown)
    }

    /// Median and 95th percentile of the recent capture-to-screen times.
    pub fn figures(&self) -> Option<ShownFigures> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<u32> = self.samples.iter().copied().collect();
        v.sort_unstable();
        let at = |p: f64| v[((p * v.len() as f64) as usize).min(v.len() - 1)];
        Some(ShownFigures {
            p50_ms: at(0.5),
            p95_ms: at(0.95),
            samples: v.len(),
        })
    }

    /// The figures, if acknowledgements came in since the last call: what a
    /// periodic report to the viewer carries.
    pub fn report(&mut self) -> Option<ShownFigures> {
        if std::mem::take(&mut self.unreported) == 0 {
            return None;
        }
        self.figures()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    #[test]
    fn capture_to_screen_is_measured_on_the_hosts_clock_less_the_way_back() {
        let mut t = ShownTracker::default();
        t.on_sent(0, 1_000 * MS);
        t.on_sent(1, 1_033 * MS);
        // Acked 120 ms after capture, with a 40 ms round trip: 100 ms.
        let shown = t.on_shown(1_120 * MS, 0, 15, Some(Duration::from_millis(40))).unwrap();
        assert_eq!(shown, Duration::from_millis(100));
        // No round trip known yet: the whole time counts.
        assert_eq!(t.on_shown(1_133 * MS, 1, 5, None).unwrap(), Duration::from_millis(100));
        let f = t.figures().unwrap();
        assert_eq!((f.p50_ms, f.p95_ms, f.samples), (100, 100, 2));
    }

    #[test]
    fn bad_acks_are_refused_and_change_nothing() {
        let mut t = ShownTracker::default();
        t.on_sent(7, 1_000 * MS);
        assert_eq!(t.on_shown(1_100 * MS, 8, 0, None), Err(ShownError::Unknown(8)));
        // Held longer than the frame has existed: a lie or a broken clock.
        assert_eq!(
            t.on_shown(1_100 * MS, 7, 500, None),
            Err(ShownError::Impossible(7, 500))
        );
        assert!(t.figures().is_none(), "nothing taken");
        t.on_shown(1_100 * MS, 7, 10, None).unwrap();
        assert_eq!(t.on_shown(1_200 * MS, 7, 10, None), Err(ShownError::Repeated(7)));
        assert_eq!(t.figures().unwrap().samples, 1);
    }

    #[test]
    fn only_recent_frames_and_samples_are_kept() {
        let mut t = ShownTracker::default();
        for id in 0..1_000u32 {
            t.on_sent(id, u64::from(id) * 33 * MS);
        }
        assert_eq!(t.on_shown(40_000 * MS, 0, 0, None), Err(ShownError::Unknown(0)));
        for id in 900..1_000u32 {
            // The later frames took longer: 50 ms then 200 ms.
            let took = if id < 950 { 50 } else { 200 };
            t.on_shown(u64::from(id) * 33 * MS + took * MS, id, 1, None).unwrap();
        }
        let f = t.figures().unwrap();
        assert_eq!((f.p50_ms, f.p95_ms, f.samples), (200, 200, 100));
        assert!(t.report().is_some());
        assert!(t.report().is_none(), "nothing new to report");
    }
}
