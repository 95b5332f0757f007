//! Rooms, membership, admission and state recovery, free of IO:
//! [`Hub::handle`] takes one client message (and the time) and returns what
//! to deliver, so the rules are tested without sockets.
//!
//! **Admission.** A host `register`s and owns one room, naming its code's
//! gate (the first characters; the server never sees the whole code). A
//! viewer `join`s with the room's ID and the gate; a wrong gate and an unknown
//! room get the same answer, and failures are limited per room and per
//! address ([`AttemptLimiter`]). A right gate makes the viewer *pending*: the
//! host gets a `join-request`, and offers, answers and candidates flow between
//! the two so the host can check the whole code over its own connection. The
//! host answers with `consent` within the consent timeout, or with
//! `auth-failed` (a failed attempt for the viewer's address and the room).
//! The server admits no one on its own: a pending viewer becomes a member
//! only by the host's consent. Admitted viewers (and the host) get a signed
//! session token ([`TokenKey`]).
//!
//! **Recovery (seed 001).** Members are people, not sockets: a member whose
//! connection drops stays in the room, marked disconnected, for the grace
//! window. Every message of the room's conversation (relayed offers, answers
//! and candidates, and room events) gets the room's next sequence number and
//! is kept in a [`ReplayBuffer`], delivered at once to a connected recipient
//! and only kept for a disconnected one. A member that comes back with its
//! token (`join`/`register` with `last_seq`) gets `reconnection-detected`,
//! its answer, then everything addressed to it after `last_seq`, in order,
//! once. Clients number what they send (`seq`); the server drops a number it
//! has already taken, so resending after a drop is safe. A member gone longer
//! than the grace window is removed and its token refused; the room ends with
//! its host. Signed tokens let a restarted server take the room back from its
//! host and re-admit viewers without asking anyone again.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use holdfast_proto::commands::AuthFailure;
use holdfast_proto::signal::{
    ClientEnvelope, ClientMessage, Decision, ErrorKind, IceServer, PasswordGate, PeerId, ReplayPolicy, ServerMessage,
    SignalError, Unattended, CONSENT_TIMEOUT,
};
use holdfast_proto::{CodeGate, RoomId, SessionToken};
use holdfast_session::{Quality, GRACE_PERIOD};
use rand::Rng;
use serde::Serialize;

use crate::access::{address_key, AttemptKey, AttemptLimiter, Failure, LimiterConfig};
use crate::replay::{ReplayBuffer, ReplayConfig};
use crate::token::{Claims, Grant, TokenKey};
use crate::turn::TurnRest;

/// Cap on viewers (admitted and pending) in one room (support sessions have one or two).
pub const MAX_VIEWERS_PER_ROOM: usize = 8;
/// Viewers whose session ended, remembered per room so their tokens stay refused.
const MAX_REVOKED_PER_ROOM: usize = 64;
/// Ended rooms remembered (to tell "ended" from "host not back yet" after a rejoin).
const MAX_ENDED_ROOMS: usize = 4096;
/// How long an ended room is remembered.
const ENDED_MEMORY: Duration = Duration::from_secs(3600);
/// What a viewer is told to wait when its host has not come back yet.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);

/// Caps on what one address, and everyone together, may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub rooms_per_addr: usize,
    pub rooms_total: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            rooms_per_addr: 16,
            rooms_total: 10_000,
        }
    }
}

/// Ties the hub's monotonic clock to Unix time (TURN credential expiry, and
/// room snapshots another process reads).
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    pub at: Instant,
    pub unix_ms: u64,
}

impl WallClock {
    pub fn unix_ms(&self, now: Instant) -> u64 {
        self.unix_ms + now.saturating_duration_since(self.at).as_millis() as u64
    }

    pub fn unix_secs(&self, now: Instant) -> u64 {
        self.unix_ms(now) / 1000
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// STUN and TURN servers for hosts and admitted viewers (credentials included).
    pub ice_servers: Vec<IceServer>,
    /// TURN with short-lived credentials per member (coturn `use-auth-secret`).
    pub turn: Option<TurnRest>,
    pub wall_clock: WallClock,
    pub caps: Caps,
    pub limiter: LimiterConfig,
    pub consent_timeout: Duration,
    /// How long a member whose connection dropped keeps its place (seed: 300 s).
    pub grace: Duration,
    /// Messages kept per room for replay and for how long (seed: 50, 5 min).
    pub replay: ReplayConfig,
    /// Signs session tokens; keep it across restarts so tokens survive them.
    pub token_key: TokenKey,
    /// Room sequence numbers start after this. The server passes the Unix
    /// time in ms at start-up, so a room restored after a restart keeps
    /// numbering above anything its clients saw before (they drop numbers
    /// they have already seen as duplicates). 0 in tests.
    pub seq_base: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            ice_servers: Vec::new(),
            turn: None,
            wall_clock: WallClock {
                at: Instant::now(),
                unix_ms: 0,
            },
            caps: Caps::default(),
            limiter: LimiterConfig::default(),
            consent_timeout: CONSENT_TIMEOUT,
            grace: GRACE_PERIOD,
            replay: ReplayConfig::default(),
            token_key: TokenKey::random(),
            seq_base: 0,
        }
    }
}

/// One WebSocket connection, numbered by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// What the hub asks the server to do.
#[derive(Debug, Clone)]
pub enum Out {
    /// Write `msg` (with the room sequence number `seq`, if any) to `to`.
    Send {
        to: ConnId,
        seq: Option<u64>,
        msg: ServerMessage,
    },
    /// Close this connection (after what was sent to it before).
    Close(ConnId),
}

pub type Outbox = Vec<Out>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Host,
    /// Admitted; `control` says whether the host allowed input.
    Viewer {
        control: bool,
    },
    /// Right gate, waiting for the host's check and consent until
    /// `deadline`; `addr` is where it came from (a failed check counts there).
    Pending {
        deadline: Instant,
        addr: IpAddr,
    },
}

/// One member's connection state (seed 001's per-user state).
#[derive(Debug, Clone)]
struct Member {
    role: Role,
    conn: Option<ConnId>,
    last_seen: Instant,
    disconnected_at: Option<Instant>,
    /// Room sequence number of the last message written to its connection.
    last_delivered: u64,
    /// The last client `seq` taken from it.
    last_received: u64,
    quality: Option<Quality>,
    reconnections: u32,
    /// Not seen by this server yet: a viewer the host of a restored room is
    /// talking to. Holds messages for it until it comes back with its token
    /// (or its grace window runs out, as for any dropped member).
    expected: bool,
    /// When its TURN credentials are next renewed (set on the first poll
    /// after it was admitted; only with TURN configured).
    ice_renew_at: Option<Instant>,
}

impl Member {
    fn new(role: Role, conn: ConnId, now: Instant) -> Self {
        Member {
            role,
            conn: Some(conn),
            last_seen: now,
            disconnected_at: None,
            last_delivered: 0,
            last_received: 0,
            quality: None,
            reconnections: 0,
            expected: false,
            ice_renew_at: None,
        }
    }

    /// A viewer the host of a restored room talks to before it is back:
    /// disconnected since `now`, so the grace window applies to it.
    fn expected(now: Instant) -> Self {
        Member {
            conn: None,
            disconnected_at: Some(now),
            expected: true,
            ..Member::new(Role::Viewer { control: false }, ConnId(0), now)
        }
    }
}

/// What a viewer's `join` showed the server besides the room's ID.
enum JoinGate {
    /// The one-time code's gate.
    Code(CodeGate),
    /// The permanent password's gate (unattended access).
    Password(PasswordGate),
}

#[derive(Debug)]
struct Room {
    gate: CodeGate,
    /// A host with a permanent password: its parameters and gate.
    unattended: Option<Unattended>,
    nonce: u64,
    host: PeerId,
    members: HashMap<PeerId, Member>,
    replay: ReplayBuffer<(PeerId, ServerMessage)>,
    /// Viewers whose session ended (left, or gone past the grace window).
    revoked: VecDeque<PeerId>,
    /// Re-created from its host's token after a server restart.
    restored: bool,
    /// The address (key) that registered it, for the per-address cap.
    owner: IpAddr,
}

impl Room {
    fn viewer_count(&self) -> usize {
        self.members.len() - 1
    }
}

/// A member's state as `GET /rooms/{id}/reconnection-state` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReconnectionState {
    pub room: String,
    pub peer_id: PeerId,
    pub role: &'static str,
    pub connected: bool,
    /// Milliseconds since the server last heard from this member.
    pub last_seen_ms_ago: u64,
    /// While disconnected: milliseconds left in the grace window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_remaining_ms: Option<u64>,
    /// The room's last sequence number, and the last one written to this member.
    pub room_seq: u64,
    pub last_delivered_seq: u64,
    /// The last client `seq` taken from this member.
    pub last_received_seq: u64,
    pub buffered_messages: usize,
    pub reconnections: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Everyone in the room: peer ID and whether connected.
    pub members: Vec<(PeerId, bool)>,
}

#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    rooms: HashMap<RoomId, Room>,
    /// Connections that registered or joined: which member of which room.
    conns: HashMap<ConnId, (RoomId, PeerId)>,
    /// Rooms that ended, by ID and nonce, and when.
    ended: HashMap<(RoomId, u64), Instant>,
    limiter: AttemptLimiter,
    /// Rooms registered per address key.
    rooms_by_addr: HashMap<IpAddr, usize>,
    counters: HubCounters,
    /// Rooms changed since [`Hub::take_touched`] last ran (for a node that
    /// writes its rooms through to Redis; see `cluster`).
    touched: std::collections::HashSet<RoomId>,
}

/// Running totals for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubCounters {
    pub rooms_created: u64,
    /// Rooms taken back by their host's token after a server restart.
    pub rooms_restored: u64,
    pub joins_admitted: u64,
    pub joins_denied: u64,
    pub joins_timed_out: u64,
    pub wrong_credentials: u64,
    pub lockouts: u64,
    pub relayed: u64,
    /// Members that came back within the grace window.
    pub reconnections: u64,
    /// Genuine tokens presented for sessions that had ended.
    pub reconnections_failed: u64,
    /// Sum of the disconnect durations of `reconnections`, in milliseconds.
    pub reconnection_ms_total: u64,
    pub messages_replayed: u64,
    /// Numbered client messages dropped because they had already been taken.
    pub duplicates_dropped: u64,
    /// Members removed because the grace window ran out.
    pub grace_expired: u64,
    /// Quality reports accepted (over the socket or HTTP).
    pub quality_reports: u64,
    /// Fresh TURN credentials sent before the old ones expired.
    pub turn_renewals: u64,
}

fn reply(to: ConnId, msg: ServerMessage) -> Out {
    Out::Send { to, seq: None, msg }
}

fn err(to: ConnId, e: SignalError) -> Outbox {
    vec![reply(to, e.into())]
}

fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

fn already_in_room(to: ConnId) -> Outbox {
    err(
        to,
        SignalError::new(ErrorKind::AlreadyInRoom, "this connection is already in a room"),
    )
}

fn session_ended() -> SignalError {
    SignalError::new(
        ErrorKind::SessionEnded,
        "this session has ended; ask the host for a new code",
    )
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Hub {
            limiter: AttemptLimiter::new(config.limiter),
            config,
            rooms: HashMap::new(),
            conns: HashMap::new(),
            ended: HashMap::new(),
            rooms_by_addr: HashMap::new(),
            counters: HubCounters::default(),
            touched: Default::default(),
        }
    }

    /// The rooms changed (or ended) since the last call.
    pub fn take_touched(&mut self) -> Vec<RoomId> {
        self.touched.drain().collect()
    }

    pub fn has_room(&self, id: &RoomId) -> bool {
        self.rooms.contains_key(id)
    }

    pub fn room_ids(&self) -> Vec<RoomId> {
        self.rooms.keys().cloned().collect()
    }

    /// Lets a room go without ending it (another node carries it on): its
    /// members are not told; their connections here are returned, to be
    /// closed so they resume wherever the room is now.
    pub fn drop_room(&mut self, id: &RoomId) -> Vec<ConnId> {
        let Some(room) = self.rooms.remove(id) else {
            return Vec::new();
        };
        if let Some(n) = self.rooms_by_addr.get_mut(&room.owner) {
            *n -= 1;
            if *n == 0 {
                self.rooms_by_addr.remove(&room.owner);
            }
        }
        let conns: Vec<ConnId> = room.members.values().filter_map(|m| m.conn).collect();
        for c in &conns {
            self.conns.remove(c);
        }
        conns
    }

    /// Another node ended room `id` (nonce `nonce`): its tokens no longer
    /// bring it back here.
    pub fn note_ended(&mut self, id: RoomId, nonce: u64, now: Instant) {
        if self.ended.len() < MAX_ENDED_ROOMS {
            self.ended.insert((id, nonce), now);
        }
    }

    pub fn counters(&self) -> HubCounters {
        self.counters
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Members of all rooms, connected or within their grace window.
    pub fn member_count(&self) -> usize {
        self.rooms.values().map(|r| r.members.len()).sum()
    }

    /// Messages held in all rooms' replay buffers.
    pub fn buffered_count(&self) -> usize {
        self.rooms.values().map(|r| r.replay.len()).sum()
    }

    /// Keys the attempt limiter currently tracks.
    pub fn tracked_attempt_keys(&self) -> usize {
        self.limiter.tracked()
    }

    /// Everything the hub keeps per room or connection, for leak checks.
    pub fn footprint(&self) -> usize {
        self.rooms.len()
            + self.member_count()
            + self.buffered_count()
            + self.conns.len()
            + self.ended.len()
            + self.rooms_by_addr.len()
    }

    pub fn handle(&mut self, now: Instant, conn: ConnId, addr: IpAddr, env: ClientEnvelope) -> Outbox {
        if let Some((id, _)) = self.conns.get(&conn) {
            self.touched.insert(id.clone());
        }
        let out = self.dispatch(now, conn, addr, env);
        if let Some((id, _)) = self.conns.get(&conn) {
            self.touched.insert(id.clone());
        }
        out
    }

    fn dispatch(&mut self, now: Instant, conn: ConnId, addr: IpAddr, env: ClientEnvelope) -> Outbox {
        if let Some(m) = self.member_mut(conn) {
            m.last_seen = now;
        }
        let seq = env.seq;
        match env.msg {
            ClientMessage::Register {
                gate,
                token: None,
                unattended,
                ..
            } => self.register(now, conn, addr, gate, unattended),
            ClientMessage::Register {
                gate,
                token: Some(token),
                last_seq,
                unattended,
            } => self.resume_host(now, conn, addr, (gate, unattended), token, last_seq),
            ClientMessage::Join {
                id,
                gate,
                password_gate,
                token,
                last_seq,
            } => {
                let gate = match (gate, password_gate) {
                    (Some(g), _) => Some(JoinGate::Code(g)),
                    (None, Some(g)) => Some(JoinGate::Password(g)),
                    (None, None) => None,
                };
                self.join(now, conn, addr, id, gate, token, last_seq)
            }
            ClientMessage::Lookup { id } => {
                // No room and a room without a password answer alike.
                let unattended = self
                    .rooms
                    .get(&id)
                    .and_then(|r| r.unattended.as_ref())
                    .map(|u| u.params.clone());
                vec![reply(conn, ServerMessage::RoomInfo { id, unattended })]
            }
            ClientMessage::AuthFailed { peer, reason } => self.auth_failed(now, conn, peer, reason),
            ClientMessage::Rekey { gate } => self.rekey(conn, gate),
            ClientMessage::Consent { peer, decision } => {
                if self.duplicate(conn, seq) {
                    return Vec::new();
                }
                self.consent(now, conn, peer, decision)
            }
            ClientMessage::Offer {
                to,
                sdp,
                generation,
                round,
            } => self.relay(now, conn, seq, to, |from| ServerMessage::Offer {
                from,
                sdp,
                generation,
                round,
            }),
            ClientMessage::Answer {
                to,
                sdp,
                generation,
                round,
            } => self.relay(now, conn, seq, to, |from| ServerMessage::Answer {
                from,
                sdp,
                generation,
                round,
            }),
            ClientMessage::Candidate {
                to,
                candidate,
                generation,
            } => self.relay(now, conn, seq, to, |from| ServerMessage::Candidate {
                from,
                candidate,
                generation,
            }),
            ClientMessage::Leave => self.leave(now, conn),
            ClientMessage::Kick { peer } => self.kick(conn, peer),
            ClientMessage::Ping => vec![reply(conn, ServerMessage::Pong)],
            ClientMessage::Quality { peer, metrics } => self.quality_report(conn, peer, metrics.classify()),
        }
    }

    /// A member's measured link quality: a host's report about one of its
    /// viewers lands on that viewer (the link is theirs together); a
    /// viewer's lands on itself. Not answered unless it is wrong.
    fn quality_report(&mut self, conn: ConnId, about: Option<PeerId>, quality: Quality) -> Outbox {
        let Some((id, from)) = self.conns.get(&conn).cloned() else {
            return err(
                conn,
                SignalError::new(ErrorKind::NotInRoom, "join or register a room first"),
            );
        };
        let room = self.rooms.get_mut(&id).expect("a connection's room exists");
        let target = match (room.members[&from].role, about) {
            (Role::Pending { .. }, _) => {
                return err(
                    conn,
                    SignalError::new(ErrorKind::NotInRoom, "waiting for the host's consent"),
                )
            }
            (Role::Host, Some(p))
                if room
                    .members
                    .get(&p)
                    .is_some_and(|m| matches!(m.role, Role::Viewer { .. })) =>
            {
                p
            }
            (Role::Host, _) => {
                return err(
                    conn,
                    SignalError::new(
                        ErrorKind::UnknownPeer,
                        "a host's quality report names one of its viewers",
                    ),
                )
            }
            (Role::Viewer { .. }, _) => from,
        };
        room.members.get_mut(&target).expect("checked").quality = Some(quality);
        self.counters.quality_reports += 1;
        Vec::new()
    }

    /// The connection closed (or went silent): its member stays for the
    /// grace window, marked disconnected; a pending viewer is simply gone.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) -> Outbox {
        let Some((id, peer)) = self.conns.remove(&conn) else {
            return Vec::new();
        };
        self.touched.insert(id.clone());
        let grace = self.config.grace;
        let room = self.rooms.get_mut(&id).expect("a connection's room exists");
        let member = room.members.get_mut(&peer).expect("a connection's member exists");
        if member.conn != Some(conn) {
            return Vec::new();
        }
        member.conn = None;
        let mut out = Vec::new();
        if matches!(member.role, Role::Pending { .. }) {
            room.members.remove(&peer);
            let host = room.host.clone();
            post(room, &host, ServerMessage::PeerLeft { peer_id: peer }, now, &mut out);
            return out;
        }
        member.disconnected_at = Some(now);
        let state = ServerMessage::PeerState {
            peer_id: peer.clone(),
            connected: false,
            grace_ms: Some(grace.as_millis() as u64),
        };
        broadcast(room, &peer, state, now, &mut out);
        out
    }

    /// Time-driven work: unanswered join requests are refused, members gone
    /// past the grace window are removed (a host takes its room with it),
    /// and the limiter and the ended-room memory forget old entries.
    pub fn poll(&mut self, now: Instant) -> Outbox {
        let mut out = Vec::new();
        let grace = self.config.grace;
        let ids: Vec<RoomId> = self.rooms.keys().cloned().collect();
        for id in ids {
            let room = self.rooms.get_mut(&id).expect("listed");
            let mut timed_out = Vec::new();
            let mut expired = Vec::new();
            for (peer, m) in &room.members {
                match (m.role, m.disconnected_at) {
                    (Role::Pending { deadline, .. }, _) if deadline <= now => timed_out.push(peer.clone()),
                    (_, Some(at)) if now.saturating_duration_since(at) >= grace => expired.push(peer.clone()),
                    _ => {}
                }
            }
            if !timed_out.is_empty() || !expired.is_empty() {
                self.touched.insert(id.clone());
            }
            self.counters.joins_timed_out += timed_out.len() as u64;
            for peer in timed_out {
                let m = room.members.remove(&peer).expect("listed");
                if let Some(c) = m.conn {
                    self.conns.remove(&c);
                    out.push(reply(
                        c,
                        SignalError::new(
                            ErrorKind::ConsentTimeout,
                            "the host did not answer your request to join in time",
                        )
                        .into(),
                    ));
                }
                let host = room.host.clone();
                post(room, &host, ServerMessage::PeerLeft { peer_id: peer }, now, &mut out);
            }
            self.counters.grace_expired += expired.len() as u64;
            if expired.contains(&room.host) {
                let reason = format!(
                    "the host did not come back within {} s; the session has ended",
                    secs(grace)
                );
                out.extend(self.close_room(&id, reason, now));
                continue;
            }
            for peer in expired {
                room.members.remove(&peer);
                revoke(room, peer.clone());
                let host = room.host.clone();
                post(room, &host, ServerMessage::PeerLeft { peer_id: peer }, now, &mut out);
            }
            room.replay.expire(now);
        }
        out.extend(self.renew_turn(now));
        self.limiter.purge(now);
        self.ended
            .retain(|_, at| now.saturating_duration_since(*at) < ENDED_MEMORY);
        out
    }

    /// Fresh TURN credentials for every connected host and admitted viewer
    /// halfway through the lifetime of the last ones, so a long session never
    /// holds expired ones. A member away at that moment gets fresh ones with
    /// its `registered`/`joined` when it comes back.
    fn renew_turn(&mut self, now: Instant) -> Outbox {
        let Some(turn) = &self.config.turn else {
            return Vec::new();
        };
        let every = (turn.ttl / 2).max(Duration::from_secs(1));
        let mut due = Vec::new();
        for room in self.rooms.values_mut() {
            for (peer, m) in room.members.iter_mut() {
                if matches!(m.role, Role::Pending { .. }) {
                    continue;
                }
                let at = *m.ice_renew_at.get_or_insert(now + every);
                if at <= now {
                    m.ice_renew_at = Some(now + every);
                    if let Some(conn) = m.conn {
                        due.push((conn, peer.clone()));
                    }
                }
            }
        }
        self.counters.turn_renewals += due.len() as u64;
        due.into_iter()
            .map(|(conn, peer)| {
                reply(
                    conn,
                    ServerMessage::IceServers {
                        ice_servers: self.ice_for(&peer, now),
                    },
                )
            })
            .collect()
    }

    fn member_mut(&mut self, conn: ConnId) -> Option<&mut Member> {
        let (id, peer) = self.conns.get(&conn)?;
        self.rooms.get_mut(id)?.members.get_mut(peer)
    }

    /// True if `seq` was already taken from this connection's member (and
    /// records it otherwise).
    fn duplicate(&mut self, conn: ConnId, seq: Option<u64>) -> bool {
        let Some(seq) = seq else { return false };
        let Some(m) = self.member_mut(conn) else { return false };
        if seq <= m.last_received {
            self.counters.duplicates_dropped += 1;
            return true;
        }
        m.last_received = seq;
        false
    }

    fn sign(&self, id: &RoomId, room: &Room, peer: &PeerId, grant: Grant) -> SessionToken {
        self.config.token_key.sign(&Claims {
            room: id.clone(),
            nonce: room.nonce,
            peer: peer.clone(),
            grant,
        })
    }

    /// The STUN/TURN list for a host or admitted viewer: the configured
    /// servers, and TURN credentials of its own that expire.
    fn ice_for(&self, peer: &PeerId, now: Instant) -> Vec<IceServer> {
        let mut list = self.config.ice_servers.clone();
        if let Some(turn) = &self.config.turn {
            list.push(turn.credentials(&peer.0, self.config.wall_clock.unix_secs(now)));
        }
        list
    }

    /// Room caps: per registering address and in total.
    fn room_allowed(&self, addr: IpAddr) -> Result<(), SignalError> {
        let mine = self.rooms_by_addr.get(&address_key(addr)).copied().unwrap_or(0);
        if mine >= self.config.caps.rooms_per_addr || self.rooms.len() >= self.config.caps.rooms_total {
            return Err(SignalError::new(
                ErrorKind::RateLimited,
                "this server holds as many rooms as it allows (for this address or in all)",
            ));
        }
        Ok(())
    }

    /// The configured STUN/TURN servers that carry no credentials (what a
    /// viewer not admitted yet may have).
    fn public_ice(&self) -> Vec<IceServer> {
        self.config
            .ice_servers
            .iter()
            .filter(|s| s.credential.is_none() && s.username.is_none())
            .cloned()
            .collect()
    }

    fn registered(&self, id: &RoomId, resumed: bool, now: Instant) -> ServerMessage {
        let room = &self.rooms[id];
        ServerMessage::Registered {
            id: id.clone(),
            peer_id: room.host.clone(),
            ice_servers: self.ice_for(&room.host, now),
            token: self.sign(id, room, &room.host, Grant::Host),
            resumed,
            grace_ms: Some(self.grace_ms()),
            replay: Some(self.replay_policy()),
        }
    }

    /// The grace window clients are told to keep to (this server's).
    fn grace_ms(&self) -> u64 {
        self.config.grace.as_millis() as u64
    }

    /// How this server keeps messages, as clients are told.
    fn replay_policy(&self) -> ReplayPolicy {
        ReplayPolicy {
            messages: self.config.replay.capacity as u64,
            ttl_ms: self.config.replay.ttl.as_millis() as u64,
        }
    }

    fn register(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: IpAddr,
        gate: CodeGate,
        unattended: Option<Unattended>,
    ) -> Outbox {
        if self.conns.contains_key(&conn) {
            return already_in_room(conn);
        }
        if let Err(e) = self.room_allowed(addr) {
            return err(conn, e);
        }
        let mut rng = rand::rng();
        let id = loop {
            let id = RoomId::random(&mut rng);
            if !self.rooms.contains_key(&id) {
                break id;
            }
        };
        self.open_room(now, conn, addr, &id, gate, unattended)
    }

    /// A new session under `id` (a new nonce and host peer), hosted on `conn`.
    fn open_room(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: IpAddr,
        id: &RoomId,
        gate: CodeGate,
        unattended: Option<Unattended>,
    ) -> Outbox {
        let mut rng = rand::rng();
        let host = PeerId::random(&mut rng);
        self.counters.rooms_created += 1;
        self.insert_room(now, conn, addr, id, gate, rng.random(), host);
        self.rooms.get_mut(id).expect("inserted").unattended = unattended;
        vec![reply(conn, self.registered(id, false, now))]
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_room(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: IpAddr,
        id: &RoomId,
        gate: CodeGate,
        nonce: u64,
        host: PeerId,
    ) {
        let owner = address_key(addr);
        *self.rooms_by_addr.entry(owner).or_default() += 1;
        let mut members = HashMap::new();
        members.insert(host.clone(), Member::new(Role::Host, conn, now));
        self.conns.insert(conn, (id.clone(), host.clone()));
        self.rooms.insert(
            id.clone(),
            Room {
                gate,
                unattended: None,
                nonce,
                host,
                members,
                replay: ReplayBuffer::starting_after(self.config.replay, now, self.config.seq_base),
                revoked: VecDeque::new(),
                restored: false,
                owner,
            },
        );
    }

    /// A genuine token whose room is gone: ended, or (after a restart) not back yet.
    fn absent_room(&mut self, id: &RoomId, nonce: u64) -> SignalError {
        if self.ended.contains_key(&(id.clone(), nonce)) {
            self.counters.reconnections_failed += 1;
            session_ended()
        } else {
            SignalError::new(
                ErrorKind::SessionUnavailable,
                "the host has not reconnected yet; trying again shortly",
            )
            .retry_after(UNAVAILABLE_RETRY)
        }
    }

    /// A host comes back with its token: the same room (same ID; the gate it
    /// names now), also if this server was restarted and no longer knew it.
    /// A host with unattended access gets its ID back after its room ended
    /// too (a new session under it), unless another room took the ID.
    fn resume_host(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: IpAddr,
        (gate, unattended): (CodeGate, Option<Unattended>),
        token: SessionToken,
        last_seq: Option<u64>,
    ) -> Outbox {
        if self.conns.contains_key(&conn) {
            return already_in_room(conn);
        }
        let claims = match self.check_token(now, addr, None, &token) {
            Ok(Claims {
                grant: Grant::Host,
                room,
                nonce,
                peer,
            }) => (room, nonce, peer),
            Ok(_) => return err(conn, self.wrong_token(now, addr, None)),
            Err(e) => return err(conn, e),
        };
        let (id, nonce, peer) = claims;
        match self.rooms.get_mut(&id) {
            Some(room) if room.nonce == nonce && room.host == peer => {
                room.gate = gate;
                room.unattended = unattended;
                self.reconnect(now, conn, &id, &peer, last_seq, |hub| hub.registered(&id, true, now))
            }
            Some(_) => {
                self.counters.reconnections_failed += 1;
                err(conn, session_ended())
            }
            None if self.ended.contains_key(&(id.clone(), nonce)) && unattended.is_some() => {
                // A machine with unattended access keeps its ID across its
                // own restarts: a new room under the same ID, with a new
                // nonce, so the ended session's viewer tokens stay refused.
                if let Err(e) = self.room_allowed(addr) {
                    return err(conn, e);
                }
                self.open_room(now, conn, addr, &id, gate, unattended)
            }
            None if self.ended.contains_key(&(id.clone(), nonce)) => {
                self.counters.reconnections_failed += 1;
                err(conn, session_ended())
            }
            None => {
                // A restarted server: the room comes back as it was.
                if let Err(e) = self.room_allowed(addr) {
                    return err(conn, e);
                }
                self.counters.rooms_restored += 1;
                self.insert_room(now, conn, addr, &id, gate, nonce, peer);
                let room = self.rooms.get_mut(&id).expect("inserted");
                room.restored = true;
                room.unattended = unattended;
                vec![reply(conn, self.registered(&id, true, now))]
            }
        }
    }

    /// Verifies a token. A genuine one passes whatever lockout its address
    /// or room is under: it cannot be guessed, and its holder is the person
    /// the lockout protects (five wrong codes from a stranger must not stop
    /// an admitted viewer from resuming). A forged one is a failed attempt.
    fn check_token(
        &mut self,
        now: Instant,
        addr: IpAddr,
        room: Option<&RoomId>,
        token: &SessionToken,
    ) -> Result<Claims, SignalError> {
        if let Some(c) = self.config.token_key.verify(token) {
            return Ok(c);
        }
        if let Err(wait) = self.limiter.check(&AttemptKey::addr(addr), now) {
            return Err(locked_out(wait));
        }
        Err(self.wrong_token(now, addr, room))
    }

    fn wrong_token(&mut self, now: Instant, addr: IpAddr, room: Option<&RoomId>) -> SignalError {
        self.failed_attempt(now, addr, room.cloned(), "session token")
    }

    /// Counts a wrong code or token against the address (and the room, if
    /// named); the answer says how many tries are left, or that a lockout began.
    fn failed_attempt(&mut self, now: Instant, addr: IpAddr, room: Option<RoomId>, what: &str) -> SignalError {
        self.counters.wrong_credentials += 1;
        let keys = std::iter::once(AttemptKey::addr(addr)).chain(room.map(AttemptKey::Room));
        let mut remaining = u32::MAX;
        let mut lockout = None;
        for k in keys {
            match self.limiter.fail(&k, now) {
                Failure::Remaining(n) => remaining = remaining.min(n),
                Failure::LockedOut(d) => lockout = Some(d),
            }
        }
        if let Some(d) = lockout {
            self.counters.lockouts += 1;
            return locked_out(d);
        }
        SignalError::new(
            ErrorKind::InvalidCredentials,
            format!("invalid ID or {what} ({remaining} attempts left before a lockout)"),
        )
    }

    /// Member `peer` of room `id` is back on `conn`: `reconnection-detected`,
    /// the answer `reply_msg` builds, then what it missed, in order.
    fn reconnect(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: &RoomId,
        peer: &PeerId,
        last_seq: Option<u64>,
        reply_msg: impl FnOnce(&Hub) -> ServerMessage,
    ) -> Outbox {
        let answer = reply_msg(self);
        let mut out = Vec::new();
        let room = self.rooms.get_mut(id).expect("caller checked");
        let member = room.members.get_mut(peer).expect("caller checked");
        if let Some(old) = member.conn.replace(conn) {
            // A half-open connection the server had not noticed yet.
            self.conns.remove(&old);
            out.push(reply(
                old,
                SignalError::new(ErrorKind::Superseded, "this session was resumed on another connection").into(),
            ));
            out.push(Out::Close(old));
        }
        self.conns.insert(conn, (id.clone(), peer.clone()));
        let gone = now.saturating_duration_since(member.disconnected_at.take().unwrap_or(member.last_seen));
        member.last_seen = now;
        member.reconnections += 1;
        // A member this server only expected has sent it nothing yet, but may
        // have sent the previous server plenty: say we cannot know.
        let knows_received = !std::mem::take(&mut member.expected);
        // Without `last_seq` the client has no state to complete (a new
        // process with an old token): nothing to replay, and the host is told
        // it needs a new connection.
        let fresh = last_seq.is_none() && member.role != Role::Host;
        if last_seq.is_none() {
            // A new client process numbers its messages from 1 again.
            member.last_received = 0;
        }
        let seen = last_seq.unwrap_or(room.replay.last_seq());
        let missed = room.replay.since(seen, now);
        let mine: Vec<(u64, ServerMessage)> = missed
            .messages
            .into_iter()
            .filter(|(_, (to, _))| to == peer)
            .map(|(seq, (_, msg))| (seq, msg))
            .collect();
        self.counters.reconnections += 1;
        self.counters.reconnection_ms_total += gone.as_millis() as u64;
        self.counters.messages_replayed += mine.len() as u64;
        out.push(reply(
            conn,
            ServerMessage::ReconnectionDetected {
                disconnect_duration: gone.as_secs_f64(),
                missed_message_count: mine.len() as u64,
                last_received: knows_received.then_some(member.last_received),
                replay_complete: missed.lost == 0,
            },
        ));
        out.push(reply(conn, answer));
        for (seq, msg) in mine {
            member.last_delivered = seq;
            out.push(Out::Send {
                to: conn,
                seq: Some(seq),
                msg,
            });
        }
        if fresh {
            let Role::Viewer { control } = member.role else {
                unreachable!("checked")
            };
            let host = room.host.clone();
            let again = ServerMessage::PeerJoined {
                peer_id: peer.clone(),
                control,
                fresh: true,
            };
            post(room, &host, again, now, &mut out);
        } else {
            let back = ServerMessage::PeerState {
                peer_id: peer.clone(),
                connected: true,
                grace_ms: None,
            };
            broadcast(room, peer, back, now, &mut out);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: IpAddr,
        id: RoomId,
        gate: Option<JoinGate>,
        token: Option<SessionToken>,
        last_seq: Option<u64>,
    ) -> Outbox {
        if self.conns.contains_key(&conn) {
            return already_in_room(conn);
        }
        match (gate, token) {
            (Some(gate), _) => {
                let keys = [AttemptKey::addr(addr), AttemptKey::Room(id.clone())];
                let locked = keys.iter().filter_map(|k| self.limiter.check(k, now).err()).max();
                if let Some(wait) = locked {
                    return err(conn, locked_out(wait));
                }
                self.join_with_gate(now, conn, addr, id, gate)
            }
            (None, Some(token)) => self.join_with_token(now, conn, addr, id, token, last_seq),
            (None, None) => err(
                conn,
                SignalError::new(ErrorKind::BadMessage, "a gate or a token is required"),
            ),
        }
    }

    fn join_with_gate(&mut self, now: Instant, conn: ConnId, addr: IpAddr, id: RoomId, gate: JoinGate) -> Outbox {
        // Unknown room and wrong gate take the same path, so they get the same answer.
        let matches = self.rooms.get(&id).is_some_and(|room| match (&gate, &room.unattended) {
            (JoinGate::Code(g), _) => room.gate.matches(g),
            (JoinGate::Password(g), Some(u)) => u.gate.matches(g),
            (JoinGate::Password(_), None) => false,
        });
        let password = matches!(gate, JoinGate::Password(_));
        if !matches {
            let what = if password { "password" } else { "code" };
            return err(conn, self.failed_attempt(now, addr, Some(id), what));
        }
        // A right gate is not a right code: the address's failures stand
        // until the host admits the viewer.
        let deadline = now + self.config.consent_timeout;
        let ice_servers = self.public_ice();
        let room = self.rooms.get_mut(&id).expect("credentials matched a room");
        if room.viewer_count() >= MAX_VIEWERS_PER_ROOM {
            return err(conn, too_many_viewers());
        }
        let peer = PeerId::random(&mut rand::rng());
        room.members
            .insert(peer.clone(), Member::new(Role::Pending { deadline, addr }, conn, now));
        self.conns.insert(conn, (id, peer.clone()));
        let timeout_ms = self.config.consent_timeout.as_millis() as u64;
        let mut out = vec![reply(
            conn,
            ServerMessage::AwaitingConsent {
                timeout_ms,
                ice_servers,
            },
        )];
        let host = room.host.clone();
        let request = ServerMessage::JoinRequest {
            peer_id: peer,
            address: addr.to_string(),
            timeout_ms,
            password,
        };
        post(room, &host, request, now, &mut out);
        out
    }

    fn join_with_token(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: IpAddr,
        id: RoomId,
        token: SessionToken,
        last_seq: Option<u64>,
    ) -> Outbox {
        let (peer, control, nonce) = match self.check_token(now, addr, Some(&id), &token) {
            Ok(Claims {
                grant: Grant::Viewer { control },
                room,
                peer,
                nonce,
                ..
            }) if room == id => (peer, control, nonce),
            Ok(_) => return err(conn, self.wrong_token(now, addr, Some(&id))),
            Err(e) => return err(conn, e),
        };
        self.limiter.succeed(&AttemptKey::addr(addr));
        let live = match self.rooms.get(&id) {
            Some(room) => room.nonce == nonce && !room.revoked.contains(&peer),
            None => return err(conn, self.absent_room(&id, nonce)),
        };
        if !live {
            self.counters.reconnections_failed += 1;
            return err(conn, session_ended());
        }
        let joined = |hub: &Hub| ServerMessage::Joined {
            id: id.clone(),
            peer_id: peer.clone(),
            host: hub.rooms[&id].host.clone(),
            ice_servers: hub.ice_for(&peer, now),
            token: token.clone(),
            control,
            grace_ms: Some(hub.grace_ms()),
            replay: Some(hub.replay_policy()),
        };
        if let Some(member) = self.rooms.get_mut(&id).expect("checked").members.get_mut(&peer) {
            if member.expected {
                // The token, not the host's message, says what it may do.
                member.role = Role::Viewer { control };
            }
            return self.reconnect(now, conn, &id, &peer, last_seq, joined);
        }
        // Known to the token but not to this room (a restarted server): admit
        // again without asking, as the host already agreed.
        let answer = joined(self);
        let room = self.rooms.get_mut(&id).expect("checked");
        if room.viewer_count() >= MAX_VIEWERS_PER_ROOM {
            return err(conn, too_many_viewers());
        }
        room.members
            .insert(peer.clone(), Member::new(Role::Viewer { control }, conn, now));
        self.conns.insert(conn, (id, peer.clone()));
        self.counters.joins_admitted += 1;
        let mut out = vec![reply(conn, answer)];
        let host = room.host.clone();
        let joined = ServerMessage::PeerJoined {
            peer_id: peer,
            control,
            fresh: last_seq.is_none(),
        };
        post(room, &host, joined, now, &mut out);
        out
    }

    /// The room `conn` is the host of; `what` says what only a host may do.
    fn hosted_room(&self, conn: ConnId, what: &str) -> Result<RoomId, SignalError> {
        match self.conns.get(&conn) {
            Some((id, p)) if self.rooms[id].host == *p => Ok(id.clone()),
            _ => Err(SignalError::new(ErrorKind::NotInRoom, format!("only a host {what}"))),
        }
    }

    /// The room `conn` hosts and the address of its pending viewer `peer`.
    fn pending_request(&self, conn: ConnId, peer: &PeerId, what: &str) -> Result<(RoomId, IpAddr), SignalError> {
        let id = self.hosted_room(conn, what)?;
        match self.rooms[&id].members.get(peer).map(|m| m.role) {
            Some(Role::Pending { addr, .. }) => Ok((id, addr)),
            _ => Err(SignalError::new(
                ErrorKind::UnknownPeer,
                "no such request to join (it may have expired)",
            )),
        }
    }

    fn consent(&mut self, now: Instant, conn: ConnId, peer: PeerId, decision: Decision) -> Outbox {
        let (id, addr) = match self.pending_request(conn, &peer, "answers join requests") {
            Ok(found) => found,
            Err(e) => return err(conn, e),
        };
        let room = self.rooms.get_mut(&id).expect("host's room exists");
        let control = match decision {
            Decision::Control => true,
            Decision::View => false,
            Decision::Deny => {
                self.counters.joins_denied += 1;
                let m = room.members.remove(&peer).expect("pending member");
                let Some(c) = m.conn else { return Vec::new() };
                self.conns.remove(&c);
                return err(
                    c,
                    SignalError::new(ErrorKind::ConsentDenied, "the host declined your request to join"),
                );
            }
        };
        // The host checked the whole code: this address proved itself.
        self.limiter.succeed(&AttemptKey::addr(addr));
        let token = self.sign(&id, &self.rooms[&id], &peer, Grant::Viewer { control });
        let ice_servers = self.ice_for(&peer, now);
        self.counters.joins_admitted += 1;
        let grace_ms = Some(self.grace_ms());
        let replay = Some(self.replay_policy());
        let room = self.rooms.get_mut(&id).expect("host's room exists");
        let member = room.members.get_mut(&peer).expect("pending member");
        member.role = Role::Viewer { control };
        let mut out = Vec::new();
        if let Some(c) = member.conn {
            out.push(reply(
                c,
                ServerMessage::Joined {
                    id: id.clone(),
                    peer_id: peer.clone(),
                    host: room.host.clone(),
                    ice_servers,
                    token,
                    control,
                    grace_ms,
                    replay,
                },
            ));
        }
        let host = room.host.clone();
        let joined = ServerMessage::PeerJoined {
            peer_id: peer,
            control,
            fresh: false,
        };
        post(room, &host, joined, now, &mut out);
        out
    }

    /// The host's end-to-end check of a pending viewer failed: a failed
    /// attempt for the viewer's address and the room, and the viewer is
    /// turned away with the reason the host gave.
    fn auth_failed(&mut self, now: Instant, conn: ConnId, peer: PeerId, reason: AuthFailure) -> Outbox {
        let (id, addr) = match self.pending_request(conn, &peer, "reports failed checks") {
            Ok(found) => found,
            Err(e) => return err(conn, e),
        };
        let room = self.rooms.get_mut(&id).expect("host's room exists");
        let m = room.members.remove(&peer).expect("pending member");
        self.counters.joins_denied += 1;
        let counted = self.failed_attempt(now, addr, Some(id), "code");
        let Some(c) = m.conn else { return Vec::new() };
        self.conns.remove(&c);
        let answer = if counted.kind == ErrorKind::LockedOut {
            counted
        } else {
            SignalError::new(ErrorKind::AuthFailed, reason.describe())
        };
        vec![reply(c, answer.into()), Out::Close(c)]
    }

    /// The host made up a new code: joins are checked against its gate from now on.
    fn rekey(&mut self, conn: ConnId, gate: CodeGate) -> Outbox {
        match self.hosted_room(conn, "changes the code") {
            Ok(id) => {
                self.rooms.get_mut(&id).expect("host's room exists").gate = gate;
                // Guesses at the old code say nothing about the new one: the
                // room's lockout ends (each address keeps its own).
                self.limiter.forget(&AttemptKey::Room(id));
                Vec::new()
            }
            Err(e) => err(conn, e),
        }
    }

    fn relay(
        &mut self,
        now: Instant,
        conn: ConnId,
        seq: Option<u64>,
        to: Option<PeerId>,
        make: impl FnOnce(PeerId) -> ServerMessage,
    ) -> Outbox {
        let Some((id, from)) = self.conns.get(&conn).cloned() else {
            return err(
                conn,
                SignalError::new(ErrorKind::NotInRoom, "join or register a room first"),
            );
        };
        let room = &self.rooms[&id];
        // Pending viewers too: the host checks the code over this connection.
        let viewer = |p: &PeerId| {
            room.members
                .get(p)
                .is_some_and(|m| matches!(m.role, Role::Viewer { .. } | Role::Pending { .. }))
        };
        let target = match (room.members[&from].role, to) {
            (Role::Viewer { .. } | Role::Pending { .. }, None) => room.host.clone(),
            (Role::Viewer { .. } | Role::Pending { .. }, Some(t)) if t == room.host => t,
            (Role::Host, Some(t)) if viewer(&t) => t,
            // After a restart the host may talk to a viewer that has not
            // reconnected yet (an ICE restart it queued while we were down).
            (Role::Host, Some(t))
                if room.restored
                    && !room.members.contains_key(&t)
                    && !room.revoked.contains(&t)
                    && room.viewer_count() < MAX_VIEWERS_PER_ROOM =>
            {
                let room = self.rooms.get_mut(&id).expect("checked");
                room.members.insert(t.clone(), Member::expected(now));
                t
            }
            (Role::Host, None) => {
                return err(
                    conn,
                    SignalError::new(ErrorKind::BadMessage, "a host must say `to` which viewer"),
                )
            }
            (_, Some(_)) => {
                return err(
                    conn,
                    SignalError::new(ErrorKind::UnknownPeer, "no such peer in your room"),
                )
            }
        };
        if self.duplicate(conn, seq) {
            return Vec::new();
        }
        self.counters.relayed += 1;
        let room = self.rooms.get_mut(&id).expect("checked");
        let mut out = Vec::new();
        post(room, &target, make(from), now, &mut out);
        out
    }

    /// An explicit goodbye: a viewer's session ends (its token with it); a host's ends the room.
    fn leave(&mut self, now: Instant, conn: ConnId) -> Outbox {
        let Some((id, peer)) = self.conns.remove(&conn) else {
            return Vec::new();
        };
        let room = self.rooms.get_mut(&id).expect("a connection's room exists");
        if room.host == peer {
            return self.close_room(&id, "the host ended the session".into(), now);
        }
        room.members.remove(&peer);
        revoke(room, peer.clone());
        let mut out = Vec::new();
        let host = room.host.clone();
        post(room, &host, ServerMessage::PeerLeft { peer_id: peer }, now, &mut out);
        out
    }

    /// A host ends one viewer's session: the viewer is told, its connection
    /// closed and its token revoked; the host is not answered (it already knows).
    fn kick(&mut self, conn: ConnId, peer: PeerId) -> Outbox {
        let id = match self.hosted_room(conn, "removes viewers") {
            Ok(id) => id,
            Err(e) => return err(conn, e),
        };
        let room = self.rooms.get_mut(&id).expect("host's room exists");
        if peer == room.host || !room.members.contains_key(&peer) {
            return err(
                conn,
                SignalError::new(ErrorKind::UnknownPeer, "no such viewer in your room"),
            );
        }
        let m = room.members.remove(&peer).expect("checked");
        revoke(room, peer);
        let mut out = Vec::new();
        if let Some(c) = m.conn {
            self.conns.remove(&c);
            let reason = "the host ended your session".to_owned();
            out.push(reply(c, ServerMessage::RoomClosed { reason }));
            out.push(Out::Close(c));
        }
        out
    }

    /// Ends a room: connected viewers are told why; every trace goes.
    fn close_room(&mut self, id: &RoomId, reason: String, now: Instant) -> Outbox {
        let Some(room) = self.rooms.remove(id) else {
            return Vec::new();
        };
        self.touched.insert(id.clone());
        if self.ended.len() >= MAX_ENDED_ROOMS {
            if let Some(oldest) = self.ended.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) {
                self.ended.remove(&oldest);
            }
        }
        self.ended.insert((id.clone(), room.nonce), now);
        if let Some(n) = self.rooms_by_addr.get_mut(&room.owner) {
            *n -= 1;
            if *n == 0 {
                self.rooms_by_addr.remove(&room.owner);
            }
        }
        let mut out = Vec::new();
        for (peer, m) in room.members {
            let Some(c) = m.conn else { continue };
            self.conns.remove(&c);
            if peer != room.host {
                out.push(reply(c, ServerMessage::RoomClosed { reason: reason.clone() }));
            }
        }
        out
    }

    /// Records a quality report from the holder of `token` in room `id`.
    /// A bad token counts as a failed attempt from `addr`.
    pub fn report_quality(
        &mut self,
        now: Instant,
        addr: IpAddr,
        id: &RoomId,
        token: &SessionToken,
        quality: Quality,
    ) -> Result<(), SignalError> {
        let member = self.token_member(now, addr, id, token)?;
        self.rooms
            .get_mut(id)
            .and_then(|r| r.members.get_mut(&member))
            .expect("token_member checked")
            .quality = Some(quality);
        self.counters.quality_reports += 1;
        Ok(())
    }

    /// The last quality reported by the member `token` belongs to.
    pub fn reported_quality(&self, id: &RoomId, token: &SessionToken) -> Option<Quality> {
        let claims = self.config.token_key.verify(token)?;
        self.rooms.get(id)?.members.get(&claims.peer)?.quality
    }

    /// The connection state of the member `token` belongs to, and the room's.
    pub fn reconnection_state(
        &mut self,
        now: Instant,
        addr: IpAddr,
        id: &RoomId,
        token: &SessionToken,
    ) -> Result<ReconnectionState, SignalError> {
        let peer = self.token_member(now, addr, id, token)?;
        let grace = self.config.grace;
        let room = self.rooms.get_mut(id).expect("token_member checked");
        room.replay.expire(now);
        let m = &room.members[&peer];
        let mut members: Vec<(PeerId, bool)> = room
            .members
            .iter()
            .map(|(p, m)| (p.clone(), m.conn.is_some()))
            .collect();
        members.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
        Ok(ReconnectionState {
            room: id.as_str().to_owned(),
            peer_id: peer.clone(),
            role: match m.role {
                Role::Host => "host",
                _ => "viewer",
            },
            connected: m.conn.is_some(),
            last_seen_ms_ago: now.saturating_duration_since(m.last_seen).as_millis() as u64,
            grace_remaining_ms: m
                .disconnected_at
                .map(|at| grace.saturating_sub(now.saturating_duration_since(at)).as_millis() as u64),
            room_seq: room.replay.last_seq(),
            last_delivered_seq: m.last_delivered,
            last_received_seq: m.last_received,
            buffered_messages: room.replay.len(),
            reconnections: m.reconnections,
            quality: m.quality,
            members,
        })
    }

    /// The member a token names, if the token is genuine and its session lives.
    fn token_member(
        &mut self,
        now: Instant,
        addr: IpAddr,
        id: &RoomId,
        token: &SessionToken,
    ) -> Result<PeerId, SignalError> {
        let claims = self.check_token(now, addr, Some(id), token)?;
        let live = self
            .rooms
            .get(id)
            .is_some_and(|r| claims.room == *id && r.nonce == claims.nonce && r.members.contains_key(&claims.peer));
        if !live {
            return Err(self.wrong_token(now, addr, None));
        }
        Ok(claims.peer)
    }
}

/// Numbers `msg` as the room's next message to `to`, keeps it for replay,
/// and writes it at once if `to` is connected.
fn post(room: &mut Room, to: &PeerId, msg: ServerMessage, now: Instant, out: &mut Outbox) {
    let Some(member) = room.members.get_mut(to) else { return };
    let seq = room.replay.push((to.clone(), msg.clone()), now);
    if let Some(conn) = member.conn {
        member.last_delivered = seq;
        out.push(Out::Send {
            to: conn,
            seq: Some(seq),
            msg,
        });
    }
}

/// [`post`]s `msg` to every admitted member but `except`.
fn broadcast(room: &mut Room, except: &PeerId, msg: ServerMessage, now: Instant, out: &mut Outbox) {
    let to: Vec<PeerId> = room
        .members
        .iter()
        .filter(|(p, m)| *p != except && !matches!(m.role, Role::Pending { .. }))
        .map(|(p, _)| p.clone())
        .collect();
    for p in to {
        post(room, &p, msg.clone(), now, out);
    }
}

fn revoke(room: &mut Room, peer: PeerId) {
    if room.revoked.len() >= MAX_REVOKED_PER_ROOM {
        room.revoked.pop_front();
    }
    room.revoked.push_back(peer);
}

fn too_many_viewers() -> SignalError {
    SignalError::new(ErrorKind::RateLimited, "this session has as many viewers as it allows")
}

fn locked_out(wait: Duration) -> SignalError {
    SignalError::new(
        ErrorKind::LockedOut,
        format!("too many wrong codes; try again in {} s", secs(wait)),
    )
    .retry_after(wait)
}

pub mod snapshot;

#[cfg(test)]
mod tests;
