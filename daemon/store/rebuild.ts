import { readdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { isEnvelope, readMetadata } from '../record/metadata.js';
import { readEnvelopeHeader } from '../seal/envelopeFile.js';
import { activeMarker } from '../record/recovery.js';
import { isRecordingId, recordingDir } from '../record/recordingId.js';
import { readTombstone } from '../retention/RetentionSweeper.js';
import { signatureFileName, checksumFileName, parseChecksums, readChecksumFile } from '../seal/checksumFile.js';
import type { StorageTarget } from '../upload/StorageTarget.js';
import type { AuditLog } from './AuditLog.js';
import { entryFromMetadata, RecordingIndex, type IndexState, type LegalHold, type NewIndexEntry, type UploadStatus } from './RecordingIndex.js';

export interface RebuildResult {
  readonly recordings: number;
  readonly byState: Partial<Record<IndexState, number>>;
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

/** The index entry the files of one recording imply. */
async function entryFromDisk(dataDir: string, id: string, targets: ReadonlyMap<string, StorageTarget>, holds: Map<string, LegalHold>): Promise<NewIndexEntry> {
  const dir = recordingDir(dataDir, id);
  const tombstone = await readTombstone(dir, id);
  if (tombstone) return tombstone;
  const meta = await readMetadata(dir, id);
  const hold = holds.get(id) ?? null;
  if (meta.state !== 'closed') {
    const live = await mtime(activeMarker(dataDir, id));
    return { ...entryFromMetadata(meta, dataDir, live ? 'recording' : 'failed'), hold, error: live ? null : `metadata state is ${meta.state} and no crash marker exists` };
  }
  const sealedAt = (await mtime(path.join(dir, checksumFileName(id)))) && (await mtime(path.join(dir, signatureFileName(id))));
  if (!sealedAt) return { ...entryFromMetadata(meta, dataDir, 'finalizing'), hold };
  // The checksum file says what is stored (plain or envelopes); the envelope header, under which KEK.
  const files = parseChecksums((await readChecksumFile(path.join(dir, checksumFileName(id)))).toString('utf8')).map((e) => e.name);
  const envelope = files.find(isEnvelope);
  const kekId = envelope ? readEnvelopeHeader(path.join(dir, envelope)).kekId : null;
  const base = { ...entryFromMetadata(meta, dataDir, kekId ? 'encrypted' : 'sealed'), files, kekId };
  const uploads: Record<string, UploadStatus> = {};
  for (const name of meta.profile.storage) {
    const at = await targets.get(name)?.find({ recordingId: id, dir, relDir: base.dir });
    uploads[name] = at ? { state: 'done', doneAt: at.toISOString() } : { state: 'pending', attempts: 0, lastError: null };
  }
  const all = Object.values(uploads).every((u) => u.state === 'done');
  return { ...base, state: all && meta.profile.storage.length ? 'uploaded' : base.state, sealedAt: sealedAt.toISOString(), uploads, hold };
}

/**
 * Rebuild the index from the recordings on disk: metadata, seal files and
 * their times, tombstones of deleted recordings, copies on storage targets,
 * and legal holds from the audit log. The old index directory, if any, is
 * moved aside (never deleted). Stop the daemon first.
 */
export async function rebuildIndex(dataDir: string, audit: AuditLog, targets: ReadonlyMap<string, StorageTarget>, onProgress?: (n: number) => void): Promise<RebuildResult> {
  const indexDir = path.join(dataDir, 'index');
  let previous: string | null = `${indexDir}.old-${new Date().toISOString().replace(/[:.]/g, '')}`;
  await rename(indexDir, previous).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    previous = null;
  });
  const index = RecordingIndex.open(dataDir);
  const holds = holdsFromAudit(audit);
  const byState: Partial<Record<IndexState, number>> = {};
  const problems: string[] = [];
  let batch: NewIndexEntry[] = [];
  let n = 0;
  try {
    for await (const id of recordingIds(dataDir)) {
      try {
        const e = await entryFromDisk(dataDir, id, targets, holds);
        batch.push(e);
        byState[e.state] = (byState[e.state] ?? 0) + 1;
        onProgress?.(++n);
      } catch (err) {
        problems.push(`${recordingDir(dataDir, id)}: ${(err as Error).message}`);
      }
      if (batch.length === BATCH) {
        await index.putMany(batch);
        batch = [];
      }
    }
    await index.putMany(batch);
  } finally {
    await index.close();
  }
  return { recordings: n, byState, problems, previous };
}
