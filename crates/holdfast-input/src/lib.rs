//! `holdfast-input`: turns a viewer's input events into real input on the host.
//!
//! - [`sequencer`]: puts events back in order (the `commands` channel is
//!   unordered so keepalive and input overtake video), pure.
//! - [`keys`]: which host key a browser key event means, pure.
//! - [`geometry`]: normalised viewer coordinates to the shared display's
//!   pixels, multi-monitor aware, pure.
//! - [`controller`]: per-viewer state (held keys and buttons) over an
//!   [`Injector`]; releases everything held when control ends, so no key is
//!   ever left stuck. Tested with a recording injector.
//! - [`injector`]: the [`Injector`] trait and its `enigo` implementation
//!   (X11 via x11rb on Linux, native on Windows and macOS).
//! - [`worker`]: a thread that owns the injector, driven from async code.
//! - [`clipboard`]: a thread that owns the host's clipboard (`arboard`): sets
//!   what a viewer shares, reports what is copied here.

pub mod clipboard;
pub mod controller;
pub mod geometry;
pub mod injector;
pub mod keys;
pub mod sequencer;
pub mod worker;

pub use clipboard::{Clipboard, ClipboardSource, ClipboardWorker, SystemClipboard};
pub use controller::InputController;
pub use geometry::DisplayGeometry;
pub use injector::{EnigoInjector, Injector};
pub use sequencer::InputSequencer;
pub use worker::InputWorker;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open the input device: {0}")]
    Open(String),
    #[error("input injection failed: {0}")]
    Inject(String),
    #[error("the input thread has stopped")]
    WorkerGone,
    #[error("too much input queued; event dropped")]
    Busy,
}
