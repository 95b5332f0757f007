import { describe, expect, it } from 'vitest';
import { containedRect, normalise, WheelAccumulator } from './input';

describe('containedRect', () => {
  it('letterboxes a wide picture in a tall box', () => {
    const r = containedRect({ left: 0, top: 50, width: 1280, height: 1000 }, 1920, 1080);
    expect(r.width).toBeCloseTo(1280);
    expect(r.height).toBeCloseTo(720);
    expect(r.top).toBeCloseTo(50 + 140);
    expect(r.left).toBe(0);
  });
  it('pillarboxes a tall picture', () => {
    const r = containedRect({ left: 10, top: 0, width: 1000, height: 500 }, 1000, 1000);
    expect(r.width).toBeCloseTo(500);
    expect(r.left).toBeCloseTo(10 + 250);
  });
  it('is empty before the first frame', () => {
    expect(containedRect({ left: 0, top: 0, width: 100, height: 100 }, 0, 0).width).toBe(0);
  });
});

describe('normalise', () => {
  const pic = { left: 100, top: 200, width: 400, height: 300 };
  it('maps corners to 0 and 1', () => {
    expect(normalise(100, 200, pic)).toEqual({ x: 0, y: 0 });
    expect(normalise(500, 500, pic)).toEqual({ x: 1, y: 1 });
    expect(normalise(300, 350, pic)).toEqual({ x: 0.5, y: 0.5 });
  });
  it('ignores the letterbox bars', () => {
    expect(normalise(99, 300, pic)).toBeNull();
    expect(normalise(300, 501, pic)).toBeNull();
    expect(normalise(0, 0, { left: 0, top: 0, width: 0, height: 0 })).toBeNull();
  });
});

describe('WheelAccumulator', () => {
  it('turns pixel deltas into whole notches and keeps the remainder', () => {
    const w = new WheelAccumulator();
    expect(w.push(0, 40, 0)).toBeNull();
    expect(w.push(0, 70, 0)).toEqual({ dx: 0, dy: 1 });
    expect(w.push(0, 90, 0)).toEqual({ dx: 0, dy: 1 });
    expect(w.push(0, -300, 0)).toEqual({ dx: 0, dy: -3 });
    expect(w.push(0, -150, 0)).toEqual({ dx: 0, dy: -1 });
    expect(w.push(0, -60, 0)).toEqual({ dx: 0, dy: -1 }); // -50 left over + -60
  });
  it('counts lines and clamps huge deltas', () => {
    const w = new WheelAccumulator();
    expect(w.push(0, 3, 1)).toEqual({ dx: 0, dy: 1 });
    expect(w.push(1e9, 0, 0)).toEqual({ dx: 100, dy: 0 });
  });
});
