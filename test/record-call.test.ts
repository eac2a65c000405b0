import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dominates, firstSound, rms, soundFraction, tonePower } from './support/audio.js';
import { DaemonProcess, testConfigYaml } from './support/daemon.js';
import { recordCall, recordCalls } from './support/record.js';

const ms = (n: number) => n * 8; // samples at 8 kHz

describe('recording a call end to end (real mediasoup worker, RTP from another process)', { concurrency: true }, () => {
  let d: DaemonProcess;
  before(async () => {
    d = await DaemonProcess.start();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  test('caller tone is on the left, callee tone on the right, duration follows the clock', async () => {
    const r = await recordCall(d, { callId: 'tones', caller: { freq: 440, durationMs: 3000 }, callee: { freq: 1000, durationMs: 3000 } });
    const [wav] = r.wavs;
    assert.equal(wav?.channels, 2);
    assert.equal(wav?.sampleRate, 8000);
    const [L, R] = wav!.channels_ as [Float64Array, Float64Array];
    assert.ok(dominates(L, 440, 1000), 'left is the caller (440 Hz)');
    assert.ok(dominates(R, 1000, 440), 'right is the callee (1000 Hz)');
    // The file lasts as long as the call: from the announcement to the hang-up.
    assert.ok(r.meta.durationMs <= r.elapsedMs && r.meta.durationMs >= r.elapsedMs - 300, `duration ${r.meta.durationMs} of ${r.elapsedMs} ms`);
    assert.ok(r.meta.durationMs >= 3000);
    const start = firstSound(L);
    assert.ok(soundFraction(L, start, start + ms(2900)) > 0.97, 'caller audio is continuous');
    // Without an announced SSRC the first packets go to SSRC discovery: typically 1-3,
    // more when many legs start at once (here with the other tests' calls).
    assert.ok(r.meta.legs.caller.received >= 125, `received ${r.meta.legs.caller.received}`);
    assert.deepEqual([r.meta.legs.caller.lost, r.meta.legs.caller.late, r.meta.legs.caller.duplicate], [0, 0, 0]);
    assert.equal(r.meta.legs.caller.ssrcs.length, 1);
    assert.equal(r.meta.state, 'closed');
    assert.equal(r.meta.endReason, 'api');
    assert.equal(r.meta.files[0].name, `${r.recordingId}.wav`);
  });

  test('2 % loss and 2 % reordering (PCMA): loss counted exactly, reordering absorbed, no late packets', async () => {
    const leg = { durationMs: 4000, loss: 0.02, reorder: 0.02, duplicate: 0.01 };
    const r = await recordCall(d, {
      callId: 'lossy',
      codec: 'PCMA',
      announceSsrc: true,
      caller: { freq: 700, ...leg },
      callee: { freq: 1300, ...leg },
    });
    for (const role of ['caller', 'callee'] as const) {
      const frames = 200;
      const dupes = r.sent[role]!.sent - (frames - r.meta.legs[role].lost);
      assert.ok(r.meta.legs[role].lost > 0, `${role} some loss was sent`);
      assert.equal(r.meta.legs[role].received, frames - r.meta.legs[role].lost);
      assert.equal(r.meta.legs[role].duplicate, dupes, `${role} duplicates counted`);
      assert.equal(r.meta.legs[role].late, 0, `${role} reordering within the jitter window`);
    }
    const [L, R] = r.wavs[0]!.channels_ as [Float64Array, Float64Array];
    assert.ok(dominates(L, 700, 1300) && dominates(R, 1300, 700));
    const s = firstSound(L);
    const f = soundFraction(L, s, s + ms(3900));
    assert.ok(f > 0.9 && f < 0.995, `sound fraction ${f} reflects ~2 % loss`);
  });

  test('sequence and timestamp wrap-around mid-call leave no gap', async () => {
    const leg = { durationMs: 2000, seqStart: 65500, tsStart: 0xfffff000 };
    const r = await recordCall(d, { callId: 'wrap', announceSsrc: true, caller: { freq: 500, ...leg }, callee: { freq: 900, ...leg } });
    const L = r.wavs[0]!.channels_[0] as Float64Array;
    const s = firstSound(L);
    assert.ok(soundFraction(L, s, s + ms(1900)) > 0.99);
    assert.deepEqual([r.meta.legs.caller.lost, r.meta.legs.caller.resyncs, r.meta.legs.caller.received], [0, 0, 100]);
  });

  test('an SSRC change mid-call is followed (new Producer found by discovery) and audio continues', async () => {
    const r = await recordCall(d, {
      callId: 'ssrc-change',
      caller: { freq: 600, durationMs: 4000, ssrcChange: { atMs: 1500, ssrc: 0x5eed, seqStart: 9, tsStart: 123456 } },
      callee: { freq: 1100, durationMs: 4000 },
    });
    const L = r.wavs[0]!.channels_[0] as Float64Array;
    assert.deepEqual(r.meta.legs.caller.ssrcs.slice(1), [0x5eed]);
    const s = firstSound(L);
    assert.ok(soundFraction(L, s + ms(2200), s + ms(3900)) > 0.97, 'audio after the switch is recorded');
    assert.ok(dominates(L, 600, 1100, s + ms(2200), s + ms(3900)), 'after the switch the left channel is still the caller');
    assert.ok(r.meta.legs.caller.resyncs >= 1);
  });

  test('a callee who starts 2.5 s late gets 2.5 s of leading silence on the right channel', async () => {
    const r = await recordCall(d, {
      callId: 'late-callee',
      announceSsrc: true,
      caller: { freq: 440, durationMs: 4000 },
      callee: { freq: 1000, durationMs: 1500, startMs: 2500 },
    });
    const [L, R] = r.wavs[0]!.channels_ as [Float64Array, Float64Array];
    const offset = (firstSound(R) - firstSound(L)) / 8;
    assert.ok(Math.abs(offset - 2500) <= 60, `right starts ${offset} ms after left`);
    const arrivalGap = r.meta.legs.callee.firstPacketMs - r.meta.legs.caller.firstPacketMs;
    assert.ok(Math.abs(arrivalGap - 2500) <= 60, `the callee's first packet arrived ${arrivalGap} ms after the caller's`);
  });

  test('a leg that never sends RTP is silence for the whole call, and the file still exists', async () => {
    const r = await recordCall(d, { callId: 'one-way', caller: { freq: 440, durationMs: 2000 }, callee: null });
    const [L, R] = r.wavs[0]!.channels_ as [Float64Array, Float64Array];
    assert.equal(rms(R), 0);
    assert.ok(R.length >= ms(2000));
    const s = firstSound(L);
    assert.ok(s >= 0 && soundFraction(L, s, s + ms(1500)) > 0.97, 'the sending leg is recorded');
    assert.equal(r.meta.legs.callee.firstPacketMs, null);
    assert.equal(r.meta.legs.callee.received, 0);
  });

  test('a 20-second hold neither ends nor shrinks the recording; audio after it is in place', async () => {
    const leg = { durationMs: 24000, hold: [2000, 22000] as [number, number] };
    const r = await recordCall(d, { callId: 'hold', announceSsrc: true, caller: { freq: 440, ...leg }, callee: { freq: 1000, ...leg } });
    const [L, R] = r.wavs[0]!.channels_ as [Float64Array, Float64Array];
    const s = firstSound(L);
    assert.ok(soundFraction(L, s, s + ms(1900)) > 0.97, 'before the hold');
    assert.ok(rms(L, s + ms(2200), s + ms(21800)) === 0 && rms(R, s + ms(2200), s + ms(21800)) === 0, 'silence while held');
    assert.ok(soundFraction(L, s + ms(22100), s + ms(23900)) > 0.97, 'after the hold, at the right time');
    assert.ok(dominates(R, 1000, 440, s + ms(22100), s + ms(23900)));
    assert.ok(r.meta.durationMs >= 24000, `duration ${r.meta.durationMs}`);
    assert.equal(r.meta.endReason, 'api', 'the hold did not end the call');
    assert.equal(r.meta.legs.caller.lost, 0);
  });

  test('DTMF (RFC 4733): when and how long goes to the metadata, the digit nowhere, nothing into the audio', async () => {
    const r = await recordCall(d, {
      callId: 'dtmf',
      announceSsrc: true,
      caller: { freq: 440, durationMs: 2000, dtmf: [{ atMs: 1000, event: 11, durationMs: 200 }] },
      callee: { freq: 1000, durationMs: 2000 },
    });
    assert.equal(r.meta.dtmf.length, 1);
    const ev = r.meta.dtmf[0];
    assert.deepEqual([ev.leg, ev.durationMs], ['caller', 200]);
    assert.deepEqual(Object.keys(ev).sort(), ['atMs', 'durationMs', 'leg'], 'that a key was pressed, never which (PCI DSS 3.3.1)');
    assert.ok(Math.abs(ev.atMs - r.meta.legs.caller.firstPacketMs - 1000) <= 40, `event at ${ev.atMs}`);
    const L = r.wavs[0]!.channels_[0] as Float64Array;
    const s = firstSound(L);
    assert.equal(rms(L, s + ms(1010), s + ms(1190)), 0, 'no tone (and no event bytes) where the digit was');
  });

  test('malformed RTP (truncated, wrong version, CSRC overrun, bad padding) is counted and dropped, the call is unharmed', async () => {
    const b64 = (a: number[]) => Buffer.from(a).toString('base64');
    const raw = [
      { atMs: 300, base64: b64([0x80, 0, 0, 1, 0, 0, 0, 2]) },
      { atMs: 320, base64: b64([0x40, 0, 0, 1, 0, 0, 0, 2, 0, 0, 4, 87, 1, 2, 3, 4]) },
      { atMs: 340, base64: b64([0x8f, 0, 0, 1, 0, 0, 0, 2, 0, 0, 4, 87, 1, 2, 3, 4]) },
      { atMs: 360, base64: b64([0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 4, 87, 1, 2, 3, 200]) },
      { atMs: 380, base64: b64([0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 4, 87, 0xbe, 0xde, 0, 50]) },
    ];
    const r = await recordCall(d, {
      callId: 'malformed',
      announceSsrc: true,
      caller: { freq: 440, durationMs: 2000, raw },
      callee: { freq: 1000, durationMs: 2000 },
    });
    assert.equal(r.sent.caller!.rawSent, 5);
    assert.equal(r.meta.legs.caller.nonMediaBytes, r.sent.caller!.rawBytes, 'every malformed byte accounted for');
    assert.equal(r.meta.legs.callee.nonMediaBytes, 0);
    assert.deepEqual([r.meta.legs.caller.received, r.meta.legs.caller.lost], [100, 0]);
    const L = r.wavs[0]!.channels_[0] as Float64Array;
    const s = firstSound(L);
    assert.ok(soundFraction(L, s, s + ms(1900)) > 0.99);
  });
});

describe('channel modes', { concurrency: true }, () => {
  for (const mode of ['separate', 'caller', 'callee'] as const) {
    test(`${mode}: files and channels as configured`, async () => {
      const d = await DaemonProcess.start({ yaml: testConfigYaml(`recording:\n  channelMode: ${mode}\n`) });
      try {
        const r = await recordCall(d, { callId: `mode-${mode}`, caller: { freq: 440, durationMs: 1500 }, callee: { freq: 1000, durationMs: 1500 } });
        const names = r.meta.files.map((f: { name: string }) => f.name);
        const want = { separate: ['caller', 'callee'], caller: ['caller'], callee: ['callee'] }[mode];
        assert.deepEqual(
          names,
          want.map((w) => `${r.recordingId}-${w}.wav`),
        );
        want.forEach((leg, i) => {
          const wav = r.wavs[i]!;
          assert.equal(wav.channels, 1);
          const x = wav.channels_[0] as Float64Array;
          assert.ok(leg === 'caller' ? dominates(x, 440, 1000) : dominates(x, 1000, 440), `${leg} file holds the ${leg}'s tone`);
        });
      } finally {
        assert.equal(await d.stop(), 0);
      }
    });
  }
});

test('20 concurrent calls from one sender: every recording has its own two tones in the right channels', async () => {
  const d = await DaemonProcess.start();
  try {
    // Even calls announce their SSRCs (as from SDP a=ssrc); odd calls leave them to discovery.
    const calls = await recordCalls(
      d,
      Array.from({ length: 20 }, (_, i) => ({
        callId: `conc-${i}`,
        announceSsrc: i % 2 === 0,
        caller: { freq: 300 + 25 * i, durationMs: 3000 },
        callee: { freq: 1500 + 50 * i, durationMs: 3000 },
      })),
    );
    calls.forEach((r, i) => {
      const [L, R] = r.wavs[0]!.channels_ as [Float64Array, Float64Array];
      assert.ok(dominates(L, 300 + 25 * i, 1500 + 50 * i), `call ${i} left`);
      assert.ok(dominates(R, 1500 + 50 * i, 300 + 25 * i), `call ${i} right`);
      // No cross-talk: the neighbouring call's tones (25/50 Hz away: needs the whole file's resolution) are absent.
      const j = (i + 1) % 20;
      assert.ok(tonePower(L, 300 + 25 * i) > 100 * tonePower(L, 300 + 25 * j), `call ${i} left has no audio of call ${j}`);
      assert.ok(tonePower(R, 1500 + 50 * i) > 100 * tonePower(R, 1500 + 50 * j), `call ${i} right has no audio of call ${j}`);
      for (const leg of ['caller', 'callee'] as const) {
        const m = r.meta.legs[leg];
        assert.equal(m.lost, 0, `call ${i} ${leg} lost`);
        if (i % 2 === 0) assert.equal(m.received, 150, `call ${i} ${leg}: an announced SSRC loses nothing`);
        // Discovery in a burst of 40 new legs costs start-up packets (measured up to ~0.9 s); never the call.
        else assert.ok(m.received >= 100, `call ${i} ${leg}: discovered after ${150 - m.received} packets`);
      }
    });
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
