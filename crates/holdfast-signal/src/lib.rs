//! `holdfast-signal`: the signalling server, usable as a binary or embedded
//! (the headless host and the desktop app start one when none is configured).
//!
//! - [`hub`]: rooms, admission (consent, session tokens) and relay rules, pure.
//! - [`access`]: the failed-attempt limiter behind lockouts, pure.
//! - [`replay`]: the per-room buffer of sequence-numbered messages for
//!   reconnecting peers, pure.
//! - [`token`]: signed session tokens that outlive a server restart.
//! - [`origin`]: which browser pages may use the WebSocket and the API.
//! - [`turn`]: short-lived TURN credentials (coturn's `use-auth-secret`).
//! - [`server`]: axum routes (`/ws`, `/healthz`, `/api/ice-servers`, the
//!   viewer's static files) and the TLS listener.

pub mod access;
pub mod cluster;
pub mod forwarded;
pub mod hub;
pub mod origin;
pub mod replay;
pub mod server;
pub mod settings;
pub mod tls;
pub mod token;
pub mod turn;

pub use server::{spawn, RunningServer, ServerConfig};
pub use tls::TlsMode;
