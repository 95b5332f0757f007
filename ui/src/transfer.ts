// The `transfer` data channel's format (files, the clipboard and chat), as
// `holdfast-proto/src/transfer.rs` defines it; `transfer.test.ts` checks this
// against the Rust side's vectors (tests/vectors/transfer.json), so a drift
// fails a test on either side.

export const VERSION = 1;
export const CHANNEL_LABEL = 'transfer';
export const MAX_CONTROL_BYTES = 4096;
export const CHUNK_DATA = 32 * 1024;
export const MAX_CHUNK_DATA = 60 * 1024;
export const CHUNK_HEADER = 14;
export const MAX_NAME_BYTES = 255;
export const MAX_FILE_BYTES = 2 ** 40;
export const MAX_CLIPBOARD_TEXT_BYTES = 1024 * 1024;
export const MAX_CLIPBOARD_IMAGE_BYTES = 16 * 1024 * 1024;
export const MAX_CHAT_CHARS = 2000;

export type Kind = 'file' | 'clipboard-text' | 'clipboard-image';
export type RejectReason =
  | 'declined' | 'not-allowed' | 'bad-name' | 'too-large' | 'no-space'
  | 'write-failed' | 'corrupted' | 'cancelled' | 'protocol';
export type AbortReason = 'cancelled' | 'read-failed' | 'protocol';

export type Control =
  | { type: 'hello'; chat_seen: number }
  | { type: 'chat'; n: number; text: string }
  | { type: 'offer'; id: number; kind: Kind; name: string; size: number }
  | { type: 'accept'; id: number; from: number }
  | { type: 'progress'; id: number; have: number }
  | { type: 'end'; id: number; sha256: string }
  | { type: 'complete'; id: number }
  | { type: 'reject'; id: number; reason: RejectReason }
  | { type: 'abort'; id: number; reason: AbortReason };

export type Message = Control | { type: 'chunk'; id: number; offset: number; data: Uint8Array };

export class TransferError extends Error {}

const KINDS: Kind[] = ['file', 'clipboard-text', 'clipboard-image'];
const REJECTS: RejectReason[] = [
  'declined', 'not-allowed', 'bad-name', 'too-large', 'no-space', 'write-failed', 'corrupted', 'cancelled', 'protocol',
];
const ABORTS: AbortReason[] = ['cancelled', 'read-failed', 'protocol'];
const FIELDS: Record<Control['type'], string[]> = {
  hello: ['chat_seen'],
  chat: ['n', 'text'],
  offer: ['id', 'kind', 'name', 'size'],
  accept: ['id', 'from'],
  progress: ['id', 'have'],
  end: ['id', 'sha256'],
  complete: ['id'],
  reject: ['id', 'reason'],
  abort: ['id', 'reason'],
};

// Rust's char::is_control (Unicode Cc), and the bidirectional overrides a
// name may not hide an extension behind.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const BIDI = /[\u202a-\u202e\u2066-\u2069]/u;

export function maxSize(kind: Kind): number {
  return kind === 'file' ? MAX_FILE_BYTES : kind === 'clipboard-text' ? MAX_CLIPBOARD_TEXT_BYTES : MAX_CLIPBOARD_IMAGE_BYTES;
}

/** Why `name` is not a plain file name the receiver may create, or null. */
export function checkName(name: string): string | null {
  if (name.length === 0) return 'the name is empty';
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) return `the name is longer than ${MAX_NAME_BYTES} bytes`;
  if (/[/\\]/.test(name)) return 'the name contains a path separator';
  if (name === '.' || name === '..') return 'the name is `.` or `..`';
  if (CONTROL.test(name) || BIDI.test(name)) return 'the name contains control characters';
  const stem = name.split('.')[0].toUpperCase();
  const device = ['CON', 'PRN', 'AUX', 'NUL'].includes(stem) || /^(COM|LPT)[0-9]$/.test(stem);
  if (device || /[. ]$/.test(name) || name.includes(':')) return 'the name is reserved on Windows or ends in a dot or space';
  return null;
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;

function validate(o: Record<string, unknown>): Control {
  const type = o.type as Control['type'];
  const fields = FIELDS[type];
  if (typeof type !== 'string' || !fields) throw new TransferError(`unknown transfer message type ${String(o.type)}`);
  for (const k of Object.keys(o)) {
    if (k !== 'type' && !fields.includes(k)) throw new TransferError(`unknown field \`${k}\``);
  }
  for (const k of fields) {
    if (!(k in o)) throw new TransferError(`missing field \`${k}\``);
  }
  for (const k of ['id', 'n', 'chat_seen']) {
    if (k in o && !isU32(o[k])) throw new TransferError(`\`${k}\` must be a u32`);
  }
  for (const k of ['size', 'from', 'have']) {
    if (k in o && !isSize(o[k])) throw new TransferError(`\`${k}\` must be a byte count`);
    if (k in o && (o[k] as number) > MAX_FILE_BYTES && k !== 'size') throw new TransferError(`\`${k}\` out of range`);
  }
  switch (type) {
    case 'chat': {
      if (typeof o.text !== 'string') throw new TransferError('`text` must be a string');
      const n = Array.from(o.text).length;
      if (n === 0 || n > MAX_CHAT_CHARS) throw new TransferError('`text` must hold 1 to 2000 characters');
      if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/u.test(o.text)) throw new TransferError('`text` may not contain control characters');
      break;
    }
    case 'offer': {
      if (!KINDS.includes(o.kind as Kind)) throw new TransferError('unknown `kind`');
      if (typeof o.name !== 'string') throw new TransferError('`name` must be a string');
      if ((o.size as number) > maxSize(o.kind as Kind)) throw new TransferError('`size` exceeds what this kind may carry');
      if (o.kind === 'file') {
        const why = checkName(o.name);
        if (why) throw new TransferError(`\`name\`: ${why}`);
      } else if (o.name !== '') {
        throw new TransferError('a clipboard transfer has no name');
      }
      break;
    }
    case 'end':
      if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) {
        throw new TransferError('`sha256` must be 64 lowercase hex digits');
      }
      break;
    case 'reject':
      if (!REJECTS.includes(o.reason as RejectReason)) throw new TransferError('unknown `reason`');
      break;
    case 'abort':
      if (!ABORTS.includes(o.reason as AbortReason)) throw new TransferError('unknown `reason`');
      break;
  }
  return o as unknown as Control;
}

/** Decodes and validates one message; throws TransferError. */
export function parse(bytes: Uint8Array): Message {
  if (bytes.length > 0 && bytes[0] === 0) {
    if (bytes.length > CHUNK_HEADER + MAX_CHUNK_DATA) throw new TransferError(`transfer message of ${bytes.length} bytes is too large`);
    if (bytes.length < CHUNK_HEADER) throw new TransferError('malformed chunk: shorter than its header');
    if (bytes[1] !== VERSION) throw new TransferError(`unsupported transfer format version ${bytes[1]}`);
    const data = bytes.subarray(CHUNK_HEADER);
    if (data.length === 0) throw new TransferError('malformed chunk: no data');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const offset = Number(view.getBigUint64(6));
    if (offset + data.length > MAX_FILE_BYTES) throw new TransferError('malformed chunk: offset out of range');
    return { type: 'chunk', id: view.getUint32(2), offset, data };
  }
  if (bytes.length > MAX_CONTROL_BYTES) throw new TransferError(`transfer message of ${bytes.length} bytes is too large`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new TransferError(`invalid transfer message: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TransferError('a transfer message is a JSON object');
  }
  const o = { ...(value as Record<string, unknown>) };
  if ('v' in o) {
    if (typeof o.v !== 'number') throw new TransferError('`v` must be a number');
    if (o.v !== VERSION) throw new TransferError(`unsupported transfer format version ${o.v}`);
    delete o.v;
  }
  return validate(o);
}

/** The wire bytes of a control message (JSON with `v`). */
export function encodeControl(c: Control): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ ...c, v: VERSION }));
}

/** A chunk's wire bytes. */
export function encodeChunk(id: number, offset: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER + data.length);
  const view = new DataView(out.buffer);
  out[0] = 0;
  out[1] = VERSION;
  view.setUint32(2, id);
  view.setBigUint64(6, BigInt(offset));
  out.set(data, CHUNK_HEADER);
  return out;
}
