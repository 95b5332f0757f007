//! Holdfast's WebRTC roles over webrtc-rs 0.21.
//!
//! - [`auth`]: the end-to-end check of the code on the `commands` channel (wire form, binding).
//! - [`resume`]: what a client remembers to resume signalling (token, sequence numbers, unconfirmed messages), pure.
//! - [`signal_client`]: the signalling session that reconnects by itself.
//! - [`rtc`]: building a peer connection and turning its callbacks into events.
//! - [`rate`]: rate control per viewer (delivery estimate, pacing, the encoder's bitrate), pure.
//! - [`scale`]: the size the screen is encoded at, from the slowest path's capacity, pure.
//! - [`lanes`]: which encoder each viewer watches when their paths differ, pure.
//! - [`backpressure`]: the pure per-viewer frame gate (4 MiB ceiling, keyframe after drop).
//! - [`netwatch`]: noticing that the host's addresses changed (pure diff + a poll).
//! - [`link`]: one viewer's link as the host sees it (recovery, keepalive, quality, video gate), pure.
//! - [`host`]: registers a room, offers `video` + `commands` to each viewer, streams.
//! - [`transfer`]: a session's files, clipboard and chat on the `transfer` channel (the engine's async shell).
//! - [`viewer`]: joins a room, answers, reassembles frames (the Rust viewer).

pub mod auth;
pub mod backpressure;
pub mod host;
pub mod lanes;
pub mod link;
pub mod netwatch;
pub mod rate;
pub mod resume;
pub mod rtc;
pub mod scale;
pub mod shown;
pub mod signal_client;
pub mod transfer;
pub mod unattended;
pub mod viewer;

use holdfast_proto::signal::SignalError;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("signalling connection failed: {0}")]
    Connect(String),
    #[error("signalling connection closed")]
    SignalClosed,
    #[error("server refused: {0}")]
    Refused(SignalError),
    #[error("unexpected signalling message: {0}")]
    Unexpected(String),
    #[error("WebRTC: {0}")]
    Rtc(#[from] webrtc::error::Error),
    #[error(transparent)]
    Media(#[from] holdfast_media::MediaError),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("the session ended: {0}")]
    Ended(String),
    #[error("{}", .0.describe())]
    Auth(holdfast_proto::commands::AuthFailure),
    #[error("could not reconnect within {} s; the session has ended", .0.as_secs())]
    Expired(std::time::Duration),
}
