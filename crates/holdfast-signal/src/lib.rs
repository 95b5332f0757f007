//! `holdfast-signal`: the signalling server, usable as a binary or embedded
//! (the headless host and the desktop app start one when none is configured).
//!
//! - [`hub`]: rooms and relay rules, pure.
//! - [`server`]: axum routes (`/ws`, `/healthz`, `/api/ice-servers`, the
//!   viewer's static files) and the TLS listener.

pub mod hub;
pub mod server;
pub mod tls;

pub use server::{spawn, RunningServer, ServerConfig};
pub use tls::TlsMode;
