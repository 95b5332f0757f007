// Connection quality in the browser viewer, the same rules as the Rust core
// (crates/holdfast-session/src/quality.rs): latency, jitter and loss over a
// 10 s window from round-trip samples (ICE's currentRoundTripTime) and probe
// counters (ICE checks sent and answered, which see the loss the reliable
// data channels hide), classified good / fair / poor. Pure: time passed in.

export type Quality = 'good' | 'fair' | 'poor';

export interface Metrics {
  latency_ms: number;
  packet_loss_percent: number;
  jitter_ms: number;
}

/** Good: all three below these. */
export const GOOD = { latency_ms: 150, packet_loss_percent: 2, jitter_ms: 30 };
/** Poor: any one above these (the seeds' restart thresholds for loss and RTT). */
export const POOR = { latency_ms: 500, packet_loss_percent: 10, jitter_ms: 100 };
export const QUALITY_WINDOW_MS = 10_000;

export function classify(m: Metrics): Quality {
  if (m.latency_ms > POOR.latency_ms || m.packet_loss_percent > POOR.packet_loss_percent || m.jitter_ms > POOR.jitter_ms) {
    return 'poor';
  }
  if (m.latency_ms < GOOD.latency_ms && m.packet_loss_percent < GOOD.packet_loss_percent && m.jitter_ms < GOOD.jitter_ms) {
    return 'good';
  }
  return 'fair';
}

export class QualityMonitor {
  private rtts: [number, number][] = [];
  private probes: [number, number, number][] = [];

  constructor(private readonly windowMs = QUALITY_WINDOW_MS) {}

  reset(): void {
    this.rtts = [];
    this.probes = [];
  }

  onRtt(now: number, rttMs: number): void {
    this.rtts.push([now, rttMs]);
    this.trim(now);
  }

  /** Cumulative counters; a drop (a new pair) starts the count again. */
  onProbes(now: number, sent: number, answered: number): void {
    const last = this.probes.at(-1);
    if (last && (sent < last[1] || answered < last[2])) this.probes = [];
    this.probes.push([now, sent, Math.min(answered, sent)]);
    this.trim(now);
  }

  private trim(now: number): void {
    const old = (t: number) => now - t > this.windowMs;
    while (this.rtts.length && old(this.rtts[0][0])) this.rtts.shift();
    // One reading older than the window stays as the baseline.
    while (this.probes.length > 1 && old(this.probes[1][0])) this.probes.shift();
  }

  metrics(now: number): Metrics | null {
    this.trim(now);
    if (!this.rtts.length) return null;
    const values = this.rtts.map(([, r]) => r);
    const sorted = [...values].sort((a, b) => a - b);
    const latency_ms = sorted[Math.floor(sorted.length / 2)];
    const diffs = values.slice(1).map((v, i) => Math.abs(v - values[i]));
    const jitter_ms = diffs.length ? diffs.reduce((a, b) => a + b, 0) / diffs.length : 0;
    let packet_loss_percent = 0;
    const first = this.probes[0];
    const last = this.probes.at(-1);
    if (first && last && last[1] > first[1]) {
      const sent = last[1] - first[1];
      const answered = Math.max(0, last[2] - first[2]);
      packet_loss_percent = Math.min(100, Math.max(0, 100 * (1 - answered / sent)));
    }
    return { latency_ms, packet_loss_percent, jitter_ms };
  }
}

/** The selected candidate pair's check counters and latest RTT from `getStats()`. */
/** The path in use: straight to the host or through a TURN relay. */
export type Route = 'direct' | 'relayed';

export function pathSample(
  report: RTCStatsReport,
): { rttMs: number | null; sent: number; answered: number; route: Route } | null {
  let pairId: string | undefined;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  let pair: any = pairId ? report.get(pairId) : undefined;
  if (!pair) {
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  if (!pair) return null;
  const rtt = typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
  const local = typeof pair.localCandidateId === 'string' ? report.get(pair.localCandidateId) : undefined;
  const remote = typeof pair.remoteCandidateId === 'string' ? report.get(pair.remoteCandidateId) : undefined;
  // The far end's relay candidate is often first learnt from its checks, as
  // peer-reflexive; the signalled relay candidate at that address says what it is.
  let remoteRelayed = remote?.candidateType === 'relay';
  report.forEach((s) => {
    if (s.type === 'remote-candidate' && s.candidateType === 'relay' && remote
      && s.address === remote.address && s.port === remote.port) remoteRelayed = true;
  });
  const route: Route = local?.candidateType === 'relay' || remoteRelayed ? 'relayed' : 'direct';
  return { rttMs: rtt, sent: pair.requestsSent ?? 0, answered: pair.responsesReceived ?? 0, route };
}
