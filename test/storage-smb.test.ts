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
import { briefCall, DaemonProcess, ROOT, testConfigYaml, type LogLine } from './support/daemon.js';
import { startFaultProxy, type FaultProxy } from './support/faultProxy.js';
import { freePort } from './support/net.js';
import { startSmbd, type Smbd } from './support/smbd.js';
import { assertOneWholeCopy, assertRetentionRemoves, faultRun } from './support/faultRun.js';
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
  const { id, st } = await faultRun({ d, proxy, smtp, target: 'flaky', caller: '+4930666001', cutAfter: 30_000 });
  await assertOneWholeCopy(d, path.join(smbd.root, 'calls', 'flaky'), id, st.dir);
});

test('retention deletes the copy from the share too', async () => {
  await assertRetentionRemoves(d, path.join(smbd.root, 'calls', 'flaky'));
});
