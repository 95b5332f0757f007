import { describe, expect, it } from 'vitest';
import { FreshnessFilter, RESUME_SLACK_MS } from './freshness';

// Host clock 7 s behind ours, 20 ms of transit: arrival = capture + 7020 ms.
const OFFSET = 7000;
const us = (ms: number) => ms * 1000;

describe('FreshnessFilter', () => {
  it('passes late frames on a slow link that never went down', () => {
    const f = new FreshnessFilter();
    expect(f.judge(us(0), OFFSET + 20)).toBe('fresh');
    // Queued behind a throttled link: each frame later than the last, up to 8 s.
    for (let i = 1; i <= 100; i++) {
      expect(f.judge(us(i * 66), OFFSET + 20 + i * 66 + i * 80)).toBe('fresh');
    }
  });

  it('skips frames captured before the path came back, then passes from the first fresh one', () => {
    const f = new FreshnessFilter();
    for (let t = 0; t <= 1000; t += 66) expect(f.judge(us(t), OFFSET + 20 + t)).toBe('fresh');
    // Blackout from 1000 to 11000 (our time minus offset); the host queued until 2500.
    const back = OFFSET + 11_000;
    f.resumed(back);
    expect(f.afterOutage).toBe(true);
    const verdicts: string[] = [];
    for (let t = 1066; t <= 2500; t += 66) verdicts.push(f.judge(us(t), back + 100 + (t - 1066) / 10));
    expect(verdicts.every((v) => v === 'stale')).toBe(true);
    // The host's keyframe, captured as the path returned, is fresh.
    expect(f.judge(us(11_000 - RESUME_SLACK_MS / 2), back + 300)).toBe('fresh');
    expect(f.afterOutage).toBe(false);
    // And everything after it, however late.
    expect(f.judge(us(5000), back + 400)).toBe('fresh');
  });

  it('an outage before any frame marks nothing', () => {
    const f = new FreshnessFilter();
    f.resumed(OFFSET + 5000);
    expect(f.afterOutage).toBe(false);
    expect(f.judge(us(0), OFFSET + 9000)).toBe('fresh');
  });
});
