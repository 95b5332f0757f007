//! The `commands` data channel: keepalive probes, input events and control
//! messages. Format version 1.
//!
//! Keepalive, byte for byte as the seeds specify: the host sends `\x00PING`
//! (`00 50 49 4E 47`) and the viewer answers `\x00PONG` (`00 50 4F 4E 47`).
//! A leading NUL can never start a JSON text, so the two kinds never collide.
//!
//! Everything else is one JSON object per message, at most
//! [`MAX_COMMAND_BYTES`], tagged by `type`, with an optional format version
//! `v` (absent means 1; any other value is refused). Unknown fields are
//! refused too, so a typo never silently does nothing.
//!
//! | `type`             | direction     | fields                                        |
//! |--------------------|---------------|-----------------------------------------------|
//! | `keyframe-request` | viewer → host |                                               |
//! | `pointer-move`     | viewer → host | `seq`, `x`, `y` (0..=1 of the shared display) |
//! | `pointer-button`   | viewer → host | `seq`, `button`, `down`, `x`, `y`             |
//! | `wheel`            | viewer → host | `seq`, `dx`, `dy` (notches; +dy scrolls down) |
//! | `key`              | viewer → host | `seq`, `code`, `key`, `down`                  |
//! | `text`             | viewer → host | `seq`, `text` (IME commits, pasted text)      |
//! | `release-all`      | viewer → host | `seq` (the viewer lost focus)                 |
//! | `view-only`        | viewer → host | `on` (the viewer's own switch)                |
//! | `select-display`   | viewer → host | `index`                                       |
//! | `mode`             | host → viewer | `control`, `files`, `clipboard` (what is accepted) |
//! | `displays`         | host → viewer | `current`, `displays`                         |
//! | `auth-hello`       | host → viewer | `kind`, `sid`, `msg` (base64)                 |
//! | `auth-reply`       | viewer → host | `msg`, `tag` (base64)                         |
//! | `auth-confirm`     | host → viewer | `tag` (base64)                                |
//! | `auth-failed`      | either way    | `reason`                                      |
//! | `frame-shown`      | viewer → host | `frame`, `after_ms` (arrival to canvas)       |
//! | `link-report`      | host → viewer | `shown_p50_ms`, `shown_p95_ms`, `estimate_kbps` |
//!
//! `frame-shown` acknowledges a video frame once it is drawn: `frame` is its
//! id, `after_ms` the time from its last byte arriving to the canvas, on the
//! viewer's own clock (no clock agreement is needed). The host turns these
//! into capture-to-screen times and reports them back in `link-report`, with
//! its estimate of the path (absent when rate control is off).
//!
//! The `auth-*` messages carry the end-to-end check of the code (CPace,
//! `holdfast-auth`); nothing else flows before it succeeded.
//!
//! `code` is the browser's physical `KeyboardEvent.code`, `key` the logical
//! `KeyboardEvent.key` (the character produced, for character keys).
//!
//! The host's side of the channel is unordered, so that keepalive and input
//! overtake queued video inside SCTP; input events therefore carry a `seq`
//! (per viewer, from 0, +1 per event) and the host replays them in order.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const PING: &[u8; 5] = b"\x00PING";
pub const PONG: &[u8; 5] = b"\x00PONG";
/// Largest commands-channel message accepted.
pub const MAX_COMMAND_BYTES: usize = 4096;
/// Current format version.
pub const COMMANDS_VERSION: u8 = 1;
/// Longest `text` accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest `code` or `key`, in bytes (the longest DOM names are ~20).
const MAX_KEY_NAME_BYTES: usize = 32;
/// Largest wheel step in one event, in notches.
pub const MAX_WHEEL_NOTCHES: i32 = 100;
/// Highest display index accepted.
const MAX_DISPLAY_INDEX: u32 = 63;
/// Most displays listed in a `displays` message.
const MAX_DISPLAYS: usize = 16;
/// Longest time a viewer may say it held a frame before drawing it, in ms.
pub const MAX_SHOWN_AFTER_MS: u32 = 60_000;
/// Longest time a link report may carry, in ms.
const MAX_REPORT_MS: u32 = 600_000;
/// Longest base64 field of an `auth-*` message (a CPace message is at most 512 bytes).
const MAX_AUTH_FIELD_CHARS: usize = 700;

/// Which secret an exchange uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// The code the host shows (a viewer's first connection).
    Code,
    /// The secret an earlier exchange with the same viewer left.
    Resume,
    /// The key of the host's permanent password (unattended access).
    Password,
}

/// Why an end-to-end check failed, as both sides and the server name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthFailure {
    /// A message that does not parse or is out of turn.
    Malformed,
    /// The two sides saw different DTLS certificates: someone is in the middle.
    Intercepted,
    /// The viewer did not prove it knows the code (or resume secret).
    WrongCode,
    /// The host did not prove it knows the code: someone may be in the middle.
    HostUnproven,
    /// The viewer lacks the secret the host asks for.
    NoSecret,
    /// The viewer did not prove it knows the host's permanent password.
    WrongPassword,
    /// Too many wrong passwords: the host refuses password joins for a while.
    LockedOut,
    /// The host asks for a one-time code (its second factor) and none came.
    TotpRequired,
    /// The one-time code was wrong, malformed or used already.
    WrongTotp,
}

impl AuthFailure {
    /// Words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            AuthFailure::Malformed => "the end-to-end check failed (a malformed message)",
            AuthFailure::Intercepted => {
                "someone is in the middle of this connection (the two sides saw different certificates): not connected"
            }
            AuthFailure::WrongCode => "wrong code",
            AuthFailure::HostUnproven => {
                "the other side could not prove it knows the code: someone may be in the middle of this connection"
            }
            AuthFailure::NoSecret => "the host asked for a secret this viewer does not have (join with the code)",
            AuthFailure::WrongPassword => "wrong password",
            AuthFailure::LockedOut => "too many wrong passwords: this computer refuses password logins for a while",
            AuthFailure::TotpRequired => "this computer asks for a one-time code from an authenticator app",
            AuthFailure::WrongTotp => "wrong one-time code (or one used already)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointerButton {
    Left,
    Middle,
    Right,
    Back,
    Forward,
}

/// One display the host can share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayDesc {
    pub index: u32,
    pub width: u32,
    pub height: u32,
}

/// A JSON message on the `commands` channel (everything but the keepalive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Control {
    /// The decoder needs a keyframe (after a loss or an error).
    KeyframeRequest,
    PointerMove {
        seq: u32,
        x: f32,
        y: f32,
    },
    PointerButton {
        seq: u32,
        button: PointerButton,
        down: bool,
        x: f32,
        y: f32,
    },
    Wheel {
        seq: u32,
        dx: i32,
        dy: i32,
    },
    Key {
        seq: u32,
        code: String,
        key: String,
        down: bool,
    },
    Text {
        seq: u32,
        text: String,
    },
    /// Release every key and button this viewer holds.
    ReleaseAll {
        seq: u32,
    },
    /// The viewer switches its own control off (`on: true`) or back on.
    ViewOnly {
        on: bool,
    },
    SelectDisplay {
        index: u32,
    },
    /// Host to viewer: whether the host currently accepts this viewer's
    /// input, and (on the `transfer` channel) its files and clipboard.
    Mode {
        control: bool,
        #[serde(default)]
        files: bool,
        #[serde(default)]
        clipboard: bool,
    },
    /// Host to viewer: the displays it can share and the one it shares.
    Displays {
        current: u32,
        displays: Vec<DisplayDesc>,
    },
    /// Host to viewer: the first message of the end-to-end check.
    AuthHello {
        kind: AuthKind,
        sid: String,
        msg: String,
    },
    /// Viewer to host: its share of the exchange and its proof.
    AuthReply {
        msg: String,
        tag: String,
    },
    /// Host to viewer: the host's proof.
    AuthConfirm {
        tag: String,
    },
    /// Host to viewer, after a password check passed with a second factor
    /// on: send `auth-totp` within the consent timeout.
    AuthTotpRequired,
    /// Viewer to host: the one-time code from the authenticator app.
    AuthTotp {
        code: String,
    },
    /// Either way: the check failed, and why; the connection closes.
    AuthFailed {
        reason: AuthFailure,
    },
    /// Viewer to host: frame `frame` reached the canvas `after_ms` after its
    /// last byte arrived.
    FrameShown {
        frame: u32,
        after_ms: u32,
    },
    /// Host to viewer: capture-to-screen times from this viewer's
    /// `frame-shown` messages, and the host's estimate of the path.
    LinkReport {
        shown_p50_ms: u32,
        shown_p95_ms: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimate_kbps: Option<u32>,
    },
}

/// An input event, as the host applies it (sequence number stripped).
#[derive(Debug, Clone, PartialEq)]
pub enum InputEvent {
    PointerMove {
        x: f32,
        y: f32,
    },
    PointerButton {
        button: PointerButton,
        down: bool,
        x: f32,
        y: f32,
    },
    Wheel {
        dx: i32,
        dy: i32,
    },
    Key {
        code: String,
        key: String,
        down: bool,
    },
    Text {
        text: String,
    },
    ReleaseAll,
}

impl Control {
    /// Splits an input message into its sequence number and event.
    pub fn into_input(self) -> Result<(u32, InputEvent), Control> {
        Ok(match self {
            Control::PointerMove { seq, x, y } => (seq, InputEvent::PointerMove { x, y }),
            Control::PointerButton {
                seq,
                button,
                down,
                x,
                y,
            } => (seq, InputEvent::PointerButton { button, down, x, y }),
            Control::Wheel { seq, dx, dy } => (seq, InputEvent::Wheel { dx, dy }),
            Control::Key { seq, code, key, down } => (seq, InputEvent::Key { code, key, down }),
            Control::Text { seq, text } => (seq, InputEvent::Text { text }),
            Control::ReleaseAll { seq } => (seq, InputEvent::ReleaseAll),
            other => return Err(other),
        })
    }

    /// Wraps an input event (the inverse of [`Control::into_input`]).
    pub fn input(seq: u32, event: InputEvent) -> Control {
        match event {
            InputEvent::PointerMove { x, y } => Control::PointerMove { seq, x, y },
            InputEvent::PointerButton { button, down, x, y } => Control::PointerButton {
                seq,
                button,
                down,
                x,
                y,
            },
            InputEvent::Wheel { dx, dy } => Control::Wheel { seq, dx, dy },
            InputEvent::Key { code, key, down } => Control::Key { seq, code, key, down },
            InputEvent::Text { text } => Control::Text { seq, text },
            InputEvent::ReleaseAll => Control::ReleaseAll { seq },
        }
    }

    /// Semantic checks serde cannot express.
    fn validate(&self) -> Result<(), CommandError> {
        let bad = |why: &str| Err(CommandError::Invalid(why.to_owned()));
        match self {
            Control::PointerMove { x, y, .. } | Control::PointerButton { x, y, .. }
                if !(0.0..=1.0).contains(x) || !(0.0..=1.0).contains(y) =>
            {
                return bad("pointer coordinates must be within 0..=1")
            }
            Control::Wheel { dx, dy, .. } if dx.abs() > MAX_WHEEL_NOTCHES || dy.abs() > MAX_WHEEL_NOTCHES => {
                return bad("wheel step too large")
            }
            Control::Key { code, key, .. } => {
                let code_ok = code.len() <= MAX_KEY_NAME_BYTES && code.bytes().all(|b| b.is_ascii_alphanumeric());
                if !code_ok {
                    return bad("`code` must be a short alphanumeric KeyboardEvent.code");
                }
                if key.is_empty() || key.len() > MAX_KEY_NAME_BYTES || key.chars().any(char::is_control) {
                    return bad("`key` must be a short KeyboardEvent.key");
                }
            }
            Control::Text { text, .. } => {
                let n = text.chars().count();
                if n == 0 || n > MAX_TEXT_CHARS {
                    return bad("`text` must hold 1 to 256 characters");
                }
                if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                    return bad("`text` may not contain control characters");
                }
            }
            Control::SelectDisplay { index } if *index > MAX_DISPLAY_INDEX => return bad("display index out of range"),
            Control::Displays { displays, .. } if displays.len() > MAX_DISPLAYS => return bad("too many displays"),
            Control::AuthHello { sid, msg, .. }
                if sid.len() > MAX_AUTH_FIELD_CHARS || msg.len() > MAX_AUTH_FIELD_CHARS =>
            {
                return bad("authentication field too long")
            }
            Control::AuthReply { msg, tag } if msg.len() > MAX_AUTH_FIELD_CHARS || tag.len() > MAX_AUTH_FIELD_CHARS => {
                return bad("authentication field too long")
            }
            Control::AuthConfirm { tag } if tag.len() > MAX_AUTH_FIELD_CHARS => {
                return bad("authentication field too long")
            }
            Control::AuthTotp { code } if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) => {
                return bad("`code` must be 6 digits")
            }
            Control::FrameShown { after_ms, .. } if *after_ms > MAX_SHOWN_AFTER_MS => {
                return bad("`after_ms` out of range")
            }
            Control::LinkReport {
                shown_p50_ms,
                shown_p95_ms,
                ..
            } if shown_p50_ms > shown_p95_ms || *shown_p95_ms > MAX_REPORT_MS => {
                return bad("link report times out of range")
            }
            _ => {}
        }
        Ok(())
    }
}

/// Any message on the `commands` channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ping,
    Pong,
    Control(Control),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("command of {0} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("unknown binary command")]
    UnknownBinary,
    #[error("invalid command: {0}")]
    Invalid(String),
    #[error("unsupported commands version {0}")]
    Version(u64),
}

impl Command {
    /// Decodes and validates one message. Total: never panics.
    pub fn parse(bytes: &[u8]) -> Result<Command, CommandError> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(CommandError::TooLarge(bytes.len()));
        }
        match bytes {
            b if b == PING => return Ok(Command::Ping),
            b if b == PONG => return Ok(Command::Pong),
            [0, ..] => return Err(CommandError::UnknownBinary),
            _ => {}
        }
        let value = crate::parse_versioned(bytes, COMMANDS_VERSION).map_err(|e| match e {
            crate::JsonError::Invalid(why) => CommandError::Invalid(why),
            crate::JsonError::Version(n) => CommandError::Version(n),
        })?;
        let control: Control = serde_json::from_value(value).map_err(|e| CommandError::Invalid(e.to_string()))?;
        control.validate()?;
        Ok(Command::Control(control))
    }

    /// The wire bytes; control messages are JSON text carrying `v`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Command::Ping => PING.to_vec(),
            Command::Pong => PONG.to_vec(),
            Command::Control(c) => crate::encode_versioned(c, COMMANDS_VERSION),
        }
    }
}

impl From<Control> for Command {
    fn from(c: Control) -> Self {
        Command::Control(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keepalive_bytes_match_the_seed() {
        assert_eq!(PING, &[0x00, 0x50, 0x49, 0x4E, 0x47]);
        assert_eq!(PONG, &[0x00, 0x50, 0x4F, 0x4E, 0x47]);
        assert_eq!(Command::parse(PING).unwrap(), Command::Ping);
        assert_eq!(Command::parse(PONG).unwrap(), Command::Pong);
    }

    fn every_control() -> Vec<Control> {
        vec![
            Control::KeyframeRequest,
            Control::PointerMove {
                seq: 0,
                x: 0.25,
                y: 1.0,
            },
            Control::PointerButton {
                seq: 1,
                button: PointerButton::Right,
                down: true,
                x: 0.0,
                y: 0.5,
            },
            Control::Wheel { seq: 2, dx: 0, dy: -3 },
            Control::Key {
                seq: 3,
                code: "KeyQ".into(),
                key: "q".into(),
                down: true,
            },
            Control::Key {
                seq: 4,
                code: "ShiftLeft".into(),
                key: "Shift".into(),
                down: false,
            },
            Control::Text {
                seq: 5,
                text: "héllo 你好 ✓".into(),
            },
            Control::ReleaseAll { seq: 6 },
            Control::ViewOnly { on: true },
            Control::SelectDisplay { index: 1 },
            Control::Mode {
                control: false,
                files: false,
                clipboard: false,
            },
            Control::Displays {
                current: 0,
                displays: vec![DisplayDesc {
                    index: 0,
                    width: 1920,
                    height: 1080,
                }],
            },
            Control::FrameShown {
                frame: 41,
                after_ms: 12,
            },
            Control::LinkReport {
                shown_p50_ms: 85,
                shown_p95_ms: 140,
                estimate_kbps: Some(2400),
            },
            Control::LinkReport {
                shown_p50_ms: 85,
                shown_p95_ms: 140,
                estimate_kbps: None,
            },
            Control::AuthHello {
                kind: AuthKind::Password,
                sid: "c2lk".into(),
                msg: "bXNn".into(),
            },
            Control::AuthTotpRequired,
            Control::AuthTotp { code: "012345".into() },
            Control::AuthFailed {
                reason: AuthFailure::LockedOut,
            },
            Control::AuthFailed {
                reason: AuthFailure::WrongTotp,
            },
        ]
    }

    /// The failure names both languages know (ui/src/auth.ts's AUTH_FAILURES).
    #[test]
    fn auth_failure_vectors_match_the_committed_file() {
        use AuthFailure::*;
        let all = [
            Malformed,
            Intercepted,
            WrongCode,
            HostUnproven,
            NoSecret,
            WrongPassword,
            LockedOut,
            TotpRequired,
            WrongTotp,
        ];
        // Fails to compile when a failure is added and not listed above.
        let _listed = |f: AuthFailure| match f {
            Malformed | Intercepted | WrongCode | HostUnproven | NoSecret | WrongPassword | LockedOut
            | TotpRequired | WrongTotp => (),
        };
        crate::check_vectors(
            "auth-failures.json",
            serde_json::json!({
                "about": "Written by holdfast-proto (commands.rs), checked by ui/src/auth.test.ts.",
                "failures": all,
            }),
        );
    }

    #[test]
    fn every_control_round_trips_with_its_version() {
        for c in every_control() {
            let bytes = Command::Control(c.clone()).encode();
            assert!(bytes.len() <= MAX_COMMAND_BYTES);
            let text = std::str::from_utf8(&bytes).unwrap();
            assert!(text.contains(r#""v":1"#), "{text}");
            assert_eq!(Command::parse(&bytes).unwrap(), Command::Control(c));
        }
    }

    #[test]
    fn version_is_optional_but_checked() {
        assert_eq!(
            Command::parse(br#"{"type":"keyframe-request"}"#).unwrap(),
            Command::Control(Control::KeyframeRequest)
        );
        assert_eq!(
            Command::parse(br#"{"type":"keyframe-request","v":9}"#),
            Err(CommandError::Version(9))
        );
        assert!(matches!(
            Command::parse(br#"{"type":"keyframe-request","v":"1"}"#),
            Err(CommandError::Invalid(_))
        ));
    }

    #[test]
    fn input_splits_and_rewraps() {
        for c in every_control() {
            if let Ok((seq, ev)) = c.clone().into_input() {
                assert_eq!(Control::input(seq, ev), c);
            }
        }
        assert!(Control::Mode {
            control: true,
            files: true,
            clipboard: true
        }
        .into_input()
        .is_err());
    }

    #[test]
    fn rejects_bad_commands() {
        let invalid = |s: &str| matches!(Command::parse(s.as_bytes()), Err(CommandError::Invalid(_)));
        assert_eq!(Command::parse(b"\x00PANG"), Err(CommandError::UnknownBinary));
        assert!(invalid("{"));
        assert!(invalid("[1,2]"));
        assert!(invalid(r#"{"type":"format-disk"}"#));
        assert!(invalid(r#"{"type":"pointer-move","seq":1,"x":1.5,"y":0}"#));
        assert!(invalid(r#"{"type":"pointer-move","seq":1,"x":-0.1,"y":0}"#));
        assert!(invalid(r#"{"type":"pointer-move","seq":-1,"x":0,"y":0}"#));
        assert!(invalid(r#"{"type":"pointer-move","x":0,"y":0}"#));
        assert!(invalid(r#"{"type":"pointer-move","seq":1,"x":0,"y":0,"admin":true}"#));
        assert!(invalid(
            r#"{"type":"pointer-button","seq":1,"button":"turbo","down":true,"x":0,"y":0}"#
        ));
        assert!(invalid(r#"{"type":"wheel","seq":1,"dx":0,"dy":100000}"#));
        assert!(invalid(
            r#"{"type":"key","seq":1,"code":"Key A","key":"a","down":true}"#
        ));
        assert!(invalid(r#"{"type":"key","seq":1,"code":"KeyA","key":"","down":true}"#));
        assert!(invalid(
            r#"{"type":"key","seq":1,"code":"KeyA","key":"\u0007","down":true}"#
        ));
        assert!(invalid(r#"{"type":"text","seq":1,"text":""}"#));
        assert!(invalid(r#"{"type":"text","seq":1,"text":"a\u001bb"}"#));
        assert!(invalid(&format!(
            r#"{{"type":"text","seq":1,"text":"{}"}}"#,
            "x".repeat(300)
        )));
        assert!(invalid(r#"{"type":"select-display","index":1000}"#));
        assert!(invalid(r#"{"type":"frame-shown","frame":1,"after_ms":60001}"#));
        assert!(invalid(r#"{"type":"frame-shown","frame":-1,"after_ms":0}"#));
        assert!(invalid(r#"{"type":"frame-shown","frame":1}"#));
        assert!(invalid(r#"{"type":"auth-totp","code":"12345"}"#));
        assert!(invalid(r#"{"type":"auth-totp","code":"12345a"}"#));
        assert!(invalid(r#"{"type":"auth-totp","code":"1234567"}"#));
        assert!(invalid(r#"{"type":"auth-totp"}"#));
        assert!(invalid(r#"{"type":"link-report","shown_p50_ms":90,"shown_p95_ms":80}"#));
        assert!(invalid(
            r#"{"type":"link-report","shown_p50_ms":1,"shown_p95_ms":700000}"#
        ));
        assert!(matches!(
            Command::parse(&vec![b' '; 5000]),
            Err(CommandError::TooLarge(5000))
        ));
    }

    proptest! {
        // The decoder is total: arbitrary bytes, and mutations of valid
        // messages, give a value or an error, never a panic.
        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Command::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_messages(which in 0usize..64, pos in any::<usize>(), byte in any::<u8>()) {
            let controls = every_control();
            let mut bytes = Command::Control(controls[which % controls.len()].clone()).encode();
            let i = pos % bytes.len();
            bytes[i] = byte;
            if let Ok(Command::Control(c)) = Command::parse(&bytes) {
                // Whatever was accepted re-encodes to something accepted.
                prop_assert!(Command::parse(&Command::Control(c).encode()).is_ok());
            }
        }
    }
}
