//! The host role: makes up the room's code, registers a room, decides who
//! may join, offers each viewer a `video` and a `commands` channel, streams
//! the screen to every admitted viewer and replays the input of viewers
//! allowed to control.
//!
//! Admission is the host's alone. A viewer the server announces
//! (`join-request`, with only the code's gate checked) gets a peer
//! connection, and over its `commands` channel the host checks the whole
//! code end to end (CPace bound to both DTLS fingerprints, [`crate::auth`]).
//! Only a viewer that passed is shown to the user (or to the unattended
//! policy) for consent; only an admitted, checked viewer gets frames, `mode`,
//! `displays`, or has its input applied. A failed check is reported to the
//! server (a failed attempt for that address) and to the shell; after
//! [`MAX_FAILED_CHECKS`] in a row the host makes up a new code. A rebuilt
//! connection to an admitted viewer is checked again with the resume secret
//! the first exchange left, so nobody takes over a session with a token alone.
//!
//! The `commands` channel is unordered: inside SCTP unordered messages go
//! ahead of the ordered video queue, so keepalive and input never wait behind
//! megabytes of frames. Input carries sequence numbers and is re-ordered by
//! the input worker.
//!
//! Anything a viewer holds down is released when its control ends: view-only
//! switched on (by either side), the viewer leaves, its connection fails or
//! closes, or the keepalive declares it dead.
//!
//! Recovery: the host restarts (it made the first offer, so two restarts
//! never cross). Each viewer's [`IceRecovery`] turns connection states into
//! decisions: `disconnected` for the platform timeout (5 s; 10 s on
//! Windows) or `failed` → ICE restart; restarts that keep failing → a new
//! peer connection with the next `generation`, inside the same session.
//! The signalling session reconnects by itself; offers made while it is down
//! wait in its queue. Viewers whose signalling drops keep their place.
//!
//! One task owns all state and reacts to four sources: the signalling session,
//! peer-connection events, the frame ticker, and the media thread's results.
//! Before each frame every viewer's [`VideoGate`] is asked with the channel's
//! outstanding bytes; if none admits the frame, nothing is captured or
//! encoded. Frame ids are per viewer and only assigned to frames actually
//! sent, so a viewer sees a gap only on real loss.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use holdfast_auth::{HostHandshake, Secret};
use holdfast_input::{DisplayGeometry, InputSequencer, InputWorker};
use holdfast_media::pipeline::{FrameRequest, LanesOutcome, StageTimings};
use holdfast_media::worker::MediaWorker;
use holdfast_media::{unix_micros, MediaError, Scale};
use holdfast_proto::commands::{AuthFailure, Command, Control, DisplayDesc, InputEvent};
use holdfast_proto::signal::{
    ClientMessage, Decision, Generation, IceCandidate, IceServer, OfferRound, PeerId, ServerMessage, CONSENT_TIMEOUT,
};
use holdfast_proto::video::{EncodedFrame, FrameChunker, DEFAULT_CHUNK_BYTES};
use holdfast_proto::{RoomCode, RoomId};
use holdfast_session::{disconnected_timeout, IceAction, KeepaliveConfig, LogGate, Metrics, Quality};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};
use url::Url;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};

pub use crate::link::{QUALITY_REPORT_INTERVAL, QUALITY_SAMPLE_INTERVAL, RELAY_RECHECK};

use crate::auth::{self as wire, Side, MAX_FAILED_CHECKS};
use crate::backpressure::{GateReport, QueueLimits};
use crate::lanes::{LanePolicy, MAX_LANES};
use crate::link::{FrameDecision, Label, LinkAction, LinkConfig, RecoverReason, ViewerLink};
use crate::netwatch::{local_addresses, AddressSet, NetworkChange};
use crate::rate::RateConfig;
use crate::resume::{Credentials, Reconnection, ResumeState};
use crate::rtc::{build_peer, path_sample, to_init, Route, RtcEvent, RtcOptions};
use crate::scale::ScalePolicy;
use crate::signal_client::{SignalConfig, SignalEvent, SignalSender, SignalSession};
use crate::transfer::{
    self, Allowed, IncomingFiles, TransferConfig, TransferHandle, TransferInput, TransferOutput, TransferState,
};
use crate::unattended::{unix_now, UnattendedAccess};
use crate::PeerError;
use holdfast_input::{ClipboardSource, ClipboardWorker};
use holdfast_transfer::Collision;

/// Captures per second after this many unchanged frames in a row drop to the idle rate.
const IDLE_AFTER_UNCHANGED: u32 = 3;
/// Video a viewer has not received this long after it was sent is given up
/// (SCTP partial reliability, RFC 3758): a picture that old is worth less
/// than the path it would take, and everything sent after it waits behind it
/// in the ordered channel. The viewer finds the gap in the frame numbers and
/// asks for a keyframe. Only under rate control, which keeps the queue near
/// 100 ms, so this acts only when a path falls faster than the controller can
/// follow (a big frame sent just before a link drops from 8 Mbit/s to 500
/// kbit/s held the picture for 6-7 s). Without it (`--rate-control fixed`)
/// the queue is seconds long by design, and the 4 MiB ceiling alone bounds it,
/// every frame delivered as before.
const VIDEO_LIFETIME_MS: u16 = 3000;

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The server's base URL, which also serves the viewer page.
    pub signal_url: Url,
    /// The base of the link viewers open, when it differs from where this
    /// host connects (an embedded server reached over loopback, shared on
    /// the network's address).
    pub viewer_base: Option<Url>,
    pub rtc: RtcOptions,
    pub fps: u32,
    /// Capture interval once the screen has stopped changing.
    pub idle_interval: Duration,
    pub limits: QueueLimits,
    /// Rate control per viewer (None: the encoder keeps its fixed bitrate,
    /// always at full size). On by default: on every link measured it beats
    /// the fixed rate (docs/benchmarks.md, "Video over shaped links").
    pub rate: Option<RateConfig>,
    /// Encoders one capture may feed under rate control (1..=2): viewers on
    /// much slower paths get their own ([`crate::lanes`]).
    pub encoder_lanes: usize,
    /// Under rate control, each lane picks its encoder's tuning by its path
    /// ([`ScalePolicy::tuning`]: the camera tuning on fast paths); off, the
    /// encoder keeps the tuning it was made with.
    pub adaptive_tuning: bool,
    pub chunk_bytes: usize,
    /// PING cadence and dead-peer timeout on the `commands` channel.
    pub keepalive: KeepaliveConfig,
    /// Trust roots for a `https://` server (None: the system's).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Who decides when a viewer asks to join.
    pub consent: ConsentPolicy,
    /// How long a join request waits for [`HostHandle::consent`] before it is denied.
    pub consent_timeout: Duration,
    /// Whether viewers' input is accepted at all (the host's view-only switch).
    pub control_enabled: bool,
    /// The displays this host can share and the one it shares, told to viewers.
    pub displays: Vec<DisplayDesc>,
    pub current_display: u32,
    /// Where each of `displays` sits for the injector (from the screen
    /// backend); a display without one is taken to start at the origin.
    pub display_geometry: Vec<DisplayGeometry>,
    /// How long the session survives without signalling (seed: 300 s).
    pub grace: Duration,
    /// How long a viewer's connection may stay `disconnected` before an ICE restart.
    pub ice_disconnected_timeout: Duration,
    /// A relayed viewer's connection is restarted this often, so ICE finds a
    /// direct path that appeared meanwhile (the relay costs a detour and the
    /// relay's bandwidth). None: never.
    pub relay_recheck: Option<Duration>,
    /// Poll the machine's addresses at this interval and recover connections
    /// when they change (None: do not watch).
    pub watch_network: Option<Duration>,
    /// Where files viewers send land (None: refused).
    pub inbox: Option<std::path::PathBuf>,
    /// Whether each incoming file is put to the user or taken.
    pub incoming_files: IncomingFiles,
    /// The host's switches beside "allow control": files from viewers, and
    /// the clipboard both ways (each only ever for viewers with control).
    pub files_enabled: bool,
    pub clipboard_enabled: bool,
    /// This machine's clipboard, to share (None: no clipboard, as on a
    /// server without a desktop). Opened at start; failing to open it is logged.
    pub clipboard: Option<ClipboardSource>,
    /// Unattended access: a viewer with the permanent password (and the
    /// one-time code, if the second factor is on) is admitted without asking.
    pub unattended: Option<Arc<std::sync::Mutex<UnattendedAccess>>>,
}

/// How a host answers join requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentPolicy {
    /// Ask the user: a [`HostEvent::JoinRequest`] is emitted; no answer within
    /// the consent timeout means deny.
    Ask,
    /// Unattended: always answer this.
    Always(Decision),
}

/// What a running host reports to its shell (UI or CLI).
#[derive(Debug, Clone, PartialEq)]
pub enum HostEvent {
    /// A viewer proved the permanent password (and one-time code) and was
    /// admitted without asking (unattended access).
    UnattendedJoin {
        peer_id: String,
        address: String,
    },
    /// A viewer proved it knows the code and asks to join; answer with [`HostHandle::consent`].
    JoinRequest {
        peer_id: String,
        address: String,
        timeout: Duration,
    },
    /// A request was answered (by the user, the policy or the timeout).
    JoinAnswered {
        peer_id: String,
        decision: Decision,
    },
    ViewerJoined {
        peer_id: String,
        control: bool,
    },
    ViewerLeft {
        peer_id: String,
    },
    /// The server announced a viewer, or more rights for one, that this host
    /// never granted: nothing was offered or raised (see [`Admissions`]).
    ViewerRefused {
        peer_id: String,
        reason: String,
    },
    /// A viewer's end-to-end check failed (a wrong code, or someone in the
    /// middle): it was turned away (an admitted one was removed).
    AuthFailed {
        peer_id: String,
        address: String,
        reason: AuthFailure,
    },
    /// After repeated failed checks the host made up a new code; the old one
    /// and the old link admit no one from now on.
    CodeChanged {
        code: String,
        viewer_url: String,
    },
    /// Nothing heard from this viewer for three keepalive intervals; its held
    /// keys and buttons were released.
    ViewerUnresponsive {
        peer_id: String,
    },
    /// A viewer's peer connection changed state (`connected`, `disconnected`, ...).
    ViewerState {
        peer_id: String,
        state: String,
    },
    /// Recovering a viewer's connection: an ICE restart, or a new peer connection.
    ViewerRecovering {
        peer_id: String,
        rebuild: bool,
    },
    /// The host's signalling connection dropped; retrying.
    SignalLost {
        attempt: u32,
        retry_in: Duration,
        grace_left: Duration,
        /// The whole window (the server's, as it announced it).
        grace: Duration,
    },
    /// Signalling is back, same room and code.
    SignalRestored {
        reconnection: Option<Reconnection>,
    },
    /// A viewer's link changed class (good / fair / poor).
    Quality {
        peer_id: String,
        quality: Quality,
        metrics: Metrics,
    },
    /// The machine's addresses changed; connections are being moved.
    NetworkChanged {
        added: Vec<std::net::IpAddr>,
        removed: Vec<std::net::IpAddr>,
    },
    /// Files, clipboard or chat of a viewer's session (an offer to answer
    /// with [`HostRemote::decide_file`], a chat line, a saved file, a failure).
    Transfer {
        peer_id: String,
        event: TransferOutput,
    },
}

/// Instructions from the shell to a running host.
#[derive(Debug)]
enum HostCommand {
    Consent(PeerId, Decision),
    SetControl(bool),
    SelectDisplay(u32),
    Reconnect,
    /// ICE restart for every viewer, connected or not ("repair the connection").
    RestartIce,
    /// End one viewer's session now: its input stops, its token is revoked.
    Kick(PeerId),
    /// Stop sharing: every viewer's input stops now and the room ends.
    Stop,
    NetworkChanged(NetworkChange),
    /// To one viewer (Some) or every viewer (None).
    SendFile(Option<PeerId>, std::path::PathBuf),
    Chat(Option<PeerId>, String),
    DecideFile(PeerId, u32, bool, Collision),
    CancelTransfer(PeerId, u32),
    SetFiles(bool),
    SetClipboard(bool),
}

impl HostConfig {
    pub fn new(signal_url: Url) -> Self {
        HostConfig {
            signal_url,
            viewer_base: None,
            rtc: RtcOptions::default(),
            fps: holdfast_media::encode::DEFAULT_FPS,
            idle_interval: Duration::from_millis(200),
            limits: QueueLimits::default(),
            rate: Some(RateConfig::default()),
            encoder_lanes: MAX_LANES,
            adaptive_tuning: true,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            keepalive: KeepaliveConfig::host(),
            tls: None,
            consent: ConsentPolicy::Ask,
            consent_timeout: CONSENT_TIMEOUT,
            control_enabled: true,
            displays: Vec::new(),
            current_display: 0,
            display_geometry: Vec::new(),
            grace: holdfast_session::GRACE_PERIOD,
            ice_disconnected_timeout: disconnected_timeout(cfg!(windows)),
            relay_recheck: Some(RELAY_RECHECK),
            watch_network: Some(crate::netwatch::NETWORK_POLL_INTERVAL),
            inbox: None,
            incoming_files: IncomingFiles::Ask,
            files_enabled: true,
            clipboard_enabled: true,
            clipboard: None,
            unattended: None,
        }
    }
}

/// What the host prints once its room exists.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RoomInfo {
    pub id: String,
    pub code: String,
    pub viewer_url: String,
}

impl std::fmt::Debug for RoomInfo {
    // The code admits a viewer: never in logs (the link carries it too).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let link = self.viewer_url.split(['?', '#']).next().unwrap_or_default();
        f.debug_struct("RoomInfo")
            .field("id", &self.id)
            .field("code", &"<redacted>")
            .field("viewer_url", &format_args!("{link}#<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ViewerStats {
    pub peer_id: String,
    pub state: String,
    pub frames_sent: u64,
    /// Encoded video bytes sent (for the bitrate the UI shows).
    pub bytes_sent: u64,
    pub keyframes_sent: u64,
    pub frames_dropped: u64,
    pub queued_bytes: usize,
    pub max_queued_bytes: usize,
    /// Largest single frame sent, in bytes (the "+ one frame" of the bound).
    pub max_frame_bytes: usize,
    /// True when every frame sent right after a drop was a keyframe.
    pub keyframe_after_every_drop: bool,
    /// Keepalive PINGs sent on the `commands` channel.
    pub pings_sent: u64,
    /// Round-trip time of the last answered PING, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The link's class and what it was judged on (see [`QualityMonitor`]):
    /// median round trip, jitter and loss over the last ten seconds.
    pub quality: Option<Quality>,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: Option<f64>,
    /// Rate control (see [`crate::rate`]): what the path is estimated to
    /// carry, what the encoder aims at for it, how late its oldest
    /// undelivered frame is, and what it delivered lately.
    pub estimate_kbps: Option<f64>,
    pub target_kbps: Option<u32>,
    pub queue_delay_ms: Option<f64>,
    pub delivery_kbps: Option<f64>,
    /// How long ago the oldest unacknowledged byte was due (wall-clock).
    pub overdue_ms: Option<f64>,
    /// What big frames sent on an idle channel arrived at lately.
    pub burst_kbps: Option<f64>,
    /// Captures rate control held back: delivery was late / the path was
    /// still carrying earlier frames at the estimate.
    pub paced_late: u64,
    pub paced_bucket: u64,
    /// Capture to the viewer's canvas, from its `frame-shown` messages on
    /// the host's clock (see [`crate::shown`]): median and 95th percentile.
    pub shown_p50_ms: Option<u32>,
    pub shown_p95_ms: Option<u32>,
    /// The encoder this viewer watches ([`crate::lanes`]), and the size it
    /// codes the screen at for it.
    pub lane: usize,
    pub coded_size: (u32, u32),
    /// The encoder's tuning for this viewer's lane when the host picks it by
    /// the path (`HostConfig::adaptive_tuning`): "screen" or "motion".
    pub tuning: Option<&'static str>,
    /// Nothing heard from the viewer for three keepalive intervals.
    pub unresponsive: bool,
    /// Which peer connection of the session carries it: 0 the first, +1
    /// for each one rebuilt after ICE restarts kept failing.
    pub connection: Generation,
    /// The host granted control (not view only) when it admitted this viewer.
    pub control_granted: bool,
    /// The viewer switched itself to view only.
    pub viewer_view_only: bool,
    /// Whether the pair in use goes through a TURN relay.
    pub route: Option<Route>,
    /// Input events applied / ignored (view only) / rejected (malformed).
    pub input_events: u64,
    pub input_ignored: u64,
    /// Input refused because the injection queue was full (a flood).
    pub input_dropped: u64,
    pub commands_rejected: u64,
    /// The session's files, clipboard and chat.
    pub transfer: TransferState,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStats {
    pub frames_encoded: u64,
    pub frames_unchanged: u64,
    pub last_capture_us: u64,
    pub last_convert_us: u64,
    pub last_encode_us: u64,
    /// The size the screen is encoded at (smaller than the screen when
    /// rate control scaled it down for a slow path), and the screen's size.
    pub coded_size: (u32, u32),
    pub screen_size: (u32, u32),
    /// The biggest recent change of the screen at full size, bytes (what
    /// the scale is chosen by).
    pub big_change_bytes: u64,
    /// Changes of the encoded size so far.
    pub scale_changes: u64,
    /// The host's view-only switch is off (input accepted from viewers granted control).
    pub control_enabled: bool,
    /// The host's switches for files from viewers and for the clipboard.
    pub files_enabled: bool,
    pub clipboard_enabled: bool,
    /// This machine's clipboard is shared (it could be opened).
    pub clipboard_available: bool,
    pub viewers: Vec<ViewerStats>,
}

/// A running host. Dropping the handle does not stop it; call [`HostHandle::stop`].
pub struct HostHandle {
    pub room: RoomInfo,
    pub stats: watch::Receiver<HostStats>,
    pub events: mpsc::UnboundedReceiver<HostEvent>,
    cmd: mpsc::UnboundedSender<HostCommand>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), PeerError>>,
}

/// A cloneable remote for a running host, for UI callbacks.
#[derive(Clone)]
pub struct HostRemote {
    cmd: mpsc::UnboundedSender<HostCommand>,
}

impl HostRemote {
    /// Answers a [`HostEvent::JoinRequest`].
    pub fn consent(&self, peer_id: &str, decision: Decision) {
        let _ = self
            .cmd
            .send(HostCommand::Consent(PeerId(peer_id.to_owned()), decision));
    }

    /// The host's view-only switch: `false` ignores every viewer's input (and
    /// releases whatever they hold); `true` accepts it again from viewers granted control.
    pub fn set_control(&self, enabled: bool) {
        let _ = self.cmd.send(HostCommand::SetControl(enabled));
    }

    /// Shares display `index` (of [`HostConfig::displays`]) from now on.
    pub fn select_display(&self, index: u32) {
        let _ = self.cmd.send(HostCommand::SelectDisplay(index));
    }

    /// Resume now: reconnect signalling without waiting out the backoff, and
    /// restart ICE for every viewer that is not connected.
    pub fn reconnect(&self) {
        let _ = self.cmd.send(HostCommand::Reconnect);
    }

    /// Restarts ICE with every viewer now, even those that look connected
    /// (the path may be poor, or the network changed under it).
    pub fn restart_ice(&self) {
        let _ = self.cmd.send(HostCommand::RestartIce);
    }

    /// Stops sharing, as [`HostHandle::stop`] does, from a remote.
    pub fn stop_sharing(&self) {
        let _ = self.cmd.send(HostCommand::Stop);
    }

    /// Ends `peer_id`'s session: nothing it queued is injected any more, its
    /// connection closes, and the server revokes its token.
    pub fn kick(&self, peer_id: &str) {
        let _ = self.cmd.send(HostCommand::Kick(PeerId(peer_id.to_owned())));
    }

    /// Sends a file to one viewer, or to every viewer (None).
    pub fn send_file(&self, peer_id: Option<&str>, path: std::path::PathBuf) {
        let peer = peer_id.map(|p| PeerId(p.to_owned()));
        let _ = self.cmd.send(HostCommand::SendFile(peer, path));
    }

    /// A chat line to one viewer, or to every viewer (None).
    pub fn chat(&self, peer_id: Option<&str>, text: String) {
        let peer = peer_id.map(|p| PeerId(p.to_owned()));
        let _ = self.cmd.send(HostCommand::Chat(peer, text));
    }

    /// Answers a file offer ([`TransferOutput::Offered`]).
    pub fn decide_file(&self, peer_id: &str, id: u32, accept: bool, collision: Collision) {
        let _ = self.cmd.send(HostCommand::DecideFile(
            PeerId(peer_id.to_owned()),
            id,
            accept,
            collision,
        ));
    }

    pub fn cancel_transfer(&self, peer_id: &str, id: u32) {
        let _ = self
            .cmd
            .send(HostCommand::CancelTransfer(PeerId(peer_id.to_owned()), id));
    }

    /// The switch for files from viewers (off stops those under way).
    pub fn set_files(&self, enabled: bool) {
        let _ = self.cmd.send(HostCommand::SetFiles(enabled));
    }

    /// The switch for the clipboard, both ways.
    pub fn set_clipboard(&self, enabled: bool) {
        let _ = self.cmd.send(HostCommand::SetClipboard(enabled));
    }
}

impl HostHandle {
    pub fn remote(&self) -> HostRemote {
        HostRemote { cmd: self.cmd.clone() }
    }

    /// Answers a [`HostEvent::JoinRequest`].
    pub fn consent(&self, peer_id: &str, decision: Decision) {
        self.remote().consent(peer_id, decision)
    }

    /// See [`HostRemote::set_control`].
    pub fn set_control(&self, enabled: bool) {
        self.remote().set_control(enabled)
    }

    pub async fn stop(mut self) -> Result<(), PeerError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap_or(Ok(()))
    }

    /// Resolves when the host ends on its own (signalling lost, room closed).
    pub async fn finished(&mut self) -> Result<(), PeerError> {
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

enum Ev {
    Rtc(PeerId, Generation, RtcEvent),
    Open(PeerId, Generation, Label),
    Closed(PeerId, Generation, Label),
    Command(PeerId, Command),
    BadCommand(PeerId, String),
    FrameDone(Result<LanesOutcome, MediaError>),
    /// The media thread switched displays (or could not).
    Switched(u32, Result<(u32, u32), MediaError>),
    /// A viewer's transfer task has news; `None`: only its view changed.
    Transfer(PeerId, Option<TransferOutput>),
    /// Text was copied on this machine.
    LocalClipboard(String),
}

/// Where the end-to-end check of one peer connection stands.
enum Check {
    /// The `commands` channel is not open yet.
    Waiting,
    /// `auth-hello` sent; waiting for the viewer's reply.
    Running(HostHandshake),
    /// The viewer proved the password; the host asked for its one-time code.
    SecondFactor,
    /// The viewer proved the secret over this connection.
    Passed,
}

struct Viewer {
    /// The viewer's address as the server saw it (shown in the consent dialog).
    address: String,
    /// Until when the server holds the join request open.
    request_deadline: Instant,
    /// The check of the current peer connection.
    check: Check,
    /// What the first passed check left, for checking rebuilt connections.
    resume: Option<Secret>,
    /// The host (its user or policy) admitted this viewer.
    admitted: bool,
    /// It came with the permanent password's gate: its first check is of
    /// the password, and it is admitted without asking if that passes.
    via_password: bool,
    /// Which peer connection of this session `pc` is (0 first, +1 per rebuild).
    generation: Generation,
    /// Which offer of `pc` is the current one (+1 per ICE restart): only
    /// the answer to it is applied.
    round: OfferRound,
    pc: Arc<dyn PeerConnection>,
    video: Arc<dyn DataChannel>,
    commands: Arc<dyn DataChannel>,
    /// Files, clipboard and chat: a task per session, across reconnections.
    transfer: TransferHandle,
    /// What was last allowed to cross on it.
    allowed: Allowed,
    remote_set: bool,
    pending: Vec<IceCandidate>,
    /// Connection state, recovery, keepalive, quality and the video gate (pure).
    link: ViewerLink,
    /// Puts the unordered channel's input back in the viewer's order.
    sequencer: InputSequencer<InputEvent>,
    /// The input queue refused this viewer's last event (a release is queued).
    input_overflow: bool,
    /// Warnings about this viewer's bad messages, one per interval.
    warnings: LogGate,
    /// What the shell counts (input, control); the link fills in the rest.
    stats: ViewerStats,
}

impl Viewer {
    /// Admitted, and its current connection passed the check: only then
    /// does anything but the check itself flow.
    fn trusted(&self) -> bool {
        self.admitted && matches!(self.check, Check::Passed)
    }

    /// Input from this viewer is applied only if it is trusted, the host
    /// granted control, the host's switch is on and the viewer has not
    /// switched itself off.
    fn may_control(&self, host_enabled: bool) -> bool {
        self.trusted() && host_enabled && self.stats.control_granted && !self.stats.viewer_view_only
    }

    fn stats(&self, now: Instant) -> ViewerStats {
        let mut stats = self.stats.clone();
        stats.connection = self.generation;
        self.link.fill_stats(now, &mut stats);
        stats.transfer = self.transfer.state.borrow().clone();
        stats
    }
}

/// Registers a room and starts streaming what `worker` captures; viewers'
/// input goes to `input` (None: a host that only shows its screen).
pub async fn start(
    config: HostConfig,
    worker: MediaWorker,
    input: Option<InputWorker>,
) -> Result<HostHandle, PeerError> {
    let signal_config = SignalConfig {
        tls: config.tls.clone(),
        grace: config.grace,
        ..SignalConfig::new(config.signal_url.clone())
    };
    // The host makes up the code; the server only ever sees its gate.
    let code = RoomCode::random(&mut rand::rng());
    let credentials = Credentials::Host {
        gate: code.gate(),
        unattended: config.unattended.as_ref().map(|u| lock(u).published()),
    };
    // A machine with unattended access comes back under the ID it had.
    let mut saved = config.unattended.as_ref().and_then(|u| lock(u).saved_room());
    let (session, room_id, ice) = loop {
        let mut state = ResumeState::new(credentials.clone());
        let with_saved = saved.is_some();
        if let Some(token) = saved.take() {
            state = state.with_token(token);
        }
        let mut session = SignalSession::start(signal_config.clone(), state).await?;
        match registered(&mut session).await {
            Ok((id, token, ice)) => {
                if let Some(u) = &config.unattended {
                    lock(u).save_room(&token);
                }
                break (session, id, ice);
            }
            Err(e) if with_saved && id_gone(&e) => {
                warn!("this machine's earlier ID is not available ({e}): a new one");
            }
            Err(e) => return Err(e),
        }
    };
    let room = RoomInfo {
        id: room_id.grouped(),
        code: code.grouped(),
        viewer_url: viewer_url(
            config.viewer_base.as_ref().unwrap_or(&config.signal_url),
            &room_id,
            &code,
        ),
    };
    let (stats_tx, stats_rx) = watch::channel(HostStats::default());
    let (stop_tx, stop_rx) = oneshot::channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (cmd, cmd_rx) = mpsc::unbounded_channel();
    let span = info_span!("host", room = %room.id);
    if let Some(every) = config.watch_network {
        tokio::spawn(watch_network(every, cmd.clone()).instrument(span.clone()));
    }
    let task = tokio::spawn(
        HostLoop::new(
            config,
            worker,
            input,
            ice,
            session.sender(),
            stats_tx,
            events_tx,
            room_id,
            code,
        )
        .run(session, stop_rx, cmd_rx)
        .instrument(span),
    );
    Ok(HostHandle {
        room,
        stats: stats_rx,
        events,
        cmd,
        stop: Some(stop_tx),
        task,
    })
}

/// The link a viewer opens: the code rides in the fragment, which browsers
/// never send to the server (nor log, nor pass on as a Referer).
fn viewer_url(signal_url: &Url, id: &RoomId, code: &RoomCode) -> String {
    let mut url = signal_url.clone();
    url.set_path("/");
    url.set_query(None);
    url.set_fragment(Some(&format!("id={}&code={}", id.as_str(), code.expose())));
    url.to_string()
}

/// Polls the machine's addresses; tells the host loop when they change.
async fn watch_network(every: Duration, cmd: mpsc::UnboundedSender<HostCommand>) {
    let mut known = AddressSet::new(tokio::task::spawn_blocking(local_addresses).await.unwrap_or_default());
    loop {
        tokio::time::sleep(every).await;
        let now = tokio::task::spawn_blocking(local_addresses).await.unwrap_or_default();
        if let Some(change) = known.update(now) {
            if cmd.send(HostCommand::NetworkChanged(change)).is_err() {
                return; // the host is gone
            }
        }
        if cmd.is_closed() {
            return;
        }
    }
}

/// The viewers this host admitted and whether with control: written only by
/// its own consent decisions (the user's, or the unattended policy's), read
/// whenever the server speaks of a viewer. Forgotten when the viewer's
/// session ends (it left, or its grace window ran out).
#[derive(Debug, Default)]
pub struct Admissions {
    granted: HashMap<PeerId, bool>,
}

impl Admissions {
    pub fn grant(&mut self, peer: &PeerId, decision: Decision) {
        match decision {
            Decision::Control => self.granted.insert(peer.clone(), true),
            Decision::View => self.granted.insert(peer.clone(), false),
            Decision::Deny => self.granted.remove(peer),
        };
    }

    /// `Some(control)` for a viewer this host admitted, `None` for anyone else.
    pub fn control(&self, peer: &PeerId) -> Option<bool> {
        self.granted.get(peer).copied()
    }

    pub fn revoke(&mut self, peer: &PeerId) {
        self.granted.remove(peer);
    }
}

struct HostLoop {
    config: HostConfig,
    room_id: RoomId,
    /// The code viewers must prove they know (changes after repeated failures).
    code: RoomCode,
    /// Failed checks since the last passed one (or the last new code).
    failed_checks: u32,
    signal: SignalSender,
    worker: MediaWorker,
    input: Option<InputWorker>,
    ice: Vec<IceServer>,
    /// Join requests (of viewers that passed the check) waiting for the user: deadline, and whether our own
    /// timeout is shorter than the server's (then we deny at the deadline;
    /// otherwise the server times the request out and tells the viewer so).
    requests: HashMap<PeerId, (Instant, bool)>,
    /// What this host itself granted: the only source of admission and rights.
    admissions: Admissions,
    events: mpsc::UnboundedSender<HostEvent>,
    chunker: FrameChunker,
    viewers: HashMap<PeerId, Viewer>,
    ev_tx: mpsc::UnboundedSender<Ev>,
    ev_rx: mpsc::UnboundedReceiver<Ev>,
    /// The viewers the frame being made is for, each with its lane.
    in_flight: Option<Vec<(PeerId, usize)>>,
    /// A tick arrived while a frame was in flight: start the next one as soon
    /// as it completes, so a frame slower than the interval costs one tick, not two.
    tick_pending: bool,
    next_capture_at: Instant,
    /// Rate control held a frame until the path has carried the earlier
    /// ones: try again then, not at the next tick (a hold of 3 ms must not
    /// cost a whole frame interval; files sharing the path made it cost
    /// 30 -> 23 fps).
    paced_until: Option<Instant>,
    /// How long the last frame took from capture to encoded (rate control
    /// starts a capture that much before the path is free).
    frame_lead: Duration,
    /// Which encoder each watching viewer gets (rate control only).
    lanes: LanePolicy<PeerId>,
    /// Lanes whose encoder the media thread holds (freed when they empty).
    lanes_open: [bool; MAX_LANES],
    /// The size each lane encodes the screen at (rate control only).
    scale: [ScalePolicy; MAX_LANES],
    unchanged_streak: u32,
    /// This machine's clipboard (None: not shared, or it could not be opened).
    clipboard: Option<ClipboardWorker>,
    stats: HostStats,
    stats_tx: watch::Sender<HostStats>,
}

impl HostLoop {
    #[allow(clippy::too_many_arguments)]
    fn new(
        config: HostConfig,
        worker: MediaWorker,
        input: Option<InputWorker>,
        ice: Vec<IceServer>,
        signal: SignalSender,
        stats_tx: watch::Sender<HostStats>,
        events: mpsc::UnboundedSender<HostEvent>,
        room_id: RoomId,
        code: RoomCode,
    ) -> Self {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let clipboard = config
            .clipboard
            .clone()
            .and_then(|source| open_clipboard(source, ev_tx.clone()));
        let stats = HostStats {
            control_enabled: config.control_enabled,
            files_enabled: config.files_enabled,
            clipboard_enabled: config.clipboard_enabled,
            clipboard_available: clipboard.is_some(),
            screen_size: worker.dimensions(),
            ..Default::default()
        };
        // What the host can do is known from the start.
        stats_tx.send_replace(stats.clone());
        let (w, h) = worker.dimensions();
        let scale = std::array::from_fn(|_| ScalePolicy::for_screen(w, h));
        let lanes = LanePolicy::new(config.encoder_lanes);
        HostLoop {
            room_id,
            code,
            failed_checks: 0,
            signal,
            chunker: FrameChunker::new(config.chunk_bytes),
            config,
            worker,
            input,
            ice,
            requests: HashMap::new(),
            admissions: Admissions::default(),
            events,
            viewers: HashMap::new(),
            ev_tx,
            ev_rx,
            in_flight: None,
            tick_pending: false,
            next_capture_at: Instant::now(),
            paced_until: None,
            frame_lead: Duration::ZERO,
            lanes,
            lanes_open: [true, false],
            scale,
            unchanged_streak: 0,
            clipboard,
            stats,
            stats_tx,
        }
    }

    async fn run(
        mut self,
        mut session: SignalSession,
        mut stop: oneshot::Receiver<()>,
        mut commands: mpsc::UnboundedReceiver<HostCommand>,
    ) -> Result<(), PeerError> {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / self.config.fps.max(1) as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let result = loop {
            let paced_until = self.paced_until;
            tokio::select! {
                _ = &mut stop => break Ok(()),
                ev = session.next() => match ev {
                    SignalEvent::Message { msg, .. } => {
                        if let Err(e) = self.on_signal(msg).await {
                            warn!("signalling message failed: {e}");
                        }
                    }
                    SignalEvent::Admitted { answer, reconnection } => {
                        info!(?reconnection, "signalling restored: same room and code");
                        if let ServerMessage::Registered { ice_servers, .. } = answer {
                            self.set_ice_servers(ice_servers).await;
                        }
                        self.emit(HostEvent::SignalRestored { reconnection });
                    }
                    SignalEvent::Disconnected { attempt, retry_in, grace_left, grace, reason } => {
                        warn!(attempt, "signalling lost ({reason}); media goes on peer to peer");
                        self.emit(HostEvent::SignalLost { attempt, retry_in, grace_left, grace });
                    }
                    SignalEvent::Ended(e) => break Err(e),
                },
                Some(ev) = self.ev_rx.recv() => self.on_event(ev).await,
                Some(cmd) = commands.recv() => match cmd {
                    HostCommand::Stop => break Ok(()),
                    cmd => self.on_host_command(cmd).await,
                },
                _ = ticker.tick() => {
                    self.expire_requests().await;
                    self.poll_links().await;
                    self.on_tick().await;
                }
                _ = sleep_until_some(paced_until) => self.on_tick().await,
            }
        };
        // Input first: nothing any viewer queued is injected from now on.
        if let Some(input) = &self.input {
            for peer in self.viewers.keys() {
                let _ = input.forget(&peer.0);
            }
        }
        self.signal.close();
        for (_, v) in self.viewers.drain() {
            let _ = v.pc.close().await;
        }
        result
    }

    fn emit(&self, ev: HostEvent) {
        let _ = self.events.send(ev);
    }

    async fn answer(&mut self, peer: PeerId, decision: Decision) {
        if self.requests.remove(&peer).is_none() {
            return; // already answered or expired
        }
        self.send_consent(peer, decision).await;
    }

    async fn send_consent(&mut self, peer: PeerId, decision: Decision) {
        info!(peer = %peer, ?decision, "join request answered");
        self.admissions.grant(&peer, decision);
        self.signal.send(ClientMessage::Consent {
            peer: peer.clone(),
            decision,
        });
        self.emit(HostEvent::JoinAnswered {
            peer_id: peer.0.clone(),
            decision,
        });
        match decision {
            Decision::Deny => self.remove_viewer(&peer, "declined").await,
            Decision::Control | Decision::View => self.admit(&peer, decision == Decision::Control).await,
        }
    }

    /// The viewer passed the check and the host said yes.
    async fn admit(&mut self, peer: &PeerId, control: bool) {
        let Some(v) = self.viewers.get_mut(peer) else { return };
        v.admitted = true;
        v.stats.control_granted = control;
        let state = v.link.state().to_string();
        info!(peer = %peer, control, "viewer admitted");
        self.emit(HostEvent::ViewerJoined {
            peer_id: peer.0.clone(),
            control,
        });
        // Its connection came up while it was checked: say where it stands.
        self.emit(HostEvent::ViewerState {
            peer_id: peer.0.clone(),
            state,
        });
        self.on_trusted(peer).await;
    }

    /// A viewer became trusted (admitted, and its connection checked): it
    /// learns the displays and its mode, and gets a keyframe.
    async fn on_trusted(&mut self, peer: &PeerId) {
        let displays = self.displays_message();
        let Some(v) = self.viewers.get_mut(peer) else { return };
        if !v.trusted() {
            return;
        }
        v.link.request_keyframe();
        self.next_capture_at = Instant::now();
        if v.link.commands_open() {
            send_command(&v.commands, displays).await;
        }
        v.transfer.send(TransferInput::Trusted);
        self.control_changed(peer).await;
        self.publish_stats();
    }

    /// The viewer passed the check: its user (or the unattended policy) is
    /// asked now, within what is left of the server's window.
    async fn ask(&mut self, peer: &PeerId) {
        let Some(v) = self.viewers.get(peer) else { return };
        let now = Instant::now();
        let server_left = v.request_deadline.saturating_duration_since(now);
        let ours = self.config.consent_timeout < server_left;
        let timeout = self.config.consent_timeout.min(server_left);
        let address = v.address.clone();
        self.requests.insert(peer.clone(), (now + timeout, ours));
        match self.config.consent {
            ConsentPolicy::Always(decision) => self.answer(peer.clone(), decision).await,
            ConsentPolicy::Ask => {
                info!(peer = %peer, %address, "viewer passed the check and asks to join");
                self.emit(HostEvent::JoinRequest {
                    peer_id: peer.0.clone(),
                    address,
                    timeout,
                });
            }
        }
    }

    /// Opens the end-to-end check on a viewer's new `commands` channel: the
    /// code for a viewer not admitted yet, the resume secret for a rebuilt
    /// connection to one that passed before.
    async fn start_check(&mut self, peer: &PeerId) {
        let Some(v) = self.viewers.get_mut(peer) else { return };
        let secret = match (&v.resume, v.admitted) {
            (Some(resume), _) => resume.clone(),
            (None, false) if v.via_password => {
                let Some(access) = &self.config.unattended else {
                    return self.check_failed(peer, AuthFailure::NoSecret, true).await;
                };
                let key = {
                    let a = lock(access);
                    a.lockout.check(unix_now()).map(|()| a.key.clone())
                };
                match key {
                    Ok(key) => Secret::password(key),
                    Err(locked) => {
                        warn!(peer = %peer, until = locked.until, "password joins are locked: refused without a check");
                        return self.check_failed(peer, AuthFailure::LockedOut, true).await;
                    }
                }
            }
            (None, false) => Secret::code(self.code.expose()),
            // Cannot happen: admission follows a passed check.
            (None, true) => return self.check_failed(peer, AuthFailure::Malformed, true).await,
        };
        match wire::binding(v.pc.as_ref(), &self.room_id, Side::Host).await {
            Ok(binding) => {
                let (run, hello) = HostHandshake::start(secret, binding, &mut rand::rng());
                v.check = Check::Running(run);
                debug!(peer = %peer, kind = ?hello.kind, "checking the viewer");
                send_command(&v.commands, wire::hello_message(&hello)).await;
            }
            Err(e) => self.check_failed(peer, wire::failure(&e), true).await,
        }
    }

    async fn on_auth_reply(&mut self, peer: &PeerId, msg: &str, tag: &str) {
        let Some(v) = self.viewers.get_mut(peer) else { return };
        let run = match std::mem::replace(&mut v.check, Check::Waiting) {
            Check::Running(run) => run,
            Check::Passed => {
                // Said twice: nothing changes.
                v.check = Check::Passed;
                v.stats.commands_rejected += 1;
                return;
            }
            Check::Waiting | Check::SecondFactor => return self.check_failed(peer, AuthFailure::Malformed, true).await,
        };
        match wire::parse_reply(msg, tag).and_then(|reply| run.on_reply(&reply)) {
            Ok((confirm, established)) => {
                v.check = Check::Passed;
                v.resume = Some(established.resume);
                send_command(&v.commands, wire::confirm_message(&confirm)).await;
                info!(peer = %peer, "viewer passed the end-to-end check");
                if v.admitted {
                    self.on_trusted(peer).await;
                } else if v.via_password {
                    let second = self
                        .config
                        .unattended
                        .as_ref()
                        .is_some_and(|a| lock(a).second_factor.is_some());
                    if second {
                        v.check = Check::SecondFactor;
                        send_command(&v.commands, Control::AuthTotpRequired).await;
                    } else {
                        self.admit_unattended(peer).await;
                    }
                } else {
                    self.failed_checks = 0;
                    self.ask(peer).await;
                }
            }
            Err(e) => self.check_failed(peer, wire::failure(&e), true).await,
        }
    }

    /// The one-time code of a viewer that proved the password.
    async fn on_second_factor(&mut self, peer: &PeerId, code: &str) {
        let Some(v) = self.viewers.get_mut(peer) else { return };
        if !matches!(v.check, Check::SecondFactor) {
            v.stats.commands_rejected += 1;
            return;
        }
        let Some(access) = &self.config.unattended else { return };
        let checked = lock(access).second_factor.as_mut().map(|f| f.check(code, unix_now()));
        match checked {
            Some(Ok(())) => {
                v.check = Check::Passed;
                self.admit_unattended(peer).await;
            }
            Some(Err(e)) => {
                info!(peer = %peer, "one-time code refused: {e}");
                self.check_failed(peer, AuthFailure::WrongTotp, true).await;
            }
            None => self.check_failed(peer, AuthFailure::Malformed, true).await,
        }
    }

    /// A viewer proved the permanent password (and its one-time code):
    /// admitted without asking anyone, as the host's settings say.
    async fn admit_unattended(&mut self, peer: &PeerId) {
        let Some(access) = &self.config.unattended else { return };
        let control = {
            let mut a = lock(access);
            a.lockout.on_success();
            a.save_lockout();
            a.control
        };
        let address = self.viewers.get(peer).map(|v| v.address.clone()).unwrap_or_default();
        info!(peer = %peer, %address, control, "unattended access: a viewer proved the password and is admitted");
        self.emit(HostEvent::UnattendedJoin {
            peer_id: peer.0.clone(),
            address,
        });
        let decision = if control { Decision::Control } else { Decision::View };
        self.send_consent(peer.clone(), decision).await;
    }

    /// A check failed (here, or the viewer says so): the viewer is told
    /// (`tell`), turned away (an admitted one is removed and its token
    /// revoked), the server counts a failed attempt, and after too many in a
    /// row the code changes.
    async fn check_failed(&mut self, peer: &PeerId, reason: AuthFailure, tell: bool) {
        let Some(v) = self.viewers.get_mut(peer) else { return };
        warn!(peer = %peer, address = %v.address, ?reason, "end-to-end check failed: {}", reason.describe());
        if tell && v.link.commands_open() {
            send_command(&v.commands, Control::AuthFailed { reason }).await;
        }
        let address = v.address.clone();
        let admitted = v.admitted;
        let password = v.via_password && !admitted;
        self.requests.remove(peer);
        if admitted {
            // Its own session's connection could not prove itself: end it.
            self.admissions.revoke(peer);
            self.signal.send(ClientMessage::Kick { peer: peer.clone() });
        } else {
            // A moment later, so the viewer hears the reason from us first
            // (the server's answer closes its signalling).
            let signal = self.signal.clone();
            let report = ClientMessage::AuthFailed {
                peer: peer.clone(),
                reason,
            };
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                signal.send(report);
            });
        }
        self.emit(HostEvent::AuthFailed {
            peer_id: peer.0.clone(),
            address,
            reason,
        });
        self.remove_viewer(peer, "failed the check").await;
        if password {
            // The password's own count, kept across restarts (a failure while
            // locked adds nothing); the code is not what was guessed, so it stays.
            if let Some(access) = &self.config.unattended {
                let mut a = lock(access);
                if let Some(locked) = a.lockout.on_failure(unix_now()) {
                    warn!(
                        until = locked.until,
                        "too many failed password joins: password joins locked"
                    );
                }
                a.save_lockout();
            }
            return;
        }
        self.failed_checks += 1;
        if self.failed_checks >= MAX_FAILED_CHECKS {
            self.rekey();
        }
    }

    /// Makes up a new code: the old one (and its link) admits no one from now on.
    fn rekey(&mut self) {
        warn!(
            failed = self.failed_checks,
            "too many failed checks in a row: a new code"
        );
        self.code = RoomCode::random(&mut rand::rng());
        self.failed_checks = 0;
        self.signal.send(ClientMessage::Rekey { gate: self.code.gate() });
        self.emit(HostEvent::CodeChanged {
            code: self.code.grouped(),
            viewer_url: viewer_url(
                self.config.viewer_base.as_ref().unwrap_or(&self.config.signal_url),
                &self.room_id,
                &self.code,
            ),
        });
    }

    /// Unanswered join requests are denied at their deadline; a viewer that
    /// has not passed the check by the server's deadline is dropped (a
    /// lying server's viewer that never answers holds nothing for long).
    async fn expire_requests(&mut self) {
        let now = Instant::now();
        let unchecked: Vec<PeerId> = self
            .viewers
            .iter()
            .filter(|(p, v)| !v.admitted && v.request_deadline <= now && !self.requests.contains_key(*p))
            .map(|(p, _)| p.clone())
            .collect();
        for peer in unchecked {
            self.remove_viewer(&peer, "not checked in time").await;
        }
        let expired: Vec<(PeerId, bool)> = self
            .requests
            .iter()
            .filter(|(_, &(deadline, _))| deadline <= now)
            .map(|(p, &(_, ours))| (p.clone(), ours))
            .collect();
        for (peer, ours) in expired {
            info!(peer = %peer, "join request not answered in time: denied");
            self.requests.remove(&peer);
            if ours {
                self.send_consent(peer, Decision::Deny).await;
            } else {
                // The server's clock runs out at the same moment and tells
                // the viewer it timed out; just close the question here.
                self.emit(HostEvent::JoinAnswered {
                    peer_id: peer.0.clone(),
                    decision: Decision::Deny,
                });
                self.remove_viewer(&peer, "not answered in time").await;
            }
        }
    }

    async fn on_host_command(&mut self, cmd: HostCommand) {
        match cmd {
            HostCommand::Consent(peer, decision) => self.answer(peer, decision).await,
            HostCommand::Reconnect => {
                info!("reconnect asked for");
                self.signal.reconnect_now();
                let stuck: Vec<PeerId> = self
                    .viewers
                    .iter()
                    .filter(|(_, v)| !v.link.connected())
                    .map(|(p, _)| p.clone())
                    .collect();
                for peer in stuck {
                    self.recover(&peer, IceAction::RestartIce).await;
                }
            }
            HostCommand::RestartIce => {
                info!("ICE restart asked for");
                self.recover_all(IceAction::RestartIce).await;
            }
            HostCommand::Stop => {} // handled by the loop
            HostCommand::Kick(peer) => {
                if !self.viewers.contains_key(&peer) {
                    warn!(peer = %peer, "no such viewer to remove");
                    return;
                }
                info!(peer = %peer, "removing the viewer");
                self.admissions.revoke(&peer);
                self.signal.send(ClientMessage::Kick { peer: peer.clone() });
                self.remove_viewer(&peer, "removed by the host").await;
            }
            HostCommand::NetworkChanged(NetworkChange { added, removed }) => {
                info!(?added, ?removed, "network addresses changed");
                // Sockets bound to a removed address are dead: an ICE restart on
                // them cannot gather anything new, so build fresh connections.
                // With only new addresses, a restart finds the better path.
                let action = if removed.is_empty() {
                    IceAction::RestartIce
                } else {
                    IceAction::Rebuild
                };
                self.emit(HostEvent::NetworkChanged { added, removed });
                // The signalling socket may be bound to an address that is gone.
                self.signal.reconnect_now();
                self.recover_all(action).await;
            }
            HostCommand::SelectDisplay(index) => {
                if !self.switch_display(index) {
                    warn!(index, "no such display to share (or already shared)");
                }
            }
            HostCommand::SendFile(to, path) => {
                for v in self.viewers_for(to.as_ref()) {
                    v.transfer.send(TransferInput::SendFile(path.clone()));
                }
            }
            HostCommand::Chat(to, text) => {
                for v in self.viewers_for(to.as_ref()) {
                    v.transfer.send(TransferInput::Chat(text.clone()));
                }
            }
            HostCommand::DecideFile(peer, id, accept, collision) => {
                if let Some(v) = self.viewers.get(&peer) {
                    v.transfer.send(TransferInput::Decide { id, accept, collision });
                }
            }
            HostCommand::CancelTransfer(peer, id) => {
                if let Some(v) = self.viewers.get(&peer) {
                    v.transfer.send(TransferInput::Cancel(id));
                }
            }
            HostCommand::SetFiles(enabled) | HostCommand::SetClipboard(enabled) => {
                if matches!(cmd, HostCommand::SetFiles(_)) {
                    info!(enabled, "host file transfer switch");
                    self.config.files_enabled = enabled;
                    self.stats.files_enabled = enabled;
                } else {
                    info!(enabled, "host clipboard switch");
                    self.config.clipboard_enabled = enabled;
                    self.stats.clipboard_enabled = enabled;
                }
                let peers: Vec<PeerId> = self.viewers.keys().cloned().collect();
                for peer in peers {
                    self.control_changed(&peer).await;
                }
                self.publish_stats();
            }
            HostCommand::SetControl(enabled) => {
                info!(enabled, "host control switch");
                self.config.control_enabled = enabled;
                self.stats.control_enabled = enabled;
                let peers: Vec<PeerId> = self.viewers.keys().cloned().collect();
                for peer in peers {
                    self.control_changed(&peer).await;
                }
                self.publish_stats();
            }
        }
    }

    /// Asks the media thread to capture display `index`; false if it cannot
    /// (unknown display, already shared, no media thread).
    fn switch_display(&mut self, index: u32) -> bool {
        if index as usize >= self.config.displays.len() || index == self.config.current_display {
            return false;
        }
        let tx = self.ev_tx.clone();
        self.worker
            .switch(index as usize, move |r| drop(tx.send(Ev::Switched(index, r))))
            .is_ok()
    }

    /// The display changed: new pointer geometry, a keyframe for everyone, and every viewer told.
    async fn on_switched(&mut self, index: u32, result: Result<(u32, u32), MediaError>) {
        match result {
            Ok((w, h)) => {
                info!(index, width = w, height = h, "now sharing another display");
                self.config.current_display = index;
                for scale in &mut self.scale {
                    scale.handle_screen(w, h);
                }
                self.stats.screen_size = (w, h);
                if let Some(input) = &self.input {
                    let g = self
                        .config
                        .display_geometry
                        .get(index as usize)
                        .copied()
                        .unwrap_or(DisplayGeometry::new(0, 0, w, h));
                    let _ = input.set_geometry(g);
                }
                self.next_capture_at = Instant::now();
                for v in self.viewers.values_mut() {
                    v.link.request_keyframe();
                }
            }
            Err(e) => warn!(index, "cannot share that display: {e}"),
        }
        let displays = self.displays_message();
        for v in self.viewers.values().filter(|v| v.link.commands_open() && v.trusted()) {
            send_command(&v.commands, displays.clone()).await;
        }
    }

    fn displays_message(&self) -> Control {
        Control::Displays {
            current: self.config.current_display,
            displays: self.config.displays.clone(),
        }
    }

    /// Tells the viewer whether its input is accepted, and releases what it
    /// holds when it no longer is.
    async fn control_changed(&mut self, peer: &PeerId) {
        let enabled = self.config.control_enabled;
        let Some(v) = self.viewers.get(peer) else { return };
        let control = v.may_control(enabled);
        if !control {
            // Now, not after what it queued: nothing queued before is injected.
            if let Some(input) = &self.input {
                let _ = input.revoke(&peer.0);
            }
        }
        self.sync_allowed(peer);
        let Some(v) = self.viewers.get(peer) else { return };
        if v.link.commands_open() && v.trusted() {
            let mode = Control::Mode {
                control,
                files: v.allowed.files_in,
                clipboard: v.allowed.clipboard,
            };
            send_command(&v.commands, mode).await;
        }
    }

    /// What may cross on a viewer's transfer channel follows its control
    /// and the host's switches; taking it away stops what is under way.
    fn sync_allowed(&mut self, peer: &PeerId) {
        let Some(v) = self.viewers.get_mut(peer) else { return };
        let control = v.may_control(self.config.control_enabled);
        let allowed = Allowed {
            files_in: control && self.config.files_enabled,
            clipboard: control && self.config.clipboard_enabled && self.clipboard.is_some(),
        };
        if allowed != v.allowed {
            info!(peer = %peer, files = allowed.files_in, clipboard = allowed.clipboard, "what may cross changed");
            v.allowed = allowed;
            v.transfer.send(TransferInput::Allow(allowed));
        }
    }

    /// Starts a viewer's transfer task; its news comes back as [`Ev::Transfer`].
    fn start_transfer(&self, peer: &PeerId) -> TransferHandle {
        let mut handle = transfer::spawn(TransferConfig {
            side: holdfast_transfer::Side::Host,
            inbox: self.config.inbox.clone(),
            incoming: self.config.incoming_files,
            tag: peer.0.chars().filter(char::is_ascii_alphanumeric).take(24).collect(),
        });
        let (tx, p) = (self.ev_tx.clone(), peer.clone());
        let mut events = std::mem::replace(&mut handle.events, mpsc::unbounded_channel().1);
        let mut state = handle.state.clone();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    e = events.recv() => match e { Some(e) => Some(e), None => break },
                    changed = state.changed() => match changed { Ok(()) => None, Err(_) => break },
                };
                if tx.send(Ev::Transfer(p.clone(), ev)).is_err() {
                    break;
                }
            }
        });
        handle
    }

    /// Fresh STUN/TURN settings (renewed TURN credentials) for the
    /// connections made from now on (new viewers, rebuilds). A live relay
    /// allocation keeps the credentials it was made with: TURN servers take a
    /// credential when allocating and refuse another username on an existing
    /// allocation (coturn: 441 Wrong Credentials), and an ICE restart reuses
    /// the allocation it has.
    async fn set_ice_servers(&mut self, ice_servers: Vec<IceServer>) {
        debug!(servers = ice_servers.len(), "ICE servers renewed");
        self.ice = ice_servers;
    }

    async fn on_signal(&mut self, msg: ServerMessage) -> Result<(), PeerError> {
        match msg {
            ServerMessage::IceServers { ice_servers } => self.set_ice_servers(ice_servers).await,
            ServerMessage::JoinRequest {
                peer_id,
                address,
                timeout_ms,
                password,
            } => {
                if self.viewers.contains_key(&peer_id) {
                    return Ok(());
                }
                // The server checked only the gate: connect, and check the
                // whole code before anyone is asked.
                info!(peer = %peer_id, %address, "a viewer knows the gate; connecting to check the code");
                let deadline = Instant::now() + Duration::from_millis(timeout_ms);
                self.add_viewer(peer_id, address, deadline, password).await?
            }
            ServerMessage::PeerJoined {
                peer_id,
                control: claimed,
                fresh,
            } => {
                // The server's word admits no one and raises nothing: only
                // what this host granted counts.
                let Some(control) = self.admissions.control(&peer_id) else {
                    self.refuse(peer_id, "the server announced a viewer this host never admitted");
                    return Ok(());
                };
                if claimed && !control {
                    self.refuse(
                        peer_id.clone(),
                        "the server claimed control for a viewer this host admitted view-only",
                    );
                }
                if self.viewers.contains_key(&peer_id) {
                    // Back after a signalling drop (or a server restart): same viewer, same consent.
                    let connected = self.viewers[&peer_id].link.connected();
                    info!(peer = %peer_id, connected, fresh, "viewer rejoined");
                    if fresh {
                        // It kept nothing (a new process or page): a new connection.
                        self.emit(HostEvent::ViewerJoined {
                            peer_id: peer_id.0.clone(),
                            control,
                        });
                        self.recover(&peer_id, IceAction::Rebuild).await;
                    } else if !connected {
                        self.recover(&peer_id, IceAction::RestartIce).await;
                    }
                } else {
                    self.refuse(peer_id, "the server announced a viewer this host has no connection to");
                }
            }
            ServerMessage::PeerState { peer_id, connected, .. } => {
                info!(peer = %peer_id, connected, "viewer's signalling connection");
            }
            ServerMessage::Answer {
                from,
                sdp,
                generation,
                round,
            } => {
                let Some(v) = self.viewers.get_mut(&from).filter(|v| v.generation == generation) else {
                    return Ok(());
                };
                if v.round != round {
                    // Offers queued while the viewer was away all reach it and are all answered.
                    debug!(peer = %from, round, current = v.round, "ignoring the answer to an earlier offer");
                } else {
                    v.pc.set_remote_description(RTCSessionDescription::answer(sdp)?).await?;
                    v.remote_set = true;
                    for c in std::mem::take(&mut v.pending) {
                        v.pc.add_ice_candidate(to_init(&c)).await?;
                    }
                }
            }
            ServerMessage::Candidate {
                from,
                candidate,
                generation,
            } => {
                if let Some(v) = self.viewers.get_mut(&from).filter(|v| v.generation == generation) {
                    if v.remote_set {
                        v.pc.add_ice_candidate(to_init(&candidate)).await?;
                    } else if v.pending.len() < 64 {
                        v.pending.push(candidate);
                    }
                }
            }
            ServerMessage::PeerLeft { peer_id } => {
                self.requests.remove(&peer_id);
                self.admissions.revoke(&peer_id);
                self.remove_viewer(&peer_id, "left").await
            }
            ServerMessage::Error { code, message, .. } => warn!(?code, "server error: {message}"),
            ServerMessage::RoomClosed { reason } => {
                return Err(PeerError::Unexpected(format!("room closed: {reason}")))
            }
            _ => {}
        }
        Ok(())
    }

    /// Logs and reports a claim of the server's that this host did not grant.
    fn refuse(&self, peer: PeerId, reason: &str) {
        warn!(peer = %peer, "refused: {reason}");
        self.emit(HostEvent::ViewerRefused {
            peer_id: peer.0,
            reason: reason.to_owned(),
        });
    }

    /// A new peer connection to `peer` with `video` and `commands`, its events
    /// tagged with `generation`, and the offer sent.
    async fn open_peer(&self, peer: &PeerId, generation: Generation) -> Result<OpenedPeer, PeerError> {
        let (pc, mut rtc_rx) = build_peer(&self.ice, &self.config.rtc).await?;
        let ordered = Some(RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        });
        // Unordered so keepalive and input overtake queued video (see the module doc).
        let unordered = Some(RTCDataChannelInit {
            ordered: false,
            ..Default::default()
        });
        let video = pc
            .create_data_channel(
                "video",
                Some(RTCDataChannelInit {
                    ordered: true,
                    max_packet_life_time: self.config.rate.map(|_| VIDEO_LIFETIME_MS),
                    ..Default::default()
                }),
            )
            .await?;
        let commands = pc.create_data_channel("commands", unordered).await?;
        // Reliable and ordered, polled by the session's transfer task.
        let transfer = pc
            .create_data_channel(holdfast_proto::transfer::CHANNEL_LABEL, ordered)
            .await?;
        for (dc, label) in [(video.clone(), Label::Video), (commands.clone(), Label::Commands)] {
            tokio::spawn(poll_channel(dc, label, peer.clone(), generation, self.ev_tx.clone()));
        }
        let tx = self.ev_tx.clone();
        let p = peer.clone();
        tokio::spawn(async move {
            while let Some(ev) = rtc_rx.recv().await {
                if tx.send(Ev::Rtc(p.clone(), generation, ev)).is_err() {
                    break;
                }
            }
        });
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer.clone()).await?;
        self.signal.send(ClientMessage::Offer {
            to: Some(peer.clone()),
            sdp: offer.sdp,
            generation,
            round: 0,
        });
        Ok(OpenedPeer {
            pc,
            video,
            commands,
            transfer,
        })
    }

    /// A connection to a viewer that asks to join: nothing but the check
    /// flows on it until the viewer passed it and was admitted.
    async fn add_viewer(
        &mut self,
        peer: PeerId,
        address: String,
        request_deadline: Instant,
        via_password: bool,
    ) -> Result<(), PeerError> {
        let OpenedPeer {
            pc,
            video,
            commands,
            transfer: transfer_dc,
        } = self.open_peer(&peer, 0).await?;
        let transfer = self.start_transfer(&peer);
        transfer.pace.set_video(video.clone());
        transfer.send(TransferInput::Channel(transfer_dc));
        let stats = ViewerStats {
            peer_id: peer.0.clone(),
            ..Default::default()
        };
        let link = ViewerLink::new(
            LinkConfig {
                limits: self.config.limits,
                keepalive: self.config.keepalive,
                disconnected_timeout: self.config.ice_disconnected_timeout,
                relay_recheck: self.config.relay_recheck,
                rate: self.config.rate,
            },
            Instant::now(),
        );
        self.viewers.insert(
            peer,
            Viewer {
                address,
                request_deadline,
                check: Check::Waiting,
                resume: None,
                admitted: false,
                via_password,
                generation: 0,
                round: 0,
                pc,
                video,
                commands,
                transfer,
                allowed: Allowed::default(),
                remote_set: false,
                pending: Vec::new(),
                link,
                sequencer: InputSequencer::default(),
                input_overflow: false,
                warnings: LogGate::default(),
                stats,
            },
        );
        Ok(())
    }

    /// Carries out a recovery decision for one viewer.
    async fn recover(&mut self, peer: &PeerId, action: IceAction) {
        let rebuild = action == IceAction::Rebuild;
        if self.viewers.get(peer).is_some_and(|v| v.admitted) {
            // The shell hears only of viewers it was told joined.
            self.emit(HostEvent::ViewerRecovering {
                peer_id: peer.0.clone(),
                rebuild,
            });
        }
        // Whatever it holds is released: its connection is in doubt.
        self.release_input(peer);
        let result = if rebuild {
            self.rebuild(peer).await
        } else {
            self.restart_ice(peer).await
        };
        if let Err(e) = result {
            warn!(peer = %peer, rebuild, "recovery failed: {e}");
        }
    }

    async fn recover_all(&mut self, action: IceAction) {
        let peers: Vec<PeerId> = self.viewers.keys().cloned().collect();
        for peer in peers {
            self.recover(&peer, action).await;
        }
    }

    async fn restart_ice(&mut self, peer: &PeerId) -> Result<(), PeerError> {
        let Some(v) = self.viewers.get_mut(peer) else {
            return Ok(());
        };
        info!(peer = %peer, restarts = v.link.restarts(), "restarting ICE");
        v.pc.restart_ice().await?;
        let offer = v.pc.create_offer(None).await?;
        v.pc.set_local_description(offer.clone()).await?;
        // Candidates for the new ICE session wait for the answer.
        v.remote_set = false;
        v.round += 1;
        self.signal.send(ClientMessage::Offer {
            to: Some(peer.clone()),
            sdp: offer.sdp,
            generation: v.generation,
            round: v.round,
        });
        Ok(())
    }

    /// Replaces the viewer's peer connection with a new one (next generation).
    async fn rebuild(&mut self, peer: &PeerId) -> Result<(), PeerError> {
        let Some(generation) = self.viewers.get(peer).map(|v| v.generation + 1) else {
            return Ok(());
        };
        info!(peer = %peer, generation, "building a new peer connection");
        let opened = self.open_peer(peer, generation).await?;
        let v = self.viewers.get_mut(peer).expect("checked");
        let old = std::mem::replace(&mut v.pc, opened.pc);
        v.video = opened.video;
        v.commands = opened.commands;
        v.transfer.pace.set_video(v.video.clone());
        v.transfer.send(TransferInput::Channel(opened.transfer));
        v.generation = generation;
        v.round = 0;
        // New certificates: checked again (with the resume secret) before anything flows.
        v.check = Check::Waiting;
        v.remote_set = false;
        v.pending.clear();
        v.link.handle_rebuilt();
        let _ = old.close().await;
        Ok(())
    }

    /// Time-driven decisions of every viewer's link (keepalive, recovery,
    /// path sampling), carried out.
    async fn poll_links(&mut self) {
        let now = Instant::now();
        let peers: Vec<PeerId> = self.viewers.keys().cloned().collect();
        for v in self.viewers.values_mut() {
            v.link.handle_timeout(now);
        }
        let mut any = false;
        for peer in peers {
            any |= self.run_link_actions(&peer).await;
        }
        if any {
            // No frame may complete to publish this (idle screen, drops), so publish now.
            self.publish_stats();
        }
    }

    /// Carries out what a viewer's link decided; true if it decided anything.
    async fn run_link_actions(&mut self, peer: &PeerId) -> bool {
        let mut any = false;
        loop {
            let Some(v) = self.viewers.get_mut(peer) else {
                return any;
            };
            let Some(action) = v.link.poll_action() else { return any };
            any = true;
            match action {
                LinkAction::SendPing => {
                    let _ = v
                        .commands
                        .send(BytesMut::from(&holdfast_proto::commands::PING[..]))
                        .await;
                }
                LinkAction::Unresponsive { silent } => {
                    warn!(peer = %peer, silent_ms = silent.as_millis() as u64, "viewer unresponsive");
                    self.emit(HostEvent::ViewerUnresponsive {
                        peer_id: peer.0.clone(),
                    });
                }
                LinkAction::ReleaseInput => self.release_input(peer),
                LinkAction::Recover { action, reason } => {
                    if reason == RecoverReason::PoorQuality {
                        warn!(peer = %peer, "quality poor for 10 s: trying another path");
                    }
                    self.recover(peer, action).await;
                }
                LinkAction::RecheckRelay => {
                    info!(peer = %peer, "relayed: restarting ICE to look for a direct path");
                    if let Err(e) = self.restart_ice(peer).await {
                        warn!(peer = %peer, "ICE restart failed: {e}");
                    }
                }
                LinkAction::SamplePath => {
                    // The server hears only of members' links.
                    if v.admitted {
                        let sample = path_sample(&v.pc).await;
                        v.link.handle_path_sample(Instant::now(), sample);
                    }
                    // Once a second, what its acknowledgements showed, to the viewer.
                    if v.trusted() {
                        if let Some(report) = v.link.link_report() {
                            send_command(&v.commands, report).await;
                        }
                    }
                }
                LinkAction::RouteChanged(route) => info!(peer = %peer, ?route, "path in use"),
                LinkAction::ReportQuality(metrics) => self.signal.send(ClientMessage::Quality {
                    peer: Some(peer.clone()),
                    metrics,
                }),
                LinkAction::QualityChanged { quality, metrics } => {
                    info!(peer = %peer, ?quality, latency_ms = metrics.latency_ms, loss = metrics.packet_loss_percent,
                          jitter_ms = metrics.jitter_ms, "link quality changed");
                    self.emit(HostEvent::Quality {
                        peer_id: peer.0.clone(),
                        quality,
                        metrics,
                    });
                }
                LinkAction::Restored => info!(peer = %peer, "viewer connection restored"),
                LinkAction::CaptureNow => self.next_capture_at = Instant::now(),
                LinkAction::Gate(report) => match report {
                    GateReport::Dropped { count, total, queued } => {
                        warn!(peer = %peer, count, total, queued, "video queue over limit: frames dropped")
                    }
                    GateReport::QueueHigh { queued, limit } => {
                        warn!(peer = %peer, queued, limit, "video channel queue high")
                    }
                    GateReport::Stalled { queued } => {
                        warn!(peer = %peer, queued, "video channel stopped draining: frames withheld")
                    }
                },
            }
        }
    }

    async fn remove_viewer(&mut self, peer: &PeerId, why: &str) {
        if let Some(v) = self.viewers.remove(peer) {
            let stats = v.stats(Instant::now());
            info!(peer = %peer, frames = stats.frames_sent, dropped = stats.frames_dropped, "viewer {why}");
            if let Some(input) = &self.input {
                let _ = input.forget(&peer.0);
            }
            if v.admitted {
                let _ = v.pc.close().await;
                self.emit(HostEvent::ViewerLeft {
                    peer_id: peer.0.clone(),
                });
            } else {
                // Let a last `auth-failed` arrive before the connection goes.
                tokio::spawn(async move {
                    crate::rtc::drained(&v.commands, Duration::from_secs(2)).await;
                    let _ = v.pc.close().await;
                });
            }
            self.publish_stats();
        }
    }

    /// Releases whatever the viewer holds (its connection is in doubt).
    fn release_input(&self, peer: &PeerId) {
        if let Some(input) = &self.input {
            let _ = input.release(&peer.0);
        }
    }

    async fn on_event(&mut self, ev: Ev) {
        let current = |viewers: &HashMap<PeerId, Viewer>, peer: &PeerId, g: Generation| {
            viewers.get(peer).is_some_and(|v| v.generation == g)
        };
        match ev {
            // Events of a replaced peer connection are history.
            Ev::Rtc(peer, g, _) | Ev::Open(peer, g, _) | Ev::Closed(peer, g, _)
                if !current(&self.viewers, &peer, g) => {}
            Ev::Rtc(peer, generation, RtcEvent::Candidate(c)) => {
                self.signal.send(ClientMessage::Candidate {
                    to: Some(peer),
                    candidate: c,
                    generation,
                });
            }
            Ev::Rtc(peer, _, RtcEvent::State(s)) => {
                debug!(peer = %peer, state = %s, "peer connection state");
                let Some(v) = self.viewers.get_mut(&peer) else { return };
                v.link.handle_state(Instant::now(), s);
                if v.admitted {
                    self.emit(HostEvent::ViewerState {
                        peer_id: peer.0.clone(),
                        state: s.to_string(),
                    });
                }
                if matches!(
                    s,
                    RTCPeerConnectionState::Disconnected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                ) {
                    warn!(peer = %peer, state = %s, "peer connection lost");
                }
                self.run_link_actions(&peer).await;
                self.publish_stats();
            }
            Ev::Rtc(..) => {}
            Ev::Open(peer, _, label) => {
                let Some(v) = self.viewers.get_mut(&peer) else { return };
                v.link.handle_channel(Instant::now(), label, true);
                self.run_link_actions(&peer).await;
                match label {
                    Label::Video => info!(peer = %peer, "video channel open"),
                    // Nothing else until the viewer proved the code (or resume secret).
                    Label::Commands => self.start_check(&peer).await,
                }
            }
            Ev::Closed(peer, _, label) => {
                if let Some(v) = self.viewers.get_mut(&peer) {
                    v.link.handle_channel(Instant::now(), label, false);
                }
                self.run_link_actions(&peer).await;
            }
            Ev::Command(peer, cmd) => {
                self.on_command(peer.clone(), cmd).await;
                self.run_link_actions(&peer).await;
            }
            Ev::BadCommand(peer, e) => {
                // A malformed message is still a sign of life, and nothing else.
                let now = Instant::now();
                if let Some(v) = self.viewers.get_mut(&peer) {
                    v.link.handle_activity(now);
                    v.stats.commands_rejected += 1;
                    if let Some(also) = v.warnings.pass(now) {
                        warn!(peer = %peer, rejected = v.stats.commands_rejected, "rejected command: {e} (and {also} more since the last warning)");
                    }
                }
            }
            Ev::Switched(index, result) => self.on_switched(index, result).await,
            Ev::Transfer(peer, event) => self.on_transfer(peer, event),
            Ev::LocalClipboard(text) => {
                // Copied here: to every viewer the clipboard crosses to now.
                for v in self.viewers.values().filter(|v| v.allowed.clipboard) {
                    v.transfer.send(TransferInput::SendClipboardText(text.clone()));
                }
            }
            Ev::FrameDone(result) => {
                self.on_frame(result).await;
                if std::mem::take(&mut self.tick_pending) {
                    self.on_tick().await;
                }
            }
        }
    }

    /// News from a viewer's transfer task.
    fn on_transfer(&mut self, peer: PeerId, event: Option<TransferOutput>) {
        let Some(v) = self.viewers.get(&peer) else { return };
        match event {
            None => {}
            Some(TransferOutput::Clipboard(text)) => {
                // The task passes clipboard text only while allowed; checked again here.
                if let (Some(c), true) = (&self.clipboard, v.allowed.clipboard) {
                    let _ = c.set(text);
                }
            }
            Some(event) => {
                if let TransferOutput::Saved { path, .. } = &event {
                    info!(peer = %peer, "file received: {}", path.display());
                }
                self.emit(HostEvent::Transfer {
                    peer_id: peer.0.clone(),
                    event,
                });
            }
        }
        self.publish_stats();
    }

    /// The viewers a command names: one, or all admitted ones.
    fn viewers_for<'a>(&'a self, to: Option<&'a PeerId>) -> impl Iterator<Item = &'a Viewer> + 'a {
        self.viewers
            .iter()
            .filter(move |(p, v)| v.admitted && to.is_none_or(|t| t == *p))
            .map(|(_, v)| v)
    }

    async fn on_command(&mut self, peer: PeerId, cmd: Command) {
        let now = Instant::now();
        let Some(v) = self.viewers.get_mut(&peer) else { return };
        match cmd {
            Command::Pong => v.link.handle_pong(now),
            _ => v.link.handle_activity(now),
        }
        match cmd {
            Command::Control(Control::AuthReply { msg, tag }) => return self.on_auth_reply(&peer, &msg, &tag).await,
            Command::Control(Control::AuthTotp { code }) => return self.on_second_factor(&peer, &code).await,
            Command::Control(Control::AuthFailed { reason }) => {
                info!(peer = %peer, ?reason, "the viewer says the check failed");
                return self.check_failed(&peer, reason, false).await;
            }
            Command::Ping | Command::Pong => {}
            _ if !v.trusted() => {
                // Before the check passed and the host admitted it, nothing else counts.
                v.stats.commands_rejected += 1;
                return;
            }
            _ => {}
        }
        match cmd {
            Command::Control(Control::KeyframeRequest) => {
                if v.link.handle_keyframe_request(now) {
                    debug!(peer = %peer, "viewer asked for a keyframe");
                }
            }
            Command::Control(Control::FrameShown { frame, after_ms }) => {
                if let Err(e) = v.link.handle_shown(unix_micros(), frame, after_ms) {
                    v.stats.commands_rejected += 1;
                    if let Some(also) = v.warnings.pass(now) {
                        warn!(peer = %peer, "frame acknowledgement refused: {e} (and {also} more since the last warning)");
                    }
                }
            }
            Command::Ping => {
                let _ = v
                    .commands
                    .send(BytesMut::from(&holdfast_proto::commands::PONG[..]))
                    .await;
            }
            Command::Pong => {}
            Command::Control(Control::ViewOnly { on }) => {
                v.stats.viewer_view_only = on;
                self.control_changed(&peer).await;
                self.publish_stats();
            }
            Command::Control(Control::SelectDisplay { index }) => {
                // Choosing what the host shares is a control action.
                let allowed = v.may_control(self.config.control_enabled);
                let commands = v.commands.clone();
                if !allowed {
                    v.stats.input_ignored += 1;
                }
                if !(allowed && self.switch_display(index)) {
                    // Nothing changes: say what is being shared.
                    send_command(&commands, self.displays_message()).await;
                }
            }
            Command::Control(
                c @ (Control::Mode { .. }
                | Control::Displays { .. }
                | Control::LinkReport { .. }
                | Control::AuthHello { .. }
                | Control::AuthConfirm { .. }
                | Control::AuthReply { .. }
                | Control::AuthTotpRequired
                | Control::AuthFailed { .. }),
            ) => {
                v.stats.commands_rejected += 1;
                if let Some(also) = v.warnings.pass(now) {
                    warn!(peer = %peer, "viewer sent a host-only message: {c:?} (and {also} more since the last warning)");
                }
            }
            Command::Control(input) => {
                let Ok((seq, event)) = input.into_input() else { return };
                if !v.may_control(self.config.control_enabled) {
                    v.stats.input_ignored += 1;
                    return;
                }
                for event in v.sequencer.push(seq, event) {
                    v.stats.input_events += 1;
                    let Some(worker) = &self.input else { continue };
                    match worker.apply(&peer.0, event) {
                        Ok(()) => v.input_overflow = false,
                        Err(e) => {
                            v.stats.input_dropped += 1;
                            if !std::mem::replace(&mut v.input_overflow, true) {
                                // A dropped key-up must not leave a key down.
                                warn!(peer = %peer, "input dropped ({e}); releasing what the viewer holds");
                                let _ = worker.release(&peer.0);
                            }
                        }
                    }
                }
            }
        }
    }

    async fn on_tick(&mut self) {
        self.paced_until = None;
        if self.in_flight.is_some() {
            self.tick_pending = true;
        }
        let now = Instant::now();
        let watching = |v: &Viewer| v.link.video_open() && v.trusted();
        // Each viewer watches one lane's encoder ([`crate::lanes`]): viewers
        // on similar paths share one at the slowest of their rates.
        let rates: Vec<(PeerId, Option<u32>)> = self
            .viewers
            .iter()
            .filter(|(_, v)| watching(v))
            .map(|(p, v)| (p.clone(), v.link.target_kbps()))
            .collect();
        for m in self.lanes.assign(now, &rates) {
            info!(peer = %m.viewer, from = m.from, to = m.to, "viewer moved to another encoder");
            self.scale[m.from].handle_viewers_changed();
            if let Some(v) = self.viewers.get_mut(&m.viewer) {
                // Nothing it holds is a reference of its new lane.
                v.link.request_keyframe();
            }
        }
        for lane in 1..MAX_LANES {
            if self.lanes_open[lane] && self.lanes.members(lane) == 0 {
                let _ = self.worker.release_lane(lane);
                self.lanes_open[lane] = false;
                let (w, h) = self.stats.screen_size;
                self.scale[lane] = ScalePolicy::for_screen(w, h);
            }
        }
        let mut lane_ticks: [LaneTick; MAX_LANES] = Default::default();
        let mut admitted = Vec::new();
        let mut dropped = false;
        let mut asked = Vec::new();
        for (peer, v) in self.viewers.iter_mut().filter(|(_, v)| watching(v)) {
            let lane = self.lanes.lane_of(peer);
            v.stats.lane = lane;
            let queued = v.video.outstanding_bytes().await.unwrap_or(0);
            v.link.handle_queue(now, queued);
            asked.push(peer.clone());
            let tick = &mut lane_ticks[lane];
            if let Some(kbps) = v.link.target_kbps() {
                tick.bitrate_kbps = Some(tick.bitrate_kbps.map_or(kbps, |b| b.min(kbps)));
            }
            if let Some(bps) = v.link.capacity_bps(now) {
                tick.capacity_bps = Some(tick.capacity_bps.map_or(bps, |c| c.min(bps)));
            }
            tick.overdue = tick.overdue.max(v.link.overdue(now).unwrap_or_default());
            if self.in_flight.is_some() || now < self.next_capture_at {
                continue;
            }
            // Frames are paced to the path only for a viewer alone on its
            // lane (see ViewerLink::frame_wanted); with others, the gate alone limits each.
            let solo = self.lanes.members(lane) == 1;
            match v.link.frame_wanted(now, queued, solo.then_some(self.frame_lead)) {
                FrameDecision::Send { keyframe } => {
                    tick.force_keyframe |= keyframe;
                    tick.wanted = true;
                    admitted.push((peer.clone(), lane));
                }
                FrameDecision::Drop => dropped = true,
                FrameDecision::Pace(at) => {
                    let at = at.max(now + Duration::from_millis(1));
                    self.paced_until = Some(self.paced_until.map_or(at, |t| t.min(at)));
                }
            }
        }
        for peer in asked {
            self.run_link_actions(&peer).await;
        }
        if dropped {
            // No frame may complete to publish this (idle screen, drops), so publish now.
            self.publish_stats();
        }
        // Seen behind between frames counts too: no bigger size for a while.
        for (policy, t) in self.scale.iter_mut().zip(&lane_ticks) {
            policy.handle_overdue(now, t.overdue);
        }
        let reqs: Vec<(usize, FrameRequest)> = lane_ticks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.wanted)
            .map(|(lane, t)| {
                // The screen is scaled to the lane's slowest path only under
                // rate control; without it, always the full size (as before it existed).
                let policy = &mut self.scale[lane];
                let scale = t.capacity_bps.map_or(Scale::FULL, |c| policy.decide(now, c));
                let req = FrameRequest {
                    force_keyframe: t.force_keyframe,
                    bitrate_kbps: t.bitrate_kbps,
                    scale,
                    keyframe_above_change: t.capacity_bps.and_then(|c| policy.keyframe_above_change(c)),
                    tuning: t
                        .capacity_bps
                        .filter(|_| self.config.adaptive_tuning)
                        .map(|c| policy.tuning(now, c)),
                };
                (lane, req)
            })
            .collect();
        if reqs.is_empty() {
            return;
        }
        for (lane, _) in &reqs {
            self.lanes_open[*lane] = true;
        }
        let tx = self.ev_tx.clone();
        if self
            .worker
            .request_lanes(reqs, move |r| drop(tx.send(Ev::FrameDone(r))))
            .is_ok()
        {
            self.in_flight = Some(admitted);
        }
    }

    async fn on_frame(&mut self, result: Result<LanesOutcome, MediaError>) {
        let admitted = self.in_flight.take().unwrap_or_default();
        let now = Instant::now();
        match result {
            Ok(out) if !out.frames.is_empty() => {
                self.unchanged_streak = 0;
                self.next_capture_at = now;
                self.record_timings(&out.timings);
                self.stats.frames_encoded += 1;
                for (lane, frame) in &out.frames {
                    let (coded, screen) = (
                        (frame.width as u32, frame.height as u32),
                        (frame.display_width as u32, frame.display_height as u32),
                    );
                    // The pipeline gives every frame its sizes (the wire only keyframes).
                    if *lane == 0 || self.lanes.members(0) == 0 {
                        self.stats.coded_size = coded;
                    }
                    self.stats.screen_size = screen;
                    if frame.keyframe || frame.data.len() >= crate::rate::BURST_MIN_BYTES {
                        // The big frames (page switches, keyframes) are what a change's
                        // latency is made of: what they cost before they leave.
                        debug!(
                            lane,
                            bytes = frame.data.len(),
                            keyframe = frame.keyframe,
                            ?coded,
                            convert_ms = out.timings.convert.as_secs_f64() * 1000.0,
                            encode_ms = out.timings.encode.as_secs_f64() * 1000.0,
                            "big frame encoded"
                        );
                    }
                    let scale = &mut self.scale[*lane];
                    scale.handle_encoded(frame.data.len(), frame.keyframe, coded, screen);
                    if *lane == 0 {
                        self.stats.big_change_bytes = scale.big_change_bytes();
                    }
                    let tuning = self.config.adaptive_tuning.then(|| scale.current_tuning().name());
                    for (peer, v) in self.viewers.iter_mut() {
                        if self.lanes.lane_of(peer) != *lane || !(v.link.video_open() && v.trusted()) {
                            continue;
                        }
                        if admitted.iter().any(|(p, l)| p == peer && l == lane) {
                            v.stats.coded_size = coded;
                            v.stats.tuning = tuning;
                            send_frame(&self.chunker, v, frame).await;
                        } else {
                            // Later frames of this lane reference this one: it needs a fresh start.
                            v.link.handle_withheld();
                        }
                    }
                }
                self.stats.scale_changes = self.scale.iter().map(ScalePolicy::changes).sum();
            }
            Ok(out) if out.ready => {
                self.stats.frames_unchanged += 1;
                self.record_timings(&out.timings);
                self.unchanged_streak += 1;
                if self.unchanged_streak >= IDLE_AFTER_UNCHANGED {
                    self.next_capture_at = now + self.config.idle_interval;
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!("media pipeline: {e}");
                self.next_capture_at = now + Duration::from_millis(500);
            }
        }
        self.publish_stats();
    }

    fn publish_stats(&mut self) {
        let now = Instant::now();
        // Viewers still being checked or asked about are not viewers yet.
        self.stats.viewers = self
            .viewers
            .values()
            .filter(|v| v.admitted)
            .map(|v| v.stats(now))
            .collect();
        self.stats_tx.send_replace(self.stats.clone());
    }

    fn record_timings(&mut self, t: &StageTimings) {
        self.frame_lead = t.capture + t.detect + t.convert + t.encode;
        self.stats.last_capture_us = t.capture.as_micros() as u64;
        self.stats.last_convert_us = t.convert.as_micros() as u64;
        self.stats.last_encode_us = t.encode.as_micros() as u64;
    }
}

/// What one tick asks of one lane: the slowest rate of its viewers and
/// whether any of them takes a frame (and needs a keyframe).
#[derive(Debug, Default)]
struct LaneTick {
    bitrate_kbps: Option<u32>,
    capacity_bps: Option<f64>,
    /// The most overdue of its viewers' oldest unacknowledged bytes.
    overdue: Duration,
    force_keyframe: bool,
    wanted: bool,
}

struct OpenedPeer {
    transfer: Arc<dyn DataChannel>,
    pc: Arc<dyn PeerConnection>,
    video: Arc<dyn DataChannel>,
    commands: Arc<dyn DataChannel>,
}

async fn send_command(dc: &Arc<dyn DataChannel>, control: Control) {
    let _ = dc.send(BytesMut::from(&Command::Control(control).encode()[..])).await;
}

async fn send_frame(chunker: &FrameChunker, v: &mut Viewer, frame: &EncodedFrame) {
    let chunks = match chunker.split_as(frame, v.link.next_frame_id()) {
        Ok(c) => c,
        Err(e) => {
            warn!("frame not sent: {e}");
            v.link.handle_send_failed();
            return;
        }
    };
    for c in chunks {
        if v.video.send(BytesMut::from(&c[..])).await.is_err() {
            v.link.handle_send_failed();
            return;
        }
    }
    let queued = v.video.outstanding_bytes().await.unwrap_or(0);
    let now = Instant::now();
    v.link
        .handle_sent(now, frame.keyframe, frame.data.len(), queued, frame.capture_us);
}

/// Opens this machine's clipboard; what is copied here comes back as
/// [`Ev::LocalClipboard`].
fn open_clipboard(source: ClipboardSource, ev_tx: mpsc::UnboundedSender<Ev>) -> Option<ClipboardWorker> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    match ClipboardWorker::spawn(move || source.open(), tx) {
        Ok(w) => {
            tokio::spawn(async move {
                while let Some(text) = rx.recv().await {
                    if ev_tx.send(Ev::LocalClipboard(text)).is_err() {
                        break;
                    }
                }
            });
            Some(w)
        }
        Err(e) => {
            warn!("the clipboard is not shared: {e}");
            None
        }
    }
}

/// Polls one data channel for as long as it lives; every channel must be
/// polled continuously (the SCTP receive window is shared).
async fn poll_channel(
    dc: Arc<dyn DataChannel>,
    label: Label,
    peer: PeerId,
    generation: Generation,
    tx: mpsc::UnboundedSender<Ev>,
) {
    while let Some(event) = dc.poll().await {
        let ev = match event {
            DataChannelEvent::OnOpen => Ev::Open(peer.clone(), generation, label),
            DataChannelEvent::OnClose => {
                let _ = tx.send(Ev::Closed(peer.clone(), generation, label));
                break;
            }
            DataChannelEvent::OnMessage(msg) if label == Label::Commands => match Command::parse(&msg.data) {
                Ok(cmd) => Ev::Command(peer.clone(), cmd),
                Err(e) => Ev::BadCommand(peer.clone(), e.to_string()),
            },
            DataChannelEvent::OnMessage(_) => Ev::BadCommand(peer.clone(), "viewer wrote to the video channel".into()),
            _ => continue,
        };
        if tx.send(ev).is_err() {
            break;
        }
    }
}

/// The server will not give back a saved room (ended and taken, or a token
/// another server signed).
fn id_gone(e: &PeerError) -> bool {
    use holdfast_proto::signal::ErrorKind;
    match e {
        PeerError::Ended(_) => true,
        PeerError::Refused(r) => matches!(r.kind, ErrorKind::SessionEnded | ErrorKind::InvalidCredentials),
        _ => false,
    }
}

/// Waits for the server's `registered`: the room's ID, the host token, the ICE servers.
async fn registered(
    session: &mut SignalSession,
) -> Result<
    (
        RoomId,
        holdfast_proto::SessionToken,
        Vec<holdfast_proto::signal::IceServer>,
    ),
    PeerError,
> {
    loop {
        match session.next().await {
            SignalEvent::Admitted {
                answer: ServerMessage::Registered {
                    id, ice_servers, token, ..
                },
                ..
            } => return Ok((id, token, ice_servers)),
            SignalEvent::Ended(e) => return Err(e),
            SignalEvent::Disconnected { .. } => {}
            other => return Err(PeerError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// The unattended settings, lock held briefly (never across an await).
fn lock(access: &std::sync::Mutex<UnattendedAccess>) -> std::sync::MutexGuard<'_, UnattendedAccess> {
    access.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sleeps until `at`, or for ever when there is none (a `select!` branch
/// that is off).
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
