import { open, type FileHandle } from 'node:fs/promises';
import { RecordingError } from '../errors.js';
import { WAV_HEADER_BYTES, wavHeader } from './wavFormat.js';

const FLUSH_BYTES = 16 * 1024;

/**
 * Streams 16-bit PCM to a WAV file as the call runs. Memory is one pending
 * buffer; writes go out in order at explicit offsets, and the header's sizes
 * are patched on close (RIFF, or RF64 past 4 GiB).
 */
export class WavWriter {
  private pending: Buffer;
  private pendingBytes = 0;
  private flushedBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    readonly file: string,
    readonly channels: number,
    private readonly fh: FileHandle,
  ) {
    this.pending = Buffer.allocUnsafe(FLUSH_BYTES + 4096);
  }

  /** Create the file (never overwriting one) with a provisional header. */
  static async create(file: string, channels: number): Promise<WavWriter> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'wx', 0o640);
      await fh.write(wavHeader(channels, 0), 0, WAV_HEADER_BYTES, 0);
    } catch (err) {
      throw new RecordingError('WAV_CREATE', `cannot create ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
    return new WavWriter(file, channels, fh);
  }

  /** Bytes of audio accepted so far (written or pending). */
  get dataBytes(): number {
    return this.flushedBytes + this.pendingBytes;
  }

  /** Append `frames` interleaved frames from `samples`. */
  write(samples: Int16Array, frames: number): void {
    if (this.closed) throw new RecordingError('WAV_CLOSED', `write after close: ${this.file}`, { file: this.file });
    if (this.failure) throw this.failure;
    const bytes = frames * this.channels * 2;
    if (this.pendingBytes + bytes > this.pending.length) this.flush();
    if (bytes > this.pending.length) this.pending = Buffer.allocUnsafe(bytes);
    const src = Buffer.from(samples.buffer, samples.byteOffset, bytes);
    src.copy(this.pending, this.pendingBytes);
    this.pendingBytes += bytes;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  /** Hand pending audio to the file system (in order, asynchronously). */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const buf = this.pending.subarray(0, this.pendingBytes);
    const position = WAV_HEADER_BYTES + this.flushedBytes;
    this.flushedBytes += this.pendingBytes;
    this.pending = Buffer.allocUnsafe(this.pending.length);
    this.pendingBytes = 0;
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await this.fh.write(buf, 0, buf.length, position);
      } catch (err) {
        this.failure = new RecordingError('WAV_WRITE', `write failed on ${this.file}: ${(err as Error).message}`, { file: this.file }, { cause: err });
      }
    });
  }

  /** Flush, patch the header with the final sizes, fsync and close. */
  async close(): Promise<{ dataBytes: number }> {
    if (this.closed) return { dataBytes: this.flushedBytes };
    this.flush();
    this.closed = true;
    await this.chain;
    try {
      if (this.failure) throw this.failure;
      await this.fh.write(wavHeader(this.channels, this.flushedBytes), 0, WAV_HEADER_BYTES, 0);
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
    return { dataBytes: this.flushedBytes };
  }
}
