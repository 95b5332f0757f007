// Encoded H.264 frames into pictures with WebCodecs: the one decoding path of
// the browser viewer (frames reassembled from the `video` data channel) and of
// the desktop app's viewer (frames reassembled in Rust, sent to the webview
// over a Tauri channel). It owns the decoder's configuration (from the
// stream's own SPS), the stale-frame filter after an outage, recovery after a
// decoder error (wait for a keyframe, ask for one) and the picture
// statistics: received, decoded, fps, latency.

import { codecFromAnnexB, type Frame } from './assembler';
import { FreshnessFilter } from './freshness';

const LATENCY_WINDOW = 300;

export interface DecoderEvents {
  /** A decoded picture; the receiver draws it and closes it. */
  onPicture(frame: VideoFrame): void;
  /** Only a keyframe can be decoded next: ask the host for one. */
  onNeedKeyframe(): void;
}

export interface PictureStats {
  framesReceived: number;
  framesDecoded: number;
  /** Stale frames skipped after an outage (see freshness.ts). */
  framesSkipped: number;
  decodeErrors: number;
  fps: number;
  width: number;
  height: number;
  lastLatencyMs: number | null;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
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
    lastLatencyMs: null, latencyP50Ms: null, latencyP95Ms: null,
  };
  /** Host clock minus ours, in ms (0 on one machine). */
  clockOffsetMs = 0;
  private decoder: VideoDecoder | null = null;
  private codec: string | null = null;
  /** After an error or a skipped frame, delta frames cannot be decoded. */
  private awaitingKeyframe = true;
  private lastDecodableAt = 0;
  private decodedTimes: number[] = [];
  private latencies: number[] = [];
  private readonly freshness = new FreshnessFilter();

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
    if (this.ready && codec === this.codec) return true;
    this.close();
    this.decoder = new VideoDecoder({
      output: (f) => this.onDecoded(f),
      error: (e) => this.onError(String(e)),
    });
    this.decoder.configure({ codec, optimizeForLatency: true, codedWidth: frame.width, codedHeight: frame.height });
    this.codec = codec;
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
  decodedElsewhere(captureUs: number, width: number, height: number): void {
    this.stats.framesReceived += 1;
    this.count(captureUs, width, height);
  }

  private onDecoded(frame: VideoFrame): void {
    this.count(frame.timestamp, frame.displayWidth, frame.displayHeight);
    this.events.onPicture(frame);
  }

  private count(captureUs: number, width: number, height: number): void {
    const now = performance.now();
    const latency = (nowUs() - captureUs) / 1000 - this.clockOffsetMs;
    const s = this.stats;
    s.framesDecoded += 1;
    s.width = width;
    s.height = height;
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
