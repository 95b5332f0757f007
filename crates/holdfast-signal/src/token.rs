//! Session tokens the server signs instead of remembers, so they outlive a
//! server restart: `hf1.<claims>.<mac>`, both parts base64url, the MAC an
//! HMAC-SHA256 over `hf1.<claims>` with a key the server keeps on disk
//! ([`TokenKey::load_or_create`]).
//!
//! A token proves what the server once granted: a host owns room `room`
//! (a restarted server recreates the room from it, with the gate the host
//! sends along), or a viewer was admitted to it (with or without control). `nonce` tells
//! two rooms that happened to get the same ID apart. Whether the session
//! still lives is the hub's call, not the token's.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use holdfast_proto::signal::PeerId;
use holdfast_proto::{RoomId, SessionToken};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "hf1.";

/// What a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    Host,
    Viewer { control: bool },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub room: RoomId,
    /// Distinguishes this room from a later one with the same ID.
    pub nonce: u64,
    pub peer: PeerId,
    pub grant: Grant,
}

/// The server's signing key (32 random bytes). Redacted in `Debug`.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    pub fn random() -> Self {
        TokenKey(rand::rng().random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenKey(bytes)
    }

    /// Reads the key at `path` (64 hex digits), or creates one there
    /// (readable by its owner only) so tokens survive restarts.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = text.trim();
                let mut bytes = [0u8; 32];
                let ok = text.len() == 64
                    && bytes
                        .iter_mut()
                        .enumerate()
                        .all(|(i, b)| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map(|v| *b = v).is_ok());
                if !ok {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: a token key is 64 hex digits", path.display()),
                    ));
                }
                Ok(TokenKey(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = TokenKey::random();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                std::io::Write::write_all(&mut options.open(path)?, hex.as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    pub fn sign(&self, claims: &Claims) -> SessionToken {
        let body = serde_json::to_vec(claims).expect("claims serialise");
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(body));
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        SessionToken::parse(&format!("{signed}.{tag}")).expect("a signed token is well-formed")
    }

    /// The claims of a token this key signed; None for anything else.
    pub fn verify(&self, token: &SessionToken) -> Option<Claims> {
        let text = token.expose();
        let (signed, tag) = text.rsplit_once('.')?;
        let body = signed.strip_prefix(PREFIX)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&tag).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            room: RoomId::parse("123456789").unwrap(),
            nonce: 42,
            peer: PeerId("p1".into()),
            grant: Grant::Viewer { control: true },
        }
    }

    #[test]
    fn a_token_verifies_only_under_its_key_and_unaltered() {
        let key = TokenKey::random();
        let token = key.sign(&claims());
        let back = key.verify(&token).expect("verifies");
        assert_eq!(
            (back.room, back.nonce, back.peer, back.grant),
            (claims().room, 42, claims().peer, claims().grant)
        );
        assert!(TokenKey::random().verify(&token).is_none(), "another key");
        // Flip one character of the claims, then of the MAC.
        let text = token.expose().to_owned();
        for at in [6, text.len() - 3] {
            let mut bytes = text.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let forged = SessionToken::parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
            assert!(key.verify(&forged).is_none(), "altered at {at}");
        }
        // A random (unsigned) token is just wrong.
        assert!(key.verify(&SessionToken::random(&mut rand::rng())).is_none());
        assert_eq!(format!("{key:?}"), "TokenKey(<redacted>)");
    }

    #[test]
    fn the_key_survives_on_disk_and_bad_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("holdfast-key-{}", rand::rng().random::<u64>()));
        let path = dir.join("token.key");
        let a = TokenKey::load_or_create(&path).unwrap();
        let b = TokenKey::load_or_create(&path).unwrap();
        let t = a.sign(&claims());
        assert_eq!(b.verify(&t).map(|c| c.nonce), Some(42), "same key after a 'restart'");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner-only");
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(TokenKey::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
