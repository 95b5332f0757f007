// The desktop app's viewer screen: the ID and code form, then the remote
// picture. WebRTC runs in Rust (`view_connect`); whole encoded frames come
// over a Tauri channel and are decoded here with WebCodecs by the same
// FrameDecoder the browser viewer uses, or arrive already decoded (OpenH264)
// where this webview has no H.264 WebCodecs. State and notices come as
// `view-update` events; what they look like is decided in viewscreen.ts.

import { Channel, invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import { FrameDecoder, canDecodeH264 } from './decoder';
import { parseFrameMessage } from './framemsg';
import { t } from './i18n';
import { InputCapture } from './input';
import { presentViewer, type Decoder, type ViewingView } from './viewscreen';
import type { Notice } from './toasts';
import { TransferPanel, type TransferBackend } from './transferpanel';
import { fromRust, type RustTransferState } from './transferview';

type ViewUpdate =
  | ({ type: 'view' } & ViewingView)
  | ({ type: 'notice' } & Notice)
  | ({ type: 'transfers' } & RustTransferState);

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export class ViewerScreen {
  private view: ViewingView | null = null;
  private decoder: Decoder = 'webview';
  private pictures: FrameDecoder | null = null;
  private badMessages = 0;
  private readonly canvas = $<HTMLCanvasElement>('view-canvas');
  private readonly ctx = this.canvas.getContext('2d')!;
  private readonly input: InputCapture;
  /** Files, chat and the clipboard with the host (the Rust viewer's transfer task). */
  private transfer: RustTransferState | null = null;
  readonly panel: TransferPanel;

  constructor(private readonly notify: (n: Notice) => void, private readonly showError: (e: unknown) => void) {
    this.input = new InputCapture(this.canvas, (msg) => {
      void invoke('view_input', { json: JSON.stringify(msg) }).catch(() => {});
    });
    $('view-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.connect();
    });
    // Unattended access: the computer's permanent password instead of a code.
    $('view-use-password').addEventListener('click', () => {
      const btn = $('view-use-password');
      const on = btn.getAttribute('aria-pressed') !== 'true';
      btn.setAttribute('aria-pressed', String(on));
      btn.textContent = t(on ? 'viewer.useCode' : 'viewer.usePassword');
      for (const el of document.querySelectorAll<HTMLElement>('#view-form .by-code')) el.hidden = on;
      for (const el of document.querySelectorAll<HTMLElement>('#view-form .by-password')) el.hidden = !on;
    });
    $('view-leave').addEventListener('click', () => void invoke('view_leave').catch(showError));
    $('view-reconnect').addEventListener('click', () => void invoke('view_reconnect').catch(showError));
    $('view-only-toggle').addEventListener('click', () => {
      if (this.view) void invoke('view_only', { on: !this.view.view_only }).catch(showError);
    });
    this.panel = new TransferPanel(() => this.backend(), { send: () => {}, copyPending: () => {} }, {
      perspective: 'viewer', picker: false, browserClipboard: false, inline: false,
    });
    document.body.append(this.panel.root);
    $('view-xfer-toggle').addEventListener('click', () => this.panel.show(!this.panel.shown));
  }

  /** The panel's view of the transfer task, and its actions as Tauri commands. */
  private backend(): TransferBackend | null {
    const x = this.transfer;
    const v = this.view;
    if (!x || !v) return null;
    const fail = this.showError;
    return {
      transfers: x.transfers.map(fromRust),
      chat: x.chat,
      // Files go to the host while we have control (the host may still say no).
      allowed: { control: v.control, files: v.control, clipboard: x.allowed.clipboard },
      linkDown: !x.connected,
      // Every file the host offers waits for the person here.
      waiting: (id) => x.transfers.some((t) => t.id === id && t.direction === 'incoming' && t.phase === 'offered'),
      file: () => null,
      sendFiles: () => {},
      sendChat: (text) => {
        void invoke('view_chat', { text }).catch(fail);
        return true;
      },
      decide: (id, accept) => void invoke('view_decide_file', { id, accept }).catch(fail),
      cancel: (id) => void invoke('view_cancel_transfer', { id }).catch(fail),
    };
  }

  async start(): Promise<void> {
    await listen<ViewUpdate>('view-update', (e) => this.onUpdate(e.payload));
    // Files dropped on the window while viewing go to the host.
    await getCurrentWebview().onDragDropEvent((e) => {
      const shown = !$('tab-connect').hidden;
      if (e.payload.type === 'drop' && shown && this.view?.phase === 'connected' && e.payload.paths.length) {
        this.panel.show(true);
        void invoke('view_send_files', { paths: e.payload.paths }).catch(this.showError);
      }
    }).catch(() => {});
    // A forced choice for tests and odd webviews: `?decode=rust` in the window's URL.
    const forced = new URLSearchParams(location.search).get('decode');
    this.decoder = forced === 'rust' || !(await canDecodeH264()) ? 'rust' : 'webview';
    this.render();
  }

  private async connect(): Promise<void> {
    const id = $<HTMLInputElement>('view-id').value;
    const code = $<HTMLInputElement>('view-code').value;
    const byPassword = $('view-use-password').getAttribute('aria-pressed') === 'true';
    const passwordInput = $<HTMLInputElement>('view-password');
    const password = byPassword ? passwordInput.value : null;
    // Not kept in the form once used.
    passwordInput.value = '';
    const totp = byPassword ? $<HTMLInputElement>('view-totp').value.trim() || null : null;
    const server = $<HTMLInputElement>('view-server').value.trim() || null;
    this.pictures?.close();
    this.pictures = new FrameDecoder({
      onPicture: (f, screen) => {
        this.draw(f, screen.width, screen.height);
        f.close();
      },
      onNeedKeyframe: () => void invoke('view_keyframe').catch(() => {}),
      onShown: (frame, afterMs) => void invoke('view_shown', { frame, afterMs }).catch(() => {}),
    });
    const frames = new Channel<ArrayBuffer>();
    frames.onmessage = (buf) => this.onFrame(buf);
    this.view = null;
    $('view-ended').hidden = true;
    try {
      await invoke('view_connect', { id, join: { code, password, totp }, server, decode: this.decoder, frames });
    } catch (e) {
      this.showError(e);
    }
  }

  private onFrame(buf: ArrayBuffer): void {
    let m;
    try {
      m = parseFrameMessage(buf);
    } catch {
      this.badMessages += 1;
      return;
    }
    if (m.kind === 'frame') {
      this.pictures?.push(m.frame);
    } else {
      const { rgba, width, height, displayWidth, displayHeight, captureUs } = m.picture;
      this.draw(new ImageData(rgba, width, height), displayWidth, displayHeight);
      this.pictures?.decodedElsewhere(captureUs, { width, height }, { width: displayWidth, height: displayHeight });
    }
  }

  /** Draws a picture at the screen's size `w` x `h` (stretched if it was sent smaller). */
  private draw(src: VideoFrame | ImageData, w: number, h: number): void {
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    if (src instanceof VideoFrame) {
      this.ctx.drawImage(src, 0, 0, w, h);
    } else if (src.width === w && src.height === h) {
      this.ctx.putImageData(src, 0, 0);
    } else {
      // putImageData does not scale: go through a bitmap.
      void createImageBitmap(src).then((b) => {
        this.ctx.drawImage(b, 0, 0, w, h);
        b.close();
      });
    }
  }

  private onUpdate(u: ViewUpdate): void {
    if (u.type === 'transfers') {
      const { type: _type, ...state } = u;
      this.transfer = state;
      this.panel.update();
    } else if (u.type === 'view') {
      const { type: _type, ...v } = u;
      const was = this.view?.phase;
      this.view = v;
      if (was && was !== 'connected' && v.phase === 'connected') this.pictures?.resumed(Date.now());
      this.render();
    } else {
      const { type: _type, ...n } = u;
      this.notify(n as Notice);
    }
  }

  render(): void {
    this.pictures?.tick();
    const p = presentViewer(this.view, Date.now(), this.pictures?.stats ?? null, this.decoder);
    $('view-form').hidden = !p.showForm;
    $('view-session').hidden = !p.showStage;
    const ended = $('view-ended');
    ended.hidden = !p.endedText;
    ended.textContent = p.endedText ?? '';
    const st = $('view-state');
    st.textContent = p.stateText;
    st.className = `state state-${p.stateClass}`;
    $('view-control').textContent = p.showStage ? p.controlText : '';
    const toggle = $<HTMLButtonElement>('view-only-toggle');
    toggle.hidden = p.toggleText === null;
    toggle.textContent = p.toggleText ?? '';
    $('view-host-away').hidden = !p.hostAway;
    $('view-reconnect-panel').hidden = !p.showReconnect;
    $('view-countdown').textContent = p.countdown ?? '';
    $('view-countdown-text').textContent = p.countdownText ?? '';
    const stats = $('view-stats');
    stats.hidden = p.statsText === null;
    stats.textContent = p.statsText ?? '';
    if (this.input.isEnabled !== p.sendsInput) this.input.setEnabled(p.sendsInput);
    $('view-xfer-toggle').hidden = !p.showStage;
  }

  /** For tests and support: what the screen shows, and the colour at a remote pixel. */
  debug() {
    return {
      view: this.view,
      decoder: this.decoder,
      pictures: this.pictures ? { ...this.pictures.stats } : null,
      badMessages: this.badMessages,
      canvas: { width: this.canvas.width, height: this.canvas.height },
      transfer: this.transfer,
    };
  }

  sample(x: number, y: number): [number, number, number] {
    const d = this.ctx.getImageData(x, y, 1, 1).data;
    return [d[0], d[1], d[2]];
  }
}
