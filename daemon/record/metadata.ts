import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChannelMode, Direction } from '../config/Config.js';
import type { LegRole } from '../ingest/LegSource.js';
import type { G711Law } from '../media/g711.js';
import type { DtmfEvent, LegStats } from '../media/LegTimeline.js';
import { writeFileDurably } from '../fsutil.js';
import type { ProfileTerms } from './profiles.js';

export const METADATA_FORMAT = 'callvault-recording/1';

export type RecordingState = 'recording' | 'finalizing' | 'closed' | 'failed';
export type EndReason = 'api' | 'bye' | 'cancel' | 'session-expired' | 'rtp-timeout' | 'max-duration' | 'shutdown' | 'ingest-failure' | 'recovered';

export interface LegMetadata extends LegStats {
  /** As the call started; a SIPREC metadata update may name the party later (Avaya SBCE). */
  number: string;
  readonly ssrcs: number[];
  /** Offset of the leg's first packet from the start of the recording, or null if it never sent. */
  readonly firstPacketMs: number | null;
  readonly nonMediaBytes: number;
  /** `ip:port` the leg's RTP came from (the connected PBX address, or the first allowed sender). */
  readonly source: string | null;
  /** First senders refused as not allowed (`ip:port`); their packets are not in the audio. */
  readonly refusedSources: string[];
}

export interface FileMetadata {
  readonly name: string;
  readonly legs: LegRole[];
  readonly channels: number;
  readonly dataBytes: number;
  readonly durationMs: number;
}

/** `<recordingId>.json`: everything known about one recording, written atomically. */
export interface RecordingMetadata {
  readonly format: typeof METADATA_FORMAT;
  readonly recordingId: string;
  /** The instance that recorded it (`<dataDir>/identity/instance-id`); absent in older recordings. */
  readonly instanceId?: string;
  readonly callId: string;
  state: RecordingState;
  recovered: boolean;
  readonly direction: Direction;
  readonly codec: G711Law;
  readonly channelMode: ChannelMode;
  /** The profile that chose to record this call, as it was then. */
  readonly profile: ProfileTerms;
  readonly startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  endReason: EndReason | null;
  readonly legs: Record<LegRole, LegMetadata>;
  dtmf: (DtmfEvent & { leg: LegRole })[];
  /** Where audio could not be written (a full disk, an I/O error): silence in the file, and why. Absent in older recordings. */
  gaps?: GapMetadata[];
  /** Pauses, SIPREC updates and stream changes past the 1,000 kept of each: counted, not kept. Absent when none. */
  notesOmitted?: number;
  /** Where the SRC paused a stream (SIPREC a=inactive or port 0: hold, a card number spoken): silence, on the call clock. */
  pauses?: PauseMetadata[];
  files: FileMetadata[];
  /** A call that came as a SIPREC recording session: who sent it and what its metadata said. */
  readonly siprec?: SiprecMetadata;
  /** Profile with `dtmfDigits: encrypted`: `<recordingId>.dtmf.json.enc`, the keys pressed, sealed under the recording's KEK. */
  dtmfDigitsFile?: string;
}

/** A SIPREC recording session as the SRS received it (RFC 7866, RFC 7865). */
export interface SiprecMetadata {
  /** The recording session's SIP Call-ID (the dialog with the SRC). */
  readonly sipCallId: string;
  /** The SRC: transport, address and port it sent from, and its From URI. */
  readonly src: { readonly transport: string; readonly address: string; readonly port: number; readonly uri: string };
  /** The recording session id of the metadata, if it has one. */
  readonly sessionId: string | null;
  /** The original call as the metadata gives it (Sonus' callData), else null. */
  readonly originalCall: { readonly from: string | null; readonly to: string | null; readonly callId: string | null } | null;
  readonly participants: readonly {
    readonly id: string;
    readonly aor: string | null;
    readonly name: string | null;
    readonly sends: readonly string[];
  }[];
  /** Vendor call ids from the INVITE's headers (Cisco Session-ID, Avaya/Oracle UCID). */
  readonly vendorCallIds: Readonly<Record<string, string>>;
  /** How caller (left) and callee (right) were told apart. */
  readonly decided: string;
  /** Which offered stream (a=label) each leg is. */
  readonly labels: { readonly caller: string | null; readonly callee: string | null };
  /** Metadata the SRC sent later in the dialog (re-INVITE, UPDATE), in order, each with when it came. */
  updates?: SiprecUpdate[];
  /** What the SRC changed about the streams mid-call (a codec, another stream for a leg, a new SRTP key, a stream declined), in order. */
  streamChanges?: StreamChange[];
}

/**
 * A change to a recorded stream in the dialog. `codec`: the leg's audio is
 * in `codec` from here on (the file stays 16-bit PCM). `stream`: the stream
 * labelled `label` took the leg's channel from one the SRC removed. `key`:
 * a new SDES key. `declined`: a stream added with no channel free, answered
 * with port 0 (not recorded).
 */
export interface StreamChangeNote {
  readonly method: string;
  readonly change: 'codec' | 'stream' | 'key' | 'declined';
  readonly leg: LegRole | null;
  readonly label: string | null;
  readonly codec?: G711Law;
}

export interface StreamChange extends StreamChangeNote {
  readonly atMs: number;
  readonly at: string;
}

/** A metadata update in the recording session: participants as it names them. */
export interface SiprecUpdate {
  readonly atMs: number;
  readonly at: string;
  readonly method: string;
  readonly participants: SiprecMetadata['participants'];
}

export interface PauseMetadata {
  readonly leg: LegRole;
  readonly fromMs: number;
  /** null while the pause is still open (a recording recovered after a crash). */
  toMs: number | null;
}

/** What `<recordingId>.dtmf.json.enc` decrypts to. */
export interface DtmfDigitsFile {
  readonly format: 'callvault-dtmf/1';
  readonly recordingId: string;
  readonly digits: readonly { readonly leg: LegRole; readonly atMs: number; readonly key: string }[];
}

export function dtmfDigitsFileName(recordingId: string): string {
  return envelopeName(`${recordingId}.dtmf.json`);
}

/** A stretch of one file, on the call clock, whose audio never reached the disk. */
export interface GapMetadata {
  readonly file: string;
  readonly fromMs: number;
  readonly toMs: number;
  /** errno code of the failed write. */
  readonly code: string;
  readonly message: string;
  /** An envelope written as the call ran: the chunks [from, to) the gap left unwritten (they read as silence). */
  readonly chunks?: readonly [number, number];
}

export function metadataFileName(recordingId: string): string {
  return `${recordingId}.json`;
}

export function metadataPath(dir: string, recordingId: string): string {
  return path.join(dir, metadataFileName(recordingId));
}

/** Every file a recording consists of, audio then metadata (and the digits envelope, when kept): what is listed, sealed and verified. */
export function recordingFileNames(meta: RecordingMetadata): string[] {
  return [...meta.files.map((f) => f.name), metadataFileName(meta.recordingId), ...(meta.dtmfDigitsFile ? [meta.dtmfDigitsFile] : [])];
}

/** An encrypted audio file is stored as `<name>.enc` (docs/envelope.md); the metadata stays in the clear. */
export const ENVELOPE_SUFFIX = '.enc';

export function isEnvelope(name: string): boolean {
  return name.endsWith(ENVELOPE_SUFFIX);
}

/** The stored name of an audio file's envelope. */
export function envelopeName(plain: string): string {
  return plain + ENVELOPE_SUFFIX;
}

/** The audio file an envelope holds (a plain name is returned as it is). */
export function plainName(stored: string): string {
  return isEnvelope(stored) ? stored.slice(0, -ENVELOPE_SUFFIX.length) : stored;
}

/** An audio file as stored: a WAV, or its envelope (not the metadata). */
export function isAudioFile(stored: string): boolean {
  return plainName(stored).endsWith('.wav');
}

/** Atomic and durable: a reader sees the old or the new file, never half of one. */
export async function writeMetadata(dir: string, meta: RecordingMetadata): Promise<void> {
  await writeFileDurably(metadataPath(dir, meta.recordingId), `${JSON.stringify(meta, null, 2)}\n`, 0o640);
}

export async function readMetadata(dir: string, recordingId: string): Promise<RecordingMetadata> {
  return JSON.parse(await readFile(metadataPath(dir, recordingId), 'utf8')) as RecordingMetadata;
}
