/**
 * Failure mail against a real SMTP server on loopback (smtp-server from
 * npm): a storage target that fails again and again is one mail when it
 * starts, a reminder per digest interval at most, and one mail when it works
 * again — never one per attempt; mail that cannot be sent (the SMTP server
 * not up yet) is retried, and recording goes on meanwhile. The directory
 * target's fault run: its volume fills up mid-copy and is freed again.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DaemonProcess, ROOT, startCall, testConfigYaml, type LogLine } from './support/daemon.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';
import { freePort } from './support/net.js';
import { captureSmtp, mailConfigYaml } from './support/smtp.js';

test('failure mail: one when a target starts failing (sent once the SMTP server is up), at most one reminder per digest interval, one when it works again — not one per attempt', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-mail-'));
  const archive = path.join(root, 'mnt');
  await writeFile(archive, 'not a directory: the mount is missing');
  const smtpPort = await freePort();
  const smtp = captureSmtp(smtpPort);
  const yaml = testConfigYaml(
    `storage:\n  archive:\n    type: directory\n    path: ${archive}\nprofiles:\n  - name: all\n    storage: [archive]\n${mailConfigYaml(smtpPort, 10)}`,
  );
  const d = await DaemonProcess.start({ yaml });
  try {
    const c = await startCall(d, { callId: 'mail-1' });
    assert.equal((await d.api('DELETE', '/v1/calls/mail-1')).status, 202);
    // The first failure's mail cannot leave yet: no SMTP server.
    await d.waitFor((l: LogLine) => l.msg === 'notification mail not sent; retrying', 20_000);
    await smtp.listen();
    const { waitMail, count, mails } = smtp;
    const failing = await waitMail(/storage target archive is failing/, 20_000);
    assert.ok(failing, 'the failing mail arrives once the server is up');
    assert.equal(failing.to, 'ops@test.example');
    assert.match(failing.text, new RegExp(c.recordingId));
    assert.match(failing.text, /not a directory|ENOTDIR|EEXIST/);
    const digest = await waitMail(/storage target archive is still failing/, 25_000);
    assert.ok(digest, 'a reminder after the digest interval, as it kept failing');
    await rm(archive);
    await mkdir(archive);
    const recovered = await waitMail(/storage target archive works again/, 40_000);
    assert.ok(recovered, 'one mail when it works again');
    await d.waitForState(c.recordingId, 'uploaded', 10_000);
    const attempts = d.logs.filter((l) => l.msg === 'upload failed; will retry').length;
    assert.equal(count(/is failing/), 1);
    assert.equal(count(/works again/), 1);
    assert.ok(count(/still failing/) >= 1 && count(/still failing/) <= 2, `${count(/still failing/)} reminders`);
    assert.ok(attempts > mails.length, `${attempts} failed attempts, ${mails.length} mails`);
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.equal(sampleValue(m, 'callvault_notifications_total', { kind: 'target-failing', result: 'sent' }), 1);
    assert.equal(sampleValue(m, 'callvault_notifications_total', { kind: 'target-recovered', result: 'sent' }), 1);
  } finally {
    assert.equal(await d.stop(), 0);
    await smtp.close();
  }
});

test('fault run, directory target: the archive volume fills up in the middle of the copy and is freed; the recording arrives once and whole; one failure mail, one recovery mail', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-fullvol-'));
  const mnt = path.join(root, 'mnt');
  await mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
  const smtpPort = await freePort();
  const smtp = captureSmtp(smtpPort);
  await smtp.listen();
  const d = await DaemonProcess.start({
    yaml: testConfigYaml(
      `storage:\n  vol:\n    type: directory\n    path: ${mnt}\n    template: $id\nprofiles:\n  - name: all\n    storage: [vol]\n${mailConfigYaml(smtpPort)}`,
    ),
  });
  try {
    // Leave about 20 kB: the metadata goes in, the audio (about 48 kB) stops half-way.
    const fs = await statfs(mnt);
    await writeFile(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, Number(fs.bavail) * fs.bsize - 20_000)));
    const c = await startCall(d, { callId: 'full-1' });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await d.api('DELETE', '/v1/calls/full-1')).status, 202);
    const failing = await smtp.waitMail(/storage target vol is failing/, 30_000);
    assert.ok(failing, 'a failure mail');
    assert.match(failing.text, /ENOSPC|no space/i);
    await new Promise((r) => setTimeout(r, 1500));
    await unlink(path.join(mnt, 'filler'));
    const st = await d.waitForState(c.recordingId, 'uploaded', 60_000);
    assert.ok(await smtp.waitMail(/storage target vol works again/, 30_000), 'a recovery mail');
    assert.equal(smtp.count(/vol is failing/), 1);
    assert.equal(smtp.count(/vol works again/), 1);
    assert.deepEqual(await readdir(mnt), [c.recordingId], 'one copy, no partial left');
    const copy = path.join(mnt, c.recordingId);
    for (const n of await readdir(st.dir)) assert.deepEqual(await readFile(path.join(copy, n)), await readFile(path.join(st.dir, n)), `${n} whole`);
    const v = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), copy, path.join(d.dataDir, 'identity/signing-cert.pem')], {
      encoding: 'utf8',
    });
    assert.equal(v.status, 0, v.stderr);
  } finally {
    assert.equal(await d.stop(), 0);
    await smtp.close();
    for (let i = 0; i < 20 && spawnSync('umount', [mnt]).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
  }
});
