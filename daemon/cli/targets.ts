import type { Config } from '../config/Config.js';
import { WorkerPool } from '../seal/WorkerPool.js';
import { createTargets, type StorageTarget } from '../upload/StorageTarget.js';

/** The instance's storage targets for one command, with a one-thread pool for any hashing they do. */
export async function withTargets<T>(config: Config, body: (targets: ReadonlyMap<string, StorageTarget>) => Promise<T>): Promise<T> {
  const pool = new WorkerPool(1);
  try {
    return await body(createTargets(config.storage, pool, config.dataDir));
  } finally {
    await pool.close();
  }
}
