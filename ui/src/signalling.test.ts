import { describe, expect, it } from 'vitest';
import errorKinds from '../../tests/vectors/error-kinds.json';
import replayVectors from '../../tests/vectors/replay_policy.json';
import sessionDefaults from '../../tests/vectors/session.json';
import { BACKOFF_CAP_MS, GRACE_MS, ReconnectPolicy, ResumeState, isFatal, replayPolicy, resendsWritten } from './signalling';

describe('the replay policy the server announces', () => {
  it('decides resends as the Rust clients do (tests/vectors/replay_policy.json)', () => {
    expect(replayVectors.cases.length).toBeGreaterThan(3);
    for (const c of replayVectors.cases) {
      expect(resendsWritten(c.replay, c.away_secs), JSON.stringify(c)).toBe(c.resends_written);
    }
  });

  it('is read only when well formed', () => {
    expect(replayPolicy({ type: 'joined', replay: { messages: 50, ttl_ms: 300000 } })).toEqual({ messages: 50, ttl_ms: 300000 });
    expect(replayPolicy({ type: 'joined' })).toBeNull();
    expect(replayPolicy({ type: 'joined', replay: { messages: '50', ttl_ms: 1 } })).toBeNull();
  });

  it('keeps a long-absent viewer from sending its old answer late; what it queued still goes', () => {
    const s = new ResumeState('123456789', 'ABCD');
    const joined = { type: 'joined', token: 't'.repeat(40), control: true, replay: { messages: 50, ttl_ms: 60000 } };
    s.onMessage(joined);
    s.send({ type: 'answer', sdp: 'a1' });
    s.disconnected();
    s.send({ type: 'candidate', candidate: { candidate: 'c2' } });
    s.onMessage({ type: 'reconnection-detected', disconnect_duration: 120, missed_message_count: 0, last_received: 0 });
    const r = s.onMessage(joined);
    expect(r.kind).toBe('admitted');
    if (r.kind !== 'admitted') return;
    expect(r.resend.map((m) => m.type)).toEqual(['candidate']);
  });
});

describe('ReconnectPolicy', () => {
  it('doubles its ceiling from 1 s to 30 s and stays there', () => {
    const p = new ReconnectPolicy();
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((n) => p.ceiling(n) / 1000)).toEqual([1, 2, 4, 8, 16, 30, 30, 30]);
  });

  it('draws every delay uniformly under the ceiling, and resets', () => {
    let x = 0;
    const p = new ReconnectPolicy(1000, 30_000, () => ((x = (x * 9301 + 49297) % 233280) / 233280));
    for (let n = 0; n < 100; n++) {
      const ceiling = p.ceiling(p.attempt);
      const d = p.nextDelay();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
    const spread = Array.from({ length: 2000 }, () => {
      const q = new ReconnectPolicy(1000, 30_000);
      q.attempt = 10;
      return q.nextDelay();
    });
    const mean = spread.reduce((a, b) => a + b, 0) / spread.length;
    expect(Math.abs(mean - BACKOFF_CAP_MS / 2)).toBeLessThan(1500);
    expect(Math.min(...spread)).toBeLessThan(3000);
    expect(Math.max(...spread)).toBeGreaterThan(27_000);
    p.reset();
    expect(p.attempt).toBe(0);
  });
});

describe('ResumeState', () => {
  const joined = { type: 'joined', token: 't'.repeat(40), control: true };

  it('joins with the gate, then resumes with the token and the last sequence', () => {
    const s = new ResumeState('123456789', 'ABCD');
    expect(s.hello()).toEqual({ type: 'join', id: '123456789', gate: 'ABCD' });
    expect(s.onMessage(joined).kind).toBe('admitted');
    expect(s.onMessage({ type: 'offer', sdp: 'x', seq: 4 }).kind).toBe('deliver');
    expect(s.hello()).toEqual({ type: 'join', id: '123456789', token: 't'.repeat(40), last_seq: 4 });
  });

  it('drops replayed messages it already has', () => {
    const s = new ResumeState('1', 'c');
    s.onMessage(joined);
    expect(s.onMessage({ type: 'candidate', seq: 1 }).kind).toBe('deliver');
    expect(s.onMessage({ type: 'candidate', seq: 1 }).kind).toBe('duplicate');
    expect(s.onMessage({ type: 'candidate', seq: 2 }).kind).toBe('deliver');
  });

  it('queues while disconnected and resends what the server did not take, once, in order', () => {
    const s = new ResumeState('1', 'c');
    s.onMessage(joined);
    expect(s.send({ type: 'answer', sdp: 'a1' })).toEqual({ type: 'answer', sdp: 'a1', seq: 1 });
    expect(s.send({ type: 'candidate', c: 2 })?.seq).toBe(2);
    s.disconnected();
    expect(s.send({ type: 'candidate', c: 3 })).toBeNull();
    expect(s.send({ type: 'ping' })).toBeNull();
    s.onMessage({ type: 'reconnection-detected', disconnect_duration: 10, missed_message_count: 0, last_received: 1 });
    const r = s.onMessage(joined);
    if (r.kind !== 'admitted') throw new Error(r.kind);
    expect(r.reconnection?.disconnect_duration).toBe(10);
    expect(r.resend.map((m) => m.seq)).toEqual([2, 3]);
  });

  it('after a server restart sends only what was never written', () => {
    const s = new ResumeState('1', 'c');
    s.onMessage(joined);
    s.send({ type: 'answer', sdp: 'a1' });
    s.disconnected();
    s.send({ type: 'candidate', c: 2 });
    const r = s.onMessage(joined);
    if (r.kind !== 'admitted') throw new Error(r.kind);
    expect(r.reconnection).toBeNull();
    expect(r.resend.map((m) => m.seq)).toEqual([2]);
    expect(s.onMessage({ type: 'offer', seq: 1 }).kind).toBe('deliver');
  });

  it('resumed on a restarted server that expected it, sends only what was never written', () => {
    const s = new ResumeState('1', 'c');
    s.onMessage(joined);
    s.send({ type: 'answer', sdp: 'a1' });
    expect(s.onMessage({ type: 'offer', seq: 7 }).kind).toBe('deliver');
    s.disconnected();
    s.send({ type: 'candidate', c: 2 });
    // No last_received: the new server cannot know what the old one took.
    s.onMessage({ type: 'reconnection-detected', disconnect_duration: 12, missed_message_count: 1 });
    const r = s.onMessage(joined);
    if (r.kind !== 'admitted') throw new Error(r.kind);
    expect(r.reconnection?.disconnect_duration).toBe(12);
    expect(r.resend.map((m) => m.seq)).toEqual([2]);
    // Its numbers continue above the old server's.
    expect(s.onMessage({ type: 'offer', seq: 1_800_000_000_001 }).kind).toBe('deliver');
  });

  it('tells refusals that retrying cannot fix from passing ones', () => {
    expect(isFatal('session-ended')).toBe(true);
    expect(isFatal('invalid-credentials')).toBe(true);
    expect(isFatal('session-unavailable')).toBe(false);
    expect(isFatal('locked-out')).toBe(false);
    const s = new ResumeState('1', 'c');
    const r = s.onMessage({ type: 'error', code: 'session-unavailable', message: 'wait', retry_after_ms: 1000 });
    expect(r).toEqual({ kind: 'refused', code: 'session-unavailable', message: 'wait', retryAfterMs: 1000 });
    expect(s.onMessage({ type: 'room-closed', reason: 'bye' })).toEqual({ kind: 'ended', reason: 'bye' });
  });

  it('talks to the host while pending, and a refusal then still ends the join', () => {
    const s = new ResumeState('1', 'ABCD');
    expect(s.send({ type: 'answer', sdp: 'a' })).toBeNull();
    expect(s.onMessage({ type: 'awaiting-consent', timeout_ms: 30000, ice_servers: [] }).kind).toBe('deliver');
    expect(s.pending && !s.admitted).toBe(true);
    expect(s.send({ type: 'answer', sdp: 'b' })).toEqual({ type: 'answer', sdp: 'b', seq: 2 });
    expect(s.onMessage({ type: 'error', code: 'auth-failed', message: 'wrong code' }).kind).toBe('refused');
    expect(s.admitted).toBe(false);
  });

  it('does not take again what it received while pending, after a drop', () => {
    const s = new ResumeState('1', 'ABCD');
    s.onMessage({ type: 'awaiting-consent', timeout_ms: 30000, ice_servers: [] });
    expect(s.onMessage({ type: 'offer', sdp: 'o', seq: 7 }).kind).toBe('deliver');
    expect(s.onMessage({ type: 'joined', token: 't'.repeat(40) }).kind).toBe('admitted');
    s.disconnected();
    expect(s.hello()).toMatchObject({ type: 'join', last_seq: 7 });
    expect(s.onMessage({ type: 'offer', sdp: 'o', seq: 7 }).kind).toBe('duplicate');
  });

  it('gives up on the same server errors as the Rust client (tests/vectors/error-kinds.json)', () => {
    for (const k of errorKinds.kinds) expect(isFatal(k.code), k.code).toBe(k.fatal);
  });

  it('keeps the same default grace window as the Rust side until the server says its own', () => {
    expect(GRACE_MS).toBe(sessionDefaults.grace_ms);
  });
});
