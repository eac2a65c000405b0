import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { firstSound, readWav, soundFraction, tonePower } from './support/audio.js';
import { RecordingIndex } from '../daemon/store/RecordingIndex.js';
import { DaemonProcess, sendRtp, startCall } from './support/daemon.js';
import { recordCalls } from './support/record.js';
import { ffmpegTone } from './support/ffmpeg.js';

test('SIGKILL mid-call, then restart: the recording is repaired, marked recovered, and playable', async () => {
  const d1 = await DaemonProcess.start();
  const call = await startCall(d1, { callId: 'crash-1', callerSsrc: 11, calleeSsrc: 22 });
  const sending = sendRtp({
    streams: [
      { port: call.legs.caller.port, law: 'PCMU', payloadType: 0, ssrc: 11, seqStart: 1, tsStart: 1, freq: 440, durationMs: 4000 },
      { port: call.legs.callee.port, law: 'PCMU', payloadType: 0, ssrc: 22, seqStart: 1, tsStart: 1, freq: 1000, durationMs: 4000 },
    ],
  });
  await new Promise((r) => setTimeout(r, 2500));
  d1.child.kill('SIGKILL');
  await d1.exited;
  await sending;

  const d2 = await DaemonProcess.start({ dataDir: d1.dataDir, configFile: d1.configFile });
  try {
    await d2.waitFor((l) => l.msg === 'recovered recording interrupted by a crash' && l.recordingId === call.recordingId);
    const st = await d2.waitForState(call.recordingId, 'sealed');
    assert.equal(st.metadata.recovered, true);
    assert.equal(st.metadata.endReason, 'recovered');
    const file = path.join(st.dir, `${call.recordingId}.wav`);
    // ffprobe, a reader we did not write, accepts the repaired header.
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=channels,duration', '-of', 'json', file]).toString());
    assert.equal(probe.streams[0].channels, 2);
    const wav = await readWav(file);
    const [L, R] = wav.channels_ as [Float64Array, Float64Array];
    const seconds = L.length / 8000;
    // Audio reached the disk up to about half a second (one write buffer) before the kill.
    assert.ok(seconds >= 1.5 && seconds <= 2.7, `recovered ${seconds} s`);
    assert.equal(Math.round(Number(probe.streams[0].duration) * 1000), Math.round(seconds * 1000));
    const s = firstSound(L);
    assert.ok(soundFraction(L, s, L.length - 160) > 0.97, 'everything that reached the disk is kept');
    assert.ok(tonePower(L, 440) > 100 * tonePower(L, 1000) && tonePower(R, 1000) > 100 * tonePower(R, 440));
    assert.equal(st.metadata.durationMs, Math.round(seconds * 1000));
  } finally {
    assert.equal(await d2.stop(), 0);
  }
});

test('SIGTERM during 20 live calls: every recording closed, sealed and indexed before exit 0', async () => {
  const d = await DaemonProcess.start();
  const ids = Array.from({ length: 20 }, (_, i) => i);
  const calls = await Promise.all(ids.map((i) => startCall(d, { callId: `term-${i}` })));
  const sending = sendRtp({
    streams: calls.flatMap((c, i) =>
      (['caller', 'callee'] as const).map((role, j) => ({
        port: c.legs[role].port,
        law: 'PCMU' as const,
        payloadType: 0,
        ssrc: 100 + 2 * i + j,
        seqStart: 1,
        tsStart: 1,
        freq: 440 + 100 * j,
        durationMs: 3000,
      })),
    ),
  });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await d.stop('SIGTERM'), 0);
  await sending;
  const index = RecordingIndex.open(d.dataDir);
  try {
    assert.deepEqual(index.idsInState('sealed').sort(), calls.map((c) => c.recordingId).sort(), 'the index has all 20 as sealed');
    for (const c of calls) {
      const dir = path.join(d.dataDir, index.get(c.recordingId)!.dir);
      const meta = JSON.parse(await readFile(path.join(dir, `${c.recordingId}.json`), 'utf8'));
      assert.equal(meta.state, 'closed');
      assert.equal(meta.endReason, 'shutdown');
      assert.ok(meta.durationMs >= 1400, `duration ${meta.durationMs}`);
      assert.ok(meta.legs.caller.received > 0 && meta.legs.callee.received > 0, 'both legs recorded');
      // Sealed before exit: shasum accepts the checksum file, the signature is there.
      execFileSync('shasum', ['-a', '256', '-c', `${c.recordingId}.sha256`], { cwd: dir });
      assert.ok(existsSync(path.join(dir, `${c.recordingId}.sha256.SHA256withRSA.sig`)));
    }
  } finally {
    await index.close();
  }
});

test('interop: Debian ffmpeg as the RTP sender (pcm_mulaw / pcm_alaw over RTP, SSRC discovered)', async () => {
  const d = await DaemonProcess.start();
  // ffmpeg cannot rtcp-mux when sending: its RTCP leaves from another port, and
  // comedia must not lock onto that. Its RTCP goes to this sink instead.
  const rtcpSink = createSocket('udp4');
  await new Promise<void>((r) => rtcpSink.bind(0, '127.0.0.1', r));
  const sinkPort = rtcpSink.address().port;
  try {
    for (const codec of ['PCMU', 'PCMA'] as const) {
      const call = await startCall(d, { callId: `ffmpeg-${codec}`, codec });
      const ff = (freq: number, port: number) => ffmpegTone({ port, freq, seconds: 3, law: codec, rtcpPort: sinkPort });
      await Promise.all([ff(700, call.legs.caller.port), ff(1900, call.legs.callee.port)]);
      assert.equal((await d.api('DELETE', `/v1/calls/ffmpeg-${codec}`)).status, 202);
      const st = await d.waitForState(call.recordingId, 'sealed');
      const wav = await readWav(path.join(st.dir, `${call.recordingId}.wav`));
      const [L, R] = wav.channels_ as [Float64Array, Float64Array];
      assert.ok(tonePower(L, 700) > 100 * tonePower(L, 1900), `${codec}: caller's 700 Hz on the left`);
      assert.ok(tonePower(R, 1900) > 100 * tonePower(R, 700), `${codec}: callee's 1900 Hz on the right`);
      const s = firstSound(L);
      assert.ok(soundFraction(L, s, s + 8 * 2500) > 0.95, `${codec}: ffmpeg's audio is continuous`);
      assert.equal(st.metadata.legs.caller.lost, 0);
      assert.equal(st.metadata.legs.caller.ssrcs.length, 1);
    }
  } finally {
    rtcpSink.close();
    assert.equal(await d.stop(), 0);
  }
});

test('calls still recorded after others end: no leaked ports or listeners across 3 rounds', async () => {
  const d = await DaemonProcess.start({
    yaml: (await import('./support/daemon.js')).testConfigYaml().replace('portMax: 29999', 'portMax: 20011\n  portQuarantineSeconds: 0'),
  });
  try {
    for (let round = 0; round < 3; round++) {
      const rs = await recordCalls(
        d,
        [0, 1, 2].map((i) => ({ callId: `round-${round}-${i}`, caller: { freq: 440, durationMs: 600 }, callee: { freq: 1000, durationMs: 600 } })),
      );
      for (const r of rs) assert.ok(r.meta.legs.caller.received > 20, `round ${round}`);
    }
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
