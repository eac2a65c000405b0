import { open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { readMetadata, writeMetadata, type RecordingMetadata } from './metadata.js';
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
    log.warn({ recordingId: id, dir, removed: leftovers, kept: others }, others.length ? 'recording interrupted during set-up has files but no metadata; left in place' : 'recording interrupted during set-up: nothing was recorded, leftovers removed');
  }
}

async function recoverOne(dataDir: string, id: string, log: Logger): Promise<RecordingMetadata | undefined> {
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
  for (const f of meta.files) {
    const file = path.join(dir, f.name);
    try {
      const dataBytes = await repairWav(file, f.channels);
      const st = await stat(file);
      endedMs = Math.max(endedMs, st.mtimeMs);
      Object.assign(f, { dataBytes, durationMs: pcmMs(dataBytes, f.channels) });
      durationMs = Math.max(durationMs, f.durationMs);
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
    const meta = await recoverOne(dataDir, id, log);
    if (meta) {
      recovered.push(meta);
      log.warn({ recordingId: id, callId: meta.callId, durationMs: meta.durationMs }, 'recovered recording interrupted by a crash');
    }
    await rm(activeMarker(dataDir, id), { force: true });
  }
  return recovered;
}
