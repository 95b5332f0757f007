// Unattended access from the browser: the host's permanent password becomes
// the key its end-to-end check runs on (Argon2id with the host's public
// parameters, as holdfast-auth's `password` module computes it; the vectors
// in tests/vectors/auth.json hold both to one answer), and the 12-bit gate
// the server sees. The password never leaves this page; the key only feeds
// the CPace exchange, which the host runs itself.

import { argon2idAsync } from '@noble/hashes/argon2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** Argon2id's public parameters, as the server relays them (`room-info`). */
export interface PasswordParams {
  salt: string;
  m: number;
  t: number;
  p: number;
}

/** The bounds holdfast-auth accepts (MEMORY_KIB_RANGE etc.): a hostile
 * server must not make this page spend minutes or gigabytes. */
const MEMORY_KIB = [8 * 1024, 256 * 1024];
const ITERATIONS = [1, 8];
const PARALLELISM = [1, 4];
const MAX_PASSWORD_BYTES = 256;
export const KEY_BYTES = 32;
const GATE_LABEL = new TextEncoder().encode('holdfast password gate');

/** The parameters if they are well-formed and within bounds, else null. */
export function checkParams(v: unknown): PasswordParams | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (Object.keys(o).some((k) => !['salt', 'm', 't', 'p'].includes(k))) return null;
  const within = (x: unknown, [lo, hi]: number[]) => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;
  if (typeof o.salt !== 'string' || !/^[0-9a-f]{32}$/.test(o.salt)) return null;
  if (!within(o.m, MEMORY_KIB) || !within(o.t, ITERATIONS) || !within(o.p, PARALLELISM)) return null;
  if ((o.m as number) < 8 * (o.p as number)) return null;
  return { salt: o.salt, m: o.m as number, t: o.t as number, p: o.p as number };
}

function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The key `password` gives under `params` (about a second with the defaults). */
export async function deriveKey(password: string, params: PasswordParams): Promise<Uint8Array> {
  const bytes = new TextEncoder().encode(password);
  if (bytes.length === 0 || bytes.length > MAX_PASSWORD_BYTES) throw new Error('a password has 1 to 256 bytes');
  return argon2idAsync(bytes, unhex(params.salt), {
    m: params.m, t: params.t, p: params.p, dkLen: KEY_BYTES, maxmem: 2 ** 30,
  });
}

/** The first 12 bits of HMAC-SHA256(key, label), as 3 hex digits. */
export function passwordGate(key: Uint8Array): string {
  const mac = hmac(sha256, key, GATE_LABEL);
  const bits = (mac[0] << 4) | (mac[1] >> 4);
  return bits.toString(16).padStart(3, '0');
}

/**
 * Asks the server at `wsUrl` for room `id`'s password parameters on a
 * socket of its own; null if the room takes no password (or does not exist:
 * the server answers both alike). Rejects on a bad answer or no answer.
 */
export function lookup(wsUrl: string, id: string, timeoutMs = 10_000): Promise<PasswordParams | null> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    const timer = window.setTimeout(() => {
      ws.close();
      reject(new Error('the server did not answer'));
    }, timeoutMs);
    const done = (f: () => void) => {
      window.clearTimeout(timer);
      ws.close();
      f();
    };
    ws.onopen = () => ws.send(JSON.stringify({ type: 'lookup', id }));
    ws.onerror = () => done(() => reject(new Error('could not reach the server')));
    ws.onmessage = (e) => {
      let msg: any;
      try {
        msg = JSON.parse(String(e.data));
      } catch {
        return done(() => reject(new Error('a malformed answer from the server')));
      }
      if (msg.type === 'error') return done(() => reject(new Error(String(msg.message ?? 'refused'))));
      if (msg.type !== 'room-info' || msg.id !== id) return;
      if (msg.unattended === undefined || msg.unattended === null) return done(() => resolve(null));
      const params = checkParams(msg.unattended);
      done(() => (params ? resolve(params) : reject(new Error('the server sent unusable password parameters'))));
    };
  });
}
