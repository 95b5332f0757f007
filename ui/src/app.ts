// The desktop app's host screen: shows the room's ID, code and link, the
// session state pushed by the Rust core as `host-status` events, asks the
// user about each viewer that wants to join, and holds the control switch.

import './style.css';
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

interface RoomInfo { id: string; code: string; viewer_url: string }
interface HostStatus {
  state: string;
  room: RoomInfo | null;
  viewers: number;
  error: string | null;
  control_enabled: boolean;
}
interface JoinRequest { peer_id: string; address: string; timeout_ms: number }

const LABELS: Record<string, string> = {
  waiting: 'Waiting for a viewer',
  connecting: 'Viewer connecting…',
  connected: 'Viewer connected',
  error: 'Cannot share the screen',
};
const STATE_CLASS: Record<string, string> = { waiting: 'idle', connecting: 'connecting', connected: 'connected', error: 'failed' };

const $ = (id: string) => document.getElementById(id)!;

function render(s: HostStatus): void {
  if (s.room) {
    $('room-id').textContent = s.room.id;
    $('room-code').textContent = s.room.code;
    const a = $('viewer-link') as HTMLAnchorElement;
    a.href = s.room.viewer_url;
    a.textContent = s.room.viewer_url;
  }
  const st = $('host-state');
  st.textContent = LABELS[s.state] ?? s.state;
  st.className = `state state-${STATE_CLASS[s.state] ?? 'idle'}`;
  const err = $('host-error');
  err.hidden = !s.error;
  err.textContent = s.error ?? '';
  ($('allow-control') as HTMLInputElement).checked = s.control_enabled;
  // Lets end-to-end tests check what the window really shows.
  requestAnimationFrame(() => void invoke('report_rendered', { text: document.body.innerText }).catch(() => {}));
}

// One consent dialog at a time; further requests queue behind it.
const requests: JoinRequest[] = [];
let countdown: number | undefined;

function showNextRequest(): void {
  const dialog = $('consent') as HTMLDialogElement;
  window.clearInterval(countdown);
  const req = requests[0];
  if (!req) {
    if (dialog.open) dialog.close();
    return;
  }
  $('consent-address').textContent = req.address;
  const deadline = Date.now() + req.timeout_ms;
  const tick = () => {
    $('consent-left').textContent = String(Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
  };
  tick();
  countdown = window.setInterval(tick, 250);
  if (!dialog.open) dialog.showModal();
}

function answer(decision: 'control' | 'view' | 'deny'): void {
  const req = requests.shift();
  if (req) void invoke('answer_join', { peerId: req.peer_id, answer: decision });
  showNextRequest();
}

$('consent-control').addEventListener('click', () => answer('control'));
$('consent-view').addEventListener('click', () => answer('view'));
$('consent-deny').addEventListener('click', () => answer('deny'));
// Escape closes a dialog: treat it as "deny", never as "allow".
$('consent').addEventListener('cancel', (e) => { e.preventDefault(); answer('deny'); });
$('allow-control').addEventListener('change', (e) => {
  void invoke('set_control', { enabled: (e.target as HTMLInputElement).checked });
});

await listen<JoinRequest>('join-request', (e) => { requests.push(e.payload); showNextRequest(); });
// Answered elsewhere (the policy, the timeout): drop it from the queue.
await listen<string>('join-answered', (e) => {
  const i = requests.findIndex((r) => r.peer_id === e.payload);
  if (i >= 0) requests.splice(i, 1);
  showNextRequest();
});
await listen<HostStatus>('host-status', (e) => render(e.payload));
render(await invoke<HostStatus>('host_status'));
