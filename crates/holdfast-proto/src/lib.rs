//! Holdfast's wire formats, free of IO so that every side (server, host, Rust
//! viewer, tests) shares one definition and one set of validation rules.
//!
//! - [`signal`]: JSON messages on the signalling WebSocket, tagged by `type`.
//! - [`room`]: room IDs (9 digits) and one-time codes (50 random bits).
//! - [`video`]: the `video` data channel's chunk format and a frame reassembler.
//! - [`commands`]: the `commands` data channel: keepalive and control messages.
//! - [`transfer`]: the `transfer` data channel: files, the clipboard and chat.
//!
//! Every decoder here is total: malformed input yields an error, never a panic.

pub mod commands;
pub mod room;
pub mod signal;
pub mod transfer;
pub mod video;

pub use room::{CodeGate, RoomCode, RoomId, SessionToken};

/// Why a versioned JSON message was refused before its own checks.
#[derive(Debug)]
pub(crate) enum JsonError {
    Invalid(String),
    Version(u64),
}

/// Reads one JSON object carrying an optional format version `v` (absent
/// means `version`; any other value is refused) and returns it without `v`.
pub(crate) fn parse_versioned(bytes: &[u8], version: u8) -> Result<serde_json::Value, JsonError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| JsonError::Invalid(e.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| JsonError::Invalid("a message is a JSON object".into()))?;
    match object.remove("v") {
        None => {}
        Some(v) => match v.as_u64() {
            Some(n) if n == u64::from(version) => {}
            Some(n) => return Err(JsonError::Version(n)),
            None => return Err(JsonError::Invalid("`v` must be a number".into())),
        },
    }
    Ok(value)
}

/// The JSON bytes of `message` with `v` = `version` added.
pub(crate) fn encode_versioned<T: serde::Serialize>(message: &T, version: u8) -> Vec<u8> {
    let mut value = serde_json::to_value(message).expect("a message always serialises");
    if let Some(o) = value.as_object_mut() {
        o.insert("v".into(), version.into());
    }
    serde_json::to_vec(&value).expect("a JSON value always serialises")
}

/// Test vectors the browser's implementation checks (`tests/vectors/NAME`):
/// `value` must equal the committed file, which `HOLDFAST_WRITE_VECTORS=1
/// cargo test` (of the crate that writes it) rewrites. For tests only.
#[doc(hidden)]
pub fn check_vectors(name: &str, value: serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    let now = serde_json::to_string_pretty(&value).expect("JSON") + "\n";
    if std::env::var_os("HOLDFAST_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &now).expect("vectors written");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "{} differs from what holdfast-proto computes: regenerate it and make Vitest pass",
        path.display()
    );
}
