import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../../errors.js';
import { backoffMs } from '../../retry.js';
import type { GraphAuth } from './GraphAuth.js';

/** Statuses Graph (and rclone's experience of it) says to try again after. */
const RETRIABLE = new Set([429, 500, 502, 503, 504, 509]);
/** Tries of one request within an attempt; the stage runner's backoff takes over after. */
const TRIES = 5;
/** The longest Retry-After honoured inside an attempt (OneDrive has sent 315 s); a longer one fails the attempt. */
const MAX_RETRY_AFTER_MS = 120_000;

export interface GraphRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A Graph path (`/drives/…`) or, for upload sessions, the absolute upload URL. */
  readonly url: string;
  readonly json?: unknown;
  readonly body?: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** false for the pre-authenticated upload URL: an Authorization header there can be refused with 401. */
  readonly auth: boolean;
}

/**
 * Requests to Microsoft Graph: the bearer token where it belongs and never
 * on an upload URL, 429/5xx retried after Retry-After (or with backoff and
 * jitter when it is missing), every request bounded by the target's timeout.
 * Other statuses are returned for the caller to interpret (404, 409, 416 …).
 */
export class GraphClient {
  constructor(
    private readonly target: string,
    private readonly graphUrl: string,
    private readonly auth: GraphAuth,
    private readonly timeoutMs: number,
  ) {}

  async request(r: GraphRequest): Promise<Response> {
    const url = r.url.startsWith('https://') || r.url.startsWith('http://') ? r.url : `${this.graphUrl.replace(/\/$/, '')}${r.url}`;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...r.headers };
      if (r.auth) headers.authorization = `Bearer ${await this.auth.token()}`;
      if (r.json !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      try {
        res = await fetch(url, {
          method: r.method,
          headers,
          body: r.json !== undefined ? JSON.stringify(r.json) : r.body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        throw new StoreError(
          'TARGET_UNREACHABLE',
          `storage target ${this.target}: ${r.method} ${redact(url)}: ${(err as Error).cause ? String((err as Error & { cause: Error }).cause.message) : (err as Error).message}`,
          { target: this.target },
          { cause: err },
        );
      }
      if (!RETRIABLE.has(res.status) || attempt + 1 >= TRIES) return res;
      const wait = retryAfterMs(res.headers.get('retry-after')) ?? backoffMs(attempt, 1000, 30_000);
      await res.body?.cancel();
      if (wait > MAX_RETRY_AFTER_MS) return res;
      await sleep(wait);
    }
  }

  /** A request whose answer must be one of `ok`; its JSON (or null for 204). */
  async json<T>(r: GraphRequest, ok: readonly number[] = [200, 201]): Promise<T> {
    const res = await this.request(r);
    if (!ok.includes(res.status)) throw await this.failure(r, res);
    return res.status === 204 ? (null as T) : ((await res.json()) as T);
  }

  /** A GET whose 404 means "not there": its JSON, or null. */
  async jsonOrNull<T>(r: GraphRequest): Promise<T | null> {
    const res = await this.request(r);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (res.status !== 200) throw await this.failure(r, res);
    return (await res.json()) as T;
  }

  /** A clear error for an answer the caller did not expect; Graph's own error code and message in it, never a token or upload URL. */
  async failure(r: GraphRequest, res: Response): Promise<StoreError> {
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    const what =
      res.status === 401 || res.status === 403
        ? 'access denied (the app or user lacks permission on this drive)'
        : res.status === 507
          ? 'the drive is full'
          : res.status === 429 || res.status === 503
            ? 'throttled by the service'
            : (body?.error?.message ?? res.statusText);
    return new StoreError(
      res.status === 401 || res.status === 403 ? 'ONEDRIVE_DENIED' : 'ONEDRIVE_FAILED',
      `storage target ${this.target}: ${r.method} ${redact(r.url)}: HTTP ${res.status}${body?.error?.code ? ` ${body.error.code}` : ''}: ${what}`,
      { target: this.target, status: res.status, graphCode: body?.error?.code },
    );
  }
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** An upload URL is a credential (anyone holding it can write): only its origin goes into messages. */
function redact(url: string): string {
  return /^https?:\/\//.test(url) ? `${new URL(url).origin}/…(upload session)` : url;
}
