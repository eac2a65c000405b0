import { RecordingError } from '../errors.js';
/**
 * The WAV header callvault writes: 80 bytes, 16-bit PCM at 8000 Hz.
 *
 *   0  RIFF|RF64  u32 riffSize   WAVE
 *  12  JUNK|ds64  u32 28         riffSize u64, dataSize u64, sampleCount u64, tableLength u32
 *  48  fmt        u32 16         PCM, channels, rate, byteRate, blockAlign, bits
 *  72  data       u32 dataSize
 *  80  samples…
 *
 * The 28-byte JUNK chunk reserves room for the RF64 ds64 chunk (EBU Tech 3306),
 * so a file that outgrows 4 GiB becomes RF64 by rewriting the header alone.
 */
export const WAV_HEADER_BYTES = 80;
export const SAMPLE_RATE = 8000;
export const BITS = 16;
const U32_MAX = 0xffffffff;

export interface WavInfo {
  readonly format: 'RIFF' | 'RF64';
  readonly channels: number;
  readonly sampleRate: number;
  readonly bitsPerSample: number;
  readonly dataOffset: number;
  readonly dataBytes: number;
}

/** Milliseconds of audio in `bytes` of this format's PCM with `channels` channels. */
export function pcmMs(bytes: number, channels: number): number {
  return Math.round(bytes / (channels * (BITS / 8)) / (SAMPLE_RATE / 1000));
}

export function wavHeader(channels: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  const riffSize = WAV_HEADER_BYTES - 8 + dataBytes;
  const rf64 = riffSize > U32_MAX;
  const blockAlign = channels * (BITS / 8);
  h.write(rf64 ? 'RF64' : 'RIFF', 0, 'ascii');
  h.writeUInt32LE(rf64 ? U32_MAX : riffSize, 4);
  h.write('WAVE', 8, 'ascii');
  h.write(rf64 ? 'ds64' : 'JUNK', 12, 'ascii');
  h.writeUInt32LE(28, 16);
  if (rf64) {
    h.writeBigUInt64LE(BigInt(riffSize), 20);
    h.writeBigUInt64LE(BigInt(dataBytes), 28);
    h.writeBigUInt64LE(BigInt(Math.floor(dataBytes / blockAlign)), 36);
    h.writeUInt32LE(0, 44);
  }
  h.write('fmt ', 48, 'ascii');
  h.writeUInt32LE(16, 52);
  h.writeUInt16LE(1, 56); // PCM
  h.writeUInt16LE(channels, 58);
  h.writeUInt32LE(SAMPLE_RATE, 60);
  h.writeUInt32LE(SAMPLE_RATE * blockAlign, 64);
  h.writeUInt16LE(blockAlign, 68);
  h.writeUInt16LE(BITS, 70);
  h.write('data', 72, 'ascii');
  h.writeUInt32LE(rf64 ? U32_MAX : dataBytes, 76);
  return h;
}

/** Read any RIFF/RF64 WAV header (not only ours): walks the chunks to `data`. */
export function parseWavHeader(buf: Buffer): WavInfo {
  const tag = buf.toString('ascii', 0, 4);
  if ((tag !== 'RIFF' && tag !== 'RF64') || buf.toString('ascii', 8, 12) !== 'WAVE') throw new RecordingError('WAV_FORMAT', 'not a WAV file');
  let off = 12;
  let ds64Data: number | undefined;
  let fmt: { channels: number; sampleRate: number; bits: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'ds64') ds64Data = Number(buf.readBigUInt64LE(off + 16));
    if (id === 'fmt ') fmt = { channels: buf.readUInt16LE(off + 10), sampleRate: buf.readUInt32LE(off + 12), bits: buf.readUInt16LE(off + 22) };
    if (id === 'data') {
      if (!fmt) throw new RecordingError('WAV_FORMAT', 'WAV data chunk before fmt chunk');
      const dataBytes = size === U32_MAX && ds64Data !== undefined ? ds64Data : size;
      return { format: tag, channels: fmt.channels, sampleRate: fmt.sampleRate, bitsPerSample: fmt.bits, dataOffset: off + 8, dataBytes };
    }
    off += 8 + size + (size & 1);
  }
  throw new RecordingError('WAV_FORMAT', 'WAV header has no data chunk within the bytes read');
}
