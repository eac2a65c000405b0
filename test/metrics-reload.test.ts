import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, startCall, testConfigYaml } from './support/daemon.js';
import { parsePrometheusText, sampleValue, type Family } from './support/promtext.js';
import { recordCall } from './support/record.js';

async function scrape(d: DaemonProcess): Promise<Map<string, Family>> {
  const line = await d.waitFor((l) => l.msg === 'metrics listening');
  const res = await fetch(`http://${line.metrics as string}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

describe('metrics: a real HTTP scrape of /metrics after a real call', () => {
  let d: DaemonProcess;
  before(async () => {
    d = await DaemonProcess.start();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  test('follow Prometheus naming and count what happened', async () => {
    const rec = await recordCall(d, { callId: 'metrics-1', announceSsrc: true, caller: { freq: 440, durationMs: 2000 }, callee: { freq: 1000, durationMs: 1000 } });
    assert.equal((await startCall(d, { callId: 'metrics-2' })).recordingId.length > 0, true);
    assert.equal((await d.api('POST', '/v1/calls', { callId: 'metrics-2', direction: 'inbound', caller: { number: '1' }, callee: { number: '2' }, codec: 'PCMU' })).status, 409);
    const m = await scrape(d);
    for (const f of m.values()) {
      assert.ok(f.help, `${f.name} has HELP`);
      if (f.type === 'counter') assert.match(f.name, /_total$/, `${f.name}: counters end in _total`);
      if (f.name.startsWith('callvault_')) assert.doesNotMatch(f.name, /_(ms|milliseconds|kb|mb)(_|$)/, `${f.name}: base units`);
    }
    assert.equal(sampleValue(m, 'callvault_active_calls'), 1);
    assert.equal(sampleValue(m, 'callvault_calls_started_total'), 2);
    assert.equal(sampleValue(m, 'callvault_calls_recorded_total', { end_reason: 'api' }), 1);
    assert.equal(sampleValue(m, 'callvault_calls_rejected_total', { reason: 'DUPLICATE_CALL' }), 1);
    const sentCaller = rec.sent.caller!.sent;
    assert.equal(sampleValue(m, 'callvault_rtp_packets_received_total', { leg: 'caller' }), rec.meta.legs.caller.received);
    assert.ok(rec.meta.legs.caller.received >= sentCaller - 1, `received ${rec.meta.legs.caller.received} of ${sentCaller}`);
    assert.equal(sampleValue(m, 'callvault_rtp_packets_received_total', { leg: 'callee' }), rec.meta.legs.callee.received);
    assert.equal(sampleValue(m, 'callvault_rtp_packets_lost_total', { leg: 'caller' }), 0);
    const bytes = (rec.meta.files as { dataBytes: number }[]).reduce((s, f) => s + f.dataBytes, 0);
    assert.ok(sampleValue(m, 'callvault_recording_bytes_written_total') >= bytes);
    assert.equal(sampleValue(m, 'callvault_recordings_sealed_total'), 1);
    assert.equal(sampleValue(m, 'callvault_seal_duration_seconds_count'), 1);
    assert.equal(sampleValue(m, 'callvault_pool_task_duration_seconds_count', { task: 'hashFile' }), 2);
    assert.equal(sampleValue(m, 'callvault_pool_task_duration_seconds_count', { task: 'sign' }), 1);
    assert.equal(sampleValue(m, 'callvault_pool_queue_depth'), 0);
    assert.ok(sampleValue(m, 'callvault_data_dir_free_bytes') > 0);
    assert.equal(sampleValue(m, 'callvault_config_last_reload_successful'), 1);
    assert.ok(Math.abs(sampleValue(m, 'callvault_config_last_reload_success_timestamp_seconds') - Date.now() / 1000) < 120);
    assert.ok(sampleValue(m, 'process_cpu_user_seconds_total') > 0);
    assert.equal(sampleValue(m, 'callvault_build_info', { version: JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).version }), 1);
    const buckets = m.get('callvault_seal_duration_seconds')!.samples.filter((s) => s.name.endsWith('_bucket')).map((s) => s.value);
    assert.deepEqual([...buckets].sort((a, b) => a - b), buckets, 'histogram buckets are cumulative');
    assert.equal((await d.api('DELETE', '/v1/calls/metrics-2')).status, 202);
  });
});

test('SIGHUP: broken YAML keeps the old config (metric 0); a burst of SIGHUPs is one reload; new calls use the new config; log level applies at once', async () => {
  const d = await DaemonProcess.start();
  try {
    const good = await readFile(d.configFile, 'utf8');
    await writeFile(d.configFile, `${good}recording:\n  channelMode: [oops\n`);
    d.child.kill('SIGHUP');
    const failed = await d.waitFor((l) => l.msg === 'config reload failed; keeping the running config');
    assert.equal(failed.level, 'error');
    assert.match(String(failed.err), /YAML syntax|line \d+/);
    assert.equal(sampleValue(await scrape(d), 'callvault_config_last_reload_successful'), 0);
    // Still recording on the old config.
    const old = await startCall(d, { callId: 'after-bad-reload' });
    assert.equal((await d.api('DELETE', '/v1/calls/after-bad-reload')).status, 202);
    assert.equal((await d.waitForState(old.recordingId, 'sealed')).metadata.channelMode, 'stereo');

    await writeFile(d.configFile, testConfigYaml() + 'recording:\n  channelMode: separate\n');
    const mark = d.logs.length;
    // 10 ms apart, so the kernel delivers each (it merges pending signals of one kind).
    for (let i = 0; i < 5; i++) {
      d.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 10));
    }
    await d.waitFor((l) => l.msg === 'config reloaded');
    await new Promise((r) => setTimeout(r, 500));
    const reloads = d.logs.slice(mark).filter((l) => l.msg === 'config reloaded');
    assert.equal(reloads.length, 1, 'five SIGHUPs, one reload');
    assert.ok((reloads[0]!.signals as number) >= 2, `signals counted: ${String(reloads[0]!.signals)}`);
    assert.equal(sampleValue(await scrape(d), 'callvault_config_last_reload_successful'), 1);
    const call = await startCall(d, { callId: 'after-good-reload' });
    assert.equal((await d.api('DELETE', '/v1/calls/after-good-reload')).status, 202);
    assert.equal((await d.waitForState(call.recordingId, 'sealed')).metadata.channelMode, 'separate', 'new calls use the new config');

    await writeFile(d.configFile, testConfigYaml().replace('level: debug', 'level: error'));
    d.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 600));
    const quiet = d.logs.length;
    const last = await startCall(d, { callId: 'at-level-error' });
    assert.equal((await d.api('DELETE', '/v1/calls/at-level-error')).status, 202);
    await d.waitForState(last.recordingId, 'sealed');
    assert.deepEqual(d.logs.slice(quiet).filter((l) => l.level === 'info' || l.level === 'debug'), [], 'the new level applies at once');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
