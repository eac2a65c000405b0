import { randomBytes } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { emptyLegStats } from '../daemon/media/LegTimeline.js';
import { metadataPath, METADATA_FORMAT, type RecordingMetadata } from '../daemon/record/metadata.js';
import { WAV_HEADER_BYTES, wavHeader } from '../daemon/record/wavFormat.js';

export interface CallFixture {
  readonly seconds: number;
  readonly encryption?: boolean;
  /** The profile's storage targets. */
  readonly storage?: readonly string[];
}

/** A closed recording on disk as the recorder leaves it: a WAV of `seconds` of stereo noise-like audio (written in 4 MiB blocks) and its metadata. */
export async function writeCall(dir: string, id: string, c: CallFixture): Promise<RecordingMetadata> {
  const dataBytes = Math.round(c.seconds * 8000) * 4;
  const fh = await open(path.join(dir, `${id}.wav`), 'w');
  await fh.write(wavHeader(2, dataBytes), 0, WAV_HEADER_BYTES, 0);
  const block = randomBytes(Math.min(4 << 20, Math.max(dataBytes, 1)));
  for (let off = 0; off < dataBytes; off += block.length) await fh.write(block, 0, Math.min(block.length, dataBytes - off));
  await fh.close();
  const leg = { ...emptyLegStats(), number: '+4930123456', ssrcs: [1], firstPacketMs: 0, nonMediaBytes: 0 };
  const meta = {
    format: METADATA_FORMAT,
    recordingId: id,
    callId: `bench-${id}`,
    state: 'closed',
    recovered: false,
    direction: 'inbound',
    codec: 'PCMU',
    channelMode: 'stereo',
    profile: { name: 'bench', storage: [...(c.storage ?? [])], encryption: c.encryption ?? false, retention: null },
    startedAt: new Date().toISOString(),
    endedAt: new Date().toISOString(),
    durationMs: c.seconds * 1000,
    endReason: 'api',
    legs: { caller: leg, callee: leg },
    dtmf: [],
    files: [{ name: `${id}.wav`, legs: ['caller', 'callee'], channels: 2, dataBytes, durationMs: c.seconds * 1000 }],
  } as unknown as RecordingMetadata;
  await writeFile(metadataPath(dir, id), JSON.stringify(meta, null, 2));
  return meta;
}
