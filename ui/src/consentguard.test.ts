import { describe, expect, it } from 'vitest';
import { CONSENT_ARM_MS, ConsentGuard } from './consentguard';

describe('the consent dialog guard', () => {
  it('takes no answer in the first second of a request', () => {
    const g = new ConsentGuard();
    expect(g.show('p1', 10_000)).toBe(true);
    expect(g.armed(10_000)).toBe(false);
    expect(g.armed(10_000 + CONSENT_ARM_MS - 1)).toBe(false);
    expect(g.armsIn(10_400)).toBe(600);
    expect(g.armed(10_000 + CONSENT_ARM_MS)).toBe(true);
  });

  it('the same request re-rendered keeps its clock; the next request starts again', () => {
    const g = new ConsentGuard();
    g.show('p1', 0);
    expect(g.show('p1', 5_000)).toBe(false);
    expect(g.armed(5_000)).toBe(true);
    expect(g.show('p2', 5_000)).toBe(true);
    expect(g.armed(5_500)).toBe(false);
    g.hide();
    expect(g.armed(99_999)).toBe(false);
  });
});
