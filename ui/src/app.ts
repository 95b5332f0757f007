// The desktop app's window: the host screen, the viewer screen (viewerapp.ts),
// the consent dialog, toasts and the settings form. Everything it shows comes from the Rust core's `update`
// events (a HostView, or a Notice); the decisions about words, colours, the
// reconnect button and its countdown are in hostview.ts and toasts.ts.

import './style.css';
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import { ConsentGuard } from './consentguard';
import { presentHost, type HostView, type UnattendedStatus } from './hostview';
import { TransferPanel, type TransferBackend } from './transferpanel';
import { fromRust } from './transferview';
import { language, pickLanguage, setLanguage, t, type Key } from './i18n';
import { Toasts, type Notice } from './toasts';
import { ViewerScreen } from './viewerapp';

type Update =
  | ({ type: 'view' } & HostView)
  | ({ type: 'notice' } & Notice)
  | { type: 'join-answered'; peer_id: string };

interface IceServer { url: string; username?: string; credential?: string }
interface Settings {
  signal_url: string | null;
  ice_servers: IceServer[];
  fps: number;
  quality: 'low' | 'balanced' | 'high';
  keepalive_secs: number;
  grace_secs: number;
  log_level: string;
  language: string | null;
}
interface SettingsReply { settings: Settings; problem: string | null; device_id: string; config_file: string | null; log_dir: string | null }
interface DisplayDesc { index: number; width: number; height: number }
interface JoinRequest { peer_id: string; address: string; deadline: number }

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

// ---- text -------------------------------------------------------------------

function applyCatalogue(): void {
  for (const el of document.querySelectorAll<HTMLElement>('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n as Key);
  }
}

// ---- host screen ------------------------------------------------------------

/** What the viewer list shows, to rebuild it only when that changes. */
let listedViewers = '';

/**
 * One line per admitted viewer, with a button that removes it (and revokes its
 * token). Rebuilt only when what it shows changes: the host view is rendered
 * every second, and a button replaced between a person's press and release
 * loses the click.
 */
function renderViewers(viewers: HostView['viewers']): void {
  const list = $('viewer-list');
  const shown = JSON.stringify([language(), viewers.map((v) => [v.peer_id, v.state, v.control])]);
  if (shown === listedViewers) return;
  listedViewers = shown;
  list.replaceChildren(
    ...viewers.map((v, i) => {
      const li = document.createElement('li');
      const text = document.createElement('span');
      text.textContent = t('host.viewerItem', {
        n: i + 1,
        state: v.state,
        mode: t(v.control ? 'toast.joinedControl' : 'toast.joinedView'),
      });
      const remove = document.createElement('button');
      remove.className = 'remove';
      remove.textContent = t('host.remove');
      remove.dataset.peer = v.peer_id;
      remove.addEventListener('click', () => void invoke('kick_viewer', { peerId: v.peer_id }).catch(showError));
      li.append(text, remove);
      return li;
    }),
  );
  list.hidden = viewers.length === 0;
}

let view: HostView | null = null;

function renderHost(): void {
  if (!view) return;
  const p = presentHost(view, Date.now());
  if (view.room) {
    $('room-id').textContent = view.room.id;
    $('room-code').textContent = view.room.code;
    const a = $<HTMLAnchorElement>('viewer-link');
    a.href = view.room.viewer_url;
    a.textContent = view.room.viewer_url;
  }
  $('link-label').textContent = p.linkLabel;
  $('copy-link').hidden = !p.linkShareable;
  $('reach').textContent = p.reachText;
  renderViewers(p.showEnded ? [] : view.viewers);
  $('credentials').hidden = !p.showCredentials;
  $('host-controls').hidden = p.showEnded;
  const st = $('host-state');
  st.textContent = p.stateText;
  st.className = `state state-${p.stateClass}`;
  $('reconnect-panel').hidden = !p.showReconnect;
  $('reconnect-countdown').textContent = p.countdown ?? '';
  $('reconnect-text').textContent = p.countdownText ?? '';
  $('ended-panel').hidden = !p.showEnded;
  $('ended-text').textContent = p.endedText ?? '';
  const q = $('quality');
  q.hidden = !p.quality;
  if (p.quality) {
    q.className = `badge badge-${p.quality.cls}`;
    q.setAttribute('aria-label', `${t('quality.label')}: ${p.quality.text}. ${p.quality.details}`);
    $('quality-text').textContent = p.quality.text;
    $('quality-details').textContent = p.quality.details;
  }
  const ua = view.unattended;
  const banner = $('unattended-banner');
  banner.hidden = !ua?.enabled && !ua?.problem;
  banner.textContent = ua?.enabled
    ? t(ua.totp ? 'unattended.bannerTotp' : 'unattended.banner')
    : ua?.problem ? t('unattended.broken', { reason: ua.problem }) : '';
  $<HTMLInputElement>('allow-control').checked = view.control_enabled;
  $<HTMLInputElement>('allow-files').checked = view.files_enabled ?? true;
  const clip = $<HTMLInputElement>('share-clipboard');
  clip.checked = view.clipboard_enabled ?? true;
  clip.disabled = view.clipboard_available === false;
  clip.parentElement!.title = view.clipboard_available === false ? t('host.clipboardUnavailable') : '';
  const shown = !p.showEnded && view.viewers.length > 0;
  $('host-drop-hint').hidden = !shown;
  if (hostPanel.root.hidden === shown) hostPanel.root.hidden = !shown;
  if (shown) hostPanel.update();
}

// ---- files, chat and the clipboard with viewers -------------------------------

/** Transfer ids are per viewer: the panel's id carries the viewer's place. */
const PEER_SPAN = 2 ** 32;

function hostBackend(): TransferBackend | null {
  if (!view) return null;
  const viewers = view.viewers;
  const at = (id: number) => ({ peer: viewers[Math.floor(id / PEER_SPAN)]?.peer_id, id: id % PEER_SPAN });
  return {
    transfers: viewers.flatMap((v, i) => (v.transfer?.transfers ?? []).map((x) => ({ ...fromRust(x), id: i * PEER_SPAN + x.id }))),
    chat: viewers.flatMap((v) => v.transfer?.chat ?? []),
    allowed: { control: true, files: view.files_enabled ?? true, clipboard: view.clipboard_enabled ?? true },
    linkDown: false,
    waiting: (id) => {
      const { peer, id: real } = at(id);
      return viewers.some((v) => v.peer_id === peer && (v.transfer?.transfers ?? []).some(
        (x) => x.id === real && x.direction === 'incoming' && x.phase === 'offered'));
    },
    file: () => null,
    sendFiles: () => {},
    sendChat: (text) => {
      void invoke('host_chat', { text }).catch(showError);
      return true;
    },
    decide: (id, accept) => {
      const { peer, id: real } = at(id);
      if (peer) void invoke('decide_file', { peerId: peer, id: real, accept }).catch(showError);
    },
    cancel: (id) => {
      const { peer, id: real } = at(id);
      if (peer) void invoke('cancel_transfer', { peerId: peer, id: real }).catch(showError);
    },
  };
}

const hostPanel = new TransferPanel(hostBackend, { send: () => {}, copyPending: () => {} }, {
  perspective: 'host', picker: false, browserClipboard: false, inline: true,
});

// ---- toasts -----------------------------------------------------------------

const toasts = new Toasts();

function renderToasts(): void {
  const box = $('toasts');
  box.replaceChildren(
    ...toasts.visible.map((x) => {
      const el = document.createElement('div');
      el.className = `toast toast-${x.level}`;
      el.dataset.topic = x.topic;
      const text = document.createElement('span');
      text.textContent = x.text;
      const close = document.createElement('button');
      close.className = 'dismiss';
      close.textContent = '×';
      close.title = t('toast.dismiss');
      close.setAttribute('aria-label', t('toast.dismiss'));
      close.addEventListener('click', () => { toasts.dismiss(x.id); renderToasts(); });
      el.append(text, close);
      return el;
    }),
  );
}

// ---- consent ----------------------------------------------------------------

// One dialog at a time; further requests queue behind it.
const requests: JoinRequest[] = [];
const guard = new ConsentGuard();
const ALLOW_BUTTONS = ['consent-control', 'consent-view'];

function renderConsent(): void {
  const dialog = $<HTMLDialogElement>('consent');
  const req = requests[0];
  if (!req) {
    guard.hide();
    if (dialog.open) dialog.close();
    return;
  }
  $('consent-body').textContent = t('consent.body', { address: req.address });
  $('consent-left').textContent = t('consent.left', { s: Math.max(0, Math.ceil((req.deadline - Date.now()) / 1000)) });
  if (!dialog.open) dialog.showModal();
  if (guard.show(req.peer_id, performance.now())) {
    // Deny is the default; the allow buttons wake after a second.
    for (const id of ALLOW_BUTTONS) $<HTMLButtonElement>(id).disabled = true;
    $('consent-deny').focus();
    setTimeout(() => {
      for (const id of ALLOW_BUTTONS) $<HTMLButtonElement>(id).disabled = false;
    }, guard.armsIn(performance.now()));
  }
}

function answer(decision: 'control' | 'view' | 'deny'): void {
  if (!guard.armed(performance.now())) return; // a key or click meant for something else
  const req = requests.shift();
  if (req) {
    toasts.clear(`join:${req.peer_id}`);
    void invoke('answer_join', { peerId: req.peer_id, answer: decision }).catch(showError);
  }
  renderConsent();
  renderToasts();
}

function showError(e: unknown): void {
  toasts.push({ kind: 'error', message: String(e) }, Date.now());
  renderToasts();
}

// ---- settings ---------------------------------------------------------------

function fillSettings(r: SettingsReply): void {
  const s = r.settings;
  $<HTMLInputElement>('set-signal').value = s.signal_url ?? '';
  $<HTMLTextAreaElement>('set-ice').value = s.ice_servers
    .map((x) => [x.url, x.username ?? '', x.credential ?? ''].join(' ').trim()).join('\n');
  $<HTMLInputElement>('set-fps').value = String(s.fps);
  $<HTMLSelectElement>('set-quality').value = s.quality;
  $<HTMLInputElement>('set-keepalive').value = String(s.keepalive_secs);
  $<HTMLInputElement>('set-grace').value = String(s.grace_secs);
  $<HTMLSelectElement>('set-log').value = s.log_level;
  $<HTMLSelectElement>('set-language').value = s.language ?? '';
  $('device-id').textContent = r.device_id;
  const problem = $('settings-problem');
  problem.hidden = !r.problem;
  problem.textContent = r.problem ? t('settings.problem', { reason: r.problem }) : '';
}

function readSettings(): Settings {
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const ice = $<HTMLTextAreaElement>('set-ice').value.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const [url, username, credential] = l.split(/\s+/);
    return { url, ...(username ? { username } : {}), ...(credential ? { credential } : {}) };
  });
  const signal = $<HTMLInputElement>('set-signal').value.trim();
  const lang = $<HTMLSelectElement>('set-language').value;
  return {
    signal_url: signal || null,
    ice_servers: ice,
    fps: num('set-fps'),
    quality: $<HTMLSelectElement>('set-quality').value as Settings['quality'],
    keepalive_secs: num('set-keepalive'),
    grace_secs: num('set-grace'),
    log_level: $<HTMLSelectElement>('set-log').value,
    language: lang || null,
  };
}

async function saveSettings(e: Event): Promise<void> {
  e.preventDefault();
  const status = $('settings-status');
  const settings = readSettings();
  try {
    await invoke('save_settings', { json: JSON.stringify(settings) });
    setLanguage(pickLanguage(settings.language, navigator.languages));
    applyCatalogue();
    renderHost();
    status.className = 'ok';
    status.textContent = t('settings.saved');
  } catch (err) {
    status.className = 'error';
    status.textContent = String(err);
  }
}

// ---- unattended access --------------------------------------------------------

interface Enrolment { uri: string; qr_svg: string }

async function renderUnattended(): Promise<void> {
  const s = await invoke<UnattendedStatus>('unattended_status');
  $('unattended-state').textContent = s.enabled
    ? t(s.totp ? 'unattended.onTotp' : 'unattended.on')
    : s.problem ? t('unattended.broken', { reason: s.problem }) : t('unattended.off');
  $<HTMLInputElement>('ua-autostart').checked = s.autostart;
  $('ua-disable').hidden = !s.enabled;
}

async function enableUnattended(e: Event): Promise<void> {
  e.preventDefault();
  const status = $('ua-status');
  const pw = $<HTMLInputElement>('ua-password');
  const again = $<HTMLInputElement>('ua-again');
  try {
    const enrolment = await invoke<Enrolment | null>('enable_unattended', {
      password: pw.value, again: again.value,
      totp: $<HTMLInputElement>('ua-totp').checked, control: $<HTMLInputElement>('ua-control').checked,
    });
    // Not kept in the page once set.
    pw.value = '';
    again.value = '';
    status.className = 'ok';
    status.textContent = t('unattended.saved');
    $('ua-enrol').hidden = !enrolment;
    if (enrolment) {
      // The SVG is Rust's own rendering of the URI (qrcode crate), not page input.
      $('ua-qr').innerHTML = enrolment.qr_svg;
      $('ua-uri').textContent = enrolment.uri;
    }
  } catch (err) {
    status.className = 'error';
    status.textContent = String(err);
  }
  await renderUnattended();
}

// ---- tabs -------------------------------------------------------------------

function showTab(name: string): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tab]')) {
    const on = b.dataset.tab === name;
    b.setAttribute('aria-selected', String(on));
    $(`tab-${b.dataset.tab}`).hidden = !on;
  }
}

// ---- wiring -----------------------------------------------------------------

async function copy(id: string, button: HTMLButtonElement): Promise<void> {
  const el = $(id);
  const text = el instanceof HTMLAnchorElement ? el.href : (el.textContent ?? '');
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Older webviews: select and copy.
    const range = document.createRange();
    range.selectNodeContents(el);
    getSelection()?.removeAllRanges();
    getSelection()?.addRange(range);
    document.execCommand('copy');
  }
  button.textContent = t('host.copied');
  setTimeout(() => { button.textContent = t('host.copy'); }, 1500);
}

function onUpdate(u: Update): void {
  if (u.type === 'view') {
    const { type: _type, ...v } = u;
    view = v;
    renderHost();
  } else if (u.type === 'join-answered') {
    const i = requests.findIndex((r) => r.peer_id === u.peer_id);
    if (i >= 0) requests.splice(i, 1);
    toasts.clear(`join:${u.peer_id}`);
    renderConsent();
    renderToasts();
  } else {
    const { type: _type, ...n } = u;
    const notice = n as Notice;
    if (notice.kind === 'join-request') {
      requests.push({ peer_id: notice.peer_id, address: notice.address, deadline: Date.now() + notice.timeout_ms });
      renderConsent();
    }
    // Over: whatever was being repaired no longer is.
    if (notice.kind === 'expired') for (const link of ['server', 'viewer', 'host']) toasts.clear(`link:${link}`);
    toasts.push(notice, Date.now());
    renderToasts();
  }
}

async function main(): Promise<void> {
  const reply = await invoke<SettingsReply>('get_settings');
  setLanguage(pickLanguage(reply.settings.language, navigator.languages));
  document.documentElement.lang = reply.settings.language ?? 'en';
  applyCatalogue();
  fillSettings(reply);

  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tab]')) {
    b.addEventListener('click', () => showTab(b.dataset.tab!));
  }
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-copy]')) {
    b.addEventListener('click', () => void copy(b.dataset.copy!, b));
  }
  $('consent-control').addEventListener('click', () => answer('control'));
  $('consent-view').addEventListener('click', () => answer('view'));
  $('consent-deny').addEventListener('click', () => answer('deny'));
  // Escape closes a dialog: treat it as "deny", never as "allow".
  $('consent').addEventListener('cancel', (e) => { e.preventDefault(); answer('deny'); });
  // Keys typed as the dialog appears (Enter, Space) answer nothing.
  $('consent').addEventListener('keydown', (e) => {
    if (!guard.armed(performance.now())) e.preventDefault();
  }, { capture: true });
  $('allow-control').addEventListener('change', (e) => {
    void invoke('set_control', { enabled: (e.target as HTMLInputElement).checked }).catch(showError);
  });
  $('allow-files').addEventListener('change', (e) => {
    void invoke('set_files', { enabled: (e.target as HTMLInputElement).checked }).catch(showError);
  });
  $('share-clipboard').addEventListener('change', (e) => {
    void invoke('set_clipboard', { enabled: (e.target as HTMLInputElement).checked }).catch(showError);
  });
  // Files dropped on the window while this screen is shown go to every viewer
  // (each viewer's person accepts them; viewers without control get none).
  await getCurrentWebview().onDragDropEvent((e) => {
    if (e.payload.type !== 'drop' || $('tab-share').hidden || !view?.viewers.length || !e.payload.paths.length) return;
    void invoke('host_send_files', { paths: e.payload.paths }).catch(showError);
  }).catch(() => {});
  $('host-transfers').append(hostPanel.root);
  hostPanel.root.hidden = true;
  $('reconnect').addEventListener('click', () => void invoke('reconnect').catch(showError));
  $('stop-sharing').addEventListener('click', () => void invoke('stop_sharing').catch(showError));
  $('new-session').addEventListener('click', () => void invoke('start_sharing').catch(showError));
  $('settings-form').addEventListener('submit', (e) => void saveSettings(e));
  $('unattended-form').addEventListener('submit', (e) => void enableUnattended(e));
  $('ua-disable').addEventListener('click', () => {
    $('ua-enrol').hidden = true;
    void invoke('disable_unattended').then(renderUnattended).catch(showError);
  });
  $('ua-autostart').addEventListener('change', (e) => {
    void invoke('set_autostart', { on: (e.target as HTMLInputElement).checked }).then(renderUnattended).catch(showError);
  });
  $('ua-check-btn').addEventListener('click', () => {
    void invoke<boolean>('check_totp', { code: $<HTMLInputElement>('ua-check').value }).then((ok) => {
      const r = $('ua-check-result');
      r.className = ok ? 'ok' : 'error';
      r.textContent = t(ok ? 'unattended.codeOk' : 'unattended.codeWrong');
    }).catch(showError);
  });
  await renderUnattended();
  $('open-logs').addEventListener('click', () => void invoke('open_logs_folder').catch((e) => {
    $('settings-status').textContent = String(e);
  }));
  const displays = await invoke<DisplayDesc[]>('displays').catch(() => [] as DisplayDesc[]);
  const select = $<HTMLSelectElement>('display');
  select.replaceChildren(...displays.map((d) => {
    const o = document.createElement('option');
    o.value = String(d.index);
    o.textContent = t('host.displayOption', { n: d.index + 1, w: d.width, h: d.height });
    return o;
  }));
  select.parentElement!.hidden = displays.length < 2;
  select.addEventListener('change', () => void invoke('select_display', { index: Number(select.value) }).catch(showError));

  const viewer = new ViewerScreen((n) => {
    if (n.kind === 'expired') for (const link of ['server', 'host']) toasts.clear(`link:${link}`);
    toasts.push(n, Date.now());
    renderToasts();
  }, showError);
  await viewer.start();
  window.holdfastApp = { viewer: () => viewer.debug(), sample: (x, y) => viewer.sample(x, y) };

  await listen<Update>('update', (e) => onUpdate(e.payload));
  const initial = await invoke<HostView | null>('host_view');
  if (initial && !view) {
    view = initial;
  }
  renderHost();
  // The countdowns (grace window, next attempt, consent) and toast lifetimes.
  setInterval(() => {
    renderHost();
    viewer.render();
    if (requests.length) renderConsent();
    if (toasts.expire(Date.now())) renderToasts();
  }, 250);
}

declare global {
  interface Window {
    /** For tests and support: the viewer screen's state and the colour at a remote pixel. */
    holdfastApp: {
      viewer(): ReturnType<ViewerScreen['debug']>;
      sample(x: number, y: number): [number, number, number];
    };
  }
}

void main();
