// FrameDecoder's bookkeeping, without a real VideoDecoder: what it asks for
// before a keyframe, and the picture figures it keeps.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FrameDecoder, ScreenSizes } from './decoder';

const delta = (captureUs: number) => ({
  frameId: 1, keyframe: false, captureUs, width: 1280, height: 720, displayWidth: 1280, displayHeight: 720, data: new Uint8Array([0, 0, 0, 1, 0x41]),
});

describe('FrameDecoder', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['performance', 'Date'] }));
  afterEach(() => vi.useRealTimers());

  it('asks for a keyframe rather than feed a delta frame to nothing', () => {
    let asked = 0;
    let drawn = 0;
    const d = new FrameDecoder({ onPicture: () => drawn++, onNeedKeyframe: () => asked++ });
    d.push(delta(Date.now() * 1000));
    d.push(delta(Date.now() * 1000));
    expect(asked).toBe(2);
    expect(drawn).toBe(0);
    expect(d.ready).toBe(false);
    expect(d.stats.framesReceived).toBe(2);
    expect(d.stats.framesDecoded).toBe(0);
  });

  it('counts pictures decoded elsewhere: size, fps over the last second, latency', () => {
    const d = new FrameDecoder({ onPicture: () => {}, onNeedKeyframe: () => {} });
    for (let i = 0; i < 10; i++) {
      // Captured 30 ms before it is shown.
      d.decodedElsewhere((performance.timeOrigin + performance.now() - 30) * 1000, { width: 640, height: 360 }, { width: 1280, height: 720 });
      vi.advanceTimersByTime(100);
    }
    expect(d.stats).toMatchObject({
      framesReceived: 10, framesDecoded: 10, fps: 10, width: 1280, height: 720, codedWidth: 640, codedHeight: 360,
    });
    expect(d.stats.latencyP50Ms).toBeCloseTo(30, 0);
    vi.advanceTimersByTime(2000);
    d.tick();
    expect(d.stats.fps).toBe(0);
    expect(d.latencySamples()).toHaveLength(10);
  });
});

describe('FrameDecoder acknowledgements', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['performance', 'Date'] }));
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('acknowledges each frame once drawn, with the time since it arrived', () => {
    let output: (f: unknown) => void = () => {};
    vi.stubGlobal('VideoDecoder', class {
      state = 'unconfigured';
      constructor(init: { output: (f: unknown) => void }) { output = init.output; }
      configure() { this.state = 'configured'; }
      decode() {}
      close() { this.state = 'closed'; }
    });
    vi.stubGlobal('EncodedVideoChunk', class { constructor(readonly init: unknown) {} });
    const shown: [number, number][] = [];
    const order: string[] = [];
    const d = new FrameDecoder({
      onPicture: () => order.push('drawn'),
      onNeedKeyframe: () => {},
      onShown: (id, ms) => { order.push('acked'); shown.push([id, ms]); },
    });
    const sps = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x65, 0x88];
    const t0 = Date.now() * 1000;
    d.push({ ...delta(t0), frameId: 7, keyframe: true, data: new Uint8Array(sps) });
    d.push({ ...delta(t0 + 33_000), frameId: 8 });
    vi.advanceTimersByTime(12);
    const picture = (timestamp: number) => ({ timestamp, displayWidth: 1280, displayHeight: 720, close() {} });
    output(picture(t0));
    vi.advanceTimersByTime(5);
    output(picture(t0 + 33_000));
    // A picture the decoder invents (or repeats) is not acknowledged.
    output(picture(t0 + 33_000));
    expect(shown).toEqual([[7, 12], [8, 17]]);
    expect(order.slice(0, 2)).toEqual(['drawn', 'acked']);
  });
});

describe('ScreenSizes', () => {
  it('gives each picture the screen of the last keyframe captured at or before it', () => {
    const s = new ScreenSizes();
    expect(s.at(5)).toBeNull();
    s.note(10, { width: 1920, height: 1080 });
    // The host switched to a smaller display; pictures before the switch come out later.
    s.note(20, { width: 1280, height: 720 });
    expect(s.at(10)).toEqual({ width: 1920, height: 1080 });
    expect(s.at(15)).toEqual({ width: 1920, height: 1080 });
    expect(s.at(20)).toEqual({ width: 1280, height: 720 });
    expect(s.at(25)).toEqual({ width: 1280, height: 720 });
  });
});
