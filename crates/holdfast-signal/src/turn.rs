//! Short-lived TURN credentials in coturn's `use-auth-secret` scheme (the
//! "TURN REST API" draft): the username is `expiry:identity` (expiry in Unix
//! seconds) and the password is base64(HMAC-SHA1(secret, username)). coturn,
//! holding the same `static-auth-secret`, checks both without asking us; a
//! leaked pair stops working at its expiry. Pure: the time is passed in.

use base64::Engine;
use hmac::{Hmac, Mac};
use holdfast_proto::signal::IceServer;
use sha1::Sha1;

/// How long handed-out credentials stay valid, unless configured otherwise.
pub const DEFAULT_TURN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Clone)]
pub struct TurnRest {
    pub urls: Vec<String>,
    secret: Vec<u8>,
    pub ttl: std::time::Duration,
}

impl std::fmt::Debug for TurnRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRest")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TurnRest {
    pub fn new(urls: Vec<String>, secret: impl Into<Vec<u8>>, ttl: std::time::Duration) -> Self {
        TurnRest {
            urls,
            secret: secret.into(),
            ttl,
        }
    }

    /// Credentials for `identity` (a peer ID), valid until `now_unix + ttl`.
    pub fn credentials(&self, identity: &str, now_unix: u64) -> IceServer {
        let username = format!("{}:{identity}", now_unix + self.ttl.as_secs());
        IceServer {
            urls: self.urls.clone(),
            credential: Some(password(&self.secret, &username)),
            username: Some(username),
        }
    }
}

/// base64(HMAC-SHA1(secret, username)), as coturn computes it.
pub fn password(secret: &[u8], username: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_is_rfc_2202() {
        // RFC 2202, test case 2: key "Jefe", "what do ya want for nothing?".
        let expected = base64::engine::general_purpose::STANDARD.encode([
            0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84, 0xdf, 0x9c, 0x25, 0x9a,
            0x7c, 0x79,
        ]);
        assert_eq!(password(b"Jefe", "what do ya want for nothing?"), expected);
    }

    #[test]
    fn credentials_name_the_expiry_and_the_member() {
        let t = TurnRest::new(
            vec!["turn:127.0.0.1:3478".into()],
            "s3cret",
            std::time::Duration::from_secs(600),
        );
        let c = t.credentials("p0123", 1_700_000_000);
        assert_eq!(c.username.as_deref(), Some("1700000600:p0123"));
        assert_eq!(
            c.credential.as_deref(),
            Some(password(b"s3cret", "1700000600:p0123").as_str())
        );
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
