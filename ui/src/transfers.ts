// The browser viewer's side of the `transfer` channel: the engine's shell
// (transferengine.ts is the pure part). It lives as long as the session,
// across reconnections; each checked connection's channel is attached and
// detached. It reads the files the person picked (File.slice, a block ahead),
// keeps what the host sends in memory until the person saves it, keeps the
// channel's send buffer short so files never queue in front of what else
// this side says, and applies the host's `mode` (files, clipboard) and its
// own rules: nothing arrives unasked (each file from the host waits for the
// person's yes), the clipboard crosses only while this viewer has control
// and the host shares it.

import { MAX_CLIPBOARD_TEXT_BYTES, encodeControl, parse, type Control } from './transfer';
import { TransferEngine, type ChatLine, type Event, type TransferView } from './transferengine';

/** Bytes this side lets wait in the channel's send buffer: enough to keep a
 *  fast path busy between two wake-ups, little enough that a chat line or a
 *  cancel written now is not stuck behind seconds of file. */
export const SEND_BUFFER_HIGH = 1024 * 1024;
export const SEND_BUFFER_LOW = 256 * 1024;
/** What the browser reads from a file at once (served as 32 KiB chunks). */
const READ_BLOCK = 1024 * 1024;
/** What an incoming file may hold here (it waits in memory to be saved). */
export const MAX_INCOMING_FILE = 2 * 1024 * 1024 * 1024;
/** Messages kept from a connection before its check passed (then read, or dropped). */
const EARLY_MESSAGES = 64;
/** A transfer is shown as waiting for the connection when, while it moves,
 *  nothing arrived and the send buffer did not drain for this long: the
 *  channel outlives a short cut, and the browser's connection state can
 *  stay "connected" through one. */
export const STALL_MS = 4000;

/** What the shell needs of an RTCDataChannel (tests pass their own). */
export interface Channel {
  readonly readyState: RTCDataChannelState;
  readonly bufferedAmount: number;
  send(data: Uint8Array<ArrayBuffer>): void;
}

/** What the shell needs of a picked file (a File, or any Blob with a name). */
export interface Source {
  readonly name: string;
  readonly size: number;
  slice(start: number, end: number): Blob;
}

export interface TransferEvents {
  /** Something the panel shows changed. */
  onChange(): void;
  /** A chat line from the host. */
  onChat?(line: ChatLine): void;
  /** The host's clipboard text, to put on this side's clipboard. */
  onClipboardText?(text: string): void;
  /** A file from the host arrived whole and verified. */
  onReceived?(id: number, name: string, blob: Blob): void;
}

/** What the host allows now (its `mode`) and this viewer's own control. */
export interface Allowed {
  control: boolean;
  files: boolean;
  clipboard: boolean;
}

export class Transfers {
  readonly engine = new TransferEngine('viewer');
  private channel: Channel | null = null;
  private trusted = false;
  private early: Uint8Array[] = [];
  private readonly sources = new Map<number, Source>();
  private readonly received = new Map<number, Uint8Array[]>();
  private readonly blobs = new Map<number, { name: string; blob: Blob }>();
  /** Offers from the host that wait for the person. */
  private readonly asking = new Set<number>();
  private block: { id: number; offset: number; bytes: Uint8Array } | null = null;
  private pumping = false;
  private rejected = 0;
  allowed: Allowed = { control: false, files: false, clipboard: false };
  /** The session's connection is interrupted (set by the session). */
  sessionDown = false;
  private lastActivity = 0;
  private lastBuffered = 0;
  private stalled = false;
  /** The last clipboard text crossed either way (not sent back). */
  private lastClipboard: string | null = null;

  constructor(private readonly events: TransferEvents, private readonly now: () => number = () => performance.now()) {}

  /** Messages refused as malformed or out of turn (for tests and support). */
  get refused(): number {
    return this.rejected;
  }

  /** Bytes wait for the connection: the session says it is down, or
   *  nothing moved for STALL_MS while a transfer should. */
  get linkDown(): boolean {
    return this.sessionDown || this.stalled;
  }

  /** Once a second: notices a transfer that stopped moving. */
  tick(): void {
    const now = this.now();
    const buffered = this.channel?.bufferedAmount ?? 0;
    if (buffered < this.lastBuffered) this.lastActivity = now;
    this.lastBuffered = buffered;
    const moving = this.live && this.engine.transfers().some((v) => v.phase === 'moving');
    if (!moving) this.lastActivity = now;
    const stalled = moving && now - this.lastActivity > STALL_MS;
    if (stalled !== this.stalled) {
      this.stalled = stalled;
      this.events.onChange();
    }
  }

  get live(): boolean {
    return this.channel !== null && this.channel.readyState === 'open' && this.trusted;
  }

  /** A new connection's `transfer` channel (not yet checked). */
  attach(channel: Channel): void {
    if (this.live) this.engine.handleClosed();
    this.channel = channel;
    this.trusted = false;
    this.early = [];
  }

  /** The connection's check passed: what it carries counts from now on. */
  trust(channel: Channel): void {
    if (channel !== this.channel || this.trusted) return;
    this.trusted = true;
    this.opened(channel);
  }

  /** The channel opened (it may do so before or after the check). */
  opened(channel: Channel): void {
    if (channel !== this.channel || !this.live) return;
    this.engine.handleOpen();
    for (const m of this.early.splice(0)) this.onMessage(channel, m);
    this.changed();
  }

  closed(channel: Channel): void {
    if (channel !== this.channel) return;
    if (this.trusted) this.engine.handleClosed();
    this.channel = null;
    this.trusted = false;
    this.early = [];
    this.block = null;
    this.changed();
  }

  onMessage(channel: Channel, bytes: Uint8Array): void {
    if (channel !== this.channel) return;
    this.lastActivity = this.now();
    if (!this.live) {
      // The host may write as soon as its own check passed, a moment before
      // ours does: kept (a few), read once ours passes, dropped if it fails.
      if (this.early.length < EARLY_MESSAGES) this.early.push(bytes);
      else this.rejected += 1;
      return;
    }
    try {
      this.engine.handleMessage(this.now(), parse(bytes));
    } catch {
      this.rejected += 1;
    }
    this.changed();
  }

  /** The host's switches or this viewer's control changed. */
  setAllowed(allowed: Allowed): void {
    const was = this.allowed;
    this.allowed = allowed;
    if (was.control && !allowed.control) {
      // Control taken away: whatever this side is sending stops at once.
      for (const v of this.engine.transfers()) {
        if (v.direction === 'outgoing' && !ended(v)) this.engine.cancel(v.id);
      }
    }
    this.changed();
  }

  sendChat(text: string): boolean {
    const line = text.trim();
    if (!line) return false;
    const ok = this.engine.sendChat(Array.from(line).slice(0, 2000).join('')) !== null;
    this.changed();
    return ok;
  }

  /** Offers files to the host (the host's person, or its policy, accepts). */
  sendFiles(files: Iterable<Source>): number[] {
    if (!this.allowed.control || !this.allowed.files) return [];
    const ids: number[] = [];
    for (const f of files) {
      try {
        const id = this.engine.sendFile(f.name, f.size);
        this.sources.set(id, f);
        ids.push(id);
      } catch {
        /* a name the host would refuse: not offered (the panel says why) */
      }
    }
    this.changed();
    return ids;
  }

  /** Offers this side's clipboard text to the host: `sent`, or why not. */
  sendClipboardText(text: string): 'sent' | 'unchanged' | 'not-allowed' | 'too-large' {
    if (!this.allowed.control || !this.allowed.clipboard) return 'not-allowed';
    if (text === this.lastClipboard || text === '') return 'unchanged';
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > MAX_CLIPBOARD_TEXT_BYTES) return 'too-large';
    this.lastClipboard = text;
    this.engine.sendClipboard('clipboard-text', bytes);
    this.changed();
    return 'sent';
  }

  /** The person's answer to a file the host offered. */
  decide(id: number, accept: boolean): void {
    if (!this.asking.delete(id)) return;
    if (accept && this.allowed.control) this.engine.accept(id);
    else this.engine.reject(id, 'declined');
    this.changed();
  }

  cancel(id: number): void {
    this.asking.delete(id);
    this.engine.cancel(id);
    this.changed();
  }

  /** Offers waiting for the person's answer. */
  waiting(id: number): boolean {
    return this.asking.has(id);
  }

  /** A received file, for the person to save. */
  file(id: number): { name: string; blob: Blob } | null {
    return this.blobs.get(id) ?? null;
  }

  get transfers(): TransferView[] {
    return this.engine.transfers();
  }

  get chat(): readonly ChatLine[] {
    return this.engine.chat();
  }

  /** The channel drained below its low mark, or something to send was added. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.pumpAsync().finally(() => {
      this.pumping = false;
    });
  }

  private async pumpAsync(): Promise<void> {
    for (;;) {
      const ch = this.channel;
      if (!ch || !this.live) return;
      let c: Control | null;
      while ((c = this.engine.pollControl())) this.write(ch, encodeControl(c));
      if (ch.bufferedAmount >= SEND_BUFFER_HIGH) return; // bufferedamountlow calls again
      const p = this.engine.pollChunk();
      if (!p) return;
      if (p.type === 'ready') {
        this.write(ch, p.bytes);
        continue;
      }
      const { id, offset, len } = p.job;
      let data: Uint8Array;
      try {
        data = await this.read(id, offset, len);
      } catch {
        this.engine.readFailed(id);
        this.drainEvents();
        continue;
      }
      if (this.channel !== ch) return;
      const bytes = this.engine.chunk(id, offset, data);
      if (bytes) this.write(ch, bytes);
      this.drainEvents();
    }
  }

  private write(ch: Channel, bytes: Uint8Array): void {
    try {
      ch.send(bytes as Uint8Array<ArrayBuffer>);
    } catch {
      // Closing under us: the engine hears of it from `closed`.
    }
  }

  private async read(id: number, offset: number, len: number): Promise<Uint8Array> {
    const b = this.block;
    if (!b || b.id !== id || offset < b.offset || offset + len > b.offset + b.bytes.length) {
      const src = this.sources.get(id);
      if (!src) throw new Error('no such file');
      const end = Math.min(src.size, offset + Math.max(len, READ_BLOCK));
      const bytes = new Uint8Array(await src.slice(offset, end).arrayBuffer());
      if (bytes.length !== end - offset) throw new Error('the file changed size');
      this.block = { id, offset, bytes };
    }
    const at = offset - this.block!.offset;
    return this.block!.bytes.subarray(at, at + len);
  }

  private changed(): void {
    this.drainEvents();
    this.pump();
    this.events.onChange();
  }

  private drainEvents(): void {
    let ev: Event | null;
    while ((ev = this.engine.pollEvent())) this.onEvent(ev);
  }

  private onEvent(ev: Event): void {
    switch (ev.type) {
      case 'chat':
        this.events.onChat?.({ mine: false, n: ev.n, text: ev.text });
        break;
      case 'offered':
        if (ev.kind === 'file') {
          if (!this.allowed.control) this.engine.reject(ev.id, 'not-allowed');
          else if (ev.size > MAX_INCOMING_FILE) this.engine.reject(ev.id, 'too-large');
          else this.asking.add(ev.id);
        } else if (ev.kind === 'clipboard-text' && this.allowed.control && this.allowed.clipboard) {
          this.engine.accept(ev.id);
        } else {
          this.engine.reject(ev.id, 'not-allowed');
        }
        break;
      case 'write': {
        let parts = this.received.get(ev.id);
        if (!parts) this.received.set(ev.id, (parts = []));
        // The engine's bytes are ours to keep (a view of the message's buffer).
        parts.push(ev.data);
        break;
      }
      case 'verified': {
        const name = this.engine.transfers().find((v) => v.id === ev.id)?.name ?? 'file';
        const blob = new Blob((this.received.get(ev.id) ?? []) as BlobPart[], { type: 'application/octet-stream' });
        this.received.delete(ev.id);
        this.blobs.set(ev.id, { name, blob });
        this.engine.saved(ev.id, null);
        this.events.onReceived?.(ev.id, name, blob);
        break;
      }
      case 'clipboard':
        if (ev.kind === 'clipboard-text' && this.allowed.clipboard && this.allowed.control) {
          let text: string;
          try {
            text = new TextDecoder('utf-8', { fatal: true }).decode(ev.data);
          } catch {
            this.rejected += 1; // not text: never put on the clipboard
            break;
          }
          this.lastClipboard = text;
          this.events.onClipboardText?.(text);
        }
        break;
      case 'discard':
        this.received.delete(ev.id);
        break;
      case 'finished':
        this.sources.delete(ev.id);
        this.asking.delete(ev.id);
        if (this.block?.id === ev.id) this.block = null;
        break;
    }
  }
}

const ended = (v: TransferView) => v.phase === 'done' || v.phase === 'failed';
