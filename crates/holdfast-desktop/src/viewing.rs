//! Viewing another machine from the app: the Rust viewer
//! ([`holdfast_peer::viewer`]; Linux's webview has no RTCPeerConnection) joins
//! with ID and code, and everything it reports is folded by [`ViewTracker`]
//! into [`ViewUpdate`]s. Whole encoded frames go to the webview as binary
//! [`frame_message`]s and are decoded there with WebCodecs; where the webview
//! cannot decode H.264 they are decoded here with OpenH264 and sent as
//! pictures ([`picture_message`]). Input from the webview arrives as the same
//! JSON the browser viewer sends and is validated here before it goes out.
//!
//! Frames go to the webview through a short bounded queue ([`FRAME_QUEUE`]):
//! a webview that falls behind gets frames dropped ([`FrameGate`]: after a
//! dropped encoded frame only a keyframe goes next, and one is asked for),
//! never an ever-growing backlog; pictures larger than [`MAX_PICTURE_PIXELS`]
//! (a host claiming an absurd size) are refused.
//!
//! Files, chat and the clipboard ride the viewer's `transfer` channel: files
//! from the host wait for the person's answer and land in the inbox (the
//! Downloads folder), this machine's clipboard is shared both ways through
//! [`ClipboardWorker`] while the host allows it, and the channel's state goes
//! to the webview as [`ViewUpdate::Transfers`].
//!
//! Runs headless; the shell only forwards commands in and updates out.

use std::sync::Arc;
use std::time::Duration;

use holdfast_input::{ClipboardWorker, SystemClipboard};
use holdfast_media::decode::{DecodedPicture, H264Decoder};
use holdfast_peer::rtc::RtcOptions;
use holdfast_peer::transfer::{IncomingFiles, TransferInput, TransferOutput, TransferState};
use holdfast_peer::viewer::{self, ViewerConfig, ViewerEvent};
use holdfast_proto::commands::{Command, Control, MAX_SHOWN_AFTER_MS};
use holdfast_proto::video::EncodedFrame;
use holdfast_proto::{RoomCode, RoomId};
use holdfast_transfer::Collision;
use serde::Serialize;
use tokio::sync::mpsc;
use url::Url;

use crate::host_state::{unix_ms, Notice};
use crate::settings::Settings;
use crate::view_state::{ViewTracker, ViewingView};

/// Largest input message taken from the webview (the browser viewer's limit on the channel).
pub const MAX_INPUT_BYTES: usize = 4096;
/// At most one keyframe request this often (the browser viewer's gap too).
pub const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);
/// Frames (or pictures) waiting for the webview before new ones are dropped.
pub const FRAME_QUEUE: usize = 4;
/// Largest picture accepted: 8K UHD (a 7680x4320 RGBA picture is 133 MB).
pub const MAX_PICTURE_PIXELS: u64 = 7680 * 4320;

/// Whether a frame goes to the webview's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Send,
    /// Dropped; `ask_keyframe` when the decoder now needs one.
    Drop {
        ask_keyframe: bool,
    },
}

/// Drops frames when the webview's queue is full: a dropped encoded frame
/// breaks the decoder until the next keyframe, so after one only a keyframe
/// passes. Pure.
#[derive(Debug, Default)]
pub struct FrameGate {
    awaiting_keyframe: bool,
    pub dropped: u64,
}

impl FrameGate {
    /// `room`: the queue has space. `keyframe`: the frame can be decoded on its own.
    pub fn pass(&mut self, keyframe: bool, room: bool) -> Pass {
        if room && (keyframe || !self.awaiting_keyframe) {
            self.awaiting_keyframe = false;
            return Pass::Send;
        }
        self.dropped += 1;
        let first = !self.awaiting_keyframe;
        self.awaiting_keyframe = true;
        Pass::Drop { ask_keyframe: first }
    }
}

/// Whether a picture of `width` x `height` is within what this viewer takes.
pub fn picture_size_ok(width: u32, height: u32) -> bool {
    width > 0 && height > 0 && width as u64 * height as u64 <= MAX_PICTURE_PIXELS
}

/// First byte of a binary message to the webview: what follows.
pub const ENCODED_FRAME: u8 = 1;
pub const PICTURE: u8 = 2;
/// Bytes before an encoded frame's data: kind, frame id (u32), keyframe (u8),
/// capture time (u64 µs), coded width and height (u16), display width and
/// height (u16), all little-endian.
pub const FRAME_HEADER: usize = 1 + 4 + 1 + 8 + 2 + 2 + 2 + 2;
/// Bytes before a picture's RGBA: kind, capture time (u64 µs), width and
/// height (u32), display width and height (u32).
pub const PICTURE_HEADER: usize = 1 + 8 + 4 + 4 + 4 + 4;

/// An encoded frame for the webview's decoder.
pub fn frame_message(f: &EncodedFrame) -> Vec<u8> {
    let mut m = Vec::with_capacity(FRAME_HEADER + f.data.len());
    m.push(ENCODED_FRAME);
    m.extend_from_slice(&f.frame_id.to_le_bytes());
    m.push(u8::from(f.keyframe));
    m.extend_from_slice(&f.capture_us.to_le_bytes());
    for v in [f.width, f.height, f.display_width, f.display_height] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&f.data);
    m
}

/// A picture decoded here, to be drawn at `display` (the screen's size: the
/// host may have sent it scaled down).
pub fn picture_message(capture_us: u64, p: &DecodedPicture, display: (u32, u32)) -> Vec<u8> {
    let mut m = Vec::with_capacity(PICTURE_HEADER + p.rgba.len());
    m.push(PICTURE);
    m.extend_from_slice(&capture_us.to_le_bytes());
    for v in [p.width, p.height, display.0, display.1] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&p.rgba);
    m
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Refused(String),
}

/// Where the decoding happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decode {
    /// WebCodecs in the webview (the usual case).
    Webview,
    /// OpenH264 here, pictures to the webview (a webview without H.264 WebCodecs).
    Rust,
}

/// What the viewer screen asked for.
#[derive(Clone)]
pub struct ViewRequest {
    pub signal_url: Url,
    pub id: String,
    pub code: String,
    /// Unattended access: the host's permanent password instead of the code,
    /// and the one-time code if the host asks for one.
    pub password: Option<zeroize::Zeroizing<String>>,
    pub totp: Option<String>,
    pub decode: Decode,
}

/// The code is a secret: never in a log line, even by accident.
impl std::fmt::Debug for ViewRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewRequest")
            .field("signal_url", &self.signal_url.as_str())
            .field("id", &self.id)
            .field("code", &"<redacted>")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("decode", &self.decode)
            .finish()
    }
}

/// What the shell passes in besides the request.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    pub settings: Settings,
    /// Local UDP addresses for WebRTC; empty: every interface.
    pub ice_bind: Vec<String>,
    pub allow_loopback: bool,
    /// Trust roots for an `https://` server (None: the system's).
    pub signal_tls: Option<Arc<rustls::ClientConfig>>,
    /// Where files from the host land (None: refused).
    pub inbox: Option<std::path::PathBuf>,
    /// Share this machine's clipboard (while the host allows it).
    pub clipboard: bool,
}

/// What the viewer screen asks of a running view.
#[derive(Debug, Clone)]
pub enum ViewCommand {
    /// An input message from the webview, JSON as the browser viewer sends it.
    Input(String),
    ViewOnly(bool),
    Keyframe,
    /// The webview drew frame `frame` `after_ms` after it arrived: the
    /// acknowledgement the host measures capture to screen from.
    Shown {
        frame: u32,
        after_ms: u32,
    },
    /// The reconnect button: try the server now, without waiting out the backoff.
    Reconnect,
    Leave,
    Chat(String),
    /// A file to send to the host (dropped on the window).
    SendFile(std::path::PathBuf),
    /// The person's answer to a file the host offers.
    DecideFile {
        id: u32,
        accept: bool,
    },
    CancelTransfer(u32),
}

/// What the webview is told.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ViewUpdate {
    View(ViewingView),
    Notice(Notice),
    /// Files, chat and what the host allows, as the transfer task sees them.
    Transfers(TransferState),
}

/// Turns the webview's input JSON into a numbered-by-the-viewer input event;
/// anything else (too long, not JSON, not input) is refused with a reason.
pub fn parse_input(json: &str) -> Result<holdfast_proto::commands::InputEvent, String> {
    if json.len() > MAX_INPUT_BYTES {
        return Err(format!("input message over {MAX_INPUT_BYTES} bytes"));
    }
    // The webview does not number its messages; the viewer does.
    let mut v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object_mut().ok_or("not a JSON object")?;
    obj.insert("seq".into(), 0.into());
    obj.entry("v").or_insert(1.into());
    match Command::parse(v.to_string().as_bytes()).map_err(|e| e.to_string())? {
        Command::Control(c) => c.into_input().map(|(_, e)| e).map_err(|c| format!("not input: {c:?}")),
        other => Err(format!("not input: {other:?}")),
    }
}

/// Views the room until the person leaves or the session ends. Every change
/// is sent on `updates`.
pub async fn view(
    opts: ViewOptions,
    req: ViewRequest,
    updates: mpsc::UnboundedSender<ViewUpdate>,
    frames: mpsc::Sender<Vec<u8>>,
    mut commands: mpsc::UnboundedReceiver<ViewCommand>,
) -> Result<(), ViewError> {
    let grace = Duration::from_secs(opts.settings.grace_secs);
    let mut tracker = ViewTracker::new(req.id.trim(), grace);
    let send_view = |t: &ViewTracker| {
        let _ = updates.send(ViewUpdate::View(t.view().clone()));
    };
    let send_notices = |n: Vec<Notice>| {
        for n in n {
            let _ = updates.send(ViewUpdate::Notice(n));
        }
    };
    let fail = |t: &mut ViewTracker, message: String| {
        send_notices(t.ended(message.clone()));
        send_view(t);
        ViewError::Refused(message)
    };
    let id = match RoomId::parse(&req.id) {
        Ok(id) => id,
        Err(e) => return Err(fail(&mut tracker, format!("That ID is not right: {e}"))),
    };
    let login = match &req.password {
        Some(password) => {
            let totp = req.totp.clone().filter(|t| !t.trim().is_empty());
            match holdfast_peer::unattended::login(
                &req.signal_url,
                opts.signal_tls.clone(),
                &id,
                password.clone(),
                totp,
            )
            .await
            {
                Ok(l) => Some(l),
                Err(e) => return Err(fail(&mut tracker, e.to_string())),
            }
        }
        None => None,
    };
    let code = match (&login, RoomCode::parse(&req.code)) {
        // With the password the code is not used.
        (Some(_), _) => RoomCode::random(&mut rand::rng()),
        (None, Ok(c)) => c,
        (None, Err(e)) => return Err(fail(&mut tracker, format!("That code is not right: {e}"))),
    };
    let mut config = ViewerConfig::new(req.signal_url.clone(), id, code);
    config.password = login;
    config.tls = opts.signal_tls.clone();
    config.grace = grace;
    config.keepalive.interval = Duration::from_secs(opts.settings.keepalive_secs);
    config.rtc = RtcOptions::bound_to(&opts.ice_bind, opts.allow_loopback);
    config.inbox = opts.inbox.clone();
    config.incoming_files = IncomingFiles::Ask;
    tracker.awaiting_consent();
    send_view(&tracker);

    // Joining waits for the host's consent; the person may leave meanwhile.
    let connecting = viewer::connect(config);
    tokio::pin!(connecting);
    let mut handle = loop {
        tokio::select! {
            r = &mut connecting => match r {
                Ok(h) => break h,
                Err(e) => return Err(fail(&mut tracker, e.to_string())),
            },
            cmd = commands.recv() => {
                if matches!(cmd, Some(ViewCommand::Leave) | None) {
                    tracker.left();
                    send_view(&tracker);
                    return Ok(());
                }
            }
        }
    };
    tracing::info!("viewing");
    send_notices(tracker.admitted(handle.control));
    send_view(&tracker);

    // What the transfer task reports, and this machine's clipboard.
    let mut transfer_events = std::mem::replace(&mut handle.transfer.events, mpsc::unbounded_channel().1);
    let mut transfer_state = handle.transfer.state.clone();
    let (copied_tx, mut copied) = mpsc::unbounded_channel::<String>();
    let clipboard = if opts.clipboard {
        ClipboardWorker::spawn(SystemClipboard::open, copied_tx)
            .inspect_err(|e| tracing::warn!("the clipboard is not shared: {e}"))
            .ok()
    } else {
        None
    };

    // Decoding here: after an error only a keyframe can be decoded cleanly,
    // and a half-decoded picture is never shown.
    let mut awaiting_keyframe = true;
    let mut decoder = match req.decode {
        Decode::Webview => None,
        Decode::Rust => match H264Decoder::new() {
            Ok(d) => Some(d),
            Err(e) => return Err(fail(&mut tracker, format!("Cannot decode video here: {e}"))),
        },
    };
    let mut last_keyframe_request: Option<std::time::Instant> = None;
    let mut ask_keyframe = |h: &viewer::ViewerHandle| {
        let now = std::time::Instant::now();
        if last_keyframe_request.is_none_or(|t| now.duration_since(t) >= KEYFRAME_REQUEST_GAP) {
            last_keyframe_request = Some(now);
            h.request_keyframe();
        }
    };
    let mut gate = FrameGate::default();
    let mut oversized_told = false;
    // The screen's size, from the last keyframe: pictures are drawn at it.
    let mut display = (0u32, 0u32);
    let mut last_view = tracker.view().clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = handle.events.recv() => {
                let Some(ev) = ev else {
                    send_notices(tracker.ended("The connection to the host closed."));
                    send_view(&tracker);
                    return Ok(());
                };
                send_notices(tracker.on_event(&ev, unix_ms()));
                if let ViewerEvent::Frame(f) = &ev {
                    let arrived = std::time::Instant::now();
                    let (dw, dh) = (f.display_width as u32, f.display_height as u32);
                    if f.keyframe && !(picture_size_ok(f.width as u32, f.height as u32) && picture_size_ok(dw, dh)) {
                        if !std::mem::replace(&mut oversized_told, true) {
                            let why = format!("The host sent a {}x{} picture, larger than this viewer accepts.", f.width.max(f.display_width), f.height.max(f.display_height));
                            tracing::warn!("{why}");
                            send_notices(vec![Notice::Error { message: why }]);
                        }
                        continue;
                    }
                    if f.keyframe {
                        display = (dw, dh);
                    }
                    match decoder.as_mut() {
                        None => match gate.pass(f.keyframe, frames.capacity() > 0) {
                            Pass::Send => { let _ = frames.try_send(frame_message(f)); }
                            Pass::Drop { ask_keyframe: true } => ask_keyframe(&handle),
                            Pass::Drop { .. } => {}
                        },
                        Some(_) if awaiting_keyframe && !f.keyframe => ask_keyframe(&handle),
                        Some(d) => match d.decode(&f.data) {
                            Ok(Some(p)) => {
                                awaiting_keyframe = false;
                                // A decoded picture stands alone: dropping one costs nothing more.
                                // Before any keyframe said otherwise, the picture is the screen.
                                let screen = if display.0 == 0 { (p.width, p.height) } else { display };
                                if picture_size_ok(p.width, p.height) && gate.pass(true, frames.capacity() > 0) == Pass::Send {
                                    let _ = frames.try_send(picture_message(f.capture_us, &p, screen));
                                    // Decoded here and handed to the webview, which
                                    // draws it at once: acknowledged now (the
                                    // webview-decoded path acknowledges after drawing).
                                    let after_ms = u32::try_from(arrived.elapsed().as_millis()).unwrap_or(u32::MAX);
                                    handle.send_control(Control::FrameShown {
                                        frame: f.frame_id,
                                        after_ms: after_ms.min(MAX_SHOWN_AFTER_MS),
                                    });
                                }
                            }
                            Ok(None) => awaiting_keyframe = false,
                            Err(e) => {
                                tracing::debug!("decode error, asking for a keyframe: {e}");
                                awaiting_keyframe = true;
                                ask_keyframe(&handle);
                            }
                        },
                    }
                }
                // Frames change the counters on every arrival; the screen hears
                // of them with the next tick, of anything else at once.
                if !matches!(ev, ViewerEvent::Frame(_)) && *tracker.view() != last_view {
                    last_view = tracker.view().clone();
                    send_view(&tracker);
                }
                if let ViewerEvent::Closed(_) = ev {
                    return Ok(());
                }
            }
            Some(out) = transfer_events.recv() => match out {
                TransferOutput::Clipboard(text) => {
                    if let Some(c) = &clipboard {
                        if let Err(e) = c.set(text) {
                            tracing::warn!("the host's clipboard text could not be set here: {e}");
                        }
                    }
                }
                TransferOutput::Saved { path, .. } => send_notices(vec![Notice::FileSaved {
                    path: path.display().to_string(),
                }]),
                TransferOutput::Failed { name, error, .. } => send_notices(vec![Notice::TransferFailed { name, error }]),
                TransferOutput::Refused(message) => send_notices(vec![Notice::Error { message }]),
                // Shown from the transfer state (the panel asks; the chat lists).
                TransferOutput::Offered { .. } | TransferOutput::Chat(_) => {}
            },
            Ok(()) = transfer_state.changed() => {
                let state = transfer_state.borrow_and_update().clone();
                let _ = updates.send(ViewUpdate::Transfers(state));
            }
            Some(text) = copied.recv() => handle.transfer.send(TransferInput::SendClipboardText(text)),
            _ = tick.tick() => {
                send_notices(tracker.tick(unix_ms()));
                if *tracker.view() != last_view {
                    last_view = tracker.view().clone();
                    send_view(&tracker);
                }
            }
            cmd = commands.recv() => match cmd {
                Some(ViewCommand::Input(json)) => {
                    if tracker.view().control && !tracker.view().view_only {
                        match parse_input(&json) {
                            Ok(e) => handle.send_input(e),
                            Err(why) => tracing::warn!("input from the webview refused: {why}"),
                        }
                    }
                }
                Some(ViewCommand::ViewOnly(on)) => {
                    tracker.set_view_only(on);
                    handle.send_control(Control::ViewOnly { on });
                    last_view = tracker.view().clone();
                    send_view(&tracker);
                }
                Some(ViewCommand::Keyframe) => ask_keyframe(&handle),
                Some(ViewCommand::Shown { frame, after_ms }) => handle.send_control(Control::FrameShown {
                    frame,
                    after_ms: after_ms.min(MAX_SHOWN_AFTER_MS),
                }),
                Some(ViewCommand::Reconnect) => handle.reconnect(),
                Some(ViewCommand::Chat(text)) => handle.transfer.send(TransferInput::Chat(text)),
                Some(ViewCommand::SendFile(path)) => handle.transfer.send(TransferInput::SendFile(path)),
                Some(ViewCommand::DecideFile { id, accept }) => handle.transfer.send(TransferInput::Decide {
                    id,
                    accept,
                    collision: Collision::KeepBoth,
                }),
                Some(ViewCommand::CancelTransfer(id)) => handle.transfer.send(TransferInput::Cancel(id)),
                Some(ViewCommand::Leave) | None => {
                    handle.leave();
                    tracker.left();
                    send_view(&tracker);
                    return Ok(());
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::commands::{InputEvent, PointerButton};

    #[test]
    fn a_full_queue_drops_frames_and_then_waits_for_a_keyframe() {
        let mut g = FrameGate::default();
        assert_eq!(g.pass(true, true), Pass::Send);
        assert_eq!(g.pass(false, true), Pass::Send);
        // The webview is behind: dropped, and a keyframe asked for once.
        assert_eq!(g.pass(false, false), Pass::Drop { ask_keyframe: true });
        assert_eq!(g.pass(false, false), Pass::Drop { ask_keyframe: false });
        // Room again, but a delta frame cannot be decoded now.
        assert_eq!(g.pass(false, true), Pass::Drop { ask_keyframe: false });
        assert_eq!(g.pass(true, true), Pass::Send);
        assert_eq!(g.pass(false, true), Pass::Send);
        assert_eq!(g.dropped, 3);
    }

    #[test]
    fn absurd_picture_sizes_are_refused() {
        assert!(picture_size_ok(1920, 1080));
        assert!(picture_size_ok(7680, 4320));
        assert!(!picture_size_ok(7681, 4320));
        assert!(!picture_size_ok(65535, 65535));
        assert!(!picture_size_ok(0, 720));
    }

    #[test]
    fn frames_are_framed_for_the_webview_byte_for_byte() {
        let f = EncodedFrame {
            frame_id: 0x0102_0304,
            keyframe: true,
            capture_us: 0x1122_3344_5566_7788,
            width: 1280,
            height: 720,
            display_width: 2560,
            display_height: 1440,
            data: vec![0, 0, 0, 1, 0x67],
        };
        let m = frame_message(&f);
        assert_eq!(m.len(), FRAME_HEADER + 5);
        assert_eq!(
            &m[..FRAME_HEADER],
            &[
                1, 4, 3, 2, 1, 1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0x05, 0xd0, 0x02, 0x00, 0x0a,
                0xa0, 0x05
            ]
        );
        assert_eq!(&m[FRAME_HEADER..], &f.data[..]);
        let p = DecodedPicture {
            width: 2,
            height: 1,
            rgba: vec![1, 2, 3, 255, 4, 5, 6, 255],
        };
        let m = picture_message(7, &p, (4, 2));
        assert_eq!(m[0], PICTURE);
        assert_eq!(&m[1..9], &7u64.to_le_bytes());
        assert_eq!(&m[9..PICTURE_HEADER], &[2, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&m[PICTURE_HEADER..], &p.rgba[..]);
    }

    #[test]
    fn a_request_never_shows_its_code_or_password() {
        let req = ViewRequest {
            signal_url: Url::parse("http://10.0.0.1:8080").unwrap(),
            id: "123 456 789".into(),
            code: "ZMYEJ-RBXBZ".into(),
            password: Some(zeroize::Zeroizing::new("hunter2 but longer".into())),
            totp: None,
            decode: Decode::Webview,
        };
        let text = format!("{req:?}");
        assert!(!text.contains("ZMYEJ") && text.contains("123 456 789"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn the_webviews_input_is_checked_before_it_goes_out() {
        assert_eq!(
            parse_input(r#"{"type":"pointer-move","x":0.25,"y":0.5}"#),
            Ok(InputEvent::PointerMove { x: 0.25, y: 0.5 })
        );
        assert_eq!(
            parse_input(r#"{"type":"pointer-button","button":"left","down":true,"x":0.1,"y":0.2}"#),
            Ok(InputEvent::PointerButton {
                button: PointerButton::Left,
                down: true,
                x: 0.1,
                y: 0.2
            })
        );
        for bad in [
            "",
            "[]",
            "{",
            r#"{"type":"pointer-move","x":5,"y":0.5}"#,
            r#"{"type":"keyframe-request"}"#,
            r#"{"type":"mode","control":true}"#,
            r#"{"type":"nope"}"#,
        ] {
            assert!(parse_input(bad).is_err(), "{bad}");
        }
        let long = format!(r#"{{"type":"text","text":"{}"}}"#, "a".repeat(MAX_INPUT_BYTES));
        assert!(parse_input(&long).unwrap_err().contains("4096"));
    }
}
