// The panel beside the remote screen for files, the clipboard and chat: the
// DOM only. What it shows comes from a `TransferBackend` (the browser's
// `Transfers`; the desktop app passes one over Tauri), what each transfer
// says from transferview.ts. Files come from a picker or are dropped on the
// panel or the screen.

import { language, t } from './i18n';
import type { ChatLine, TransferView } from './transferengine';
import type { Allowed } from './transfers';
import { presentTransfer, type Action, type Perspective } from './transferview';

export interface PanelOptions {
  perspective: Perspective;
  /** A file picker and drops of browser `File`s (the browser viewer). */
  picker: boolean;
  /** The browser's clipboard rules and its "send my clipboard" button. */
  browserClipboard: boolean;
  /** Part of the page (the app's host screen), not a side panel. */
  inline: boolean;
}

export const BROWSER_PANEL: PanelOptions = { perspective: 'viewer', picker: true, browserClipboard: true, inline: false };

export interface TransferBackend {
  readonly transfers: TransferView[];
  readonly chat: readonly ChatLine[];
  readonly allowed: Allowed;
  /** The connection is interrupted (bytes wait for it to come back). */
  readonly linkDown: boolean;
  waiting(id: number): boolean;
  /** A received file the person may save, if this side keeps them. */
  file(id: number): { name: string; blob: Blob } | null;
  sendFiles(files: File[]): unknown;
  sendChat(text: string): unknown;
  decide(id: number, accept: boolean): void;
  cancel(id: number): void;
}

export type ClipboardNote = 'sent' | 'arrived' | 'blocked' | 'unreadable' | 'tooLarge' | null;

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

/** One transfer's row and the parts a redraw changes. */
interface Row {
  li: HTMLLIElement;
  name: HTMLElement;
  dir: HTMLElement;
  bar: HTMLProgressElement;
  detail: HTMLElement;
  actions: HTMLElement;
  /** The language and actions its buttons were made for. */
  shown: string;
}

export class TransferPanel {
  readonly root = el('aside', 'xfer-panel');
  private readonly filesNote = el('p', 'xfer-note');
  private readonly drop = el('div', 'xfer-drop');
  private readonly picker = el('input');
  private readonly list = el('ul', 'xfer-list');
  /** Rows by transfer id, kept across renders: a button replaced between a
   * person's press and release loses the click (the panel redraws several
   * times a second while files move). */
  private readonly rows = new Map<number, Row>();
  private readonly empty = el('li', 'xfer-empty');
  private readonly clipState = el('p', 'xfer-clip-state');
  private readonly clipHint = el('p', 'xfer-hint');
  private readonly clipSend = el('button', 'xfer-button');
  private readonly clipNote = el('p', 'xfer-clip-note');
  private readonly clipCopy = el('button', 'xfer-button');
  private readonly chatLines = el('ol', 'chat-lines');
  private readonly chatInput = el('input', 'chat-input');
  private readonly chatForm = el('form', 'chat-form');
  private clipboardNote: ClipboardNote = null;
  private scheduled = false;
  private shownChat = '';
  private readonly headings: [HTMLElement, Parameters<typeof t>[0]][] = [];

  constructor(
    private readonly backend: () => TransferBackend | null,
    private readonly clipboard: { send(): void; copyPending(): void },
    private readonly options: PanelOptions = BROWSER_PANEL,
  ) {
    this.root.id = options.inline ? 'host-transfer-panel' : 'transfer-panel';
    this.root.hidden = !options.inline;
    if (options.inline) this.root.classList.add('inline');
    const head = el('header', 'xfer-head');
    const title = el('h2');
    this.headings.push([title, 'xfer.open']);
    const close = el('button', 'xfer-close', '×');
    close.hidden = options.inline;
    close.type = 'button';
    close.setAttribute('aria-label', 'Close');
    close.addEventListener('click', () => this.show(false));
    head.append(title, close);

    const files = el('section', 'xfer-section xfer-files');
    const fh = el('h3');
    this.headings.push([fh, 'xfer.files']);
    this.picker.type = 'file';
    this.picker.multiple = true;
    if (!options.inline) this.picker.id = 'xfer-input';
    this.picker.hidden = true;
    this.picker.addEventListener('change', () => {
      if (this.picker.files) this.backend()?.sendFiles([...this.picker.files]);
      this.picker.value = '';
      this.update();
    });
    const pick = el('button', 'xfer-button xfer-pick');
    pick.type = 'button';
    if (!options.inline) pick.id = 'xfer-pick';
    this.headings.push([pick, 'xfer.send']);
    pick.addEventListener('click', () => this.picker.click());
    const dropText = el('span');
    this.headings.push([dropText, options.picker ? 'xfer.drop' : options.perspective === 'viewer' ? 'xfer.dropApp' : 'xfer.savedTo']);
    pick.hidden = !options.picker;
    this.drop.append(dropText, pick, this.picker);
    if (options.picker) this.acceptDrops(this.drop);
    if (!options.inline) this.list.id = 'xfer-list';
    files.append(fh, this.filesNote, this.drop, this.list);

    const clip = el('section', 'xfer-section xfer-clipboard');
    const ch = el('h3');
    this.headings.push([ch, 'clip.heading']);
    this.clipSend.type = 'button';
    if (!options.inline) this.clipSend.id = 'clip-send';
    this.clipSend.addEventListener('click', () => this.clipboard.send());
    this.clipCopy.type = 'button';
    this.clipCopy.addEventListener('click', () => this.clipboard.copyPending());
    if (!options.inline) this.clipState.id = 'clip-state';
    clip.append(ch, this.clipState, this.clipHint, this.clipSend, this.clipNote, this.clipCopy);

    const chat = el('section', 'xfer-section xfer-chat');
    const chh = el('h3');
    this.headings.push([chh, 'chat.heading']);
    // Ids on the side panel only (one a page); the inline one is reached by class.
    if (!options.inline) {
      this.chatLines.id = 'chat-lines';
      this.chatInput.id = 'chat-input';
    }
    this.chatInput.maxLength = 2000;
    this.chatInput.autocomplete = 'off';
    const send = el('button', 'xfer-button');
    send.type = 'submit';
    this.headings.push([send, 'chat.send']);
    this.chatForm.append(this.chatInput, send);
    this.chatForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (this.backend()?.sendChat(this.chatInput.value)) this.chatInput.value = '';
      this.update();
    });
    // Keys typed here are for the chat, not the remote screen.
    this.chatInput.addEventListener('keydown', (e) => e.stopPropagation());
    chat.append(chh, this.chatLines, this.chatForm);

    this.root.append(head, files, clip, chat);
  }

  /** Files dropped on `target` are sent (the screen takes drops too). */
  acceptDrops(target: HTMLElement): void {
    target.addEventListener('dragover', (e) => {
      if (!e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      this.drop.classList.add('over');
    });
    target.addEventListener('dragleave', () => this.drop.classList.remove('over'));
    target.addEventListener('drop', (e) => {
      e.preventDefault();
      this.drop.classList.remove('over');
      const files = e.dataTransfer?.files;
      if (files?.length) {
        this.show(true);
        this.backend()?.sendFiles([...files]);
        this.update();
      }
    });
  }

  show(on: boolean): void {
    this.root.hidden = !on;
    this.update();
  }

  get shown(): boolean {
    return !this.root.hidden;
  }

  setClipboardNote(note: ClipboardNote): void {
    this.clipboardNote = note;
    this.update();
  }

  /** Redraws on the next frame (many changes a second while files move). */
  update(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  render(): void {
    for (const [e, key] of this.headings) e.textContent = t(key);
    const b = this.backend();
    const allowed = b?.allowed ?? { control: false, files: false, clipboard: false };
    const canSend = allowed.control && allowed.files;
    this.filesNote.textContent = !allowed.control ? t('xfer.needControl') : !allowed.files ? t('xfer.filesOff') : '';
    this.filesNote.hidden = canSend || this.options.perspective === 'host';
    this.drop.classList.toggle('disabled', !canSend);
    (this.drop.querySelector('button') as HTMLButtonElement).disabled = !canSend;

    // Clipboard items are the clipboard section's news, not list entries.
    const views = (b?.transfers ?? []).filter((v) => v.kind === 'file').reverse();
    this.empty.textContent = t('xfer.empty');
    const items = b && views.length ? views.map((v) => this.item(b, v)) : [this.empty];
    for (const id of [...this.rows.keys()]) if (!views.some((v) => v.id === id)) this.rows.delete(id);
    // Moved only when the rows themselves change, not on every redraw.
    const current = [...this.list.children];
    if (current.length !== items.length || current.some((c, i) => c !== items[i])) this.list.replaceChildren(...items);

    const clipOn = allowed.control && allowed.clipboard;
    const browser = this.options.browserClipboard;
    this.clipState.textContent = !allowed.control ? t('xfer.needControl') : clipOn ? t(browser ? 'clip.on' : 'clip.onApp') : t('clip.off');
    this.clipState.dataset.on = String(clipOn);
    this.clipHint.textContent = t('clip.permission');
    this.clipHint.hidden = !clipOn || !browser;
    this.clipSend.textContent = t('clip.send');
    this.clipSend.hidden = !clipOn || !browser;
    const note = this.clipboardNote;
    this.clipNote.hidden = note === null;
    this.clipNote.textContent = note ? t(`clip.${note}`) : '';
    this.clipNote.dataset.note = note ?? '';
    this.clipCopy.textContent = t('clip.copy');
    this.clipCopy.hidden = note !== 'blocked';

    const chat = b?.chat ?? [];
    // Redrawn when a line comes, or the language changes.
    const chatShown = `${language()} ${chat.length}`;
    if (chatShown !== this.shownChat) {
      this.shownChat = chatShown;
      this.chatLines.replaceChildren(
        ...(chat.length === 0
          ? [el('li', 'chat-empty', t('chat.empty'))]
          : chat.map((l) => {
            const li = el('li', l.mine ? 'mine' : 'theirs');
            const them = this.options.perspective === 'viewer' ? 'chat.host' : 'chat.viewer';
            li.append(el('span', 'who', t(l.mine ? 'chat.me' : them)), el('span', 'text', l.text));
            return li;
          })),
      );
      this.chatLines.scrollTop = this.chatLines.scrollHeight;
    }
    this.chatInput.placeholder = t('chat.placeholder');
  }

  /** The row for `v`, updated in place; its buttons are replaced only when the actions change. */
  private item(b: TransferBackend, v: TransferView): HTMLLIElement {
    const p = presentTransfer(v, b.waiting(v.id), b.file(v.id) !== null, b.linkDown, this.options.perspective);
    let row = this.rows.get(v.id);
    if (!row) {
      const li = el('li');
      li.dataset.id = String(v.id);
      const top = el('div', 'xfer-top');
      const name = el('span', 'xfer-name');
      const dir = el('span', 'xfer-dir');
      top.append(name, dir);
      const bar = el('progress', 'xfer-bar');
      bar.max = 1;
      const detail = el('div', 'xfer-detail');
      const actions = el('div', 'xfer-actions');
      li.append(top, bar, detail, actions);
      row = { li, name, dir, bar, detail, actions, shown: '' };
      this.rows.set(v.id, row);
    }
    row.li.className = `xfer-item state-${p.state}`;
    row.li.dataset.phase = v.phase;
    row.name.textContent = p.title;
    row.dir.textContent = p.direction;
    if (p.progress !== null) row.bar.value = p.progress;
    else row.bar.removeAttribute('value');
    row.detail.textContent = p.detail;
    const shown = [language(), ...p.actions].join(' ');
    if (shown !== row.shown) {
      row.shown = shown;
      row.actions.replaceChildren(...p.actions.map((a) => this.button(v.id, a)));
    }
    return row.li;
  }

  private button(id: number, a: Action): HTMLButtonElement {
    const btn = el('button', `xfer-button xfer-${a}`, t(`xfer.${a}`));
    btn.type = 'button';
    btn.addEventListener('click', () => {
      // The backend as it is now (the row may outlive the one it was drawn from).
      const b = this.backend();
      if (!b) return;
      if (a === 'accept' || a === 'decline') b.decide(id, a === 'accept');
      else if (a === 'cancel') b.cancel(id);
      else if (a === 'save') save(b.file(id));
      this.update();
    });
    return btn;
  }
}

/** Hands a received file to the browser's download. */
export function save(file: { name: string; blob: Blob } | null): void {
  if (!file) return;
  const url = URL.createObjectURL(file.blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = file.name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
