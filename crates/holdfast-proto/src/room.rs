//! Room credentials: the ID a host reads out to support staff, and the one-time
//! code that proves the viewer was told it.
//!
//! IDs are 9 decimal digits shown in groups of three (`123 456 789`), easy to
//! say over the phone. Codes are 10 characters of Crockford base32 (50 bits of
//! entropy, above the 40-bit floor), shown as `ABCDE-FGHJK`; parsing forgives
//! case, spaces, dashes and the letters people confuse with digits.
//!
//! The server never sees a whole code: the host generates it, and host and
//! viewer give the server only its first [`GATE_LEN`] characters, the
//! [`CodeGate`] (20 bits), so the server can turn strangers away early; the
//! host checks the whole code itself, end to end (`holdfast-auth`).
//!
//! After a successful join the server hands the viewer a [`SessionToken`]
//! (and the host one for its room): an opaque string, signed by the server
//! and bound to the room, that a rejoin presents instead of the code (and
//! without asking the host again). Clients never look inside it.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Crockford's base32 alphabet: no I, L, O or U.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code; 10 x 5 bits = 50 bits of entropy.
pub const CODE_LEN: usize = 10;
/// Characters of the code the server sees (20 of its 50 bits).
pub const GATE_LEN: usize = 4;
/// Digits in a room ID.
pub const ID_DIGITS: usize = 9;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("a room ID has 9 digits")]
    BadId,
    #[error("a code has 10 letters and digits")]
    BadCode,
    #[error("a code gate is 4 letters and digits")]
    BadGate,
    #[error("a session token is 32 to 512 characters from A-Z a-z 0-9 . _ -")]
    BadToken,
}

/// A room's public identifier, stored canonically as 9 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomId(String);

impl RoomId {
    pub fn random(rng: &mut impl Rng) -> Self {
        // Leading digit 1-9 so the number never looks truncated.
        let n: u32 = rng.random_range(100_000_000..1_000_000_000);
        RoomId(n.to_string())
    }

    /// Parses `123456789`, `123 456 789` or `123-456-789`.
    pub fn parse(s: &str) -> Result<Self, CredentialError> {
        if s.len() > 32 {
            return Err(CredentialError::BadId);
        }
        let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() != ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CredentialError::BadId);
        }
        Ok(RoomId(digits))
    }

    /// The canonical 9-digit form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Grouped for reading aloud: `123 456 789`.
    pub fn grouped(&self) -> String {
        format!("{} {} {}", &self.0[0..3], &self.0[3..6], &self.0[6..9])
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.0)
    }
}

impl TryFrom<String> for RoomId {
    type Error = CredentialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RoomId::parse(&s)
    }
}

impl From<RoomId> for String {
    fn from(id: RoomId) -> String {
        id.0
    }
}

/// A one-time code. Its `Debug` form is redacted so it cannot leak into logs.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomCode(String);

impl RoomCode {
    pub fn random(rng: &mut impl Rng) -> Self {
        let s = (0..CODE_LEN)
            .map(|_| CROCKFORD[rng.random_range(0..32)] as char)
            .collect();
        RoomCode(s)
    }

    /// Parses a code as a person might type it: any case, with spaces or
    /// dashes, `O` for `0`, `I`/`L` for `1`.
    pub fn parse(s: &str) -> Result<Self, CredentialError> {
        if s.len() > 64 {
            return Err(CredentialError::BadCode);
        }
        let mut out = String::with_capacity(CODE_LEN);
        for c in s.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
                return Err(CredentialError::BadCode);
            }
            out.push(c);
        }
        if out.len() != CODE_LEN {
            return Err(CredentialError::BadCode);
        }
        Ok(RoomCode(out))
    }

    /// Grouped for reading: `ABCDE-FGHJK`.
    pub fn grouped(&self) -> String {
        format!("{}-{}", &self.0[..5], &self.0[5..])
    }

    /// The canonical form, for a URL or a form field. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, so response timing says nothing about how
    /// many characters of a guess were right.
    pub fn matches(&self, other: &RoomCode) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }

    /// The part of the code the server may see.
    pub fn gate(&self) -> CodeGate {
        CodeGate(self.0[..GATE_LEN].to_owned())
    }
}

/// The first [`GATE_LEN`] characters of a room code: what the signalling
/// server checks before it bothers the host. Knowing it is not enough to
/// pass the host's own check. Redacted in `Debug`, compared in constant time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodeGate(String);

impl CodeGate {
    pub fn parse(s: &str) -> Result<Self, CredentialError> {
        if s.len() != GATE_LEN || !s.bytes().all(|b| CROCKFORD.contains(&b)) {
            return Err(CredentialError::BadGate);
        }
        Ok(CodeGate(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, other: &CodeGate) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for CodeGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeGate(<redacted>)")
    }
}

impl TryFrom<String> for CodeGate {
    type Error = CredentialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CodeGate::parse(&s)
    }
}

impl From<CodeGate> for String {
    fn from(c: CodeGate) -> String {
        c.0
    }
}

impl fmt::Debug for RoomCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomCode(<redacted>)")
    }
}

impl TryFrom<String> for RoomCode {
    type Error = CredentialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RoomCode::parse(&s)
    }
}

impl From<RoomCode> for String {
    fn from(c: RoomCode) -> String {
        c.0
    }
}

/// Shortest and longest session token accepted.
pub const TOKEN_LEN: std::ops::RangeInclusive<usize> = 32..=512;

/// A session token: proof of an earlier, consented join (or of owning a
/// room). Opaque to clients; redacted in `Debug`; compared in constant time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionToken(String);

impl SessionToken {
    pub fn random(rng: &mut impl Rng) -> Self {
        let bytes: [u8; 32] = rng.random();
        SessionToken(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn parse(s: &str) -> Result<Self, CredentialError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if !TOKEN_LEN.contains(&s.len()) || !s.bytes().all(allowed) {
            return Err(CredentialError::BadToken);
        }
        Ok(SessionToken(s.to_owned()))
    }

    /// The wire form. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, other: &SessionToken) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl TryFrom<String> for SessionToken {
    type Error = CredentialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SessionToken::parse(&s)
    }
}

impl From<SessionToken> for String {
    fn from(t: SessionToken) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_nine_digits_and_parse_back_from_grouped_form() {
        let mut rng = rand::rng();
        for _ in 0..1000 {
            let id = RoomId::random(&mut rng);
            assert_eq!(id.as_str().len(), 9);
            assert_eq!(RoomId::parse(&id.grouped()).unwrap(), id);
        }
        assert!(RoomId::parse("12345678").is_err());
        assert!(RoomId::parse("1234567890").is_err());
        assert!(RoomId::parse("12345678a").is_err());
        assert!(RoomId::parse("١٢٣٤٥٦٧٨٩").is_err(), "non-ASCII digits rejected");
    }

    #[test]
    fn codes_forgive_how_people_type_them() {
        let code = RoomCode::parse("abcde-fghjk").unwrap();
        assert_eq!(code.expose(), "ABCDEFGHJK");
        assert!(code.matches(&RoomCode::parse("ABCDE FGHJK").unwrap()));
        assert_eq!(RoomCode::parse("0O1IL23456").unwrap().expose(), "0011123456");
        assert!(RoomCode::parse("ABCDEFGHJ").is_err());
        assert!(RoomCode::parse("ABCDEFGHJU").is_err(), "U is not in the alphabet");
        assert!(!code.matches(&RoomCode::parse("ABCDEFGHJM").unwrap()));
    }

    #[test]
    fn codes_are_random_and_never_printed_by_debug() {
        let mut rng = rand::rng();
        let a = RoomCode::random(&mut rng);
        let b = RoomCode::random(&mut rng);
        assert_ne!(a.expose(), b.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(RoomCode::parse(&a.grouped()).unwrap().expose(), a.expose());
    }

    #[test]
    fn tokens_are_random_strict_and_redacted() {
        let mut rng = rand::rng();
        let a = SessionToken::random(&mut rng);
        let b = SessionToken::random(&mut rng);
        assert!(!a.matches(&b));
        assert!(a.matches(&SessionToken::parse(a.expose()).unwrap()));
        assert!(!format!("{a:?}").contains(a.expose()));
        assert!(SessionToken::parse(&format!("{}/", a.expose())).is_err());
        assert!(SessionToken::parse(&a.expose()[..31]).is_err());
        assert!(SessionToken::parse(&"a".repeat(513)).is_err());
        assert!(SessionToken::parse("").is_err());
    }

    /// How a typed code reads and which gate the server sees, written for
    /// the browser's `canonicalCode` to check (ui/src/auth.test.ts), so the
    /// two parsers cannot drift apart. Regenerate with
    /// `HOLDFAST_WRITE_VECTORS=1 cargo test -p holdfast-proto`.
    #[test]
    fn code_vectors_match_the_committed_file() {
        let inputs = [
            "ABCDE-FGHJK",
            "abcde fghjk",
            "oil1o-0ilo1",
            "  0123456789 ",
            "ZZZZZ-ZZZZZ",
            "ABCDE-FGHJ",
            "ABCDE-FGHJKL",
            "ABCDE-FGHJU",
            "ABCDÉ-FGHJK",
            "ab_cd-efghj",
            "",
        ];
        let cases: Vec<serde_json::Value> = inputs
            .iter()
            .map(|input| {
                let code = RoomCode::parse(input).ok();
                serde_json::json!({
                    "input": input,
                    "canonical": code.as_ref().map(|c| c.expose().to_owned()),
                    "gate": code.as_ref().map(|c| c.gate().expose().to_owned()),
                })
            })
            .collect();
        crate::check_vectors(
            "codes.json",
            serde_json::json!({
                "about": "Written by holdfast-proto (room.rs), checked by ui/src/auth.test.ts.",
                "gate_len": GATE_LEN,
                "cases": cases,
            }),
        );
    }

    #[test]
    fn a_gate_is_the_code_s_first_four_characters_and_hides_in_debug() {
        let code = RoomCode::parse("ABCDE-FGHJK").unwrap();
        assert_eq!(code.gate().expose(), "ABCD");
        assert!(code.gate().matches(&CodeGate::parse("ABCD").unwrap()));
        assert!(!code.gate().matches(&CodeGate::parse("ABCE").unwrap()));
        assert_eq!(format!("{:?}", code.gate()), "CodeGate(<redacted>)");
        for bad in ["ABC", "ABCDE", "abcd", "ABCU", ""] {
            assert!(CodeGate::parse(bad).is_err(), "{bad}");
        }
    }
}
