// Encoded H.264 frames into pictures with WebCodecs: the one decoding path of
// the browser viewer (frames reassembled from the `video` data channel) and of
// the desktop app's viewer (frames reassembled in Rust, sent to the webview
// over a Tauri channel). It owns the decoder's configuration (from the
// stream's own SPS), the stale-frame filter after an outage, recovery after a
// decoder error (wait for a keyframe, ask for one) and the picture
// statistics: received, decoded, fps, latency. The host may send the screen
// scaled down for a slow link: each picture comes with the screen's size
// (from the keyframe it follows), which is what it is drawn at.

import { codecFromAnnexB, type Frame } from './assembler';
import { FreshnessFilter } from './freshness';

const LATENCY_WINDOW = 300;

export interface Size {
  width: number;
  height: number;
}

export interface DecoderEvents {
  /** A decoded picture and the screen's size, which it is drawn at; the receiver draws it and closes it. */
  onPicture(frame: VideoFrame, screen: Size): void;
  /** Only a keyframe can be decoded next: ask the host for one. */
  onNeedKeyframe(): void;
  /**
   * Frame `frameId` was drawn (`onPicture` returned) `afterMs` after it
   * arrived whole: the host's capture-to-screen figure is built from these.
   */
  onShown?(frameId: number, afterMs: number): void;
}

/** Frames waiting in the decoder, remembered for their acknowledgement. */
const IN_DECODER_KEPT = 64;

export interface PictureStats {
  framesReceived: number;
  framesDecoded: number;
  /** Stale frames skipped after an outage (see freshness.ts). */
  framesSkipped: number;
  decodeErrors: number;
  fps: number;
  /** The screen's size. */
  width: number;
  height: number;
  /** The size the picture was sent at (smaller than the screen on a slow link). */
  codedWidth: number;
  codedHeight: number;
  lastLatencyMs: number | null;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * The screen's size for each picture: keyframes carry it, and a picture
 * (known by its capture time) shows the screen of the last keyframe captured
 * at or before it. Pictures come out of the decoder after more keyframes may
 * have gone in, so the sizes are kept in order until they are passed.
 */
export class ScreenSizes {
  private readonly sizes: { captureUs: number; size: Size }[] = [];

  /** A keyframe captured at `captureUs` shows a screen of `size`. */
  note(captureUs: number, size: Size): void {
    this.sizes.push({ captureUs, size });
    if (this.sizes.length > 64) this.sizes.shift();
  }

  /** The screen's size for the picture captured at `captureUs` (null before any keyframe). */
  at(captureUs: number): Size | null {
    while (this.sizes.length > 1 && this.sizes[1].captureUs <= captureUs) this.sizes.shift();
    return this.sizes[0]?.size ?? null;
  }
}

/** Microseconds since the Unix epoch on this machine's clock. */
function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** Whether this webview or browser can decode the host's H.264 with WebCodecs. */
export async function canDecodeH264(): Promise<boolean> {
  if (typeof VideoDecoder === 'undefined') return false;
  try {
    const r = await VideoDecoder.isConfigSupported({ codec: 'avc1.42E01F', codedWidth: 1280, codedHeight: 720 });
    return r.supported === true;
  } catch {
    return false;
  }
}

export class FrameDecoder {
  readonly stats: PictureStats = {
    framesReceived: 0, framesDecoded: 0, framesSkipped: 0, decodeErrors: 0, fps: 0, width: 0, height: 0,
    codedWidth: 0, codedHeight: 0, lastLatencyMs: null, latencyP50Ms: null, latencyP95Ms: null,
  };
  /** Host clock minus ours, in ms (0 on one machine). */
  clockOffsetMs = 0;
  private decoder: VideoDecoder | null = null;
  private codec: string | null = null;
  /** The coded size the decoder was configured for. */
  private configured: Size | null = null;
  private readonly screens = new ScreenSizes();
  /** After an error or a skipped frame, delta frames cannot be decoded. */
  private awaitingKeyframe = true;
  private lastDecodableAt = 0;
  private decodedTimes: number[] = [];
  private latencies: number[] = [];
  private readonly freshness = new FreshnessFilter();
  /** Capture time (the chunk's timestamp) to frame id and arrival, until decoded. */
  private readonly inDecoder = new Map<number, { frameId: number; arrived: number }>();

  constructor(private readonly events: DecoderEvents) {}

  /** One whole encoded frame, in stream order. */
  push(frame: Frame): void {
    this.stats.framesReceived += 1;
    if (this.freshness.judge(frame.captureUs, Date.now()) === 'stale') {
      this.stats.framesSkipped += 1;
      this.needKeyframe();
      return;
    }
    if (frame.keyframe && !this.ensureDecoder(frame)) return;
    if (frame.keyframe) {
      // Version-1 style frames without a screen size: the coded size is the screen.
      this.screens.note(frame.captureUs, {
        width: frame.displayWidth || frame.width,
        height: frame.displayHeight || frame.height,
      });
    }
    if (this.awaitingKeyframe && !frame.keyframe) {
      this.events.onNeedKeyframe();
      return;
    }
    if (!this.decoder || this.decoder.state !== 'configured') {
      this.needKeyframe();
      return;
    }
    try {
      this.decoder.decode(
        new EncodedVideoChunk({ type: frame.keyframe ? 'key' : 'delta', timestamp: frame.captureUs, data: frame.data }),
      );
      this.inDecoder.set(frame.captureUs, { frameId: frame.frameId, arrived: performance.now() });
      if (this.inDecoder.size > IN_DECODER_KEPT) {
        this.inDecoder.delete(this.inDecoder.keys().next().value!);
      }
      this.awaitingKeyframe = false;
      this.lastDecodableAt = performance.now();
    } catch (e) {
      this.onError(String(e));
    }
  }

  /** The connection came back after an outage: frames captured before it are stale. */
  resumed(nowMs: number): void {
    this.freshness.resumed(nowMs);
  }

  /** Whether a decoder is configured (it is not until the first keyframe, or after an error). */
  get ready(): boolean {
    return this.decoder !== null && this.decoder.state === 'configured';
  }

  /** How long since the last frame that could be decoded. */
  idleMs(now = performance.now()): number {
    return now - this.lastDecodableAt;
  }

  /** Ages the fps window (call about once a second when nothing arrives). */
  tick(now = performance.now()): void {
    while (this.decodedTimes.length && now - this.decodedTimes[0] > 1000) this.decodedTimes.shift();
    this.stats.fps = this.decodedTimes.length;
  }

  latencySamples(): number[] {
    return [...this.latencies];
  }

  close(): void {
    try {
      this.decoder?.close();
    } catch { /* already closed */ }
    this.decoder = null;
    this.codec = null;
  }

  private needKeyframe(): void {
    this.awaitingKeyframe = true;
    this.events.onNeedKeyframe();
  }

  private ensureDecoder(frame: Frame): boolean {
    const codec = codecFromAnnexB(frame.data);
    if (!codec) return this.ready;
    const sameSize = this.configured?.width === frame.width && this.configured?.height === frame.height;
    if (this.ready && codec === this.codec && sameSize) return true;
    this.close();
    this.decoder = new VideoDecoder({
      output: (f) => this.onDecoded(f),
      error: (e) => this.onError(String(e)),
    });
    this.decoder.configure({ codec, optimizeForLatency: true, codedWidth: frame.width, codedHeight: frame.height });
    this.codec = codec;
    this.configured = { width: frame.width, height: frame.height };
    return true;
  }

  private onError(message: string): void {
    this.stats.decodeErrors += 1;
    console.warn('decoder error', message);
    this.decoder = null;
    this.codec = null;
    this.needKeyframe();
  }

  /** A picture decoded elsewhere (OpenH264 in the desktop app's core): counted as our own are. */
  decodedElsewhere(captureUs: number, coded: Size, screen: Size): void {
    this.stats.framesReceived += 1;
    this.count(captureUs, coded, screen);
  }

  private onDecoded(frame: VideoFrame): void {
    const coded = { width: frame.displayWidth, height: frame.displayHeight };
    const screen = this.screens.at(frame.timestamp) ?? coded;
    const captureUs = frame.timestamp;
    this.count(captureUs, coded, screen);
    this.events.onPicture(frame, screen);
    const sent = this.inDecoder.get(captureUs);
    if (sent) {
      this.inDecoder.delete(captureUs);
      this.events.onShown?.(sent.frameId, Math.round(performance.now() - sent.arrived));
    }
  }

  private count(captureUs: number, coded: Size, screen: Size): void {
    const now = performance.now();
    const latency = (nowUs() - captureUs) / 1000 - this.clockOffsetMs;
    const s = this.stats;
    s.framesDecoded += 1;
    s.width = screen.width;
    s.height = screen.height;
    s.codedWidth = coded.width;
    s.codedHeight = coded.height;
    s.lastLatencyMs = latency;
    this.latencies.push(latency);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
    const sorted = [...this.latencies].sort((a, b) => a - b);
    s.latencyP50Ms = percentile(sorted, 50);
    s.latencyP95Ms = percentile(sorted, 95);
    this.decodedTimes.push(now);
    this.tick(now);
  }
}
