//! Which host key a browser key event means.
//!
//! Named keys (modifiers, Enter, arrows, F-keys...) are taken from the
//! physical `code`, so they work whatever the viewer's layout. Character keys
//! are injected as the character the viewer's keyboard produced (`key`), so
//! a French viewer typing `é` gets `é` on a US host; with Ctrl, Alt or Meta
//! held the lower-case character is pressed, so shortcuts (Ctrl+C) mean what
//! they say. Keys that produce nothing yet (`Dead`, IME `Process`) are
//! ignored: the composed text arrives as a `text` event.

use enigo::Key;

/// The host key for a named (non-character) physical key.
pub fn named(code: &str) -> Option<Key> {
    Some(match code {
        "ShiftLeft" | "ShiftRight" => Key::Shift,
        "ControlLeft" | "ControlRight" => Key::Control,
        "AltLeft" | "AltRight" => Key::Alt,
        "MetaLeft" | "MetaRight" | "OSLeft" | "OSRight" => Key::Meta,
        "CapsLock" => Key::CapsLock,
        "Enter" | "NumpadEnter" => Key::Return,
        "Tab" => Key::Tab,
        "Backspace" => Key::Backspace,
        "Delete" => Key::Delete,
        "Escape" => Key::Escape,
        "Space" => Key::Space,
        "ArrowLeft" => Key::LeftArrow,
        "ArrowRight" => Key::RightArrow,
        "ArrowUp" => Key::UpArrow,
        "ArrowDown" => Key::DownArrow,
        "Home" => Key::Home,
        "End" => Key::End,
        "PageUp" => Key::PageUp,
        "PageDown" => Key::PageDown,
        #[cfg(not(target_os = "macos"))]
        "Insert" => Key::Insert,
        "PrintScreen" => Key::PrintScr,
        "F1" => Key::F1,
        "F2" => Key::F2,
        "F3" => Key::F3,
        "F4" => Key::F4,
        "F5" => Key::F5,
        "F6" => Key::F6,
        "F7" => Key::F7,
        "F8" => Key::F8,
        "F9" => Key::F9,
        "F10" => Key::F10,
        "F11" => Key::F11,
        "F12" => Key::F12,
        _ => return None,
    })
}

/// True for the keys that turn a character into a shortcut.
pub fn is_shortcut_modifier(key: &Key) -> bool {
    matches!(key, Key::Control | Key::Alt | Key::Meta)
}

/// The host key for a key event, or `None` when it should be ignored.
/// `shortcut` is whether Ctrl, Alt or Meta is held by this viewer.
pub fn resolve(code: &str, key: &str, shortcut: bool) -> Option<Key> {
    if let Some(k) = named(code) {
        return Some(k);
    }
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() => {
            if shortcut {
                Some(Key::Unicode(c.to_lowercase().next().unwrap_or(c)))
            } else {
                Some(Key::Unicode(c))
            }
        }
        // A named key without a known code (synthetic events): try its name.
        _ => named(match key {
            "Shift" => "ShiftLeft",
            "Control" => "ControlLeft",
            "Alt" => "AltLeft",
            "Meta" => "MetaLeft",
            other => other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_keys_follow_the_physical_code() {
        assert_eq!(resolve("ShiftLeft", "Shift", false), Some(Key::Shift));
        assert_eq!(resolve("Enter", "Enter", false), Some(Key::Return));
        assert_eq!(resolve("ArrowUp", "ArrowUp", true), Some(Key::UpArrow));
        assert_eq!(resolve("F5", "F5", false), Some(Key::F5));
    }

    #[test]
    fn characters_are_what_the_viewer_typed() {
        assert_eq!(resolve("KeyQ", "a", false), Some(Key::Unicode('a')), "AZERTY layout");
        assert_eq!(resolve("KeyA", "A", false), Some(Key::Unicode('A')));
        assert_eq!(resolve("Digit2", "é", false), Some(Key::Unicode('é')));
        assert_eq!(resolve("", "ß", false), Some(Key::Unicode('ß')));
    }

    #[test]
    fn shortcuts_press_the_plain_letter() {
        assert_eq!(resolve("KeyC", "C", true), Some(Key::Unicode('c')));
    }

    #[test]
    fn keys_that_produce_nothing_yet_are_ignored() {
        assert_eq!(resolve("BracketLeft", "Dead", false), None);
        assert_eq!(resolve("KeyA", "Process", false), None);
        assert_eq!(resolve("", "Unidentified", false), None);
        assert_eq!(resolve("", "Shift", false), Some(Key::Shift));
    }
}
