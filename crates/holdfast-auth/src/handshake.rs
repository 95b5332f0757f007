//! The exchange as Holdfast runs it over the `commands` channel, before any
//! frame or input flows: CPace with the host as initiator (A) and the viewer
//! as responder (B), then explicit key confirmation (HMAC over each side's
//! message, as the draft's "Key confirmation" section suggests).
//!
//! ```text
//!  host                                   viewer
//!  Hello {kind, sid, MSGa}      ───────►  checks ADa's fingerprints, K, ISK
//!                               ◄───────  Reply {MSGb, Tb}
//!  checks ADb, K, ISK, Tb
//!  Confirm {Ta}                 ───────►  checks Ta
//! ```
//!
//! The viewer proves it knows the secret first, so a stranger learns
//! nothing from the host but "no"; the host's tag then proves to the viewer
//! that it talks to the host that showed the code, not to a server in the
//! middle. Each run is one guess for an attacker: the host counts failures.
//!
//! The secret is the room code for a viewer's first connection, and after
//! that the resume secret both sides derived from that exchange: a rebuilt
//! peer connection (new certificates) is checked again without asking the
//! person for the code or the host for consent.

use curve25519_dalek::scalar::Scalar;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::binding::Binding;
use crate::cpace::{self, split_prefix_free, POINT_BYTES};
use crate::AuthError;

/// Length of the session ID the host picks for each run.
pub const SID_BYTES: usize = 16;
/// Length of a confirmation tag (HMAC-SHA-512).
pub const TAG_BYTES: usize = 64;
/// Length of the resume secret.
pub const RESUME_BYTES: usize = 32;
/// Longest CPace message accepted (a point and associated data with two fingerprints).
pub const MAX_MSG_BYTES: usize = 512;

const HOST_ROLE: &[u8] = b"holdfast host";
const VIEWER_ROLE: &[u8] = b"holdfast viewer";

/// Which secret a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The room code the host shows (a viewer's first connection).
    Code,
    /// The secret derived from an earlier exchange with the same viewer.
    Resume,
    /// The key derived from the host's permanent password (unattended access).
    Password,
}

/// The password-like input (CPace's PRS), wiped when dropped.
#[derive(Clone)]
pub enum Secret {
    /// The code in its canonical form (10 upper-case characters, no dash).
    Code(Zeroizing<Vec<u8>>),
    Resume(Zeroizing<[u8; RESUME_BYTES]>),
    /// The Argon2id key of the host's permanent password ([`crate::password`]).
    Password(Zeroizing<[u8; crate::password::KEY_BYTES]>),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret::{:?}(<redacted>)", self.kind())
    }
}

impl Secret {
    pub fn code(canonical: &str) -> Self {
        Secret::Code(Zeroizing::new(canonical.as_bytes().to_vec()))
    }

    /// A resume secret kept from an earlier exchange (say, across a restart
    /// of the viewer process, or in the browser's session storage).
    pub fn resume(bytes: [u8; RESUME_BYTES]) -> Self {
        Secret::Resume(Zeroizing::new(bytes))
    }

    /// The key a permanent password gives ([`crate::password::derive_key`]).
    pub fn password(key: Zeroizing<[u8; crate::password::KEY_BYTES]>) -> Self {
        Secret::Password(key)
    }

    /// The resume secret's bytes, to keep for a later connection (None for a code).
    pub fn resume_bytes(&self) -> Option<&[u8; RESUME_BYTES]> {
        match self {
            Secret::Resume(r) => Some(r),
            Secret::Code(_) | Secret::Password(_) => None,
        }
    }

    pub fn kind(&self) -> SecretKind {
        match self {
            Secret::Code(_) => SecretKind::Code,
            Secret::Resume(_) => SecretKind::Resume,
            Secret::Password(_) => SecretKind::Password,
        }
    }

    fn prs(&self) -> &[u8] {
        match self {
            Secret::Code(c) => c,
            Secret::Resume(r) => &r[..],
            Secret::Password(k) => &k[..],
        }
    }
}

/// Host → viewer: the run's secret kind, session ID and MSGa.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub kind: SecretKind,
    pub sid: [u8; SID_BYTES],
    pub msg: Vec<u8>,
}

/// Viewer → host: MSGb and the viewer's confirmation tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub msg: Vec<u8>,
    pub tag: [u8; TAG_BYTES],
}

/// Host → viewer: the host's confirmation tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub tag: [u8; TAG_BYTES],
}

/// What a completed exchange leaves both sides with.
pub struct Established {
    /// The secret for this viewer's later connections ([`Secret::Resume`]).
    pub resume: Secret,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Established(<redacted>)")
    }
}

/// Keys derived from the intermediate session key.
struct Keys {
    mac: Zeroizing<[u8; 64]>,
    resume: Zeroizing<[u8; RESUME_BYTES]>,
}

impl Keys {
    fn derive(isk: &[u8]) -> Self {
        let mac: [u8; 64] = Sha512::new()
            .chain_update(b"CPaceMac")
            .chain_update(isk)
            .finalize()
            .into();
        let wide: [u8; 64] = Sha512::new()
            .chain_update(b"holdfast resume")
            .chain_update(isk)
            .finalize()
            .into();
        let mut resume = [0u8; RESUME_BYTES];
        resume.copy_from_slice(&wide[..RESUME_BYTES]);
        Keys {
            mac: Zeroizing::new(mac),
            resume: Zeroizing::new(resume),
        }
    }

    fn tag(&self, msg: &[u8]) -> [u8; TAG_BYTES] {
        let mut m = <Hmac<Sha512> as Mac>::new_from_slice(&self.mac[..]).expect("HMAC takes any key length");
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    fn established(self) -> Established {
        Established {
            resume: Secret::Resume(self.resume),
        }
    }
}

/// Parses `prefix_free_cat(Y, AD)` and `AD = prefix_free_cat(role, host fp, viewer fp)`;
/// checks the role and that the sender saw the same certificates we did.
fn open_msg<'a>(msg: &'a [u8], role: &[u8], binding: &Binding) -> Result<&'a [u8], AuthError> {
    if msg.len() > MAX_MSG_BYTES {
        return Err(AuthError::Malformed("CPace message too long"));
    }
    let [y, ad] = split_prefix_free::<2>(msg).ok_or(AuthError::Malformed("CPace message encoding"))?;
    let [their_role, host_fp, viewer_fp] =
        split_prefix_free::<3>(ad).ok_or(AuthError::Malformed("CPace associated data"))?;
    if their_role != role {
        return Err(AuthError::Malformed("CPace message from the wrong role"));
    }
    if y.len() != POINT_BYTES {
        return Err(AuthError::Malformed("CPace point length"));
    }
    if host_fp != binding.host.as_str().as_bytes() || viewer_fp != binding.viewer.as_str().as_bytes() {
        return Err(AuthError::Intercepted);
    }
    Ok(y)
}

/// The host's side of one run.
pub struct HostHandshake {
    binding: Binding,
    y: Zeroizing<Scalar>,
    sid: [u8; SID_BYTES],
    msg_a: Vec<u8>,
    secret: Secret,
}

impl HostHandshake {
    /// Starts a run with `secret`: the [`Hello`] to send.
    pub fn start(secret: Secret, binding: Binding, rng: &mut impl rand::Rng) -> (Self, Hello) {
        let mut sid = [0u8; SID_BYTES];
        rng.fill(&mut sid);
        let y = Zeroizing::new(cpace::sample_scalar(rng));
        Self::start_with(secret, binding, sid, y)
    }

    fn start_with(secret: Secret, binding: Binding, sid: [u8; SID_BYTES], y: Zeroizing<Scalar>) -> (Self, Hello) {
        let g = cpace::calculate_generator(secret.prs(), &binding.channel_identifier(), &sid);
        let ya = cpace::scalar_mult(&y, &g);
        let msg_a = cpace::prefix_free_cat(&[&ya, &binding.associated_data(HOST_ROLE)]);
        let hello = Hello {
            kind: secret.kind(),
            sid,
            msg: msg_a.clone(),
        };
        (
            HostHandshake {
                binding,
                y,
                sid,
                msg_a,
                secret,
            },
            hello,
        )
    }

    /// Which secret this run uses.
    pub fn kind(&self) -> SecretKind {
        self.secret.kind()
    }

    /// Checks the viewer's reply: on success, the host's [`Confirm`] to send
    /// and the resume secret for this viewer's later connections.
    pub fn on_reply(self, reply: &Reply) -> Result<(Confirm, Established), AuthError> {
        let yb = open_msg(&reply.msg, VIEWER_ROLE, &self.binding)?;
        let [ya, _] = split_prefix_free::<2>(&self.msg_a).expect("our own message");
        if yb == ya {
            return Err(AuthError::Malformed("the viewer's point is ours (a reflection)"));
        }
        let k = Zeroizing::new(cpace::scalar_mult_vfy(&self.y, yb).ok_or(AuthError::InvalidPoint)?);
        let isk = cpace::isk(&self.sid, &k[..], &self.msg_a, &reply.msg);
        let keys = Keys::derive(&isk[..]);
        let expected = keys.tag(&reply.msg);
        if !bool::from(expected.ct_eq(&reply.tag)) {
            return Err(AuthError::WrongSecret(self.secret.kind()));
        }
        let confirm = Confirm {
            tag: keys.tag(&self.msg_a),
        };
        Ok((confirm, keys.established()))
    }
}

/// The viewer's side of one run, after it answered the host's [`Hello`].
pub struct ViewerHandshake {
    keys: Keys,
    msg_a: Vec<u8>,
}

impl ViewerHandshake {
    /// Answers the host's [`Hello`] with `secret` (which must be of the kind
    /// the host asks for).
    pub fn on_hello(
        secret: &Secret,
        binding: &Binding,
        hello: &Hello,
        rng: &mut impl rand::Rng,
    ) -> Result<(Self, Reply), AuthError> {
        let y = Zeroizing::new(cpace::sample_scalar(rng));
        Self::on_hello_with(secret, binding, hello, y)
    }

    fn on_hello_with(
        secret: &Secret,
        binding: &Binding,
        hello: &Hello,
        y: Zeroizing<Scalar>,
    ) -> Result<(Self, Reply), AuthError> {
        if hello.kind != secret.kind() {
            return Err(AuthError::KindMismatch(hello.kind));
        }
        let ya = open_msg(&hello.msg, HOST_ROLE, binding)?;
        let g = cpace::calculate_generator(secret.prs(), &binding.channel_identifier(), &hello.sid);
        let yb = cpace::scalar_mult(&y, &g);
        if yb[..] == *ya {
            return Err(AuthError::Malformed("the host's point is ours (a reflection)"));
        }
        let k = Zeroizing::new(cpace::scalar_mult_vfy(&y, ya).ok_or(AuthError::InvalidPoint)?);
        let msg_b = cpace::prefix_free_cat(&[&yb, &binding.associated_data(VIEWER_ROLE)]);
        let isk = cpace::isk(&hello.sid, &k[..], &hello.msg, &msg_b);
        let keys = Keys::derive(&isk[..]);
        let reply = Reply {
            tag: keys.tag(&msg_b),
            msg: msg_b,
        };
        Ok((
            ViewerHandshake {
                keys,
                msg_a: hello.msg.clone(),
            },
            reply,
        ))
    }

    /// Checks the host's tag: only a host that knows the secret can make it.
    pub fn on_confirm(self, confirm: &Confirm) -> Result<Established, AuthError> {
        let expected = self.keys.tag(&self.msg_a);
        if !bool::from(expected.ct_eq(&confirm.tag)) {
            return Err(AuthError::HostUnproven);
        }
        Ok(self.keys.established())
    }
}

/// Deterministic runs for the vectors the browser's implementation checks.
#[cfg(test)]
pub(crate) fn fixed_run(
    secret: &Secret,
    binding: &Binding,
    sid: [u8; SID_BYTES],
    ya: [u8; 32],
    yb: [u8; 32],
) -> (Hello, Reply, Confirm, [u8; RESUME_BYTES]) {
    let sa = Zeroizing::new(Scalar::from_bytes_mod_order(ya));
    let sb = Zeroizing::new(Scalar::from_bytes_mod_order(yb));
    let (host, hello) = HostHandshake::start_with(secret.clone(), binding.clone(), sid, sa);
    let (viewer, reply) = ViewerHandshake::on_hello_with(secret, binding, &hello, sb).unwrap();
    let (confirm, _) = host.on_reply(&reply).unwrap();
    let done = viewer.on_confirm(&confirm).unwrap();
    let Secret::Resume(r) = done.resume else { unreachable!() };
    (hello, reply, confirm, *r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::Fingerprint;

    fn fp(byte: u8) -> Fingerprint {
        let hex: Vec<String> = (0..32).map(|i| format!("{:02x}", byte.wrapping_add(i))).collect();
        Fingerprint::parse(&format!("sha-256 {}", hex.join(":"))).unwrap()
    }

    fn binding(host: u8, viewer: u8) -> Binding {
        Binding {
            room: "123456789".into(),
            host: fp(host),
            viewer: fp(viewer),
        }
    }

    fn run(
        host_secret: Secret,
        host_view: Binding,
        viewer_secret: Secret,
        viewer_view: Binding,
    ) -> Result<(), AuthError> {
        let rng = &mut rand::rng();
        let (host, hello) = HostHandshake::start(host_secret, host_view, rng);
        let (viewer, reply) = ViewerHandshake::on_hello(&viewer_secret, &viewer_view, &hello, rng)?;
        let (confirm, host_done) = host.on_reply(&reply)?;
        let viewer_done = viewer.on_confirm(&confirm)?;
        match (host_done.resume, viewer_done.resume) {
            (Secret::Resume(a), Secret::Resume(b)) => assert_eq!(a[..], b[..], "both sides derive one resume secret"),
            _ => panic!("a resume secret is a Secret::Resume"),
        }
        Ok(())
    }

    #[test]
    fn the_right_code_completes_and_both_sides_agree() {
        run(
            Secret::code("ABCDEFGHJK"),
            binding(1, 2),
            Secret::code("ABCDEFGHJK"),
            binding(1, 2),
        )
        .unwrap();
    }

    #[test]
    fn a_wrong_code_fails_at_the_host_before_it_reveals_anything() {
        let e = run(
            Secret::code("ABCDEFGHJK"),
            binding(1, 2),
            Secret::code("ABCDEFGHJM"),
            binding(1, 2),
        )
        .unwrap_err();
        assert_eq!(e, AuthError::WrongSecret(SecretKind::Code));
    }

    #[test]
    fn a_password_key_completes_and_a_wrong_password_fails_as_a_password() {
        let params = crate::password::PasswordParams {
            salt: [3; 16],
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
        };
        let key = |p: &str| Secret::password(crate::password::derive_key(p, &params).unwrap());
        run(
            key("a long password"),
            binding(1, 2),
            key("a long password"),
            binding(1, 2),
        )
        .unwrap();
        let e = run(
            key("a long password"),
            binding(1, 2),
            key("a long passw0rd"),
            binding(1, 2),
        )
        .unwrap_err();
        assert_eq!(e, AuthError::WrongSecret(SecretKind::Password));
    }

    #[test]
    fn swapped_fingerprints_are_named_as_an_interception() {
        // A server in the middle presents its own certificates to each side.
        let e = run(
            Secret::code("ABCDEFGHJK"),
            binding(1, 9),
            Secret::code("ABCDEFGHJK"),
            binding(8, 2),
        )
        .unwrap_err();
        assert_eq!(e, AuthError::Intercepted);
    }

    #[test]
    fn rewriting_the_fingerprints_in_the_messages_does_not_help_the_middle() {
        // The middle rewrites the host's associated data to what the viewer
        // expects: the viewer goes on, but the generators differ, so the
        // host refuses the viewer's tag.
        let rng = &mut rand::rng();
        let (host_view, viewer_view) = (binding(1, 9), binding(8, 2));
        let (host, mut hello) = HostHandshake::start(Secret::code("ABCDEFGHJK"), host_view.clone(), rng);
        let [ya, _] = split_prefix_free::<2>(&hello.msg).unwrap();
        hello.msg = cpace::prefix_free_cat(&[ya, &viewer_view.associated_data(HOST_ROLE)]);
        let (_, mut reply) = ViewerHandshake::on_hello(&Secret::code("ABCDEFGHJK"), &viewer_view, &hello, rng).unwrap();
        let [yb, _] = split_prefix_free::<2>(&reply.msg).unwrap();
        reply.msg = cpace::prefix_free_cat(&[yb, &host_view.associated_data(VIEWER_ROLE)]);
        assert_eq!(
            host.on_reply(&reply).unwrap_err(),
            AuthError::WrongSecret(SecretKind::Code)
        );
    }

    #[test]
    fn a_host_that_does_not_know_the_code_is_caught_by_the_viewer() {
        let rng = &mut rand::rng();
        let b = binding(1, 2);
        let (_, hello) = HostHandshake::start(Secret::code("ZZZZZZZZZZ"), b.clone(), rng);
        let (viewer, _) = ViewerHandshake::on_hello(&Secret::code("ABCDEFGHJK"), &b, &hello, rng).unwrap();
        // Whatever it sends as its tag, it cannot be the right one.
        let e = viewer.on_confirm(&Confirm { tag: [7; TAG_BYTES] }).unwrap_err();
        assert_eq!(e, AuthError::HostUnproven);
    }

    #[test]
    fn the_resume_secret_replaces_the_code_on_later_connections() {
        let rng = &mut rand::rng();
        let b = binding(1, 2);
        let (host, hello) = HostHandshake::start(Secret::code("ABCDEFGHJK"), b.clone(), rng);
        let (viewer, reply) = ViewerHandshake::on_hello(&Secret::code("ABCDEFGHJK"), &b, &hello, rng).unwrap();
        let (confirm, host_done) = host.on_reply(&reply).unwrap();
        let viewer_done = viewer.on_confirm(&confirm).unwrap();
        // A rebuilt connection: new certificates, the resume secret.
        let b2 = binding(3, 4);
        run(
            host_done.resume.clone(),
            b2.clone(),
            viewer_done.resume.clone(),
            b2.clone(),
        )
        .unwrap();
        // The code does not stand in for it, nor it for the code.
        let e = run(host_done.resume, b2.clone(), Secret::code("ABCDEFGHJK"), b2).unwrap_err();
        assert_eq!(e, AuthError::KindMismatch(SecretKind::Resume));
    }

    #[test]
    fn the_identity_and_undecodable_points_abort() {
        let rng = &mut rand::rng();
        let b = binding(1, 2);
        let (host, hello) = HostHandshake::start(Secret::code("ABCDEFGHJK"), b.clone(), rng);
        let (_, reply) = ViewerHandshake::on_hello(&Secret::code("ABCDEFGHJK"), &b, &hello, rng).unwrap();
        let ad = b.associated_data(VIEWER_ROLE);
        let mut bad_point = [0u8; 32];
        bad_point[0] = 1; // not a canonical ristretto255 encoding
        for y in [[0u8; 32], bad_point] {
            let forged = Reply {
                msg: cpace::prefix_free_cat(&[&y, &ad]),
                tag: reply.tag,
            };
            let (h, _) = HostHandshake::start(Secret::code("ABCDEFGHJK"), b.clone(), rng);
            assert_eq!(h.on_reply(&forged).unwrap_err(), AuthError::InvalidPoint);
        }
        // The host's own point sent back is refused before any arithmetic.
        let reflected = Reply {
            msg: cpace::prefix_free_cat(&[split_prefix_free::<2>(&hello.msg).unwrap()[0], &ad]),
            tag: reply.tag,
        };
        assert!(matches!(
            host.on_reply(&reflected).unwrap_err(),
            AuthError::Malformed(_)
        ));
    }

    #[test]
    fn a_reflected_hello_is_refused_by_its_role() {
        let rng = &mut rand::rng();
        let b = binding(1, 2);
        let (host, hello) = HostHandshake::start(Secret::code("ABCDEFGHJK"), b, rng);
        let e = host
            .on_reply(&Reply {
                msg: hello.msg,
                tag: [0; TAG_BYTES],
            })
            .unwrap_err();
        assert!(matches!(e, AuthError::Malformed(_)), "{e:?}");
    }

    #[test]
    fn bad_encodings_abort() {
        let b = binding(1, 2);
        for msg in [
            vec![0xff, 0xff, 0xff],
            vec![0xff, 0xff, 0x03],
            vec![0x00, 0xff, 0xff, 0x03],
            vec![0x00, 0xff, 0xff, 0xff],
            vec![0u8; MAX_MSG_BYTES + 1],
            vec![],
        ] {
            assert!(
                matches!(open_msg(&msg, VIEWER_ROLE, &b), Err(AuthError::Malformed(_))),
                "{msg:?}"
            );
        }
    }
}
