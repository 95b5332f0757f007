//! The user's settings, one TOML file (`settings.toml`) in the OS config
//! directory, and the device's persistent ID beside it (`device-id`).
//!
//! Settings arrive from the webview as JSON and from a file a person may have
//! edited, so both paths go through [`Settings::validate`]: a bad value is a
//! clear error naming the field, and nothing is saved or changed. The bounds
//! are the safe ones: a grace window under 30 s ends sessions on an ordinary
//! Wi-Fi hiccup, one over an hour keeps a stolen session token alive too long.
//! The file may hold TURN credentials, so it is written owner-only.

use std::fmt;
use std::path::{Path, PathBuf};

use holdfast_proto::signal::IceServer;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const SETTINGS_FILE: &str = "settings.toml";
pub const DEVICE_ID_FILE: &str = "device-id";

pub const FPS_RANGE: (u32, u32) = (1, 60);
pub const KEEPALIVE_SECS_RANGE: (u64, u64) = (1, 30);
pub const GRACE_SECS_RANGE: (u64, u64) = (30, 3600);
/// More ICE servers than this is a mistake, and slows every connection.
pub const MAX_ICE_SERVERS: usize = 8;
/// Longest URL, username or credential accepted.
pub const MAX_FIELD_LEN: usize = 512;
/// Largest settings file read (a real one is under 2 KB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("settings file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no config directory for this user")]
    NoConfigDir,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Picture quality, as the encoder's bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VideoQuality {
    /// For slow links: 1.5 Mbit/s.
    Low,
    /// 4 Mbit/s, the encoder's default.
    #[default]
    Balanced,
    /// For fast LANs: 8 Mbit/s.
    High,
}

impl VideoQuality {
    pub fn bitrate_kbps(self) -> u32 {
        match self {
            VideoQuality::Low => 1_500,
            // The encoder's default (holdfast_media::encode::DEFAULT_BITRATE_KBPS).
            VideoQuality::Balanced => 4_000,
            VideoQuality::High => 8_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// A STUN or TURN server as the settings screen edits it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IceServerSetting {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl fmt::Debug for IceServerSetting {
    // TURN credentials stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServerSetting")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl From<&IceServerSetting> for IceServer {
    fn from(s: &IceServerSetting) -> Self {
        IceServer {
            urls: vec![s.url.clone()],
            username: s.username.clone(),
            credential: s.credential.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Signalling server (`https://…`); `None` runs the embedded one.
    pub signal_url: Option<String>,
    /// STUN and TURN servers handed to both peers (by the embedded server).
    pub ice_servers: Vec<IceServerSetting>,
    pub fps: u32,
    pub quality: VideoQuality,
    /// Host keepalive PING interval (the seeds' 5 s).
    pub keepalive_secs: u64,
    /// How long a dropped session may be resumed (the seeds' 300 s): the
    /// embedded server's window, which it announces; a client (this app on
    /// another server too) keeps to the window its server announces.
    pub grace_secs: u64,
    pub log_level: LogLevel,
    /// `en` or `zh-CN`; `None` follows the system.
    pub language: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            signal_url: None,
            ice_servers: Vec::new(),
            fps: 30,
            quality: VideoQuality::Balanced,
            keepalive_secs: holdfast_session::KEEPALIVE_INTERVAL.as_secs(),
            grace_secs: holdfast_session::GRACE_PERIOD.as_secs(),
            log_level: LogLevel::Info,
            language: None,
        }
    }
}

pub const LANGUAGES: [&str; 2] = ["en", "zh-CN"];

fn check_len(field: &'static str, s: &str) -> Result<(), SettingsError> {
    if s.len() > MAX_FIELD_LEN {
        return Err(invalid(field, format!("longer than {MAX_FIELD_LEN} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    field: &'static str,
    v: T,
    (lo, hi): (T, T),
) -> Result<(), SettingsError> {
    if v < lo || v > hi {
        return Err(invalid(field, format!("{v} is outside {lo}–{hi}")));
    }
    Ok(())
}

/// Whether signalling to `url` stays private: TLS (`https`, `wss`), or a
/// plain connection that never leaves this machine (loopback). Anything else
/// lets whoever is on the path read the session's descriptions and rewrite them.
pub fn signal_url_is_private(url: &url::Url) -> bool {
    match url.scheme() {
        "https" | "wss" => true,
        "http" | "ws" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Trust roots for remote signalling servers: a PEM file named by this
/// variable (an organisation's private CA), else the system's.
pub const SIGNAL_CA_ENV: &str = "HOLDFAST_SIGNAL_CA";

/// A signalling server the person named (in settings or on the Connect tab):
/// its URL, held to [`signal_url_is_private`], and the TLS trust for it.
pub fn remote_server(text: &str) -> Result<(url::Url, Option<std::sync::Arc<rustls::ClientConfig>>), String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("That server address is not right: {e}"))?;
    if !signal_url_is_private(&url) {
        return Err("Use an https:// address for a server on another machine: over plain http anyone on the way could read and change the session's set-up.".into());
    }
    let tls = match std::env::var_os(SIGNAL_CA_ENV) {
        Some(ca) => Some(
            holdfast_peer::signal_client::tls_config_with_ca(Path::new(&ca))
                .map_err(|e| format!("{SIGNAL_CA_ENV}: {e}"))?,
        ),
        None => None,
    };
    Ok((url, tls))
}

impl Settings {
    /// Checks every field; the first problem found is the error.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(u) = &self.signal_url {
            check_len("signal_url", u)?;
            let url = url::Url::parse(u).map_err(|e| invalid("signal_url", format!("not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
                return Err(invalid(
                    "signal_url",
                    "must start with https:// (or http://, ws://, wss://)",
                ));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("signal_url", "has no host"));
            }
            if !signal_url_is_private(&url) {
                return Err(invalid(
                    "signal_url",
                    "must use https:// or wss:// unless the server is on this machine",
                ));
            }
        }
        if self.ice_servers.len() > MAX_ICE_SERVERS {
            return Err(invalid("ice_servers", format!("more than {MAX_ICE_SERVERS}")));
        }
        for s in &self.ice_servers {
            check_len("ice_servers.url", &s.url)?;
            let scheme = s.url.split(':').next().unwrap_or_default();
            match scheme {
                "stun" | "stuns" => {}
                "turn" | "turns" => {
                    if s.username.as_deref().is_none_or(str::is_empty)
                        || s.credential.as_deref().is_none_or(str::is_empty)
                    {
                        return Err(invalid(
                            "ice_servers",
                            format!("{} needs a username and credential", s.url),
                        ));
                    }
                }
                _ => {
                    return Err(invalid(
                        "ice_servers.url",
                        format!("`{}` is not a stun: or turn: URL", s.url),
                    ))
                }
            }
            if s.url.len() <= scheme.len() + 1 {
                return Err(invalid("ice_servers.url", format!("`{}` has no host", s.url)));
            }
            if let Some(u) = &s.username {
                check_len("ice_servers.username", u)?;
            }
            if let Some(c) = &s.credential {
                check_len("ice_servers.credential", c)?;
            }
        }
        in_range("fps", self.fps, FPS_RANGE)?;
        in_range("keepalive_secs", self.keepalive_secs, KEEPALIVE_SECS_RANGE)?;
        in_range("grace_secs", self.grace_secs, GRACE_SECS_RANGE)?;
        if let Some(l) = &self.language {
            if !LANGUAGES.contains(&l.as_str()) {
                return Err(invalid("language", format!("`{l}` is not one of {LANGUAGES:?}")));
            }
        }
        Ok(())
    }

    /// Parses and validates settings sent by the webview.
    pub fn from_json(json: &str) -> Result<Settings, SettingsError> {
        if json.len() as u64 > MAX_FILE_BYTES {
            return Err(invalid("settings", "too large"));
        }
        let s: Settings = serde_json::from_str(json).map_err(|e| invalid("settings", e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    pub fn ice_servers(&self) -> Vec<IceServer> {
        self.ice_servers.iter().map(IceServer::from).collect()
    }
}

/// Where settings and the device ID live.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    dir: PathBuf,
}

/// The OS directories for this app (`~/.config/holdfast`, `~/.local/share/holdfast` on Linux).
pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("app", "Holdfast", "holdfast")
}

impl SettingsStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SettingsStore { dir: dir.into() }
    }

    /// The OS config directory (follows `XDG_CONFIG_HOME` on Linux).
    pub fn for_user() -> Result<Self, SettingsError> {
        Ok(SettingsStore::new(
            project_dirs().ok_or(SettingsError::NoConfigDir)?.config_dir(),
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(SETTINGS_FILE)
    }

    /// The saved settings; defaults when there is no file yet. A file that does
    /// not parse or validate is an error (the caller runs on defaults and says so;
    /// the file is left for the person to fix or overwrite by saving).
    pub fn load(&self) -> Result<Settings, SettingsError> {
        let path = self.path();
        let unreadable = |reason: String| SettingsError::Unreadable {
            path: path.clone(),
            reason,
        };
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(unreadable(e.to_string())),
            Ok(m) if m.len() > MAX_FILE_BYTES => return Err(unreadable(format!("larger than {MAX_FILE_BYTES} bytes"))),
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?;
        let s: Settings = toml::from_str(&text).map_err(|e| unreadable(e.message().to_owned()))?;
        s.validate().map_err(|e| unreadable(e.to_string()))?;
        Ok(s)
    }

    /// Validates, then writes atomically (a temporary file renamed over the old).
    pub fn save(&self, settings: &Settings) -> Result<(), SettingsError> {
        settings.validate()?;
        let text = toml::to_string_pretty(settings).map_err(|e| invalid("settings", e.to_string()))?;
        let header = "# Holdfast settings. Edit in the app (Settings), or here while it is closed.\n";
        write_private(&self.path(), format!("{header}{text}").as_bytes())
    }

    /// This device's ID: 128 random bits, made once and kept. An unreadable or
    /// malformed file is replaced (a new ID is better than none).
    pub fn device_id(&self) -> Result<String, SettingsError> {
        let path = self.dir.join(DEVICE_ID_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let id = text.trim();
            if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id.to_ascii_lowercase());
            }
            tracing::warn!(path = %path.display(), "device ID file malformed; making a new one");
        }
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&path, format!("{id}\n").as_bytes())?;
        Ok(id)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SettingsError> {
    let err = |source| SettingsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SettingsStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SettingsStore::new(dir.path().join("holdfast"));
        (dir, store)
    }

    fn custom() -> Settings {
        Settings {
            signal_url: Some("https://signal.example.org".into()),
            ice_servers: vec![
                IceServerSetting {
                    url: "stun:stun.example.org:3478".into(),
                    ..Default::default()
                },
                IceServerSetting {
                    url: "turn:turn.example.org:3478?transport=udp".into(),
                    username: Some("support".into()),
                    credential: Some("s3cret-turn".into()),
                },
            ],
            fps: 24,
            quality: VideoQuality::High,
            keepalive_secs: 3,
            grace_secs: 120,
            log_level: LogLevel::Debug,
            language: Some("zh-CN".into()),
        }
    }

    #[test]
    fn defaults_are_the_seeds_numbers_and_valid() {
        let s = Settings::default();
        assert_eq!(s.keepalive_secs, 5);
        assert_eq!(s.grace_secs, 300);
        assert_eq!(s.signal_url, None, "the embedded server by default");
        for ok in [
            "https://signal.example.org",
            "wss://10.0.0.1:8443",
            "http://127.0.0.1:8080",
            "ws://[::1]:9",
            "http://localhost:8080",
        ] {
            let url = url::Url::parse(ok).unwrap();
            assert!(signal_url_is_private(&url), "{ok}");
        }
        s.validate().unwrap();
        assert_eq!(
            VideoQuality::Balanced.bitrate_kbps(),
            4_000,
            "the encoder's default (holdfast_media::encode::DEFAULT_BITRATE_KBPS)"
        );
    }

    #[test]
    fn no_file_means_defaults_and_saved_settings_come_back() {
        let (_d, store) = store();
        assert_eq!(store.load().unwrap(), Settings::default());
        store.save(&custom()).unwrap();
        assert_eq!(store.load().unwrap(), custom());
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("grace_secs = 120"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "TURN credentials: owner-only file, not {mode:o}");
        }
    }

    #[test]
    fn invalid_settings_are_refused_with_the_field_named_and_nothing_written() {
        let (_d, store) = store();
        store.save(&custom()).unwrap();
        let before = std::fs::read(store.path()).unwrap();
        let cases: Vec<(&str, Settings)> = vec![
            (
                "grace_secs",
                Settings {
                    grace_secs: 5,
                    ..custom()
                },
            ),
            (
                "grace_secs",
                Settings {
                    grace_secs: 86_400,
                    ..custom()
                },
            ),
            ("fps", Settings { fps: 0, ..custom() }),
            ("fps", Settings { fps: 240, ..custom() }),
            (
                "keepalive_secs",
                Settings {
                    keepalive_secs: 0,
                    ..custom()
                },
            ),
            (
                "signal_url",
                Settings {
                    signal_url: Some("ftp://x.org".into()),
                    ..custom()
                },
            ),
            (
                "signal_url",
                Settings {
                    signal_url: Some("not a url".into()),
                    ..custom()
                },
            ),
            (
                "signal_url",
                Settings {
                    signal_url: Some("http://signal.example.org".into()),
                    ..custom()
                },
            ),
            (
                "signal_url",
                Settings {
                    signal_url: Some("ws://192.168.1.20:8080".into()),
                    ..custom()
                },
            ),
            (
                "signal_url",
                Settings {
                    signal_url: Some(format!("https://{}.org", "a".repeat(600))),
                    ..custom()
                },
            ),
            (
                "ice_servers.url",
                Settings {
                    ice_servers: vec![IceServerSetting {
                        url: "http://stun.org".into(),
                        ..Default::default()
                    }],
                    ..custom()
                },
            ),
            (
                "ice_servers",
                Settings {
                    ice_servers: vec![IceServerSetting {
                        url: "turn:t.org".into(),
                        username: Some("u".into()),
                        credential: None,
                    }],
                    ..custom()
                },
            ),
            (
                "ice_servers",
                Settings {
                    ice_servers: vec![
                        IceServerSetting {
                            url: "stun:a.org".into(),
                            ..Default::default()
                        };
                        9
                    ],
                    ..custom()
                },
            ),
            (
                "ice_servers.username",
                Settings {
                    ice_servers: vec![IceServerSetting {
                        url: "turn:t.org".into(),
                        username: Some("a\nb".into()),
                        credential: Some("c".into()),
                    }],
                    ..custom()
                },
            ),
            (
                "language",
                Settings {
                    language: Some("klingon".into()),
                    ..custom()
                },
            ),
        ];
        for (field, bad) in cases {
            match store.save(&bad) {
                Err(SettingsError::Invalid { field: f, reason }) => {
                    assert_eq!(f, field, "{reason}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{field}: expected Invalid, got {other:?}"),
            }
            assert_eq!(
                std::fs::read(store.path()).unwrap(),
                before,
                "nothing written for a bad {field}"
            );
        }
    }

    #[test]
    fn json_from_the_webview_is_parsed_strictly() {
        let good = serde_json::to_string(&custom()).unwrap();
        assert_eq!(Settings::from_json(&good).unwrap(), custom());
        // Missing fields take defaults (an older UI), unknown ones are refused.
        assert_eq!(Settings::from_json("{}").unwrap(), Settings::default());
        assert!(matches!(
            Settings::from_json(r#"{"fps": 30, "admin": true}"#),
            Err(SettingsError::Invalid { field: "settings", .. })
        ));
        assert!(Settings::from_json(r#"{"fps": "thirty"}"#).is_err());
        assert!(Settings::from_json(r#"{"fps": -1}"#).is_err());
        assert!(Settings::from_json(&" ".repeat(70_000)).is_err());
        assert!(Settings::from_json("[").is_err());
    }

    #[test]
    fn a_hand_broken_file_is_an_error_naming_it_and_is_left_alone() {
        let (_d, store) = store();
        std::fs::create_dir_all(store.dir()).unwrap();
        for text in ["fps = ", "fps = 500", "grace_secs = \"long\"", "bogus = 1"] {
            std::fs::write(store.path(), text).unwrap();
            let e = store.load().unwrap_err();
            assert!(matches!(e, SettingsError::Unreadable { .. }), "{text}: {e}");
            assert!(e.to_string().contains("settings.toml"), "{e}");
            assert_eq!(std::fs::read_to_string(store.path()).unwrap(), text);
        }
    }

    #[test]
    fn the_device_id_is_made_once_and_kept() {
        let (_d, store) = store();
        let id = store.device_id().unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(store.device_id().unwrap(), id, "same ID on the next start");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(SettingsStore::new(other.path()).device_id().unwrap(), id);
        std::fs::write(store.dir().join(DEVICE_ID_FILE), "garbage").unwrap();
        let fresh = store.device_id().unwrap();
        assert_ne!(fresh, id);
        assert_eq!(store.device_id().unwrap(), fresh);
    }

    #[test]
    fn turn_credentials_never_appear_in_debug_output() {
        let s = custom();
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cret-turn"), "{debug}");
        assert!(debug.contains("turn.example.org"));
    }
}
