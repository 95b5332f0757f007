//! The end-to-end check of the code on the `commands` channel, as host and
//! viewer run it: `holdfast-auth`'s messages to and from the wire
//! (`auth-hello`, `auth-reply`, `auth-confirm`, `auth-failed`, base64 fields),
//! and the binding as this side's peer connection sees it (its own DTLS
//! fingerprint from the local description, the peer's from the remote one).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use holdfast_auth::{AuthError, Binding, Confirm, Fingerprint, Hello, Reply, SecretKind, SID_BYTES, TAG_BYTES};
use holdfast_proto::commands::{AuthFailure, AuthKind, Control};
use holdfast_proto::RoomId;
use webrtc::peer_connection::PeerConnection;

/// Consecutive failed checks after which a host makes up a new code.
pub const MAX_FAILED_CHECKS: u32 = 5;

/// Which side of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Host,
    Viewer,
}

/// The binding of the connection `pc` runs: the room, and both fingerprints
/// as this side saw them. Fails if either description is missing or lacks a
/// single sha-256 fingerprint.
pub async fn binding(pc: &dyn PeerConnection, room: &RoomId, side: Side) -> Result<Binding, AuthError> {
    let missing = AuthError::Malformed("no session description yet");
    let local = pc.local_description().await.ok_or(missing.clone())?;
    let remote = pc.remote_description().await.ok_or(missing)?;
    let ours = Fingerprint::from_sdp(&local.sdp)?;
    let theirs = Fingerprint::from_sdp(&remote.sdp)?;
    let (host, viewer) = match side {
        Side::Host => (ours, theirs),
        Side::Viewer => (theirs, ours),
    };
    Ok(Binding {
        room: room.as_str().to_owned(),
        host,
        viewer,
    })
}

/// The wire name of a failure (what the other side and the server are told).
pub fn failure(e: &AuthError) -> AuthFailure {
    match e {
        AuthError::Malformed(_) | AuthError::InvalidPoint => AuthFailure::Malformed,
        AuthError::Intercepted => AuthFailure::Intercepted,
        AuthError::WrongSecret(holdfast_auth::SecretKind::Password) => AuthFailure::WrongPassword,
        AuthError::WrongSecret(_) => AuthFailure::WrongCode,
        AuthError::HostUnproven => AuthFailure::HostUnproven,
        AuthError::KindMismatch(_) => AuthFailure::NoSecret,
    }
}

fn decode(s: &str, what: &'static str) -> Result<Vec<u8>, AuthError> {
    B64.decode(s).map_err(|_| AuthError::Malformed(what))
}

fn fixed<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], AuthError> {
    decode(s, what)?.try_into().map_err(|_| AuthError::Malformed(what))
}

pub fn hello_message(h: &Hello) -> Control {
    Control::AuthHello {
        kind: match h.kind {
            SecretKind::Code => AuthKind::Code,
            SecretKind::Resume => AuthKind::Resume,
            SecretKind::Password => AuthKind::Password,
        },
        sid: B64.encode(h.sid),
        msg: B64.encode(&h.msg),
    }
}

pub fn parse_hello(kind: AuthKind, sid: &str, msg: &str) -> Result<Hello, AuthError> {
    Ok(Hello {
        kind: match kind {
            AuthKind::Code => SecretKind::Code,
            AuthKind::Resume => SecretKind::Resume,
            AuthKind::Password => SecretKind::Password,
        },
        sid: fixed::<SID_BYTES>(sid, "session ID")?,
        msg: decode(msg, "hello message")?,
    })
}

pub fn reply_message(r: &Reply) -> Control {
    Control::AuthReply {
        msg: B64.encode(&r.msg),
        tag: B64.encode(r.tag),
    }
}

pub fn parse_reply(msg: &str, tag: &str) -> Result<Reply, AuthError> {
    Ok(Reply {
        msg: decode(msg, "reply message")?,
        tag: fixed::<TAG_BYTES>(tag, "reply tag")?,
    })
}

pub fn confirm_message(c: &Confirm) -> Control {
    Control::AuthConfirm { tag: B64.encode(c.tag) }
}

pub fn parse_confirm(tag: &str) -> Result<Confirm, AuthError> {
    Ok(Confirm {
        tag: fixed::<TAG_BYTES>(tag, "confirm tag")?,
    })
}

/// A resume secret as the viewer keeps it outside the process (base64).
pub fn encode_resume(secret: &holdfast_auth::Secret) -> Option<String> {
    secret.resume_bytes().map(|b| B64.encode(b))
}

pub fn decode_resume(s: &str) -> Result<holdfast_auth::Secret, AuthError> {
    Ok(holdfast_auth::Secret::resume(fixed(s.trim(), "resume secret")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_auth::{HostHandshake, Secret, ViewerHandshake};
    use holdfast_proto::commands::Command;

    fn fp(b: u8) -> Fingerprint {
        let hex: Vec<String> = (0..32).map(|i| format!("{:02X}", i as u8 ^ b)).collect();
        Fingerprint::parse(&format!("sha-256 {}", hex.join(":"))).unwrap()
    }

    /// Every message survives the wire (encode, `Command::parse`, decode) and
    /// the run completes; a flipped tag fails as a wrong code.
    #[test]
    fn a_run_crosses_the_wire_intact() {
        let binding = Binding {
            room: "123456789".into(),
            host: fp(1),
            viewer: fp(2),
        };
        let code = Secret::code("ABCDEFGHJK");
        let mut rng = rand::rng();
        let wire = |c: Control| match Command::parse(&Command::Control(c).encode()).unwrap() {
            Command::Control(c) => c,
            other => panic!("{other:?}"),
        };
        let (host, hello) = HostHandshake::start(code.clone(), binding.clone(), &mut rng);
        let Control::AuthHello { kind, sid, msg } = wire(hello_message(&hello)) else {
            panic!()
        };
        let hello = parse_hello(kind, &sid, &msg).unwrap();
        let (viewer, reply) = ViewerHandshake::on_hello(&code, &binding, &hello, &mut rng).unwrap();
        let Control::AuthReply { msg, tag } = wire(reply_message(&reply)) else {
            panic!()
        };
        let mut bad = parse_reply(&msg, &tag).unwrap();
        bad.tag[0] ^= 1;
        let (host2, _) = HostHandshake::start(code.clone(), binding.clone(), &mut rng);
        assert_eq!(
            host2.on_reply(&bad).err().map(|e| failure(&e)),
            Some(AuthFailure::WrongCode)
        );
        let (confirm, est_host) = host.on_reply(&parse_reply(&msg, &tag).unwrap()).unwrap();
        let Control::AuthConfirm { tag } = wire(confirm_message(&confirm)) else {
            panic!()
        };
        let est_viewer = viewer.on_confirm(&parse_confirm(&tag).unwrap()).unwrap();
        let a = encode_resume(&est_host.resume).unwrap();
        assert_eq!(Some(a.clone()), encode_resume(&est_viewer.resume));
        assert_eq!(encode_resume(&decode_resume(&a).unwrap()), Some(a));
        assert!(parse_reply(&msg, "AAAA").is_err(), "a short tag is refused");
        assert!(decode_resume("not base64!").is_err());
    }
}
