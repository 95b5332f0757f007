// The browser's implementation of the code check against the vectors the
// Rust crate writes (tests/vectors/auth.json, from crates/holdfast-auth):
// the CPace draft's own vectors, and whole Holdfast exchanges with fixed
// randomness, checked from the viewer's side byte for byte.
import { describe, expect, it } from 'vitest';
import vectors from '../../tests/vectors/auth.json';
import codeVectors from '../../tests/vectors/codes.json';
import failureVectors from '../../tests/vectors/auth-failures.json';
import {
  AUTH_FAILURES,
  AuthError,
  GATE_LEN,
  calculateGenerator,
  canonicalCode,
  fingerprintFromSdp,
  generatorString,
  isk,
  prefixFreeCat,
  scalarFromBytes,
  scalarMult,
  scalarMultVfy,
  splitPrefixFree,
  viewerOnHello,
  type Binding,
  type SecretKind,
} from './auth';

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
/** The 64 scalar bytes whose reduction is the vector's 32-byte little-endian scalar. */
const wide = (s: string) => {
  const b = new Uint8Array(64);
  b.set(unhex(s));
  return b;
};

describe('CPace on ristretto255 (draft-irtf-cfrg-cpace-21, B.3)', () => {
  const d = vectors.draft_ristretto255_sha512;
  it('computes the generator string, generator, shares, K and ISK of the draft', () => {
    const [prs, ci, sid] = [unhex(d.prs), unhex(d.ci), unhex(d.sid)];
    expect(hex(generatorString(prs, ci, sid))).toBe(d.generator_string);
    const g = calculateGenerator(prs, ci, sid);
    expect(hex(g.toBytes())).toBe(d.g);
    const ya = scalarFromBytes(unhex(d.ya));
    const yb = scalarFromBytes(unhex(d.yb));
    expect(hex(scalarMult(ya, g))).toBe(d.Ya);
    expect(hex(scalarMult(yb, g))).toBe(d.Yb);
    const msgA = prefixFreeCat(unhex(d.Ya), new TextEncoder().encode('ADa'));
    expect(hex(msgA)).toBe(d.MSGa);
    const k = scalarMultVfy(ya, unhex(d.Yb));
    expect(hex(k!)).toBe(d.K);
    expect(hex(isk(sid, k!, unhex(d.MSGa), unhex(d.MSGb)))).toBe(d.ISK);
  });

  it('refuses the identity and undecodable points, and bad length encodings', () => {
    const s = scalarFromBytes(unhex('7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05'));
    expect(scalarMultVfy(s, new Uint8Array(32))).toBeNull();
    expect(scalarMultVfy(s, unhex('2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c'))).toBeNull();
    for (const bad of ['ffffff', 'ffff03', '00ffff03', '00ffffff']) {
      expect(splitPrefixFree(unhex(bad), 2)).toBeNull();
    }
    expect(hex(prefixFreeCat(...['1234', '5', '', '6789'].map((s) => new TextEncoder().encode(s))))).toBe(
      '04313233340135000436373839',
    );
  });
});

describe('Holdfast exchanges, from the viewer side', () => {
  for (const x of vectors.exchanges) {
    const binding: Binding = { room: x.room, host: x.host_fingerprint, viewer: x.viewer_fingerprint };
    const hello = { kind: x.kind as SecretKind, sid: unhex(x.sid), msg: unhex(x.hello_msg) };

    it(`answers a ${x.kind} hello exactly as the Rust viewer does`, () => {
      const v = viewerOnHello(x.kind as SecretKind, unhex(x.secret), binding, hello, wide(x.yb));
      expect(hex(v.reply.msg)).toBe(x.reply_msg);
      expect(hex(v.reply.tag)).toBe(x.reply_tag);
      expect(hex(v.onConfirm(unhex(x.confirm_tag)))).toBe(x.resume);
    });

    it(`refuses a host tag that is not the host's (${x.kind})`, () => {
      const v = viewerOnHello(x.kind as SecretKind, unhex(x.secret), binding, hello, wide(x.yb));
      const forged = unhex(x.confirm_tag);
      forged[0] ^= 1;
      expect(() => v.onConfirm(forged)).toThrow(AuthError);
    });
  }

  const first = vectors.exchanges[0];
  const binding: Binding = { room: first.room, host: first.host_fingerprint, viewer: first.viewer_fingerprint };
  const hello = { kind: 'code' as const, sid: unhex(first.sid), msg: unhex(first.hello_msg) };

  it('names swapped fingerprints an interception', () => {
    const seen = { ...binding, host: first.viewer_fingerprint };
    try {
      viewerOnHello('code', unhex(first.secret), seen, hello);
      expect.unreachable();
    } catch (e) {
      expect((e as AuthError).code).toBe('intercepted');
    }
  });

  it('with a wrong code sends a tag the host refuses (it differs from the right one)', () => {
    const wrong = new TextEncoder().encode('ABCDEFGHJM');
    const v = viewerOnHello('code', wrong, binding, hello, wide(first.yb));
    expect(hex(v.reply.tag)).not.toBe(first.reply_tag);
    expect(() => v.onConfirm(unhex(first.confirm_tag))).toThrow(AuthError);
  });

  it('refuses a hello for a secret it does not hold', () => {
    expect(() => viewerOnHello('resume', unhex(first.secret), binding, hello)).toThrow(/does not have/);
  });
});

describe('fingerprints in session descriptions', () => {
  const line = (fp: string) => `a=fingerprint:${fp}\r\n`;
  const fp = 'sha-256 ' + Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0')).join(':');
  it('reads the sha-256 one in canonical form', () => {
    const sdp = `v=0\r\n${line('sha-1 AA:BB')}m=application 9\r\n${line(fp)}`;
    expect(fingerprintFromSdp(sdp)).toBe(fp.toUpperCase().replace('SHA-256', 'sha-256'));
  });
  it('refuses two different ones, and none', () => {
    const other = fp.replace('00:', 'ff:');
    expect(() => fingerprintFromSdp(line(fp) + line(other))).toThrow(AuthError);
    expect(() => fingerprintFromSdp('v=0\r\n')).toThrow(AuthError);
  });
});

describe('codes as people type them', () => {
  it('read the same as RoomCode::parse, with the same gate (tests/vectors/codes.json)', () => {
    expect(GATE_LEN).toBe(codeVectors.gate_len);
    for (const c of codeVectors.cases) {
      const canonical = canonicalCode(c.input);
      expect(canonical, c.input).toBe(c.canonical);
      expect(canonical?.slice(0, GATE_LEN) ?? null, c.input).toBe(c.gate);
    }
  });
});

describe('failure names', () => {
  it('are the ones holdfast-proto sends (tests/vectors/auth-failures.json)', () => {
    expect([...AUTH_FAILURES]).toEqual(failureVectors.failures);
  });
});
