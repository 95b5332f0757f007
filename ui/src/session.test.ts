import { describe, expect, it } from 'vitest';
import { errorText } from './session';

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
