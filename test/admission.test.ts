/**
 * Admission by measured load (issue 21, part): with calls.admission's packet
 * limit, the call that would take the measured packet rate past it gets 503
 * CAPACITY with Retry-After while the running calls keep every packet; the
 * refusal and the signals show in metrics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DaemonProcess, sendRtp, startCall, testConfigYaml, TOKEN } from './support/daemon.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';
import { toneStream } from './support/rtpPlan.js';

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
    await new Promise((r) => setTimeout(r, 2500)); // two one-second windows measured
    const res = await fetch(`${d.controlUrl}/v1/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        callId: 'adm-3',
        direction: 'inbound',
        caller: { number: '+4930123456' },
        callee: { number: '+4989654321' },
        codec: 'PCMU',
      }),
    });
    const body = (await res.json()) as { error: string; message: string };
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
