import { describe, expect, it } from 'vitest';
import { formatClock, presentHost, presentReach, type HostView, type Reach } from './hostview';
import reachVectors from '../../tests/vectors/reach.json';

const room = { id: '123 456 789', code: 'k7p2qd', viewer_url: 'http://127.0.0.1:8080/#id=123456789&code=k7p2qd' };
const base: HostView = {
  phase: 'waiting', room, attempt: null, retry_at_ms: null, grace_deadline_ms: null, grace_total_ms: 300_000,
  viewers: [], control_enabled: true, error: null,
};
const viewer = (state: string, quality: 'good' | 'fair' | 'poor' | null = null) => ({
  peer_id: `p-${state}-${quality}`, state, control: true, quality, frames_dropped: 0, fps: 30, bitrate_kbps: 2500,
  metrics: quality ? { latency_ms: 42, packet_loss_percent: 1.25, jitter_ms: 7 } : null,
});

describe('formatClock', () => {
  it('reads m:ss, rounding up, never negative', () => {
    expect(formatClock(300_000)).toBe('5:00');
    expect(formatClock(299_001)).toBe('5:00');
    expect(formatClock(299_000)).toBe('4:59');
    expect(formatClock(61_000)).toBe('1:01');
    expect(formatClock(9_500)).toBe('0:10');
    expect(formatClock(1)).toBe('0:01');
    expect(formatClock(0)).toBe('0:00');
    expect(formatClock(-5000)).toBe('0:00');
  });
});

describe('presentHost', () => {
  it('maps each phase to words and a colour', () => {
    const cases: [HostView['phase'], string, string][] = [
      ['starting', 'Starting…', 'idle'],
      ['waiting', 'Waiting for a viewer', 'idle'],
      ['connecting', 'Viewer connecting…', 'connecting'],
      ['connected', 'Connected', 'connected'],
      ['failed', 'Connection failed', 'failed'],
      ['ended', 'Session ended', 'ended'],
    ];
    for (const [phase, text, cls] of cases) {
      const p = presentHost({ ...base, phase }, 0);
      expect([p.stateText, p.stateClass], phase).toEqual([text, cls]);
    }
  });

  it('shows the reconnect button with the window counting down while a dropped session can be resumed', () => {
    const v: HostView = { ...base, phase: 'disconnected', grace_deadline_ms: 300_000, viewers: [viewer('disconnected')] };
    const at0 = presentHost(v, 0);
    expect(at0.showReconnect).toBe(true);
    expect(at0.countdown).toBe('5:00');
    expect(at0.countdownText).toBe('The session can be resumed for 5:00 more (of 5:00).');
    expect(presentHost(v, 1).countdown).toBe('5:00');
    expect(presentHost(v, 1000).countdown).toBe('4:59');
    expect(presentHost(v, 299_500).countdown).toBe('0:01');
    expect(at0.showCredentials).toBe(true);
    // Run out before the core says so: ended, no button, a new session offered.
    const out = presentHost(v, 300_000);
    expect(out.showReconnect).toBe(false);
    expect(out.showEnded).toBe(true);
    expect(out.stateText).toBe('Session ended');
    expect(out.showCredentials).toBe(false);
    expect(out.endedText).toBe('The session ended: the viewer did not come back within 5:00.');
    // The core's verdict reads the same, and names the server when that was lost.
    const core = presentHost({ ...v, phase: 'ended', expired: true, lost_link: 'server', grace_deadline_ms: null }, 0);
    expect(core.endedText).toBe('The session ended: the connection to the server did not come back within 5:00.');
  });

  it('tells the attempt and the next try while reconnecting to the server', () => {
    const v: HostView = { ...base, phase: 'reconnecting', attempt: 3, retry_at_ms: 10_000, grace_deadline_ms: 200_000 };
    expect(presentHost(v, 6_100).stateText).toBe('Reconnecting (attempt 3), next try in 4 s');
    expect(presentHost(v, 10_000).stateText).toBe('Reconnecting (attempt 3)');
    expect(presentHost(v, 10_000).showReconnect).toBe(true);
    expect(presentHost(v, 10_000).countdown).toBe('3:10');
  });

  it('hides the button once connected again', () => {
    const p = presentHost({ ...base, phase: 'connected', viewers: [viewer('connected', 'good')] }, 0);
    expect(p.showReconnect).toBe(false);
    expect(p.countdown).toBe(null);
    expect(p.showEnded).toBe(false);
  });

  it('says why a session ended', () => {
    const p = presentHost({ ...base, phase: 'ended', error: 'The session ended: could not reconnect within 5:00' }, 0);
    expect(p.endedText).toBe('The session ended: could not reconnect within 5:00');
    expect(presentHost({ ...base, phase: 'ended' }, 0).endedText).toBe('This session has ended. Start a new one to share again.');
  });

  it('badges the worst connected viewer with what it was judged on', () => {
    const p = presentHost({ ...base, phase: 'connected', viewers: [viewer('connected', 'good'), viewer('connected', 'fair')] }, 0);
    expect(p.quality?.cls).toBe('fair');
    expect(p.quality?.text).toBe('Fair');
    expect(p.quality?.details).toBe('Latency 42 ms · loss 1.3 % · jitter 7 ms · 30 fps · 2.5 Mbit/s');
    // Once the viewer acknowledges what it draws, the capture-to-screen time too.
    const acked = { ...viewer('connected', 'fair'), shown_ms: 85 };
    expect(presentHost({ ...base, phase: 'connected', viewers: [acked] }, 0).quality?.details)
      .toBe('Latency 42 ms · loss 1.3 % · jitter 7 ms · 30 fps · 2.5 Mbit/s · 85 ms to screen');
    expect(presentHost({ ...base, phase: 'connected', viewers: [viewer('connected')] }, 0).quality?.cls).toBe('unknown');
    expect(presentHost({ ...base, phase: 'waiting' }, 0).quality).toBe(null);
  });
});

describe('presentReach', () => {
  it('offers the link to send only when someone else can open it, and says who', () => {
    const net = presentReach({ kind: 'network', address: '192.168.1.20' });
    expect(net.linkShareable).toBe(true);
    expect(net.reachText).toContain('192.168.1.20');
    expect(net.reachText).toContain('this network');
    const server = presentReach({ kind: 'server', host: 'support.example.com' });
    expect(server.linkShareable).toBe(true);
    expect(server.reachText).toContain('support.example.com');
    const local = presentReach({ kind: 'this-computer' });
    expect(local.linkShareable).toBe(false);
    expect(local.linkLabel).not.toContain('send');
    expect(local.reachText).toContain('Settings');
    // Not known yet: nothing offered.
    expect(presentReach(null).linkShareable).toBe(false);
  });
});

describe('reach as the Rust core writes it', () => {
  it('reads every variant of tests/vectors/reach.json', () => {
    const got = (reachVectors.reach as Reach[]).map((r) => presentReach(r));
    expect(got.map((p) => p.linkShareable)).toEqual(reachVectors.shareable);
    for (const p of got) expect(p.reachText).not.toBe('');
  });
});
