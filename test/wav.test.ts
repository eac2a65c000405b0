import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repairWav } from '../daemon/record/recovery.js';
import { parseWavHeader, WAV_HEADER_BYTES, wavHeader } from '../daemon/record/wavFormat.js';
import { WavWriter } from '../daemon/record/WavWriter.js';

function ffprobe(file: string): { codec_name: string; channels: number; sample_rate: string; duration: string } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,channels,sample_rate,duration', '-of', 'json', file]);
  return (JSON.parse(out.toString()) as { streams: [ReturnType<typeof ffprobe>] }).streams[0];
}

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'callvault-wav-'));

test('WavWriter streams interleaved PCM and patches sizes on close; ffprobe agrees', async () => {
  const file = path.join(await tmp(), 'a.wav');
  const w = await WavWriter.create(file, 2, 1 << 20);
  const frames = new Int16Array(2 * 800);
  for (let i = 0; i < 800; i++) {
    frames[2 * i] = i;
    frames[2 * i + 1] = -i;
  }
  for (let k = 0; k < 30; k++) w.write(frames, 800); // 3 s, several flushes
  const { dataBytes } = await w.close();
  assert.equal(dataBytes, 30 * 800 * 4);
  const buf = await readFile(file);
  assert.equal(buf.length, WAV_HEADER_BYTES + dataBytes);
  assert.deepEqual(parseWavHeader(buf), { format: 'RIFF', channels: 2, sampleRate: 8000, bitsPerSample: 16, dataOffset: 80, dataBytes });
  assert.equal(buf.readInt16LE(80 + 4 * 799), 799, 'left sample');
  assert.equal(buf.readInt16LE(80 + 4 * 799 + 2), -799, 'right sample');
  const p = ffprobe(file);
  assert.deepEqual([p.codec_name, p.channels, p.sample_rate, Number(p.duration)], ['pcm_s16le', 2, '8000', 3]);
  await assert.rejects(WavWriter.create(file, 2, 1 << 20), /cannot create/, 'never overwrites an existing recording');
});

test('past 4 GiB the header becomes RF64 with a ds64 chunk (sparse 5 GiB file read by ffprobe)', async () => {
  const file = path.join(await tmp(), 'big.wav');
  const dataBytes = 5 * 1024 ** 3;
  const fh = await open(file, 'w');
  await fh.write(wavHeader(2, dataBytes), 0, WAV_HEADER_BYTES, 0);
  await fh.truncate(WAV_HEADER_BYTES + dataBytes);
  await fh.close();
  const head = Buffer.alloc(80);
  const rh = await open(file, 'r');
  await rh.read(head, 0, 80, 0);
  await rh.close();
  assert.equal(head.toString('ascii', 0, 4), 'RF64');
  assert.equal(head.toString('ascii', 12, 16), 'ds64');
  assert.equal(head.readUInt32LE(76), 0xffffffff);
  assert.deepEqual(parseWavHeader(head), { format: 'RF64', channels: 2, sampleRate: 8000, bitsPerSample: 16, dataOffset: 80, dataBytes });
  assert.equal(Number(ffprobe(file).duration), dataBytes / 32000);
  // Just under the limit stays plain RIFF.
  assert.equal(wavHeader(2, 0xffffffff - 72).toString('ascii', 0, 4), 'RIFF');
  assert.equal(wavHeader(2, 0xffffffff - 68).toString('ascii', 0, 4), 'RF64');
});

test('repairWav fixes a header left at 0 by a crash and cuts a torn last frame', async () => {
  const file = path.join(await tmp(), 'crashed.wav');
  const audio = Buffer.alloc(16001, 7);
  await writeFile(file, Buffer.concat([wavHeader(2, 0), audio]));
  assert.equal(await repairWav(file, 2), 16000);
  assert.equal((await stat(file)).size, 80 + 16000);
  assert.equal(parseWavHeader(await readFile(file)).dataBytes, 16000);
  assert.equal(Number(ffprobe(file).duration), 0.5);
});
