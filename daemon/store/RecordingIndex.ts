import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { ChannelMode, Direction } from '../config/Config.js';
import type { G711Law } from '../media/g711.js';
import { recordingFileNames, type RecordingMetadata } from '../record/metadata.js';
import { retentionExpiry } from '../record/profiles.js';
import { recordingDir } from '../record/recordingId.js';
import { checkLmdbFile } from './lmdbCheck.js';
import { normalizeNumber } from './numbers.js';

export type IndexState = 'recording' | 'finalizing' | 'sealed' | 'encrypted' | 'uploaded' | 'failed' | 'deleted';
export const INDEX_STATES: readonly IndexState[] = ['recording', 'finalizing', 'sealed', 'encrypted', 'uploaded', 'failed', 'deleted'];

/** One recording as the index knows it; the files on disk remain the evidence. */
export interface IndexEntry {
  readonly recordingId: string;
  readonly callId: string;
  readonly profile: string;
  readonly direction: Direction;
  /** As the PBX sent them, and normalised (E.164 where the form allows) for search. */
  readonly caller: IndexedNumber;
  readonly callee: IndexedNumber;
  readonly codec: G711Law;
  readonly channelMode: ChannelMode;
  readonly state: IndexState;
  /** The recording's directory relative to the data dir. */
  readonly dir: string;
  readonly files: readonly string[];
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly durationMs: number | null;
  readonly sealedAt: string | null;
  /** Key-encryption key protecting the files, when encrypted. */
  readonly kekId: string | null;
  /** Copies to the profile's storage targets, by target name. */
  readonly uploads: Readonly<Record<string, UploadStatus>>;
  /** When the retention sweeper may delete it (null: never by itself). */
  readonly retainUntil: string | null;
  readonly hold: LegalHold | null;
  readonly deletedAt: string | null;
  /** Why the recording is `failed`. */
  readonly error: string | null;
  readonly updatedAt: string;
}

export interface IndexedNumber {
  readonly number: string;
  readonly normalized: string;
}

export interface LegalHold {
  readonly reason: string;
  readonly by: string;
  readonly at: string;
}

export type UploadStatus =
  | { readonly state: 'pending'; readonly attempts: number; readonly lastError: string | null }
  | { readonly state: 'done'; readonly doneAt: string };

/** A queued copy of one recording to one storage target (the upload job journal). */
export interface UploadJob {
  readonly recordingId: string;
  readonly target: string;
  readonly attempts: number;
  /** Unix ms before which the job is not retried. */
  readonly notBefore: number;
}

/** A deletion under way (the retention journal): its files may be partly gone. */
export interface DeletionJob {
  readonly recordingId: string;
  readonly reason: string;
  readonly actor: string;
  readonly startedAt: string;
}

export type IndexPatch = Partial<Omit<IndexEntry, 'recordingId' | 'callId' | 'profile' | 'dir' | 'startedAt' | 'updatedAt'>>;
export type NewIndexEntry = Omit<IndexEntry, 'updatedAt'>;

/** The index entry a recording's metadata implies (at start, after crash recovery, on rebuild). */
export function entryFromMetadata(meta: RecordingMetadata, dataDir: string, state: IndexState): NewIndexEntry {
  const number = (n: string): IndexedNumber => ({ number: n, normalized: normalizeNumber(n) });
  const retention = meta.profile.retention;
  return {
    recordingId: meta.recordingId,
    callId: meta.callId,
    profile: meta.profile.name,
    direction: meta.direction,
    caller: number(meta.legs.caller.number),
    callee: number(meta.legs.callee.number),
    codec: meta.codec,
    channelMode: meta.channelMode,
    state,
    dir: path.relative(dataDir, recordingDir(dataDir, meta.recordingId)),
    files: recordingFileNames(meta),
    startedAt: meta.startedAt,
    endedAt: meta.endedAt,
    durationMs: meta.durationMs,
    sealedAt: null,
    kekId: null,
    uploads: {},
    retainUntil: retention ? retentionExpiry(new Date(meta.startedAt), retention).toISOString() : null,
    hold: null,
    deletedAt: null,
    error: null,
  };
}

/** rewrap: a new key slot, the same data key; reencrypt: a fresh data key (a suspected compromise of the old ones). */
export type KeyJobKind = 'encrypt' | 'rewrap' | 'reencrypt' | 'decrypt';

/** A background key job (`callvault keys encrypt-existing|revoke|decrypt-all`), journaled so it resumes where it stopped. */
export interface KeyJob {
  readonly id: string;
  readonly kind: KeyJobKind;
  /** rewrap: the KEK being revoked. */
  readonly fromKekId: string | null;
  /** encrypt, rewrap: the KEK the recordings move to. */
  readonly toKekId: string | null;
  readonly actor: string;
  readonly createdAt: string;
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  /** The last failures (recording, reason), newest last; a failed recording is left as it was. */
  readonly failures: readonly { recordingId: string; error: string }[];
  readonly finishedAt: string | null;
}

/** One recording's conversion, staged: every new file fsynced and checked under a temporary name. */
export interface StagedConversion {
  /** [staged name, final name], in the order they are renamed: audio, then checksum file, then signature. */
  readonly renames: readonly (readonly [string, string])[];
  /** Old files the new ones replace under another name. */
  readonly removes: readonly string[];
  readonly files: readonly string[];
  readonly kekId: string | null;
}

export interface KeyJobItem {
  readonly recordingId: string;
  /** null: nothing durable yet (leftovers are discarded and it starts over); set: roll forward. */
  readonly staged: StagedConversion | null;
}

const MAX_FAILURES_KEPT = 100;

/*
 * Secondary index keys are "<value>\0<recordingId>": \0 never occurs in a
 * number, call id or timestamp, and recording ids sort by start time, so a
 * prefix range returns one value's recordings in start order.
 */
const SEP = '\0';
const AFTER = '\u{10ffff}';

function pairKey(value: string, id: string): string {
  return `${value}${SEP}${id}`;
}

function idOfPairKey(key: string): string {
  return key.slice(key.lastIndexOf(SEP) + 1);
}

const PENDING: UploadStatus = { state: 'pending', attempts: 0, lastError: null };

/** Whether the retention sweeper should see the entry at all. */
function expiresBySweep(e: IndexEntry): boolean {
  return e.retainUntil !== null && e.hold === null && e.state !== 'deleted' && e.state !== 'recording' && e.state !== 'finalizing';
}

interface Secondary {
  readonly db: Database<true, string>;
  readonly keys: (e: IndexEntry) => string[];
}

/**
 * The recording index in LMDB (`<dataDir>/index/index.mdb`). Entries by
 * recording id — which sorts by start time, so the primary key is the time
 * index — plus secondary indexes by state, by phone number (either party,
 * normalised), by call id and by retention expiry, all written in the same
 * transaction as the entry. Every write resolves only once committed and
 * flushed. Several processes (the daemon, CLI commands) may open it at once.
 */
export class RecordingIndex {
  private readonly secondaries: Readonly<Record<'state' | 'number' | 'call' | 'expiry' | 'kek', Secondary>>;

  private constructor(
    private readonly root: RootDatabase,
    private readonly entries: Database<IndexEntry, string>,
    private readonly uploadJobs: Database<UploadJob, string>,
    private readonly deletionJobs: Database<DeletionJob, string>,
    private readonly keyJobs: Database<KeyJob, string>,
    private readonly keyJobItems: Database<KeyJobItem, string>,
  ) {
    const db = (name: string) => root.openDB<true, string>({ name });
    this.secondaries = {
      state: { db: db('recordings-by-state'), keys: (e) => [pairKey(e.state, e.recordingId)] },
      number: { db: db('recordings-by-number'), keys: (e) => [...new Set([e.caller.normalized, e.callee.normalized])].map((n) => pairKey(n, e.recordingId)) },
      call: { db: db('recordings-by-call'), keys: (e) => [pairKey(e.callId, e.recordingId)] },
      expiry: { db: db('recordings-by-expiry'), keys: (e) => (expiresBySweep(e) ? [pairKey(e.retainUntil as string, e.recordingId)] : []) },
      // Which recordings a KEK protects: what `keys status` counts and `keys revoke` walks.
      kek: { db: db('recordings-by-kek'), keys: (e) => (e.kekId && e.state !== 'deleted' ? [pairKey(e.kekId, e.recordingId)] : []) },
    };
  }

  static open(dataDir: string): RecordingIndex {
    const dir = path.join(dataDir, 'index');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const file = path.join(dir, 'index.mdb');
    checkLmdbFile(file, 'the recording index', 'stop the daemon and run `callvault reindex`: it moves the damaged index aside and rebuilds it from the recordings on disk');
    const root = open({ path: file, compression: false });
    return new RecordingIndex(
      root,
      root.openDB({ name: 'recordings' }),
      root.openDB({ name: 'upload-jobs' }),
      root.openDB({ name: 'deletion-jobs' }),
      root.openDB({ name: 'key-jobs' }),
      root.openDB({ name: 'key-job-items' }),
    );
  }

  get(recordingId: string): IndexEntry | undefined {
    return this.entries.get(recordingId);
  }

  async put(entry: NewIndexEntry): Promise<IndexEntry> {
    return this.transact(() => this.write(entry));
  }

  /** Many entries in one transaction (rebuilds, benchmarks), with the upload jobs still owed. */
  async putMany(entries: readonly NewIndexEntry[]): Promise<void> {
    await this.transact(() => {
      for (const e of entries) {
        this.write(e);
        for (const [target, u] of Object.entries(e.uploads)) {
          if (u.state === 'pending') this.uploadJobs.put(pairKey(target, e.recordingId), { recordingId: e.recordingId, target, attempts: u.attempts, notBefore: 0 });
        }
      }
    });
  }

  /** Journal a deletion before any file goes; refused for a recording on hold. */
  async beginDeletion(job: DeletionJob): Promise<void> {
    await this.transact(() => {
      const e = this.mustGet(job.recordingId);
      if (e.hold) throw new Error(`recording ${job.recordingId} is on legal hold (${e.hold.reason})`);
      this.deletionJobs.put(job.recordingId, job);
    });
  }

  /** Every file is gone: the entry says `deleted`, the journal entry goes. */
  async finishDeletion(entry: NewIndexEntry): Promise<IndexEntry> {
    return this.transact(() => {
      this.deletionJobs.remove(entry.recordingId);
      return this.write(entry);
    });
  }

  deletionJob(recordingId: string): DeletionJob | undefined {
    return this.deletionJobs.get(recordingId);
  }

  deletionQueue(): DeletionJob[] {
    return [...this.deletionJobs.getRange()].map(({ value }) => value);
  }

  async update(recordingId: string, patch: IndexPatch): Promise<IndexEntry> {
    return this.transact(() => this.write({ ...this.mustGet(recordingId), ...patch }));
  }

  /**
   * `sealed`, and in the same transaction one upload job per storage target.
   * `sealedAt` is the signature file's mtime, so a rebuild from disk restores it exactly.
   */
  async markSealed(recordingId: string, targets: readonly string[], sealedAt: Date, stored: { files: readonly string[]; kekId: string | null }): Promise<IndexEntry> {
    return this.transact(() => {
      const uploads = Object.fromEntries(targets.map((t) => [t, PENDING]));
      const state = stored.kekId ? 'encrypted' : 'sealed';
      const next = this.write({ ...this.mustGet(recordingId), state, files: stored.files, kekId: stored.kekId, sealedAt: sealedAt.toISOString(), error: null, uploads });
      for (const target of targets) this.uploadJobs.put(pairKey(target, recordingId), { recordingId, target, attempts: 0, notBefore: 0 });
      return next;
    });
  }

  /** Every queued upload, by target then recording id. */
  uploadQueue(): UploadJob[] {
    return [...this.uploadJobs.getRange()].map(({ value }) => value);
  }

  /** The copy is in place (since `doneAt`): job gone, and `uploaded` once every target has its copy. */
  async uploadDone(job: UploadJob, doneAt: Date): Promise<IndexEntry> {
    return this.transact(() => {
      const prev = this.mustGet(job.recordingId);
      const uploads: Record<string, UploadStatus> = { ...prev.uploads, [job.target]: { state: 'done', doneAt: doneAt.toISOString() } };
      const all = Object.values(uploads).every((u) => u.state === 'done');
      this.uploadJobs.remove(pairKey(job.target, job.recordingId));
      return this.write({ ...prev, uploads, state: all && (prev.state === 'sealed' || prev.state === 'encrypted') ? 'uploaded' : prev.state });
    });
  }

  /** A job that can never run (its recording is not in the index). */
  async dropUploadJob(job: UploadJob): Promise<void> {
    await this.uploadJobs.remove(pairKey(job.target, job.recordingId));
  }

  /** A failed attempt: the job stays queued, not retried before `notBefore`. */
  async uploadFailed(job: UploadJob, error: string, notBefore: number): Promise<void> {
    await this.transact(() => {
      const prev = this.mustGet(job.recordingId);
      const attempts = job.attempts + 1;
      this.write({ ...prev, uploads: { ...prev.uploads, [job.target]: { state: 'pending', attempts, lastError: error } } });
      this.uploadJobs.put(pairKey(job.target, job.recordingId), { ...job, attempts, notBefore });
    });
  }

  /** Ids of the recordings in one state, in id (= start time) order. */
  idsInState(state: IndexState): string[] {
    return [...this.idsWith('state', state)];
  }

  /** Ids with one value in a secondary index, in start order, optionally within an id range [from, to). */
  *idsWith(index: 'state' | 'number' | 'call' | 'kek', value: string, range: { from?: string | undefined; to?: string | undefined } = {}): Generator<string> {
    const start = pairKey(value, range.from ?? '');
    const end = pairKey(value, range.to ?? AFTER);
    for (const key of this.secondaries[index].db.getKeys({ start, end })) yield idOfPairKey(key);
  }

  /** All entries in start order, optionally within an id range [from, to). */
  *entriesByTime(range: { from?: string | undefined; to?: string | undefined } = {}): Generator<IndexEntry> {
    for (const { value } of this.entries.getRange({ start: range.from ?? '', end: range.to ?? AFTER })) yield value;
  }

  /** Recordings whose retention ended before `now` and are not on hold, oldest expiry first. */
  *expiredIds(now: Date): Generator<string> {
    for (const key of this.secondaries.expiry.db.getKeys({ start: '', end: pairKey(now.toISOString(), '') })) yield idOfPairKey(key);
  }

  count(): number {
    return this.entries.getCount();
  }

  /** Journal a key job and every recording it will convert, in one transaction. */
  async startKeyJob(job: KeyJob, ids: readonly string[]): Promise<void> {
    await this.transact(() => {
      this.keyJobs.put(job.id, job);
      for (const recordingId of ids) this.keyJobItems.put(pairKey(job.id, recordingId), { recordingId, staged: null });
    });
  }

  keyJobList(): KeyJob[] {
    return [...this.keyJobs.getRange()].map(({ value }) => value);
  }

  keyJob(id: string): KeyJob | undefined {
    return this.keyJobs.get(id);
  }

  /** What is left of a job, in recording (start time) order. */
  keyJobRemaining(jobId: string): KeyJobItem[] {
    return [...this.keyJobItems.getRange({ start: pairKey(jobId, ''), end: pairKey(jobId, AFTER) })].map(({ value }) => value);
  }

  async stageKeyJobItem(jobId: string, recordingId: string, staged: StagedConversion): Promise<void> {
    await this.keyJobItems.put(pairKey(jobId, recordingId), { recordingId, staged });
  }

  /**
   * A recording converted (its files renamed into place): the entry takes
   * the new files and KEK and the journal drops the item in one transaction;
   * or, with an error, the recording is left as it was and counted as failed.
   */
  async finishKeyJobItem(jobId: string, recordingId: string, outcome: { files: readonly string[]; kekId: string | null } | { error: string }): Promise<KeyJob> {
    return this.transact(() => {
      const job = this.keyJobs.get(jobId);
      if (!job) throw new Error(`no key job ${jobId}`);
      this.keyJobItems.remove(pairKey(jobId, recordingId));
      let next: KeyJob;
      if ('error' in outcome) {
        next = { ...job, failed: job.failed + 1, failures: [...job.failures, { recordingId, error: outcome.error }].slice(-MAX_FAILURES_KEPT) };
      } else {
        const prev = this.mustGet(recordingId);
        const state = prev.state === 'uploaded' ? 'uploaded' : outcome.kekId ? 'encrypted' : 'sealed';
        this.write({ ...prev, files: outcome.files, kekId: outcome.kekId, state });
        next = { ...job, done: job.done + 1 };
      }
      this.keyJobs.put(jobId, next);
      return next;
    });
  }

  async finishKeyJob(jobId: string, at: Date): Promise<KeyJob> {
    return this.transact(() => {
      const job = { ...this.keyJobs.get(jobId)!, finishedAt: at.toISOString() };
      this.keyJobs.put(jobId, job);
      return job;
    });
  }

  close(): Promise<void> {
    return this.root.close();
  }

  private async transact<T>(body: () => T): Promise<T> {
    let result!: T;
    await this.root.transaction(() => {
      result = body();
    });
    return result;
  }

  private mustGet(recordingId: string): IndexEntry {
    const prev = this.entries.get(recordingId);
    if (!prev) throw new Error(`recording ${recordingId} is not in the index`);
    return prev;
  }

  /** Inside a transaction: the entry and every secondary key, old ones removed. */
  private write(entry: NewIndexEntry): IndexEntry {
    const next: IndexEntry = { ...entry, updatedAt: new Date().toISOString() };
    const prev = this.entries.get(entry.recordingId);
    // Only keys that change are touched: most updates (upload progress, state) move one key, not five.
    for (const { db, keys } of Object.values(this.secondaries)) {
      const old = new Set(prev ? keys(prev) : []);
      const now = new Set(keys(next));
      for (const k of old) if (!now.has(k)) db.remove(k);
      for (const k of now) if (!old.has(k)) db.put(k, true);
    }
    this.entries.put(next.recordingId, next);
    return next;
  }
}
