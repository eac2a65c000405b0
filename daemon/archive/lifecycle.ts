import path from 'node:path';
import { LifecycleError } from '../errors.js';
import { recordingFileNames, type RecordingMetadata } from '../record/metadata.js';
import { retentionExpiry } from '../record/profiles.js';
import { recordingDir } from '../record/recordingId.js';
import { normalizeNumber } from '../store/numbers.js';
import type { IndexedNumber, IndexEntry, LegacyState, NewIndexEntry, Stage, UploadStatus } from './RecordingTypes.js';

/*
 * A recording's life after the call, in one place and without I/O:
 *
 *   recording → closed → sealed → archived → deleted
 *        ↘         ↘        ↘         ↘
 *                  failed (a seal may be tried again: failed → sealed)
 *
 * Encryption (kekId), the copies on each storage target (uploads), legal
 * hold and retention are attributes, not stages: a recording can be sealed,
 * encrypted and archived at once. Archived means a verified copy on every
 * storage target of its profile; one whose profile has none stays sealed. `apply` is the only way a stage changes;
 * the index, a rebuild from disk, the recorder's status, the CLI and the
 * API all read what it decided.
 */

export type LifecycleEvent =
  /** The files are closed and the metadata final (or crash recovery closed them). */
  | { readonly type: 'closed'; readonly endedAt: string | null; readonly durationMs: number | null }
  /** A seal attempt failed for a reason that can pass; it is tried again. */
  | { readonly type: 'seal-retrying'; readonly error: string }
  /** Checksums and signature are on disk; `targets` are the profile's storage targets, each owed a copy. */
  | {
      readonly type: 'sealed';
      readonly files: readonly string[];
      readonly kekId: string | null;
      readonly sealedAt: string;
      readonly targets: readonly string[];
      /** The profile removes the local audio once every target holds a verified copy. */
      readonly removeLocalAfterUpload?: boolean;
    }
  | { readonly type: 'upload-failed'; readonly target: string; readonly error: string }
  /** A verified copy is on `target` since `at`. */
  | { readonly type: 'uploaded'; readonly target: string; readonly at: string }
  /** Every target's copy was found whole and the local audio removed (metadata, checksum file, signature stay). */
  | { readonly type: 'offloaded'; readonly at: string }
  /** A key job replaced the stored files (encrypted, re-wrapped, re-encrypted or decrypted). */
  | { readonly type: 'converted'; readonly files: readonly string[]; readonly kekId: string | null }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'held'; readonly reason: string; readonly by: string; readonly at: string }
  | { readonly type: 'released' }
  /** Every copy and local file is gone; the tombstone remains. */
  | { readonly type: 'deleted'; readonly at: string };

/** Which stages each event may come in. */
const FROM: Readonly<Record<LifecycleEvent['type'], readonly Stage[]>> = {
  closed: ['recording'],
  'seal-retrying': ['closed', 'failed'],
  sealed: ['closed', 'failed'],
  'upload-failed': ['sealed', 'archived'],
  uploaded: ['sealed', 'archived'],
  converted: ['sealed', 'archived'],
  offloaded: ['archived'],
  failed: ['recording', 'closed', 'failed'],
  held: ['recording', 'closed', 'sealed', 'archived', 'failed'],
  released: ['recording', 'closed', 'sealed', 'archived', 'failed'],
  deleted: ['sealed', 'archived', 'failed'],
};

/** The entry after `event`; a LifecycleError for an event its stage cannot take (nothing changes). */
export function apply<E extends NewIndexEntry>(entry: E, event: LifecycleEvent): E {
  if (!FROM[event.type].includes(entry.stage)) {
    throw new LifecycleError('ILLEGAL_TRANSITION', `recording ${entry.recordingId} is ${entry.stage}: it cannot be ${event.type}`, {
      recordingId: entry.recordingId,
      stage: entry.stage,
      event: event.type,
    });
  }
  switch (event.type) {
    case 'closed':
      return { ...entry, stage: 'closed', endedAt: event.endedAt, durationMs: event.durationMs };
    case 'seal-retrying':
      return { ...entry, error: event.error };
    case 'sealed': {
      const uploads: Record<string, UploadStatus> = Object.fromEntries(
        event.targets.map((t) => [t, { state: 'pending', attempts: 0, lastError: null }]),
      );
      const local = event.removeLocalAfterUpload ? { local: { removeAfterUpload: true, removedAt: null } } : {};
      return { ...entry, stage: 'sealed', files: [...event.files], kekId: event.kekId, sealedAt: event.sealedAt, uploads, error: null, ...local };
    }
    case 'upload-failed': {
      const prev = entry.uploads[event.target];
      const attempts = (prev?.state === 'pending' ? prev.attempts : 0) + 1;
      return { ...entry, uploads: { ...entry.uploads, [event.target]: { state: 'pending', attempts, lastError: event.error } } };
    }
    case 'uploaded': {
      const uploads: Record<string, UploadStatus> = { ...entry.uploads, [event.target]: { state: 'done', doneAt: event.at } };
      return { ...entry, uploads, stage: Object.values(uploads).every((u) => u.state === 'done') ? 'archived' : entry.stage };
    }
    case 'offloaded':
      return { ...entry, local: { removeAfterUpload: true, removedAt: event.at } };
    case 'converted':
      return { ...entry, files: [...event.files], kekId: event.kekId };
    case 'failed':
      return { ...entry, stage: 'failed', error: event.error };
    case 'held':
      return { ...entry, hold: { reason: event.reason, by: event.by, at: event.at } };
    case 'released':
      return { ...entry, hold: null };
    case 'deleted':
      return { ...entry, stage: 'deleted', deletedAt: event.at, uploads: {} };
  }
}

/** Every event in turn (a rebuild replays what the files on disk say happened). */
export function replay<E extends NewIndexEntry>(entry: E, events: readonly LifecycleEvent[]): E {
  return events.reduce((e, ev) => apply(e, ev), entry);
}

/**
 * The one-word state earlier versions stored and the API, the CLI and
 * `--state` still show: the stage, with `encrypted` for a sealed recording
 * under a KEK, `finalizing` for closed and `uploaded` for archived.
 */
export function legacyState(e: Pick<IndexEntry, 'stage' | 'kekId'>): LegacyState {
  switch (e.stage) {
    case 'closed':
      return 'finalizing';
    case 'sealed':
      return e.kekId ? 'encrypted' : 'sealed';
    case 'archived':
      return 'uploaded';
    default:
      return e.stage;
  }
}

/** An entry as the API and the CLI show it: with its one-word `state` beside the stage. */
export type EntryView = IndexEntry & { readonly state: LegacyState };

export function entryView(e: IndexEntry): EntryView {
  return { ...e, state: legacyState(e) };
}

/** The stage a state an earlier version stored stands for (the index is migrated on open). */
export function stageOfLegacy(state: LegacyState): Stage {
  switch (state) {
    case 'finalizing':
      return 'closed';
    case 'encrypted':
      return 'sealed';
    case 'uploaded':
      return 'archived';
    default:
      return state;
  }
}

/** Whether the entry's audio is still here (not offloaded to its storage targets). */
export function audioIsLocal(e: Pick<IndexEntry, 'local'>): boolean {
  return !e.local?.removedAt;
}

/** Whether a just-archived entry is owed its offload job. */
export function owesOffload(e: Pick<IndexEntry, 'stage' | 'local'>): boolean {
  return e.stage === 'archived' && e.local?.removeAfterUpload === true && !e.local.removedAt;
}

/** Sealed, stored and verifiable: what export, verify and key jobs work on. */
export function isSealed(e: Pick<IndexEntry, 'stage'>): boolean {
  return e.stage === 'sealed' || e.stage === 'archived';
}

/** Whether the retention sweeper may see the entry at all. */
export function expiresBySweep(e: Pick<IndexEntry, 'retainUntil' | 'hold' | 'stage'>): boolean {
  return e.retainUntil !== null && e.hold === null && (e.stage === 'sealed' || e.stage === 'archived' || e.stage === 'failed');
}

/** A recording's entry as it starts (at call start, after crash recovery, at the start of a rebuild's replay). */
export function startedEntry(meta: RecordingMetadata, dataDir: string): NewIndexEntry {
  const number = (n: string): IndexedNumber => ({ number: n, normalized: normalizeNumber(n) });
  const retention = meta.profile.retention;
  return {
    recordingId: meta.recordingId,
    callId: meta.callId,
    profile: meta.profile.name,
    direction: meta.direction,
    caller: number(meta.legs.caller.number),
    callee: number(meta.legs.callee.number),
    codec: meta.codec,
    channelMode: meta.channelMode,
    stage: 'recording',
    dir: path.relative(dataDir, recordingDir(dataDir, meta.recordingId)),
    files: recordingFileNames(meta),
    startedAt: meta.startedAt,
    endedAt: meta.endedAt,
    durationMs: meta.durationMs,
    sealedAt: null,
    kekId: null,
    uploads: {},
    retainUntil: retention ? retentionExpiry(new Date(meta.startedAt), retention).toISOString() : null,
    hold: null,
    deletedAt: null,
    error: null,
  };
}
