import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { RecordingMetadata } from '../record/metadata.js';
import { recordingDir } from '../record/recordingId.js';

export type IndexState = 'recording' | 'finalizing' | 'sealed' | 'encrypted' | 'uploaded' | 'failed' | 'deleted';

/** One recording as the index knows it; the files on disk remain the evidence. */
export interface IndexEntry {
  readonly recordingId: string;
  readonly callId: string;
  readonly state: IndexState;
  /** The recording's directory relative to the data dir. */
  readonly dir: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly durationMs: number | null;
  readonly sealedAt: string | null;
  /** Why the recording is `failed`. */
  readonly error: string | null;
  readonly updatedAt: string;
}

export type IndexPatch = Partial<Omit<IndexEntry, 'recordingId' | 'callId' | 'dir' | 'startedAt' | 'updatedAt'>>;

/** The index entry a recording's metadata implies (at start, after crash recovery, on rebuild). */
export function entryFromMetadata(meta: RecordingMetadata, dataDir: string, state: IndexState): Omit<IndexEntry, 'updatedAt'> {
  return {
    recordingId: meta.recordingId,
    callId: meta.callId,
    state,
    dir: path.relative(dataDir, recordingDir(dataDir, meta.recordingId)),
    startedAt: meta.startedAt,
    endedAt: meta.endedAt,
    durationMs: meta.durationMs,
    sealedAt: null,
    error: null,
  };
}

function stateKey(state: IndexState, id: string): string {
  return `${state}/${id}`;
}

/**
 * The recording index in LMDB (`<dataDir>/index/index.mdb`): entries by
 * recording id plus a by-state index kept in the same transaction, so
 * "everything not yet sealed" is a range read, not a scan. Every write
 * resolves only once it is committed and flushed.
 */
export class RecordingIndex {
  private constructor(
    private readonly root: RootDatabase,
    private readonly entries: Database<IndexEntry, string>,
    private readonly byState: Database<true, string>,
  ) {}

  static open(dataDir: string): RecordingIndex {
    const dir = path.join(dataDir, 'index');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const root = open({ path: path.join(dir, 'index.mdb'), compression: false });
    return new RecordingIndex(root, root.openDB({ name: 'recordings' }), root.openDB({ name: 'recordings-by-state' }));
  }

  get(recordingId: string): IndexEntry | undefined {
    return this.entries.get(recordingId);
  }

  async put(entry: Omit<IndexEntry, 'updatedAt'>): Promise<IndexEntry> {
    const next: IndexEntry = { ...entry, updatedAt: new Date().toISOString() };
    await this.root.transaction(() => {
      const prev = this.entries.get(entry.recordingId);
      if (prev) this.byState.remove(stateKey(prev.state, prev.recordingId));
      this.entries.put(next.recordingId, next);
      this.byState.put(stateKey(next.state, next.recordingId), true);
    });
    return next;
  }

  async update(recordingId: string, patch: IndexPatch): Promise<IndexEntry> {
    const prev = this.entries.get(recordingId);
    if (!prev) throw new Error(`recording ${recordingId} is not in the index`);
    return this.put({ ...prev, ...patch });
  }

  /** Ids of the recordings in one state, in id (= start time) order. */
  idsInState(state: IndexState): string[] {
    const prefix = `${state}/`;
    return [...this.byState.getKeys({ start: prefix, end: `${state}0` })].map((k) => k.slice(prefix.length));
  }

  close(): Promise<void> {
    return this.root.close();
  }
}
