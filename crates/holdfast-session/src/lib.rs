//! The state machines that keep a Holdfast session alive, free of IO and of
//! clocks: every method takes `now`, and each machine says when it next wants
//! to be polled. The async shells (host, viewers) own the timers and sockets;
//! tests drive minutes of behaviour in microseconds.
//!
//! - [`keepalive`]: `\x00PING` every 5 s, RTT from the answers, a peer
//!   declared dead after three silent intervals.

pub mod keepalive;

pub use keepalive::{Keepalive, KeepaliveConfig, KeepaliveEvent, DEAD_AFTER_INTERVALS, KEEPALIVE_INTERVAL};
