//! One node of several serving one set of rooms (docs/cluster-design.md):
//! the IO shell around the [`Hub`] when `holdfast-signal` runs with
//! `--redis`. It owns
//! - routing: a client's first `register`/`join` names a room; the node
//!   holds it (claims it, carrying it on from Redis if another node had it)
//!   or *proxies* the socket to the node that does, over Redis pub/sub;
//! - write-through: each hub step's room changes are written to Redis in one
//!   pipeline *before* the step's messages go out (group commit: one round
//!   trip for whatever queued meanwhile), so a message a member saw is one a
//!   new owner will have; with Redis down the messages go out anyway;
//! - the heartbeat: this node's alive key, its room leases, and closing
//!   sockets that depend on a node that died.
//!
//! The room rules stay in the Hub; nothing here decides who may do what.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use holdfast_proto::signal::{ClientEnvelope, ClientMessage, ErrorKind, SignalError};
use holdfast_proto::RoomId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::store::{Owner, RedisStore, RoomWrite, StoreError};
use crate::hub::{ConnId, Hub, Outbox};
use crate::server::{AppState, Conn, Out, OUTBOX_CAPACITY};
use crate::token::TokenKey;

/// How often a node says it is alive and renews its rooms.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node that has not said so for this long is dead: its rooms may be taken
/// and the sockets other nodes proxied to it are closed.
pub const ALIVE_TTL: Duration = Duration::from_secs(6);
/// Hub steps, and room writes, sent to Redis in one round trip at most.
const COMMIT_BATCH: usize = 1024;
const WRITES_PER_ROUND_TRIP: usize = 512;
/// Rooms per commit when a node rewrites all it holds.
const RESYNC_CHUNK: usize = 100;
/// What a client is told when the room it names cannot be found or held
/// because Redis is unreachable.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// `--redis` and the name this node goes by.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// May carry a password (`redis://:secret@host`): see [`ClusterConfig::redis_for_logs`].
    pub redis_url: String,
    pub node_id: String,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &self.redis_for_logs())
            .field("node_id", &self.node_id)
            .finish()
    }
}

/// A Redis URL as logs and error messages show it: without its user and password.
pub fn redacted(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        None => "<not a redis URL>".into(),
    }
}

impl ClusterConfig {
    pub fn redis_for_logs(&self) -> String {
        redacted(&self.redis_url)
    }

    /// A node ID that is new each run (a restarted node is a new node: its
    /// old rooms are taken over, not silently resumed).
    pub fn fresh_node_id() -> String {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && h.len() < 64 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .unwrap_or_else(|| "node".into());
        format!("{host}-{:08x}", rand::random::<u32>())
    }
}

/// What nodes say to each other, on `hf:node:{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
enum NodeMessage {
    /// A client frame for a room the receiver owns.
    Frame {
        from: String,
        conn: u64,
        addr: IpAddr,
        text: String,
    },
    /// That client's socket closed.
    Gone { from: String, conn: u64 },
    /// A frame from the owner for a client connected to the receiver.
    Deliver { conn: u64, text: String },
    /// The owner closes that client.
    Close { conn: u64 },
}

/// A hub step waiting for its writes: its messages go out after them.
struct Commit {
    writes: Vec<RoomWrite>,
    out: Outbox,
}

/// Where a client's frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Local,
    Proxy(String),
}

pub(crate) struct Cluster {
    pub(crate) store: RedisStore,
    token_key: TokenKey,
    up: AtomicBool,
    pub(crate) errors: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) rooms_taken_over: AtomicU64,
    /// Per room this node holds: the last replay entry written (absent: the
    /// next write is whole).
    written: Mutex<HashMap<RoomId, u64>>,
    /// Sockets here whose room another node owns: which node.
    proxied: Mutex<HashMap<ConnId, String>>,
    /// Clients of other nodes in rooms held here: (node, its conn) → ours.
    remote: Mutex<HashMap<(String, u64), ConnId>>,
    commits: mpsc::UnboundedSender<Commit>,
}

/// The cluster side of a server: made before the router, started after.
pub(crate) struct Pending {
    pub(crate) cluster: Arc<Cluster>,
    commits: mpsc::UnboundedReceiver<Commit>,
}

impl Cluster {
    /// Connects to Redis and reads the shared token key: a node that cannot
    /// do either does not start.
    pub(crate) async fn connect(
        config: &ClusterConfig,
        retention: super::store::Retention,
    ) -> Result<Pending, StoreError> {
        let store = RedisStore::connect(&config.redis_url, &config.node_id)
            .await?
            .with_retention(retention);
        let token_key = store.token_key().await?;
        store.heartbeat(ALIVE_TTL).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Pending {
            cluster: Arc::new(Cluster {
                store,
                token_key,
                up: AtomicBool::new(true),
                errors: AtomicU64::new(0),
                forwarded: AtomicU64::new(0),
                rooms_taken_over: AtomicU64::new(0),
                written: Mutex::new(HashMap::new()),
                proxied: Mutex::new(HashMap::new()),
                remote: Mutex::new(HashMap::new()),
                commits: tx,
            }),
            commits: rx,
        })
    }

    pub(crate) fn token_key(&self) -> &TokenKey {
        &self.token_key
    }

    pub(crate) fn node(&self) -> &str {
        self.store.node()
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    pub(crate) fn proxied_count(&self) -> usize {
        self.proxied.lock().expect("proxied lock").len()
    }

    pub(crate) fn remote_count(&self) -> usize {
        self.remote.lock().expect("remote lock").len()
    }

    fn failed(&self, what: &str, e: &StoreError) {
        self.errors.fetch_add(1, Relaxed);
        if self.up.swap(false, Relaxed) {
            warn!(node = self.node(), "redis {what} failed, serving from memory: {e}");
        }
    }

    /// Queues a hub step's output behind the writes of the rooms it changed
    /// (called with the hub locked, so steps commit in the hub's order).
    pub(crate) fn enqueue(&self, hub: &mut Hub, out: Outbox, now: Instant) {
        let touched = hub.take_touched();
        let mut writes = Vec::new();
        {
            let mut written = self.written.lock().expect("written lock");
            for id in touched {
                if let Some(nonce) = (!hub.has_room(&id)).then(|| hub.ended_nonce(&id)).flatten() {
                    written.remove(&id);
                    writes.push(RoomWrite::Ended { id, nonce });
                    continue;
                }
                let after = written.get(&id).copied();
                match hub.snapshot_room_after(&id, now, after.unwrap_or(0)) {
                    Some(snapshot) => {
                        written.insert(id, snapshot.last_seq);
                        writes.push(RoomWrite::Save {
                            snapshot: Box::new(snapshot),
                            full: after.is_none(),
                        });
                    }
                    None => {
                        written.remove(&id);
                    }
                }
            }
            if !self.is_up() {
                // Rewritten whole once Redis is back (see `heartbeat`).
                written.clear();
                writes.clear();
            }
        }
        if writes.is_empty() && out.is_empty() {
            return;
        }
        let _ = self.commits.send(Commit { writes, out });
    }

    /// Every room this node holds, written whole (after Redis came back).
    fn resync(&self, hub: &mut Hub, now: Instant) {
        let ids = hub.room_ids();
        let mut written = self.written.lock().expect("written lock");
        written.clear();
        info!(
            node = self.node(),
            rooms = ids.len(),
            "redis is back: rewriting this node's rooms"
        );
        // In chunks: one pipeline of every room would outlast the command timeout.
        for chunk in ids.chunks(RESYNC_CHUNK) {
            let writes = chunk
                .iter()
                .filter_map(|id| hub.snapshot_room(id, now))
                .map(|snapshot| {
                    written.insert(snapshot.id.clone(), snapshot.last_seq);
                    RoomWrite::Save {
                        snapshot: Box::new(snapshot),
                        full: true,
                    }
                })
                .collect();
            let _ = self.commits.send(Commit {
                writes,
                out: Vec::new(),
            });
        }
    }

    /// The room a client's message names, if it names one held elsewhere
    /// possibly: a viewer's `join`, a host's `register` with its token.
    fn room_named(&self, env: &ClientEnvelope) -> Option<RoomId> {
        match &env.msg {
            ClientMessage::Join { id, .. } => Some(id.clone()),
            ClientMessage::Register { token: Some(t), .. } => self.token_key.verify(t).map(|c| c.room),
            _ => None,
        }
    }
}

/// Whether a message decides where a connection's frames go.
pub(crate) fn decides_route(env: &ClientEnvelope) -> bool {
    matches!(env.msg, ClientMessage::Join { .. } | ClientMessage::Register { .. })
}

fn unavailable() -> SignalError {
    SignalError {
        retry_after_ms: Some(RETRY_AFTER.as_millis() as u64),
        ..SignalError::new(
            ErrorKind::SessionUnavailable,
            "this server cannot reach its room store right now; try again shortly",
        )
    }
}

/// Where a client's frames go from now on, decided by its first `register`
/// or `join`: here if this node holds the room (or just took it over), else
/// the node that does.
pub(crate) async fn route(state: &AppState, cluster: &Cluster, env: &ClientEnvelope) -> Result<Route, SignalError> {
    let Some(id) = cluster.room_named(env) else {
        return Ok(Route::Local);
    };
    if state.hub.lock().expect("hub lock").has_room(&id) {
        return Ok(Route::Local);
    }
    let lease = cluster.store.retention().lease;
    match cluster.store.claim(&id, lease).await {
        Err(e) => {
            cluster.failed("claim", &e);
            Err(unavailable())
        }
        Ok(Owner::Node(owner)) => Ok(Route::Proxy(owner)),
        Ok(Owner::Us) => {
            let stored = match cluster.store.load_stored(&id).await {
                Ok(s) => s,
                Err(e) => {
                    cluster.failed("load", &e);
                    return Err(unavailable());
                }
            };
            let now = Instant::now();
            let mut hub = state.hub.lock().expect("hub lock");
            if let Some(nonce) = stored.ended {
                hub.note_ended(id.clone(), nonce, now);
            }
            if let Some(snapshot) = stored.snapshot {
                let last = snapshot.last_seq;
                let members = snapshot.members.len();
                if hub.restore_room(snapshot, now) {
                    cluster.written.lock().expect("written lock").insert(id.clone(), last);
                    cluster.rooms_taken_over.fetch_add(1, Relaxed);
                    info!(room = %id.as_str(), members, "carrying on a room another node held");
                }
            }
            Ok(Route::Local)
        }
    }
}

/// Sends a client frame to the node that owns its room; false if that node
/// cannot be reached (the socket is closed and the client resumes anew).
pub(crate) async fn forward(cluster: &Cluster, owner: &str, conn: ConnId, addr: IpAddr, text: &str) -> bool {
    cluster
        .proxied
        .lock()
        .expect("proxied lock")
        .insert(conn, owner.to_owned());
    let msg = NodeMessage::Frame {
        from: cluster.node().to_owned(),
        conn: conn.0,
        addr,
        text: text.to_owned(),
    };
    publish(cluster, owner, &msg).await
}

/// A proxied socket closed: its owner learns it (the member's grace starts).
pub(crate) async fn gone(cluster: &Cluster, conn: ConnId) {
    let owner = cluster.proxied.lock().expect("proxied lock").remove(&conn);
    if let Some(owner) = owner {
        let msg = NodeMessage::Gone {
            from: cluster.node().to_owned(),
            conn: conn.0,
        };
        publish(cluster, &owner, &msg).await;
    }
}

async fn publish(cluster: &Cluster, node: &str, msg: &NodeMessage) -> bool {
    let payload = serde_json::to_string(msg).expect("node messages serialize");
    match cluster.store.publish(node, &payload).await {
        Ok(0) => false,
        Ok(_) => {
            cluster.forwarded.fetch_add(1, Relaxed);
            true
        }
        Err(e) => {
            cluster.failed("publish", &e);
            false
        }
    }
}

/// Starts the node's tasks: commits, the node channel, the heartbeat.
pub(crate) fn start(state: &Arc<AppState>, pending: Pending) {
    tokio::spawn(commits(Arc::downgrade(state), pending.commits));
    tokio::spawn(listen(Arc::downgrade(state)));
    tokio::spawn(heartbeat(Arc::downgrade(state)));
}

fn cluster_of(state: &AppState) -> &Arc<Cluster> {
    state.cluster.as_ref().expect("a node's tasks run with a cluster")
}

/// Group commit: every queued step's writes in one pipeline, then their
/// messages in order. A failed write is counted and the messages go anyway.
async fn commits(state: Weak<AppState>, mut rx: mpsc::UnboundedReceiver<Commit>) {
    while let Some(first) = rx.recv().await {
        let mut writes_in_batch = first.writes.len();
        let mut batch = vec![first];
        while batch.len() < COMMIT_BATCH && writes_in_batch < WRITES_PER_ROUND_TRIP {
            match rx.try_recv() {
                Ok(c) => {
                    writes_in_batch += c.writes.len();
                    batch.push(c);
                }
                Err(_) => break,
            }
        }
        let Some(state) = state.upgrade() else { break };
        let cluster = cluster_of(&state);
        let writes: Vec<RoomWrite> = batch.iter_mut().flat_map(|c| c.writes.drain(..)).collect();
        if !writes.is_empty() {
            if let Err(e) = cluster.store.write(&writes).await {
                cluster.failed("write", &e);
                cluster.written.lock().expect("written lock").clear();
            }
        }
        for c in batch {
            state.deliver(c.out);
        }
    }
}

/// This node's channel, resubscribed whenever Redis comes back.
async fn listen(state: Weak<AppState>) {
    loop {
        let Some(cluster) = state.upgrade().map(|s| cluster_of(&s).clone()) else {
            return;
        };
        match cluster.store.subscribe().await {
            Ok(pubsub) => {
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Some(state) = state.upgrade() else { return };
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    match serde_json::from_str::<NodeMessage>(&payload) {
                        Ok(m) => on_node_message(&state, m).await,
                        Err(e) => warn!("unreadable message from another node: {e}"),
                    }
                }
                warn!(node = cluster.node(), "lost this node's channel; subscribing again");
            }
            Err(e) => cluster.failed("subscribe", &e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn on_node_message(state: &Arc<AppState>, msg: NodeMessage) {
    let cluster = cluster_of(state).clone();
    match msg {
        NodeMessage::Frame { from, conn, addr, text } => {
            let known = cluster
                .remote
                .lock()
                .expect("remote lock")
                .contains_key(&(from.clone(), conn));
            if !known && !ClientEnvelope::parse(&text).is_ok_and(|env| decides_route(&env)) {
                // A client this node let go of (its messages could not be
                // passed on): only a resume brings it back, so it is told to.
                publish(&cluster, &from, &NodeMessage::Close { conn }).await;
                return;
            }
            let local = remote_conn(state, &cluster, &from, conn);
            let reply = |e: SignalError| {
                state.deliver(vec![crate::hub::Out::Send {
                    to: local,
                    seq: None,
                    msg: e.into(),
                }])
            };
            // Another node checked it; this one checks again (trust nobody).
            let env = match ClientEnvelope::parse(&text) {
                Ok(env) => env,
                Err(e) => return reply(e),
            };
            // The sender's node found this node holding the room; this node
            // may still be carrying it on (its own client's resume is loading
            // it): the same path makes sure it is here before the hub sees
            // a resume, which would otherwise start the room afresh.
            if decides_route(&env) {
                match route(state, &cluster, &env).await {
                    Ok(Route::Local) => {}
                    Ok(Route::Proxy(_)) => return reply(unavailable()),
                    Err(e) => return reply(e),
                }
            }
            state.step(|hub| hub.handle(Instant::now(), local, addr, env));
        }
        NodeMessage::Gone { from, conn } => {
            let local = cluster.remote.lock().expect("remote lock").remove(&(from, conn));
            if let Some(local) = local {
                state.conns.lock().expect("conns lock").remove(&local);
                state.step(|hub| hub.disconnect(Instant::now(), local));
            }
        }
        NodeMessage::Deliver { conn, text } => {
            state.deliver_text(ConnId(conn), text);
        }
        NodeMessage::Close { conn } => {
            if let Some(c) = state.conns.lock().expect("conns lock").get(&ConnId(conn)) {
                c.close.notify_one();
            }
        }
    }
}

/// The connection here that stands for client `conn` of node `from`: made
/// on its first frame, with an outbox that publishes back to that node.
fn remote_conn(state: &Arc<AppState>, cluster: &Arc<Cluster>, from: &str, conn: u64) -> ConnId {
    let key = (from.to_owned(), conn);
    let mut remote = cluster.remote.lock().expect("remote lock");
    if let Some(c) = remote.get(&key) {
        return *c;
    }
    let local = ConnId(state.next_conn.fetch_add(1, Relaxed) + 1);
    remote.insert(key.clone(), local);
    let (tx, mut rx) = mpsc::channel::<Out>(OUTBOX_CAPACITY);
    let close = Arc::new(tokio::sync::Notify::new());
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    state.conns.lock().expect("conns lock").insert(
        local,
        Conn {
            tx,
            queued: queued.clone(),
            close: close.clone(),
        },
    );
    let weak = Arc::downgrade(state);
    let cluster = cluster.clone();
    let (node, their) = key;
    tokio::spawn(async move {
        // False once a message may not have reached the client's node (a
        // timeout is not a refusal: it may have). Resending could deliver it
        // twice; instead the client's socket is closed and it resumes with
        // the last number it has, which the replay completes exactly once.
        let send = |out: Out| {
            let cluster = cluster.clone();
            let node = node.clone();
            let queued = queued.clone();
            async move {
                let Out::Text(text) = out else { return true };
                queued.fetch_sub(text.len(), Relaxed);
                publish(&cluster, &node, &NodeMessage::Deliver { conn: their, text }).await
            }
        };
        loop {
            tokio::select! {
                biased;
                out = rx.recv() => match out {
                    Some(out) => if !send(out).await {
                        debug!(node = %node, "could not pass a message to the client's node; closing the client");
                        publish(&cluster, &node, &NodeMessage::Close { conn: their }).await;
                        break;
                    },
                    None => return,
                },
                _ = close.notified() => {
                    // What was queued before the close (a `room-closed`, say) goes first.
                    while let Ok(out) = rx.try_recv() {
                        if !send(out).await {
                            break;
                        }
                    }
                    publish(&cluster, &node, &NodeMessage::Close { conn: their }).await;
                    break;
                }
            }
        }
        cluster.remote.lock().expect("remote lock").remove(&(node, their));
        if let Some(state) = weak.upgrade() {
            state.conns.lock().expect("conns lock").remove(&local);
            state.step(|hub| hub.disconnect(Instant::now(), local));
        }
    });
    local
}

/// Every [`HEARTBEAT`]: say this node is alive, renew its rooms (letting go
/// of any another node took), rewrite them all if Redis just came back, and
/// close what depended on nodes that died.
async fn heartbeat(state: Weak<AppState>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let cluster = cluster_of(&state).clone();
        if let Err(e) = cluster.store.heartbeat(ALIVE_TTL).await {
            cluster.failed("heartbeat", &e);
            // Proxied sockets cannot work without Redis: their clients are
            // better told so (they reconnect and hear `session-unavailable`).
            let proxied: Vec<ConnId> = cluster.proxied.lock().expect("proxied lock").keys().copied().collect();
            close_all(&state, &proxied);
            continue;
        }
        if !cluster.up.swap(true, Relaxed) {
            let mut hub = state.hub.lock().expect("hub lock");
            cluster.resync(&mut hub, Instant::now());
        }
        let rooms = state.hub.lock().expect("hub lock").room_ids();
        match cluster.store.renew(&rooms, cluster.store.retention().lease).await {
            Ok(lost) => {
                for id in lost {
                    warn!(room = %id.as_str(), "another node holds this room now; letting it go");
                    let conns = state.hub.lock().expect("hub lock").drop_room(&id);
                    cluster.written.lock().expect("written lock").remove(&id);
                    close_all(&state, &conns);
                }
            }
            Err(e) => cluster.failed("renew", &e),
        }
        let (proxied, remote) = {
            let p = cluster.proxied.lock().expect("proxied lock").clone();
            let r = cluster.remote.lock().expect("remote lock").clone();
            (p, r)
        };
        let nodes: Vec<String> = proxied
            .values()
            .cloned()
            .chain(remote.keys().map(|(n, _)| n.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let alive = match cluster.store.alive(&nodes).await {
            Ok(a) => a,
            Err(e) => {
                cluster.failed("liveness check", &e);
                continue;
            }
        };
        let dead: HashSet<&String> = nodes.iter().zip(alive).filter(|(_, a)| !a).map(|(n, _)| n).collect();
        if dead.is_empty() {
            continue;
        }
        warn!(nodes = ?dead, "nodes stopped answering: closing the sockets that went through them");
        let to_close: Vec<ConnId> = proxied
            .iter()
            .filter(|(_, n)| dead.contains(n))
            .map(|(c, _)| *c)
            .chain(remote.iter().filter(|((n, _), _)| dead.contains(n)).map(|(_, c)| *c))
            .collect();
        close_all(&state, &to_close);
    }
}

fn close_all(state: &AppState, conns: &[ConnId]) {
    let map = state.conns.lock().expect("conns lock");
    for c in conns {
        if let Some(conn) = map.get(c) {
            conn.close.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_messages_read_back() {
        for m in [
            NodeMessage::Frame {
                from: "a-1".into(),
                conn: 7,
                addr: "10.0.0.2".parse().unwrap(),
                text: r#"{"type":"ping"}"#.into(),
            },
            NodeMessage::Gone {
                from: "a-1".into(),
                conn: 7,
            },
            NodeMessage::Deliver {
                conn: 9,
                text: "{}".into(),
            },
            NodeMessage::Close { conn: 9 },
        ] {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<NodeMessage>(&json).unwrap(), m);
        }
    }

    #[test]
    fn a_redis_password_never_reaches_a_log_line() {
        let c = ClusterConfig {
            redis_url: "redis://:s3cret-pass@10.0.0.5:6379/2".into(),
            node_id: "a".into(),
        };
        for shown in [
            c.redis_for_logs(),
            format!("{c:?}"),
            redacted("redis://user:s3cret-pass@h:1"),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert_eq!(c.redis_for_logs(), "redis://10.0.0.5:6379/2");
    }

    #[test]
    fn node_ids_differ_per_run_and_are_safe_in_keys() {
        let (a, b) = (ClusterConfig::fresh_node_id(), ClusterConfig::fresh_node_id());
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'), "{a}");
    }
}
