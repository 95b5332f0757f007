//! Rate control for one viewer's video, pure: how fast this viewer's path
//! delivers, and from that the encoder's bitrate and when the next frame may
//! be captured for it. Time is passed in; nothing here does IO.
//!
//! What it measures, from what the host already sees:
//! - **delivery**: the `video` channel's outstanding bytes fall as the viewer
//!   acknowledges them, so `sent − outstanding` is the bytes delivered, and
//!   its slope the rate the path delivers;
//! - **queueing delay**: how late the oldest unacknowledged frame is: how long
//!   it has been out beyond the time its bytes needed at the estimated rate
//!   plus the path's round-trip floor (the lowest keepalive RTT). A frame
//!   that late sits in a queue, ours or the network's: the path carries less
//!   than the estimate.
//!
//! What it decides:
//! - the **estimate** of the path's rate: lowered only on evidence (a queue
//!   longer than [`RateConfig::queue_target`]: then to what was delivered),
//!   raised by probing only while the screen is busy (frames were held back
//!   for want of rate, or the encoder spent at least half its budget: an
//!   encoder fills whatever budget it gets), and otherwise held. A static screen sends nothing and so changes nothing: the
//!   estimate never collapses for lack of traffic;
//! - the **pacing** of frames (Chrome Remote Desktop's frame scheduler): a
//!   frame is captured for this viewer only once the previous ones will have
//!   left a leaky bucket draining at the estimate, and while nothing waits
//!   longer than the queue target. Frames are not made that the path cannot
//!   carry, so they wait on the screen rather than in a queue: latency stays
//!   near the round trip plus one frame's transmission;
//! - the encoder's **bitrate**: a margin under the estimate.
//!
//! It also measures the path's **burst capacity**: how fast a big frame sent
//! on an idle channel arrives. Pacing keeps the estimate near what the
//! content spends, so on a fast path the estimate says little about how long
//! a bigger picture would take; a burst does. [`crate::scale`] uses it.
//!
//! The queue target is a time, not a byte floor: 80 ms is 5 KB at 500 kbit/s
//! and 80 KB at 8 Mbit/s. The 4 MiB ceiling of [`crate::backpressure`] stays
//! the hard bound behind it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How the controller is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// The estimate never goes below this (a picture must still get through).
    pub min_bps: f64,
    /// What the encoder may spend at most. The path's estimate may go
    /// higher (a LAN carries far more): frames are paced at the path's rate,
    /// not at the encoder's budget.
    pub max_bps: f64,
    /// Where it starts, before anything was measured.
    pub start_bps: f64,
    /// Queueing delay above the round-trip floor that counts as congestion.
    pub queue_target: Duration,
}

/// Default start: a first keyframe gets through a 1 Mbit/s link in well under
/// two seconds, and probing reaches 8 Mbit/s in a few seconds when the path has it.
pub const START_BPS: f64 = 1_000_000.0;
pub const MIN_BPS: f64 = 150_000.0;
pub const MAX_BPS: f64 = 8_000_000.0;
pub const QUEUE_TARGET: Duration = Duration::from_millis(80);
/// How often the estimate is revised.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(100);
/// Probing: the estimate grows by this factor per update while frames are held back.
const PROBE_GAIN: f64 = 1.08;
/// The path's estimate is not raised beyond this (a gigabit LAN, paced at
/// this rate, lets every frame out as it is made).
pub const PATH_MAX_BPS: f64 = 1_000_000_000.0;
/// Probing stops at this multiple of the delivery rate measured (GCC bounds
/// its increase by the incoming rate the same way).
const PROBE_CAP: f64 = 1.5;
/// The delivery rate that bounds probing is the best of this window.
const PEAK_WINDOW: Duration = Duration::from_secs(2);
/// One decrease lowers the estimate to no less than this share of it.
const MAX_DECREASE: f64 = 0.5;
/// After a decrease, no probing for this long (let the queue drain and the
/// delivery rate settle).
const HOLD_AFTER_DECREASE: Duration = Duration::from_millis(1000);
/// The encoder aims this far under the estimate (its output is bursty).
const ENCODER_MARGIN: f64 = 0.85;
/// Delivery is measured over this window: short, so that a decrease follows
/// what the path delivers now, not before it slowed down (acknowledgements
/// come a packet at a time: 25 of them in 250 ms at 1 Mbit/s).
const DELIVERY_WINDOW: Duration = Duration::from_millis(250);
/// The round-trip floor is the least RTT seen over this window (a path that
/// became slower must be able to raise it).
const RTT_FLOOR_WINDOW: Duration = Duration::from_secs(30);
/// The encoder counts as using its budget when it spent this share of the
/// target over [`USE_WINDOW`]: the screen changes enough to want more.
const IN_USE: f64 = 0.5;
const USE_WINDOW: Duration = Duration::from_secs(1);
/// Frames remembered for the queueing delay (oldest unacknowledged frame).
const MAX_FRAMES_KEPT: usize = 512;
/// A frame sent on an idle channel is a burst sample if it is at least this
/// big: much bigger than a shaper's token bucket (commonly 10-32 KB), which
/// lets its first bytes through at line rate.
pub const BURST_MIN_BYTES: usize = 64 * 1024;
/// The last bytes of a burst are not waited for: the receiver may hold the
/// acknowledgement of a lone last packet (SCTP: up to 200 ms).
const BURST_TAIL_BYTES: u64 = 2 * 1200;
/// Burst samples are kept this long.
const BURST_WINDOW: Duration = Duration::from_secs(20);
/// A video queue that does not move at all is a *stalled slow path*, not an
/// outage, when the host still receives at least this many packets a second
/// from the viewer: the acknowledgements of what got through. After a
/// shaper's full queue drops a burst, SCTP's cumulative acknowledgement
/// stops at the first lost chunk (so the queue does not move) while the
/// receiver acknowledges every packet that arrives past the gap at once.
/// In an outage nothing arrives (ICE consent checks are one every few seconds).
const ALIVE_MIN_PPS: f64 = 10.0;
/// What each packet received during a stall says the path delivered: one of
/// our packets (a floor: with the gap closed SCTP acknowledges every second one).
const STALL_BYTES_PER_PACKET: f64 = 1200.0;
/// A packet count older than this says nothing about the stall now.
const INBOUND_FRESH: Duration = Duration::from_millis(1500);

impl RateConfig {
    /// The defaults, spending at most `max_kbps`.
    pub fn up_to(max_kbps: u32) -> Self {
        let max_bps = (max_kbps as f64 * 1000.0).max(MIN_BPS);
        RateConfig {
            max_bps,
            start_bps: START_BPS.min(max_bps),
            ..Default::default()
        }
    }

    /// The encoder's bitrate before anything was measured, in kbit/s.
    pub fn start_target_kbps(&self) -> u32 {
        (self.start_bps.clamp(self.min_bps, self.max_bps) * ENCODER_MARGIN / 1000.0) as u32
    }
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            min_bps: MIN_BPS,
            max_bps: MAX_BPS,
            start_bps: START_BPS,
            queue_target: QUEUE_TARGET,
        }
    }
}

/// Whether a frame may be captured for this viewer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Now,
    /// Not before this (the bucket drains, or the queue must first shrink:
    /// then the time is a guess and the caller asks again).
    At(Instant),
}

/// A frame not yet delivered, and when its bytes were due to leave: from
/// `starts` to `leaves`, at the estimate of the time it was sent.
#[derive(Debug, Clone, Copy)]
struct SentFrame {
    sent: Instant,
    starts: Instant,
    leaves: Instant,
    /// `sent_total` before and after it.
    begin: u64,
    end: u64,
    /// Sent on an idle channel and big enough to measure the burst capacity
    /// (until it has been measured).
    burst: bool,
}

impl SentFrame {
    /// Its bytes due to have left by `t`.
    fn due(&self, t: Instant) -> u64 {
        let bytes = self.end - self.begin;
        if t >= self.leaves {
            bytes
        } else if t <= self.starts {
            0
        } else {
            let span = (self.leaves - self.starts).as_secs_f64();
            (bytes as f64 * (t - self.starts).as_secs_f64() / span) as u64
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateControl {
    config: RateConfig,
    estimate: f64,
    /// Bytes ever handed to the channel, and ever delivered.
    sent_total: u64,
    delivered_total: u64,
    /// Frames not yet delivered, oldest first.
    frames: VecDeque<SentFrame>,
    /// (when, delivered_total) readings for the delivery rate.
    deliveries: VecDeque<(Instant, u64)>,
    /// Keepalive RTT samples for the floor.
    rtts: VecDeque<(Instant, Duration)>,
    /// The leaky bucket: bytes not yet drained at the estimate, as of `bucket_at`.
    bucket: f64,
    bucket_at: Option<Instant>,
    /// A frame was held back for want of rate since the last update.
    held: bool,
    /// Frames held back so far: by lateness, by the bucket (for the stats).
    held_late: u64,
    held_bucket: u64,
    /// Frames sent over the last [`USE_WINDOW`]: (when, bytes).
    recent: VecDeque<(Instant, u64)>,
    /// Delivery rates measured over the last [`PEAK_WINDOW`].
    delivered_peaks: VecDeque<(Instant, f64)>,
    next_update: Option<Instant>,
    last_decrease: Option<Instant>,
    /// Oldest-frame delay and delivery rate at the last update (for stats and tests).
    last_delay: Duration,
    last_delivery_bps: Option<f64>,
    /// Burst capacity samples: (when, bits per second).
    bursts: VecDeque<(Instant, f64)>,
    /// The transport's received-packet count at the last path sample, and
    /// the rate since the one before (when, packets a second), not yet used
    /// as evidence of a stalled slow path.
    inbound: Option<(Instant, u64)>,
    inbound_pps: Option<(Instant, f64)>,
}

impl RateControl {
    pub fn new(config: RateConfig) -> Self {
        RateControl {
            config,
            estimate: config.start_bps.max(config.min_bps),
            sent_total: 0,
            delivered_total: 0,
            frames: VecDeque::new(),
            deliveries: VecDeque::new(),
            rtts: VecDeque::new(),
            bucket: 0.0,
            bucket_at: None,
            held: false,
            held_late: 0,
            held_bucket: 0,
            recent: VecDeque::new(),
            delivered_peaks: VecDeque::new(),
            next_update: None,
            last_decrease: None,
            last_delay: Duration::ZERO,
            last_delivery_bps: None,
            bursts: VecDeque::new(),
            inbound: None,
            inbound_pps: None,
        }
    }

    /// How fast the path delivered the recent big frames sent on an idle
    /// channel (the best of the last three within [`BURST_WINDOW`]), if any
    /// were; samples older than the last decrease of the estimate do not
    /// count (the path has changed since).
    pub fn burst_bps(&self, now: Instant) -> Option<f64> {
        self.bursts
            .iter()
            .rev()
            .take(3)
            .filter(|(t, _)| now.saturating_duration_since(*t) <= BURST_WINDOW)
            .map(|(_, b)| *b)
            .reduce(f64::max)
    }

    /// What the path drains frames at: the estimate, or the burst capacity
    /// when that is higher. Frames are paced at it (the leaky bucket is the
    /// path's bottleneck queue: it empties at the bottleneck's rate, which a
    /// burst measures; the estimate is what the content may spend on
    /// average), and a big frame's time is reckoned by it.
    pub fn capacity_bps(&self, now: Instant) -> f64 {
        self.burst_bps(now).map_or(self.estimate, |b| b.max(self.estimate))
    }

    /// The path's estimated rate, bits per second.
    pub fn estimate_bps(&self) -> f64 {
        self.estimate
    }

    /// What the encoder should aim for on this path, bits per second.
    pub fn target_bps(&self) -> u32 {
        (self.estimate * ENCODER_MARGIN).min(self.config.max_bps) as u32
    }

    /// Queueing delay of the oldest undelivered frame at the last update.
    pub fn queue_delay(&self) -> Duration {
        self.last_delay
    }

    /// How long ago the oldest unacknowledged byte was due to have arrived
    /// (its departure at the capacity, plus the round-trip floor), the last
    /// two packets not counted (a receiver may hold a lone packet's
    /// acknowledgement). Unlike [`queue_delay`](Self::queue_delay), which
    /// counts the bytes behind as time *at the capacity*, this is wall-clock
    /// time, so it does not shrink when the capacity is overestimated: just
    /// after a link falls from 8 Mbit/s to 500 kbit/s a queue of small frames
    /// is 30 ms behind at the old capacity while its oldest byte has waited
    /// half a second. Zero with nothing outstanding.
    pub fn overdue(&self, now: Instant) -> Duration {
        let oldest = self.delivered_total + BURST_TAIL_BYTES;
        let Some(f) = self.frames.iter().find(|f| f.begin <= oldest && oldest < f.end) else {
            return Duration::ZERO;
        };
        let share = (oldest - f.begin) as f64 / (f.end - f.begin) as f64;
        let due = f.starts + (f.leaves - f.starts).mul_f64(share) + self.rtt_floor().unwrap_or(Duration::ZERO);
        now.saturating_duration_since(due)
    }

    /// The delivery rate measured at the last update, if data was moving.
    pub fn delivery_bps(&self) -> Option<f64> {
        self.last_delivery_bps
    }

    /// Frames held back so far because delivery was late, and because the
    /// bucket had not drained.
    pub fn held_counts(&self) -> (u64, u64) {
        (self.held_late, self.held_bucket)
    }

    /// The path's round-trip floor, if a round trip was measured.
    pub fn rtt_floor(&self) -> Option<Duration> {
        self.rtts.iter().map(|(_, r)| *r).min()
    }

    /// The channel was replaced (a new peer connection): its byte counts
    /// start over; the estimate is kept, the path's round trip is measured afresh.
    pub fn new_path(&mut self) {
        self.sent_total = 0;
        self.delivered_total = 0;
        self.frames.clear();
        self.deliveries.clear();
        self.rtts.clear();
        self.bucket = 0.0;
        self.bucket_at = None;
        self.held = false;
        self.recent.clear();
        self.delivered_peaks.clear();
        self.bursts.clear();
        self.inbound = None;
        self.inbound_pps = None;
    }

    /// The path is back after an outage (same channel): what was scheduled
    /// before it says nothing about the path now. The byte counts carry on
    /// (the channel still holds what was queued), the estimate is kept.
    pub fn resume(&mut self) {
        self.frames.clear();
        self.deliveries.clear();
        self.delivered_peaks.clear();
        self.recent.clear();
        self.bucket = 0.0;
        self.bucket_at = None;
        self.held = false;
        self.last_decrease = None;
    }

    /// A keepalive round trip was measured.
    pub fn on_rtt(&mut self, now: Instant, rtt: Duration) {
        self.rtts.push_back((now, rtt));
        while self
            .rtts
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RTT_FLOOR_WINDOW)
        {
            self.rtts.pop_front();
        }
    }

    /// The connection's transport has received `packets_received` packets
    /// in all (read about once a second): whether the viewer's end is still
    /// talking while the video queue is stuck.
    pub fn on_path_packets(&mut self, now: Instant, packets_received: u64) {
        if let Some((t, n)) = self.inbound {
            let span = now.saturating_duration_since(t).as_secs_f64();
            if span >= 0.2 && packets_received >= n {
                self.inbound_pps = Some((now, (packets_received - n) as f64 / span));
            }
        }
        self.inbound = Some((now, packets_received));
    }

    /// Packets a second the viewer's end sent lately, once, if enough to show the path lives.
    fn take_alive_pps(&mut self, now: Instant) -> Option<f64> {
        let (at, pps) = self.inbound_pps?;
        if now.saturating_duration_since(at) > INBOUND_FRESH || pps < ALIVE_MIN_PPS {
            return None;
        }
        self.inbound_pps = None;
        Some(pps)
    }

    /// A frame of `bytes` was handed to the channel.
    pub fn on_sent(&mut self, now: Instant, bytes: usize) {
        let idle = self.delivered_total >= self.sent_total;
        self.drain_bucket(now);
        let starts = now + Duration::from_secs_f64(self.bucket * 8.0 / self.capacity_bps(now));
        self.bucket += bytes as f64;
        let leaves = now + Duration::from_secs_f64(self.bucket * 8.0 / self.capacity_bps(now));
        let begin = self.sent_total;
        self.sent_total += bytes as u64;
        self.frames.push_back(SentFrame {
            sent: now,
            starts,
            leaves,
            begin,
            end: self.sent_total,
            burst: idle && bytes >= BURST_MIN_BYTES,
        });
        self.recent.push_back((now, bytes as u64));
        if self.frames.len() > MAX_FRAMES_KEPT {
            self.frames.pop_front();
        }
    }

    /// The channel's outstanding bytes now.
    pub fn on_queue(&mut self, now: Instant, outstanding: usize) {
        let delivered = self.sent_total.saturating_sub(outstanding as u64);
        // Delivered only grows (a reading taken before a send completes can lag).
        self.delivered_total = self.delivered_total.max(delivered);
        self.measure_burst(now);
        while self.frames.front().is_some_and(|f| f.end <= self.delivered_total) {
            self.frames.pop_front();
        }
        self.deliveries.push_back((now, self.delivered_total));
        while self
            .deliveries
            .get(1)
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= DELIVERY_WINDOW)
        {
            self.deliveries.pop_front();
        }
    }

    /// A burst frame (the oldest outstanding, if it is one) that has
    /// arrived but for its tail is a sample of the burst capacity: its bytes
    /// over the time they took beyond the round-trip floor.
    fn measure_burst(&mut self, now: Instant) {
        let floor = self.rtt_floor().unwrap_or(Duration::ZERO);
        let Some(f) = self.frames.front_mut().filter(|f| f.burst) else {
            return;
        };
        if self.delivered_total + BURST_TAIL_BYTES < f.end {
            return;
        }
        f.burst = false;
        let bytes = (f.end - f.begin).saturating_sub(BURST_TAIL_BYTES);
        // At least a millisecond: readings come that often at best.
        let took = now
            .saturating_duration_since(f.sent)
            .saturating_sub(floor)
            .max(Duration::from_millis(1));
        self.bursts.push_back((now, bytes as f64 * 8.0 / took.as_secs_f64()));
        while self.bursts.len() > 8 {
            self.bursts.pop_front();
        }
    }

    /// How far delivery is behind the schedule the estimate promised: the
    /// bytes that were due to have left a round-trip floor ago but are not
    /// acknowledged, as time at the estimate. A big frame that takes its time
    /// at the estimated rate is not behind; bytes waiting in a queue because
    /// the path carries less than the estimate are. Counted in bytes, not
    /// by the oldest frame's age, so a receiver's delayed acknowledgement
    /// of its last packet (SCTP holds a lone packet's SACK up to 200 ms) is
    /// a packet behind, not 200 ms.
    fn delay(&self, now: Instant) -> Duration {
        let Some(first) = self.frames.front() else {
            return Duration::ZERO;
        };
        let Some(due_by) = now.checked_sub(self.rtt_floor().unwrap_or(Duration::ZERO)) else {
            return Duration::ZERO;
        };
        let due: u64 = self
            .frames
            .iter()
            .take_while(|f| f.starts < due_by)
            .map(|f| f.due(due_by))
            .sum();
        let delivered = self.delivered_total.saturating_sub(first.begin);
        let behind = due.saturating_sub(delivered);
        Duration::from_secs_f64(behind as f64 * 8.0 / self.capacity_bps(now))
    }

    fn delivery_rate(&self) -> Option<f64> {
        let (&(t0, d0), &(t1, d1)) = (self.deliveries.front()?, self.deliveries.back()?);
        let span = t1.saturating_duration_since(t0).as_secs_f64();
        (span >= DELIVERY_WINDOW.as_secs_f64() / 2.0).then(|| (d1 - d0) as f64 * 8.0 / span)
    }

    /// The highest delivery rate measured over the last [`PEAK_WINDOW`] (0 if none).
    fn delivered_max(&self, _now: Instant) -> f64 {
        self.delivered_peaks.iter().map(|(_, r)| *r).fold(0.0, f64::max)
    }

    fn drain_bucket(&mut self, now: Instant) {
        if let Some(at) = self.bucket_at {
            let drained = now.saturating_duration_since(at).as_secs_f64() * self.capacity_bps(now) / 8.0;
            self.bucket = (self.bucket - drained).max(0.0);
        }
        self.bucket_at = Some(now);
    }

    /// Whether a frame may be captured for this viewer now, given that a
    /// frame captured now reaches the channel `lead` later (capture,
    /// conversion, encoding): it may start when the bucket will have drained
    /// by the time it is ready (Chrome Remote Desktop schedules captures the
    /// same way). A "not yet" is remembered as demand the estimate did not
    /// carry (probing evidence).
    pub fn pace(&mut self, now: Instant, lead: Duration) -> Pace {
        self.drain_bucket(now);
        if self.delay(now) > self.config.queue_target {
            self.held = true;
            self.held_late += 1;
            return Pace::At(now + UPDATE_INTERVAL);
        }
        // What is left of the bucket when a frame started now would be ready
        // (less than a byte: rounding).
        let ready_at = self.bucket - lead.as_secs_f64() * self.capacity_bps(now) / 8.0;
        if ready_at < 1.0 {
            return Pace::Now;
        }
        self.held = true;
        self.held_bucket += 1;
        let wait = ready_at * 8.0 / self.capacity_bps(now);
        Pace::At(now + Duration::from_secs_f64(wait))
    }

    /// When [`handle_timeout`](Self::handle_timeout) next revises the estimate.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_update
    }

    /// Revises the estimate (call at [`poll_timeout`](Self::poll_timeout); the
    /// first call starts the schedule).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.next_update {
            Some(at) if now < at => return,
            _ => self.next_update = Some(now + UPDATE_INTERVAL),
        }
        self.drain_bucket(now);
        let delay = self.delay(now);
        let delivered = self.delivery_rate();
        self.last_delay = delay;
        self.last_delivery_bps = delivered;
        if let Some(rate) = delivered {
            self.delivered_peaks.push_back((now, rate));
            while self
                .delivered_peaks
                .front()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) > PEAK_WINDOW)
            {
                self.delivered_peaks.pop_front();
            }
        }
        let held = std::mem::take(&mut self.held);
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > USE_WINDOW)
        {
            self.recent.pop_front();
        }
        let spent = self.recent.iter().map(|(_, b)| b).sum::<u64>() as f64 * 8.0 / USE_WINDOW.as_secs_f64();
        // An encoder fills whatever budget it gets while the screen changes:
        // frames that fit the estimate are no sign the content wants no more.
        let in_use = held || spent >= IN_USE * self.target_bps() as f64;
        // A frame sent before the last decrease was paced at the old
        // estimate: its lateness is already answered (as TCP reduces once
        // per window of loss, not once per lost packet).
        // Unless the path now delivers far less than even the lowered
        // estimate: that is new evidence.
        let answered = self
            .frames
            .front()
            .zip(self.last_decrease)
            .is_some_and(|(f, t)| f.sent < t)
            && delivered.is_none_or(|rate| rate >= 0.7 * self.estimate);
        let moving = delivered.filter(|&rate| rate > 0.0);
        let stalled_alive = (delay > self.config.queue_target && moving.is_none())
            .then(|| self.take_alive_pps(now))
            .flatten();
        if let Some(pps) = stalled_alive {
            // The queue is stuck but the viewer's end keeps acknowledging:
            // a slow path whose shaper dropped a burst, not an outage. It
            // carries at least a packet per packet heard; halve at most, once
            // per path sample, as for any decrease.
            let to = (pps * STALL_BYTES_PER_PACKET * 8.0).max(self.estimate * MAX_DECREASE);
            if to < self.estimate {
                self.estimate = to.max(self.config.min_bps);
                self.last_decrease = Some(now);
                self.bursts.clear();
            }
        } else if delay > self.config.queue_target && (answered || moving.is_none()) {
            // Pacing holds new frames back until the queue drains. A queue
            // that does not move at all, with nothing heard from the viewer,
            // is an outage, not a slow path: no rate is learnt from it (the
            // gate's stall rule and ICE recovery deal with outages), so the
            // picture comes back at full rate.
        } else if let Some(rate) = moving.filter(|_| delay > self.config.queue_target) {
            // Evidence: data waits. The path carries what it delivered; aim
            // under it so the queue drains. But by at most half at a time:
            // while SCTP recovers from a loss (a shaper's full queue) it
            // delivers next to nothing for a while, which says little about
            // the path; taken at its word, a 500 kbit/s link read 150 kbit/s
            // one moment and probed back to 1.5 Mbit/s the next.
            let to = (rate * 0.9).max(self.estimate * MAX_DECREASE);
            if to < self.estimate {
                self.estimate = to.max(self.config.min_bps);
                self.last_decrease = Some(now);
                // Bursts measured before say nothing about the path now.
                self.bursts.clear();
            }
        } else if in_use
            && self
                .last_decrease
                .is_none_or(|t| now.saturating_duration_since(t) >= HOLD_AFTER_DECREASE)
        {
            // The screen is busy (frames held back, or the budget spent) and
            // nothing waits: ask for more, but not far beyond what the path
            // has shown it delivers (a probe the content never fills proves nothing).
            let raised = (self.estimate * PROBE_GAIN).min(PROBE_CAP * self.delivered_max(now));
            self.estimate = self.estimate.max(raised).min(PATH_MAX_BPS);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The controller against a simulated path: a bottleneck of a given
    //! capacity with a propagation delay, fed by a screen whose content wants
    //! a given rate, driven in 1 ms steps.

    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const PACKET: u64 = 1200;
    const DELAYED_ACK: Duration = Duration::from_millis(200);

    /// What the screen shows: how many bits per second an encoder would like to spend on it.
    #[derive(Clone, Copy)]
    enum Screen {
        /// Busy 1080p content: pages switching every 2 s over a scrolling terminal.
        Busy,
        Static,
    }

    struct Frame {
        captured: Instant,
        /// Bytes of this frame still ahead of the bottleneck.
        left: u64,
    }

    /// One viewer's path: a FIFO bottleneck at `capacity` bits/s, `one_way` each way.
    struct Sim {
        t0: Instant,
        now: Instant,
        rate: RateControl,
        one_way: Duration,
        capacity: f64,
        screen: Screen,
        /// Frames in the bottleneck's queue (or in our send buffer, same thing here).
        queue: VecDeque<Frame>,
        credit: f64,
        /// (acknowledged at, bytes): the bottleneck's output, acknowledged a
        /// round trip later, a packet at a time (as SCTP does).
        acks: VecDeque<(Instant, u64)>,
        /// A packet the receiver has not acknowledged yet (arrived, bytes).
        lone: Option<(Instant, u64)>,
        acked: u64,
        sent: u64,
        /// (captured, shown) per frame shown.
        shown: Vec<(Instant, Instant)>,
        in_transit: VecDeque<(Instant, Instant)>,
        next_capture: Instant,
        next_ping: Instant,
        pings: VecDeque<(Instant, Instant)>,
        frame_no: u64,
        /// Bits sent per second of simulated time (for "used within").
        sent_log: Vec<(Instant, u64)>,
    }

    impl Sim {
        fn new(rtt: Duration, capacity: f64) -> Self {
            let t0 = Instant::now();
            Sim {
                t0,
                now: t0,
                rate: RateControl::new(RateConfig::default()),
                one_way: rtt / 2,
                capacity,
                screen: Screen::Busy,
                queue: VecDeque::new(),
                credit: 0.0,
                acks: VecDeque::new(),
                lone: None,
                acked: 0,
                sent: 0,
                shown: Vec::new(),
                in_transit: VecDeque::new(),
                next_capture: t0,
                next_ping: t0,
                pings: VecDeque::new(),
                frame_no: 0,
                sent_log: Vec::new(),
            }
        }

        /// What an encoder aiming at `target` makes of the next frame: busy
        /// content wants 5 Mbit/s at 30 fps, with a page change every 2 s
        /// costing 12 frames' worth; at a lower target the frames shrink with it.
        fn frame_bytes(&mut self, target: f64) -> Option<u64> {
            if let Screen::Static = self.screen {
                return None;
            }
            self.frame_no += 1;
            let per_frame = target.min(5_000_000.0) / 8.0 / 30.0;
            let page = self.frame_no.is_multiple_of(60);
            Some((per_frame * if page { 12.0 } else { 0.7 }) as u64 + 200)
        }

        fn step(&mut self) {
            let now = self.now;
            // The bottleneck serves 1 ms of capacity, a packet at a time.
            self.credit += self.capacity / 8.0 / 1000.0;
            while let Some(left) = self.queue.front().map(|f| f.left) {
                let packet = left.min(PACKET);
                if self.credit < packet as f64 {
                    break;
                }
                self.queue[0].left -= packet;
                self.credit -= packet as f64;
                self.packet_arrives(now + self.one_way, packet);
                if left == packet {
                    let f = self.queue.pop_front().unwrap();
                    self.in_transit.push_back((f.captured, now + self.one_way));
                }
            }
            if self.queue.is_empty() {
                self.credit = self.credit.min(PACKET as f64); // no saving up while idle
            }
            if let Some((arrived, bytes)) = self.lone {
                if arrived + DELAYED_ACK + self.one_way <= now {
                    self.lone = None;
                    self.acks.push_back((arrived + DELAYED_ACK + self.one_way, bytes));
                }
            }
            while self.in_transit.front().is_some_and(|&(_, at)| at <= now) {
                let (captured, at) = self.in_transit.pop_front().unwrap();
                self.shown.push((captured, at));
            }
            while self.acks.front().is_some_and(|&(at, _)| at <= now) {
                self.acked += self.acks.pop_front().unwrap().1;
            }
            // Keepalive: a PING every 5 s, through the same queue both ways it is small.
            if now >= self.next_ping {
                let queued: u64 = self.queue.iter().map(|f| f.left).sum();
                let wait = Duration::from_secs_f64(queued as f64 * 8.0 / self.capacity);
                self.pings.push_back((now, now + self.one_way * 2 + wait));
                self.next_ping = now + Duration::from_secs(5);
            }
            while self.pings.front().is_some_and(|&(_, at)| at <= now) {
                let (sent, at) = self.pings.pop_front().unwrap();
                self.rate.on_rtt(now, at - sent);
            }
            self.rate.on_queue(now, (self.sent - self.acked) as usize);
            self.rate.handle_timeout(now);
            // Capture at most 30 fps, and only when the pacer allows.
            if now >= self.next_capture {
                match self.rate.pace(now, Duration::ZERO) {
                    Pace::Now => {
                        if let Some(bytes) = self.frame_bytes(self.rate.target_bps() as f64) {
                            self.rate.on_sent(now, bytes as usize);
                            self.sent += bytes;
                            self.sent_log.push((now, bytes));
                            self.queue.push_back(Frame {
                                captured: now,
                                left: bytes,
                            });
                        }
                        self.next_capture = now + Duration::from_millis(33);
                    }
                    Pace::At(at) => self.next_capture = at.max(now + MS),
                }
            }
            self.now += MS;
        }

        /// The receiver acknowledges every second packet at once, a lone
        /// one after [`DELAYED_ACK`] (SCTP's delayed SACK, as rtc-sctp does).
        fn packet_arrives(&mut self, at: Instant, bytes: u64) {
            match self.lone.take() {
                Some((first, b)) if at <= first + DELAYED_ACK => {
                    self.acks.push_back((at + self.one_way, b + bytes));
                }
                Some((first, b)) => {
                    self.acks.push_back((first + DELAYED_ACK + self.one_way, b));
                    self.lone = Some((at, bytes));
                }
                None => self.lone = Some((at, bytes)),
            }
        }

        fn run_for(&mut self, d: Duration) {
            let end = self.now + d;
            while self.now < end {
                self.step();
            }
        }

        fn secs(&self) -> f64 {
            (self.now - self.t0).as_secs_f64()
        }

        /// Latencies (capture to shown) of frames captured in [from, to) seconds.
        fn latencies(&self, from: f64, to: f64) -> Vec<Duration> {
            let mut l: Vec<Duration> = self
                .shown
                .iter()
                .filter(|(c, _)| {
                    let s = (*c - self.t0).as_secs_f64();
                    s >= from && s < to
                })
                .map(|(c, s)| *s - *c)
                .collect();
            l.sort();
            l
        }

        fn p95(&self, from: f64, to: f64) -> Duration {
            let l = self.latencies(from, to);
            assert!(!l.is_empty(), "frames shown in [{from}, {to}) s");
            l[(l.len() * 95 / 100).min(l.len() - 1)]
        }

        fn fps(&self, from: f64, to: f64) -> f64 {
            self.latencies(from, to).len() as f64 / (to - from)
        }

        /// Bits per second sent in [from, to) seconds.
        fn sent_bps(&self, from: f64, to: f64) -> f64 {
            let bytes: u64 = self
                .sent_log
                .iter()
                .filter(|(t, _)| {
                    let s = (*t - self.t0).as_secs_f64();
                    s >= from && s < to
                })
                .map(|(_, b)| b)
                .sum();
            bytes as f64 * 8.0 / (to - from)
        }
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// Acceptance 1 of issue 14: 8 Mbit/s → 500 kbit/s → 8 Mbit/s at 150 ms
    /// RTT, a static minute, then a burst.
    #[test]
    fn a_link_that_steps_down_and_up_then_idles_then_bursts() {
        let mut sim = Sim::new(Duration::from_millis(150), 8_000_000.0);
        sim.run_for(Duration::from_secs(20));
        let fast = sim.p95(10.0, 20.0);
        eprintln!(
            "8 Mbit/s: p95 {:.0} ms, {:.1} fps, sending {:.2} Mbit/s, estimate {:.2} Mbit/s",
            ms(fast),
            sim.fps(10.0, 20.0),
            sim.sent_bps(10.0, 20.0) / 1e6,
            sim.rate.estimate_bps() / 1e6
        );
        assert!(
            sim.sent_bps(10.0, 20.0) >= 4_000_000.0,
            "the content's 5 Mbit/s mostly carried"
        );
        assert!(fast <= Duration::from_millis(250), "p95 {fast:?} at 8 Mbit/s");
        assert!(sim.fps(10.0, 20.0) >= 25.0);

        // Down to 500 kbit/s.
        sim.capacity = 500_000.0;
        sim.run_for(Duration::from_secs(30));
        let settled = sim.p95(23.0, 50.0);
        eprintln!(
            "500 kbit/s: p95 from 3 s after the step {:.0} ms (worst in the first 3 s {:.0} ms), {:.1} fps, estimate {:.0} kbit/s",
            ms(settled),
            ms(*sim.latencies(20.0, 23.0).last().unwrap()),
            sim.fps(23.0, 50.0),
            sim.rate.estimate_bps() / 1e3
        );
        assert!(settled <= Duration::from_millis(400), "p95 {settled:?} at 500 kbit/s");
        assert!(sim.fps(23.0, 50.0) >= 5.0);
        assert!(sim.rate.estimate_bps() >= 300_000.0, "no collapse below the link");

        // Back up to 8 Mbit/s: at least 4 Mbit/s used within 10 s.
        sim.capacity = 8_000_000.0;
        sim.run_for(Duration::from_secs(30));
        let used = sim.sent_bps(58.0, 60.0);
        eprintln!(
            "back to 8 Mbit/s: {:.2} Mbit/s sent 8-10 s after the step, p95 {:.0} ms",
            used / 1e6,
            ms(sim.p95(50.0, 80.0))
        );
        assert!(used >= 4_000_000.0, "{used} bit/s 8-10 s after the link came back");
        assert!(sim.p95(50.0, 80.0) <= Duration::from_millis(250));

        // A static minute: nothing sent, nothing learnt, nothing lost.
        let before = sim.rate.estimate_bps();
        sim.screen = Screen::Static;
        sim.run_for(Duration::from_secs(60));
        assert_eq!(sim.sent_bps(81.0, 140.0), 0.0);
        assert_eq!(sim.rate.estimate_bps(), before, "a static screen changes no estimate");

        // Then a burst: pictures at once, at the rate the link had.
        sim.screen = Screen::Busy;
        let burst = sim.secs();
        sim.run_for(Duration::from_secs(10));
        let p95 = sim.p95(burst, burst + 10.0);
        eprintln!("burst after the static minute: p95 {:.0} ms", ms(p95));
        assert!(p95 <= Duration::from_millis(250));
        assert!(sim.sent_bps(burst, burst + 10.0) >= 4_000_000.0);
    }

    #[test]
    fn a_slow_link_from_the_start_settles_without_a_standing_queue() {
        for (capacity, p95_max) in [(300_000.0, 1000), (500_000.0, 400), (1_000_000.0, 400)] {
            let mut sim = Sim::new(Duration::from_millis(150), capacity);
            sim.run_for(Duration::from_secs(30));
            let p95 = sim.p95(5.0, 30.0);
            eprintln!(
                "{:.0} kbit/s: p95 {:.0} ms, {:.1} fps, {:.0} % of the link used, estimate {:.0} kbit/s",
                capacity / 1e3,
                ms(p95),
                sim.fps(5.0, 30.0),
                sim.sent_bps(5.0, 30.0) / capacity * 100.0,
                sim.rate.estimate_bps() / 1e3
            );
            assert!(p95 <= Duration::from_millis(p95_max), "{capacity}: p95 {p95:?}");
            // The estimate saws around the capacity (probe, find the queue,
            // back off); what counts is that the link is used without a queue.
            let used = sim.sent_bps(5.0, 30.0) / capacity;
            assert!(
                (0.6..=1.0).contains(&used),
                "{capacity}: {:.0} % of the link used",
                used * 100.0
            );
        }
    }

    /// A big frame sent on the idle path measures what the path carries,
    /// whatever the estimate (held low by a calm screen) says.
    #[test]
    fn a_big_frame_on_an_idle_path_measures_its_capacity() {
        for (capacity, bytes) in [(30_000_000.0, 200_000u64), (500_000.0, 100_000)] {
            let mut sim = Sim::new(Duration::from_millis(40), capacity);
            sim.screen = Screen::Static;
            sim.run_for(Duration::from_secs(6)); // a keepalive RTT for the floor
            assert_eq!(sim.rate.burst_bps(sim.now), None);
            assert_eq!(sim.rate.capacity_bps(sim.now), START_BPS);
            let now = sim.now;
            sim.rate.on_sent(now, bytes as usize);
            sim.sent += bytes;
            sim.queue.push_back(Frame {
                captured: now,
                left: bytes,
            });
            sim.run_for(Duration::from_secs_f64(bytes as f64 * 8.0 / capacity) + Duration::from_millis(300));
            let burst = sim.rate.burst_bps(sim.now).expect("a burst sample");
            assert!(
                burst > 0.8 * capacity && burst < 1.25 * capacity,
                "{burst} b/s measured on a {capacity} b/s path"
            );
            assert_eq!(sim.rate.capacity_bps(sim.now), burst.max(sim.rate.estimate_bps()));
            // Samples age out.
            sim.run_for(BURST_WINDOW + Duration::from_secs(1));
            assert_eq!(sim.rate.burst_bps(sim.now), None);
        }
    }

    /// Small frames (5 KB every 50 ms, 800 kbit/s) into a path the
    /// controller believes carries 8 Mbit/s: on a true 8 Mbit/s path nothing
    /// is overdue beyond a lone packet's delayed acknowledgement; on a path
    /// that fell to 500 kbit/s the oldest byte has waited about 0.4 s after a
    /// second, while the lateness at the old capacity still looks harmless.
    #[test]
    fn overdue_is_wall_clock_time_however_wrong_the_capacity() {
        for (path_bps, overdue_within) in [(8_000_000.0, 0.0..0.05), (500_000.0, 0.3..0.5)] {
            let t0 = Instant::now();
            let mut rate = RateControl::new(RateConfig {
                start_bps: 8_000_000.0,
                ..RateConfig::default()
            });
            rate.on_rtt(t0, MS);
            let (mut sent, mut delivered) = (0u64, 0.0f64);
            for ms_now in 0..=1000u32 {
                let now = t0 + MS * ms_now;
                if ms_now % 50 == 0 && ms_now < 1000 {
                    rate.on_sent(now, 5000);
                    sent += 5000;
                }
                // Delivered at the path's rate, acknowledged in whole packets
                // but for a last lone one (held as a delayed SACK would).
                delivered = (delivered + path_bps / 8.0 / 1000.0).min(sent as f64);
                let acked = ((delivered as u64 / PACKET) * PACKET).min(sent.saturating_sub(PACKET));
                rate.on_queue(now, (sent - acked) as usize);
            }
            let now = t0 + MS * 1000;
            let overdue = rate.overdue(now).as_secs_f64();
            eprintln!(
                "{path_bps} b/s: overdue {overdue:.3} s, lateness at the capacity {:?}",
                rate.delay(now)
            );
            assert!(
                overdue_within.contains(&overdue),
                "overdue {overdue} s on {path_bps} b/s"
            );
            assert!(rate.delay(now) < QUEUE_TARGET, "the lateness misses it");
        }
    }

    #[test]
    fn no_evidence_no_change() {
        let t0 = Instant::now();
        let mut rate = RateControl::new(RateConfig::default());
        // An hour of an idle viewer: readings of an empty queue, no frames.
        for s in 0..36_000u64 {
            let now = t0 + Duration::from_millis(100) * s as u32;
            rate.on_queue(now, 0);
            rate.handle_timeout(now);
        }
        assert_eq!(rate.estimate_bps(), START_BPS);
        assert_eq!(rate.target_bps(), (START_BPS * ENCODER_MARGIN) as u32);
    }

    #[test]
    fn an_outage_is_not_a_slow_path() {
        let t0 = Instant::now();
        let mut rate = RateControl::new(RateConfig::default());
        rate.on_sent(t0, 20_000);
        // Ten seconds of a queue that does not move at all.
        for s in 0..100u32 {
            let now = t0 + UPDATE_INTERVAL * s;
            rate.on_queue(now, 20_000);
            rate.handle_timeout(now);
        }
        let now = t0 + UPDATE_INTERVAL * 100;
        assert!(
            matches!(rate.pace(now, Duration::ZERO), Pace::At(_)),
            "nothing more into a stuck queue"
        );
        assert_eq!(rate.estimate_bps(), START_BPS, "nothing learnt from an outage");
        // The path comes back: the old frame is delivered, frames flow at once.
        rate.resume();
        rate.on_queue(now, 0);
        assert_eq!(rate.pace(now, Duration::ZERO), Pace::Now);
    }

    #[test]
    fn a_stuck_queue_with_the_viewer_still_acknowledging_is_a_slow_path() {
        let t0 = Instant::now();
        let mut rate = RateControl::new(RateConfig::default());
        rate.on_path_packets(t0, 1_000);
        // 8 Mbit/s was measured; then a burst overflows a 500 kbit/s shaper
        // and the queue stops moving, while ~52 packets a second come back.
        rate.estimate = 8_000_000.0;
        rate.on_sent(t0, 200_000);
        let mut packets = 1_000u64;
        let mut estimates = Vec::new();
        for s in 1..=50u32 {
            let now = t0 + UPDATE_INTERVAL * s;
            rate.on_queue(now, 200_000);
            if s % 10 == 0 {
                packets += 52;
                rate.on_path_packets(now, packets);
            }
            rate.handle_timeout(now);
            if s % 10 == 0 {
                estimates.push((rate.estimate_bps() / 1000.0).round() as u32);
            }
        }
        // Halved once per sample, down to what the packets heard say the
        // path carries (52 x 1200 bytes a second: 499 kbit/s).
        assert_eq!(
            estimates,
            [4000, 2000, 1000, 500, 499],
            "one decrease per sample of a live path"
        );
        assert!(
            rate.capacity_bps(t0 + UPDATE_INTERVAL * 50) < 500_000.0,
            "no burst figure from before"
        );
    }

    #[test]
    fn a_stuck_queue_with_only_consent_checks_heard_is_still_an_outage() {
        let t0 = Instant::now();
        let mut rate = RateControl::new(RateConfig::default());
        rate.on_path_packets(t0, 1_000);
        rate.on_sent(t0, 20_000);
        for s in 1..=100u32 {
            let now = t0 + UPDATE_INTERVAL * s;
            rate.on_queue(now, 20_000);
            if s % 10 == 0 {
                // One STUN check every other second.
                rate.on_path_packets(now, 1_000 + (s / 20) as u64);
            }
            rate.handle_timeout(now);
        }
        assert_eq!(rate.estimate_bps(), START_BPS, "nothing learnt from an outage");
    }
}
