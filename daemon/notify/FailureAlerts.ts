import type { Mail } from './Mailer.js';

/**
 * When to mail about something that fails over and over (a storage target,
 * sealing): one mail when it starts failing, with the error and the
 * recordings affected; while it keeps failing, at most one digest per
 * interval, and only if it failed again since the last mail; one mail when
 * it works again. Never one mail per attempt. Pure: the caller feeds it
 * outcomes and the clock and sends what it returns.
 */
export class FailureAlerts {
  readonly #state = new Map<
    string,
    { since: number; lastMailAt: number; attempts: number; lastError: string; affected: Set<string>; newSinceMail: number }
  >();

  constructor(
    /** What the subject calls the failing thing: `storage target archive`, `sealing`. */
    private readonly describe: (key: string) => string,
    private readonly kind: string,
    private readonly digestMs: number,
  ) {}

  failed(key: string, recordingId: string, error: string, now: number): Mail | null {
    const s = this.#state.get(key);
    if (!s) {
      this.#state.set(key, { since: now, lastMailAt: now, attempts: 1, lastError: error, affected: new Set([recordingId]), newSinceMail: 0 });
      return {
        kind: `${this.kind}-failing`,
        subject: `[callvault] ${this.describe(key)} is failing`,
        text: `${this.describe(key)} started failing at ${new Date(now).toISOString()}.\n\nError: ${error}\nRecording affected: ${recordingId}\n\nIt is retried with backoff; nothing is lost meanwhile. At most one reminder follows every ${Math.round(this.digestMs / 60_000)} minutes while it keeps failing, and one mail when it works again.\n`,
      };
    }
    s.attempts++;
    s.newSinceMail++;
    s.lastError = error;
    s.affected.add(recordingId);
    return null;
  }

  succeeded(key: string, now: number): Mail | null {
    const s = this.#state.get(key);
    if (!s) return null;
    this.#state.delete(key);
    return {
      kind: `${this.kind}-recovered`,
      subject: `[callvault] ${this.describe(key)} works again`,
      text: `${this.describe(key)} works again at ${new Date(now).toISOString()}, after failing for ${minutes(now - s.since)} (${s.attempts} failed attempts, ${s.affected.size} recordings delayed; they are being caught up).\n`,
    };
  }

  /** Digests due now. */
  tick(now: number): Mail[] {
    const out: Mail[] = [];
    for (const [key, s] of this.#state) {
      if (now - s.lastMailAt < this.digestMs || s.newSinceMail === 0) continue;
      s.lastMailAt = now;
      const recent = s.newSinceMail;
      s.newSinceMail = 0;
      out.push({
        kind: `${this.kind}-digest`,
        subject: `[callvault] ${this.describe(key)} is still failing`,
        text: `${this.describe(key)} has been failing since ${new Date(s.since).toISOString()} (${minutes(now - s.since)}): ${recent} more failed attempts since the last mail, ${s.attempts} in all.\n\nLast error: ${s.lastError}\nRecordings waiting: ${[...s.affected].slice(0, 50).join(', ')}${s.affected.size > 50 ? `, … (${s.affected.size} in all)` : ''}\n`,
      });
    }
    return out;
  }
}

function minutes(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}
