import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, errText, ROOT, startCall, testConfigYaml } from './support/daemon.js';
import { parsePrometheusText, sampleValue, type Family } from './support/promtext.js';
import { recordCall } from './support/record.js';

async function scrapeText(d: DaemonProcess): Promise<string> {
  const line = await d.waitFor((l) => l.msg === 'metrics listening');
  const res = await fetch(`http://${line.metrics as string}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

async function scrape(d: DaemonProcess): Promise<Map<string, Family>> {
  return parsePrometheusText(await scrapeText(d));
}

const PROMTOOL = path.join(ROOT, 'node_modules/.bin/promtool');

describe('metrics: a real HTTP scrape of /metrics after a real call', () => {
  let d: DaemonProcess;
  before(async () => {
    // SIP on, so its metrics are exported (and must have panels) too.
    d = await DaemonProcess.start({ yaml: testConfigYaml('sip:\n  listen: 127.0.0.1:0\n  allowedSources: [127.0.0.1]\n') });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  test('follow Prometheus naming and count what happened', async () => {
    const rec = await recordCall(d, {
      callId: 'metrics-1',
      announceSsrc: true,
      caller: { freq: 440, durationMs: 2000 },
      callee: { freq: 1000, durationMs: 1000 },
    });
    assert.equal((await startCall(d, { callId: 'metrics-2' })).recordingId.length > 0, true);
    assert.equal(
      (
        await d.api('POST', '/v1/calls', {
          callId: 'metrics-2',
          direction: 'inbound',
          caller: { number: '1' },
          callee: { number: '2' },
          codec: 'PCMU',
        })
      ).status,
      409,
    );
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
    assert.equal(
      sampleValue(m, 'callvault_build_info', { version: JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).version }),
      1,
    );
    const buckets = m
      .get('callvault_seal_duration_seconds')!
      .samples.filter((s) => s.name.endsWith('_bucket'))
      .map((s) => s.value);
    assert.deepEqual(
      [...buckets].sort((a, b) => a - b),
      buckets,
      'histogram buckets are cumulative',
    );
    assert.equal((await d.api('DELETE', '/v1/calls/metrics-2')).status, 202);
  });

  test('the Grafana dashboard (config/grafana-dashboard.json) queries only metrics the daemon exports, in PromQL promtool accepts', async () => {
    const dash = JSON.parse(await readFile(path.join(ROOT, 'config/grafana-dashboard.json'), 'utf8'));
    const exprs: string[] = dash.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr));
    assert.ok(exprs.length >= 20, `${exprs.length} queries`);
    const families = await scrape(d);
    const used = new Set(exprs.flatMap((e) => e.match(/\b(callvault|process|nodejs)_[a-z0-9_]+/g) ?? []));
    for (const name of used) {
      const family = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(families.has(name) || families.has(family), `${name} is exported`);
    }
    for (const name of families.keys()) {
      if (name.startsWith('callvault_') && name !== 'callvault_build_info')
        assert.ok(
          [...used].some((u) => u.startsWith(name)),
          `${name} has a panel`,
        );
    }
    if (!existsSync(PROMTOOL)) return;
    const rules = { groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] };
    const file = path.join(d.dataDir, 'dashboard-rules.json');
    await writeFile(file, JSON.stringify(rules));
    const check = spawnSync(PROMTOOL, ['check', 'rules', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  test("promtool check metrics (Debian prometheus 2.42): callvault's own metrics are lint-clean", {
    skip: !existsSync(PROMTOOL) && 'promtool not installed (scripts/install-promtool.sh)',
  }, async () => {
    const text = await scrapeText(d);
    const lint = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const problems = (lint.stdout + lint.stderr).split('\n').filter(Boolean);
    // prom-client's default metrics name three gauges *_total; they are not ours to rename.
    const theirs = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
    assert.deepEqual(
      problems.filter((p) => !theirs.test(p)),
      [],
    );
    // promtool did run and parse: a broken exposition is reported.
    const broken = spawnSync(PROMTOOL, ['check', 'metrics'], { input: 'callvault_x_total{ 1\n', encoding: 'utf8' });
    assert.notEqual(broken.status, 0);
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
    assert.match(errText(failed.err), /YAML syntax|line \d+/);
    assert.equal(sampleValue(await scrape(d), 'callvault_config_last_reload_successful'), 0);
    // Still recording on the old config.
    const old = await startCall(d, { callId: 'after-bad-reload' });
    assert.equal((await d.api('DELETE', '/v1/calls/after-bad-reload')).status, 202);
    assert.equal((await d.waitForState(old.recordingId, 'sealed')).metadata.channelMode, 'stereo');

    await writeFile(d.configFile, `${testConfigYaml()}recording:\n  channelMode: separate\n`);
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
    assert.deepEqual(
      d.logs.slice(quiet).filter((l) => l.level === 'info' || l.level === 'debug'),
      [],
      'the new level applies at once',
    );
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
