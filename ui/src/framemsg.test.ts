// The webview reads exactly what viewing.rs writes (the same bytes as its
// frames_are_framed_for_the_webview_byte_for_byte test).
import { describe, expect, it } from 'vitest';
import { FRAME_HEADER, parseFrameMessage } from './framemsg';

const bytes = (a: number[]) => new Uint8Array(a).buffer;

describe('frame messages from the Rust viewer', () => {
  it('reads an encoded frame', () => {
    const m = parseFrameMessage(bytes([
      1, 4, 3, 2, 1, 1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0x05, 0xd0, 0x02, 0x00, 0x0a, 0xa0,
      0x05, 0, 0, 0, 1, 0x67,
    ]));
    expect(m.kind).toBe('frame');
    if (m.kind !== 'frame') return;
    expect(m.frame.frameId).toBe(0x01020304);
    expect(m.frame.keyframe).toBe(true);
    expect(m.frame.captureUs).toBe(Number(0x1122334455667788n));
    expect([m.frame.width, m.frame.height]).toEqual([1280, 720]);
    expect([m.frame.displayWidth, m.frame.displayHeight]).toEqual([2560, 1440]);
    expect([...m.frame.data]).toEqual([0, 0, 0, 1, 0x67]);
  });

  it('reads a picture decoded in Rust', () => {
    const m = parseFrameMessage(bytes([
      2, 7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 1, 2, 3, 255, 4, 5, 6, 255,
    ]));
    expect(m.kind).toBe('picture');
    if (m.kind !== 'picture') return;
    expect(m.picture.captureUs).toBe(7);
    expect([m.picture.width, m.picture.height]).toEqual([2, 1]);
    expect([m.picture.displayWidth, m.picture.displayHeight]).toEqual([4, 2]);
    expect([...m.picture.rgba]).toEqual([1, 2, 3, 255, 4, 5, 6, 255]);
  });

  it('refuses what is malformed', () => {
    for (const bad of [
      [],
      [9, 1, 2],
      new Array(FRAME_HEADER).fill(0).map((_, i) => (i === 0 ? 1 : 0)),
      [2, 7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 1, 2, 3],
      [2, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      // A screen of zero, or of 65,536 x 1: refused, not drawn.
      [2, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3, 255],
      [2, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 2, 3, 255],
    ]) {
      expect(() => parseFrameMessage(bytes(bad)), JSON.stringify(bad)).toThrow();
    }
  });
});
