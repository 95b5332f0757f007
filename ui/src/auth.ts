// The viewer's side of Holdfast's end-to-end code check (crates/holdfast-auth
// is the reference): CPace, suite CPACE-RISTR255-SHA512 of
// draft-irtf-cfrg-cpace, bound to both DTLS fingerprints, with key
// confirmation. Group and hash come from @noble/curves and @noble/hashes
// (audited, no dependencies); this file only strings them together.
// tests/vectors/auth.json, written by the Rust crate, proves both agree.

import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';

type Point = InstanceType<typeof ristretto255.Point>;

const utf8 = (s: string) => new TextEncoder().encode(s);
const DSI = utf8('CPaceRistretto255');
const S_IN_BYTES = 128;
const POINT_BYTES = 32;
export const SID_BYTES = 16;
export const TAG_BYTES = 64;
export const RESUME_BYTES = 32;
const MAX_MSG_BYTES = 512;
const MAX_FINGERPRINT_CHARS = 200;
const PROTOCOL = utf8('holdfast-auth/1');
const HOST_ROLE = utf8('holdfast host');
const VIEWER_ROLE = utf8('holdfast viewer');
const ORDER = ristretto255.Point.Fn.ORDER;

export type SecretKind = 'code' | 'resume' | 'password';
/** Why an exchange failed; the same names the Rust side uses on the wire. */
export type AuthFailure =
  | 'malformed' | 'intercepted' | 'wrong-code' | 'host-unproven' | 'no-secret'
  | 'wrong-password' | 'locked-out' | 'totp-required' | 'wrong-totp';
/** Every failure name, to tell a known one from a malformed message. */
export const AUTH_FAILURES: readonly AuthFailure[] = [
  'malformed', 'intercepted', 'wrong-code', 'host-unproven', 'no-secret',
  'wrong-password', 'locked-out', 'totp-required', 'wrong-totp',
];

/** Words for a person (the Rust side's `AuthFailure::describe`). */
export function describeFailure(f: AuthFailure): string {
  switch (f) {
    case 'intercepted':
      return 'Someone is in the middle of this connection (the two sides saw different certificates): not connected.';
    case 'wrong-code':
      return 'Wrong code.';
    case 'host-unproven':
      return 'The other side could not prove it knows the code: someone may be in the middle of this connection.';
    case 'no-secret':
      return 'The host asked for a secret this viewer does not have: join with the code.';
    case 'wrong-password':
      return 'Wrong password.';
    case 'locked-out':
      return 'Too many wrong passwords: this computer refuses password logins for a while.';
    case 'totp-required':
      return 'This computer asks for a one-time code from an authenticator app: type it and connect again.';
    case 'wrong-totp':
      return 'Wrong one-time code (or one used already): wait for the next one.';
    default:
      return 'The end-to-end check of the code failed.';
  }
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Characters in a code, and of it the server sees (the gate). */
export const CODE_LEN = 10;
export const GATE_LEN = 4;

/**
 * A code as a person typed it, in canonical form (RoomCode::parse): any case,
 * spaces and dashes dropped, O read as 0, I and L as 1; null if it is not 10
 * Crockford base32 characters.
 */
export function canonicalCode(input: string): string | null {
  if (input.length > 64) return null;
  let out = '';
  for (const ch of input.toUpperCase()) {
    if (ch === ' ' || ch === '-') continue;
    const c = ch === 'O' ? '0' : ch === 'I' || ch === 'L' ? '1' : ch;
    if (!CROCKFORD.includes(c)) return null;
    out += c;
  }
  return out.length === CODE_LEN ? out : null;
}

export class AuthError extends Error {
  constructor(
    readonly code: AuthFailure,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

const malformed = (what: string) => new AuthError('malformed', `malformed authentication message: ${what}`);

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** prepend_len: the LEB128 length, then the bytes. */
export function prependLen(data: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = data.length;
  do {
    len.push(n < 128 ? n : (n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  } while (n > 0);
  return concat(Uint8Array.from(len), data);
}

export const prefixFreeCat = (...parts: Uint8Array[]) => concat(...parts.map(prependLen));

/** Splits a prefix-free concatenation of exactly `n` parts; null if the lengths do not add up. */
export function splitPrefixFree(msg: Uint8Array, n: number): Uint8Array[] | null {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    let len = 0;
    let shift = 0;
    for (;;) {
      if (at >= msg.length || shift > 21) return null;
      const b = msg[at++];
      len += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (len > msg.length - at) return null;
    parts.push(msg.subarray(at, at + len));
    at += len;
  }
  return at === msg.length ? parts : null;
}

export function generatorString(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  const zpad = Math.max(0, S_IN_BYTES - 1 - prependLen(prs).length - prependLen(DSI).length);
  return prefixFreeCat(DSI, prs, new Uint8Array(zpad), ci, sid);
}

export const calculateGenerator = (prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Point =>
  ristretto255_hasher.deriveToCurve!(sha512(generatorString(prs, ci, sid))) as Point;

/** A scalar from little-endian bytes, reduced modulo the group order (as curve25519-dalek does). */
export function scalarFromBytes(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  const s = n % ORDER;
  if (s === 0n) throw new Error('zero scalar');
  return s;
}

export const scalarMult = (y: bigint, g: Point) => g.multiply(y).toBytes();

/** scalar_mult_vfy: null stands for the neutral element (bad encoding or identity): abort. */
export function scalarMultVfy(y: bigint, x: Uint8Array): Uint8Array | null {
  let point: Point;
  try {
    point = ristretto255.Point.fromBytes(x);
  } catch {
    return null;
  }
  if (point.is0()) return null;
  const k = point.multiply(y);
  return k.is0() ? null : k.toBytes();
}

export const isk = (sid: Uint8Array, k: Uint8Array, msgA: Uint8Array, msgB: Uint8Array) =>
  sha512(concat(prefixFreeCat(concat(DSI, utf8('_ISK')), sid, k), msgA, msgB));

/** A DTLS fingerprint in canonical form: `sha-256 AB:CD:…`. */
export function parseFingerprint(value: string): string {
  const bad = () => malformed('DTLS fingerprint');
  if (value.length > MAX_FINGERPRINT_CHARS) throw bad();
  const trimmed = value.trim();
  const space = trimmed.indexOf(' ');
  if (space < 0) throw bad();
  const algo = trimmed.slice(0, space).toLowerCase();
  const hex = trimmed.slice(space + 1).trim();
  if (!['sha-256', 'sha-384', 'sha-512'].includes(algo)) throw bad();
  const bytes = hex.split(':');
  if (bytes.length < 32 || !bytes.every((b) => /^[0-9a-fA-F]{2}$/.test(b))) throw bad();
  return `${algo} ${hex.toUpperCase()}`;
}

/** The sha-256 fingerprint of a session description (refused if two disagree). */
export function fingerprintFromSdp(sdp: string): string {
  let found: string | null = null;
  for (const raw of sdp.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.startsWith('a=fingerprint:')) continue;
    const value = line.slice('a=fingerprint:'.length);
    // Other hashes (sha-1, …) may stand beside it; only sha-256 counts.
    if (!value.trim().toLowerCase().startsWith('sha-256 ')) continue;
    const fp = parseFingerprint(value);
    if (found !== null && found !== fp) throw malformed('two different DTLS fingerprints');
    found = fp;
  }
  if (found === null) throw malformed('no sha-256 DTLS fingerprint in the session description');
  return found;
}

/** The room and both certificates, as this side saw them. */
export interface Binding {
  room: string;
  host: string;
  viewer: string;
}

export const channelIdentifier = (b: Binding) =>
  prefixFreeCat(PROTOCOL, utf8(b.room), utf8(b.host), utf8(b.viewer));

const associatedData = (b: Binding, role: Uint8Array) => prefixFreeCat(role, utf8(b.host), utf8(b.viewer));

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Constant-time comparison of two tags of equal length. */
function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function openHostMsg(msg: Uint8Array, binding: Binding): Uint8Array {
  if (msg.length > MAX_MSG_BYTES) throw malformed('CPace message too long');
  const outer = splitPrefixFree(msg, 2);
  if (!outer) throw malformed('CPace message encoding');
  const ad = splitPrefixFree(outer[1], 3);
  if (!ad) throw malformed('CPace associated data');
  if (!equal(ad[0], HOST_ROLE)) throw malformed('CPace message from the wrong role');
  if (outer[0].length !== POINT_BYTES) throw malformed('CPace point length');
  if (!equal(ad[1], utf8(binding.host)) || !equal(ad[2], utf8(binding.viewer))) {
    throw new AuthError(
      'intercepted',
      'the two sides saw different DTLS certificates: someone is in the middle of this connection',
    );
  }
  return outer[0];
}

export interface Hello {
  kind: SecretKind;
  sid: Uint8Array;
  msg: Uint8Array;
}
export interface Reply {
  msg: Uint8Array;
  tag: Uint8Array;
}

/** The viewer's side of one run, after it answered the host's hello. */
export interface PendingViewer {
  reply: Reply;
  /** Checks the host's tag; returns the resume secret for later connections. */
  onConfirm(tag: Uint8Array): Uint8Array;
}

/**
 * Answers the host's hello with `secret` (the canonical code's bytes, or the
 * resume secret). `scalarBytes` are 64 random bytes (fixed in tests).
 */
export function viewerOnHello(
  kind: SecretKind,
  secret: Uint8Array,
  binding: Binding,
  hello: Hello,
  scalarBytes: Uint8Array = crypto.getRandomValues(new Uint8Array(64)),
): PendingViewer {
  if (hello.kind !== kind) {
    throw new AuthError('no-secret', `the host asked for the ${hello.kind === 'resume' ? 'secret of its earlier session' : hello.kind}, which this viewer does not have`);
  }
  if (hello.sid.length !== SID_BYTES) throw malformed('session ID length');
  const ya = openHostMsg(hello.msg, binding);
  const g = calculateGenerator(secret, channelIdentifier(binding), hello.sid);
  const y = scalarFromBytes(scalarBytes);
  const yb = scalarMult(y, g);
  if (equal(yb, ya)) throw malformed("the host's point is ours (a reflection)");
  const k = scalarMultVfy(y, ya);
  if (!k) throw new AuthError('malformed', "the peer's key share is not a valid group element");
  const msgB = prefixFreeCat(yb, associatedData(binding, VIEWER_ROLE));
  const sessionKey = isk(hello.sid, k, hello.msg, msgB);
  const macKey = sha512(concat(utf8('CPaceMac'), sessionKey));
  const resume = sha512(concat(utf8('holdfast resume'), sessionKey)).slice(0, RESUME_BYTES);
  const reply = { msg: msgB, tag: hmac(sha512, macKey, msgB) };
  const hostMsg = hello.msg.slice();
  return {
    reply,
    onConfirm(tag: Uint8Array) {
      if (!tagsEqual(hmac(sha512, macKey, hostMsg), tag)) {
        throw new AuthError(
          'host-unproven',
          'the host could not prove it knows the code: someone may be in the middle of this connection',
        );
      }
      return resume;
    },
  };
}

export const toBase64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
export function fromBase64(s: string, max: number): Uint8Array {
  if (s.length > Math.ceil(max / 3) * 4) throw malformed('field too long');
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw malformed('not base64');
  }
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
