//! The signalling session: one task owns the WebSocket and replaces it when
//! it drops (exponential backoff with full jitter, base 1 s, cap 30 s; the
//! attempt counter resets on admission), resuming with the session token so
//! the server recognises the client and replays what it missed. Transient
//! failures (refused, reset, timeout, a server that says "not yet") are
//! retried; refusals that retrying cannot fix (wrong credentials, consent
//! denied, session ended) end the session and say why, as does the grace
//! window running out. What the role sends meanwhile is queued.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use holdfast_proto::signal::{ClientEnvelope, ClientMessage, ErrorKind, ServerEnvelope, ServerMessage};
use holdfast_session::{
    BackoffConfig, GraceWindow, Keepalive, KeepaliveConfig, KeepaliveEvent, ReconnectPolicy, DEAD_AFTER_INTERVALS,
    GRACE_PERIOD,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn, Instrument};
use url::Url;

use crate::resume::{Incoming, Reconnection, ResumeState};
use crate::PeerError;

/// The `/ws` endpoint for a server base URL (`http://host:port` or `ws://...`).
pub fn websocket_url(base: &Url) -> Result<Url, PeerError> {
    let mut url = base.clone();
    let scheme = match base.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(PeerError::Url(format!("unsupported scheme `{other}`"))),
    };
    url.set_scheme(scheme).map_err(|_| PeerError::Url(base.to_string()))?;
    if !url.path().ends_with("/ws") {
        url.set_path("/ws");
    }
    url.set_query(None);
    Ok(url)
}

/// A TLS client configuration trusting the system's roots plus the PEM
/// certificate(s) in `ca` (for a server with a self-signed certificate).
pub fn tls_config_with_ca(ca: &std::path::Path) -> Result<std::sync::Arc<rustls::ClientConfig>, PeerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| PeerError::Connect(format!("{}: {e}", ca.display())))? {
        let cert = cert.map_err(|e| PeerError::Connect(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| PeerError::Connect(format!("{}: {e}", ca.display())))?;
        added += 1;
    }
    if added == 0 {
        return Err(PeerError::Connect(format!("{}: no certificate found", ca.display())));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

/// How long a `ping` may go unanswered before a replacement socket is tried.
/// Above a TCP retransmission or two on a lossy, slow path (150 ms, 10 %).
pub const STALL_AFTER: Duration = Duration::from_secs(3);
/// Longest wait for one replacement attempt. Short, and attempts overlap: a
/// SYN sent into a dead network is retried by the kernel only after 1 s, then
/// 3 s, so a fresh attempt finds a returned network sooner.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// While the socket is stalled, a fresh attempt starts this often (beside
/// those still waiting), so a fresh SYN is never more than this far from the
/// moment the network returns.
pub const PROBE_SPACING: Duration = Duration::from_millis(500);
/// At most this many replacement attempts at once: enough that, 1.5 s each
/// and 0.5 s apart, a new one is never held back by one about to give up.
const MAX_PROBES: usize = 4;

/// When to start another replacement socket beside a stalled one: every
/// [`PROBE_SPACING`] while stalled, never more than [`MAX_PROBES`] at once.
#[derive(Debug, Default)]
struct ProbeSchedule {
    last_started: Option<Instant>,
}

impl ProbeSchedule {
    /// Whether to start one now; if so, counts it as started.
    fn due(&mut self, now: Instant, stalled: bool, in_flight: usize) -> bool {
        if !stalled || in_flight >= MAX_PROBES {
            return false;
        }
        if self
            .last_started
            .is_some_and(|t| now.saturating_duration_since(t) < PROBE_SPACING)
        {
            return false;
        }
        self.last_started = Some(now);
        true
    }
}

/// How a [`SignalSession`] connects and reconnects.
#[derive(Debug, Clone)]
pub struct SignalConfig {
    pub url: Url,
    /// Trust roots for `wss://` (None: the system's).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Reconnection delays: full jitter, base 1 s, cap 30 s.
    pub backoff: BackoffConfig,
    /// How long to keep trying after a drop before the session ends (seed: 300 s).
    pub grace: Duration,
    /// Application-level `ping` cadence; the server counts as gone after
    /// three silent intervals, and the socket is replaced.
    pub ping_interval: Duration,
    /// Longest wait for one connection attempt (TCP, TLS and upgrade).
    pub connect_timeout: Duration,
    /// A `ping` unanswered this long makes the socket suspect: a fresh one is
    /// tried alongside it (see [`connected`]), without giving the old one up.
    pub stall_after: Duration,
}

impl SignalConfig {
    pub fn new(url: Url) -> Self {
        SignalConfig {
            url,
            tls: None,
            backoff: BackoffConfig::default(),
            grace: GRACE_PERIOD,
            ping_interval: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            stall_after: STALL_AFTER,
        }
    }
}

/// What the signalling session reports to its role.
#[derive(Debug)]
pub enum SignalEvent {
    /// Admitted, first or again: `answer` is the server's `registered` or
    /// `joined`; `reconnection` when the server recognised a rejoin.
    Admitted {
        answer: ServerMessage,
        reconnection: Option<Reconnection>,
    },
    /// A message for the role (relayed, room events, `awaiting-consent`,
    /// errors), each numbered one once and in order (`seq`: the room's number).
    Message { seq: Option<u64>, msg: ServerMessage },
    /// The socket dropped; the next attempt is in `retry_in`; `grace_left`
    /// until the session is given up, of a window of `grace` (the server's).
    Disconnected {
        attempt: u32,
        retry_in: Duration,
        grace_left: Duration,
        grace: Duration,
        reason: String,
    },
    /// The session is over; no more events follow.
    Ended(PeerError),
}

#[derive(Debug)]
enum SessionCmd {
    Send(ClientMessage),
    /// Skip the backoff wait and try now (network change, the user's button).
    ReconnectNow,
    /// Say goodbye and stop.
    Close,
}

/// A signalling session that outlives its sockets: it reconnects with
/// backoff and jitter, resumes with its token, replays and resends through
/// [`ResumeState`], and gives up only on a refusal that retrying cannot fix
/// or when the grace window runs out.
pub struct SignalSession {
    cmd: mpsc::UnboundedSender<SessionCmd>,
    pub events: mpsc::UnboundedReceiver<SignalEvent>,
}

/// A cloneable way to send through a [`SignalSession`].
#[derive(Clone)]
pub struct SignalSender {
    cmd: mpsc::UnboundedSender<SessionCmd>,
}

impl SignalSender {
    /// Sends now if connected; otherwise queues (numbered messages) until the next admission.
    pub fn send(&self, msg: ClientMessage) {
        let _ = self.cmd.send(SessionCmd::Send(msg));
    }

    /// Tries to reconnect at once instead of waiting out the backoff; when
    /// connected, moves to a fresh socket (the old one may be bound to an
    /// address that is gone).
    pub fn reconnect_now(&self) {
        let _ = self.cmd.send(SessionCmd::ReconnectNow);
    }

    /// Leaves the room and ends the session.
    pub fn close(&self) {
        let _ = self.cmd.send(SessionCmd::Close);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl SignalSession {
    /// Connects once (an error here is returned, not retried: the address
    /// is probably wrong) and sends the hello; from then on the session
    /// keeps itself connected.
    pub async fn start(config: SignalConfig, state: ResumeState) -> Result<Self, PeerError> {
        let ws = open(&config).await?;
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(run(config, state, ws, cmd_rx, ev_tx).in_current_span());
        Ok(SignalSession { cmd, events })
    }

    pub fn sender(&self) -> SignalSender {
        SignalSender { cmd: self.cmd.clone() }
    }

    /// The next event; `Ended(SignalClosed)` once the session is gone.
    pub async fn next(&mut self) -> SignalEvent {
        self.events
            .recv()
            .await
            .unwrap_or(SignalEvent::Ended(PeerError::SignalClosed))
    }
}

async fn open(config: &SignalConfig) -> Result<Ws, PeerError> {
    open_within(config.url.clone(), config.tls.clone(), config.connect_timeout).await
}

/// Opens the server's WebSocket (`tls`: trust roots for `wss://`), within `timeout`.
pub(crate) async fn open_within(
    url: Url,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Ws, PeerError> {
    let url = websocket_url(&url)?;
    let connector = tls.map(tokio_tungstenite::Connector::Rustls);
    let attempt = tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, connector);
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(PeerError::Connect(e.to_string())),
        Err(_) => Err(PeerError::Connect(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// A replacement socket being opened; aborted when dropped.
struct Probe(tokio::task::JoinHandle<Result<Ws, PeerError>>);

impl Probe {
    fn open(config: &SignalConfig, timeout: Duration) -> Self {
        Probe(tokio::spawn(open_within(
            config.url.clone(),
            config.tls.clone(),
            timeout,
        )))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a connected phase ended.
enum Exit {
    /// The socket is gone; try again.
    Lost(String),
    /// The socket stalled and a fresh one is already open: resume on it now.
    Switch(Box<Ws>),
    /// The server refused for now; try again no sooner than this.
    RetryAfter(String, Duration),
    Fatal(PeerError),
    Closed,
}

async fn run(
    config: SignalConfig,
    mut state: ResumeState,
    first: Ws,
    mut cmd: mpsc::UnboundedReceiver<SessionCmd>,
    events: mpsc::UnboundedSender<SignalEvent>,
) {
    let mut policy = ReconnectPolicy::new(config.backoff);
    let mut grace = GraceWindow::new(config.grace);
    let mut ws = Some(first);
    loop {
        let mut min_wait = Duration::ZERO;
        let reason = match ws.take() {
            Some(socket) => {
                match connected(&config, &mut state, socket, &mut cmd, &events, &mut policy, &mut grace).await {
                    Exit::Closed => return,
                    Exit::Switch(fresh) => {
                        // Not a drop: no backoff, no grace clock; the hello on the
                        // fresh socket resumes, and the server supersedes the old one.
                        state.disconnected();
                        ws = Some(*fresh);
                        continue;
                    }
                    Exit::Fatal(e) => {
                        let _ = events.send(SignalEvent::Ended(e));
                        return;
                    }
                    Exit::Lost(reason) => reason,
                    Exit::RetryAfter(reason, wait) => {
                        min_wait = wait;
                        reason
                    }
                }
            }
            None => "not connected".into(),
        };
        state.disconnected();
        let now = Instant::now();
        grace.dropped(now);
        let attempt = policy.attempt();
        let retry_in = policy.next_delay(&mut rand::rng()).max(min_wait);
        let grace_left = grace.remaining(now).unwrap_or_default();
        warn!(
            attempt,
            retry_in_ms = retry_in.as_millis() as u64,
            "signalling lost: {reason}"
        );
        let _ = events.send(SignalEvent::Disconnected {
            attempt,
            retry_in,
            grace_left,
            grace: grace.period(),
            reason,
        });
        let wake = tokio::time::sleep(retry_in);
        tokio::pin!(wake);
        let deadline = tokio::time::sleep_until(grace.deadline().unwrap_or(now + grace.period()).into());
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut wake => break,
                _ = &mut deadline => {
                    grace.poll(Instant::now());
                    let _ = events.send(SignalEvent::Ended(PeerError::Expired(grace.period())));
                    return;
                }
                c = cmd.recv() => match c {
                    Some(SessionCmd::Send(msg)) => { let _ = state.send(msg); }
                    Some(SessionCmd::ReconnectNow) => break,
                    Some(SessionCmd::Close) | None => return,
                },
            }
        }
        match open(&config).await {
            Ok(socket) => ws = Some(socket),
            Err(e) => debug!("reconnection attempt failed: {e}"),
        }
    }
}

/// One socket's life: hello, then messages both ways and pings, until it drops.
#[allow(clippy::too_many_arguments)]
async fn connected(
    config: &SignalConfig,
    state: &mut ResumeState,
    mut ws: Ws,
    cmd: &mut mpsc::UnboundedReceiver<SessionCmd>,
    events: &mpsc::UnboundedSender<SignalEvent>,
    policy: &mut ReconnectPolicy,
    grace: &mut GraceWindow,
) -> Exit {
    let write_timeout = config.connect_timeout;
    macro_rules! write {
        ($env:expr) => {
            let text = $env.to_json();
            match tokio::time::timeout(write_timeout, ws.send(Message::text(text))).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Exit::Lost(format!("write failed: {e}")),
                Err(_) => return Exit::Lost("write timed out".into()),
            }
        };
    }
    write!(state.hello());
    let health = KeepaliveConfig {
        interval: config.ping_interval,
        dead_after_intervals: DEAD_AFTER_INTERVALS,
        sends_pings: true,
    };
    let mut keepalive = Keepalive::new(health, Instant::now());
    let mut tick = tokio::time::interval((config.ping_interval / 4).max(Duration::from_millis(10)));
    // A TCP connection that lost packets in an outage keeps backing off its
    // retransmissions (up to minutes) after the network is back, and what we
    // write meanwhile waits behind them. So once a ping goes unanswered for
    // `stall_after`, replacement sockets are tried, overlapping (see
    // `ProbeSchedule`); the first that opens takes over. A pong on the old
    // socket calls this off.
    let mut probes: Vec<Probe> = Vec::new();
    let mut schedule = ProbeSchedule::default();
    let probe_timeout = PROBE_TIMEOUT.min(config.connect_timeout);
    let mut probe_tick = tokio::time::interval(
        (PROBE_SPACING / 5)
            .min(config.stall_after / 4)
            .max(Duration::from_millis(10)),
    );
    loop {
        tokio::select! {
            // Lazily built: select! evaluates a disabled branch's expression too.
            (opened, i, _) = async { futures_util::future::select_all(probes.iter_mut().map(|p| &mut p.0)).await },
                if !probes.is_empty() => {
                drop(probes.swap_remove(i));
                match opened {
                    Ok(Ok(fresh)) => {
                        info!(
                            unanswered_ms = keepalive.unanswered_for(Instant::now()).unwrap_or_default().as_millis() as u64,
                            "signalling socket stalled; moving to a fresh one"
                        );
                        return Exit::Switch(Box::new(fresh));
                    }
                    Ok(Err(e)) => debug!("replacement socket failed: {e}"),
                    Err(e) => debug!("replacement attempt aborted: {e}"),
                }
            }
            _ = probe_tick.tick() => {
                let now = Instant::now();
                let stalled = keepalive.unanswered_for(now).is_some_and(|d| d >= config.stall_after);
                if schedule.due(now, stalled, probes.len()) {
                    probes.push(Probe::open(config, probe_timeout));
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return Exit::Lost("the server closed the connection".into()),
                    Some(Err(e)) => return Exit::Lost(e.to_string()),
                    Some(Ok(_)) => { keepalive.on_activity(Instant::now()); continue; }
                };
                keepalive.on_activity(Instant::now());
                let env = match ServerEnvelope::parse(&text) {
                    Ok(env) => env,
                    Err(e) => { warn!("ignoring bad server message: {e}"); continue; }
                };
                let seq = env.seq;
                if matches!(env.msg, ServerMessage::Pong) {
                    keepalive.on_pong(Instant::now());
                    probes.clear(); // the old socket answers again
                }
                match state.on_message(env) {
                    Incoming::Deliver(msg) => { let _ = events.send(SignalEvent::Message { seq, msg }); }
                    Incoming::Duplicate | Incoming::Nothing => {}
                    Incoming::Admitted { answer, reconnection, resend } => {
                        policy.reset();
                        if let Some(period) = answer.grace() {
                            // One grace window: the server's.
                            grace.set_period(period);
                        }
                        if let Ok(gone) = grace.resume(Instant::now()) {
                            if !gone.is_zero() {
                                info!(gone_ms = gone.as_millis() as u64, resent = resend.len(), "signalling resumed");
                            }
                        }
                        for env in resend {
                            write!(env);
                        }
                        let _ = events.send(SignalEvent::Admitted { answer, reconnection });
                    }
                    Incoming::Refused(e) if !state.is_admitted() => {
                        // The hello was refused. A lockout ends a join with a code (the
                        // person must wait and retype it); a resume waits it out.
                        let locked_out_code = e.kind == ErrorKind::LockedOut && state.token().is_none();
                        if e.kind.is_fatal() || locked_out_code {
                            return Exit::Fatal(PeerError::Refused(e));
                        }
                        let wait = Duration::from_millis(e.retry_after_ms.unwrap_or(0));
                        return Exit::RetryAfter(format!("server: {}", e.message), wait);
                    }
                    Incoming::Refused(e) if e.kind == ErrorKind::Superseded => {
                        return Exit::Fatal(PeerError::Refused(e));
                    }
                    Incoming::Refused(e) => {
                        let _ = events.send(SignalEvent::Message { seq: None, msg: e.into() });
                    }
                    Incoming::Ended(reason) => return Exit::Fatal(PeerError::Ended(reason)),
                }
            }
            c = cmd.recv() => match c {
                Some(SessionCmd::Send(msg)) => {
                    if let Some(env) = state.send(msg) {
                        write!(env);
                    }
                }
                Some(SessionCmd::ReconnectNow) => {
                    // Asked (network change, the user's button): try a fresh
                    // socket now; the old one stays until that one is up.
                    if probes.is_empty() {
                        probes.push(Probe::open(config, config.connect_timeout));
                    }
                }
                Some(SessionCmd::Close) | None => {
                    if state.may_write() {
                        let _ = tokio::time::timeout(
                            write_timeout,
                            ws.send(Message::text(ClientEnvelope::new(None, ClientMessage::Leave).to_json())),
                        )
                        .await;
                    }
                    let _ = tokio::time::timeout(write_timeout, ws.close(None)).await;
                    return Exit::Closed;
                }
            },
            _ = tick.tick() => match keepalive.poll(Instant::now()) {
                Some(KeepaliveEvent::SendPing) => { write!(ClientEnvelope::new(None, ClientMessage::Ping)); }
                Some(KeepaliveEvent::PeerDead { silent }) => {
                    return Exit::Lost(format!("server silent for {} ms", silent.as_millis()));
                }
                None => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_socket_gets_overlapping_replacements_half_a_second_apart() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut s = ProbeSchedule::default();
        assert!(!s.due(ms(0), false, 0), "nothing while the socket answers");
        let mut in_flight: Vec<Instant> = Vec::new();
        let mut started = Vec::new();
        // Ticks every 100 ms for 4 s of a dead network; each attempt gives up after 1.5 s.
        for n in (0..=4000).step_by(100) {
            in_flight.retain(|&t| ms(n).duration_since(t) < PROBE_TIMEOUT);
            if s.due(ms(n), true, in_flight.len()) {
                in_flight.push(ms(n));
                started.push(n);
            }
            assert!(in_flight.len() <= MAX_PROBES);
        }
        assert_eq!(started, (0..=4000).step_by(500).collect::<Vec<_>>());
        // With attempts piling up (none giving up), never more than three.
        let mut s = ProbeSchedule::default();
        let n = (0..40)
            .filter(|i| s.due(ms(i * 500), true, (*i as usize).min(MAX_PROBES)))
            .count();
        assert_eq!(n, MAX_PROBES);
    }

    #[test]
    fn websocket_url_follows_the_page_scheme() {
        let u = |s: &str| websocket_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(u("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(u("https://example.test/"), "wss://example.test/ws");
        assert_eq!(u("ws://h:1/ws"), "ws://h:1/ws");
        assert!(websocket_url(&Url::parse("ftp://x").unwrap()).is_err());
    }
}
