/**
 * The SFTP storage target against Debian's OpenSSH server (sshd on a
 * loopback port with a throwaway config and host key, internal-sftp): copies
 * land whole under the path template, verify there with shasum and openssl;
 * a server offering another host key is refused and named; a caller id
 * written to escape the root stays inside it; a server that is down gets the
 * copy once it is back; a connection cut mid-copy (a proxy in front of sshd)
 * ends in one whole copy, one failure mail and one recovery mail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cli } from './support/cli.js';
import { briefCall, DaemonProcess, ROOT, startCall, testConfigYaml, type LogLine } from './support/daemon.js';
import { startFaultProxy, type FaultProxy } from './support/faultProxy.js';
import { freePort } from './support/net.js';
import { assertOneWholeCopy, assertRetentionRemoves, faultRun } from './support/faultRun.js';
import { captureSmtp, mailConfigYaml, type SmtpCapture } from './support/smtp.js';
import { startSshd, type Sshd } from './support/sshd.js';

let sshd: Sshd;
let d: DaemonProcess;
let proxy: FaultProxy;
let smtp: SmtpCapture;

before(async () => {
  sshd = await startSshd();
  proxy = await startFaultProxy(sshd.port);
  const smtpPort = await freePort();
  smtp = captureSmtp(smtpPort);
  await smtp.listen();
  const target = (hostKey: string, dir = 'archive', template = 'Record-$Y_$M_$D_$h_$m_$s/$caller-$id', port = sshd.port) =>
    `    type: sftp\n    host: 127.0.0.1\n    port: ${port}\n    username: ${sshd.user}\n    hostKey: "${hostKey}"\n    privateKeyFile: ${sshd.clientKey}\n    path: ${dir}\n    template: ${template}\n    timeoutSeconds: 10\n`;
  const yaml = testConfigYaml(
    `storage:\n  vault:\n${target(sshd.hostKey)}  impostor:\n${target(`SHA256:${'x'.repeat(43)}`)}  bycaller:\n${target(sshd.hostKey, 'bycaller', '$caller/$callee/$id')}  flaky:\n${target(sshd.hostKey, 'flaky', '$id', proxy.port)}profiles:\n  - name: flaky\n    match:\n      numbers: ["+4930777*"]\n    storage: [flaky]\n    retention: 1d\n  - name: both\n    match:\n      numbers: ["+4930888*"]\n    storage: [vault, impostor]\n  - name: outbound\n    match:\n      direction: [outbound]\n    storage: [bycaller]\n  - name: vault\n    storage: [vault]\n${mailConfigYaml(smtpPort)}`,
  );
  d = await DaemonProcess.start({ yaml });
});

after(async () => {
  assert.equal(await d.stop(), 0);
  await sshd.stop();
  await proxy.close();
  await smtp.close();
});

function call(callId: string, caller: string, direction: 'inbound' | 'outbound' = 'inbound'): Promise<string> {
  return briefCall(d, { callId, direction, caller: { number: caller } });
}

/** Where the copy of a recording is on the server's disk (the sshd runs here), found by its id. */
async function remoteDir(id: string): Promise<string> {
  const archive = path.join(sshd.root, 'archive');
  for (const day of await readdir(archive))
    for (const rec of await readdir(path.join(archive, day))) if (rec.endsWith(id)) return path.join(archive, day, rec);
  throw new Error(`no copy of ${id} under ${archive}`);
}

test('a recording is copied whole under its template, and verifies on the server with shasum and openssl', async () => {
  const id = await call('sftp-1', '+4930123001');
  const st = await d.waitForState(id, 'uploaded', 20_000);
  assert.equal(st.stage, 'archived');
  const dir = await remoteDir(id);
  assert.match(path.relative(sshd.root, dir), /^archive\/Record-\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\/\+4930123001-[0-9a-f]{22}$/);
  assert.deepEqual((await readdir(dir)).sort(), (await readdir(st.dir)).sort(), 'every file, nothing else (no partial left)');
  const verify = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), dir, path.join(d.dataDir, 'identity/signing-cert.pem')], {
    encoding: 'utf8',
  });
  assert.equal(verify.status, 0, verify.stderr);
});

test('a server offering another host key is refused, naming the key it offered; the other target still gets its copy', async () => {
  const id = await call('sftp-2', '+4930888002');
  const refused = await d.waitFor((l: LogLine) => l.msg === 'upload failed; will retry' && l.recordingId === id && l.lane === 'impostor', 20_000);
  assert.match(JSON.stringify(refused.err), new RegExp(`offered host key ${sshd.hostKey.replace(/[+/]/g, '\\$&')}, not the pinned SHA256:x{43}`));
  for (let i = 0; i < 100; i++) {
    const st = (await d.api('GET', `/v1/recordings/${id}`)).body;
    if (st.uploads.vault?.state === 'done') {
      assert.deepEqual([st.stage, st.uploads.impostor.state], ['sealed', 'pending'], 'not archived while a target is owed its copy');
      assert.match(st.uploads.impostor.lastError, /offered host key/);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('the vault copy never arrived');
});

test('caller and callee ids that are whole path segments (.., .) cannot climb out of the target root', async () => {
  const c = await startCall(d, { callId: 'sftp-3', direction: 'outbound', caller: { number: '..' }, callee: { number: '.' } });
  assert.equal((await d.api('DELETE', '/v1/calls/sftp-3')).status, 202);
  await d.waitForState(c.recordingId, 'uploaded', 20_000);
  const dir = path.join(sshd.root, 'bycaller', '__', '_', c.recordingId);
  assert.ok(existsSync(path.join(dir, `${c.recordingId}.sha256`)), `the copy is at ${dir}`);
  assert.deepEqual(await readdir(path.join(sshd.root, 'bycaller')), ['__'], 'nothing beside it');
  assert.equal(existsSync(path.join(sshd.root, c.recordingId)), false, 'not one level up either');
});

test('a server that is down: the copy is retried with backoff and arrives once it is back, once and whole', async () => {
  await sshd.stop();
  const id = await call('sftp-4', '+4930123004');
  await d.waitFor((l: LogLine) => l.msg === 'upload failed; will retry' && l.recordingId === id, 20_000);
  await sshd.restart();
  const st = await d.waitForState(id, 'uploaded', 30_000);
  const dir = await remoteDir(id);
  assert.deepEqual((await readdir(dir)).sort(), (await readdir(st.dir)).sort());
  assert.equal((await readdir(path.dirname(dir))).filter((n) => n.includes(id)).length, 1, 'one copy, no partial');
});

test('uploads status shows a failing target’s pending copies, attempts, last error and next attempt; uploads retry makes them due now and the copy arrives', async () => {
  await sshd.stop();
  const id = await call('sftp-5', '+4930123005');
  await d.waitFor((l: LogLine) => l.msg === 'upload failed; will retry' && l.recordingId === id && (l.attempt as number) >= 2, 30_000);
  const before = JSON.parse(cli(d, ['uploads', 'status', '--json']).stdout).targets.find((t: any) => t.target === 'vault');
  assert.ok(before.configured && before.pending >= 1 && before.maxAttempts >= 2, JSON.stringify(before));
  assert.match(before.lastError, /ECONNREFUSED|connect/);
  assert.ok(before.oldestPendingSeconds >= 0);
  await sshd.restart();
  const retried = JSON.parse(cli(d, ['uploads', 'retry', '--target', 'vault', '--json']).stdout);
  assert.ok(retried.retried >= 1);
  const after = JSON.parse(cli(d, ['uploads', 'status', '--json']).stdout).targets.find((t: any) => t.target === 'vault');
  assert.equal(after.nextAttemptAt, null, 'due now');
  await d.waitForState(id, 'uploaded', 40_000);
  assert.equal(JSON.parse(cli(d, ['uploads', 'status', '--json']).stdout).targets.find((t: any) => t.target === 'vault').pending, 0);
});

test('fault run: the connection dies in the middle of the copy and the server stays away; once back the recording arrives once and whole; one failure mail, one recovery mail', async () => {
  const { id, st } = await faultRun({ d, proxy, smtp, target: 'flaky', caller: '+4930777001', cutAfter: 20_000 });
  await assertOneWholeCopy(d, path.join(sshd.root, 'flaky'), id, st.dir);
});

test('retention deletes the copy from the SFTP server too', async () => {
  await assertRetentionRemoves(d, path.join(sshd.root, 'flaky'));
});
