import { afterEach, describe, expect, it } from 'vitest';
import { setLanguage } from './i18n';
import type { TransferView } from './transferengine';
import { formatBytes, formatDuration, presentTransfer } from './transferview';

const view = (over: Partial<TransferView>): TransferView => ({
  id: 2, direction: 'outgoing', kind: 'file', name: 'report.pdf', size: 200_000_000, done: 50_000_000,
  phase: 'moving', rateBps: 2_500_000, etaSecs: 60, failure: null, bytesSent: 50_000_000, ...over,
});

describe('transfer presentation', () => {
  afterEach(() => setLanguage('en'));

  it('formats sizes and durations as people read them', () => {
    expect([formatBytes(999), formatBytes(1500), formatBytes(200_000_000), formatBytes(3.2e9)]).toEqual(['999 B', '1.5 kB', '200 MB', '3.2 GB']);
    expect([formatDuration(4.4), formatDuration(200), formatDuration(3900)]).toEqual(['4 s', '3 min 20 s', '1 h 5 min']);
  });

  it('shows progress with rate and time left while bytes move', () => {
    const p = presentTransfer(view({}), false, false);
    expect(p).toMatchObject({ title: 'report.pdf', direction: 'To the host', progress: 0.25, state: 'moving', actions: ['cancel'] });
    expect(p.detail).toBe('50 MB of 200 MB · 2.5 MB/s · 1 min 0 s left');
  });

  it('asks about a file the host offers, offers saving once it arrived, and says why one failed', () => {
    const offer = presentTransfer(view({ id: 1, direction: 'incoming', phase: 'offered', done: 0 }), true, false);
    expect(offer.actions).toEqual(['accept', 'decline']);
    expect(offer.direction).toBe('From the host');
    expect(presentTransfer(view({ direction: 'incoming', phase: 'done', done: 200_000_000 }), false, true).actions).toEqual(['save']);
    const failed = presentTransfer(view({ phase: 'failed', failure: { by: 'receiver', reason: 'no-space' } }), false, false);
    expect(failed.detail).toBe('Failed: not enough free disk space on the other side');
    expect(presentTransfer(view({ phase: 'paused' }), false, false).detail).toMatch(/^Paused at 50 MB of 200 MB/);
    // A cut the channel outlives: no stale rate, the wait said plainly.
    const stalled = presentTransfer(view({}), false, false, true);
    expect([stalled.state, stalled.detail]).toEqual(['paused', 'Waiting for the connection to come back (50 MB of 200 MB)']);
  });

  it('speaks Chinese too', () => {
    setLanguage('zh-CN');
    const p = presentTransfer(view({ phase: 'failed', failure: { by: 'sender', reason: 'cancelled' } }), false, false);
    expect(p.direction).toBe('发往主机');
    expect(p.detail).toBe('失败：发送方已取消');
    expect(presentTransfer(view({ kind: 'clipboard-text', name: '' }), false, false).title).toBe('剪贴板文本');
  });
});
