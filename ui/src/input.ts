// Input capture for the viewer: pointer, wheel and keyboard events on the
// remote-screen canvas become `commands` messages (format in
// crates/holdfast-proto/src/commands.rs).
//
// - Pointer coordinates are normalised to the remote display (0..1), taking
//   the canvas's `object-fit: contain` letterboxing into account, so any
//   canvas size works. Moves are coalesced: at most one per MOVE_INTERVAL_MS,
//   always the latest; a button or key flushes the pending move first.
// - Keys go through a hidden textarea that holds focus while the viewer
//   controls: keydown/keyup carry the physical `code` and the produced `key`;
//   text that arrives without a usable keydown (IME commits, dead-key
//   compositions, characters the layout lacks, paste) is sent as `text`.
// - Losing focus sends `release-all`, so nothing stays held on the host.

/** Coalescing interval for pointer moves (one per display frame at 60 Hz). */
export const MOVE_INTERVAL_MS = 16;
/** Pixels of wheel delta per notch (Chromium's default line step is 100 px / 3 lines). */
const WHEEL_PX_PER_NOTCH = 100;

export interface Rect { left: number; top: number; width: number; height: number }

/** The part of an `object-fit: contain` element that shows a `w`×`h` picture. */
export function containedRect(box: Rect, w: number, h: number): Rect {
  if (w <= 0 || h <= 0 || box.width <= 0 || box.height <= 0) return { ...box, width: 0, height: 0 };
  const scale = Math.min(box.width / w, box.height / h);
  const width = w * scale;
  const height = h * scale;
  return { left: box.left + (box.width - width) / 2, top: box.top + (box.height - height) / 2, width, height };
}

/** Client coordinates to normalised remote coordinates, or null outside the picture. */
export function normalise(x: number, y: number, picture: Rect): { x: number; y: number } | null {
  if (picture.width <= 0 || picture.height <= 0) return null;
  const nx = (x - picture.left) / picture.width;
  const ny = (y - picture.top) / picture.height;
  if (nx < 0 || ny < 0 || nx > 1 || ny > 1) return null;
  return { x: Math.min(1, Math.max(0, nx)), y: Math.min(1, Math.max(0, ny)) };
}

const BUTTONS = ['left', 'middle', 'right', 'back', 'forward'] as const;

/** Accumulates wheel deltas into whole notches (trackpads send many small ones). */
export class WheelAccumulator {
  private dx = 0;
  private dy = 0;

  push(deltaX: number, deltaY: number, deltaMode: number): { dx: number; dy: number } | null {
    const scale = deltaMode === 1 ? WHEEL_PX_PER_NOTCH / 3 : deltaMode === 2 ? WHEEL_PX_PER_NOTCH * 10 : 1;
    this.dx += deltaX * scale;
    this.dy += deltaY * scale;
    const nx = Math.trunc(this.dx / WHEEL_PX_PER_NOTCH);
    const ny = Math.trunc(this.dy / WHEEL_PX_PER_NOTCH);
    if (nx === 0 && ny === 0) return null;
    this.dx -= nx * WHEEL_PX_PER_NOTCH;
    this.dy -= ny * WHEEL_PX_PER_NOTCH;
    const clamp = (n: number) => Math.max(-100, Math.min(100, n));
    return { dx: clamp(nx), dy: clamp(ny) };
  }
}

export type InputMessage = Record<string, unknown> & { type: string };

/** Captures input on `canvas` while enabled and hands messages to `send`. */
export class InputCapture {
  private enabled = false;
  private pendingMove: { x: number; y: number } | null = null;
  private moveTimer: number | undefined;
  private lastMoveAt = 0;
  private wheel = new WheelAccumulator();
  /** Codes whose keydown was sent: only their keyup is sent. */
  private down = new Set<string>();
  private readonly sink: HTMLTextAreaElement;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly send: (msg: InputMessage) => void,
  ) {
    // Off-screen but focusable, so IME and dead keys compose into it.
    const sink = document.createElement('textarea');
    sink.setAttribute('aria-label', 'Keyboard input for the remote computer');
    sink.autocomplete = 'off';
    sink.spellcheck = false;
    sink.style.cssText = 'position:fixed;left:-1000px;top:0;width:10px;height:10px;opacity:0;';
    document.body.appendChild(sink);
    this.sink = sink;
    canvas.addEventListener('pointermove', (e) => this.onMove(e));
    canvas.addEventListener('pointerdown', (e) => this.onButton(e, true));
    canvas.addEventListener('pointerup', (e) => this.onButton(e, false));
    canvas.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    canvas.addEventListener('contextmenu', (e) => { if (this.enabled) e.preventDefault(); });
    sink.addEventListener('keydown', (e) => this.onKey(e, true));
    sink.addEventListener('keyup', (e) => this.onKey(e, false));
    sink.addEventListener('input', (e) => this.onInput(e as InputEvent));
    sink.addEventListener('compositionend', (e) => this.onCompositionEnd(e));
    sink.addEventListener('blur', () => this.releaseAll());
    window.addEventListener('blur', () => this.releaseAll());
  }

  setEnabled(enabled: boolean): void {
    if (this.enabled && !enabled) this.releaseAll();
    this.enabled = enabled;
    this.canvas.classList.toggle('controlling', enabled);
    if (!enabled && document.activeElement === this.sink) this.sink.blur();
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** The rectangle of the canvas that shows the remote picture, in client pixels. */
  pictureRect(): Rect {
    const r = this.canvas.getBoundingClientRect();
    return containedRect({ left: r.left, top: r.top, width: r.width, height: r.height }, this.canvas.width, this.canvas.height);
  }

  private point(e: MouseEvent): { x: number; y: number } | null {
    return normalise(e.clientX, e.clientY, this.pictureRect());
  }

  private onMove(e: PointerEvent): void {
    if (!this.enabled) return;
    const p = this.point(e);
    if (!p) return;
    this.pendingMove = p;
    const wait = MOVE_INTERVAL_MS - (performance.now() - this.lastMoveAt);
    if (wait <= 0) this.flushMove();
    else if (this.moveTimer === undefined) this.moveTimer = window.setTimeout(() => this.flushMove(), wait);
  }

  private flushMove(): void {
    window.clearTimeout(this.moveTimer);
    this.moveTimer = undefined;
    if (!this.pendingMove) return;
    this.send({ type: 'pointer-move', ...this.pendingMove });
    this.pendingMove = null;
    this.lastMoveAt = performance.now();
  }

  private onButton(e: PointerEvent, down: boolean): void {
    if (!this.enabled) return;
    const button = BUTTONS[e.button];
    const p = this.point(e);
    if (!button || !p) return;
    e.preventDefault();
    if (down) {
      this.canvas.setPointerCapture?.(e.pointerId);
      this.sink.focus({ preventScroll: true });
    }
    this.flushMove();
    this.send({ type: 'pointer-button', button, down, ...p });
  }

  private onWheel(e: WheelEvent): void {
    if (!this.enabled) return;
    e.preventDefault();
    this.flushMove();
    const step = this.wheel.push(e.deltaX, e.deltaY, e.deltaMode);
    if (step) this.send({ type: 'wheel', ...step });
  }

  private onKey(e: KeyboardEvent, down: boolean): void {
    if (!this.enabled) return;
    // Composition in progress: the result arrives as text.
    if (e.isComposing || e.key === 'Process' || e.key === 'Dead' || e.key === 'Unidentified') return;
    const id = e.code || e.key;
    if (!down) {
      if (this.down.delete(id)) this.send({ type: 'key', code: e.code, key: e.key, down: false });
      return;
    }
    this.flushMove();
    this.down.add(id);
    this.send({ type: 'key', code: e.code, key: e.key, down: true });
    // Keep the browser from acting on it (Tab, Backspace, shortcuts) and
    // from also producing an `input` event for the same character.
    e.preventDefault();
  }

  private onInput(e: InputEvent): void {
    if (!this.enabled || e.isComposing) return;
    const text = e.data ?? (e.inputType === 'insertFromPaste' ? this.sink.value : null);
    this.sink.value = '';
    if (text) this.sendText(text);
  }

  private onCompositionEnd(e: CompositionEvent): void {
    if (!this.enabled) return;
    this.sink.value = '';
    if (e.data) this.sendText(e.data);
  }

  private sendText(text: string): void {
    // Control characters other than newline and tab are not typed.
    const clean = [...text].filter((c) => c === '\n' || c === '\t' || c >= ' ').join('');
    const chars = [...clean];
    for (let i = 0; i < chars.length; i += 256) this.send({ type: 'text', text: chars.slice(i, i + 256).join('') });
  }

  /** Releases everything on the host (focus lost, control ended). */
  releaseAll(): void {
    if (!this.enabled) return;
    this.down.clear();
    this.send({ type: 'release-all' });
  }
}
