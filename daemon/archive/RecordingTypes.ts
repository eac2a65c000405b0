import type { ChannelMode, Direction } from '../config/Config.js';
import type { G711Law } from '../media/g711.js';

/** Where a recording is in its life (see lifecycle.ts). */
export type Stage = 'recording' | 'closed' | 'sealed' | 'archived' | 'deleted' | 'failed';
export const STAGES: readonly Stage[] = ['recording', 'closed', 'sealed', 'archived', 'deleted', 'failed'];

/** The one-word state of earlier versions, still shown by the API and the CLI (legacyState). */
export type LegacyState = 'recording' | 'finalizing' | 'sealed' | 'encrypted' | 'uploaded' | 'failed' | 'deleted';
export const LEGACY_STATES: readonly LegacyState[] = ['recording', 'finalizing', 'sealed', 'encrypted', 'uploaded', 'failed', 'deleted'];

/** One recording as the index knows it; the files on disk remain the evidence. */
export interface IndexEntry {
  readonly recordingId: string;
  readonly callId: string;
  readonly profile: string;
  readonly direction: Direction;
  /** As the PBX sent them, and normalised (E.164 where the form allows) for search. */
  readonly caller: IndexedNumber;
  readonly callee: IndexedNumber;
  readonly codec: G711Law;
  readonly channelMode: ChannelMode;
  /** Changed only by lifecycle.apply. */
  readonly stage: Stage;
  /** The recording's directory relative to the data dir. */
  readonly dir: string;
  readonly files: readonly string[];
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly durationMs: number | null;
  readonly sealedAt: string | null;
  /** Key-encryption key protecting the files, when encrypted. */
  readonly kekId: string | null;
  /** Copies to the profile's storage targets, by target name. */
  readonly uploads: Readonly<Record<string, UploadStatus>>;
  /** When the retention sweeper may delete it (null: never by itself). */
  readonly retainUntil: string | null;
  readonly hold: LegalHold | null;
  readonly deletedAt: string | null;
  /** The profile wanted the local audio removed once every target holds a verified copy; when it was. Absent: kept. */
  readonly local?: LocalCopy;
  /** Why the recording is `failed`, or what the last failed attempt said. */
  readonly error: string | null;
  readonly updatedAt: string;
}

export interface LocalCopy {
  readonly removeAfterUpload: boolean;
  /** When the audio went (offloadManifest.ts); metadata, checksum file and signature stay. */
  readonly removedAt: string | null;
}

export interface IndexedNumber {
  readonly number: string;
  readonly normalized: string;
}

export interface LegalHold {
  readonly reason: string;
  readonly by: string;
  readonly at: string;
}

export type UploadStatus =
  | { readonly state: 'pending'; readonly attempts: number; readonly lastError: string | null }
  | { readonly state: 'done'; readonly doneAt: string };

export type NewIndexEntry = Omit<IndexEntry, 'updatedAt'>;

/** What may change about an entry outside the lifecycle: the parties (a SIPREC metadata update). */
export type IndexPatch = Partial<Pick<IndexEntry, 'caller' | 'callee'>>;
