// The desktop app's viewer screen as the person sees it: which words and
// colour the state line has, whether the form, the picture, the reconnect
// button (with its countdown) or the "ended" message show, and what the
// stats overlay reads. Pure: the Rust core's `ViewingView`, the decoder's
// figures and the time in, a presentation out.

import type { PictureStats } from './decoder';
import { formatClock, type Phase, type StateClass } from './hostview';
import { t } from './i18n';

export interface ViewingView {
  phase: Phase;
  room: string;
  attempt: number | null;
  retry_at_ms: number | null;
  grace_deadline_ms: number | null;
  grace_total_ms: number;
  lost_link: 'server' | 'host' | null;
  control: boolean;
  view_only: boolean;
  host_away: boolean;
  /** The path in use: straight to the host or through a TURN relay. */
  route: 'direct' | 'relayed' | null;
  frames: number;
  fps: number | null;
  bitrate_kbps: number | null;
  error: string | null;
}

export type Decoder = 'webview' | 'rust';

export interface ViewerPresentation {
  stateText: string;
  stateClass: StateClass;
  /** The ID and code form: before connecting and after the end. */
  showForm: boolean;
  /** The picture and its bar. */
  showStage: boolean;
  showReconnect: boolean;
  countdown: string | null;
  countdownText: string | null;
  endedText: string | null;
  /** Whether our input goes to the host, and what the switch reads. */
  sendsInput: boolean;
  controlText: string;
  toggleText: string | null;
  hostAway: boolean;
  statsText: string | null;
}

const DOWN: readonly Phase[] = ['disconnected', 'reconnecting', 'failed'];

const CLASS: Record<Phase, StateClass> = {
  starting: 'idle', waiting: 'idle', connecting: 'connecting', connected: 'connected',
  disconnected: 'warning', reconnecting: 'warning', failed: 'failed', ended: 'ended',
};

function stateText(v: ViewingView, now: number): string {
  switch (v.phase) {
    case 'starting':
    case 'waiting':
    case 'connecting':
      return t(`viewer.state.${v.phase}`);
    case 'reconnecting':
      if (v.attempt && v.retry_at_ms !== null && v.retry_at_ms > now) {
        return t('state.reconnectingRetry', { n: v.attempt, s: Math.ceil((v.retry_at_ms - now) / 1000) });
      }
      return v.attempt ? t('state.reconnectingAttempt', { n: v.attempt }) : t('state.reconnecting');
    default:
      return t(`state.${v.phase}` as const);
  }
}

function bitrate(kbps: number | null): string {
  if (kbps === null) return '–';
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${kbps.toFixed(0)} kbit/s`;
}

export function presentViewer(
  v: ViewingView | null, now: number, pictures: PictureStats | null, decoder: Decoder,
): ViewerPresentation {
  if (v === null) {
    return {
      stateText: '', stateClass: 'idle', showForm: true, showStage: false, showReconnect: false, countdown: null,
      countdownText: null, endedText: null, sendsInput: false, controlText: '', toggleText: null, hostAway: false,
      statsText: null,
    };
  }
  const left = v.grace_deadline_ms === null ? null : v.grace_deadline_ms - now;
  const ended = v.phase === 'ended';
  const showReconnect = !ended && DOWN.includes(v.phase) && left !== null && left > 0;
  const sendsInput = !ended && v.control && !v.view_only;
  const endedText = !ended ? null
    : v.error ?? t('viewer.ended');
  let statsText: string | null = null;
  if (!ended && pictures && pictures.framesDecoded > 0) {
    statsText = t('viewer.stats', {
      w: pictures.width, h: pictures.height, fps: pictures.fps,
      latency: pictures.latencyP50Ms === null ? '–' : `${pictures.latencyP50Ms.toFixed(0)} ms`,
      bitrate: bitrate(v.bitrate_kbps),
      decoder: t(decoder === 'rust' ? 'viewer.decoderRust' : 'viewer.decoderWebview'),
    });
    if (pictures.codedWidth && (pictures.codedWidth !== pictures.width || pictures.codedHeight !== pictures.height)) {
      statsText += ` · ${t('viewer.sentAt', { w: pictures.codedWidth, h: pictures.codedHeight })}`;
    }
    if (v.route === 'relayed') statsText += ` · ${t('viewer.relayed')}`;
  }
  return {
    stateText: ended ? t('state.ended') : stateText(v, now),
    stateClass: ended ? 'ended' : CLASS[v.phase],
    showForm: ended,
    showStage: !ended,
    showReconnect,
    countdown: showReconnect ? formatClock(left!) : null,
    countdownText: showReconnect
      ? t('reconnect.window', { left: formatClock(left!), total: formatClock(v.grace_total_ms) })
      : null,
    endedText,
    sendsInput,
    controlText: t(sendsInput ? 'viewer.controlOn' : 'viewer.controlOff'),
    toggleText: ended || !v.control ? null : t(v.view_only ? 'viewer.takeControl' : 'viewer.viewOnly'),
    hostAway: !ended && v.host_away,
    statsText,
  };
}
