/**
 * RTP from where it should not come: an attacker racing the PBX to a fresh
 * port, sending alongside it, a PBX still sending to an ended call's port,
 * and packets with the real SSRC and random sequence numbers. None of it may
 * reach a recording, and the counters must say what happened.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildRtp } from '../daemon/media/rtp.js';
import { dominates, readWav } from './support/audio.js';
import { DaemonProcess, sendRtp, testConfigYaml } from './support/daemon.js';
import { parsePrometheusText } from './support/promtext.js';
import { toneStream } from './support/rtpPlan.js';

const PBX = { caller: 440, callee: 1000 };
const ATTACK = 3000;

const stream = toneStream;

describe('hostile RTP (real mediasoup worker, senders in another process)', () => {
  let d: DaemonProcess;
  before(async () => {
    d = await DaemonProcess.start({ yaml: testConfigYaml().replace('portMax: 29999', 'portMax: 20019\n  portQuarantineSeconds: 120') });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  async function start(callId: string, legs: { caller?: object; callee?: object } = {}) {
    const r = await d.api('POST', '/v1/calls', {
      callId,
      direction: 'inbound',
      codec: 'PCMU',
      caller: { number: '+4930111', ...legs.caller },
      callee: { number: '+4930222', ...legs.callee },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body as { recordingId: string; legs: { caller: { port: number }; callee: { port: number } } };
  }

  async function finish(callId: string, recordingId: string) {
    assert.equal((await d.api('DELETE', `/v1/calls/${callId}`)).status, 202);
    const st = await d.waitForState(recordingId, 'sealed');
    const wav = await readWav(path.join(st.dir, st.metadata.files[0].name));
    return { meta: st.metadata, left: wav.channels_[0] as Float64Array, right: wav.channels_[1] as Float64Array };
  }

  test('with caller.media/callee.media given, RTP from any other source never reaches the recording, before or during the call', async () => {
    const src = { caller: randomInt(31000, 31500), callee: randomInt(31500, 32000) };
    const ssrc = { caller: randomInt(1, 2 ** 31), callee: randomInt(1, 2 ** 31) };
    const call = await start('connected-1', {
      caller: { media: { ip: '127.0.0.1', port: src.caller }, ssrc: ssrc.caller },
      callee: { media: { ip: '127.0.0.1', port: src.callee }, ssrc: ssrc.callee },
    });
    await sendRtp({
      streams: [
        // The attacker knows the SSRCs and starts first; it keeps sending all along.
        stream(call.legs.caller.port, ATTACK, { ssrc: ssrc.caller, durationMs: 1700 }),
        stream(call.legs.callee.port, ATTACK, { ssrc: ssrc.callee, durationMs: 1700 }),
        stream(call.legs.caller.port, PBX.caller, { ssrc: ssrc.caller, startMs: 200, fromPort: src.caller }),
        stream(call.legs.callee.port, PBX.callee, { ssrc: ssrc.callee, startMs: 200, fromPort: src.callee }),
      ],
    });
    const { meta, left, right } = await finish('connected-1', call.recordingId);
    assert.ok(dominates(left, PBX.caller, ATTACK), 'left holds the PBX caller, not the attacker');
    assert.ok(dominates(right, PBX.callee, ATTACK), 'right holds the PBX callee, not the attacker');
    assert.equal(meta.legs.caller.source, `127.0.0.1:${src.caller}`);
    assert.ok(meta.legs.caller.received <= 75, `only the PBX's 75 packets: ${meta.legs.caller.received}`);
    assert.ok(meta.legs.caller.nonMediaBytes > 10_000, 'the dropped packets are counted as non-media bytes on the port');
  });

  test('without a media address, a first sender outside the allowed sources is refused and the port re-armed for the PBX', async () => {
    const ssrc = randomInt(1, 2 ** 31);
    // Caller with an announced SSRC, callee found by discovery: both paths refuse the intruder.
    const call = await start('comedia-1', { caller: { ssrc } });
    await sendRtp({
      streams: [
        stream(call.legs.caller.port, ATTACK, { ssrc, durationMs: 300, fromHost: '127.0.0.2' }),
        stream(call.legs.callee.port, ATTACK, { durationMs: 300, fromHost: '127.0.0.2' }),
        stream(call.legs.caller.port, PBX.caller, { ssrc, startMs: 500 }),
        stream(call.legs.callee.port, PBX.callee, { startMs: 500 }),
        // And again once the PBX has the legs: dropped as a second source.
        stream(call.legs.caller.port, ATTACK, { ssrc, startMs: 1000, durationMs: 600, fromHost: '127.0.0.2' }),
        stream(call.legs.callee.port, ATTACK, { startMs: 1000, durationMs: 600, fromHost: '127.0.0.2' }),
      ],
    });
    const { meta, left, right } = await finish('comedia-1', call.recordingId);
    assert.ok(dominates(left, PBX.caller, ATTACK), 'left holds the PBX caller');
    assert.ok(dominates(right, PBX.callee, ATTACK), 'right holds the PBX callee');
    for (const leg of ['caller', 'callee'] as const) {
      assert.ok(
        meta.legs[leg].refusedSources.length >= 1 && meta.legs[leg].refusedSources.every((s: string) => s.startsWith('127.0.0.2:')),
        `${leg}: ${meta.legs[leg].refusedSources}`,
      );
      assert.match(meta.legs[leg].source, /^127\.0\.0\.1:\d+$/);
      assert.ok(meta.legs[leg].received >= 60, `${leg} got the PBX's packets after re-arming: ${meta.legs[leg].received}`);
    }
    const text = await (await fetch(`http://${(await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string}/metrics`)).text();
    const refused = parsePrometheusText(text).get('callvault_rtp_refused_sources_total')?.samples ?? [];
    assert.ok(refused.reduce((n, s) => n + s.value, 0) >= 2, JSON.stringify(refused));
    const foreign = parsePrometheusText(text).get('callvault_rtp_foreign_packets_total')?.samples[0]?.value ?? 0;
    assert.ok(foreign >= 40, `second-source packets counted: ${foreign}`);
    assert.ok(
      d.logs.some((l) => l.level === 'warn' && /second source dropped/.test(l.msg)),
      'second source logged',
    );
    assert.ok(
      d.logs.some((l) => l.level === 'warn' && /outside media.allowedSources/.test(l.msg)),
      'logged',
    );
  });

  test("a PBX still sending to an ended call's ports never reaches the next call: released ports are quarantined", async () => {
    const a = await start('reuse-a');
    const aPorts = [a.legs.caller.port, a.legs.callee.port];
    const sendingA = sendRtp({
      streams: [stream(aPorts[0] as number, 523, { durationMs: 3000 }), stream(aPorts[1] as number, 1568, { durationMs: 3000 })],
    });
    await new Promise((r) => setTimeout(r, 600));
    await finish('reuse-a', a.recordingId);
    const b = await start('reuse-b');
    assert.ok(
      !aPorts.includes(b.legs.caller.port) && !aPorts.includes(b.legs.callee.port),
      `B got ${b.legs.caller.port}/${b.legs.callee.port}, A had ${aPorts}`,
    );
    await sendRtp({
      streams: [stream(b.legs.caller.port, PBX.caller, { durationMs: 1000 }), stream(b.legs.callee.port, PBX.callee, { durationMs: 1000 })],
    });
    await sendingA;
    const { left, right } = await finish('reuse-b', b.recordingId);
    assert.ok(dominates(left, PBX.caller, 523) && dominates(right, PBX.callee, 1568), "B's recording holds B's audio only");
  });

  test('packets with the real SSRC and random sequence numbers are counted as out of sequence and leave loss truthful', async () => {
    const ssrc = randomInt(1, 2 ** 31);
    const call = await start('spoof-seq', { caller: { ssrc } });
    // Four forged packets per real one (the PBX's own address, its SSRC, random sequence numbers).
    const raw = Array.from({ length: 280 }, (_, k) => ({
      atMs: 5 + k * 5,
      base64: buildRtp(
        { marker: false, payloadType: 0, sequence: randomInt(0, 65536), timestamp: randomInt(0, 2 ** 32), ssrc },
        Buffer.alloc(160, 0x13),
      ).toString('base64'),
    }));
    await sendRtp({ streams: [stream(call.legs.caller.port, PBX.caller, { ssrc, raw }), stream(call.legs.callee.port, PBX.callee)] });
    const sent = 75; // 1500 ms of 20 ms frames
    const { meta } = await finish('spoof-seq', call.recordingId);
    const leg = meta.legs.caller;
    // mediasoup drops real packets that a spoof pushed behind its own highest sequence number (only an
    // attacker who forges the PBX's own address gets that far; SRTP is the answer to that one): those
    // are missing from the audio and rightly lost. What must not happen is loss in the hundreds of thousands.
    // What reaches us is mediasoup's renumbered stream: when its own sequence tracking restarts on a
    // forged packet it may shift the real packets' numbers by up to its window, which reads as a gap of
    // that size. So the bound, not equality: the previous main counted 13,542-17,344 lost here.
    assert.ok(leg.received <= sent + 5, `received ${leg.received} of ${sent} real packets`);
    assert.ok(leg.received + leg.lost >= sent && leg.lost < 1000, `received ${leg.received}, lost ${leg.lost} for ${sent} real packets`);
    assert.ok(leg.outOfSequence > 0, 'forged packets that reached the timeline are counted as what they are');
  });

  test('ports are chosen at random, not in sequence', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await start(`random-${i}`);
      ports.push(c.legs.caller.port, c.legs.callee.port);
      await d.api('DELETE', `/v1/calls/random-${i}`);
    }
    const sequential = ports.every((p, i) => i === 0 || p === (ports[i - 1] as number) + 1);
    assert.ok(!sequential, `ports ${ports}`);
  });
});
