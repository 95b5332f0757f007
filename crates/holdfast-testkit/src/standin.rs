//! A stand-in signalling server for the hostile-server suite: it speaks the
//! real protocol to a real host and a real viewer, relays what an honest
//! server would, and tells the lies a [`Lies`] asks for (a viewer the host
//! never admitted, more control than the host granted, a join without the
//! code). Everything the host sends is recorded, so a test can assert what
//! the host did *not* do (send an offer to an intruder, say).
//!
//! One host and one viewer: enough to attack admission. It listens on
//! 127.0.0.1 with a port of the kernel's choosing and runs on its own thread.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

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
}

/// One message the host sent, as JSON.
pub type Recorded = Arc<Mutex<Vec<Value>>>;

pub struct StandIn {
    pub addr: SocketAddr,
    from_host: Recorded,
    _thread: std::thread::JoinHandle<()>,
}

impl StandIn {
    pub fn start(lies: Lies) -> Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let from_host: Recorded = Arc::default();
        let recorded = from_host.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                serve(listener, lies, recorded).await;
            });
        });
        Ok(StandIn {
            addr,
            from_host,
            _thread: thread,
        })
    }

    /// The URL to give host and viewer (`--signal`).
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

async fn serve(listener: TcpListener, lies: Lies, recorded: Recorded) {
    let room = Arc::new(Mutex::new(Room::default()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let room = room.clone();
        let recorded = recorded.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut sink, mut source) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
            let writer = tokio::spawn(async move {
                while let Some(v) = rx.recv().await {
                    if sink.send(Message::text(v.to_string())).await.is_err() {
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
                        room.lock().expect("lock").host = Some(tx.clone());
                    }
                    Some("join") => {
                        who = Some(Who::Viewer);
                        room.lock().expect("lock").viewer = Some(tx.clone());
                    }
                    _ => {}
                }
                if who == Some(Who::Host) {
                    recorded.lock().expect("lock").push(v.clone());
                }
                let room = room.lock().expect("lock");
                handle(&room, who, &v, lies);
            }
            writer.abort();
        });
    }
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
                json!({"type": "registered", "id": ROOM_ID, "code": "ABCDEFGHJK", "peer_id": HOST_PEER,
                       "ice_servers": [], "token": TOKEN, "resumed": false}),
            );
            if lies.invent_viewer {
                send(
                    &room.host,
                    json!({"type": "peer-joined", "peer_id": INTRUDER_PEER, "control": true}),
                );
            }
        }
        (Some(Who::Viewer), "join") => {
            if lies.skip_consent {
                return viewer_admitted(true);
            }
            send(&room.viewer, json!({"type": "awaiting-consent", "timeout_ms": 30_000}));
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
