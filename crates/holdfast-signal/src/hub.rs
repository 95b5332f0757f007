//! Rooms, membership and admission, free of IO: [`Hub::handle`] takes one
//! client message (and the time) and returns the messages to deliver, so the
//! rules (who may join, who may talk to whom) are tested without sockets.
//!
//! A host `register`s and owns one room. A viewer `join`s with the room's ID
//! and one-time code; a wrong code and an unknown room get the same answer,
//! so guesses learn nothing about which rooms exist, and failures are limited
//! per room and per address ([`AttemptLimiter`]). A right code makes the
//! viewer *pending*: the host gets a `join-request` and must answer with
//! `consent` within the consent timeout, or the request is refused. Admitted
//! viewers get a session token that rejoins present instead of the code.
//! Relayed messages only ever travel between the host and an admitted viewer
//! of the same room.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use holdfast_proto::signal::{
    ClientMessage, Decision, ErrorKind, IceServer, PeerId, ServerMessage, SignalError, CONSENT_TIMEOUT,
};
use holdfast_proto::{RoomCode, RoomId, SessionToken};

use holdfast_session::Quality;

use crate::access::{AttemptKey, AttemptLimiter, Failure, LimiterConfig};

/// Cap on viewers (admitted and pending) in one room (support sessions have one or two).
pub const MAX_VIEWERS_PER_ROOM: usize = 8;
/// Session tokens remembered per room (one per admitted viewer, oldest dropped).
const MAX_TOKENS_PER_ROOM: usize = 32;

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub ice_servers: Vec<IceServer>,
    pub limiter: LimiterConfig,
    pub consent_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            ice_servers: Vec::new(),
            limiter: LimiterConfig::default(),
            consent_timeout: CONSENT_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Host,
    /// Admitted; `control` says whether the host allowed input.
    Viewer {
        control: bool,
    },
    /// Right code, waiting for the host's consent until `deadline`.
    Pending {
        deadline: Instant,
    },
}

#[derive(Debug)]
struct Room {
    code: RoomCode,
    host: PeerId,
    viewers: HashSet<PeerId>,
    tokens: Vec<TokenEntry>,
}

/// An admitted viewer's session token and what goes with it.
#[derive(Debug)]
struct TokenEntry {
    token: SessionToken,
    control: bool,
    /// The last connection quality this viewer reported.
    quality: Option<Quality>,
}

#[derive(Debug, Clone)]
struct Membership {
    room: RoomId,
    role: Role,
}

/// Messages to deliver, each to one peer.
pub type Outbox = Vec<(PeerId, ServerMessage)>;

#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    rooms: HashMap<RoomId, Room>,
    members: HashMap<PeerId, Membership>,
    limiter: AttemptLimiter,
    counters: HubCounters,
}

/// Running totals for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubCounters {
    pub rooms_created: u64,
    pub joins_admitted: u64,
    pub joins_denied: u64,
    pub joins_timed_out: u64,
    pub wrong_credentials: u64,
    pub lockouts: u64,
    pub relayed: u64,
}

fn err(to: &PeerId, e: SignalError) -> Outbox {
    vec![(to.clone(), e.into())]
}

fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        Hub {
            limiter: AttemptLimiter::new(config.limiter),
            config,
            rooms: HashMap::new(),
            members: HashMap::new(),
            counters: HubCounters::default(),
        }
    }

    pub fn counters(&self) -> HubCounters {
        self.counters
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Records a quality report from the holder of `token` in room `id`.
    /// Unknown room and wrong token are one answer, and both count as a
    /// failed attempt from `addr` (so tokens cannot be guessed here either).
    pub fn report_quality(
        &mut self,
        now: Instant,
        addr: IpAddr,
        id: &RoomId,
        token: &SessionToken,
        quality: Quality,
    ) -> Result<(), SignalError> {
        let key = AttemptKey::Addr(addr);
        if let Err(wait) = self.limiter.check(&key, now) {
            return Err(locked_out(wait));
        }
        let entry = self
            .rooms
            .get_mut(id)
            .and_then(|r| r.tokens.iter_mut().find(|e| e.token.matches(token)));
        match entry {
            Some(e) => {
                e.quality = Some(quality);
                Ok(())
            }
            None => match self.limiter.fail(&key, now) {
                Failure::LockedOut(d) => Err(locked_out(d)),
                Failure::Remaining(_) => Err(SignalError::new(
                    ErrorKind::InvalidCredentials,
                    "invalid room or session token",
                )),
            },
        }
    }

    /// The last quality reported with `token` in room `id` (for tests and state queries).
    pub fn reported_quality(&self, id: &RoomId, token: &SessionToken) -> Option<Quality> {
        self.rooms
            .get(id)?
            .tokens
            .iter()
            .find(|e| e.token.matches(token))?
            .quality
    }

    /// Keys the attempt limiter currently tracks.
    pub fn tracked_attempt_keys(&self) -> usize {
        self.limiter.tracked()
    }

    pub fn handle(&mut self, now: Instant, from: &PeerId, addr: IpAddr, msg: ClientMessage) -> Outbox {
        match msg {
            ClientMessage::Register => self.register(from),
            ClientMessage::Join { id, code, token } => self.join(now, from, addr, id, code, token),
            ClientMessage::Consent { peer, decision } => self.consent(from, peer, decision),
            ClientMessage::Offer { to, sdp } => self.relay(from, to, |f| ServerMessage::Offer { from: f, sdp }),
            ClientMessage::Answer { to, sdp } => self.relay(from, to, |f| ServerMessage::Answer { from: f, sdp }),
            ClientMessage::Candidate { to, candidate } => {
                self.relay(from, to, |f| ServerMessage::Candidate { from: f, candidate })
            }
            ClientMessage::Leave => self.leave(from),
            ClientMessage::Ping => vec![(from.clone(), ServerMessage::Pong)],
        }
    }

    /// The peer's socket closed: same as leaving.
    pub fn disconnect(&mut self, peer: &PeerId) -> Outbox {
        self.leave(peer)
    }

    /// Time-driven work: join requests the host left unanswered are refused,
    /// and the attempt limiter forgets idle keys.
    pub fn poll(&mut self, now: Instant) -> Outbox {
        let expired: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(_, m)| matches!(m.role, Role::Pending { deadline } if deadline <= now))
            .map(|(p, _)| p.clone())
            .collect();
        let mut out = Vec::new();
        self.counters.joins_timed_out += expired.len() as u64;
        for peer in expired {
            let m = self.members.remove(&peer).expect("listed above");
            if let Some(room) = self.rooms.get_mut(&m.room) {
                room.viewers.remove(&peer);
                out.push((room.host.clone(), ServerMessage::PeerLeft { peer_id: peer.clone() }));
            }
            out.push((
                peer,
                SignalError::new(
                    ErrorKind::ConsentTimeout,
                    "the host did not answer your request to join in time",
                )
                .into(),
            ));
        }
        self.limiter.purge(now);
        out
    }

    fn register(&mut self, from: &PeerId) -> Outbox {
        if self.members.contains_key(from) {
            return err(
                from,
                SignalError::new(ErrorKind::AlreadyInRoom, "this connection is already in a room"),
            );
        }
        let mut rng = rand::rng();
        let id = loop {
            let id = RoomId::random(&mut rng);
            if !self.rooms.contains_key(&id) {
                break id;
            }
        };
        let code = RoomCode::random(&mut rng);
        self.counters.rooms_created += 1;
        self.rooms.insert(
            id.clone(),
            Room {
                code: code.clone(),
                host: from.clone(),
                viewers: HashSet::new(),
                tokens: Vec::new(),
            },
        );
        self.members.insert(
            from.clone(),
            Membership {
                room: id.clone(),
                role: Role::Host,
            },
        );
        vec![(
            from.clone(),
            ServerMessage::Registered {
                id,
                code,
                peer_id: from.clone(),
                ice_servers: self.config.ice_servers.clone(),
            },
        )]
    }

    fn join(
        &mut self,
        now: Instant,
        from: &PeerId,
        addr: IpAddr,
        id: RoomId,
        code: Option<RoomCode>,
        token: Option<SessionToken>,
    ) -> Outbox {
        if self.members.contains_key(from) {
            return err(
                from,
                SignalError::new(ErrorKind::AlreadyInRoom, "this connection is already in a room"),
            );
        }
        let keys = [AttemptKey::Addr(addr), AttemptKey::Room(id.clone())];
        let locked = keys.iter().filter_map(|k| self.limiter.check(k, now).err()).max();
        if let Some(wait) = locked {
            return err(from, locked_out(wait));
        }
        // Which grant the credentials prove: None for wrong ones. Unknown room
        // and wrong code take the same path, so they get the same answer.
        let grant = self.rooms.get(&id).and_then(|room| match (&code, &token) {
            (Some(c), _) if room.code.matches(c) => Some(None),
            (_, Some(t)) => room.tokens.iter().find(|e| e.token.matches(t)).map(|e| Some(e.control)),
            _ => None,
        });
        let Some(grant) = grant else {
            self.counters.wrong_credentials += 1;
            let mut remaining = u32::MAX;
            let mut lockout = None;
            for k in &keys {
                match self.limiter.fail(k, now) {
                    Failure::Remaining(n) => remaining = remaining.min(n),
                    Failure::LockedOut(d) => lockout = Some(d),
                }
            }
            if let Some(d) = lockout {
                self.counters.lockouts += 1;
                return err(from, locked_out(d));
            }
            let what = if token.is_some() { "session token" } else { "code" };
            return err(
                from,
                SignalError::new(
                    ErrorKind::InvalidCredentials,
                    format!("invalid ID or {what} ({remaining} attempts left before a lockout)"),
                ),
            );
        };
        self.limiter.succeed(&keys[0]);
        let room = self.rooms.get_mut(&id).expect("credentials matched a room");
        if room.viewers.len() >= MAX_VIEWERS_PER_ROOM {
            return err(
                from,
                SignalError::new(ErrorKind::RateLimited, "this session has as many viewers as it allows"),
            );
        }
        room.viewers.insert(from.clone());
        let host = room.host.clone();
        match grant {
            // A valid token: consent was given before; admit at once.
            Some(control) => {
                let token = token.expect("a token grant comes from a token");
                self.members.insert(
                    from.clone(),
                    Membership {
                        room: id.clone(),
                        role: Role::Viewer { control },
                    },
                );
                self.admitted(from, &id, host, token, control)
            }
            None => {
                let deadline = now + self.config.consent_timeout;
                self.members.insert(
                    from.clone(),
                    Membership {
                        room: id,
                        role: Role::Pending { deadline },
                    },
                );
                let timeout_ms = self.config.consent_timeout.as_millis() as u64;
                vec![
                    (from.clone(), ServerMessage::AwaitingConsent { timeout_ms }),
                    (
                        host,
                        ServerMessage::JoinRequest {
                            peer_id: from.clone(),
                            address: addr.to_string(),
                            timeout_ms,
                        },
                    ),
                ]
            }
        }
    }

    fn admitted(&mut self, viewer: &PeerId, id: &RoomId, host: PeerId, token: SessionToken, control: bool) -> Outbox {
        self.counters.joins_admitted += 1;
        vec![
            (
                viewer.clone(),
                ServerMessage::Joined {
                    id: id.clone(),
                    peer_id: viewer.clone(),
                    host: host.clone(),
                    ice_servers: self.config.ice_servers.clone(),
                    token,
                    control,
                },
            ),
            (
                host,
                ServerMessage::PeerJoined {
                    peer_id: viewer.clone(),
                    control,
                },
            ),
        ]
    }

    fn consent(&mut self, from: &PeerId, peer: PeerId, decision: Decision) -> Outbox {
        let host_room = match self.members.get(from) {
            Some(Membership { room, role: Role::Host }) => room.clone(),
            _ => {
                return err(
                    from,
                    SignalError::new(ErrorKind::NotInRoom, "only a host answers join requests"),
                )
            }
        };
        let pending = matches!(
            self.members.get(&peer),
            Some(Membership { room, role: Role::Pending { .. } }) if *room == host_room
        );
        if !pending {
            return err(
                from,
                SignalError::new(ErrorKind::UnknownPeer, "no such request to join (it may have expired)"),
            );
        }
        let control = match decision {
            Decision::Control => true,
            Decision::View => false,
            Decision::Deny => {
                self.counters.joins_denied += 1;
                self.members.remove(&peer);
                if let Some(room) = self.rooms.get_mut(&host_room) {
                    room.viewers.remove(&peer);
                }
                return err(
                    &peer,
                    SignalError::new(ErrorKind::ConsentDenied, "the host declined your request to join"),
                );
            }
        };
        let token = SessionToken::random(&mut rand::rng());
        let room = self.rooms.get_mut(&host_room).expect("host's room exists");
        if room.tokens.len() >= MAX_TOKENS_PER_ROOM {
            room.tokens.remove(0);
        }
        room.tokens.push(TokenEntry {
            token: token.clone(),
            control,
            quality: None,
        });
        self.members.get_mut(&peer).expect("pending member").role = Role::Viewer { control };
        self.admitted(&peer, &host_room, from.clone(), token, control)
    }

    fn relay(&mut self, from: &PeerId, to: Option<PeerId>, make: impl FnOnce(PeerId) -> ServerMessage) -> Outbox {
        let not_in_room = || SignalError::new(ErrorKind::NotInRoom, "join or register a room first");
        let Some(m) = self.members.get(from) else {
            return err(from, not_in_room());
        };
        let room = &self.rooms[&m.room];
        let admitted = |p: &PeerId| {
            matches!(
                self.members.get(p),
                Some(Membership {
                    role: Role::Viewer { .. },
                    ..
                })
            )
        };
        let target = match (m.role, to) {
            (Role::Pending { .. }, _) => {
                return err(
                    from,
                    SignalError::new(ErrorKind::NotInRoom, "waiting for the host's consent"),
                )
            }
            (Role::Viewer { .. }, None) => room.host.clone(),
            (Role::Viewer { .. }, Some(t)) if t == room.host => t,
            (Role::Host, Some(t)) if room.viewers.contains(&t) && admitted(&t) => t,
            (Role::Host, None) => {
                return err(
                    from,
                    SignalError::new(ErrorKind::BadMessage, "a host must say `to` which viewer"),
                )
            }
            (_, Some(_)) => {
                return err(
                    from,
                    SignalError::new(ErrorKind::UnknownPeer, "no such peer in your room"),
                )
            }
        };
        self.counters.relayed += 1;
        vec![(target, make(from.clone()))]
    }

    fn leave(&mut self, from: &PeerId) -> Outbox {
        let Some(m) = self.members.remove(from) else {
            return Vec::new();
        };
        match m.role {
            Role::Host => {
                // The room, its code and its tokens end with the host.
                let room = self.rooms.remove(&m.room).expect("member's room exists");
                room.viewers
                    .into_iter()
                    .map(|v| {
                        self.members.remove(&v);
                        (
                            v,
                            ServerMessage::RoomClosed {
                                reason: "the host ended the session".into(),
                            },
                        )
                    })
                    .collect()
            }
            Role::Viewer { .. } | Role::Pending { .. } => {
                let room = self.rooms.get_mut(&m.room).expect("member's room exists");
                room.viewers.remove(from);
                vec![(room.host.clone(), ServerMessage::PeerLeft { peer_id: from.clone() })]
            }
        }
    }
}

fn locked_out(wait: Duration) -> SignalError {
    SignalError::new(
        ErrorKind::LockedOut,
        format!("too many wrong codes; try again in {} s", secs(wait)),
    )
    .retry_after(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PeerId {
        PeerId(s.into())
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    struct T {
        hub: Hub,
        now: Instant,
    }

    impl T {
        fn new() -> Self {
            T {
                hub: Hub::new(HubConfig::default()),
                now: Instant::now(),
            }
        }
        fn send(&mut self, from: &str, addr: IpAddr, msg: ClientMessage) -> Outbox {
            self.hub.handle(self.now, &p(from), addr, msg)
        }
        fn register(&mut self, host: &str) -> (RoomId, RoomCode) {
            match self.send(host, ip(1), ClientMessage::Register).remove(0).1 {
                ServerMessage::Registered { id, code, .. } => (id, code),
                other => panic!("{other:?}"),
            }
        }
        fn join_code(&mut self, viewer: &str, addr: IpAddr, id: &RoomId, code: &RoomCode) -> Outbox {
            let msg = ClientMessage::Join {
                id: id.clone(),
                code: Some(code.clone()),
                token: None,
            };
            self.send(viewer, addr, msg)
        }
        fn consent(&mut self, host: &str, viewer: &str, decision: Decision) -> Outbox {
            self.send(
                host,
                ip(1),
                ClientMessage::Consent {
                    peer: p(viewer),
                    decision,
                },
            )
        }
        /// Joins with the code and has the host allow control; returns the token.
        fn admit(&mut self, host: &str, viewer: &str, id: &RoomId, code: &RoomCode) -> SessionToken {
            self.join_code(viewer, ip(2), id, code);
            match self.consent(host, viewer, Decision::Control).remove(0).1 {
                ServerMessage::Joined { token, .. } => token,
                other => panic!("{other:?}"),
            }
        }
    }

    fn error_kind(out: &Outbox) -> ErrorKind {
        match &out[..] {
            [(_, ServerMessage::Error { code, .. })] => *code,
            other => panic!("expected one error, got {other:?}"),
        }
    }

    fn wrong_code() -> RoomCode {
        RoomCode::parse("0000000000").unwrap()
    }

    #[test]
    fn right_code_asks_the_host_and_consent_admits_with_a_token() {
        let mut t = T::new();
        let (id, code) = t.register("h");
        let out = t.join_code("v", ip(2), &id, &code);
        assert!(matches!(&out[0], (to, ServerMessage::AwaitingConsent { timeout_ms: 30_000 }) if *to == p("v")));
        assert!(
            matches!(&out[1], (to, ServerMessage::JoinRequest { peer_id, address, .. }) if *to == p("h") && *peer_id == p("v") && address == "10.0.0.2")
        );
        // Nothing is relayed before consent, either way.
        let offer = ClientMessage::Offer {
            to: None,
            sdp: "x".into(),
        };
        assert_eq!(error_kind(&t.send("v", ip(2), offer)), ErrorKind::NotInRoom);
        let offer = ClientMessage::Offer {
            to: Some(p("v")),
            sdp: "x".into(),
        };
        assert_eq!(error_kind(&t.send("h", ip(1), offer)), ErrorKind::UnknownPeer);

        let out = t.consent("h", "v", Decision::View);
        assert!(matches!(&out[0], (to, ServerMessage::Joined { control: false, .. }) if *to == p("v")));
        assert!(
            matches!(&out[1], (to, ServerMessage::PeerJoined { peer_id, control: false }) if *to == p("h") && *peer_id == p("v"))
        );
        let offer = ClientMessage::Offer {
            to: Some(p("v")),
            sdp: "x".into(),
        };
        assert!(matches!(&t.send("h", ip(1), offer)[..], [(to, ServerMessage::Offer { .. })] if *to == p("v")));
    }

    #[test]
    fn denied_or_unanswered_requests_are_refused_clearly() {
        let mut t = T::new();
        let (id, code) = t.register("h");
        t.join_code("v1", ip(2), &id, &code);
        let out = t.consent("h", "v1", Decision::Deny);
        assert!(
            matches!(&out[..], [(to, ServerMessage::Error { code: ErrorKind::ConsentDenied, .. })] if *to == p("v1"))
        );
        assert_eq!(t.hub.member_count(), 1, "a refused viewer holds no place");

        t.join_code("v2", ip(3), &id, &code);
        t.now += Duration::from_secs(29);
        assert!(t.hub.poll(t.now).is_empty(), "still within the 30 s");
        t.now += Duration::from_secs(1);
        let out = t.hub.poll(t.now);
        assert!(out.iter().any(|(to, m)| *to == p("v2")
            && matches!(
                m,
                ServerMessage::Error {
                    code: ErrorKind::ConsentTimeout,
                    ..
                }
            )));
        assert!(out
            .iter()
            .any(|(to, m)| *to == p("h") && matches!(m, ServerMessage::PeerLeft { .. })));
        assert_eq!(t.hub.member_count(), 1);
        // A late answer finds nothing to admit.
        assert_eq!(
            error_kind(&t.consent("h", "v2", Decision::Control)),
            ErrorKind::UnknownPeer
        );
        // Only the room's host answers.
        t.join_code("v3", ip(4), &id, &code);
        assert_eq!(
            error_kind(&t.consent("v3", "v3", Decision::Control)),
            ErrorKind::NotInRoom
        );
    }

    #[test]
    fn wrong_code_and_unknown_room_are_indistinguishable() {
        let mut t = T::new();
        let (id, _) = t.register("h");
        let wrong = t.join_code("v", ip(2), &id, &wrong_code());
        let unknown = t.join_code("v", ip(3), &RoomId::parse("999999999").unwrap(), &wrong_code());
        assert_eq!(format!("{:?}", wrong[0].1), format!("{:?}", unknown[0].1));
        assert_eq!(error_kind(&wrong), ErrorKind::InvalidCredentials);
        assert_eq!(t.hub.member_count(), 1, "a refused join changes nothing");
    }

    #[test]
    fn five_wrong_codes_lock_an_address_out_even_for_the_right_code_until_expiry() {
        let mut t = T::new();
        let (id, code) = t.register("h");
        for left in (1..5).rev() {
            let out = t.join_code("v", ip(2), &id, &wrong_code());
            match &out[0].1 {
                ServerMessage::Error { code, message, .. } => {
                    assert_eq!(*code, ErrorKind::InvalidCredentials);
                    assert!(message.contains(&format!("{left} attempts left")), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
        let out = t.join_code("v", ip(2), &id, &wrong_code());
        assert!(matches!(
            &out[0].1,
            ServerMessage::Error {
                code: ErrorKind::LockedOut,
                retry_after_ms: Some(60_000),
                ..
            }
        ));
        t.now += Duration::from_secs(30);
        let out = t.join_code("v", ip(2), &id, &code);
        assert!(matches!(
            &out[0].1,
            ServerMessage::Error {
                code: ErrorKind::LockedOut,
                retry_after_ms: Some(30_000),
                ..
            }
        ));
        // Another address is not locked by this one's guesses (the room is not yet: 5 failures, all from one address).
        // After the lockout the right code works.
        t.now += Duration::from_secs(31);
        let out = t.join_code("v", ip(2), &id, &code);
        assert!(matches!(&out[0].1, ServerMessage::AwaitingConsent { .. }), "{out:?}");
    }

    #[test]
    fn guesses_from_many_addresses_lock_the_room() {
        let mut t = T::new();
        let (id, code) = t.register("h");
        for n in 10..15 {
            t.join_code("v", ip(n), &id, &wrong_code());
        }
        let out = t.join_code("v", ip(99), &id, &code);
        assert_eq!(error_kind(&out), ErrorKind::LockedOut);
        // Other rooms are unaffected.
        let (id2, code2) = t.register("h2");
        let out = t.join_code("v", ip(99), &id2, &code2);
        assert!(matches!(&out[0].1, ServerMessage::AwaitingConsent { .. }));
    }

    #[test]
    fn a_token_rejoins_without_consent_only_in_its_room_and_only_while_it_lives() {
        let mut t = T::new();
        let (id, code) = t.register("h");
        let (id2, _) = t.register("h2");
        let token = t.admit("h", "v", &id, &code);
        t.hub.disconnect(&p("v"));
        let rejoin = |id: &RoomId| ClientMessage::Join {
            id: id.clone(),
            code: None,
            token: Some(token.clone()),
        };
        let out = t.send("v-again", ip(2), rejoin(&id));
        assert!(
            matches!(&out[0].1, ServerMessage::Joined { control: true, .. }),
            "{out:?}"
        );
        assert!(matches!(&out[1], (to, ServerMessage::PeerJoined { .. }) if *to == p("h")));
        // Bound to its room.
        assert_eq!(
            error_kind(&t.send("w", ip(2), rejoin(&id2))),
            ErrorKind::InvalidCredentials
        );
        // Dead with the session.
        t.hub.disconnect(&p("h"));
        assert_eq!(
            error_kind(&t.send("x", ip(2), rejoin(&id))),
            ErrorKind::InvalidCredentials
        );
    }

    #[test]
    fn relays_only_within_a_room() {
        let mut t = T::new();
        let (id1, code1) = t.register("h1");
        let (id2, code2) = t.register("h2");
        t.admit("h1", "v1", &id1, &code1);
        t.admit("h2", "v2", &id2, &code2);
        let out = t.send(
            "v1",
            ip(2),
            ClientMessage::Answer {
                to: None,
                sdp: "x".into(),
            },
        );
        assert!(matches!(&out[..], [(to, ServerMessage::Answer { from, .. })] if *to == p("h1") && *from == p("v1")));
        let out = t.send(
            "h1",
            ip(1),
            ClientMessage::Offer {
                to: Some(p("v2")),
                sdp: "x".into(),
            },
        );
        assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
        let out = t.send(
            "v1",
            ip(2),
            ClientMessage::Offer {
                to: Some(p("h2")),
                sdp: "x".into(),
            },
        );
        assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
        let out = t.send(
            "x",
            ip(3),
            ClientMessage::Offer {
                to: Some(p("v1")),
                sdp: "x".into(),
            },
        );
        assert_eq!(error_kind(&out), ErrorKind::NotInRoom);
    }

    #[test]
    fn host_leaving_closes_the_room_and_frees_everything() {
        let mut t = T::new();
        let (id, code) = t.register("h");
        t.admit("h", "v", &id, &code);
        let out = t.hub.disconnect(&p("h"));
        assert!(matches!(&out[..], [(to, ServerMessage::RoomClosed { .. })] if *to == p("v")));
        assert_eq!((t.hub.room_count(), t.hub.member_count()), (0, 0));
        let out = t.join_code("v2", ip(5), &id, &code);
        assert_eq!(
            error_kind(&out),
            ErrorKind::InvalidCredentials,
            "the code ends with the session"
        );
    }

    #[test]
    fn cannot_register_or_join_twice() {
        let mut t = T::new();
        let (id, code) = t.register("h");
        assert_eq!(
            error_kind(&t.send("h", ip(1), ClientMessage::Register)),
            ErrorKind::AlreadyInRoom
        );
        assert_eq!(
            error_kind(&t.join_code("h", ip(1), &id, &code)),
            ErrorKind::AlreadyInRoom
        );
    }

    #[test]
    fn many_rooms_come_and_go_without_leaking() {
        let mut t = T::new();
        for i in 0..1000u32 {
            let h = format!("h{i}");
            let (id, code) = t.register(&h);
            t.admit(&h, &format!("v{i}"), &id, &code);
            t.join_code(
                &format!("w{i}"),
                IpAddr::from([10, 1, (i / 256) as u8, i as u8]),
                &id,
                &wrong_code(),
            );
            t.hub.disconnect(&p(&format!("v{i}")));
            t.hub.disconnect(&p(&h));
        }
        assert_eq!((t.hub.room_count(), t.hub.member_count()), (0, 0));
        t.now += crate::access::MAX_LOCKOUT + Duration::from_secs(1);
        t.hub.poll(t.now);
        assert_eq!(t.hub.tracked_attempt_keys(), 0);
    }
}
