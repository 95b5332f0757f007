//! The desktop app's shell. It owns the window, the tray icon and the
//! single-instance lock, and moves things between the webview and
//! `holdfast-desktop`, where the work is done: settings and logs at start,
//! commands in (`invoke`), [`Update`]s out (the `update` event) while sharing,
//! [`ViewUpdate`]s out (the `view-update` event, frames on the connecting
//! call's binary channel) while viewing. Nothing here decides anything a
//! test without a window would need to check.
//!
//! For tests and unattended machines the environment can override:
//! `HOLDFAST_SERVE` (embedded server address, default 127.0.0.1:8080),
//! `HOLDFAST_ICE_BIND`, `HOLDFAST_ALLOW_LOOPBACK=1`, `HOLDFAST_ACCEPT`
//! (`control|view|deny` instead of asking), `HOLDFAST_LOG` (a log filter),
//! `HOLDFAST_SIGNAL_CA` (a PEM file of trust roots for a remote server).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use holdfast_desktop::host_state::{unix_ms, HostView, Phase};
use holdfast_desktop::logs;
use holdfast_desktop::settings::{Settings, SettingsStore};
use holdfast_desktop::sharing::{
    self, EmbeddedServer, ServerTarget, ShareCommand, ShareOptions, Update, DEFAULT_SERVE,
};
use holdfast_desktop::unattended::{Enrolment, UnattendedStatus, UnattendedStore};
use holdfast_desktop::viewing::{self, Decode, ViewCommand, ViewOptions, ViewRequest, ViewUpdate};
use holdfast_proto::commands::DisplayDesc;
use holdfast_proto::signal::Decision;
use serde::Serialize;
use tauri::ipc::{Channel, InvokeResponseBody};
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::mpsc;

struct App {
    store: Option<SettingsStore>,
    settings: Mutex<Settings>,
    /// Why the saved settings could not be used, shown on the settings screen.
    settings_problem: Option<String>,
    device_id: String,
    log_dir: Option<PathBuf>,
    /// The running share's commands, tagged with its generation (a finished
    /// share must not clear its successor's).
    share: Mutex<Option<(u64, mpsc::UnboundedSender<ShareCommand>)>>,
    share_generation: std::sync::atomic::AtomicU64,
    last_view: Mutex<Option<HostView>>,
    server: tokio::sync::Mutex<Option<EmbeddedServer>>,
    /// The viewer screen's running view, if any.
    viewing: Mutex<Option<mpsc::UnboundedSender<ViewCommand>>>,
    /// Unattended access's settings, beside the others.
    unattended: Option<UnattendedStore>,
}

type State<'a> = tauri::State<'a, App>;

/// Sends `cmd` to a running share or view; `idle` says why not when there is none.
fn send<T>(to: Option<&mpsc::UnboundedSender<T>>, cmd: T, idle: &str) -> Result<(), String> {
    to.ok_or(idle)?.send(cmd).map_err(|_| idle.to_owned())
}

fn command(state: &State<'_>, cmd: ShareCommand) -> Result<(), String> {
    send(
        state.share.lock().expect("share lock").as_ref().map(|(_, tx)| tx),
        cmd,
        "not sharing",
    )
}

#[tauri::command]
fn host_view(state: State<'_>) -> Option<HostView> {
    state.last_view.lock().expect("view lock").clone()
}

/// The person's answer to a join request: `control`, `view` or `deny`.
#[tauri::command]
fn answer_join(state: State<'_>, peer_id: String, answer: String) -> Result<(), String> {
    let decision = match answer.as_str() {
        "control" => Decision::Control,
        "view" => Decision::View,
        "deny" => Decision::Deny,
        _ => return Err(format!("unknown answer `{answer}`")),
    };
    command(&state, ShareCommand::Consent { peer_id, decision })
}

/// The host's view-only switch (`enabled: false` ignores viewers' input).
#[tauri::command]
fn set_control(state: State<'_>, enabled: bool) -> Result<(), String> {
    command(&state, ShareCommand::SetControl(enabled))
}

#[tauri::command]
fn select_display(state: State<'_>, index: u32) -> Result<(), String> {
    command(&state, ShareCommand::SelectDisplay(index))
}

#[tauri::command]
fn displays() -> Vec<DisplayDesc> {
    sharing::displays()
}

/// The reconnect button.
#[tauri::command]
fn reconnect(state: State<'_>) -> Result<(), String> {
    command(&state, ShareCommand::Reconnect)
}

/// Removes one viewer (its input stops now; its session token is revoked).
#[tauri::command]
fn kick_viewer(state: State<'_>, peer_id: String) -> Result<(), String> {
    command(&state, ShareCommand::Kick { peer_id })
}

/// The host's switches beside "allow control".
#[tauri::command]
fn set_files(state: State<'_>, enabled: bool) -> Result<(), String> {
    command(&state, ShareCommand::SetFiles(enabled))
}

#[tauri::command]
fn set_clipboard(state: State<'_>, enabled: bool) -> Result<(), String> {
    command(&state, ShareCommand::SetClipboard(enabled))
}

/// The host's answer to a file a viewer offers.
#[tauri::command]
fn decide_file(state: State<'_>, peer_id: String, id: u32, accept: bool) -> Result<(), String> {
    command(&state, ShareCommand::DecideFile { peer_id, id, accept })
}

#[tauri::command]
fn cancel_transfer(state: State<'_>, peer_id: String, id: u32) -> Result<(), String> {
    command(&state, ShareCommand::CancelTransfer { peer_id, id })
}

/// Files dropped on the host screen, sent to every viewer.
#[tauri::command]
fn host_send_files(state: State<'_>, paths: Vec<PathBuf>) -> Result<(), String> {
    command(&state, ShareCommand::SendFiles(paths))
}

/// A chat line from the host screen to every viewer.
#[tauri::command]
fn host_chat(state: State<'_>, text: String) -> Result<(), String> {
    command(&state, ShareCommand::Chat(text))
}

#[tauri::command]
fn stop_sharing(state: State<'_>) -> Result<(), String> {
    command(&state, ShareCommand::Stop)
}

/// Opens a new room (after the last one ended or was stopped).
#[tauri::command]
fn start_sharing(app: AppHandle) -> Result<(), String> {
    let state = app.state::<App>();
    let over = state
        .last_view
        .lock()
        .expect("view lock")
        .as_ref()
        .is_none_or(|v| v.phase == Phase::Ended || v.recovery.grace_deadline_ms.is_some_and(|d| d <= unix_ms()));
    {
        let mut share = state.share.lock().expect("share lock");
        if share.is_some() && !over {
            return Err("already sharing".into());
        }
        // Over but still winding down (stopping the host): let it finish alone.
        if let Some((_, old)) = share.take() {
            let _ = old.send(ShareCommand::Stop);
        }
    }
    spawn_sharing(app.clone());
    Ok(())
}

fn view_command(state: &State<'_>, cmd: ViewCommand) -> Result<(), String> {
    send(state.viewing.lock().expect("viewing lock").as_ref(), cmd, "not viewing")
}

/// The viewer screen connects to another machine. `server` is its signalling
/// server (default: the settings' URL, else this app's own); `decode` is
/// `webview` (WebCodecs) or `rust` (OpenH264 here). Frames come on `frames`
/// as binary messages, everything else as `view-update` events.
/// What the viewer screen's form proves itself with: the code, or (for an
/// unattended computer) the permanent password and maybe a one-time code.
#[derive(serde::Deserialize)]
struct JoinWith {
    code: String,
    password: Option<String>,
    totp: Option<String>,
}

#[tauri::command]
async fn view_connect(
    app: AppHandle,
    id: String,
    join: JoinWith,
    server: Option<String>,
    decode: String,
    frames: Channel<InvokeResponseBody>,
) -> Result<(), String> {
    let JoinWith { code, password, totp } = join;
    let password = password.filter(|p| !p.is_empty()).map(zeroize::Zeroizing::new);
    let decode = match decode.as_str() {
        "webview" => Decode::Webview,
        "rust" => Decode::Rust,
        other => return Err(format!("unknown decoder `{other}`")),
    };
    let state = app.state::<App>();
    let settings = state.settings.lock().expect("settings lock").clone();
    let server = server
        .filter(|s| !s.trim().is_empty())
        .or_else(|| settings.signal_url.clone());
    let (signal_url, tls) = match server {
        Some(s) => holdfast_desktop::settings::remote_server(&s)?,
        None => {
            let server = state.server.lock().await;
            let s = server.as_ref().ok_or("no server: enter the host's server address")?;
            (s.target.url.clone(), s.target.tls.clone())
        }
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    if let Some(old) = state.viewing.lock().expect("viewing lock").replace(cmd_tx.clone()) {
        let _ = old.send(ViewCommand::Leave);
    }
    let (up_tx, mut up_rx) = mpsc::unbounded_channel::<ViewUpdate>();
    // Frames wait in a short queue; the viewer drops what the webview cannot take.
    let (frame_tx, mut frame_rx) = mpsc::channel::<Vec<u8>>(viewing::FRAME_QUEUE);
    let forward = {
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            while let Some(u) = up_rx.recv().await {
                let _ = app.emit("view-update", &u);
            }
        })
    };
    tauri::async_runtime::spawn(async move {
        while let Some(bytes) = frame_rx.recv().await {
            if frames.send(InvokeResponseBody::Raw(bytes)).is_err() {
                break;
            }
        }
    });
    let opts = ViewOptions {
        settings,
        ice_bind: std::env::var("HOLDFAST_ICE_BIND").map(|b| vec![b]).unwrap_or_default(),
        allow_loopback: std::env::var("HOLDFAST_ALLOW_LOOPBACK").is_ok_and(|v| v == "1"),
        signal_tls: tls,
        inbox: holdfast_desktop::sharing::inbox_from_env(),
        clipboard: true,
    };
    let req = ViewRequest {
        signal_url,
        id,
        code,
        password,
        totp,
        decode,
    };
    tauri::async_runtime::spawn(async move {
        if let Err(e) = viewing::view(opts, req, up_tx, frame_tx, cmd_rx).await {
            tracing::info!("viewing ended: {e}");
        }
        let _ = forward.await;
        let state = app.state::<App>();
        let mut viewing = state.viewing.lock().expect("viewing lock");
        if viewing.as_ref().is_some_and(|c| c.same_channel(&cmd_tx)) {
            *viewing = None;
        }
    });
    Ok(())
}

/// An input message from the viewer screen (the browser viewer's JSON).
#[tauri::command]
fn view_input(state: State<'_>, json: String) -> Result<(), String> {
    view_command(&state, ViewCommand::Input(json))
}

#[tauri::command]
fn view_only(state: State<'_>, on: bool) -> Result<(), String> {
    view_command(&state, ViewCommand::ViewOnly(on))
}

#[tauri::command]
fn view_keyframe(state: State<'_>) -> Result<(), String> {
    view_command(&state, ViewCommand::Keyframe)
}

/// The webview drew a frame: acknowledged to the host (capture-to-screen figure).
#[tauri::command]
fn view_shown(state: State<'_>, frame: u32, after_ms: u32) -> Result<(), String> {
    view_command(&state, ViewCommand::Shown { frame, after_ms })
}

/// The viewer screen's reconnect button.
#[tauri::command]
fn view_reconnect(state: State<'_>) -> Result<(), String> {
    view_command(&state, ViewCommand::Reconnect)
}

#[tauri::command]
fn view_chat(state: State<'_>, text: String) -> Result<(), String> {
    view_command(&state, ViewCommand::Chat(text))
}

/// Files dropped on the viewer window, sent to the host (which asks its person).
#[tauri::command]
fn view_send_files(state: State<'_>, paths: Vec<PathBuf>) -> Result<(), String> {
    for p in paths {
        view_command(&state, ViewCommand::SendFile(p))?;
    }
    Ok(())
}

#[tauri::command]
fn view_decide_file(state: State<'_>, id: u32, accept: bool) -> Result<(), String> {
    view_command(&state, ViewCommand::DecideFile { id, accept })
}

#[tauri::command]
fn view_cancel_transfer(state: State<'_>, id: u32) -> Result<(), String> {
    view_command(&state, ViewCommand::CancelTransfer(id))
}

#[tauri::command]
fn view_leave(state: State<'_>) -> Result<(), String> {
    view_command(&state, ViewCommand::Leave)
}

#[tauri::command]
fn unattended_status(state: State<'_>) -> UnattendedStatus {
    state
        .unattended
        .as_ref()
        .map(UnattendedStore::status)
        .unwrap_or_default()
}

/// Turns unattended access on (or sets a new password), then opens a new
/// room with it; returns the second factor's enrolment when it was asked for.
#[tauri::command]
fn enable_unattended(
    app: AppHandle,
    password: String,
    again: String,
    totp: bool,
    control: bool,
) -> Result<Option<Enrolment>, String> {
    let (password, again) = (zeroize::Zeroizing::new(password), zeroize::Zeroizing::new(again));
    let state = app.state::<App>();
    let store = state.unattended.as_ref().ok_or("no config directory")?;
    let enrolment = store
        .enable(&password, &again, totp, control)
        .map_err(|e| e.to_string())?;
    tracing::info!(totp, control, "unattended access turned on");
    restart_sharing(&app);
    Ok(enrolment)
}

#[tauri::command]
fn disable_unattended(app: AppHandle) -> Result<(), String> {
    let state = app.state::<App>();
    let store = state.unattended.as_ref().ok_or("no config directory")?;
    store.disable().map_err(|e| e.to_string())?;
    tracing::info!("unattended access turned off");
    restart_sharing(&app);
    Ok(())
}

/// Whether `code` is what the authenticator app should show now (enrolment check).
#[tauri::command]
fn check_totp(state: State<'_>, code: String) -> bool {
    let now = holdfast_desktop::unattended::unix_now();
    state
        .unattended
        .as_ref()
        .is_some_and(|s| s.check_code(code.trim(), now))
}

/// Start with the desktop session (the XDG autostart entry), hidden.
#[tauri::command]
fn set_autostart(state: State<'_>, on: bool) -> Result<(), String> {
    let store = state.unattended.as_ref().ok_or("no config directory")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    store
        .set_autostart(on, &exe.to_string_lossy())
        .map_err(|e| e.to_string())
}

/// Stops the running share, if any, and opens a new room with today's settings.
fn restart_sharing(app: &AppHandle) {
    if let Some((_, old)) = app.state::<App>().share.lock().expect("share lock").take() {
        let _ = old.send(ShareCommand::Stop);
    }
    spawn_sharing(app.clone());
}

#[derive(Serialize)]
struct SettingsReply {
    settings: Settings,
    problem: Option<String>,
    device_id: String,
    config_file: Option<String>,
    log_dir: Option<String>,
}

#[tauri::command]
fn get_settings(state: State<'_>) -> SettingsReply {
    SettingsReply {
        settings: state.settings.lock().expect("settings lock").clone(),
        problem: state.settings_problem.clone(),
        device_id: state.device_id.clone(),
        config_file: state.store.as_ref().map(|s| s.path().display().to_string()),
        log_dir: state.log_dir.as_ref().map(|d| d.display().to_string()),
    }
}

/// Validates and saves; they apply to the next room (and the log level at the next start).
#[tauri::command]
fn save_settings(state: State<'_>, json: String) -> Result<(), String> {
    let settings = Settings::from_json(&json).map_err(|e| e.to_string())?;
    let store = state.store.as_ref().ok_or("no config directory")?;
    store.save(&settings).map_err(|e| e.to_string())?;
    tracing::info!("settings saved");
    *state.settings.lock().expect("settings lock") = settings;
    Ok(())
}

#[tauri::command]
fn open_logs_folder(state: State<'_>) -> Result<(), String> {
    let dir = state.log_dir.as_ref().ok_or("no log folder")?;
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(dir)
        .spawn()
        .map(drop)
        .map_err(|e| format!("could not open {}: {e}", dir.display()))
}

fn emit(app: &AppHandle, update: &Update) {
    if let Update::View(v) = update {
        *app.state::<App>().last_view.lock().expect("view lock") = Some(v.clone());
        if let Some(tray) = app.tray_by_id("main") {
            let phase = serde_json::to_value(v.phase).ok();
            let phase = phase.as_ref().and_then(|p| p.as_str()).unwrap_or("?");
            let _ = tray.set_tooltip(Some(format!("Holdfast: {phase}")));
        }
    }
    let _ = app.emit("update", update);
}

/// Starts the embedded server if needed, then shares until the room ends.
fn spawn_sharing(app: AppHandle) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let generation = app
        .state::<App>()
        .share_generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    *app.state::<App>().share.lock().expect("share lock") = Some((generation, cmd_tx));
    tauri::async_runtime::spawn(async move {
        let state = app.state::<App>();
        let settings = state.settings.lock().expect("settings lock").clone();
        let (up_tx, mut up_rx) = mpsc::unbounded_channel();
        let forward = {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let mut printed = None;
                while let Some(u) = up_rx.recv().await {
                    if let Update::View(HostView { room: Some(room), .. }) = &u {
                        // For scripts and tests, as holdfast-host does (stdout, never the log).
                        if printed.as_ref() != Some(&room.id) {
                            println!("{}", serde_json::to_string(room).unwrap_or_default());
                            printed = Some(room.id.clone());
                        }
                    }
                    emit(&app, &u);
                }
            })
        };
        let target = match &settings.signal_url {
            Some(u) => holdfast_desktop::settings::remote_server(u).map(|(url, tls)| ServerTarget::remote(url, tls)),
            None => {
                let mut server = state.server.lock().await;
                if server.is_none() {
                    let listen: SocketAddr = std::env::var("HOLDFAST_SERVE")
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(DEFAULT_SERVE);
                    let data = holdfast_desktop::settings::project_dirs().map(|d| d.data_dir().to_owned());
                    let tls_dir = data.unwrap_or_else(std::env::temp_dir).join("tls");
                    match sharing::embedded_server(&settings, listen, tls_dir, ui_dir(&app)).await {
                        Ok(s) => *server = Some(s),
                        Err(e) => tracing::error!("{e}"),
                    }
                }
                server
                    .as_ref()
                    .map(|s| s.target.clone())
                    .ok_or_else(|| "the embedded server did not start".into())
            }
        };
        let result = match target {
            Ok(target) => {
                let mut opts = ShareOptions::from_env(settings);
                if let Some(store) = &state.unattended {
                    opts.unattended_status = store.status();
                    match store.load() {
                        Ok(a) => opts.unattended = a.map(|a| std::sync::Arc::new(Mutex::new(a))),
                        Err(e) => tracing::error!("unattended access is off: {e}"),
                    }
                }
                sharing::share(opts, target, up_tx, cmd_rx)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!("sharing ended: {e}");
        }
        let _ = forward.await;
        let mut share = state.share.lock().expect("share lock");
        if share.as_ref().is_some_and(|(g, _)| *g == generation) {
            *share = None;
        }
    });
}

/// The built viewer page the embedded server serves to browsers: bundled as a
/// resource in packages, `ui/dist` in a checkout.
fn ui_dir(app: &AppHandle) -> Option<PathBuf> {
    let bundled = app.path().resource_dir().ok().map(|d| d.join("viewer"));
    bundled
        .filter(|d| d.join("index.html").is_file())
        .or_else(holdfast_signal::server::default_ui_dir)
}

fn tray(app: &tauri::App) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, "show", "Show Holdfast", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let mut builder = TrayIconBuilder::with_id("main")
        .tooltip("Holdfast")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "show" => show_window(app),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    Ok(())
}

fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

pub fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = SettingsStore::for_user().ok();
    let (settings, settings_problem) = match store.as_ref().map(SettingsStore::load) {
        Some(Ok(s)) => (s, None),
        Some(Err(e)) => (
            Settings::default(),
            Some(format!("{e}. Using the defaults until you save.")),
        ),
        None => (
            Settings::default(),
            Some("No config folder: settings cannot be saved.".into()),
        ),
    };
    let log_dir = logs::log_dir().ok();
    let _log_guard = match &log_dir {
        Some(dir) => logs::init(dir, settings.log_level)
            .map_err(|e| eprintln!("holdfast: logging to files unavailable: {e}"))
            .ok(),
        None => None,
    };
    if let Some(p) = &settings_problem {
        tracing::warn!("{p}");
    }
    let device_id = store
        .as_ref()
        .and_then(|s| s.device_id().map_err(|e| tracing::warn!("device ID: {e}")).ok())
        .unwrap_or_default();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), device = %device_id, "Holdfast starting");
    let unattended = store.as_ref().map(|s| UnattendedStore::for_user(s.dir()));
    // Started with the session (the autostart entry): to the tray, sharing.
    let hidden = std::env::args().any(|a| a == "--hidden");

    tauri::Builder::default()
        // A second launch shows the running window instead of sharing twice.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tracing::info!("launched again: showing the running window");
            show_window(app);
        }))
        .manage(App {
            store,
            settings: Mutex::new(settings),
            settings_problem,
            device_id,
            log_dir,
            share: Mutex::new(None),
            share_generation: Default::default(),
            last_view: Mutex::new(None),
            server: tokio::sync::Mutex::new(None),
            viewing: Mutex::new(None),
            unattended,
        })
        .invoke_handler(tauri::generate_handler![
            host_view,
            answer_join,
            set_control,
            select_display,
            displays,
            reconnect,
            stop_sharing,
            kick_viewer,
            set_files,
            set_clipboard,
            decide_file,
            cancel_transfer,
            host_chat,
            host_send_files,
            start_sharing,
            get_settings,
            save_settings,
            open_logs_folder,
            view_connect,
            view_input,
            view_only,
            view_keyframe,
            view_shown,
            view_reconnect,
            view_chat,
            view_send_files,
            view_decide_file,
            view_cancel_transfer,
            view_leave,
            unattended_status,
            enable_unattended,
            disable_unattended,
            check_totp,
            set_autostart,
        ])
        .setup(move |app| {
            if let Err(e) = tray(app) {
                // No tray on this desktop (or no StatusNotifier host): the window is enough.
                tracing::warn!("no tray icon: {e}");
            }
            spawn_sharing(app.handle().clone());
            if hidden {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.hide();
                }
            }
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("error while running the Holdfast app");
}
