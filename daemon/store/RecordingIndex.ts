import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { apply, expiresBySweep, legacyState, stageOfLegacy, type LifecycleEvent } from '../archive/lifecycle.js';
import { JobJournal, type JobChange, type JobKey } from '../archive/JobJournal.js';
import { newJob, type Job, type JobData, type KeyJob, type StagedConversion } from '../archive/JobTypes.js';
import type { IndexEntry, IndexPatch, LegacyState, NewIndexEntry } from '../archive/RecordingTypes.js';
import { StoreError } from '../errors.js';
import { checkLmdbFile } from './lmdbCheck.js';

const MAX_FAILURES_KEPT = 100;
/** The layout this version writes: 2 = lifecycle stages and the one job journal. */
const SCHEMA = 2;

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

interface Secondary {
  readonly db: Database<true, string>;
  readonly keys: (e: IndexEntry) => string[];
}

/** An entry as version 1 stored it: `state` instead of `stage`. */
type StoredEntry = IndexEntry | (Omit<IndexEntry, 'stage'> & { readonly state: LegacyState; readonly stage?: undefined });

/**
 * The recording index in LMDB (`<dataDir>/index/index.mdb`). Entries by
 * recording id — which sorts by start time, so the primary key is the time
 * index — plus secondary indexes by state, by phone number (either party,
 * normalised), by call id, by retention expiry and by KEK, all written in
 * the same transaction as the entry; and the job journal, written in the
 * transaction of the change that creates or ends a job. A stage changes only
 * by a lifecycle event (`commit`). Every write resolves only once committed
 * and flushed. Several processes (the daemon, CLI commands) may open it at once.
 */
export class RecordingIndex {
  readonly jobs: JobJournal;
  private readonly secondaries: Readonly<Record<'state' | 'number' | 'call' | 'expiry' | 'kek', Secondary>>;

  private constructor(
    private readonly root: RootDatabase,
    private readonly entries: Database<StoredEntry, string>,
    jobs: Database<Job, string>,
    private readonly keyJobs: Database<KeyJob, string>,
    private readonly meta: Database<number, string>,
  ) {
    const db = (name: string) => root.openDB<true, string>({ name });
    this.jobs = new JobJournal(jobs);
    this.secondaries = {
      // By the one-word state the API and `--state` use: what version 1 keyed it by, so its keys stay valid.
      state: { db: db('recordings-by-state'), keys: (e) => [pairKey(legacyState(e), e.recordingId)] },
      number: {
        db: db('recordings-by-number'),
        keys: (e) => [...new Set([e.caller.normalized, e.callee.normalized])].map((n) => pairKey(n, e.recordingId)),
      },
      call: { db: db('recordings-by-call'), keys: (e) => [pairKey(e.callId, e.recordingId)] },
      expiry: { db: db('recordings-by-expiry'), keys: (e) => (expiresBySweep(e) ? [pairKey(e.retainUntil as string, e.recordingId)] : []) },
      // Which recordings a KEK protects: what `keys status` counts and `keys revoke` walks.
      kek: { db: db('recordings-by-kek'), keys: (e) => (e.kekId && e.stage !== 'deleted' ? [pairKey(e.kekId, e.recordingId)] : []) },
    };
  }

  static open(dataDir: string): RecordingIndex {
    const dir = path.join(dataDir, 'index');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const file = path.join(dir, 'index.mdb');
    checkLmdbFile(
      file,
      'the recording index',
      'stop the daemon and run `callvault reindex`: it moves the damaged index aside and rebuilds it from the recordings on disk',
    );
    const root = open({ path: file, compression: false });
    const index = new RecordingIndex(
      root,
      root.openDB({ name: 'recordings' }),
      root.openDB({ name: 'jobs' }),
      root.openDB({ name: 'key-jobs' }),
      root.openDB({ name: 'meta' }),
    );
    index.migrate();
    return index;
  }

  get(recordingId: string): IndexEntry | undefined {
    const e = this.entries.get(recordingId);
    return e && current(e);
  }

  /** A new recording's entry (call start, crash recovery), with the jobs it starts with. */
  async create(entry: NewIndexEntry, jobs: readonly JobChange[] = []): Promise<IndexEntry> {
    return this.transact(() => {
      this.jobs.apply(jobs);
      return this.write(entry);
    });
  }

  /**
   * A lifecycle event and the journal changes it brings, in one transaction.
   * `event` null: only the jobs change (a retry's attempt count, say).
   * Rejects, changing nothing, with a LifecycleError for an event the
   * recording's stage cannot take.
   */
  async commit(
    recordingId: string,
    event: LifecycleEvent | null,
    jobs: readonly JobChange[] | ((next: IndexEntry | undefined) => readonly JobChange[]) = [],
  ): Promise<IndexEntry | undefined> {
    return this.transact(() => {
      // Only the jobs (event null): recorded even for a recording the index no longer has, so a job never spins.
      const next = event ? this.write(apply(withoutStamp(this.mustGet(recordingId)), event)) : this.entries.get(recordingId);
      // Jobs that depend on the entry as this transaction leaves it (two uploads finishing at once: only the last makes it archived).
      this.jobs.apply(typeof jobs === 'function' ? jobs(next && current(next)) : jobs);
      return next && current(next);
    });
  }

  /** The parties changed (a SIPREC metadata update); never the stage. */
  async update(recordingId: string, patch: IndexPatch): Promise<IndexEntry> {
    return this.transact(() => this.write({ ...withoutStamp(this.mustGet(recordingId)), ...patch }));
  }

  /** Many entries and their jobs in one transaction (rebuilds, benchmarks). */
  async putMany(entries: readonly NewIndexEntry[], jobs: readonly JobChange[] = []): Promise<void> {
    await this.transact(() => {
      for (const e of entries) this.write(e);
      this.jobs.apply(jobs);
    });
  }

  /**
   * Take a job for `owner` until `leaseMs` from now, unless another process
   * holds an unexpired claim; the job as claimed, or undefined (gone or held).
   */
  async claim(key: JobKey, owner: string, leaseMs: number): Promise<Job | undefined> {
    return this.transact(() => {
      const job = this.jobs.get(key);
      if (!job) return undefined;
      const now = Date.now();
      if (job.claim && job.claim.owner !== owner && job.claim.until > now && ownerAlive(job.claim.owner)) return undefined;
      const claimed = { ...job, claim: { owner, until: now + leaseMs } } as Job;
      this.jobs.apply([{ put: claimed }]);
      return claimed;
    });
  }

  /** A deletion journaled before any file goes; refused for a recording on hold. */
  async beginDeletion(recordingId: string, data: JobData['delete']): Promise<Job<'delete'>> {
    return this.transact(() => {
      const e = this.mustGet(recordingId);
      if (e.hold) throw new StoreError('ON_HOLD', `recording ${recordingId} is on legal hold (${e.hold.reason})`, { recordingId });
      const existing = this.jobs.find('delete', recordingId);
      if (existing) return existing as Job<'delete'>;
      const job = newJob('delete', recordingId, '', data);
      this.jobs.apply([{ put: job }]);
      return job;
    });
  }

  /** Ids of the recordings in one state (as the API names states), in id (= start time) order. */
  idsInState(state: LegacyState): string[] {
    return [...this.idsWith('state', state)];
  }

  /** Ids with one value in a secondary index, in start order, optionally within an id range [from, to). */
  *idsWith(
    index: 'state' | 'number' | 'call' | 'kek',
    value: string,
    range: { from?: string | undefined; to?: string | undefined } = {},
  ): Generator<string> {
    const start = pairKey(value, range.from ?? '');
    const end = pairKey(value, range.to ?? AFTER);
    for (const key of this.secondaries[index].db.getKeys({ start, end })) yield idOfPairKey(key);
  }

  /** All entries in start order, optionally within an id range [from, to). */
  *entriesByTime(range: { from?: string | undefined; to?: string | undefined } = {}): Generator<IndexEntry> {
    for (const { value } of this.entries.getRange({ start: range.from ?? '', end: range.to ?? AFTER })) yield current(value);
  }

  /** Recordings whose retention ended before `now` and are not on hold, oldest expiry first. */
  *expiredIds(now: Date): Generator<string> {
    for (const key of this.secondaries.expiry.db.getKeys({ start: '', end: pairKey(now.toISOString(), '') })) yield idOfPairKey(key);
  }

  count(): number {
    return this.entries.getCount();
  }

  /** Journal a key job and a conversion job for every recording it takes on, in one transaction. */
  async startKeyJob(job: KeyJob, ids: readonly string[]): Promise<void> {
    await this.transact(() => {
      this.keyJobs.put(job.id, job);
      this.jobs.apply(ids.map((recordingId) => ({ put: newJob('convert', recordingId, job.id, { staged: null }) })));
    });
  }

  keyJobList(): KeyJob[] {
    return [...this.keyJobs.getRange()].map(({ value }) => value);
  }

  keyJob(id: string): KeyJob | undefined {
    return this.keyJobs.get(id);
  }

  /** A conversion's new files are staged (fsynced, checked): from now on it rolls forward. */
  async stageConversion(job: Job<'convert'>, staged: StagedConversion): Promise<Job<'convert'>> {
    const next: Job<'convert'> = { ...job, data: { staged } };
    await this.transact(() => this.jobs.apply([{ put: next }]));
    return next;
  }

  /**
   * A recording converted (its files renamed into place): the entry takes
   * the new files and KEK, the job goes and its key job counts it, in one
   * transaction; or, with an error, the recording is left as it was and
   * counted as failed.
   */
  async finishConversion(job: Job<'convert'>, outcome: { files: readonly string[]; kekId: string | null } | { error: string }): Promise<KeyJob> {
    return this.transact(() => {
      const keyJob = this.keyJobs.get(job.lane);
      if (!keyJob) throw new StoreError('NO_SUCH_JOB', `no key job ${job.lane}`, { keyJobId: job.lane });
      this.jobs.apply([{ remove: job }]);
      let next: KeyJob;
      if ('error' in outcome) {
        next = {
          ...keyJob,
          failed: keyJob.failed + 1,
          failures: [...keyJob.failures, { recordingId: job.recordingId, error: outcome.error }].slice(-MAX_FAILURES_KEPT),
        };
      } else {
        const prev = this.entries.get(job.recordingId);
        if (prev) this.write(apply(withoutStamp(current(prev)), { type: 'converted', files: outcome.files, kekId: outcome.kekId }));
        next = { ...keyJob, done: keyJob.done + 1 };
      }
      this.keyJobs.put(keyJob.id, next);
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
    if (!prev) throw new StoreError('NO_SUCH_RECORDING', `recording ${recordingId} is not in the index`, { recordingId });
    return current(prev);
  }

  /** Inside a transaction: the entry and every secondary key, old ones removed. */
  private write(entry: NewIndexEntry): IndexEntry {
    const next: IndexEntry = { ...entry, updatedAt: new Date().toISOString() };
    const stored = this.entries.get(entry.recordingId);
    const prev = stored && current(stored);
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

  /**
   * Version 1 (callvault before the archive pipeline): entries with a
   * `state`, and three journals of their own. Entries get their stage; the
   * upload, deletion and key-job journals become jobs; and what version 1
   * sealed by scanning at every start (closed and failed recordings) gets
   * its seal job. One transaction: a crash leaves version 1 as it was.
   */
  private migrate(): void {
    if ((this.meta.get('schema') ?? 1) >= SCHEMA) return;
    const old = {
      uploads: this.root.openDB<{ recordingId: string; target: string; attempts: number; notBefore: number }, string>({ name: 'upload-jobs' }),
      deletions: this.root.openDB<{ recordingId: string; reason: string; actor: string; startedAt: string }, string>({ name: 'deletion-jobs' }),
      conversions: this.root.openDB<{ recordingId: string; staged: StagedConversion | null }, string>({ name: 'key-job-items' }),
    };
    this.root.transactionSync(() => {
      if ((this.meta.get('schema') ?? 1) >= SCHEMA) return;
      for (const { value } of this.entries.getRange()) {
        const e = current(value);
        if (value.stage === undefined) this.entries.put(e.recordingId, e);
        if (e.stage === 'closed' || e.stage === 'failed')
          this.jobs.apply([{ put: { ...newJob('seal', e.recordingId, '', null), parked: e.stage === 'failed' } }]);
      }
      for (const { value: u } of old.uploads.getRange())
        this.jobs.apply([{ put: { ...newJob('upload', u.recordingId, u.target, null), attempts: u.attempts } }]);
      for (const { value: d } of old.deletions.getRange())
        this.jobs.apply([{ put: newJob('delete', d.recordingId, '', { reason: d.reason, actor: d.actor, startedAt: d.startedAt }) }]);
      for (const { key, value: c } of old.conversions.getRange())
        this.jobs.apply([{ put: newJob('convert', c.recordingId, String(key).split(SEP)[0]!, { staged: c.staged }) }]);
      for (const db of Object.values(old)) for (const { key } of db.getRange()) db.remove(key);
      this.meta.put('schema', SCHEMA);
    });
  }
}

/**
 * Whether the process behind a claim (`<host>:<pid>`) may still be working:
 * one on this host that no longer exists, or is a zombie nobody reaped yet
 * (a command killed mid-job), is not, so its claim need not run out first.
 * Another host's is taken on trust.
 */
function ownerAlive(owner: string): boolean {
  const at = owner.lastIndexOf(':');
  const [host, pid] = [owner.slice(0, at), Number(owner.slice(at + 1))];
  if (host !== os.hostname() || !Number.isInteger(pid) || pid <= 0) return true;
  try {
    // Field 3 of /proc/<pid>/stat, after the parenthesised command name: the process state.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    return true;
  }
}

/** An entry in this version's shape (version 1's `state` read as its stage). */
function current(e: StoredEntry): IndexEntry {
  if (e.stage !== undefined) return e as IndexEntry;
  const { state, stage: _, ...rest } = e as Omit<IndexEntry, 'stage'> & { state: LegacyState; stage?: undefined };
  return { ...rest, stage: stageOfLegacy(state) };
}

function withoutStamp(e: IndexEntry): NewIndexEntry {
  const { updatedAt: _, ...rest } = e;
  return rest;
}
