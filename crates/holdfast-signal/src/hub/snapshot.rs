//! A room as another node needs it to carry the room on
//! (docs/cluster-design.md): what [`Hub::snapshot_room`] writes and
//! [`Hub::restore_room`] reads. Serializable, with ages instead of instants
//! (an `Instant` means nothing in another process). Pure.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use holdfast_proto::signal::{PeerId, ServerMessage, Unattended};
use holdfast_proto::{CodeGate, RoomId};
use serde::{Deserialize, Serialize};

use super::{Hub, Member, Role, Room};
use crate::replay::ReplayBuffer;

/// Numbers skipped when a room is carried on: messages numbered after the
/// snapshot was written may have reached a member; none may be reused.
pub const RESTORE_SEQ_MARGIN: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Host,
    Viewer { control: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberSnapshot {
    pub peer: PeerId,
    pub role: MemberRole,
    pub last_delivered: u64,
    pub last_received: u64,
    pub reconnections: u32,
    /// How long it had been away when the snapshot was taken (None: connected).
    pub away_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomSnapshot {
    pub id: RoomId,
    pub gate: CodeGate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattended: Option<Unattended>,
    pub nonce: u64,
    pub host: PeerId,
    /// The address key that registered it (the per-address cap).
    pub owner: IpAddr,
    pub members: Vec<MemberSnapshot>,
    pub revoked: Vec<PeerId>,
    /// When it was taken (Unix ms): ages grow by the time until it is read.
    #[serde(default)]
    pub taken_at_ms: u64,
    /// The last sequence number given out, and the replay buffer's messages.
    pub last_seq: u64,
    /// Numbers never given out (see [`ReplayBuffer::skip`]).
    #[serde(default)]
    pub gaps: Vec<(u64, u64)>,
    pub replay: Vec<(u64, PeerId, ServerMessage)>,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl Hub {
    /// The room as another node needs it; pending joins are left out (a
    /// join in progress starts again wherever the viewer reconnects).
    pub fn snapshot_room(&self, id: &RoomId, now: Instant) -> Option<RoomSnapshot> {
        self.snapshot_room_after(id, now, 0)
    }

    /// [`Hub::snapshot_room`] with only the replay entries numbered after
    /// `after` (what a node writing through has not written yet).
    pub fn snapshot_room_after(&self, id: &RoomId, now: Instant, after: u64) -> Option<RoomSnapshot> {
        let room = self.rooms.get(id)?;
        let members = room
            .members
            .iter()
            .filter_map(|(peer, m)| {
                let role = match m.role {
                    Role::Host => MemberRole::Host,
                    Role::Viewer { control } => MemberRole::Viewer { control },
                    Role::Pending { .. } => return None,
                };
                Some(MemberSnapshot {
                    peer: peer.clone(),
                    role,
                    last_delivered: m.last_delivered,
                    last_received: m.last_received,
                    reconnections: m.reconnections,
                    away_ms: match (m.conn, m.disconnected_at) {
                        (Some(_), _) => None,
                        (None, Some(at)) => Some(ms(now.saturating_duration_since(at))),
                        (None, None) => Some(0),
                    },
                })
            })
            .collect();
        let (last_seq, entries) = room.replay.entries_after(after);
        Some(RoomSnapshot {
            id: id.clone(),
            gate: room.gate.clone(),
            unattended: room.unattended.clone(),
            nonce: room.nonce,
            host: room.host.clone(),
            owner: room.owner,
            members,
            revoked: room.revoked.iter().cloned().collect(),
            taken_at_ms: self.config.wall_clock.unix_ms(now),
            last_seq,
            gaps: room.replay.gaps().to_vec(),
            replay: entries.into_iter().map(|(seq, (to, msg))| (seq, to, msg)).collect(),
        })
    }

    /// The nonce of room `id` if it ended here lately.
    pub fn ended_nonce(&self, id: &RoomId) -> Option<u64> {
        self.ended.keys().find(|(r, _)| r == id).map(|(_, n)| *n)
    }

    /// Carries a room on from a snapshot another node wrote: every member is
    /// away (its connection was on that node) and resumes here with its token
    /// within what is left of its grace window; what was queued for it is
    /// replayed once, in order; new messages are numbered after
    /// [`RESTORE_SEQ_MARGIN`]. False if the room is already here.
    pub fn restore_room(&mut self, snap: RoomSnapshot, now: Instant) -> bool {
        if self.rooms.contains_key(&snap.id) {
            return false;
        }
        // Time passed since it was written counts toward everyone's grace.
        let since = self
            .config
            .wall_clock
            .unix_ms(now)
            .saturating_sub(snap.taken_at_ms)
            .min(u64::from(u32::MAX));
        let mut members = HashMap::new();
        for m in snap.members {
            let role = match m.role {
                MemberRole::Host => Role::Host,
                MemberRole::Viewer { control } => Role::Viewer { control },
            };
            let away = Duration::from_millis(m.away_ms.unwrap_or(0).saturating_add(since));
            let at = now.checked_sub(away).unwrap_or(now);
            members.insert(
                m.peer,
                Member {
                    role,
                    conn: None,
                    last_seen: at,
                    disconnected_at: Some(at),
                    last_delivered: m.last_delivered,
                    last_received: m.last_received,
                    quality: None,
                    reconnections: m.reconnections,
                    expected: false,
                    ice_renew_at: None,
                },
            );
        }
        let mut replay = ReplayBuffer::carried_on(
            self.config.replay,
            now,
            snap.last_seq,
            snap.gaps,
            snap.replay.into_iter().map(|(seq, to, msg)| (seq, (to, msg))).collect(),
        );
        replay.skip(RESTORE_SEQ_MARGIN);
        *self.rooms_by_addr.entry(snap.owner).or_default() += 1;
        self.counters.rooms_restored += 1;
        self.rooms.insert(
            snap.id,
            Room {
                gate: snap.gate,
                unattended: snap.unattended,
                nonce: snap.nonce,
                host: snap.host,
                members,
                replay,
                revoked: VecDeque::from(snap.revoked),
                restored: true,
                owner: snap.owner,
            },
        );
        true
    }
}
