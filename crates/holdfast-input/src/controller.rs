//! Applies viewers' input events through an [`Injector`], keeping per viewer
//! what it holds down (keys and buttons) so it can all be released when
//! control ends, the viewer leaves, goes silent or loses focus: no stuck
//! keys, ever. Events pass through an [`InputSequencer`] first.
//!
//! Whether a viewer may control at all is the caller's decision (view-only
//! viewers' events never get here); this module only knows how.

use std::collections::HashMap;

use enigo::{Button, Key};
use holdfast_proto::commands::{InputEvent, PointerButton};
use tracing::debug;

use crate::geometry::DisplayGeometry;
use crate::injector::Injector;
use crate::keys;
use crate::sequencer::InputSequencer;
use crate::InputError;

#[derive(Debug, Default)]
struct ViewerInput {
    sequencer: InputSequencer<InputEvent>,
    /// Held keys: (the event's code, or its key when the code is empty; the host key pressed).
    keys: Vec<(String, Key)>,
    buttons: Vec<Button>,
}

impl ViewerInput {
    fn shortcut_held(&self) -> bool {
        self.keys.iter().any(|(_, k)| keys::is_shortcut_modifier(k))
    }
}

/// What a viewer holds down right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub keys: usize,
    pub buttons: usize,
}

pub struct InputController<I: Injector> {
    injector: I,
    geometry: DisplayGeometry,
    viewers: HashMap<String, ViewerInput>,
}

fn button(b: PointerButton) -> Button {
    match b {
        PointerButton::Left => Button::Left,
        PointerButton::Middle => Button::Middle,
        PointerButton::Right => Button::Right,
        PointerButton::Back => Button::Back,
        PointerButton::Forward => Button::Forward,
    }
}

impl<I: Injector> InputController<I> {
    pub fn new(injector: I, geometry: DisplayGeometry) -> Self {
        InputController {
            injector,
            geometry,
            viewers: HashMap::new(),
        }
    }

    pub fn injector(&self) -> &I {
        &self.injector
    }

    /// The shared display moved or changed size (display switch, resolution change).
    pub fn set_geometry(&mut self, geometry: DisplayGeometry) {
        self.geometry = geometry;
    }

    pub fn geometry(&self) -> DisplayGeometry {
        self.geometry
    }

    pub fn held(&self, viewer: &str) -> Held {
        self.viewers.get(viewer).map_or(Held::default(), |v| Held {
            keys: v.keys.len(),
            buttons: v.buttons.len(),
        })
    }

    /// Applies one event (and any that were waiting for it). Returns how many
    /// events were applied; the first injection error, if any, after trying all.
    pub fn apply(&mut self, viewer: &str, seq: u32, event: InputEvent) -> Result<usize, InputError> {
        let ready = self
            .viewers
            .entry(viewer.to_owned())
            .or_default()
            .sequencer
            .push(seq, event);
        let n = ready.len();
        let mut first_err = None;
        for e in ready {
            if let Err(err) = self.apply_now(viewer, e) {
                first_err.get_or_insert(err);
            }
        }
        first_err.map_or(Ok(n), Err)
    }

    /// Applies one event that is already in order (the caller sequenced it).
    pub fn apply_ordered(&mut self, viewer: &str, event: InputEvent) -> Result<(), InputError> {
        self.apply_ordered_while(viewer, event, &|| true)
    }

    /// [`apply_ordered`](Self::apply_ordered), typing text one character at
    /// a time for as long as `live()` holds (a revoke stops it mid-text).
    pub fn apply_ordered_while(
        &mut self,
        viewer: &str,
        event: InputEvent,
        live: &dyn Fn() -> bool,
    ) -> Result<(), InputError> {
        self.viewers.entry(viewer.to_owned()).or_default();
        if let InputEvent::Text { text } = &event {
            let mut buf = [0u8; 4];
            for c in text.chars() {
                if !live() {
                    break;
                }
                self.injector.text(c.encode_utf8(&mut buf))?;
            }
            return Ok(());
        }
        self.apply_now(viewer, event)
    }

    fn apply_now(&mut self, viewer: &str, event: InputEvent) -> Result<(), InputError> {
        let geometry = self.geometry;
        let v = self.viewers.get_mut(viewer).expect("created by apply");
        match event {
            InputEvent::PointerMove { x, y } => {
                let (px, py) = geometry.to_screen(x, y);
                self.injector.move_to(px, py)
            }
            InputEvent::PointerButton { button: b, down, x, y } => {
                let (px, py) = geometry.to_screen(x, y);
                self.injector.move_to(px, py)?;
                let b = button(b);
                let held = v.buttons.contains(&b);
                match (down, held) {
                    (true, false) => v.buttons.push(b),
                    (false, true) => v.buttons.retain(|x| *x != b),
                    // Release of a button this viewer never pressed: not ours to release.
                    (false, false) => return Ok(()),
                    (true, true) => {}
                }
                self.injector.button(b, down)
            }
            InputEvent::Wheel { dx, dy } => self.injector.scroll(dx, dy),
            InputEvent::Key { code, key, down } => {
                let id = if code.is_empty() { key.clone() } else { code.clone() };
                if down {
                    let existing = v.keys.iter().find(|(c, _)| *c == id).map(|(_, k)| *k);
                    let host_key = match existing {
                        Some(k) => k, // auto-repeat: press the same key again
                        None => match keys::resolve(&code, &key, v.shortcut_held()) {
                            Some(k) => {
                                v.keys.push((id, k));
                                k
                            }
                            None => {
                                debug!(%code, "key ignored (no host key; text follows separately)");
                                return Ok(());
                            }
                        },
                    };
                    self.injector.key(host_key, true)
                } else {
                    let Some(i) = v.keys.iter().position(|(c, _)| *c == id) else {
                        return Ok(());
                    };
                    let (_, host_key) = v.keys.remove(i);
                    self.injector.key(host_key, false)
                }
            }
            InputEvent::Text { text } => self.injector.text(&text),
            InputEvent::ReleaseAll => {
                self.release_held(viewer);
                Ok(())
            }
        }
    }

    /// Releases every key and button `viewer` holds (most recent first).
    /// Returns how many were released.
    pub fn release_held(&mut self, viewer: &str) -> usize {
        let Some(v) = self.viewers.get_mut(viewer) else {
            return 0;
        };
        let keys: Vec<Key> = v.keys.drain(..).rev().map(|(_, k)| k).collect();
        let buttons: Vec<Button> = v.buttons.drain(..).rev().collect();
        let n = keys.len() + buttons.len();
        for k in keys {
            let _ = self.injector.key(k, false);
        }
        for b in buttons {
            let _ = self.injector.button(b, false);
        }
        n
    }

    /// The viewer is gone: release what it holds and forget it (a rejoin starts at seq 0).
    pub fn forget(&mut self, viewer: &str) -> usize {
        let n = self.release_held(viewer);
        self.viewers.remove(viewer);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::injector::{Injected, RecordingInjector};

    fn ctl() -> InputController<RecordingInjector> {
        InputController::new(RecordingInjector::default(), DisplayGeometry::new(0, 0, 1001, 501))
    }

    fn key(code: &str, key: &str, down: bool) -> InputEvent {
        InputEvent::Key {
            code: code.into(),
            key: key.into(),
            down,
        }
    }

    fn calls(c: &InputController<RecordingInjector>) -> Vec<Injected> {
        c.injector().calls()
    }

    #[test]
    fn pointer_events_land_on_the_mapped_pixel() {
        let mut c = ctl();
        c.apply("v", 0, InputEvent::PointerMove { x: 0.5, y: 1.0 }).unwrap();
        c.apply(
            "v",
            1,
            InputEvent::PointerButton {
                button: PointerButton::Left,
                down: true,
                x: 0.1,
                y: 0.2,
            },
        )
        .unwrap();
        assert_eq!(
            calls(&c),
            [
                Injected::Move(500, 500),
                Injected::Move(100, 100),
                Injected::Button(Button::Left, true)
            ]
        );
        assert_eq!(c.held("v"), Held { keys: 0, buttons: 1 });
    }

    #[test]
    fn out_of_order_events_are_applied_in_order() {
        let mut c = ctl();
        assert_eq!(c.apply("v", 1, key("KeyA", "a", false)).unwrap(), 0);
        assert_eq!(c.apply("v", 0, key("KeyA", "a", true)).unwrap(), 2);
        assert_eq!(
            calls(&c),
            [
                Injected::Key(Key::Unicode('a'), true),
                Injected::Key(Key::Unicode('a'), false)
            ]
        );
        assert_eq!(c.held("v"), Held::default());
    }

    #[test]
    fn key_up_releases_what_key_down_pressed_even_if_the_key_changed() {
        // Shift+A, Shift released first: the up event for KeyA says "a".
        let mut c = ctl();
        let evs = [
            key("ShiftLeft", "Shift", true),
            key("KeyA", "A", true),
            key("ShiftLeft", "Shift", false),
            key("KeyA", "a", false),
        ];
        for (i, e) in evs.into_iter().enumerate() {
            c.apply("v", i as u32, e).unwrap();
        }
        assert_eq!(
            calls(&c),
            [
                Injected::Key(Key::Shift, true),
                Injected::Key(Key::Unicode('A'), true),
                Injected::Key(Key::Shift, false),
                Injected::Key(Key::Unicode('A'), false),
            ]
        );
    }

    #[test]
    fn shortcuts_press_the_lower_case_letter() {
        let mut c = ctl();
        c.apply("v", 0, key("ControlLeft", "Control", true)).unwrap();
        c.apply("v", 1, key("KeyC", "C", true)).unwrap();
        assert_eq!(calls(&c)[1], Injected::Key(Key::Unicode('c'), true));
    }

    #[test]
    fn everything_held_is_released_when_the_viewer_goes() {
        let mut c = ctl();
        c.apply("v", 0, key("ControlLeft", "Control", true)).unwrap();
        c.apply("v", 1, key("KeyX", "x", true)).unwrap();
        c.apply(
            "v",
            2,
            InputEvent::PointerButton {
                button: PointerButton::Right,
                down: true,
                x: 0.0,
                y: 0.0,
            },
        )
        .unwrap();
        c.apply("w", 0, key("ShiftLeft", "Shift", true)).unwrap();
        let before = calls(&c).len();
        assert_eq!(c.forget("v"), 3);
        assert_eq!(
            &calls(&c)[before..],
            [
                Injected::Key(Key::Unicode('x'), false),
                Injected::Key(Key::Control, false),
                Injected::Button(Button::Right, false),
            ]
        );
        assert_eq!(c.held("w").keys, 1, "another viewer's keys are its own");
        assert_eq!(c.forget("v"), 0, "nothing released twice");
    }

    #[test]
    fn release_all_event_and_stray_releases() {
        let mut c = ctl();
        c.apply("v", 0, key("AltLeft", "Alt", true)).unwrap();
        c.apply("v", 1, InputEvent::ReleaseAll).unwrap();
        assert_eq!(c.held("v"), Held::default());
        let before = calls(&c).len();
        // Releasing what was never pressed injects nothing.
        c.apply("v", 2, key("KeyQ", "q", false)).unwrap();
        c.apply(
            "v",
            3,
            InputEvent::PointerButton {
                button: PointerButton::Left,
                down: false,
                x: 0.0,
                y: 0.0,
            },
        )
        .unwrap();
        assert_eq!(&calls(&c)[before..], [Injected::Move(0, 0)]);
    }

    #[test]
    fn auto_repeat_presses_again_without_holding_twice() {
        let mut c = ctl();
        for i in 0..3 {
            c.apply("v", i, key("KeyJ", "j", true)).unwrap();
        }
        assert_eq!(c.held("v").keys, 1);
        c.apply("v", 3, key("KeyJ", "j", false)).unwrap();
        assert_eq!(c.held("v").keys, 0);
        assert_eq!(calls(&c).len(), 4);
    }

    #[test]
    fn dead_keys_are_ignored_and_text_is_typed() {
        let mut c = ctl();
        c.apply("v", 0, key("BracketLeft", "Dead", true)).unwrap();
        c.apply("v", 1, InputEvent::Text { text: "ê".into() }).unwrap();
        c.apply("v", 2, key("BracketLeft", "Dead", false)).unwrap();
        assert_eq!(calls(&c), [Injected::Text("ê".into())]);
        assert_eq!(c.held("v"), Held::default());
    }
}
