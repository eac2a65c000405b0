import { SafeEmitter } from '../events/SafeEmitter.js';
import type { Logger } from '../log.js';
import { backoffMs } from '../retry.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { jobKey } from './JobJournal.js';
import type { Job, JobStage } from './JobTypes.js';
import type { LifecycleEvent } from './lifecycle.js';

/** What a failed attempt means: try again later, leave it until the next start, or drop a job that can never run. */
export interface Failure {
  readonly action: 'retry' | 'park' | 'drop';
  /** What the index says of the recording meanwhile (committed with the job's new attempt count). */
  readonly event: LifecycleEvent | null;
  /** The errno-style code, for metrics (EMFILE, ENOSPC…), or null. */
  readonly code: string | null;
}

/**
 * One stage of the archive pipeline: seal, upload, delete or convert. `run`
 * does the work and commits its outcome — the job removed in the same
 * transaction as the lifecycle event it brings, and any jobs that follow
 * added there too. When it throws, `failed` says what that means.
 */
export interface StageHandler<S extends JobStage = JobStage> {
  readonly stage: S;
  /** Jobs at once per lane (an upload target, a key job). */
  readonly concurrency: number;
  /** A failure pauses the whole lane, not just the job: an upload target that is down is the mount, not the recording. */
  readonly laneBackoff?: boolean;
  /** What the log says when an attempt fails and will be retried, and when it fails for good. */
  readonly messages: { readonly retry: string; readonly failed: string };
  /** Whether a lane can be worked on now (an upload target no longer configured cannot). */
  ready?(lane: string): boolean;
  run(job: Job<S>): Promise<void>;
  failed(job: Job<S>, err: unknown): Failure;
}

export interface StageRunnerOptions {
  readonly index: RecordingIndex;
  readonly log: Logger;
  /** Who claims jobs (`<host>:<pid>`): another process leaves them alone while the claim holds. */
  readonly owner: string;
  /** Only these lanes of a stage (a key-job command works on its own job). */
  readonly lanes?: Partial<Record<JobStage, string>>;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** How long a claim holds without being renewed by the job finishing. */
  readonly leaseMs?: number;
  /** Attempts this runner makes at one job (a CLI command tries each once and reports); unlimited when absent. */
  readonly attemptsPerJob?: number;
}

export interface StageRunnerObserverEvents {
  /** A job finished: its stage, lane, recording and how long the attempt took. */
  done: [stage: JobStage, lane: string, recordingId: string, seconds: number];
  /** An attempt failed: what happens next, the errno code if any, and why. */
  failed: [stage: JobStage, lane: string, recordingId: string, action: Failure['action'], code: string | null, error: string];
}

const DEFAULT_BACKOFF = { baseMs: 1000, maxMs: 300_000 };
const DEFAULT_LEASE_MS = 10 * 60_000;

/** Jobs another process added or released (a CLI retry, a deletion journaled by `retention run`) are seen within this long. */
const RESCAN_MS = 5_000;

interface Lane {
  running: number;
}

/**
 * Drives every job of the journal through its stage's handler: at most
 * `concurrency` at once per lane, failures retried with exponential backoff
 * and jitter, a crash resumed from the journal (jobs parked by a permanent
 * failure are tried once more at start), shutdown drained. There is no other
 * queue: what is not in the journal is not work.
 */
export class StageRunner {
  /** For monitoring only: the pipeline never depends on who listens here. */
  readonly observer: SafeEmitter<StageRunnerObserverEvents>;
  readonly #handlers = new Map<JobStage, StageHandler>();
  readonly #lanes = new Map<string, Lane>();
  readonly #running = new Map<string, Promise<void>>();
  #scanQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Who waits for what: idle (nothing of ours left at all) or settled (nothing due now). */
  readonly #waiters = new Set<{ readonly done: () => boolean; readonly resolve: () => void }>();
  /** While draining: the only stages still started. */
  #only: ReadonlySet<JobStage> | null = null;
  /** Attempts this runner made, by job key (for attemptsPerJob). */
  readonly #tried = new Map<string, number>();

  constructor(private readonly opts: StageRunnerOptions) {
    this.observer = new SafeEmitter((err, event) => opts.log.error({ err, event }, 'an archive observer failed; the pipeline goes on'));
  }

  register<S extends JobStage>(handler: StageHandler<S>): this {
    this.#handlers.set(handler.stage, handler as unknown as StageHandler);
    return this;
  }

  /** Take up the journal: parked jobs of our stages get another try, then everything due runs. Resolves with the jobs found, by stage. */
  async start(): Promise<Map<JobStage, number>> {
    const { index } = this.opts;
    const pending = new Map<JobStage, number>();
    for (const stage of this.#handlers.keys()) {
      for (const job of this.#jobs(stage)) {
        pending.set(stage, (pending.get(stage) ?? 0) + 1);
        if (job.parked)
          await index
            .commit(job.recordingId, null, [{ put: { ...job, parked: false, notBefore: 0, claim: null } as Job }])
            .catch((err: unknown) => this.opts.log.warn({ err, recordingId: job.recordingId, stage }, 'cannot re-arm a parked job'));
      }
    }
    this.poke();
    return pending;
  }

  /** New work may be in the journal (a commit just enqueued it): look soon. */
  poke(): void {
    if (this.#closed || this.#scanQueued) return;
    this.#scanQueued = true;
    setImmediate(() => {
      this.#scanQueued = false;
      this.#scan();
    });
  }

  /** Resolves when nothing of ours is left to do, now or later (a CLI command's run to completion). */
  idle(): Promise<void> {
    return this.#until(() => this.#isIdle(false));
  }

  /**
   * Shutdown: first what is due now in the `finish` stages (the seals of the
   * calls just ended), then nothing more is started; resolves when what runs
   * has finished. Jobs left stay in the journal for the next start.
   */
  async drain(finish: readonly JobStage[] = []): Promise<void> {
    if (finish.length && !this.#closed) {
      this.#only = new Set(finish);
      this.poke();
      await this.#until(() => this.#isIdle(true));
    }
    this.#closed = true;
    clearTimeout(this.#timer);
    while (this.#running.size) await Promise.allSettled([...this.#running.values()]);
  }

  #until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.add({ done, resolve }));
  }

  #wake(): void {
    for (const w of [...this.#waiters]) {
      if (!w.done()) continue;
      this.#waiters.delete(w);
      w.resolve();
    }
  }

  #jobs(stage: JobStage): Job[] {
    const lane = this.opts.lanes?.[stage];
    return this.opts.index.jobs.list(stage, lane);
  }

  #lane(stage: JobStage, lane: string): Lane {
    const key = `${stage}\0${lane}`;
    let l = this.#lanes.get(key);
    if (!l) {
      l = { running: 0 };
      this.#lanes.set(key, l);
    }
    return l;
  }

  #scan(): void {
    if (this.#closed) return;
    const now = Date.now();
    let next = Infinity;
    for (const handler of this.#active()) {
      for (const job of this.#jobs(handler.stage)) {
        const key = jobKey(job);
        if (this.#running.has(key) || !this.#eligible(handler, job)) continue;
        const lane = this.#lane(job.stage, job.lane);
        if (job.notBefore > now) {
          next = Math.min(next, job.notBefore);
          continue;
        }
        if (lane.running >= handler.concurrency) continue;
        lane.running++;
        this.#tried.set(key, (this.#tried.get(key) ?? 0) + 1);
        const run = this.#attempt(handler, job).finally(() => {
          lane.running--;
          this.#running.delete(key);
          this.poke();
          this.#wake();
        });
        this.#running.set(key, run);
      }
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.poke(), Math.max(10, Math.min(next, now + RESCAN_MS) - now)).unref();
    this.#wake();
  }

  #active(): StageHandler[] {
    const only = this.#only;
    return [...this.#handlers.values()].filter((h) => !only || only.has(h.stage));
  }

  /** Whether this runner would work on the job (now or once it is due). */
  #eligible(handler: StageHandler, job: Job): boolean {
    if (job.parked || (handler.ready && !handler.ready(job.lane))) return false;
    const limit = this.opts.attemptsPerJob;
    return limit === undefined || (this.#tried.get(jobKey(job)) ?? 0) < limit;
  }

  /** Nothing running and nothing eligible left — or, `dueOnly`, nothing eligible due now. */
  #isIdle(dueOnly: boolean): boolean {
    if (this.#running.size) return false;
    const now = Date.now();
    for (const handler of this.#active()) {
      const pending = this.#jobs(handler.stage).some((job) => this.#eligible(handler, job) && (!dueOnly || job.notBefore <= now));
      if (pending) return false;
    }
    return true;
  }

  async #attempt(handler: StageHandler, queued: Job): Promise<void> {
    const { index, log } = this.opts;
    const job = await index.claim(queued, this.opts.owner, this.opts.leaseMs ?? DEFAULT_LEASE_MS).catch((err: unknown) => {
      log.warn({ err, recordingId: queued.recordingId, stage: queued.stage }, 'cannot claim a job');
      return undefined;
    });
    if (!job) return; // done meanwhile, or another process has it
    const t0 = performance.now();
    try {
      await handler.run(job);
      this.observer.safeEmit('done', job.stage, job.lane, job.recordingId, (performance.now() - t0) / 1000);
    } catch (err) {
      const failure = handler.failed(job, err);
      const attempts = job.attempts + 1;
      const { baseMs, maxMs } = this.opts.backoff ?? DEFAULT_BACKOFF;
      const retry = failure.action === 'retry';
      // A lane that backs off as a whole waits as long as its most-tried job says, every job of it alike — in the journal, where `uploads status` shows it and `uploads retry` lifts it.
      const laneJobs =
        retry && handler.laneBackoff
          ? index.jobs.list(job.stage, job.lane).filter((j) => jobKey(j) !== jobKey(job) && !this.#running.has(jobKey(j)))
          : [];
      const exponent = Math.max(attempts, ...laneJobs.map((j) => j.attempts)) - 1;
      const notBefore = retry ? Date.now() + backoffMs(exponent, baseMs, maxMs) : 0;
      const lastError = err instanceof Error ? err.message : String(err);
      const change =
        failure.action === 'drop'
          ? { remove: job }
          : { put: { ...job, attempts, notBefore, lastError, parked: failure.action === 'park', claim: null } as Job };
      const changes = [change, ...laneJobs.filter((j) => j.notBefore < notBefore).map((j) => ({ put: { ...j, notBefore } as Job }))];
      // The attempt count and backoff are recorded even when the event no longer fits the recording's stage.
      await index
        .commit(job.recordingId, failure.event, changes)
        .catch(() => index.commit(job.recordingId, null, changes))
        .catch((commitErr: unknown) => {
          log.error(
            { err: commitErr, recordingId: job.recordingId, stage: job.stage },
            'cannot record a failed attempt; the job is tried again when its claim expires',
          );
        });
      log[retry ? 'warn' : 'error'](
        {
          err,
          recordingId: job.recordingId,
          stage: job.stage,
          lane: job.lane || undefined,
          code: failure.code ?? undefined,
          attempt: attempts,
          action: failure.action,
          retryInMs: retry ? notBefore - Date.now() : undefined,
        },
        retry ? handler.messages.retry : handler.messages.failed,
      );
      this.observer.safeEmit('failed', job.stage, job.lane, job.recordingId, failure.action, failure.code, lastError);
    }
  }
}
