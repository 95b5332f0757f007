//! The host screen's state and the notices worth a toast, folded from the
//! running host's events and statistics. Pure: wall-clock milliseconds are
//! passed in, so tests drive a five-minute grace window in microseconds.
//!
//! The webview gets a [`HostView`] after every change (it shows it as is and
//! counts the grace window down from `grace_deadline_ms` by itself) and each
//! [`Notice`] once (it turns them into toasts). Nothing here is a secret
//! except the room code, which the host screen must show.

use std::time::Duration;

use holdfast_peer::host::{HostEvent, HostStats, RoomInfo};
use holdfast_peer::transfer::{TransferOutput, TransferState};
use holdfast_session::{Metrics, Quality};
use serde::Serialize;

use crate::recovery::{ms, Recovery};
use crate::sharing::Reach;

/// Wall-clock milliseconds since the Unix epoch: the time this module is fed.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Warn this long before a dropped session's grace window runs out.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(60);
/// At most one "frames are being dropped" notice this often.
pub const DROP_NOTICE_INTERVAL: Duration = Duration::from_secs(30);
/// Drops are told only if the link is still up this long after they began
/// (an outage's first seconds drop frames too, before ICE notices).
pub const DROP_NOTICE_DELAY: Duration = Duration::from_secs(6);

/// What the connection is doing, as the state line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The room is being opened.
    Starting,
    /// Room open, no viewer yet.
    Waiting,
    Connecting,
    Connected,
    /// A viewer's connection dropped; recovery has not started yet.
    Disconnected,
    /// Retrying: the signalling connection (attempt n, next try at) or a viewer's path (ICE restart n).
    Reconnecting,
    /// A viewer's connection failed; a new one is being built.
    Failed,
    /// Over: the grace window ran out, or sharing stopped.
    Ended,
}

/// Frame and bit rates from cumulative counters, taken over at least
/// `min_ms` so one late statistics update does not swing them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateMeter {
    /// (Unix ms, frames, bytes) when the rates were last taken.
    mark: Option<(u64, u64, u64)>,
}

impl RateMeter {
    /// Feeds the counters as of `now_ms`; `Some((fps, kbit/s))` when due.
    pub fn update(&mut self, now_ms: u64, frames: u64, bytes: u64, min_ms: u64) -> Option<(f64, f64)> {
        match self.mark {
            Some((at, f0, b0)) if now_ms >= at + min_ms => {
                let secs = (now_ms - at) as f64 / 1000.0;
                self.mark = Some((now_ms, frames, bytes));
                Some((
                    frames.saturating_sub(f0) as f64 / secs,
                    bytes.saturating_sub(b0) as f64 * 8.0 / 1000.0 / secs,
                ))
            }
            Some(_) => None,
            None => {
                self.mark = Some((now_ms, frames, bytes));
                None
            }
        }
    }
}

/// Which connection a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// The host's own connection to the signalling server.
    Server,
    /// A viewer's peer connection.
    Viewer,
    /// The desktop viewer's peer connection to the host it views.
    Host,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewerView {
    pub peer_id: String,
    /// The peer connection's state (`connecting`, `connected`, `disconnected`, ...).
    pub state: String,
    pub control: bool,
    pub quality: Option<Quality>,
    pub metrics: Option<Metrics>,
    pub frames_dropped: u64,
    /// Frames and encoded kbit/s sent to this viewer, over the last statistics interval.
    pub fps: Option<f64>,
    pub bitrate_kbps: Option<f64>,
    /// Capture to the viewer's screen, median, from its acknowledgements.
    pub shown_ms: Option<u32>,
    /// Files, chat and what may cross with this viewer.
    pub transfer: TransferState,
    #[serde(skip)]
    sent: RateMeter,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostView {
    pub phase: Phase,
    pub room: Option<RoomInfo>,
    /// Attempts, next try and grace deadline (flattened into the view's JSON).
    #[serde(flatten)]
    pub recovery: Recovery,
    /// The session ended because that window ran out.
    pub expired: bool,
    pub viewers: Vec<ViewerView>,
    pub control_enabled: bool,
    /// The host's switches beside control: files and the clipboard.
    pub files_enabled: bool,
    pub clipboard_enabled: bool,
    /// This machine's clipboard could be opened (else the switch does nothing).
    pub clipboard_available: bool,
    /// Who can open the viewer link (None until the server is known).
    pub reach: Option<Reach>,
    /// Unattended access: shown plainly while it is on.
    pub unattended: crate::unattended::UnattendedStatus,
    /// Why it ended or failed to start, for people.
    pub error: Option<String>,
}

/// Something the person must notice, shown once as a toast.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Notice {
    JoinRequest {
        peer_id: String,
        address: String,
        timeout_ms: u64,
    },
    Joined {
        peer_id: String,
        control: bool,
    },
    Left {
        peer_id: String,
    },
    /// The server announced a viewer (or rights) this host never granted; refused.
    Refused {
        peer_id: String,
    },
    /// A viewer failed the end-to-end check of the code (a wrong code, or
    /// someone in the middle: `reason` says which) and was turned away.
    CheckFailed {
        address: String,
        reason: holdfast_proto::commands::AuthFailure,
    },
    /// Too many failed checks: the host made up a new code (shown on screen).
    CodeChanged,
    /// A viewer proved the permanent password and was admitted without asking.
    UnattendedJoin {
        address: String,
    },
    ConnectionLost {
        link: Link,
    },
    Reconnecting {
        link: Link,
        attempt: u32,
        retry_in_ms: u64,
    },
    Restored {
        link: Link,
    },
    FramesDropped {
        count: u64,
    },
    ExpiringSoon {
        left_ms: u64,
    },
    Expired {
        message: String,
    },
    /// Viewer side: the host let us in, with control or to view only.
    Admitted {
        control: bool,
    },
    /// Viewer side: the host switched our control off or back on.
    ControlChanged {
        allowed: bool,
    },
    /// Viewer side: the host's own connection to the server dropped, or came back.
    HostAway {
        away: bool,
    },
    /// Something went wrong that the person should know (in words for people).
    Error {
        message: String,
    },
    /// A file from the other side was checked and saved here.
    FileSaved {
        path: String,
    },
    /// A transfer (either way) ended without success.
    TransferFailed {
        name: String,
        error: String,
    },
    /// A viewer offers a file: the host screen asks.
    FileOffered {
        peer_id: String,
        id: u32,
        name: String,
        size: u64,
        exists: bool,
    },
    /// A chat line from a viewer.
    Chat {
        peer_id: String,
        text: String,
    },
}

/// Folds host events into a [`HostView`] and [`Notice`]s.
#[derive(Debug)]
pub struct HostTracker {
    view: HostView,
    ice_attempts: u32,
    drops_seen: u64,
    drops_pending_since: Option<u64>,
    last_drop_notice_ms: Option<u64>,
}

fn is_down(state: &str) -> bool {
    matches!(state, "disconnected" | "failed")
}

impl HostTracker {
    pub fn new(grace: Duration) -> Self {
        HostTracker {
            view: HostView {
                phase: Phase::Starting,
                room: None,
                recovery: Recovery::new(grace),
                expired: false,
                viewers: Vec::new(),
                control_enabled: true,
                files_enabled: true,
                clipboard_enabled: true,
                clipboard_available: false,
                reach: None,
                unattended: Default::default(),
                error: None,
            },
            ice_attempts: 0,
            drops_seen: 0,
            drops_pending_since: None,
            last_drop_notice_ms: None,
        }
    }

    /// Who can open the link this share gives out.
    pub fn set_reach(&mut self, reach: Reach) {
        self.view.reach = Some(reach);
    }

    pub fn set_unattended(&mut self, status: crate::unattended::UnattendedStatus) {
        self.view.unattended = status;
    }

    pub fn view(&self) -> &HostView {
        &self.view
    }

    /// The room is open.
    pub fn started(&mut self, room: RoomInfo) {
        self.view.room = Some(room);
        self.recompute();
    }

    /// Sharing could not start, or stopped: the screen says why.
    pub fn ended(&mut self, message: impl Into<String>) -> Vec<Notice> {
        let message = message.into();
        let was = self.view.phase;
        self.finish(Some(message.clone()));
        if was == Phase::Ended {
            Vec::new()
        } else {
            vec![Notice::Expired { message }]
        }
    }

    /// The person stopped sharing: over, without a toast.
    pub fn stopped(&mut self) {
        self.finish(None);
    }

    fn finish(&mut self, error: Option<String>) {
        self.view.phase = Phase::Ended;
        self.view.error = error;
        self.view.recovery.finish();
    }

    pub fn on_event(&mut self, ev: &HostEvent, now_ms: u64) -> Vec<Notice> {
        if self.view.phase == Phase::Ended {
            return Vec::new();
        }
        let mut out = Vec::new();
        match ev {
            HostEvent::JoinRequest {
                peer_id,
                address,
                timeout,
            } => out.push(Notice::JoinRequest {
                peer_id: peer_id.clone(),
                address: address.clone(),
                timeout_ms: ms(*timeout),
            }),
            HostEvent::JoinAnswered { .. } => {}
            HostEvent::UnattendedJoin { address, .. } => out.push(Notice::UnattendedJoin {
                address: address.clone(),
            }),
            HostEvent::ViewerJoined { peer_id, control } => {
                self.view.viewers.retain(|v| &v.peer_id != peer_id);
                self.view.viewers.push(ViewerView {
                    peer_id: peer_id.clone(),
                    state: "connecting".into(),
                    control: *control,
                    quality: None,
                    metrics: None,
                    frames_dropped: 0,
                    fps: None,
                    bitrate_kbps: None,
                    shown_ms: None,
                    transfer: TransferState::default(),
                    sent: RateMeter::default(),
                });
                out.push(Notice::Joined {
                    peer_id: peer_id.clone(),
                    control: *control,
                });
            }
            HostEvent::ViewerLeft { peer_id } => {
                let before = self.view.viewers.len();
                self.view.viewers.retain(|v| &v.peer_id != peer_id);
                if self.view.viewers.len() != before {
                    out.push(Notice::Left {
                        peer_id: peer_id.clone(),
                    });
                }
            }
            HostEvent::ViewerRefused { peer_id, .. } => out.push(Notice::Refused {
                peer_id: peer_id.clone(),
            }),
            HostEvent::AuthFailed { address, reason, .. } => out.push(Notice::CheckFailed {
                address: address.clone(),
                reason: *reason,
            }),
            HostEvent::CodeChanged { code, viewer_url } => {
                if let Some(room) = self.view.room.as_mut() {
                    room.code = code.clone();
                    room.viewer_url = viewer_url.clone();
                }
                out.push(Notice::CodeChanged);
            }
            HostEvent::ViewerUnresponsive { .. } => {}
            // Files, clipboard and chat: shown from the stats' transfer state.
            HostEvent::Transfer { peer_id, event } => match event {
                TransferOutput::Offered { id, name, size, exists } => out.push(Notice::FileOffered {
                    peer_id: peer_id.clone(),
                    id: *id,
                    name: name.clone(),
                    size: *size,
                    exists: *exists,
                }),
                TransferOutput::Chat(line) => out.push(Notice::Chat {
                    peer_id: peer_id.clone(),
                    text: line.text.clone(),
                }),
                TransferOutput::Saved { path, .. } => out.push(Notice::FileSaved {
                    path: path.display().to_string(),
                }),
                TransferOutput::Failed { name, error, .. } => out.push(Notice::TransferFailed {
                    name: name.clone(),
                    error: error.clone(),
                }),
                TransferOutput::Refused(message) => out.push(Notice::Error {
                    message: message.clone(),
                }),
                // Clipboard contents are never shown nor logged.
                TransferOutput::Clipboard(_) => {}
            },
            HostEvent::ViewerState { peer_id, state } => {
                if let Some(v) = self.view.viewers.iter_mut().find(|v| &v.peer_id == peer_id) {
                    let was_down = is_down(&v.state);
                    let was_connected = v.state == "connected";
                    v.state = state.clone();
                    if is_down(state) && !was_down {
                        if was_connected {
                            out.push(Notice::ConnectionLost { link: Link::Viewer });
                        }
                        self.view.recovery.path_lost(Link::Viewer, now_ms);
                    } else if state == "connected" && (was_down || self.ice_attempts > 0) {
                        self.ice_attempts = 0;
                        // A new path: measured afresh ("Measuring…" until then).
                        v.quality = None;
                        v.metrics = None;
                        out.push(Notice::Restored { link: Link::Viewer });
                    }
                }
            }
            HostEvent::ViewerRecovering { .. } => {
                self.ice_attempts += 1;
                out.push(Notice::Reconnecting {
                    link: Link::Viewer,
                    attempt: self.ice_attempts,
                    retry_in_ms: 0,
                });
            }
            HostEvent::SignalLost {
                attempt,
                retry_in,
                grace_left,
                grace,
            } => {
                // The host's own count is the truth for its signalling window.
                out.extend(
                    self.view
                        .recovery
                        .signal_lost(*attempt, *retry_in, *grace_left, *grace, now_ms),
                );
            }
            HostEvent::SignalRestored { .. } => out.extend(self.view.recovery.signal_restored()),
            HostEvent::Quality {
                peer_id,
                quality,
                metrics,
            } => {
                if let Some(v) = self.view.viewers.iter_mut().find(|v| &v.peer_id == peer_id) {
                    v.quality = Some(*quality);
                    v.metrics = Some(*metrics);
                }
            }
            HostEvent::NetworkChanged { .. } => {}
        }
        self.recompute();
        out
    }

    /// Folds a statistics update (viewer states, drops, the control switch).
    pub fn on_stats(&mut self, stats: &HostStats, now_ms: u64) -> Vec<Notice> {
        let mut out = Vec::new();
        self.view.control_enabled = stats.control_enabled;
        self.view.files_enabled = stats.files_enabled;
        self.view.clipboard_enabled = stats.clipboard_enabled;
        self.view.clipboard_available = stats.clipboard_available;
        let mut drops = 0;
        for s in &stats.viewers {
            drops += s.frames_dropped;
            if let Some(v) = self.view.viewers.iter_mut().find(|v| v.peer_id == s.peer_id) {
                v.frames_dropped = s.frames_dropped;
                // Rates over at least half a second (statistics come at least every second).
                if let Some((fps, kbps)) = v.sent.update(now_ms, s.frames_sent, s.bytes_sent, 500) {
                    v.fps = Some(fps);
                    v.bitrate_kbps = Some(kbps);
                }
                if s.quality.is_some() {
                    v.quality = s.quality;
                }
                if s.shown_p50_ms.is_some() {
                    v.shown_ms = s.shown_p50_ms;
                }
                if v.transfer != s.transfer {
                    v.transfer = s.transfer.clone();
                }
            }
        }
        // Drops are news only on a link that stays up: the first seconds of an
        // outage drop frames too (a stalled queue), and the outage is told as such.
        let all_up = !self.view.viewers.is_empty() && self.view.viewers.iter().all(|v| v.state == "connected");
        if !all_up {
            self.drops_seen = drops;
            self.drops_pending_since = None;
        } else if drops > self.drops_seen {
            let since = *self.drops_pending_since.get_or_insert(now_ms);
            let due = self
                .last_drop_notice_ms
                .is_none_or(|t| now_ms >= t + ms(DROP_NOTICE_INTERVAL));
            if due && now_ms >= since + ms(DROP_NOTICE_DELAY) {
                out.push(Notice::FramesDropped {
                    count: drops - self.drops_seen,
                });
                self.last_drop_notice_ms = Some(now_ms);
                self.drops_seen = drops;
                self.drops_pending_since = None;
            }
        }
        self.recompute();
        out
    }

    /// Call about once a second: warns before the grace window runs out, and
    /// ends the session when it has (the shell then stops the host; the room's
    /// one-time code is spent). A host that lost the server also ends by
    /// itself, reported through [`HostTracker::ended`].
    pub fn tick(&mut self, now_ms: u64) -> Vec<Notice> {
        let Some(deadline) = self.view.recovery.grace_deadline_ms else {
            return Vec::new();
        };
        if now_ms >= deadline && self.view.phase != Phase::Ended {
            self.view.expired = true;
            let window = self.view.recovery.grace_total_ms / 1000;
            let who = if self.view.recovery.signal_down() {
                "the server"
            } else {
                "the viewer"
            };
            return self.ended(format!(
                "The session ended: the connection to {who} did not come back within {}:{:02}.",
                window / 60,
                window % 60
            ));
        }
        self.view.recovery.expiry_warning(now_ms).into_iter().collect()
    }

    fn recompute(&mut self) {
        if self.view.phase == Phase::Ended {
            return;
        }
        let viewers = &self.view.viewers;
        let any = |s: &str| viewers.iter().any(|v| v.state == s);
        let phase = if self.view.room.is_none() {
            Phase::Starting
        } else if self.view.recovery.signal_down() {
            Phase::Reconnecting
        } else if viewers.is_empty() {
            Phase::Waiting
        } else if any("connected") && !viewers.iter().any(|v| is_down(&v.state)) {
            Phase::Connected
        } else if self.ice_attempts > 0 {
            Phase::Reconnecting
        } else if any("failed") {
            Phase::Failed
        } else if any("disconnected") {
            Phase::Disconnected
        } else if any("connected") {
            Phase::Connected
        } else {
            Phase::Connecting
        };
        self.view.phase = phase;
        match phase {
            Phase::Reconnecting if self.view.recovery.signal_down() => {}
            Phase::Reconnecting => {
                self.view.recovery.attempt = Some(self.ice_attempts);
                self.view.recovery.retry_at_ms = None;
            }
            _ => {
                self.view.recovery.attempt = None;
                self.view.recovery.retry_at_ms = None;
            }
        }
        // Everything back up: the dropped session is no longer at risk.
        let all_up = !self.view.recovery.signal_down() && viewers.iter().all(|v| !is_down(&v.state));
        if all_up && matches!(phase, Phase::Connected | Phase::Waiting | Phase::Connecting) {
            self.view.recovery.all_up();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_peer::host::ViewerStats;

    const GRACE: Duration = Duration::from_secs(300);

    fn room() -> RoomInfo {
        RoomInfo {
            id: "123 456 789".into(),
            code: "a1b2c3".into(),
            viewer_url: "https://127.0.0.1:8080/?id=123456789".into(),
        }
    }

    fn state(peer: &str, s: &str) -> HostEvent {
        HostEvent::ViewerState {
            peer_id: peer.into(),
            state: s.into(),
        }
    }

    fn connected() -> HostTracker {
        let mut t = HostTracker::new(GRACE);
        assert_eq!(t.view().phase, Phase::Starting);
        t.started(room());
        assert_eq!(t.view().phase, Phase::Waiting);
        let n = t.on_event(
            &HostEvent::JoinRequest {
                peer_id: "p1".into(),
                address: "10.0.0.9".into(),
                timeout: Duration::from_secs(30),
            },
            0,
        );
        assert!(matches!(&n[..], [Notice::JoinRequest { timeout_ms: 30_000, .. }]));
        let n = t.on_event(
            &HostEvent::ViewerJoined {
                peer_id: "p1".into(),
                control: true,
            },
            100,
        );
        assert_eq!(
            n,
            vec![Notice::Joined {
                peer_id: "p1".into(),
                control: true
            }]
        );
        assert_eq!(t.view().phase, Phase::Connecting);
        assert!(t.on_event(&state("p1", "connected"), 500).is_empty());
        assert_eq!(t.view().phase, Phase::Connected);
        t
    }

    #[test]
    fn a_failed_check_is_told_and_a_new_code_replaces_the_shown_one() {
        let mut t = HostTracker::new(GRACE);
        t.started(room());
        let failed = HostEvent::AuthFailed {
            peer_id: "p9".into(),
            address: "10.0.0.66".into(),
            reason: holdfast_proto::commands::AuthFailure::Intercepted,
        };
        let n = t.on_event(&failed, 0);
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"kind": "check-failed", "address": "10.0.0.66", "reason": "intercepted"}])
        );
        assert!(t.view().viewers.is_empty(), "nobody joined");
        let changed = HostEvent::CodeChanged {
            code: "ZZZZZ-ZZZZZ".into(),
            viewer_url: "https://127.0.0.1:8080/#id=123456789&code=ZZZZZZZZZZ".into(),
        };
        assert_eq!(t.on_event(&changed, 10), vec![Notice::CodeChanged]);
        let room = t.view().room.as_ref().unwrap();
        assert_eq!(room.code, "ZZZZZ-ZZZZZ");
        assert!(room.viewer_url.ends_with("code=ZZZZZZZZZZ"));
    }

    #[test]
    fn a_viewer_drop_starts_the_grace_countdown_and_recovery_clears_it() {
        let mut t = connected();
        t.on_event(
            &HostEvent::Quality {
                peer_id: "p1".into(),
                quality: Quality::Poor,
                metrics: Metrics {
                    latency_ms: 900.0,
                    packet_loss_percent: 30.0,
                    jitter_ms: 200.0,
                    bandwidth_kbps: None,
                },
            },
            5_000,
        );
        assert_eq!(t.view().viewers[0].quality, Some(Quality::Poor));
        let n = t.on_event(&state("p1", "disconnected"), 10_000);
        assert_eq!(n, vec![Notice::ConnectionLost { link: Link::Viewer }]);
        assert_eq!(t.view().phase, Phase::Disconnected);
        assert_eq!(t.view().recovery.grace_deadline_ms, Some(310_000));
        let n = t.on_event(
            &HostEvent::ViewerRecovering {
                peer_id: "p1".into(),
                rebuild: false,
            },
            15_000,
        );
        assert!(matches!(
            &n[..],
            [Notice::Reconnecting {
                link: Link::Viewer,
                attempt: 1,
                ..
            }]
        ));
        assert_eq!(t.view().phase, Phase::Reconnecting);
        assert_eq!(t.view().recovery.attempt, Some(1));
        // A second drop while counting does not restart the window.
        t.on_event(&state("p1", "failed"), 40_000);
        assert_eq!(t.view().recovery.grace_deadline_ms, Some(310_000));
        t.on_event(&state("p1", "connecting"), 41_000);
        let n = t.on_event(&state("p1", "connected"), 42_000);
        assert_eq!(n, vec![Notice::Restored { link: Link::Viewer }]);
        assert_eq!(t.view().viewers[0].quality, None, "the old path's reading is gone");
        assert_eq!(t.view().phase, Phase::Connected);
        assert_eq!(t.view().recovery.grace_deadline_ms, None);
        assert_eq!(t.view().recovery.lost_link, None);
        assert_eq!(t.view().recovery.attempt, None);
    }

    #[test]
    fn losing_the_server_shows_attempts_next_try_and_the_hosts_own_grace_count() {
        let mut t = connected();
        let lost = |attempt, retry_s, grace_s| HostEvent::SignalLost {
            attempt,
            retry_in: Duration::from_secs(retry_s),
            grace_left: Duration::from_secs(grace_s),
            grace: GRACE,
        };
        let n = t.on_event(&lost(1, 1, 300), 1_000);
        assert_eq!(
            n,
            vec![
                Notice::ConnectionLost { link: Link::Server },
                Notice::Reconnecting {
                    link: Link::Server,
                    attempt: 1,
                    retry_in_ms: 1_000
                }
            ]
        );
        assert_eq!(t.view().phase, Phase::Reconnecting);
        assert_eq!(
            (t.view().recovery.attempt, t.view().recovery.retry_at_ms),
            (Some(1), Some(2_000))
        );
        assert_eq!(t.view().recovery.grace_deadline_ms, Some(301_000));
        assert_eq!(t.view().recovery.lost_link, Some(Link::Server));
        let n = t.on_event(&lost(2, 2, 298), 3_000);
        assert_eq!(n.len(), 1, "one toast per attempt, the loss told once");
        assert_eq!(
            (t.view().recovery.attempt, t.view().recovery.retry_at_ms),
            (Some(2), Some(5_000))
        );
        assert_eq!(
            t.view().recovery.grace_deadline_ms,
            Some(301_000),
            "never extended by a later report"
        );
        let n = t.on_event(&HostEvent::SignalRestored { reconnection: None }, 6_000);
        assert_eq!(n, vec![Notice::Restored { link: Link::Server }]);
        assert_eq!(t.view().phase, Phase::Connected);
        assert_eq!(t.view().recovery.grace_deadline_ms, None);
    }

    #[test]
    fn a_warning_a_minute_before_the_window_runs_out_then_the_end() {
        let mut t = connected();
        t.on_event(&state("p1", "disconnected"), 0);
        // Five minutes, a tick a second, in microseconds.
        let mut warnings = Vec::new();
        for s in 0..=300u64 {
            for n in t.tick(s * 1000) {
                warnings.push((s, n));
            }
        }
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(warnings[0], (240, Notice::ExpiringSoon { left_ms: 60_000 }));
        assert_eq!(
            warnings[1],
            (
                300,
                Notice::Expired {
                    message: "The session ended: the connection to the viewer did not come back within 5:00.".into()
                }
            )
        );
        assert_eq!(t.view().phase, Phase::Ended);
        assert!(t.view().expired);
        assert_eq!(t.view().recovery.lost_link, Some(Link::Viewer));
        assert_eq!(t.view().recovery.grace_deadline_ms, None);
        assert!(t.ended("again").is_empty(), "told once");
        assert!(t.tick(400_000).is_empty());
        assert!(
            t.on_event(&state("p1", "connected"), 301_000).is_empty(),
            "ended stays ended"
        );
        assert_eq!(t.view().phase, Phase::Ended);
    }

    #[test]
    fn drops_on_a_slow_link_are_told_once_it_proves_alive_at_most_every_thirty_seconds_and_not_for_an_outage() {
        let mut t = connected();
        let stats = |dropped| HostStats {
            control_enabled: true,
            viewers: vec![ViewerStats {
                peer_id: "p1".into(),
                frames_dropped: dropped,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(t.on_stats(&stats(0), 0).is_empty());
        assert!(
            t.on_stats(&stats(4), 1_000).is_empty(),
            "not yet: maybe an outage beginning"
        );
        assert_eq!(t.on_stats(&stats(9), 7_000), vec![Notice::FramesDropped { count: 9 }]);
        assert!(t.on_stats(&stats(12), 30_000).is_empty(), "at most every 30 s");
        assert_eq!(t.on_stats(&stats(15), 37_000), vec![Notice::FramesDropped { count: 6 }]);
        // An outage: frames withheld before ICE notices are not "a slow network".
        assert!(t.on_stats(&stats(40), 70_000).is_empty());
        t.on_event(&state("p1", "disconnected"), 74_000);
        assert!(t.on_stats(&stats(60), 80_000).is_empty(), "the outage was told already");
        t.on_event(&state("p1", "connected"), 81_000);
        assert!(t.on_stats(&stats(60), 82_000).is_empty(), "no new drops since");
        assert!(t.on_stats(&stats(60), 120_000).is_empty());
        assert_eq!(t.view().viewers[0].frames_dropped, 60);
    }

    #[test]
    fn frame_rate_and_bitrate_come_from_what_was_sent() {
        let mut t = connected();
        let stats = |frames, bytes| HostStats {
            viewers: vec![ViewerStats {
                peer_id: "p1".into(),
                frames_sent: frames,
                bytes_sent: bytes,
                ..Default::default()
            }],
            ..Default::default()
        };
        t.on_stats(&stats(100, 1_000_000), 10_000);
        assert_eq!(t.view().viewers[0].fps, None, "one sample is no rate");
        t.on_stats(&stats(110, 1_100_000), 10_200);
        assert_eq!(t.view().viewers[0].fps, None, "too short an interval");
        t.on_stats(&stats(130, 1_500_000), 11_000);
        assert_eq!(t.view().viewers[0].fps, Some(30.0));
        assert_eq!(t.view().viewers[0].bitrate_kbps, Some(4_000.0));
    }

    #[test]
    fn viewers_come_and_go_and_the_switch_is_reflected() {
        let mut t = connected();
        t.on_stats(
            &HostStats {
                control_enabled: false,
                ..Default::default()
            },
            0,
        );
        assert!(!t.view().control_enabled);
        let n = t.on_event(&HostEvent::ViewerLeft { peer_id: "p1".into() }, 1_000);
        assert_eq!(n, vec![Notice::Left { peer_id: "p1".into() }]);
        assert_eq!(t.view().phase, Phase::Waiting);
        assert!(
            t.on_event(&HostEvent::ViewerLeft { peer_id: "p1".into() }, 1_001)
                .is_empty(),
            "an unknown viewer leaving is not news"
        );
        let json = serde_json::to_value(t.view()).unwrap();
        assert_eq!(json["phase"], "waiting");
        assert_eq!(json["grace_total_ms"], 300_000);
    }

    #[test]
    fn the_room_code_never_shows_in_debug_output() {
        let mut t = connected();
        t.on_event(&state("p1", "disconnected"), 0);
        let debug = format!("{t:?}");
        assert!(!debug.contains("a1b2c3"), "{debug}");
        assert!(debug.contains("123 456 789"));
    }
}
