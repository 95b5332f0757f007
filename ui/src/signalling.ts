// The browser viewer's signalling session, the same rules as the Rust core
// (crates/holdfast-peer/src/signal_client.rs and resume.rs):
// - the socket reconnects by itself: exponential backoff with full jitter
//   (base 1 s, cap 30 s; the attempt counter resets once admitted);
// - it resumes with the session token and the last room `seq` it received,
//   so the server replays what it missed; duplicates are dropped here;
// - offers, answers and candidates are numbered; after a rejoin what the
//   server did not take is resent once, in order; while disconnected they queue;
// - refusals that retrying cannot fix end the session with the reason;
//   so does the grace window (300 s) running out;
// - `online` / `offline` events skip the backoff wait / pause attempts;
// - a socket whose ping goes unanswered for 3 s is suspect (after an outage
//   TCP may sit in retransmission backoff for many seconds): fresh sockets
//   are tried beside it, a new one every 0.5 s (each given 1.5 s, at most
//   four at once), and the first that opens carries the session on (the
//   server supersedes the old one). `online` and the reconnect button try
//   one at once while a socket is open.
// The state logic (`ResumeState`, `ReconnectPolicy`) is pure and unit-tested.

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 30_000;
export const GRACE_MS = 300_000;
/** App-level ping cadence; the server counts as gone after three silent intervals. */
export const PING_INTERVAL_MS = 5000;
/** A ping unanswered this long makes the socket suspect (as the Rust client's STALL_AFTER). */
export const STALL_AFTER_MS = 3000;
/** How long a replacement socket may take to open. */
export const PROBE_TIMEOUT_MS = 1500;
/** While suspect, a fresh replacement starts this often: a SYN sent into a dead
 *  network is retried only after 1 s, then 3 s, so new ones find it back sooner. */
export const PROBE_SPACING_MS = 500;
/** At most this many replacements at once (enough that, each given 1.5 s
 *  and started 0.5 s apart, a new one is never held back). */
export const MAX_PROBES = 4;
const MAX_UNCONFIRMED = 256;

/** Server error codes that retrying with the same credentials cannot fix. */
const FATAL = new Set([
  'invalid-credentials', 'consent-denied', 'auth-failed', 'consent-timeout', 'session-ended', 'superseded',
  'bad-message', 'unknown-type', 'too-large',
]);

export function isFatal(code: string): boolean {
  return FATAL.has(code);
}

/** Exponential backoff with full jitter: a uniform delay in [0, min(cap, base·2^n)]. */
export class ReconnectPolicy {
  attempt = 0;
  constructor(
    private readonly baseMs = BACKOFF_BASE_MS,
    private readonly capMs = BACKOFF_CAP_MS,
    private readonly random: () => number = Math.random,
  ) {}

  ceiling(n: number): number {
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(n, 30));
  }

  nextDelay(): number {
    const d = this.random() * this.ceiling(this.attempt);
    this.attempt += 1;
    return d;
  }

  reset(): void {
    this.attempt = 0;
  }
}

type Msg = { type: string } & Record<string, unknown>;

export type Incoming =
  | { kind: 'deliver'; msg: Msg }
  | { kind: 'duplicate' }
  | { kind: 'nothing' }
  | { kind: 'admitted'; msg: Msg; reconnection: Msg | null; resend: Msg[] }
  | { kind: 'refused'; code: string; message: string; retryAfterMs?: number }
  | { kind: 'ended'; reason: string };

const NUMBERED = new Set(['offer', 'answer', 'candidate']);

/** How the server keeps a room's messages (`registered`/`joined` announce it). */
export interface ReplayPolicy {
  messages: number;
  ttl_ms: number;
}

/** The announced replay policy, if the message carries a well-formed one. */
export function replayPolicy(msg: Msg): ReplayPolicy | null {
  const r = msg.replay as Record<string, unknown> | undefined;
  if (!r || typeof r.messages !== 'number' || typeof r.ttl_ms !== 'number') return null;
  return { messages: r.messages, ttl_ms: r.ttl_ms };
}

/**
 * Whether a client away `awaySecs` still resends what it wrote before the
 * drop and the server did not take: not past the room's message lifetime
 * (the replay the other way would be gone too). Rust: `ReplayPolicy::resends_written`;
 * both run tests/vectors/replay_policy.json.
 */
export function resendsWritten(policy: ReplayPolicy | null, awaySecs: number): boolean {
  return policy === null || awaySecs * 1000 < policy.ttl_ms;
}

/** What the viewer remembers to resume: token, last room seq, unconfirmed messages. */
export class ResumeState {
  token: string | null = null;
  lastSeq = 0;
  admitted = false;
  /** Waiting for the host's check and consent: messages to the host may be written, a refusal ends the join. */
  pending = false;
  /** Admitted before by this page: a rejoin resumes (with `last_seq`) instead of starting fresh. */
  private admittedOnce = false;
  private nextSeq = 1;
  private unconfirmed: { seq: number; msg: Msg; written: boolean }[] = [];
  private reconnection: Msg | null = null;

  /** `gate`: the code's first characters, all the server ever sees of it
   * (`password`: the permanent password's 12-bit gate, unattended access). */
  constructor(
    private readonly id: string,
    private readonly gate: string,
    private readonly via: 'code' | 'password' = 'code',
  ) {}

  hello(): Msg {
    if (this.token) {
      const m: Msg = { type: 'join', id: this.id, token: this.token };
      if (this.admittedOnce) m.last_seq = this.lastSeq;
      return m;
    }
    return this.via === 'password'
      ? { type: 'join', id: this.id, password_gate: this.gate }
      : { type: 'join', id: this.id, gate: this.gate };
  }

  /** Returns the message to write now, or null (queued until admitted, or dropped if unnumbered). */
  send(msg: Msg): Msg | null {
    const writable = this.admitted || this.pending;
    if (!NUMBERED.has(msg.type)) return writable ? msg : null;
    const seq = this.nextSeq++;
    if (this.unconfirmed.length >= MAX_UNCONFIRMED) this.unconfirmed.shift();
    this.unconfirmed.push({ seq, msg, written: writable });
    return writable ? { ...msg, seq } : null;
  }

  disconnected(): void {
    this.admitted = false;
    this.pending = false;
    this.reconnection = null;
  }

  onMessage(msg: Msg): Incoming {
    if (typeof msg.seq === 'number') {
      if (msg.seq <= this.lastSeq) return { kind: 'duplicate' };
      this.lastSeq = msg.seq;
    }
    switch (msg.type) {
      case 'reconnection-detected':
        this.reconnection = msg;
        return { kind: 'nothing' };
      case 'joined': {
        if (typeof msg.token === 'string') this.token = msg.token;
        this.admitted = true;
        // Admitted on the connection it waited on: the same server, whose numbers it follows.
        const wasPending = this.pending;
        this.pending = false;
        this.admittedOnce = true;
        const r = this.reconnection;
        this.reconnection = null;
        const away = r && typeof r.disconnect_duration === 'number' ? r.disconnect_duration : 0;
        if (r && !resendsWritten(replayPolicy(msg), away)) {
          // Away longer than the room keeps messages: what was written
          // before the drop is too old to send late.
          this.unconfirmed = this.unconfirmed.filter((u) => !u.written);
        } else if (r && typeof r.last_received === 'number') {
          const last = r.last_received;
          this.unconfirmed = this.unconfirmed.filter((u) => u.seq > last);
        } else if (r) {
          // Resumed on a restarted server, which cannot know what we sent before.
          this.unconfirmed = this.unconfirmed.filter((u) => !u.written);
        } else {
          // A server without our state (restarted): only what was never written.
          this.unconfirmed = this.unconfirmed.filter((u) => !u.written);
          if (!wasPending) this.lastSeq = 0;
        }
        const resend = this.unconfirmed.map((u) => ({ ...u.msg, seq: u.seq }));
        for (const u of this.unconfirmed) u.written = true;
        return { kind: 'admitted', msg, reconnection: r, resend };
      }
      case 'error':
        return {
          kind: 'refused', code: String(msg.code), message: String(msg.message ?? ''),
          retryAfterMs: typeof msg.retry_after_ms === 'number' ? msg.retry_after_ms : undefined,
        };
      case 'room-closed':
        this.admitted = false;
        return { kind: 'ended', reason: String(msg.reason ?? 'the session ended') };
      case 'awaiting-consent':
        this.pending = true;
        return { kind: 'deliver', msg };
      case 'pong':
        return { kind: 'nothing' };
      default:
        return { kind: 'deliver', msg };
    }
  }
}

export interface SignallingEvents {
  /** Admitted (first time or again); `reconnection` is the server's `reconnection-detected`, if any. */
  onAdmitted(msg: Msg, reconnection: Msg | null): void;
  onMessage(msg: Msg): void;
  /** Lost the socket; trying again in `retryInMs`; `graceLeftMs` until giving up. */
  onLost(attempt: number, retryInMs: number, graceLeftMs: number): void;
  /** The session is over (refused for good, room closed, or the grace window ran out). */
  onEnded(reason: string, code?: string, retryAfterMs?: number): void;
}

/** A signalling session over WebSocket that outlives its sockets. */
export class SignallingSession {
  private ws: WebSocket | null = null;
  private readonly policy = new ReconnectPolicy();
  private droppedAt: number | null = null;
  private retryTimer: number | undefined;
  private graceTimer: number | undefined;
  private pingTimer: number | undefined;
  private lastHeard = 0;
  /** When the unanswered ping was sent, if one is. */
  private pingSentAt: number | null = null;
  /** Replacement sockets being tried beside a suspect one. */
  private readonly probes = new Set<WebSocket>();
  /** Starts more replacements while the socket stays suspect. */
  private probeTimer: number | undefined;
  private ended = false;
  private readonly onOnline = () => this.reconnectNow();

  constructor(
    private readonly url: string,
    private readonly state: ResumeState,
    private readonly events: SignallingEvents,
    private graceMs = GRACE_MS,
  ) {}

  start(): void {
    window.addEventListener('online', this.onOnline);
    this.open();
  }

  send(msg: Msg): void {
    const now = this.state.send(msg);
    if (now && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(now));
  }

  /** Skip the backoff wait (the user's button, the network came back); with
   *  a socket open, try a fresh one beside it, as the old may be stalled. */
  reconnectNow(): void {
    if (this.ended) return;
    if (this.ws) {
      this.startProbe();
      return;
    }
    window.clearTimeout(this.retryTimer);
    this.open();
  }

  close(): void {
    if (this.ended) return;
    if (this.state.admitted || this.state.pending) this.ws?.send(JSON.stringify({ type: 'leave' }));
    this.finish();
    this.ws?.close();
  }

  private finish(): void {
    this.ended = true;
    window.clearTimeout(this.graceTimer);
    this.stopProbing();
    for (const p of this.probes) p.close();
    this.probes.clear();
    window.removeEventListener('online', this.onOnline);
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.pingTimer);
  }

  private open(): void {
    this.adopt(new WebSocket(this.url));
  }

  /** Makes `ws` the session's socket: hello (join or resume) once it is open. */
  private adopt(ws: WebSocket): void {
    this.ws = ws;
    const opened = () => {
      this.lastHeard = performance.now();
      this.pingSentAt = null;
      ws.send(JSON.stringify(this.state.hello()));
      window.clearInterval(this.pingTimer);
      this.pingTimer = window.setInterval(() => this.ping(ws), PING_INTERVAL_MS);
    };
    if (ws.readyState === WebSocket.OPEN) opened();
    else ws.onopen = opened;
    ws.onmessage = (ev) => {
      this.lastHeard = performance.now();
      this.pingSentAt = null;
      let msg: Msg;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.onMessage(ws, msg);
    };
    ws.onclose = () => this.lost(ws, 'the connection closed');
  }

  private ping(ws: WebSocket): void {
    if (performance.now() - this.lastHeard > 3 * PING_INTERVAL_MS) {
      ws.close();
      this.lost(ws, 'the server stopped answering');
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: 'ping' }));
    const sentAt = performance.now();
    this.pingSentAt ??= sentAt;
    window.setTimeout(() => {
      if (this.ws === ws && this.pingSentAt !== null && this.pingSentAt <= sentAt) this.startProbe();
    }, STALL_AFTER_MS);
  }

  /** Whether the socket's oldest unanswered ping is STALL_AFTER_MS old. */
  private suspect(): boolean {
    return this.ws !== null && this.pingSentAt !== null && performance.now() - this.pingSentAt >= STALL_AFTER_MS;
  }

  /** Tries a fresh socket beside the current one now, and while that one
   *  stays suspect another every PROBE_SPACING_MS; the first that opens
   *  carries the session on and the old socket is dropped without ceremony. */
  private startProbe(): void {
    if (this.ended) return;
    if (this.probes.size === 0) this.openProbe();
    if (this.probeTimer !== undefined) return;
    this.probeTimer = window.setInterval(() => {
      if (this.ended || !this.suspect()) {
        this.stopProbing(); // those under way finish on their own
        return;
      }
      if (this.probes.size < MAX_PROBES) this.openProbe();
    }, PROBE_SPACING_MS);
  }

  private stopProbing(): void {
    window.clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private openProbe(): void {
    const p = new WebSocket(this.url);
    this.probes.add(p);
    const timer = window.setTimeout(() => {
      if (!this.probes.delete(p)) return;
      p.onclose = null;
      p.close();
    }, PROBE_TIMEOUT_MS);
    p.onopen = () => {
      window.clearTimeout(timer);
      if (!this.probes.has(p) || this.ended) {
        p.close();
        return;
      }
      this.probes.delete(p);
      this.stopProbing();
      for (const other of this.probes) {
        other.onclose = null;
        other.close();
      }
      this.probes.clear();
      const old = this.ws;
      if (old) {
        old.onopen = null;
        old.onmessage = null;
        old.onclose = null;
        old.close();
        this.state.disconnected();
      }
      window.clearTimeout(this.retryTimer);
      this.adopt(p);
    };
    p.onclose = () => {
      window.clearTimeout(timer);
      this.probes.delete(p);
    };
  }

  private onMessage(ws: WebSocket, msg: Msg): void {
    const r = this.state.onMessage(msg);
    switch (r.kind) {
      case 'deliver':
        this.events.onMessage(r.msg);
        break;
      case 'admitted':
        this.policy.reset();
        this.droppedAt = null;
        window.clearTimeout(this.graceTimer);
        // One grace window: the server's, as it announces it.
        if (typeof r.msg.grace_ms === 'number' && r.msg.grace_ms > 0) this.graceMs = r.msg.grace_ms;
        for (const m of r.resend) ws.send(JSON.stringify(m));
        this.events.onAdmitted(r.msg, r.reconnection);
        break;
      case 'refused':
        if (!this.state.admitted || r.code === 'superseded') {
          // A lockout ends a join with a code (retype it later); a resume waits it out.
          if (isFatal(r.code) || (r.code === 'locked-out' && !this.state.token)) {
            this.finish();
            ws.close();
            this.events.onEnded(r.message, r.code, r.retryAfterMs);
          } else {
            // Not yet (say, the host is still reconnecting): try again after the hint.
            ws.close();
            this.lost(ws, r.message, r.retryAfterMs ?? 0);
          }
        } else {
          this.events.onMessage(msg);
        }
        break;
      case 'ended':
        this.finish();
        ws.close();
        this.events.onEnded(r.reason);
        break;
      default:
        break;
    }
  }

  private lost(ws: WebSocket, _why: string, minWaitMs = 0): void {
    if (this.ws !== ws || this.ended) return;
    this.ws = null;
    window.clearInterval(this.pingTimer);
    this.state.disconnected();
    const now = performance.now();
    this.droppedAt ??= now;
    const graceLeft = this.graceMs - (now - this.droppedAt);
    if (graceLeft <= 0) {
      this.expire();
      return;
    }
    // The window ends on time even while an attempt hangs (a server that
    // does not answer at all can hold a connecting socket for long).
    window.clearTimeout(this.graceTimer);
    this.graceTimer = window.setTimeout(() => this.expire(), graceLeft);
    const attempt = this.policy.attempt;
    const delay = Math.min(graceLeft, Math.max(minWaitMs, this.policy.nextDelay()));
    this.events.onLost(attempt, delay, graceLeft);
    this.schedule(delay);
  }

  /** The grace window ran out: the session is over. */
  private expire(): void {
    if (this.ended || this.droppedAt === null) return;
    const pending = this.ws;
    this.ws = null;
    pending?.close();
    this.finish();
    this.events.onEnded(`Could not reconnect within ${Math.round(this.graceMs / 1000)} s; the session has ended.`, 'expired');
  }

  private schedule(delayMs: number): void {
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => {
      if (this.ended || this.ws) return;
      const graceLeft = this.graceMs - (performance.now() - (this.droppedAt ?? performance.now()));
      if (graceLeft <= 0) {
        this.expire();
      } else if (navigator.onLine === false) {
        // Offline: the `online` event reconnects at once; look again meanwhile.
        this.schedule(Math.min(graceLeft, 1000));
      } else {
        this.open();
      }
    }, delayMs);
  }
}
