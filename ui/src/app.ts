// The desktop app's host screen: shows the room's ID, code and link, and the
// session state pushed by the Rust core as `host-status` events.

import './style.css';
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

interface RoomInfo { id: string; code: string; viewer_url: string }
interface HostStatus { state: string; room: RoomInfo | null; viewers: number; error: string | null }

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
  // Lets end-to-end tests check what the window really shows.
  requestAnimationFrame(() => void invoke('report_rendered', { text: document.body.innerText }).catch(() => {}));
}

await listen<HostStatus>('host-status', (e) => render(e.payload));
render(await invoke<HostStatus>('host_status'));
