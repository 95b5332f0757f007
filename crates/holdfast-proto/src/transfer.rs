//! The `transfer` data channel: files both ways, the clipboard and chat.
//! Format version 1.
//!
//! The channel is reliable and ordered, and separate from `video` and
//! `commands` so that its own flow control (the sender keeps little queued,
//! and nothing while video waits) never delays a frame or a keepalive.
//!
//! Two kinds of message:
//!
//! - **Chunk** (binary, starts with `0x00`, which no JSON text can):
//!   `00 | version u8 = 1 | id u32 BE | offset u64 BE | data (1..=MAX_CHUNK_DATA bytes)`,
//!   the bytes `offset..offset+len` of transfer `id`, sent by its sender.
//! - **Control** (one JSON object, at most [`MAX_CONTROL_BYTES`], tagged by
//!   `type`, optional `v` = 1, unknown fields refused):
//!
//! | `type`     | sent by             | fields                                   |
//! |------------|---------------------|------------------------------------------|
//! | `hello`    | both, at open       | `chat_seen` (the other side's messages held) |
//! | `chat`     | either              | `n` (the sender's count from 0), `text`  |
//! | `offer`    | a transfer's sender | `id`, `kind`, `name`, `size`             |
//! | `accept`   | its receiver        | `id`, `from` (the first byte wanted)     |
//! | `progress` | its receiver        | `id`, `have` (bytes written, in order)   |
//! | `end`      | its sender          | `id`, `sha256` (64 lowercase hex digits) |
//! | `complete` | its receiver        | `id` (verified and saved)                |
//! | `reject`   | its receiver        | `id`, `reason` (declined, failed, stopped) |
//! | `abort`    | its sender          | `id`, `reason`                           |
//!
//! Every message about a transfer comes from one role, so a transfer's `id`
//! (chosen by its sender) never needs a direction: the host's ids are odd
//! and the viewer's even, and a side refuses an offer with the other's parity.
//!
//! Resuming: after a reconnection both sides send `hello`; the receiver of
//! an unfinished transfer sends `accept` again with `from` = the bytes it
//! confirmed, and the sender goes on from there. `chat` messages the other
//! side has not seen (`n >= chat_seen`) are sent again, in order.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Current format version.
pub const TRANSFER_VERSION: u8 = 1;
/// The data channel's label.
pub const CHANNEL_LABEL: &str = "transfer";
/// Largest JSON message accepted.
pub const MAX_CONTROL_BYTES: usize = 4096;
/// Bytes of file data a sender puts in one chunk.
pub const CHUNK_DATA: usize = 32 * 1024;
/// Most file data a chunk may carry (under the 64 KiB a data channel message
/// may be by default).
pub const MAX_CHUNK_DATA: usize = 60 * 1024;
/// A chunk's header: marker, version, id, offset.
pub const CHUNK_HEADER: usize = 1 + 1 + 4 + 8;
/// Longest file name, in bytes (what Linux, macOS and Windows allow).
pub const MAX_NAME_BYTES: usize = 255;
/// Largest file offered.
pub const MAX_FILE_BYTES: u64 = 1 << 40;
/// Largest clipboard text, in bytes of UTF-8.
pub const MAX_CLIPBOARD_TEXT_BYTES: u64 = 1024 * 1024;
/// Largest clipboard image (PNG), in bytes.
pub const MAX_CLIPBOARD_IMAGE_BYTES: u64 = 16 * 1024 * 1024;
/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;

/// What a transfer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A file, saved under `name` in the receiver's folder.
    File,
    /// The sender's clipboard text (UTF-8); `name` is empty.
    ClipboardText,
    /// The sender's clipboard image, as PNG; `name` is empty.
    ClipboardImage,
}

impl Kind {
    /// The most bytes a transfer of this kind may carry.
    pub fn max_size(self) -> u64 {
        match self {
            Kind::File => MAX_FILE_BYTES,
            Kind::ClipboardText => MAX_CLIPBOARD_TEXT_BYTES,
            Kind::ClipboardImage => MAX_CLIPBOARD_IMAGE_BYTES,
        }
    }

    pub fn is_clipboard(self) -> bool {
        !matches!(self, Kind::File)
    }
}

/// Why a receiver turned down or stopped a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    /// The person on the receiving side said no.
    Declined,
    /// Not allowed now: no control, or the switch for it is off.
    NotAllowed,
    /// The name is not a plain file name (a path, `..`, control characters).
    BadName,
    /// More than the receiver takes (see [`Kind::max_size`]), or too many at once.
    TooLarge,
    /// Not enough free space in the receiving folder.
    NoSpace,
    /// Writing failed (the disk filled up, the folder went away).
    WriteFailed,
    /// The bytes received do not hash to what the sender said.
    Corrupted,
    /// The receiver stopped it.
    Cancelled,
    /// A message out of turn (bytes past the end, an unknown id).
    Protocol,
}

/// Why a sender stopped a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbortReason {
    /// The sender stopped it.
    Cancelled,
    /// The file could no longer be read (deleted, changed size).
    ReadFailed,
    /// A message out of turn.
    Protocol,
}

impl RejectReason {
    /// Words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            RejectReason::Declined => "the other side declined it",
            RejectReason::NotAllowed => "file transfer or clipboard sharing is not allowed now",
            RejectReason::BadName => "the name is not a plain file name",
            RejectReason::TooLarge => "too large",
            RejectReason::NoSpace => "not enough free disk space",
            RejectReason::WriteFailed => "the file could not be written",
            RejectReason::Corrupted => "the received bytes did not match (SHA-256)",
            RejectReason::Cancelled => "cancelled by the receiver",
            RejectReason::Protocol => "a malformed transfer message",
        }
    }
}

impl AbortReason {
    /// Words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            AbortReason::Cancelled => "cancelled by the sender",
            AbortReason::ReadFailed => "the sender could no longer read the file",
            AbortReason::Protocol => "a malformed transfer message",
        }
    }
}

/// A JSON message on the `transfer` channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Control {
    Hello {
        chat_seen: u32,
    },
    Chat {
        n: u32,
        text: String,
    },
    Offer {
        id: u32,
        kind: Kind,
        name: String,
        size: u64,
    },
    Accept {
        id: u32,
        from: u64,
    },
    Progress {
        id: u32,
        have: u64,
    },
    End {
        id: u32,
        sha256: String,
    },
    Complete {
        id: u32,
    },
    Reject {
        id: u32,
        reason: RejectReason,
    },
    Abort {
        id: u32,
        reason: AbortReason,
    },
}

/// Any message on the `transfer` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Chunk { id: u32, offset: u64, data: Vec<u8> },
    Control(Control),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransferError {
    #[error("transfer message of {0} bytes is too large")]
    TooLarge(usize),
    #[error("malformed chunk: {0}")]
    BadChunk(&'static str),
    #[error("invalid transfer message: {0}")]
    Invalid(String),
    #[error("unsupported transfer format version {0}")]
    Version(u64),
}

/// Why a name is not a plain file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
    #[error("the name contains a path separator")]
    Separator,
    #[error("the name is `.` or `..`")]
    Dots,
    #[error("the name contains control characters")]
    Control,
    #[error("the name is reserved on Windows or ends in a dot or space")]
    Reserved,
}

/// A file name the receiver may create: one path component, no separators
/// (`/` or `\`), not `.` or `..`, no control characters, at most
/// [`MAX_NAME_BYTES`] bytes, nothing Windows would read as a device or trim.
/// Checked by the sender before offering and again by the receiver.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    if name.contains(['/', '\\']) {
        return Err(NameError::Separator);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots);
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    {
        // Bidirectional overrides too: they make `exe.txt` of `txt.exe`.
        return Err(NameError::Control);
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if device || name.ends_with(['.', ' ']) || name.contains(':') {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// Whether `sha256` is 64 lowercase hex digits.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Control {
    /// Semantic checks serde cannot express.
    fn validate(&self) -> Result<(), TransferError> {
        let bad = |why: &str| Err(TransferError::Invalid(why.to_owned()));
        match self {
            Control::Chat { text, .. } => {
                let n = text.chars().count();
                if n == 0 || n > MAX_CHAT_CHARS {
                    return bad("`text` must hold 1 to 2000 characters");
                }
                if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                    return bad("`text` may not contain control characters");
                }
            }
            Control::Offer { kind, name, size, .. } => {
                if *size > kind.max_size() {
                    return bad("`size` exceeds what this kind may carry");
                }
                match kind {
                    Kind::File => {
                        if let Err(e) = check_name(name) {
                            return Err(TransferError::Invalid(format!("`name`: {e}")));
                        }
                    }
                    _ if !name.is_empty() => return bad("a clipboard transfer has no name"),
                    _ => {}
                }
            }
            Control::Accept { from, .. } if *from > MAX_FILE_BYTES => return bad("`from` out of range"),
            Control::Progress { have, .. } if *have > MAX_FILE_BYTES => return bad("`have` out of range"),
            Control::End { sha256, .. } if !is_sha256_hex(sha256) => {
                return bad("`sha256` must be 64 lowercase hex digits")
            }
            _ => {}
        }
        Ok(())
    }
}

impl Message {
    /// Decodes and validates one message. Total: never panics.
    pub fn parse(bytes: &[u8]) -> Result<Message, TransferError> {
        match bytes {
            [0, rest @ ..] => {
                if bytes.len() > CHUNK_HEADER + MAX_CHUNK_DATA {
                    return Err(TransferError::TooLarge(bytes.len()));
                }
                let [version, i0, i1, i2, i3, o0, o1, o2, o3, o4, o5, o6, o7, data @ ..] = rest else {
                    return Err(TransferError::BadChunk("shorter than its header"));
                };
                if *version != TRANSFER_VERSION {
                    return Err(TransferError::Version((*version).into()));
                }
                if data.is_empty() {
                    return Err(TransferError::BadChunk("no data"));
                }
                let offset = u64::from_be_bytes([*o0, *o1, *o2, *o3, *o4, *o5, *o6, *o7]);
                if offset
                    .checked_add(data.len() as u64)
                    .is_none_or(|end| end > MAX_FILE_BYTES)
                {
                    return Err(TransferError::BadChunk("offset out of range"));
                }
                Ok(Message::Chunk {
                    id: u32::from_be_bytes([*i0, *i1, *i2, *i3]),
                    offset,
                    data: data.to_vec(),
                })
            }
            _ => {
                if bytes.len() > MAX_CONTROL_BYTES {
                    return Err(TransferError::TooLarge(bytes.len()));
                }
                let value = crate::parse_versioned(bytes, TRANSFER_VERSION).map_err(|e| match e {
                    crate::JsonError::Invalid(why) => TransferError::Invalid(why),
                    crate::JsonError::Version(n) => TransferError::Version(n),
                })?;
                let control: Control =
                    serde_json::from_value(value).map_err(|e| TransferError::Invalid(e.to_string()))?;
                control.validate()?;
                Ok(Message::Control(control))
            }
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Chunk { id, offset, data } => encode_chunk(*id, *offset, data),
            Message::Control(c) => crate::encode_versioned(c, TRANSFER_VERSION),
        }
    }
}

/// A chunk's wire bytes, without building a [`Message`] (the sender's hot path).
pub fn encode_chunk(id: u32, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNK_HEADER + data.len());
    out.push(0);
    out.push(TRANSFER_VERSION);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(data);
    out
}

impl From<Control> for Message {
    fn from(c: Control) -> Self {
        Message::Control(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_controls() -> Vec<Control> {
        vec![
            Control::Hello { chat_seen: 3 },
            Control::Chat {
                n: 0,
                text: "Hallo, 你好\nzweite Zeile".into(),
            },
            Control::Offer {
                id: 1,
                kind: Kind::File,
                name: "report 2026.pdf".into(),
                size: 200 << 20,
            },
            Control::Offer {
                id: 2,
                kind: Kind::ClipboardText,
                name: String::new(),
                size: 12,
            },
            Control::Offer {
                id: 4,
                kind: Kind::ClipboardImage,
                name: String::new(),
                size: 40_000,
            },
            Control::Accept { id: 1, from: 65536 },
            Control::Progress { id: 1, have: 1 << 20 },
            Control::End {
                id: 1,
                sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            },
            Control::Complete { id: 1 },
            Control::Reject {
                id: 1,
                reason: RejectReason::NoSpace,
            },
            Control::Abort {
                id: 1,
                reason: AbortReason::Cancelled,
            },
        ]
    }

    #[test]
    fn every_control_round_trips_and_carries_its_version() {
        for c in all_controls() {
            let bytes = Message::from(c.clone()).encode();
            assert!(bytes.len() <= MAX_CONTROL_BYTES);
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json["v"], 1, "{json}");
            assert_eq!(Message::parse(&bytes).unwrap(), Message::Control(c));
        }
    }

    #[test]
    fn a_chunk_round_trips_at_its_largest() {
        let data = vec![0xa5; MAX_CHUNK_DATA];
        let bytes = encode_chunk(7, (1 << 40) - MAX_CHUNK_DATA as u64, &data);
        assert_eq!(bytes.len(), CHUNK_HEADER + MAX_CHUNK_DATA);
        assert_eq!(
            Message::parse(&bytes).unwrap(),
            Message::Chunk {
                id: 7,
                offset: (1 << 40) - MAX_CHUNK_DATA as u64,
                data
            }
        );
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let good = encode_chunk(1, 0, b"abc");
        let mut v2 = good.clone();
        v2[1] = 2;
        assert_eq!(Message::parse(&v2), Err(TransferError::Version(2)));
        assert!(matches!(
            Message::parse(&good[..CHUNK_HEADER]),
            Err(TransferError::BadChunk(_))
        ));
        assert!(matches!(Message::parse(&good[..5]), Err(TransferError::BadChunk(_))));
        let big = encode_chunk(1, 0, &vec![0; MAX_CHUNK_DATA + 1]);
        assert!(matches!(Message::parse(&big), Err(TransferError::TooLarge(_))));
        let past = encode_chunk(1, MAX_FILE_BYTES - 2, b"abc");
        assert!(matches!(Message::parse(&past), Err(TransferError::BadChunk(_))));
        let wraps = encode_chunk(1, u64::MAX, b"a");
        assert!(matches!(Message::parse(&wraps), Err(TransferError::BadChunk(_))));
    }

    #[test]
    fn malformed_controls_are_refused() {
        let cases: &[&str] = &[
            r#"{"type":"offer","id":1,"kind":"file","name":"../x","size":1}"#,
            r#"{"type":"offer","id":1,"kind":"file","name":"/etc/passwd","size":1}"#,
            r#"{"type":"offer","id":1,"kind":"file","name":"a\u0007b","size":1}"#,
            r#"{"type":"offer","id":1,"kind":"file","name":"..","size":1}"#,
            r#"{"type":"offer","id":1,"kind":"file","name":"","size":1}"#,
            r#"{"type":"offer","id":1,"kind":"file","name":"x","size":1099511627777}"#,
            r#"{"type":"offer","id":1,"kind":"clipboard-text","name":"","size":1048577}"#,
            r#"{"type":"offer","id":1,"kind":"clipboard-text","name":"x","size":1}"#,
            r#"{"type":"offer","id":1,"kind":"file","name":"x","size":1,"path":"/"}"#,
            r#"{"type":"offer","id":1,"kind":"folder","name":"x","size":1}"#,
            r#"{"type":"end","id":1,"sha256":"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}"#,
            r#"{"type":"end","id":1,"sha256":"abc"}"#,
            r#"{"type":"chat","n":0,"text":""}"#,
            r#"{"type":"chat","n":0,"text":"a\u001bb"}"#,
            r#"{"type":"accept","id":1,"from":-1}"#,
            r#"{"type":"accept","id":1}"#,
            r#"{"type":"hello","chat_seen":0,"v":2}"#,
            r#"{"type":"hello","chat_seen":0,"v":"1"}"#,
            r#"[1,2]"#,
            "{\"type\":\"chat\",\"n\":0,\"text\":\"\u{fffd}",
        ];
        for c in cases {
            assert!(Message::parse(c.as_bytes()).is_err(), "accepted {c}");
        }
        let long = format!(r#"{{"type":"chat","n":0,"text":"{}"}}"#, "é".repeat(MAX_CHAT_CHARS + 1));
        assert!(Message::parse(long.as_bytes()).is_err());
        let huge = format!(r#"{{"type":"chat","n":0,"text":"{}"}}"#, "a".repeat(MAX_CONTROL_BYTES));
        assert!(matches!(
            Message::parse(huge.as_bytes()),
            Err(TransferError::TooLarge(_))
        ));
        assert!(Message::parse(&[0xff, 0xfe, b'{']).is_err(), "not UTF-8");
    }

    #[test]
    fn only_plain_file_names_pass() {
        for ok in [
            "a",
            "report.pdf",
            "日本語.txt",
            ".bashrc",
            "a..b",
            "x".repeat(255).as_str(),
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        let refused = [
            ("", NameError::Empty),
            ("../x", NameError::Separator),
            ("/etc/passwd", NameError::Separator),
            ("a\\b", NameError::Separator),
            (".", NameError::Dots),
            ("..", NameError::Dots),
            ("a\nb", NameError::Control),
            ("a\u{7f}", NameError::Control),
            ("photo\u{202e}gpj.exe", NameError::Control),
            ("CON", NameError::Reserved),
            ("com1.txt", NameError::Reserved),
            ("trailing.", NameError::Reserved),
            ("trailing ", NameError::Reserved),
            ("c:x", NameError::Reserved),
        ];
        for (name, why) in refused {
            assert_eq!(check_name(name), Err(why), "{name:?}");
        }
        assert_eq!(check_name(&"x".repeat(256)), Err(NameError::TooLong));
        assert_eq!(
            check_name(&"é".repeat(128)),
            Err(NameError::TooLong),
            "bytes, not characters"
        );
    }

    /// Messages and what they parse to, for the browser's implementation
    /// (`ui/src/transfer.test.ts` reads `tests/vectors/transfer.json`).
    #[test]
    fn vectors_match_the_committed_file() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut cases: Vec<serde_json::Value> = all_controls()
            .into_iter()
            .map(|c| {
                let bytes = Message::from(c.clone()).encode();
                serde_json::json!({ "bytes": hex(&bytes), "parsed": serde_json::to_value(&c).unwrap() })
            })
            .collect();
        let chunk = encode_chunk(0x0102_0304, 0x05_0607_0809, b"data");
        assert_eq!(
            Message::parse(&chunk).unwrap(),
            Message::Chunk {
                id: 0x0102_0304,
                offset: 0x05_0607_0809,
                data: b"data".to_vec()
            }
        );
        cases.push(serde_json::json!({
            "bytes": hex(&chunk),
            "parsed": { "type": "chunk", "id": 0x0102_0304u32, "offset": 0x05_0607_0809u64, "data": hex(b"data") }
        }));
        for bad in [
            encode_chunk(1, 0, b"").to_vec(),
            encode_chunk(1, MAX_FILE_BYTES, b"a"),
            {
                let mut c = encode_chunk(1, 0, b"a");
                c[1] = 9;
                c
            },
            br#"{"type":"offer","id":1,"kind":"file","name":"../x","size":1}"#.to_vec(),
            br#"{"type":"end","id":1,"sha256":"abc"}"#.to_vec(),
            br#"{"type":"chat","n":0,"text":"x","extra":1}"#.to_vec(),
        ] {
            assert!(Message::parse(&bad).is_err());
            cases.push(serde_json::json!({ "bytes": hex(&bad), "parsed": null }));
        }
        let names: Vec<serde_json::Value> = [
            "report.pdf",
            ".bashrc",
            "../x",
            "/etc/passwd",
            "a\\b",
            "..",
            "a\u{1}b",
            "photo\u{202e}gpj.exe",
            "CON",
            "lpt9.log",
            "end.",
            "c:x",
            "日本語.txt",
        ]
        .into_iter()
        .map(|n| serde_json::json!({ "name": n, "ok": check_name(n).is_ok() }))
        .collect();
        crate::check_vectors(
            "transfer.json",
            serde_json::json!({
                "version": TRANSFER_VERSION,
                "max_control_bytes": MAX_CONTROL_BYTES,
                "chunk_data": CHUNK_DATA,
                "max_chunk_data": MAX_CHUNK_DATA,
                "max_chat_chars": MAX_CHAT_CHARS,
                "max_clipboard_text_bytes": MAX_CLIPBOARD_TEXT_BYTES,
                "cases": cases,
                "names": names,
            }),
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_what_it_accepts_re_encodes(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Ok(m) = Message::parse(&bytes) {
                prop_assert_eq!(Message::parse(&m.encode()).unwrap(), m);
            }
        }

        #[test]
        fn chunks_round_trip(id in any::<u32>(), offset in 0u64..MAX_FILE_BYTES - 100, data in proptest::collection::vec(any::<u8>(), 1..100)) {
            let m = Message::Chunk { id, offset, data };
            prop_assert_eq!(Message::parse(&m.encode()).unwrap(), m);
        }
    }
}
