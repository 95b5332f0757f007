//! `holdfast-screen`: the one place that decides how this machine's screen
//! is captured and its input injected, and the backends it chooses from.
//!
//! - **X11** (and the OS's own APIs on Windows and macOS): `scrap` capture,
//!   `enigo` input, the monitor layout from RandR. Unchanged from before
//!   Wayland support.
//! - **Mutter** (GNOME on Wayland): one remote-desktop session over D-Bus
//!   ([`mutter`]) records every monitor as a PipeWire stream
//!   ([`pipewire`], [`mutter_capture`]), takes pointer and key events
//!   ([`mutter_input`]) and shares the clipboard ([`mutter_clipboard`]).
//!   Mutter ends the session when the monitors change; each of these
//!   carries on with a new one ([`mutter::MutterLink`]).
//!   Nobody is asked anything: this is the API gnome-remote-desktop uses, so
//!   an unattended machine can be served.
//!
//! [`detect`] holds the rules (pure, tested); [`Screen::open`] applies them
//! and opens the backend. The host binary, the desktop app and the bench
//! call [`Screen`], never a backend directly.

pub mod detect;
pub mod monitors;
#[cfg(target_os = "linux")]
pub mod mutter;
#[cfg(target_os = "linux")]
pub mod mutter_capture;
#[cfg(target_os = "linux")]
pub mod mutter_clipboard;
#[cfg(target_os = "linux")]
pub mod mutter_input;
#[cfg(target_os = "linux")]
pub mod pipewire;

use std::fmt;
#[cfg(target_os = "linux")]
use std::sync::Arc;

use holdfast_input::{ClipboardSource, DisplayGeometry, EnigoInjector, Injector, InputError};
use holdfast_media::{FrameSource, MediaError, ScreenSource};
use holdfast_proto::commands::DisplayDesc;

pub use detect::{BackendKind, Preference, SessionEnv, Unavailable};

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// No backend can serve this session; the message says what to do.
    #[error("{0}")]
    Unavailable(#[from] Unavailable),
    #[error("GNOME remote desktop (Mutter) session: {0}")]
    Mutter(String),
    #[error("{0}")]
    Media(#[from] MediaError),
}

/// One display as this backend numbers them (0 is the primary display).
#[derive(Debug, Clone, PartialEq)]
pub struct Display {
    pub index: usize,
    pub width: u32,
    pub height: u32,
    /// Where its pixels sit in the coordinates the injector takes.
    pub geometry: DisplayGeometry,
    /// The compositor's name for it (a connector such as `Meta-0`, or `X11`).
    pub name: String,
}

/// The desktop session's screen and input, opened once and shared by the
/// media and input threads.
#[derive(Clone)]
pub struct Screen {
    backend: Backend,
    displays: Vec<Display>,
}

#[derive(Clone)]
enum Backend {
    X11,
    #[cfg(target_os = "linux")]
    Mutter(Arc<mutter::MutterLink>),
}

impl fmt::Debug for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Screen")
            .field("backend", &self.kind())
            .field("displays", &self.displays)
            .finish()
    }
}

impl Screen {
    /// Opens the backend this session needs ([`detect::choose`] with the
    /// environment and the session bus), or the one `preference` names.
    pub fn open(preference: Preference) -> Result<Screen, ScreenError> {
        let env = SessionEnv::from_env();
        let kind = detect::choose(&env, preference, probe_bus)?;
        Self::open_kind(kind)
    }

    /// Opens `kind` without asking the environment.
    pub fn open_kind(kind: BackendKind) -> Result<Screen, ScreenError> {
        match kind {
            BackendKind::X11 => Ok(Screen {
                backend: Backend::X11,
                displays: x11_displays()?,
            }),
            #[cfg(target_os = "linux")]
            BackendKind::Mutter => {
                let link = mutter::MutterLink::start().map_err(|e| ScreenError::Mutter(e.to_string()))?;
                let displays = link.current().1.displays();
                Ok(Screen {
                    backend: Backend::Mutter(link),
                    displays,
                })
            }
            #[cfg(not(target_os = "linux"))]
            BackendKind::Mutter => Err(ScreenError::Mutter("only on Linux".into())),
        }
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::X11 => BackendKind::X11,
            #[cfg(target_os = "linux")]
            Backend::Mutter(_) => BackendKind::Mutter,
        }
    }

    pub fn displays(&self) -> &[Display] {
        &self.displays
    }

    /// The displays as viewers are told of them.
    pub fn display_descs(&self) -> Vec<DisplayDesc> {
        descs(&self.displays)
    }

    /// Where display `index` sits for the injector.
    pub fn geometry(&self, index: usize) -> Option<DisplayGeometry> {
        self.displays.get(index).map(|d| d.geometry)
    }

    /// Opens display `index` for capture; call it on the thread that grabs
    /// (the media worker's opener), as X11 capturers stay on their thread.
    pub fn open_capture(&self, index: usize) -> Result<Box<dyn FrameSource>, MediaError> {
        match &self.backend {
            Backend::X11 => Ok(Box::new(ScreenSource::open(index)?)),
            #[cfg(target_os = "linux")]
            Backend::Mutter(link) => Ok(Box::new(mutter_capture::MutterCapture::open(link.clone(), index)?)),
        }
    }

    /// A display opener for [`holdfast_media::worker::MediaWorker::spawn_switchable`].
    pub fn capture_opener(&self) -> impl FnMut(usize) -> Result<Box<dyn FrameSource>, MediaError> + Send + 'static {
        let screen = self.clone();
        move |index| screen.open_capture(index)
    }

    /// Opens the injector for this session (on the input worker's thread).
    pub fn open_injector(&self) -> Result<Box<dyn Injector>, InputError> {
        match &self.backend {
            Backend::X11 => Ok(Box::new(EnigoInjector::new(None)?)),
            #[cfg(target_os = "linux")]
            Backend::Mutter(link) => Ok(Box::new(mutter_input::MutterInjector::new(link.clone()))),
        }
    }

    /// This session's clipboard, for a host to share.
    pub fn clipboard_source(&self) -> ClipboardSource {
        match &self.backend {
            Backend::X11 => ClipboardSource::system(),
            #[cfg(target_os = "linux")]
            Backend::Mutter(link) => {
                let link = link.clone();
                ClipboardSource::new("mutter", move || {
                    Ok(Box::new(mutter_clipboard::MutterClipboard::open(link.clone())?))
                })
            }
        }
    }

    /// An injector opener for [`holdfast_input::InputWorker::spawn`].
    pub fn injector_opener(&self) -> impl FnOnce() -> Result<Box<dyn Injector>, InputError> + Send + 'static {
        let screen = self.clone();
        move || screen.open_injector()
    }
}

/// The displays this session could share, without opening a backend (a
/// display picker before sharing).
pub fn list_displays(preference: Preference) -> Result<Vec<Display>, ScreenError> {
    let kind = detect::choose(&SessionEnv::from_env(), preference, probe_bus)?;
    match kind {
        BackendKind::X11 => Ok(x11_displays()?),
        #[cfg(target_os = "linux")]
        BackendKind::Mutter => mutter::list_displays().map_err(|e| ScreenError::Mutter(e.to_string())),
        #[cfg(not(target_os = "linux"))]
        BackendKind::Mutter => Err(ScreenError::Mutter("only on Linux".into())),
    }
}

/// Display descriptions as viewers are told of them.
pub fn descs(displays: &[Display]) -> Vec<DisplayDesc> {
    displays
        .iter()
        .map(|d| DisplayDesc {
            index: d.index as u32,
            width: d.width,
            height: d.height,
        })
        .collect()
}

/// The X server's displays, numbered as `scrap` numbers them.
fn x11_displays() -> Result<Vec<Display>, MediaError> {
    Ok(holdfast_media::capture::list_displays()?
        .into_iter()
        .map(|d| Display {
            index: d.index,
            width: d.width,
            height: d.height,
            geometry: DisplayGeometry::of_display(d.index).unwrap_or(DisplayGeometry::new(0, 0, d.width, d.height)),
            name: format!("X11 display {}", d.index),
        })
        .collect())
}

/// Which remote-desktop services the session bus offers.
fn probe_bus() -> detect::BusNames {
    #[cfg(target_os = "linux")]
    {
        mutter::bus_names()
    }
    #[cfg(not(target_os = "linux"))]
    {
        detect::BusNames::default()
    }
}
