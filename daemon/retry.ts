/**
 * errno codes that say "not now" rather than "never": out of descriptors,
 * a full disk, an I/O hiccup, a busy resource. Work that fails with one of
 * these is tried again; anything else is final.
 */
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'ENOSPC', 'EDQUOT', 'EIO', 'EAGAIN', 'EBUSY', 'ENOMEM', 'EINTR', 'ETIMEDOUT', 'POOL_RESTARTING']);
// Worker threads hand errors back as plain objects or messages that still name the errno.
const ERRNO_IN_MESSAGE = new RegExp(`\\b(${[...TRANSIENT].filter((c) => /^E[A-Z]+$/.test(c)).join('|')})\\b`);

/** The errno-style code of `err` or of anything in its cause chain that is transient, else undefined. */
export function transientCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT.has(code)) return code;
    const m = ERRNO_IN_MESSAGE.exec(String((e as Error).message ?? ''));
    if (m) return m[1];
  }
  return undefined;
}

/** Exponential backoff with equal jitter: attempt 0 waits between half of `baseMs` and `baseMs`, then doubling, capped at `maxMs`. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface RetryOptions {
  /** Runs in all, the first included. */
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly onRetry?: ((err: unknown, attempt: number, waitMs: number) => void) | undefined;
}

/** Run `fn`; on a transient error wait and run it again, at most `attempts` times in all. */
export async function retryTransient<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt + 1 >= opts.attempts || !transientCode(err)) throw err;
      const wait = backoffMs(attempt, opts.baseMs, opts.maxMs);
      opts.onRetry?.(err, attempt + 1, wait);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
