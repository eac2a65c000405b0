/**
 * Admission by measured load (issue 21, part): with calls.admission's packet
 * limit, the call that would take the measured packet rate past it gets 503
 * CAPACITY with Retry-After while the running calls keep every packet; the
 * refusal and the signals show in metrics. And overload's last line: when
 * packets queue up in front of the daemon anyway, the newest call is shed
 * (an OVERLOAD gap) and taken again once the queue has drained.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DaemonProcess, requestCall, sendRtp, startCall, testConfigYaml } from './support/daemon.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';
import { CpuThrottle } from './support/cpuThrottle.js';
import { toneStream } from './support/rtpPlan.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('admission: past the measured packet limit the next call gets 503 CAPACITY with Retry-After; the running calls lose nothing', async () => {
  // Two calls (100 packets/s each) fit under 250 only until a third would add its 100.
  const yaml = testConfigYaml().replace('calls:\n', 'calls:\n  admission:\n    maxPacketsPerSecond: 250\n');
  const d = await DaemonProcess.start({ yaml });
  try {
    // SSRCs announced, as a PBX does: every packet counts from the first (none spent on discovery).
    const ssrc = (i: number, leg: number) => 1000 + i * 10 + leg;
    const calls = [0, 1].map((i) => startCall(d, { callId: `adm-${i + 1}`, callerSsrc: ssrc(i, 0), calleeSsrc: ssrc(i, 1) }));
    const started = await Promise.all(calls);
    const sending = sendRtp({
      streams: started.flatMap((c, i) => [
        toneStream(c.legs.caller.port, 440 + i * 100, { durationMs: 5000, ssrc: ssrc(i, 0) }),
        toneStream(c.legs.callee.port, 1000 + i * 100, { durationMs: 5000, ssrc: ssrc(i, 1) }),
      ]),
    });
    await new Promise((r) => setTimeout(r, 3500)); // the three one-second windows the rate is taken over
    const res = await requestCall(d, { callId: 'adm-3' });
    const body = res.body as { error: string; message: string };
    assert.equal(res.status, 503);
    assert.equal(body.error, 'CAPACITY');
    assert.match(body.message, /packetsPerSecond would be \d+ with this call, over calls.admission's 250/);
    assert.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After');
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.equal(sampleValue(m, 'callvault_calls_rejected_total', { reason: 'CAPACITY' }), 1);
    const pps = sampleValue(m, 'callvault_capacity_signal', { signal: 'packets_per_second' }) ?? 0;
    assert.ok(pps > 150 && pps < 250, `${pps} packets/s measured for two calls`);
    assert.ok((sampleValue(m, 'callvault_capacity_headroom') ?? 1) < 0, 'no headroom left');
    const lag = sampleValue(m, 'callvault_capacity_signal', { signal: 'ingest_lag_ms' }) ?? -1;
    assert.ok(lag > 0 && lag < 100, `ingest lag measured through the worker: ${lag} ms`);
    const sent = await sending;
    await new Promise((r) => setTimeout(r, 500)); // the last packets through the jitter buffer before the calls end
    for (const [i, c] of started.entries()) {
      await d.api('DELETE', `/v1/calls/adm-${i + 1}`);
      const st = await d.waitForState(c.recordingId, 'sealed', 20_000);
      for (const [j, role] of (['caller', 'callee'] as const).entries()) {
        const leg = st.metadata.legs[role];
        assert.equal(leg.received, sent[i * 2 + j]!.sent, `${c.recordingId} ${role}: every packet`);
        assert.equal(leg.lost, 0);
        assert.equal(leg.late, 0);
      }
    }
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('overload: while packets wait past media.maxIngestLagMs (the media shard held to 0.2 % of a core) the newest calls are shed, their recordings mark the OVERLOAD gap, and they are recorded again once the lag is down; the oldest call is never shed; a new call is refused with 503 meanwhile', async () => {
  const yaml = testConfigYaml().replace('media:\n', 'media:\n  maxIngestLagMs: 300\n');
  // calls.admission as by default (the event loop's utilization, 0.75).
  const d = await DaemonProcess.start({ yaml });
  const throttle = await CpuThrottle.create(`callvault-shed-${process.pid}`);
  // The media shard handles the packets: it is the process that falls behind.
  const pid = d.shardPid();
  try {
    const n = 6;
    const ssrc = (i: number, leg: number) => 2000 + i * 10 + leg;
    const started = [];
    // One after another: the last is the newest.
    for (let i = 0; i < n; i++) started.push(await startCall(d, { callId: `shed-${i + 1}`, callerSsrc: ssrc(i, 0), calleeSsrc: ssrc(i, 1) }));
    const sending = sendRtp({
      streams: started.flatMap((c, i) => [
        toneStream(c.legs.caller.port, 400 + i * 100, { durationMs: 30_000, ssrc: ssrc(i, 0) }),
        toneStream(c.legs.callee.port, 1000 + i * 100, { durationMs: 30_000, ssrc: ssrc(i, 1) }),
      ]),
    });
    await sleep(2000);
    // The media shard gets 0.2 % of a core for 7 to 20 s (one that handles only packets keeps up with 6 calls on 1 %): its worker goes on receiving, the packets queue up in front of it.
    // So starved, its own lag probe waits behind that queue: its late reports are what show the lag.
    await throttle.limit(pid, 0.2);
    const shed = await d.waitFor((l) => l.msg.startsWith('overload: packets wait too long'), 15_000);
    // The log rounds to whole milliseconds: 300.4 ms is past the limit and logs as 300.
    assert.ok((shed.lagMs as number) >= 300, `lag when shedding: ${shed.lagMs} ms`);
    // Utilization is taken over 5 s: by then the loop has been busy all along.
    await sleep(5000);
    // Meanwhile a new call is refused: the loop has been busy all along (the lag may be down again, calls being shed).
    const refused = await requestCall(d, { callId: 'shed-refused' });
    assert.equal(refused.status, 503);
    // Refused by admission, or — let in between two of the starved shard's reports — by the shard not opening it in time.
    if (refused.body.error === 'CAPACITY')
      assert.match(
        refused.body.message,
        /^at capacity: .*eventLoopUtilization would be (?:0\.\d+|1\.0)(?: with this call)?, over (?:calls.admission's )?0.75/,
      );
    else assert.equal(refused.body.error, 'SHARD_BUSY');
    await throttle.release();
    await d.waitFor((l) => l.msg === 'load down again: shed calls are recorded again', 8000);
    await sending;
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    const shedTotal = sampleValue(m, 'callvault_calls_shed_total') ?? 0;
    assert.ok(shedTotal >= 1);
    assert.equal(sampleValue(m, 'callvault_calls_shed'), 0, 'all taken again');
    const meta = [];
    for (const [i, c] of started.entries()) {
      await d.api('DELETE', `/v1/calls/shed-${i + 1}`);
      meta.push((await d.waitForState(c.recordingId, 'sealed', 30_000)).metadata);
    }
    const overload = (md: { gaps: { code: string; fromMs: number; toMs: number }[] }) => md.gaps.filter((g) => g.code === 'OVERLOAD');
    const shedCalls = meta.map((md) => overload(md).length > 0);
    assert.deepEqual(overload(meta[0]), [], 'the oldest call is not shed');
    assert.ok(shedCalls[n - 1], `the newest call has its OVERLOAD gap: ${JSON.stringify(meta[n - 1].gaps)}`);
    assert.deepEqual(shedCalls, [...shedCalls].sort(), `the newest go first: ${shedCalls}`);
    const [gap] = overload(meta[n - 1]);
    assert.ok(gap.fromMs > 2000 && gap.toMs > gap.fromMs && gap.toMs < meta[n - 1].durationMs - 1000, JSON.stringify(gap));
    const last = meta[n - 1].legs;
    const expectedAfter = ((meta[n - 1].durationMs - gap.toMs - 1500) / 20) * 2;
    assert.ok(last.caller.received + last.callee.received > expectedAfter, 'recorded again after the gap');
  } finally {
    await throttle.remove(pid);
    assert.equal(await d.stop(), 0);
  }
});

test('admission on the ingest lag (calls.admission.maxIngestLagMs 50): while packets queue up in front of the media shard (held to 0.2 % of a core) a new call gets 503 CAPACITY naming it', async () => {
  // Shedding out of the way (at most 60 s), so the queue builds and stays.
  const yaml = testConfigYaml()
    .replace('media:\n', 'media:\n  maxIngestLagMs: 60000\n')
    .replace('calls:\n', 'calls:\n  admission:\n    maxIngestLagMs: 50\n    maxEventLoopUtilization: null\n');
  const d = await DaemonProcess.start({ yaml });
  const throttle = await CpuThrottle.create(`callvault-lag-${process.pid}`);
  const pid = d.shardPid();
  try {
    const started = [];
    for (let i = 0; i < 6; i++) started.push(await startCall(d, { callId: `lag-${i}`, callerSsrc: 3000 + i, calleeSsrc: 3100 + i }));
    const sending = sendRtp({
      streams: started.flatMap((c, i) => [
        toneStream(c.legs.caller.port, 400, { durationMs: 12_000, ssrc: 3000 + i }),
        toneStream(c.legs.callee.port, 1000, { durationMs: 12_000, ssrc: 3100 + i }),
      ]),
    });
    await sleep(1500);
    assert.equal((await requestCall(d, { callId: 'lag-ok' })).status, 201, 'admitted while the lag is low');
    await throttle.limit(pid, 0.2);
    // Until the median of 5 s of probes is past 50 ms (a fixed 6 s was not always enough on a busy machine,
    // and a call admitted then waits on the throttled shard).
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    for (let i = 0; i < 40; i++) {
      const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
      if ((sampleValue(m, 'callvault_capacity_signal', { signal: 'ingest_lag_ms' }) ?? 0) > 50) break;
      await sleep(500);
    }
    const refused = await requestCall(d, { callId: 'lag-refused' });
    await throttle.release();
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error, 'CAPACITY');
    assert.match(refused.body.message, /^at capacity: ingestLagMs would be \d+ with this call, over calls.admission's 50$/);
    await sending;
  } finally {
    await throttle.remove(pid);
    assert.equal(await d.stop(), 0);
  }
});
