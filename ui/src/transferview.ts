// What a transfer looks like in a panel: the line of text, the progress and
// the buttons, in the current language. Pure, so both viewers (and the host
// screen) show transfers the same way and tests can read it.

import { t, type Key } from './i18n';
import type { ChatLine, Failure, TransferView } from './transferengine';

/** Whose screen the panel is on: a viewer's (the other side is "the host")
 *  or the host's (the other side is "the viewer"). */
export type Perspective = 'viewer' | 'host';

/** A transfer as the Rust core reports it (`holdfast_transfer::TransferView`). */
export interface RustTransferView {
  id: number;
  direction: TransferView['direction'];
  kind: TransferView['kind'];
  name: string;
  size: number;
  done: number;
  phase: TransferView['phase'];
  rate_bps: number | null;
  eta_secs: number | null;
  error: string | null;
  failure: Failure | null;
  bytes_sent: number;
}

/** What a Rust transfer task publishes (`holdfast_peer::transfer::TransferState`). */
export interface RustTransferState {
  transfers: RustTransferView[];
  chat: ChatLine[];
  allowed: { files_in: boolean; clipboard: boolean };
  connected: boolean;
  rejected: number;
}

export function fromRust(v: RustTransferView): TransferView {
  return {
    id: v.id, direction: v.direction, kind: v.kind, name: v.name, size: v.size, done: v.done, phase: v.phase,
    rateBps: v.rate_bps, etaSecs: v.eta_secs, failure: v.failure, bytesSent: v.bytes_sent,
  };
}

export type Action = 'accept' | 'decline' | 'cancel' | 'save';

export interface PresentedTransfer {
  id: number;
  /** The file's name, or "Clipboard text". */
  title: string;
  /** "To the host" / "From the host". */
  direction: string;
  /** Where it stands, in words (with rate and time left while moving). */
  detail: string;
  /** 0..1, or null before bytes move. */
  progress: number | null;
  state: 'waiting' | 'moving' | 'paused' | 'done' | 'failed';
  actions: Action[];
}

/** `1.5 MB`, decimal units as file managers show them. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u += 1;
  }
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[u]}`;
}

/** `45 s`, `3 min 20 s`, `1 h 5 min`. */
export function formatDuration(secs: number): string {
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function describeWhy(f: Failure | null): string {
  if (!f) return '';
  return t(`xfer.why.${f.by}.${f.reason}` as Key);
}

/** `waiting`: an offer from the host this side has not answered; `saved`:
 *  a received file this side holds; `linkDown`: the connection is
 *  interrupted (the channel may outlive a short cut, so the engine still
 *  says `moving`). */
export function presentTransfer(
  v: TransferView, waiting: boolean, saved: boolean, linkDown = false, perspective: Perspective = 'viewer',
): PresentedTransfer {
  const title = v.kind === 'file' ? v.name : t('xfer.clipboardItem');
  const out = v.direction === 'outgoing';
  const direction = perspective === 'viewer'
    ? t(out ? 'xfer.toHost' : 'xfer.fromHost')
    : t(out ? 'xfer.toViewer' : 'xfer.fromViewer');
  const sizes = { done: formatBytes(v.done), size: formatBytes(v.size) };
  const progress = v.size > 0 ? Math.min(1, v.done / v.size) : null;
  const base = { id: v.id, title, direction };
  switch (v.phase) {
    case 'offered':
      return waiting
        ? {
          ...base, detail: `${t(perspective === 'viewer' ? 'xfer.offeredIn' : 'xfer.offeredByViewer')} (${formatBytes(v.size)})`,
          progress: null, state: 'waiting', actions: ['accept', 'decline'],
        }
        : {
          ...base, detail: out ? t(perspective === 'viewer' ? 'xfer.offeredOut' : 'xfer.offeredOutViewer') : formatBytes(v.size),
          progress: null, state: 'waiting', actions: ['cancel'],
        };
    case 'moving': {
      if (linkDown) return { ...base, detail: t('xfer.stalled', sizes), progress, state: 'paused', actions: ['cancel'] };
      const detail = v.rateBps !== null && v.etaSecs !== null
        ? t('xfer.moving', { ...sizes, rate: formatBytes(Math.round(v.rateBps)), eta: formatDuration(v.etaSecs) })
        : t('xfer.movingNoRate', sizes);
      return { ...base, detail, progress, state: 'moving', actions: ['cancel'] };
    }
    case 'paused':
      return { ...base, detail: t('xfer.paused', sizes), progress, state: 'paused', actions: ['cancel'] };
    case 'verifying':
      return { ...base, detail: t('xfer.verifying'), progress: 1, state: 'moving', actions: [] };
    case 'done':
      return {
        ...base, detail: t('xfer.done', { size: formatBytes(v.size) }), progress: 1, state: 'done',
        actions: v.direction === 'incoming' && v.kind === 'file' && saved ? ['save'] : [],
      };
    case 'failed':
      return { ...base, detail: t('xfer.failed', { why: describeWhy(v.failure) }), progress, state: 'failed', actions: [] };
  }
}
