import os from 'node:os';
import type { Logger, LogLevel } from '../log.js';
import { LocalPlane } from './LocalPlane.js';
import type { MediaPlane, PlaneSettings } from './MediaPlaneTypes.js';
import { ShardedPlane } from './ShardedPlane.js';

/** `media.shards: auto`: each shard's event loop and its workers' receiving keep about two cores busy at full load. */
export function shardCount(shards: number | 'auto', cpus: number = os.availableParallelism()): number {
  return shards === 'auto' ? Math.max(1, Math.floor(cpus / 2)) : shards;
}

/** The media plane `media.shards` asks for: in shards, or (0) on this thread. */
export async function openMediaPlane(settings: PlaneSettings, logLevel: LogLevel, log: Logger): Promise<MediaPlane> {
  const n = shardCount(settings.media.shards);
  const plane = n === 0 ? await LocalPlane.create(settings, log) : await ShardedPlane.create(n, settings, logLevel, log);
  log.info({ shards: n, workers: plane.workerPids.length }, n === 0 ? 'media on the daemon thread' : 'media shards ready');
  return plane;
}
