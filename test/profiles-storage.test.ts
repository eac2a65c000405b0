import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DaemonProcess, requestCall, ROOT, sendRtp, startCall, testConfigYaml, type LogLine } from './support/daemon.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';

const profilesYaml = (archive: string, last = 'default') => `storage:
  archive:
    type: directory
    path: ${archive}
profiles:
  - name: private-lines
    match:
      numbers: ["+4930123499"]
    record: false
  - name: fx-desk
    match:
      groups: [fx]
      memberCalls: true
    channelMode: separate
    storage: [archive]
    retention: 7y
  - name: ${last}
`;

async function scrape(d: DaemonProcess) {
  const line = await d.waitFor((l) => l.msg === 'metrics listening');
  return parsePrometheusText(await (await fetch(`http://${line.metrics as string}/metrics`)).text());
}

async function endAndSeal(d: DaemonProcess, callId: string, recordingId: string, state = 'sealed'): Promise<any> {
  assert.equal((await d.api('DELETE', `/v1/calls/${callId}`)).status, 202);
  return d.waitForState(recordingId, state);
}

test('profiles over the control API: excluded, matched by group membership, default; the fx copy lands in the archive, verifiable there with shasum and openssl', async () => {
  const archive = await mkdtemp(path.join(os.tmpdir(), 'callvault-archive-'));
  const d = await DaemonProcess.start({ yaml: testConfigYaml(profilesYaml(archive)) });
  try {
    const excluded = await requestCall(d, { callId: 'private', callee: { number: '+4930123499' }, group: 'fx' });
    assert.deepEqual([excluded.status, excluded.body], [200, { callId: 'private', recorded: false, profile: 'private-lines' }]);
    const fx = await startCall(d, { callId: 'fx', callee: { number: '+4940111', user: 'bob', groups: ['fx'] } });
    assert.equal(fx.profile, 'fx-desk');
    const plain = await startCall(d, { callId: 'plain' });
    assert.equal(plain.profile, 'default');

    const fxSt = await endAndSeal(d, 'fx', fx.recordingId, 'uploaded');
    assert.equal(fxSt.metadata.channelMode, 'separate');
    assert.deepEqual(fxSt.metadata.profile, { name: 'fx-desk', storage: ['archive'], encryption: false, retention: '7y', dtmfDigits: 'discard' });
    const plainSt = await endAndSeal(d, 'plain', plain.recordingId);
    assert.equal(plainSt.metadata.channelMode, 'stereo');

    const copy = path.join(archive, path.relative(d.dataDir, fxSt.dir));
    assert.deepEqual((await readdir(copy)).sort(), (await readdir(fxSt.dir)).sort(), 'the archive holds every file of the recording');
    const shasum = spawnSync('shasum', ['-a', '256', '-c', `${fx.recordingId}.sha256`], { cwd: copy, encoding: 'utf8' });
    assert.equal(shasum.status, 0, shasum.stdout + shasum.stderr);
    const verify = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), copy, path.join(d.dataDir, 'identity/signing-cert.pem')], {
      encoding: 'utf8',
    });
    assert.equal(verify.status, 0, verify.stderr);
    assert.deepEqual(await readdir(path.dirname(copy)), [fx.recordingId], 'no staging directory left behind');

    const m = await scrape(d);
    assert.equal(sampleValue(m, 'callvault_calls_unrecorded_total', { profile: 'private-lines' }), 1);
    assert.equal(sampleValue(m, 'callvault_calls_started_total', { profile: 'fx-desk' }), 1);
    assert.equal(sampleValue(m, 'callvault_calls_started_total', { profile: 'default' }), 1);
    assert.equal(sampleValue(m, 'callvault_uploads_total', { target: 'archive', result: 'success' }), 1);
    assert.equal(sampleValue(m, 'callvault_upload_backlog', { target: 'archive' }), 0);
    assert.equal(sampleValue(m, 'callvault_upload_duration_seconds_count', { target: 'archive' }), 1);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('uploads: a broken target is retried with backoff; after SIGKILL the journal resumes the copy on restart', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-archive-'));
  const archive = path.join(root, 'mnt');
  await writeFile(archive, 'not a directory: the mount is missing');
  const yaml = testConfigYaml(profilesYaml(archive));
  let d = await DaemonProcess.start({ yaml });
  const fx = await startCall(d, { callId: 'fx-retry', group: 'fx' });
  await endAndSeal(d, 'fx-retry', fx.recordingId);
  const isFailure = (l: LogLine) => l.msg === 'upload failed; will retry';
  await d.waitFor((l) => isFailure(l) && l.attempt === 2, 10_000);
  const m = await scrape(d);
  assert.ok(sampleValue(m, 'callvault_uploads_total', { target: 'archive', result: 'failure' }) >= 2);
  assert.equal(sampleValue(m, 'callvault_upload_backlog', { target: 'archive' }), 1);
  const st = (await d.api('GET', `/v1/recordings/${fx.recordingId}`)).body;
  assert.equal(st.state, 'sealed');
  assert.equal(await d.stop('SIGKILL'), null);

  await rm(archive);
  await mkdir(archive);
  d = await DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile });
  try {
    await d.waitFor((l) => l.msg === 'resuming uploads left by the previous run' && l.count === 1);
    await d.waitForState(fx.recordingId, 'uploaded');
    const verify = spawnSync(
      'bash',
      [path.join(ROOT, 'scripts/verify.sh'), path.join(archive, path.relative(d.dataDir, st.dir)), path.join(d.dataDir, 'identity/signing-cert.pem')],
      { encoding: 'utf8' },
    );
    assert.equal(verify.status, 0, verify.stderr);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SIGHUP during RTP: new calls take the new profile, the running call keeps its own and loses no packet', async () => {
  const archive = await mkdtemp(path.join(os.tmpdir(), 'callvault-archive-'));
  const d = await DaemonProcess.start({ yaml: testConfigYaml(profilesYaml(archive, 'before')) });
  try {
    const ssrc = { caller: randomInt(1, 2 ** 31), callee: randomInt(1, 2 ** 31) };
    const a = await startCall(d, { callId: 'running', callerSsrc: ssrc.caller, calleeSsrc: ssrc.callee });
    assert.equal(a.profile, 'before');
    const stream = (role: 'caller' | 'callee', freq: number) => ({
      port: a.legs[role].port,
      law: 'PCMU' as const,
      payloadType: 0,
      ssrc: ssrc[role],
      seqStart: randomInt(0, 65536),
      tsStart: randomInt(0, 2 ** 32),
      freq,
      durationMs: 4000,
    });
    const sending = sendRtp({ streams: [stream('caller', 440), stream('callee', 1000)] });
    await new Promise((r) => setTimeout(r, 1000));
    await writeFile(d.configFile, testConfigYaml(profilesYaml(archive, 'after').replace('name: after', 'name: after\n    channelMode: caller')));
    d.child.kill('SIGHUP');
    await d.waitFor((l) => l.msg === 'config reloaded');
    const b = await startCall(d, { callId: 'new' });
    assert.equal(b.profile, 'after');
    const sent = await sending;
    const running = await endAndSeal(d, 'running', a.recordingId);
    assert.equal(running.metadata.profile.name, 'before');
    assert.equal(running.metadata.channelMode, 'stereo');
    for (const role of ['caller', 'callee'] as const) {
      const leg = running.metadata.legs[role];
      const s = sent.find((x) => x.port === a.legs[role].port)!;
      assert.deepEqual([leg.received, leg.lost, leg.late], [s.sent, 0, 0], `${role}: every packet sent reached the file`);
    }
    assert.equal((await endAndSeal(d, 'new', b.recordingId)).metadata.channelMode, 'caller');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
