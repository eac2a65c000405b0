import { open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { RecordingError } from '../errors.js';
import { TAG_BYTES } from '../seal/envelope.js';
import { headerOf, isZero, streamedLayout, type ChunkRange } from '../seal/envelopeFile.js';
import { envelopeName, readMetadata, writeMetadata, type GapMetadata, type RecordingMetadata } from './metadata.js';
import { isRecordingId, recordingDir } from './recordingId.js';
import { pcmMs, WAV_HEADER_BYTES, wavHeader } from './wavFormat.js';

/*
 * A recording in progress has a marker file `<dataDir>/active/<recordingId>`,
 * created before its first byte and removed after its metadata says `closed`.
 * Whatever markers exist at start-up belong to recordings a crash (SIGKILL,
 * power loss) interrupted: their WAV headers still say 0 bytes.
 */
export function activeDir(dataDir: string): string {
  return path.join(dataDir, 'active');
}

export function activeMarker(dataDir: string, recordingId: string): string {
  return path.join(activeDir(dataDir), recordingId);
}

/** Make a WAV whose header lies about its size whole again; returns the audio bytes kept. */
export async function repairWav(file: string, channels: number): Promise<number> {
  const fh = await open(file, 'r+');
  try {
    const { size } = await fh.stat();
    const blockAlign = channels * 2;
    const dataBytes = Math.max(0, Math.floor((size - WAV_HEADER_BYTES) / blockAlign) * blockAlign);
    // A torn last frame is cut so the channels stay aligned.
    await fh.truncate(WAV_HEADER_BYTES + dataBytes);
    await fh.write(wavHeader(channels, dataBytes), 0, WAV_HEADER_BYTES, 0);
    await fh.sync();
    return dataBytes;
  } finally {
    await fh.close();
  }
}

/**
 * Close what a crash left of an envelope written as the call ran, without
 * the data key (the daemon never keeps one): cut it after its last whole
 * chunk, and find the chunks a failed write left unwritten (their tags are
 * still zeros). Its lead, the WAV header, stays unwritten: a reader rebuilds
 * it from the recording's metadata, which says the recording was recovered.
 * An envelope whose lead was written had been closed already and is kept.
 */
export async function repairEnvelope(file: string): Promise<{ dataBytes: number; chunkSize: number; unwritten: ChunkRange[] }> {
  const fh = await open(file, 'r+');
  try {
    const header = headerOf(fh.fd);
    if (header.version !== 2)
      throw new RecordingError('NOT_STREAMED', `${file} is not an envelope written as the call ran (version ${header.version})`, { file });
    const size = (await fh.stat()).size;
    const lead = Buffer.alloc(header.leadBytes + TAG_BYTES);
    await fh.read(lead, 0, lead.length, header.bytes.length);
    if (!isZero(lead)) return { dataBytes: streamedLayout(header, size).dataBytes, chunkSize: header.chunkSize, unwritten: [] };
    const audioStart = header.bytes.length + lead.length;
    const whole = header.chunkSize + TAG_BYTES;
    const chunks = Math.max(0, Math.floor((size - audioStart) / whole));
    await fh.truncate(audioStart + chunks * whole);
    const unwritten: [number, number][] = [];
    const tag = Buffer.alloc(TAG_BYTES);
    for (let index = 1; index <= chunks; index++) {
      await fh.read(tag, 0, TAG_BYTES, audioStart + index * whole - TAG_BYTES);
      if (!isZero(tag)) continue;
      const last = unwritten.at(-1);
      if (last && last[1] === index) last[1] = index + 1;
      else unwritten.push([index, index + 1]);
    }
    await fh.sync();
    return { dataBytes: chunks * header.chunkSize, chunkSize: header.chunkSize, unwritten };
  } finally {
    await fh.close();
  }
}

/** Repair one audio file of an interrupted recording: its envelope if it was encrypted as written, else its WAV. */
async function repairAudio(dir: string, f: RecordingMetadata['files'][number]): Promise<{ file: string; dataBytes: number; gaps: GapMetadata[] }> {
  const envelope = path.join(dir, envelopeName(f.name));
  if (!(await stat(envelope).catch(() => undefined))) {
    const file = path.join(dir, f.name);
    return { file, dataBytes: await repairWav(file, f.channels), gaps: [] };
  }
  const { dataBytes, chunkSize, unwritten } = await repairEnvelope(envelope);
  const chunkMs = (index: number) => pcmMs(Math.min(dataBytes, (index - 1) * chunkSize), f.channels);
  const gaps = unwritten.map(
    ([from, to]): GapMetadata => ({
      file: f.name,
      fromMs: chunkMs(from),
      toMs: chunkMs(to),
      code: 'UNWRITTEN',
      message: 'found unwritten after a crash: a write had failed',
      chunks: [from, to],
    }),
  );
  return { file: envelope, dataBytes, gaps };
}

/**
 * A crash during set-up, before the first metadata was in place, leaves at
 * most a half-written `<id>.json.tmp`: nothing was recorded and no index
 * entry exists. Remove such leftovers (and the then empty directory); keep
 * and report anything else.
 */
async function cleanUnstarted(dir: string, id: string, log: Logger): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const leftovers = names.filter((n) => n.endsWith('.tmp'));
  const others = names.filter((n) => !n.endsWith('.tmp'));
  for (const n of leftovers) await rm(path.join(dir, n), { force: true });
  if (others.length === 0) await rm(dir, { recursive: true, force: true });
  if (names.length) {
    log.warn(
      { recordingId: id, dir, removed: leftovers, kept: others },
      others.length
        ? 'recording interrupted during set-up has files but no metadata; left in place'
        : 'recording interrupted during set-up: nothing was recorded, leftovers removed',
    );
  }
}

/**
 * Repair and close one recording whose writer went away mid-call (a crash,
 * a media shard that died): its final metadata, or undefined when it never
 * got as far as its metadata (nothing was recorded). Its marker is the caller's.
 */
export async function recoverRecording(dataDir: string, id: string, log: Logger): Promise<RecordingMetadata | undefined> {
  const dir = recordingDir(dataDir, id);
  let meta: RecordingMetadata;
  try {
    meta = await readMetadata(dir, id);
  } catch {
    await cleanUnstarted(dir, id, log);
    return undefined; // crashed before the recording existed: nothing was recorded
  }
  if (meta.state === 'closed') return meta; // crashed after closing, before the marker went
  let endedMs = Date.parse(meta.startedAt);
  let durationMs = 0;
  const gaps: GapMetadata[] = [];
  for (const f of meta.files) {
    try {
      const repaired = await repairAudio(dir, f);
      const st = await stat(repaired.file);
      endedMs = Math.max(endedMs, st.mtimeMs);
      Object.assign(f, { dataBytes: repaired.dataBytes, durationMs: pcmMs(repaired.dataBytes, f.channels) });
      durationMs = Math.max(durationMs, f.durationMs);
      gaps.push(...repaired.gaps);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  Object.assign(meta, {
    state: 'closed',
    recovered: true,
    endReason: 'recovered',
    endedAt: new Date(endedMs).toISOString(),
    durationMs,
    gaps: [...(meta.gaps ?? []), ...gaps],
  });
  await writeMetadata(dir, meta);
  return meta;
}

/** Repair and close every recording a crash left open. Returns their final metadata. */
export async function recoverInterrupted(dataDir: string, log: Logger): Promise<RecordingMetadata[]> {
  let names: string[];
  try {
    names = await readdir(activeDir(dataDir));
  } catch {
    return [];
  }
  const recovered: RecordingMetadata[] = [];
  for (const id of names) {
    if (!isRecordingId(id)) continue;
    const meta = await recoverRecording(dataDir, id, log);
    if (meta) {
      recovered.push(meta);
      log.warn({ recordingId: id, callId: meta.callId, durationMs: meta.durationMs }, 'recovered recording interrupted by a crash');
    }
    await rm(activeMarker(dataDir, id), { force: true });
  }
  return recovered;
}
