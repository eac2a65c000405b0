import path from 'node:path';
import { open } from 'lmdb';
import { legacyState } from '../../daemon/archive/lifecycle.js';
import type { IndexEntry, LegacyState } from '../../daemon/archive/RecordingTypes.js';

/**
 * Turn a stopped instance's index back into what version 1 (before the
 * archive pipeline) wrote, one recording changed as given: entries with a
 * `state` instead of a `stage`, no job journal, schema 1 — so a test can
 * start today's daemon on an index of the earlier layout.
 */
export async function asVersion1Index(
  dataDir: string,
  recordingId: string,
  patch: { readonly state: LegacyState; readonly [k: string]: unknown },
): Promise<void> {
  const root = open({ path: path.join(dataDir, 'index', 'index.mdb'), compression: false });
  try {
    const entries = root.openDB<Record<string, unknown>, string>({ name: 'recordings' });
    const byState = root.openDB<true, string>({ name: 'recordings-by-state' });
    const jobs = root.openDB<unknown, string>({ name: 'jobs' });
    const meta = root.openDB<number, string>({ name: 'meta' });
    await root.transaction(() => {
      for (const { key, value } of entries.getRange()) {
        const { stage: _, ...rest } = value as unknown as IndexEntry;
        const old = legacyState(value as unknown as IndexEntry);
        const next: Record<string, unknown> = { ...rest, state: old, ...(key === recordingId ? patch : {}) };
        entries.put(key, next);
        if (next.state !== old) {
          byState.remove(`${old}\0${key}`);
          byState.put(`${next.state}\0${key}`, true);
        }
      }
      for (const { key } of jobs.getRange()) jobs.remove(key);
      meta.put('schema', 1);
    });
  } finally {
    await root.close();
  }
}
