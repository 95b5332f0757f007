import { describe, expect, it } from 'vitest';
import { QualityMonitor, classify, pathSample } from './quality';

describe('quality', () => {
  it('classifies as the Rust core does', () => {
    expect(classify({ latency_ms: 150, packet_loss_percent: 2.5, jitter_ms: 30 })).toBe('fair');
    expect(classify({ latency_ms: 20, packet_loss_percent: 0, jitter_ms: 2 })).toBe('good');
    expect(classify({ latency_ms: 500, packet_loss_percent: 10, jitter_ms: 100 })).toBe('fair');
    expect(classify({ latency_ms: 501, packet_loss_percent: 0, jitter_ms: 0 })).toBe('poor');
    expect(classify({ latency_ms: 10, packet_loss_percent: 10.1, jitter_ms: 0 })).toBe('poor');
  });

  it('measures median latency, jitter and loss over the window', () => {
    const q = new QualityMonitor();
    expect(q.metrics(0)).toBeNull();
    // 300 ms round trips with one 900 ms outlier; 1 probe in 5 unanswered.
    [300, 300, 900, 300, 300].forEach((r, i) => q.onRtt(i * 1000, r));
    q.onProbes(0, 0, 0);
    q.onProbes(4000, 10, 8);
    const m = q.metrics(4000)!;
    expect(m.latency_ms).toBe(300);
    expect(m.jitter_ms).toBe(300); // (0 + 600 + 600 + 0) / 4
    expect(m.packet_loss_percent).toBeCloseTo(20);
    expect(classify(m)).toBe('poor');
    // Ten seconds later only fresh samples count.
    q.onRtt(20_000, 20);
    q.onProbes(20_000, 20, 18);
    q.onProbes(21_000, 25, 23);
    const later = q.metrics(21_000)!;
    expect(later.latency_ms).toBe(20);
    expect(later.packet_loss_percent).toBeCloseTo(0);
    q.reset();
    expect(q.metrics(21_000)).toBeNull();
  });
});

describe('pathSample', () => {
  const report = (local: string, remote: string) =>
    new Map<string, any>([
      ['T', { type: 'transport', selectedCandidatePairId: 'P' }],
      ['P', { type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', currentRoundTripTime: 0.02,
        requestsSent: 9, responsesReceived: 8 }],
      ['L', { type: 'local-candidate', candidateType: local }],
      ['R', { type: 'remote-candidate', candidateType: remote }],
    ]) as unknown as RTCStatsReport;

  it('says relayed when either end of the pair in use is a relay candidate', () => {
    expect(pathSample(report('host', 'relay'))?.route).toBe('relayed');
    expect(pathSample(report('relay', 'srflx'))?.route).toBe('relayed');
    expect(pathSample(report('host', 'srflx'))).toEqual({ rttMs: 20, sent: 9, answered: 8, route: 'direct' });
  });

  it('knows a peer-reflexive remote for the relay candidate signalled at its address', () => {
    const r = report('host', 'prflx') as unknown as Map<string, any>;
    r.get('R').address = '10.0.0.1';
    r.get('R').port = 50000;
    r.set('S', { type: 'remote-candidate', candidateType: 'relay', address: '10.0.0.1', port: 50000 });
    expect(pathSample(r as unknown as RTCStatsReport)?.route).toBe('relayed');
    r.get('S').port = 50001;
    expect(pathSample(r as unknown as RTCStatsReport)?.route).toBe('direct');
  });
});
