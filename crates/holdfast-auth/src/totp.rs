//! The second factor of unattended access: a time-based one-time code
//! (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, one step of clock drift
//! either way), as every authenticator app makes them. The host asks for
//! it only after the end-to-end check passed, so the code travels inside
//! the authenticated channel; a code is good once ([`SecondFactor::check`]
//! refuses a step already used).
//!
//! Why `totp-rs`: RFC 6238 with the `otpauth://` URI authenticator apps
//! read, maintained, and checked against the RFC's vectors upstream.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::password::{decode_hex, encode_hex};

/// Bytes of a TOTP secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Seconds a code lasts.
pub const STEP_SECS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the one-time code is 6 digits")]
    Malformed,
    #[error("wrong one-time code")]
    Wrong,
    #[error("this one-time code was used already; wait for the next one")]
    Reused,
}

/// A host's TOTP secret and the last step a code was accepted for.
pub struct SecondFactor {
    secret: Zeroizing<[u8; SECRET_BYTES]>,
    last_used_step: Option<u64>,
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecondFactor(<redacted>)")
    }
}

impl SecondFactor {
    pub fn generate(rng: &mut impl rand::Rng) -> Self {
        Self::from_secret(rng.random())
    }

    pub fn from_secret(secret: [u8; SECRET_BYTES]) -> Self {
        SecondFactor {
            secret: Zeroizing::new(secret),
            last_used_step: None,
        }
    }

    /// The secret in hex, for the host's settings file (mode 0600).
    pub fn secret_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(encode_hex(&self.secret[..]))
    }

    pub fn from_secret_hex(s: &str) -> Option<Self> {
        decode_hex::<SECRET_BYTES>(s).map(Self::from_secret)
    }

    fn totp(&self, account: &str) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            1,
            STEP_SECS,
            self.secret.to_vec(),
            Some("Holdfast".to_owned()),
            account.to_owned(),
        )
    }

    /// What an authenticator app scans to enrol (`otpauth://totp/...`).
    pub fn enrolment_uri(&self, account: &str) -> Zeroizing<String> {
        Zeroizing::new(self.totp(&account.replace(':', " ")).get_url())
    }

    /// The code for `unix_secs` (for tests and for the enrolment check).
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.totp("").generate(unix_secs)
    }

    /// Checks `code` at `unix_secs`; a good code uses its step up.
    pub fn check(&mut self, code: &str, unix_secs: u64) -> Result<(), TotpError> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpError::Malformed);
        }
        let totp = self.totp("");
        let now_step = unix_secs / STEP_SECS;
        // Which step (one either side of now) the code belongs to.
        let step = [now_step.saturating_sub(1), now_step, now_step + 1]
            .into_iter()
            .find(|&s| bool::from(totp.generate(s * STEP_SECS).as_bytes().ct_eq(code.as_bytes())))
            .ok_or(TotpError::Wrong)?;
        if self.last_used_step.is_some_and(|used| step <= used) {
            return Err(TotpError::Reused);
        }
        self.last_used_step = Some(step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, truncated to 6 digits.
    #[test]
    fn codes_match_rfc_6238() {
        let f = SecondFactor::from_secret(*b"12345678901234567890");
        assert_eq!(f.code_at(59), "287082");
        assert_eq!(f.code_at(1111111109), "081804");
        assert_eq!(f.code_at(1234567890), "005924");
        assert_eq!(f.code_at(2000000000), "279037");
    }

    #[test]
    fn a_code_is_good_once_within_one_step_either_way() {
        let mut f = SecondFactor::from_secret([7; SECRET_BYTES]);
        let t = 1_800_000_000;
        let code = f.code_at(t);
        assert_eq!(f.check("12345x", t), Err(TotpError::Malformed));
        assert_eq!(f.check("1234567", t), Err(TotpError::Malformed));
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(f.check(&wrong, t), Err(TotpError::Wrong));
        assert_eq!(f.check(&code, t + 29 - t % 30), Ok(()));
        assert_eq!(f.check(&code, t), Err(TotpError::Reused));
        // The previous step's code is older than the one used: refused too.
        assert_eq!(f.check(&f.code_at(t - 30), t), Err(TotpError::Reused));
        // The next step's code is fine, and a code two steps away never is.
        assert_eq!(f.check(&f.code_at(t + 30), t), Ok(()));
        let mut g = SecondFactor::from_secret([7; SECRET_BYTES]);
        assert_eq!(g.check(&g.code_at(t + 90), t), Err(TotpError::Wrong));
    }

    #[test]
    fn the_enrolment_uri_carries_the_secret_in_base32_and_the_secret_round_trips() {
        let f = SecondFactor::from_secret(*b"12345678901234567890");
        let uri = f.enrolment_uri("support: desk 4");
        assert!(
            uri.starts_with("otpauth://totp/Holdfast:support%20%20desk%204?"),
            "{}",
            *uri
        );
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{}", *uri);
        let again = SecondFactor::from_secret_hex(&f.secret_hex()).unwrap();
        assert_eq!(again.code_at(59), "287082");
        assert!(SecondFactor::from_secret_hex("zz").is_none());
    }
}
