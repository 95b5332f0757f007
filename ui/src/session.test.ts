import { describe, expect, it } from 'vitest';
import { errorText, parseLinkReport, qualityReportDue } from './session';

describe('errorText', () => {
  it('says what a wrong code means, with the attempts left', () => {
    expect(errorText('invalid-credentials', 'invalid ID or code (3 attempts left before a lockout)')).toBe(
      'Wrong ID or code. 3 attempts left before a lockout',
    );
  });
  it('gives the lockout in seconds, rounded up', () => {
    expect(errorText('locked-out', 'too many wrong codes', 2995)).toBe('Too many wrong codes. Try again in 3 s.');
    expect(errorText('locked-out', 'too many wrong codes')).toBe('Too many wrong codes. Try again in 60 s.');
  });
  it('tells a refusal from a timeout', () => {
    expect(errorText('consent-denied', '')).toContain('declined');
    expect(errorText('consent-timeout', '')).toContain('did not answer');
  });
  it('passes anything else through with its code', () => {
    expect(errorText('rate-limited', 'full')).toBe('rate-limited: full');
  });
});

describe('parseLinkReport', () => {
  it('takes the host\'s figures', () => {
    expect(parseLinkReport({ type: 'link-report', shown_p50_ms: 40, shown_p95_ms: 90, estimate_kbps: 2500 })).toEqual({
      shownP50Ms: 40, shownP95Ms: 90, hostEstimateKbps: 2500,
    });
    expect(parseLinkReport({ shown_p50_ms: 0, shown_p95_ms: 600_000 })?.hostEstimateKbps).toBeNull();
  });
  it('ignores a hostile or broken report whole', () => {
    const bad = [
      { shown_p50_ms: 90, shown_p95_ms: 40 },
      { shown_p50_ms: -1, shown_p95_ms: 40 },
      { shown_p50_ms: 1.5, shown_p95_ms: 40 },
      { shown_p50_ms: 40, shown_p95_ms: 600_001 },
      { shown_p50_ms: '40', shown_p95_ms: 90 },
      { shown_p50_ms: 40, shown_p95_ms: 90, estimate_kbps: -5 },
      { shown_p50_ms: 40, shown_p95_ms: 90, estimate_kbps: 2 ** 60 },
      { shown_p50_ms: 40, shown_p95_ms: 90, estimate_kbps: 'fast' },
      {},
      null,
    ];
    for (const msg of bad) expect(parseLinkReport(msg)).toBeNull();
  });
});

describe('qualityReportDue', () => {
  it('never reports before admission, however bad or old the sample', () => {
    expect(qualityReportDue(false, true, 1e9)).toBe(false);
  });
  it('reports a change at once and otherwise every interval', () => {
    expect(qualityReportDue(true, true, 0)).toBe(true);
    expect(qualityReportDue(true, false, 100)).toBe(false);
    expect(qualityReportDue(true, false, 1e9)).toBe(true);
  });
});
