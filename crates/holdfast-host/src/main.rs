//! `holdfast-host`: shares a screen without a window, for servers, unattended
//! machines and tests.
//!
//! Stdout carries JSON lines only: first the room (`{"id","code","viewer_url"}`),
//! then events (`{"event":"join-request",...}`, `viewer-joined`, `viewer-left`,
//! `viewer-unresponsive`). The log goes to stderr and never holds the code.
//!
//! With `--accept ask` (the default) each join request waits for an answer on
//! stdin: `control [PEER]`, `view [PEER]` or `deny [PEER]` (or just `c`, `v`,
//! `d` for the oldest request); `view-only on|off` flips the host's control
//! switch. Unanswered requests are denied after the consent timeout.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use holdfast_input::InputWorker;
use holdfast_media::encode::{EncoderSettings, Tuning, DEFAULT_BITRATE_KBPS, DEFAULT_FPS};
use holdfast_media::synthetic::SyntheticSource;
use holdfast_media::worker::MediaWorker;
use holdfast_peer::backpressure::{QueueLimits, STALL_AFTER, VIDEO_QUEUE_CEILING_BYTES};
use holdfast_peer::host::{self, ConsentPolicy, HostConfig, HostEvent, HostRemote};
use holdfast_peer::rate::RateConfig;
use holdfast_peer::rtc::RtcOptions;
use holdfast_peer::transfer::{IncomingFiles, TransferOutput};
use holdfast_proto::signal::Decision;
use holdfast_screen::Screen;
use holdfast_session::KEEPALIVE_INTERVAL;
use holdfast_signal::{ServerConfig, TlsMode};
use holdfast_transfer::Collision;
use tokio::io::AsyncBufReadExt;
use tracing::{info, warn};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Source {
    /// The display (X11, GNOME on Wayland, Windows, macOS).
    Screen,
    /// A generated moving desktop, for machines without a display.
    Synthetic,
    /// The generated desktop with a band of fresh noise every frame (fills links, for tests).
    Noise,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum TuningArg {
    /// With rate control: screen on most paths, motion where the path carries 20 Mbit/s
    /// or more (the CPU limits there, not the path). Without it: screen.
    Auto,
    /// Smallest frames for text and UI (OpenH264 screen-content mode); ~23 ms per 1080p frame.
    Screen,
    /// Faster encoding for motion (OpenH264 camera mode); more bytes for small changes.
    Motion,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum RateArg {
    /// Follow each viewer's path: bitrate up to --max-bitrate, frames paced to what it carries.
    Adaptive,
    /// Encode at --bitrate whatever the path; the queue limits alone drop frames.
    Fixed,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Accept {
    /// Ask on stdin for each viewer (see the module doc); silence means deny.
    Ask,
    /// Unattended: admit every viewer with the right code, with control.
    Control,
    /// Unattended: admit every viewer with the right code, view only.
    View,
    /// Admit nobody.
    Deny,
}

#[derive(Parser, Debug)]
#[command(name = "holdfast-host", version, about = "Share this screen with a Holdfast viewer")]
struct Cli {
    /// Signalling server base URL, e.g. http://127.0.0.1:8080 (it also serves the viewer).
    /// Without it, an embedded server is started on --serve.
    #[arg(long)]
    signal: Option<url::Url>,
    /// PEM certificate to trust for an https:// --signal server (e.g. its self-signed cert.pem).
    #[arg(long)]
    signal_ca: Option<PathBuf>,
    /// Listen address of the embedded signalling server (when --signal is absent).
    #[arg(long, default_value = "127.0.0.1:8080")]
    serve: SocketAddr,
    /// Display to share (0 is the primary display).
    #[arg(long, default_value_t = 0)]
    display: usize,
    /// How the screen is captured and input injected: auto (X11, or GNOME's
    /// remote-desktop API on a Wayland session), x11 or mutter.
    #[arg(long, env = "HOLDFAST_SCREEN", default_value = "auto")]
    screen_backend: holdfast_screen::Preference,
    /// What to capture.
    #[arg(long, value_enum, default_value_t = Source::Screen)]
    source: Source,
    /// Frames per second while the screen changes.
    #[arg(long, default_value_t = DEFAULT_FPS)]
    fps: u32,
    /// Rate control: adapt to each viewer's path (the default: it beats the
    /// fixed rate on every link measured, docs/benchmarks.md), or a fixed bitrate.
    #[arg(long, value_enum, default_value_t = RateArg::Adaptive)]
    rate_control: RateArg,
    /// With --rate-control fixed: the bitrate in kbit/s.
    #[arg(long, default_value_t = DEFAULT_BITRATE_KBPS)]
    bitrate: u32,
    /// With --rate-control adaptive: the most the encoder may spend, in kbit/s.
    #[arg(long, default_value_t = (holdfast_peer::rate::MAX_BPS / 1000.0) as u32)]
    max_bitrate: u32,
    /// What the encoder optimises for.
    #[arg(long, value_enum, default_value_t = TuningArg::Auto)]
    tuning: TuningArg,
    /// Slices per picture, encoded on as many threads (1 to 4).
    #[arg(long, default_value_t = holdfast_media::encode::DEFAULT_SLICES,
          value_parser = clap::value_parser!(u16).range(1..=4))]
    encoder_slices: u16,
    /// With --rate-control adaptive: encoders one capture may feed (1 or 2).
    /// With 2, a viewer whose path carries under 40 % of the fastest
    /// viewer's gets its own encoder (docs/rate-control.md, "Several viewers").
    #[arg(long, default_value_t = holdfast_media::MAX_LANES as u8,
          value_parser = clap::value_parser!(u8).range(1..=holdfast_media::MAX_LANES as i64))]
    encoder_lanes: u8,
    /// Capture interval in ms once the screen is idle (unchanged).
    #[arg(long, default_value_t = 200)]
    idle_ms: u64,
    /// Hard ceiling on bytes queued on the video channel (the seeds' 4 MiB).
    #[arg(long, default_value_t = VIDEO_QUEUE_CEILING_BYTES)]
    queue_ceiling: usize,
    /// Normal queue bound as milliseconds of video at --bitrate; 0 uses the ceiling alone.
    #[arg(long, default_value_t = 500)]
    queue_target_ms: u64,
    /// Withhold frames from a viewer whose queue has not drained for this many
    /// ms (a dead path); 0 never does.
    #[arg(long, default_value_t = STALL_AFTER.as_millis() as u64)]
    queue_stall_ms: u64,
    /// Local UDP address for WebRTC (repeatable); default: every non-loopback interface.
    #[arg(long = "ice-bind")]
    ice_bind: Vec<String>,
    /// Also offer loopback candidates (for tests on one machine).
    #[arg(long)]
    allow_loopback: bool,
    /// Seconds the session survives without the signalling server before it
    /// ends (the seeds' 300; between 1 and 3600).
    #[arg(long, default_value_t = holdfast_session::GRACE_PERIOD.as_secs_f64(),
          value_parser = grace_secs)]
    grace_secs: f64,
    /// Do not watch the machine's addresses for changes.
    #[arg(long)]
    no_network_watch: bool,
    /// Who decides when a viewer with the right code asks to join.
    #[arg(long, value_enum, default_value_t = Accept::Ask)]
    accept: Accept,
    /// Seconds a join request waits for an answer before it is denied.
    #[arg(long, default_value_t = holdfast_proto::signal::CONSENT_TIMEOUT.as_secs_f64())]
    consent_timeout_secs: f64,
    /// Start with control switched off: viewers see the screen, their input is ignored.
    #[arg(long)]
    view_only: bool,
    /// Keepalive PING interval in ms; a viewer silent for 3 intervals is dead
    /// (its held keys are released).
    #[arg(long, default_value_t = KEEPALIVE_INTERVAL.as_millis() as u64)]
    keepalive_ms: u64,
    /// Write host statistics as JSON to this file every second.
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// The folder files from viewers land in (default: your Downloads folder).
    #[arg(long)]
    inbox: Option<PathBuf>,
    /// Take files viewers with control send, without asking (otherwise
    /// answer each with `accept-file PEER ID` or `decline-file PEER ID`).
    #[arg(long)]
    accept_files: bool,
    /// Refuse files from viewers.
    #[arg(long)]
    no_files: bool,
    /// Do not share the clipboard.
    #[arg(long)]
    no_clipboard: bool,
    /// Seconds between ICE restarts of a relayed connection, to find a
    /// direct path that appeared (0: only when TURN credentials are renewed).
    #[arg(long, default_value_t = holdfast_peer::host::RELAY_RECHECK.as_secs_f64())]
    relay_recheck_secs: f64,
    /// Unattended access: admit, without asking, a viewer that proves the
    /// permanent password kept in this file (made with --set-password).
    #[arg(long, value_name = "FILE")]
    unattended: Option<PathBuf>,
    /// Set the permanent password: read it from stdin (one line; never give
    /// it as an argument), keep its Argon2id key in FILE (mode 0600) and exit.
    #[arg(long, value_name = "FILE")]
    set_password: Option<PathBuf>,
    /// With --set-password: also require a one-time code from an
    /// authenticator app; prints the otpauth:// URI to enrol it.
    #[arg(long, requires = "set_password")]
    totp: bool,
    /// With --set-password: password logins get the screen only, no control.
    #[arg(long, requires = "set_password")]
    password_view_only: bool,
    /// Log filter.
    #[arg(long, default_value = "info", env = "HOLDFAST_LOG")]
    log: String,
}

/// `--set-password FILE`: the password from stdin into FILE, as its key.
fn set_password(cli: &Cli, path: &std::path::Path) -> anyhow::Result<()> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    let factor = holdfast_peer::unattended::create(path, password, cli.totp, !cli.password_view_only)?;
    let mut out = serde_json::json!({"unattended": path, "control": !cli.password_view_only});
    if let Some(f) = factor {
        out["totp_uri"] = serde_json::Value::from(f.enrolment_uri("holdfast-host").as_str());
    }
    println!("{out}");
    eprintln!(
        "holdfast-host: permanent password set (only its Argon2id key is kept, in {})",
        path.display()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal; logs read by tools stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(path) = &cli.set_password {
        return set_password(&cli, path);
    }
    let unattended = match &cli.unattended {
        Some(path) => Some(holdfast_peer::unattended::load(path).context("reading the unattended-access settings")?),
        None => None,
    };

    let mut _embedded = None;
    let mut embedded_ca: Option<PathBuf> = None;
    let signal_url = match &cli.signal {
        Some(url) => url.clone(),
        None => {
            let server = holdfast_signal::spawn(ServerConfig {
                listen: cli.serve,
                tls: TlsMode::default_for(&cli.serve, PathBuf::from("holdfast-tls")),
                ui_dir: holdfast_signal::server::default_ui_dir(),
                ice_servers: Vec::new(),
                ..ServerConfig::loopback(0)
            })
            .await
            .context("starting the embedded signalling server")?;
            let url = url::Url::parse(&server.base_url)?;
            // Off loopback it serves HTTPS with a self-signed certificate: trust that one.
            if let TlsMode::SelfSigned { dir, .. } = TlsMode::default_for(&server.addr, PathBuf::from("holdfast-tls")) {
                embedded_ca = Some(dir.join("cert.pem"));
            }
            _embedded = Some(server);
            url
        }
    };

    let tuning = match cli.tuning {
        TuningArg::Auto | TuningArg::Screen => Tuning::Screen,
        TuningArg::Motion => Tuning::Motion,
    };
    let rate = match cli.rate_control {
        RateArg::Adaptive => Some(RateConfig::up_to(cli.max_bitrate)),
        RateArg::Fixed => None,
    };
    let settings = EncoderSettings {
        fps: cli.fps,
        bitrate_kbps: rate.map_or(cli.bitrate, |r| r.start_target_kbps()),
        threads: 0,
        slices: cli.encoder_slices,
        tuning,
    };
    let mut displays = Vec::new();
    let mut geometries = Vec::new();
    let mut input = None;
    let mut clipboard = None;
    let worker = match cli.source {
        Source::Screen => {
            let display = cli.display;
            let screen = Screen::open(cli.screen_backend).context("opening the screen")?;
            info!(backend = %screen.kind(), displays = ?screen.displays(), "screen");
            displays = screen.display_descs();
            geometries = screen.displays().iter().map(|d| d.geometry).collect();
            match InputWorker::spawn(screen.injector_opener(), screen.geometry(display)) {
                Ok(w) => input = Some(w),
                Err(e) => warn!("input injection unavailable (viewers can only watch): {e}"),
            }
            clipboard = (!cli.no_clipboard).then(|| screen.clipboard_source());
            MediaWorker::spawn_switchable(screen.capture_opener(), display, settings)
        }
        Source::Synthetic => MediaWorker::spawn(|| Ok(SyntheticSource::new(1920, 1080)), settings),
        Source::Noise => MediaWorker::spawn(|| Ok(SyntheticSource::noisy(1920, 1080)), settings),
    }
    .context("opening the screen")?;
    info!(dimensions = ?worker.dimensions(), "capturing");

    let mut config = HostConfig::new(signal_url);
    if let Some(ca) = cli.signal_ca.as_ref().or(embedded_ca.as_ref()) {
        config.tls = Some(holdfast_peer::signal_client::tls_config_with_ca(ca)?);
    }
    config.fps = cli.fps;
    config.rate = rate;
    config.encoder_lanes = cli.encoder_lanes as usize;
    config.adaptive_tuning = cli.tuning == TuningArg::Auto;
    config.idle_interval = Duration::from_millis(cli.idle_ms);
    config.limits = if cli.queue_target_ms == 0 {
        QueueLimits::ceiling_only(cli.queue_ceiling)
    } else {
        let mut l = QueueLimits::for_bitrate(cli.bitrate, Duration::from_millis(cli.queue_target_ms));
        l.ceiling = cli.queue_ceiling;
        l
    };
    config.limits.stall_after = (cli.queue_stall_ms > 0).then(|| Duration::from_millis(cli.queue_stall_ms));
    config.consent = match cli.accept {
        Accept::Ask => ConsentPolicy::Ask,
        Accept::Control => ConsentPolicy::Always(Decision::Control),
        Accept::View => ConsentPolicy::Always(Decision::View),
        Accept::Deny => ConsentPolicy::Always(Decision::Deny),
    };
    config.consent_timeout = Duration::try_from_secs_f64(cli.consent_timeout_secs)?;
    config.control_enabled = !cli.view_only;
    config.inbox = cli.inbox.clone().or_else(holdfast_transfer::Inbox::default_path);
    config.incoming_files = if cli.accept_files {
        IncomingFiles::Allow
    } else {
        IncomingFiles::Ask
    };
    config.files_enabled = !cli.no_files;
    config.clipboard_enabled = !cli.no_clipboard;
    config.clipboard = clipboard;
    config.keepalive.interval = Duration::from_millis(cli.keepalive_ms.max(10));
    config.current_display = cli.display as u32;
    config.grace = Duration::from_secs_f64(cli.grace_secs);
    if cli.no_network_watch {
        config.watch_network = None;
    }
    config.relay_recheck = (cli.relay_recheck_secs > 0.0)
        .then(|| Duration::try_from_secs_f64(cli.relay_recheck_secs))
        .transpose()?;
    config.displays = displays;
    config.display_geometry = geometries;
    config.rtc = RtcOptions::bound_to(&cli.ice_bind, cli.allow_loopback);
    let unattended_on = unattended.is_some();
    config.unattended = unattended.map(|u| std::sync::Arc::new(std::sync::Mutex::new(u)));

    let mut host = host::start(config, worker, input)
        .await
        .context("registering with the signalling server")?;
    let mut room = serde_json::to_value(&host.room)?;
    room["unattended"] = unattended_on.into();
    println!("{room}");
    if unattended_on {
        eprintln!("holdfast-host: UNATTENDED ACCESS IS ON: anyone with ID {} and the permanent password gets in without asking", host.room.id);
    }
    // The code and link are on stdout only: stderr is the log, and codes never go in logs.
    eprintln!(
        "holdfast-host: room {} is open; give the viewer the code or link printed on stdout",
        host.room.id
    );

    if let Some(path) = cli.stats_file.clone() {
        let mut stats = host.stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let json = serde_json::to_vec(&*stats.borrow_and_update()).unwrap_or_default();
                let tmp = path.with_extension("tmp");
                if std::fs::write(&tmp, json).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
            }
        });
    }

    let interactive = std::io::stdin().is_terminal();
    let remote = host.remote();
    let mut events = std::mem::replace(&mut host.events, tokio::sync::mpsc::unbounded_channel().1);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    // Join requests waiting for an answer, oldest first.
    let mut waiting: Vec<String> = Vec::new();
    let mut stop_asked = false;
    loop {
        tokio::select! {
            r = host.finished() => {
                if let Err(e) = &r {
                    // Say why on stdout too, for whoever drives this process.
                    println!("{}", serde_json::json!({"event": "session-ended", "reason": e.to_string()}));
                }
                r.context("the session is over")?;
                if stop_asked {
                    // Sharing stopped at the person's word: say so, and stay
                    // until stdin closes (a terminal's Ctrl-D) or Ctrl-C.
                    println!("{}", serde_json::json!({"event": "stopped"}));
                    eprintln!("holdfast-host: sharing stopped; press Ctrl-D or Ctrl-C to exit");
                    while stdin_open {
                        tokio::select! {
                            line = stdin.next_line() => if !matches!(line, Ok(Some(_))) { stdin_open = false },
                            _ = tokio::signal::ctrl_c() => break,
                        }
                    }
                }
                break;
            }
            _ = tokio::signal::ctrl_c() => { host.stop().await?; break; }
            Some(ev) = events.recv() => {
                print_event(&ev);
                match ev {
                    HostEvent::JoinRequest { peer_id, address, timeout } => {
                        if interactive {
                            eprintln!(
                                "holdfast-host: a viewer at {address} asks to join. Type c (control), v (view only) \
                                 or d (deny) and Enter; no answer in {} s means deny.",
                                timeout.as_secs()
                            );
                        }
                        waiting.push(peer_id);
                    }
                    HostEvent::JoinAnswered { peer_id, .. } => waiting.retain(|p| *p != peer_id),
                    _ => {}
                }
            }
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    stop_asked |= line.trim() == "stop";
                    answer_line(&remote, &mut waiting, &line)
                }
                _ => stdin_open = false,
            },
        }
    }
    Ok(())
}

/// One event as a JSON line on stdout (no tokens; a code only in `code-changed`,
/// which shows the new one as the room line showed the first).
fn print_event(ev: &HostEvent) {
    let json = match ev {
        HostEvent::JoinRequest {
            peer_id,
            address,
            timeout,
        } => serde_json::json!({"event": "join-request", "peer_id": peer_id, "address": address,
            "timeout_ms": timeout.as_millis() as u64}),
        HostEvent::UnattendedJoin { peer_id, address } => {
            serde_json::json!({"event": "unattended-join", "peer_id": peer_id, "address": address})
        }
        HostEvent::JoinAnswered { peer_id, decision } => {
            serde_json::json!({"event": "join-answered", "peer_id": peer_id, "decision": decision})
        }
        HostEvent::ViewerJoined { peer_id, control } => {
            serde_json::json!({"event": "viewer-joined", "peer_id": peer_id, "control": control})
        }
        HostEvent::ViewerLeft { peer_id } => serde_json::json!({"event": "viewer-left", "peer_id": peer_id}),
        HostEvent::ViewerRefused { peer_id, reason } => {
            serde_json::json!({"event": "viewer-refused", "peer_id": peer_id, "reason": reason})
        }
        HostEvent::AuthFailed {
            peer_id,
            address,
            reason,
        } => serde_json::json!({"event": "auth-failed", "peer_id": peer_id, "address": address,
            "reason": reason, "message": reason.describe()}),
        HostEvent::CodeChanged { code, viewer_url } => {
            serde_json::json!({"event": "code-changed", "code": code, "viewer_url": viewer_url})
        }
        HostEvent::ViewerUnresponsive { peer_id } => {
            serde_json::json!({"event": "viewer-unresponsive", "peer_id": peer_id})
        }
        HostEvent::ViewerState { peer_id, state } => {
            serde_json::json!({"event": "viewer-state", "peer_id": peer_id, "state": state})
        }
        HostEvent::ViewerRecovering { peer_id, rebuild } => {
            serde_json::json!({"event": "viewer-recovering", "peer_id": peer_id, "rebuild": rebuild})
        }
        HostEvent::SignalLost {
            attempt,
            retry_in,
            grace_left,
            grace,
        } => serde_json::json!({"event": "signal-lost", "attempt": attempt,
            "retry_in_ms": retry_in.as_millis() as u64, "grace_left_ms": grace_left.as_millis() as u64,
            "grace_ms": grace.as_millis() as u64}),
        HostEvent::Quality {
            peer_id,
            quality,
            metrics,
        } => serde_json::json!({"event": "quality", "peer_id": peer_id, "quality": quality, "metrics": metrics}),
        HostEvent::NetworkChanged { added, removed } => {
            serde_json::json!({"event": "network-changed", "added": added, "removed": removed})
        }
        HostEvent::SignalRestored { reconnection } => serde_json::json!({"event": "signal-restored",
            "disconnect_duration": reconnection.as_ref().map(|r| r.disconnect_duration),
            "missed_message_count": reconnection.as_ref().map(|r| r.missed_message_count)}),
        HostEvent::Transfer { peer_id, event } => match event {
            TransferOutput::Offered { id, name, size, exists } => serde_json::json!({"event": "file-offered",
                "peer_id": peer_id, "id": id, "name": name, "size": size, "exists": exists}),
            TransferOutput::Chat(line) => {
                serde_json::json!({"event": "chat", "peer_id": peer_id, "n": line.n, "text": line.text})
            }
            // Clipboard contents are never printed.
            TransferOutput::Clipboard(_) => return,
            TransferOutput::Saved { id, path } => {
                serde_json::json!({"event": "file-saved", "peer_id": peer_id, "id": id, "path": path})
            }
            TransferOutput::Failed { id, name, error } => serde_json::json!({"event": "transfer-failed",
                "peer_id": peer_id, "id": id, "name": name, "error": error}),
            TransferOutput::Refused(message) => {
                serde_json::json!({"event": "transfer-refused", "peer_id": peer_id, "message": message})
            }
        },
    };
    println!("{json}");
}

fn grace_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (1.0..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err("the grace window must be between 1 and 3600 s".into())
    }
}

/// Applies one stdin line: `control|view|deny [PEER]` (or `c`, `v`, `d`),
/// `view-only on|off`, `kick PEER` (end one viewer's session), `stop` (stop sharing),
/// `reconnect` (resume now) or `restart-ice` (repair every viewer's connection).
fn answer_line(host: &HostRemote, waiting: &mut Vec<String>, line: &str) {
    let mut words = line.split_whitespace();
    let (Some(verb), arg) = (words.next(), words.next()) else {
        return;
    };
    let decision = match verb {
        "c" | "control" | "allow" => Decision::Control,
        "v" | "view" => Decision::View,
        "d" | "deny" => Decision::Deny,
        "reconnect" => {
            host.reconnect();
            return;
        }
        "restart-ice" => {
            host.restart_ice();
            return;
        }
        "kick" => {
            match arg {
                Some(peer) => host.kick(peer),
                None => eprintln!("holdfast-host: say `kick PEER`"),
            }
            return;
        }
        "stop" => {
            host.stop_sharing();
            return;
        }
        "view-only" => {
            match arg {
                Some("on") => host.set_control(false),
                Some("off") => host.set_control(true),
                _ => eprintln!("holdfast-host: say `view-only on` or `view-only off`"),
            }
            return;
        }
        "files" | "clipboard" => {
            let on = match arg {
                Some("on") => true,
                Some("off") => false,
                _ => return eprintln!("holdfast-host: say `{verb} on` or `{verb} off`"),
            };
            if verb == "files" {
                host.set_files(on)
            } else {
                host.set_clipboard(on)
            }
            return;
        }
        "send" => {
            // `send PEER|all PATH` (the path may hold spaces).
            let rest = line.trim_start()[verb.len()..].trim_start();
            let path = rest.split_once(char::is_whitespace).map(|(_, p)| p.trim());
            match (arg, path) {
                (Some(to), Some(path)) if !path.is_empty() => {
                    host.send_file((to != "all").then_some(to), PathBuf::from(path))
                }
                _ => eprintln!("holdfast-host: say `send PEER|all PATH`"),
            }
            return;
        }
        "chat" => {
            let text = line.trim_start()[verb.len()..].trim();
            if !text.is_empty() {
                host.chat(None, text.to_owned());
            }
            return;
        }
        "accept-file" | "decline-file" | "cancel" => {
            let id = words.next().and_then(|w| w.parse::<u32>().ok());
            let collision = match words.next() {
                Some("replace") => Collision::Replace,
                _ => Collision::KeepBoth,
            };
            match (arg, id) {
                (Some(peer), Some(id)) if verb == "cancel" => host.cancel_transfer(peer, id),
                (Some(peer), Some(id)) => host.decide_file(peer, id, verb == "accept-file", collision),
                _ => eprintln!("holdfast-host: say `{verb} PEER ID`"),
            }
            return;
        }
        other => {
            eprintln!(
                "holdfast-host: unknown command `{other}` (control, view, deny, view-only on|off, kick, stop, \
                 send PEER|all PATH, chat TEXT, accept-file|decline-file|cancel PEER ID, files|clipboard on|off)"
            );
            return;
        }
    };
    let peer = match arg {
        Some(p) => p.to_owned(),
        None => match waiting.first() {
            Some(p) => p.clone(),
            None => {
                eprintln!("holdfast-host: no viewer is waiting");
                return;
            }
        },
    };
    waiting.retain(|p| *p != peer);
    host.consent(&peer, decision);
}
