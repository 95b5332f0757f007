import { describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { encodeControl, parse } from './transfer';
import { TransferEngine } from './transferengine';
import { SEND_BUFFER_HIGH, STALL_MS, Transfers, type Channel } from './transfers';

// The browser's shell against a host engine (the port: the Rust one is the
// same, transferengine.test.ts) over a scripted channel that can be cut.

class Wire implements Channel {
  readyState: RTCDataChannelState = 'open';
  sent: Uint8Array[] = [];
  get bufferedAmount(): number {
    return this.sent.reduce((n, b) => n + b.length, 0);
  }
  send(data: Uint8Array): void {
    if (this.readyState !== 'open') throw new Error('closed');
    this.sent.push(data.slice());
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function setup() {
  let now = 0;
  const changes = { n: 0 };
  const got: { chat: string[]; clipboard: string[]; files: Map<number, Blob> } = { chat: [], clipboard: [], files: new Map() };
  const viewer = new Transfers({
    onChange: () => { changes.n += 1; },
    onChat: (l) => got.chat.push(l.text),
    onClipboardText: (t) => got.clipboard.push(t),
    onReceived: (id, _name, blob) => got.files.set(id, blob),
  }, () => now);
  const host = new TransferEngine('host');
  const hostGot = new Map<number, Uint8Array[]>();
  let wire = new Wire();
  const connect = () => {
    wire = new Wire();
    viewer.attach(wire);
    viewer.trust(wire);
    host.handleOpen();
  };
  /** Moves everything waiting both ways, the host accepting what it is offered. */
  const exchange = async (rounds = 200) => {
    for (let r = 0; r < rounds; r++) {
      await tick();
      now += 5;
      let moved = false;
      for (const bytes of wire.sent.splice(0)) {
        moved = true;
        host.handleMessage(now, parse(bytes));
      }
      for (let e = host.pollEvent(); e; e = host.pollEvent()) {
        if (e.type === 'offered') host.accept(e.id);
        if (e.type === 'write') {
          const parts = hostGot.get(e.id) ?? [];
          parts.push(e.data.slice());
          hostGot.set(e.id, parts);
        }
        if (e.type === 'verified') host.saved(e.id, null);
      }
      for (let c = host.pollControl(); c; c = host.pollControl()) {
        moved = true;
        viewer.onMessage(wire, encodeControl(c));
      }
      for (let p = host.pollChunk(); p?.type === 'ready'; p = host.pollChunk()) viewer.onMessage(wire, p.bytes);
      viewer.pump();
      if (!moved && r > 5) break;
    }
  };
  const cut = () => {
    wire.readyState = 'closed';
    wire.sent = [];
    viewer.closed(wire);
    host.handleClosed();
  };
  const advance = (ms: number) => { now += ms; };
  return { viewer, host, hostGot, got, connect, exchange, cut, wire: () => wire, changes, advance };
}

function randomBlob(size: number): { blob: Blob; bytes: Uint8Array } {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  return { blob: new Blob([bytes]), bytes };
}

const named = (blob: Blob, name: string) => Object.assign(blob, { name });
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const join = (parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => Array.from(p)));

describe('browser transfers', () => {
  it('sends a file that survives a cut, resuming from the confirmed byte', async () => {
    const t = setup();
    t.connect();
    t.viewer.setAllowed({ control: true, files: true, clipboard: true });
    const { blob, bytes } = randomBlob(3 * 1024 * 1024 + 17);
    const [id] = t.viewer.sendFiles([named(blob, 'report.bin')]);
    for (let i = 0; i < 100 && t.viewer.transfers[0].done === 0; i++) await t.exchange(1);
    const mid = t.viewer.transfers[0];
    expect(mid.done).toBeGreaterThan(0);
    expect(mid.done).toBeLessThan(bytes.length);
    t.cut();
    expect(t.viewer.transfers[0].phase).toBe('paused');
    t.connect();
    await t.exchange();
    const v = t.viewer.transfers.find((x) => x.id === id)!;
    expect(v.phase).toBe('done');
    // Resumed, not restarted: less than one window sent twice.
    expect(v.bytesSent - bytes.length).toBeLessThan(8 * 1024 * 1024);
    expect(v.bytesSent).toBeLessThan(2 * bytes.length);
    expect(hex(sha256(join(t.hostGot.get(id)!)))).toBe(hex(sha256(bytes)));
  });

  it('keeps the send buffer under its high mark', async () => {
    const t = setup();
    t.connect();
    t.viewer.setAllowed({ control: true, files: true, clipboard: false });
    t.viewer.sendFiles([named(randomBlob(4 * 1024 * 1024).blob, 'a.bin')]);
    // The host accepts; nothing drains the wire: the shell stops at the mark.
    for (let i = 0; i < 5; i++) {
      await tick();
      const w = t.wire();
      for (const b of w.sent.filter((x) => x[0] !== 0)) t.host.handleMessage(0, parse(b));
      w.sent = w.sent.filter((x) => x[0] === 0);
      for (let e = t.host.pollEvent(); e; e = t.host.pollEvent()) if (e.type === 'offered') t.host.accept(e.id);
      for (let c = t.host.pollControl(); c; c = t.host.pollControl()) t.viewer.onMessage(t.wire(), encodeControl(c));
    }
    for (let i = 0; i < 200 && t.wire().bufferedAmount < SEND_BUFFER_HIGH; i++) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 20; i++) await tick();
    const buffered = t.wire().bufferedAmount;
    expect(buffered).toBeGreaterThanOrEqual(SEND_BUFFER_HIGH);
    expect(buffered).toBeLessThan(SEND_BUFFER_HIGH + 64 * 1024);
  });

  it('asks before taking a file from the host, and keeps it whole to save', async () => {
    const t = setup();
    t.connect();
    t.viewer.setAllowed({ control: true, files: true, clipboard: false });
    const size = 100_000;
    const id = t.host.sendFile('tools.tar', size);
    await t.exchange();
    expect(t.viewer.waiting(id)).toBe(true);
    expect(t.viewer.transfers[0].phase).toBe('offered');
    t.viewer.decide(id, true);
    // Host file bytes: the pattern, served when the host's engine asks.
    const data = Uint8Array.from({ length: size }, (_, i) => (i * 7) % 256);
    for (let round = 0; round < 20; round++) {
      await t.exchange(2);
      for (let p = t.host.pollChunk(); p; p = t.host.pollChunk()) {
        if (p.type !== 'read') break;
        const bytes = t.host.chunk(p.job.id, p.job.offset, data.subarray(p.job.offset, p.job.offset + p.job.len))!;
        t.viewer.onMessage(t.wire(), bytes);
        for (let c = t.host.pollControl(); c; c = t.host.pollControl()) t.viewer.onMessage(t.wire(), encodeControl(c));
      }
    }
    await t.exchange();
    const blob = t.got.files.get(id)!;
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(data);
    expect(t.viewer.file(id)?.name).toBe('tools.tar');
    expect(t.host.transfers()[0].phase).toBe('done');
  });

  it('refuses what may not cross: files and clipboard without control, clipboard with the switch off', async () => {
    const t = setup();
    t.connect();
    t.viewer.setAllowed({ control: false, files: true, clipboard: true });
    expect(t.viewer.sendFiles([named(new Blob(['x']), 'x.txt')])).toEqual([]);
    expect(t.viewer.sendClipboardText('secret')).toBe('not-allowed');
    const offered = t.host.sendFile('push.exe', 10);
    t.host.sendClipboard('clipboard-text', new TextEncoder().encode('from host'));
    await t.exchange();
    expect(t.viewer.waiting(offered)).toBe(false);
    expect(t.got.clipboard).toEqual([]);
    expect(t.host.transfers().map((v) => [v.phase, v.failure?.reason])).toEqual([
      ['failed', 'not-allowed'], ['failed', 'not-allowed'],
    ]);

    t.viewer.setAllowed({ control: true, files: true, clipboard: false });
    expect(t.viewer.sendClipboardText('secret')).toBe('not-allowed');
    t.viewer.setAllowed({ control: true, files: true, clipboard: true });
    expect(t.viewer.sendClipboardText('x'.repeat(1024 * 1024 + 1))).toBe('too-large');
    expect(t.viewer.sendClipboardText('copied here')).toBe('sent');
    expect(t.viewer.sendClipboardText('copied here')).toBe('unchanged');
    t.host.sendClipboard('clipboard-text', new TextEncoder().encode('copied there, 那边'));
    await t.exchange();
    expect(t.got.clipboard).toEqual(['copied there, 那边']);
    const texts: string[] = [];
    for (let e = t.host.pollEvent(); e; e = t.host.pollEvent()) if (e.type === 'clipboard') texts.push(new TextDecoder().decode(e.data));
    expect(t.host.transfers().filter((v) => v.direction === 'incoming').map((v) => v.phase)).toEqual(['done']);
  });

  it('says a transfer waits for the connection when nothing moves for a while', async () => {
    const t = setup();
    t.connect();
    t.viewer.setAllowed({ control: true, files: true, clipboard: false });
    t.viewer.sendFiles([named(randomBlob(4 * 1024 * 1024).blob, 'c.bin')]);
    await t.exchange(3);
    // The shell fills the buffer to its mark and stops.
    for (let i = 0; i < 200 && t.wire().bufferedAmount < SEND_BUFFER_HIGH; i++) await new Promise((r) => setTimeout(r, 5));
    t.viewer.tick();
    expect(t.viewer.linkDown).toBe(false);
    // The link goes quiet: nothing arrives and the send buffer holds.
    t.advance(STALL_MS + 1);
    t.viewer.tick();
    expect(t.viewer.linkDown).toBe(true);
    // It drains again: moving.
    t.wire().sent.splice(0, 1);
    t.viewer.tick();
    expect(t.viewer.linkDown).toBe(false);
  });

  it('cancels what it sends the moment control is taken away', async () => {
    const t = setup();
    t.connect();
    t.viewer.setAllowed({ control: true, files: true, clipboard: false });
    t.viewer.sendFiles([named(randomBlob(2 * 1024 * 1024).blob, 'b.bin')]);
    await t.exchange(3);
    t.viewer.setAllowed({ control: false, files: true, clipboard: false });
    expect(t.viewer.transfers[0].phase).toBe('failed');
    await t.exchange();
    expect(t.host.transfers()[0].phase).toBe('failed');
  });

  it('keeps what the host says before this side’s check passed, and drops it if the check fails', async () => {
    const t = setup();
    const wire = new Wire();
    t.viewer.attach(wire);
    t.host.handleOpen();
    t.host.sendChat('before your check');
    for (let c = t.host.pollControl(); c; c = t.host.pollControl()) t.viewer.onMessage(wire, encodeControl(c));
    expect(t.got.chat).toEqual([]);
    t.viewer.trust(wire);
    expect(t.got.chat).toEqual(['before your check']);

    // A connection that never passes its check: nothing it carried counts.
    const other = new Wire();
    t.viewer.attach(other);
    t.viewer.onMessage(other, encodeControl({ type: 'chat', n: 1, text: 'unchecked' }));
    t.viewer.closed(other);
    t.viewer.attach(new Wire());
    expect(t.got.chat).toEqual(['before your check']);
  });
});
