//! The viewer role in Rust: joins a room with ID and code, answers the host's
//! offer, reassembles `video` chunks into frames and hands them out. The
//! desktop app's viewer and the tests use it; decoding is the caller's choice.

use std::sync::Arc;

use bytes::BytesMut;
use holdfast_proto::commands::{Command, Control, PONG};
use holdfast_proto::signal::{ClientMessage, IceCandidate, ServerMessage, SignalError};
use holdfast_proto::video::{Assembly, EncodedFrame, FrameAssembler};
use holdfast_proto::{RoomCode, RoomId};
use tokio::sync::mpsc;
use tracing::{debug, info_span, warn, Instrument};
use url::Url;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};

use crate::rtc::{build_peer, to_init, RtcEvent, RtcOptions};
use crate::signal_client::SignalConnection;
use crate::PeerError;

#[derive(Debug, Clone)]
pub struct ViewerConfig {
    pub signal_url: Url,
    pub id: RoomId,
    pub code: RoomCode,
    pub rtc: RtcOptions,
    /// Trust roots for a `https://` server (None: the system's).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Debug)]
pub enum ViewerEvent {
    State(RTCPeerConnectionState),
    /// A whole frame, safe to decode in order.
    Frame(EncodedFrame),
    /// A chunk failed validation (counted, never fatal).
    BadChunk(String),
    Closed(String),
}

/// Commands to a running viewer.
#[derive(Debug)]
enum Ctl {
    RequestKeyframe,
}

pub struct ViewerHandle {
    pub events: mpsc::UnboundedReceiver<ViewerEvent>,
    ctl: mpsc::UnboundedSender<Ctl>,
}

impl ViewerHandle {
    /// Asks the host for a keyframe (after a decoder error, say).
    pub fn request_keyframe(&self) {
        let _ = self.ctl.send(Ctl::RequestKeyframe);
    }
}

/// Joins the room; errors if the server refuses (wrong code, unknown room).
pub async fn connect(config: ViewerConfig) -> Result<ViewerHandle, PeerError> {
    let mut signal = SignalConnection::connect(&config.signal_url, config.tls.clone()).await?;
    signal.send(ClientMessage::Join {
        id: config.id.clone(),
        code: config.code.clone(),
    })?;
    let ice = match signal.recv().await? {
        ServerMessage::Joined { ice_servers, .. } => ice_servers,
        ServerMessage::Error { code, message } => return Err(PeerError::Refused(SignalError::new(code, message))),
        other => return Err(PeerError::Unexpected(format!("{other:?}"))),
    };
    let (ev_tx, events) = mpsc::unbounded_channel();
    let (ctl, ctl_rx) = mpsc::unbounded_channel();
    let span = info_span!("viewer", room = %config.id);
    tokio::spawn(run(config, signal, ice, ev_tx, ctl_rx).instrument(span));
    Ok(ViewerHandle { events, ctl })
}

enum Internal {
    Rtc(RtcEvent),
    /// A PING arrived on this `commands` channel: answer it.
    Pong(Arc<dyn DataChannel>),
    NeedKeyframe,
}

async fn run(
    config: ViewerConfig,
    mut signal: SignalConnection,
    ice: Vec<holdfast_proto::signal::IceServer>,
    out: mpsc::UnboundedSender<ViewerEvent>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
) {
    let (itx, mut irx) = mpsc::unbounded_channel::<Internal>();
    let mut pc: Option<Arc<dyn PeerConnection>> = None;
    let mut pending: Vec<IceCandidate> = Vec::new();
    let mut remote_set = false;
    let mut commands: Option<Arc<dyn DataChannel>> = None;
    let reason = loop {
        tokio::select! {
            msg = signal.rx.recv() => {
                let Some(msg) = msg else { break "signalling closed".to_string() };
                match msg {
                    ServerMessage::Offer { sdp, .. } => {
                        if pc.is_none() {
                            match build_peer(&ice, &config.rtc).await {
                                Ok((p, mut rx)) => {
                                    let itx = itx.clone();
                                    tokio::spawn(async move {
                                        while let Some(e) = rx.recv().await {
                                            if itx.send(Internal::Rtc(e)).is_err() { break; }
                                        }
                                    });
                                    pc = Some(p);
                                }
                                Err(e) => break format!("cannot create peer connection: {e}"),
                            }
                        }
                        let p = pc.as_ref().expect("just created");
                        if let Err(e) = answer(p.as_ref(), &signal, sdp).await {
                            warn!("answering failed: {e}");
                            continue;
                        }
                        remote_set = true;
                        for c in pending.drain(..) {
                            let _ = p.add_ice_candidate(to_init(&c)).await;
                        }
                    }
                    ServerMessage::Candidate { candidate, .. } => match (&pc, remote_set) {
                        (Some(p), true) => { let _ = p.add_ice_candidate(to_init(&candidate)).await; }
                        _ if pending.len() < 64 => pending.push(candidate),
                        _ => {}
                    },
                    ServerMessage::PeerLeft { .. } | ServerMessage::RoomClosed { .. } => break "host left".into(),
                    ServerMessage::Error { code, message } => warn!(?code, "server error: {message}"),
                    _ => {}
                }
            }
            Some(ev) = irx.recv() => match ev {
                Internal::Rtc(RtcEvent::Candidate(c)) => { let _ = signal.send(ClientMessage::Candidate { to: None, candidate: c }); }
                Internal::Rtc(RtcEvent::State(s)) => { let _ = out.send(ViewerEvent::State(s)); }
                Internal::Rtc(RtcEvent::DataChannel(dc)) => {
                    let label = dc.label().await.unwrap_or_default();
                    match label.as_str() {
                        "video" => { tokio::spawn(poll_video(dc, out.clone(), itx.clone())); }
                        "commands" => {
                            commands = Some(dc.clone());
                            tokio::spawn(poll_commands(dc, itx.clone()));
                        }
                        other => warn!("ignoring unexpected data channel `{other}`"),
                    }
                }
                Internal::Rtc(_) => {}
                Internal::Pong(dc) => { let _ = dc.send(BytesMut::from(&PONG[..])).await; }
                Internal::NeedKeyframe => send_keyframe_request(&commands).await,
            },
            Some(c) = ctl.recv() => match c {
                Ctl::RequestKeyframe => send_keyframe_request(&commands).await,
            },
        }
    };
    let _ = signal.send(ClientMessage::Leave);
    if let Some(p) = pc {
        let _ = p.close().await;
    }
    let _ = out.send(ViewerEvent::Closed(reason));
}

async fn answer(pc: &dyn PeerConnection, signal: &SignalConnection, sdp: String) -> Result<(), PeerError> {
    pc.set_remote_description(RTCSessionDescription::offer(sdp)?).await?;
    let answer = pc.create_answer(None).await?;
    pc.set_local_description(answer.clone()).await?;
    signal.send(ClientMessage::Answer {
        to: None,
        sdp: answer.sdp,
    })
}

async fn send_keyframe_request(commands: &Option<Arc<dyn DataChannel>>) {
    if let Some(dc) = commands {
        let msg = Command::Control(Control::KeyframeRequest {
            v: holdfast_proto::commands::COMMANDS_VERSION,
        });
        let _ = dc.send(BytesMut::from(&msg.encode()[..])).await;
    }
}

async fn poll_video(
    dc: Arc<dyn DataChannel>,
    out: mpsc::UnboundedSender<ViewerEvent>,
    itx: mpsc::UnboundedSender<Internal>,
) {
    // Note: webrtc-rs buffers received messages without bound, so a viewer
    // that stops polling does not push back on the host; only a viewer whose
    // socket stops draining (a frozen process, a slow link) does.
    let mut asm = FrameAssembler::new();
    loop {
        let Some(event) = dc.poll().await else { return };
        match event {
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
    while let Some(event) = dc.poll().await {
        match event {
            DataChannelEvent::OnMessage(msg) => {
                if let Ok(Command::Ping) = Command::parse(&msg.data) {
                    let _ = itx.send(Internal::Pong(dc.clone()));
                }
            }
            DataChannelEvent::OnClose => return,
            _ => {}
        }
    }
}
