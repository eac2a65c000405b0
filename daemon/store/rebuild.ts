import { readdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { isEnvelope, readMetadata } from '../record/metadata.js';
import { readEnvelopeHeader } from '../seal/envelopeFile.js';
import { activeMarker } from '../record/recovery.js';
import { isRecordingId, recordingDir } from '../record/recordingId.js';
import { readTombstone } from '../retention/tombstone.js';
import { signatureFileName, checksumFileName, parseChecksums, readChecksumFile } from '../seal/checksumFile.js';
import { sealedRecording, type StorageTarget } from '../upload/StorageTarget.js';
import type { AuditLog } from './AuditLog.js';
import { newJob } from '../archive/JobTypes.js';
import type { JobChange } from '../archive/JobJournal.js';
import { legacyState, owesOffload, replay, startedEntry, type LifecycleEvent } from '../archive/lifecycle.js';
import { readOffloadManifest } from '../archive/offloadManifest.js';
import type { LegacyState, LegalHold, NewIndexEntry } from '../archive/RecordingTypes.js';
import { RecordingIndex } from './RecordingIndex.js';

export interface RebuildResult {
  readonly recordings: number;
  readonly byState: Partial<Record<LegacyState, number>>;
  /** Directories that could not be indexed, with the reason. */
  readonly problems: string[];
  /** Where the previous index was moved, if there was one. */
  readonly previous: string | null;
}

const BATCH = 1000;

async function mtime(file: string): Promise<Date | undefined> {
  return stat(file).then(
    (s) => s.mtime,
    () => undefined,
  );
}

/** Legal holds as the audit log last left them (the index is what was lost; the log was not). */
function holdsFromAudit(audit: AuditLog): Map<string, LegalHold> {
  const holds = new Map<string, LegalHold>();
  for (const e of audit.list()) {
    if (!e.subject) continue;
    if (e.action === 'recording.hold') holds.set(e.subject, { reason: String(e.details.reason), by: e.actor, at: e.at });
    if (e.action === 'recording.release') holds.delete(e.subject);
  }
  return holds;
}

async function* recordingIds(dataDir: string): AsyncGenerator<string> {
  const walk = async function* (dir: string, depth: number): AsyncGenerator<string> {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.sort()) {
      if (depth === 3) {
        if (isRecordingId(name)) yield name;
      } else yield* walk(path.join(dir, name), depth + 1);
    }
  };
  yield* walk(path.join(dataDir, 'recordings'), 0);
}

/**
 * The index entry the files of one recording imply — what happened to it,
 * replayed through the lifecycle: closed (its metadata says so), sealed (the
 * checksum file and signature, at the signature's time), a copy on each
 * storage target that has one — and the jobs still owed: its seal, or the
 * uploads missing.
 */
async function entryFromDisk(
  dataDir: string,
  id: string,
  targets: ReadonlyMap<string, StorageTarget>,
  holds: Map<string, LegalHold>,
): Promise<{ entry: NewIndexEntry; jobs: JobChange[] }> {
  const dir = recordingDir(dataDir, id);
  const tombstone = await readTombstone(dir, id);
  if (tombstone) return { entry: tombstone, jobs: [] };
  const meta = await readMetadata(dir, id);
  const hold = holds.get(id);
  const events: LifecycleEvent[] = hold ? [{ type: 'held', ...hold }] : [];
  const started = startedEntry(meta, dataDir);
  if (meta.state !== 'closed') {
    const live = await mtime(activeMarker(dataDir, id));
    if (!live) events.push({ type: 'failed', error: `metadata state is ${meta.state} and no crash marker exists` });
    return { entry: replay(started, events), jobs: [] };
  }
  events.push({ type: 'closed', endedAt: meta.endedAt, durationMs: meta.durationMs });
  const sealedAt = (await mtime(path.join(dir, checksumFileName(id)))) && (await mtime(path.join(dir, signatureFileName(id))));
  if (!sealedAt) return { entry: replay(started, events), jobs: [{ put: newJob('seal', id, '', null) }] };
  // The checksum file says what is stored (plain or envelopes); the envelope header, under which KEK.
  const files = parseChecksums((await readChecksumFile(path.join(dir, checksumFileName(id)))).toString('utf8')).map((e) => e.name);
  const offloaded = await readOffloadManifest(dir, id);
  if (offloaded) {
    // The audio left after every copy was found whole: the manifest says where, and under which KEK.
    events.push(
      {
        type: 'sealed',
        files,
        kekId: offloaded.kekId,
        sealedAt: sealedAt.toISOString(),
        targets: meta.profile.storage,
        removeLocalAfterUpload: true,
      },
      ...offloaded.targets.map((t) => ({ type: 'uploaded', target: t.name, at: t.copiedAt }) as const),
      { type: 'offloaded', at: offloaded.at },
    );
    return { entry: replay(started, events), jobs: [] };
  }
  const envelope = files.find(isEnvelope);
  const kekId = envelope ? readEnvelopeHeader(path.join(dir, envelope)).kekId : null;
  const removeLocal = meta.profile.removeLocalAfterUpload && meta.profile.storage.length ? { removeLocalAfterUpload: true } : {};
  events.push({ type: 'sealed', files, kekId, sealedAt: sealedAt.toISOString(), targets: meta.profile.storage, ...removeLocal });
  const jobs: JobChange[] = [];
  for (const name of meta.profile.storage) {
    // A target that cannot answer now (down, misconfigured) gets the upload job: its put is idempotent and finds a copy it has.
    const at = await targets
      .get(name)
      ?.find(sealedRecording(dataDir, started))
      .catch(() => undefined);
    if (at) events.push({ type: 'uploaded', target: name, at: at.toISOString() });
    else jobs.push({ put: newJob('upload', id, name, null) });
  }
  const entry = replay(started, events);
  return { entry, jobs: owesOffload(entry) ? [...jobs, { put: newJob('offload', id, '', null) }] : jobs };
}

/**
 * Rebuild the index and its job journal from the recordings on disk:
 * metadata, seal files and their times, tombstones of deleted recordings,
 * copies on storage targets, and legal holds from the audit log. The old index directory, if any, is
 * moved aside (never deleted). Stop the daemon first.
 */
export async function rebuildIndex(
  dataDir: string,
  audit: AuditLog,
  targets: ReadonlyMap<string, StorageTarget>,
  onProgress?: (n: number) => void,
): Promise<RebuildResult> {
  const indexDir = path.join(dataDir, 'index');
  let previous: string | null = `${indexDir}.old-${new Date().toISOString().replace(/[:.]/g, '')}`;
  await rename(indexDir, previous).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    previous = null;
  });
  const index = RecordingIndex.open(dataDir);
  const holds = holdsFromAudit(audit);
  const byState: Partial<Record<LegacyState, number>> = {};
  const problems: string[] = [];
  let batch: NewIndexEntry[] = [];
  let jobs: JobChange[] = [];
  let n = 0;
  try {
    for await (const id of recordingIds(dataDir)) {
      try {
        const { entry: e, jobs: owed } = await entryFromDisk(dataDir, id, targets, holds);
        batch.push(e);
        jobs.push(...owed);
        byState[legacyState(e)] = (byState[legacyState(e)] ?? 0) + 1;
        onProgress?.(++n);
      } catch (err) {
        problems.push(`${recordingDir(dataDir, id)}: ${(err as Error).message}`);
      }
      if (batch.length === BATCH) {
        await index.putMany(batch, jobs);
        batch = [];
        jobs = [];
      }
    }
    await index.putMany(batch, jobs);
  } finally {
    await index.close();
  }
  return { recordings: n, byState, problems, previous };
}
