// Which frames are too old to show after an outage. The `video` channel is
// reliable and ordered, so when a path comes back it first delivers what the
// host queued before it saw the path die: seconds-old frames that would be
// decoded, one by one, before the first live one. They are skipped instead.
//
// Only an outage marks frames stale. On a slow but live link frames are late
// too, yet they are the newest there are; skipping them would turn the queue
// into gaps and a storm of keyframe requests.

/** A frame captured this long before the path returned is stale. The slack
 *  covers the moment between the path returning and this side noticing, so
 *  the host's first frames after it (a keyframe) are never thrown away. */
export const RESUME_SLACK_MS = 1000;

export type Verdict = 'fresh' | 'stale';

export class FreshnessFilter {
  /** The least (arrival − capture) seen, in ms: transit plus the clocks' offset,
   *  so the two machines' clocks need not agree. */
  private minTransitMs: number | null = null;
  /** Wall-clock ms when the path came back, while stale frames may still come. */
  private resumedAtMs: number | null = null;

  /** The peer connection is `connected` again after `disconnected` or `failed`. */
  resumed(nowMs: number): void {
    if (this.minTransitMs !== null) this.resumedAtMs = nowMs;
  }

  /** Judges one complete frame, `captureUs` on the host's clock, `arrivalMs` on ours. */
  judge(captureUs: number, arrivalMs: number): Verdict {
    const captureMs = captureUs / 1000;
    const transit = arrivalMs - captureMs;
    this.minTransitMs = Math.min(this.minTransitMs ?? transit, transit);
    if (this.resumedAtMs === null) return 'fresh';
    // When it would have arrived over an idle path, on our clock.
    const due = captureMs + this.minTransitMs;
    if (due < this.resumedAtMs - RESUME_SLACK_MS) return 'stale';
    // The channel is ordered: after the first fresh frame, none are stale.
    this.resumedAtMs = null;
    return 'fresh';
  }

  /** Whether frames are still being judged against an outage. */
  get afterOutage(): boolean {
    return this.resumedAtMs !== null;
  }
}
