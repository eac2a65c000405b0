import type { Database } from 'lmdb';
import type { Job, JobStage } from './JobTypes.js';

/** A change to the journal, made in the transaction of the state change that implies it. */
export type JobChange = { readonly put: Job } | { readonly remove: Job | JobKey };

export interface JobKey {
  readonly stage: JobStage;
  readonly lane: string;
  readonly recordingId: string;
}

/*
 * Keys are "<stage>\0<lane>\0<recordingId>": one job per recording, stage and
 * lane; a prefix range lists a stage's (or a lane's) jobs in recording id,
 * that is start time, order.
 */
const SEP = '\0';
const AFTER = '\u{10ffff}';

export function jobKey(k: JobKey): string {
  return `${k.stage}${SEP}${k.lane}${SEP}${k.recordingId}`;
}

/**
 * The one job journal (`jobs` in the index's LMDB): sealing, uploading,
 * deleting and converting recordings. Jobs are written in the same
 * transaction as the index change that creates them — closing a recording
 * enqueues its seal, sealing its uploads, expiry its deletion, a key job its
 * conversions — and removed in the one that records their outcome, so the
 * journal and the index never disagree.
 */
export class JobJournal {
  constructor(private readonly db: Database<Job, string>) {}

  get(k: JobKey): Job | undefined {
    return this.db.get(jobKey(k));
  }

  /** A stage's jobs (of one lane, if given), in recording order. */
  list(stage: JobStage, lane?: string): Job[] {
    const prefix = lane === undefined ? `${stage}${SEP}` : `${stage}${SEP}${lane}${SEP}`;
    return [...this.db.getRange({ start: prefix, end: `${prefix}${AFTER}` })].map(({ value }) => value);
  }

  /** The job for a recording in a stage, whatever its lane (the deletion under way, say). */
  find(stage: JobStage, recordingId: string): Job | undefined {
    return this.list(stage).find((j) => j.recordingId === recordingId);
  }

  count(stage: JobStage): number {
    return this.list(stage).length;
  }

  /** Inside a transaction. */
  apply(changes: readonly JobChange[]): void {
    for (const c of changes) {
      if ('put' in c) this.db.put(jobKey(c.put), c.put);
      else this.db.remove(jobKey(c.remove));
    }
  }
}
