//! Criterion: a viewer that comes back with its token after missing 50 room
//! messages (the replay buffer's full depth): the hub's work to recognise
//! the reconnection and hand over `reconnection-detected` plus the 50
//! messages, in order. `cargo bench -p holdfast-signal --bench replay`.

use std::net::IpAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use holdfast_proto::signal::{ClientEnvelope, ClientMessage, Decision, IceCandidate, ServerMessage};
use holdfast_signal::hub::{ConnId, Hub, HubConfig, Out};

const MISSED: usize = 50;

fn send(hub: &mut Hub, now: Instant, conn: u64, msg: ClientMessage) -> Vec<Out> {
    hub.handle(
        now,
        ConnId(conn),
        IpAddr::from([127, 0, 0, 1]),
        ClientEnvelope::new(None, msg),
    )
}

fn msgs(out: Vec<Out>) -> impl Iterator<Item = ServerMessage> {
    out.into_iter().filter_map(|o| match o {
        Out::Send { msg, .. } => Some(msg),
        _ => None,
    })
}

/// A hub whose viewer dropped and then missed [`MISSED`] candidates; returns
/// the rejoin message to time.
fn dropped_viewer() -> (Hub, Instant, ClientMessage) {
    let mut hub = Hub::new(HubConfig::default());
    let now = Instant::now();
    let code = holdfast_proto::RoomCode::random(&mut rand::rng()).gate();
    let id = msgs(send(
        &mut hub,
        now,
        1,
        ClientMessage::Register {
            gate: code.clone(),
            token: None,
            last_seq: None,
            unattended: None,
        },
    ))
    .find_map(|m| match m {
        ServerMessage::Registered { id, .. } => Some(id),
        _ => None,
    })
    .expect("registered");
    let join = ClientMessage::Join {
        id: id.clone(),
        gate: Some(code),
        password_gate: None,
        token: None,
        last_seq: None,
    };
    let peer = msgs(send(&mut hub, now, 2, join))
        .find_map(|m| match m {
            ServerMessage::JoinRequest { peer_id, .. } => Some(peer_id),
            _ => None,
        })
        .expect("join request");
    let consent = ClientMessage::Consent {
        peer: peer.clone(),
        decision: Decision::Control,
    };
    let token = msgs(send(&mut hub, now, 1, consent))
        .find_map(|m| match m {
            ServerMessage::Joined { token, .. } => Some(token),
            _ => None,
        })
        .expect("joined");
    hub.disconnect(now, ConnId(2));
    for i in 0..MISSED {
        let candidate = ClientMessage::Candidate {
            to: Some(peer.clone()),
            candidate: IceCandidate {
                candidate: format!("candidate:{i} 1 udp 2122260223 10.0.0.1 {} typ host", 40000 + i),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            },
            generation: 0,
        };
        send(&mut hub, now, 1, candidate);
    }
    let rejoin = ClientMessage::Join {
        id,
        gate: None,
        password_gate: None,
        token: Some(token),
        last_seq: Some(0),
    };
    (hub, now, rejoin)
}

fn replay(c: &mut Criterion) {
    // Check once that the measured call does what it says.
    let (mut hub, now, rejoin) = dropped_viewer();
    let out: Vec<ServerMessage> = msgs(send(&mut hub, now, 3, rejoin)).collect();
    let detected = out
        .iter()
        .position(|m| matches!(m, ServerMessage::ReconnectionDetected { .. }));
    let first = out.iter().position(|m| matches!(m, ServerMessage::Candidate { .. }));
    let replayed = out
        .iter()
        .filter(|m| matches!(m, ServerMessage::Candidate { .. }))
        .count();
    assert!(
        detected.is_some() && detected < first,
        "reconnection-detected first: {out:?}"
    );
    assert_eq!(replayed, MISSED);

    c.bench_function("rejoin with token, 50 missed messages replayed", |b| {
        b.iter_batched(
            dropped_viewer,
            |(mut hub, now, rejoin)| send(&mut hub, now, 3, rejoin),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, replay);
criterion_main!(benches);
