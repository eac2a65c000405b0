import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { RecordingMetadata } from '../record/metadata.js';
import { recordingDir } from '../record/recordingId.js';

export type IndexState = 'recording' | 'finalizing' | 'sealed' | 'encrypted' | 'uploaded' | 'failed' | 'deleted';

/** One recording as the index knows it; the files on disk remain the evidence. */
export interface IndexEntry {
  readonly recordingId: string;
  readonly callId: string;
  readonly profile: string;
  readonly state: IndexState;
  /** The recording's directory relative to the data dir. */
  readonly dir: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly durationMs: number | null;
  readonly sealedAt: string | null;
  /** Why the recording is `failed`. */
  readonly error: string | null;
  /** Copies to the profile's storage targets, by target name. */
  readonly uploads: Readonly<Record<string, UploadStatus>>;
  readonly updatedAt: string;
}

export interface UploadStatus {
  readonly state: 'pending' | 'done';
  readonly attempts: number;
  readonly lastError: string | null;
  readonly doneAt: string | null;
}

/** A queued copy of one recording to one storage target (the upload job journal). */
export interface UploadJob {
  readonly recordingId: string;
  readonly target: string;
  readonly attempts: number;
  /** Unix ms before which the job is not retried. */
  readonly notBefore: number;
}

export type IndexPatch = Partial<Omit<IndexEntry, 'recordingId' | 'callId' | 'profile' | 'dir' | 'startedAt' | 'updatedAt'>>;

/** The index entry a recording's metadata implies (at start, after crash recovery, on rebuild). */
export function entryFromMetadata(meta: RecordingMetadata, dataDir: string, state: IndexState): Omit<IndexEntry, 'updatedAt'> {
  return {
    recordingId: meta.recordingId,
    callId: meta.callId,
    profile: meta.profile.name,
    state,
    dir: path.relative(dataDir, recordingDir(dataDir, meta.recordingId)),
    startedAt: meta.startedAt,
    endedAt: meta.endedAt,
    durationMs: meta.durationMs,
    sealedAt: null,
    error: null,
    uploads: {},
  };
}

function stateKey(state: IndexState, id: string): string {
  return `${state}/${id}`;
}

function jobKey(target: string, id: string): string {
  return `${target}/${id}`;
}

const PENDING: UploadStatus = { state: 'pending', attempts: 0, lastError: null, doneAt: null };

/**
 * The recording index in LMDB (`<dataDir>/index/index.mdb`): entries by
 * recording id plus a by-state index kept in the same transaction, so
 * "everything not yet sealed" is a range read, not a scan. Every write
 * resolves only once it is committed and flushed.
 */
export class RecordingIndex {
  private constructor(
    private readonly root: RootDatabase,
    private readonly entries: Database<IndexEntry, string>,
    private readonly byState: Database<true, string>,
    private readonly uploadJobs: Database<UploadJob, string>,
  ) {}

  static open(dataDir: string): RecordingIndex {
    const dir = path.join(dataDir, 'index');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const root = open({ path: path.join(dir, 'index.mdb'), compression: false });
    return new RecordingIndex(root, root.openDB({ name: 'recordings' }), root.openDB({ name: 'recordings-by-state' }), root.openDB({ name: 'upload-jobs' }));
  }

  get(recordingId: string): IndexEntry | undefined {
    return this.entries.get(recordingId);
  }

  async put(entry: Omit<IndexEntry, 'updatedAt'>): Promise<IndexEntry> {
    let next!: IndexEntry;
    await this.root.transaction(() => {
      next = this.write(entry);
    });
    return next;
  }

  async update(recordingId: string, patch: IndexPatch): Promise<IndexEntry> {
    let next!: IndexEntry;
    await this.root.transaction(() => {
      next = this.write({ ...this.mustGet(recordingId), ...patch });
    });
    return next;
  }

  /** `sealed`, and in the same transaction one upload job per storage target. */
  async markSealed(recordingId: string, targets: readonly string[]): Promise<IndexEntry> {
    let next!: IndexEntry;
    await this.root.transaction(() => {
      const uploads = Object.fromEntries(targets.map((t) => [t, PENDING]));
      next = this.write({ ...this.mustGet(recordingId), state: 'sealed', sealedAt: new Date().toISOString(), error: null, uploads });
      for (const target of targets) this.uploadJobs.put(jobKey(target, recordingId), { recordingId, target, attempts: 0, notBefore: 0 });
    });
    return next;
  }

  /** Every queued upload, by target then recording id. */
  uploadQueue(): UploadJob[] {
    return [...this.uploadJobs.getRange()].map(({ value }) => value);
  }

  /** The copy is in place: job gone, and `uploaded` once every target has its copy. */
  async uploadDone(job: UploadJob): Promise<IndexEntry> {
    let next!: IndexEntry;
    await this.root.transaction(() => {
      const prev = this.mustGet(job.recordingId);
      const uploads = { ...prev.uploads, [job.target]: { state: 'done', attempts: job.attempts + 1, lastError: null, doneAt: new Date().toISOString() } as UploadStatus };
      const all = Object.values(uploads).every((u) => u.state === 'done');
      next = this.write({ ...prev, uploads, state: all && prev.state === 'sealed' ? 'uploaded' : prev.state });
      this.uploadJobs.remove(jobKey(job.target, job.recordingId));
    });
    return next;
  }

  /** A failed attempt: the job stays queued, not retried before `notBefore`. */
  async uploadFailed(job: UploadJob, error: string, notBefore: number): Promise<void> {
    await this.root.transaction(() => {
      const prev = this.mustGet(job.recordingId);
      const attempts = job.attempts + 1;
      this.write({ ...prev, uploads: { ...prev.uploads, [job.target]: { state: 'pending', attempts, lastError: error, doneAt: null } } });
      this.uploadJobs.put(jobKey(job.target, job.recordingId), { ...job, attempts, notBefore });
    });
  }

  private mustGet(recordingId: string): IndexEntry {
    const prev = this.entries.get(recordingId);
    if (!prev) throw new Error(`recording ${recordingId} is not in the index`);
    return prev;
  }

  /** Inside a transaction: the entry and its by-state key together. */
  private write(entry: Omit<IndexEntry, 'updatedAt'>): IndexEntry {
    const next: IndexEntry = { ...entry, updatedAt: new Date().toISOString() };
    const prev = this.entries.get(entry.recordingId);
    if (prev) this.byState.remove(stateKey(prev.state, prev.recordingId));
    this.entries.put(next.recordingId, next);
    this.byState.put(stateKey(next.state, next.recordingId), true);
    return next;
  }

  /** Ids of the recordings in one state, in id (= start time) order. */
  idsInState(state: IndexState): string[] {
    const prefix = `${state}/`;
    return [...this.byState.getKeys({ start: prefix, end: `${state}0` })].map((k) => k.slice(prefix.length));
  }

  close(): Promise<void> {
    return this.root.close();
  }
}
