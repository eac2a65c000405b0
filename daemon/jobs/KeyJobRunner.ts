import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { JobError } from '../errors.js';
import type { RecordingIndex, KeyJob, KeyJobItem, KeyJobKind } from '../store/RecordingIndex.js';
import { commitConversion, discardLeftovers, stageConversion, type ConversionContext } from './convertRecording.js';

export interface KeyJobSpec {
  readonly kind: KeyJobKind;
  readonly fromKekId: string | null;
  readonly toKekId: string | null;
  readonly actor: string;
}

/** The recordings a new job of this kind takes on. */
function selectRecordings(index: RecordingIndex, spec: KeyJobSpec, kekIds: readonly string[]): string[] {
  if (spec.kind === 'rewrap' || spec.kind === 'reencrypt') return [...index.idsWith('kek', spec.fromKekId!)];
  if (spec.kind === 'decrypt') return kekIds.flatMap((k) => [...index.idsWith('kek', k)]).sort();
  return [...index.idsInState('sealed'), ...index.idsInState('uploaded')].filter((id) => index.get(id)?.kekId === null).sort();
}

/**
 * Runs a key job over its journaled recordings, a few at a time. Each
 * recording goes old → new as a whole: staged (new files fsynced and checked,
 * new checksum file and signature), journaled as staged, renamed into place,
 * then the index and journal updated together. After a crash or SIGKILL the
 * same command resumes: staged items roll forward, others start over.
 */
export class KeyJobRunner {
  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly ctx: ConversionContext,
  ) {}

  /** The unfinished job of this kind, or a new one over what needs converting now. */
  async openJob(spec: KeyJobSpec, kekIds: readonly string[]): Promise<{ job: KeyJob; resumed: boolean }> {
    const open = this.index.keyJobList().find((j) => j.kind === spec.kind && !j.finishedAt);
    if (open) {
      if (open.fromKekId !== spec.fromKekId) throw new JobError('JOB_UNFINISHED', `an unfinished ${open.kind} job (${open.id}) for KEK ${open.fromKekId} must finish first: run it again for that KEK`);
      return { job: open, resumed: true };
    }
    const ids = selectRecordings(this.index, spec, kekIds);
    const job: KeyJob = { id: `${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`, ...spec, createdAt: new Date().toISOString(), total: ids.length, done: 0, failed: 0, failures: [], finishedAt: null };
    await this.index.startKeyJob(job, ids);
    return { job, resumed: false };
  }

  async run(job: KeyJob, lanes: number, onItem: (job: KeyJob, recordingId: string, error: string | null) => void): Promise<KeyJob> {
    const queue = this.index.keyJobRemaining(job.id);
    let latest = job;
    const lane = async (): Promise<void> => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        let error: string | null = null;
        try {
          latest = await this.convert(job.id, item);
        } catch (err) {
          error = (err as Error).message;
          latest = await this.index.finishKeyJobItem(job.id, item.recordingId, { error });
        }
        onItem(latest, item.recordingId, error);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
    return this.index.finishKeyJob(job.id, new Date());
  }

  private async convert(jobId: string, item: KeyJobItem): Promise<KeyJob> {
    const entry = this.index.get(item.recordingId);
    if (!entry || entry.state === 'deleted') throw new JobError('GONE', 'not in the index, or deleted');
    const dir = path.join(this.dataDir, entry.dir);
    let staged = item.staged;
    if (!staged) {
      await discardLeftovers(dir);
      try {
        staged = await stageConversion(this.ctx, dir, item.recordingId);
      } catch (err) {
        await discardLeftovers(dir).catch(() => undefined);
        throw err;
      }
      if (!staged) return this.index.finishKeyJobItem(jobId, item.recordingId, { files: entry.files, kekId: entry.kekId });
      await this.index.stageKeyJobItem(jobId, item.recordingId, staged);
    }
    await commitConversion(dir, staged);
    return this.index.finishKeyJobItem(jobId, item.recordingId, { files: staged.files, kekId: staged.kekId });
  }
}
