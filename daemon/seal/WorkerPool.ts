import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { HashFileResult, HashFileTask } from '../../workers/hashFile.js';
import type { SignTask } from '../../workers/sign.js';

/** Task modules by kind; each is a default-exported pure function in workers/. */
const TASKS = {
  hashFile: new URL('../../workers/hashFile.js', import.meta.url).href,
  sign: new URL('../../workers/sign.js', import.meta.url).href,
} as const;

export type TaskKind = keyof typeof TASKS;

/**
 * The Piscina pool that does the CPU-heavy part of sealing off the main
 * thread, so hashing a 10-hour call never delays a packet of a live one.
 */
export class WorkerPool {
  private readonly pool: Piscina;

  constructor(threads: number | 'auto') {
    const n = threads === 'auto' ? availableParallelism() : threads;
    this.pool = new Piscina({ minThreads: n, maxThreads: n, idleTimeout: 60_000 });
  }

  get threads(): number {
    return this.pool.maxThreads;
  }

  /** Tasks waiting for a free thread. */
  get queueSize(): number {
    return this.pool.queueSize;
  }

  hashFile(path: string): Promise<HashFileResult> {
    const task: HashFileTask = { path };
    return this.pool.run(task, { filename: TASKS.hashFile });
  }

  sign(data: Uint8Array, key: KeyObject): Promise<Uint8Array> {
    const task: SignTask = { data, key };
    return this.pool.run(task, { filename: TASKS.sign });
  }

  /** Let queued tasks finish, then stop the threads. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
