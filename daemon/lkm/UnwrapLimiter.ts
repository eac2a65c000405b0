/** How many unwraps the key manager allows: per minute (a sliding window) and per UTC day. */
export interface UnwrapLimits {
  readonly perMinute: number;
  readonly perDay: number;
}

/**
 * Rate and volume limits on unwrapping, so a stolen unwrap credential is
 * not an unlimited data key oracle: past either limit requests are refused
 * (429, Retry-After) until the window moves on.
 */
export class UnwrapLimiter {
  /** Times (ms) of the unwraps in the last minute, oldest first; never more than perMinute. */
  readonly #recent: number[] = [];
  #day = '';
  #today = 0;

  constructor(private readonly limits: UnwrapLimits) {}

  /** Count one unwrap now, or say in how many seconds one may be tried again (null: allowed). */
  take(now: number = Date.now()): number | null {
    const day = new Date(now).toISOString().slice(0, 10);
    if (day !== this.#day) {
      this.#day = day;
      this.#today = 0;
    }
    if (this.#today >= this.limits.perDay) return Math.ceil((Date.parse(`${day}T00:00:00Z`) + 86_400_000 - now) / 1000);
    while (this.#recent.length && this.#recent[0]! <= now - 60_000) this.#recent.shift();
    if (this.#recent.length >= this.limits.perMinute) return Math.max(1, Math.ceil((this.#recent[0]! + 60_000 - now) / 1000));
    this.#recent.push(now);
    this.#today++;
    return null;
  }
}
