/**
 * Media shards (issue 21, part 3): calls spread over the shards by load, a
 * shard killed mid-call is started again while the other shard's calls go
 * on untouched, and its calls are recovered from disk and sealed; a shard
 * that stalls gets no call stuck on it; with `media.shards: 0` the packets
 * are handled on the daemon's thread as before.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HEAP_FLAGS } from '../daemon/capacity/heapFlags.js';
import { OPEN_TIMEOUT_MS } from '../daemon/shard/ShardedPlane.js';
import { DaemonProcess, MAIN, requestCall, sendRtp, startCall, testConfigYaml } from './support/daemon.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';
import { toneStream } from './support/rtpPlan.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ssrc = (i: number, leg: number) => 3000 + i * 10 + leg;
/** A shard runs with HEAP_FLAGS: without them its young generation grows to 16 MB semi-spaces, ~240 KB of RSS a call at 500. */
const smallYoungGeneration = (pid: number) => {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return HEAP_FLAGS.every((f) => argv.includes(f));
};

/** Tones on both legs of call `c` (SSRCs of pair `i`) for `ms`, then the call ended: what was sent and the sealed metadata. */
async function recordTones(d: DaemonProcess, c: any, callId: string, i: number, ms: number) {
  const sent = await sendRtp({
    streams: [
      toneStream(c.legs.caller.port, 500, { durationMs: ms, ssrc: ssrc(i, 0) }),
      toneStream(c.legs.callee.port, 900, { durationMs: ms, ssrc: ssrc(i, 1) }),
    ],
  });
  await d.api('DELETE', `/v1/calls/${callId}`);
  const md = (await d.waitForState(c.recordingId, 'sealed', 20_000)).metadata;
  return { sent, md };
}

test('two media shards: calls go to the shard with fewer; a shard killed mid-call is restarted, its calls recovered from disk and sealed, the other shard loses nothing', async () => {
  const yaml = testConfigYaml().replace('media:\n  workers: 1\n', 'media:\n  shards: 2\n  workers: 2\n');
  const d = await DaemonProcess.start({ yaml });
  try {
    const [pid0, pid1] = [d.shardPid(0), d.shardPid(1)];
    assert.notEqual(pid0, pid1);
    for (const pid of [pid0, pid1]) assert.ok(smallYoungGeneration(pid), `shard ${pid} runs with ${HEAP_FLAGS}`);
    // Shard 0 takes 20000-24999, shard 1 25000-29999.
    const shardOf = (port: number) => (port < 25000 ? 0 : 1);
    const calls = [];
    for (let i = 0; i < 4; i++) calls.push(await startCall(d, { callId: `sh-${i}`, callerSsrc: ssrc(i, 0), calleeSsrc: ssrc(i, 1) }));
    const shards = calls.map((c) => shardOf(c.legs.caller.port));
    assert.deepEqual(
      calls.map((c) => shardOf(c.legs.callee.port)),
      shards,
      'both legs of a call on one shard',
    );
    assert.deepEqual([...shards].sort(), [0, 0, 1, 1], 'two calls each');
    const sending = sendRtp({
      streams: calls.flatMap((c, i) => [
        toneStream(c.legs.caller.port, 400 + i * 100, { durationMs: 6000, ssrc: ssrc(i, 0) }),
        toneStream(c.legs.callee.port, 1000 + i * 100, { durationMs: 6000, ssrc: ssrc(i, 1) }),
      ]),
    });
    await sleep(2500);
    process.kill(pid0, 'SIGKILL');
    const died = await d.waitFor((l) => l.msg.startsWith('media shard died'), 5000);
    assert.equal(died.shard, 0);
    assert.equal(died.calls, 2);
    const restarted = await d.waitFor((l) => l.msg === 'media shard ready' && l.shard === 0 && l.pid !== pid0, 10_000);
    const sent = await sending;
    const lost = calls.filter((_, i) => shards[i] === 0);
    for (const c of lost) {
      const st = await d.waitForState(c.recordingId, 'sealed', 20_000);
      const md = st.metadata;
      assert.equal(md.recovered, true, `${c.recordingId} recovered from disk`);
      assert.equal(md.endReason, 'recovered');
      // What reached the disk before the kill is kept: at least 2 s of the 2.5 s (the jitter window and the last writes may go).
      assert.ok(md.durationMs >= 2000 && md.durationMs <= 3500, `recovered ${md.durationMs} ms`);
      const verify = execFileSync(process.execPath, [MAIN, 'verify', st.dir, '--data-dir', d.dataDir, '--json'], { encoding: 'utf8' });
      assert.equal(JSON.parse(verify).signature, 'OK');
    }
    // A new call after the restart goes to the shard with fewer calls: the one started again.
    const next = await startCall(d, { callId: 'sh-after', callerSsrc: ssrc(9, 0), calleeSsrc: ssrc(9, 1) });
    assert.equal(shardOf(next.legs.caller.port), 0);
    assert.equal(d.shardPid(0), restarted.pid);
    assert.ok(smallYoungGeneration(d.shardPid(0)), 'and so does the shard started again');
    const after = await sendRtp({
      streams: [
        toneStream(next.legs.caller.port, 700, { durationMs: 1500, ssrc: ssrc(9, 0) }),
        toneStream(next.legs.callee.port, 1300, { durationMs: 1500, ssrc: ssrc(9, 1) }),
      ],
    });
    for (const [i, c] of calls.entries()) {
      if (shards[i] !== 1) continue;
      await d.api('DELETE', `/v1/calls/sh-${i}`);
      const md = (await d.waitForState(c.recordingId, 'sealed', 20_000)).metadata;
      assert.equal(md.recovered, false);
      assert.equal(md.legs.caller.received, sent[i * 2]!.sent, 'the other shard lost nothing');
      assert.equal(md.legs.callee.received, sent[i * 2 + 1]!.sent);
    }
    await d.api('DELETE', '/v1/calls/sh-after');
    const md = (await d.waitForState(next.recordingId, 'sealed', 20_000)).metadata;
    assert.equal(md.legs.caller.received, after[0]!.sent, 'the restarted shard records');
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.equal(sampleValue(m, 'callvault_media_shards'), 2);
    assert.equal(sampleValue(m, 'callvault_media_shard_deaths_total'), 1);
  } finally {
    assert.equal(await d.stop(), 0);
  }
  // No shard outlives the daemon: nothing is left holding the data dir.
  const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(path.join('shard', 'shardMain.js')) && l.includes(process.execPath));
  assert.deepEqual(left, []);
});

test('media.shards 0: the packets are handled on the daemon thread (no shard process), every packet recorded', async () => {
  const yaml = testConfigYaml().replace('media:\n', 'media:\n  shards: 0\n');
  const d = await DaemonProcess.start({ yaml });
  try {
    assert.equal(
      d.logs.some((l) => l.msg === 'media shard ready'),
      false,
    );
    const children = readFileSync(`/proc/${d.child.pid}/task/${d.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    for (const pid of children)
      assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /mediasoup-worker/, 'only mediasoup workers below the daemon');
    const c = await startCall(d, { callId: 'inproc', callerSsrc: ssrc(5, 0), calleeSsrc: ssrc(5, 1) });
    const { sent, md } = await recordTones(d, c, 'inproc', 5, 1500);
    assert.equal(md.legs.caller.received, sent[0]!.sent);
    assert.equal(md.legs.callee.received, sent[1]!.sent);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('a shard that stops answering: the next call is refused with 503 SHARD_BUSY and Retry-After instead of waiting on it; the call the shard opens late is undone (no directory, no marker) and the call id records again', async () => {
  const yaml = testConfigYaml().replace('media:\n', 'media:\n  shards: 1\n');
  const d = await DaemonProcess.start({ yaml });
  const shard = d.shardPid(0);
  try {
    const markers = () => readdirSync(path.join(d.dataDir, 'active'));
    const before = markers().length;
    // SIGSTOP: the process is there, its IPC channel open, and nothing answers — a shard stalled on its disk or starved of CPU.
    process.kill(shard, 'SIGSTOP');
    const t0 = performance.now();
    const res = await requestCall(d, { callId: 'stalled' });
    const waited = performance.now() - t0;
    const body = res.body as { error: string; message: string };
    assert.equal(res.status, 503);
    assert.equal(body.error, 'SHARD_BUSY');
    assert.match(body.message, /media shard 0 did not open the call within 5 s/);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.ok(waited >= OPEN_TIMEOUT_MS - 100 && waited < OPEN_TIMEOUT_MS + 5000, `answered after ${waited.toFixed(0)} ms`);
    assert.equal(markers().length, before + 1, 'the marker stays while the shard may still open the call');
    const [recordingId] = markers();
    process.kill(shard, 'SIGCONT');
    await d.waitFor((l) => l.msg === 'a call opened after the daemon gave up on it was undone' && l.recordingId === recordingId, 10_000);
    for (let i = 0; i < 50 && markers().length > before; i++) await sleep(100);
    assert.equal(markers().length, before, 'marker removed once the shard undid the call');
    const dirs = execFileSync('find', [d.dataDir, '-name', `${recordingId}*`], { encoding: 'utf8' }).trim();
    assert.equal(dirs, '', 'nothing of the refused call is left on disk');
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.equal(sampleValue(m, 'callvault_calls_rejected_total', { reason: 'SHARD_BUSY' }), 1);
    // The SRC retries under the same call id: refused while admission still counts the stall against the
    // shard (its load is taken over the last 3 s), then recorded by the same shard, answering again.
    let retry = await requestCall(d, { callId: 'stalled', callerSsrc: ssrc(7, 0), calleeSsrc: ssrc(7, 1) });
    for (let i = 0; i < 20 && retry.status === 503; i++) {
      assert.equal(retry.body.error, 'CAPACITY');
      await sleep(500);
      retry = await requestCall(d, { callId: 'stalled', callerSsrc: ssrc(7, 0), calleeSsrc: ssrc(7, 1) });
    }
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    const { sent, md } = await recordTones(d, retry.body, 'stalled', 7, 1000);
    assert.equal(md.legs.caller.received, sent[0]!.sent);
    assert.equal(d.shardPid(0), shard, 'the shard was not restarted: it only stalled');
  } finally {
    try {
      process.kill(shard, 'SIGCONT');
    } catch {
      // Gone already.
    }
    assert.equal(await d.stop(), 0);
  }
});
