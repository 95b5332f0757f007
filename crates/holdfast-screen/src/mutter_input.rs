//! Input on GNOME Wayland: the remote-desktop session's `Notify*` methods.
//! Pointer positions go to the stream of the display they fall on,
//! relative to it (Mutter applies the monitor's scale and position); keys
//! go as keysyms, which Mutter types with the current layout, adding Shift
//! or AltGr for the level a character needs. When Mutter ends the session
//! (the monitors changed), the injector moves to the link's new one.

use std::sync::Arc;

use enigo::{Button, Key};
use holdfast_input::{DisplayGeometry, Injector, InputError};
use xkeysym::Keysym;

use crate::monitors;
use crate::mutter::{MutterLink, MutterSession};
use crate::Display;

/// evdev button codes (`linux/input-event-codes.h`), which Mutter takes.
const BTN_LEFT: i32 = 0x110;
const BTN_RIGHT: i32 = 0x111;
const BTN_MIDDLE: i32 = 0x112;
const BTN_SIDE: i32 = 0x113;
const BTN_EXTRA: i32 = 0x114;
/// `NotifyPointerAxisDiscrete` axes.
const AXIS_VERTICAL: u32 = 0;
const AXIS_HORIZONTAL: u32 = 1;

/// What one injector call becomes on Mutter's session: pure, so the
/// mapping is unit-tested without a compositor.
#[derive(Debug, Clone, PartialEq)]
pub enum MutterEvent {
    Motion { stream: String, x: f64, y: f64 },
    Button { button: i32, pressed: bool },
    Axis { axis: u32, steps: i32 },
    Keysym { keysym: u32, pressed: bool },
}

/// The streams' rectangles in the injector's space and their object paths.
#[derive(Debug, Clone)]
pub struct StreamMap {
    geometry: Vec<DisplayGeometry>,
    paths: Vec<String>,
}

impl StreamMap {
    pub fn new(displays: &[Display], paths: Vec<String>) -> StreamMap {
        StreamMap {
            geometry: displays.iter().map(|d| d.geometry).collect(),
            paths,
        }
    }

    pub fn motion(&self, x: i32, y: i32) -> Option<MutterEvent> {
        let (i, x, y) = monitors::locate(&self.geometry, x, y)?;
        Some(MutterEvent::Motion {
            stream: self.paths.get(i)?.clone(),
            x,
            y,
        })
    }
}

pub fn button(button: Button, pressed: bool) -> Vec<MutterEvent> {
    let code = match button {
        Button::Left => BTN_LEFT,
        Button::Right => BTN_RIGHT,
        Button::Middle => BTN_MIDDLE,
        Button::Back => BTN_SIDE,
        Button::Forward => BTN_EXTRA,
        // Wheel "buttons" are one notch of scrolling, on press only.
        Button::ScrollUp | Button::ScrollDown | Button::ScrollLeft | Button::ScrollRight if !pressed => return vec![],
        Button::ScrollUp => return scroll(0, -1),
        Button::ScrollDown => return scroll(0, 1),
        Button::ScrollLeft => return scroll(-1, 0),
        Button::ScrollRight => return scroll(1, 0),
    };
    vec![MutterEvent::Button { button: code, pressed }]
}

pub fn scroll(dx: i32, dy: i32) -> Vec<MutterEvent> {
    let mut out = Vec::new();
    if dy != 0 {
        out.push(MutterEvent::Axis {
            axis: AXIS_VERTICAL,
            steps: dy,
        });
    }
    if dx != 0 {
        out.push(MutterEvent::Axis {
            axis: AXIS_HORIZONTAL,
            steps: dx,
        });
    }
    out
}

pub fn key(key: Key, pressed: bool) -> MutterEvent {
    MutterEvent::Keysym {
        keysym: Keysym::from(key).raw(),
        pressed,
    }
}

/// A typed text as key presses and releases, one character at a time.
pub fn text(text: &str) -> Vec<MutterEvent> {
    let mut out = Vec::new();
    for c in text.chars() {
        let keysym = match c {
            '\n' => Keysym::Return,
            '\t' => Keysym::Tab,
            c => Keysym::from_char(c),
        }
        .raw();
        if keysym == Keysym::NoSymbol.raw() {
            continue;
        }
        out.push(MutterEvent::Keysym { keysym, pressed: true });
        out.push(MutterEvent::Keysym { keysym, pressed: false });
    }
    out
}

/// The injector over a [`MutterLink`]'s session.
pub struct MutterInjector {
    link: Arc<MutterLink>,
    generation: u64,
    session: Arc<MutterSession>,
    streams: StreamMap,
    main: (u32, u32),
}

impl MutterInjector {
    pub fn new(link: Arc<MutterLink>) -> MutterInjector {
        let (generation, session) = link.current();
        let mut injector = MutterInjector {
            link,
            generation,
            streams: StreamMap::new(&[], Vec::new()),
            main: (1, 1),
            session,
        };
        injector.adopt();
        injector
    }

    /// Takes up `self.session`: its streams, and its keyboard.
    fn adopt(&mut self) {
        let displays = self.session.displays();
        let paths = (0..displays.len())
            .filter_map(|i| self.session.stream(i).map(|s| s.path.clone()))
            .collect();
        self.streams = StreamMap::new(&displays, paths);
        self.main = displays.first().map_or((1, 1), |d| (d.width, d.height));
        // Mutter adds the keyboard to the seat only when its first key event
        // arrives; windows bind it and take focus a moment later, so the
        // viewer's first few keys were lost (measured: "Hel" of "Hello").
        // One Shift tap now, which no application acts on, makes the keyboard
        // exist before anyone types.
        if let Err(e) = self.send_all(vec![key(Key::Shift, true), key(Key::Shift, false)]) {
            tracing::debug!(error = %e, "could not announce the keyboard to Mutter");
        }
    }

    /// Moves to the link's newest session if another user of it renewed
    /// it, or starts one if ours was closed.
    fn follow(&mut self) {
        let (generation, session) = if self.session.is_closed() {
            match self.link.renew(self.generation) {
                Ok(current) => current,
                Err(_) => return,
            }
        } else {
            self.link.current()
        };
        if generation != self.generation {
            tracing::info!(generation, "injecting into the new remote-desktop session");
            self.generation = generation;
            self.session = session;
            self.adopt();
        }
    }

    fn send(&self, event: &MutterEvent) -> Result<(), zbus::Error> {
        match event {
            MutterEvent::Motion { stream, x, y } => self
                .session
                .notify("NotifyPointerMotionAbsolute", &(stream.as_str(), *x, *y)),
            MutterEvent::Button { button, pressed } => self.session.notify("NotifyPointerButton", &(*button, *pressed)),
            MutterEvent::Axis { axis, steps } => self.session.notify("NotifyPointerAxisDiscrete", &(*axis, *steps)),
            MutterEvent::Keysym { keysym, pressed } => {
                self.session.notify("NotifyKeyboardKeysym", &(*keysym, *pressed))
            }
        }
    }

    fn send_all(&self, events: Vec<MutterEvent>) -> Result<(), zbus::Error> {
        events.iter().try_for_each(|e| self.send(e))
    }

    /// Sends what `make` makes of the current streams; if the session has
    /// ended, once more on a new one. Any other refusal is only reported: a
    /// viewer's odd input must never cost everyone the session.
    fn inject(&mut self, make: impl Fn(&StreamMap) -> Result<Vec<MutterEvent>, InputError>) -> Result<(), InputError> {
        self.follow();
        let first = self.send_all(make(&self.streams)?);
        let Err(e) = first else { return Ok(()) };
        if !(self.session.is_closed() || session_gone(&e)) {
            return Err(InputError::Inject(format!("Mutter remote desktop: {e}")));
        }
        match self.link.renew(self.generation) {
            Ok((generation, session)) if generation != self.generation => {
                self.generation = generation;
                self.session = session;
                self.adopt();
                self.send_all(make(&self.streams)?)
                    .map_err(|e| InputError::Inject(format!("Mutter remote desktop: {e}")))
            }
            _ => Err(InputError::Inject(format!("Mutter remote desktop: {e}"))),
        }
    }
}

/// Whether a failed call says the session object is gone (rather than
/// refusing this one call).
fn session_gone(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::MethodError(name, ..) => gone_by_name(name.as_str()),
        zbus::Error::FDO(e) => matches!(
            **e,
            zbus::fdo::Error::UnknownMethod(_)
                | zbus::fdo::Error::UnknownObject(_)
                | zbus::fdo::Error::UnknownInterface(_)
                | zbus::fdo::Error::ServiceUnknown(_)
        ),
        zbus::Error::InputOutput(_) => true,
        _ => false,
    }
}

/// GDBus answers a call on an unexported object with `UnknownMethod`.
fn gone_by_name(name: &str) -> bool {
    matches!(
        name,
        "org.freedesktop.DBus.Error.UnknownMethod"
            | "org.freedesktop.DBus.Error.UnknownObject"
            | "org.freedesktop.DBus.Error.UnknownInterface"
            | "org.freedesktop.DBus.Error.ServiceUnknown"
    )
}

impl Injector for MutterInjector {
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InputError> {
        self.inject(|streams| {
            streams
                .motion(x, y)
                .map(|e| vec![e])
                .ok_or_else(|| InputError::Inject("no display to move the pointer on".into()))
        })
    }

    fn button(&mut self, b: Button, down: bool) -> Result<(), InputError> {
        self.inject(|_| Ok(button(b, down)))
    }

    fn scroll(&mut self, dx: i32, dy: i32) -> Result<(), InputError> {
        self.inject(|_| Ok(scroll(dx, dy)))
    }

    fn key(&mut self, k: Key, down: bool) -> Result<(), InputError> {
        self.inject(|_| Ok(vec![key(k, down)]))
    }

    fn text(&mut self, t: &str) -> Result<(), InputError> {
        self.inject(|_| Ok(text(t)))
    }

    fn main_display(&self) -> Result<(u32, u32), InputError> {
        Ok(self.main)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(index: usize, x: i32, w: u32, h: u32) -> Display {
        Display {
            index,
            width: w,
            height: h,
            geometry: DisplayGeometry::new(x, 0, w, h),
            name: format!("Meta-{index}"),
        }
    }

    #[test]
    fn a_pointer_position_goes_to_its_display_stream_relative_to_it() {
        let d = [display(0, 0, 1920, 1080), display(1, 1920, 1280, 1024)];
        let map = StreamMap::new(&d, vec!["/s/u1".into(), "/s/u2".into()]);
        assert_eq!(
            map.motion(100, 200),
            Some(MutterEvent::Motion {
                stream: "/s/u1".into(),
                x: 100.0,
                y: 200.0
            })
        );
        assert_eq!(
            map.motion(1920 + 1279, 1023),
            Some(MutterEvent::Motion {
                stream: "/s/u2".into(),
                x: 1279.0,
                y: 1023.0
            })
        );
    }

    #[test]
    fn buttons_are_evdev_codes_and_wheel_buttons_scroll_once() {
        assert_eq!(
            button(Button::Left, true),
            [MutterEvent::Button {
                button: 0x110,
                pressed: true
            }]
        );
        assert_eq!(
            button(Button::Right, false),
            [MutterEvent::Button {
                button: 0x111,
                pressed: false
            }]
        );
        assert_eq!(
            button(Button::ScrollDown, true),
            [MutterEvent::Axis { axis: 0, steps: 1 }]
        );
        assert_eq!(button(Button::ScrollDown, false), []);
        assert_eq!(
            scroll(-2, 3),
            [
                MutterEvent::Axis { axis: 0, steps: 3 },
                MutterEvent::Axis { axis: 1, steps: -2 }
            ]
        );
    }

    #[test]
    fn keys_and_text_are_keysyms() {
        assert_eq!(
            key(Key::Return, true),
            MutterEvent::Keysym {
                keysym: 0xff0d,
                pressed: true
            }
        );
        assert_eq!(
            key(Key::Shift, false),
            MutterEvent::Keysym {
                keysym: 0xffe1,
                pressed: false
            }
        );
        assert_eq!(
            key(Key::Unicode('a'), true),
            MutterEvent::Keysym {
                keysym: 0x61,
                pressed: true
            }
        );
        let typed = text("hA é\n");
        let presses: Vec<u32> = typed
            .iter()
            .filter_map(|e| match e {
                MutterEvent::Keysym { keysym, pressed: true } => Some(*keysym),
                _ => None,
            })
            .collect();
        // 'A' is its own keysym (Mutter adds Shift); 'é' is eacute.
        assert_eq!(presses, [0x68, 0x41, 0x20, 0xe9, 0xff0d]);
        assert_eq!(typed.len(), 10, "each press has its release");
    }

    #[test]
    fn only_a_vanished_session_is_worth_a_new_one() {
        assert!(gone_by_name("org.freedesktop.DBus.Error.UnknownMethod"));
        assert!(gone_by_name("org.freedesktop.DBus.Error.UnknownObject"));
        assert!(!gone_by_name("org.freedesktop.DBus.Error.InvalidArgs"));
        assert!(!gone_by_name("org.freedesktop.DBus.Error.Failed"));
        assert!(!session_gone(&zbus::Error::Failure("refused".into())));
        assert!(session_gone(&zbus::Error::FDO(Box::new(
            zbus::fdo::Error::UnknownObject("/org/gnome/Mutter/RemoteDesktop/Session/u1".into())
        ))));
    }
}
