//! Unattended access from the app's settings: turning it on (a permanent
//! password typed twice, optionally a TOTP second factor shown as a QR code
//! to enrol), what the screens show of it ([`UnattendedStatus`]), and
//! starting with the session (the XDG autostart entry on Linux).
//!
//! The secrets live in `unattended.json` beside `settings.toml` (mode 0600,
//! written by `holdfast_peer::unattended`): the password's Argon2id key,
//! never the password. Windows and macOS start the app with the session
//! through the user's `Run` registry key and a LaunchAgent; docs/unattended.md
//! says how (not built here).

use std::path::{Path, PathBuf};

use holdfast_auth::totp::SecondFactor;
use holdfast_peer::unattended::{self as access, UnattendedAccess};
use serde::Serialize;
use thiserror::Error;

pub use holdfast_peer::unattended::unix_now;

pub const UNATTENDED_FILE: &str = "unattended.json";
/// The autostart entry's name: the app's identifier (tauri.conf.json).
pub const AUTOSTART_FILE: &str = "app.holdfast.desktop.desktop";

#[derive(Debug, Error)]
pub enum UnattendedError {
    #[error("the two passwords differ")]
    Mismatch,
    #[error(transparent)]
    Settings(#[from] access::SettingsError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// What the screens show: whether it is on, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnattendedStatus {
    pub enabled: bool,
    /// A one-time code is required too.
    pub totp: bool,
    /// Password logins get control (else view only).
    pub control: bool,
    /// The app starts with the desktop session.
    pub autostart: bool,
    /// The settings file is there but cannot be used (says why).
    pub problem: Option<String>,
}

/// What turning the second factor on shows once: the URI an authenticator
/// app takes, and its QR code (SVG).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolment {
    pub uri: String,
    pub qr_svg: String,
}

/// Where the settings live (`dir`: the app's config folder) and where the
/// autostart entry goes (`autostart_dir`: `$XDG_CONFIG_HOME/autostart`).
#[derive(Debug, Clone)]
pub struct UnattendedStore {
    dir: PathBuf,
    autostart_dir: Option<PathBuf>,
}

impl UnattendedStore {
    pub fn new(dir: impl Into<PathBuf>, autostart_dir: Option<PathBuf>) -> Self {
        UnattendedStore {
            dir: dir.into(),
            autostart_dir,
        }
    }

    /// The user's: beside the settings, autostart in the XDG config home.
    pub fn for_user(config_dir: &Path) -> Self {
        let autostart = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|c| c.join("autostart"));
        UnattendedStore::new(config_dir, autostart)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(UNATTENDED_FILE)
    }

    fn autostart_path(&self) -> Option<PathBuf> {
        self.autostart_dir.as_ref().map(|d| d.join(AUTOSTART_FILE))
    }

    /// The settings for a share (None: off). A broken file is an error, so
    /// the host screen can say why it is not on.
    pub fn load(&self) -> Result<Option<UnattendedAccess>, UnattendedError> {
        if !self.path().exists() {
            return Ok(None);
        }
        Ok(Some(access::load(&self.path())?))
    }

    pub fn status(&self) -> UnattendedStatus {
        let autostart = self.autostart_path().is_some_and(|p| p.exists());
        match self.load() {
            Ok(Some(a)) => UnattendedStatus {
                enabled: true,
                totp: a.second_factor.is_some(),
                control: a.control,
                autostart,
                problem: None,
            },
            Ok(None) => UnattendedStatus {
                autostart,
                ..Default::default()
            },
            Err(e) => UnattendedStatus {
                autostart,
                problem: Some(e.to_string()),
                ..Default::default()
            },
        }
    }

    /// Turns unattended access on with `password` (typed twice), replacing
    /// an earlier password; returns the enrolment of a new second factor.
    pub fn enable(
        &self,
        password: &str,
        again: &str,
        totp: bool,
        control: bool,
    ) -> Result<Option<Enrolment>, UnattendedError> {
        if password != again {
            return Err(UnattendedError::Mismatch);
        }
        let factor = access::create(&self.path(), password, totp, control)?;
        Ok(factor.map(|f| enrolment(&f)))
    }

    /// Turns it off: the key, the lockout, the kept ID and the autostart
    /// entry go.
    pub fn disable(&self) -> Result<(), UnattendedError> {
        access::remove(&self.path()).map_err(|e| UnattendedError::Io(self.path(), e))?;
        self.set_autostart(false, "")
    }

    /// Whether `code` is what the saved second factor shows now (the
    /// enrolment check: nothing is used up).
    pub fn check_code(&self, code: &str, unix_secs: u64) -> bool {
        match self.load() {
            Ok(Some(a)) => a.second_factor.is_some_and(|mut f| f.check(code, unix_secs).is_ok()),
            _ => false,
        }
    }

    /// Writes (or removes) the XDG autostart entry that starts `exec`
    /// hidden with the desktop session.
    pub fn set_autostart(&self, on: bool, exec: &str) -> Result<(), UnattendedError> {
        let Some(path) = self.autostart_path() else {
            return Ok(());
        };
        if !on {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(UnattendedError::Io(path, e)),
                _ => Ok(()),
            };
        }
        let io = |e| UnattendedError::Io(path.clone(), e);
        std::fs::create_dir_all(path.parent().expect("a file in a folder")).map_err(io)?;
        std::fs::write(&path, autostart_entry(exec)).map_err(io)
    }
}

/// The desktop entry (freedesktop Desktop Entry and Autostart specs).
pub fn autostart_entry(exec: &str) -> String {
    // Exec's quoting: a path with spaces or quotes goes in double quotes.
    let quoted = if exec.chars().any(|c| c.is_whitespace() || "\"'\\$`".contains(c)) {
        format!(
            "\"{}\"",
            exec.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
                .replace('`', "\\`")
        )
    } else {
        exec.to_owned()
    };
    format!(
        "[Desktop Entry]\nType=Application\nName=Holdfast\nComment=Unattended access: share this screen with the permanent password\n\
         Exec={quoted} --hidden\nIcon=holdfast\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
}

fn enrolment(f: &SecondFactor) -> Enrolment {
    let uri = f.enrolment_uri("this computer").to_string();
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    Enrolment { uri, qr_svg }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> (UnattendedStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("hf-desk-unattended-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (
            UnattendedStore::new(dir.join("config"), Some(dir.join("autostart"))),
            dir,
        )
    }

    #[test]
    fn turning_it_on_keeps_the_key_shows_a_qr_code_and_off_removes_everything() {
        let (s, dir) = store("onoff");
        assert_eq!(s.status(), UnattendedStatus::default());
        assert!(matches!(
            s.enable("a long password", "a long passw0rd", true, true),
            Err(UnattendedError::Mismatch)
        ));
        assert!(!s.path().exists());
        assert!(s.enable("short", "short", false, true).is_err());
        let e = s
            .enable("a long password", "a long password", true, false)
            .unwrap()
            .unwrap();
        assert!(
            e.uri.starts_with("otpauth://totp/Holdfast:this%20computer?secret="),
            "{}",
            e.uri
        );
        assert!(
            e.qr_svg.starts_with("<?xml") && e.qr_svg.contains("<svg"),
            "{}",
            &e.qr_svg[..80]
        );
        let st = s.status();
        assert!(st.enabled && st.totp && !st.control && !st.autostart);
        assert!(!std::fs::read_to_string(s.path()).unwrap().contains("a long password"));
        // The enrolment check takes the code an authenticator shows.
        let secret = e
            .uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        assert!(secret.len() >= 32);
        let f = s.load().unwrap().unwrap().second_factor.unwrap();
        assert!(s.check_code(&f.code_at(1_800_000_000), 1_800_000_000));
        assert!(
            s.check_code(&f.code_at(1_800_000_000), 1_800_000_000),
            "a check uses nothing up"
        );
        assert!(!s.check_code("000000", 1_800_000_000) || f.code_at(1_800_000_000) == "000000");

        s.set_autostart(true, "/usr/bin/holdfast").unwrap();
        let entry = std::fs::read_to_string(dir.join("autostart").join(AUTOSTART_FILE)).unwrap();
        assert!(entry.contains("Exec=/usr/bin/holdfast --hidden\n"), "{entry}");
        assert!(s.status().autostart);
        s.disable().unwrap();
        assert_eq!(s.status(), UnattendedStatus::default());
        assert!(!dir.join("autostart").join(AUTOSTART_FILE).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_file_is_reported_not_ignored() {
        let (s, dir) = store("broken");
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(s.path(), "{not json").unwrap();
        let st = s.status();
        assert!(!st.enabled && st.problem.is_some(), "{st:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exec_paths_with_spaces_and_quotes_are_quoted() {
        assert!(autostart_entry("/opt/Hold Fast/holdfast").contains("Exec=\"/opt/Hold Fast/holdfast\" --hidden"));
        assert!(autostart_entry("/a/\"b\"$c").contains(r#"Exec="/a/\"b\"\$c" --hidden"#));
    }
}
