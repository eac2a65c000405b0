import type { StorageTargetConfig } from '../config/Config.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { checksumFileName, parseChecksums, signatureFileName } from '../seal/checksumFile.js';
import { readOffloadManifest } from '../archive/offloadManifest.js';
import type { IndexEntry } from '../archive/RecordingTypes.js';
import { DirectoryTarget } from './DirectoryTarget.js';
import type { TemplateFields } from './pathTemplate.js';
import { OneDriveTarget } from './OneDriveTarget.js';
import { S3Target } from './S3Target.js';
import { SftpTarget } from './SftpTarget.js';
import { SmbTarget } from './SmbTarget.js';

/** A sealed recording as handed to a target: where it is locally, and what its path template is filled with. */
export interface SealedRecording {
  readonly recordingId: string;
  /** Absolute local directory. */
  readonly dir: string;
  readonly fields: TemplateFields;
  /** When its retention ends (an object lock's retain-until), or null: kept until deleted by hand. */
  readonly retainUntil: string | null;
  /** Under legal hold (`callvault hold`). */
  readonly legalHold: boolean;
}

/** What a copy took. */
export interface PutResult {
  /** When the copy became complete (a time the target itself records, so a rebuild finds it again). */
  readonly completedAt: Date;
  /** Bytes sent this time: 0 when an earlier attempt had made the copy already. */
  readonly bytesSent: number;
}

/** A file of a sealed recording and its size here. */
export interface SealedFile {
  readonly name: string;
  readonly size: number;
}

/** Every file a copy must hold: those the checksum file lists, then the checksum file and its signature, with their sizes here. */
export async function sealedFiles(rec: SealedRecording): Promise<SealedFile[]> {
  // Offloaded: the audio is gone from here, its sizes are in the manifest.
  const manifest = await readOffloadManifest(rec.dir, rec.recordingId);
  if (manifest) return [...manifest.files];
  const names = sealedFileNames(rec.recordingId, await readFile(path.join(rec.dir, checksumFileName(rec.recordingId)), 'utf8'));
  return Promise.all(names.map(async (name) => ({ name, size: (await stat(path.join(rec.dir, name))).size })));
}

/** The names of every file a copy must hold, from the recording's checksum file. */
export function sealedFileNames(recordingId: string, checksums: string): string[] {
  return [...parseChecksums(checksums).map((e) => e.name), checksumFileName(recordingId), signatureFileName(recordingId)];
}

/** What a target is handed for the recording an index entry describes. */
export function sealedRecording(
  dataDir: string,
  e: Pick<IndexEntry, 'recordingId' | 'dir' | 'startedAt' | 'profile' | 'direction' | 'caller' | 'callee' | 'retainUntil' | 'hold'>,
): SealedRecording {
  return {
    recordingId: e.recordingId,
    dir: path.join(dataDir, e.dir),
    fields: {
      recordingId: e.recordingId,
      startedAt: e.startedAt,
      profile: e.profile,
      direction: e.direction,
      caller: e.caller.number,
      callee: e.callee.number,
    },
    retainUntil: e.retainUntil,
    legalHold: e.hold !== null,
  };
}

/**
 * Somewhere sealed recordings are archived. `put` must be idempotent (a retry
 * after a crash finds its earlier copy and checks it) and must not resolve
 * before the copy is durable and proven equal to the sealed checksums.
 */
export interface StorageTarget {
  readonly name: string;
  put(recording: SealedRecording): Promise<PutResult>;
  /** The time of a complete, verified copy, or undefined when there is none. */
  find(recording: SealedRecording): Promise<Date | undefined>;
  /** Remove the copy (retention); no error when there is none. What a WORM lock keeps is reported, never forced. */
  remove(recording: SealedRecording): Promise<RemoveOutcome>;
  /** Targets with object locks: put the copy under legal hold, or release it. */
  setLegalHold?(recording: SealedRecording, on: boolean): Promise<void>;
}

/** What a removal could not delete: objects a lock (retention or legal hold) still protects. */
export interface RemoveOutcome {
  readonly kept: readonly { readonly object: string; readonly reason: string }[];
}

export const NOTHING_KEPT: RemoveOutcome = { kept: [] };

/** Every configured target, by name. */
export function createTargets(storage: Readonly<Record<string, StorageTargetConfig>>, pool: WorkerPool, dataDir: string): Map<string, StorageTarget> {
  return new Map(Object.entries(storage).map(([name, config]) => [name, createTarget(name, config, pool, dataDir)]));
}

function createTarget(name: string, config: StorageTargetConfig, pool: WorkerPool, dataDir: string): StorageTarget {
  switch (config.type) {
    case 'directory':
      return new DirectoryTarget(name, config, pool);
    case 'sftp':
      return new SftpTarget(name, config);
    case 'smb':
      return new SmbTarget(name, config);
    case 's3':
      return new S3Target(name, config);
    case 'onedrive':
      return new OneDriveTarget(name, config, dataDir);
  }
}
