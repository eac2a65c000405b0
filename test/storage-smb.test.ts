/**
 * The SMB storage target against Debian's Samba (smbd on a loopback port,
 * hardened as Windows Server 2025 is: signing mandatory, SMB 3.1.1, the share
 * requiring encryption): copies land whole under the template and verify on
 * the share; a wrong password is named as such, and no password reaches a log;
 * a connection cut mid-copy (a proxy in front of smbd) and the server staying
 * away end in one whole copy, one failure mail and one recovery mail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cliAsync } from './support/cli.js';
import { briefCall, DaemonProcess, ROOT, startCall, testConfigYaml, type LogLine } from './support/daemon.js';
import { startFaultProxy, type FaultProxy } from './support/faultProxy.js';
import { freePort } from './support/net.js';
import { startSmbd, type Smbd } from './support/smbd.js';
import { captureSmtp, mailConfigYaml, type SmtpCapture } from './support/smtp.js';

let smbd: Smbd;
let d: DaemonProcess;
let proxy: FaultProxy;
let smtp: SmtpCapture;

before(async () => {
  smbd = await startSmbd();
  proxy = await startFaultProxy(smbd.port);
  const smtpPort = await freePort();
  smtp = captureSmtp(smtpPort);
  await smtp.listen();
  const wrong = path.join(path.dirname(smbd.passwordFile), 'wrong-password');
  await writeFile(wrong, 'not-the-password-42\n', { mode: 0o600 });
  const target = (passwordFile: string, port = smbd.port, template = 'Record-$Y_$M_$D/$caller-$id') =>
    `    type: smb\n    host: 127.0.0.1\n    port: ${port}\n    share: ${smbd.share}\n    username: ${smbd.user}\n    passwordFile: ${passwordFile}\n    encrypt: true\n    path: calls\n    template: ${template}\n    timeoutSeconds: 20\n`;
  const yaml = testConfigYaml(
    `storage:\n  share:\n${target(smbd.passwordFile)}  badpass:\n${target(wrong)}  flaky:\n${target(smbd.passwordFile, proxy.port, 'flaky/$id')}profiles:\n  - name: flaky\n    match:\n      numbers: ["+4930666*"]\n    storage: [flaky]\n    retention: 1d\n  - name: both\n    match:\n      numbers: ["+4930777*"]\n    storage: [share, badpass]\n  - name: share\n    storage: [share]\n${mailConfigYaml(smtpPort)}`,
  );
  d = await DaemonProcess.start({ yaml });
});

after(async () => {
  assert.equal(await d.stop(), 0);
  await smbd.stop();
  await proxy.close();
  await smtp.close();
});

function call(callId: string, caller: string): Promise<string> {
  return briefCall(d, { callId, caller: { number: caller } });
}

test('a recording is copied whole to the signed, encrypted share under its template, and verifies there with shasum and openssl', async () => {
  const id = await call('smb-1', '+4930123001');
  const st = await d.waitForState(id, 'uploaded', 30_000);
  const days = await readdir(path.join(smbd.root, 'calls'));
  assert.equal(days.length, 1);
  assert.match(days[0]!, /^Record-\d{4}_\d{2}_\d{2}$/);
  const dir = path.join(smbd.root, 'calls', days[0]!, `+4930123001-${id}`);
  assert.deepEqual((await readdir(dir)).sort(), (await readdir(st.dir)).sort(), 'every file, no partial left');
  const verify = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), dir, path.join(d.dataDir, 'identity/signing-cert.pem')], {
    encoding: 'utf8',
  });
  assert.equal(verify.status, 0, verify.stderr);
});

test('a wrong password is named as such (NT_STATUS_LOGON_FAILURE), retried, and no password reaches the log', async () => {
  const id = await call('smb-2', '+4930777002');
  const failed = await d.waitFor((l: LogLine) => l.msg === 'upload failed; will retry' && l.recordingId === id && l.lane === 'badpass', 30_000);
  assert.match(JSON.stringify(failed.err), /wrong user name, domain or password \(NT_STATUS_LOGON_FAILURE\)/);
  await d.waitFor((l: LogLine) => l.msg === 'recording uploaded' && l.recordingId === id && l.target === 'share', 30_000);
  const logs = JSON.stringify(d.logs);
  for (const secret of [(await readFile(smbd.passwordFile, 'utf8')).trim(), 'not-the-password-42'])
    assert.ok(!logs.includes(secret), 'a password in the log');
});

test('fault run: the connection dies in the middle of the copy and the server stays away; once back the recording arrives once and whole; one failure mail, one recovery mail', async () => {
  proxy.afterCut = 'refuse';
  proxy.cutAfter = 30_000; // past negotiation, session setup and tree connect, inside the audio (about 48 KB)
  proxy.mode = 'cut';
  const c = await startCall(d, { callId: 'smb-fault', caller: { number: '+4930666001' } });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await d.api('DELETE', '/v1/calls/smb-fault')).status, 202);
  const id = c.recordingId;
  assert.ok(await smtp.waitMail(/storage target flaky is failing/, 30_000), 'a failure mail');
  assert.equal(proxy.cuts, 1);
  await new Promise((r) => setTimeout(r, 2000));
  proxy.mode = 'pass';
  const st = await d.waitForState(id, 'uploaded', 60_000);
  assert.ok(await smtp.waitMail(/storage target flaky works again/, 30_000), 'a recovery mail');
  assert.equal(smtp.count(/flaky is failing/), 1);
  assert.equal(smtp.count(/flaky works again/), 1);
  const root = path.join(smbd.root, 'calls', 'flaky');
  assert.deepEqual(await readdir(root), [id], 'one copy, no partial left by the cut');
  assert.deepEqual((await readdir(path.join(root, id))).sort(), (await readdir(st.dir)).sort());
  const verify = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), path.join(root, id), path.join(d.dataDir, 'identity/signing-cert.pem')], {
    encoding: 'utf8',
  });
  assert.equal(verify.status, 0, verify.stderr);
});

test('retention deletes the copy from the share too', async () => {
  const root = path.join(smbd.root, 'calls', 'flaky');
  const [id] = await readdir(root);
  const later = new Date(Date.now() + 2 * 86400_000).toISOString();
  const r = await cliAsync(d, ['retention', 'run', '--now', later, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(await readdir(root), [], 'the copy is gone from the share');
  assert.equal((await d.api('GET', `/v1/recordings/${id}`)).body.state, 'deleted');
});
