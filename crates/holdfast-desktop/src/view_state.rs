//! The viewer screen's state and the notices worth a toast, folded from the
//! Rust viewer's events. Pure, like [`crate::host_state`]: wall-clock
//! milliseconds are passed in, so tests drive a grace window in microseconds.
//!
//! The webview gets a [`ViewingView`] after every change and each [`Notice`]
//! once. The picture's own figures (decoded, fps, latency) are measured where
//! the frames are decoded; this side counts what arrived.

use std::time::Duration;

use holdfast_peer::rtc::Route;
use holdfast_peer::viewer::ViewerEvent;
use holdfast_proto::commands::Control;
use serde::Serialize;

use crate::host_state::{Link, Notice, Phase, RateMeter};
use crate::recovery::Recovery;

/// What the viewer screen shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewingView {
    /// `starting` (contacting the server), `waiting` (for the host's consent),
    /// `connecting`, `connected`, `disconnected`, `reconnecting`, `failed`, `ended`.
    pub phase: Phase,
    /// The room being viewed, as typed (for the title line).
    pub room: String,
    /// Attempts, next try and grace deadline (flattened into the view's JSON);
    /// the lost link is the server or the path to the host.
    #[serde(flatten)]
    pub recovery: Recovery,
    /// The host allows control (it may switch it off during the session).
    pub control: bool,
    /// Our own view-only switch.
    pub view_only: bool,
    /// The host's own connection to the server dropped (the picture may freeze).
    pub host_away: bool,
    /// The path in use: straight to the host or through a TURN relay.
    pub route: Option<Route>,
    /// Frames that arrived whole, and their rate and bitrate over the last second or more.
    pub frames: u64,
    pub fps: Option<f64>,
    pub bitrate_kbps: Option<f64>,
    /// Why it ended or could not start, for people.
    pub error: Option<String>,
}

/// Folds viewer events into a [`ViewingView`] and [`Notice`]s.
#[derive(Debug)]
pub struct ViewTracker {
    view: ViewingView,
    pc_down: bool,
    /// The peer connection has been connected once (later ones are restorations).
    was_connected: bool,
    bytes: u64,
    received: RateMeter,
}

impl ViewTracker {
    pub fn new(room: impl Into<String>, grace: Duration) -> Self {
        ViewTracker {
            view: ViewingView {
                phase: Phase::Starting,
                room: room.into(),
                recovery: Recovery::new(grace),
                control: false,
                view_only: false,
                host_away: false,
                route: None,
                frames: 0,
                fps: None,
                bitrate_kbps: None,
                error: None,
            },
            pc_down: false,
            was_connected: false,
            bytes: 0,
            received: RateMeter::default(),
        }
    }

    pub fn view(&self) -> &ViewingView {
        &self.view
    }

    /// The request is with the host, who must consent.
    pub fn awaiting_consent(&mut self) {
        if self.view.phase == Phase::Starting {
            self.view.phase = Phase::Waiting;
        }
    }

    /// The host let us in.
    pub fn admitted(&mut self, control: bool) -> Vec<Notice> {
        self.view.control = control;
        self.view.phase = Phase::Connecting;
        vec![Notice::Admitted { control }]
    }

    /// Could not join, or the session is over: the screen says why.
    pub fn ended(&mut self, message: impl Into<String>) -> Vec<Notice> {
        if self.view.phase == Phase::Ended {
            return Vec::new();
        }
        let message = message.into();
        self.view.phase = Phase::Ended;
        self.view.error = Some(message.clone());
        self.view.recovery.finish();
        vec![Notice::Expired { message }]
    }

    /// The person left: over, without a toast.
    pub fn left(&mut self) {
        self.view.phase = Phase::Ended;
        self.view.error = None;
        self.view.recovery.finish();
    }

    pub fn set_view_only(&mut self, on: bool) {
        self.view.view_only = on;
    }

    pub fn on_event(&mut self, ev: &ViewerEvent, now_ms: u64) -> Vec<Notice> {
        if self.view.phase == Phase::Ended {
            return Vec::new();
        }
        let mut out = Vec::new();
        match ev {
            ViewerEvent::State(s) => {
                let state = s.to_string();
                let down = matches!(state.as_str(), "disconnected" | "failed");
                if down && !self.pc_down {
                    self.pc_down = true;
                    out.push(Notice::ConnectionLost { link: Link::Host });
                    self.view.recovery.path_lost(Link::Host, now_ms);
                } else if state == "connected" {
                    if self.pc_down {
                        out.push(Notice::Restored { link: Link::Host });
                    }
                    self.pc_down = false;
                    self.was_connected = true;
                }
                self.view.phase = match state.as_str() {
                    "connected" => Phase::Connected,
                    "disconnected" => Phase::Disconnected,
                    "failed" => Phase::Failed,
                    "closed" => self.view.phase,
                    _ if self.was_connected => Phase::Reconnecting,
                    _ => Phase::Connecting,
                };
            }
            ViewerEvent::Frame(f) => {
                self.view.frames += 1;
                self.bytes += f.data.len() as u64;
                self.rates(now_ms);
            }
            ViewerEvent::Control(Control::Mode { control, .. }) => {
                if *control != self.view.control {
                    out.push(Notice::ControlChanged { allowed: *control });
                }
                self.view.control = *control;
            }
            ViewerEvent::SignalLost {
                attempt,
                retry_in,
                grace_left,
                grace,
            } => {
                out.extend(
                    self.view
                        .recovery
                        .signal_lost(*attempt, *retry_in, *grace_left, *grace, now_ms),
                );
            }
            ViewerEvent::SignalResumed(_) => {
                out.extend(self.view.recovery.signal_restored());
                self.view.recovery.attempt = None;
            }
            ViewerEvent::HostAway(away) => {
                if *away != self.view.host_away {
                    out.push(Notice::HostAway { away: *away });
                }
                self.view.host_away = *away;
            }
            ViewerEvent::Route(route) => self.view.route = Some(*route),
            ViewerEvent::Closed(reason) => out.extend(self.ended(reason.clone())),
            // A failed check ends the session: `Closed` follows with its words.
            ViewerEvent::Control(_)
            | ViewerEvent::Verified { .. }
            | ViewerEvent::AuthFailed(_)
            | ViewerEvent::BadChunk(_)
            | ViewerEvent::Pinged
            | ViewerEvent::HostUnresponsive
            | ViewerEvent::Signal { .. } => {}
        }
        if !self.view.recovery.signal_down() && !self.pc_down {
            self.view.recovery.all_up();
        } else if self.view.recovery.signal_down() && self.view.phase != Phase::Ended {
            self.view.phase = Phase::Reconnecting;
        }
        out
    }

    /// Call about once a second: rates age out, and a warning comes before
    /// the host gives up on a dropped session.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Notice> {
        self.rates(now_ms);
        self.view.recovery.expiry_warning(now_ms).into_iter().collect()
    }

    /// Rates over a second or more.
    fn rates(&mut self, now_ms: u64) {
        if let Some((fps, kbps)) = self.received.update(now_ms, self.view.frames, self.bytes, 1000) {
            self.view.fps = Some(fps);
            self.view.bitrate_kbps = Some(kbps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::video::EncodedFrame;
    use webrtc::peer_connection::RTCPeerConnectionState as S;

    const T0: u64 = 1_800_000_000_000;

    fn frame(bytes: usize) -> ViewerEvent {
        ViewerEvent::Frame(EncodedFrame {
            frame_id: 0,
            keyframe: false,
            capture_us: 0,
            width: 8,
            height: 8,
            display_width: 8,
            display_height: 8,
            data: vec![0; bytes],
        })
    }

    fn connected() -> ViewTracker {
        let mut t = ViewTracker::new("123 456 789", Duration::from_secs(300));
        assert_eq!(t.view().phase, Phase::Starting);
        t.awaiting_consent();
        assert_eq!(t.view().phase, Phase::Waiting);
        assert_eq!(t.admitted(true), vec![Notice::Admitted { control: true }]);
        assert_eq!(t.view().phase, Phase::Connecting);
        assert!(t.on_event(&ViewerEvent::State(S::Connected), T0).is_empty());
        assert_eq!(t.view().phase, Phase::Connected);
        t
    }

    #[test]
    fn a_dropped_path_counts_the_grace_window_down_and_its_return_clears_it() {
        let mut t = connected();
        let lost = t.on_event(&ViewerEvent::State(S::Disconnected), T0 + 1000);
        assert_eq!(lost, vec![Notice::ConnectionLost { link: Link::Host }]);
        assert_eq!(t.view().phase, Phase::Disconnected);
        assert_eq!(t.view().recovery.grace_deadline_ms, Some(T0 + 1000 + 300_000));
        assert_eq!(t.view().recovery.lost_link, Some(Link::Host));
        // The ICE restart: connecting again, after having been connected.
        t.on_event(&ViewerEvent::State(S::Connecting), T0 + 6000);
        assert_eq!(t.view().phase, Phase::Reconnecting);
        assert!(t.tick(T0 + 200_000).is_empty());
        assert_eq!(t.tick(T0 + 241_500), vec![Notice::ExpiringSoon { left_ms: 59_500 }]);
        assert!(t.tick(T0 + 242_000).is_empty(), "warned once");
        let back = t.on_event(&ViewerEvent::State(S::Connected), T0 + 250_000);
        assert_eq!(back, vec![Notice::Restored { link: Link::Host }]);
        assert_eq!(t.view().phase, Phase::Connected);
        assert_eq!(t.view().recovery.grace_deadline_ms, None);
    }

    /// The screen counts the server's window, not the one it started with.
    #[test]
    fn the_countdown_is_the_servers_window() {
        let mut t = connected();
        let ev = ViewerEvent::SignalLost {
            attempt: 0,
            retry_in: Duration::from_millis(300),
            grace_left: Duration::from_secs(20),
            grace: Duration::from_secs(20),
        };
        t.on_event(&ev, T0);
        assert_eq!(t.view().recovery.grace_total_ms, 20_000);
        assert_eq!(t.view().recovery.grace_deadline_ms, Some(T0 + 20_000));
    }

    #[test]
    fn a_lost_server_shows_the_attempt_and_the_next_try() {
        let mut t = connected();
        let ev = ViewerEvent::SignalLost {
            attempt: 2,
            retry_in: Duration::from_millis(1500),
            grace_left: Duration::from_secs(290),
            grace: Duration::from_secs(300),
        };
        let n = t.on_event(&ev, T0);
        assert_eq!(n[0], Notice::ConnectionLost { link: Link::Server });
        assert_eq!(t.view().phase, Phase::Reconnecting);
        assert_eq!(t.view().recovery.attempt, Some(2));
        assert_eq!(t.view().recovery.retry_at_ms, Some(T0 + 1500));
        assert_eq!(t.view().recovery.grace_deadline_ms, Some(T0 + 290_000));
        // Media goes on peer to peer meanwhile; the server comes back.
        let n = t.on_event(&ViewerEvent::SignalResumed(None), T0 + 2000);
        assert_eq!(n, vec![Notice::Restored { link: Link::Server }]);
        assert_eq!(t.view().recovery.attempt, None);
        assert_eq!(t.view().recovery.grace_deadline_ms, None);
    }

    #[test]
    fn control_host_away_rates_and_the_end() {
        let mut t = connected();
        let mode = Control::Mode {
            control: false,
            files: false,
            clipboard: false,
        };
        let n = t.on_event(&ViewerEvent::Control(mode), T0);
        assert_eq!(n, vec![Notice::ControlChanged { allowed: false }]);
        assert!(!t.view().control);
        assert_eq!(
            t.on_event(&ViewerEvent::HostAway(true), T0),
            vec![Notice::HostAway { away: true }]
        );
        assert!(t.view().host_away);
        for i in 0..=20u64 {
            t.on_event(&frame(1000), T0 + i * 100);
        }
        assert_eq!(t.view().frames, 21);
        assert_eq!(t.view().fps, Some(10.0));
        assert_eq!(t.view().bitrate_kbps, Some(80.0));
        let end = t.on_event(&ViewerEvent::Closed("host left".into()), T0 + 3000);
        assert_eq!(
            end,
            vec![Notice::Expired {
                message: "host left".into()
            }]
        );
        assert_eq!(t.view().phase, Phase::Ended);
        assert!(
            t.on_event(&ViewerEvent::State(S::Connected), T0 + 4000).is_empty(),
            "over is over"
        );
    }
}
