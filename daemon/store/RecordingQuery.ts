import { QueryError } from '../errors.js';
import { isRecordingId } from '../record/recordingId.js';
import { normalizeNumber } from './numbers.js';
import { entryView, legacyState, type EntryView } from '../archive/lifecycle.js';
import { LEGACY_STATES, type LegacyState } from '../archive/RecordingTypes.js';
import type { RecordingIndex } from './RecordingIndex.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

/** A search of the index; every field optional, all given ones must hold. */
export interface RecordingQuery {
  readonly number?: string | undefined;
  readonly callId?: string | undefined;
  /** Start time, inclusive. */
  readonly from?: Date | undefined;
  /** Start time, exclusive. */
  readonly to?: Date | undefined;
  readonly state?: LegacyState | undefined;
  readonly profile?: string | undefined;
  readonly limit: number;
  /** From a previous page's `nextCursor`. */
  readonly cursor?: string | undefined;
}

export interface RecordingPage {
  readonly recordings: EntryView[];
  /** Pass it back to get the next page; null on the last page. */
  readonly nextCursor: string | null;
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * A strict ISO 8601 date or date-time. `Date` alone would roll 2026-02-30
 * over to 2026-03-02 and accept many other forms; a search bound that means
 * something else than the operator typed is worse than an error.
 */
function parseTime(v: string, field: string): Date {
  const bad = () =>
    new QueryError(field, `${field} must be an ISO 8601 date or date-time (2026-03-01, 2026-03-01T09:30:00Z), got ${JSON.stringify(v)}`);
  const m = ISO_TIME.exec(v);
  if (!m) throw bad();
  const [y, mo, d, h = 0, mi = 0, sec = 0] = m.slice(1, 7).map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const daysInMonth = new Date(Date.UTC(y as number, mo as number, 0)).getUTCDate();
  if ((mo as number) < 1 || (mo as number) > 12 || (d as number) < 1 || (d as number) > daysInMonth || h > 23 || mi > 59 || sec > 59) throw bad();
  const date = new Date(m[4] === undefined ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(date.getTime())) throw bad();
  return date;
}

/** A positive decimal integer as a person types it: no 0x, exponent, sign or blanks. */
function parseLimit(v: string | undefined): number {
  const limit = v === undefined ? DEFAULT_LIMIT : /^[1-9][0-9]{0,5}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new QueryError('limit', `limit must be a decimal integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(v)}`);
  return limit;
}

/** Query fields as strings (URL parameters, CLI flags) → a checked query. */
export function parseQuery(p: Readonly<Record<string, string | undefined>>): RecordingQuery {
  const limit = parseLimit(p.limit);
  if (p.state !== undefined && !LEGACY_STATES.includes(p.state as LegacyState))
    throw new QueryError('state', `state must be one of ${LEGACY_STATES.join(', ')}`);
  let cursor: string | undefined;
  if (p.cursor !== undefined) {
    cursor = Buffer.from(p.cursor, 'base64url').toString('latin1');
    if (!isRecordingId(cursor)) throw new QueryError('cursor', 'cursor is not one this server gave out');
  }
  const q: RecordingQuery = {
    number: p.number || undefined,
    callId: p.callId || undefined,
    from: p.from ? parseTime(p.from, 'from') : undefined,
    to: p.to ? parseTime(p.to, 'to') : undefined,
    state: p.state as LegacyState | undefined,
    profile: p.profile || undefined,
    limit,
    cursor,
  };
  if (q.from && q.to && q.from >= q.to) throw new QueryError('to', 'to must be later than from');
  return q;
}

/** The smallest recording id of a recording started at `d` (ids begin with the start time in ms). */
function idFloor(d: Date): string {
  return Math.max(0, d.getTime()).toString(16).padStart(12, '0') + '0'.repeat(10);
}

/**
 * Run a query on the index. The most selective index drives it (number, then
 * call id, then state, else the time order of the primary key); the start-time
 * bounds become a key range within it; profile is checked per entry.
 */
export function runQuery(index: RecordingIndex, q: RecordingQuery): RecordingPage {
  let from = q.from ? idFloor(q.from) : undefined;
  if (q.cursor && (!from || q.cursor >= from)) from = `${q.cursor}\0`;
  const range = { from, to: q.to ? idFloor(q.to) : undefined };
  const ids: Iterable<string> | undefined = q.number
    ? index.idsWith('number', normalizeNumber(q.number), range)
    : q.callId
      ? index.idsWith('call', q.callId, range)
      : q.state
        ? index.idsWith('state', q.state, range)
        : undefined;
  const candidates = ids ? mapDefined(ids, (id) => index.get(id)) : index.entriesByTime(range);
  const out: EntryView[] = [];
  for (const e of candidates) {
    if (q.state && legacyState(e) !== q.state) continue;
    if (q.profile && e.profile !== q.profile) continue;
    if (q.callId && e.callId !== q.callId) continue;
    if (out.length === q.limit) return { recordings: out, nextCursor: Buffer.from(out[out.length - 1]!.recordingId, 'latin1').toString('base64url') };
    out.push(entryView(e));
  }
  return { recordings: out, nextCursor: null };
}

function* mapDefined<T, U>(items: Iterable<T>, f: (t: T) => U | undefined): Generator<U> {
  for (const item of items) {
    const u = f(item);
    if (u !== undefined) yield u;
  }
}
