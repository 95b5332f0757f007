// Toasts: the notices the Rust core sends, in words, with a lifetime. A
// newer notice about the same thing replaces the older one (attempt 3
// replaces attempt 2; "restored" replaces "lost"), so a flapping link never
// buries the screen. Pure: time is passed in.

import { formatClock } from './hostview';
import { t } from './i18n';
import { formatBytes } from './transferview';

export type Link = 'server' | 'viewer' | 'host';
export type Notice =
  | { kind: 'join-request'; peer_id: string; address: string; timeout_ms: number }
  | { kind: 'joined'; peer_id: string; control: boolean }
  | { kind: 'left'; peer_id: string }
  | { kind: 'refused'; peer_id: string }
  /** A viewer failed the end-to-end check of the code. */
  | { kind: 'check-failed'; address: string; reason: string }
  | { kind: 'code-changed' }
  /** A viewer proved the permanent password and was let in without asking. */
  | { kind: 'unattended-join'; address: string }
  | { kind: 'connection-lost'; link: Link }
  | { kind: 'reconnecting'; link: Link; attempt: number; retry_in_ms: number }
  | { kind: 'restored'; link: Link }
  | { kind: 'frames-dropped'; count: number }
  | { kind: 'expiring-soon'; left_ms: number }
  | { kind: 'expired'; message: string }
  /** Viewer side: the host let us in. */
  | { kind: 'admitted'; control: boolean }
  | { kind: 'control-changed'; allowed: boolean }
  | { kind: 'host-away'; away: boolean }
  /** A command the window sent failed (shown as is; never from the core). */
  | { kind: 'error'; message: string }
  | { kind: 'file-saved'; path: string }
  | { kind: 'transfer-failed'; name: string; error: string }
  | { kind: 'file-offered'; peer_id: string; id: number; name: string; size: number; exists: boolean }
  | { kind: 'chat'; peer_id: string; text: string };

export type Level = 'info' | 'success' | 'warning' | 'error';

export interface Toast {
  id: number;
  /** What it is about: a newer toast with the same topic replaces it. */
  topic: string;
  text: string;
  level: Level;
  /** When it goes away by itself; `null` stays until dismissed. */
  until: number | null;
}

export const TOAST_MS = 5000;
export const LONG_TOAST_MS = 10_000;
export const MAX_TOASTS = 4;

const cap = (l: Link) => (l === 'server' ? 'Server' : l === 'host' ? 'Host' : 'Viewer');

/** The words, level, topic and lifetime for a notice. */
export function describe(n: Notice): Omit<Toast, 'id' | 'until'> & { ttl: number | null } {
  switch (n.kind) {
    case 'join-request':
      return { topic: `join:${n.peer_id}`, text: t('toast.joinRequest', { address: n.address }), level: 'info', ttl: n.timeout_ms };
    case 'joined':
      return {
        topic: `join:${n.peer_id}`,
        text: t('toast.joined', { mode: t(n.control ? 'toast.joinedControl' : 'toast.joinedView') }),
        level: 'success', ttl: TOAST_MS,
      };
    case 'left':
      return { topic: `join:${n.peer_id}`, text: t('toast.left'), level: 'info', ttl: TOAST_MS };
    case 'refused':
      return { topic: `refused:${n.peer_id}`, text: t('toast.refused'), level: 'error', ttl: LONG_TOAST_MS };
    case 'check-failed': {
      const middle = n.reason === 'intercepted' || n.reason === 'host-unproven';
      return {
        topic: `check:${n.address}`, text: t(middle ? 'toast.intercepted' : 'toast.checkFailed', { address: n.address }),
        level: 'error', ttl: LONG_TOAST_MS,
      };
    }
    case 'code-changed':
      return { topic: 'code', text: t('toast.codeChanged'), level: 'warning', ttl: null };
    case 'unattended-join':
      return { topic: `unattended:${n.address}`, text: t('toast.unattendedJoin', { address: n.address }), level: 'warning', ttl: LONG_TOAST_MS };
    case 'connection-lost':
      return { topic: `link:${n.link}`, text: t(`toast.lost${cap(n.link)}`), level: 'error', ttl: null };
    case 'reconnecting':
      return {
        topic: `link:${n.link}`, text: t(`toast.reconnecting${cap(n.link)}`, { n: n.attempt }), level: 'warning', ttl: null,
      };
    case 'restored':
      return { topic: `link:${n.link}`, text: t(`toast.restored${cap(n.link)}`), level: 'success', ttl: TOAST_MS };
    case 'frames-dropped':
      return { topic: 'drops', text: t('toast.framesDropped', { n: n.count }), level: 'warning', ttl: TOAST_MS };
    case 'expiring-soon':
      return { topic: 'expiry', text: t('toast.expiringSoon', { left: formatClock(n.left_ms) }), level: 'warning', ttl: LONG_TOAST_MS };
    case 'expired':
      return { topic: 'expiry', text: t('toast.expired'), level: 'error', ttl: null };
    case 'admitted':
      return {
        topic: 'admitted',
        text: t('toast.admitted', { mode: t(n.control ? 'toast.joinedControl' : 'toast.joinedView') }),
        level: 'success', ttl: TOAST_MS,
      };
    case 'control-changed':
      return { topic: 'control', text: t(n.allowed ? 'toast.controlOn' : 'toast.controlOff'), level: 'info', ttl: TOAST_MS };
    case 'host-away':
      return {
        topic: 'host-away', text: t(n.away ? 'toast.hostAway' : 'toast.hostBack'),
        level: n.away ? 'warning' : 'success', ttl: n.away ? null : TOAST_MS,
      };
    case 'error':
      return { topic: `error:${n.message}`, text: n.message, level: 'error', ttl: LONG_TOAST_MS };
    case 'file-saved':
      return { topic: `saved:${n.path}`, text: t('toast.fileSaved', { path: n.path }), level: 'success', ttl: TOAST_MS };
    case 'transfer-failed':
      return { topic: `xfer:${n.name}`, text: t('toast.transferFailed', { name: n.name, error: n.error }), level: 'warning', ttl: LONG_TOAST_MS };
    case 'file-offered':
      return {
        topic: `offer:${n.peer_id}:${n.id}`, text: t('toast.fileOffered', { name: n.name, size: formatBytes(n.size) }),
        level: 'info', ttl: LONG_TOAST_MS,
      };
    case 'chat':
      return { topic: `chat:${n.peer_id}`, text: t('toast.chat', { text: n.text }), level: 'info', ttl: TOAST_MS };
  }
}

export class Toasts {
  private list: Toast[] = [];
  private nextId = 1;

  constructor(private readonly max = MAX_TOASTS) {}

  /** Adds a toast for `n`, replacing one on the same topic; the oldest go past the limit. */
  push(n: Notice, now: number): Toast {
    const d = describe(n);
    const toast: Toast = { id: this.nextId++, topic: d.topic, text: d.text, level: d.level, until: d.ttl === null ? null : now + d.ttl };
    this.list = this.list.filter((x) => x.topic !== toast.topic);
    this.list.push(toast);
    while (this.list.length > this.max) this.list.shift();
    return toast;
  }

  dismiss(id: number): void {
    this.list = this.list.filter((x) => x.id !== id);
  }

  /** Drops toasts whose time is up; true when any went. */
  expire(now: number): boolean {
    const before = this.list.length;
    this.list = this.list.filter((x) => x.until === null || x.until > now);
    return this.list.length !== before;
  }

  /** Removes the toasts on a topic (a join request answered elsewhere). */
  clear(topic: string): void {
    this.list = this.list.filter((x) => x.topic !== topic);
  }

  get visible(): readonly Toast[] {
    return this.list;
  }
}
