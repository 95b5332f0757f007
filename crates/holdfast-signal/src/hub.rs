//! Rooms and membership, free of IO: [`Hub::handle`] takes one client message
//! and returns the messages to deliver, so the rules (who may join, who may
//! talk to whom) are tested without sockets.
//!
//! A host `register`s and owns one room. A viewer `join`s with the room's ID
//! and one-time code; a wrong code and an unknown room get the same answer,
//! so guesses learn nothing about which rooms exist. Relayed messages only
//! ever travel between the host and a viewer of the same room.

use std::collections::{HashMap, HashSet};

use holdfast_proto::signal::{ClientMessage, ErrorKind, IceServer, PeerId, ServerMessage, SignalError};
use holdfast_proto::{RoomCode, RoomId};

/// Cap on viewers in one room (support sessions have one or two).
pub const MAX_VIEWERS_PER_ROOM: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Host,
    Viewer,
}

#[derive(Debug)]
struct Room {
    code: RoomCode,
    host: PeerId,
    viewers: HashSet<PeerId>,
}

#[derive(Debug, Clone)]
struct Membership {
    room: RoomId,
    role: Role,
}

/// Messages to deliver, each to one peer.
pub type Outbox = Vec<(PeerId, ServerMessage)>;

#[derive(Debug, Default)]
pub struct Hub {
    rooms: HashMap<RoomId, Room>,
    members: HashMap<PeerId, Membership>,
    ice_servers: Vec<IceServer>,
}

fn err(to: &PeerId, kind: ErrorKind, message: &str) -> Outbox {
    vec![(to.clone(), SignalError::new(kind, message).into())]
}

impl Hub {
    pub fn new(ice_servers: Vec<IceServer>) -> Self {
        Hub {
            ice_servers,
            ..Default::default()
        }
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    pub fn handle(&mut self, from: &PeerId, msg: ClientMessage) -> Outbox {
        match msg {
            ClientMessage::Register => self.register(from),
            ClientMessage::Join { id, code } => self.join(from, id, code),
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

    fn register(&mut self, from: &PeerId) -> Outbox {
        if self.members.contains_key(from) {
            return err(from, ErrorKind::AlreadyInRoom, "this connection is already in a room");
        }
        let mut rng = rand::rng();
        let id = loop {
            let id = RoomId::random(&mut rng);
            if !self.rooms.contains_key(&id) {
                break id;
            }
        };
        let code = RoomCode::random(&mut rng);
        self.rooms.insert(
            id.clone(),
            Room {
                code: code.clone(),
                host: from.clone(),
                viewers: HashSet::new(),
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
                ice_servers: self.ice_servers.clone(),
            },
        )]
    }

    fn join(&mut self, from: &PeerId, id: RoomId, code: RoomCode) -> Outbox {
        if self.members.contains_key(from) {
            return err(from, ErrorKind::AlreadyInRoom, "this connection is already in a room");
        }
        // Unknown room and wrong code: one answer, so nothing is learnt.
        let Some(room) = self.rooms.get_mut(&id).filter(|r| r.code.matches(&code)) else {
            return err(from, ErrorKind::InvalidCredentials, "invalid ID or code");
        };
        if room.viewers.len() >= MAX_VIEWERS_PER_ROOM {
            return err(
                from,
                ErrorKind::RateLimited,
                "this session has as many viewers as it allows",
            );
        }
        room.viewers.insert(from.clone());
        let host = room.host.clone();
        self.members.insert(
            from.clone(),
            Membership {
                room: id.clone(),
                role: Role::Viewer,
            },
        );
        vec![
            (
                from.clone(),
                ServerMessage::Joined {
                    id,
                    peer_id: from.clone(),
                    host: host.clone(),
                    ice_servers: self.ice_servers.clone(),
                },
            ),
            (host, ServerMessage::PeerJoined { peer_id: from.clone() }),
        ]
    }

    fn relay(&mut self, from: &PeerId, to: Option<PeerId>, make: impl FnOnce(PeerId) -> ServerMessage) -> Outbox {
        let Some(m) = self.members.get(from) else {
            return err(from, ErrorKind::NotInRoom, "join or register a room first");
        };
        let room = &self.rooms[&m.room];
        let target = match (m.role, to) {
            (Role::Viewer, None) => room.host.clone(),
            (Role::Viewer, Some(t)) if t == room.host => t,
            (Role::Host, Some(t)) if room.viewers.contains(&t) => t,
            (Role::Host, None) => return err(from, ErrorKind::BadMessage, "a host must say `to` which viewer"),
            (_, Some(_)) => return err(from, ErrorKind::UnknownPeer, "no such peer in your room"),
        };
        vec![(target, make(from.clone()))]
    }

    fn leave(&mut self, from: &PeerId) -> Outbox {
        let Some(m) = self.members.remove(from) else {
            return Vec::new();
        };
        match m.role {
            Role::Host => {
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
            Role::Viewer => {
                let room = self.rooms.get_mut(&m.room).expect("member's room exists");
                room.viewers.remove(from);
                vec![(room.host.clone(), ServerMessage::PeerLeft { peer_id: from.clone() })]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PeerId {
        PeerId(s.into())
    }

    fn registered(hub: &mut Hub, host: &PeerId) -> (RoomId, RoomCode) {
        match hub.handle(host, ClientMessage::Register).remove(0).1 {
            ServerMessage::Registered { id, code, .. } => (id, code),
            other => panic!("{other:?}"),
        }
    }

    fn error_kind(out: &Outbox) -> ErrorKind {
        match &out[..] {
            [(_, ServerMessage::Error { code, .. })] => *code,
            other => panic!("expected one error, got {other:?}"),
        }
    }

    #[test]
    fn viewer_joins_with_the_right_code_and_the_host_is_told() {
        let mut hub = Hub::new(vec![]);
        let (id, code) = registered(&mut hub, &p("h"));
        let out = hub.handle(&p("v"), ClientMessage::Join { id, code });
        assert!(matches!(out[0], (ref to, ServerMessage::Joined { .. }) if *to == p("v")));
        assert!(
            matches!(out[1], (ref to, ServerMessage::PeerJoined { ref peer_id }) if *to == p("h") && *peer_id == p("v"))
        );
    }

    #[test]
    fn wrong_code_and_unknown_room_are_indistinguishable() {
        let mut hub = Hub::new(vec![]);
        let (id, _) = registered(&mut hub, &p("h"));
        let wrong = hub.handle(
            &p("v"),
            ClientMessage::Join {
                id,
                code: RoomCode::parse("0000000000").unwrap(),
            },
        );
        let unknown = hub.handle(
            &p("v"),
            ClientMessage::Join {
                id: RoomId::parse("999999999").unwrap(),
                code: RoomCode::parse("0000000000").unwrap(),
            },
        );
        assert_eq!(format!("{:?}", wrong[0].1), format!("{:?}", unknown[0].1));
        assert_eq!(error_kind(&wrong), ErrorKind::InvalidCredentials);
        assert_eq!(hub.member_count(), 1, "a refused join changes nothing");
    }

    #[test]
    fn relays_only_within_a_room() {
        let mut hub = Hub::new(vec![]);
        let (id1, code1) = registered(&mut hub, &p("h1"));
        let (id2, code2) = registered(&mut hub, &p("h2"));
        hub.handle(&p("v1"), ClientMessage::Join { id: id1, code: code1 });
        hub.handle(&p("v2"), ClientMessage::Join { id: id2, code: code2 });
        // Viewer to its own host.
        let out = hub.handle(
            &p("v1"),
            ClientMessage::Answer {
                to: None,
                sdp: "x".into(),
            },
        );
        assert!(matches!(&out[..], [(to, ServerMessage::Answer { from, .. })] if *to == p("h1") && *from == p("v1")));
        // Host 1 to a viewer of room 2: refused.
        let out = hub.handle(
            &p("h1"),
            ClientMessage::Offer {
                to: Some(p("v2")),
                sdp: "x".into(),
            },
        );
        assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
        // Viewer 1 addressing host 2: refused.
        let out = hub.handle(
            &p("v1"),
            ClientMessage::Offer {
                to: Some(p("h2")),
                sdp: "x".into(),
            },
        );
        assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
        // A stranger: not in a room.
        let out = hub.handle(
            &p("x"),
            ClientMessage::Offer {
                to: Some(p("v1")),
                sdp: "x".into(),
            },
        );
        assert_eq!(error_kind(&out), ErrorKind::NotInRoom);
    }

    #[test]
    fn host_leaving_closes_the_room_and_frees_everything() {
        let mut hub = Hub::new(vec![]);
        let (id, code) = registered(&mut hub, &p("h"));
        hub.handle(
            &p("v"),
            ClientMessage::Join {
                id: id.clone(),
                code: code.clone(),
            },
        );
        let out = hub.disconnect(&p("h"));
        assert!(matches!(&out[..], [(to, ServerMessage::RoomClosed { .. })] if *to == p("v")));
        assert_eq!((hub.room_count(), hub.member_count()), (0, 0));
        // The code no longer works.
        let out = hub.handle(&p("v2"), ClientMessage::Join { id, code });
        assert_eq!(error_kind(&out), ErrorKind::InvalidCredentials);
    }

    #[test]
    fn cannot_register_or_join_twice() {
        let mut hub = Hub::new(vec![]);
        let (id, code) = registered(&mut hub, &p("h"));
        assert_eq!(
            error_kind(&hub.handle(&p("h"), ClientMessage::Register)),
            ErrorKind::AlreadyInRoom
        );
        assert_eq!(
            error_kind(&hub.handle(&p("h"), ClientMessage::Join { id, code })),
            ErrorKind::AlreadyInRoom
        );
    }

    #[test]
    fn many_rooms_come_and_go_without_leaking() {
        let mut hub = Hub::new(vec![]);
        for i in 0..1000 {
            let h = p(&format!("h{i}"));
            let (id, code) = registered(&mut hub, &h);
            hub.handle(&p(&format!("v{i}")), ClientMessage::Join { id, code });
            hub.disconnect(&p(&format!("v{i}")));
            hub.disconnect(&h);
        }
        assert_eq!((hub.room_count(), hub.member_count()), (0, 0));
    }
}
