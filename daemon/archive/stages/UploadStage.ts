import type { StorageTargetConfig } from '../../config/Config.js';
import { StoreError } from '../../errors.js';
import { SafeEmitter } from '../../events/SafeEmitter.js';
import type { Logger } from '../../log.js';
import { transientCode } from '../../retry.js';
import type { WorkerPool } from '../../seal/WorkerPool.js';
import type { RecordingIndex } from '../../store/RecordingIndex.js';
import { createTargets, sealedRecording, type StorageTarget } from '../../upload/StorageTarget.js';
import { newJob, type Job } from '../JobTypes.js';
import { owesOffload } from '../lifecycle.js';
import type { Failure, StageHandler } from '../StageRunner.js';

export interface UploadStageObserverEvents {
  /** A verified copy is journaled; `bytesSent` is 0 when an earlier attempt had made it. */
  uploaded: [target: string, recordingId: string, bytesSent: number];
}

/** Copies at once per target: enough to hide latency, few enough not to flood a mount. */
const PER_TARGET_CONCURRENCY = 2;

/**
 * The upload stage: one job per sealed recording and storage target of its
 * profile (journaled with `sealed`), done when the target holds a verified
 * copy (`uploaded`, and `archived` once every target has one). A failing
 * target backs off as a whole (it is usually the mount, not the recording);
 * a target removed from the config keeps its jobs, waiting, until it is back.
 */
export class UploadStage implements StageHandler<'upload'> {
  readonly stage = 'upload';
  readonly concurrency = PER_TARGET_CONCURRENCY;
  readonly laneBackoff = true;
  readonly messages = { retry: 'upload failed; will retry', failed: 'upload dropped' };
  #targets = new Map<string, StorageTarget>();
  /** Copies made, after they are journaled: for monitoring. */
  readonly observer: SafeEmitter<UploadStageObserverEvents>;

  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly pool: WorkerPool,
    private readonly log: Logger,
  ) {
    this.observer = new SafeEmitter((err, event) => log.error({ err, event }, 'an upload observer failed; the upload stands'));
  }

  /** Targets from the config (at start and on reload). */
  configure(storage: Readonly<Record<string, StorageTargetConfig>>): void {
    this.#targets = createTargets(storage, this.pool, this.dataDir);
  }

  /** The configured targets, by name. */
  get targets(): ReadonlyMap<string, StorageTarget> {
    return this.#targets;
  }

  ready(lane: string): boolean {
    return this.#targets.has(lane);
  }

  async run(job: Job<'upload'>): Promise<void> {
    const entry = this.index.get(job.recordingId);
    if (!entry)
      throw new StoreError('NO_SUCH_RECORDING', `upload job for recording ${job.recordingId}, which the index does not have`, {
        recordingId: job.recordingId,
      });
    const target = this.#targets.get(job.lane)!;
    const t0 = performance.now();
    const rec = sealedRecording(this.dataDir, entry);
    const { completedAt, bytesSent } = await target.put(rec);
    // A hold placed while the copy was being made: the lock job may have found nothing to hold yet.
    const now = this.index.get(job.recordingId);
    if (target.setLegalHold && now && (now.hold !== null) !== rec.legalHold) await target.setLegalHold(rec, now.hold !== null);
    const event = { type: 'uploaded', target: job.lane, at: completedAt.toISOString() } as const;
    // The last copy a profile that removes local audio waited for: its offload is journaled with it.
    await this.index.commit(job.recordingId, event, (next) => [
      { remove: job },
      ...(next && owesOffload(next) ? [{ put: newJob('offload', job.recordingId, '', null) }] : []),
    ]);
    this.observer.safeEmit('uploaded', job.lane, job.recordingId, bytesSent);
    this.log.info({ recordingId: job.recordingId, target: job.lane, bytesSent, ms: Math.round(performance.now() - t0) }, 'recording uploaded');
  }

  failed(job: Job<'upload'>, err: unknown): Failure {
    if (err instanceof StoreError && err.code === 'NO_SUCH_RECORDING') return { action: 'drop', event: null, code: null };
    return {
      action: 'retry',
      event: { type: 'upload-failed', target: job.lane, error: err instanceof Error ? err.message : String(err) },
      code: transientCode(err) ?? null,
    };
  }
}
