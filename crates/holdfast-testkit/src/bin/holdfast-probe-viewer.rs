//! `holdfast-probe-viewer`: a headless Rust viewer that joins a room, decodes
//! every frame with OpenH264 and reports each one as a JSON line on stdout:
//! `{"event":"frame","id":..,"keyframe":..,"bytes":..,"decoded":..,"capture_us":..}`,
//! plus `change` (with `--change-code`), `joined`, `state`, `decode-error`, `bad-chunk`, `control` (from the
//! host), `ping`, `host-unresponsive`, `verified` (the host proved the code;
//! with the resume secret to keep), `auth-failed` and `closed` events; a
//! refused join prints `{"event":"refused","code":..,"message":..}` and exits
//! with status 2, a failed end-to-end check before admission
//! `{"event":"auth-failed","reason":..,"message":..}` and status 3.
//!
//! With `--inbox`, files the host sends are taken into that folder;
//! `--send-file` sends one to the host; `--transfers-every-ms` prints the
//! session's transfers (`transfers`), and `file-saved`, `transfer-failed`
//! and `chat` events come as they happen.
//!
//! Each stdin line is a `commands` message to send, in its wire form; input
//! events may omit `seq` (the viewer numbers them); `reconnect` and `leave`
//! act on the session, `send PATH` sends a file, `chat TEXT` a chat line
//! and `clipboard TEXT` puts text on the host's clipboard (what the host
//! copies comes as a `clipboard` event with its SHA-256, never the text).
//! Tests run it as a separate process so it can be frozen (SIGSTOP) or put
//! behind a slow link.

use clap::Parser;
use holdfast_media::H264Decoder;
use holdfast_peer::rtc::RtcOptions;
use holdfast_peer::transfer::{TransferInput, TransferOutput};
use holdfast_peer::viewer::{self, ViewerConfig, ViewerEvent};
use holdfast_peer::PeerError;
use holdfast_proto::commands::{Command, Control};
use holdfast_proto::{RoomCode, RoomId, SessionToken};
use holdfast_session::KeepaliveConfig;
use holdfast_testkit::changecode;
use holdfast_testkit::files::sha256_hex;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(
    name = "holdfast-probe-viewer",
    about = "Headless viewer that decodes and reports every frame"
)]
struct Cli {
    #[arg(long)]
    signal: url::Url,
    #[arg(long)]
    id: String,
    #[arg(long)]
    code: String,
    /// Rejoin with this session token instead of the code.
    #[arg(long)]
    token: Option<String>,
    /// With `--token`: the resume secret an earlier run printed (`verified`).
    #[arg(long)]
    resume_secret: Option<String>,
    /// Print only every Nth frame line (1 prints all).
    #[arg(long, default_value_t = 1)]
    frame_every: u64,
    /// Local UDP address for WebRTC (repeatable).
    #[arg(long = "ice-bind")]
    ice_bind: Vec<String>,
    #[arg(long)]
    allow_loopback: bool,
    /// Seconds to keep trying after the signalling connection drops.
    #[arg(long, default_value_t = holdfast_session::GRACE_PERIOD.as_secs_f64())]
    grace_secs: f64,
    /// Read `holdfast-busyscreen`'s change code off every decoded picture
    /// and print `{"event":"change","n":..,"at_us":..}` the first time each shows.
    #[arg(long)]
    change_code: bool,
    /// Take files the host sends into this folder.
    #[arg(long)]
    inbox: Option<std::path::PathBuf>,
    /// Send this file to the host once joined.
    #[arg(long)]
    send_file: Option<std::path::PathBuf>,
    /// Print the session's transfers this often, in ms (0: never), as
    /// `{"event":"transfers","at_ms":..,"connected":..,"transfers":[..]}`.
    #[arg(long, default_value_t = 0)]
    transfers_every_ms: u64,
    /// Join with the host's permanent password (unattended access), read
    /// from this file, instead of the code (`--code` is then unused).
    #[arg(long)]
    password_file: Option<std::path::PathBuf>,
    /// With `--password-file`: the one-time code, if the host asks for one.
    #[arg(long)]
    totp: Option<String>,
    /// With `--password-file`: join with this password gate whatever the
    /// password gives, as an attacker who saw the right gate (a hostile
    /// server does) would, to test the host's own check and lockout.
    #[arg(long)]
    force_gate: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(std::env::var("HOLDFAST_LOG").as_deref().unwrap_or("info"))
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let id = RoomId::parse(&cli.id)?;
    let password = match &cli.password_file {
        Some(path) => {
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
            let password = zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
            match holdfast_peer::unattended::login(&cli.signal, None, &id, password, cli.totp.clone()).await {
                Ok(mut login) => {
                    if let Some(g) = &cli.force_gate {
                        login.gate = holdfast_proto::signal::PasswordGate::parse(g)?;
                    }
                    Some(login)
                }
                Err(e) => {
                    let code = match &e {
                        PeerError::Refused(r) => serde_json::to_value(r.kind)?,
                        _ => "no-password".into(),
                    };
                    println!(
                        "{}",
                        json!({"event": "refused", "code": code, "message": e.to_string()})
                    );
                    std::process::exit(2);
                }
            }
        }
        None => None,
    };
    let connecting = viewer::connect(ViewerConfig {
        signal_url: cli.signal,
        id,
        code: RoomCode::parse(&cli.code)?,
        token: cli.token.as_deref().map(SessionToken::parse).transpose()?,
        resume: cli
            .resume_secret
            .as_deref()
            .map(holdfast_peer::auth::decode_resume)
            .transpose()?,
        keepalive: KeepaliveConfig::viewer(),
        rtc: RtcOptions {
            bind: if cli.ice_bind.is_empty() {
                vec!["0.0.0.0:0".into()]
            } else {
                cli.ice_bind
            },
            allow_loopback: cli.allow_loopback,
            mdns: true,
        },
        tls: None,
        grace: std::time::Duration::try_from_secs_f64(cli.grace_secs)?,
        inbox: cli.inbox.clone(),
        incoming_files: holdfast_peer::transfer::IncomingFiles::Allow,
        password,
    })
    .await;
    let mut v = match connecting {
        Ok(v) => v,
        Err(PeerError::Refused(e)) => {
            println!(
                "{}",
                json!({"event": "refused", "code": e.kind, "message": e.message, "retry_after_ms": e.retry_after_ms})
            );
            std::process::exit(2);
        }
        Err(PeerError::Auth(reason)) => {
            println!(
                "{}",
                json!({"event": "auth-failed", "reason": reason, "message": reason.describe()})
            );
            std::process::exit(3);
        }
        Err(e) => return Err(e.into()),
    };
    // The token goes to stdout only (like the host's code), for tests that rejoin with it.
    println!(
        "{}",
        json!({"event": "joined", "control": v.control, "token": v.token.expose()})
    );
    let mut decoder = H264Decoder::new()?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut frames = 0u64;
    let mut seen_changes = std::collections::HashSet::new();
    let mut screen = (1u32, 1u32);
    if let Some(path) = &cli.send_file {
        v.transfer.send(TransferInput::SendFile(path.clone()));
    }
    let every = std::time::Duration::from_millis(cli.transfers_every_ms.max(1));
    let mut transfers_tick = tokio::time::interval(every);
    loop {
        let ev = tokio::select! {
            ev = v.events.recv() => match ev { Some(ev) => ev, None => break },
            _ = transfers_tick.tick(), if cli.transfers_every_ms > 0 => {
                let s = v.transfer.state.borrow().clone();
                println!("{}", json!({"event": "transfers", "at_ms": unix_ms(), "connected": s.connected,
                    "allowed": s.allowed, "rejected": s.rejected, "transfers": s.transfers}));
                continue;
            }
            out = v.transfer.events.recv() => {
                let line = match out {
                    Some(TransferOutput::Saved { id, path }) => json!({"event": "file-saved", "id": id, "path": path}),
                    Some(TransferOutput::Failed { id, name, error }) => {
                        json!({"event": "transfer-failed", "id": id, "name": name, "error": error})
                    }
                    Some(TransferOutput::Chat(line)) => json!({"event": "chat", "n": line.n, "text": line.text}),
                    Some(TransferOutput::Refused(message)) => json!({"event": "transfer-refused", "message": message}),
                    // Clipboard contents are not printed: their digest, to compare.
                    Some(TransferOutput::Clipboard(text)) => json!({"event": "clipboard",
                        "chars": text.chars().count(), "sha256": sha256_hex(text.as_bytes())}),
                    // Offers are taken (--inbox).
                    Some(_) => continue,
                    None => break,
                };
                println!("{line}");
                continue;
            }
            line = stdin.next_line(), if stdin_open => {
                match line {
                    Ok(Some(line)) => send_line(&v, &line),
                    _ => stdin_open = false,
                }
                continue;
            }
        };
        let arrived = std::time::Instant::now();
        let line = match ev {
            ViewerEvent::Frame(f) => match decoder.decode(&f.data) {
                Ok(pic) => {
                    // Decoded is as far as this viewer shows a frame: say so,
                    // with how long it took since it arrived.
                    if pic.is_some() {
                        let after_ms = u32::try_from(arrived.elapsed().as_millis()).unwrap_or(u32::MAX);
                        v.send_control(Control::FrameShown {
                            frame: f.frame_id,
                            after_ms,
                        });
                    }
                    frames += 1;
                    if let Some(pic) = pic.as_ref().filter(|_| cli.change_code) {
                        // Screen coordinates onto the picture, coded smaller when scaled.
                        // (The wire carries the screen's size on keyframes only.)
                        if f.keyframe {
                            screen = (f.display_width.max(1) as u32, f.display_height.max(1) as u32);
                        }
                        let (dw, dh) = screen;
                        let at = |x: u32, y: u32| {
                            pic.rgb_at(
                                (x * pic.width / dw).min(pic.width - 1),
                                (y * pic.height / dh).min(pic.height - 1),
                            )
                        };
                        if let Some(n) = changecode::read(at).filter(|n| seen_changes.insert(*n)) {
                            println!(
                                "{}",
                                json!({"event": "change", "n": n, "at_us": holdfast_media::unix_micros()})
                            );
                        }
                    }
                    if !frames.is_multiple_of(cli.frame_every.max(1)) && !f.keyframe {
                        continue;
                    }
                    json!({"event": "frame", "id": f.frame_id, "keyframe": f.keyframe, "bytes": f.data.len(),
                    "width": pic.as_ref().map(|p| p.width), "height": pic.as_ref().map(|p| p.height),
                    // The screen the picture shows (keyframes): the coded size is smaller when the host scaled it down.
                    "display_width": f.keyframe.then_some(f.display_width), "display_height": f.keyframe.then_some(f.display_height),
                    "decoded": pic.is_some(), "capture_us": f.capture_us})
                }
                Err(e) => {
                    v.request_keyframe();
                    json!({"event": "decode-error", "id": f.frame_id, "error": e.to_string()})
                }
            },
            ViewerEvent::State(s) => json!({"event": "state", "state": s.to_string()}),
            ViewerEvent::BadChunk(e) => json!({"event": "bad-chunk", "error": e}),
            ViewerEvent::Control(c) => {
                let wire: serde_json::Value = serde_json::from_slice(&Command::Control(c).encode()).unwrap_or_default();
                json!({"event": "control", "message": wire})
            }
            ViewerEvent::Pinged => json!({"event": "ping", "at_ms": unix_ms()}),
            ViewerEvent::HostUnresponsive => json!({"event": "host-unresponsive"}),
            ViewerEvent::SignalLost {
                attempt,
                retry_in,
                grace_left,
                grace,
            } => json!({"event": "signal-lost", "attempt": attempt, "retry_in_ms": retry_in.as_millis() as u64,
                "grace_left_ms": grace_left.as_millis() as u64, "grace_ms": grace.as_millis() as u64,
                "at_ms": unix_ms()}),
            ViewerEvent::SignalResumed(r) => json!({"event": "signal-resumed", "at_ms": unix_ms(),
                "disconnect_duration": r.as_ref().map(|r| r.disconnect_duration),
                "missed_message_count": r.as_ref().map(|r| r.missed_message_count)}),
            ViewerEvent::Signal { seq, kind } => {
                json!({"event": "signal", "seq": seq, "type": kind, "at_ms": unix_ms()})
            }
            ViewerEvent::HostAway(away) => json!({"event": "host-away", "away": away}),
            ViewerEvent::Route(route) => json!({"event": "route", "route": route, "at_ms": unix_ms()}),
            ViewerEvent::Verified { resume, took } => {
                json!({"event": "verified", "resume": resume, "check_ms": took.as_secs_f64() * 1000.0})
            }
            ViewerEvent::AuthFailed(reason) => {
                json!({"event": "auth-failed", "reason": reason, "message": reason.describe()})
            }
            ViewerEvent::Closed(why) => {
                println!("{}", json!({"event": "closed", "reason": why}));
                break;
            }
        };
        println!("{line}");
    }
    Ok(())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sends one stdin line; input events without `seq` are numbered by the viewer.
fn send_line(v: &viewer::ViewerHandle, line: &str) {
    let line = line.trim();
    if line.is_empty() {
        return;
    }
    if line == "reconnect" {
        return v.reconnect();
    }
    if line == "leave" {
        return v.leave();
    }
    if let Some(path) = line.strip_prefix("send ") {
        return v.transfer.send(TransferInput::SendFile(path.trim().into()));
    }
    if let Some(text) = line.strip_prefix("clipboard ") {
        return v.transfer.send(TransferInput::SendClipboardText(text.into()));
    }
    if let Some(text) = line.strip_prefix("chat ") {
        return v.transfer.send(TransferInput::Chat(text.into()));
    }
    let mut value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return eprintln!("probe-viewer: not JSON: {e}"),
    };
    let numbered_here = value.get("seq").is_none();
    if numbered_here {
        if let Some(o) = value.as_object_mut() {
            o.insert("seq".into(), 0.into());
        }
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    let control = match Command::parse(&bytes) {
        Ok(Command::Control(c)) => c,
        // Not an input event after all: try it without the seq we added.
        _ => match value
            .as_object_mut()
            .map(|o| o.remove("seq"))
            .and_then(|_| Command::parse(&serde_json::to_vec(&value).unwrap_or_default()).ok())
        {
            Some(Command::Control(c)) => c,
            _ => return eprintln!("probe-viewer: not a valid command: {line}"),
        },
    };
    match control.into_input() {
        Ok((_, event)) if numbered_here => v.send_input(event),
        Ok((seq, event)) => v.send_control(Control::input(seq, event)),
        Err(other) => v.send_control(other),
    }
}
