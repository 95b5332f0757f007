//! The HTTP side: small handlers around a shared [`Hub`].
//!
//! Each WebSocket gets a [`ConnId`] and a bounded outbox drained by a
//! writer task (the hub decides which room member a connection speaks for); a client that stops reading and fills its outbox is
//! disconnected rather than allowed to grow the server's memory. Frames over
//! [`WS_FRAME_LIMIT`] close the socket (code 1009); text messages over
//! `holdfast_proto::signal::MAX_SIGNAL_MESSAGE_BYTES` but under that get an `error` and the
//! connection stays up. A bad message never changes any state.
//!
//! Each socket's outbox is also bounded in bytes ([`OUTBOX_BYTE_BUDGET`]): a
//! reader that stalls while large messages pile up is dropped long before
//! 512 of them (up to 32 MiB) could be held for it. Connections are capped
//! per client address (IPv6 by /64) and in total, and `/ws` and the API only
//! answer the pages [`OriginPolicy`] allows.
//!
//! Socket health: the server pings every client every [`WS_PING_INTERVAL`]
//! and closes a connection it has heard nothing from (not even a pong) for
//! [`WS_SILENT_TIMEOUT`], so half-open connections do not hold rooms.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use holdfast_proto::signal::{ClientEnvelope, ErrorKind, IceServer, ServerEnvelope, ServerMessage, SignalError};
use tokio::sync::mpsc;
use tower_http::services::{ServeDir, ServeFile};
use tracing::{debug, info, info_span, warn, Instrument};

use holdfast_proto::{RoomId, SessionToken};
use holdfast_session::{Keepalive, KeepaliveConfig, KeepaliveEvent, Metrics};

use crate::access::{address_key, LimiterConfig};
use crate::cluster::node::{self, Cluster, ClusterConfig, Route};
use crate::hub::{Caps, ConnId, Hub, HubConfig, Out as HubOut, Outbox, WallClock};
use crate::origin::OriginPolicy;
use crate::replay::ReplayConfig;
use crate::tls::{load_or_create_self_signed, TlsMode};
use crate::token::TokenKey;
use crate::turn::TurnRest;

/// Largest WebSocket frame or message read at all.
pub const WS_FRAME_LIMIT: usize = 256 * 1024;
/// Messages queued for one client before it counts as stalled.
pub const OUTBOX_CAPACITY: usize = 512;
/// Bytes queued for one client before it counts as stalled.
pub const OUTBOX_BYTE_BUDGET: usize = 1024 * 1024;
/// Each socket's read buffer (tungstenite's default is 128 KiB, most of an
/// idle connection's memory; messages are 0.1-16 KiB and the buffer grows
/// for a larger one up to [`WS_FRAME_LIMIT`]).
pub const WS_READ_BUFFER: usize = 8 * 1024;
/// Largest body the REST endpoints read.
pub const MAX_HTTP_BODY_BYTES: usize = 4 * 1024;
/// WebSocket ping cadence (seed: 10 s).
pub const WS_PING_INTERVAL: Duration = Duration::from_secs(10);
/// A connection silent this long is closed (seed: 30 s; rounded up to whole ping intervals).
pub const WS_SILENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the writer task sends on one socket.
pub(crate) enum Out {
    Text(String),
    Ping,
}

/// One open connection: its outbox, the bytes waiting in it, and how to make its reader stop.
pub(crate) struct Conn {
    pub(crate) tx: mpsc::Sender<Out>,
    pub(crate) queued: Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) close: Arc<tokio::sync::Notify>,
}

/// How many connections one address, and everyone together, may hold open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnCaps {
    pub per_addr: usize,
    pub total: usize,
}

impl Default for ConnCaps {
    fn default() -> Self {
        ConnCaps {
            per_addr: 64,
            total: 20_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsMode,
    /// Built viewer assets (`ui/dist`); `None` serves a short notice instead.
    pub ui_dir: Option<PathBuf>,
    pub ice_servers: Vec<IceServer>,
    /// Failed-join limits (5 per minute per room and per address, then growing lockouts).
    pub limiter: LimiterConfig,
    /// How long a host has to answer a join request.
    pub consent_timeout: Duration,
    pub ws_ping_interval: Duration,
    pub ws_silent_timeout: Duration,
    /// How long a member whose connection dropped keeps its place (seed: 300 s).
    pub grace: Duration,
    /// Replay buffer size and lifetime per room (seed: 50 messages, 5 min).
    pub replay: ReplayConfig,
    /// Signs session tokens; the same key after a restart keeps tokens valid.
    pub token_key: TokenKey,
    /// TURN with short-lived per-member credentials (coturn `use-auth-secret`).
    pub turn: Option<TurnRest>,
    /// Browser origins allowed besides this server's own pages and the app.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub conn_caps: ConnCaps,
    pub room_caps: Caps,
    /// Several nodes sharing their rooms through Redis (`--redis`); `None`:
    /// one process, every room in memory.
    pub cluster: Option<ClusterConfig>,
}

impl ServerConfig {
    pub fn loopback(port: u16) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: TlsMode::Off,
            ui_dir: default_ui_dir(),
            ice_servers: Vec::new(),
            limiter: LimiterConfig::default(),
            consent_timeout: holdfast_proto::signal::CONSENT_TIMEOUT,
            ws_ping_interval: WS_PING_INTERVAL,
            ws_silent_timeout: WS_SILENT_TIMEOUT,
            grace: holdfast_session::GRACE_PERIOD,
            replay: ReplayConfig::default(),
            token_key: TokenKey::random(),
            turn: None,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            conn_caps: ConnCaps::default(),
            room_caps: Caps::default(),
            cluster: None,
        }
    }
}

/// How often time-driven hub work (consent timeouts, grace windows) runs.
const HUB_TICK: Duration = Duration::from_millis(250);

/// Where the built viewer is, if anywhere obvious: `$HOLDFAST_UI_DIR`, the
/// repository's `ui/dist` next to a cargo target directory, `./ui/dist`, or
/// the packaged location.
pub fn default_ui_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(d) = std::env::var("HOLDFAST_UI_DIR") {
        candidates.push(PathBuf::from(d));
    }
    candidates.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/dist")));
    candidates.push(PathBuf::from("ui/dist"));
    candidates.push(PathBuf::from("/usr/share/holdfast/ui"));
    candidates.into_iter().find(|d| d.join("index.html").is_file())
}

pub(crate) struct AppState {
    pub(crate) hub: Mutex<Hub>,
    pub(crate) conns: Mutex<HashMap<ConnId, Conn>>,
    /// Open connections, per address key and in all.
    conn_counts: Mutex<ConnCounts>,
    conn_caps: ConnCaps,
    origins: OriginPolicy,
    trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) next_conn: std::sync::atomic::AtomicU64,
    /// What anyone may read at `/api/ice-servers`: entries without credentials.
    public_ice_servers: Vec<IceServer>,
    health: KeepaliveConfig,
    connections_total: std::sync::atomic::AtomicU64,
    /// Present when this server is one node of several (`--redis`).
    pub(crate) cluster: Option<Arc<Cluster>>,
}

impl AppState {
    /// The address the limiter counts (see [`crate::forwarded`]).
    fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
        crate::forwarded::client_addr(peer.ip(), headers, &self.trusted_proxies)
    }

    /// Runs one hub step and sends what it says: at once, or on a node after
    /// the step's room changes are written to Redis.
    pub(crate) fn step(&self, f: impl FnOnce(&mut Hub) -> Outbox) {
        let out = {
            let mut hub = self.hub.lock().expect("hub lock");
            let out = f(&mut hub);
            match &self.cluster {
                Some(cluster) => return cluster.enqueue(&mut hub, out, Instant::now()),
                None => out,
            }
        };
        self.deliver(out);
    }

    pub(crate) fn deliver(&self, out: Outbox) {
        let conns = self.conns.lock().expect("conns lock");
        for item in out {
            match item {
                HubOut::Send { to, seq, msg } => {
                    if let Some(c) = conns.get(&to) {
                        queue_text(to, c, ServerEnvelope { seq, msg }.to_json());
                    }
                }
                HubOut::Close(conn) => {
                    if let Some(c) = conns.get(&conn) {
                        c.close.notify_one();
                    }
                }
            }
        }
    }

    /// A frame another node's hub wrote for a client connected here.
    pub(crate) fn deliver_text(&self, to: ConnId, text: String) {
        if let Some(c) = self.conns.lock().expect("conns lock").get(&to) {
            queue_text(to, c, text);
        }
    }
}

/// Queues a frame on a connection's outbox, dropping a client that stopped reading.
fn queue_text(to: ConnId, c: &Conn, text: String) {
    let len = text.len();
    let queued = c.queued.fetch_add(len, std::sync::atomic::Ordering::Relaxed) + len;
    let refused = if queued > OUTBOX_BYTE_BUDGET {
        Some(true)
    } else {
        match c.tx.try_send(Out::Text(text)) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(_)) => Some(true),
            // Its writer is gone: the connection is closing anyway.
            Err(mpsc::error::TrySendError::Closed(_)) => Some(false),
        }
    };
    if let Some(stalled) = refused {
        c.queued.fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
        if stalled {
            warn!(conn = %to, queued, "client is not reading its messages; dropping it");
        }
        c.close.notify_one();
    }
}

/// A running server; dropping it does not stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// `http://addr` or `https://addr`.
    pub base_url: String,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub async fn shutdown(self) {
        self.handle.shutdown();
        let _ = self.task.await;
    }

    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
    }
}

/// The routes of a single-process server (`config.cluster` is not used; see [`spawn`]).
pub fn router(config: &ServerConfig) -> Router {
    router_with(config, None)
}

fn router_with(config: &ServerConfig, node: Option<node::Pending>) -> Router {
    let cluster = node.as_ref().map(|p| p.cluster.clone());
    let token_key = cluster
        .as_ref()
        .map_or_else(|| config.token_key.clone(), |c| c.token_key().clone());
    let state = Arc::new(AppState {
        hub: Mutex::new(Hub::new(HubConfig {
            ice_servers: config.ice_servers.clone(),
            turn: config.turn.clone(),
            wall_clock: WallClock {
                at: Instant::now(),
                unix_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            },
            caps: config.room_caps,
            limiter: config.limiter,
            consent_timeout: config.consent_timeout,
            grace: config.grace,
            replay: config.replay,
            token_key,
            // The edge reads the wall clock; the hub stays pure.
            seq_base: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        })),
        conns: Mutex::new(HashMap::new()),
        conn_counts: Mutex::new(ConnCounts::default()),
        conn_caps: config.conn_caps,
        origins: OriginPolicy {
            scheme: if matches!(config.tls, TlsMode::Off) {
                "http"
            } else {
                "https"
            },
            loopback_bind: config.listen.ip().is_loopback(),
            extra: config.allowed_origins.clone(),
        },
        trusted_proxies: config.trusted_proxies.clone(),
        next_conn: Default::default(),
        public_ice_servers: config
            .ice_servers
            .iter()
            .filter(|s| s.username.is_none() && s.credential.is_none())
            .cloned()
            .collect(),
        health: socket_health(config),
        connections_total: Default::default(),
        cluster,
    });
    if let Some(pending) = node {
        node::start(&state, pending);
    }
    // The hub's clock: refuses join requests the host left unanswered, ends grace windows.
    let weak = Arc::downgrade(&state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HUB_TICK);
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            state.step(|hub| hub.poll(Instant::now()));
        }
    });
    // Browsers reach these only from allowed pages (see `origin`).
    let guarded = Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/api/ice-servers", get(ice_servers))
        .route(
            "/rooms/{id}/connection-quality",
            post(connection_quality).layer(DefaultBodyLimit::max(MAX_HTTP_BODY_BYTES)),
        )
        .route("/rooms/{id}/reconnection-state", get(reconnection_state))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), check_origin));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(guarded);
    let app = match &config.ui_dir {
        Some(dir) => app.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))),
        None => app.fallback(|| async {
            "Holdfast signalling server. The viewer is not built here: run `npm run build` in ui/ or pass --ui-dir."
        }),
    };
    app.with_state(state)
}

/// Binds and serves in the background.
pub async fn spawn(config: ServerConfig) -> anyhow::Result<RunningServer> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let node = match &config.cluster {
        Some(c) => {
            let retention = crate::cluster::store::Retention {
                state: config.grace.max(config.replay.ttl) + node::ALIVE_TTL,
                replay_messages: config.replay.capacity,
                replay_ttl: config.replay.ttl,
                ..Default::default()
            };
            let pending = Cluster::connect(c, retention)
                .await
                .map_err(|e| anyhow::anyhow!("redis {}: {e}", c.redis_for_logs()))?;
            info!(node = %c.node_id, redis = %c.redis_for_logs(), "one node of several: rooms are shared through redis");
            Some(pending)
        }
        None => None,
    };
    let app = router_with(&config, node).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let (scheme, task) = match &config.tls {
        TlsMode::Off => {
            let server = axum_server::bind(config.listen).handle(handle.clone());
            ("http", tokio::spawn(server.serve(app)))
        }
        mode => {
            let (cert, key) = match mode {
                TlsMode::Files { cert, key } => (std::fs::read(cert)?, std::fs::read(key)?),
                TlsMode::SelfSigned { dir, names } => load_or_create_self_signed(dir, names)?,
                TlsMode::Off => unreachable!(),
            };
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem(cert, key).await?;
            let server = axum_server::bind_rustls(config.listen, tls).handle(handle.clone());
            ("https", tokio::spawn(server.serve(app)))
        }
    };
    let addr = handle
        .listening()
        .await
        .ok_or_else(|| anyhow::anyhow!("could not listen on {}", config.listen))?;
    info!(%addr, scheme, ui = ?config.ui_dir, "signalling server listening");
    Ok(RunningServer {
        addr,
        base_url: format!("{scheme}://{addr}"),
        handle,
        task,
    })
}

async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let mut health = {
        let hub = state.hub.lock().expect("hub lock");
        serde_json::json!({ "status": "ok", "rooms": hub.room_count(), "members": hub.member_count() })
    };
    if let Some(c) = &state.cluster {
        // Still "ok": a node whose Redis is down serves the rooms it holds.
        health["node"] = c.node().into();
        health["redis"] = if c.is_up() { "up" } else { "down" }.into();
    }
    Json(health)
}

/// The public STUN list: TURN credentials go only to hosts and admitted
/// viewers, inside their `registered`/`joined` answers.
async fn ice_servers(State(state): State<Arc<AppState>>) -> Json<Vec<IceServer>> {
    Json(state.public_ice_servers.clone())
}

/// Refuses requests from pages [`OriginPolicy`] does not allow (403).
async fn check_origin(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let verdict = {
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        state.origins.check(header(header::ORIGIN), header(header::HOST))
    };
    match verdict {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            warn!("{refusal}");
            http_error(
                StatusCode::FORBIDDEN,
                SignalError::new(ErrorKind::BadMessage, refusal.to_string()),
            )
        }
    }
}

/// Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let (rooms, members, buffered, c) = {
        let hub = state.hub.lock().expect("hub lock");
        (
            hub.room_count(),
            hub.member_count(),
            hub.buffered_count(),
            hub.counters(),
        )
    };
    let connections = state.conns.lock().expect("conns lock").len();
    let mut out = String::new();
    if let Some(cl) = &state.cluster {
        use std::sync::atomic::Ordering::Relaxed;
        for (name, kind, help, value) in [
            (
                "holdfast_redis_up",
                "gauge",
                "1 if this node's last Redis call worked.",
                cl.is_up() as u64,
            ),
            (
                "holdfast_redis_errors_total",
                "counter",
                "Redis calls that failed or timed out.",
                cl.errors.load(Relaxed),
            ),
            (
                "holdfast_node_messages_total",
                "counter",
                "Messages sent to other nodes.",
                cl.forwarded.load(Relaxed),
            ),
            (
                "holdfast_rooms_taken_over_total",
                "counter",
                "Rooms carried on from another node's state.",
                cl.rooms_taken_over.load(Relaxed),
            ),
            (
                "holdfast_proxied_connections",
                "gauge",
                "Sockets here whose room another node holds.",
                cl.proxied_count() as u64,
            ),
            (
                "holdfast_remote_connections",
                "gauge",
                "Clients of other nodes in rooms held here.",
                cl.remote_count() as u64,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
    }
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric(
        "holdfast_connections",
        "gauge",
        "Open signalling connections.",
        connections as u64,
    );
    metric(
        "holdfast_connections_total",
        "counter",
        "Signalling connections accepted.",
        state.connections_total.load(Relaxed),
    );
    metric("holdfast_rooms", "gauge", "Open rooms.", rooms as u64);
    metric(
        "holdfast_room_members",
        "gauge",
        "Hosts and viewers in rooms.",
        members as u64,
    );
    metric(
        "holdfast_rooms_created_total",
        "counter",
        "Rooms registered.",
        c.rooms_created,
    );
    metric(
        "holdfast_joins_admitted_total",
        "counter",
        "Viewers admitted (consent or token).",
        c.joins_admitted,
    );
    metric(
        "holdfast_joins_denied_total",
        "counter",
        "Join requests the host denied.",
        c.joins_denied,
    );
    metric(
        "holdfast_joins_timed_out_total",
        "counter",
        "Join requests the host left unanswered.",
        c.joins_timed_out,
    );
    metric(
        "holdfast_wrong_credentials_total",
        "counter",
        "Joins with a wrong code or token.",
        c.wrong_credentials,
    );
    metric(
        "holdfast_lockouts_total",
        "counter",
        "Lockouts after repeated wrong codes.",
        c.lockouts,
    );
    metric(
        "holdfast_messages_relayed_total",
        "counter",
        "Offers, answers and candidates relayed.",
        c.relayed,
    );
    metric(
        "holdfast_quality_reports_total",
        "counter",
        "Connection-quality reports accepted.",
        c.quality_reports,
    );
    metric(
        "holdfast_turn_renewals_total",
        "counter",
        "Fresh TURN credentials sent before the old ones expired.",
        c.turn_renewals,
    );
    metric(
        "holdfast_reconnections_total",
        "counter",
        "Members that came back within the grace window.",
        c.reconnections,
    );
    metric(
        "holdfast_reconnections_failed_total",
        "counter",
        "Genuine tokens presented after their session had ended.",
        c.reconnections_failed,
    );
    metric(
        "holdfast_messages_replayed_total",
        "counter",
        "Messages replayed to reconnecting members.",
        c.messages_replayed,
    );
    metric(
        "holdfast_duplicates_dropped_total",
        "counter",
        "Resent client messages the server had already taken.",
        c.duplicates_dropped,
    );
    metric(
        "holdfast_grace_expired_total",
        "counter",
        "Members removed because the grace window ran out.",
        c.grace_expired,
    );
    metric(
        "holdfast_rooms_restored_total",
        "counter",
        "Rooms taken back by their host's token (after a server restart).",
        c.rooms_restored,
    );
    metric(
        "holdfast_replay_buffered_messages",
        "gauge",
        "Messages held for replay, all rooms.",
        buffered as u64,
    );
    let attempts = c.reconnections + c.reconnections_failed;
    let rate = if attempts == 0 {
        1.0
    } else {
        c.reconnections as f64 / attempts as f64
    };
    let avg = if c.reconnections == 0 {
        0.0
    } else {
        c.reconnection_ms_total as f64 / c.reconnections as f64 / 1000.0
    };
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge(
        "holdfast_reconnection_success_ratio",
        "Reconnections over reconnection attempts with a genuine token (1 when none).",
        rate,
    );
    gauge(
        "holdfast_reconnection_seconds_avg",
        "Average time members were disconnected before coming back.",
        avg,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// A JSON error body with the same codes as the WebSocket's `error` messages.
fn http_error(status: StatusCode, e: SignalError) -> Response {
    let mut response = (
        status,
        Json(serde_json::json!({ "error": { "code": e.kind, "message": e.message } })),
    )
        .into_response();
    if let Some(ms) = e.retry_after_ms {
        let secs = ms.div_ceil(1000).to_string();
        if let Ok(v) = header::HeaderValue::from_str(&secs) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}

/// `POST /rooms/{id}/connection-quality` with `Authorization: Bearer <session token>` and a body
/// `{latency_ms, packet_loss_percent, jitter_ms, bandwidth_kbps?}`; answers `{quality, metrics,
/// recommendations, timestamp}`.
async fn connection_quality(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |m: String| http_error(StatusCode::BAD_REQUEST, SignalError::new(ErrorKind::BadMessage, m));
    let Ok(id) = RoomId::parse(&id) else {
        return bad("a room ID has 9 digits".into());
    };
    let token = match bearer(&headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let report: Metrics = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return bad(format!("invalid quality report: {e}")),
    };
    if !report.is_valid() {
        return bad("metrics must be finite and non-negative, loss at most 100".into());
    }
    let quality = report.classify();
    if let Some(r) = held_elsewhere(&state, &id) {
        return r;
    }
    let result = state.hub.lock().expect("hub lock").report_quality(
        Instant::now(),
        state.client_ip(addr, &headers),
        &id,
        &token,
        quality,
    );
    match result {
        Ok(()) => {
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            Json(serde_json::json!({
                "quality": quality,
                "metrics": report,
                "recommendations": report.recommendations(),
                "timestamp": timestamp,
            }))
            .into_response()
        }
        Err(e) if e.kind == ErrorKind::LockedOut => http_error(StatusCode::TOO_MANY_REQUESTS, e),
        Err(e) => http_error(StatusCode::UNAUTHORIZED, e),
    }
}

/// On a node, a room this node does not hold: 503 rather than a wrong-token
/// 401 (which would count against the caller). The WebSocket is what moves
/// a room; these endpoints answer where it is.
fn held_elsewhere(state: &AppState, id: &RoomId) -> Option<Response> {
    state.cluster.as_ref()?;
    if state.hub.lock().expect("hub lock").has_room(id) {
        return None;
    }
    let e = SignalError {
        retry_after_ms: Some(2000),
        ..SignalError::new(
            ErrorKind::SessionUnavailable,
            "this room is held by another node; ask again (your connection's node answers for it)",
        )
    };
    Some(http_error(StatusCode::SERVICE_UNAVAILABLE, e))
}

/// The session token of an `Authorization: Bearer <token>` header, or a 401.
fn bearer(headers: &HeaderMap) -> Result<SessionToken, Box<Response>> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| SessionToken::parse(t.trim()).ok())
        .ok_or_else(|| {
            let e = SignalError::new(
                ErrorKind::InvalidCredentials,
                "a session token is required: Authorization: Bearer <token>",
            );
            Box::new(http_error(StatusCode::UNAUTHORIZED, e))
        })
}

/// `GET /rooms/{id}/reconnection-state` with the caller's session token:
/// its own connection state (connected, last seen, sequence numbers, grace
/// left, quality) and who else in the room is connected.
async fn reconnection_state(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = RoomId::parse(&id) else {
        return http_error(
            StatusCode::BAD_REQUEST,
            SignalError::new(ErrorKind::BadMessage, "a room ID has 9 digits"),
        );
    };
    let token = match bearer(&headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if let Some(r) = held_elsewhere(&state, &id) {
        return r;
    }
    let result = state.hub.lock().expect("hub lock").reconnection_state(
        Instant::now(),
        state.client_ip(addr, &headers),
        &id,
        &token,
    );
    match result {
        Ok(s) => Json(s).into_response(),
        Err(e) if e.kind == ErrorKind::LockedOut => http_error(StatusCode::TOO_MANY_REQUESTS, e),
        Err(e) => http_error(StatusCode::UNAUTHORIZED, e),
    }
}

async fn ws_upgrade(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let addr = SocketAddr::new(state.client_ip(peer, &headers), peer.port());
    let Some(slot) = ConnSlot::take(&state, addr.ip()) else {
        warn!(remote = %addr, "connection refused: too many connections");
        return http_error(
            StatusCode::TOO_MANY_REQUESTS,
            SignalError::new(
                ErrorKind::RateLimited,
                "too many connections from this address (or to this server)",
            ),
        );
    };
    ws.max_message_size(WS_FRAME_LIMIT)
        .max_frame_size(WS_FRAME_LIMIT)
        .read_buffer_size(WS_READ_BUFFER)
        // Each message is written (and flushed) as it comes: no 128 KiB write buffer per socket.
        .write_buffer_size(0)
        .max_write_buffer_size(WS_FRAME_LIMIT * 2)
        .on_upgrade(move |socket| {
            let conn = ConnId(state.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            let span = info_span!("ws", conn = %conn, remote = %addr);
            async move {
                client(socket, state, conn, addr.ip()).await;
                drop(slot);
            }
            .instrument(span)
        })
        .into_response()
}

#[derive(Default)]
struct ConnCounts {
    total: usize,
    by_addr: HashMap<std::net::IpAddr, usize>,
}

/// One counted connection of an address; the counts drop with it.
struct ConnSlot {
    state: Arc<AppState>,
    key: std::net::IpAddr,
}

impl ConnSlot {
    /// A slot if the address and the server are under their caps.
    fn take(state: &Arc<AppState>, ip: std::net::IpAddr) -> Option<Self> {
        let key = address_key(ip);
        let mut counts = state.conn_counts.lock().expect("conn counts lock");
        let mine = counts.by_addr.get(&key).copied().unwrap_or(0);
        if mine >= state.conn_caps.per_addr || counts.total >= state.conn_caps.total {
            return None;
        }
        counts.total += 1;
        *counts.by_addr.entry(key).or_default() += 1;
        Some(ConnSlot {
            state: state.clone(),
            key,
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut counts = self.state.conn_counts.lock().expect("conn counts lock");
        counts.total -= 1;
        if let Some(n) = counts.by_addr.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.by_addr.remove(&self.key);
            }
        }
    }
}

/// The ping cadence and silence limit as a keepalive (the limit rounded up to whole intervals).
fn socket_health(config: &ServerConfig) -> KeepaliveConfig {
    let interval = config.ws_ping_interval.max(Duration::from_millis(10));
    let intervals = config.ws_silent_timeout.as_nanos().div_ceil(interval.as_nanos()).max(1);
    KeepaliveConfig {
        interval,
        dead_after_intervals: intervals.min(u32::MAX as u128) as u32,
        sends_pings: true,
    }
}

async fn client(socket: WebSocket, state: Arc<AppState>, conn: ConnId, ip: std::net::IpAddr) {
    debug!("connected");
    state
        .connections_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Out>(OUTBOX_CAPACITY);
    let close = Arc::new(tokio::sync::Notify::new());
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    state.conns.lock().expect("conns lock").insert(
        conn,
        Conn {
            tx: tx.clone(),
            queued: queued.clone(),
            close: close.clone(),
        },
    );
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let frame = match out {
                Out::Text(text) => {
                    queued.fetch_sub(text.len(), std::sync::atomic::Ordering::Relaxed);
                    Message::Text(text.into())
                }
                Out::Ping => Message::Ping(Default::default()),
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut health = Keepalive::new(state.health, Instant::now());
    // On a node: where this client's frames go, once a `register`/`join` says.
    let mut route: Option<Route> = None;
    let mut tick = tokio::time::interval((state.health.interval / 4).max(Duration::from_millis(5)));
    loop {
        let frame = tokio::select! {
            frame = stream.next() => match frame {
                Some(frame) => frame,
                None => break,
            },
            _ = close.notified() => break,
            _ = tick.tick() => {
                match health.poll(Instant::now()) {
                    Some(KeepaliveEvent::SendPing) => { let _ = tx.try_send(Out::Ping); }
                    Some(KeepaliveEvent::PeerDead { silent }) => {
                        info!(silent_ms = silent.as_millis() as u64, "closing a silent connection");
                        break;
                    }
                    None => {}
                }
                continue;
            }
        };
        health.on_activity(Instant::now());
        let reply = |msg: ServerMessage| {
            vec![HubOut::Send {
                to: conn,
                seq: None,
                msg,
            }]
        };
        let out = match frame {
            Ok(Message::Text(text)) => match ClientEnvelope::parse(text.as_str()) {
                Ok(env) => {
                    if let Some(cluster) = &state.cluster {
                        if route.is_none() && node::decides_route(&env) {
                            match node::route(&state, cluster, &env).await {
                                Ok(r) => route = Some(r),
                                Err(e) => {
                                    state.deliver(reply(e.into()));
                                    continue;
                                }
                            }
                        }
                        if let Some(Route::Proxy(owner)) = &route {
                            if !node::forward(cluster, owner, conn, ip, text.as_str()).await {
                                info!(owner = %owner, "the node holding this room cannot be reached; closing");
                                break;
                            }
                            continue;
                        }
                    }
                    state.step(|hub| hub.handle(Instant::now(), conn, ip, env));
                    Vec::new()
                }
                Err(e) => {
                    debug!("rejected message: {e}");
                    reply(e.into())
                }
            },
            Ok(Message::Binary(_)) => {
                reply(SignalError::new(ErrorKind::BadMessage, "binary frames are not accepted; send JSON text").into())
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => {
                debug!("socket error: {e}");
                break;
            }
        };
        state.deliver(out);
        if writer.is_finished() {
            break;
        }
    }
    match (&state.cluster, &route) {
        (Some(cluster), Some(Route::Proxy(_))) => node::gone(cluster, conn).await,
        _ => state.step(|hub| hub.disconnect(Instant::now(), conn)),
    }
    state.conns.lock().expect("conns lock").remove(&conn);
    // Let the writer flush what was queued (a `superseded` notice, say), briefly.
    drop(tx);
    if tokio::time::timeout(Duration::from_millis(500), writer).await.is_err() {
        debug!("writer did not finish in time");
    }
    debug!("disconnected");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    async fn start() -> RunningServer {
        let mut cfg = ServerConfig::loopback(0);
        cfg.ui_dir = None;
        spawn(cfg).await.unwrap()
    }

    type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    async fn ws(server: &RunningServer) -> Ws {
        let url = format!("ws://{}/ws", server.addr);
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    async fn send(ws: &mut Ws, text: &str) {
        ws.send(WsMessage::text(text.to_string())).await.unwrap();
    }

    async fn recv(ws: &mut Ws) -> ServerMessage {
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
            {
                WsMessage::Text(t) => return ServerMessage::parse(&t).unwrap(),
                _ => continue,
            }
        }
    }

    fn kind(m: ServerMessage) -> ErrorKind {
        match m {
            ServerMessage::Error { code, .. } => code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn bad_input_gets_clear_errors_and_the_connection_survives() {
        let server = start().await;
        let mut c = ws(&server).await;
        send(&mut c, "{oops").await;
        assert_eq!(kind(recv(&mut c).await), ErrorKind::BadMessage);
        send(&mut c, r#"{"type":"teleport"}"#).await;
        assert_eq!(kind(recv(&mut c).await), ErrorKind::UnknownType);
        send(&mut c, &format!(r#"{{"type":"offer","sdp":"{}"}}"#, "x".repeat(70_000))).await;
        assert_eq!(kind(recv(&mut c).await), ErrorKind::TooLarge);
        c.send(WsMessage::binary(vec![1u8, 2, 3])).await.unwrap();
        assert_eq!(kind(recv(&mut c).await), ErrorKind::BadMessage);
        send(&mut c, r#"{"type":"join","id":"123456789","gate":"ABCD"}"#).await;
        assert_eq!(kind(recv(&mut c).await), ErrorKind::InvalidCredentials);
        send(&mut c, r#"{"type":"answer","sdp":"v=0"}"#).await;
        assert_eq!(kind(recv(&mut c).await), ErrorKind::NotInRoom);
        // Still serving this same connection.
        send(&mut c, r#"{"type":"ping"}"#).await;
        assert!(matches!(recv(&mut c).await, ServerMessage::Pong));
        server.shutdown().await;
    }

    /// One HTTP/1.1 request over a fresh TCP connection: (status, body).
    async fn http(server: &RunningServer, request: String) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn post_quality(id: &str, token: Option<&str>, body: &str) -> String {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        format!(
            "POST /rooms/{id}/connection-quality HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn quality_reports_need_the_session_token_and_a_valid_body() {
        let server = start().await;
        let mut host = ws(&server).await;
        let code = "K7QX";
        send(&mut host, r#"{"type":"register","gate":"K7QX"}"#).await;
        let id = match recv(&mut host).await {
            ServerMessage::Registered { id, .. } => id.as_str().to_owned(),
            other => panic!("{other:?}"),
        };
        let mut viewer = ws(&server).await;
        send(
            &mut viewer,
            &format!(r#"{{"type":"join","id":"{id}","gate":"{code}"}}"#),
        )
        .await;
        let peer = match recv(&mut host).await {
            ServerMessage::JoinRequest { peer_id, .. } => peer_id,
            other => panic!("{other:?}"),
        };
        send(
            &mut host,
            &format!(r#"{{"type":"consent","peer":"{peer}","decision":"control"}}"#),
        )
        .await;
        let token = loop {
            if let ServerMessage::Joined { token, .. } = recv(&mut viewer).await {
                break token.expose().to_owned();
            }
        };
        let example = r#"{"latency_ms":150,"packet_loss_percent":2.5,"jitter_ms":30,"bandwidth_kbps":5000}"#;

        let (status, body) = http(&server, post_quality(&id, None, example)).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("invalid-credentials"), "{body}");
        let wrong = "0".repeat(64);
        assert_eq!(http(&server, post_quality(&id, Some(&wrong), example)).await.0, 401);
        assert_eq!(
            http(&server, post_quality("999999999", Some(&token), example)).await.0,
            401
        );
        for bad in [
            "{",
            r#"{"latency_ms":-1,"packet_loss_percent":0,"jitter_ms":0}"#,
            r#"{"latency_ms":1,"packet_loss_percent":101,"jitter_ms":0}"#,
            r#"{"latency_ms":1,"packet_loss_percent":1,"jitter_ms":1,"admin":true}"#,
            r#"{"latency_ms":"fast","packet_loss_percent":1,"jitter_ms":1}"#,
        ] {
            let (status, body) = http(&server, post_quality(&id, Some(&token), bad)).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body.contains("bad-message"), "{body}");
        }
        let huge = format!(
            r#"{{"latency_ms":1,"packet_loss_percent":1,"jitter_ms":1,"x":"{}"}}"#,
            "y".repeat(8000)
        );
        assert_eq!(http(&server, post_quality(&id, Some(&token), &huge)).await.0, 413);

        let (status, body) = http(&server, post_quality(&id, Some(&token), example)).await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["quality"], "fair", "the seeds' example: {v}");
        assert_eq!(v["metrics"]["latency_ms"], 150.0);
        assert!(v["recommendations"].as_array().is_some_and(|r| !r.is_empty()));
        assert!(v["timestamp"].as_u64().unwrap() > 1_700_000_000_000);

        let (status, text) = http(
            &server,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".into(),
        )
        .await;
        assert_eq!(status, 200);
        for line in [
            "holdfast_rooms 1",
            "holdfast_connections 2",
            "holdfast_joins_admitted_total 1",
            "holdfast_quality_reports_total 1",
            // The unsigned token and the unknown room above.
            "holdfast_wrong_credentials_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        assert!(!text.contains(&token) && !text.contains(code), "no secrets in metrics");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn silent_connections_are_closed_and_live_ones_are_kept() {
        let mut cfg = ServerConfig::loopback(0);
        cfg.ui_dir = None;
        cfg.ws_ping_interval = std::time::Duration::from_millis(50);
        cfg.ws_silent_timeout = std::time::Duration::from_millis(200);
        let server = spawn(cfg).await.unwrap();
        let mut live = ws(&server).await;
        let mut silent = ws(&server).await;
        // The live client reads (tungstenite answers each ping with a pong) for a second.
        let t0 = std::time::Instant::now();
        let mut pings = 0;
        while t0.elapsed() < std::time::Duration::from_secs(1) {
            match tokio::time::timeout(std::time::Duration::from_millis(100), live.next()).await {
                Ok(Some(Ok(WsMessage::Ping(_)))) => pings += 1,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => panic!("a live client was closed"),
                _ => {}
            }
        }
        assert!(pings >= 10, "pinged every 50 ms: {pings} pings in 1 s");
        send(&mut live, r#"{"type":"ping"}"#).await;
        assert!(matches!(recv(&mut live).await, ServerMessage::Pong));
        // The silent one, never read (so never ponged), was closed long ago.
        let closed = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            loop {
                match silent.next().await {
                    None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return true,
                    _ => {}
                }
            }
        })
        .await
        .unwrap();
        assert!(closed);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn an_oversized_frame_closes_only_that_socket() {
        let server = start().await;
        let mut good = ws(&server).await;
        send(&mut good, r#"{"type":"register","gate":"K7QX"}"#).await;
        assert!(matches!(recv(&mut good).await, ServerMessage::Registered { .. }));
        let mut bad = ws(&server).await;
        let _ = bad.send(WsMessage::text("y".repeat(WS_FRAME_LIMIT + 10))).await;
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                match bad.next().await {
                    None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return true,
                    _ => {}
                }
            }
        })
        .await
        .unwrap();
        assert!(closed);
        send(&mut good, r#"{"type":"ping"}"#).await;
        assert!(matches!(recv(&mut good).await, ServerMessage::Pong));
        server.shutdown().await;
    }
}
