import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurably } from '../fsutil.js';
import { checksumFileName, signatureFileName } from '../seal/checksumFile.js';
import type { AuditLog } from '../store/AuditLog.js';
import type { IndexEntry, NewIndexEntry, RecordingIndex } from '../store/RecordingIndex.js';
import type { StorageTarget } from '../upload/StorageTarget.js';

/** `<id>.deleted.json`: what stays of a deleted recording — its final index entry, so a rebuild knows it. */
export function tombstoneName(recordingId: string): string {
  return `${recordingId}.deleted.json`;
}

export async function readTombstone(dir: string, recordingId: string): Promise<NewIndexEntry | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, tombstoneName(recordingId)), 'utf8')) as NewIndexEntry;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface SweepResult {
  /** Expired and not on hold, as of `now`. */
  readonly expired: string[];
  readonly deleted: string[];
  readonly failed: { readonly recordingId: string; readonly error: string }[];
  /** Deletions a crash had left half done, finished first. */
  readonly resumed: number;
}

export interface SweepOptions {
  readonly now: Date;
  readonly dryRun: boolean;
  readonly actor: string;
  readonly onDeleted?: (recordingId: string, done: number, total: number) => void;
}

/**
 * Deletes recordings whose retention has ended and which are not on legal
 * hold: from every storage target holding a copy, then locally, leaving a
 * tombstone. Each deletion is journaled in the index before the first file
 * goes and completed (index `deleted`, audit entry) after the last, so a crash
 * leaves a deletion that the next run finishes — never one nobody knows about.
 */
export class RetentionSweeper {
  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly audit: AuditLog,
    private readonly targets: () => ReadonlyMap<string, StorageTarget>,
  ) {}

  async run(opts: SweepOptions): Promise<SweepResult> {
    const failed: { recordingId: string; error: string }[] = [];
    const deleted: string[] = [];
    let resumed = 0;
    if (!opts.dryRun) {
      for (const job of this.index.deletionQueue()) {
        await this.deleteOne(job.recordingId, job.actor, job.reason, true).then(
          () => resumed++,
          (err: Error) => failed.push({ recordingId: job.recordingId, error: err.message }),
        );
      }
    }
    const expired = [...this.index.expiredIds(opts.now)];
    if (opts.dryRun) return { expired, deleted, failed, resumed };
    for (const id of expired) {
      try {
        await this.deleteOne(id, opts.actor, 'retention', false);
        deleted.push(id);
        opts.onDeleted?.(id, deleted.length, expired.length);
      } catch (err) {
        failed.push({ recordingId: id, error: (err as Error).message });
      }
    }
    return { expired, deleted, failed, resumed };
  }

  private async deleteOne(recordingId: string, actor: string, reason: string, resuming: boolean): Promise<void> {
    const entry = this.index.get(recordingId) as IndexEntry;
    if (!resuming) await this.index.beginDeletion({ recordingId, reason, actor, startedAt: new Date().toISOString() });
    const dir = path.join(this.dataDir, entry.dir);
    const rec = { recordingId, dir, relDir: entry.dir };
    const targets = this.targets();
    for (const [name, status] of Object.entries(entry.uploads)) {
      const target = targets.get(name);
      // A copy may exist even while pending (crash after the rename): delete wherever the target is known.
      if (!target) {
        if (status.state === 'done') throw new Error(`storage target ${name} holds a copy but is no longer configured; add it back to delete the copy`);
        continue;
      }
      await target.remove(rec);
    }
    for (const name of [...entry.files, checksumFileName(recordingId), signatureFileName(recordingId)]) {
      await rm(path.join(dir, name), { force: true });
    }
    const { updatedAt: _, ...rest } = entry;
    const final: NewIndexEntry = { ...rest, state: 'deleted', deletedAt: new Date().toISOString(), uploads: {} };
    await writeFileDurably(path.join(dir, tombstoneName(recordingId)), JSON.stringify(final, null, 2) + '\n', 0o640);
    await this.audit.append(actor, 'recording.deleted', recordingId, { reason, profile: entry.profile, retainUntil: entry.retainUntil, startedAt: entry.startedAt, targets: Object.keys(entry.uploads) });
    await this.index.finishDeletion(final);
  }
}
