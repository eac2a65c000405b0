import { open, type FileHandle } from 'node:fs/promises';
import { RecordingError } from '../errors.js';
import { ChunkCipher, newEnvelope, STREAM_CHUNK_SIZE, TAG_BYTES, type EnvelopeHeader, type WrappingKey } from '../seal/envelope.js';
import type { WriteGap } from './AudioWriterTypes.js';
import { StreamingWriter } from './StreamingWriter.js';
import { WAV_HEADER_BYTES, wavHeader } from './wavFormat.js';

/**
 * Streams a call's audio straight into an envelope (version 2,
 * docs/envelope.md) for a profile that encrypts: no plaintext file ever
 * exists. The data key is made and wrapped under the KEK when the call
 * starts; the key bytes are wiped at once and live on only inside the
 * cipher. Audio fills one chunk in memory (STREAM_CHUNK_SIZE, about a
 * second); each full chunk is sealed under its own index and written at its
 * place. Chunk 0, the WAV header, whose sizes are known only at the end, is
 * sealed once on close — no index is ever used twice, so no GCM nonce is.
 *
 * A failed write suspends the writer like WavWriter's: the chunks that could
 * not be written are a gap (listed in the metadata, read back as silence),
 * and writing resumes at the next chunk's place.
 */
export class EnvelopeWriter extends StreamingWriter {
  readonly #chunk = Buffer.allocUnsafe(STREAM_CHUNK_SIZE);
  #chunkBytes = 0;
  /** Index of the chunk being filled (audio starts at 1). */
  #next = 1;
  readonly #audioStart: number;

  private constructor(
    file: string,
    channels: number,
    maxBacklogBytes: number,
    private readonly fh: FileHandle,
    private readonly header: EnvelopeHeader,
    private readonly cipher: ChunkCipher,
  ) {
    super(file, channels, maxBacklogBytes);
    this.#audioStart = header.bytes.length + header.leadBytes + TAG_BYTES;
  }

  /** Create the envelope (never over an existing file) with its header; the lead's place stays empty until close. */
  static async create(file: string, channels: number, kek: WrappingKey, maxBacklogBytes: number): Promise<EnvelopeWriter> {
    const { dek, header } = newEnvelope(kek, STREAM_CHUNK_SIZE, WAV_HEADER_BYTES);
    let cipher: ChunkCipher;
    try {
      cipher = new ChunkCipher(dek, header);
    } finally {
      dek.fill(0);
    }
    let fh: FileHandle;
    try {
      // Read and write: close reads the lead and final chunk back to check them.
      fh = await open(file, 'wx+', 0o640);
      await fh.write(header.bytes, 0, header.bytes.length, 0);
    } catch (err) {
      throw new RecordingError('WAV_CREATE', `cannot create ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
    return new EnvelopeWriter(file, channels, maxBacklogBytes, fh, header, cipher);
  }

  write(samples: Int16Array, frames: number): void {
    this.assertOpen();
    const src = Buffer.from(samples.buffer, samples.byteOffset, frames * this.channels * 2);
    for (let o = 0; o < src.length; ) {
      const n = src.copy(this.#chunk, this.#chunkBytes, o, Math.min(src.length, o + STREAM_CHUNK_SIZE - this.#chunkBytes));
      this.#chunkBytes += n;
      this.acceptedBytes += n;
      o += n;
      if (this.#chunkBytes === STREAM_CHUNK_SIZE) this.#seal(this.#next++, false, this.#chunk);
    }
  }

  /** Seal the last (partial, maybe empty) chunk as final, then the WAV header as chunk 0; fsync; check both read back. */
  async close(): Promise<{ dataBytes: number; gaps: readonly WriteGap[] }> {
    if (this.closed) return this.result();
    this.closed = true;
    const finalIndex = this.#next++;
    // The final chunk before the lead: a crash between them leaves a lead that was never written, which recovery expects.
    const final = this.#seal(finalIndex, true, this.#chunk, true);
    const lead = this.#seal(0, false, wavHeader(this.channels, this.acceptedBytes).subarray(0, this.header.leadBytes), true);
    try {
      await this.drain();
      await this.fh.sync();
      await this.#readBack(0, false, this.header.bytes.length, lead.length);
      await this.#readBack(finalIndex, true, this.#offset(finalIndex), final.length);
    } catch (err) {
      throw new RecordingError('WAV_CLOSE', `cannot finish ${this.file}: ${(err as Error).message}`, { file: this.file }, { cause: err });
    } finally {
      await this.fh.close();
    }
    return this.result();
  }

  #offset(index: number): number {
    return index === 0 ? this.header.bytes.length : this.#audioStart + (index - 1) * (STREAM_CHUNK_SIZE + TAG_BYTES);
  }

  /** Encrypt one chunk from `plain` (its first #chunkBytes bytes for audio) and queue its write; returns the sealed chunk. */
  #seal(index: number, final: boolean, plain: Buffer, mustWrite = false): Buffer {
    const text = index === 0 ? plain : plain.subarray(0, this.#chunkBytes);
    const c = this.cipher.encryptor(index, final);
    const sealed = Buffer.concat([c.update(text), c.final(), c.getAuthTag()]);
    if (index !== 0) this.#chunkBytes = 0;
    const at = this.#offset(index);
    const span = { fromByte: Math.max(0, index - 1) * STREAM_CHUNK_SIZE, toByte: index * STREAM_CHUNK_SIZE, chunk: index };
    this.enqueueWrite(sealed.length, span, () => this.#writeAt(sealed, at, index, mustWrite), mustWrite);
    return sealed;
  }

  async #writeAt(sealed: Buffer, at: number, index: number, mustWrite: boolean): Promise<void> {
    const gap = this.suspended;
    if (gap && !mustWrite) {
      gap.chunks![1] = index + 1;
      gap.toByte = index * STREAM_CHUNK_SIZE;
      return;
    }
    let done = 0;
    try {
      while (done < sealed.length) {
        const { bytesWritten } = await this.fh.write(sealed, done, sealed.length - done, at + done);
        if (bytesWritten === 0) throw Object.assign(new Error('no bytes written'), { code: 'EIO' });
        done += bytesWritten;
      }
    } catch (err) {
      // The end of the file (final chunk, lead) must be written: close fails instead.
      if (mustWrite) throw err;
      const e = err as NodeJS.ErrnoException;
      const open: WriteGap = {
        fromByte: (index - 1) * STREAM_CHUNK_SIZE,
        toByte: index * STREAM_CHUNK_SIZE,
        code: e.code ?? 'EIO',
        message: e.message,
        chunks: [index, index + 1],
      };
      this.suspend(open);
    }
  }

  async #readBack(index: number, final: boolean, at: number, length: number): Promise<void> {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.fh.read(buf, 0, length, at);
    this.cipher.open(index, final, buf.subarray(0, bytesRead));
  }
}
