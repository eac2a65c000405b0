import { RecordingError } from '../errors.js';
import type { AudioWriter, WriteGap } from './AudioWriterTypes.js';

/**
 * What both writers share: audio accepted in call order, I/O steps run one
 * after another, and the suspension a failed write starts — from then until
 * resume(), what cannot be written is recorded as a gap, never thrown.
 */
export abstract class StreamingWriter implements AudioWriter {
  /** Audio bytes accepted: the logical length of the audio, gaps included. */
  protected acceptedBytes = 0;
  protected closed = false;
  #chain: Promise<void> = Promise.resolve();
  #suspended: WriteGap | undefined;
  readonly #gaps: WriteGap[] = [];

  protected constructor(
    readonly file: string,
    readonly channels: number,
  ) {}

  abstract write(samples: Int16Array, frames: number): void;
  abstract close(): Promise<{ dataBytes: number; gaps: readonly WriteGap[] }>;

  get dataBytes(): number {
    return this.acceptedBytes;
  }

  get suspended(): WriteGap | undefined {
    return this.#suspended;
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
    return { dataBytes: this.acceptedBytes, gaps: this.#gaps };
  }
}
