//! The host's end-to-end check that a viewer knows the room code, bound to
//! the DTLS certificates of the very connection it runs over, so that
//! neither the signalling server (which relays the session descriptions)
//! nor anyone on the path can stand in for either side.
//!
//! - [`cpace`]: CPace, suite CPACE-RISTR255-SHA512 (draft-irtf-cfrg-cpace),
//!   checked against the draft's test vectors.
//! - [`binding`]: the DTLS fingerprints and room the exchange is bound to.
//! - [`handshake`]: the three messages Holdfast sends over the `commands`
//!   channel, as pure state machines (randomness passed in, no IO).
//! - [`password`], [`lockout`], [`totp`]: unattended access: the key a
//!   permanent password gives (Argon2id) and the gate the server sees, the
//!   host's own lockout, and the optional second factor (RFC 6238).
//!
//! Why CPace over ristretto255: a balanced PAKE recommended by the CFRG,
//! with a prime-order group (no cofactor pitfalls) that curve25519-dalek in
//! Rust and `@noble/curves` in the browser both implement; the same vectors
//! (`tests/vectors/auth.json`, written here, checked by Vitest) prove the two
//! implementations agree.

pub mod binding;
pub mod cpace;
pub mod handshake;
pub mod lockout;
pub mod password;
pub mod totp;
#[cfg(test)]
mod vectors;

pub use binding::{Binding, Fingerprint};
pub use handshake::{
    Confirm, Established, Hello, HostHandshake, Reply, Secret, SecretKind, ViewerHandshake, RESUME_BYTES, SID_BYTES,
    TAG_BYTES,
};

/// Why an exchange failed. Each is final for that run: the connection it
/// ran over is closed, and the host counts it as a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed authentication message: {0}")]
    Malformed(&'static str),
    #[error("the peer's key share is not a valid group element")]
    InvalidPoint,
    #[error("the two sides saw different DTLS certificates: someone is in the middle of this connection")]
    Intercepted,
    #[error("the viewer did not prove it knows the {}", kind_name(*.0))]
    WrongSecret(SecretKind),
    #[error("the host could not prove it knows the code: someone may be in the middle of this connection")]
    HostUnproven,
    #[error("the host asked for the {}, which this viewer does not have", kind_name(*.0))]
    KindMismatch(SecretKind),
}

impl AuthError {
    /// A stable, machine-readable name, for the wire and for tests.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) | AuthError::InvalidPoint | AuthError::KindMismatch(_) => "malformed",
            AuthError::Intercepted => "intercepted",
            AuthError::WrongSecret(_) => "wrong-code",
            AuthError::HostUnproven => "host-unproven",
        }
    }
}

fn kind_name(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::Code => "code",
        SecretKind::Resume => "secret of its earlier session",
        SecretKind::Password => "password",
    }
}
