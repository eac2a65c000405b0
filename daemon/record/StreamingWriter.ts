import { RecordingError } from '../errors.js';
import type { AudioWriter, WriteGap } from './AudioWriterTypes.js';

/** The gap code of audio dropped because the disk fell behind (writes waiting past the backlog bound). */
export const STALLED = 'STALLED';

/** Where a write's audio goes in the file: bytes [fromByte, toByte) of the audio, and for an envelope its chunk. */
export interface WriteSpan {
  readonly fromByte: number;
  readonly toByte: number;
  readonly chunk?: number;
}

/**
 * What both writers share: audio accepted in call order, I/O steps run one
 * after another, and the suspension a failed write starts — from then until
 * resume(), what cannot be written is recorded as a gap, never thrown.
 *
 * Memory is bounded too: a disk that stalls (a hung NFS server, a dying
 * disk) leaves writes waiting; past `maxBacklogBytes` of them, new audio is
 * dropped as a STALLED gap instead of queued, until the backlog is down to
 * half the bound (so a slow disk gives a few long gaps, not many short ones).
 */
export abstract class StreamingWriter implements AudioWriter {
  /** Audio bytes accepted: the logical length of the audio, gaps included. */
  protected acceptedBytes = 0;
  protected closed = false;
  #chain: Promise<void> = Promise.resolve();
  #suspended: WriteGap | undefined;
  #stalled: WriteGap | undefined;
  #backlogBytes = 0;
  readonly #gaps: WriteGap[] = [];

  protected constructor(
    readonly file: string,
    readonly channels: number,
    private readonly maxBacklogBytes: number,
  ) {}

  abstract write(samples: Int16Array, frames: number): void;
  abstract close(): Promise<{ dataBytes: number; gaps: readonly WriteGap[] }>;

  get dataBytes(): number {
    return this.acceptedBytes;
  }

  get suspended(): WriteGap | undefined {
    return this.#suspended;
  }

  get stalled(): WriteGap | undefined {
    return this.#stalled;
  }

  get backlogBytes(): number {
    return this.#backlogBytes;
  }

  get gaps(): readonly WriteGap[] {
    return this.#gaps;
  }

  resume(): void {
    this.enqueue(() => {
      this.#suspended = undefined;
    });
  }

  /** Run `step` after every I/O step queued before it. */
  protected enqueue(step: () => void | Promise<void>): void {
    this.#chain = this.#chain.then(step);
  }

  /**
   * Queue the write of `bytes` (audio `span`), or drop it into a STALLED gap
   * while the backlog is over its bound. `mustWrite` (an envelope's final
   * chunk and lead) is always queued. Returns whether it was queued.
   */
  protected enqueueWrite(bytes: number, span: WriteSpan, write: () => Promise<void>, mustWrite = false): boolean {
    const limit = this.#stalled ? this.maxBacklogBytes / 2 : this.maxBacklogBytes;
    // One write is always let through, however large: the bound is on what waits behind it.
    if (!mustWrite && this.#backlogBytes > 0 && this.#backlogBytes + bytes > limit) {
      this.#stall(span);
      return false;
    }
    this.#stalled = undefined;
    this.#backlogBytes += bytes;
    this.enqueue(async () => {
      try {
        await write();
      } finally {
        this.#backlogBytes -= bytes;
      }
    });
    return true;
  }

  #stall(span: WriteSpan): void {
    const gap = this.#stalled;
    const chunks = span.chunk === undefined ? undefined : ([span.chunk, span.chunk + 1] as [number, number]);
    if (gap) {
      gap.toByte = span.toByte;
      if (gap.chunks && chunks) gap.chunks[1] = chunks[1];
      return;
    }
    const open: WriteGap = {
      fromByte: span.fromByte,
      toByte: span.toByte,
      code: STALLED,
      message: `the disk fell behind: ${Math.round(this.#backlogBytes / 1024)} KiB were waiting to be written (recording.maxWriteBacklogKiB)`,
      ...(chunks ? { chunks } : {}),
    };
    this.#stalled = open;
    this.#gaps.push(open);
  }

  /** Resolves when every queued step has run (rejects if one that must succeed failed). */
  protected drain(): Promise<void> {
    return this.#chain;
  }

  protected assertOpen(): void {
    if (this.closed) throw new RecordingError('WAV_CLOSED', `write after close: ${this.file}`, { file: this.file });
  }

  /** A write failed: audio is a gap from here until resume(). */
  protected suspend(gap: WriteGap): void {
    this.#suspended = gap;
    this.#gaps.push(gap);
  }

  protected result(): { dataBytes: number; gaps: readonly WriteGap[] } {
    // Stalls are noted as audio is handed over, failures as writes return: in file order only once sorted.
    return { dataBytes: this.acceptedBytes, gaps: [...this.#gaps].sort((a, b) => a.fromByte - b.fromByte) };
  }
}
