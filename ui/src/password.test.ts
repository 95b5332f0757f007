// The browser's Argon2id key, gate and parameter bounds against what
// holdfast-auth computes (tests/vectors/auth.json, "passwords"): a drift on
// either side fails here or in `cargo test -p holdfast-auth`.
import { describe, expect, it } from 'vitest';
import vectors from '../../tests/vectors/auth.json';
import { checkParams, deriveKey, passwordGate } from './password';

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

describe('permanent-password keys (unattended access)', () => {
  for (const c of vectors.passwords.cases) {
    it(`derives the Rust key and gate for ${JSON.stringify(c.password)} (m=${c.params.m})`, async () => {
      const params = checkParams(c.params);
      expect(params).not.toBeNull();
      const key = await deriveKey(c.password, params!);
      expect(hex(key)).toBe(c.key);
      expect(passwordGate(key)).toBe(c.gate);
    }, 30_000);
  }

  it('refuses the parameters holdfast-auth refuses', () => {
    for (const bad of vectors.passwords.refused_params) expect(checkParams(bad), JSON.stringify(bad)).toBeNull();
    expect(checkParams({ ...vectors.passwords.cases[0].params, extra: 1 })).toBeNull();
    expect(checkParams(null)).toBeNull();
  });
});
