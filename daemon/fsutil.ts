import { open, rename } from 'node:fs/promises';
import path from 'node:path';

/**
 * Write-to-temp, fsync, rename, fsync the directory: a reader (or a restart
 * after power loss) sees the old file or the new one, never half of one. The
 * mode is set when the temp file is created, so a secret is never readable by others.
 */
export async function writeFileDurably(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await syncDir(path.dirname(file));
}

/** Make a rename or create in `dir` survive power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
