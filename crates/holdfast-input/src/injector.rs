//! The [`Injector`] trait (what the controller needs from the OS) and its
//! `enigo` implementation. Kept minimal so the controller's rules are tested
//! against a recording injector, and the real one is tested under Xvfb.

use std::collections::HashSet;
use std::time::Duration;

use enigo::{Axis, Button, Coordinate, Direction, Enigo, Key, Keyboard, Mouse, Settings};

use crate::InputError;

pub trait Injector {
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InputError>;
    fn button(&mut self, button: Button, down: bool) -> Result<(), InputError>;
    /// Notches; positive `dy` scrolls down, positive `dx` right.
    fn scroll(&mut self, dx: i32, dy: i32) -> Result<(), InputError>;
    fn key(&mut self, key: Key, down: bool) -> Result<(), InputError>;
    fn text(&mut self, text: &str) -> Result<(), InputError>;
    /// Size of the main display, for when the capturer gave no geometry.
    fn main_display(&self) -> Result<(u32, u32), InputError>;
}

/// The injector a backend chose at run time (`holdfast-screen`).
impl Injector for Box<dyn Injector> {
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InputError> {
        (**self).move_to(x, y)
    }
    fn button(&mut self, button: Button, down: bool) -> Result<(), InputError> {
        (**self).button(button, down)
    }
    fn scroll(&mut self, dx: i32, dy: i32) -> Result<(), InputError> {
        (**self).scroll(dx, dy)
    }
    fn key(&mut self, key: Key, down: bool) -> Result<(), InputError> {
        (**self).key(key, down)
    }
    fn text(&mut self, text: &str) -> Result<(), InputError> {
        (**self).text(text)
    }
    fn main_display(&self) -> Result<(u32, u32), InputError> {
        (**self).main_display()
    }
}

/// Real input through `enigo`: XTEST over x11rb on Linux (X11), SendInput on
/// Windows, CGEvent on macOS.
///
/// On X11 a character the keyboard map lacks (`é` on a US map, or any
/// character on a shifted level) is typed by binding a spare keycode to it
/// first. Applications learn about the new binding asynchronously, and one
/// that handles the key press before it re-reads the map types nothing (seen
/// with Chromium: an occasional lost `é`). So the first time a character is
/// used, it is bound (by a release of its key, which the server discards)
/// and given [`KEYMAP_SETTLE`] before the real press.
pub struct EnigoInjector {
    enigo: Enigo,
    /// Characters bound recently enough to type without waiting.
    bound: HashSet<char>,
}

/// Time for applications to re-read the keyboard map after a new binding.
pub const KEYMAP_SETTLE: Duration = Duration::from_millis(40);
/// Characters remembered as bound. Kept well below the spare keycodes of a
/// usual map: when enigo runs out it unbinds them all, and then the cache
/// must already have forgotten them.
const BOUND_CACHE: usize = 16;

/// Characters on the first level of practically every Latin layout, which
/// never need a new binding.
fn on_base_level(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == ' '
}

impl EnigoInjector {
    /// Connects to `x11_display` (Linux; `None` uses `$DISPLAY`).
    pub fn new(x11_display: Option<String>) -> Result<Self, InputError> {
        let settings = Settings {
            x11_display,
            // We release held keys ourselves, per viewer; this is the backstop.
            release_keys_when_dropped: true,
            ..Settings::default()
        };
        let enigo = Enigo::new(&settings).map_err(|e| InputError::Open(e.to_string()))?;
        Ok(EnigoInjector {
            enigo,
            bound: HashSet::new(),
        })
    }

    /// Makes sure typing `c` will not race the keyboard map (see the type doc).
    fn settle_binding(&mut self, c: char) -> Result<(), InputError> {
        if !cfg!(target_os = "linux") || on_base_level(c) || self.bound.contains(&c) {
            return Ok(());
        }
        if self.bound.len() >= BOUND_CACHE {
            self.bound.clear();
        }
        self.enigo.key(Key::Unicode(c), Direction::Release).map_err(inject)?;
        std::thread::sleep(KEYMAP_SETTLE);
        self.bound.insert(c);
        Ok(())
    }
}

fn dir(down: bool) -> Direction {
    if down {
        Direction::Press
    } else {
        Direction::Release
    }
}

fn inject(e: enigo::InputError) -> InputError {
    InputError::Inject(e.to_string())
}

impl Injector for EnigoInjector {
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InputError> {
        self.enigo.move_mouse(x, y, Coordinate::Abs).map_err(inject)
    }

    fn button(&mut self, button: Button, down: bool) -> Result<(), InputError> {
        self.enigo.button(button, dir(down)).map_err(inject)
    }

    fn scroll(&mut self, dx: i32, dy: i32) -> Result<(), InputError> {
        if dy != 0 {
            self.enigo.scroll(dy, Axis::Vertical).map_err(inject)?;
        }
        if dx != 0 {
            self.enigo.scroll(dx, Axis::Horizontal).map_err(inject)?;
        }
        Ok(())
    }

    fn key(&mut self, key: Key, down: bool) -> Result<(), InputError> {
        if let (Key::Unicode(c), true) = (key, down) {
            self.settle_binding(c)?;
        }
        self.enigo.key(key, dir(down)).map_err(inject)
    }

    fn text(&mut self, text: &str) -> Result<(), InputError> {
        for c in text.chars() {
            let key = match c {
                '\n' => Key::Return,
                '\t' => Key::Tab,
                c => {
                    self.settle_binding(c)?;
                    Key::Unicode(c)
                }
            };
            self.enigo.key(key, Direction::Click).map_err(inject)?;
        }
        Ok(())
    }

    fn main_display(&self) -> Result<(u32, u32), InputError> {
        let (w, h) = self.enigo.main_display().map_err(inject)?;
        Ok((w.max(1) as u32, h.max(1) as u32))
    }
}

/// Records calls instead of injecting; for tests of the rules above the OS.
/// The log is shared, so a test can read it while a worker thread owns the
/// injector; `move_delay` makes pointer moves (and each typed text) as slow
/// as a real injector's.
#[derive(Debug, Default, Clone)]
pub struct RecordingInjector {
    pub log: std::sync::Arc<std::sync::Mutex<Vec<Injected>>>,
    pub move_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Injected {
    Move(i32, i32),
    Button(Button, bool),
    Scroll(i32, i32),
    Key(Key, bool),
    Text(String),
}

impl RecordingInjector {
    /// Everything injected so far, in order.
    pub fn calls(&self) -> Vec<Injected> {
        self.log.lock().expect("log lock").clone()
    }

    fn record(&self, call: Injected) -> Result<(), InputError> {
        self.log.lock().expect("log lock").push(call);
        Ok(())
    }
}

impl Injector for RecordingInjector {
    fn move_to(&mut self, x: i32, y: i32) -> Result<(), InputError> {
        std::thread::sleep(self.move_delay);
        self.record(Injected::Move(x, y))
    }
    fn button(&mut self, button: Button, down: bool) -> Result<(), InputError> {
        self.record(Injected::Button(button, down))
    }
    fn scroll(&mut self, dx: i32, dy: i32) -> Result<(), InputError> {
        self.record(Injected::Scroll(dx, dy))
    }
    fn key(&mut self, key: Key, down: bool) -> Result<(), InputError> {
        self.record(Injected::Key(key, down))
    }
    fn text(&mut self, text: &str) -> Result<(), InputError> {
        std::thread::sleep(self.move_delay);
        self.record(Injected::Text(text.to_owned()))
    }
    fn main_display(&self) -> Result<(u32, u32), InputError> {
        Ok((1920, 1080))
    }
}
