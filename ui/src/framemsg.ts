// The binary messages the desktop app's Rust viewer sends the webview over
// its Tauri channel (crates/holdfast-desktop/src/viewing.rs): an encoded
// frame for WebCodecs, or a picture already decoded with OpenH264 where the
// webview cannot decode H.264. Little-endian throughout.

import { MAX_DIMENSION as MAX_SCREEN_SIDE, type Frame } from './assembler';

export const ENCODED_FRAME = 1;
export const PICTURE = 2;
/** kind (1) · frame id (u32) · keyframe (u8) · capture µs (u64) · width, height, screen width, height (u16). */
export const FRAME_HEADER = 22;
/** kind (1) · capture µs (u64) · width, height, screen width, height (u32). */
export const PICTURE_HEADER = 25;

export interface Picture {
  captureUs: number;
  width: number;
  height: number;
  /** The screen's size, which the picture is drawn at. */
  displayWidth: number;
  displayHeight: number;
  rgba: Uint8ClampedArray<ArrayBuffer>;
}

export type FrameMessage = { kind: 'frame'; frame: Frame } | { kind: 'picture'; picture: Picture };

/** Reads one message; throws on anything malformed (the caller counts it and moves on). */
export function parseFrameMessage(buf: ArrayBuffer): FrameMessage {
  const v = new DataView(buf);
  if (buf.byteLength < 1) throw new Error('empty message');
  const kind = v.getUint8(0);
  if (kind === ENCODED_FRAME) {
    if (buf.byteLength <= FRAME_HEADER) throw new Error('short frame message');
    return {
      kind: 'frame',
      frame: {
        frameId: v.getUint32(1, true),
        keyframe: v.getUint8(5) === 1,
        captureUs: Number(v.getBigUint64(6, true)),
        width: v.getUint16(14, true),
        height: v.getUint16(16, true),
        displayWidth: v.getUint16(18, true),
        displayHeight: v.getUint16(20, true),
        data: new Uint8Array(buf, FRAME_HEADER),
      },
    };
  }
  if (kind === PICTURE) {
    if (buf.byteLength < PICTURE_HEADER) throw new Error('short picture message');
    const width = v.getUint32(9, true);
    const height = v.getUint32(13, true);
    const displayWidth = v.getUint32(17, true);
    const displayHeight = v.getUint32(21, true);
    if (width === 0 || height === 0 || buf.byteLength - PICTURE_HEADER !== width * height * 4) {
      throw new Error(`picture of ${width}×${height} does not match its ${buf.byteLength - PICTURE_HEADER} bytes`);
    }
    if (displayWidth === 0 || displayHeight === 0 || displayWidth > MAX_SCREEN_SIDE || displayHeight > MAX_SCREEN_SIDE) {
      throw new Error(`picture for a screen of ${displayWidth}×${displayHeight}`);
    }
    return {
      kind: 'picture',
      picture: {
        captureUs: Number(v.getBigUint64(1, true)),
        width,
        height,
        displayWidth,
        displayHeight,
        rgba: new Uint8ClampedArray(buf, PICTURE_HEADER),
      },
    };
  }
  throw new Error(`unknown message kind ${kind}`);
}
