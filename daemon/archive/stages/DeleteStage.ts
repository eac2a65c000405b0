import { rm } from 'node:fs/promises';
import path from 'node:path';
import { StoreError } from '../../errors.js';
import { writeFileDurably } from '../../fsutil.js';
import type { Logger } from '../../log.js';
import { tombstoneName } from '../../retention/tombstone.js';
import { transientCode } from '../../retry.js';
import { checksumFileName, signatureFileName } from '../../seal/checksumFile.js';
import type { AuditLog } from '../../store/AuditLog.js';
import type { RecordingIndex } from '../../store/RecordingIndex.js';
import { sealedRecording, type StorageTarget } from '../../upload/StorageTarget.js';
import { apply } from '../lifecycle.js';
import { offloadManifestName } from '../offloadManifest.js';
import type { Job } from '../JobTypes.js';
import type { Failure, StageHandler } from '../StageRunner.js';

/**
 * The delete stage: a recording whose deletion is journaled (retention
 * ended, not on hold) is removed from every storage target holding a copy,
 * then locally, leaving a tombstone; the audit entry is written, then
 * `deleted` and the job's end in one transaction. A crash in between leaves
 * the job, which finishes the deletion — never one nobody knows about.
 */
export class DeleteStage implements StageHandler<'delete'> {
  readonly stage = 'delete';
  readonly concurrency = 1;
  readonly messages = { retry: 'cannot delete recording yet; the deletion stays journaled', failed: 'deletion dropped' };

  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly audit: AuditLog,
    private readonly targets: () => ReadonlyMap<string, StorageTarget>,
    private readonly log: Logger,
  ) {}

  async run(job: Job<'delete'>): Promise<void> {
    const { recordingId } = job;
    const entry = this.index.get(recordingId);
    if (!entry) throw new StoreError('NO_SUCH_RECORDING', `deletion of recording ${recordingId}, which the index does not have`, { recordingId });
    const dir = path.join(this.dataDir, entry.dir);
    const rec = sealedRecording(this.dataDir, entry);
    const targets = this.targets();
    const keptUnderLock: { target: string; object: string; reason: string }[] = [];
    for (const [name, status] of Object.entries(entry.uploads)) {
      const target = targets.get(name);
      // A copy may exist even while pending (crash after the rename): delete wherever the target is known.
      if (!target) {
        if (status.state === 'done')
          throw new StoreError('TARGET_GONE', `storage target ${name} holds a copy but is no longer configured; add it back to delete the copy`, {
            recordingId,
            target: name,
          });
        continue;
      }
      // A WORM lock that outlives the local retention (a longer bucket default, a hold set on the bucket) is reported, never bypassed.
      for (const k of (await target.remove(rec)).kept) keptUnderLock.push({ target: name, ...k });
    }
    if (keptUnderLock.length)
      this.log.warn({ recordingId, keptUnderLock }, 'copies under object lock stay on their storage targets until the lock ends');
    for (const name of [...entry.files, checksumFileName(recordingId), signatureFileName(recordingId), offloadManifestName(recordingId)])
      await rm(path.join(dir, name), { force: true });
    const event = { type: 'deleted', at: new Date().toISOString() } as const;
    const { updatedAt: _, ...rest } = entry;
    await writeFileDurably(path.join(dir, tombstoneName(recordingId)), `${JSON.stringify(apply(rest, event), null, 2)}\n`, 0o640);
    const { reason, actor } = job.data;
    await this.audit.append(actor, 'recording.deleted', recordingId, {
      reason,
      profile: entry.profile,
      retainUntil: entry.retainUntil,
      startedAt: entry.startedAt,
      targets: Object.keys(entry.uploads),
      ...(keptUnderLock.length ? { keptUnderLock } : {}),
    });
    // Copies still owed to a target that was down go with the recording: nothing is left to copy.
    const owed = this.index.jobs.list('upload').filter((j) => j.recordingId === recordingId);
    await this.index.commit(recordingId, event, [{ remove: job }, ...owed.map((j) => ({ remove: j }))]);
    this.log.info({ recordingId, reason, actor }, 'recording deleted');
  }

  failed(_job: Job<'delete'>, err: unknown): Failure {
    if (err instanceof StoreError && err.code === 'NO_SUCH_RECORDING') return { action: 'drop', event: null, code: null };
    return { action: 'retry', event: null, code: transientCode(err) ?? null };
  }
}
