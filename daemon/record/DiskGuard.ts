import { open, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';

/** One minute of 8 kHz 16-bit stereo: the room each running call is given before new calls are refused. */
export const HEADROOM_PER_CALL_BYTES = 60 * 8000 * 2 * 2;
const MB = 1024 * 1024;
const CHUNK = Buffer.alloc(MB);

/**
 * Free space in the data dir, as the recorder must see it: new calls are
 * admitted only while `minFreeDiskMB` plus a minute of audio for every
 * running call is free, so running calls have room. A small reserve file is
 * kept as ballast and released at the first ENOSPC, so recordings that hit a
 * full disk can still close their files, write metadata and be sealed.
 */
export class DiskGuard {
  #free = Number.POSITIVE_INFINITY;
  #reserved = false;

  constructor(
    private readonly dataDir: string,
    private minFreeBytes: number,
    readonly reserveBytes: number,
  ) {}

  get reserveFile(): string {
    return path.join(this.dataDir, 'space-reserve');
  }

  /** Free bytes at the last sample. */
  get free(): number {
    return this.#free;
  }

  get reserved(): boolean {
    return this.#reserved;
  }

  setMinFree(bytes: number): void {
    this.minFreeBytes = bytes;
  }

  /** What a new call needs free, with `running` calls under way. */
  needed(running: number): number {
    return this.minFreeBytes + running * HEADROOM_PER_CALL_BYTES;
  }

  /** Bytes left before new calls are refused (negative: they are). */
  headroom(running: number): number {
    return this.#free - this.needed(running);
  }

  /**
   * Room enough for suspended writers to go on: the minimum (at least 1 MB)
   * plus, while the reserve is released, room to make it again — so they
   * never write into the space freed for closing and sealing.
   */
  get roomToResume(): boolean {
    return this.#free >= Math.max(this.minFreeBytes, MB) + (this.#reserved ? 0 : this.reserveBytes);
  }

  async sample(): Promise<number> {
    const fs = await statfs(this.dataDir);
    this.#free = fs.bavail * fs.bsize;
    return this.#free;
  }

  /** Create the reserve file when it is missing and there is room for it beyond the minimum. */
  async keepReserve(): Promise<void> {
    if (this.#reserved || this.reserveBytes === 0) return;
    if ((await this.sample()) < this.minFreeBytes + 2 * this.reserveBytes) return;
    const fh = await open(this.reserveFile, 'w', 0o600);
    try {
      for (let done = 0; done < this.reserveBytes; done += MB) await fh.write(CHUNK, 0, Math.min(MB, this.reserveBytes - done));
      await fh.sync();
      this.#reserved = true;
    } catch {
      await unlink(this.reserveFile).catch(() => undefined);
    } finally {
      await fh.close();
    }
  }

  /** Free the reserve (a write hit ENOSPC). Returns whether there was one. */
  async release(): Promise<boolean> {
    if (!this.#reserved) return false;
    this.#reserved = false;
    await unlink(this.reserveFile).catch(() => undefined);
    await this.sample();
    return true;
  }
}
