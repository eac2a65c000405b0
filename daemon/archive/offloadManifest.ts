import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurably } from '../fsutil.js';

/**
 * `<recordingId>.offloaded.json`: written (durably) once every storage
 * target's copy was found whole and before any local file goes. It keeps
 * what the removed files were (names, sizes, the KEK of envelopes) and
 * where the copies are, so the recording stays accountable — a rebuilt
 * index, verify, retention — when only its metadata, checksum file and
 * signature are left here.
 */
export interface OffloadManifest {
  readonly recordingId: string;
  /** When the copies were checked and local removal began. */
  readonly at: string;
  readonly targets: readonly { readonly name: string; readonly copiedAt: string }[];
  /** Every sealed file with its size; `removed` names those no longer here. */
  readonly files: readonly { readonly name: string; readonly size: number }[];
  readonly removed: readonly string[];
  readonly kekId: string | null;
}

export function offloadManifestName(recordingId: string): string {
  return `${recordingId}.offloaded.json`;
}

export async function readOffloadManifest(dir: string, recordingId: string): Promise<OffloadManifest | null> {
  const text = await readFile(path.join(dir, offloadManifestName(recordingId)), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  return text === null ? null : (JSON.parse(text) as OffloadManifest);
}

export async function writeOffloadManifest(dir: string, m: OffloadManifest): Promise<void> {
  await writeFileDurably(path.join(dir, offloadManifestName(m.recordingId)), `${JSON.stringify(m, null, 2)}\n`, 0o640);
}
