/**
 * The SMB storage target against Debian's Samba (smbd on a loopback port,
 * hardened as Windows Server 2025 is: signing mandatory, SMB 3.1.1, the share
 * requiring encryption): copies land whole under the template and verify on
 * the share; a wrong password is named as such, and no password reaches a log.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { briefCall, DaemonProcess, ROOT, testConfigYaml, type LogLine } from './support/daemon.js';
import { startSmbd, type Smbd } from './support/smbd.js';

let smbd: Smbd;
let d: DaemonProcess;

before(async () => {
  smbd = await startSmbd();
  const wrong = path.join(path.dirname(smbd.passwordFile), 'wrong-password');
  await writeFile(wrong, 'not-the-password-42\n', { mode: 0o600 });
  const target = (passwordFile: string) =>
    `    type: smb\n    host: 127.0.0.1\n    port: ${smbd.port}\n    share: ${smbd.share}\n    username: ${smbd.user}\n    passwordFile: ${passwordFile}\n    encrypt: true\n    path: calls\n    template: Record-$Y_$M_$D/$caller-$id\n    timeoutSeconds: 20\n`;
  const yaml = testConfigYaml(
    `storage:\n  share:\n${target(smbd.passwordFile)}  badpass:\n${target(wrong)}profiles:\n  - name: both\n    match:\n      numbers: ["+4930777*"]\n    storage: [share, badpass]\n  - name: share\n    storage: [share]\n`,
  );
  d = await DaemonProcess.start({ yaml });
});

after(async () => {
  assert.equal(await d.stop(), 0);
  await smbd.stop();
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
