//! A stand-in signalling server for the hostile-server suite: it speaks the
//! real protocol to a real host and a real viewer (the Rust viewer, or
//! Chromium, which it also serves the viewer page to), relays what an honest
//! server would, and tells the lies a [`Lies`] asks for: a viewer the host
//! never admitted, more control than the host granted, a join with any code
//! at all, or a man in the middle of the peer connection. Everything the host
//! sends is recorded, so a test can assert what the host did *not* do (send
//! an offer to an intruder, say).
//!
//! One host and one viewer at a time: enough to attack admission. It listens
//! on 127.0.0.1 with a port of the kernel's choosing and runs on its own thread.
//!
//! The man in the middle ([`Lies::man_in_the_middle`]) is what a malicious
//! server can do with the session descriptions it relays: it answers the
//! host's offer with a peer connection of its own, offers the viewer another,
//! and relays `video` and `commands` between the two, byte for byte. Each
//! side then sees the stand-in's DTLS certificate instead of the other's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use holdfast_peer::rtc::{build_peer, to_init, RtcEvent, RtcOptions};
use holdfast_proto::signal::IceCandidate;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_http::services::{ServeDir, ServeFile};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

pub const ROOM_ID: &str = "123456789";
pub const HOST_PEER: &str = "phost";
pub const VIEWER_PEER: &str = "pviewer";
pub const INTRUDER_PEER: &str = "pintruder";
/// A well-formed token (clients never look inside one).
const TOKEN: &str = "hf1.standin-token-not-signed-by-anyone.0000000000";

/// What the stand-in lies about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lies {
    /// Right after the host registers: `peer-joined` with control for a
    /// viewer that never asked and was never shown to anyone.
    pub invent_viewer: bool,
    /// Whatever the host answers, tell both sides the viewer has control.
    pub upgrade_to_control: bool,
    /// Skip the host's consent: admit the viewer as soon as it joins.
    pub skip_consent: bool,
    /// Stand in the middle of the peer connection (see the module doc).
    pub man_in_the_middle: bool,
}

/// One message the host sent, as JSON.
pub type Recorded = Arc<Mutex<Vec<Value>>>;

pub struct StandIn {
    pub addr: SocketAddr,
    from_host: Recorded,
    /// Bytes the man in the middle relayed on `video`, host to viewer.
    relayed_video: Arc<Mutex<u64>>,
    _thread: std::thread::JoinHandle<()>,
}

impl StandIn {
    pub fn start(lies: Lies) -> Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Shared {
            lies,
            room: Arc::default(),
            recorded: Arc::default(),
            mitm: Arc::default(),
            relayed_video: Arc::default(),
        };
        let (from_host, relayed_video) = (shared.recorded.clone(), shared.relayed_video.clone());
        let ui = crate::repo_root().join("ui/dist");
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                let app = Router::new()
                    .route("/ws", get(upgrade))
                    .fallback_service(ServeDir::new(&ui).fallback(ServeFile::new(ui.join("index.html"))))
                    .with_state(shared);
                let _ = axum::serve(listener, app).await;
            });
        });
        Ok(StandIn {
            addr,
            from_host,
            relayed_video,
            _thread: thread,
        })
    }

    /// The URL to give host and viewer (`--signal`), which also serves the viewer page.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the host sent so far.
    pub fn from_host(&self) -> Vec<Value> {
        self.from_host.lock().expect("lock").clone()
    }

    /// Messages the host addressed to `peer` (offers, candidates).
    pub fn sent_to(&self, peer: &str) -> Vec<Value> {
        self.from_host().into_iter().filter(|m| m["to"] == peer).collect()
    }

    /// `video` bytes the man in the middle passed from host to viewer.
    pub fn relayed_video_bytes(&self) -> u64 {
        *self.relayed_video.lock().expect("lock")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Host,
    Viewer,
}

/// The shared state: one outbox per side.
#[derive(Default)]
struct Room {
    host: Option<mpsc::UnboundedSender<Value>>,
    viewer: Option<mpsc::UnboundedSender<Value>>,
}

#[derive(Clone)]
struct Shared {
    lies: Lies,
    room: Arc<Mutex<Room>>,
    recorded: Recorded,
    mitm: Arc<tokio::sync::Mutex<Middle>>,
    relayed_video: Arc<Mutex<u64>>,
}

async fn upgrade(ws: WebSocketUpgrade, State(shared): State<Shared>) -> Response {
    ws.on_upgrade(move |socket| connection(socket, shared))
}

async fn connection(socket: WebSocket, shared: Shared) {
    let (mut sink, mut source) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            if sink.send(Message::Text(v.to_string().into())).await.is_err() {
                break;
            }
        }
    });
    let mut who = None;
    while let Some(Ok(msg)) = source.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if v["type"] == "ping" {
            let _ = tx.send(json!({"type": "pong"}));
            continue;
        }
        match v["type"].as_str() {
            Some("register") => {
                who = Some(Who::Host);
                shared.room.lock().expect("lock").host = Some(tx.clone());
            }
            Some("join") => {
                who = Some(Who::Viewer);
                shared.room.lock().expect("lock").viewer = Some(tx.clone());
            }
            _ => {}
        }
        if who == Some(Who::Host) {
            shared.recorded.lock().expect("lock").push(v.clone());
        }
        let kind = v["type"].as_str().unwrap_or_default();
        if shared.lies.man_in_the_middle && matches!(kind, "offer" | "answer" | "candidate") {
            if let Some(from) = who {
                shared.mitm.lock().await.handle(&shared, from, &v).await;
            }
            continue;
        }
        let room = shared.room.lock().expect("lock");
        handle(&room, who, &v, shared.lies);
    }
    writer.abort();
}

fn send(to: &Option<mpsc::UnboundedSender<Value>>, v: Value) {
    if let Some(tx) = to {
        let _ = tx.send(v);
    }
}

fn handle(room: &Room, who: Option<Who>, v: &Value, lies: Lies) {
    let viewer_admitted = |control: bool| {
        send(
            &room.viewer,
            json!({"type": "joined", "id": ROOM_ID, "peer_id": VIEWER_PEER, "host": HOST_PEER,
                   "ice_servers": [], "token": TOKEN, "control": control}),
        );
        send(
            &room.host,
            json!({"type": "peer-joined", "peer_id": VIEWER_PEER, "control": control}),
        );
    };
    match (who, v["type"].as_str().unwrap_or_default()) {
        (Some(Who::Host), "register") => {
            send(
                &room.host,
                json!({"type": "registered", "id": ROOM_ID, "peer_id": HOST_PEER,
                       "ice_servers": [], "token": TOKEN, "resumed": false}),
            );
            if lies.invent_viewer {
                send(
                    &room.host,
                    json!({"type": "peer-joined", "peer_id": INTRUDER_PEER, "control": true}),
                );
            }
        }
        // Whatever the gate: a lying server lets anyone knock.
        (Some(Who::Viewer), "join") => {
            if lies.skip_consent {
                return viewer_admitted(true);
            }
            send(
                &room.viewer,
                json!({"type": "awaiting-consent", "timeout_ms": 30_000, "ice_servers": []}),
            );
            send(
                &room.host,
                json!({"type": "join-request", "peer_id": VIEWER_PEER, "address": "127.0.0.1", "timeout_ms": 30_000}),
            );
        }
        (Some(Who::Host), "consent") => match v["decision"].as_str() {
            Some("deny") => send(
                &room.viewer,
                json!({"type": "error", "code": "consent-denied", "message": "the host declined your request to join"}),
            ),
            Some(d) => viewer_admitted(lies.upgrade_to_control || d == "control"),
            None => {}
        },
        (Some(Who::Host), "auth-failed") => send(
            &room.viewer,
            json!({"type": "error", "code": "auth-failed", "message": v["reason"]}),
        ),
        (Some(from), "offer" | "answer" | "candidate") => {
            // Relayed as an honest server would: `to` dropped, `from` named.
            let (to, from_peer) = match from {
                Who::Host => (&room.viewer, HOST_PEER),
                Who::Viewer => (&room.host, VIEWER_PEER),
            };
            let mut out = v.clone();
            if let Some(o) = out.as_object_mut() {
                o.remove("to");
                o.remove("seq");
                o.insert("from".into(), from_peer.into());
            }
            send(to, out);
        }
        _ => {}
    }
}

/// The man in the middle: per generation of the host's connection, one peer
/// connection facing the host and one facing the viewer.
#[derive(Default)]
struct Middle {
    legs: HashMap<u64, Legs>,
}

struct Legs {
    to_host: Arc<dyn PeerConnection>,
    to_viewer: Arc<dyn PeerConnection>,
}

impl Middle {
    async fn handle(&mut self, shared: &Shared, from: Who, v: &Value) {
        let generation = v["generation"].as_u64().unwrap_or(0);
        let result = match (from, v["type"].as_str().unwrap_or_default()) {
            (Who::Host, "offer") => {
                self.on_host_offer(shared, generation, v["sdp"].as_str().unwrap_or_default())
                    .await
            }
            (Who::Viewer, "answer") => match self.legs.get(&generation) {
                Some(legs) => Self::on_viewer_answer(legs, v["sdp"].as_str().unwrap_or_default()).await,
                None => Ok(()),
            },
            (who, "candidate") => {
                let Ok(c) = serde_json::from_value::<IceCandidate>(v["candidate"].clone()) else {
                    return;
                };
                match self.legs.get(&generation) {
                    Some(legs) => {
                        let pc = if who == Who::Host {
                            &legs.to_host
                        } else {
                            &legs.to_viewer
                        };
                        pc.add_ice_candidate(to_init(&c)).await.map_err(anyhow::Error::from)
                    }
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            eprintln!("stand-in (middle): {e}");
        }
    }

    async fn on_viewer_answer(legs: &Legs, sdp: &str) -> Result<()> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())?;
        legs.to_viewer.set_remote_description(answer).await?;
        Ok(())
    }

    async fn on_host_offer(&mut self, shared: &Shared, generation: u64, sdp: &str) -> Result<()> {
        if self.legs.contains_key(&generation) {
            return Ok(()); // an ICE restart: the middle keeps its own paths
        }
        let (to_host, host_events) = build_peer(&[], &RtcOptions::loopback()).await?;
        let (to_viewer, viewer_events) = build_peer(&[], &RtcOptions::loopback()).await?;
        let mut viewer_channels = HashMap::new();
        for (label, ordered) in [("video", true), ("commands", false)] {
            let init = RTCDataChannelInit {
                ordered,
                ..Default::default()
            };
            viewer_channels.insert(
                label.to_owned(),
                to_viewer.create_data_channel(label, Some(init)).await?,
            );
        }
        // The host's offer, answered with the middle's own certificate.
        to_host
            .set_remote_description(RTCSessionDescription::offer(sdp.to_owned())?)
            .await?;
        let answer = to_host.create_answer(None).await?;
        to_host.set_local_description(answer.clone()).await?;
        let room = shared.room.clone();
        send(
            &room.lock().expect("lock").host,
            json!({"type": "answer", "from": VIEWER_PEER, "sdp": answer.sdp, "generation": generation}),
        );
        // And the viewer offered a connection of the middle's.
        let offer = to_viewer.create_offer(None).await?;
        to_viewer.set_local_description(offer.clone()).await?;
        send(
            &room.lock().expect("lock").viewer,
            json!({"type": "offer", "from": HOST_PEER, "sdp": offer.sdp, "generation": generation}),
        );
        tokio::spawn(forward_leg(
            host_events,
            room.clone(),
            Who::Host,
            generation,
            viewer_channels,
            shared.relayed_video.clone(),
        ));
        tokio::spawn(forward_leg(
            viewer_events,
            room,
            Who::Viewer,
            generation,
            HashMap::new(),
            shared.relayed_video.clone(),
        ));
        self.legs.insert(generation, Legs { to_host, to_viewer });
        Ok(())
    }
}

/// One leg's events: its candidates go to its side (as if from the other);
/// the host's channels, as they open, are paired with the viewer-facing ones.
async fn forward_leg(
    mut events: mpsc::UnboundedReceiver<RtcEvent>,
    room: Arc<Mutex<Room>>,
    side: Who,
    generation: u64,
    viewer_channels: HashMap<String, Arc<dyn DataChannel>>,
    relayed_video: Arc<Mutex<u64>>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            RtcEvent::Candidate(c) => {
                let room = room.lock().expect("lock");
                let (to, from) = match side {
                    Who::Host => (&room.host, VIEWER_PEER),
                    Who::Viewer => (&room.viewer, HOST_PEER),
                };
                send(
                    to,
                    json!({"type": "candidate", "from": from, "candidate": c, "generation": generation}),
                );
            }
            RtcEvent::DataChannel(host_dc) if side == Who::Host => {
                let label = host_dc.label().await.unwrap_or_default();
                if let Some(viewer_dc) = viewer_channels.get(&label) {
                    let count = (label == "video").then(|| relayed_video.clone());
                    tokio::spawn(relay(host_dc, viewer_dc.clone(), count));
                }
            }
            _ => {}
        }
    }
}

/// Relays one channel both ways, byte for byte: one task per direction (a
/// channel's `poll` is read by one loop only), the host's messages held until
/// the viewer-facing channel is open.
async fn relay(host: Arc<dyn DataChannel>, viewer: Arc<dyn DataChannel>, count: Option<Arc<Mutex<u64>>>) {
    let (open_tx, mut open_rx) = tokio::sync::watch::channel(false);
    let (h, v) = (host.clone(), viewer.clone());
    tokio::spawn(async move {
        while let Some(ev) = v.poll().await {
            match ev {
                DataChannelEvent::OnOpen => {
                    let _ = open_tx.send(true);
                }
                DataChannelEvent::OnMessage(m) => {
                    let _ = h.send(BytesMut::from(&m.data[..])).await;
                }
                DataChannelEvent::OnClose => return,
                _ => {}
            }
        }
    });
    while let Some(ev) = host.poll().await {
        match ev {
            DataChannelEvent::OnMessage(m) => {
                if open_rx.wait_for(|open| *open).await.is_err() {
                    return;
                }
                if let Some(c) = &count {
                    *c.lock().expect("lock") += m.data.len() as u64;
                }
                let _ = viewer.send(BytesMut::from(&m.data[..])).await;
            }
            DataChannelEvent::OnClose => return,
            _ => {}
        }
    }
}

/// Waits up to `within` for `f` to hold on what the host sent.
pub fn host_sent(standin: &StandIn, within: Duration, f: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = standin.from_host().into_iter().find(|m| f(m)) {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
