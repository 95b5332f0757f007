//! The desktop app's shell: starts an embedded signalling server (unless one
//! is configured), shares the screen through it, and pushes the session's
//! state to the webview as `host-status` events. Everything it does is a call
//! into the crates; nothing here needs testing without a window.
//!
//! Configuration, until the settings screen exists, comes from the environment:
//! `HOLDFAST_SIGNAL` (a server URL), `HOLDFAST_SERVE` (embedded server address,
//! default 127.0.0.1:8080, falling back to a free port), `HOLDFAST_ICE_BIND`
//! and `HOLDFAST_ALLOW_LOOPBACK=1` (for tests on one machine), and
//! `HOLDFAST_ACCEPT=control|view|deny` for unattended use (otherwise each
//! viewer's request is shown as a `join-request` event and answered with the
//! `answer_join` command; silence for 30 s means deny).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use holdfast_input::{DisplayGeometry, EnigoInjector, InputWorker};
use holdfast_media::encode::EncoderSettings;
use holdfast_media::worker::MediaWorker;
use holdfast_media::ScreenSource;
use holdfast_peer::host::{self, ConsentPolicy, HostConfig, HostEvent, HostRemote, RoomInfo};
use holdfast_peer::rtc::RtcOptions;
use holdfast_proto::signal::Decision;
use holdfast_signal::{ServerConfig, TlsMode};
use serde::Serialize;
use tauri::{Emitter, Manager};

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStatus {
    /// waiting (no viewer), connecting, connected, failed, error
    pub state: String,
    pub room: Option<RoomInfo>,
    pub viewers: usize,
    pub error: Option<String>,
    /// False when the host's view-only switch is on.
    pub control_enabled: bool,
}

/// A viewer waiting for the user's decision.
#[derive(Debug, Clone, Serialize)]
pub struct JoinRequest {
    pub peer_id: String,
    pub address: String,
    pub timeout_ms: u64,
}

#[derive(Default)]
struct Shared(Mutex<HostStatus>);

#[derive(Default)]
struct Remote(Mutex<Option<HostRemote>>);

fn decision(s: &str) -> Option<Decision> {
    match s {
        "control" => Some(Decision::Control),
        "view" => Some(Decision::View),
        "deny" => Some(Decision::Deny),
        _ => None,
    }
}

/// The user's answer to a `join-request`: `control`, `view` or `deny`.
#[tauri::command]
fn answer_join(remote: tauri::State<'_, Remote>, peer_id: String, answer: String) -> Result<(), String> {
    let d = decision(&answer).ok_or_else(|| format!("unknown answer `{answer}`"))?;
    let r = remote.0.lock().expect("remote lock");
    r.as_ref().ok_or("not sharing")?.consent(&peer_id, d);
    Ok(())
}

/// The host's view-only switch (`enabled: false` ignores viewers' input).
#[tauri::command]
fn set_control(remote: tauri::State<'_, Remote>, enabled: bool) -> Result<(), String> {
    let r = remote.0.lock().expect("remote lock");
    r.as_ref().ok_or("not sharing")?.set_control(enabled);
    Ok(())
}

fn publish(app: &tauri::AppHandle, status: HostStatus) {
    *app.state::<Shared>().0.lock().expect("status lock") = status.clone();
    let _ = app.emit("host-status", status);
}

#[tauri::command]
fn host_status(state: tauri::State<'_, Shared>) -> HostStatus {
    state.0.lock().expect("status lock").clone()
}

/// Test hook: the page reports the text it shows, written to `HOLDFAST_RENDER_REPORT`.
#[tauri::command]
fn report_rendered(text: String) {
    if let Ok(path) = std::env::var("HOLDFAST_RENDER_REPORT") {
        let _ = std::fs::write(path, text);
    }
}

async fn share_screen(app: tauri::AppHandle) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let signal_url = match std::env::var("HOLDFAST_SIGNAL") {
        Ok(url) => url::Url::parse(&url)?,
        Err(_) => {
            let listen: SocketAddr = std::env::var("HOLDFAST_SERVE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
            let config = |listen: SocketAddr| ServerConfig {
                listen,
                tls: TlsMode::default_for(&listen, PathBuf::from("holdfast-tls")),
                ui_dir: holdfast_signal::server::default_ui_dir(),
                ice_servers: Vec::new(),
                ..ServerConfig::loopback(0)
            };
            let server = match holdfast_signal::spawn(config(listen)).await {
                Ok(s) => s,
                Err(_) => holdfast_signal::spawn(config(SocketAddr::new(listen.ip(), 0))).await?,
            };
            let url = url::Url::parse(&server.base_url)?;
            std::mem::forget(server); // serves for the app's lifetime
            url
        }
    };
    let worker = MediaWorker::spawn(|| ScreenSource::open(0), EncoderSettings::default())?;
    let input = match InputWorker::spawn(|| EnigoInjector::new(None), DisplayGeometry::of_display(0)) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("input injection unavailable (viewers can only watch): {e}");
            None
        }
    };
    let mut config = HostConfig::new(signal_url);
    if let Some(d) = std::env::var("HOLDFAST_ACCEPT").ok().as_deref().and_then(decision) {
        config.consent = ConsentPolicy::Always(d);
    }
    if let Ok(bind) = std::env::var("HOLDFAST_ICE_BIND") {
        let loopback = std::env::var("HOLDFAST_ALLOW_LOOPBACK").is_ok();
        config.rtc = RtcOptions {
            bind: vec![bind],
            allow_loopback: loopback,
            mdns: true,
        };
    }
    let mut handle = host::start(config, worker, input).await?;
    *app.state::<Remote>().0.lock().expect("remote lock") = Some(handle.remote());
    // For scripts and tests, as holdfast-host does.
    println!("{}", serde_json::to_string(&handle.room)?);
    let room = handle.room.clone();
    let mut stats = handle.stats.clone();
    publish(
        &app,
        HostStatus {
            state: "waiting".into(),
            room: Some(room.clone()),
            viewers: 0,
            error: None,
            control_enabled: true,
        },
    );
    loop {
        tokio::select! {
            changed = stats.changed() => if changed.is_err() { break },
            Some(ev) = handle.events.recv() => {
                match ev {
                    HostEvent::JoinRequest { peer_id, address, timeout } => {
                        let _ = app.emit("join-request", JoinRequest {
                            peer_id, address, timeout_ms: timeout.as_millis() as u64,
                        });
                    }
                    HostEvent::JoinAnswered { peer_id, .. } => { let _ = app.emit("join-answered", peer_id); }
                    _ => {}
                }
                continue;
            }
        }
        let s = stats.borrow_and_update().clone();
        let state = if s.viewers.iter().any(|v| v.state == "connected") {
            "connected"
        } else if s.viewers.is_empty() {
            "waiting"
        } else {
            "connecting"
        };
        publish(
            &app,
            HostStatus {
                state: state.into(),
                room: Some(room.clone()),
                viewers: s.viewers.len(),
                error: None,
                control_enabled: s.control_enabled,
            },
        );
    }
    Ok(())
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("HOLDFAST_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    tauri::Builder::default()
        .manage(Shared::default())
        .manage(Remote::default())
        .invoke_handler(tauri::generate_handler![
            host_status,
            report_rendered,
            answer_join,
            set_control
        ])
        .setup(|app| {
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = share_screen(handle.clone()).await {
                    tracing::error!("sharing failed: {e:#}");
                    publish(
                        &handle,
                        HostStatus {
                            state: "error".into(),
                            error: Some(format!("{e:#}")),
                            ..Default::default()
                        },
                    );
                }
            });
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("error while running the Holdfast app");
}
