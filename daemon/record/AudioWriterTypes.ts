/** A stretch of a file whose audio could not be written (it reads as silence). */
export interface WriteGap {
  readonly fromByte: number;
  /** Exclusive; the end of the file while the gap is still open. */
  toByte: number;
  /** errno code of the write that failed (ENOSPC, EIO, …). */
  readonly code: string;
  readonly message: string;
  /** An envelope written as the call runs: the chunks [from, to) left unwritten. */
  chunks?: [number, number];
}

/**
 * Where a recording's audio goes as the call runs: a WAV file, or for a
 * profile that encrypts, an envelope (never a plaintext file). Writes never
 * throw for I/O: a failed write suspends the writer, the audio keeps its
 * place on the call clock, and what is lost is a gap.
 */
export interface AudioWriter {
  readonly file: string;
  readonly channels: number;
  /** Bytes of audio accepted so far (written, pending, or lost in a gap). */
  readonly dataBytes: number;
  /** The open gap while writes fail, else undefined. */
  readonly suspended: WriteGap | undefined;
  /** The open STALLED gap while the disk is too far behind (writes waiting past the backlog bound), else undefined. */
  readonly stalled: WriteGap | undefined;
  /** Bytes handed to the file system and not yet written. */
  readonly backlogBytes: number;
  /** Every gap so far. */
  readonly gaps: readonly WriteGap[];
  /** Append `frames` interleaved frames from `samples`. */
  write(samples: Int16Array, frames: number): void;
  /** Try writing again (after the disk has room, or the error has passed). */
  resume(): void;
  /** Write what is pending, finish the file, fsync and close it. */
  close(): Promise<{ dataBytes: number; gaps: readonly WriteGap[] }>;
}
