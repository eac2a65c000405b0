import { open, type FileHandle } from 'node:fs/promises';
import { RecordingError } from '../errors.js';
import type { WriteGap } from './AudioWriterTypes.js';
import { StreamingWriter } from './StreamingWriter.js';
import { WAV_HEADER_BYTES, wavHeader } from './wavFormat.js';

/** A quarter second of stereo: memory per call is this, the disk sees writes of this size. */
const PENDING_BYTES = 8 * 1024;
/**
 * Written buffers kept for reuse by every writer of the process: at 500 calls a fresh buffer per flush
 * was 28 MB/s of garbage outside the JS heap, and two spares per writer were 28 KB a file at rest.
 * Only the writes in flight at once need one, a few dozen on a busy disk.
 */
const POOL_MAX = 64;
const pool: Buffer[] = [];

/**
 * Each buffer has its own memory: Buffer.allocUnsafe would cut it from Node's shared 64 KB slabs, which
 * the packets' short-lived buffers come from too, so one long-lived pending buffer kept a whole slab
 * alive (30 KB a writer at 500 calls, measured in a heap snapshot).
 */
function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(PENDING_BYTES);
}

function giveBack(buf: Buffer): void {
  if (buf.length === PENDING_BYTES && pool.length < POOL_MAX) pool.push(buf);
}

/**
 * Streams 16-bit PCM to a WAV file as the call runs. Memory is one pending
 * buffer; writes go out in order at explicit offsets, and the header's sizes
 * are patched on close (RIFF, or RF64 past 4 GiB).
 *
 * A failed write (a full disk, an I/O error) suspends the writer instead of
 * failing the call: audio keeps its place on the call clock, what cannot be
 * written is dropped and recorded as a gap, and after resume() writing goes
 * on at the right offset — the gap stays a hole that reads as silence, so the
 * file's length still matches the call.
 */
export class WavWriter extends StreamingWriter {
  #pending: Buffer;
  #pendingBytes = 0;

  private constructor(
    file: string,
    channels: number,
    maxBacklogBytes: number,
    private readonly fh: FileHandle,
  ) {
    super(file, channels, maxBacklogBytes);
    this.#pending = takeBuffer();
  }

  /** Create the file (never overwriting one) with a provisional header. */
  static async create(file: string, channels: number, maxBacklogBytes: number): Promise<WavWriter> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'wx', 0o640);
      await fh.write(wavHeader(channels, 0), 0, WAV_HEADER_BYTES, 0);
    } catch (err) {
      throw new RecordingError('WAV_CREATE', `cannot create ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
    return new WavWriter(file, channels, maxBacklogBytes, fh);
  }

  /** Append `frames` interleaved frames from `samples`; the pending buffer goes to the disk each time it fills. */
  write(samples: Int16Array, frames: number): void {
    this.assertOpen();
    const src = Buffer.from(samples.buffer, samples.byteOffset, frames * this.channels * 2);
    for (let done = 0; done < src.length; ) {
      const n = src.copy(this.#pending, this.#pendingBytes, done);
      done += n;
      this.#pendingBytes += n;
      this.acceptedBytes += n;
      if (this.#pendingBytes === this.#pending.length) this.flush();
    }
  }

  /** Hand pending audio to the file system (in order, asynchronously). */
  flush(): void {
    if (this.#pendingBytes === 0) return;
    const buf = this.#pending.subarray(0, this.#pendingBytes);
    const end = this.acceptedBytes;
    const start = end - this.#pendingBytes;
    const whole = this.#pending;
    this.#pending = takeBuffer();
    this.#pendingBytes = 0;
    const write = async () => {
      try {
        await this.#writeAt(buf, start, end);
      } finally {
        giveBack(whole);
      }
    };
    if (!this.enqueueWrite(buf.length, { fromByte: start, toByte: end }, write)) giveBack(whole);
  }

  /** Flush, patch the header with the final sizes, fsync and close. The file is as long as all accepted audio. */
  async close(): Promise<{ dataBytes: number; gaps: readonly WriteGap[] }> {
    if (this.closed) return this.result();
    this.flush();
    this.closed = true;
    await this.drain();
    try {
      // Extending over a trailing gap allocates nothing (a hole), so this works on a full disk too.
      await this.fh.truncate(WAV_HEADER_BYTES + this.acceptedBytes);
      await this.fh.write(wavHeader(this.channels, this.acceptedBytes), 0, WAV_HEADER_BYTES, 0);
      await this.fh.sync();
    } catch (err) {
      throw new RecordingError('WAV_CLOSE', `cannot finish ${this.file}: ${(err as Error).message}`, { file: this.file }, { cause: err });
    } finally {
      giveBack(this.#pending);
      this.#pending = Buffer.alloc(0);
      await this.fh.close();
    }
    return this.result();
  }

  async #writeAt(buf: Buffer, start: number, end: number): Promise<void> {
    const gap = this.suspended;
    if (gap) {
      gap.toByte = end;
      return;
    }
    let done = 0;
    try {
      // A write may take only part (a disk filling up); the rest is retried until it fails outright.
      while (done < buf.length) {
        const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, WAV_HEADER_BYTES + start + done);
        if (bytesWritten === 0) throw Object.assign(new Error('no bytes written'), { code: 'EIO' });
        done += bytesWritten;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const open: WriteGap = { fromByte: start + done, toByte: end, code: e.code ?? 'EIO', message: e.message };
      this.suspend(open);
    }
  }
}
