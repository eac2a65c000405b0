import { StoreError } from '../errors.js';
import { copyFile, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../fsutil.js';
import { checksumFileName, parseChecksums, signatureFileName } from '../seal/checksumFile.js';
import type { DirectoryTargetConfig } from '../config/Config.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import { expandTemplate } from './pathTemplate.js';
import { NOTHING_KEPT, sealedFileNames, type PutResult, type RemoveOutcome, type SealedRecording, type StorageTarget } from './StorageTarget.js';

const STAGING_SUFFIX = '.partial';

/** fsync a file; its size. */
async function fsyncFile(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/**
 * A mounted file system (NFS, SMB, a WORM volume) as a storage target. A copy
 * is assembled in `<id>.partial`, every file fsynced and re-hashed from the
 * target against the sealed checksum file, then renamed into place: the
 * target never shows a recording that is incomplete or differs from the seal.
 */
export class DirectoryTarget implements StorageTarget {
  constructor(
    readonly name: string,
    private readonly config: DirectoryTargetConfig,
    private readonly pool: WorkerPool,
  ) {}

  /** Where the recording goes: its template expanded under the target's directory. */
  #dest(rec: SealedRecording): string {
    return path.join(this.config.path, expandTemplate(this.config.template, rec.fields, this.config.timeZone, 'posix'));
  }

  async put(rec: SealedRecording): Promise<PutResult> {
    const dest = this.#dest(rec);
    const checksumName = checksumFileName(rec.recordingId);
    const sealedChecksums = await readFile(path.join(rec.dir, checksumName));
    if (await exists(dest)) {
      // An earlier attempt got as far as the rename: prove it rather than copy again.
      await this.check(dest, rec, sealedChecksums);
      return { completedAt: await this.completedAt(dest, rec), bytesSent: 0 };
    }
    const staging = dest + STAGING_SUFFIX;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true, mode: 0o750 });
    const names = sealedFileNames(rec.recordingId, sealedChecksums.toString('utf8'));
    let bytesSent = 0;
    for (const name of names) {
      await copyFile(path.join(rec.dir, name), path.join(staging, name));
      bytesSent += await fsyncFile(path.join(staging, name));
    }
    await syncDir(staging);
    await this.check(staging, rec, sealedChecksums);
    await rename(staging, dest);
    await syncDir(path.dirname(dest));
    return { completedAt: await this.completedAt(dest, rec), bytesSent };
  }

  async find(rec: SealedRecording): Promise<Date | undefined> {
    const dest = this.#dest(rec);
    if (!(await exists(dest))) return undefined;
    // The copy was hashed against the seal when it was made; here its seal files must match.
    const problems = await this.sealFilesDiffer(dest, rec);
    return problems.length ? undefined : this.completedAt(dest, rec);
  }

  async remove(rec: SealedRecording): Promise<RemoveOutcome> {
    const dest = this.#dest(rec);
    await rm(dest, { recursive: true, force: true });
    await rm(dest + STAGING_SUFFIX, { recursive: true, force: true });
    await syncDir(path.dirname(dest)).catch(() => undefined);
    return NOTHING_KEPT;
  }

  private async sealFilesDiffer(dir: string, rec: SealedRecording): Promise<string[]> {
    const problems: string[] = [];
    for (const name of [checksumFileName(rec.recordingId), signatureFileName(rec.recordingId)]) {
      const [here, there] = await Promise.all([readFile(path.join(rec.dir, name)), readFile(path.join(dir, name)).catch(() => undefined)]);
      if (!there || !here.equals(there)) problems.push(`${name} ${there ? 'differs' : 'missing'}`);
    }
    return problems;
  }

  /** The copy's signature file is written last: its mtime is when the copy was whole. */
  private async completedAt(dest: string, rec: SealedRecording): Promise<Date> {
    return (await stat(path.join(dest, signatureFileName(rec.recordingId)))).mtime;
  }

  /** Every file in `dir` hashes to what the local seal says, and the seal files are the same bytes. */
  private async check(dir: string, rec: SealedRecording, sealedChecksums: Buffer): Promise<void> {
    const problems = await this.sealFilesDiffer(dir, rec);
    const entries = parseChecksums(sealedChecksums.toString('utf8'));
    const hashes = await Promise.all(entries.map((e) => this.pool.hashFile(path.join(dir, e.name)).catch(() => undefined)));
    entries.forEach((e, i) => {
      const h = hashes[i];
      if (!h || h.sha256 !== e.sha256) problems.push(`${e.name} ${h ? 'differs' : 'missing'}`);
    });
    if (problems.length) throw new StoreError('COPY_MISMATCH', `copy in ${dir} does not match the seal: ${problems.join(', ')}`, { dir, problems });
  }
}
