import { describe, expect, it } from 'vitest';
import vectors from '../../tests/vectors/transfer.json';
import {
  CHUNK_DATA, MAX_CHAT_CHARS, MAX_CHUNK_DATA, MAX_CLIPBOARD_TEXT_BYTES, MAX_CONTROL_BYTES, TransferError, VERSION,
  checkName, encodeChunk, encodeControl, parse,
} from './transfer';

const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

describe('transfer format', () => {
  it('shares its limits with holdfast-proto (tests/vectors/transfer.json)', () => {
    expect([vectors.version, vectors.max_control_bytes, vectors.chunk_data, vectors.max_chunk_data,
      vectors.max_chat_chars, vectors.max_clipboard_text_bytes])
      .toEqual([VERSION, MAX_CONTROL_BYTES, CHUNK_DATA, MAX_CHUNK_DATA, MAX_CHAT_CHARS, MAX_CLIPBOARD_TEXT_BYTES]);
  });

  it('parses every vector as the Rust side does, and refuses what it refuses', () => {
    expect(vectors.cases.length).toBeGreaterThan(10);
    for (const c of vectors.cases) {
      const bytes = fromHex(c.bytes);
      if (c.parsed === null) {
        expect(() => parse(bytes), c.bytes).toThrow(TransferError);
        continue;
      }
      const m = parse(bytes);
      const got = m.type === 'chunk' ? { ...m, data: toHex(m.data) } : m;
      expect(got).toEqual(c.parsed);
      // What the browser writes, the Rust side reads: the same bytes.
      const again = m.type === 'chunk' ? encodeChunk(m.id, m.offset, m.data) : encodeControl(m);
      expect(parse(again)).toEqual(m);
    }
  });

  it('judges names as the Rust side does', () => {
    for (const { name, ok } of vectors.names) {
      expect(checkName(name) === null, name).toBe(ok);
    }
  });

  it('refuses oversized and non-UTF-8 messages', () => {
    expect(() => parse(new Uint8Array([0xff, 0xfe, 0x7b]))).toThrow(TransferError);
    const chat = encodeControl({ type: 'chat', n: 0, text: 'a'.repeat(MAX_CONTROL_BYTES) });
    expect(() => parse(chat)).toThrow(/too large/);
    expect(() => parse(encodeChunk(1, 0, new Uint8Array(MAX_CHUNK_DATA + 1)))).toThrow(/too large/);
    expect(() => parse(new TextEncoder().encode('{"type":"accept","id":1.5,"from":0}'))).toThrow(TransferError);
  });
});
