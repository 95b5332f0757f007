// The viewer screen's state-to-view mapping: the words, the reconnect button
// and its countdown, the control switch and the stats overlay.
import { beforeEach, describe, expect, it } from 'vitest';
import type { PictureStats } from './decoder';
import { setLanguage } from './i18n';
import { presentViewer, type ViewingView } from './viewscreen';

const T0 = 1_800_000_000_000;

function view(over: Partial<ViewingView> = {}): ViewingView {
  return {
    phase: 'connected', room: '123 456 789', attempt: null, retry_at_ms: null, grace_deadline_ms: null,
    grace_total_ms: 300_000, lost_link: null, control: true, view_only: false, host_away: false, route: null,
    frames: 100, fps: 10, bitrate_kbps: 1500, error: null, ...over,
  };
}

const pictures: PictureStats = {
  framesReceived: 100, framesDecoded: 99, framesSkipped: 0, decodeErrors: 0, fps: 10, width: 1280, height: 720,
  codedWidth: 1280, codedHeight: 720, lastLatencyMs: 20, latencyP50Ms: 18.4, latencyP95Ms: 40,
};

describe('the viewer screen', () => {
  beforeEach(() => setLanguage('en'));

  it('shows the form until there is a session, and the picture while there is', () => {
    expect(presentViewer(null, T0, null, 'webview').showForm).toBe(true);
    const p = presentViewer(view({ phase: 'waiting' }), T0, null, 'webview');
    expect(p.stateText).toBe('Waiting for the other person to accept…');
    expect([p.showForm, p.showStage, p.showReconnect]).toEqual([false, true, false]);
    expect(p.statsText).toBeNull();
  });

  it('connected: control, the switch, and the stats overlay', () => {
    const p = presentViewer(view(), T0, pictures, 'webview');
    expect(p.stateText).toBe('Connected');
    expect(p.stateClass).toBe('connected');
    expect(p.sendsInput).toBe(true);
    expect(p.toggleText).toBe('View only');
    expect(p.statsText).toBe('1280×720 · 10 fps · latency 18 ms · 1.5 Mbit/s · decoded by WebCodecs');
    const own = presentViewer(view({ view_only: true }), T0, pictures, 'rust');
    expect([own.sendsInput, own.toggleText, own.controlText]).toEqual([false, 'Take control', 'View only: your input is not sent.']);
    expect(own.statsText).toContain('decoded by OpenH264');
    const hosts = presentViewer(view({ control: false }), T0, pictures, 'webview');
    expect([hosts.sendsInput, hosts.toggleText]).toEqual([false, null]);
    const scaled = presentViewer(view(), T0, { ...pictures, codedWidth: 640, codedHeight: 360 }, 'webview');
    expect(scaled.statsText).toBe(
      '1280×720 · 10 fps · latency 18 ms · 1.5 Mbit/s · decoded by WebCodecs · sent at 640×360 for this link',
    );
  });

  it('a dropped connection shows the button and counts the window down', () => {
    const lost = view({ phase: 'disconnected', grace_deadline_ms: T0 + 300_000, lost_link: 'host' });
    const p = presentViewer(lost, T0 + 1_500, pictures, 'webview');
    expect(p.showReconnect).toBe(true);
    expect(p.countdown).toBe('4:59');
    expect(p.countdownText).toBe('The session can be resumed for 4:59 more (of 5:00).');
    const retry = presentViewer(
      view({ phase: 'reconnecting', attempt: 3, retry_at_ms: T0 + 4_000, grace_deadline_ms: T0 + 250_000, lost_link: 'server' }),
      T0, pictures, 'webview',
    );
    expect(retry.stateText).toBe('Reconnecting (attempt 3), next try in 4 s');
    expect(retry.countdown).toBe('4:10');
    expect(presentViewer(view({ phase: 'connected' }), T0, pictures, 'webview').showReconnect).toBe(false);
    // Run out: no button (the end comes from the core).
    expect(presentViewer(lost, T0 + 300_001, pictures, 'webview').showReconnect).toBe(false);
  });

  it('ended: the reason, the form again, nothing else', () => {
    const p = presentViewer(view({ phase: 'ended', error: 'The host declined your request to connect.' }), T0, pictures, 'webview');
    expect([p.showForm, p.showStage, p.showReconnect, p.sendsInput]).toEqual([true, false, false, false]);
    expect(p.stateText).toBe('Session ended');
    expect(p.endedText).toBe('The host declined your request to connect.');
    expect(p.statsText).toBeNull();
    expect(presentViewer(view({ phase: 'ended' }), T0, null, 'webview').endedText).toBe('The session has ended.');
  });

  it('speaks Chinese too', () => {
    setLanguage('zh-CN');
    expect(presentViewer(view({ phase: 'waiting' }), T0, null, 'webview').stateText).toBe('正在等待对方同意…');
  });
});
