//! A host's permanent password, for unattended access: the key the
//! end-to-end check uses in its place ([`derive_key`], Argon2id), the public
//! parameters a viewer needs to derive the same key ([`PasswordParams`]),
//! and the short gate the server may see ([`PasswordGate`]).
//!
//! The host stores the key and the parameters, never the password. The key
//! is password-equivalent for joining that machine, so it is kept like a
//! secret (`Zeroizing`, never logged); Argon2id makes each guess at the
//! password from it, or from the gate, cost a full derivation.
//!
//! Why `argon2` (RustCrypto): Argon2id as RFC 9106 specifies it, pure Rust,
//! maintained with the rest of RustCrypto's hashes; the browser computes the
//! same with `@noble/hashes`.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Bytes of the derived key (the secret the end-to-end check runs on).
pub const KEY_BYTES: usize = 32;
/// Bytes of the random salt.
pub const SALT_BYTES: usize = 16;
/// Argon2id's memory in KiB: OWASP's minimum for Argon2id (19 MiB, t = 2).
pub const DEFAULT_MEMORY_KIB: u32 = 19 * 1024;
pub const DEFAULT_ITERATIONS: u32 = 2;
pub const DEFAULT_PARALLELISM: u32 = 1;
/// What a viewer accepts from a host's parameters (they reach it through
/// the server): enough to be worth a guess, not enough for a hostile server
/// to make a viewer spend minutes or gigabytes.
pub const MEMORY_KIB_RANGE: std::ops::RangeInclusive<u32> = 8 * 1024..=256 * 1024;
pub const ITERATIONS_RANGE: std::ops::RangeInclusive<u32> = 1..=8;
pub const PARALLELISM_RANGE: std::ops::RangeInclusive<u32> = 1..=4;
/// Bits of the key's HMAC the server sees. A password may be weak: a
/// hostile server that holds the salt can test guesses against the gate
/// offline; 12 bits let it discard only 4095 of 4096 wrong guesses before
/// each remaining one has to face the host's own lockout.
pub const GATE_BITS: u32 = 12;
/// Longest password accepted (bytes of UTF-8).
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Shortest password a host may set.
pub const MIN_PASSWORD_CHARS: usize = 8;

const GATE_LABEL: &[u8] = b"holdfast password gate";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes")]
    BadPassword,
    #[error("the host's password parameters are out of range (salt 16 bytes in hex, memory 8-256 MiB, 1-8 passes, 1-4 lanes)")]
    BadParams,
    #[error("a password gate is 3 lower-case hex digits")]
    BadGate,
}

/// Argon2id's salt and costs: public, published with the room so a viewer
/// can derive the key. Serialized with the salt in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawParams", into = "RawParams")]
pub struct PasswordParams {
    pub salt: [u8; SALT_BYTES],
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    salt: String,
    m: u32,
    t: u32,
    p: u32,
}

impl TryFrom<RawParams> for PasswordParams {
    type Error = PasswordError;
    fn try_from(r: RawParams) -> Result<Self, PasswordError> {
        let salt = decode_hex::<SALT_BYTES>(&r.salt).ok_or(PasswordError::BadParams)?;
        let p = PasswordParams {
            salt,
            memory_kib: r.m,
            iterations: r.t,
            parallelism: r.p,
        };
        p.check()?;
        Ok(p)
    }
}

impl From<PasswordParams> for RawParams {
    fn from(p: PasswordParams) -> Self {
        RawParams {
            salt: encode_hex(&p.salt),
            m: p.memory_kib,
            t: p.iterations,
            p: p.parallelism,
        }
    }
}

impl PasswordParams {
    /// Today's costs with a fresh salt.
    pub fn new(rng: &mut impl rand::Rng) -> Self {
        PasswordParams {
            salt: rng.random(),
            memory_kib: DEFAULT_MEMORY_KIB,
            iterations: DEFAULT_ITERATIONS,
            parallelism: DEFAULT_PARALLELISM,
        }
    }

    fn check(&self) -> Result<(), PasswordError> {
        let ok = MEMORY_KIB_RANGE.contains(&self.memory_kib)
            && ITERATIONS_RANGE.contains(&self.iterations)
            && PARALLELISM_RANGE.contains(&self.parallelism)
            && self.memory_kib >= 8 * self.parallelism;
        ok.then_some(()).ok_or(PasswordError::BadParams)
    }
}

/// The key a password gives under `params` (Argon2id, 32 bytes). Takes
/// about a tenth of a second with the default costs on this machine.
pub fn derive_key(password: &str, params: &PasswordParams) -> Result<Zeroizing<[u8; KEY_BYTES]>, PasswordError> {
    check_password_len(password)?;
    params.check()?;
    let costs = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_BYTES),
    )
    .map_err(|_| PasswordError::BadParams)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, costs);
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    argon
        .hash_password_into(password.as_bytes(), &params.salt, &mut key[..])
        .map_err(|_| PasswordError::BadParams)?;
    Ok(key)
}

/// Whether a new password is long enough (in characters) and not too long (in bytes).
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    check_password_len(password)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::BadPassword);
    }
    Ok(())
}

fn check_password_len(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::BadPassword);
    }
    Ok(())
}

/// The first [`GATE_BITS`] bits of HMAC-SHA256(key, label), as 3 hex
/// digits: what host and viewer show the server. Redacted in `Debug`,
/// compared in constant time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordGate(String);

impl PasswordGate {
    pub fn from_key(key: &[u8; KEY_BYTES]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(GATE_LABEL);
        let out = mac.finalize().into_bytes();
        let bits = (u16::from(out[0]) << 4) | (u16::from(out[1]) >> 4);
        PasswordGate(format!("{bits:03x}"))
    }

    pub fn parse(s: &str) -> Result<Self, PasswordError> {
        let ok = s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| PasswordGate(s.to_owned())).ok_or(PasswordError::BadGate)
    }

    pub fn matches(&self, other: &PasswordGate) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordGate(<redacted>)")
    }
}

impl TryFrom<String> for PasswordGate {
    type Error = PasswordError;
    fn try_from(s: String) -> Result<Self, PasswordError> {
        PasswordGate::parse(&s)
    }
}

impl From<PasswordGate> for String {
    fn from(g: PasswordGate) -> String {
        g.0
    }
}

pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        if !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PasswordParams {
        PasswordParams {
            salt: *b"0123456789abcdef",
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn the_same_password_and_salt_give_the_same_key_and_gate_and_others_do_not() {
        let a = derive_key("correct horse battery", &params()).unwrap();
        let b = derive_key("correct horse battery", &params()).unwrap();
        let c = derive_key("correct horse batterY", &params()).unwrap();
        let d = derive_key(
            "correct horse battery",
            &PasswordParams {
                salt: *b"0123456789abcdeF",
                ..params()
            },
        )
        .unwrap();
        assert_eq!(a[..], b[..]);
        assert_ne!(a[..], c[..]);
        assert_ne!(a[..], d[..]);
        assert!(PasswordGate::from_key(&a).matches(&PasswordGate::from_key(&b)));
        assert_eq!(PasswordGate::from_key(&a).expose().len(), 3);
        assert_eq!(format!("{:?}", PasswordGate::from_key(&a)), "PasswordGate(<redacted>)");
    }

    /// RFC 9106's Argon2id is what `argon2` computes: a known answer (from
    /// the reference implementation's `argon2` CLI:
    /// `echo -n password | argon2 somesaltsomesalt -id -t 2 -k 65536 -p 1 -l 32 -r`).
    #[test]
    fn argon2id_matches_the_reference_implementation() {
        let p = PasswordParams {
            salt: *b"somesaltsomesalt",
            memory_kib: 64 * 1024,
            iterations: 2,
            parallelism: 1,
        };
        let key = derive_key("password", &p).unwrap();
        assert_eq!(encode_hex(&key[..]), REFERENCE_KEY);
    }
    const REFERENCE_KEY: &str = "fc33b78139231d34b71626bd6245c1d72efa190ad605c3d8166a72adcedfa2c2";

    #[test]
    fn params_out_of_range_or_malformed_are_refused() {
        let ok = serde_json::json!({"salt": "30313233343536373839616263646566", "m": 8192, "t": 1, "p": 1});
        let parsed: PasswordParams = serde_json::from_value(ok.clone()).unwrap();
        assert_eq!(parsed, params());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), ok);
        for bad in [
            serde_json::json!({"salt": "3031", "m": 8192, "t": 1, "p": 1}),
            serde_json::json!({"salt": "3031323334353637383961626364656G", "m": 8192, "t": 1, "p": 1}),
            serde_json::json!({"salt": "30313233343536373839616263646566", "m": 1 << 30, "t": 1, "p": 1}),
            serde_json::json!({"salt": "30313233343536373839616263646566", "m": 8192, "t": 100, "p": 1}),
            serde_json::json!({"salt": "30313233343536373839616263646566", "m": 8192, "t": 1, "p": 0}),
            serde_json::json!({"salt": "30313233343536373839616263646566", "m": 8192, "t": 1, "p": 1, "x": 1}),
        ] {
            assert!(serde_json::from_value::<PasswordParams>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_too_short_too_long_or_empty_are_refused() {
        assert_eq!(check_new_password("short"), Err(PasswordError::BadPassword));
        assert_eq!(check_new_password(&"x".repeat(257)), Err(PasswordError::BadPassword));
        assert!(check_new_password("long enough").is_ok());
        assert!(derive_key("", &params()).is_err());
        assert!(derive_key(&"x".repeat(257), &params()).is_err());
    }

    #[test]
    fn gates_parse_only_three_lower_hex_digits() {
        for ok in ["000", "abc", "f9e"] {
            assert!(PasswordGate::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "00", "0000", "ABC", "xyz", "0 1"] {
            assert!(PasswordGate::parse(bad).is_err(), "{bad}");
        }
    }
}
