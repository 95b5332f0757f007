// Reassembles `video` data-channel chunks into frames: the TypeScript twin of
// `holdfast_proto::video::FrameAssembler` (format version 2, documented there;
// `tests/vectors/video.json`, written by the Rust side, keeps the two in step).
// Delta frames are held back after any loss until a keyframe arrives, so the
// decoder never sees a broken reference chain.

export const VERSION = 2;
export const FLAG_KEYFRAME = 0x01;
export const HEADER_LEN = 18;
export const KEYFRAME_HEADER_LEN = 26;
export const MAX_CHUNKS = 2048;
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const MAX_DIMENSION = 8192;

export interface ChunkHeader {
  frameId: number;
  index: number;
  count: number;
  keyframe: boolean;
  captureUs: number;
  /** The coded size (keyframes; 0 on delta frames). */
  width: number;
  height: number;
  /** The screen's size, which the picture is drawn at (keyframes; 0 on delta frames). */
  displayWidth: number;
  displayHeight: number;
}

export interface Frame {
  frameId: number;
  keyframe: boolean;
  captureUs: number;
  width: number;
  height: number;
  displayWidth: number;
  displayHeight: number;
  data: Uint8Array;
}

export type Assembly =
  | { kind: 'pending' }
  | { kind: 'frame'; frame: Frame }
  | { kind: 'need-keyframe' };

export class ChunkError extends Error {}

export function parseChunk(msg: Uint8Array): { header: ChunkHeader; payload: Uint8Array } {
  if (msg.length < HEADER_LEN) throw new ChunkError(`chunk of ${msg.length} bytes is shorter than its header`);
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (msg[0] !== VERSION) throw new ChunkError(`unsupported video format version ${msg[0]}`);
  const flags = msg[1];
  if ((flags & ~FLAG_KEYFRAME) !== 0) throw new ChunkError(`reserved flag bits set: 0x${flags.toString(16).padStart(2, '0')}`);
  const keyframe = (flags & FLAG_KEYFRAME) !== 0;
  const frameId = view.getUint32(2);
  const index = view.getUint16(6);
  const count = view.getUint16(8);
  const captureUs = Number(view.getBigUint64(10));
  if (count === 0 || count > MAX_CHUNKS || index >= count) throw new ChunkError(`chunk index ${index} out of range for count ${count}`);
  const sizes = [0, 0, 0, 0];
  let len = HEADER_LEN;
  if (keyframe) {
    if (msg.length < KEYFRAME_HEADER_LEN) throw new ChunkError(`chunk of ${msg.length} bytes is shorter than its header`);
    for (let i = 0; i < 4; i++) sizes[i] = view.getUint16(18 + 2 * i);
    for (let i = 0; i < 4; i += 2) {
      const [w, h] = [sizes[i], sizes[i + 1]];
      if (w === 0 || h === 0 || w > MAX_DIMENSION || h > MAX_DIMENSION) {
        throw new ChunkError(`invalid frame dimensions ${w}x${h}`);
      }
    }
    len = KEYFRAME_HEADER_LEN;
  }
  const [width, height, displayWidth, displayHeight] = sizes;
  return {
    header: { frameId, index, count, keyframe, captureUs, width, height, displayWidth, displayHeight },
    payload: msg.subarray(len),
  };
}

interface Partial {
  header: ChunkHeader;
  parts: (Uint8Array | undefined)[];
  have: number;
  bytes: number;
}

export class FrameAssembler {
  private current: Partial | null = null;
  private lastComplete: number | null = null;
  private awaitingKeyframe = false;
  private started = false;
  framesLost = 0;

  requireKeyframe(): void {
    this.awaitingKeyframe = true;
  }

  private lose(): void {
    this.current = null;
    this.awaitingKeyframe = true;
    this.framesLost += 1;
  }

  push(msg: Uint8Array): Assembly {
    const { header, payload } = parseChunk(msg);
    if (this.current && this.current.header.frameId !== header.frameId) this.lose();
    if (!this.current) {
      this.current = { header, parts: new Array(header.count), have: 0, bytes: 0 };
    }
    const cur = this.current;
    const h = cur.header;
    if (h.count !== header.count || h.keyframe !== header.keyframe || h.captureUs !== header.captureUs) {
      this.lose();
      throw new ChunkError(`chunk disagrees with earlier chunks of frame ${header.frameId}`);
    }
    if (cur.parts[header.index] === undefined) {
      cur.bytes += payload.length;
      if (cur.bytes > MAX_FRAME_BYTES) {
        this.lose();
        throw new ChunkError('frame too large');
      }
      cur.parts[header.index] = payload.slice();
      cur.have += 1;
    }
    if (cur.have < h.count) return { kind: 'pending' };
    this.current = null;
    if (this.lastComplete !== null && h.frameId !== ((this.lastComplete + 1) >>> 0)) {
      this.framesLost += 1;
      this.awaitingKeyframe = true;
    }
    this.lastComplete = h.frameId;
    if (h.keyframe) {
      this.awaitingKeyframe = false;
      this.started = true;
    } else if (this.awaitingKeyframe || !this.started) {
      return { kind: 'need-keyframe' };
    }
    const data = new Uint8Array(cur.bytes);
    let off = 0;
    for (const p of cur.parts) {
      data.set(p!, off);
      off += p!.length;
    }
    return {
      kind: 'frame',
      frame: {
        frameId: h.frameId,
        keyframe: h.keyframe,
        captureUs: h.captureUs,
        width: h.width,
        height: h.height,
        displayWidth: h.displayWidth,
        displayHeight: h.displayHeight,
        data,
      },
    };
  }
}

/** `avc1.PPCCLL` from the SPS in an Annex B access unit, or null. */
export function codecFromAnnexB(data: Uint8Array): string | null {
  for (let i = 0; i + 4 < data.length; i++) {
    const start3 = data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1;
    if (!start3) continue;
    const nal = i + 3;
    if ((data[nal] & 0x1f) === 7 && nal + 3 < data.length) {
      const hex = (b: number) => b.toString(16).padStart(2, '0').toUpperCase();
      return `avc1.${hex(data[nal + 1])}${hex(data[nal + 2])}${hex(data[nal + 3])}`;
    }
  }
  return null;
}
