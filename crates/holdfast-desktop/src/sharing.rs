//! Sharing this screen from the app: the embedded signalling server, the
//! capture-and-encode worker, input injection and the host, driven by the
//! shell's commands, with everything the host reports folded by
//! [`HostTracker`] into [`Update`]s for the webview.
//!
//! Runs headless (Xvfb is enough); the shell only forwards commands in and
//! updates out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use holdfast_input::InputWorker;
use holdfast_media::encode::EncoderSettings;
use holdfast_media::worker::MediaWorker;
use holdfast_peer::host::{self, ConsentPolicy, HostConfig, HostRemote};
use holdfast_peer::rate::RateConfig;
use holdfast_peer::rtc::RtcOptions;
use holdfast_proto::commands::DisplayDesc;
use holdfast_proto::signal::Decision;
use holdfast_screen::{Preference, Screen};
use holdfast_signal::{RunningServer, ServerConfig, TlsMode};
use serde::Serialize;
use tokio::sync::mpsc;
use url::Url;

use crate::host_state::{unix_ms, HostTracker, HostView, Notice};
use crate::settings::Settings;

/// How long stopping a host may take before the shell moves on.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the embedded server listens unless told otherwise (a free port if
/// taken): every address, over HTTPS with its own certificate, so a helper
/// on this network can open the link the host screen shows.
pub const DEFAULT_SERVE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8443);

/// Who can open the viewer link the host screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reach {
    /// Anyone on this computer's network: the embedded server at `address`.
    Network { address: String },
    /// Anyone who can reach the organisation's server set in Settings.
    Server { host: String },
    /// Only this computer (the embedded server listens on loopback, or the
    /// machine has no network address): not a link to send anyone.
    ThisComputer,
}

/// Where a share registers, and the link it gives viewers.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    /// Where the host connects (an embedded server: over loopback).
    pub url: Url,
    /// Trust roots for an `https://` server (None: the system's).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The base of the viewer link.
    pub viewer_base: Url,
    pub reach: Reach,
}

impl ServerTarget {
    /// The organisation's server: the host and viewers use the same address.
    pub fn remote(url: Url, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        ServerTarget {
            reach: Reach::Server {
                host: url.host_str().unwrap_or_default().to_owned(),
            },
            viewer_base: url.clone(),
            url,
            tls,
        }
    }
}

/// The address a viewer on this network would use: the first private IPv4
/// address, else any other routable one (never loopback or link-local).
pub fn network_address(addresses: &[IpAddr]) -> Option<IpAddr> {
    let usable = |a: &&IpAddr| match a {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(_) => false,
    };
    let private = |a: &&IpAddr| matches!(a, IpAddr::V4(v4) if v4.is_private());
    addresses
        .iter()
        .filter(usable)
        .find(private)
        .or_else(|| addresses.iter().find(usable))
        .copied()
}

/// Where the host reaches an embedded server bound to `bound`, the viewer
/// link's base, and who can open it, given the machine's `addresses`. Pure.
pub fn embedded_target(scheme: &str, bound: SocketAddr, addresses: &[IpAddr]) -> (Url, Url, Reach) {
    let at =
        |ip: IpAddr| Url::parse(&format!("{scheme}://{}/", SocketAddr::new(ip, bound.port()))).expect("a valid URL");
    let ip = bound.ip();
    if ip.is_loopback() {
        let u = at(ip);
        return (u.clone(), u, Reach::ThisComputer);
    }
    if !ip.is_unspecified() {
        let u = at(ip);
        return (
            u.clone(),
            u,
            Reach::Network {
                address: ip.to_string(),
            },
        );
    }
    let local = at(IpAddr::V4(Ipv4Addr::LOCALHOST));
    match network_address(addresses) {
        Some(addr) => (
            local,
            at(addr),
            Reach::Network {
                address: addr.to_string(),
            },
        ),
        None => (local.clone(), local, Reach::ThisComputer),
    }
}

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
    pub allow_loopback: bool,
    /// Where files from viewers land (None: refused).
    pub inbox: Option<std::path::PathBuf>,
    /// Unattended access (None: off): a viewer with the permanent password
    /// is admitted without asking. `unattended_status` is what the screen shows.
    pub unattended: Option<Arc<std::sync::Mutex<holdfast_peer::unattended::UnattendedAccess>>>,
    pub unattended_status: crate::unattended::UnattendedStatus,
}

/// The folder received files land in: `HOLDFAST_INBOX`, else the user's Downloads.
pub fn inbox_from_env() -> Option<std::path::PathBuf> {
    std::env::var_os("HOLDFAST_INBOX")
        .map(std::path::PathBuf::from)
        .or_else(holdfast_transfer::Inbox::default_path)
}

impl ShareOptions {
    /// `HOLDFAST_ICE_BIND`, `HOLDFAST_ALLOW_LOOPBACK=1` (tests on one machine)
    /// `HOLDFAST_ACCEPT=control|view|deny` (unattended use) and `HOLDFAST_INBOX`
    /// over the settings.
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
            inbox: inbox_from_env(),
            unattended: None,
            unattended_status: Default::default(),
        }
    }
}

/// The embedded signalling server, started once for the app's lifetime.
pub struct EmbeddedServer {
    /// Where the host connects, the link viewers get, and who can open it.
    pub target: ServerTarget,
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
    let addresses = holdfast_peer::netwatch::local_addresses();
    // A self-signed certificate names the addresses viewers will use.
    let tls_mode = |listen: SocketAddr| match TlsMode::default_for(&listen, tls_dir.clone()) {
        TlsMode::SelfSigned { dir, mut names } => {
            if listen.ip().is_unspecified() {
                names.extend(network_address(&addresses).map(|a| a.to_string()));
            }
            TlsMode::SelfSigned { dir, names }
        }
        other => other,
    };
    let config = |listen: SocketAddr| ServerConfig {
        listen,
        tls: tls_mode(listen),
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
    let scheme = if server.base_url.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let (url, viewer_base, reach) = embedded_target(scheme, server.addr, &addresses);
    tracing::info!(%url, %viewer_base, ?reach, "embedded server");
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
        target: ServerTarget {
            url,
            tls,
            viewer_base,
            reach,
        },
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
    /// The switches beside "allow control".
    SetFiles(bool),
    SetClipboard(bool),
    /// The person's answer to a file a viewer offers.
    DecideFile {
        peer_id: String,
        id: u32,
        accept: bool,
    },
    CancelTransfer {
        peer_id: String,
        id: u32,
    },
    /// A chat line to every viewer.
    Chat(String),
    /// Files dropped on the host screen, to every viewer (each viewer's
    /// person accepts them; a viewer without control gets none).
    SendFiles(Vec<PathBuf>),
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

/// The displays the app can share (none when the session has no backend:
/// sharing then says why).
pub fn displays() -> Vec<DisplayDesc> {
    holdfast_screen::list_displays(Preference::from_env())
        .map(|d| holdfast_screen::descs(&d))
        .unwrap_or_default()
}

/// Shares the screen until stopped or the session ends. Every change is sent
/// on `updates`; the result says why it ended.
pub async fn share(
    opts: ShareOptions,
    target: ServerTarget,
    updates: mpsc::UnboundedSender<Update>,
    mut commands: mpsc::UnboundedReceiver<ShareCommand>,
) -> Result<(), ShareError> {
    let s = &opts.settings;
    let grace = Duration::from_secs(s.grace_secs);
    let mut tracker = HostTracker::new(grace);
    tracker.set_reach(target.reach.clone());
    tracker.set_unattended(opts.unattended_status.clone());
    let signal_url = target.url.clone();
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

    // The quality setting is the most the encoder may spend; rate control
    // keeps it to what each viewer's path carries.
    let rate = RateConfig::up_to(s.quality.bitrate_kbps());
    let encoder = EncoderSettings {
        fps: s.fps,
        bitrate_kbps: rate.start_target_kbps(),
        ..EncoderSettings::default()
    };
    let display = opts.display as usize;
    let mut cannot_capture = |e: String| {
        send_notices(tracker.ended(format!("The screen cannot be captured: {e}")));
        send_view(&tracker);
        Err(ShareError::Capture(e))
    };
    // Opened here, and closed when sharing ends (on GNOME Wayland this is a
    // remote-desktop session of the compositor's).
    let screen = match Screen::open(Preference::from_env()) {
        Ok(s) => s,
        Err(e) => return cannot_capture(e.to_string()),
    };
    tracing::info!(backend = %screen.kind(), displays = ?screen.displays(), "screen");
    let displays = screen.display_descs();
    let worker = match MediaWorker::spawn_switchable(screen.capture_opener(), display, encoder) {
        Ok(w) => w,
        Err(e) => return cannot_capture(e.to_string()),
    };
    let input = match InputWorker::spawn(screen.injector_opener(), screen.geometry(display)) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("input injection unavailable (viewers can only watch): {e}");
            None
        }
    };
    let mut config = HostConfig::new(signal_url.clone());
    config.viewer_base = Some(target.viewer_base.clone());
    config.tls = target.tls.clone();
    config.fps = s.fps;
    config.consent = opts.consent;
    config.keepalive.interval = Duration::from_secs(s.keepalive_secs);
    config.grace = grace;
    config.rate = Some(rate);
    config.displays = displays;
    config.display_geometry = screen.displays().iter().map(|d| d.geometry).collect();
    config.current_display = opts.display;
    config.limits = holdfast_peer::backpressure::QueueLimits::for_bitrate(
        s.quality.bitrate_kbps(),
        holdfast_peer::backpressure::QUEUE_TARGET_LATENCY,
    );
    config.rtc = RtcOptions::bound_to(&opts.ice_bind, opts.allow_loopback);
    // Files from viewers land in Downloads after the person says yes; the
    // clipboard is this machine's (both behind the screen's switches).
    config.inbox = opts.inbox.clone();
    config.incoming_files = holdfast_peer::transfer::IncomingFiles::Ask;
    config.clipboard = Some(screen.clipboard_source());
    config.unattended = opts.unattended.clone();
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
                Some(ShareCommand::SetFiles(on)) => remote.set_files(on),
                Some(ShareCommand::SetClipboard(on)) => remote.set_clipboard(on),
                Some(ShareCommand::DecideFile { peer_id, id, accept }) => {
                    remote.decide_file(&peer_id, id, accept, holdfast_transfer::Collision::KeepBoth)
                }
                Some(ShareCommand::CancelTransfer { peer_id, id }) => remote.cancel_transfer(&peer_id, id),
                Some(ShareCommand::Chat(text)) => remote.chat(None, text),
                Some(ShareCommand::SendFiles(paths)) => {
                    for p in paths {
                        remote.send_file(None, p);
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn on_every_address_the_link_is_the_network_address_and_the_host_uses_loopback() {
        let bound: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let addrs = [
            ip("127.0.0.1"),
            ip("169.254.3.4"),
            ip("203.0.113.9"),
            ip("192.168.1.20"),
            ip("fe80::1"),
        ];
        let (url, base, reach) = embedded_target("https", bound, &addrs);
        assert_eq!(url.as_str(), "https://127.0.0.1:8443/");
        assert_eq!(base.as_str(), "https://192.168.1.20:8443/", "a private address first");
        assert_eq!(
            reach,
            Reach::Network {
                address: "192.168.1.20".into()
            }
        );
        let (_, base, _) = embedded_target("https", bound, &[ip("203.0.113.9")]);
        assert_eq!(base.as_str(), "https://203.0.113.9:8443/");
    }

    #[test]
    fn a_loopback_link_is_never_called_reachable() {
        let (url, base, reach) = embedded_target("http", "127.0.0.1:8080".parse().unwrap(), &[ip("10.0.0.2")]);
        assert_eq!(
            (url.as_str(), base.as_str()),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/")
        );
        assert_eq!(reach, Reach::ThisComputer);
        // Every address, but no network: only this computer.
        let (_, base, reach) = embedded_target("https", "0.0.0.0:8443".parse().unwrap(), &[ip("127.0.0.1"), ip("::1")]);
        assert_eq!(base.as_str(), "https://127.0.0.1:8443/");
        assert_eq!(reach, Reach::ThisComputer);
        // One address named: that one.
        let (url, _, reach) = embedded_target("https", "10.0.0.2:8443".parse().unwrap(), &[]);
        assert_eq!(url.as_str(), "https://10.0.0.2:8443/");
        assert_eq!(
            reach,
            Reach::Network {
                address: "10.0.0.2".into()
            }
        );
    }

    /// The host screen (ui/src/hostview.ts) reads these as the core writes them.
    #[test]
    fn reach_vectors_match_the_committed_file() {
        holdfast_proto::check_vectors(
            "reach.json",
            serde_json::json!({
                "about": "Written by holdfast-desktop (sharing.rs), checked by ui/src/hostview.test.ts.",
                "reach": [
                    Reach::Network { address: "192.168.1.20".into() },
                    Reach::Server { host: "support.example.com".into() },
                    Reach::ThisComputer,
                ],
                "shareable": [true, true, false],
            }),
        );
    }
}
