import { StoreError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { transientCode } from '../../retry.js';
import type { RecordingIndex } from '../../store/RecordingIndex.js';
import { sealedRecording, type StorageTarget } from '../../upload/StorageTarget.js';
import type { Job } from '../JobTypes.js';
import type { Failure, StageHandler } from '../StageRunner.js';

/**
 * The lock stage: a legal hold placed or released (`callvault hold`) is
 * carried to every storage target that locks objects (S3 Object Lock), one
 * job per target, journaled with the hold. The job sets whatever the index
 * says when it runs, so jobs for a hold and its release cannot be applied
 * in the wrong order. A copy not made yet waits: the upload applies the hold
 * as it writes, and this job follows once the copy is there.
 */
export class LockStage implements StageHandler<'lock'> {
  readonly stage = 'lock';
  readonly concurrency = 2;
  readonly laneBackoff = true;
  readonly messages = { retry: 'legal hold not yet set on the storage target; will retry', failed: 'legal hold change dropped' };

  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly targets: () => ReadonlyMap<string, StorageTarget>,
    private readonly log: Logger,
  ) {}

  ready(lane: string): boolean {
    return this.targets().has(lane);
  }

  async run(job: Job<'lock'>): Promise<void> {
    const entry = this.index.get(job.recordingId);
    const target = this.targets().get(job.lane)!;
    if (entry && entry.stage !== 'deleted' && target.setLegalHold) {
      if (entry.uploads[job.lane]?.state !== 'done')
        throw new StoreError('NOT_UPLOADED_YET', `no copy of ${job.recordingId} on ${job.lane} yet to put the legal hold on`, {
          recordingId: job.recordingId,
          target: job.lane,
        });
      await target.setLegalHold(sealedRecording(this.dataDir, entry), entry.hold !== null);
      this.log.info({ recordingId: job.recordingId, target: job.lane, legalHold: entry.hold !== null }, 'legal hold set on the storage target');
    }
    await this.index.commit(job.recordingId, null, [{ remove: job }]);
  }

  failed(_job: Job<'lock'>, err: unknown): Failure {
    return { action: 'retry', event: null, code: transientCode(err) ?? null };
  }
}
