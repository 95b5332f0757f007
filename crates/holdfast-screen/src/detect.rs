//! Which backend a desktop session needs: pure rules over what the
//! environment and the session bus say, so every case is a unit test.
//!
//! On a Wayland session X11 capture sees only XWayland windows (black
//! elsewhere) and XTEST reaches only them, so Holdfast never falls back to
//! X11 there: it uses Mutter's remote-desktop API when GNOME offers it, and
//! otherwise says what is missing.

use std::fmt;

/// A capture-and-input backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `scrap` + `enigo` on an X server (and the OS's own APIs on Windows
    /// and macOS).
    X11,
    /// GNOME's Mutter: `org.gnome.Mutter.RemoteDesktop` + `ScreenCast` over
    /// D-Bus, frames over PipeWire. No picker, no dialog.
    Mutter,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::X11 => "x11",
            BackendKind::Mutter => "mutter",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the person (a flag, or `HOLDFAST_SCREEN`) asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// Whatever the session needs.
    #[default]
    Auto,
    Only(BackendKind),
}

impl Preference {
    /// `HOLDFAST_SCREEN` (auto when unset or not understood).
    pub fn from_env() -> Preference {
        std::env::var("HOLDFAST_SCREEN")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }
}

impl std::str::FromStr for Preference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Preference::Auto),
            "x11" => Ok(Preference::Only(BackendKind::X11)),
            "mutter" | "gnome" => Ok(Preference::Only(BackendKind::Mutter)),
            other => Err(format!("unknown screen backend {other:?} (auto, x11 or mutter)")),
        }
    }
}

/// The environment variables that say what kind of session this is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEnv {
    /// `XDG_SESSION_TYPE`: `wayland`, `x11`, `tty`...
    pub session_type: Option<String>,
    /// `WAYLAND_DISPLAY`.
    pub wayland_display: Option<String>,
    /// `DISPLAY`.
    pub x11_display: Option<String>,
}

impl SessionEnv {
    pub fn from_env() -> SessionEnv {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        SessionEnv {
            session_type: var("XDG_SESSION_TYPE"),
            wayland_display: var("WAYLAND_DISPLAY"),
            x11_display: var("DISPLAY"),
        }
    }

    /// A Wayland session: said so by logind, or a Wayland socket without an
    /// X session type (a compositor started by hand, as in the tests).
    pub fn is_wayland(&self) -> bool {
        match self.session_type.as_deref() {
            Some("wayland") => true,
            Some("x11") => false,
            _ => self.wayland_display.is_some(),
        }
    }
}

/// Remote-desktop services found on the session bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusNames {
    /// `org.gnome.Mutter.RemoteDesktop` and `org.gnome.Mutter.ScreenCast`.
    pub mutter: bool,
    /// `org.freedesktop.portal.Desktop` (xdg-desktop-portal).
    pub portal: bool,
    /// The session bus could not be reached.
    pub no_bus: bool,
}

/// No backend can serve this session: what is missing and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} {advice}")]
pub struct Unavailable {
    pub problem: String,
    pub advice: String,
}

fn unavailable(problem: impl Into<String>, advice: impl Into<String>) -> Unavailable {
    Unavailable {
        problem: problem.into(),
        advice: advice.into(),
    }
}

/// The backend for `env` and `preference`; `bus` is asked only when the
/// answer depends on it.
pub fn choose(
    env: &SessionEnv,
    preference: Preference,
    bus: impl FnOnce() -> BusNames,
) -> Result<BackendKind, Unavailable> {
    let x11 = || {
        if env.x11_display.is_some() || !cfg!(target_os = "linux") {
            Ok(BackendKind::X11)
        } else {
            Err(unavailable(
                "No X display: DISPLAY is not set.",
                "Run Holdfast inside the desktop session (scripts/run.sh starts a virtual one, Xvfb, when there is none).",
            ))
        }
    };
    let mutter = |names: BusNames| {
        if names.mutter {
            Ok(BackendKind::Mutter)
        } else if names.no_bus {
            Err(unavailable(
                "This is a Wayland session, but its D-Bus session bus cannot be reached (DBUS_SESSION_BUS_ADDRESS).",
                "Run Holdfast from inside the desktop session.",
            ))
        } else if names.portal {
            Err(unavailable(
                "This is a Wayland session without GNOME's remote-desktop API (org.gnome.Mutter.RemoteDesktop is not on the session bus). \
                 The desktop portal is there, but Holdfast does not use the ScreenCast portal yet.",
                "On GNOME, make sure gnome-shell (or mutter) runs this session; elsewhere (KDE, Sway) choose an X11 session at login for now.",
            ))
        } else {
            Err(unavailable(
                "This is a Wayland session, and neither GNOME's remote-desktop API (org.gnome.Mutter.RemoteDesktop) nor the desktop portal (org.freedesktop.portal.Desktop) is on the session bus.",
                "On GNOME, make sure gnome-shell (or mutter) runs this session; elsewhere install xdg-desktop-portal and your desktop's backend, or choose an X11 session at login.",
            ))
        }
    };
    match preference {
        Preference::Only(BackendKind::X11) => x11(),
        Preference::Only(BackendKind::Mutter) => mutter(bus()),
        Preference::Auto if env.is_wayland() => mutter(bus()),
        Preference::Auto => x11(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(session_type: Option<&str>, wayland: Option<&str>, x11: Option<&str>) -> SessionEnv {
        SessionEnv {
            session_type: session_type.map(str::to_owned),
            wayland_display: wayland.map(str::to_owned),
            x11_display: x11.map(str::to_owned),
        }
    }

    const GNOME: BusNames = BusNames {
        mutter: true,
        portal: true,
        no_bus: false,
    };
    const KDE: BusNames = BusNames {
        mutter: false,
        portal: true,
        no_bus: false,
    };

    #[test]
    fn an_x11_session_uses_x11_without_asking_the_bus() {
        let e = env(Some("x11"), None, Some(":0"));
        let kind = choose(&e, Preference::Auto, || panic!("the bus is not needed")).unwrap();
        assert_eq!(kind, BackendKind::X11);
        // Xvfb started by hand: no session type at all.
        let e = env(None, None, Some(":99"));
        assert_eq!(choose(&e, Preference::Auto, || GNOME).unwrap(), BackendKind::X11);
    }

    #[test]
    fn a_gnome_wayland_session_uses_mutter_even_with_xwayland_present() {
        let e = env(Some("wayland"), Some("wayland-0"), Some(":0"));
        assert_eq!(choose(&e, Preference::Auto, || GNOME).unwrap(), BackendKind::Mutter);
        // A compositor started by hand: a Wayland socket, no session type.
        let e = env(None, Some("wayland-0"), None);
        assert_eq!(choose(&e, Preference::Auto, || GNOME).unwrap(), BackendKind::Mutter);
    }

    #[test]
    fn wayland_without_mutter_never_falls_back_to_x11_and_says_why() {
        // XWayland's DISPLAY is set, but capturing it would show black.
        let e = env(Some("wayland"), Some("wayland-0"), Some(":0"));
        let err = choose(&e, Preference::Auto, || KDE).unwrap_err();
        assert!(err.problem.contains("org.gnome.Mutter.RemoteDesktop"), "{err}");
        assert!(err.problem.contains("portal"), "{err}");
        assert!(err.advice.contains("X11 session"), "{err}");
        let err = choose(&e, Preference::Auto, BusNames::default).unwrap_err();
        assert!(err.advice.contains("xdg-desktop-portal"), "{err}");
        let err = choose(&e, Preference::Auto, || BusNames {
            no_bus: true,
            ..BusNames::default()
        })
        .unwrap_err();
        assert!(err.problem.contains("DBUS_SESSION_BUS_ADDRESS"), "{err}");
    }

    #[test]
    fn a_preference_overrides_the_session_but_not_what_is_missing() {
        let wayland = env(Some("wayland"), Some("wayland-0"), Some(":0"));
        assert_eq!(
            choose(&wayland, Preference::Only(BackendKind::X11), || panic!("not asked")).unwrap(),
            BackendKind::X11
        );
        let x11 = env(Some("x11"), None, Some(":0"));
        assert_eq!(
            choose(&x11, Preference::Only(BackendKind::Mutter), || GNOME).unwrap(),
            BackendKind::Mutter
        );
        assert!(choose(&x11, Preference::Only(BackendKind::Mutter), || KDE).is_err());
        if cfg!(target_os = "linux") {
            let err = choose(&env(None, None, None), Preference::Auto, || GNOME).unwrap_err();
            assert!(err.problem.contains("DISPLAY"), "{err}");
        }
    }

    #[test]
    fn preferences_parse_from_flags_and_the_environment() {
        assert_eq!("auto".parse(), Ok(Preference::Auto));
        assert_eq!("".parse(), Ok(Preference::Auto));
        assert_eq!("X11".parse(), Ok(Preference::Only(BackendKind::X11)));
        assert_eq!("mutter".parse(), Ok(Preference::Only(BackendKind::Mutter)));
        assert!("vnc".parse::<Preference>().is_err());
    }
}
