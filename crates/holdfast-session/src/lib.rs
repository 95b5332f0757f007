//! The state machines that keep a Holdfast session alive, free of IO and of
//! clocks: every method takes `now`, and each machine says when it next wants
//! to be polled. The async shells (host, viewers) own the timers and sockets;
//! tests drive minutes of behaviour in microseconds.
//!
//! - [`keepalive`]: `\x00PING` every 5 s, RTT from the answers, a peer
//!   declared dead after three silent intervals.
//! - [`backoff`]: reconnection delays, exponential with full jitter (1 s to 30 s).
//! - [`grace`]: the 300 s window in which a dropped session can resume.
//! - [`ice`]: when to restart ICE (platform timeouts, `failed`, poor
//!   quality) and when to rebuild the peer connection; one side restarts.
//! - [`quality`]: good / fair / poor from latency, loss and jitter, and the
//!   `QualityMonitor` that derives them from RTT samples and probe counters.

pub mod backoff;
pub mod grace;
pub mod ice;
pub mod keepalive;
pub mod log_gate;
pub mod quality;

pub use backoff::{BackoffConfig, ReconnectPolicy, BACKOFF_BASE, BACKOFF_CAP};
pub use grace::{GraceError, GraceState, GraceWindow, GRACE_PERIOD};
pub use ice::{disconnected_timeout, IceAction, IceRecovery, LinkState, Role};
pub use keepalive::{Keepalive, KeepaliveConfig, KeepaliveEvent, DEAD_AFTER_INTERVALS, KEEPALIVE_INTERVAL};
pub use log_gate::{LogGate, LOG_GATE_INTERVAL};
pub use quality::{Metrics, Quality, QualityMonitor};
