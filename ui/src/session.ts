// One viewer session: signalling WebSocket (join with the code's gate),
// RTCPeerConnection answering the host's offer, the end-to-end check of the
// code over the `commands` channel (CPace bound to both DTLS fingerprints:
// auth.ts), the host's consent, then the `video` channel into the assembler
// and WebCodecs decoder, and the `commands` channel (keepalive answers,
// keyframe requests, input, the host's `mode`). Nothing a connection brings
// counts, and no input leaves on it, before the host proved the code over it.

import { FrameAssembler } from './assembler';
import { FrameDecoder, type PictureStats, type Size } from './decoder';
import { QualityMonitor, classify, pathSample, type Quality, type Route } from './quality';
import { deriveKey, lookup, passwordGate } from './password';
import { ResumeState, SignallingSession } from './signalling';
import { CHANNEL_LABEL as TRANSFER_LABEL } from './transfer';
import { SEND_BUFFER_LOW, Transfers, type TransferEvents } from './transfers';
import {
  AUTH_FAILURES, AuthError, type AuthFailure, type PendingViewer, type SecretKind, GATE_LEN, RESUME_BYTES, SID_BYTES, TAG_BYTES,
  canonicalCode, describeFailure, fingerprintFromSdp, fromBase64, toBase64, viewerOnHello,
} from './auth';

const PING = new Uint8Array([0x00, 0x50, 0x49, 0x4e, 0x47]);
const PONG = new Uint8Array([0x00, 0x50, 0x4f, 0x4e, 0x47]);
/** Ask for a keyframe when nothing decodable arrived for this long. */
const STALL_KEYFRAME_MS = 3000;
/** Minimum gap between two keyframe requests. */
const KEYFRAME_REQUEST_GAP_MS = 500;
/** The host pings every 5 s; three silent intervals mean it is gone (seeds). */
const HOST_SILENT_MS = 15_000;
/** How often the server hears of an unchanged quality (a change is sent at once). */
const QUALITY_REPORT_MS = 10_000;

export type SessionState =
  | 'idle' | 'signalling' | 'waiting' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/** What the server's error codes mean to a person. */
export function errorText(code: string, message: string, retryAfterMs?: number): string {
  switch (code) {
    case 'invalid-credentials':
      return `Wrong ID or code. ${/\((.*)\)/.exec(message)?.[1] ?? ''}`.trim();
    case 'locked-out': {
      const s = Math.ceil((retryAfterMs ?? 60_000) / 1000);
      return `Too many wrong codes. Try again in ${s} s.`;
    }
    case 'consent-denied':
      return 'The host declined your request to connect.';
    case 'consent-timeout':
      return 'The host did not answer your request in time.';
    case 'session-ended':
      return 'This session has ended. Ask the host for a new code.';
    case 'auth-failed':
      return message === 'wrong code' ? 'Wrong code.' : `The end-to-end check failed: ${message}.`;
    case 'expired':
      return message;
    default:
      return `${code}: ${message}`;
  }
}

/** The session's own figures; the picture's come from the decoder (`Stats`). */
interface LinkStats {
  state: SessionState;
  framesLost: number;
  clockOffsetMs: number;
  keyframeRequests: number;
  badChunks: number;
  /** The link's class, and what it was judged on (10 s window, ICE checks). */
  quality: Quality | null;
  rttMs: number | null;
  lossPercent: number | null;
  jitterMs: number | null;
  /** The path in use: straight to the host or through a TURN relay. */
  route: Route | null;
  /**
   * Capture to this canvas, as the host measured it from our `frame-shown`
   * acknowledgements on its own clock (`link-report`), and the host's
   * estimate of the path (null when it does not control its rate).
   */
  shownP50Ms: number | null;
  shownP95Ms: number | null;
  hostEstimateKbps: number | null;
}

/** The largest times a `link-report` may carry, as the host's parser allows. */
const MAX_REPORT_MS = 600_000;

/** The figures of a `link-report` from the host, or null when any is out of
 *  range (a hostile or broken peer changes nothing on the screen). */
export function parseLinkReport(
  msg: any,
): { shownP50Ms: number; shownP95Ms: number; hostEstimateKbps: number | null } | null {
  const ms = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_REPORT_MS;
  if (!ms(msg?.shown_p50_ms) || !ms(msg.shown_p95_ms) || msg.shown_p50_ms > msg.shown_p95_ms) return null;
  const kbps = msg.estimate_kbps;
  if (kbps !== undefined && kbps !== null && !(Number.isSafeInteger(kbps) && kbps >= 0)) return null;
  return { shownP50Ms: msg.shown_p50_ms, shownP95Ms: msg.shown_p95_ms, hostEstimateKbps: kbps ?? null };
}

/** Whether a quality sample goes to the server now. Never before the host
 *  admitted us: the server refuses reports from pending members, and a
 *  refusal before admission ends the join (the peer connection carries the
 *  code check, so it is up, and sampled, before admission). */
export function qualityReportDue(admitted: boolean, changed: boolean, sinceLastMs: number): boolean {
  return admitted && (changed || sinceLastMs >= QUALITY_REPORT_MS);
}

export type Stats = LinkStats & PictureStats;

export interface SessionEvents {
  onState(state: SessionState, detail?: string): void;
  onError(message: string): void;
  /** A picture, to be drawn at the screen's size (it may have been sent smaller). */
  onFrame(frame: VideoFrame, screen: Size): void;
  /** Whether the host accepts our input now. */
  onControl?(allowed: boolean): void;
  /** A passing condition to show (signalling lost / restored, host away); null clears it. */
  onNotice?(text: string | null): void;
  /** Files, clipboard and chat with the host. */
  transfers?: TransferEvents;
}

export class ViewerSession {
  private signalling: SignallingSession | null = null;
  private pc: RTCPeerConnection | null = null;
  /** Which of the host's peer connections `pc` answers (the host bumps it when it rebuilds). */
  private generation = 0;
  private iceServers: RTCIceServer[] = [];
  private commands: RTCDataChannel | null = null;
  /** This connection's `transfer` channel. */
  private transferChannel: RTCDataChannel | null = null;
  /** Files, clipboard and chat: one for the session, across connections. */
  readonly transfers: Transfers;
  /** The host's switches, from its `mode`. */
  private hostFiles = false;
  private hostClipboard = false;
  private pendingCandidates: RTCIceCandidateInit[] = [];
  private remoteSet = false;
  private assembler = new FrameAssembler();
  private readonly pictures: FrameDecoder;
  private lastKeyframeRequest = 0;
  private stallTimer: number | undefined;
  private state: SessionState = 'idle';
  private inputSeq = 0;
  private lastHostActivity = 0;
  private hostSilentReported = false;
  /** The host granted control and has not switched it off. */
  controlAllowed = false;
  /** Our own switch: true stops sending input. */
  viewOnly = false;
  /** Rejoin without the code (kept for this tab only). */
  token: string | null = null;
  /** The code, canonical: proved to the host, never sent to the server. */
  private code = '';
  private roomId = '';
  /** Unattended access: the permanent password's key (never the password) and the one-time code. */
  private passwordKey: Uint8Array | null = null;
  private totp: string | null = null;
  /** Where the check of the current connection stands. */
  private check: 'waiting' | PendingViewer | 'passed' = 'waiting';
  /** What a passed check left, for the host's check of a rebuilt connection. */
  private resume: Uint8Array | null = null;
  private admittedOnce = false;
  /** Why the check failed, once it did (the session is over). */
  authFailure: AuthFailure | null = null;
  private readonly link: LinkStats = {
    state: 'idle', framesLost: 0, clockOffsetMs: 0, keyframeRequests: 0, badChunks: 0,
    quality: null, rttMs: null, lossPercent: null, jitterMs: null, route: null,
    shownP50Ms: null, shownP95Ms: null, hostEstimateKbps: null,
  };
  /** Room messages delivered, in arrival order (the last 500). */
  readonly signalLog: { seq: number | null; type: string }[] = [];
  private readonly quality = new QualityMonitor();
  private qualityReportedAt = -Infinity;
  private lastAnswered = 0;

  constructor(private readonly wsUrl: string, private readonly events: SessionEvents) {
    this.transfers = new Transfers(events.transfers ?? { onChange: () => {} });
    this.pictures = new FrameDecoder({
      onPicture: (frame, screen) => this.events.onFrame(frame, screen),
      onNeedKeyframe: () => {
        this.assembler.requireKeyframe();
        this.requestKeyframe();
      },
      onShown: (frame, afterMs) => {
        this.sendCommand({ type: 'frame-shown', frame, after_ms: Math.min(Math.max(0, afterMs), 60_000) });
      },
    });
  }

  /** The link's figures and the picture's, as of now. */
  get stats(): Stats {
    return { ...this.link, ...this.pictures.stats };
  }

  connect(id: string, code: string): void {
    const canonical = canonicalCode(code);
    if (!canonical) {
      this.events.onError('Wrong ID or code.');
      this.setState('failed', 'Wrong ID or code.');
      return;
    }
    this.code = canonical;
    this.roomId = id.replace(/[\s-]/g, '');
    this.setState('signalling');
    this.join(new ResumeState(this.roomId, canonical.slice(0, GATE_LEN)));
  }

  /**
   * Joins a machine with unattended access: asks the server for its
   * password parameters, derives the key here (Argon2id) and joins with its
   * gate; the host checks the key end to end and asks for `totp` if its
   * second factor is on. The password goes no further than this call.
   */
  async connectWithPassword(id: string, password: string, totp: string | null): Promise<void> {
    this.roomId = id.replace(/[\s-]/g, '');
    this.totp = totp && /^\d{6}$/.test(totp.trim()) ? totp.trim() : null;
    this.setState('signalling');
    try {
      const params = await lookup(this.wsUrl, this.roomId);
      if (!params) throw new Error('This ID takes no password (unattended access is off, or there is no such ID).');
      this.passwordKey = await deriveKey(password, params);
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      this.events.onError(text);
      this.setState('failed', text);
      return;
    }
    this.join(new ResumeState(this.roomId, passwordGate(this.passwordKey), 'password'));
  }

  private join(resume: ResumeState): void {
    const signalling = new SignallingSession(this.wsUrl, resume, {
      onAdmitted: (msg, reconnection) => {
        if (reconnection) this.events.onNotice?.(null);
        if (!this.admittedOnce) void this.onSignal(msg);
      },
      onMessage: (msg) => {
        // What arrived, once each after de-duplication (for tests and support).
        if (this.signalLog.length >= 500) this.signalLog.shift();
        this.signalLog.push({ seq: typeof msg.seq === 'number' ? msg.seq : null, type: String(msg.type) });
        void this.onSignal(msg);
      },
      onLost: (attempt, retryInMs) => {
        const s = Math.ceil(retryInMs / 1000);
        this.events.onNotice?.(`Connection to the server lost; reconnecting in ${s} s (attempt ${attempt + 1}).`);
      },
      onEnded: (reason, code, retryAfterMs) => {
        // Our own finding (someone in the middle, say) outranks the server's word.
        if (this.authFailure) return;
        const text = code ? errorText(code, reason, retryAfterMs) : reason;
        this.events.onError(text);
        const early = this.state === 'signalling' || this.state === 'waiting';
        this.setState(early ? 'failed' : 'closed', text);
      },
    });
    this.signalling = signalling;
    signalling.start();
    this.stallTimer = window.setInterval(() => this.checkStall(), 1000);
  }

  /** Resume now instead of waiting out the backoff (the reconnect button). */
  reconnect(): void {
    this.signalling?.reconnectNow();
  }

  close(): void {
    window.clearInterval(this.stallTimer);
    this.signalling?.close();
    this.pc?.close();
    this.pictures.close();
    this.setState('closed');
  }

  private send(msg: { type: string } & Record<string, unknown>): void {
    this.signalling?.send(msg);
  }

  private setState(state: SessionState, detail?: string): void {
    this.state = state;
    const down = state === 'disconnected' || state === 'failed';
    if (this.transfers && this.transfers.sessionDown !== down) {
      this.transfers.sessionDown = down;
      this.events.transfers?.onChange();
    }
    this.link.state = state;
    this.events.onState(state, detail);
  }

  private async onSignal(msg: any): Promise<void> {
    switch (msg.type) {
      case 'awaiting-consent':
        // The host connects next and checks the code before it asks its user.
        this.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
        this.pc?.close();
        this.pc = null;
        this.generation = 0;
        this.setState('waiting', 'Checking the code with the host…');
        break;
      case 'joined':
        this.admittedOnce = true;
        this.token = typeof msg.token === 'string' ? msg.token : null;
        try {
          if (this.token) sessionStorage.setItem('holdfast.token', this.token);
        } catch { /* storage may be unavailable */ }
        // Relays come with admission: for this connection's next gathering
        // (an ICE restart) and for later connections.
        if (Array.isArray(msg.ice_servers)) this.setIceServers(msg.ice_servers);
        this.setControl(Boolean(msg.control));
        this.setState(this.pc?.connectionState === 'connected' ? 'connected' : 'connecting');
        break;
      case 'offer': {
        const g = Number(msg.generation ?? 0);
        if (g < this.generation && this.pc) break; // about a connection the host replaced
        if (g > this.generation || !this.pc) {
          // A new peer connection (the host built it, or rebuilt it): checked again.
          this.pc?.close();
          this.generation = g;
          this.createPeer();
        }
        await this.onOffer(msg.sdp, Number(msg.round ?? 0));
        break;
      }
      case 'candidate':
        if (Number(msg.generation ?? 0) !== this.generation) break;
        if (this.remoteSet && this.pc) await this.pc.addIceCandidate(msg.candidate).catch(() => {});
        else if (this.pendingCandidates.length < 64) this.pendingCandidates.push(msg.candidate);
        break;
      case 'ice-servers':
        // Renewed TURN credentials, before the old ones expire.
        if (this.admittedOnce && Array.isArray(msg.ice_servers)) this.setIceServers(msg.ice_servers);
        break;
      case 'peer-state':
        this.events.onNotice?.(msg.connected ? null : 'The host lost its connection to the server; waiting for it…');
        break;
      case 'peer-left':
        this.setState('closed', 'The host ended the session.');
        break;
      case 'error': {
        const text = errorText(String(msg.code), String(msg.message ?? ''), msg.retry_after_ms);
        this.events.onError(text);
        if (this.state === 'signalling' || this.state === 'waiting') this.setState('failed', text);
        break;
      }
    }
  }

  private setIceServers(servers: RTCIceServer[]): void {
    this.iceServers = servers;
    try {
      this.pc?.setConfiguration({ ...this.pc.getConfiguration(), iceServers: servers });
    } catch {
      /* a malformed list: keep the one in use */
    }
  }

  private createPeer(): void {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    this.remoteSet = false;
    this.pendingCandidates = [];
    this.commands = null;
    this.transferChannel = null;
    this.check = 'waiting';
    const generation = this.generation;
    let down = false;
    pc.onicecandidate = (e) => {
      if (e.candidate) this.send({ type: 'candidate', candidate: e.candidate.toJSON(), generation });
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      const s = pc.connectionState;
      // A path that comes back is measured afresh, and what was queued on it
      // before the outage is stale.
      if (s === 'connected' && this.state !== 'connected') this.quality.reset();
      if (s === 'disconnected' || s === 'failed') down = true;
      if (s === 'connected' && down) {
        down = false;
        this.pictures.resumed(Date.now());
        // Ask for a fresh picture now. The message also shows the host's
        // SCTP that the path works, so it resends what the outage swallowed
        // at once rather than when its backed-off timer fires.
        this.requestKeyframe();
      }
      if (s === 'connected' || s === 'disconnected' || s === 'failed' || s === 'closed') this.setState(s);
      else if (s === 'connecting' || s === 'new') this.setState('connecting');
    };
    pc.ondatachannel = (e) => {
      const dc = e.channel;
      dc.binaryType = 'arraybuffer';
      if (dc.label === 'video') {
        dc.onmessage = (m) => {
          // Nothing a connection brings counts before the host proved itself on it.
          if (this.pc === pc && this.check === 'passed') this.onVideo(new Uint8Array(m.data as ArrayBuffer));
        };
      } else if (dc.label === 'commands') {
        this.commands = dc;
        this.lastHostActivity = performance.now();
        dc.onmessage = (m) => {
          if (this.pc === pc) this.onCommand(m.data);
        };
      } else if (dc.label === TRANSFER_LABEL) {
        // Read only once this connection's check passed (`Transfers` keeps a
        // few early messages until then).
        const t = this.transfers;
        this.transferChannel = dc;
        t.attach(dc);
        dc.bufferedAmountLowThreshold = SEND_BUFFER_LOW;
        dc.onbufferedamountlow = () => t.pump();
        dc.onopen = () => t.opened(dc);
        dc.onclose = () => t.closed(dc);
        dc.onmessage = (m) => {
          if (this.pc === pc && m.data instanceof ArrayBuffer) t.onMessage(dc, new Uint8Array(m.data));
          else if (this.pc === pc) t.onMessage(dc, new TextEncoder().encode(String(m.data)));
        };
        if (this.check === 'passed') t.trust(dc);
      }
    };
  }

  /** Answers one offer, naming its round: the host applies only the answer to its latest. */
  private async onOffer(sdp: string, round: number): Promise<void> {
    const pc = this.pc;
    if (!pc) return;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    this.remoteSet = true;
    for (const c of this.pendingCandidates.splice(0)) await pc.addIceCandidate(c).catch(() => {});
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.send({ type: 'answer', sdp: answer.sdp, generation: this.generation, round });
  }

  private onCommand(data: ArrayBuffer | string): void {
    this.lastHostActivity = performance.now();
    this.hostSilentReported = false;
    const b = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data);
    if (b.length === PING.length && b.every((x, i) => x === PING[i])) {
      if (this.commands?.readyState === 'open') this.commands.send(PONG);
      return;
    }
    if (b.length > 4096 || b[0] !== 0x7b) return; // only JSON objects, within the limit
    let msg: any;
    try {
      msg = JSON.parse(new TextDecoder().decode(b));
    } catch {
      return;
    }
    if (typeof msg.type === 'string' && msg.type.startsWith('auth-')) {
      this.onAuth(msg);
      return;
    }
    if (this.check !== 'passed') return;
    if (msg.type === 'mode' && typeof msg.control === 'boolean') {
      this.hostFiles = msg.files === true;
      this.hostClipboard = msg.clipboard === true;
      this.setControl(msg.control);
    }
    if (msg.type === 'link-report') this.onLinkReport(msg);
  }

  /** The host's figures for this viewer; anything out of range is ignored. */
  private onLinkReport(msg: any): void {
    const r = parseLinkReport(msg);
    if (!r) return;
    this.link.shownP50Ms = r.shownP50Ms;
    this.link.shownP95Ms = r.shownP95Ms;
    this.link.hostEstimateKbps = r.hostEstimateKbps;
  }

  /** One step of the end-to-end check; any failure ends the session, in words. */
  private onAuth(msg: any): void {
    try {
      if (msg.type === 'auth-hello' && this.check === 'waiting') {
        const pc = this.pc;
        if (!pc?.localDescription || !pc.remoteDescription) throw new AuthError('malformed', 'no session description yet');
        if (msg.kind !== 'code' && msg.kind !== 'resume' && msg.kind !== 'password') {
          throw new AuthError('malformed', 'unknown secret kind');
        }
        const kind: SecretKind = msg.kind;
        const secret = kind === 'resume' ? this.resume
          : kind === 'password' ? this.passwordKey
          : this.passwordKey ? null : new TextEncoder().encode(this.code);
        if (!secret) throw new AuthError('no-secret', 'no secret from an earlier connection');
        const binding = {
          room: this.roomId,
          host: fingerprintFromSdp(pc.remoteDescription.sdp),
          viewer: fingerprintFromSdp(pc.localDescription.sdp),
        };
        const hello = { kind, sid: fromBase64(String(msg.sid), SID_BYTES), msg: fromBase64(String(msg.msg), 512) };
        const run = viewerOnHello(kind, secret, binding, hello);
        this.check = run;
        this.sendAuth({ type: 'auth-reply', msg: toBase64(run.reply.msg), tag: toBase64(run.reply.tag) });
      } else if (msg.type === 'auth-confirm' && typeof this.check === 'object') {
        const tag = fromBase64(String(msg.tag), TAG_BYTES);
        const resume = this.check.onConfirm(tag);
        if (resume.length !== RESUME_BYTES) throw new AuthError('malformed', 'resume secret');
        this.resume = resume;
        this.check = 'passed';
        if (this.transferChannel) this.transfers.trust(this.transferChannel);
        if (!this.admittedOnce) {
          this.setState('waiting', this.passwordKey ? 'Password checked; logging in…' : 'Code checked; waiting for the host to accept…');
        }
      } else if (msg.type === 'auth-totp-required' && this.check === 'passed' && this.passwordKey) {
        // Asked only once the channel is checked end to end.
        if (!this.totp) throw new AuthError('totp-required', 'the host asks for a one-time code');
        this.sendAuth({ type: 'auth-totp', code: this.totp });
        this.totp = null;
      } else if (msg.type === 'auth-failed') {
        const reason = AUTH_FAILURES.find((k) => k === msg.reason) ?? 'malformed';
        this.failCheck(reason, false);
      } else {
        throw new AuthError('malformed', `unexpected ${String(msg.type)}`);
      }
    } catch (e) {
      this.failCheck(e instanceof AuthError ? e.code : 'malformed', true);
    }
  }

  private failCheck(reason: AuthFailure, tell: boolean): void {
    if (this.authFailure) return;
    this.authFailure = reason;
    if (tell) this.sendAuth({ type: 'auth-failed', reason });
    const text = describeFailure(reason);
    this.events.onError(text);
    this.setState('failed', text);
    // Let the message leave before everything closes (up to 2 s).
    const started = performance.now();
    const closeWhenSent = () => {
      if ((this.commands?.bufferedAmount ?? 0) > 0 && performance.now() - started < 2000) {
        window.setTimeout(closeWhenSent, 20);
        return;
      }
      window.setTimeout(() => {
        window.clearInterval(this.stallTimer);
        this.signalling?.close();
        this.pc?.close();
      }, 100);
    };
    closeWhenSent();
  }

  private sendAuth(msg: object): void {
    if (this.commands?.readyState === 'open') this.commands.send(JSON.stringify({ ...msg, v: 1 }));
  }

  private setControl(allowed: boolean): void {
    this.controlAllowed = allowed;
    // Files and the clipboard follow the host's grant of control (our own
    // view-only switch only stops input) and its two switches.
    this.transfers.setAllowed({ control: allowed, files: this.hostFiles, clipboard: this.hostClipboard });
    this.events.onControl?.(allowed && !this.viewOnly);
  }

  /** Our own view-only switch; the host releases anything we held. */
  setViewOnly(on: boolean): void {
    this.viewOnly = on;
    this.sendCommand({ type: 'view-only', on });
    this.events.onControl?.(this.controlAllowed && !on);
  }

  /** Sends an input event, numbered (the channel is unordered; the host re-orders). */
  sendInput(msg: { type: string } & Record<string, unknown>): void {
    if (!this.controlAllowed || this.viewOnly) return;
    if (this.sendCommand({ ...msg, seq: this.inputSeq })) this.inputSeq = (this.inputSeq + 1) >>> 0;
  }

  private sendCommand(msg: object): boolean {
    // Nothing leaves on a connection the host has not proved itself on.
    if (this.commands?.readyState !== 'open' || this.check !== 'passed') return false;
    this.commands.send(JSON.stringify({ ...msg, v: 1 }));
    return true;
  }

  requestKeyframe(): void {
    const now = performance.now();
    if (now - this.lastKeyframeRequest < KEYFRAME_REQUEST_GAP_MS) return;
    this.lastKeyframeRequest = now;
    this.link.keyframeRequests += 1;
    this.sendCommand({ type: 'keyframe-request' });
  }

  private onVideo(msg: Uint8Array): void {
    let result;
    try {
      result = this.assembler.push(msg);
    } catch {
      this.link.badChunks += 1;
      this.requestKeyframe();
      return;
    }
    this.link.framesLost = this.assembler.framesLost;
    if (result.kind === 'need-keyframe') this.requestKeyframe();
    else if (result.kind === 'frame') this.pictures.push(result.frame);
  }

  /** Once a second while connected: ICE's view of the path into the quality monitor. */
  private async sampleQuality(): Promise<void> {
    const pc = this.pc;
    if (!pc || this.state !== 'connected') return;
    const sample = pathSample(await pc.getStats());
    const now = performance.now();
    if (sample) {
      if (sample.answered < this.lastAnswered) this.lastAnswered = 0;
      if (sample.rttMs !== null && sample.answered > this.lastAnswered) this.quality.onRtt(now, sample.rttMs);
      this.lastAnswered = sample.answered;
      this.quality.onProbes(now, sample.sent, sample.answered);
      this.link.route = sample.route;
    }
    const metrics = this.quality.metrics(now);
    if (!metrics) return;
    const q = classify(metrics);
    const changed = q !== this.link.quality;
    this.link.quality = q;
    this.link.rttMs = metrics.latency_ms;
    this.link.lossPercent = metrics.packet_loss_percent;
    this.link.jitterMs = metrics.jitter_ms;
    if (qualityReportDue(this.admittedOnce, changed, now - this.qualityReportedAt)) {
      this.qualityReportedAt = now;
      this.send({ type: 'quality', metrics });
    }
  }

  private checkStall(): void {
    const now = performance.now();
    this.transfers.tick();
    void this.sampleQuality().catch(() => {});
    if (this.commands?.readyState === 'open' && !this.hostSilentReported && now - this.lastHostActivity > HOST_SILENT_MS) {
      // The resilience layer reconnects; here we only say so.
      this.hostSilentReported = true;
      this.events.onError('The host is not responding.');
    }
    this.pictures.tick(now);
    const received = this.pictures.stats.framesReceived;
    if (this.state === 'connected' && this.pictures.idleMs(now) > STALL_KEYFRAME_MS && received > 0) {
      // An idle host sends nothing: only ask if we are waiting on a keyframe.
      if (!this.pictures.ready) this.requestKeyframe();
    }
  }

  /** Latency samples so far (for benchmarks). */
  latencySamples(): number[] {
    return this.pictures.latencySamples();
  }
}
