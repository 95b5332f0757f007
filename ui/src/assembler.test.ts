import { describe, expect, it } from 'vitest';
import videoVectors from '../../tests/vectors/video.json';
import { ChunkError, FrameAssembler, HEADER_LEN, KEYFRAME_HEADER_LEN, VERSION, codecFromAnnexB, parseChunk } from './assembler';

function chunk(frameId: number, index: number, count: number, keyframe: boolean, payload: number[], captureUs = 1000): Uint8Array {
  const len = keyframe ? KEYFRAME_HEADER_LEN : HEADER_LEN;
  const b = new Uint8Array(len + payload.length);
  const v = new DataView(b.buffer);
  b[0] = VERSION;
  b[1] = keyframe ? 1 : 0;
  v.setUint32(2, frameId);
  v.setUint16(6, index);
  v.setUint16(8, count);
  v.setBigUint64(10, BigInt(captureUs));
  if (keyframe) {
    v.setUint16(18, 1920);
    v.setUint16(20, 1080);
    v.setUint16(22, 1920);
    v.setUint16(24, 1080);
  }
  b.set(payload, len);
  return b;
}

const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

describe('parseChunk', () => {
  it('reads every chunk of tests/vectors/video.json as the Rust side does', () => {
    expect(videoVectors.version).toBe(VERSION);
    expect(videoVectors.cases.length).toBeGreaterThan(5);
    for (const c of videoVectors.cases) {
      const want = c.parsed as Record<string, unknown>;
      let got: Record<string, unknown>;
      try {
        const { header, payload } = parseChunk(fromHex(c.chunk));
        got = { ...header, payload: toHex(payload) };
      } catch (e) {
        expect(e, c.name).toBeInstanceOf(ChunkError);
        got = { error: (e as Error).message };
      }
      expect(got, c.name).toEqual(want);
    }
  });
});

describe('FrameAssembler', () => {
  it('reassembles a keyframe from chunks in order', () => {
    const a = new FrameAssembler();
    expect(a.push(chunk(7, 0, 2, true, [1, 2])).kind).toBe('pending');
    const r = a.push(chunk(7, 1, 2, true, [3]));
    expect(r.kind).toBe('frame');
    if (r.kind === 'frame') {
      expect(Array.from(r.frame.data)).toEqual([1, 2, 3]);
      expect([r.frame.width, r.frame.height, r.frame.captureUs]).toEqual([1920, 1080, 1000]);
    }
  });

  it('holds back deltas after a gap until a keyframe', () => {
    const a = new FrameAssembler();
    expect(a.push(chunk(1, 0, 1, true, [0])).kind).toBe('frame');
    expect(a.push(chunk(3, 0, 1, false, [0])).kind).toBe('need-keyframe');
    expect(a.push(chunk(4, 0, 1, true, [0])).kind).toBe('frame');
    expect(a.push(chunk(5, 0, 1, false, [0])).kind).toBe('frame');
    expect(a.framesLost).toBe(1);
  });

  it('wraps frame ids at 2^32', () => {
    const a = new FrameAssembler();
    expect(a.push(chunk(0xffffffff, 0, 1, true, [0])).kind).toBe('frame');
    expect(a.push(chunk(0, 0, 1, false, [0])).kind).toBe('frame');
  });

  it('rejects malformed chunks without breaking', () => {
    const a = new FrameAssembler();
    expect(() => parseChunk(new Uint8Array(5))).toThrow();
    const bad = chunk(1, 0, 1, true, [0]);
    bad[0] = 9;
    expect(() => a.push(bad)).toThrow(/version/);
    const idx = chunk(1, 3, 2, false, []);
    expect(() => a.push(idx)).toThrow(/out of range/);
    expect(a.push(chunk(2, 0, 1, true, [0])).kind).toBe('frame');
  });
});

describe('codecFromAnnexB', () => {
  it('reads profile, constraints and level from the SPS', () => {
    const au = new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x28, 0xaa, 0, 0, 0, 1, 0x68, 0xce]);
    expect(codecFromAnnexB(au)).toBe('avc1.42C028');
    expect(codecFromAnnexB(new Uint8Array([0, 0, 1, 0x65, 1, 2, 3]))).toBeNull();
  });
});
