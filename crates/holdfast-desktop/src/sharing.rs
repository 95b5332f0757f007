//! Sharing this screen from the app: the embedded signalling server, the
//! capture-and-encode worker, input injection and the host, driven by the
//! shell's commands, with everything the host reports folded by
//! [`HostTracker`] into [`Update`]s for the webview.
//!
//! Runs headless (Xvfb is enough); the shell only forwards commands in and
//! updates out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use holdfast_input::{DisplayGeometry, EnigoInjector, InputWorker};
use holdfast_media::encode::EncoderSettings;
use holdfast_media::worker::MediaWorker;
use holdfast_media::ScreenSource;
use holdfast_peer::host::{self, ConsentPolicy, HostConfig, HostRemote};
use holdfast_peer::rtc::RtcOptions;
use holdfast_proto::commands::DisplayDesc;
use holdfast_proto::signal::Decision;
use holdfast_signal::{RunningServer, ServerConfig, TlsMode};
use serde::Serialize;
use tokio::sync::mpsc;
use url::Url;

use crate::host_state::{unix_ms, HostTracker, HostView, Notice};
use crate::settings::Settings;

/// How long stopping a host may take before the shell moves on.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the embedded server listens unless told otherwise; a free port if taken.
pub const DEFAULT_SERVE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("the signalling server could not start: {0}")]
    Server(String),
    #[error("the screen cannot be captured: {0}")]
    Capture(String),
    #[error("could not open a room on {url}: {reason}")]
    Register { url: String, reason: String },
}

/// What the shell passes in, from the settings and (for tests and unattended
/// machines) the environment.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    pub settings: Settings,
    pub display: u32,
    pub consent: ConsentPolicy,
    /// Local UDP addresses for WebRTC; empty: every interface.
    pub ice_bind: Vec<String>,
    /// Trust roots for an `https://` server (None: the system's).
    pub signal_tls: Option<Arc<rustls::ClientConfig>>,
    pub allow_loopback: bool,
}

impl ShareOptions {
    /// `HOLDFAST_ICE_BIND`, `HOLDFAST_ALLOW_LOOPBACK=1` (tests on one machine)
    /// and `HOLDFAST_ACCEPT=control|view|deny` (unattended use) over the settings.
    pub fn from_env(settings: Settings) -> Self {
        let consent = match std::env::var("HOLDFAST_ACCEPT").as_deref() {
            Ok("control") => ConsentPolicy::Always(Decision::Control),
            Ok("view") => ConsentPolicy::Always(Decision::View),
            Ok("deny") => ConsentPolicy::Always(Decision::Deny),
            _ => ConsentPolicy::Ask,
        };
        ShareOptions {
            settings,
            display: 0,
            consent,
            ice_bind: std::env::var("HOLDFAST_ICE_BIND").map(|b| vec![b]).unwrap_or_default(),
            allow_loopback: std::env::var("HOLDFAST_ALLOW_LOOPBACK").is_ok_and(|v| v == "1"),
            signal_tls: None,
        }
    }
}

/// The embedded signalling server, started once for the app's lifetime.
pub struct EmbeddedServer {
    pub url: Url,
    /// Trusts the server's own self-signed certificate (when it serves HTTPS).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    _server: RunningServer,
}

/// Starts the embedded server on `listen` (a free port on the same address if
/// that one is taken), with the settings' ICE servers and grace window.
pub async fn embedded_server(
    settings: &Settings,
    listen: SocketAddr,
    tls_dir: PathBuf,
    ui_dir: Option<PathBuf>,
) -> Result<EmbeddedServer, ShareError> {
    let config = |listen: SocketAddr| ServerConfig {
        listen,
        tls: TlsMode::default_for(&listen, tls_dir.clone()),
        ui_dir: ui_dir.clone(),
        ice_servers: settings.ice_servers(),
        grace: Duration::from_secs(settings.grace_secs),
        ..ServerConfig::loopback(0)
    };
    let server = match holdfast_signal::spawn(config(listen)).await {
        Ok(s) => s,
        Err(first) => {
            tracing::info!(%listen, "embedded server address taken ({first}); using a free port");
            holdfast_signal::spawn(config(SocketAddr::new(listen.ip(), 0)))
                .await
                .map_err(|e| ShareError::Server(format!("{e:#}")))?
        }
    };
    let url = Url::parse(&server.base_url).map_err(|e| ShareError::Server(e.to_string()))?;
    // Off loopback it serves HTTPS with a certificate it made itself: the host
    // side of this app trusts exactly that one.
    let tls = match TlsMode::default_for(&server.addr, tls_dir.clone()) {
        TlsMode::SelfSigned { dir, .. } => Some(
            holdfast_peer::signal_client::tls_config_with_ca(&dir.join("cert.pem"))
                .map_err(|e| ShareError::Server(e.to_string()))?,
        ),
        _ => None,
    };
    Ok(EmbeddedServer {
        url,
        tls,
        _server: server,
    })
}

/// What the shell asks of a running share.
#[derive(Debug, Clone)]
pub enum ShareCommand {
    Consent {
        peer_id: String,
        decision: Decision,
    },
    SetControl(bool),
    SelectDisplay(u32),
    /// The reconnect button: retry signalling now and restart ICE with every
    /// viewer whose connection is down.
    Reconnect,
    /// Remove one viewer: its input stops now, its token is revoked.
    Kick {
        peer_id: String,
    },
    Stop,
}

/// What the webview is told.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Update {
    View(HostView),
    Notice(Notice),
    /// A join request was answered (here, by policy or by its timeout): close its dialog.
    JoinAnswered {
        peer_id: String,
    },
}

/// The displays the app can share.
pub fn displays() -> Vec<DisplayDesc> {
    host::shareable_displays()
}

/// Shares the screen until stopped or the session ends. Every change is sent
/// on `updates`; the result says why it ended.
pub async fn share(
    opts: ShareOptions,
    signal_url: Url,
    updates: mpsc::UnboundedSender<Update>,
    mut commands: mpsc::UnboundedReceiver<ShareCommand>,
) -> Result<(), ShareError> {
    let s = &opts.settings;
    let grace = Duration::from_secs(s.grace_secs);
    let mut tracker = HostTracker::new(grace);
    // Statistics change with every frame; the webview hears only real changes.
    let last_sent = std::sync::Mutex::new(None::<HostView>);
    let send_view = |t: &HostTracker| {
        let mut last = last_sent.lock().expect("last view lock");
        if last.as_ref() != Some(t.view()) {
            *last = Some(t.view().clone());
            let _ = updates.send(Update::View(t.view().clone()));
        }
    };
    let send_notices = |n: Vec<Notice>| {
        for n in n {
            let _ = updates.send(Update::Notice(n));
        }
    };
    send_view(&tracker);

    let encoder = EncoderSettings {
        fps: s.fps,
        bitrate_kbps: s.quality.bitrate_kbps(),
        ..EncoderSettings::default()
    };
    let displays = displays();
    let display = opts.display as usize;
    let worker = match MediaWorker::spawn_switchable(ScreenSource::open, display, encoder) {
        Ok(w) => w,
        Err(e) => {
            send_notices(tracker.ended(format!("The screen cannot be captured: {e}")));
            send_view(&tracker);
            return Err(ShareError::Capture(e.to_string()));
        }
    };
    let input = match InputWorker::spawn(|| EnigoInjector::new(None), DisplayGeometry::of_display(display)) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("input injection unavailable (viewers can only watch): {e}");
            None
        }
    };
    let mut config = HostConfig::new(signal_url.clone());
    config.tls = opts.signal_tls.clone();
    config.fps = s.fps;
    config.consent = opts.consent;
    config.keepalive.interval = Duration::from_secs(s.keepalive_secs);
    config.grace = grace;
    config.displays = displays;
    config.current_display = opts.display;
    config.limits = holdfast_peer::backpressure::QueueLimits::for_bitrate(
        encoder.bitrate_kbps,
        holdfast_peer::backpressure::QUEUE_TARGET_LATENCY,
    );
    config.rtc = RtcOptions::bound_to(&opts.ice_bind, opts.allow_loopback);
    let mut handle = host::start(config, worker, input).await.map_err(|e| {
        let reason = e.to_string();
        send_notices(tracker.ended(format!("Could not open a room: {reason}")));
        send_view(&tracker);
        ShareError::Register {
            url: signal_url.to_string(),
            reason,
        }
    })?;
    tracing::info!(room = %handle.room.id, "sharing");
    tracker.started(handle.room.clone());
    send_view(&tracker);

    let remote: HostRemote = handle.remote();
    let mut events = std::mem::replace(&mut handle.events, mpsc::unbounded_channel().1);
    let mut stats = handle.stats.clone();
    let mut stats_open = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            r = handle.finished() => {
                let message = match &r {
                    Ok(()) => "Sharing stopped.".to_owned(),
                    Err(e) => format!("The session ended: {e}"),
                };
                send_notices(tracker.ended(message));
                send_view(&tracker);
                return Ok(());
            }
            Some(ev) = events.recv() => {
                if let holdfast_peer::host::HostEvent::JoinAnswered { peer_id, .. } = &ev {
                    let _ = updates.send(Update::JoinAnswered { peer_id: peer_id.clone() });
                }
                send_notices(tracker.on_event(&ev, unix_ms()));
                send_view(&tracker);
            }
            changed = stats.changed(), if stats_open => {
                if changed.is_err() {
                    stats_open = false;
                    continue;
                }
                let st = stats.borrow_and_update().clone();
                send_notices(tracker.on_stats(&st, unix_ms()));
                send_view(&tracker);
            }
            _ = tick.tick() => {
                send_notices(tracker.tick(unix_ms()));
                if tracker.view().phase == crate::host_state::Phase::Ended {
                    // The grace window ran out: the session is over.
                    send_view(&tracker);
                    stop(handle).await;
                    return Ok(());
                }
            }
            cmd = commands.recv() => match cmd {
                Some(ShareCommand::Consent { peer_id, decision }) => remote.consent(&peer_id, decision),
                Some(ShareCommand::SetControl(on)) => remote.set_control(on),
                Some(ShareCommand::SelectDisplay(i)) => remote.select_display(i),
                // Signalling now, and an ICE restart for every viewer not connected.
                Some(ShareCommand::Reconnect) => remote.reconnect(),
                Some(ShareCommand::Kick { peer_id }) => remote.kick(&peer_id),
                Some(ShareCommand::Stop) | None => {
                    stop(handle).await;
                    tracker.stopped();
                    send_view(&tracker);
                    return Ok(());
                }
            },
        }
    }
}

/// Stops the host, giving up after [`STOP_TIMEOUT`] (closing a peer connection
/// over a dead path must not keep the next session from starting).
async fn stop(handle: host::HostHandle) {
    if tokio::time::timeout(STOP_TIMEOUT, handle.stop()).await.is_err() {
        tracing::warn!("the host did not stop within {STOP_TIMEOUT:?}; left to finish in the background");
    }
}
