import type { StorageTargetConfig } from '../config/Config.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import { DirectoryTarget } from './DirectoryTarget.js';

/** A sealed recording as handed to a target: where it is and what it consists of. */
export interface SealedRecording {
  readonly recordingId: string;
  /** Absolute local directory. */
  readonly dir: string;
  /** Directory relative to the data dir; targets mirror it. */
  readonly relDir: string;
}

/**
 * Somewhere sealed recordings are archived. `put` must be idempotent (a retry
 * after a crash finds its earlier copy and checks it) and must not resolve
 * before the copy is durable and proven equal to the sealed checksums.
 */
export interface StorageTarget {
  readonly name: string;
  put(recording: SealedRecording): Promise<void>;
}

export function createTarget(name: string, config: StorageTargetConfig, pool: WorkerPool): StorageTarget {
  switch (config.type) {
    case 'directory':
      return new DirectoryTarget(name, config.path, pool);
  }
}
