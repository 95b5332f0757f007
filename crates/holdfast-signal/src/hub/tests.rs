//! The hub's rules, driven with explicit time: admission, relay, and state
//! recovery (grace window, replay, signed tokens across a restart).

use super::*;
use holdfast_proto::signal::IceCandidate;
use holdfast_session::Metrics;

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

/// A hub with named connections.
struct T {
    hub: Hub,
    now: Instant,
    conns: HashMap<String, ConnId>,
}

impl T {
    fn new() -> Self {
        T::with(HubConfig::default())
    }
    fn with(config: HubConfig) -> Self {
        T {
            hub: Hub::new(config),
            now: Instant::now(),
            conns: HashMap::new(),
        }
    }
    fn c(&mut self, name: &str) -> ConnId {
        let next = ConnId(self.conns.len() as u64 + 1);
        *self.conns.entry(name.to_owned()).or_insert(next)
    }
    fn send_seq(
        &mut self,
        from: &str,
        addr: IpAddr,
        seq: Option<u64>,
        msg: ClientMessage,
    ) -> Vec<(String, Option<u64>, ServerMessage)> {
        let conn = self.c(from);
        let out = self.hub.handle(self.now, conn, addr, ClientEnvelope::new(seq, msg));
        self.named(out)
    }
    fn send(&mut self, from: &str, addr: IpAddr, msg: ClientMessage) -> Vec<(String, Option<u64>, ServerMessage)> {
        self.send_seq(from, addr, None, msg)
    }
    fn named(&self, out: Outbox) -> Vec<(String, Option<u64>, ServerMessage)> {
        let name = |c: ConnId| {
            self.conns
                .iter()
                .find(|(_, v)| **v == c)
                .map(|(k, _)| k.clone())
                .unwrap()
        };
        out.into_iter()
            .map(|o| match o {
                Out::Send { to, seq, msg } => (name(to), seq, msg),
                Out::Close(c) => (name(c), None, ServerMessage::Pong),
            })
            .collect()
    }
    fn disconnect(&mut self, name: &str) -> Vec<(String, Option<u64>, ServerMessage)> {
        let conn = self.c(name);
        let out = self.hub.disconnect(self.now, conn);
        self.named(out)
    }
    fn poll(&mut self) -> Vec<(String, Option<u64>, ServerMessage)> {
        let out = self.hub.poll(self.now);
        self.named(out)
    }
    /// Registers with a code's gate; returns (id, gate, host peer ID, host token).
    fn register(&mut self, host: &str) -> (RoomId, CodeGate, PeerId, SessionToken) {
        let code = gate();
        let msg = ClientMessage::Register {
            gate: code.clone(),
            token: None,
            last_seq: None,
            unattended: None,
        };
        match self.send(host, ip(1), msg).remove(0).2 {
            ServerMessage::Registered {
                id,
                peer_id,
                token,
                resumed: false,
                ..
            } => (id, code, peer_id, token),
            other => panic!("{other:?}"),
        }
    }
    fn join_code(
        &mut self,
        viewer: &str,
        addr: IpAddr,
        id: &RoomId,
        code: &CodeGate,
    ) -> Vec<(String, Option<u64>, ServerMessage)> {
        let msg = ClientMessage::Join {
            id: id.clone(),
            gate: Some(code.clone()),
            password_gate: None,
            token: None,
            last_seq: None,
        };
        self.send(viewer, addr, msg)
    }
    fn join_token(
        &mut self,
        viewer: &str,
        id: &RoomId,
        token: &SessionToken,
        last_seq: Option<u64>,
    ) -> Vec<(String, Option<u64>, ServerMessage)> {
        let msg = ClientMessage::Join {
            id: id.clone(),
            gate: None,
            password_gate: None,
            token: Some(token.clone()),
            last_seq,
        };
        self.send(viewer, ip(2), msg)
    }
    fn consent(
        &mut self,
        host: &str,
        viewer: &PeerId,
        decision: Decision,
    ) -> Vec<(String, Option<u64>, ServerMessage)> {
        self.send(
            host,
            ip(1),
            ClientMessage::Consent {
                peer: viewer.clone(),
                decision,
            },
        )
    }
    /// The viewer peer ID a join request announced.
    fn requested(out: &[(String, Option<u64>, ServerMessage)]) -> PeerId {
        out.iter()
            .find_map(|(_, _, m)| match m {
                ServerMessage::JoinRequest { peer_id, .. } => Some(peer_id.clone()),
                _ => None,
            })
            .expect("a join request")
    }
    /// Joins with the code and has the host allow control; returns (peer, token).
    fn admit(&mut self, host: &str, viewer: &str, id: &RoomId, code: &CodeGate) -> (PeerId, SessionToken) {
        let out = self.join_code(viewer, ip(2), id, code);
        let peer = Self::requested(&out);
        match self.consent(host, &peer, Decision::Control).remove(0).2 {
            ServerMessage::Joined { token, .. } => (peer, token),
            other => panic!("{other:?}"),
        }
    }
    fn offer(
        &mut self,
        from: &str,
        seq: Option<u64>,
        to: Option<&PeerId>,
        sdp: &str,
    ) -> Vec<(String, Option<u64>, ServerMessage)> {
        let msg = ClientMessage::Offer {
            to: to.cloned(),
            sdp: sdp.into(),
            generation: 0,
            round: 0,
        };
        self.send_seq(from, ip(1), seq, msg)
    }
}

fn error_kind(out: &[(String, Option<u64>, ServerMessage)]) -> ErrorKind {
    match out {
        [(_, None, ServerMessage::Error { code, .. })] => *code,
        other => panic!("expected one error, got {other:?}"),
    }
}

/// A random code's gate, never [`wrong_code`].
fn gate() -> CodeGate {
    loop {
        let g = holdfast_proto::RoomCode::random(&mut rand::rng()).gate();
        if g.expose() != "0000" {
            return g;
        }
    }
}

fn wrong_code() -> CodeGate {
    CodeGate::parse("0000").unwrap()
}

fn sdp_of(m: &ServerMessage) -> &str {
    match m {
        ServerMessage::Offer { sdp, .. } | ServerMessage::Answer { sdp, .. } => sdp,
        other => panic!("{other:?}"),
    }
}

#[test]
fn right_code_asks_the_host_and_consent_admits_with_a_token() {
    let mut t = T::new();
    let (id, code, host, _) = t.register("h");
    let out = t.join_code("v", ip(2), &id, &code);
    assert!(matches!(&out[0], (to, None, ServerMessage::AwaitingConsent { timeout_ms: 30_000, .. }) if to == "v"));
    assert!(
        matches!(&out[1], (to, Some(1), ServerMessage::JoinRequest { address, .. }) if to == "h" && address == "10.0.0.2"),
        "room messages are numbered: {out:?}"
    );
    let viewer = T::requested(&out);
    // Before consent, host and pending viewer talk (the host checks the code
    // over that connection), and only to each other.
    let out = t.offer("h", None, Some(&viewer), "x");
    assert!(
        matches!(&out[..], [(to, Some(2), ServerMessage::Offer { .. })] if to == "v"),
        "{out:?}"
    );
    let out = t.send(
        "v",
        ip(2),
        ClientMessage::Answer {
            to: None,
            sdp: "y".into(),
            generation: 1,
            round: 2,
        },
    );
    // Relayed as it came: which connection, and which offer it answers.
    assert!(
        matches!(&out[..], [(to, Some(3), ServerMessage::Answer { from, generation: 1, round: 2, .. })] if to == "h" && *from == viewer),
        "{out:?}"
    );
    let other = T::requested(&t.join_code("w", ip(3), &id, &code));
    let to_other = ClientMessage::Offer {
        to: Some(other.clone()),
        sdp: "z".into(),
        generation: 0,
        round: 0,
    };
    assert_eq!(
        error_kind(&t.send("v", ip(2), to_other)),
        ErrorKind::UnknownPeer,
        "a pending viewer reaches only the host"
    );
    // Nor may it report quality or answer for the host.
    assert_eq!(
        error_kind(&t.send(
            "v",
            ip(2),
            ClientMessage::Consent {
                peer: viewer.clone(),
                decision: Decision::Control
            }
        )),
        ErrorKind::NotInRoom
    );

    let out = t.consent("h", &viewer, Decision::View);
    assert!(
        matches!(&out[0], (to, None, ServerMessage::Joined { control: false, host: h, .. }) if to == "v" && *h == host)
    );
    assert!(
        matches!(&out[1], (to, Some(_), ServerMessage::PeerJoined { peer_id, control: false, fresh: false }) if to == "h" && *peer_id == viewer)
    );
    let out = t.offer("h", None, Some(&viewer), "x");
    assert!(matches!(&out[..], [(to, Some(_), ServerMessage::Offer { .. })] if to == "v"));
}

#[test]
fn a_failed_check_turns_the_viewer_away_and_counts_as_a_wrong_code() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let addr = ip(7);
    for n in 0..4 {
        let v = T::requested(&t.join_code(&format!("v{n}"), addr, &id, &code));
        let out = t.send(
            "h",
            ip(1),
            ClientMessage::AuthFailed {
                peer: v.clone(),
                reason: AuthFailure::WrongCode,
            },
        );
        assert!(
            matches!(&out[..], [(to, None, ServerMessage::Error { code: ErrorKind::AuthFailed, message, .. }), (_, None, ServerMessage::Pong)] if *to == format!("v{n}") && message == "wrong code"),
            "{out:?}"
        );
        assert_eq!(t.hub.member_count(), 1, "no place held");
        // Its session is over: nothing more is relayed for it.
        assert_eq!(error_kind(&t.offer("h", None, Some(&v), "x")), ErrorKind::UnknownPeer);
    }
    // The fifth failed check from that address locks it out, as five wrong gates would.
    let v = T::requested(&t.join_code("v5", addr, &id, &code));
    let out = t.send(
        "h",
        ip(1),
        ClientMessage::AuthFailed {
            peer: v,
            reason: AuthFailure::WrongCode,
        },
    );
    assert!(
        matches!(
            &out[0].2,
            ServerMessage::Error {
                code: ErrorKind::LockedOut,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(error_kind(&t.join_code("v6", addr, &id, &code)), ErrorKind::LockedOut);
    assert_eq!(
        error_kind(&t.join_code("v7", ip(9), &id, &code)),
        ErrorKind::LockedOut,
        "the room too"
    );
    // The host makes up a new code: the room opens again, the address stays locked.
    let code = gate();
    t.send("h", ip(1), ClientMessage::Rekey { gate: code.clone() });
    assert_eq!(error_kind(&t.join_code("v8", addr, &id, &code)), ErrorKind::LockedOut);
    // Only the host reports failures, and only about pending viewers.
    let w = T::requested(&t.join_code("w", ip(8), &id, &code));
    let out = t.send(
        "w",
        ip(8),
        ClientMessage::AuthFailed {
            peer: w.clone(),
            reason: AuthFailure::WrongCode,
        },
    );
    assert_eq!(error_kind(&out), ErrorKind::NotInRoom);
    t.consent("h", &w, Decision::View);
    let out = t.send(
        "h",
        ip(1),
        ClientMessage::AuthFailed {
            peer: w,
            reason: AuthFailure::WrongCode,
        },
    );
    assert_eq!(
        error_kind(&out),
        ErrorKind::UnknownPeer,
        "an admitted viewer is kicked, not failed"
    );
}

#[test]
fn a_new_gate_from_the_host_replaces_the_old_one() {
    let mut t = T::new();
    let (id, old, _, _) = t.register("h");
    let new = gate();
    assert!(t
        .send("h", ip(1), ClientMessage::Rekey { gate: new.clone() })
        .is_empty());
    if !new.matches(&old) {
        assert_eq!(
            error_kind(&t.join_code("v", ip(2), &id, &old)),
            ErrorKind::InvalidCredentials
        );
    }
    let out = t.join_code("v2", ip(3), &id, &new);
    assert!(matches!(&out[0].2, ServerMessage::AwaitingConsent { .. }), "{out:?}");
    // Only a host changes its gate.
    assert_eq!(
        error_kind(&t.send("v2", ip(3), ClientMessage::Rekey { gate: old })),
        ErrorKind::NotInRoom
    );
}

#[test]
fn denied_or_unanswered_requests_are_refused_clearly() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let v1 = T::requested(&t.join_code("v1", ip(2), &id, &code));
    let out = t.consent("h", &v1, Decision::Deny);
    assert!(
        matches!(&out[..], [(to, None, ServerMessage::Error { code: ErrorKind::ConsentDenied, .. })] if to == "v1")
    );
    assert_eq!(t.hub.member_count(), 1, "a refused viewer holds no place");

    let v2 = T::requested(&t.join_code("v2", ip(3), &id, &code));
    t.now += Duration::from_secs(29);
    assert!(t.poll().is_empty(), "still within the 30 s");
    t.now += Duration::from_secs(1);
    let out = t.poll();
    assert!(out.iter().any(|(to, _, m)| to == "v2"
        && matches!(
            m,
            ServerMessage::Error {
                code: ErrorKind::ConsentTimeout,
                ..
            }
        )));
    assert!(out
        .iter()
        .any(|(to, _, m)| to == "h" && matches!(m, ServerMessage::PeerLeft { .. })));
    assert_eq!(t.hub.member_count(), 1);
    // A late answer finds nothing to admit.
    assert_eq!(
        error_kind(&t.consent("h", &v2, Decision::Control)),
        ErrorKind::UnknownPeer
    );
    // Only the room's host answers.
    let v3 = T::requested(&t.join_code("v3", ip(4), &id, &code));
    assert_eq!(
        error_kind(&t.consent("v3", &v3, Decision::Control)),
        ErrorKind::NotInRoom
    );
}

#[test]
fn wrong_code_and_unknown_room_are_indistinguishable() {
    let mut t = T::new();
    let (id, _, _, _) = t.register("h");
    let wrong = t.join_code("v", ip(2), &id, &wrong_code());
    let unknown = t.join_code("w", ip(3), &RoomId::parse("999999999").unwrap(), &wrong_code());
    assert_eq!(format!("{:?}", wrong[0].2), format!("{:?}", unknown[0].2));
    assert_eq!(error_kind(&wrong), ErrorKind::InvalidCredentials);
    assert_eq!(t.hub.member_count(), 1, "a refused join changes nothing");
}

#[test]
fn five_wrong_codes_lock_an_address_out_even_for_the_right_code_until_expiry() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    for left in (1..5).rev() {
        let out = t.join_code("v", ip(2), &id, &wrong_code());
        match &out[0].2 {
            ServerMessage::Error { code, message, .. } => {
                assert_eq!(*code, ErrorKind::InvalidCredentials);
                assert!(message.contains(&format!("{left} attempts left")), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    let out = t.join_code("v", ip(2), &id, &wrong_code());
    assert!(matches!(
        &out[0].2,
        ServerMessage::Error {
            code: ErrorKind::LockedOut,
            retry_after_ms: Some(60_000),
            ..
        }
    ));
    t.now += Duration::from_secs(30);
    let out = t.join_code("v", ip(2), &id, &code);
    assert!(matches!(
        &out[0].2,
        ServerMessage::Error {
            code: ErrorKind::LockedOut,
            retry_after_ms: Some(30_000),
            ..
        }
    ));
    t.now += Duration::from_secs(31);
    let out = t.join_code("v", ip(2), &id, &code);
    assert!(matches!(&out[0].2, ServerMessage::AwaitingConsent { .. }), "{out:?}");
}

#[test]
fn guesses_from_many_addresses_lock_the_room() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    for n in 10..15 {
        t.join_code(&format!("g{n}"), ip(n), &id, &wrong_code());
    }
    let out = t.join_code("v", ip(99), &id, &code);
    assert_eq!(error_kind(&out), ErrorKind::LockedOut);
    // Other rooms are unaffected.
    let (id2, code2, _, _) = t.register("h2");
    let out = t.join_code("v2", ip(99), &id2, &code2);
    assert!(matches!(&out[0].2, ServerMessage::AwaitingConsent { .. }));
}

#[test]
fn forged_tokens_fail_like_wrong_codes() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let (_, token) = t.admit("h", "v", &id, &code);
    let forged = TokenKey::random().sign(&Claims {
        room: id.clone(),
        nonce: 1,
        peer: PeerId("pX".into()),
        grant: Grant::Viewer { control: true },
    });
    assert_eq!(
        error_kind(&t.join_token("f", &id, &forged, None)),
        ErrorKind::InvalidCredentials
    );
    // A viewer token is not a host token.
    let out = t.send(
        "f2",
        ip(2),
        ClientMessage::Register {
            gate: code.clone(),
            token: Some(token.clone()),
            last_seq: None,
            unattended: None,
        },
    );
    assert_eq!(error_kind(&out), ErrorKind::InvalidCredentials);
    // Bound to its room.
    let (id2, _, _, _) = t.register("h2");
    assert_eq!(
        error_kind(&t.join_token("f3", &id2, &token, None)),
        ErrorKind::InvalidCredentials
    );
}

#[test]
fn a_viewer_back_within_the_grace_window_gets_what_it_missed_in_order_once() {
    let mut t = T::new();
    let (id, code, host, _) = t.register("h");
    let (viewer, token) = t.admit("h", "v", &id, &code);
    // Delivered while connected: seq 3 (1 was the join request, 2 peer-joined to the host).
    let out = t.offer("h", Some(1), Some(&viewer), "o1");
    assert!(matches!(&out[..], [(to, Some(3), _)] if to == "v"));

    let out = t.disconnect("v");
    assert!(
        matches!(&out[..], [(to, Some(4), ServerMessage::PeerState { connected: false, grace_ms: Some(300_000), .. })] if to == "h"),
        "{out:?}"
    );
    assert_eq!(t.hub.member_count(), 2, "the viewer keeps its place");
    t.now += Duration::from_secs(12);
    // The host goes on talking; nothing is delivered, all is kept.
    for (n, sdp) in ["o2", "o3", "o4"].iter().enumerate() {
        assert!(t.offer("h", Some(2 + n as u64), Some(&viewer), sdp).is_empty());
    }
    // The host's duplicate (a resend of seq 4) is dropped.
    assert!(t.offer("h", Some(4), Some(&viewer), "o4-again").is_empty());
    assert_eq!(t.hub.counters().duplicates_dropped, 1);

    let out = t.join_token("v2", &id, &token, Some(3));
    match &out[0] {
        (
            to,
            None,
            ServerMessage::ReconnectionDetected {
                disconnect_duration,
                missed_message_count: 3,
                replay_complete: true,
                ..
            },
        ) if to == "v2" => assert!((disconnect_duration - 12.0).abs() < 1e-6),
        other => panic!("first comes reconnection-detected: {other:?}"),
    }
    assert!(matches!(&out[1], (_, None, ServerMessage::Joined { control: true, peer_id, .. }) if *peer_id == viewer));
    let replayed: Vec<(u64, &str)> = out[2..5].iter().map(|(_, s, m)| (s.unwrap(), sdp_of(m))).collect();
    assert_eq!(replayed, vec![(5, "o2"), (6, "o3"), (7, "o4")]);
    assert!(matches!(&out[5], (to, Some(8), ServerMessage::PeerState { connected: true, .. }) if to == "h"));
    assert_eq!(out.len(), 6);
    // The host sees the same peer ID: no new consent, no new peer.
    assert!(!out
        .iter()
        .any(|(_, _, m)| matches!(m, ServerMessage::JoinRequest { .. } | ServerMessage::PeerJoined { .. })));
    // Rejoining again (say the client missed nothing) replays nothing twice.
    t.disconnect("v2");
    let out = t.join_token("v3", &id, &token, Some(7));
    assert!(matches!(
        &out[0].2,
        ServerMessage::ReconnectionDetected {
            missed_message_count: 0,
            ..
        }
    ));
    let state = t.hub.reconnection_state(t.now, ip(2), &id, &token).unwrap();
    assert_eq!(
        (state.connected, state.reconnections, state.last_delivered_seq),
        (true, 2, 7)
    );
    assert_eq!(state.members.iter().filter(|(_, c)| *c).count(), 2);
    // A new process with the old token (no `last_seq`): nothing replayed, and
    // the host is told the viewer needs a new connection.
    t.disconnect("v3");
    t.offer("h", Some(9), Some(&viewer), "o5");
    let out = t.join_token("v4", &id, &token, None);
    assert!(matches!(
        &out[0].2,
        ServerMessage::ReconnectionDetected {
            missed_message_count: 0,
            ..
        }
    ));
    assert!(out
        .iter()
        .any(|(to, _, m)| to == "h" && matches!(m, ServerMessage::PeerJoined { fresh: true, .. })));
    assert!(!out
        .iter()
        .any(|(to, _, m)| to == "v4" && matches!(m, ServerMessage::Offer { .. })));
    // Its numbering starts over, and its first message is taken.
    let answer = ClientMessage::Answer {
        to: None,
        sdp: "a".into(),
        generation: 1,
        round: 0,
    };
    assert_eq!(t.send_seq("v4", ip(2), Some(1), answer).len(), 1);
    let _ = host;
}

#[test]
fn a_new_viewer_is_not_a_reconnection() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let out = t.join_code("v", ip(2), &id, &code);
    assert!(!out
        .iter()
        .any(|(_, _, m)| matches!(m, ServerMessage::ReconnectionDetected { .. })));
    let peer = T::requested(&out);
    let out = t.consent("h", &peer, Decision::Control);
    assert!(!out
        .iter()
        .any(|(_, _, m)| matches!(m, ServerMessage::ReconnectionDetected { .. })));
    assert_eq!(t.hub.counters().reconnections, 0);
}

#[test]
fn messages_a_client_resends_after_a_drop_arrive_once() {
    let mut t = T::new();
    let (id, code, host, _) = t.register("h");
    let (_viewer, token) = t.admit("h", "v", &id, &code);
    let answer = |sdp: &str| ClientMessage::Answer {
        to: None,
        sdp: sdp.into(),
        generation: 0,
        round: 0,
    };
    assert_eq!(t.send_seq("v", ip(2), Some(1), answer("a1")).len(), 1);
    assert_eq!(t.send_seq("v", ip(2), Some(2), answer("a2")).len(), 1);
    t.disconnect("v");
    let out = t.join_token("v2", &id, &token, Some(0));
    // The client learns the server took up to 2, and resends only 3.
    assert!(matches!(
        &out[0].2,
        ServerMessage::ReconnectionDetected {
            last_received: Some(2),
            ..
        }
    ));
    assert!(t.send_seq("v2", ip(2), Some(2), answer("a2")).is_empty());
    let out = t.send_seq("v2", ip(2), Some(3), answer("a3"));
    assert!(
        matches!(&out[..], [(to, Some(_), ServerMessage::Answer { from: _, sdp, .. })] if to == "h" && sdp == "a3")
    );
    let _ = host;
}

#[test]
fn the_host_survives_a_drop_and_gets_the_join_requests_it_missed() {
    let mut t = T::new();
    let (id, code, host, host_token) = t.register("h");
    let out = t.disconnect("h");
    assert!(out.is_empty(), "no viewers to tell");
    t.now += Duration::from_secs(20);
    // A viewer with the right code knocks while the host is away.
    let out = t.join_code("v", ip(2), &id, &code);
    assert_eq!(out.len(), 1, "the request is kept, not delivered: {out:?}");
    let out = t.send(
        "h2",
        ip(1),
        ClientMessage::Register {
            gate: code.clone(),
            token: Some(host_token),
            last_seq: Some(0),
            unattended: None,
        },
    );
    assert!(matches!(
        &out[0].2,
        ServerMessage::ReconnectionDetected {
            missed_message_count: 1,
            ..
        }
    ));
    assert!(
        matches!(&out[1].2, ServerMessage::Registered { id: i, peer_id, resumed: true, .. } if *i == id && *peer_id == host),
        "same ID"
    );
    assert!(matches!(&out[2], (to, Some(1), ServerMessage::JoinRequest { .. }) if to == "h2"));
}

#[test]
fn past_the_grace_window_a_viewer_is_gone_and_its_token_refused() {
    let mut t = T::with(HubConfig {
        grace: Duration::from_secs(10),
        ..HubConfig::default()
    });
    let (id, code, _, _) = t.register("h");
    let (viewer, token) = t.admit("h", "v", &id, &code);
    t.disconnect("v");
    t.now += Duration::from_secs(9);
    assert!(t.poll().is_empty());
    t.now += Duration::from_secs(1);
    let out = t.poll();
    assert!(
        matches!(&out[..], [(to, Some(_), ServerMessage::PeerLeft { peer_id })] if to == "h" && *peer_id == viewer)
    );
    assert_eq!(t.hub.member_count(), 1);
    assert_eq!(
        error_kind(&t.join_token("v2", &id, &token, None)),
        ErrorKind::SessionEnded
    );
    assert_eq!(t.hub.counters().reconnections_failed, 1);
    assert_eq!(t.hub.counters().grace_expired, 1);
}

#[test]
fn past_the_grace_window_a_host_takes_its_room_code_and_tokens_with_it() {
    let mut t = T::with(HubConfig {
        grace: Duration::from_secs(10),
        ..HubConfig::default()
    });
    let (id, code, _, host_token) = t.register("h");
    let (_, token) = t.admit("h", "v", &id, &code);
    let out = t.disconnect("h");
    assert!(matches!(&out[..], [(to, Some(_), ServerMessage::PeerState { connected: false, .. })] if to == "v"));
    t.now += Duration::from_secs(10);
    let out = t.poll();
    match &out[..] {
        [(to, None, ServerMessage::RoomClosed { reason })] if to == "v" => {
            assert!(reason.contains("did not come back within 10 s"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (t.hub.room_count(), t.hub.member_count(), t.hub.buffered_count()),
        (0, 0, 0)
    );
    assert_eq!(
        error_kind(&t.join_token("v2", &id, &token, None)),
        ErrorKind::SessionEnded
    );
    assert_eq!(
        error_kind(&t.join_code("v3", ip(3), &id, &code)),
        ErrorKind::InvalidCredentials
    );
    let out = t.send(
        "h2",
        ip(1),
        ClientMessage::Register {
            gate: code.clone(),
            token: Some(host_token),
            last_seq: None,
            unattended: None,
        },
    );
    assert_eq!(error_kind(&out), ErrorKind::SessionEnded);
}

#[test]
fn a_restarted_server_takes_the_room_back_from_its_host_and_readmits_its_viewer() {
    let key = TokenKey::random();
    let config = || HubConfig {
        token_key: key.clone(),
        ..HubConfig::default()
    };
    let mut before = T::with(config());
    let (id, code, host, host_token) = before.register("h");
    let (viewer, token) = before.admit("h", "v", &id, &code);

    let mut t = T::with(config()); // the restart: nothing remembered but the key
                                   // The viewer is quicker than the host: told to wait, not refused.
    let out = t.join_token("v1", &id, &token, Some(3));
    match &out[..] {
        [(
            _,
            None,
            ServerMessage::Error {
                code: ErrorKind::SessionUnavailable,
                retry_after_ms: Some(_),
                ..
            },
        )] => {}
        other => panic!("{other:?}"),
    }
    let out = t.send(
        "h1",
        ip(1),
        ClientMessage::Register {
            gate: code.clone(),
            token: Some(host_token),
            last_seq: Some(3),
            unattended: None,
        },
    );
    assert!(
        matches!(&out[..], [(_, None, ServerMessage::Registered { id: i, peer_id, resumed: true, .. })] if *i == id && *peer_id == host),
        "{out:?}"
    );
    let out = t.join_token("v2", &id, &token, Some(3));
    assert!(
        matches!(&out[0], (to, None, ServerMessage::Joined { peer_id, control: true, .. }) if to == "v2" && *peer_id == viewer)
    );
    assert!(
        matches!(&out[1], (to, Some(1), ServerMessage::PeerJoined { peer_id, .. }) if to == "h1" && *peer_id == viewer),
        "no consent asked: {out:?}"
    );
    assert_eq!(t.hub.counters().rooms_restored, 1);
    // The session goes on.
    let out = t.offer("h1", Some(1), Some(&viewer), "restart");
    assert!(matches!(&out[..], [(to, Some(2), _)] if to == "v2"));
}

#[test]
fn after_a_restart_what_the_host_sends_a_viewer_not_back_yet_waits_for_it() {
    let key = TokenKey::random();
    let mut before = T::with(HubConfig {
        token_key: key.clone(),
        ..HubConfig::default()
    });
    let (id, code, _, host_token) = before.register("h");
    let (viewer, token) = before.admit("h", "v", &id, &code);
    let old_last = 5; // what the viewer had seen from the old server
                      // The restarted server numbers above anything the old one could have used.
    let mut t = T::with(HubConfig {
        token_key: key,
        seq_base: 1_000,
        ..HubConfig::default()
    });
    let out = t.send(
        "h1",
        ip(1),
        ClientMessage::Register {
            gate: code.clone(),
            token: Some(host_token),
            last_seq: Some(4),
            unattended: None,
        },
    );
    assert!(
        matches!(&out[..], [(_, None, ServerMessage::Registered { resumed: true, .. })]),
        "{out:?}"
    );
    // The host's queued ICE restart, sent before the viewer is back: kept for it.
    assert!(t.offer("h1", Some(1), Some(&viewer), "restart-1").is_empty());
    assert!(t.offer("h1", Some(2), Some(&viewer), "restart-2").is_empty());
    assert!(
        t.offer("h1", Some(2), Some(&viewer), "restart-2 again").is_empty(),
        "a resend is dropped"
    );
    let out = t.join_token("v1", &id, &token, Some(old_last));
    assert!(
        // It cannot know what the viewer sent the old server: no `last_received`.
        matches!(
            &out[0],
            (
                _,
                None,
                ServerMessage::ReconnectionDetected {
                    missed_message_count: 2,
                    last_received: None,
                    ..
                }
            )
        ),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], (_, None, ServerMessage::Joined { control: true, .. })),
        "the token's grant, not a guess"
    );
    let replayed: Vec<(u64, &str)> = out[2..4].iter().map(|(_, s, m)| (s.unwrap(), sdp_of(m))).collect();
    assert_eq!(replayed, vec![(1_001, "restart-1"), (1_002, "restart-2")]);
    assert!(replayed.iter().all(|(seq, _)| *seq > old_last));
    // The session goes on, numbered above the replay.
    let out = t.offer("h1", Some(3), Some(&viewer), "next");
    assert!(
        matches!(&out[..], [(to, Some(seq), _)] if to == "v1" && *seq > 1_002),
        "{out:?}"
    );
}

#[test]
fn in_a_restored_room_a_viewer_that_never_returns_is_gone_after_the_grace_window() {
    let key = TokenKey::random();
    let mut before = T::with(HubConfig {
        token_key: key.clone(),
        ..HubConfig::default()
    });
    let (_, _, _, host_token) = before.register("h");
    let mut t = T::with(HubConfig {
        token_key: key,
        ..HubConfig::default()
    });
    t.send(
        "h1",
        ip(1),
        ClientMessage::Register {
            gate: gate(),
            token: Some(host_token),
            last_seq: None,
            unattended: None,
        },
    );
    // A peer that never comes back (or a made-up one: the host is trusted with
    // its own room, up to its viewer limit) is held only for the grace window.
    let ghost = PeerId("p0123456789abcdef".into());
    assert!(t.offer("h1", Some(1), Some(&ghost), "o").is_empty());
    assert_eq!(t.hub.member_count(), 2);
    t.now += GRACE_PERIOD + Duration::from_secs(1);
    let out = t.poll();
    assert!(
        out.iter()
            .any(|(to, _, m)| to == "h1" && matches!(m, ServerMessage::PeerLeft { peer_id } if *peer_id == ghost)),
        "{out:?}"
    );
    assert_eq!(t.hub.member_count(), 1);
    // Not again: it is revoked now.
    let out = t.offer("h1", Some(2), Some(&ghost), "o");
    assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
}

#[test]
fn a_half_open_connection_is_superseded_by_the_resume() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let (_, token) = t.admit("h", "v", &id, &code);
    // No disconnect noticed: the viewer just comes back on a new socket.
    let out = t.join_token("v2", &id, &token, None);
    assert!(matches!(&out[0], (to, None, ServerMessage::Error { code: ErrorKind::Superseded, .. }) if to == "v"));
    assert!(
        matches!(&out[1], (to, None, ServerMessage::Pong) if to == "v"),
        "then closed"
    );
    assert!(matches!(&out[2].2, ServerMessage::ReconnectionDetected { .. }));
    // The old connection no longer speaks for the viewer.
    assert_eq!(error_kind(&t.offer("v", None, None, "x")), ErrorKind::NotInRoom);
    assert!(t.disconnect("v").is_empty(), "its close changes nothing");
}

#[test]
fn replay_keeps_the_last_fifty_and_says_when_older_ones_are_gone() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let (viewer, token) = t.admit("h", "v", &id, &code);
    t.disconnect("v");
    for n in 1..=60u64 {
        t.offer("h", Some(n), Some(&viewer), &format!("o{n}"));
    }
    let out = t.join_token("v2", &id, &token, Some(2));
    assert!(matches!(
        &out[0].2,
        ServerMessage::ReconnectionDetected {
            replay_complete: false,
            ..
        }
    ));
    let sdps: Vec<&str> = out
        .iter()
        .filter(|(_, s, _)| s.is_some())
        .filter(|(to, _, _)| to == "v2")
        .map(|(_, _, m)| sdp_of(m))
        .collect();
    // 50 kept in all (seqs 14-63): the host's peer-state (3) and the first ten offers are gone.
    assert_eq!(sdps.len(), 50);
    assert_eq!(sdps.first(), Some(&"o11"));
    assert_eq!(sdps.last(), Some(&"o60"));
}

#[test]
fn relays_only_within_a_room() {
    let mut t = T::new();
    let (id1, code1, h1, _) = t.register("h1");
    let (id2, code2, h2, _) = t.register("h2");
    t.admit("h1", "v1", &id1, &code1);
    let (v2, _) = t.admit("h2", "v2", &id2, &code2);
    let cand = ClientMessage::Candidate {
        to: None,
        candidate: IceCandidate {
            candidate: "candidate:x".into(),
            sdp_mid: None,
            sdp_mline_index: None,
            username_fragment: None,
        },
        generation: 0,
    };
    let out = t.send("v1", ip(2), cand);
    assert!(matches!(&out[..], [(to, Some(_), ServerMessage::Candidate { .. })] if to == "h1"));
    assert_eq!(error_kind(&t.offer("h1", None, Some(&v2), "x")), ErrorKind::UnknownPeer);
    assert_eq!(error_kind(&t.offer("v1", None, Some(&h2), "x")), ErrorKind::UnknownPeer);
    assert_eq!(error_kind(&t.offer("x", None, Some(&h1), "x")), ErrorKind::NotInRoom);
}

#[test]
fn host_leaving_closes_the_room_and_frees_everything() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let (_, token) = t.admit("h", "v", &id, &code);
    let out = t.send("h", ip(1), ClientMessage::Leave);
    assert!(matches!(&out[..], [(to, None, ServerMessage::RoomClosed { .. })] if to == "v"));
    assert_eq!((t.hub.room_count(), t.hub.member_count()), (0, 0));
    assert_eq!(
        error_kind(&t.join_code("v2", ip(5), &id, &code)),
        ErrorKind::InvalidCredentials,
        "the code ends with the session"
    );
    assert_eq!(
        error_kind(&t.join_token("v3", &id, &token, None)),
        ErrorKind::SessionEnded
    );
}

#[test]
fn a_viewer_that_leaves_ends_its_own_session_only() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let (viewer, token) = t.admit("h", "v", &id, &code);
    let out = t.send("v", ip(2), ClientMessage::Leave);
    assert!(
        matches!(&out[..], [(to, Some(_), ServerMessage::PeerLeft { peer_id })] if to == "h" && *peer_id == viewer)
    );
    assert_eq!(
        error_kind(&t.join_token("v2", &id, &token, None)),
        ErrorKind::SessionEnded
    );
    assert!(matches!(
        &t.join_code("v3", ip(3), &id, &code)[0].2,
        ServerMessage::AwaitingConsent { .. }
    ));
}

#[test]
fn cannot_register_or_join_twice() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let again = ClientMessage::Register {
        gate: code.clone(),
        token: None,
        last_seq: None,
        unattended: None,
    };
    assert_eq!(error_kind(&t.send("h", ip(1), again)), ErrorKind::AlreadyInRoom);
    assert_eq!(
        error_kind(&t.join_code("h", ip(1), &id, &code)),
        ErrorKind::AlreadyInRoom
    );
}

#[test]
fn many_rooms_come_and_go_without_leaking() {
    let mut t = T::with(HubConfig {
        grace: Duration::from_secs(300),
        caps: Caps {
            rooms_per_addr: 1000,
            rooms_total: 1000,
        },
        ..HubConfig::default()
    });
    for i in 0..1000u32 {
        let h = format!("h{i}");
        let (id, code, _, _) = t.register(&h);
        let (viewer, _) = t.admit(&h, &format!("v{i}"), &id, &code);
        t.offer(&h, Some(1), Some(&viewer), "x");
        t.join_code(
            &format!("w{i}"),
            IpAddr::from([10, 1, (i / 256) as u8, i as u8]),
            &id,
            &wrong_code(),
        );
        // Half the rooms end by dropping (grace), half by leaving.
        t.disconnect(&format!("v{i}"));
        if i % 2 == 0 {
            t.disconnect(&h);
        } else {
            t.send(&h, ip(1), ClientMessage::Leave);
        }
    }
    assert_eq!(t.hub.room_count(), 500, "dropped rooms wait out their grace window");
    t.now += Duration::from_secs(300);
    t.poll();
    assert_eq!(
        (t.hub.room_count(), t.hub.member_count(), t.hub.buffered_count()),
        (0, 0, 0)
    );
    t.now += crate::access::MAX_LOCKOUT + ENDED_MEMORY;
    t.poll();
    assert_eq!(t.hub.tracked_attempt_keys(), 0);
    assert_eq!(t.hub.footprint(), 0);
}

#[test]
fn quality_reports_over_the_socket_land_on_the_measured_link() {
    let mut t = T::new();
    let (id, code, host_peer, _) = t.register("host");
    let (viewer, token) = t.admit("host", "viewer", &id, &code);
    let metrics = |latency_ms: f64, packet_loss_percent: f64| Metrics {
        latency_ms,
        packet_loss_percent,
        jitter_ms: 5.0,
        bandwidth_kbps: None,
    };
    let report = |peer: Option<&PeerId>, m: Metrics| ClientMessage::Quality {
        peer: peer.cloned(),
        metrics: m,
    };

    // The host's report about its viewer is the viewer's link quality; no answer.
    assert!(t
        .send("host", ip(1), report(Some(&viewer), metrics(300.0, 1.0)))
        .is_empty());
    assert_eq!(t.hub.reported_quality(&id, &token), Some(Quality::Fair));
    // A viewer reports its own link.
    assert!(t.send("viewer", ip(2), report(None, metrics(20.0, 15.0))).is_empty());
    assert_eq!(t.hub.reported_quality(&id, &token), Some(Quality::Poor));
    assert_eq!(t.hub.counters().quality_reports, 2);

    // A host must name one of its viewers; nothing changes when it does not.
    let out = t.send("host", ip(1), report(None, metrics(1.0, 0.0)));
    assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
    let out = t.send("host", ip(1), report(Some(&host_peer), metrics(1.0, 0.0)));
    assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
    // Not in a room yet.
    let out = t.send("stranger", ip(3), report(None, metrics(1.0, 0.0)));
    assert_eq!(error_kind(&out), ErrorKind::NotInRoom);
    assert_eq!(t.hub.reported_quality(&id, &token), Some(Quality::Poor));
    assert_eq!(t.hub.counters().quality_reports, 2);
}

#[test]
fn quality_messages_are_validated_when_parsed() {
    let ok = r#"{"type":"quality","metrics":{"latency_ms":150,"packet_loss_percent":2.5,"jitter_ms":30}}"#;
    assert!(ClientEnvelope::parse(ok).is_ok());
    for bad in [
        r#"{"type":"quality","metrics":{"latency_ms":-1,"packet_loss_percent":0,"jitter_ms":0}}"#,
        r#"{"type":"quality","metrics":{"latency_ms":1,"packet_loss_percent":101,"jitter_ms":0}}"#,
        r#"{"type":"quality","metrics":{"latency_ms":1,"packet_loss_percent":1}}"#,
        r#"{"type":"quality","metrics":{"latency_ms":1,"packet_loss_percent":1,"jitter_ms":1,"extra":1}}"#,
        r#"{"type":"quality","peer":"not a peer","metrics":{"latency_ms":1,"packet_loss_percent":1,"jitter_ms":1}}"#,
    ] {
        let e = ClientEnvelope::parse(bad).expect_err(bad);
        assert_eq!(e.kind, ErrorKind::BadMessage, "{bad}: {e:?}");
    }
}

#[test]
fn a_valid_token_resumes_whatever_lockouts_strangers_caused() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let (viewer, token) = t.admit("h", "v", &id, &code);
    t.disconnect("v");
    // A stranger on the viewer's own address (on an embedded server every
    // local client shares one) locks that address and the room out.
    for i in 0..5 {
        t.join_code(&format!("s{i}"), ip(2), &id, &wrong_code());
    }
    assert_eq!(error_kind(&t.join_code("g", ip(10), &id, &code)), ErrorKind::LockedOut);
    assert_eq!(
        error_kind(&t.join_code("late", ip(2), &id, &code)),
        ErrorKind::LockedOut
    );
    // The admitted viewer's token still resumes its session.
    let out = t.join_token("v2", &id, &token, Some(0));
    assert!(
        out.iter()
            .any(|(_, _, m)| matches!(m, ServerMessage::Joined { peer_id, .. } if *peer_id == viewer)),
        "{out:?}"
    );
    // And its token still opens its own state over HTTP.
    assert!(t.hub.reconnection_state(t.now, ip(2), &id, &token).is_ok());
    // A forged token from the locked address is still refused as locked out.
    let forged = TokenKey::random().sign(&Claims {
        room: id.clone(),
        nonce: 1,
        peer: PeerId("pX".into()),
        grant: Grant::Viewer { control: true },
    });
    assert_eq!(error_kind(&t.join_token("f", &id, &forged, None)), ErrorKind::LockedOut);
}

#[test]
fn rooms_are_capped_per_address_and_in_total() {
    let mut t = T::with(HubConfig {
        caps: Caps {
            rooms_per_addr: 3,
            rooms_total: 5,
        },
        ..HubConfig::default()
    });
    let register = |t: &mut T, name: &str, addr: IpAddr| {
        let msg = ClientMessage::Register {
            gate: gate(),
            token: None,
            last_seq: None,
            unattended: None,
        };
        t.send(name, addr, msg).remove(0).2
    };
    for i in 0..3 {
        assert!(matches!(
            register(&mut t, &format!("a{i}"), ip(1)),
            ServerMessage::Registered { .. }
        ));
    }
    let refused = register(&mut t, "a3", ip(1));
    assert!(
        matches!(
            refused,
            ServerMessage::Error {
                code: ErrorKind::RateLimited,
                ..
            }
        ),
        "{refused:?}"
    );
    // IPv6 addresses of one /64 are one address.
    let v6 = |n: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, n, 0, 0, 1]);
    assert!(matches!(
        register(&mut t, "b0", v6(1)),
        ServerMessage::Registered { .. }
    ));
    assert!(matches!(
        register(&mut t, "b1", v6(2)),
        ServerMessage::Registered { .. }
    ));
    // Five in all: a third address is refused too.
    assert!(matches!(
        register(&mut t, "c0", ip(3)),
        ServerMessage::Error {
            code: ErrorKind::RateLimited,
            ..
        }
    ));
    // A room that ends frees its place.
    t.send("a0", ip(1), ClientMessage::Leave);
    assert!(matches!(
        register(&mut t, "a4", ip(1)),
        ServerMessage::Registered { .. }
    ));
}

#[test]
fn turn_credentials_go_only_to_hosts_and_admitted_viewers() {
    let turn = crate::turn::TurnRest::new(vec!["turn:127.0.0.1:3478".into()], "s3cret", Duration::from_secs(600));
    let mut t = T::with(HubConfig {
        turn: Some(turn),
        wall_clock: WallClock {
            at: Instant::now(),
            unix_ms: 1_700_000_000_000,
        },
        ..HubConfig::default()
    });
    t.now = t.hub.config.wall_clock.at;
    let gate = gate();
    let msg = ClientMessage::Register {
        gate: gate.clone(),
        token: None,
        last_seq: None,
        unattended: None,
    };
    let (id, code, host, host_ice) = match t.send("h", ip(1), msg).remove(0).2 {
        ServerMessage::Registered {
            id,
            peer_id,
            ice_servers,
            ..
        } => (id, gate.clone(), peer_id, ice_servers),
        other => panic!("{other:?}"),
    };
    let user = |ice: &[IceServer]| ice.iter().find_map(|s| s.username.clone());
    assert_eq!(user(&host_ice), Some(format!("1700000600:{host}")));
    // A stranger with a wrong code, and a viewer still waiting, get none.
    let wrong = t.join_code("x", ip(7), &id, &wrong_code());
    assert!(wrong.iter().all(|(_, _, m)| matches!(m, ServerMessage::Error { .. })));
    let waiting = t.join_code("v", ip(2), &id, &code);
    let json = format!("{waiting:?}");
    assert!(
        !json.contains("credential: Some") && !json.contains("1700000600"),
        "{json}"
    );
    // Admitted: its own credentials.
    let peer = T::requested(&waiting);
    let joined = t.consent("h", &peer, Decision::View);
    let ice = joined
        .iter()
        .find_map(|(_, _, m)| match m {
            ServerMessage::Joined { ice_servers, .. } => Some(ice_servers.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(user(&ice), Some(format!("1700000600:{peer}")));

    // Halfway through their life (600 s), the host and the viewer get fresh
    // ones, and again 300 s later; never the stranger or a pending viewer.
    let waiting = t.join_code("w", ip(3), &id, &code);
    assert!(!waiting.is_empty());
    let renewed = |out: Vec<(String, Option<u64>, ServerMessage)>| {
        let mut got: Vec<(String, Option<String>)> = out
            .into_iter()
            .filter_map(|(to, seq, m)| match m {
                ServerMessage::IceServers { ice_servers } => {
                    assert_eq!(seq, None, "renewals are not replayed");
                    Some((to, user(&ice_servers)))
                }
                _ => None,
            })
            .collect();
        got.sort();
        got
    };
    assert!(renewed(t.poll()).is_empty(), "nothing due yet");
    t.now += Duration::from_secs(299);
    assert!(renewed(t.poll()).is_empty(), "nothing due before half the lifetime");
    t.now += Duration::from_secs(2);
    let expiry = 1_700_000_000 + 301 + 600;
    assert_eq!(
        renewed(t.poll()),
        vec![
            ("h".to_owned(), Some(format!("{expiry}:{host}"))),
            ("v".to_owned(), Some(format!("{expiry}:{peer}"))),
        ]
    );
    assert!(renewed(t.poll()).is_empty(), "once per half lifetime");
    t.now += Duration::from_secs(300);
    assert_eq!(renewed(t.poll()).len(), 2);
    // A viewer away at renewal time gets none on the dead socket.
    t.disconnect("v");
    t.now += Duration::from_secs(300);
    assert_eq!(
        renewed(t.poll()).iter().map(|(to, _)| to.as_str()).collect::<Vec<_>>(),
        ["h"]
    );
    assert_eq!(t.hub.counters().turn_renewals, 5);
}

#[test]
fn a_kicked_viewer_is_told_closed_and_its_token_is_dead() {
    let mut t = T::new();
    let (id, code, _, _) = t.register("h");
    let (viewer, token) = t.admit("h", "v", &id, &code);
    // A viewer cannot kick anyone, nor a host someone not in its room.
    let out = t.send("v", ip(2), ClientMessage::Kick { peer: viewer.clone() });
    assert_eq!(error_kind(&out), ErrorKind::NotInRoom);
    let out = t.send(
        "h",
        ip(1),
        ClientMessage::Kick {
            peer: PeerId("pnobody".into()),
        },
    );
    assert_eq!(error_kind(&out), ErrorKind::UnknownPeer);
    let out = t.send("h", ip(1), ClientMessage::Kick { peer: viewer.clone() });
    assert!(
        out.iter()
            .any(|(to, _, m)| to == "v" && matches!(m, ServerMessage::RoomClosed { .. })),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|(to, _, m)| to == "v" && matches!(m, ServerMessage::Pong)),
        "closed: {out:?}"
    );
    assert_eq!(
        error_kind(&t.join_token("v2", &id, &token, Some(0))),
        ErrorKind::SessionEnded
    );
}

/// Another node carries a room on from the snapshot the first wrote
/// (docs/cluster-design.md): the viewer resumes there with its token and
/// gets what was queued for it once, in order; the host resumes with its
/// own; numbers keep increasing; the snapshot went through JSON, as it
/// would through Redis.
#[test]
fn another_hub_carries_a_room_on_from_its_snapshot() {
    let key = TokenKey::random();
    let config = || HubConfig {
        token_key: key.clone(),
        ..HubConfig::default()
    };
    let mut a = T::with(config());
    let (id, code, host, host_token) = a.register("h");
    let (viewer, token) = a.admit("h", "v", &id, &code);
    let out = a.offer("h", Some(1), Some(&viewer), "o1");
    assert!(matches!(&out[..], [(to, Some(3), _)] if to == "v"));
    a.disconnect("v");
    a.now += Duration::from_secs(5);
    for (n, sdp) in ["o2", "o3"].iter().enumerate() {
        assert!(a.offer("h", Some(2 + n as u64), Some(&viewer), sdp).is_empty());
    }
    // A viewer half-way through joining is not carried over.
    let pending = a.join_code("w", ip(3), &id, &code);
    assert!(!pending.is_empty());
    let json = serde_json::to_string(&a.hub.snapshot_room(&id, a.now).unwrap()).unwrap();

    // Node A is gone; node B, with the shared token key, carries the room on.
    let mut b = T::with(config());
    b.now = a.now + Duration::from_secs(2);
    assert!(b.hub.restore_room(serde_json::from_str(&json).unwrap(), b.now));
    assert!(!b.hub.restore_room(serde_json::from_str(&json).unwrap(), b.now), "once");
    assert_eq!(b.hub.member_count(), 2, "host and viewer; not the pending one");

    // The viewer resumes on B: what it missed, once, in order.
    let out = b.join_token("v2", &id, &token, Some(3));
    match &out[0] {
        (
            _,
            None,
            ServerMessage::ReconnectionDetected {
                missed_message_count,
                disconnect_duration,
                replay_complete,
                ..
            },
        ) => {
            assert!(*missed_message_count >= 2, "{out:?}");
            // Away 5 s when A wrote it, 2 s more until B read it: the grace
            // window is not restarted by a move.
            assert!((6.9..8.0).contains(disconnect_duration), "{disconnect_duration}");
            // The numbers B skipped were never given out: nothing was lost.
            assert!(*replay_complete, "{out:?}");
        }
        other => panic!("first comes reconnection-detected: {other:?}"),
    }
    assert!(matches!(&out[1], (_, None, ServerMessage::Joined { peer_id, control: true, .. }) if *peer_id == viewer));
    let replayed: Vec<&str> = out
        .iter()
        .filter(|(to, s, _)| to == "v2" && s.is_some())
        .map(|(_, _, m)| sdp_of(m))
        .collect();
    assert_eq!(replayed, ["o2", "o3"], "{out:?}");
    let last_before = out.iter().filter_map(|(_, s, _)| *s).max().unwrap();

    // The host resumes with its token: the same room, and new messages are
    // numbered past anything A may have given out after the snapshot.
    let out = b.send(
        "h2",
        ip(1),
        ClientMessage::Register {
            gate: code.clone(),
            token: Some(host_token),
            last_seq: Some(2),
            unattended: None,
        },
    );
    assert!(
        out.iter().any(|(to, _, m)| to == "h2"
            && matches!(m, ServerMessage::Registered { resumed: true, peer_id, .. } if *peer_id == host)),
        "{out:?}"
    );
    let out = b.offer("h2", Some(10), Some(&viewer), "o4");
    let seq = out
        .iter()
        .find(|(to, _, _)| to == "v2")
        .and_then(|(_, s, _)| *s)
        .unwrap();
    assert!(
        seq > last_before && seq > 1_000,
        "numbers keep increasing: {seq} after {last_before}"
    );
}

#[test]
fn registered_and_joined_announce_how_messages_are_kept() {
    let mut t = T::with(HubConfig {
        replay: crate::replay::ReplayConfig {
            capacity: 20,
            ttl: Duration::from_secs(60),
        },
        ..HubConfig::default()
    });
    let want = Some(ReplayPolicy {
        messages: 20,
        ttl_ms: 60_000,
    });
    let code = gate();
    let out = t.send(
        "h",
        ip(1),
        ClientMessage::Register {
            gate: code.clone(),
            token: None,
            last_seq: None,
            unattended: None,
        },
    );
    assert_eq!(out[0].2.replay(), want, "{out:?}");
    let ServerMessage::Registered { id, .. } = &out[0].2 else {
        panic!()
    };
    let id = id.clone();
    let out = t.join_code("v", ip(2), &id, &code);
    let peer = T::requested(&out);
    let out = t.consent("h", &peer, Decision::Control);
    assert_eq!(out[0].2.replay(), want, "{out:?}");
}

/// Unattended access: the server learns a password's parameters and a
/// 12-bit gate, hands the parameters to anyone who asks (they are not
/// secret), counts wrong gates like wrong codes, and tells the host which
/// secret to check.
#[test]
fn password_joins_reach_the_host_marked_and_wrong_gates_count() {
    use holdfast_proto::signal::{PasswordGate, PasswordParams, Unattended};
    let mut t = T::new();
    let params = PasswordParams::new(&mut rand::rng());
    let right = PasswordGate::parse("a3f").unwrap();
    let msg = ClientMessage::Register {
        gate: gate(),
        token: None,
        last_seq: None,
        unattended: Some(Unattended {
            params: params.clone(),
            gate: right.clone(),
        }),
    };
    let id = match t.send("h", ip(1), msg).remove(0).2 {
        ServerMessage::Registered { id, .. } => id,
        other => panic!("{other:?}"),
    };
    let lookup = |t: &mut T, id: &RoomId| match t.send("x", ip(9), ClientMessage::Lookup { id: id.clone() }).remove(0) {
        (to, _, ServerMessage::RoomInfo { unattended, .. }) if to == "x" => unattended,
        other => panic!("{other:?}"),
    };
    assert_eq!(lookup(&mut t, &id), Some(params));
    // An ID with no room, and a room without a password, answer alike.
    let (plain, code, _, _) = t.register("h2");
    let nowhere = RoomId::parse("100000001").unwrap();
    assert_eq!(lookup(&mut t, &nowhere), None);
    assert_eq!(lookup(&mut t, &plain), None);

    let join = |t: &mut T, who: &str, id: &RoomId, g: &str| {
        t.send(
            who,
            ip(3),
            ClientMessage::Join {
                id: id.clone(),
                gate: None,
                password_gate: Some(PasswordGate::parse(g).unwrap()),
                token: None,
                last_seq: None,
            },
        )
    };
    let wrong = join(&mut t, "v1", &id, "a3e");
    assert_eq!(error_kind(&wrong), ErrorKind::InvalidCredentials);
    assert!(format!("{wrong:?}").contains("invalid ID or password"), "{wrong:?}");
    assert_eq!(
        error_kind(&join(&mut t, "v2", &plain, "a3f")),
        ErrorKind::InvalidCredentials
    );
    let out = join(&mut t, "v3", &id, "a3f");
    assert!(
        matches!(out[0], (ref to, _, ServerMessage::AwaitingConsent { .. }) if to == "v3"),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|(to, _, m)| to == "h" && matches!(m, ServerMessage::JoinRequest { password: true, .. })),
        "{out:?}"
    );
    // The code's gate still works beside it, and its requests are not marked.
    let out = t.join_code("v4", ip(4), &plain, &code);
    assert!(
        out.iter()
            .any(|(to, _, m)| to == "h2" && matches!(m, ServerMessage::JoinRequest { password: false, .. })),
        "{out:?}"
    );
    // Wrong password gates lock the address like wrong codes.
    let mut last = ErrorKind::InvalidCredentials;
    for i in 0..10 {
        last = error_kind(&join(&mut t, &format!("w{i}"), &id, "000"));
    }
    assert_eq!(last, ErrorKind::LockedOut);
}

/// A machine with unattended access keeps its ID across its own restarts:
/// its host token, after its room ended, gets the same ID as a new session
/// (earlier viewers' tokens stay refused); a host without a password gets
/// "ended", as before.
#[test]
fn an_unattended_host_gets_its_id_back_after_its_room_ended() {
    use holdfast_proto::signal::{PasswordGate, PasswordParams, Unattended};
    let unattended = || Unattended {
        params: PasswordParams::new(&mut rand::rng()),
        gate: PasswordGate::parse("a3f").unwrap(),
    };
    let code = gate();
    let register = |t: &mut T, who: &str, token: Option<SessionToken>, u: Option<Unattended>| {
        t.send(
            who,
            ip(1),
            ClientMessage::Register {
                gate: code.clone(),
                token,
                last_seq: None,
                unattended: u,
            },
        )
        .remove(0)
        .2
    };
    let mut t = T::new();
    let (id, token) = match register(&mut t, "h", None, Some(unattended())) {
        ServerMessage::Registered { id, token, .. } => (id, token),
        other => panic!("{other:?}"),
    };
    let (_, viewer_token) = t.admit("h", "v", &id, &code);
    t.send("h", ip(1), ClientMessage::Leave);
    t.disconnect("h");
    t.disconnect("v");
    match register(&mut t, "h2", Some(token.clone()), Some(unattended())) {
        ServerMessage::Registered {
            id: again,
            resumed: false,
            ..
        } => assert_eq!(again, id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error_kind(&t.join_token("v2", &id, &viewer_token, None)),
        ErrorKind::SessionEnded
    );
    // Without unattended access, an ended room stays ended.
    let mut t = T::new();
    let token = match register(&mut t, "h", None, None) {
        ServerMessage::Registered { token, .. } => token,
        other => panic!("{other:?}"),
    };
    t.send("h", ip(1), ClientMessage::Leave);
    t.disconnect("h");
    let out = t.send(
        "h2",
        ip(1),
        ClientMessage::Register {
            gate: gate(),
            token: Some(token),
            last_seq: None,
            unattended: None,
        },
    );
    assert_eq!(error_kind(&out), ErrorKind::SessionEnded);
}
