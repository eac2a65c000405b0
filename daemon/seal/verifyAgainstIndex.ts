import path from 'node:path';
import { isSealed, legacyState } from '../archive/lifecycle.js';
import type { LegacyState } from '../archive/RecordingTypes.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import type { RecordingVerification } from './verify.js';

/** What verification compares a recording's files with: this instance's index and identity. */
export interface InstanceRecord {
  readonly dataDir: string;
  readonly instanceId: string | null;
  readonly index: RecordingIndex;
}

/**
 * A verified directory is the recording the index says lives there: the same
 * id at the same place, the same call, made by this instance. Returns the
 * verification with any mismatch added to its problems.
 */
export function checkAgainstIndex(v: RecordingVerification, inst: InstanceRecord): RecordingVerification {
  const problems: string[] = [];
  const id = v.recordingId;
  const rel = path.relative(inst.dataDir, v.dir);
  if (!id || rel.startsWith('..') || path.isAbsolute(rel)) return v;
  const entry = inst.index.get(id);
  if (!entry) problems.push(`recording ${id} is not in this instance's index`);
  else {
    if (entry.dir !== rel) problems.push(`the index has recording ${id} at ${entry.dir}, not at ${rel}`);
    if (entry.stage === 'deleted') problems.push(`the index says recording ${id} was deleted at ${entry.deletedAt ?? '?'}`);
    if (v.binding && v.binding.callId !== entry.callId)
      problems.push(`the signed metadata is call ${v.binding.callId}, the index has call ${entry.callId} for ${id}`);
  }
  if (v.binding?.instanceId && inst.instanceId && v.binding.instanceId !== inst.instanceId) {
    problems.push(`recorded by instance ${v.binding.instanceId}, not by this instance (${inst.instanceId})`);
  }
  return problems.length ? { ...v, ok: false, problems: [...v.problems, ...problems] } : v;
}

export interface MissingRecording {
  readonly recordingId: string;
  readonly dir: string;
  readonly state: LegacyState;
}

/**
 * Recordings the index holds as sealed under `root` whose directory was not
 * found there: deleted outside retention (a deletion callvault makes leaves
 * the entry `deleted`, a tombstone, and is not reported).
 */
export function missingFromDisk(root: string, found: ReadonlySet<string>, inst: InstanceRecord): MissingRecording[] {
  const under = path.relative(inst.dataDir, root);
  if (under.startsWith('..') || path.isAbsolute(under)) return [];
  const missing: MissingRecording[] = [];
  for (const e of inst.index.entriesByTime()) {
    if (!isSealed(e) || found.has(e.recordingId)) continue;
    if (under && e.dir !== under && !e.dir.startsWith(under + path.sep)) continue;
    missing.push({ recordingId: e.recordingId, dir: path.join(inst.dataDir, e.dir), state: legacyState(e) });
  }
  return missing;
}
