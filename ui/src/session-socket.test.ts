// SignallingSession's socket handling with fake time and a fake WebSocket:
// a stalled socket is replaced by a fresh one that resumes the session.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  PING_INTERVAL_MS, PROBE_SPACING_MS, PROBE_TIMEOUT_MS, ResumeState, STALL_AFTER_MS, SignallingSession,
} from './signalling';

class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 3;
  static all: FakeSocket[] = [];
  readyState = FakeSocket.CONNECTING;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    if (this.readyState === FakeSocket.CLOSED) return;
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.();
  }
  // What the server side does:
  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }
  deliver(msg: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

const token = 't'.repeat(40);

describe('SignallingSession sockets', () => {
  let lost = 0;
  let admitted = 0;
  let session: SignallingSession;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
    FakeSocket.all = [];
    const target = new EventTarget();
    vi.stubGlobal('WebSocket', FakeSocket);
    vi.stubGlobal('window', {
      setTimeout, clearTimeout, setInterval, clearInterval,
      addEventListener: target.addEventListener.bind(target),
      removeEventListener: target.removeEventListener.bind(target),
      dispatchEvent: target.dispatchEvent.bind(target),
    });
    lost = 0;
    admitted = 0;
    session = new SignallingSession('ws://x/ws', new ResumeState('123456789', 'ABCDEFGHJK'), {
      onAdmitted: () => admitted++,
      onMessage: () => {},
      onLost: () => lost++,
      onEnded: () => {},
    });
    session.start();
    const first = FakeSocket.all[0];
    first.open();
    first.deliver({ type: 'joined', token, control: true });
    first.deliver({ type: 'offer', sdp: 'x', seq: 7 });
  });

  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('replaces a socket whose ping goes unanswered, resuming on the new one', () => {
    const [old] = FakeSocket.all;
    vi.advanceTimersByTime(PING_INTERVAL_MS);
    expect(old.sent.at(-1)).toEqual({ type: 'ping' });
    vi.advanceTimersByTime(STALL_AFTER_MS - 1);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    // While the network is still out, a fresh one every 0.5 s, overlapping;
    // each is given 1.5 s.
    vi.advanceTimersByTime(PROBE_SPACING_MS);
    expect(FakeSocket.all).toHaveLength(3);
    vi.advanceTimersByTime(PROBE_SPACING_MS);
    expect(FakeSocket.all).toHaveLength(4);
    expect(FakeSocket.all.slice(1).every((s) => s.readyState === FakeSocket.CONNECTING)).toBe(true);
    vi.advanceTimersByTime(PROBE_SPACING_MS);
    expect(FakeSocket.all[1].readyState).toBe(FakeSocket.CLOSED);
    expect(FakeSocket.all).toHaveLength(5);
    const connecting = () => FakeSocket.all.filter((s) => s !== old && s.readyState === FakeSocket.CONNECTING);
    for (let i = 0; i < 9; i++) {
      vi.advanceTimersByTime(PROBE_SPACING_MS); // to 14 s unanswered: the old socket is not yet given up
      expect(connecting().length).toBe(3);
    }
    expect(FakeSocket.all).toHaveLength(5 + 9);
    const waiting = connecting();
    // The network returns: the first to open carries the session; the rest go.
    const fresh = waiting[1];
    fresh.open();
    expect(waiting[0].readyState).toBe(FakeSocket.CLOSED);
    expect(waiting[2].readyState).toBe(FakeSocket.CLOSED);
    vi.advanceTimersByTime(5 * PROBE_SPACING_MS);
    expect(FakeSocket.all.filter((s) => s.readyState === FakeSocket.CONNECTING)).toHaveLength(0);
    expect(old.readyState).toBe(FakeSocket.CLOSED);
    expect(fresh.sent[0]).toEqual({ type: 'join', id: '123456789', token, last_seq: 7 });
    expect(lost).toBe(0);
    fresh.deliver({ type: 'joined', token, control: true });
    expect(admitted).toBe(2);
    // The session lives on the new socket.
    session.send({ type: 'answer', sdp: 'a' });
    expect(fresh.sent.at(-1)).toMatchObject({ type: 'answer', sdp: 'a' });
  });

  it('keeps a socket that answers, and gives a replacement that does not open 1.5 s', () => {
    const [old] = FakeSocket.all;
    vi.advanceTimersByTime(PING_INTERVAL_MS);
    old.deliver({ type: 'pong' });
    vi.advanceTimersByTime(STALL_AFTER_MS);
    expect(FakeSocket.all).toHaveLength(1);
    // The reconnect button (or `online`) while connected tries a fresh socket at once.
    session.reconnectNow();
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(PROBE_TIMEOUT_MS);
    expect(FakeSocket.all[1].readyState).toBe(FakeSocket.CLOSED);
    // The old socket is not suspect: one try, not a series.
    expect(FakeSocket.all).toHaveLength(2);
    expect(old.readyState).toBe(FakeSocket.OPEN);
    session.send({ type: 'answer', sdp: 'b' });
    expect(old.sent.at(-1)).toMatchObject({ type: 'answer', sdp: 'b' });
  });
});
