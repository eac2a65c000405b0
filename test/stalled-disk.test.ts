/**
 * A disk that stalls instead of failing (bindfs over FUSE, its server
 * stopped: writes neither complete nor fail): the writers' memory stays
 * within recording.maxWriteBacklogKiB, the audio that could not wait is a
 * STALLED gap, and everything before and after it is in place.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { EnvelopeWriter } from '../daemon/record/EnvelopeWriter.js';
import { STALLED } from '../daemon/record/StreamingWriter.js';
import { WavWriter } from '../daemon/record/WavWriter.js';
import { WAV_HEADER_BYTES, wavHeader } from '../daemon/record/wavFormat.js';
import { STREAM_CHUNK_SIZE, unwrapDek } from '../daemon/seal/envelope.js';
import { readEnvelopeHeader } from '../daemon/seal/envelopeFile.js';
import decryptFile from '../workers/decryptFile.js';
import { readWav, rms, tonePower } from './support/audio.js';
import { DaemonProcess, sendRtp, startCall, testConfigYaml } from './support/daemon.js';
import { parsePrometheusText } from './support/promtext.js';
import { toneStream } from './support/rtpPlan.js';
import { StalledDisk } from './support/stalledDisk.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KiB = 1024;

describe('a disk that stalls', () => {
  const base = path.join(os.tmpdir(), `callvault-stall-${process.pid}`);
  const disks: StalledDisk[] = [];
  let d: DaemonProcess | undefined;
  after(async () => {
    // Thawed first: a daemon cannot stop while its last writes wait for the disk.
    for (const disk of disks) disk.thaw();
    if (d) await d.stop();
    for (const disk of disks) await disk.unmount();
    await rm(base, { recursive: true, force: true });
  });

  test('writers: at most the bound waits for the disk, the rest is one STALLED gap, audio after the stall lands at its place (WAV and envelope)', async () => {
    const disk = await StalledDisk.mount(path.join(base, 'w-backing'), path.join(base, 'w-mnt'));
    disks.push(disk);
    const bound = 64 * KiB;
    const kek = { id: 'kek-stall', ...generateKeyPairSync('rsa', { modulusLength: 2048 }) };
    const wav = await WavWriter.create(path.join(disk.mountPoint, 'a.wav'), 2, bound);
    const env = await EnvelopeWriter.create(path.join(disk.mountPoint, 'a.wav.enc'), 2, kek, bound);
    const piece = 6400; // 0.2 s of stereo, as the mixer hands it over
    const audio = randomBytes(100 * piece);
    const feed = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const s = new Int16Array(audio.buffer.slice(audio.byteOffset + i * piece, audio.byteOffset + (i + 1) * piece));
        wav.write(s, piece / 4);
        env.write(s, piece / 4);
      }
      wav.flush();
    };
    feed(0, 10);
    await sleep(300);
    disk.freeze();
    feed(10, 60); // 10 s of audio while nothing reaches the disk
    for (const w of [wav, env]) {
      assert.ok(w.backlogBytes <= bound + STREAM_CHUNK_SIZE + 64, `${w.file}: ${w.backlogBytes} bytes wait, bound ${bound}`);
      assert.equal(w.stalled?.code, STALLED, `${w.file} is stalled`);
    }
    disk.thaw();
    for (let i = 0; i < 100 && (wav.backlogBytes > 0 || env.backlogBytes > 0); i++) await sleep(20);
    // At the pace of a call again (a burst of 0.6 s at once would fill a 64 KiB bound by itself).
    for (let i = 60; i < 100; i += 2) {
      feed(i, i + 2);
      assert.equal(wav.stalled, undefined, 'writing goes on once the backlog has drained');
      await sleep(20);
    }
    const w1 = await wav.close();
    const e1 = await env.close();
    assert.equal(w1.dataBytes, audio.length);
    assert.equal(e1.dataBytes, audio.length);

    const [wg] = w1.gaps;
    assert.equal(w1.gaps.length, 1, JSON.stringify(w1.gaps));
    assert.ok(wg && wg.code === STALLED && wg.fromByte >= 10 * piece && wg.toByte <= 60 * piece + 20 * KiB, JSON.stringify(wg));
    const file = await readFile(path.join(disk.mountPoint, 'a.wav'));
    const data = file.subarray(WAV_HEADER_BYTES);
    assert.equal(data.length, audio.length, 'the file keeps its length');
    assert.ok(
      data.subarray(wg.fromByte, wg.toByte).every((b) => b === 0),
      'the gap reads as silence',
    );
    assert.deepEqual(data.subarray(0, wg.fromByte), audio.subarray(0, wg.fromByte), 'audio before the stall');
    assert.deepEqual(data.subarray(wg.toByte), audio.subarray(wg.toByte), 'audio after the stall, at its place');

    const [eg] = e1.gaps;
    assert.equal(e1.gaps.length, 1, JSON.stringify(e1.gaps));
    assert.ok(eg?.chunks && eg.code === STALLED, JSON.stringify(eg));
    const h = readEnvelopeHeader(path.join(disk.mountPoint, 'a.wav.enc'));
    const out = path.join(base, 'a-back.wav');
    decryptFile({
      src: path.join(disk.mountPoint, 'a.wav.enc'),
      dest: out,
      dek: unwrapDek(kek.privateKey, h.wrappedDek, h.kekId),
      stream: { channels: 2, gaps: [eg.chunks], recovered: false },
    });
    const back = (await readFile(out)).subarray(WAV_HEADER_BYTES);
    assert.deepEqual((await readFile(out)).subarray(0, WAV_HEADER_BYTES), wavHeader(2, audio.length));
    assert.ok(
      back.subarray(eg.fromByte, eg.toByte).every((b) => b === 0),
      'the envelope gap reads as silence',
    );
    assert.deepEqual(back.subarray(0, eg.fromByte), audio.subarray(0, eg.fromByte));
    assert.deepEqual(back.subarray(eg.toByte), audio.subarray(eg.toByte));
  });

  test('a running call on a data dir whose recordings stall: the daemon answers, waiting audio stays bounded, the recording is sealed with its STALLED gap marked and counted', async () => {
    const dataDir = path.join(base, 'data');
    const disk = await StalledDisk.mount(path.join(base, 'd-backing'), path.join(dataDir, 'recordings'));
    disks.push(disk);
    const configFile = path.join(base, 'stall.yaml');
    await writeFile(configFile, testConfigYaml('recording:\n  maxWriteBacklogKiB: 64\n'));
    const dd = await DaemonProcess.start({ dataDir, configFile });
    d = dd;
    const at = (await dd.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const scrape = async () => parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    const value = (m: Awaited<ReturnType<typeof scrape>>, name: string, code?: string) =>
      (m.get(name)?.samples ?? []).filter((s) => code === undefined || s.labels.code === code).reduce((sum, s) => sum + s.value, 0);

    const c = await startCall(dd, { callId: 'stall-a' });
    const sending = sendRtp({
      streams: [toneStream(c.legs.caller.port, 440, { durationMs: 9000 }), toneStream(c.legs.callee.port, 1000, { durationMs: 9000 })],
    });
    await sleep(1500);
    disk.freeze();
    const frozenAt = Date.now();
    await dd.waitFor((l) => l.msg.startsWith('the disk is too far behind'), 8000);
    let most = 0;
    for (let i = 0; i < 6; i++) {
      const m = await scrape();
      most = Math.max(most, value(m, 'callvault_audio_write_backlog_bytes'));
      assert.equal(value(m, 'callvault_recordings_write_suspended'), 1);
      await sleep(500);
    }
    assert.ok(most > 0 && most <= 64 * KiB + 20 * KiB, `audio waiting for the disk: at most ${most} bytes`);
    assert.equal((await dd.api('GET', `/v1/recordings/${c.recordingId}`)).body.stage, 'recording', 'the control API answers during the stall');
    disk.thaw();
    const stalledMs = Date.now() - frozenAt;
    await sending;
    assert.equal((await dd.api('DELETE', '/v1/calls/stall-a')).status, 202);
    const st = await dd.waitForState(c.recordingId, 'sealed', 30_000);
    const meta = st.metadata;
    const stalls = meta.gaps.filter((g: { code: string }) => g.code === STALLED);
    assert.equal(stalls.length, 1, JSON.stringify(meta.gaps));
    const gap = stalls[0];
    assert.ok(gap.fromMs > 1000 && gap.fromMs < 1500 + 3000, `the gap starts once the backlog is full: ${JSON.stringify(gap)}`);
    assert.ok(gap.toMs - gap.fromMs > stalledMs - 4000 && gap.toMs < meta.durationMs - 1000, JSON.stringify({ gap, stalledMs }));
    const wav = await readWav(path.join(st.dir, meta.files[0].name));
    assert.ok(Math.abs(wav.dataBytes / 32 - meta.durationMs) <= 40, 'the file is as long as the call');
    const left = wav.channels_[0] as Float64Array;
    assert.ok(rms(left, Math.round(gap.fromMs * 8) + 80, Math.round(gap.toMs * 8) - 80) < 0.001, 'the gap is silence');
    const after = Math.round(gap.toMs * 8) + 800;
    assert.ok(tonePower(left, 440, after, after + 4000) > 100 * tonePower(left, 2000, after, after + 4000), 'the tone after the stall');
    const before = Math.round(gap.fromMs * 8) - 4800;
    assert.ok(tonePower(left, 440, before, before + 4000) > 100 * tonePower(left, 2000, before, before + 4000), 'the tone before it');
    const m = await scrape();
    assert.ok(value(m, 'callvault_audio_write_errors_total', STALLED) >= 1);
    const counted = value(m, 'callvault_audio_gap_seconds_total', STALLED);
    assert.ok(Math.abs(counted - (gap.toMs - gap.fromMs) / 1000) < 0.05, `gap seconds counted: ${counted}`);
    assert.equal(value(m, 'callvault_recordings_write_suspended'), 0);
    assert.equal(dd.child.exitCode, null);
  });
});
