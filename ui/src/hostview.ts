// The host screen's state as the person sees it: which words, which colour,
// whether the reconnect button shows and what its countdown reads. Pure:
// the Rust core's `HostView` and the time in, a presentation out.

import type { RustTransferState } from './transferview';
import { t } from './i18n';

export type Phase =
  | 'starting' | 'waiting' | 'connecting' | 'connected' | 'disconnected' | 'reconnecting' | 'failed' | 'ended';
export type QualityClass = 'good' | 'fair' | 'poor';

export interface RoomInfo { id: string; code: string; viewer_url: string }
export interface Metrics { latency_ms: number; packet_loss_percent: number; jitter_ms: number; bandwidth_kbps?: number | null }
export interface ViewerView {
  peer_id: string;
  state: string;
  control: boolean;
  quality: QualityClass | null;
  metrics: Metrics | null;
  frames_dropped: number;
  fps?: number | null;
  bitrate_kbps?: number | null;
  /** Capture to the viewer's screen, median, from its acknowledgements. */
  shown_ms?: number | null;
  /** Files, chat and what may cross with this viewer. */
  transfer?: RustTransferState;
}
export interface HostView {
  phase: Phase;
  room: RoomInfo | null;
  attempt: number | null;
  retry_at_ms: number | null;
  grace_deadline_ms: number | null;
  grace_total_ms: number;
  /** Which connection the grace window counts for. */
  lost_link?: 'server' | 'viewer' | null;
  /** Ended because the window ran out. */
  expired?: boolean;
  viewers: ViewerView[];
  control_enabled: boolean;
  /** The switches beside control, and whether this machine's clipboard opened. */
  files_enabled?: boolean;
  clipboard_enabled?: boolean;
  clipboard_available?: boolean;
  /** Who can open the viewer link (null until the server is known). */
  reach?: Reach | null;
  /** Unattended access, shown plainly while it is on. */
  unattended?: UnattendedStatus;
  error: string | null;
}

/** Mirrors the Rust core's `unattended::UnattendedStatus`. */
export interface UnattendedStatus {
  enabled: boolean;
  totp: boolean;
  control: boolean;
  autostart: boolean;
  problem: string | null;
}

/** Mirrors the Rust core's `sharing::Reach`. */
export type Reach =
  | { kind: 'network'; address: string }
  | { kind: 'server'; host: string }
  | { kind: 'this-computer' };

export type StateClass = 'idle' | 'connecting' | 'connected' | 'warning' | 'failed' | 'ended';

export interface QualityBadge { cls: QualityClass | 'unknown'; text: string; details: string }

export interface HostPresentation {
  stateText: string;
  stateClass: StateClass;
  /** The ID, code and link: shown while a room is open. */
  showCredentials: boolean;
  /** The reconnect button, while a dropped session can still be resumed. */
  showReconnect: boolean;
  /** Time left to resume, `m:ss`, while the button shows. */
  countdown: string | null;
  countdownText: string | null;
  /** The session is over: say so and offer a new one. */
  showEnded: boolean;
  endedText: string | null;
  quality: QualityBadge | null;
  /** The words before the link, and whether it is one to send anyone. */
  linkLabel: string;
  linkShareable: boolean;
  /** Who can open it, plainly. */
  reachText: string;
}

/** What the link is and who can open it: a loopback link is never offered
 *  as something to send (it opens nothing on another computer). */
export function presentReach(reach: Reach | null | undefined): { linkLabel: string; linkShareable: boolean; reachText: string } {
  switch (reach?.kind) {
    case 'network':
      return { linkLabel: t('host.link'), linkShareable: true, reachText: t('host.reachNetwork', { address: reach.address }) };
    case 'server':
      return { linkLabel: t('host.link'), linkShareable: true, reachText: t('host.reachServer', { host: reach.host }) };
    case 'this-computer':
      return { linkLabel: t('host.linkLocal'), linkShareable: false, reachText: t('host.reachThisComputer') };
    default:
      return { linkLabel: t('host.link'), linkShareable: false, reachText: '' };
  }
}

/** `m:ss`, rounded up to the second, never negative. */
export function formatClock(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const DOWN: readonly Phase[] = ['disconnected', 'reconnecting', 'failed'];

const CLASS: Record<Phase, StateClass> = {
  starting: 'idle', waiting: 'idle', connecting: 'connecting', connected: 'connected',
  disconnected: 'warning', reconnecting: 'warning', failed: 'failed', ended: 'ended',
};

function stateText(v: HostView, now: number): string {
  if (v.phase === 'reconnecting' && v.attempt) {
    if (v.retry_at_ms !== null && v.retry_at_ms > now) {
      return t('state.reconnectingRetry', { n: v.attempt, s: Math.ceil((v.retry_at_ms - now) / 1000) });
    }
    return t('state.reconnectingAttempt', { n: v.attempt });
  }
  return t(`state.${v.phase}` as const);
}

function fmt(n: number, digits = 0): string {
  return n.toFixed(digits);
}

/** The worst viewer's link, with what it was judged on. */
export function qualityBadge(viewers: ViewerView[]): QualityBadge | null {
  const live = viewers.filter((x) => x.state === 'connected');
  if (live.length === 0) return null;
  const rank: Record<QualityClass, number> = { good: 0, fair: 1, poor: 2 };
  const measured = live.filter((x) => x.quality !== null);
  if (measured.length === 0) return { cls: 'unknown', text: t('quality.unknown'), details: '' };
  const worst = measured.reduce((a, b) => (rank[b.quality!] > rank[a.quality!] ? b : a));
  const m = worst.metrics;
  const bitrate = worst.bitrate_kbps == null ? '–'
    : worst.bitrate_kbps >= 1000 ? `${fmt(worst.bitrate_kbps / 1000, 1)} Mbit/s` : `${fmt(worst.bitrate_kbps)} kbit/s`;
  const details = m
    ? t('quality.details', {
      latency: fmt(m.latency_ms), loss: fmt(m.packet_loss_percent, 1), jitter: fmt(m.jitter_ms),
      fps: worst.fps == null ? '–' : fmt(worst.fps), bitrate,
    }) + (worst.shown_ms == null ? '' : ` · ${t('quality.toScreen', { ms: fmt(worst.shown_ms) })}`)
    : '';
  return { cls: worst.quality!, text: t(`quality.${worst.quality!}` as const), details };
}

function endedText(v: HostView, runOut: boolean): string {
  if (v.expired || runOut) {
    const window = formatClock(v.grace_total_ms);
    return t(v.lost_link === 'server' ? 'ended.expiredServer' : 'ended.expiredViewer', { window });
  }
  return v.error ?? t('ended.message');
}

export function presentHost(v: HostView, now: number): HostPresentation {
  const left = v.grace_deadline_ms === null ? null : v.grace_deadline_ms - now;
  const runOut = left !== null && left <= 0 && DOWN.includes(v.phase);
  const ended = v.phase === 'ended' || runOut;
  const showReconnect = !ended && DOWN.includes(v.phase) && left !== null;
  return {
    stateText: ended ? t('state.ended') : stateText(v, now),
    stateClass: ended ? 'ended' : CLASS[v.phase],
    showCredentials: v.room !== null && !ended,
    showReconnect,
    countdown: showReconnect ? formatClock(left!) : null,
    countdownText: showReconnect
      ? t('reconnect.window', { left: formatClock(left!), total: formatClock(v.grace_total_ms) })
      : null,
    showEnded: ended,
    endedText: ended ? endedText(v, runOut) : null,
    quality: ended ? null : qualityBadge(v.viewers),
    ...presentReach(v.reach),
  };
}
