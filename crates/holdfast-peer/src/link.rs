//! One viewer's link as the host sees it, as a pure machine: the peer
//! connection's state, ICE recovery, the relay re-check, the keepalive, the
//! link's quality and the video gate with the keyframe rule. Time is passed
//! in and decisions come out as [`LinkAction`]s (quinn-proto style:
//! `handle_*` in, [`ViewerLink::poll_action`] out, [`ViewerLink::poll_timeout`]
//! for the next deadline); the host loop ([`crate::host`]) does the IO.
//!
//! Not here: admission and the end-to-end check (`host::Viewer`), input
//! sequencing (`holdfast_input::InputSequencer`). Design and order of work:
//! `docs/host-loop-design.md`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use holdfast_session::{
    IceAction, IceRecovery, Keepalive, KeepaliveConfig, KeepaliveEvent, LinkState, Metrics, Quality, QualityMonitor,
    Role,
};
use webrtc::peer_connection::RTCPeerConnectionState;

use crate::backpressure::{Admission, GateReport, QueueLimits, VideoGate};
use crate::host::ViewerStats;
use crate::rate::{Pace, RateConfig, RateControl};
use crate::rtc::{PathSample, Route};
use crate::shown::{ShownError, ShownTracker};
use holdfast_proto::commands::Control;

/// How often the link's path statistics are read into its quality monitor.
pub const QUALITY_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How often a relayed connection looks for a direct path (an ICE restart).
pub const RELAY_RECHECK: Duration = Duration::from_secs(120);
/// How often the link's quality is reported to the server when it has not
/// changed class (a change is reported at once).
pub const QUALITY_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// Keyframe requests arriving sooner than this after the last keyframe sent
/// are ignored (a misbehaving viewer must not pin the encoder).
pub const MIN_KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(250);
/// Keepalive round trips remembered for the floor (a minute at one per 5 s).
const RTTS_KEPT: usize = 12;

/// The two data channels of a viewer's peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Video,
    Commands,
}

/// Whether the next frame goes to this viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDecision {
    /// Capture and send; `keyframe` says it must be an IDR frame.
    Send { keyframe: bool },
    /// Over the queue's limit (or the path is down): a drop, counted.
    Drop,
    /// Not yet: the path is still carrying earlier frames (rate control's
    /// pacing). Ask again at this time.
    Pace(Instant),
}

/// Why a link is being recovered (for logs and the shell's events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverReason {
    /// `failed`, a `disconnected` that outlasted its timeout, or a restart
    /// that never connected.
    Connection,
    /// Poor quality held for `POOR_QUALITY_HOLD`.
    PoorQuality,
}

/// What the shell must do for this link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkAction {
    /// Send `\x00PING` on `commands`.
    SendPing,
    /// Nothing heard for three keepalive intervals.
    Unresponsive { silent: Duration },
    /// Release whatever the viewer holds: its connection is in doubt.
    ReleaseInput,
    /// Restart ICE, or build a new peer connection.
    Recover { action: IceAction, reason: RecoverReason },
    /// The link has been relayed for `RELAY_RECHECK`: restart ICE to look for
    /// a direct path (not a recovery: the link is up).
    RecheckRelay,
    /// Read the pair's statistics ([`crate::rtc::path_sample`]) and hand them
    /// to [`ViewerLink::handle_path_sample`].
    SamplePath,
    /// The pair in use changed between direct and relayed.
    RouteChanged(Route),
    /// The link changed class: show it.
    QualityChanged { quality: Quality, metrics: Metrics },
    /// Tell the server the link's quality (on a change, and every
    /// `QUALITY_REPORT_INTERVAL`).
    ReportQuality(Metrics),
    /// The connection is back after a drop (it gets a keyframe).
    Restored,
    /// A frame is wanted now (a keyframe was asked for, the link came back).
    CaptureNow,
    /// Worth logging about the video queue.
    Gate(GateReport),
}

/// Counters shown in [`ViewerStats`] that the link owns.
#[derive(Debug, Clone, Default)]
struct VideoCounters {
    frames_sent: u64,
    bytes_sent: u64,
    keyframes_sent: u64,
    max_frame_bytes: usize,
    queued_bytes: usize,
    /// Every frame sent right after a drop was a keyframe.
    keyframe_after_every_drop: bool,
}

#[derive(Debug)]
pub struct ViewerLink {
    pc_state: RTCPeerConnectionState,
    ice: IceRecovery,
    relay_recheck: Option<Duration>,
    /// Since when the connection has been relayed, or last restarted to look
    /// for a direct path.
    relayed_since: Option<Instant>,
    route: Option<Route>,
    keepalive_config: KeepaliveConfig,
    /// Started when the `commands` channel opens.
    keepalive: Option<Keepalive>,
    pings_sent: u64,
    rtt: Option<Duration>,
    /// The last keepalive round trips (the floor is the ack's way back).
    recent_rtts: VecDeque<Duration>,
    /// Capture-to-screen times from the viewer's `frame-shown` messages.
    shown: ShownTracker,
    unresponsive: bool,
    video_open: bool,
    commands_open: bool,
    quality: QualityMonitor,
    /// ICE check answers already taken as RTT samples (a new answer is a new sample).
    path_answers: u64,
    next_sample_at: Instant,
    class: Option<Quality>,
    metrics: Option<Metrics>,
    /// When the server last heard of this link's quality.
    quality_reported_at: Option<Instant>,
    gate: VideoGate,
    next_frame_id: u32,
    dropped_since_send: bool,
    last_keyframe_at: Option<Instant>,
    video: VideoCounters,
    /// None: a fixed bitrate, frames limited by the gate alone.
    rate: Option<RateControl>,
    actions: VecDeque<LinkAction>,
}

/// What a link is built with (from the host's configuration).
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    pub limits: QueueLimits,
    pub keepalive: KeepaliveConfig,
    pub disconnected_timeout: Duration,
    pub relay_recheck: Option<Duration>,
    /// Rate control (None: a fixed bitrate).
    pub rate: Option<RateConfig>,
}

impl ViewerLink {
    /// A new peer connection to a viewer, made at `now` (the host offers: it restarts).
    pub fn new(config: LinkConfig, now: Instant) -> Self {
        ViewerLink {
            pc_state: RTCPeerConnectionState::Connecting,
            ice: IceRecovery::new(Role::Restarter, config.disconnected_timeout),
            relay_recheck: config.relay_recheck,
            relayed_since: None,
            route: None,
            keepalive_config: config.keepalive,
            keepalive: None,
            pings_sent: 0,
            rtt: None,
            recent_rtts: VecDeque::new(),
            shown: ShownTracker::default(),
            unresponsive: false,
            video_open: false,
            commands_open: false,
            quality: QualityMonitor::default(),
            path_answers: 0,
            next_sample_at: now + QUALITY_SAMPLE_INTERVAL,
            class: None,
            metrics: None,
            quality_reported_at: None,
            gate: VideoGate::new(config.limits),
            next_frame_id: 0,
            dropped_since_send: false,
            last_keyframe_at: None,
            video: VideoCounters {
                keyframe_after_every_drop: true,
                ..Default::default()
            },
            rate: config.rate.map(RateControl::new),
            actions: VecDeque::new(),
        }
    }

    pub fn state(&self) -> RTCPeerConnectionState {
        self.pc_state
    }

    pub fn connected(&self) -> bool {
        self.pc_state == RTCPeerConnectionState::Connected
    }

    pub fn video_open(&self) -> bool {
        self.video_open
    }

    pub fn commands_open(&self) -> bool {
        self.commands_open
    }

    /// ICE restarts since the link was last connected.
    pub fn restarts(&self) -> u32 {
        self.ice.restarts()
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<LinkAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sample = self.connected().then_some(self.next_sample_at);
        let rate = self
            .rate
            .as_ref()
            .filter(|_| self.video_open)
            .and_then(RateControl::poll_timeout);
        [
            self.keepalive.as_ref().and_then(Keepalive::next_deadline),
            self.ice.next_deadline(),
            sample,
            rate,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed: keepalive, recovery deadlines, path sampling.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(k) = self.keepalive.as_mut() {
            while let Some(event) = k.poll(now) {
                match event {
                    KeepaliveEvent::SendPing => {
                        self.pings_sent = k.pings_sent();
                        self.actions.push_back(LinkAction::SendPing);
                    }
                    KeepaliveEvent::PeerDead { silent } => {
                        self.unresponsive = true;
                        self.actions.push_back(LinkAction::Unresponsive { silent });
                        // No stuck keys: whatever a silent viewer holds is released now.
                        self.actions.push_back(LinkAction::ReleaseInput);
                    }
                }
            }
        }
        if let Some(action) = self.ice.poll(now) {
            self.actions.push_back(LinkAction::Recover {
                action,
                reason: RecoverReason::Connection,
            });
        }
        // Only a connected path's delivery says anything about its rate.
        let measuring = self.video_open && self.connected();
        if let Some(rate) = self.rate.as_mut().filter(|_| measuring) {
            rate.handle_timeout(now);
        }
        if now >= self.next_sample_at {
            self.next_sample_at = now + QUALITY_SAMPLE_INTERVAL;
            // Only a connected link's path says anything.
            if self.connected() {
                self.actions.push_back(LinkAction::SamplePath);
            }
        }
    }

    /// The peer connection changed state.
    pub fn handle_state(&mut self, now: Instant, state: RTCPeerConnectionState) {
        use RTCPeerConnectionState as S;
        let was = std::mem::replace(&mut self.pc_state, state);
        let link = match state {
            S::Connected => Some(LinkState::Connected),
            S::Disconnected => Some(LinkState::Disconnected),
            S::Failed => Some(LinkState::Failed),
            S::New | S::Connecting => Some(LinkState::Connecting),
            _ => None,
        };
        let recover = link.and_then(|l| self.ice.on_state(l, now));
        if state == S::Connected && was != S::Connected {
            // Connected again (after a drop or a restart): what was measured
            // before says nothing of this path.
            self.quality.reset();
            self.class = None;
            // Measure the new path now; the viewer's acknowledgment of the
            // PING also releases video stuck behind an acknowledgment lost in
            // the outage.
            if let Some(k) = self.keepalive.as_mut() {
                k.ping_now(now);
            }
            if was != S::Connecting {
                // Back after a drop: a fresh picture, and the keepalive starts over.
                self.gate.request_keyframe();
                if let Some(rate) = self.rate.as_mut() {
                    rate.resume();
                }
                self.actions.push_back(LinkAction::Restored);
                self.actions.push_back(LinkAction::CaptureNow);
                if let Some(k) = self.keepalive.as_mut() {
                    k.on_activity(now);
                }
            }
        }
        if matches!(state, S::Disconnected | S::Failed | S::Closed) {
            self.actions.push_back(LinkAction::ReleaseInput);
        }
        if let Some(action) = recover {
            self.actions.push_back(LinkAction::Recover {
                action,
                reason: RecoverReason::Connection,
            });
        }
    }

    /// The peer connection was replaced by a new one (same session): nothing
    /// measured or opened on the old one carries over, and the first frame
    /// is a keyframe.
    pub fn handle_rebuilt(&mut self) {
        self.pc_state = RTCPeerConnectionState::Connecting;
        self.video_open = false;
        self.commands_open = false;
        self.keepalive = None;
        self.quality.reset();
        self.path_answers = 0;
        self.gate.request_keyframe();
        if let Some(rate) = self.rate.as_mut() {
            rate.new_path();
        }
    }

    pub fn handle_channel(&mut self, now: Instant, label: Label, open: bool) {
        match label {
            Label::Video => {
                self.video_open = open;
                if open {
                    self.actions.push_back(LinkAction::CaptureNow);
                }
            }
            Label::Commands => {
                self.commands_open = open;
                if open {
                    self.keepalive = Some(Keepalive::new(self.keepalive_config, now));
                } else {
                    self.actions.push_back(LinkAction::ReleaseInput);
                }
            }
        }
    }

    /// A `\x00PONG` arrived.
    pub fn handle_pong(&mut self, now: Instant) {
        if let Some(k) = self.keepalive.as_mut() {
            k.on_pong(now);
            if let Some(rtt) = k.rtt() {
                if self.recent_rtts.len() == RTTS_KEPT {
                    self.recent_rtts.pop_front();
                }
                self.recent_rtts.push_back(rtt);
                self.quality.on_rtt(now, rtt);
                if let Some(rate) = self.rate.as_mut() {
                    rate.on_rtt(now, rtt);
                }
            }
        }
        self.after_heard();
    }

    /// Anything else arrived from the viewer (even a malformed message is a sign of life).
    pub fn handle_activity(&mut self, now: Instant) {
        if let Some(k) = self.keepalive.as_mut() {
            k.on_activity(now);
        }
        self.after_heard();
    }

    fn after_heard(&mut self) {
        if let Some(k) = &self.keepalive {
            self.rtt = k.rtt();
            self.unresponsive = k.is_dead();
        }
    }

    /// The viewer asked for a keyframe; honoured unless one went out very recently.
    pub fn handle_keyframe_request(&mut self, now: Instant) -> bool {
        let recent = self
            .last_keyframe_at
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_KEYFRAME_REQUEST_GAP);
        if !recent {
            self.gate.request_keyframe();
            self.actions.push_back(LinkAction::CaptureNow);
        }
        !recent
    }

    /// The pair's statistics, read after [`LinkAction::SamplePath`] (`None`: no pair yet).
    pub fn handle_path_sample(&mut self, now: Instant, sample: Option<PathSample>) {
        if !self.connected() {
            return; // it went down while being read
        }
        if let Some(sample) = sample {
            if self.route.replace(sample.route) != Some(sample.route) {
                self.actions.push_back(LinkAction::RouteChanged(sample.route));
            }
            self.ice.set_relayed(sample.route == Route::Relayed);
            match sample.route {
                Route::Relayed => {
                    let since = *self.relayed_since.get_or_insert(now);
                    if self
                        .relay_recheck
                        .is_some_and(|every| now.saturating_duration_since(since) >= every)
                    {
                        self.relayed_since = Some(now);
                        self.actions.push_back(LinkAction::RecheckRelay);
                    }
                }
                Route::Direct => self.relayed_since = None,
            }
            if sample.probes_answered < self.path_answers {
                self.path_answers = 0; // a new pair after a restart
            }
            if let Some(rtt) = sample.rtt.filter(|_| sample.probes_answered > self.path_answers) {
                self.quality.on_rtt(now, rtt);
            }
            self.path_answers = sample.probes_answered;
            self.quality.on_probes(now, sample.probes_sent, sample.probes_answered);
            if let Some(rate) = self.rate.as_mut() {
                rate.on_path_packets(now, sample.packets_received);
            }
        }
        let Some(metrics) = self.quality.metrics(now) else {
            return;
        };
        let quality = metrics.classify();
        self.metrics = Some(metrics);
        let changed = self.class.replace(quality) != Some(quality);
        // Reported first, then shown: the server's view is what a resuming peer reads.
        if changed
            || self
                .quality_reported_at
                .is_none_or(|t| now.saturating_duration_since(t) >= QUALITY_REPORT_INTERVAL)
        {
            self.quality_reported_at = Some(now);
            self.actions.push_back(LinkAction::ReportQuality(metrics));
        }
        if changed {
            self.actions.push_back(LinkAction::QualityChanged { quality, metrics });
        }
        if let Some(action) = self.ice.on_quality(quality == Quality::Poor, now) {
            self.actions.push_back(LinkAction::Recover {
                action,
                reason: RecoverReason::PoorQuality,
            });
        }
    }

    /// The video queue as it stands (`queued`: the channel's outstanding bytes).
    pub fn handle_queue(&mut self, now: Instant, queued: usize) {
        self.video.queued_bytes = queued;
        if let Some(rate) = self.rate.as_mut() {
            rate.on_queue(now, queued);
        }
        if let Some(report) = self.gate.poll_report(now, queued) {
            self.actions.push_back(LinkAction::Gate(report));
        }
    }

    /// Whether this viewer takes the next frame. Only over a connected path:
    /// frames queued into a dead one would all arrive, stale, when it comes
    /// back (it gets a fresh keyframe instead). With `pace: Some(lead)`,
    /// rate control holds the frame back until the path will have carried
    /// the earlier ones by the time this one is ready, `lead` from now (the
    /// shell paces only a viewer that does not share frames with others: a
    /// frame held from one viewer but sent to another would leave the first
    /// without its reference).
    pub fn frame_wanted(&mut self, now: Instant, queued: usize, pace: Option<Duration>) -> FrameDecision {
        if let Some(lead) = pace.filter(|_| self.connected()) {
            if let Some(Pace::At(at)) = self.rate.as_mut().map(|r| r.pace(now, lead)) {
                return FrameDecision::Pace(at);
            }
        }
        let admission = if self.connected() {
            self.gate.admit(now, queued)
        } else {
            self.gate.skip()
        };
        match admission {
            Admission::Send { keyframe } => FrameDecision::Send { keyframe },
            Admission::Drop => {
                self.dropped_since_send = true;
                FrameDecision::Drop
            }
        }
    }

    /// A frame was encoded and sent to other viewers, not this one: the
    /// frames after it reference a picture this viewer never got.
    pub fn handle_withheld(&mut self) {
        self.gate.request_keyframe();
    }

    /// The encoder bitrate this viewer's path carries, if rate control runs.
    pub fn target_kbps(&self) -> Option<u32> {
        self.rate.as_ref().map(|r| r.target_bps() / 1000)
    }

    /// What this viewer's path carries a big frame at, if rate control runs
    /// (see [`crate::rate::RateControl::capacity_bps`]).
    pub fn capacity_bps(&self, now: Instant) -> Option<f64> {
        self.rate.as_ref().map(|r| r.capacity_bps(now))
    }

    /// How long ago the oldest byte this viewer has not acknowledged was due,
    /// if rate control runs (see [`crate::rate::RateControl::overdue`]).
    pub fn overdue(&self, now: Instant) -> Option<Duration> {
        self.rate.as_ref().map(|r| r.overdue(now))
    }

    /// The next frame's keyframe must be a keyframe (a new display, a new viewer).
    pub fn request_keyframe(&mut self) {
        self.gate.request_keyframe();
    }

    /// The id the next frame sent to this viewer carries (ids count frames
    /// sent, so a gap means real loss).
    pub fn next_frame_id(&self) -> u32 {
        self.next_frame_id
    }

    /// A frame could not be sent whole: the viewer lacks a reference now.
    pub fn handle_send_failed(&mut self) {
        self.gate.request_keyframe();
    }

    /// A frame of `bytes`, captured at `capture_us` (Unix µs), went out;
    /// `queued` is the channel's outstanding bytes after it.
    pub fn handle_sent(&mut self, now: Instant, keyframe: bool, bytes: usize, queued: usize, capture_us: u64) {
        self.shown.on_sent(self.next_frame_id, capture_us);
        self.next_frame_id = self.next_frame_id.wrapping_add(1);
        if self.dropped_since_send && !keyframe {
            self.video.keyframe_after_every_drop = false;
        }
        self.dropped_since_send = false;
        if keyframe {
            self.video.keyframes_sent += 1;
            self.last_keyframe_at = Some(now);
        }
        self.video.frames_sent += 1;
        self.video.bytes_sent += bytes as u64;
        self.video.max_frame_bytes = self.video.max_frame_bytes.max(bytes);
        self.gate.sent(keyframe, queued);
        self.video.queued_bytes = queued;
        if let Some(rate) = self.rate.as_mut() {
            rate.on_sent(now, bytes);
            rate.on_queue(now, queued);
        }
    }

    /// The viewer drew frame `frame` `after_ms` after it arrived; the message
    /// came in at `now_us` (Unix µs). A frame not sent lately, acknowledged
    /// twice or held impossibly long is refused and changes nothing.
    pub fn handle_shown(&mut self, now_us: u64, frame: u32, after_ms: u32) -> Result<Duration, ShownError> {
        let floor = self.recent_rtts.iter().min().copied();
        self.shown.on_shown(now_us, frame, after_ms, floor)
    }

    /// What to tell the viewer about its link, if acknowledgements came in
    /// since the last report: capture-to-screen times and the path estimate.
    pub fn link_report(&mut self) -> Option<Control> {
        let f = self.shown.report()?;
        Some(Control::LinkReport {
            shown_p50_ms: f.p50_ms,
            shown_p95_ms: f.p95_ms,
            estimate_kbps: self.rate.as_ref().map(|r| (r.estimate_bps() / 1000.0) as u32),
        })
    }

    /// Writes what the link knows into the viewer's stats.
    pub fn fill_stats(&self, now: Instant, stats: &mut ViewerStats) {
        stats.state = self.pc_state.to_string();
        stats.frames_sent = self.video.frames_sent;
        stats.bytes_sent = self.video.bytes_sent;
        stats.keyframes_sent = self.video.keyframes_sent;
        stats.frames_dropped = self.gate.dropped_total();
        stats.queued_bytes = self.video.queued_bytes;
        stats.max_queued_bytes = self.gate.max_queued_seen();
        stats.max_frame_bytes = self.video.max_frame_bytes;
        stats.keyframe_after_every_drop = self.video.keyframe_after_every_drop;
        stats.pings_sent = self.pings_sent;
        stats.rtt_ms = self.rtt.map(|d| d.as_secs_f64() * 1000.0);
        stats.quality = self.class;
        stats.latency_ms = self.metrics.map(|m| m.latency_ms);
        stats.jitter_ms = self.metrics.map(|m| m.jitter_ms);
        stats.loss_percent = self.metrics.map(|m| m.packet_loss_percent);
        stats.unresponsive = self.unresponsive;
        let shown = self.shown.figures();
        stats.shown_p50_ms = shown.map(|f| f.p50_ms);
        stats.shown_p95_ms = shown.map(|f| f.p95_ms);
        stats.route = self.route;
        if let Some(rate) = &self.rate {
            stats.estimate_kbps = Some(rate.estimate_bps() / 1000.0);
            stats.target_kbps = Some(rate.target_bps() / 1000);
            stats.queue_delay_ms = Some(rate.queue_delay().as_secs_f64() * 1000.0);
            stats.delivery_kbps = rate.delivery_bps().map(|b| b / 1000.0);
            stats.overdue_ms = Some(rate.overdue(now).as_secs_f64() * 1000.0);
            stats.burst_kbps = rate.burst_bps(now).map(|b| b / 1000.0);
            (stats.paced_late, stats.paced_bucket) = rate.held_counts();
        }
    }
}

#[cfg(test)]
mod tests {
    //! Minutes of a link's life in driven time: the clock jumps from one
    //! [`ViewerLink::poll_timeout`] to the next, so these also check that the
    //! machine says when it next needs the time.

    use super::*;
    use RTCPeerConnectionState as S;

    const SEC: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn config() -> LinkConfig {
        LinkConfig {
            limits: QueueLimits::default(),
            keepalive: KeepaliveConfig::host(),
            disconnected_timeout: Duration::from_secs(5),
            relay_recheck: Some(RELAY_RECHECK),
            rate: None,
        }
    }

    impl ViewerLink {
        /// The gate's decision, unpaced, in the gate's terms.
        fn frame_wanted_test(&mut self, now: Instant, queued: usize) -> Admission {
            match self.frame_wanted(now, queued, None) {
                FrameDecision::Send { keyframe } => Admission::Send { keyframe },
                FrameDecision::Drop => Admission::Drop,
                FrameDecision::Pace(_) => panic!("not paced"),
            }
        }
    }

    /// A link whose connection is up and whose `commands` channel opened at `t0`.
    fn connected(t0: Instant) -> ViewerLink {
        let mut link = ViewerLink::new(config(), t0);
        link.handle_state(t0, S::Connected);
        link.handle_channel(t0, Label::Commands, true);
        link.handle_channel(t0, Label::Video, true);
        drain(&mut link);
        link
    }

    fn drain(link: &mut ViewerLink) -> Vec<LinkAction> {
        std::iter::from_fn(|| link.poll_action()).collect()
    }

    /// Runs the link from `*now` to `until`, jumping between its deadlines;
    /// every action goes to `on` with the time it was decided at.
    fn drive(
        link: &mut ViewerLink,
        now: &mut Instant,
        until: Instant,
        mut on: impl FnMut(&mut ViewerLink, Instant, LinkAction),
    ) {
        let mut steps = 0;
        loop {
            while let Some(action) = link.poll_action() {
                on(link, *now, action);
            }
            match link.poll_timeout() {
                Some(at) if at <= until => {
                    *now = (*now).max(at);
                    link.handle_timeout(*now);
                }
                _ => break,
            }
            steps += 1;
            assert!(steps < 100_000, "poll_timeout does not move on");
        }
        *now = until;
    }

    fn secs(t0: Instant, at: Instant) -> f64 {
        (at - t0).as_secs_f64()
    }

    fn sample(route: Route, rtt_ms: u64, sent: u64, answered: u64) -> PathSample {
        PathSample {
            rtt: Some(Duration::from_millis(rtt_ms)),
            probes_sent: sent,
            probes_answered: answered,
            route,
            packets_received: 0,
        }
    }

    #[test]
    fn a_silent_viewer_is_pinged_every_5_s_declared_dead_at_15_s_and_its_input_released() {
        let t0 = Instant::now();
        let mut now = t0;
        let mut link = connected(t0);
        let mut seen = Vec::new();
        drive(&mut link, &mut now, t0 + 60 * SEC, |_, at, a| {
            if !matches!(a, LinkAction::SamplePath) {
                seen.push((secs(t0, at), a));
            }
        });
        let pings: Vec<f64> = seen
            .iter()
            .filter(|(_, a)| *a == LinkAction::SendPing)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(pings, (1..=12).map(|i| i as f64 * 5.0).collect::<Vec<_>>());
        let dead: Vec<&(f64, LinkAction)> = seen
            .iter()
            .filter(|(_, a)| matches!(a, LinkAction::Unresponsive { .. } | LinkAction::ReleaseInput))
            .collect();
        assert_eq!(
            dead,
            [
                &(15.0, LinkAction::Unresponsive { silent: 15 * SEC }),
                &(15.0, LinkAction::ReleaseInput)
            ],
            "declared dead once, its input released at once"
        );
        let mut stats = ViewerStats::default();
        link.fill_stats(Instant::now(), &mut stats);
        assert!(stats.unresponsive);
        assert_eq!(stats.pings_sent, 12);

        // Heard again: alive, and dead again only after another 15 s of silence.
        link.handle_activity(now);
        link.fill_stats(Instant::now(), &mut stats);
        assert!(!stats.unresponsive);
        let back = now;
        let mut dead_again = None;
        drive(&mut link, &mut now, back + 30 * SEC, |_, at, a| {
            if matches!(a, LinkAction::Unresponsive { .. }) {
                dead_again.get_or_insert(at);
            }
        });
        assert_eq!(dead_again.map(|at| secs(back, at)), Some(15.0));
    }

    #[test]
    fn answered_pings_keep_the_viewer_alive_and_give_the_round_trip() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        let mut pong_due = None;
        let mut pings = 0;
        // Ten minutes in 100 ms ticks; each PING answered 80 ms later.
        for tick in 1..=6000u32 {
            let now = t0 + Duration::from_millis(100) * tick;
            if let Some(due) = pong_due.filter(|&due| due <= now) {
                link.handle_pong(due);
                pong_due = None;
            }
            link.handle_timeout(now);
            for a in drain(&mut link) {
                match a {
                    LinkAction::SendPing => {
                        pings += 1;
                        pong_due = Some(now + Duration::from_millis(80));
                    }
                    LinkAction::Unresponsive { .. } | LinkAction::ReleaseInput => panic!("{a:?} at tick {tick}"),
                    _ => {}
                }
            }
        }
        assert_eq!(pings, 120);
        let mut stats = ViewerStats::default();
        link.fill_stats(Instant::now(), &mut stats);
        assert_eq!(stats.rtt_ms, Some(80.0));
        assert!(!stats.unresponsive);
    }

    #[test]
    fn a_disconnect_outlasting_5_s_restarts_ice_and_restarts_that_never_connect_rebuild() {
        let t0 = Instant::now();
        let mut now = t0;
        let mut link = connected(t0);
        now += SEC;
        link.handle_state(now, S::Disconnected);
        assert_eq!(
            drain(&mut link),
            [LinkAction::ReleaseInput],
            "input released at the first doubt"
        );
        let mut recoveries = Vec::new();
        drive(&mut link, &mut now, t0 + 120 * SEC, |link, at, a| {
            if let LinkAction::Recover { action, reason } = a {
                assert_eq!(reason, RecoverReason::Connection);
                recoveries.push((secs(t0, at), action));
                match action {
                    // The restart's offer goes out; ICE checks, never connects.
                    IceAction::RestartIce => link.handle_state(at, S::Connecting),
                    IceAction::Rebuild => link.handle_rebuilt(),
                }
            }
        });
        use IceAction::*;
        assert_eq!(
            recoveries[..4],
            [
                (6.0, RestartIce),
                (21.0, RestartIce),
                (36.0, RestartIce),
                (51.0, Rebuild)
            ],
            "5 s of disconnected, then a restart per 15 s, then a new connection"
        );
        // The new connection connects: the count starts over, a keyframe first.
        link.handle_state(now, S::Connected);
        drain(&mut link);
        assert_eq!(link.restarts(), 0);
        assert_eq!(link.frame_wanted_test(now, 0), Admission::Send { keyframe: true });
    }

    #[test]
    fn failed_restarts_at_once() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        link.handle_state(t0 + SEC, S::Failed);
        assert_eq!(
            drain(&mut link),
            [
                LinkAction::ReleaseInput,
                LinkAction::Recover {
                    action: IceAction::RestartIce,
                    reason: RecoverReason::Connection
                }
            ]
        );
    }

    #[test]
    fn acknowledged_frames_give_capture_to_screen_times_and_one_report_each() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        let us = 1_000_000_000u64;
        link.handle_sent(t0, true, 40_000, 40_000, us);
        link.handle_sent(t0, false, 2_000, 2_000, us + 33_000);
        // Frame 0 drawn 150 ms after capture (no round trip known yet).
        assert_eq!(link.handle_shown(us + 150_000, 0, 20).unwrap(), 150 * MS);
        // Lies and repeats are refused.
        assert!(link.handle_shown(us + 160_000, 0, 20).is_err());
        assert!(link.handle_shown(us + 160_000, 9, 0).is_err());
        assert!(link.handle_shown(us + 60_000, 1, 50).is_err());
        assert_eq!(
            link.link_report(),
            Some(Control::LinkReport {
                shown_p50_ms: 150,
                shown_p95_ms: 150,
                estimate_kbps: None
            })
        );
        assert_eq!(link.link_report(), None, "nothing new, nothing said");
        let mut stats = ViewerStats::default();
        link.fill_stats(t0, &mut stats);
        assert_eq!((stats.shown_p50_ms, stats.shown_p95_ms), (Some(150), Some(150)));
    }

    #[test]
    fn back_after_a_drop_the_viewer_gets_a_keyframe_and_a_ping_at_once() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        assert_eq!(link.frame_wanted_test(t0, 0), Admission::Send { keyframe: true });
        link.handle_sent(t0, true, 40_000, 40_000, 0);
        assert_eq!(link.frame_wanted_test(t0, 0), Admission::Send { keyframe: false });
        link.handle_sent(t0, false, 2_000, 2_000, 0);

        let down = t0 + 2 * SEC;
        link.handle_state(down, S::Disconnected);
        drain(&mut link);
        // Nothing goes into a dead path.
        assert_eq!(link.frame_wanted_test(down, 0), Admission::Drop);
        let up = down + 3 * SEC;
        link.handle_state(up, S::Connected);
        assert_eq!(drain(&mut link), [LinkAction::Restored, LinkAction::CaptureNow]);
        assert!(link.poll_timeout() <= Some(up), "the new path is measured at once");
        link.handle_timeout(up);
        assert!(drain(&mut link).contains(&LinkAction::SendPing));
        assert_eq!(link.frame_wanted_test(up, 0), Admission::Send { keyframe: true });
        link.handle_sent(up, true, 40_000, 40_000, 0);
        let mut stats = ViewerStats::default();
        link.fill_stats(Instant::now(), &mut stats);
        assert_eq!(
            (stats.frames_sent, stats.keyframes_sent, stats.frames_dropped),
            (3, 2, 1)
        );
        assert!(stats.keyframe_after_every_drop);
        assert_eq!(stats.state, "connected");
        assert_eq!(link.next_frame_id(), 3, "ids count frames sent, not frames dropped");
    }

    #[test]
    fn a_first_connection_asks_for_nothing_but_its_first_keyframe() {
        let t0 = Instant::now();
        let mut link = ViewerLink::new(config(), t0);
        link.handle_state(t0, S::Connecting);
        link.handle_state(t0, S::Connected);
        assert_eq!(drain(&mut link), [], "not a restoration");
        assert_eq!(link.frame_wanted_test(t0, 0), Admission::Send { keyframe: true });
    }

    #[test]
    fn a_relayed_link_looks_for_a_direct_path_every_two_minutes() {
        let t0 = Instant::now();
        let mut now = t0;
        let mut link = connected(t0);
        let mut probes = 0;
        let mut route = Route::Relayed;
        let mut rechecks = Vec::new();
        let mut routes = Vec::new();
        let mut on = |link: &mut ViewerLink, at: Instant, a: LinkAction| match a {
            LinkAction::SamplePath => {
                probes += 1;
                link.handle_path_sample(at, Some(sample(route, 20, probes, probes)));
            }
            LinkAction::RecheckRelay => rechecks.push(secs(t0, at)),
            LinkAction::RouteChanged(r) => routes.push(r),
            LinkAction::SendPing => link.handle_pong(at),
            _ => {}
        };
        drive(&mut link, &mut now, t0 + 600 * SEC, &mut on);
        assert_eq!(rechecks, [121.0, 241.0, 361.0, 481.0]);
        route = Route::Direct;
        let mut on = |link: &mut ViewerLink, at: Instant, a: LinkAction| match a {
            LinkAction::SamplePath => link.handle_path_sample(at, Some(sample(route, 20, 1000, 1000))),
            LinkAction::RecheckRelay => panic!("a direct path is not rechecked"),
            LinkAction::RouteChanged(r) => routes.push(r),
            LinkAction::SendPing => link.handle_pong(at),
            _ => {}
        };
        drive(&mut link, &mut now, t0 + 1200 * SEC, &mut on);
        assert_eq!(routes, [Route::Relayed, Route::Direct]);
    }

    #[test]
    fn poor_quality_is_reported_at_once_and_restarts_after_10_s_at_most_once_a_minute() {
        let t0 = Instant::now();
        let mut now = t0;
        let mut link = connected(t0);
        let mut n = 0;
        let mut changes = Vec::new();
        let mut reports = Vec::new();
        let mut restarts = Vec::new();
        // 600 ms round trips, 15 % of checks unanswered: poor.
        drive(&mut link, &mut now, t0 + 180 * SEC, |link, at, a| match a {
            LinkAction::SamplePath => {
                n += 20;
                link.handle_path_sample(at, Some(sample(Route::Direct, 600, n, n * 85 / 100)));
            }
            LinkAction::QualityChanged { quality, .. } => changes.push((secs(t0, at), quality)),
            LinkAction::ReportQuality(m) => reports.push((secs(t0, at), m.classify())),
            LinkAction::Recover { action, reason } => {
                assert_eq!((action, reason), (IceAction::RestartIce, RecoverReason::PoorQuality));
                restarts.push(secs(t0, at));
            }
            LinkAction::SendPing => link.handle_pong(at),
            _ => {}
        });
        assert_eq!(changes, [(1.0, Quality::Poor)], "one change, shown at the first sample");
        assert_eq!(reports.first(), Some(&(1.0, Quality::Poor)), "reported with the change");
        let gaps: Vec<f64> = reports.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(gaps.iter().all(|&g| g == 10.0), "then every 10 s: {gaps:?}");
        assert_eq!(restarts, [11.0, 71.0, 131.0], "held 10 s, then once a minute");
    }

    #[test]
    fn a_link_that_is_not_connected_is_not_sampled() {
        let t0 = Instant::now();
        let mut now = t0;
        let mut link = ViewerLink::new(config(), t0);
        link.handle_channel(t0, Label::Commands, true);
        drive(&mut link, &mut now, t0 + 30 * SEC, |link, at, a| {
            assert_ne!(a, LinkAction::SamplePath);
            if a == LinkAction::SendPing {
                link.handle_pong(at);
            }
        });
        // A sample read just as the link went down changes nothing.
        link.handle_path_sample(now, Some(sample(Route::Relayed, 900, 10, 1)));
        assert_eq!(drain(&mut link), []);
    }

    #[test]
    fn keyframe_requests_right_after_a_keyframe_are_ignored() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        assert_eq!(link.frame_wanted_test(t0, 0), Admission::Send { keyframe: true });
        link.handle_sent(t0, true, 40_000, 0, 0);
        // A viewer asking over and over does not pin the encoder to keyframes.
        assert!(!link.handle_keyframe_request(t0 + Duration::from_millis(100)));
        assert_eq!(
            link.frame_wanted_test(t0 + Duration::from_millis(100), 0),
            Admission::Send { keyframe: false }
        );
        assert!(link.handle_keyframe_request(t0 + Duration::from_millis(300)));
        assert_eq!(drain(&mut link), [LinkAction::CaptureNow]);
        assert_eq!(
            link.frame_wanted_test(t0 + Duration::from_millis(300), 0),
            Admission::Send { keyframe: true }
        );
    }

    #[test]
    fn a_rebuilt_connection_starts_over() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        link.handle_sent(t0, true, 40_000, 0, 0);
        link.handle_rebuilt();
        assert!(!link.connected() && !link.commands_open() && !link.video_open());
        assert_eq!(link.poll_timeout(), None, "no keepalive before the new channel opens");
        link.handle_state(t0 + SEC, S::Connected);
        assert_eq!(link.frame_wanted_test(t0 + SEC, 0), Admission::Send { keyframe: true });
    }

    #[test]
    fn a_paced_viewer_waits_for_its_path_instead_of_dropping_and_needs_no_keyframe() {
        let t0 = Instant::now();
        let mut link = ViewerLink::new(
            LinkConfig {
                rate: Some(RateConfig::default()),
                ..config()
            },
            t0,
        );
        link.handle_state(t0, S::Connected);
        link.handle_channel(t0, Label::Video, true);
        drain(&mut link);
        assert_eq!(
            link.frame_wanted(t0, 0, Some(Duration::ZERO)),
            FrameDecision::Send { keyframe: true }
        );
        // A 125 KB keyframe: a second at the 1 Mbit/s start estimate.
        link.handle_sent(t0, true, 125_000, 125_000, 0);
        let FrameDecision::Pace(at) = link.frame_wanted(t0 + Duration::from_millis(33), 125_000, Some(Duration::ZERO))
        else {
            panic!("the next frame waits for the path");
        };
        let off = at.max(t0 + SEC) - at.min(t0 + SEC);
        assert!(
            off < MS,
            "paced to when the keyframe will have left at the estimate: {off:?} off"
        );
        // Unpaced (several viewers), the gate alone decides: under its limit, send.
        assert_eq!(
            link.frame_wanted(t0 + Duration::from_millis(33), 125_000, None),
            FrameDecision::Send { keyframe: false }
        );
        // The path delivered it in time: the next frame goes, a P-frame.
        link.handle_queue(at, 0);
        assert_eq!(
            link.frame_wanted(at, 0, Some(Duration::ZERO)),
            FrameDecision::Send { keyframe: false }
        );
        let mut stats = ViewerStats::default();
        link.fill_stats(Instant::now(), &mut stats);
        assert_eq!(stats.frames_dropped, 0);
        assert_eq!(stats.estimate_kbps, Some(1000.0));
        assert_eq!(stats.target_kbps, Some(850));
        assert_eq!(link.target_kbps(), Some(850));
    }

    #[test]
    fn a_viewer_that_missed_an_encoded_frame_gets_a_keyframe() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        assert_eq!(link.frame_wanted_test(t0, 0), Admission::Send { keyframe: true });
        link.handle_sent(t0, true, 40_000, 0, 0);
        assert_eq!(link.frame_wanted_test(t0, 0), Admission::Send { keyframe: false });
        link.handle_withheld();
        assert_eq!(link.frame_wanted_test(t0, 0), Admission::Send { keyframe: true });
    }

    #[test]
    fn without_rate_control_nothing_is_paced() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        link.handle_sent(t0, true, 125_000, 125_000, 0);
        assert_eq!(
            link.frame_wanted(t0, 125_000, Some(Duration::ZERO)),
            FrameDecision::Send { keyframe: false }
        );
        assert_eq!(link.target_kbps(), None);
    }

    #[test]
    fn a_closed_commands_channel_releases_input() {
        let t0 = Instant::now();
        let mut link = connected(t0);
        link.handle_channel(t0, Label::Commands, false);
        assert_eq!(drain(&mut link), [LinkAction::ReleaseInput]);
        assert!(!link.commands_open());
    }
}
