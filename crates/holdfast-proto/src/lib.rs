//! Holdfast's wire formats, free of IO so that every side (server, host, Rust
//! viewer, tests) shares one definition and one set of validation rules.
//!
//! - [`signal`]: JSON messages on the signalling WebSocket, tagged by `type`.
//! - [`room`]: room IDs (9 digits) and one-time codes (50 random bits).
//! - [`video`]: the `video` data channel's chunk format and a frame reassembler.
//! - [`commands`]: the `commands` data channel: keepalive and control messages.
//!
//! Every decoder here is total: malformed input yields an error, never a panic.

pub mod commands;
pub mod room;
pub mod signal;
pub mod video;

pub use room::{CodeGate, RoomCode, RoomId, SessionToken};

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
