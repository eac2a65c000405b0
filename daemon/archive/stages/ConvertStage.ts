import path from 'node:path';
import { JobError } from '../../errors.js';
import { commitConversion, discardLeftovers, stageConversion, type ConversionContext } from '../../jobs/convertRecording.js';
import type { RecordingIndex } from '../../store/RecordingIndex.js';
import type { Job, KeyJob } from '../JobTypes.js';
import type { Failure, StageHandler } from '../StageRunner.js';

/**
 * The convert stage of one key job (`keys encrypt-existing|revoke|decrypt-all`):
 * each recording goes old → new as a whole — staged (new files fsynced and
 * checked, new checksum file and signature), journaled as staged, renamed
 * into place, then the index and the job's end committed together. After a
 * crash the same command resumes: staged jobs roll forward, others start
 * over. A recording that cannot be converted is left as it was and counted
 * as failed in its key job.
 */
export class ConvertStage implements StageHandler<'convert'> {
  readonly stage = 'convert';
  readonly messages = { retry: 'cannot record a conversion; trying again', failed: 'conversion dropped' };

  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly ctx: ConversionContext,
    readonly concurrency: number,
    /** After each recording: the key job's progress, the recording, and why it failed (null: converted). */
    private readonly onItem: (job: KeyJob, recordingId: string, error: string | null) => void,
  ) {}

  async run(job: Job<'convert'>): Promise<void> {
    let progress: KeyJob;
    let error: string | null = null;
    try {
      progress = await this.convert(job);
    } catch (err) {
      error = (err as Error).message;
      progress = await this.index.finishConversion(job, { error });
    }
    this.onItem(progress, job.recordingId, error);
  }

  failed(): Failure {
    // run() settles every recording itself; what reaches here is the journal failing: tried again.
    return { action: 'retry', event: null, code: null };
  }

  private async convert(job: Job<'convert'>): Promise<KeyJob> {
    const entry = this.index.get(job.recordingId);
    if (!entry || entry.stage === 'deleted') throw new JobError('GONE', 'not in the index, or deleted');
    const dir = path.join(this.dataDir, entry.dir);
    let staged = job.data.staged;
    if (!staged) {
      await discardLeftovers(dir);
      try {
        staged = await stageConversion(this.ctx, dir, job.recordingId);
      } catch (err) {
        await discardLeftovers(dir).catch(() => undefined);
        throw err;
      }
      if (!staged) return this.index.finishConversion(job, { files: entry.files, kekId: entry.kekId });
      job = await this.index.stageConversion(job, staged);
    }
    await commitConversion(dir, staged);
    return this.index.finishConversion(job, { files: staged.files, kekId: staged.kekId });
  }
}
