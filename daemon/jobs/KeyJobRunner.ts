import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { ConvertStage } from '../archive/stages/ConvertStage.js';
import { StageRunner } from '../archive/StageRunner.js';
import type { KeyJob, KeyJobKind } from '../archive/JobTypes.js';
import { JobError } from '../errors.js';
import type { Logger } from '../log.js';
import { audioIsLocal } from '../archive/lifecycle.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import type { ConversionContext } from './convertRecording.js';

export interface KeyJobSpec {
  readonly kind: KeyJobKind;
  readonly fromKekId: string | null;
  readonly toKekId: string | null;
  readonly actor: string;
}

/** The recordings a new job of this kind takes on. */
function selectRecordings(index: RecordingIndex, spec: KeyJobSpec, kekIds: readonly string[]): string[] {
  // Offloaded recordings have no audio here to convert: their copies are the storage targets' (as for any copy there).
  const local = (id: string) => {
    const e = index.get(id);
    return e !== undefined && audioIsLocal(e);
  };
  if (spec.kind === 'rewrap' || spec.kind === 'reencrypt') return [...index.idsWith('kek', spec.fromKekId!)].filter(local);
  if (spec.kind === 'decrypt') return kekIds.flatMap((k) => [...index.idsWith('kek', k)].filter(local)).sort();
  return [...index.idsInState('sealed'), ...index.idsInState('uploaded')].filter((id) => local(id) && index.get(id)?.kekId === null).sort();
}

/**
 * A key job: its description and one convert job per recording, journaled
 * together; run by the stage runner's convert stage, a few recordings at a
 * time, each tried once per run (a failed one is counted and left as it was).
 */
export class KeyJobRunner {
  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly ctx: ConversionContext,
    private readonly log: Logger,
  ) {}

  /** The unfinished job of this kind, or a new one over what needs converting now. */
  async openJob(spec: KeyJobSpec, kekIds: readonly string[]): Promise<{ job: KeyJob; resumed: boolean }> {
    const open = this.index.keyJobList().find((j) => j.kind === spec.kind && !j.finishedAt);
    if (open) {
      if (open.fromKekId !== spec.fromKekId)
        throw new JobError(
          'JOB_UNFINISHED',
          `an unfinished ${open.kind} job (${open.id}) for KEK ${open.fromKekId} must finish first: run it again for that KEK`,
        );
      return { job: open, resumed: true };
    }
    const ids = selectRecordings(this.index, spec, kekIds);
    const job: KeyJob = {
      id: `${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`,
      ...spec,
      createdAt: new Date().toISOString(),
      total: ids.length,
      done: 0,
      failed: 0,
      failures: [],
      finishedAt: null,
    };
    await this.index.startKeyJob(job, ids);
    return { job, resumed: false };
  }

  /** The recordings still to convert. */
  remaining(job: KeyJob): string[] {
    return this.index.jobs.list('convert', job.id).map((j) => j.recordingId);
  }

  async run(job: KeyJob, lanes: number, onItem: (job: KeyJob, recordingId: string, error: string | null) => void): Promise<KeyJob> {
    const runner = new StageRunner({
      index: this.index,
      log: this.log,
      owner: `${os.hostname()}:${process.pid}`,
      lanes: { convert: job.id },
      attemptsPerJob: 1,
    });
    runner.register(new ConvertStage(this.dataDir, this.index, this.ctx, Math.max(1, lanes), onItem));
    await runner.start();
    await runner.idle();
    await runner.drain();
    return this.index.finishKeyJob(job.id, new Date());
  }
}
