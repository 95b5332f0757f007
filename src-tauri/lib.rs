//! The desktop app's shell: starts an embedded signalling server (unless one
//! is configured), shares the screen through it, and pushes the session's
//! state to the webview as `host-status` events. Everything it does is a call
//! into the crates; nothing here needs testing without a window.
//!
//! Configuration, until the settings screen exists, comes from the environment:
//! `HOLDFAST_SIGNAL` (a server URL), `HOLDFAST_SERVE` (embedded server address,
//! default 127.0.0.1:8080, falling back to a free port), `HOLDFAST_ICE_BIND`
//! and `HOLDFAST_ALLOW_LOOPBACK=1` (for tests on one machine).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use holdfast_media::encode::EncoderSettings;
use holdfast_media::worker::MediaWorker;
use holdfast_media::ScreenSource;
use holdfast_peer::host::{self, HostConfig, RoomInfo};
use holdfast_peer::rtc::RtcOptions;
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
}

#[derive(Default)]
struct Shared(Mutex<HostStatus>);

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
    let mut config = HostConfig::new(signal_url);
    if let Ok(bind) = std::env::var("HOLDFAST_ICE_BIND") {
        let loopback = std::env::var("HOLDFAST_ALLOW_LOOPBACK").is_ok();
        config.rtc = RtcOptions {
            bind: vec![bind],
            allow_loopback: loopback,
            mdns: true,
        };
    }
    let handle = host::start(config, worker).await?;
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
        },
    );
    while stats.changed().await.is_ok() {
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
        .invoke_handler(tauri::generate_handler![host_status, report_rendered])
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
