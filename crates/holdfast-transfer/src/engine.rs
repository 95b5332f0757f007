//! One side of a `transfer` channel as a pure state machine: the session's
//! chat, the files and clipboard items going either way, what to send next
//! and what survives a reconnection. No IO and no clock: the shell feeds it
//! messages and the time, reads file bytes it asks for, writes the bytes it
//! hands out, and sends what it polls.
//!
//! A transfer outlives its channel: when the link is cut the engine keeps
//! every unfinished transfer and chat message; on the next channel both sides
//! say `hello`, each receiver says from which byte it wants its transfers
//! again (`accept` with the bytes it confirmed) and each side resends the
//! chat messages the other has not seen.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use holdfast_proto::transfer::{
    check_name, encode_chunk, AbortReason, Control, Kind, Message, RejectReason, CHUNK_DATA, MAX_CHUNK_DATA,
};
use sha2::{Digest, Sha256};

/// Bytes a sender may have sent beyond what its receiver confirmed: what a
/// cut can cost in bytes sent again, and the most a receiver buffers.
pub const WINDOW_BYTES: u64 = 8 * 1024 * 1024;
/// A receiver confirms its bytes at least this often.
pub const PROGRESS_EVERY_BYTES: u64 = 1024 * 1024;
/// Most transfers one side has coming in at once.
pub const MAX_INCOMING: usize = 64;
/// Most chat lines a session shows, per side.
pub const MAX_CHAT_HISTORY: usize = 1000;
/// Most chat messages one side sends in a session (kept to be sent again).
pub const MAX_CHAT_MESSAGES: usize = 10_000;
/// The span over which a transfer's rate is measured.
const RATE_SPAN: Duration = Duration::from_secs(3);

/// Which end of the session this engine is; it picks the parity of the
/// transfer ids this side chooses (the host odd, the viewer even).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Host,
    Viewer,
}

impl Side {
    fn owns(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Side::Host)
    }
}

/// Which way a transfer goes, seen from this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Offered, waiting for the receiver (or this side's person) to accept.
    Offered,
    /// Bytes flowing.
    Moving,
    /// The link is down; it goes on where it stopped when the link is back.
    Paused,
    /// All bytes there; the receiver is checking and saving them.
    Verifying,
    Done,
    Failed,
}

/// Why a transfer failed: the receiver's reason or the sender's (the UI
/// says it in its own language; `describe()` gives the English words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "by", content = "reason", rename_all = "kebab-case")]
pub enum Failure {
    Receiver(RejectReason),
    Sender(AbortReason),
}

impl Failure {
    pub fn describe(self) -> &'static str {
        match self {
            Failure::Receiver(r) => r.describe(),
            Failure::Sender(r) => r.describe(),
        }
    }
}

/// A message from the other side that broke the protocol: refused, and the
/// transfer it names (if any) stopped; the engine's other state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transfer protocol: {0}")]
pub struct ProtocolError(pub &'static str);

/// What the shell must do or show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A chat message from the other side (each once, in order).
    Chat { n: u32, text: String },
    /// The other side offers a file: call [`Engine::accept`] or [`Engine::reject`].
    /// (Clipboard offers come as this too, for the shell's gate.)
    Offered {
        id: u32,
        kind: Kind,
        name: String,
        size: u64,
    },
    /// Write `data` at `offset` of incoming file `id` (always in order, from
    /// the `from` it was accepted at).
    Write { id: u32, offset: u64, data: Vec<u8> },
    /// Every byte of file `id` arrived and its SHA-256 matched: move it into
    /// place and call [`Engine::saved`].
    Verified { id: u32 },
    /// Clipboard content arrived whole and verified.
    Clipboard { kind: Kind, data: Vec<u8> },
    /// An incoming transfer failed or was stopped: discard what was written.
    Discard { id: u32 },
    /// A transfer ended (either way), with its outcome.
    Finished {
        id: u32,
        direction: Direction,
        outcome: Result<(), String>,
    },
}

/// A chunk to send: read `len` bytes of file `id` at `offset` and pass them to
/// [`Engine::chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkJob {
    pub id: u32,
    pub offset: u64,
    pub len: usize,
}

/// A transfer as the UI shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TransferView {
    pub id: u32,
    pub direction: Direction,
    pub kind: Kind,
    pub name: String,
    pub size: u64,
    /// Bytes confirmed by the receiver (outgoing) or received in order (incoming).
    pub done: u64,
    pub phase: Phase,
    /// Over the last few seconds, bytes a second.
    pub rate_bps: Option<f64>,
    /// Seconds left at that rate.
    pub eta_secs: Option<f64>,
    pub error: Option<String>,
    /// The same, as a reason to put in words.
    pub failure: Option<Failure>,
    /// File bytes this side sent, counting any sent again after a cut.
    pub bytes_sent: u64,
}

/// One chat line of the session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatLine {
    pub mine: bool,
    pub n: u32,
    pub text: String,
}

struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    fn new() -> Self {
        Rate {
            samples: VecDeque::new(),
        }
    }

    fn record(&mut self, now: Instant, done: u64) {
        self.samples.push_back((now, done));
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= RATE_SPAN {
            self.samples.pop_front();
        }
    }

    fn bps(&self) -> Option<f64> {
        let (t0, b0) = *self.samples.front()?;
        let (t1, b1) = *self.samples.back()?;
        let span = t1.duration_since(t0).as_secs_f64();
        (span >= 0.2).then(|| b1.saturating_sub(b0) as f64 / span)
    }
}

enum Content {
    /// Read from a file by the shell.
    File,
    /// Held here (clipboard).
    Memory(Vec<u8>),
}

struct Outgoing {
    kind: Kind,
    name: String,
    size: u64,
    content: Content,
    phase: Phase,
    /// Next byte to send.
    next: u64,
    /// What the receiver confirmed.
    acked: u64,
    hasher: Sha256,
    hashed: u64,
    bytes_sent: u64,
    rate: Rate,
    failure: Option<Failure>,
    /// Set when this side stopped it (said again after a reconnection).
    aborted: Option<AbortReason>,
}

struct Incoming {
    kind: Kind,
    name: String,
    size: u64,
    phase: Phase,
    /// Whether this side accepted it (the person or the shell's policy).
    accepted: bool,
    have: u64,
    confirmed: u64,
    hasher: Sha256,
    memory: Vec<u8>,
    rate: Rate,
    failure: Option<Failure>,
    /// Set when this side stopped it (said again after a reconnection).
    rejected: Option<RejectReason>,
}

/// One side of a session's `transfer` channel.
pub struct Engine {
    side: Side,
    next_id: u32,
    open: bool,
    outgoing: BTreeMap<u32, Outgoing>,
    incoming: BTreeMap<u32, Incoming>,
    chat_mine: Vec<String>,
    /// The other side's messages, all of them since the session began.
    chat_theirs: u32,
    history: VecDeque<ChatLine>,
    control: VecDeque<Control>,
    events: VecDeque<Event>,
}

impl Engine {
    pub fn new(side: Side) -> Self {
        Engine {
            side,
            next_id: if side == Side::Host { 1 } else { 2 },
            open: false,
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            chat_mine: Vec::new(),
            chat_theirs: 0,
            history: VecDeque::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A `transfer` channel opened (the first, or one after a reconnection).
    pub fn handle_open(&mut self) {
        self.open = true;
        self.control.clear();
        self.control.push_back(Control::Hello {
            chat_seen: self.chat_theirs,
        });
        // What the other side may not have heard, or wants again: every
        // message that ends a transfer is idempotent, so all are said again.
        for (&id, o) in &mut self.outgoing {
            match o.phase {
                Phase::Offered => self.control.push_back(offer(id, o)),
                // Sending, or ended but not confirmed: wait for the receiver's
                // `accept`, which says from where (its size: the end again).
                Phase::Moving | Phase::Paused | Phase::Verifying => o.phase = Phase::Paused,
                Phase::Failed => {
                    if let Some(reason) = o.aborted {
                        self.control.push_back(Control::Abort { id, reason });
                    }
                }
                Phase::Done => {}
            }
        }
        for (&id, i) in &mut self.incoming {
            match i.phase {
                Phase::Moving | Phase::Paused if i.accepted => {
                    i.phase = Phase::Moving;
                    self.control.push_back(Control::Accept { id, from: i.have });
                }
                Phase::Done => self.control.push_back(Control::Complete { id }),
                Phase::Failed => {
                    if let Some(reason) = i.rejected {
                        self.control.push_back(Control::Reject { id, reason });
                    }
                }
                _ => {}
            }
        }
    }

    /// The channel closed: everything unfinished waits for the next one.
    pub fn handle_closed(&mut self) {
        self.open = false;
        self.control.clear();
        for o in self.outgoing.values_mut() {
            if o.phase == Phase::Moving {
                o.phase = Phase::Paused;
            }
        }
        for i in self.incoming.values_mut() {
            if i.phase == Phase::Moving {
                i.phase = Phase::Paused;
            }
        }
    }

    /// Sends a chat line; it is delivered once the channel is (back) open.
    /// `None` once the session holds [`MAX_CHAT_MESSAGES`] of this side's.
    pub fn send_chat(&mut self, text: String) -> Option<u32> {
        if self.chat_mine.len() >= MAX_CHAT_MESSAGES {
            return None;
        }
        let n = self.chat_mine.len() as u32;
        self.remember(ChatLine {
            mine: true,
            n,
            text: text.clone(),
        });
        self.chat_mine.push(text.clone());
        if self.open {
            self.control.push_back(Control::Chat { n, text });
        }
        Some(n)
    }

    /// Offers a file of `size` bytes; the shell reads it when asked.
    pub fn send_file(&mut self, name: String, size: u64) -> u32 {
        debug_assert!(check_name(&name).is_ok());
        self.start(Kind::File, name, size, Content::File)
    }

    /// Offers clipboard content (held here until the receiver has it).
    pub fn send_clipboard(&mut self, kind: Kind, data: Vec<u8>) -> u32 {
        debug_assert!(kind.is_clipboard());
        // A newer clipboard replaces an older one still on its way.
        let stale: Vec<u32> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.kind.is_clipboard() && !matches!(o.phase, Phase::Done | Phase::Failed))
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.cancel(id);
        }
        let size = data.len() as u64;
        self.start(kind, String::new(), size, Content::Memory(data))
    }

    fn start(&mut self, kind: Kind, name: String, size: u64, content: Content) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(2);
        let o = Outgoing {
            kind,
            name,
            size,
            content,
            phase: Phase::Offered,
            next: 0,
            acked: 0,
            hasher: Sha256::new(),
            hashed: 0,
            bytes_sent: 0,
            rate: Rate::new(),
            failure: None,
            aborted: None,
        };
        if self.open {
            self.control.push_back(offer(id, &o));
        }
        self.outgoing.insert(id, o);
        id
    }

    /// This side takes incoming transfer `id` (after [`Event::Offered`]).
    pub fn accept(&mut self, id: u32) {
        if let Some(i) = self.incoming.get_mut(&id).filter(|i| i.phase == Phase::Offered) {
            i.accepted = true;
            i.phase = Phase::Moving;
            if self.open {
                self.control.push_back(Control::Accept { id, from: 0 });
            }
        }
    }

    /// This side turns down, or stops, incoming transfer `id`.
    pub fn reject(&mut self, id: u32, reason: RejectReason) {
        self.fail_incoming(id, Failure::Receiver(reason), true);
    }

    /// Ends incoming `id` as failed; `mine` if this side stopped it (then
    /// the sender is told).
    fn fail_incoming(&mut self, id: u32, failure: Failure, mine: bool) {
        let Some(i) = self.incoming.get_mut(&id) else { return };
        if matches!(i.phase, Phase::Done | Phase::Failed) {
            return;
        }
        let wrote = i.accepted && i.kind == Kind::File;
        let why = failure.describe();
        i.phase = Phase::Failed;
        i.failure = Some(failure);
        i.memory = Vec::new();
        i.rejected = match failure {
            Failure::Receiver(reason) if mine => Some(reason),
            _ => None,
        };
        if let (Some(reason), true) = (i.rejected, self.open) {
            self.control.push_back(Control::Reject { id, reason });
        }
        if wrote {
            self.events.push_back(Event::Discard { id });
        }
        self.events.push_back(Event::Finished {
            id,
            direction: Direction::Incoming,
            outcome: Err(why.into()),
        });
    }

    /// Stops transfer `id`, whichever way it goes.
    pub fn cancel(&mut self, id: u32) {
        if self.incoming.contains_key(&id) {
            return self.reject(id, RejectReason::Cancelled);
        }
        self.abort(id, AbortReason::Cancelled);
    }

    /// Stops every unfinished transfer (control was taken away, the session ends).
    pub fn stop_all(&mut self, reason: RejectReason) {
        let ins: Vec<u32> = self.incoming.keys().copied().collect();
        for id in ins {
            self.reject(id, reason);
        }
        let outs: Vec<u32> = self.outgoing.keys().copied().collect();
        for id in outs {
            self.abort(id, AbortReason::Cancelled);
        }
    }

    fn abort(&mut self, id: u32, reason: AbortReason) {
        self.fail_outgoing(id, Failure::Sender(reason), true);
    }

    /// Ends outgoing `id` as failed; `mine` if this side stopped it (then
    /// the receiver is told).
    fn fail_outgoing(&mut self, id: u32, failure: Failure, mine: bool) {
        let Some(o) = self.outgoing.get_mut(&id) else { return };
        if matches!(o.phase, Phase::Done | Phase::Failed) {
            return;
        }
        let why = failure.describe();
        o.phase = Phase::Failed;
        o.failure = Some(failure);
        o.content = Content::File;
        o.aborted = match failure {
            Failure::Sender(reason) if mine => Some(reason),
            _ => None,
        };
        if let (Some(reason), true) = (o.aborted, self.open) {
            self.control.push_back(Control::Abort { id, reason });
        }
        self.events.push_back(Event::Finished {
            id,
            direction: Direction::Outgoing,
            outcome: Err(why.into()),
        });
    }

    /// The shell could not read outgoing file `id` any more.
    pub fn read_failed(&mut self, id: u32) {
        self.abort(id, AbortReason::ReadFailed);
    }

    /// The shell could not write incoming file `id` (`NoSpace` or `WriteFailed`).
    pub fn write_failed(&mut self, id: u32, reason: RejectReason) {
        self.reject(id, reason);
    }

    /// The shell moved verified file `id` into place (or could not).
    pub fn saved(&mut self, id: u32, result: Result<(), RejectReason>) {
        let Some(i) = self.incoming.get_mut(&id).filter(|i| i.phase == Phase::Verifying) else {
            return;
        };
        match result {
            Ok(()) => {
                i.phase = Phase::Done;
                if self.open {
                    self.control.push_back(Control::Complete { id });
                }
                self.events.push_back(Event::Finished {
                    id,
                    direction: Direction::Incoming,
                    outcome: Ok(()),
                });
            }
            Err(reason) => {
                i.phase = Phase::Moving; // so reject() reports it
                self.reject(id, reason);
            }
        }
    }

    /// A message arrived on the channel. A bad one is refused (and the
    /// transfer it names stopped) without touching anything else.
    pub fn handle_message(&mut self, now: Instant, msg: Message) -> Result<(), ProtocolError> {
        match msg {
            Message::Chunk { id, offset, data } => self.on_chunk(now, id, offset, data),
            Message::Control(c) => self.on_control(now, c),
        }
    }

    fn on_control(&mut self, now: Instant, c: Control) -> Result<(), ProtocolError> {
        match c {
            Control::Hello { chat_seen } => {
                let from = (chat_seen as usize).min(self.chat_mine.len());
                for (n, text) in self.chat_mine.iter().enumerate().skip(from) {
                    self.control.push_back(Control::Chat {
                        n: n as u32,
                        text: text.clone(),
                    });
                }
            }
            Control::Chat { n, text } => {
                // Sent again after a reconnection: each line once, in order.
                if n < self.chat_theirs {
                    return Ok(());
                }
                if n > self.chat_theirs {
                    return Err(ProtocolError("a chat message out of order"));
                }
                self.chat_theirs += 1;
                self.remember(ChatLine {
                    mine: false,
                    n,
                    text: text.clone(),
                });
                self.events.push_back(Event::Chat { n, text });
            }
            Control::Offer { id, kind, name, size } => {
                if self.side.owns(id) {
                    return Err(ProtocolError("an offer with this side's id"));
                }
                if let Some(i) = self.incoming.get(&id) {
                    // Offered again after a reconnection: the same one is no news.
                    return if i.kind == kind && i.name == name && i.size == size {
                        Ok(())
                    } else {
                        Err(ProtocolError("a second, different offer under one id"))
                    };
                }
                let active = self
                    .incoming
                    .values()
                    .filter(|i| !matches!(i.phase, Phase::Done | Phase::Failed))
                    .count();
                self.incoming.insert(
                    id,
                    Incoming {
                        kind,
                        name: name.clone(),
                        size,
                        phase: Phase::Offered,
                        accepted: false,
                        have: 0,
                        confirmed: 0,
                        hasher: Sha256::new(),
                        memory: Vec::new(),
                        rate: Rate::new(),
                        failure: None,
                        rejected: None,
                    },
                );
                if active >= MAX_INCOMING {
                    self.reject(id, RejectReason::TooLarge);
                    return Ok(());
                }
                self.events.push_back(Event::Offered { id, kind, name, size });
            }
            Control::Accept { id, from } => {
                let o = self
                    .outgoing
                    .get_mut(&id)
                    .ok_or(ProtocolError("an accept for an unknown transfer"))?;
                if matches!(o.phase, Phase::Done | Phase::Failed) {
                    return Ok(());
                }
                // The receiver wants it from what it holds; never past what was sent.
                if from > o.size || from > o.next.max(o.acked) {
                    self.abort(id, AbortReason::Protocol);
                    return Err(ProtocolError("an accept past the bytes sent"));
                }
                o.next = from;
                o.acked = o.acked.max(from);
                o.phase = Phase::Moving;
                o.rate.record(now, o.acked);
                if from == o.size {
                    // Nothing (more) to send: the end, again if need be.
                    self.finish_sending(id);
                }
            }
            Control::Progress { id, have } => {
                let Some(o) = self.outgoing.get_mut(&id) else {
                    return Err(ProtocolError("progress for an unknown transfer"));
                };
                if have > o.next || have > o.size {
                    return Err(ProtocolError("progress past the bytes sent"));
                }
                o.acked = o.acked.max(have);
                o.rate.record(now, o.acked);
            }
            Control::Complete { id } => {
                let Some(o) = self.outgoing.get_mut(&id) else {
                    return Err(ProtocolError("complete for an unknown transfer"));
                };
                match o.phase {
                    Phase::Done | Phase::Failed => return Ok(()),
                    // Ended before a cut (the receiver has every byte), or just now.
                    Phase::Verifying | Phase::Paused if o.next == o.size => {}
                    _ => return Err(ProtocolError("complete before the end")),
                }
                o.phase = Phase::Done;
                o.acked = o.size;
                o.rate.record(now, o.acked);
                o.content = Content::File;
                self.events.push_back(Event::Finished {
                    id,
                    direction: Direction::Outgoing,
                    outcome: Ok(()),
                });
            }
            Control::Reject { id, reason } => {
                if !self.outgoing.contains_key(&id) {
                    return Err(ProtocolError("a reject for an unknown transfer"));
                }
                self.fail_outgoing(id, Failure::Receiver(reason), false);
            }
            Control::Abort { id, reason } => {
                if !self.incoming.contains_key(&id) {
                    return Err(ProtocolError("an abort for an unknown transfer"));
                }
                self.fail_incoming(id, Failure::Sender(reason), false);
            }
            Control::End { id, sha256 } => {
                let Some(i) = self.incoming.get_mut(&id) else {
                    return Err(ProtocolError("an end for an unknown transfer"));
                };
                if !i.accepted || i.phase != Phase::Moving || i.have != i.size {
                    self.reject(id, RejectReason::Protocol);
                    return Err(ProtocolError("an end before every byte arrived"));
                }
                let got = hex(&i.hasher.clone().finalize());
                if got != sha256 {
                    self.reject(id, RejectReason::Corrupted);
                    return Ok(());
                }
                i.phase = Phase::Verifying;
                i.rate.record(now, i.have);
                if i.kind == Kind::File {
                    self.events.push_back(Event::Verified { id });
                } else {
                    let data = std::mem::take(&mut i.memory);
                    let kind = i.kind;
                    self.events.push_back(Event::Clipboard { kind, data });
                    self.saved(id, Ok(()));
                }
            }
        }
        Ok(())
    }

    fn on_chunk(&mut self, now: Instant, id: u32, offset: u64, data: Vec<u8>) -> Result<(), ProtocolError> {
        let Some(i) = self.incoming.get_mut(&id) else {
            return Err(ProtocolError("a chunk for an unknown transfer"));
        };
        match i.phase {
            // A stopped transfer's chunks still in flight: dropped quietly.
            Phase::Failed | Phase::Done => return Ok(()),
            Phase::Moving if i.accepted => {}
            _ => {
                self.reject(id, RejectReason::Protocol);
                return Err(ProtocolError("a chunk before the transfer was accepted"));
            }
        }
        let end = offset + data.len() as u64;
        if offset != i.have || end > i.size {
            self.reject(id, RejectReason::Protocol);
            return Err(ProtocolError("a chunk out of order or past the end"));
        }
        i.hasher.update(&data);
        i.have = end;
        i.rate.record(now, i.have);
        if i.have - i.confirmed >= PROGRESS_EVERY_BYTES || i.have == i.size {
            i.confirmed = i.have;
            self.control.push_back(Control::Progress { id, have: i.have });
        }
        if i.kind == Kind::File {
            self.events.push_back(Event::Write { id, offset, data });
        } else {
            i.memory.extend_from_slice(&data);
        }
        Ok(())
    }

    /// The next control message to send (send them all before any chunk).
    pub fn poll_control(&mut self) -> Option<Control> {
        if !self.open {
            return None;
        }
        self.control.pop_front()
    }

    /// The next thing the shell must act on.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next chunk to send, if any transfer has bytes to go and its
    /// window room; clipboard items go before files, files in turn.
    /// Returns in-memory chunks encoded, file chunks as a job for the shell.
    pub fn poll_chunk(&mut self) -> Option<Poll> {
        if !self.open || !self.control.is_empty() {
            return None;
        }
        let pick = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.phase == Phase::Moving && o.next < o.size && o.next - o.acked < WINDOW_BYTES)
            .min_by_key(|(&id, o)| (!o.kind.is_clipboard(), id))
            .map(|(&id, _)| id)?;
        let o = self.outgoing.get_mut(&pick).expect("picked");
        let len = (o.size - o.next).min(CHUNK_DATA as u64) as usize;
        let offset = o.next;
        match &o.content {
            Content::Memory(bytes) => {
                let data = bytes[offset as usize..offset as usize + len].to_vec();
                Some(Poll::Ready(self.chunk(pick, offset, &data).expect("in memory")))
            }
            Content::File => Some(Poll::Read(ChunkJob { id: pick, offset, len })),
        }
    }

    /// The bytes of a [`ChunkJob`], read by the shell: the chunk's wire
    /// bytes, or `None` if the transfer moved on meanwhile (cancelled,
    /// resumed elsewhere) and nothing is to be sent.
    pub fn chunk(&mut self, id: u32, offset: u64, data: &[u8]) -> Option<Vec<u8>> {
        let o = self.outgoing.get_mut(&id)?;
        if o.phase != Phase::Moving || offset != o.next || data.is_empty() || data.len() > MAX_CHUNK_DATA {
            return None;
        }
        let end = offset + data.len() as u64;
        if end > o.size {
            return None;
        }
        // Hash each byte once, the first time it is read (a resume reads some again).
        if end > o.hashed {
            let skip = (o.hashed - offset) as usize;
            o.hasher.update(&data[skip..]);
            o.hashed = end;
        }
        o.next = end;
        o.bytes_sent += data.len() as u64;
        let bytes = encode_chunk(id, offset, data);
        if end == o.size {
            self.finish_sending(id);
        }
        Some(bytes)
    }

    fn finish_sending(&mut self, id: u32) {
        let Some(o) = self.outgoing.get_mut(&id) else { return };
        o.phase = Phase::Verifying;
        let sha256 = hex(&o.hasher.clone().finalize());
        self.control.push_back(Control::End { id, sha256 });
    }

    /// Every transfer of the session, for the UI.
    pub fn transfers(&self) -> Vec<TransferView> {
        let out = self.outgoing.iter().map(|(&id, o)| {
            let rate = o.rate.bps().filter(|_| o.phase == Phase::Moving);
            TransferView {
                id,
                direction: Direction::Outgoing,
                kind: o.kind,
                name: o.name.clone(),
                size: o.size,
                done: o.acked,
                phase: o.phase,
                rate_bps: rate,
                eta_secs: rate.filter(|r| *r > 0.0).map(|r| (o.size - o.acked) as f64 / r),
                error: o.failure.map(|f| f.describe().to_owned()),
                failure: o.failure,
                bytes_sent: o.bytes_sent,
            }
        });
        let inc = self.incoming.iter().map(|(&id, i)| {
            let rate = i.rate.bps().filter(|_| i.phase == Phase::Moving);
            TransferView {
                id,
                direction: Direction::Incoming,
                kind: i.kind,
                name: i.name.clone(),
                size: i.size,
                done: i.have,
                phase: i.phase,
                rate_bps: rate,
                eta_secs: rate.filter(|r| *r > 0.0).map(|r| (i.size - i.have) as f64 / r),
                error: i.failure.map(|f| f.describe().to_owned()),
                failure: i.failure,
                bytes_sent: 0,
            }
        });
        out.chain(inc).collect()
    }

    /// The session's chat, oldest first (at most [`MAX_CHAT_HISTORY`] lines a side).
    pub fn chat(&self) -> impl Iterator<Item = &ChatLine> {
        self.history.iter()
    }

    /// Whether any transfer has bytes still to move (the shell's cue to keep polling).
    pub fn busy(&self) -> bool {
        self.outgoing
            .values()
            .any(|o| o.phase == Phase::Moving && o.next < o.size)
    }

    fn remember(&mut self, line: ChatLine) {
        if self.history.len() >= 2 * MAX_CHAT_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(line);
    }
}

/// What [`Engine::poll_chunk`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Send these bytes.
    Ready(Vec<u8>),
    /// Read these bytes of a file and pass them to [`Engine::chunk`].
    Read(ChunkJob),
}

fn offer(id: u32, o: &Outgoing) -> Control {
    Control::Offer {
        id,
        kind: o.kind,
        name: o.name.clone(),
        size: o.size,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `data` as the `end` message carries it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Two engines joined by an in-memory channel; files are byte vectors.
    struct Pair {
        now: Instant,
        host: Engine,
        viewer: Engine,
        /// Files each side offers, by id.
        host_files: HashMap<u32, Vec<u8>>,
        viewer_files: HashMap<u32, Vec<u8>>,
        /// What each side received, by id.
        host_got: HashMap<u32, Vec<u8>>,
        viewer_got: HashMap<u32, Vec<u8>>,
        host_events: Vec<Event>,
        viewer_events: Vec<Event>,
        /// Chunk bytes on the wire, each way.
        chunk_bytes: [u64; 2],
        auto_accept: bool,
    }

    impl Pair {
        fn new() -> Pair {
            let mut p = Pair {
                now: Instant::now(),
                host: Engine::new(Side::Host),
                viewer: Engine::new(Side::Viewer),
                host_files: HashMap::new(),
                viewer_files: HashMap::new(),
                host_got: HashMap::new(),
                viewer_got: HashMap::new(),
                host_events: Vec::new(),
                viewer_events: Vec::new(),
                chunk_bytes: [0; 2],
                auto_accept: true,
            };
            p.open();
            p
        }

        fn open(&mut self) {
            self.host.handle_open();
            self.viewer.handle_open();
        }

        fn cut(&mut self) {
            self.host.handle_closed();
            self.viewer.handle_closed();
        }

        /// Moves messages until both sides are quiet, or `max_chunks` chunks went.
        fn pump(&mut self, max_chunks: usize) {
            let mut chunks = 0;
            loop {
                let mut moved = false;
                for from_host in [true, false] {
                    let (tx, rx, files) = if from_host {
                        (&mut self.host, &mut self.viewer, &self.host_files)
                    } else {
                        (&mut self.viewer, &mut self.host, &self.viewer_files)
                    };
                    while let Some(c) = tx.poll_control() {
                        let bytes = Message::from(c).encode();
                        let _ = rx.handle_message(self.now, Message::parse(&bytes).unwrap());
                        moved = true;
                    }
                    if chunks < max_chunks {
                        let bytes = match tx.poll_chunk() {
                            Some(Poll::Ready(b)) => Some(b),
                            Some(Poll::Read(job)) => {
                                let f = &files[&job.id];
                                let data = &f[job.offset as usize..job.offset as usize + job.len];
                                tx.chunk(job.id, job.offset, data)
                            }
                            None => None,
                        };
                        if let Some(b) = bytes {
                            self.chunk_bytes[from_host as usize] +=
                                (b.len() - holdfast_proto::transfer::CHUNK_HEADER) as u64;
                            rx.handle_message(self.now, Message::parse(&b).unwrap()).unwrap();
                            chunks += 1;
                            moved = true;
                        }
                    }
                }
                moved |= self.drain_events();
                self.now += Duration::from_millis(1);
                if !moved {
                    break;
                }
            }
        }

        fn drain_events(&mut self) -> bool {
            let mut any = false;
            for host_side in [true, false] {
                let (eng, got, log) = if host_side {
                    (&mut self.host, &mut self.host_got, &mut self.host_events)
                } else {
                    (&mut self.viewer, &mut self.viewer_got, &mut self.viewer_events)
                };
                while let Some(ev) = eng.poll_event() {
                    any = true;
                    match &ev {
                        Event::Offered { id, .. } if self.auto_accept => eng.accept(*id),
                        Event::Write { id, offset, data } => {
                            let f = got.entry(*id).or_default();
                            f.truncate(*offset as usize);
                            f.extend_from_slice(data);
                        }
                        Event::Verified { id } => eng.saved(*id, Ok(())),
                        Event::Discard { id } => {
                            got.remove(id);
                        }
                        _ => {}
                    }
                    log.push(ev);
                }
            }
            any
        }
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    fn finished(events: &[Event], id: u32) -> Option<Result<(), String>> {
        events.iter().find_map(|e| match e {
            Event::Finished { id: i, outcome, .. } if *i == id => Some(outcome.clone()),
            _ => None,
        })
    }

    #[test]
    fn files_go_both_ways_and_arrive_whole() {
        let mut p = Pair::new();
        let a = bytes(3 * CHUNK_DATA + 17, 1);
        let b = bytes(100, 2);
        let ida = p.host.send_file("a.bin".into(), a.len() as u64);
        p.host_files.insert(ida, a.clone());
        let idb = p.viewer.send_file("b.bin".into(), b.len() as u64);
        p.viewer_files.insert(idb, b.clone());
        assert_eq!((ida % 2, idb % 2), (1, 0), "host ids odd, viewer ids even");
        p.pump(usize::MAX);
        assert_eq!(p.viewer_got[&ida], a);
        assert_eq!(p.host_got[&idb], b);
        assert_eq!(
            finished(&p.host_events, ida),
            Some(Ok(())),
            "the sender hears it completed"
        );
        assert_eq!(finished(&p.viewer_events, idb), Some(Ok(())));
        let v = p.host.transfers().into_iter().find(|t| t.id == ida).unwrap();
        assert_eq!(
            (v.phase, v.done, v.bytes_sent),
            (Phase::Done, a.len() as u64, a.len() as u64)
        );
    }

    #[test]
    fn an_empty_file_completes() {
        let mut p = Pair::new();
        let id = p.viewer.send_file("empty".into(), 0);
        p.viewer_files.insert(id, Vec::new());
        p.pump(usize::MAX);
        assert_eq!(finished(&p.viewer_events, id), Some(Ok(())));
        assert!(p
            .host_events
            .iter()
            .any(|e| matches!(e, Event::Verified { id: i } if *i == id)));
    }

    #[test]
    fn a_cut_resumes_from_the_last_confirmed_byte_not_from_zero() {
        let mut p = Pair::new();
        let size = 40 * 1024 * 1024;
        let data = bytes(size, 3);
        let id = p.viewer.send_file("big.bin".into(), size as u64);
        p.viewer_files.insert(id, data.clone());
        // 20 MiB through, then the link goes (what was in flight is lost).
        p.pump(640);
        p.cut();
        let sent_before = p.chunk_bytes[0];
        let confirmed = p.viewer.transfers()[0].done;
        assert!(confirmed >= 19 * 1024 * 1024, "confirmed {confirmed}");
        assert_eq!(p.viewer.transfers()[0].phase, Phase::Paused);
        // A message sent while the link is down is not lost either.
        p.viewer.send_chat("still there?".into());
        p.open();
        p.pump(usize::MAX);
        assert_eq!(p.host_got[&id], data);
        assert_eq!(finished(&p.viewer_events, id), Some(Ok(())));
        let after = p.chunk_bytes[0] - sent_before;
        let resent = sent_before + after - size as u64;
        assert!(resent <= WINDOW_BYTES, "sent again after the cut: {resent} bytes");
        assert_eq!(p.viewer.transfers()[0].bytes_sent, size as u64 + resent);
        assert!(p
            .host_events
            .iter()
            .any(|e| matches!(e, Event::Chat { text, .. } if text == "still there?")));
    }

    #[test]
    fn a_cut_after_the_last_byte_still_completes() {
        let mut p = Pair::new();
        let data = bytes(5000, 4);
        let id = p.host.send_file("x".into(), 5000);
        p.host_files.insert(id, data.clone());
        // Offer, accept and the one chunk; then cut before `end` crosses.
        for _ in 0..3 {
            while let Some(c) = p.host.poll_control() {
                p.viewer.handle_message(p.now, c.into()).unwrap();
            }
            while let Some(c) = p.viewer.poll_control() {
                p.host.handle_message(p.now, c.into()).unwrap();
            }
            p.drain_events();
        }
        if let Some(Poll::Read(job)) = p.host.poll_chunk() {
            let b = p.host.chunk(job.id, job.offset, &data).unwrap();
            p.viewer.handle_message(p.now, Message::parse(&b).unwrap()).unwrap();
        }
        p.cut();
        p.open();
        p.pump(usize::MAX);
        assert_eq!(p.viewer_got[&id], data);
        assert_eq!(finished(&p.host_events, id), Some(Ok(())));
    }

    #[test]
    fn a_corrupted_file_is_rejected_and_discarded() {
        let mut p = Pair::new();
        let id = p.host.send_file("y".into(), 10);
        p.host_files.insert(id, vec![1; 10]);
        // Deliver the chunk, then a forged end.
        while let Some(c) = p.host.poll_control() {
            p.viewer.handle_message(p.now, c.into()).unwrap();
        }
        p.drain_events();
        while let Some(c) = p.viewer.poll_control() {
            p.host.handle_message(p.now, c.into()).unwrap();
        }
        let Some(Poll::Read(job)) = p.host.poll_chunk() else {
            panic!("a chunk to send")
        };
        let b = p.host.chunk(job.id, 0, &[1; 10]).unwrap();
        p.viewer.handle_message(p.now, Message::parse(&b).unwrap()).unwrap();
        let forged = Control::End {
            id,
            sha256: sha256_hex(b"something else"),
        };
        p.viewer.handle_message(p.now, forged.into()).unwrap();
        p.drain_events();
        assert!(p
            .viewer_events
            .iter()
            .any(|e| matches!(e, Event::Discard { id: i } if *i == id)));
        assert!(!p.viewer_got.contains_key(&id));
        assert_eq!(p.viewer.transfers()[0].phase, Phase::Failed);
    }

    #[test]
    fn a_declined_offer_sends_nothing() {
        let mut p = Pair::new();
        p.auto_accept = false;
        let id = p.viewer.send_file("x".into(), 100);
        p.viewer_files.insert(id, vec![0; 100]);
        p.pump(usize::MAX);
        assert!(p.host_events.iter().any(|e| matches!(e, Event::Offered { .. })));
        p.host.reject(id, RejectReason::Declined);
        p.pump(usize::MAX);
        assert_eq!(p.chunk_bytes, [0, 0]);
        assert_eq!(
            finished(&p.viewer_events, id),
            Some(Err(RejectReason::Declined.describe().into()))
        );
    }

    #[test]
    fn cancelling_stops_the_other_side_too() {
        for sender_cancels in [true, false] {
            let mut p = Pair::new();
            let id = p.viewer.send_file("x".into(), 10 * CHUNK_DATA as u64);
            p.viewer_files.insert(id, vec![7; 10 * CHUNK_DATA]);
            p.pump(3);
            if sender_cancels {
                p.viewer.cancel(id);
            } else {
                p.host.cancel(id);
            }
            p.pump(usize::MAX);
            assert!(p.chunk_bytes[0] < 5 * CHUNK_DATA as u64, "{:?}", p.chunk_bytes);
            assert!(finished(&p.host_events, id).unwrap().is_err());
            assert!(finished(&p.viewer_events, id).unwrap().is_err());
            assert!(
                p.host_events.iter().any(|e| matches!(e, Event::Discard { .. })),
                "the partial file goes"
            );
        }
    }

    #[test]
    fn a_cancel_while_the_link_is_down_reaches_the_other_side_after() {
        let mut p = Pair::new();
        let id = p.viewer.send_file("x".into(), 10 * CHUNK_DATA as u64);
        p.viewer_files.insert(id, vec![7; 10 * CHUNK_DATA]);
        p.pump(3);
        p.cut();
        p.viewer.cancel(id);
        p.open();
        p.pump(usize::MAX);
        assert!(finished(&p.host_events, id).unwrap().is_err());
    }

    #[test]
    fn clipboard_goes_before_queued_files_and_arrives_in_memory() {
        let mut p = Pair::new();
        let id = p.host.send_file("x".into(), 20 * CHUNK_DATA as u64);
        p.host_files.insert(id, vec![1; 20 * CHUNK_DATA]);
        p.pump(2);
        p.host.send_clipboard(Kind::ClipboardText, "héllo".as_bytes().to_vec());
        // A round trip for its offer (a file chunk or two meanwhile), then it goes first.
        p.pump(4);
        let pos = |f: &dyn Fn(&Event) -> bool| p.viewer_events.iter().position(f);
        let clip =
            pos(&|e| matches!(e, Event::Clipboard { kind: Kind::ClipboardText, data } if data == "héllo".as_bytes()));
        assert!(
            clip.is_some(),
            "{:?}",
            p.viewer_events.iter().map(std::mem::discriminant).collect::<Vec<_>>()
        );
        assert!(
            p.chunk_bytes[1] < 6 * CHUNK_DATA as u64,
            "the clipboard did not wait for the file: {:?}",
            p.chunk_bytes
        );
        p.pump(usize::MAX);
        assert_eq!(p.viewer_got[&id].len(), 20 * CHUNK_DATA);
    }

    #[test]
    fn a_newer_clipboard_replaces_one_still_on_its_way() {
        let mut p = Pair::new();
        p.cut();
        p.host.send_clipboard(Kind::ClipboardText, b"old".to_vec());
        p.host.send_clipboard(Kind::ClipboardText, b"new".to_vec());
        p.open();
        p.pump(usize::MAX);
        let clips: Vec<_> = p
            .viewer_events
            .iter()
            .filter_map(|e| match e {
                Event::Clipboard { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(clips, vec![b"new".to_vec()]);
    }

    #[test]
    fn chat_arrives_once_in_order_across_cuts() {
        let mut p = Pair::new();
        p.host.send_chat("one".into());
        p.pump(0);
        p.cut();
        p.host.send_chat("two".into());
        p.viewer.send_chat("hi".into());
        p.open();
        p.pump(0);
        // A second reconnection resends nothing already seen.
        p.cut();
        p.open();
        p.host.send_chat("three".into());
        p.pump(0);
        let got: Vec<_> = p
            .viewer_events
            .iter()
            .filter_map(|e| match e {
                Event::Chat { n, text } => Some((*n, text.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![(0, "one"), (1, "two"), (2, "three")]);
        let history: Vec<_> = p.host.chat().map(|l| (l.mine, l.text.as_str())).collect();
        assert_eq!(
            history,
            vec![(true, "one"), (true, "two"), (false, "hi"), (true, "three")]
        );
    }

    #[test]
    fn hostile_messages_are_refused_and_change_nothing_else() {
        let mut p = Pair::new();
        let id = p.viewer.send_file("ok".into(), 4 * CHUNK_DATA as u64);
        p.viewer_files.insert(id, vec![9; 4 * CHUNK_DATA]);
        p.pump(1);
        let now = p.now;
        let host = &mut p.host;
        // An offer under the host's own id parity; a chat from the future;
        // a chunk past the end and one with a gap; an accept for nothing.
        assert!(host
            .handle_message(
                now,
                Control::Offer {
                    id: 7,
                    kind: Kind::File,
                    name: "a".into(),
                    size: 1
                }
                .into()
            )
            .is_err());
        assert!(host
            .handle_message(now, Control::Chat { n: 5, text: "x".into() }.into())
            .is_err());
        assert!(host
            .handle_message(now, Control::Accept { id: 99, from: 0 }.into())
            .is_err());
        assert!(host
            .handle_message(
                now,
                Message::Chunk {
                    id: 1000,
                    offset: 0,
                    data: vec![1]
                }
            )
            .is_err());
        // A different offer reusing a live id.
        assert!(host
            .handle_message(
                now,
                Control::Offer {
                    id,
                    kind: Kind::File,
                    name: "other".into(),
                    size: 1
                }
                .into()
            )
            .is_err());
        assert!(host.chat().next().is_none());
        // The transfer in progress carries on and arrives whole.
        p.pump(usize::MAX);
        assert_eq!(p.host_got[&id], vec![9; 4 * CHUNK_DATA]);
        // A gap in a live transfer stops that transfer only.
        let id2 = p.viewer.send_file("gap".into(), 3 * CHUNK_DATA as u64);
        p.viewer_files.insert(id2, vec![1; 3 * CHUNK_DATA]);
        p.pump(0);
        let gap = Message::Chunk {
            id: id2,
            offset: CHUNK_DATA as u64,
            data: vec![1; 10],
        };
        assert!(p.host.handle_message(p.now, gap).is_err());
        p.pump(usize::MAX);
        assert!(finished(&p.viewer_events, id2).unwrap().is_err());
        assert!(finished(&p.viewer_events, id).unwrap().is_ok());
    }

    #[test]
    fn the_window_bounds_what_is_unconfirmed() {
        let mut p = Pair::new();
        let size = 3 * WINDOW_BYTES as usize;
        let id = p.host.send_file("w".into(), size as u64);
        p.host_files.insert(id, vec![0; size]);
        p.pump(0);
        // Chunks leave but no progress comes back: the sender stops at the window.
        let mut sent = 0u64;
        while let Some(Poll::Read(job)) = p.host.poll_chunk() {
            let data = vec![0; job.len];
            p.host.chunk(job.id, job.offset, &data).unwrap();
            sent += job.len as u64;
        }
        assert_eq!(sent, WINDOW_BYTES);
    }

    #[test]
    fn rate_and_time_left_follow_the_confirmed_bytes() {
        let mut p = Pair::new();
        let size = 32 * 1024 * 1024;
        let id = p.viewer.send_file("r".into(), size as u64);
        p.viewer_files.insert(id, vec![0; size]);
        // 1 ms a round in the pump: a chunk (32 KiB) a round, about 32 MB/s.
        p.pump(300);
        let v = p.viewer.transfers().into_iter().find(|t| t.id == id).unwrap();
        let rate = v.rate_bps.expect("a rate");
        assert!((20e6..50e6).contains(&rate), "{rate}");
        let eta = v.eta_secs.unwrap();
        assert!((eta - (size as u64 - v.done) as f64 / rate).abs() < 1e-6);
    }
}
