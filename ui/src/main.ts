// The browser viewer page: form or `#id=&code=` in the link's fragment, a canvas that
// shows the remote screen at its aspect ratio and takes input while the host
// allows control, and `window.holdfast` for scripts and tests (`stats()`,
// `sample(x, y)`, `pictureRect()`, `control()`).

import './style.css';
import { sha256 } from '@noble/hashes/sha2.js';
import { pickLanguage, setLanguage, t } from './i18n';
import { InputCapture } from './input';
import { ViewerSession, type SessionState } from './session';
import { TransferPanel, type ClipboardNote } from './transferpanel';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const canvas = $<HTMLCanvasElement>('screen');
const ctx = canvas.getContext('2d', { willReadFrequently: false })!;
const stateEl = $<HTMLSpanElement>('state');
const infoEl = $<HTMLSpanElement>('info');
const messageEl = $<HTMLParagraphElement>('message');
const form = $<HTMLFormElement>('join');
const controlBtn = $<HTMLButtonElement>('control-toggle');

const LABELS: Record<SessionState, string> = {
  idle: 'Not connected',
  signalling: 'Contacting server…',
  waiting: 'Waiting for the host…',
  connecting: 'Connecting…',
  connected: 'Connected',
  disconnected: 'Connection interrupted',
  failed: 'Connection failed',
  closed: 'Session ended',
};

// The panel's language: `?lang=` or the browser's (the rest of this page is English for now).
setLanguage(pickLanguage(new URLSearchParams(location.search).get('lang'), navigator.languages ?? []));

let session: ViewerSession | null = null;
const input = new InputCapture(canvas, (msg) => session?.sendInput(msg));

// Files, clipboard and chat. The clipboard: the host's text is written to
// ours when it arrives (Chromium allows that to a focused page; otherwise a
// click does it); ours is read when the page gets the focus back, if the
// person let this page read the clipboard, or when they press the button.
let pendingClipboard: string | null = null;
let clipboardNote: ClipboardNote = null;
function noteClipboard(n: ClipboardNote): void {
  clipboardNote = n;
  panel.setClipboardNote(n);
}
async function sendClipboard(askIfNeeded: boolean): Promise<void> {
  const s = session;
  if (!s || !s.transfers.allowed.control || !s.transfers.allowed.clipboard) return;
  if (!askIfNeeded) {
    // Read on focus only where the person already allowed it: never a prompt unasked.
    const state = await navigator.permissions?.query({ name: 'clipboard-read' as PermissionName }).then((p) => p.state, () => 'denied');
    if (state !== 'granted') return;
  }
  try {
    const text = await navigator.clipboard.readText();
    const r = s.transfers.sendClipboardText(text);
    if (r === 'sent') noteClipboard('sent');
    else if (r === 'too-large') noteClipboard('tooLarge');
  } catch {
    if (askIfNeeded) noteClipboard('unreadable');
  }
}
async function copyFromHost(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    pendingClipboard = null;
    noteClipboard('arrived');
  } catch {
    pendingClipboard = text;
    noteClipboard('blocked');
  }
}
const panel = new TransferPanel(() => session?.transfers ?? null, {
  send: () => void sendClipboard(true),
  copyPending: () => {
    if (pendingClipboard !== null) void copyFromHost(pendingClipboard);
  },
});
document.body.append(panel.root);
panel.acceptDrops(canvas);
const xferBtn = $<HTMLButtonElement>('xfer-toggle');
xferBtn.addEventListener('click', () => panel.show(!panel.shown));
window.addEventListener('focus', () => void sendClipboard(false));
let unseen = 0;
function refreshPanelButton(): void {
  xferBtn.textContent = unseen > 0 ? `${t('xfer.open')} (${unseen})` : t('xfer.open');
}

function showControl(allowed: boolean): void {
  input.setEnabled(allowed);
  const s = session;
  controlBtn.hidden = !s || !s.controlAllowed;
  controlBtn.textContent = s?.viewOnly ? 'Take control' : 'View only';
  controlBtn.setAttribute('aria-pressed', String(Boolean(s?.viewOnly)));
  infoEl.dataset.control = allowed ? 'control' : 'view-only';
}

xferBtn.addEventListener('click', () => {
  unseen = 0;
  refreshPanelButton();
});
refreshPanelButton();

controlBtn.addEventListener('click', () => {
  if (session) session.setViewOnly(!session.viewOnly);
});

function showMessage(text: string | null): void {
  messageEl.hidden = text === null;
  messageEl.textContent = text ?? '';
}

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/** How the viewer proves itself: the one-time code, or (unattended access) the permanent password. */
type Credential = { code: string } | { password: string; totp: string | null };

function start(id: string, credential: Credential): void {
  session?.close();
  showMessage(null);
  if (!('VideoDecoder' in window)) {
    showMessage('This browser cannot decode video here (WebCodecs needs HTTPS or localhost).');
    return;
  }
  session = new ViewerSession(wsUrl(), {
    onState(state, detail) {
      stateEl.textContent = LABELS[state];
      stateEl.className = `state state-${state}`;
      if (detail && (state === 'closed' || state === 'failed' || state === 'waiting')) showMessage(detail);
      if (state === 'connected') showMessage(null);
      xferBtn.hidden = state === 'idle' || state === 'signalling' || state === 'failed';
      if (state === 'closed' || state === 'failed') showControl(false);
    },
    onError(message) {
      showMessage(message);
    },
    onControl(allowed) {
      showControl(allowed);
    },
    onNotice(text) {
      // Passing conditions (signalling lost / back); the session keeps itself alive.
      showMessage(text);
    },
    transfers: {
      onChange: () => panel.update(),
      onChat: () => {
        if (!panel.shown) unseen += 1;
        refreshPanelButton();
      },
      onClipboardText: (text) => void copyFromHost(text),
      onReceived: () => {
        if (!panel.shown) unseen += 1;
        refreshPanelButton();
      },
    },
    onFrame(frame, screen) {
      // At the screen's size: the host may send it smaller on a slow link.
      if (canvas.width !== screen.width || canvas.height !== screen.height) {
        canvas.width = screen.width;
        canvas.height = screen.height;
      }
      ctx.drawImage(frame, 0, 0, screen.width, screen.height);
      frame.close();
    },
  });
  if ('code' in credential) session.connect(id, credential.code);
  else void session.connectWithPassword(id, credential.password, credential.totp);
}

const usePassword = $<HTMLButtonElement>('use-password');
let byPassword = false;
usePassword.addEventListener('click', () => {
  byPassword = !byPassword;
  usePassword.setAttribute('aria-pressed', String(byPassword));
  usePassword.textContent = byPassword ? 'Use a code' : 'Use a password';
  for (const el of form.querySelectorAll<HTMLElement>('.by-code')) el.hidden = byPassword;
  for (const el of form.querySelectorAll<HTMLElement>('.by-password')) el.hidden = !byPassword;
  ($<HTMLInputElement>('room-code')).required = !byPassword;
  ($<HTMLInputElement>('room-password')).required = byPassword;
});

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const id = String(data.get('id') ?? '');
  if (byPassword) {
    const passwordInput = $<HTMLInputElement>('room-password');
    const password = passwordInput.value;
    // Not kept in the form once used.
    passwordInput.value = '';
    start(id, { password, totp: String(data.get('totp') ?? '') || null });
  } else {
    start(id, { code: String(data.get('code') ?? '') });
  }
});

setInterval(() => {
  const s = session?.stats;
  if (!s || s.state !== 'connected') return;
  const lat = s.latencyP50Ms === null ? '–' : `${s.latencyP50Ms.toFixed(0)} ms`;
  const mode = input.isEnabled ? 'control' : 'view only';
  const relayed = s.route === 'relayed' ? ' · relayed' : '';
  const q = s.quality
    ? ` · ${s.quality} (rtt ${s.rttMs?.toFixed(0)} ms, loss ${s.lossPercent?.toFixed(0)} %, jitter ${s.jitterMs?.toFixed(0)} ms)`
    : '';
  const sent = s.codedWidth && (s.codedWidth !== s.width || s.codedHeight !== s.height) ? ` (sent at ${s.codedWidth}×${s.codedHeight})` : '';
  // Capture to this canvas as the host measured it from our acknowledgements
  // (the decoder's own figure above leaves out drawing and trusts the clocks).
  const shown = s.shownP50Ms === null ? '' : ` · to screen ${s.shownP50Ms} ms (p95 ${s.shownP95Ms} ms)`;
  const path = s.hostEstimateKbps === null ? '' : ` · path ${(s.hostEstimateKbps / 1000).toFixed(1)} Mbit/s`;
  infoEl.textContent = `${s.width}×${s.height}${sent} · ${s.fps} fps · latency ${lat}${shown}${path} · ${mode}${relayed}${q}`;
  infoEl.title = infoEl.textContent;
}, 500);

declare global {
  interface Window {
    holdfast: {
      stats(): object;
      sample(x: number, y: number): [number, number, number];
      latencySamples(): number[];
      pictureRect(): { left: number; top: number; width: number; height: number };
      control(): boolean;
      message(): string | null;
      signals(): { seq: number | null; type: string }[];
      transfers(): object;
      chat(): object;
      sendChat(text: string): boolean;
      fileSha256(id: number): Promise<string | null>;
      clipboardNote(): ClipboardNote;
      showPanel(on: boolean): void;
    };
  }
}

window.holdfast = {
  stats: () => ({ ...(session?.stats ?? { state: 'idle' }), authFailure: session?.authFailure ?? null }),
  /** The colour at screen pixel (x, y) of the remote display, as drawn. */
  sample(x: number, y: number) {
    const d = ctx.getImageData(x, y, 1, 1).data;
    return [d[0], d[1], d[2]];
  },
  latencySamples: () => session?.latencySamples() ?? [],
  /** Where the remote picture is on the page, in client pixels. */
  pictureRect: () => input.pictureRect(),
  /** Whether input is being sent to the host. */
  control: () => input.isEnabled,
  /** The message shown to the user, if any. */
  message: () => (messageEl.hidden ? null : messageEl.textContent),
  /** Room messages delivered so far, `{seq, type}`, once each, in order of arrival. */
  signals: () => [...(session?.signalLog ?? [])],
  /** Transfers as the engine sees them, and messages refused. */
  transfers: () => ({ views: session?.transfers.transfers ?? [], refused: session?.transfers.refused ?? 0, allowed: session?.transfers.allowed ?? null }),
  chat: () => [...(session?.transfers.chat ?? [])],
  sendChat: (text: string) => Boolean(session?.transfers.sendChat(text)),
  /** The SHA-256 of a received file held for saving (computed here, for tests). */
  async fileSha256(id: number) {
    const f = session?.transfers.file(id);
    if (!f) return null;
    const digest = sha256(new Uint8Array(await f.blob.arrayBuffer()));
    return Array.from(digest, (x) => x.toString(16).padStart(2, '0')).join('');
  },
  clipboardNote: () => clipboardNote,
  showPanel: (on: boolean) => panel.show(on),
};

// The host's link carries ID and code in the fragment (`#id=…&code=…`),
// which the browser never sends to the server; a code in the query would
// already have been, so it is not taken from there.
const params = new URLSearchParams(location.hash.slice(1));
const id = params.get('id');
const code = params.get('code');
if (id && code) {
  ($<HTMLInputElement>('room-id')).value = id;
  ($<HTMLInputElement>('room-code')).value = code;
  start(id, { code });
}
