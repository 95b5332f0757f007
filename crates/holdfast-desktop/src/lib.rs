//! What the Holdfast desktop app does, without a window, so it runs and is
//! tested headless:
//!
//! - [`settings`]: the user's settings as TOML in the OS config directory,
//!   validated within safe bounds, and a persistent device ID;
//! - [`logs`]: `tracing` into rotated files in the OS data directory;
//! - [`host_state`]: the host screen's state (connection, attempts, grace
//!   deadline, viewers, quality) and the notices worth a toast, folded from
//!   the host's events with time passed in;
//! - [`sharing`]: the embedded signalling server and the running host, driven
//!   by the shell's commands, reporting [`sharing::Update`]s.
//!
//! The Tauri shell (`src-tauri/`) only moves these between the core and the
//! webview.

pub mod host_state;
pub mod logs;
pub mod settings;
pub mod sharing;
