//! Unattended access at the edges: the host's settings file (the password's
//! Argon2id key and parameters, the optional TOTP secret, the lockout kept
//! across restarts) and the viewer's way in (ask the server for the room's
//! parameters, derive the key, join with its gate).
//!
//! The password itself is never stored, logged or sent; the key is kept in
//! a file only its owner can read (mode 0600) and redacted in `Debug`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use holdfast_auth::lockout::Lockout;
use holdfast_auth::password::{decode_hex, derive_key, encode_hex, PasswordGate, PasswordParams, KEY_BYTES};
use holdfast_auth::totp::SecondFactor;
use holdfast_proto::signal::{ClientEnvelope, ClientMessage, ServerEnvelope, ServerMessage, SignalError, Unattended};
use holdfast_proto::{RoomId, SessionToken};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;
use url::Url;
use zeroize::Zeroizing;

use crate::PeerError;

/// What a host with unattended access on keeps, and how it admits.
pub struct UnattendedAccess {
    pub params: PasswordParams,
    pub key: Zeroizing<[u8; KEY_BYTES]>,
    pub second_factor: Option<SecondFactor>,
    /// Whether a password join gets control (else view only).
    pub control: bool,
    pub lockout: Lockout,
    /// Where the lockout is kept across restarts (None: in memory only).
    pub lockout_file: Option<PathBuf>,
    /// Where the host token of this machine's room is kept, so the machine
    /// keeps its ID across restarts (None: a new ID each start).
    pub room_file: Option<PathBuf>,
}

impl std::fmt::Debug for UnattendedAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnattendedAccess")
            .field("second_factor", &self.second_factor.is_some())
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

impl UnattendedAccess {
    /// What the room publishes: the parameters and the key's gate.
    pub fn published(&self) -> Unattended {
        Unattended {
            params: self.params.clone(),
            gate: PasswordGate::from_key(&self.key),
        }
    }

    /// The host token a previous start kept (its room's ID comes back with it).
    pub fn saved_room(&self) -> Option<SessionToken> {
        let text = std::fs::read_to_string(self.room_file.as_ref()?).ok()?;
        SessionToken::parse(text.trim()).ok()
    }

    /// Keeps the host token for the next start (mode 0600: it names this
    /// machine's room to the server).
    pub fn save_room(&self, token: &SessionToken) {
        let Some(path) = &self.room_file else { return };
        if let Err(e) = write_private(path, token.expose().as_bytes()) {
            tracing::warn!(path = %path.display(), "could not keep this machine's ID for the next start: {e}");
        }
    }

    /// Keeps the lockout for the next start (best effort: a failure to
    /// write is logged, the lock still holds in memory).
    pub fn save_lockout(&self) {
        let Some(path) = &self.lockout_file else { return };
        let text = serde_json::to_string(&self.lockout).expect("a lockout serialises");
        if let Err(e) = write_private(path, text.as_bytes()) {
            tracing::warn!(path = %path.display(), "could not keep the password lockout: {e}");
        }
    }
}

/// Seconds since the Unix epoch (the lockout's and TOTP's clock).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: not a Holdfast unattended-access file ({1})")]
    Format(PathBuf, String),
    #[error(transparent)]
    Password(#[from] holdfast_auth::password::PasswordError),
}

/// The file's contents (JSON, mode 0600).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    /// Argon2id's salt and costs.
    params: PasswordParams,
    /// The derived key in hex (password-equivalent for this machine).
    key: String,
    /// The TOTP secret in hex, when the second factor is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<String>,
    /// Password joins get control (else view only).
    control: bool,
}

/// Sets a password (and optionally a new TOTP secret) into `path`, replacing
/// what was there. Returns the second factor, to show its enrolment URI.
pub fn create(path: &Path, password: &str, totp: bool, control: bool) -> Result<Option<SecondFactor>, SettingsError> {
    holdfast_auth::password::check_new_password(password)?;
    let params = PasswordParams::new(&mut rand::rng());
    let key = derive_key(password, &params)?;
    let factor = totp.then(|| SecondFactor::generate(&mut rand::rng()));
    let file = SettingsFile {
        params,
        key: encode_hex(&key[..]),
        totp: factor.as_ref().map(|f| f.secret_hex().to_string()),
        control,
    };
    let text = Zeroizing::new(serde_json::to_string_pretty(&file).expect("settings serialise"));
    write_private(path, text.as_bytes()).map_err(|e| SettingsError::Io(path.to_owned(), e))?;
    // A new password starts with a clean slate.
    let _ = std::fs::remove_file(beside(path, "lockout"));
    Ok(factor)
}

/// Turns unattended access off: the settings at `path` and what is kept
/// beside them (the lockout, this machine's room) go.
pub fn remove(path: &Path) -> std::io::Result<()> {
    for p in [path.to_owned(), beside(path, "lockout"), beside(path, "room")] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Reads the settings at `path`, with the lockout kept beside it.
pub fn load(path: &Path) -> Result<UnattendedAccess, SettingsError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| SettingsError::Io(path.to_owned(), e))?);
    let bad = |why: &str| SettingsError::Format(path.to_owned(), why.to_owned());
    let file: SettingsFile = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let key = decode_hex::<KEY_BYTES>(&file.key).ok_or_else(|| bad("the key is not 32 bytes of hex"))?;
    let second_factor = match &file.totp {
        Some(s) => Some(SecondFactor::from_secret_hex(s).ok_or_else(|| bad("the TOTP secret is not 20 bytes of hex"))?),
        None => None,
    };
    let lockout_file = beside(path, "lockout");
    let lockout = std::fs::read_to_string(&lockout_file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    Ok(UnattendedAccess {
        params: file.params,
        key: Zeroizing::new(key),
        second_factor,
        control: file.control,
        lockout,
        lockout_file: Some(lockout_file),
        room_file: Some(beside(path, "room")),
    })
}

/// `settings` with `.ext` added to its name (`unattended.json.lockout`).
fn beside(settings: &Path, ext: &str) -> PathBuf {
    let mut name = settings.file_name().unwrap_or_default().to_owned();
    name.push(".");
    name.push(ext);
    settings.with_file_name(name)
}

/// Writes `bytes` to `path` readable by its owner only, replacing it whole.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A viewer's password login: the key and its gate (the password is gone
/// once derived), and the one-time code if the person has one.
#[derive(Clone)]
pub struct PasswordLogin {
    pub key: Zeroizing<[u8; KEY_BYTES]>,
    pub gate: PasswordGate,
    pub totp: Option<String>,
}

impl std::fmt::Debug for PasswordLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordLogin(<redacted>)")
    }
}

/// How long a lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the server for room `id`'s password parameters and derives the key
/// (Argon2id, off the async threads). A room without a password and an
/// unknown room give the same error.
pub async fn login(
    signal_url: &Url,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    id: &RoomId,
    password: Zeroizing<String>,
    totp: Option<String>,
) -> Result<PasswordLogin, PeerError> {
    let params = tokio::time::timeout(LOOKUP_TIMEOUT, lookup(signal_url.clone(), tls, id))
        .await
        .map_err(|_| PeerError::Connect("no answer to the password lookup".into()))??
        .ok_or_else(|| {
            PeerError::Ended("this ID takes no password (unattended access is off, or no such ID)".into())
        })?;
    let key = tokio::task::spawn_blocking(move || derive_key(&password, &params))
        .await
        .map_err(|e| PeerError::Unexpected(e.to_string()))?
        .map_err(|e| PeerError::Ended(e.to_string()))?;
    Ok(PasswordLogin {
        gate: PasswordGate::from_key(&key),
        key,
        totp,
    })
}

async fn lookup(
    signal_url: Url,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    id: &RoomId,
) -> Result<Option<PasswordParams>, PeerError> {
    let mut ws = crate::signal_client::open_within(signal_url, tls, LOOKUP_TIMEOUT).await?;
    let ask = ClientEnvelope::new(None, ClientMessage::Lookup { id: id.clone() });
    ws.send(Message::text(ask.to_json()))
        .await
        .map_err(|e| PeerError::Connect(e.to_string()))?;
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg.map_err(|e| PeerError::Connect(e.to_string()))? else {
            continue;
        };
        let env = ServerEnvelope::parse(&text).map_err(|e| PeerError::Unexpected(e.to_string()))?;
        match env.msg {
            ServerMessage::RoomInfo { id: got, unattended } if &got == id => {
                let _ = ws.close(None).await;
                return Ok(unattended);
            }
            ServerMessage::Error {
                code,
                message,
                retry_after_ms,
            } => return Err(PeerError::Refused(SignalError::received(code, message, retry_after_ms))),
            _ => {}
        }
    }
    Err(PeerError::SignalClosed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_file_keeps_the_key_never_the_password_and_only_its_owner_reads_it() {
        let dir = std::env::temp_dir().join(format!("hf-unattended-{}", std::process::id()));
        let path = dir.join("unattended.json");
        let factor = create(&path, "a long enough password", true, true).unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("a long enough password"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let access = load(&path).unwrap();
        let key = derive_key("a long enough password", &access.params).unwrap();
        assert_eq!(access.key[..], key[..]);
        assert!(access.control);
        assert_eq!(
            access.second_factor.as_ref().unwrap().code_at(1_800_000_000),
            factor.code_at(1_800_000_000)
        );
        assert!(!format!("{access:?}").contains(&encode_hex(&key[..])));

        // The lockout outlives a restart.
        let mut access = access;
        for i in 0..5 {
            access.lockout.on_failure(1_800_000_000 + i);
        }
        access.save_lockout();
        assert!(load(&path).unwrap().lockout.check(1_800_000_010).is_err());
        // A new password clears it; a short one is refused and changes nothing.
        assert!(create(&path, "short", false, true).is_err());
        assert!(load(&path).unwrap().second_factor.is_some());
        create(&path, "another long password", false, false).unwrap();
        let again = load(&path).unwrap();
        assert!(again.lockout.check(1_800_000_010).is_ok());
        assert!(again.second_factor.is_none() && !again.control);
        std::fs::write(&path, "{\"params\":1}").unwrap();
        assert!(matches!(load(&path), Err(SettingsError::Format(..))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
