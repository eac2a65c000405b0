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
  /** Resolves with when the copy became complete (a time the target itself records, so a rebuild finds it again). */
  put(recording: SealedRecording): Promise<Date>;
  /** The time of a complete, verified copy, or undefined when there is none. */
  find(recording: SealedRecording): Promise<Date | undefined>;
  /** Remove the copy (retention); no error when there is none. */
  remove(recording: SealedRecording): Promise<void>;
}

/** Every configured target, by name. */
export function createTargets(storage: Readonly<Record<string, StorageTargetConfig>>, pool: WorkerPool): Map<string, StorageTarget> {
  return new Map(Object.entries(storage).map(([name, config]) => [name, createTarget(name, config, pool)]));
}

function createTarget(name: string, config: StorageTargetConfig, pool: WorkerPool): StorageTarget {
  switch (config.type) {
    case 'directory':
      return new DirectoryTarget(name, config.path, pool);
  }
}
