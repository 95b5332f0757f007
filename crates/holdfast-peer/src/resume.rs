//! What a client must remember to resume its signalling session after the
//! socket drops, free of IO: its credentials and token, the last room
//! sequence number it received (so the server replays only what it missed,
//! and a duplicate is dropped here), and its own numbered messages not yet
//! confirmed (so they are resent once, in order, after a reconnection).
//!
//! Offers, answers, candidates and consent are numbered (`seq`). After a
//! rejoin the server says which number it took last (`reconnection-detected`)
//! and everything after it is resent. A server that was restarted knows
//! nothing; then only what was queued while disconnected (never written to a
//! socket) is sent, since what was written before the crash was most likely
//! taken, and an old offer sent twice does harm.

use std::collections::VecDeque;

use holdfast_proto::signal::{
    ClientEnvelope, ClientMessage, PasswordGate, ReplayPolicy, ServerEnvelope, ServerMessage, SignalError, Unattended,
};
use holdfast_proto::{CodeGate, RoomId, SessionToken};

/// Numbered messages kept until confirmed (older ones are dropped first).
pub const MAX_UNCONFIRMED: usize = 256;

/// Who this client is to the server.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A host: registers a room with its code's gate (then resumes it with
    /// its token, naming the gate again: it may have changed).
    /// With a permanent password, it publishes the password's parameters
    /// and gate too (unattended access).
    Host {
        gate: CodeGate,
        unattended: Option<Unattended>,
    },
    /// A viewer: joins with the code's gate (then rejoins with its token).
    Viewer { id: RoomId, gate: CodeGate },
    /// A viewer with the host's permanent password: joins with its gate.
    PasswordViewer { id: RoomId, gate: PasswordGate },
}

/// What the server said when it recognised a rejoin.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnection {
    pub disconnect_duration: f64,
    pub missed_message_count: u64,
    pub replay_complete: bool,
}

#[derive(Debug)]
pub enum Incoming {
    /// Pass this on to the role.
    Deliver(ServerMessage),
    /// Already received (a replay overlapping what arrived before the drop).
    Duplicate,
    /// The server admitted (or re-admitted) this client: `answer` is its
    /// `registered` or `joined`; write `resend` now, in order.
    Admitted {
        answer: ServerMessage,
        reconnection: Option<Reconnection>,
        resend: Vec<ClientEnvelope>,
    },
    /// Nothing for the role (a `pong`, the `reconnection-detected` preamble).
    Nothing,
    /// The server refused the hello or a message.
    Refused(SignalError),
    /// The session is over (the room closed).
    Ended(String),
}

#[derive(Debug, Clone)]
struct Unconfirmed {
    seq: u64,
    msg: ClientMessage,
    written: bool,
}

#[derive(Debug, Clone)]
pub struct ResumeState {
    credentials: Credentials,
    token: Option<SessionToken>,
    last_seq: u64,
    next_seq: u64,
    unconfirmed: VecDeque<Unconfirmed>,
    admitted: bool,
    /// Waiting for the host's check and consent on the current connection:
    /// messages to the host may be written, a refusal still ends the join.
    pending: bool,
    /// Admitted at least once by this process: a rejoin then resumes (with
    /// `last_seq`, even 0) rather than starting fresh.
    admitted_once: bool,
    reconnection: Option<(Reconnection, Option<u64>)>,
}

fn numbered(msg: &ClientMessage) -> bool {
    matches!(
        msg,
        ClientMessage::Offer { .. }
            | ClientMessage::Answer { .. }
            | ClientMessage::Candidate { .. }
            | ClientMessage::Consent { .. }
    )
}

impl ResumeState {
    pub fn new(credentials: Credentials) -> Self {
        ResumeState {
            credentials,
            token: None,
            last_seq: 0,
            next_seq: 1,
            unconfirmed: VecDeque::new(),
            admitted: false,
            pending: false,
            admitted_once: false,
            reconnection: None,
        }
    }

    /// Starts from a token obtained earlier (a viewer rejoining).
    pub fn with_token(mut self, token: SessionToken) -> Self {
        self.token = Some(token);
        self
    }

    pub fn token(&self) -> Option<&SessionToken> {
        self.token.as_ref()
    }

    /// Admitted on the current connection.
    pub fn is_admitted(&self) -> bool {
        self.admitted
    }

    /// Messages may be written on the current connection (admitted, or a
    /// pending viewer talking to its host).
    pub fn may_write(&self) -> bool {
        self.admitted || self.pending
    }

    /// Numbered messages not yet confirmed by the server.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }

    /// The first message on a new connection.
    pub fn hello(&self) -> ClientEnvelope {
        let last_seq = self.admitted_once.then_some(self.last_seq);
        let msg = match (&self.credentials, &self.token) {
            (Credentials::Host { gate, unattended }, token) => ClientMessage::Register {
                gate: gate.clone(),
                token: token.clone(),
                last_seq,
                unattended: unattended.clone(),
            },
            (Credentials::Viewer { id, .. } | Credentials::PasswordViewer { id, .. }, Some(token)) => {
                ClientMessage::Join {
                    id: id.clone(),
                    gate: None,
                    password_gate: None,
                    token: Some(token.clone()),
                    last_seq,
                }
            }
            (Credentials::Viewer { id, gate }, None) => ClientMessage::Join {
                id: id.clone(),
                gate: Some(gate.clone()),
                password_gate: None,
                token: None,
                last_seq: None,
            },
            (Credentials::PasswordViewer { id, gate }, None) => ClientMessage::Join {
                id: id.clone(),
                gate: None,
                password_gate: Some(gate.clone()),
                token: None,
                last_seq: None,
            },
        };
        ClientEnvelope::new(None, msg)
    }

    /// A message from the role: returns it numbered if it can be written
    /// now; otherwise it waits for the next admission.
    pub fn send(&mut self, msg: ClientMessage) -> Option<ClientEnvelope> {
        if let (ClientMessage::Rekey { gate }, Credentials::Host { gate: ours, .. }) = (&msg, &mut self.credentials) {
            // A later `register` names the new gate too.
            *ours = gate.clone();
        }
        let writable = self.may_write();
        if !numbered(&msg) {
            return writable.then(|| ClientEnvelope::new(None, msg));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.unconfirmed.len() >= MAX_UNCONFIRMED {
            self.unconfirmed.pop_front();
        }
        self.unconfirmed.push_back(Unconfirmed {
            seq,
            msg: msg.clone(),
            written: writable,
        });
        writable.then(|| ClientEnvelope::new(Some(seq), msg))
    }

    /// The socket is gone.
    pub fn disconnected(&mut self) {
        self.admitted = false;
        self.pending = false;
        self.reconnection = None;
    }

    pub fn on_message(&mut self, env: ServerEnvelope) -> Incoming {
        if let Some(seq) = env.seq {
            if seq <= self.last_seq {
                return Incoming::Duplicate;
            }
            self.last_seq = seq;
        }
        match env.msg {
            ServerMessage::ReconnectionDetected {
                disconnect_duration,
                missed_message_count,
                last_received,
                replay_complete,
            } => {
                let r = Reconnection {
                    disconnect_duration,
                    missed_message_count,
                    replay_complete,
                };
                self.reconnection = Some((r, last_received));
                Incoming::Nothing
            }
            ServerMessage::Registered { ref token, .. } | ServerMessage::Joined { ref token, .. } => {
                self.token = Some(token.clone());
                self.admitted = true;
                // Admitted on the connection it waited on: the same server,
                // whose numbers it already follows.
                let was_pending = std::mem::take(&mut self.pending);
                self.admitted_once = true;
                let reconnection = self.reconnection.take();
                let policy = env.msg.replay();
                let resend = match &reconnection {
                    // Away longer than the room keeps messages: what was
                    // written before the drop is too old to send late.
                    Some((r, _)) if !ReplayPolicy::resends_written(policy, r.disconnect_duration) => {
                        self.unconfirmed.retain(|u| !u.written);
                        self.unconfirmed.iter().collect::<Vec<_>>()
                    }
                    // The server says what it took: everything after it goes again.
                    Some((_, Some(last_received))) => {
                        let last = *last_received;
                        self.unconfirmed.retain(|u| u.seq > last);
                        self.unconfirmed.iter().collect::<Vec<_>>()
                    }
                    // A server without our state: only what was never written.
                    Some((_, None)) | None => {
                        self.unconfirmed.retain(|u| !u.written);
                        self.unconfirmed.iter().collect()
                    }
                }
                .into_iter()
                .map(|u| ClientEnvelope::new(Some(u.seq), u.msg.clone()))
                .collect();
                for u in self.unconfirmed.iter_mut() {
                    u.written = true;
                }
                if reconnection.is_none() && !was_pending {
                    // A fresh server numbers the room from 1 again.
                    self.last_seq = 0;
                }
                Incoming::Admitted {
                    answer: env.msg,
                    reconnection: reconnection.map(|(r, _)| r),
                    resend,
                }
            }
            ServerMessage::Error {
                code,
                message,
                retry_after_ms,
            } => Incoming::Refused(SignalError::received(code, message, retry_after_ms)),
            ServerMessage::RoomClosed { reason } => {
                self.admitted = false;
                Incoming::Ended(reason)
            }
            ServerMessage::AwaitingConsent { .. } => {
                self.pending = true;
                Incoming::Deliver(env.msg)
            }
            ServerMessage::Pong => Incoming::Nothing,
            other => Incoming::Deliver(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::signal::{ErrorKind, PeerId};

    fn token() -> SessionToken {
        SessionToken::random(&mut rand::rng())
    }

    fn gate(g: &str) -> CodeGate {
        CodeGate::parse(g).unwrap()
    }

    fn host() -> Credentials {
        Credentials::Host {
            gate: gate("ABCD"),
            unattended: None,
        }
    }

    #[test]
    fn a_host_names_its_current_gate_when_it_resumes() {
        let mut s = ResumeState::new(host());
        s.on_message(registered(&token(), false));
        assert!(s.send(ClientMessage::Rekey { gate: gate("WXYZ") }).is_some());
        s.disconnected();
        match s.hello().msg {
            ClientMessage::Register {
                gate, token: Some(_), ..
            } => assert_eq!(gate.expose(), "WXYZ"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_a_pending_viewer_received_is_not_received_again_after_a_drop() {
        let id = RoomId::parse("123456789").unwrap();
        let mut v = ResumeState::new(Credentials::Viewer { id, gate: gate("ABCD") });
        let waiting = ServerEnvelope {
            seq: None,
            msg: ServerMessage::AwaitingConsent {
                timeout_ms: 30_000,
                ice_servers: vec![],
            },
        };
        v.on_message(waiting);
        // The host's first offer arrives while pending, then the admission.
        let offer = ServerEnvelope {
            seq: Some(7),
            msg: ServerMessage::Offer {
                from: PeerId("h".into()),
                sdp: "o".into(),
                generation: 0,
                round: 0,
            },
        };
        assert!(matches!(v.on_message(offer.clone()), Incoming::Deliver(_)));
        let joined = ServerEnvelope {
            seq: None,
            msg: ServerMessage::Joined {
                id: RoomId::parse("123456789").unwrap(),
                peer_id: PeerId("v".into()),
                host: PeerId("h".into()),
                ice_servers: vec![],
                token: token(),
                control: true,
                grace_ms: None,
                replay: None,
            },
        };
        admitted(v.on_message(joined));
        // A drop: the rejoin says what it has, and a replay of the offer is a duplicate.
        v.disconnected();
        assert!(matches!(v.hello().msg, ClientMessage::Join { last_seq: Some(7), .. }));
        assert!(matches!(v.on_message(offer), Incoming::Duplicate));
    }

    #[test]
    fn a_pending_viewer_talks_to_its_host_and_a_refusal_still_ends_the_join() {
        let id = RoomId::parse("123456789").unwrap();
        let mut v = ResumeState::new(Credentials::Viewer { id, gate: gate("ABCD") });
        let answer = ClientMessage::Answer {
            to: None,
            sdp: "a".into(),
            generation: 0,
            round: 0,
        };
        assert!(
            v.send(answer.clone()).is_none(),
            "nothing before the server took the join"
        );
        let waiting = ServerEnvelope {
            seq: None,
            msg: ServerMessage::AwaitingConsent {
                timeout_ms: 30_000,
                ice_servers: vec![],
            },
        };
        assert!(matches!(
            v.on_message(waiting),
            Incoming::Deliver(ServerMessage::AwaitingConsent { .. })
        ));
        assert!(v.may_write() && !v.is_admitted());
        assert_eq!(v.send(answer).and_then(|e| e.seq), Some(2), "numbered and written");
        let failed = ServerEnvelope {
            seq: None,
            msg: SignalError::new(ErrorKind::AuthFailed, "wrong code").into(),
        };
        assert!(matches!(v.on_message(failed), Incoming::Refused(_)));
        assert!(!v.is_admitted());
    }

    fn registered(token: &SessionToken, resumed: bool) -> ServerEnvelope {
        ServerEnvelope {
            seq: None,
            msg: ServerMessage::Registered {
                id: RoomId::parse("123456789").unwrap(),
                peer_id: PeerId("h".into()),
                ice_servers: vec![],
                token: token.clone(),
                resumed,
                grace_ms: None,
                replay: Some(ReplayPolicy {
                    messages: 50,
                    ttl_ms: 60_000,
                }),
            },
        }
    }

    fn offer(n: u32) -> ClientMessage {
        ClientMessage::Offer {
            to: Some(PeerId("v".into())),
            sdp: format!("o{n}"),
            generation: 0,
            round: 0,
        }
    }

    fn sdps(envs: &[ClientEnvelope]) -> Vec<(u64, String)> {
        envs.iter()
            .map(|e| match &e.msg {
                ClientMessage::Offer { sdp, .. } => (e.seq.unwrap(), sdp.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn admitted(i: Incoming) -> (Option<Reconnection>, Vec<ClientEnvelope>) {
        match i {
            Incoming::Admitted {
                reconnection, resend, ..
            } => (reconnection, resend),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_hello_resumes_with_the_token_and_the_last_sequence() {
        let mut s = ResumeState::new(host());
        assert!(matches!(
            s.hello().msg,
            ClientMessage::Register {
                token: None,
                last_seq: None,
                ..
            }
        ));
        let t = token();
        admitted(s.on_message(registered(&t, false)));
        let env = ServerEnvelope {
            seq: Some(7),
            msg: ServerMessage::PeerLeft {
                peer_id: PeerId("v".into()),
            },
        };
        assert!(matches!(s.on_message(env), Incoming::Deliver(_)));
        match s.hello().msg {
            ClientMessage::Register {
                token: Some(x),
                last_seq: Some(7),
                ..
            } => assert!(x.matches(&t)),
            other => panic!("{other:?}"),
        }
        let id = RoomId::parse("123456789").unwrap();
        let v = ResumeState::new(Credentials::Viewer { id, gate: gate("ABCD") });
        assert!(matches!(
            v.hello().msg,
            ClientMessage::Join {
                gate: Some(_),
                token: None,
                ..
            }
        ));
        let v = v.with_token(t);
        assert!(matches!(
            v.hello().msg,
            ClientMessage::Join {
                gate: None,
                token: Some(_),
                last_seq: None,
                ..
            }
        ));
    }

    #[test]
    fn replayed_messages_already_seen_are_dropped() {
        let mut s = ResumeState::new(host());
        let left = |seq| ServerEnvelope {
            seq: Some(seq),
            msg: ServerMessage::PeerLeft {
                peer_id: PeerId("v".into()),
            },
        };
        assert!(matches!(s.on_message(left(1)), Incoming::Deliver(_)));
        assert!(matches!(s.on_message(left(2)), Incoming::Deliver(_)));
        assert!(matches!(s.on_message(left(2)), Incoming::Duplicate));
        assert!(matches!(s.on_message(left(1)), Incoming::Duplicate));
        assert!(matches!(s.on_message(left(3)), Incoming::Deliver(_)));
    }

    #[test]
    fn after_a_rejoin_what_the_server_did_not_take_is_resent_once_in_order() {
        let mut s = ResumeState::new(host());
        let t = token();
        admitted(s.on_message(registered(&t, false)));
        for n in 1..=3 {
            assert_eq!(s.send(offer(n)).unwrap().seq, Some(n as u64));
        }
        s.disconnected();
        // Queued while down: not written.
        assert!(s.send(offer(4)).is_none());
        assert!(s.send(offer(5)).is_none());
        assert!(
            s.send(ClientMessage::Ping).is_none(),
            "unnumbered messages are not queued"
        );
        let detected = ServerEnvelope {
            seq: None,
            msg: ServerMessage::ReconnectionDetected {
                disconnect_duration: 10.0,
                missed_message_count: 0,
                last_received: Some(2),
                replay_complete: true,
            },
        };
        assert!(matches!(s.on_message(detected), Incoming::Nothing));
        let (r, resend) = admitted(s.on_message(registered(&t, true)));
        assert_eq!(r.unwrap().disconnect_duration, 10.0);
        assert_eq!(
            sdps(&resend),
            vec![(3, "o3".into()), (4, "o4".into()), (5, "o5".into())],
            "3 was written but not taken; 4 and 5 were queued"
        );
        assert_eq!(s.send(offer(6)).unwrap().seq, Some(6));
    }

    #[test]
    fn after_an_absence_longer_than_the_rooms_message_lifetime_old_messages_are_not_sent_late() {
        // `registered` announces messages kept 60 s. Away 120 s: the offers
        // written before the drop are two minutes old (the replay the other
        // way is gone too); what was queued while away still goes.
        let mut s = ResumeState::new(host());
        let t = token();
        admitted(s.on_message(registered(&t, false)));
        for n in 1..=3 {
            s.send(offer(n));
        }
        s.disconnected();
        s.send(offer(4));
        let detected = |away: f64| ServerEnvelope {
            seq: None,
            msg: ServerMessage::ReconnectionDetected {
                disconnect_duration: away,
                missed_message_count: 0,
                last_received: Some(1),
                replay_complete: false,
            },
        };
        s.on_message(detected(120.0));
        let (_, resend) = admitted(s.on_message(registered(&t, true)));
        assert_eq!(sdps(&resend), vec![(4, "o4".into())]);
        // Within the lifetime the usual rule holds: everything after what was taken.
        s.disconnected();
        s.send(offer(5));
        s.on_message(detected(30.0));
        let (_, resend) = admitted(s.on_message(registered(&t, true)));
        assert_eq!(sdps(&resend), vec![(4, "o4".into()), (5, "o5".into())]);
    }

    #[test]
    fn a_restarted_server_that_expected_us_gets_only_what_was_never_written() {
        // The host of a restored room talked to us first, so the new server
        // detects a reconnection, but it cannot know what the old one took.
        let mut s = ResumeState::new(host());
        let t = token();
        admitted(s.on_message(registered(&t, false)));
        s.send(offer(1)); // taken by the old server long ago
        s.disconnected();
        s.send(offer(2));
        let detected = ServerEnvelope {
            seq: None,
            msg: ServerMessage::ReconnectionDetected {
                disconnect_duration: 12.0,
                missed_message_count: 1,
                last_received: None,
                replay_complete: true,
            },
        };
        assert!(matches!(s.on_message(detected), Incoming::Nothing));
        let (r, resend) = admitted(s.on_message(registered(&t, true)));
        assert!(r.is_some());
        assert_eq!(
            sdps(&resend),
            vec![(2, "o2".into())],
            "the old answer is not sent again"
        );
    }

    #[test]
    fn a_restarted_server_gets_only_what_was_never_written() {
        let mut s = ResumeState::new(host());
        let t = token();
        admitted(s.on_message(registered(&t, false)));
        s.send(offer(1));
        s.send(offer(2));
        s.disconnected();
        s.send(offer(3));
        let (r, resend) = admitted(s.on_message(registered(&t, true)));
        assert!(r.is_none());
        assert_eq!(sdps(&resend), vec![(3, "o3".into())]);
        // The new server numbers from 1 again: its first message is not a duplicate.
        let env = ServerEnvelope {
            seq: Some(1),
            msg: ServerMessage::PeerLeft {
                peer_id: PeerId("v".into()),
            },
        };
        assert!(matches!(s.on_message(env), Incoming::Deliver(_)));
    }

    #[test]
    fn refusals_and_endings_are_told_apart() {
        let mut s = ResumeState::new(host());
        let e = ServerEnvelope {
            seq: None,
            msg: SignalError::new(ErrorKind::SessionEnded, "over").into(),
        };
        assert!(matches!(s.on_message(e), Incoming::Refused(e) if e.kind.is_fatal()));
        let e = ServerEnvelope {
            seq: None,
            msg: SignalError::new(ErrorKind::SessionUnavailable, "wait")
                .retry_after(std::time::Duration::from_secs(1))
                .into(),
        };
        assert!(
            matches!(s.on_message(e), Incoming::Refused(e) if !e.kind.is_fatal() && e.retry_after_ms == Some(1000))
        );
        let closed = ServerEnvelope {
            seq: None,
            msg: ServerMessage::RoomClosed { reason: "bye".into() },
        };
        assert!(matches!(s.on_message(closed), Incoming::Ended(r) if r == "bye"));
    }

    #[test]
    fn unconfirmed_messages_are_bounded() {
        let mut s = ResumeState::new(host());
        for n in 0..1000 {
            s.send(offer(n));
        }
        assert_eq!(s.unconfirmed(), MAX_UNCONFIRMED);
    }
}
