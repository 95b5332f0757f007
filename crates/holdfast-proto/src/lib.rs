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
