// What keeps a consent dialog from being answered by accident: for its first
// second it takes no key and no click (someone typing when it pops up must
// not press "Allow control" with Enter or Space), and its default button is
// Deny. Pure, with time passed in.

/** How long a new consent request ignores keys and clicks. */
export const CONSENT_ARM_MS = 1000;

export class ConsentGuard {
  private shownAt: number | null = null;
  private peer: string | null = null;

  /** A request is on screen; a new one (another peer) starts the wait again. */
  show(peer: string, now: number): boolean {
    if (this.peer === peer) return false;
    this.peer = peer;
    this.shownAt = now;
    return true;
  }

  hide(): void {
    this.peer = null;
    this.shownAt = null;
  }

  /** Whether an answer (a key or a click) counts now. */
  armed(now: number): boolean {
    return this.shownAt !== null && now - this.shownAt >= CONSENT_ARM_MS;
  }

  /** Milliseconds until answers count. */
  armsIn(now: number): number {
    return this.shownAt === null ? 0 : Math.max(0, CONSENT_ARM_MS - (now - this.shownAt));
  }
}
