// One side of a `transfer` channel as a pure state machine: the browser's
// port of `holdfast-transfer/src/engine.rs` (the host and the Rust viewer run
// that one). No IO and no clock: the shell feeds it messages and the time in
// ms, reads file bytes it asks for, keeps the bytes it hands out and sends
// what it polls. `transferengine.test.ts` replays the scenarios the Rust
// engine recorded (tests/vectors/transfer-engine.json) and expects the same
// messages, events and views, so a drift between the two fails a test.
//
// A transfer outlives its channel: after a cut both sides say `hello`, each
// receiver says from which byte it wants its transfers again, and each side
// resends the chat the other has not seen.

import { sha256 } from '@noble/hashes/sha2.js';
import {
  CHUNK_DATA, MAX_CHUNK_DATA, checkName, encodeChunk,
  type AbortReason, type Control, type Kind, type Message, type RejectReason,
} from './transfer';

/** Bytes a sender may have sent beyond what its receiver confirmed. */
export const WINDOW_BYTES = 8 * 1024 * 1024;
/** A receiver confirms its bytes at least this often. */
export const PROGRESS_EVERY_BYTES = 1024 * 1024;
/** Most transfers one side has coming in at once. */
export const MAX_INCOMING = 64;
/** Most chat lines a session shows, per side. */
export const MAX_CHAT_HISTORY = 1000;
/** Most chat messages one side sends in a session. */
export const MAX_CHAT_MESSAGES = 10_000;
const RATE_SPAN_MS = 3000;

export type Side = 'host' | 'viewer';
export type Direction = 'outgoing' | 'incoming';
export type Phase = 'offered' | 'moving' | 'paused' | 'verifying' | 'done' | 'failed';

/** Why a transfer failed: the receiver's reason or the sender's. */
export type Failure = { by: 'receiver'; reason: RejectReason } | { by: 'sender'; reason: AbortReason };

/** The words `holdfast-proto` uses for each reason (`describe()`), for logs
 *  and the vectors; the UI shows its own translated text (i18n.ts). */
export function describeFailure(f: Failure): string {
  if (f.by === 'sender') {
    return {
      cancelled: 'cancelled by the sender',
      'read-failed': 'the sender could no longer read the file',
      protocol: 'a malformed transfer message',
    }[f.reason];
  }
  return {
    declined: 'the other side declined it',
    'not-allowed': 'file transfer or clipboard sharing is not allowed now',
    'bad-name': 'the name is not a plain file name',
    'too-large': 'too large',
    'no-space': 'not enough free disk space',
    'write-failed': 'the file could not be written',
    corrupted: 'the received bytes did not match (SHA-256)',
    cancelled: 'cancelled by the receiver',
    protocol: 'a malformed transfer message',
  }[f.reason];
}

export class ProtocolError extends Error {}

export type Event =
  | { type: 'chat'; n: number; text: string }
  | { type: 'offered'; id: number; kind: Kind; name: string; size: number }
  | { type: 'write'; id: number; offset: number; data: Uint8Array }
  | { type: 'verified'; id: number }
  | { type: 'clipboard'; kind: Kind; data: Uint8Array }
  | { type: 'discard'; id: number }
  | { type: 'finished'; id: number; direction: Direction; failure: Failure | null };

export interface ChunkJob {
  id: number;
  offset: number;
  len: number;
}
export type Poll = { type: 'ready'; bytes: Uint8Array } | { type: 'read'; job: ChunkJob };

export interface TransferView {
  id: number;
  direction: Direction;
  kind: Kind;
  name: string;
  size: number;
  /** Bytes confirmed by the receiver (outgoing) or received in order (incoming). */
  done: number;
  phase: Phase;
  /** Over the last few seconds, bytes a second. */
  rateBps: number | null;
  /** Seconds left at that rate. */
  etaSecs: number | null;
  failure: Failure | null;
  /** File bytes this side sent, counting any sent again after a cut. */
  bytesSent: number;
}

export interface ChatLine {
  mine: boolean;
  n: number;
  text: string;
}

class Rate {
  private samples: [number, number][] = [];

  record(now: number, done: number): void {
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[1][0] >= RATE_SPAN_MS) this.samples.shift();
  }

  bps(): number | null {
    if (this.samples.length === 0) return null;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    const span = (t1 - t0) / 1000;
    return span >= 0.2 ? Math.max(0, b1 - b0) / span : null;
  }
}

const isClipboard = (k: Kind) => k !== 'file';
const ended = (p: Phase) => p === 'done' || p === 'failed';
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

interface Outgoing {
  kind: Kind;
  name: string;
  size: number;
  /** Held here (clipboard), or null: read from a file by the shell. */
  memory: Uint8Array | null;
  phase: Phase;
  next: number;
  acked: number;
  hasher: ReturnType<typeof sha256.create>;
  hashed: number;
  bytesSent: number;
  rate: Rate;
  failure: Failure | null;
  /** Set when this side stopped it (said again after a reconnection). */
  aborted: AbortReason | null;
}

interface Incoming {
  kind: Kind;
  name: string;
  size: number;
  phase: Phase;
  accepted: boolean;
  have: number;
  confirmed: number;
  hasher: ReturnType<typeof sha256.create>;
  memory: Uint8Array[];
  rate: Rate;
  failure: Failure | null;
  rejected: RejectReason | null;
}

/** One side of a session's `transfer` channel. */
export class TransferEngine {
  private nextId: number;
  private open = false;
  // Maps iterate in insertion order; ids are sorted where Rust's BTreeMap is.
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly incoming = new Map<number, Incoming>();
  private readonly chatMine: string[] = [];
  private chatTheirs = 0;
  private readonly history: ChatLine[] = [];
  private control: Control[] = [];
  private readonly events: Event[] = [];

  constructor(private readonly side: Side) {
    this.nextId = side === 'host' ? 1 : 2;
  }

  private owns(id: number): boolean {
    return (id % 2 === 1) === (this.side === 'host');
  }

  private sorted<T>(m: Map<number, T>): [number, T][] {
    return [...m.entries()].sort((a, b) => a[0] - b[0]);
  }

  /** A `transfer` channel opened (the first, or one after a reconnection). */
  handleOpen(): void {
    this.open = true;
    this.control = [{ type: 'hello', chat_seen: this.chatTheirs }];
    for (const [id, o] of this.sorted(this.outgoing)) {
      if (o.phase === 'offered') this.control.push(offer(id, o));
      else if (o.phase === 'moving' || o.phase === 'paused' || o.phase === 'verifying') o.phase = 'paused';
      else if (o.phase === 'failed' && o.aborted) this.control.push({ type: 'abort', id, reason: o.aborted });
    }
    for (const [id, i] of this.sorted(this.incoming)) {
      if ((i.phase === 'moving' || i.phase === 'paused') && i.accepted) {
        i.phase = 'moving';
        this.control.push({ type: 'accept', id, from: i.have });
      } else if (i.phase === 'done') {
        this.control.push({ type: 'complete', id });
      } else if (i.phase === 'failed' && i.rejected) {
        this.control.push({ type: 'reject', id, reason: i.rejected });
      }
    }
  }

  /** The channel closed: everything unfinished waits for the next one. */
  handleClosed(): void {
    this.open = false;
    this.control = [];
    for (const o of this.outgoing.values()) if (o.phase === 'moving') o.phase = 'paused';
    for (const i of this.incoming.values()) if (i.phase === 'moving') i.phase = 'paused';
  }

  /** Sends a chat line (delivered once the channel is open); null at the session's limit. */
  sendChat(text: string): number | null {
    if (this.chatMine.length >= MAX_CHAT_MESSAGES) return null;
    const n = this.chatMine.length;
    this.remember({ mine: true, n, text });
    this.chatMine.push(text);
    if (this.open) this.control.push({ type: 'chat', n, text });
    return n;
  }

  /** Offers a file of `size` bytes; the shell reads it when asked. */
  sendFile(name: string, size: number): number {
    if (checkName(name) !== null) throw new Error(`not a plain file name: ${name}`);
    return this.start('file', name, size, null);
  }

  /** Offers clipboard content (held here until the receiver has it); a newer
   *  one replaces an older one still on its way. */
  sendClipboard(kind: Kind, data: Uint8Array): number {
    for (const [id, o] of this.sorted(this.outgoing)) {
      if (isClipboard(o.kind) && !ended(o.phase)) this.cancel(id);
    }
    return this.start(kind, '', data.length, data);
  }

  private start(kind: Kind, name: string, size: number, memory: Uint8Array | null): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 2) >>> 0;
    const o: Outgoing = {
      kind, name, size, memory, phase: 'offered', next: 0, acked: 0, hasher: sha256.create(), hashed: 0,
      bytesSent: 0, rate: new Rate(), failure: null, aborted: null,
    };
    if (this.open) this.control.push(offer(id, o));
    this.outgoing.set(id, o);
    return id;
  }

  /** This side takes incoming transfer `id` (after an `offered` event). */
  accept(id: number): void {
    const i = this.incoming.get(id);
    if (!i || i.phase !== 'offered') return;
    i.accepted = true;
    i.phase = 'moving';
    if (this.open) this.control.push({ type: 'accept', id, from: 0 });
  }

  /** This side turns down, or stops, incoming transfer `id`. */
  reject(id: number, reason: RejectReason): void {
    this.failIncoming(id, { by: 'receiver', reason }, true);
  }

  private failIncoming(id: number, failure: Failure, mine: boolean): void {
    const i = this.incoming.get(id);
    if (!i || ended(i.phase)) return;
    const wrote = i.accepted && i.kind === 'file';
    i.phase = 'failed';
    i.failure = failure;
    i.memory = [];
    i.rejected = mine && failure.by === 'receiver' ? failure.reason : null;
    if (i.rejected && this.open) this.control.push({ type: 'reject', id, reason: i.rejected });
    if (wrote) this.events.push({ type: 'discard', id });
    this.events.push({ type: 'finished', id, direction: 'incoming', failure });
  }

  /** Stops transfer `id`, whichever way it goes. */
  cancel(id: number): void {
    if (this.incoming.has(id)) this.reject(id, 'cancelled');
    else this.abort(id, 'cancelled');
  }

  /** Stops every unfinished transfer (control was taken away, the session ends). */
  stopAll(reason: RejectReason): void {
    for (const id of [...this.incoming.keys()].sort((a, b) => a - b)) this.reject(id, reason);
    for (const id of [...this.outgoing.keys()].sort((a, b) => a - b)) this.abort(id, 'cancelled');
  }

  private abort(id: number, reason: AbortReason): void {
    this.failOutgoing(id, { by: 'sender', reason }, true);
  }

  private failOutgoing(id: number, failure: Failure, mine: boolean): void {
    const o = this.outgoing.get(id);
    if (!o || ended(o.phase)) return;
    o.phase = 'failed';
    o.failure = failure;
    o.memory = null;
    o.aborted = mine && failure.by === 'sender' ? failure.reason : null;
    if (o.aborted && this.open) this.control.push({ type: 'abort', id, reason: o.aborted });
    this.events.push({ type: 'finished', id, direction: 'outgoing', failure });
  }

  /** The shell could not read outgoing file `id` any more. */
  readFailed(id: number): void {
    this.abort(id, 'read-failed');
  }

  /** The shell could not keep incoming file `id`. */
  writeFailed(id: number, reason: RejectReason): void {
    this.reject(id, reason);
  }

  /** The shell kept verified file `id` (or could not). */
  saved(id: number, result: RejectReason | null): void {
    const i = this.incoming.get(id);
    if (!i || i.phase !== 'verifying') return;
    if (result === null) {
      i.phase = 'done';
      if (this.open) this.control.push({ type: 'complete', id });
      this.events.push({ type: 'finished', id, direction: 'incoming', failure: null });
    } else {
      i.phase = 'moving'; // so reject() reports it
      this.reject(id, result);
    }
  }

  /** A message arrived. A bad one throws ProtocolError (the transfer it names
   *  is stopped) and changes nothing else. */
  handleMessage(now: number, msg: Message): void {
    if (msg.type === 'chunk') this.onChunk(now, msg.id, msg.offset, msg.data);
    else this.onControl(now, msg);
  }

  private onControl(now: number, c: Control): void {
    switch (c.type) {
      case 'hello': {
        const from = Math.min(c.chat_seen, this.chatMine.length);
        for (let n = from; n < this.chatMine.length; n++) this.control.push({ type: 'chat', n, text: this.chatMine[n] });
        return;
      }
      case 'chat': {
        if (c.n < this.chatTheirs) return; // sent again after a reconnection
        if (c.n > this.chatTheirs) throw new ProtocolError('a chat message out of order');
        this.chatTheirs += 1;
        this.remember({ mine: false, n: c.n, text: c.text });
        this.events.push({ type: 'chat', n: c.n, text: c.text });
        return;
      }
      case 'offer': {
        const { id, kind, name, size } = c;
        if (this.owns(id)) throw new ProtocolError("an offer with this side's id");
        const known = this.incoming.get(id);
        if (known) {
          if (known.kind === kind && known.name === name && known.size === size) return;
          throw new ProtocolError('a second, different offer under one id');
        }
        const active = [...this.incoming.values()].filter((i) => !ended(i.phase)).length;
        this.incoming.set(id, {
          kind, name, size, phase: 'offered', accepted: false, have: 0, confirmed: 0, hasher: sha256.create(),
          memory: [], rate: new Rate(), failure: null, rejected: null,
        });
        if (active >= MAX_INCOMING) {
          this.reject(id, 'too-large');
          return;
        }
        this.events.push({ type: 'offered', id, kind, name, size });
        return;
      }
      case 'accept': {
        const o = this.outgoing.get(c.id);
        if (!o) throw new ProtocolError('an accept for an unknown transfer');
        if (ended(o.phase)) return;
        if (c.from > o.size || c.from > Math.max(o.next, o.acked)) {
          this.abort(c.id, 'protocol');
          throw new ProtocolError('an accept past the bytes sent');
        }
        o.next = c.from;
        o.acked = Math.max(o.acked, c.from);
        o.phase = 'moving';
        o.rate.record(now, o.acked);
        if (c.from === o.size) this.finishSending(c.id);
        return;
      }
      case 'progress': {
        const o = this.outgoing.get(c.id);
        if (!o) throw new ProtocolError('progress for an unknown transfer');
        if (c.have > o.next || c.have > o.size) throw new ProtocolError('progress past the bytes sent');
        o.acked = Math.max(o.acked, c.have);
        o.rate.record(now, o.acked);
        return;
      }
      case 'complete': {
        const o = this.outgoing.get(c.id);
        if (!o) throw new ProtocolError('complete for an unknown transfer');
        if (ended(o.phase)) return;
        if (!((o.phase === 'verifying' || o.phase === 'paused') && o.next === o.size)) {
          throw new ProtocolError('complete before the end');
        }
        o.phase = 'done';
        o.acked = o.size;
        o.rate.record(now, o.acked);
        o.memory = null;
        this.events.push({ type: 'finished', id: c.id, direction: 'outgoing', failure: null });
        return;
      }
      case 'reject':
        if (!this.outgoing.has(c.id)) throw new ProtocolError('a reject for an unknown transfer');
        this.failOutgoing(c.id, { by: 'receiver', reason: c.reason }, false);
        return;
      case 'abort':
        if (!this.incoming.has(c.id)) throw new ProtocolError('an abort for an unknown transfer');
        this.failIncoming(c.id, { by: 'sender', reason: c.reason }, false);
        return;
      case 'end': {
        const i = this.incoming.get(c.id);
        if (!i) throw new ProtocolError('an end for an unknown transfer');
        if (!i.accepted || i.phase !== 'moving' || i.have !== i.size) {
          this.reject(c.id, 'protocol');
          throw new ProtocolError('an end before every byte arrived');
        }
        if (hex(i.hasher.clone().digest()) !== c.sha256) {
          this.reject(c.id, 'corrupted');
          return;
        }
        i.phase = 'verifying';
        i.rate.record(now, i.have);
        if (i.kind === 'file') {
          this.events.push({ type: 'verified', id: c.id });
        } else {
          const data = concat(i.memory, i.size);
          i.memory = [];
          this.events.push({ type: 'clipboard', kind: i.kind, data });
          this.saved(c.id, null);
        }
        return;
      }
    }
  }

  private onChunk(now: number, id: number, offset: number, data: Uint8Array): void {
    const i = this.incoming.get(id);
    if (!i) throw new ProtocolError('a chunk for an unknown transfer');
    if (ended(i.phase)) return; // a stopped transfer's chunks still in flight
    if (!(i.phase === 'moving' && i.accepted)) {
      this.reject(id, 'protocol');
      throw new ProtocolError('a chunk before the transfer was accepted');
    }
    const end = offset + data.length;
    if (offset !== i.have || end > i.size) {
      this.reject(id, 'protocol');
      throw new ProtocolError('a chunk out of order or past the end');
    }
    i.hasher.update(data);
    i.have = end;
    i.rate.record(now, i.have);
    if (i.have - i.confirmed >= PROGRESS_EVERY_BYTES || i.have === i.size) {
      i.confirmed = i.have;
      this.control.push({ type: 'progress', id, have: i.have });
    }
    if (i.kind === 'file') this.events.push({ type: 'write', id, offset, data });
    else i.memory.push(data.slice());
  }

  /** The next control message to send (send them all before any chunk). */
  pollControl(): Control | null {
    if (!this.open) return null;
    return this.control.shift() ?? null;
  }

  /** The next thing the shell must act on. */
  pollEvent(): Event | null {
    return this.events.shift() ?? null;
  }

  /** The next chunk to send: clipboard items before files, files in turn. */
  pollChunk(): Poll | null {
    if (!this.open || this.control.length > 0) return null;
    let pick: number | null = null;
    let best: [number, number] | null = null;
    for (const [id, o] of this.outgoing) {
      if (o.phase !== 'moving' || o.next >= o.size || o.next - o.acked >= WINDOW_BYTES) continue;
      const key: [number, number] = [isClipboard(o.kind) ? 0 : 1, id];
      if (!best || key[0] < best[0] || (key[0] === best[0] && key[1] < best[1])) {
        best = key;
        pick = id;
      }
    }
    if (pick === null) return null;
    const o = this.outgoing.get(pick)!;
    const len = Math.min(o.size - o.next, CHUNK_DATA);
    const offset = o.next;
    if (o.memory) {
      return { type: 'ready', bytes: this.chunk(pick, offset, o.memory.subarray(offset, offset + len))! };
    }
    return { type: 'read', job: { id: pick, offset, len } };
  }

  /** The bytes of a ChunkJob, read by the shell: the chunk's wire bytes, or
   *  null if the transfer moved on meanwhile (cancelled, resumed elsewhere). */
  chunk(id: number, offset: number, data: Uint8Array): Uint8Array | null {
    const o = this.outgoing.get(id);
    if (!o || o.phase !== 'moving' || offset !== o.next || data.length === 0 || data.length > MAX_CHUNK_DATA) return null;
    const end = offset + data.length;
    if (end > o.size) return null;
    // Hash each byte once, the first time it is read (a resume reads some again).
    if (end > o.hashed) {
      o.hasher.update(data.subarray(o.hashed - offset));
      o.hashed = end;
    }
    o.next = end;
    o.bytesSent += data.length;
    const bytes = encodeChunk(id, offset, data);
    if (end === o.size) this.finishSending(id);
    return bytes;
  }

  private finishSending(id: number): void {
    const o = this.outgoing.get(id);
    if (!o) return;
    o.phase = 'verifying';
    this.control.push({ type: 'end', id, sha256: hex(o.hasher.clone().digest()) });
  }

  /** Every transfer of the session, for the UI (outgoing, then incoming, by id). */
  transfers(): TransferView[] {
    const view = (id: number, direction: Direction, t: Outgoing | Incoming, done: number, bytesSent: number) => {
      const rate = t.phase === 'moving' ? t.rate.bps() : null;
      return {
        id, direction, kind: t.kind, name: t.name, size: t.size, done, phase: t.phase, rateBps: rate,
        etaSecs: rate !== null && rate > 0 ? (t.size - done) / rate : null, failure: t.failure, bytesSent,
      };
    };
    return [
      ...this.sorted(this.outgoing).map(([id, o]) => view(id, 'outgoing', o, o.acked, o.bytesSent)),
      ...this.sorted(this.incoming).map(([id, i]) => view(id, 'incoming', i, i.have, 0)),
    ];
  }

  /** The session's chat, oldest first. */
  chat(): readonly ChatLine[] {
    return this.history;
  }

  /** Whether any transfer has bytes still to move. */
  busy(): boolean {
    return [...this.outgoing.values()].some((o) => o.phase === 'moving' && o.next < o.size);
  }

  private remember(line: ChatLine): void {
    if (this.history.length >= 2 * MAX_CHAT_HISTORY) this.history.shift();
    this.history.push(line);
  }
}

function offer(id: number, o: Outgoing): Control {
  return { type: 'offer', id, kind: o.kind, name: o.name, size: o.size };
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
