//! The viewer role in Rust: joins a room with ID and code (or a session
//! token), answers the host's offer, proves it knows the code and checks
//! that the host does too (end to end, over the connection itself: see
//! [`crate::auth`]), waits for the host's consent, reassembles `video`
//! chunks into frames and hands them out, answers PINGs and sends input. The
//! desktop app's viewer and the tests use it; decoding is the caller's choice.
//!
//! The server gets only the code's gate. Nothing from a connection counts
//! (frames, `mode`, `displays`) and nothing is sent on it (input) before the
//! host proved the code over it: someone in the middle (the signalling
//! server, say, swapping certificates) is named as such and the session ends.
//!
//! The viewer follows in recovery: its signalling session reconnects and
//! resumes by itself ([`SignalSession`]); the host restarts ICE or builds a
//! new peer connection (a higher `generation`), and the viewer answers
//! whatever the newest generation offers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use holdfast_auth::{Secret, ViewerHandshake};
use holdfast_proto::commands::{AuthFailure, AuthKind, Command, Control, InputEvent, PONG};
use holdfast_proto::signal::{ClientMessage, Generation, IceCandidate, OfferRound, ServerMessage};
use holdfast_proto::video::{Assembly, EncodedFrame, FrameAssembler};
use holdfast_proto::{RoomCode, RoomId, SessionToken};
use holdfast_session::{Keepalive, KeepaliveConfig, KeepaliveEvent};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, info_span, warn, Instrument};
use url::Url;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};

use crate::auth::{self as wire, Side};
use crate::resume::{Credentials, Reconnection, ResumeState};
use crate::rtc::{apply_ice_servers, build_peer, path_sample, to_init, Route, RtcEvent, RtcOptions};
use crate::signal_client::{SignalConfig, SignalEvent, SignalSender, SignalSession};
use crate::transfer::{self, Allowed, IncomingFiles, TransferConfig, TransferHandle, TransferInput};
use crate::unattended::PasswordLogin;
use crate::PeerError;

#[derive(Debug, Clone)]
pub struct ViewerConfig {
    pub signal_url: Url,
    pub id: RoomId,
    pub code: RoomCode,
    /// Rejoin with this session token instead of the code (no new consent).
    pub token: Option<SessionToken>,
    /// With `token`: the secret an earlier check left ([`ViewerEvent::Verified`]),
    /// which the host asks for on a new connection instead of the code.
    pub resume: Option<Secret>,
    pub rtc: RtcOptions,
    /// When the host counts as gone (nothing heard for three intervals).
    pub keepalive: KeepaliveConfig,
    /// Trust roots for a `https://` server (None: the system's).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// How long to keep trying after the signalling connection drops.
    pub grace: Duration,
    /// Where files the host sends land (None: refused).
    pub inbox: Option<std::path::PathBuf>,
    /// Whether each file the host sends is put to the person or taken.
    pub incoming_files: IncomingFiles,
    /// Join with the host's permanent password instead of the code
    /// (unattended access; [`crate::unattended::login`]); `code` is then unused.
    pub password: Option<PasswordLogin>,
}

impl ViewerConfig {
    pub fn new(signal_url: Url, id: RoomId, code: RoomCode) -> Self {
        ViewerConfig {
            signal_url,
            id,
            code,
            token: None,
            resume: None,
            rtc: RtcOptions::default(),
            keepalive: KeepaliveConfig::viewer(),
            tls: None,
            grace: holdfast_session::GRACE_PERIOD,
            inbox: None,
            incoming_files: IncomingFiles::Ask,
            password: None,
        }
    }

    fn signal(&self) -> SignalConfig {
        SignalConfig {
            tls: self.tls.clone(),
            grace: self.grace,
            ..SignalConfig::new(self.signal_url.clone())
        }
    }
}

#[derive(Debug)]
pub enum ViewerEvent {
    State(RTCPeerConnectionState),
    /// A whole frame, safe to decode in order.
    Frame(EncodedFrame),
    /// A chunk failed validation (counted, never fatal).
    BadChunk(String),
    /// A control message from the host (`mode`, `displays`).
    Control(Control),
    /// The host proved it knows the code over this connection; `resume` is
    /// the secret (base64) to keep for rejoining with the token later.
    Verified {
        resume: String,
        /// From the `commands` channel opening to the host's proof checked:
        /// what the check adds to joining (1.5 round trips and the computing).
        took: Duration,
    },
    /// The end-to-end check failed (the session ends).
    AuthFailed(AuthFailure),
    /// A keepalive PING arrived (and was answered).
    Pinged,
    /// Nothing heard from the host for three keepalive intervals.
    HostUnresponsive,
    /// The signalling connection dropped; retrying (see [`SignalEvent::Disconnected`]).
    SignalLost {
        attempt: u32,
        retry_in: Duration,
        grace_left: Duration,
        /// The whole window (the server's, as it announced it).
        grace: Duration,
    },
    /// Signalling is back, in the same session.
    SignalResumed(Option<Reconnection>),
    /// A numbered room message arrived (`kind`: its `type`); for diagnostics.
    Signal {
        seq: u64,
        kind: &'static str,
    },
    /// The host's own signalling connection dropped (`grace` left) or came back.
    HostAway(bool),
    /// The path in use changed: straight to the host, or through a relay.
    Route(Route),
    Closed(String),
}

/// Commands to a running viewer.
#[derive(Debug)]
enum Ctl {
    RequestKeyframe,
    Input(InputEvent),
    Send(Control),
}

pub struct ViewerHandle {
    pub events: mpsc::UnboundedReceiver<ViewerEvent>,
    /// The session token to rejoin with.
    pub token: SessionToken,
    /// Whether the host allowed control (as opposed to view only).
    pub control: bool,
    /// Files, clipboard and chat with the host (lives across reconnections).
    pub transfer: TransferHandle,
    ctl: mpsc::UnboundedSender<Ctl>,
    signal: SignalSender,
}

impl ViewerHandle {
    /// Asks the host for a keyframe (after a decoder error, say).
    pub fn request_keyframe(&self) {
        let _ = self.ctl.send(Ctl::RequestKeyframe);
    }

    /// Sends an input event (numbered here, in order).
    pub fn send_input(&self, event: InputEvent) {
        let _ = self.ctl.send(Ctl::Input(event));
    }

    /// Sends any other control message (`view-only`, `select-display`).
    pub fn send_control(&self, control: Control) {
        let _ = self.ctl.send(Ctl::Send(control));
    }

    /// Resume now: a signalling reconnection attempt without waiting out the backoff.
    pub fn reconnect(&self) {
        self.signal.reconnect_now();
    }

    /// Leaves the session.
    pub fn leave(&self) {
        self.signal.close();
    }
}

/// Joins the room; returns once the host checked the code, the viewer
/// checked the host, and the host's user agreed. Errors if the server refuses
/// (wrong gate, unknown room, lockout, consent denied or timed out) or the
/// check fails (a wrong code, or someone in the middle).
pub async fn connect(config: ViewerConfig) -> Result<ViewerHandle, PeerError> {
    let mut state = ResumeState::new(match &config.password {
        Some(login) => Credentials::PasswordViewer {
            id: config.id.clone(),
            gate: login.gate.clone(),
        },
        None => Credentials::Viewer {
            id: config.id.clone(),
            gate: config.code.gate(),
        },
    });
    if let Some(t) = &config.token {
        state = state.with_token(t.clone());
    }
    let session = SignalSession::start(config.signal(), state).await?;
    let (ev_tx, events) = mpsc::unbounded_channel();
    let (ctl, ctl_rx) = mpsc::unbounded_channel();
    let (joined_tx, joined_rx) = oneshot::channel();
    let span = info_span!("viewer", room = %config.id);
    let signal = session.sender();
    let transfer = transfer::spawn(TransferConfig {
        side: holdfast_transfer::Side::Viewer,
        inbox: config.inbox.clone(),
        incoming: config.incoming_files,
        tag: format!("viewer{}", std::process::id()),
    });
    let files = transfer.sender();
    // The loop runs from the start: the host connects and checks the code
    // before it asks its user.
    tokio::spawn(run(config, session, ev_tx, ctl_rx, joined_tx, files).instrument(span));
    let (token, control) = joined_rx.await.map_err(|_| PeerError::SignalClosed)??;
    Ok(ViewerHandle {
        events,
        token,
        control,
        transfer,
        ctl,
        signal,
    })
}

/// Where the end-to-end check of the current connection stands.
enum Check {
    Waiting,
    Replied(ViewerHandshake),
    Passed,
}

type Joined = oneshot::Sender<Result<(SessionToken, bool), PeerError>>;

enum Internal {
    /// An event of the peer connection of this generation.
    Rtc(Generation, RtcEvent),
    /// A message arrived on the `commands` channel.
    Command(Arc<dyn DataChannel>, Command),
    NeedKeyframe,
}

async fn run(
    config: ViewerConfig,
    mut session: SignalSession,
    out: mpsc::UnboundedSender<ViewerEvent>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    joined: Joined,
    files: mpsc::UnboundedSender<TransferInput>,
) {
    // What the host may send here: files if there is an inbox; the
    // clipboard crosses while this viewer has control.
    let mut allowed = Allowed {
        files_in: config.inbox.is_some(),
        clipboard: false,
    };
    let _ = files.send(TransferInput::Allow(allowed));
    let signal = session.sender();
    let mut joined = Some(joined);
    let (itx, mut irx) = mpsc::unbounded_channel::<Internal>();
    let mut ice: Vec<holdfast_proto::signal::IceServer> = Vec::new();
    let mut pc: Option<Arc<dyn PeerConnection>> = None;
    let mut generation: Generation = 0;
    let mut pending: Vec<IceCandidate> = Vec::new();
    let mut remote_set = false;
    let mut commands: Option<Arc<dyn DataChannel>> = None;
    let mut keepalive: Option<Keepalive> = None;
    let mut link = RTCPeerConnectionState::New;
    let mut seq: u32 = 0;
    // The check of the current connection; only a passed one lets frames
    // through (`trusted`, shared with that connection's video reader).
    let mut check = Check::Waiting;
    let mut trusted = Arc::new(AtomicBool::new(false));
    let mut resume = config.resume.clone();
    let mut commands_at = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut route: Option<Route> = None;
    let mut next_route_at = Instant::now();
    let reason = loop {
        tokio::select! {
            ev = session.next() => {
                let msg = match ev {
                    SignalEvent::Message { seq, msg } => {
                        if let Some(seq) = seq {
                            let _ = out.send(ViewerEvent::Signal { seq, kind: msg.kind() });
                        }
                        msg
                    }
                    SignalEvent::Admitted { answer, reconnection } => {
                        if let ServerMessage::Joined { ice_servers, token, control, .. } = answer {
                            // Relays come with admission: for later connections,
                            // and for this one's next gathering (it has no
                            // allocation yet, having been made without them).
                            ice = ice_servers;
                            if let Some(p) = &pc {
                                let _ = apply_ice_servers(p, &ice).await;
                            }
                            if let Some(j) = joined.take() {
                                let _ = j.send(Ok((token, control)));
                                continue;
                            }
                        }
                        let _ = out.send(ViewerEvent::SignalResumed(reconnection));
                        continue;
                    }
                    SignalEvent::Disconnected { attempt, retry_in, grace_left, grace, .. } => {
                        let _ = out.send(ViewerEvent::SignalLost { attempt, retry_in, grace_left, grace });
                        continue;
                    }
                    SignalEvent::Ended(e) => {
                        let reason = e.to_string();
                        if let Some(j) = joined.take() {
                            let _ = j.send(Err(e));
                        }
                        break reason;
                    }
                };
                match msg {
                    ServerMessage::AwaitingConsent { timeout_ms, ice_servers } => {
                        debug!(timeout_ms, "the server took the gate; the host will connect and check the code");
                        ice = ice_servers;
                        // A join again (after a drop while pending) is a new
                        // request: whatever connection there was is gone.
                        if let Some(old) = pc.take() {
                            let _ = old.close().await;
                        }
                        commands = None;
                        keepalive = None;
                        generation = 0;
                    }
                    ServerMessage::Offer { sdp, generation: g, round, .. } => {
                        if g < generation && pc.is_some() {
                            debug!(g, generation, "ignoring an offer for an older connection");
                            continue;
                        }
                        if g > generation || pc.is_none() {
                            // A new peer connection (the host rebuilt it): start over, checked again.
                            if let Some(old) = pc.take() {
                                let _ = old.close().await;
                            }
                            commands = None;
                            keepalive = None;
                            remote_set = false;
                            pending.clear();
                            generation = g;
                            check = Check::Waiting;
                            trusted = Arc::new(AtomicBool::new(false));
                            match build_peer(&ice, &config.rtc).await {
                                Ok((p, mut rx)) => {
                                    let itx = itx.clone();
                                    tokio::spawn(async move {
                                        while let Some(e) = rx.recv().await {
                                            if itx.send(Internal::Rtc(g, e)).is_err() { break; }
                                        }
                                    });
                                    pc = Some(p);
                                }
                                Err(e) => break format!("cannot create peer connection: {e}"),
                            }
                        }
                        let p = pc.as_ref().expect("just created");
                        if let Err(e) = answer(p.as_ref(), &signal, sdp, generation, round).await {
                            warn!("answering failed: {e}");
                            continue;
                        }
                        remote_set = true;
                        for c in pending.drain(..) {
                            let _ = p.add_ice_candidate(to_init(&c)).await;
                        }
                    }
                    ServerMessage::Candidate { candidate, generation: g, .. } if g == generation => match (&pc, remote_set) {
                        (Some(p), true) => { let _ = p.add_ice_candidate(to_init(&candidate)).await; }
                        _ if pending.len() < 64 => pending.push(candidate),
                        _ => {}
                    },
                    ServerMessage::PeerState { connected, .. } => { let _ = out.send(ViewerEvent::HostAway(!connected)); }
                    // Renewed TURN credentials, for the connections the host
                    // builds from now on (a live allocation keeps its own).
                    ServerMessage::IceServers { ice_servers } => ice = ice_servers,
                    ServerMessage::PeerLeft { .. } => break "host left".into(),
                    ServerMessage::Error { code, message, .. } => warn!(?code, "server error: {message}"),
                    _ => {}
                }
            }
            Some(ev) = irx.recv() => match ev {
                Internal::Rtc(g, _) if g != generation => {}
                Internal::Rtc(_, RtcEvent::Candidate(c)) => signal.send(ClientMessage::Candidate { to: None, candidate: c, generation }),
                Internal::Rtc(_, RtcEvent::State(s)) => {
                    let was = std::mem::replace(&mut link, s);
                    if s == RTCPeerConnectionState::Connected && was != s && matches!(check, Check::Passed) {
                        // Back after an outage: ask for a fresh picture. The
                        // message also shows the host's SCTP that the path
                        // works, so it resends what the outage swallowed now
                        // rather than when its backed-off timer fires.
                        send_control(&commands, Control::KeyframeRequest).await;
                    }
                    let _ = out.send(ViewerEvent::State(s));
                }
                Internal::Rtc(_, RtcEvent::DataChannel(dc)) => {
                    let label = dc.label().await.unwrap_or_default();
                    match label.as_str() {
                        "video" => { tokio::spawn(poll_video(dc, out.clone(), itx.clone(), trusted.clone())); }
                        "commands" => {
                            commands_at = Instant::now();
                            commands = Some(dc.clone());
                            keepalive = Some(Keepalive::new(config.keepalive, Instant::now()));
                            tokio::spawn(poll_commands(dc, itx.clone()));
                        }
                        // Read by the transfer task once this connection passed the check.
                        holdfast_proto::transfer::CHANNEL_LABEL => { let _ = files.send(TransferInput::Channel(dc)); }
                        other => warn!("ignoring unexpected data channel `{other}`"),
                    }
                }
                Internal::Rtc(..) => {}
                Internal::Command(dc, cmd) => {
                    if let Some(k) = keepalive.as_mut() {
                        k.on_activity(Instant::now());
                    }
                    let outcome = match cmd {
                        Command::Ping => {
                            let _ = dc.send(BytesMut::from(&PONG[..])).await;
                            let _ = out.send(ViewerEvent::Pinged);
                            Ok(())
                        }
                        Command::Pong => Ok(()),
                        Command::Control(Control::AuthHello { kind, sid, msg }) => {
                            match (std::mem::replace(&mut check, Check::Waiting), &pc) {
                                (Check::Waiting, Some(p)) => {
                                    let secret = match kind {
                                        AuthKind::Code if config.password.is_none() => Some(Secret::code(config.code.expose())),
                                        AuthKind::Code => None,
                                        AuthKind::Resume => resume.clone(),
                                        AuthKind::Password => config.password.as_ref().map(|l| Secret::password(l.key.clone())),
                                    };
                                    let run = async {
                                        let secret = secret.ok_or(AuthFailure::NoSecret)?;
                                        let binding = wire::binding(p.as_ref(), &config.id, Side::Viewer).await.map_err(|e| wire::failure(&e))?;
                                        let hello = wire::parse_hello(kind, &sid, &msg).map_err(|e| wire::failure(&e))?;
                                        ViewerHandshake::on_hello(&secret, &binding, &hello, &mut rand::rng()).map_err(|e| wire::failure(&e))
                                    };
                                    match run.await {
                                        Ok((run, reply)) => {
                                            check = Check::Replied(run);
                                            let _ = dc.send(BytesMut::from(&Command::Control(wire::reply_message(&reply)).encode()[..])).await;
                                            Ok(())
                                        }
                                        Err(f) => Err(f),
                                    }
                                }
                                _ => Err(AuthFailure::Malformed),
                            }
                        }
                        Command::Control(Control::AuthConfirm { tag }) => {
                            match std::mem::replace(&mut check, Check::Waiting) {
                                Check::Replied(run) => match wire::parse_confirm(&tag).and_then(|c| run.on_confirm(&c)) {
                                    Ok(established) => {
                                        check = Check::Passed;
                                        trusted.store(true, Ordering::Release);
                                        let kept = wire::encode_resume(&established.resume).unwrap_or_default();
                                        resume = Some(established.resume);
                                        info!("the host proved the code over this connection");
                                        let _ = files.send(TransferInput::Trusted);
                                        let _ = out.send(ViewerEvent::Verified { resume: kept, took: commands_at.elapsed() });
                                        Ok(())
                                    }
                                    Err(e) => Err(wire::failure(&e)),
                                },
                                _ => Err(AuthFailure::Malformed),
                            }
                        }
                        Command::Control(Control::AuthFailed { reason }) => {
                            warn!(?reason, "the host says the check failed: {}", reason.describe());
                            let _ = out.send(ViewerEvent::AuthFailed(reason));
                            if let Some(j) = joined.take() {
                                let _ = j.send(Err(PeerError::Auth(reason)));
                            }
                            break reason.describe().to_owned();
                        }
                        // The host's second factor: asked only after the check
                        // passed, so the code crosses an authenticated channel.
                        Command::Control(Control::AuthTotpRequired) if matches!(check, Check::Passed) => {
                            match config.password.as_ref().and_then(|l| l.totp.clone()) {
                                Some(code) => {
                                    let _ = dc.send(BytesMut::from(&Command::Control(Control::AuthTotp { code }).encode()[..])).await;
                                    Ok(())
                                }
                                None => Err(AuthFailure::TotpRequired),
                            }
                        }
                        Command::Control(c) if matches!(check, Check::Passed) => {
                            if let Control::Mode { clipboard, .. } = c {
                                // The host says what crosses; it checks again on its side.
                                allowed.clipboard = clipboard;
                                let _ = files.send(TransferInput::Allow(allowed));
                            }
                            let _ = out.send(ViewerEvent::Control(c));
                            Ok(())
                        }
                        Command::Control(c) => {
                            debug!("ignoring {c:?} before the check passed");
                            Ok(())
                        }
                    };
                    if let Err(reason) = outcome {
                        warn!(?reason, "end-to-end check failed: {}", reason.describe());
                        send_last(&dc, Control::AuthFailed { reason }).await;
                        let _ = out.send(ViewerEvent::AuthFailed(reason));
                        if let Some(j) = joined.take() {
                            let _ = j.send(Err(PeerError::Auth(reason)));
                        }
                        break reason.describe().to_owned();
                    }
                }
                Internal::NeedKeyframe => send_control(&trusted_commands(&commands, &check), Control::KeyframeRequest).await,
            },
            Some(c) = ctl.recv() => {
                // Nothing leaves on a connection the host has not proved itself on.
                let commands = trusted_commands(&commands, &check);
                match c {
                    Ctl::RequestKeyframe => send_control(&commands, Control::KeyframeRequest).await,
                    Ctl::Input(event) => {
                        send_control(&commands, Control::input(seq, event)).await;
                        seq = seq.wrapping_add(1);
                    }
                    Ctl::Send(control) => send_control(&commands, control).await,
                }
            },
            _ = tick.tick() => {
                if let (Some(p), RTCPeerConnectionState::Connected) = (&pc, link) {
                    if Instant::now() >= next_route_at {
                        next_route_at = Instant::now() + Duration::from_secs(1);
                        if let Some(sample) = path_sample(p).await {
                            if route.replace(sample.route) != Some(sample.route) {
                                info!(route = ?sample.route, "path in use");
                                let _ = out.send(ViewerEvent::Route(sample.route));
                            }
                        }
                    }
                }
                if let Some(k) = keepalive.as_mut() {
                    // The viewer only listens: the host sends the PINGs.
                    while let Some(ev) = k.poll(Instant::now()) {
                        if let KeepaliveEvent::PeerDead { silent } = ev {
                            warn!(silent_ms = silent.as_millis() as u64, "host unresponsive");
                            let _ = out.send(ViewerEvent::HostUnresponsive);
                        }
                    }
                }
            }
        }
    };
    if let Some(j) = joined.take() {
        let _ = j.send(Err(PeerError::Ended(reason.clone())));
    }
    signal.close();
    if let Some(p) = pc {
        let _ = p.close().await;
    }
    let _ = out.send(ViewerEvent::Closed(reason));
}

/// Sends a last message and waits (up to 2 s) until the other side
/// acknowledged it, so closing the connection right after does not lose it.
async fn send_last(dc: &Arc<dyn DataChannel>, control: Control) {
    let _ = dc.send(BytesMut::from(&Command::Control(control).encode()[..])).await;
    crate::rtc::drained(dc, Duration::from_secs(2)).await;
}

/// The `commands` channel if the host proved itself on it, else none.
fn trusted_commands(commands: &Option<Arc<dyn DataChannel>>, check: &Check) -> Option<Arc<dyn DataChannel>> {
    match check {
        Check::Passed => commands.clone(),
        _ => None,
    }
}

/// Answers one offer, naming its round (the host applies only the answer to its latest).
async fn answer(
    pc: &dyn PeerConnection,
    signal: &SignalSender,
    sdp: String,
    generation: Generation,
    round: OfferRound,
) -> Result<(), PeerError> {
    pc.set_remote_description(RTCSessionDescription::offer(sdp)?).await?;
    let answer = pc.create_answer(None).await?;
    pc.set_local_description(answer.clone()).await?;
    signal.send(ClientMessage::Answer {
        to: None,
        sdp: answer.sdp,
        generation,
        round,
    });
    Ok(())
}

async fn send_control(commands: &Option<Arc<dyn DataChannel>>, control: Control) {
    if let Some(dc) = commands {
        let _ = dc.send(BytesMut::from(&Command::Control(control).encode()[..])).await;
    }
}

async fn poll_video(
    dc: Arc<dyn DataChannel>,
    out: mpsc::UnboundedSender<ViewerEvent>,
    itx: mpsc::UnboundedSender<Internal>,
    trusted: Arc<AtomicBool>,
) {
    // Note: webrtc-rs buffers received messages without bound, so a viewer
    // that stops polling does not push back on the host; only a viewer whose
    // socket stops draining (a frozen process, a slow link) does.
    let mut asm = FrameAssembler::new();
    loop {
        let Some(event) = dc.poll().await else { return };
        match event {
            // Nothing a connection brings counts before the host proved itself on it.
            DataChannelEvent::OnMessage(_) if !trusted.load(Ordering::Acquire) => {}
            DataChannelEvent::OnMessage(msg) => match asm.push(&msg.data) {
                Ok(Assembly::Frame(f)) => {
                    debug!(frame = f.frame_id, key = f.keyframe, bytes = f.data.len(), "frame");
                    if out.send(ViewerEvent::Frame(f)).is_err() {
                        return;
                    }
                }
                Ok(Assembly::NeedKeyframe) => {
                    let _ = itx.send(Internal::NeedKeyframe);
                }
                Ok(Assembly::Pending) => {}
                Err(e) => {
                    let _ = out.send(ViewerEvent::BadChunk(e.to_string()));
                    let _ = itx.send(Internal::NeedKeyframe);
                }
            },
            DataChannelEvent::OnClose => return,
            _ => {}
        }
    }
}

async fn poll_commands(dc: Arc<dyn DataChannel>, itx: mpsc::UnboundedSender<Internal>) {
    let mut warnings = holdfast_session::LogGate::default();
    while let Some(event) = dc.poll().await {
        match event {
            DataChannelEvent::OnMessage(msg) => match Command::parse(&msg.data) {
                Ok(cmd) => {
                    if itx.send(Internal::Command(dc.clone(), cmd)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if let Some(also) = warnings.pass(Instant::now()) {
                        warn!("rejected command from host: {e} (and {also} more since the last warning)");
                    }
                }
            },
            DataChannelEvent::OnClose => return,
            _ => {}
        }
    }
}
