//! What the exchange is bound to: the room and both DTLS certificate
//! fingerprints, each as this side saw them in the session descriptions
//! (its own in the local one; the peer's in the remote one, which DTLS then
//! checks against the certificate the peer really presented).
//!
//! Someone in the middle of the connection terminates DTLS on both sides
//! with its own certificates, so host and viewer see different pairs, derive
//! different generators, and the exchange fails even with the right code.

use crate::cpace::prefix_free_cat;
use crate::AuthError;

/// Longest fingerprint line value accepted (sha-512 is 64 bytes = 191 characters).
const MAX_FINGERPRINT_CHARS: usize = 200;

/// A DTLS certificate fingerprint in one canonical form: the hash name in
/// lower case, a space, the bytes in upper-case hex separated by colons
/// (`sha-256 AB:CD:…`), as browsers and webrtc-rs write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Parses the value of an `a=fingerprint:` attribute (`sha-256 ab:cd:…`).
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let bad = || AuthError::Malformed("DTLS fingerprint");
        if value.len() > MAX_FINGERPRINT_CHARS {
            return Err(bad());
        }
        let (algo, hex) = value.trim().split_once(' ').ok_or_else(bad)?;
        let algo = algo.to_ascii_lowercase();
        if !matches!(algo.as_str(), "sha-256" | "sha-384" | "sha-512") {
            return Err(bad());
        }
        let bytes: Vec<&str> = hex.trim().split(':').collect();
        let well_formed = bytes.len() >= 32
            && bytes
                .iter()
                .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        if !well_formed {
            return Err(bad());
        }
        Ok(Fingerprint(format!("{algo} {}", hex.trim().to_ascii_uppercase())))
    }

    /// The sha-256 fingerprint of a session description (the hash every
    /// browser and webrtc-rs offer); media-level lines count as well as
    /// session-level ones, and if several sha-256 lines disagree the
    /// description is refused (which certificate would DTLS check?).
    pub fn from_sdp(sdp: &str) -> Result<Self, AuthError> {
        let mut found: Option<Fingerprint> = None;
        for line in sdp.lines() {
            let Some(value) = line.trim_end_matches('\r').strip_prefix("a=fingerprint:") else {
                continue;
            };
            // Other hashes (sha-1, …) may stand beside it; only sha-256 counts.
            if !value.trim().to_ascii_lowercase().starts_with("sha-256 ") {
                continue;
            }
            let fp = Fingerprint::parse(value)?;
            match &found {
                Some(f) if *f != fp => return Err(AuthError::Malformed("two different DTLS fingerprints")),
                _ => found = Some(fp),
            }
        }
        found.ok_or(AuthError::Malformed(
            "no sha-256 DTLS fingerprint in the session description",
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(first: &str) -> String {
        let rest: Vec<String> = (1..32).map(|i| format!("{i:02x}")).collect();
        format!("sha-256 {first}:{}", rest.join(":"))
    }

    #[test]
    fn reads_the_sha256_fingerprint_in_canonical_form() {
        let sdp = format!(
            "v=0\r\na=fingerprint:sha-1 AA:BB\r\nm=application 9\r\na=fingerprint:{}\r\n",
            fp("ab")
        );
        let got = Fingerprint::from_sdp(&sdp).unwrap();
        assert!(got.as_str().starts_with("sha-256 AB:01:02"), "{got}");
        // The same certificate named again (session and media level) is fine.
        let twice = format!("a=fingerprint:{}\r\na=fingerprint:{}\r\n", fp("ab"), fp("AB"));
        assert_eq!(Fingerprint::from_sdp(&twice).unwrap(), got);
    }

    #[test]
    fn refuses_two_certificates_none_and_garbage() {
        let two = format!("a=fingerprint:{}\na=fingerprint:{}\n", fp("ab"), fp("cd"));
        assert!(Fingerprint::from_sdp(&two).is_err());
        assert!(Fingerprint::from_sdp("v=0\r\n").is_err());
        for bad in [
            "sha-256",
            "sha-256 zz:01",
            "md5 AB:CD",
            &format!("sha-256 {}", "AB:".repeat(80)),
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The room and the two certificates, as one side of the exchange saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The room's canonical ID (9 digits).
    pub room: String,
    pub host: Fingerprint,
    pub viewer: Fingerprint,
}

/// Names this protocol and its version inside every hash input.
const PROTOCOL: &[u8] = b"holdfast-auth/1";

impl Binding {
    /// CPace's channel identifier CI: protocol, room, host's and viewer's fingerprints.
    pub fn channel_identifier(&self) -> Vec<u8> {
        prefix_free_cat(&[
            PROTOCOL,
            self.room.as_bytes(),
            self.host.as_str().as_bytes(),
            self.viewer.as_str().as_bytes(),
        ])
    }

    /// This side's associated data: its role and the fingerprints it saw,
    /// sent in the clear so that the other side can tell an interception
    /// ("we saw different certificates") from a wrong code.
    pub(crate) fn associated_data(&self, role: &[u8]) -> Vec<u8> {
        prefix_free_cat(&[role, self.host.as_str().as_bytes(), self.viewer.as_str().as_bytes()])
    }
}
