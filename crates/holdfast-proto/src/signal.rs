//! Signalling messages: JSON objects on the `/ws` WebSocket, tagged by `type`.
//!
//! The host makes up its one-time code and `register`s a room with only the
//! code's first characters (its `gate`), receiving the room's ID; a viewer
//! `join`s with the ID and the gate (or, later, with the session token it was
//! given). A right gate makes the viewer *pending*: the host gets a
//! `join-request`, connects to the viewer through the server (offer, answer
//! and candidates are relayed to pending viewers too) and checks the whole
//! code itself over that connection (`holdfast-auth`). Only then does it ask
//! its user and answer with `consent` (allow control, view only, or deny), or
//! report `auth-failed`; only after consent is the viewer `joined` and the host
//! told `peer-joined`. The server relays `offer`, `answer` and `candidate`
//! between members of one room only: a viewer's messages go to its host, a
//! host addresses a viewer with `to`. Field names follow the browser's
//! `RTCIceCandidateInit` so the viewer can pass candidates through unchanged.
//!
//! [`ClientMessage::parse`] is the only way in: it checks the size before
//! parsing and tells an unknown `type` apart from a malformed message.

use serde::{Deserialize, Serialize};

use crate::commands::AuthFailure;
use crate::room::{CodeGate, RoomId, SessionToken};
pub use holdfast_auth::password::{PasswordGate, PasswordParams};
pub use holdfast_session::Metrics;

/// Largest signalling message accepted, in bytes (an SDP is typically 1-4 KiB).
pub const MAX_SIGNAL_MESSAGE_BYTES: usize = 64 * 1024;
/// How long a host has to answer a `join-request`; silence means deny.
pub const CONSENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest peer ID accepted in a `to` field.
const MAX_PEER_ID_LEN: usize = 64;
/// Largest session description relayed (ours are 1-4 KiB; a browser's with
/// many candidates stays well under this).
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Largest ICE candidate line relayed (RFC 8839 lines are ~100-200 bytes).
pub const MAX_CANDIDATE_BYTES: usize = 512;
/// Longest `sdpMid` / `usernameFragment` relayed.
const MAX_CANDIDATE_FIELD_BYTES: usize = 256;

/// Server-assigned identity of one WebSocket participant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl PeerId {
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        PeerId(format!("p{:016x}", rng.random::<u64>()))
    }
    fn is_valid(&self) -> bool {
        !self.0.is_empty()
            && self.0.len() <= MAX_PEER_ID_LEN
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ICE candidate as the browser's `RTCIceCandidateInit` serialises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex", skip_serializing_if = "Option::is_none")]
    pub sdp_mline_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A STUN or TURN server as the browser's `RTCIceServer` takes it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl std::fmt::Debug for IceServer {
    // TURN credentials stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Numbers the peer connections of one session: a host that gives up on
/// ICE restarts builds a new connection with the next generation, and a
/// viewer drops anything about an older one. 0 is the first.
pub type Generation = u32;

/// Numbers the offers of one peer connection: 0 its first, +1 for each ICE
/// restart. An answer names the offer it answers, so the offerer applies
/// only the answer to its current offer: offers queued while the peer was
/// away are all delivered and all answered when it comes back, and an
/// answer to an older one would set the wrong ICE credentials.
pub type OfferRound = u32;

fn is_zero(g: &u32) -> bool {
    *g == 0
}

/// What a host with a permanent password publishes with its room.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unattended {
    pub params: PasswordParams,
    pub gate: PasswordGate,
}

/// Messages a client sends to the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMessage {
    /// A host asks for a new room, or with its host `token` resumes the one
    /// it had (same ID), also after a server restart.
    Register {
        /// The first characters of the code the host made up (the server
        /// never sees the rest).
        gate: CodeGate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<SessionToken>,
        /// The last room sequence number this client received (for replay).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<u64>,
        /// A host with a permanent password (unattended access): what viewers
        /// need to derive its key, and the gate that key gives.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unattended: Option<Unattended>,
    },
    /// A viewer asks to join a room, with the code's gate, the password's
    /// gate (unattended access) or an earlier session token.
    Join {
        id: RoomId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gate: Option<CodeGate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_gate: Option<PasswordGate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<SessionToken>,
        /// With a token: the last room sequence number received (for replay).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<u64>,
    },
    /// A viewer asks whether a room takes a password, and its parameters
    /// (answered with `room-info`; the same answer for a room without one
    /// as for no room, so it says nothing about which IDs exist).
    Lookup { id: RoomId },
    /// A host's answer to a `join-request` (after the viewer passed its check).
    Consent { peer: PeerId, decision: Decision },
    /// A host's report that a pending viewer failed its end-to-end check:
    /// the server counts a failed attempt and turns the viewer away.
    AuthFailed { peer: PeerId, reason: AuthFailure },
    /// A host's new code (after repeated failed checks): the server checks
    /// joins against this gate from now on.
    Rekey { gate: CodeGate },
    /// Session description offer; `to` is required from a host.
    Offer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PeerId>,
        sdp: String,
        /// Which peer connection of the session this is about (see [`Generation`]).
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: Generation,
        /// Which offer of that connection (see [`OfferRound`]).
        #[serde(default, skip_serializing_if = "is_zero")]
        round: OfferRound,
    },
    /// Session description answer; `to` is required from a host.
    Answer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PeerId>,
        sdp: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: Generation,
        /// The round of the offer this answers.
        #[serde(default, skip_serializing_if = "is_zero")]
        round: OfferRound,
    },
    /// A trickled ICE candidate; `to` is required from a host.
    Candidate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PeerId>,
        candidate: IceCandidate,
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: Generation,
    },
    /// Leave the room (a host leaving ends it).
    Leave,
    /// A host ends one viewer's session: it is removed and its token revoked.
    Kick { peer: PeerId },
    /// Application-level liveness probe; answered with `pong`.
    Ping,
    /// The sender's measured connection quality, for the server's per-user
    /// state. A host names the viewer (`peer`) whose link it measured; a
    /// viewer reports its own link to the host. Not answered, not numbered
    /// (a stale measurement is not worth replaying).
    Quality {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<PeerId>,
        metrics: Metrics,
    },
}

/// The `type` tags [`ClientMessage`] knows, to tell "unknown" from "malformed".
const CLIENT_TYPES: &[&str] = &[
    "register",
    "join",
    "lookup",
    "consent",
    "auth-failed",
    "rekey",
    "offer",
    "answer",
    "candidate",
    "leave",
    "kick",
    "ping",
    "quality",
];

/// A client message with the sender's optional sequence number `seq`
/// (a JSON field beside `type`). Numbered messages the server has already
/// taken from this peer are dropped, so a client may resend after a drop
/// without anything arriving twice.
#[derive(Debug, Clone)]
pub struct ClientEnvelope {
    pub seq: Option<u64>,
    pub msg: ClientMessage,
}

impl ClientEnvelope {
    pub fn new(seq: Option<u64>, msg: ClientMessage) -> Self {
        ClientEnvelope { seq, msg }
    }

    /// Parses one text frame, enforcing [`MAX_SIGNAL_MESSAGE_BYTES`].
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        let mut value = json_within_limit(text)?;
        let seq = match value.as_object_mut().and_then(|o| o.remove("seq")) {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| SignalError::new(ErrorKind::BadMessage, "`seq` is a positive integer"))?,
            ),
        };
        Ok(ClientEnvelope {
            seq,
            msg: ClientMessage::from_value(value)?,
        })
    }

    pub fn to_json(&self) -> String {
        with_seq(serde_json::to_value(&self.msg), self.seq)
    }
}

/// A server message with the room sequence number `seq` it was given, if it
/// is part of the room's conversation (relayed messages and room events);
/// direct answers (errors, `pong`, `joined`) carry none.
#[derive(Debug, Clone)]
pub struct ServerEnvelope {
    pub seq: Option<u64>,
    pub msg: ServerMessage,
}

impl ServerEnvelope {
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        if text.len() > MAX_SIGNAL_MESSAGE_BYTES {
            return Err(SignalError::new(ErrorKind::TooLarge, "server message too large"));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| SignalError::new(ErrorKind::BadMessage, format!("invalid server message: {e}")))?;
        let seq = value.get("seq").and_then(|v| v.as_u64());
        let msg = serde_json::from_value(value)
            .map_err(|e| SignalError::new(ErrorKind::BadMessage, format!("invalid server message: {e}")))?;
        Ok(ServerEnvelope { seq, msg })
    }

    pub fn to_json(&self) -> String {
        with_seq(serde_json::to_value(&self.msg), self.seq)
    }
}

/// Parses one client frame as JSON, enforcing [`MAX_SIGNAL_MESSAGE_BYTES`] first.
fn json_within_limit(text: &str) -> Result<serde_json::Value, SignalError> {
    if text.len() > MAX_SIGNAL_MESSAGE_BYTES {
        return Err(SignalError::new(
            ErrorKind::TooLarge,
            format!(
                "message of {} bytes exceeds the {MAX_SIGNAL_MESSAGE_BYTES}-byte limit",
                text.len()
            ),
        ));
    }
    serde_json::from_str(text).map_err(|e| SignalError::new(ErrorKind::BadMessage, format!("not valid JSON: {e}")))
}

fn with_seq(value: serde_json::Result<serde_json::Value>, seq: Option<u64>) -> String {
    let mut value = value.expect("signalling messages always serialise");
    if let (Some(seq), Some(o)) = (seq, value.as_object_mut()) {
        o.insert("seq".into(), seq.into());
    }
    value.to_string()
}

/// What a host allows a viewer who asks to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// See the screen and control it.
    Control,
    /// See the screen only.
    View,
    Deny,
}

impl ClientMessage {
    /// Parses one text frame, enforcing [`MAX_SIGNAL_MESSAGE_BYTES`].
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        Self::from_value(json_within_limit(text)?)
    }

    fn from_value(value: serde_json::Value) -> Result<Self, SignalError> {
        let ty = value
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| SignalError::new(ErrorKind::BadMessage, "message has no string `type`"))?
            .to_owned();
        if !CLIENT_TYPES.contains(&ty.as_str()) {
            let shown: String = ty.chars().take(40).collect();
            return Err(SignalError::new(
                ErrorKind::UnknownType,
                format!("unknown message type `{shown}`"),
            ));
        }
        let msg: ClientMessage = serde_json::from_value(value)
            .map_err(|e| SignalError::new(ErrorKind::BadMessage, format!("invalid `{ty}` message: {e}")))?;
        msg.validate()?;
        Ok(msg)
    }

    fn validate(&self) -> Result<(), SignalError> {
        let bad = |m: &str| Err(SignalError::new(ErrorKind::BadMessage, m));
        match self {
            ClientMessage::Offer { sdp, .. } | ClientMessage::Answer { sdp, .. } if sdp.len() > MAX_SDP_BYTES => {
                return bad("session description too large (16 KiB at most)");
            }
            ClientMessage::Candidate { candidate, .. }
                if candidate.candidate.len() > MAX_CANDIDATE_BYTES
                    || candidate
                        .sdp_mid
                        .as_ref()
                        .is_some_and(|m| m.len() > MAX_CANDIDATE_FIELD_BYTES)
                    || candidate
                        .username_fragment
                        .as_ref()
                        .is_some_and(|u| u.len() > MAX_CANDIDATE_FIELD_BYTES) =>
            {
                return bad("ICE candidate too large");
            }
            _ => {}
        }
        let to = match self {
            ClientMessage::Offer { to, .. }
            | ClientMessage::Answer { to, .. }
            | ClientMessage::Candidate { to, .. } => to.as_ref(),
            ClientMessage::Consent { peer, .. }
            | ClientMessage::AuthFailed { peer, .. }
            | ClientMessage::Kick { peer } => Some(peer),
            ClientMessage::Quality { peer, metrics } => {
                if !metrics.is_valid() {
                    return Err(SignalError::new(
                        ErrorKind::BadMessage,
                        "metrics must be finite and non-negative, loss at most 100",
                    ));
                }
                peer.as_ref()
            }
            ClientMessage::Join {
                gate,
                password_gate,
                token,
                ..
            } => {
                if [gate.is_some(), password_gate.is_some(), token.is_some()]
                    .into_iter()
                    .filter(|&given| given)
                    .count()
                    != 1
                {
                    return Err(SignalError::new(
                        ErrorKind::BadMessage,
                        "`join` takes exactly one of `gate`, `password_gate` and `token`",
                    ));
                }
                None
            }
            _ => None,
        };
        if let Some(to) = to {
            if !to.is_valid() {
                return Err(SignalError::new(ErrorKind::BadMessage, "not a valid peer ID"));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ClientMessage always serialises")
    }
}

/// Messages the server sends to a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// Answer to `register`: the new room's ID and the host's token.
    Registered {
        id: RoomId,
        peer_id: PeerId,
        ice_servers: Vec<IceServer>,
        /// Present this with `register` to resume the room after a drop.
        token: SessionToken,
        /// True when an existing room was resumed with the host token.
        #[serde(default)]
        resumed: bool,
        /// How long this server keeps a dropped member's place: the client's
        /// own grace window (one setting, the server's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_ms: Option<u64>,
        /// How long this server keeps a room's messages for members that come back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replay: Option<ReplayPolicy>,
    },
    /// To a viewer: the gate was right; the host will connect, check the
    /// code and ask its user within `timeout_ms`. `ice_servers` are those
    /// without credentials (relays come with `joined`).
    AwaitingConsent {
        timeout_ms: u64,
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    /// To a host or an admitted viewer, before its TURN credentials expire:
    /// the same list with fresh ones. Apply them to the connections (a relay
    /// in use is re-signed at the next ICE restart). Never to a pending viewer.
    IceServers {
        ice_servers: Vec<IceServer>,
    },
    /// To a host: a viewer with the right gate asks to join: connect to it,
    /// check the code, then answer with `consent` or `auth-failed`.
    JoinRequest {
        peer_id: PeerId,
        /// The viewer's network address as the server saw it.
        address: String,
        timeout_ms: u64,
        /// The viewer came with the password's gate: check the password,
        /// not the code. (A lying server only picks which secret the host
        /// asks for; the check itself is end to end.)
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        password: bool,
    },
    /// Answer to `lookup`: the room's password parameters, if it takes a password.
    RoomInfo {
        id: RoomId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unattended: Option<PasswordParams>,
    },
    /// Answer to `join`, once the host agreed (or the token was valid).
    Joined {
        id: RoomId,
        peer_id: PeerId,
        host: PeerId,
        ice_servers: Vec<IceServer>,
        /// Present this instead of the code to rejoin.
        token: SessionToken,
        /// Whether the host accepts this viewer's input.
        control: bool,
        /// As in `registered`: the grace window the client keeps to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_ms: Option<u64>,
        /// As in `registered`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replay: Option<ReplayPolicy>,
    },
    /// To a host: a viewer is admitted to its room; offer it a connection.
    PeerJoined {
        peer_id: PeerId,
        control: bool,
        /// A viewer the host may know, back with its token but without any
        /// state (a restarted process, a reloaded page): it needs a new connection.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fresh: bool,
    },
    /// A room member left.
    PeerLeft {
        peer_id: PeerId,
    },
    Offer {
        from: PeerId,
        sdp: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: Generation,
        #[serde(default, skip_serializing_if = "is_zero")]
        round: OfferRound,
    },
    Answer {
        from: PeerId,
        sdp: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: Generation,
        #[serde(default, skip_serializing_if = "is_zero")]
        round: OfferRound,
    },
    Candidate {
        from: PeerId,
        candidate: IceCandidate,
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: Generation,
    },
    /// A member's signalling connection dropped (`connected: false`, kept for
    /// `grace_ms`) or came back.
    PeerState {
        peer_id: PeerId,
        connected: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_ms: Option<u64>,
    },
    /// First answer to a rejoin the server recognises: how long the peer was
    /// gone and how many messages it missed; they follow, in order, once,
    /// after the `registered`/`joined` answer.
    ReconnectionDetected {
        /// Seconds between the drop and this rejoin.
        disconnect_duration: f64,
        missed_message_count: u64,
        /// The last client `seq` the server took from this peer: resend what
        /// came after. Absent when this server cannot know (it was restarted
        /// since): then resend only what was never written to a socket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_received: Option<u64>,
        /// False if some messages after the peer's `last_seq` were already discarded.
        replay_complete: bool,
    },
    /// The room ended (its host left, or did not come back within the grace window).
    RoomClosed {
        reason: String,
    },
    Error {
        code: ErrorKind,
        message: String,
        /// For `locked-out`: when to try again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong,
}

/// How a server keeps a room's messages for members that come back: the
/// last `messages`, for `ttl_ms` after the room's last activity. Clients keep
/// to the same lifetime for what they resend after a reconnection (see
/// [`ReplayPolicy::resends_written`]): the room forgets messages that old in
/// both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayPolicy {
    pub messages: u64,
    pub ttl_ms: u64,
}

impl ReplayPolicy {
    /// Whether a client that was away `away_secs` (the server's
    /// `reconnection-detected.disconnect_duration`) still resends the
    /// messages it wrote before the drop that the server did not take. They
    /// are at least that old: past the room's lifetime they are stale (an
    /// old offer or candidate does harm), as the replay the other way would
    /// be gone. What it queued while away is sent either way.
    pub fn resends_written(policy: Option<ReplayPolicy>, away_secs: f64) -> bool {
        policy.is_none_or(|p| away_secs * 1000.0 < p.ttl_ms as f64)
    }
}

impl ServerMessage {
    /// The replay policy a `registered` or `joined` announces.
    pub fn replay(&self) -> Option<ReplayPolicy> {
        match self {
            ServerMessage::Registered { replay, .. } | ServerMessage::Joined { replay, .. } => *replay,
            _ => None,
        }
    }

    /// The grace window a `registered` or `joined` announces.
    pub fn grace(&self) -> Option<std::time::Duration> {
        match self {
            ServerMessage::Registered { grace_ms, .. } | ServerMessage::Joined { grace_ms, .. } => {
                grace_ms.map(std::time::Duration::from_millis)
            }
            _ => None,
        }
    }

    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Registered { .. } => "registered",
            ServerMessage::AwaitingConsent { .. } => "awaiting-consent",
            ServerMessage::IceServers { .. } => "ice-servers",
            ServerMessage::JoinRequest { .. } => "join-request",
            ServerMessage::RoomInfo { .. } => "room-info",
            ServerMessage::Joined { .. } => "joined",
            ServerMessage::PeerJoined { .. } => "peer-joined",
            ServerMessage::PeerLeft { .. } => "peer-left",
            ServerMessage::Offer { .. } => "offer",
            ServerMessage::Answer { .. } => "answer",
            ServerMessage::Candidate { .. } => "candidate",
            ServerMessage::PeerState { .. } => "peer-state",
            ServerMessage::ReconnectionDetected { .. } => "reconnection-detected",
            ServerMessage::RoomClosed { .. } => "room-closed",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Pong => "pong",
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ServerMessage always serialises")
    }

    /// Parses a server message (clients trust the server, but not blindly).
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        if text.len() > MAX_SIGNAL_MESSAGE_BYTES {
            return Err(SignalError::new(ErrorKind::TooLarge, "server message too large"));
        }
        serde_json::from_str(text)
            .map_err(|e| SignalError::new(ErrorKind::BadMessage, format!("invalid server message: {e}")))
    }
}

impl From<SignalError> for ServerMessage {
    fn from(e: SignalError) -> Self {
        ServerMessage::Error {
            code: e.kind,
            message: e.message,
            retry_after_ms: e.retry_after_ms,
        }
    }
}

/// Why the server refused a message. Stable, machine-readable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    BadMessage,
    TooLarge,
    UnknownType,
    /// Wrong code or token, or unknown room: deliberately the same answer.
    InvalidCredentials,
    /// Too many wrong codes from this address or for this room; see `retry_after_ms`.
    LockedOut,
    /// The host refused the join.
    ConsentDenied,
    /// The host's end-to-end check failed (a wrong code, or someone in the middle).
    AuthFailed,
    /// The host did not answer in time (which counts as a refusal).
    ConsentTimeout,
    NotInRoom,
    UnknownPeer,
    AlreadyInRoom,
    RateLimited,
    /// The session this token belonged to is over (grace window passed, host ended it).
    SessionEnded,
    /// The token is good but its host has not come back yet (say, after a server
    /// restart): try again after `retry_after_ms`.
    SessionUnavailable,
    /// Another connection resumed this peer's session; this one is closed.
    Superseded,
    Internal,
}

impl ErrorKind {
    /// Refusals that retrying with the same credentials cannot fix.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidCredentials
                | ErrorKind::ConsentDenied
                | ErrorKind::AuthFailed
                | ErrorKind::ConsentTimeout
                | ErrorKind::SessionEnded
                | ErrorKind::Superseded
                | ErrorKind::BadMessage
                | ErrorKind::UnknownType
                | ErrorKind::TooLarge
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct SignalError {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

impl SignalError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SignalError {
            kind,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// The error a server's `error` message carries.
    pub fn received(kind: ErrorKind, message: String, retry_after_ms: Option<u64>) -> Self {
        SignalError {
            kind,
            message,
            retry_after_ms,
        }
    }

    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after_ms = Some(after.as_millis() as u64);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> CodeGate {
        crate::RoomCode::parse("ABCDEFGHJK").unwrap().gate()
    }

    /// Every error kind, and whether retrying with the same credentials is
    /// pointless: written for the browser's `isFatal` (ui/src/signalling.ts)
    /// to check, so the two lists cannot drift. Regenerate with
    /// `HOLDFAST_WRITE_VECTORS=1 cargo test -p holdfast-proto`.
    #[test]
    fn error_kind_vectors_match_the_committed_file() {
        use ErrorKind::*;
        let all = [
            BadMessage,
            TooLarge,
            UnknownType,
            InvalidCredentials,
            LockedOut,
            ConsentDenied,
            AuthFailed,
            ConsentTimeout,
            NotInRoom,
            UnknownPeer,
            AlreadyInRoom,
            RateLimited,
            SessionEnded,
            SessionUnavailable,
            Superseded,
            Internal,
        ];
        // Fails to compile when a kind is added and not listed above.
        let _listed = |k: ErrorKind| match k {
            BadMessage | TooLarge | UnknownType | InvalidCredentials | LockedOut | ConsentDenied | AuthFailed
            | ConsentTimeout | NotInRoom | UnknownPeer | AlreadyInRoom | RateLimited | SessionEnded
            | SessionUnavailable | Superseded | Internal => (),
        };
        let kinds: Vec<serde_json::Value> = all
            .iter()
            .map(|k| serde_json::json!({"code": k, "fatal": k.is_fatal()}))
            .collect();
        crate::check_vectors(
            "error-kinds.json",
            serde_json::json!({
                "about": "Written by holdfast-proto (signal.rs), checked by ui/src/signalling.test.ts.",
                "kinds": kinds,
            }),
        );
    }

    /// The defaults both languages hold (the server announces its own;
    /// these are what a client keeps to before it is told).
    #[test]
    fn session_default_vectors_match_the_committed_file() {
        crate::check_vectors(
            "session.json",
            serde_json::json!({
                "about": "Written by holdfast-proto (signal.rs), checked by ui/src/signalling.test.ts.",
                "grace_ms": holdfast_session::GRACE_PERIOD.as_millis() as u64,
            }),
        );
    }

    /// The rule both clients apply to what they resend after a long
    /// absence (`ReplayPolicy::resends_written`), as cases both languages run.
    #[test]
    fn replay_policy_vectors_match_the_committed_file() {
        let policy = Some(ReplayPolicy {
            messages: 50,
            ttl_ms: 60_000,
        });
        let cases: Vec<serde_json::Value> = [
            (None, 3600.0),
            (policy, 0.5),
            (policy, 59.9),
            (policy, 60.0),
            (policy, 600.0),
        ]
        .into_iter()
        .map(|(p, away)| {
            serde_json::json!({
                "replay": p,
                "away_secs": away,
                "resends_written": ReplayPolicy::resends_written(p, away),
            })
        })
        .collect();
        crate::check_vectors(
            "replay_policy.json",
            serde_json::json!({
                "about": "Written by holdfast-proto (signal.rs), checked by ui/src/signalling.test.ts.",
                "cases": cases,
            }),
        );
    }

    fn unattended() -> Unattended {
        Unattended {
            params: PasswordParams::new(&mut rand::rng()),
            gate: PasswordGate::parse("a3f").unwrap(),
        }
    }

    #[test]
    fn password_joins_and_lookups_are_validated() {
        let kind = |s: &str| ClientMessage::parse(s).map(|_| ()).map_err(|e| e.kind);
        let id = r#""id":"123456789""#;
        assert_eq!(
            kind(&format!(r#"{{"type":"join",{id},"password_gate":"a3f"}}"#)),
            Ok(())
        );
        for bad in [
            format!(r#"{{"type":"join",{id},"password_gate":"a3f","gate":"ABCD"}}"#),
            format!(r#"{{"type":"join",{id},"password_gate":"A3F"}}"#),
            format!(r#"{{"type":"join",{id},"password_gate":"a3f0"}}"#),
            format!(r#"{{"type":"join",{id}}}"#),
            r#"{"type":"lookup","id":"12"}"#.to_owned(),
            r#"{"type":"register","gate":"ABCD","unattended":{"params":{"salt":"00","m":19456,"t":2,"p":1},"gate":"a3f"}}"#
                .to_owned(),
            r#"{"type":"register","gate":"ABCD","unattended":{"params":{"salt":"000102030405060708090a0b0c0d0e0f","m":99999999,"t":2,"p":1},"gate":"a3f"}}"#
                .to_owned(),
        ] {
            assert_eq!(kind(&bad), Err(ErrorKind::BadMessage), "{bad}");
        }
        // A hostile server's parameters reach a viewer as room-info: out of range is refused there too.
        let info = r#"{"type":"room-info","id":"123456789","unattended":{"salt":"000102030405060708090a0b0c0d0e0f","m":4194304,"t":2,"p":1}}"#;
        assert!(serde_json::from_str::<ServerMessage>(info).is_err());
    }

    #[test]
    fn round_trips_every_client_message() {
        let cand = IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        let msgs = vec![
            ClientMessage::Register {
                gate: gate(),
                token: None,
                last_seq: None,
                unattended: None,
            },
            ClientMessage::Register {
                gate: gate(),
                token: Some(SessionToken::random(&mut rand::rng())),
                last_seq: Some(7),
                unattended: Some(unattended()),
            },
            ClientMessage::Join {
                id: RoomId::parse("123456789").unwrap(),
                gate: Some(gate()),
                password_gate: None,
                token: None,
                last_seq: None,
            },
            ClientMessage::Join {
                id: RoomId::parse("123456789").unwrap(),
                gate: None,
                password_gate: Some(PasswordGate::parse("a3f").unwrap()),
                token: None,
                last_seq: None,
            },
            ClientMessage::Join {
                id: RoomId::parse("123456789").unwrap(),
                gate: None,
                password_gate: None,
                token: Some(SessionToken::random(&mut rand::rng())),
                last_seq: Some(3),
            },
            ClientMessage::Lookup {
                id: RoomId::parse("123456789").unwrap(),
            },
            ClientMessage::Consent {
                peer: PeerId("p1".into()),
                decision: Decision::View,
            },
            ClientMessage::AuthFailed {
                peer: PeerId("p1".into()),
                reason: AuthFailure::Intercepted,
            },
            ClientMessage::Rekey { gate: gate() },
            ClientMessage::Offer {
                to: Some(PeerId("p1".into())),
                sdp: "v=0".into(),
                generation: 2,
                round: 3,
            },
            ClientMessage::Answer {
                to: None,
                sdp: "v=0".into(),
                generation: 0,
                round: 0,
            },
            ClientMessage::Candidate {
                to: None,
                candidate: cand,
                generation: 1,
            },
            ClientMessage::Leave,
            ClientMessage::Ping,
        ];
        for m in msgs {
            let json = m.to_json();
            let back = ClientMessage::parse(&json).unwrap();
            assert_eq!(back.to_json(), json);
        }
    }

    #[test]
    fn candidate_uses_browser_field_names() {
        let json = r#"{"type":"candidate","candidate":{"candidate":"candidate:x","sdpMid":"0","sdpMLineIndex":0}}"#;
        match ClientMessage::parse(json).unwrap() {
            ClientMessage::Candidate { candidate, .. } => {
                assert_eq!(candidate.sdp_mid.as_deref(), Some("0"));
                assert_eq!(candidate.sdp_mline_index, Some(0));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_input_with_distinct_kinds() {
        let kind = |s: &str| ClientMessage::parse(s).unwrap_err().kind;
        assert_eq!(kind("{not json"), ErrorKind::BadMessage);
        assert_eq!(kind(r#"{"no":"type"}"#), ErrorKind::BadMessage);
        assert_eq!(kind(r#"{"type":42}"#), ErrorKind::BadMessage);
        assert_eq!(kind(r#"{"type":"launch-missiles"}"#), ErrorKind::UnknownType);
        assert_eq!(
            kind(r#"{"type":"join","id":"12","gate":"ABCD"}"#),
            ErrorKind::BadMessage
        );
        assert_eq!(
            kind(r#"{"type":"offer","sdp":"v=0","to":"../etc"}"#),
            ErrorKind::BadMessage
        );
        assert_eq!(
            kind(r#"{"type":"join","id":"123456789","gate":"ABCD","admin":true}"#),
            ErrorKind::BadMessage
        );
        assert_eq!(kind(r#"{"type":"join","id":"123456789"}"#), ErrorKind::BadMessage);
        assert_eq!(
            kind(&format!(
                r#"{{"type":"join","id":"123456789","gate":"ABCD","token":"{}"}}"#,
                "a".repeat(64)
            )),
            ErrorKind::BadMessage
        );
        assert_eq!(
            kind(r#"{"type":"join","id":"123456789","token":"not-a-token"}"#),
            ErrorKind::BadMessage
        );
        assert_eq!(
            kind(r#"{"type":"consent","peer":"p1","decision":"maybe"}"#),
            ErrorKind::BadMessage
        );
        // The whole code never goes to the server, and a gate is exactly 4 characters.
        assert_eq!(
            kind(r#"{"type":"join","id":"123456789","code":"ABCDEFGHJK"}"#),
            ErrorKind::BadMessage
        );
        assert_eq!(
            kind(r#"{"type":"join","id":"123456789","gate":"ABCDEFGHJK"}"#),
            ErrorKind::BadMessage
        );
        assert_eq!(kind(r#"{"type":"register","gate":"AB"}"#), ErrorKind::BadMessage);
        assert_eq!(kind(r#"{"type":"register"}"#), ErrorKind::BadMessage);
        let big = format!(r#"{{"type":"offer","sdp":"{}"}}"#, "a".repeat(MAX_SIGNAL_MESSAGE_BYTES));
        assert_eq!(kind(&big), ErrorKind::TooLarge);
    }

    #[test]
    fn oversized_descriptions_and_candidates_are_refused() {
        let kind = |s: &str| ClientMessage::parse(s).unwrap_err().kind;
        let sdp = format!(r#"{{"type":"offer","sdp":"{}"}}"#, "a".repeat(MAX_SDP_BYTES + 1));
        assert_eq!(kind(&sdp), ErrorKind::BadMessage);
        let ok = format!(r#"{{"type":"answer","sdp":"{}"}}"#, "a".repeat(MAX_SDP_BYTES));
        assert!(ClientMessage::parse(&ok).is_ok());
        let cand = format!(
            r#"{{"type":"candidate","candidate":{{"candidate":"{}"}}}}"#,
            "c".repeat(MAX_CANDIDATE_BYTES + 1)
        );
        assert_eq!(kind(&cand), ErrorKind::BadMessage);
        let mid = format!(
            r#"{{"type":"candidate","candidate":{{"candidate":"candidate:1","sdpMid":"{}"}}}}"#,
            "m".repeat(300)
        );
        assert_eq!(kind(&mid), ErrorKind::BadMessage);
    }

    #[test]
    fn envelopes_carry_seq_beside_the_type() {
        let env = ClientEnvelope::parse(r#"{"type":"answer","sdp":"v=0","seq":12}"#).unwrap();
        assert_eq!(env.seq, Some(12));
        assert!(matches!(env.msg, ClientMessage::Answer { generation: 0, .. }));
        assert_eq!(ClientEnvelope::parse(&env.to_json()).unwrap().seq, Some(12));
        for bad in [
            r#"{"type":"ping","seq":-1}"#,
            r#"{"type":"ping","seq":0}"#,
            r#"{"type":"ping","seq":"1"}"#,
        ] {
            assert_eq!(
                ClientEnvelope::parse(bad).unwrap_err().kind,
                ErrorKind::BadMessage,
                "{bad}"
            );
        }
        // Without an envelope a `seq` is an unknown field.
        assert!(ClientMessage::parse(r#"{"type":"answer","sdp":"v=0","seq":1}"#).is_err());

        let out = ServerEnvelope {
            seq: Some(9),
            msg: ServerMessage::PeerLeft {
                peer_id: PeerId("p1".into()),
            },
        };
        let json = out.to_json();
        assert!(json.contains(r#""seq":9"#), "{json}");
        let back = ServerEnvelope::parse(&json).unwrap();
        assert_eq!(back.seq, Some(9));
        assert!(matches!(back.msg, ServerMessage::PeerLeft { .. }));
        assert_eq!(ServerEnvelope::parse(r#"{"type":"pong"}"#).unwrap().seq, None);
    }

    #[test]
    fn reconnection_detected_has_the_documented_shape() {
        let m = ServerMessage::ReconnectionDetected {
            disconnect_duration: 12.5,
            missed_message_count: 3,
            last_received: Some(4),
            replay_complete: true,
        };
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["type"], "reconnection-detected");
        assert_eq!(v["disconnect_duration"], 12.5);
        assert_eq!(v["missed_message_count"], 3);
    }

    #[test]
    fn unknown_type_message_is_truncated() {
        let e = ClientMessage::parse(&format!(r#"{{"type":"{}"}}"#, "x".repeat(1000))).unwrap_err();
        assert!(e.message.len() < 100);
    }

    #[test]
    fn ice_server_debug_hides_credential() {
        let s = IceServer {
            urls: vec!["turn:x".into()],
            username: Some("u".into()),
            credential: Some("hunter2".into()),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn kind_is_the_wire_type() {
        let msgs = [
            ServerMessage::Pong,
            ServerMessage::PeerLeft {
                peer_id: PeerId("p1".into()),
            },
            ServerMessage::RoomClosed { reason: "x".into() },
        ];
        for m in msgs {
            let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
            assert_eq!(v["type"], m.kind());
        }
    }
}
