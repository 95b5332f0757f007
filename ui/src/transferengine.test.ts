import { describe, expect, it } from 'vitest';
import vectors from '../../tests/vectors/transfer-engine.json';
import { encodeChunk, parse, type Kind, type RejectReason } from './transfer';
import { ProtocolError, TransferEngine, describeFailure, type Event, type Side } from './transferengine';

// The Rust engine's scenarios (crates/holdfast-transfer/tests/engine_vectors.rs),
// replayed call by call through this port, one engine per side; each step's
// result, messages, events, views and chat must be what the Rust engine gave.

const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const pattern = (offset: number, len: number) => Uint8Array.from({ length: len }, (_, i) => ((offset + i) * 31 + 7) % 251);
const isPattern = (offset: number, data: Uint8Array) => data.every((b, i) => b === ((offset + i) * 31 + 7) % 251);

/** A message as the vectors write it. */
function wire(bytes: Uint8Array): unknown {
  const m = parse(bytes);
  if (m.type === 'chunk' && isPattern(m.offset, m.data)) return { chunk: { id: m.id, offset: m.offset, len: m.data.length } };
  return { hex: toHex(bytes) };
}

function unwire(v: any): Uint8Array {
  if (v.hex !== undefined) return fromHex(v.hex);
  const c = v.chunk;
  return encodeChunk(c.id, c.offset, pattern(c.offset, c.len));
}

function eventValue(e: Event): unknown {
  switch (e.type) {
    case 'write':
      return { type: 'write', id: e.id, offset: e.offset, len: e.data.length, hex: isPattern(e.offset, e.data) ? null : toHex(e.data) };
    case 'clipboard':
      return { type: 'clipboard', kind: e.kind, data: toHex(e.data) };
    case 'finished':
      return { type: 'finished', id: e.id, direction: e.direction, error: e.failure ? describeFailure(e.failure) : null };
    default:
      return e;
  }
}

function run(engine: TransferEngine, now: number, op: any): unknown {
  switch (op.op) {
    case 'open': engine.handleOpen(); return null;
    case 'closed': engine.handleClosed(); return null;
    case 'recv':
      try {
        engine.handleMessage(now, parse(unwire(op.msg)));
        return null;
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        return { error: e.message };
      }
    case 'chat': return engine.sendChat(op.text);
    case 'file': return engine.sendFile(op.name, op.size);
    case 'clipboard': return engine.sendClipboard(op.kind as Kind, fromHex(op.data));
    case 'accept': engine.accept(op.id); return null;
    case 'reject': engine.reject(op.id, op.reason as RejectReason); return null;
    case 'cancel': engine.cancel(op.id); return null;
    case 'saved': engine.saved(op.id, op.reason ?? null); return null;
    case 'poll_chunk': {
      const p = engine.pollChunk();
      if (!p) return null;
      return p.type === 'ready' ? { ready: wire(p.bytes) } : { read: p.job };
    }
    case 'chunk': {
      const bytes = engine.chunk(op.id, op.offset, pattern(op.offset, op.len));
      return bytes ? wire(bytes) : null;
    }
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

describe('transfer engine (the browser port)', () => {
  it('replays the Rust engine’s scenarios step for step (tests/vectors/transfer-engine.json)', () => {
    expect(vectors.scenarios.length).toBeGreaterThanOrEqual(4);
    for (const scenario of vectors.scenarios) {
      const engines: Record<Side, TransferEngine> = { host: new TransferEngine('host'), viewer: new TransferEngine('viewer') };
      scenario.steps.forEach((step: any, n: number) => {
        const where = `${scenario.name}, step ${n} (${step.side} ${JSON.stringify(step.op).slice(0, 120)})`;
        const e = engines[step.side as Side];
        const result = run(e, step.now_ms, step.op);
        const controls = [];
        for (let c = e.pollControl(); c; c = e.pollControl()) controls.push(c);
        const events = [];
        for (let ev = e.pollEvent(); ev; ev = e.pollEvent()) events.push(eventValue(ev));
        const views = e.transfers().map((v) => [
          v.id, v.direction, v.kind, v.phase, v.done, v.size, v.bytesSent, v.failure ? describeFailure(v.failure) : null, v.failure,
        ]);
        const chat = e.chat().map((l) => [l.mine, l.n, l.text]);
        expect({ result, controls, events, views, chat, busy: e.busy() }, where).toEqual({
          result: step.result, controls: step.controls, events: step.events, views: step.views, chat: step.chat, busy: step.busy,
        });
      });
    }
  });

  it('measures a rate and the time left while bytes move', () => {
    const viewer = new TransferEngine('viewer');
    viewer.handleOpen();
    const id = viewer.sendFile('a.bin', 10 * 1024 * 1024);
    while (viewer.pollControl());
    viewer.handleMessage(0, { type: 'accept', id, from: 0 });
    let now = 0;
    for (let sent = 0; sent < 4 * 1024 * 1024; ) {
      const p = viewer.pollChunk();
      if (p?.type !== 'read') break;
      viewer.chunk(id, p.job.offset, new Uint8Array(p.job.len));
      sent += p.job.len;
      now += 100;
      if (sent % (1024 * 1024) === 0) viewer.handleMessage(now, { type: 'progress', id, have: sent });
    }
    const [v] = viewer.transfers();
    // 1 MiB confirmed every 3.2 s.
    expect(v.rateBps).toBeGreaterThan(300_000);
    expect(v.rateBps).toBeLessThan(350_000);
    expect(v.etaSecs).toBeGreaterThan(15);
  });
});
