import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { stageOfLegacy } from '../archive/lifecycle.js';
import type { LegacyState, NewIndexEntry } from '../archive/RecordingTypes.js';

/** `<id>.deleted.json`: what stays of a deleted recording — its final index entry, so a rebuild knows it. */
export function tombstoneName(recordingId: string): string {
  return `${recordingId}.deleted.json`;
}

/** The tombstone's entry (one written by version 1 has a `state` instead of a `stage`), or undefined when there is none. */
export async function readTombstone(dir: string, recordingId: string): Promise<NewIndexEntry | undefined> {
  let parsed: NewIndexEntry & { state?: LegacyState };
  try {
    parsed = JSON.parse(await readFile(path.join(dir, tombstoneName(recordingId)), 'utf8')) as NewIndexEntry & { state?: LegacyState };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const { state, ...entry } = parsed;
  return state === undefined ? entry : { ...entry, stage: stageOfLegacy(state) };
}
