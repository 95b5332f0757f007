//! What the Holdfast desktop app does, without a window, so it runs and is
//! tested headless:
//!
//! - [`settings`]: the user's settings as TOML in the OS config directory,
//!   validated within safe bounds, and a persistent device ID;
//! - [`logs`]: `tracing` into rotated files in the OS data directory;
//! - [`host_state`]: the host screen's state (connection, attempts, grace
//!   deadline, viewers, quality) and the notices worth a toast, folded from
//!   the host's events with time passed in;
//! - [`recovery`]: what both screens show while a dropped session is being
//!   recovered (attempt, next try, grace deadline);
//! - [`sharing`]: the embedded signalling server and the running host, driven
//!   by the shell's commands, reporting [`sharing::Update`]s;
//! - [`view_state`]: the viewer screen's state and notices, folded from the
//!   Rust viewer's events;
//! - [`viewing`]: the Rust viewer joined to another machine, its frames
//!   passed on for the webview to decode (or decoded here), reporting
//!   [`viewing::ViewUpdate`]s.
//!
//! The Tauri shell (`src-tauri/`) only moves these between the core and the
//! webview.

pub mod host_state;
pub mod logs;
pub mod recovery;
pub mod settings;
pub mod sharing;
pub mod unattended;
pub mod view_state;
pub mod viewing;
