import { describe, expect, it } from 'vitest';
import { LONG_TOAST_MS, TOAST_MS, Toasts } from './toasts';

describe('Toasts', () => {
  it('words every notice', () => {
    const ts = new Toasts(20);
    const texts = [
      ts.push({ kind: 'join-request', peer_id: 'a', address: '10.0.0.7', timeout_ms: 30_000 }, 0),
      ts.push({ kind: 'joined', peer_id: 'b', control: false }, 0),
      ts.push({ kind: 'left', peer_id: 'c' }, 0),
      ts.push({ kind: 'connection-lost', link: 'server' }, 0),
      ts.push({ kind: 'reconnecting', link: 'viewer', attempt: 2, retry_in_ms: 0 }, 0),
      ts.push({ kind: 'frames-dropped', count: 12 }, 0),
      ts.push({ kind: 'expiring-soon', left_ms: 60_000 }, 0),
    ].map((x) => x.text);
    expect(texts).toEqual([
      'A viewer at 10.0.0.7 asks to connect.',
      'A viewer joined (view only).',
      'The viewer left.',
      'Lost the connection to the server.',
      'Repairing the connection to the viewer (attempt 2).',
      'The network is slow: skipped frames to keep up (12).',
      'The session ends in 1:00 unless the connection comes back.',
    ]);
  });

  it('tells a wrong code from someone in the middle, and a new code stays until dismissed', () => {
    const ts = new Toasts();
    const wrong = ts.push({ kind: 'check-failed', address: '10.0.0.9', reason: 'wrong-code' }, 0);
    expect(wrong.text).toBe('A viewer at 10.0.0.9 gave a wrong code and was turned away.');
    const middle = ts.push({ kind: 'check-failed', address: '10.0.0.8', reason: 'intercepted' }, 0);
    expect(middle.text).toBe('Someone in the middle tried to connect (from 10.0.0.8): refused.');
    expect(middle.level).toBe('error');
    const code = ts.push({ kind: 'code-changed' }, 0);
    expect(code.until).toBeNull();
    expect(code.text).toContain('the code changed');
  });

  it('a newer notice on the same link replaces the older: attempts, then restored', () => {
    const ts = new Toasts();
    ts.push({ kind: 'connection-lost', link: 'server' }, 0);
    ts.push({ kind: 'reconnecting', link: 'server', attempt: 1, retry_in_ms: 1000 }, 100);
    ts.push({ kind: 'reconnecting', link: 'server', attempt: 2, retry_in_ms: 2000 }, 1200);
    ts.push({ kind: 'connection-lost', link: 'viewer' }, 1300);
    expect(ts.visible.map((x) => x.text)).toEqual([
      'Reconnecting to the server (attempt 2).',
      'Lost the connection to the viewer.',
    ]);
    const restored = ts.push({ kind: 'restored', link: 'server' }, 5000);
    expect(ts.visible.map((x) => x.text)).toEqual(['Lost the connection to the viewer.', 'Connection to the server restored.']);
    expect(restored.level).toBe('success');
    expect(restored.until).toBe(5000 + TOAST_MS);
  });

  it('problems stay until resolved or dismissed; the rest time out', () => {
    const ts = new Toasts();
    const lost = ts.push({ kind: 'connection-lost', link: 'viewer' }, 0);
    ts.push({ kind: 'joined', peer_id: 'p', control: true }, 0);
    const soon = ts.push({ kind: 'expiring-soon', left_ms: 60_000 }, 0);
    expect(ts.expire(TOAST_MS - 1)).toBe(false);
    expect(ts.expire(TOAST_MS)).toBe(true);
    expect(ts.visible.map((x) => x.id)).toEqual([lost.id, soon.id]);
    ts.expire(LONG_TOAST_MS);
    expect(ts.visible.map((x) => x.id)).toEqual([lost.id]);
    expect(ts.expire(10 * 60_000)).toBe(false);
    ts.dismiss(lost.id);
    expect(ts.visible).toEqual([]);
  });

  it('shows a failed command as it is, for a while', () => {
    const ts = new Toasts();
    const e = ts.push({ kind: 'error', message: 'not sharing' }, 0);
    expect([e.text, e.level, e.until]).toEqual(['not sharing', 'error', LONG_TOAST_MS]);
  });

  it('keeps at most four, dropping the oldest; a join request goes when answered', () => {
    const ts = new Toasts();
    for (let i = 0; i < 6; i++) ts.push({ kind: 'joined', peer_id: `p${i}`, control: true }, i);
    expect(ts.visible.length).toBe(4);
    expect(ts.visible[0].topic).toBe('join:p2');
    ts.push({ kind: 'join-request', peer_id: 'q', address: '10.0.0.2', timeout_ms: 30_000 }, 10);
    ts.clear('join:q');
    expect(ts.visible.some((x) => x.topic === 'join:q')).toBe(false);
  });
});
