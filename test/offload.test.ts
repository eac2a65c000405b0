/**
 * removeLocalAfterUpload: the local audio goes only once every storage
 * target of the profile holds a copy found whole there; the metadata,
 * checksum file, signature and the offload manifest stay; verify says
 * OFFLOADED, export refuses and names the targets, a rebuilt index knows
 * the recording is offloaded; a target that never gets its copy keeps the
 * local audio.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cli } from './support/cli.js';
import { briefCall, DaemonProcess, ROOT, testConfigYaml } from './support/daemon.js';

test('removeLocalAfterUpload: the audio leaves only after every copy is found whole; verify, export and a rebuilt index say where it is', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-offload-'));
  const [a, b] = [path.join(root, 'a'), path.join(root, 'b')];
  const broken = path.join(root, 'not-a-dir');
  await writeFile(broken, 'a file where a directory should be');
  const yaml = testConfigYaml(
    `storage:\n  a:\n    type: directory\n    path: ${a}\n    template: $id\n  b:\n    type: directory\n    path: ${b}\n    template: $id\n  broken:\n    type: directory\n    path: ${broken}\n    template: $id\nprofiles:\n  - name: stuck\n    match:\n      numbers: ["+4930999*"]\n    storage: [a, broken]\n    removeLocalAfterUpload: true\n  - name: offsite\n    storage: [a, b]\n    removeLocalAfterUpload: true\n`,
  );
  const d = await DaemonProcess.start({ yaml });
  try {
    const id = await briefCall(d, { callId: 'offload-1' });
    const stuck = await briefCall(d, { callId: 'offload-2', caller: { number: '+4930999001' } });
    await d.waitFor((l) => l.msg === 'local audio removed; the copies are on the storage targets' && l.recordingId === id, 30_000);
    const [entry] = (await d.api('GET', '/v1/recordings?callId=offload-1')).body.recordings;
    assert.equal(entry.stage, 'archived');
    assert.ok(entry.local.removedAt);
    const dir = path.join(d.dataDir, entry.dir);
    assert.deepEqual((await readdir(dir)).sort(), [`${id}.json`, `${id}.offloaded.json`, `${id}.sha256`, `${id}.sha256.SHA256withRSA.sig`].sort());
    const manifest = JSON.parse(await readFile(path.join(dir, `${id}.offloaded.json`), 'utf8'));
    assert.deepEqual(manifest.targets.map((t: { name: string }) => t.name).sort(), ['a', 'b']);
    assert.deepEqual(manifest.removed, [`${id}.wav`]);
    for (const target of [a, b]) {
      const v = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), path.join(target, id), path.join(d.dataDir, 'identity/signing-cert.pem')], {
        encoding: 'utf8',
      });
      assert.equal(v.status, 0, `the copy on ${target} verifies: ${v.stderr}`);
    }
    const verify = cli(d, ['verify', dir]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, new RegExp(`OFFLOADED\\s+${id}\\.wav`));
    const exp = cli(d, ['export', id, '--out', path.join(root, 'x.wav'), '--reason', 'test']);
    assert.equal(exp.status, 2);
    assert.match(exp.stderr, /removed here after upload.*copies are on a, b/);
    const audit = cli(d, ['audit', 'list', '--json']);
    assert.match(audit.stdout, /recording\.offloaded/);

    // A profile one of whose targets never gets its copy keeps the local audio.
    const kept = (await d.api('GET', `/v1/recordings/${stuck}`)).body;
    assert.equal(kept.uploads.broken.state, 'pending');
    assert.ok((await readdir(kept.dir)).includes(`${stuck}.wav`), 'not archived: the audio stays');

    assert.equal(await d.stop(), 0);
    const re = cli(d, ['reindex', '--json']);
    assert.equal(re.status, 0, re.stderr);
    const d2 = await DaemonProcess.start({ configFile: d.configFile, dataDir: d.dataDir });
    try {
      const [again] = (await d2.api('GET', '/v1/recordings?callId=offload-1')).body.recordings;
      assert.equal(again.stage, 'archived');
      assert.equal(again.local.removedAt, entry.local.removedAt, 'the rebuilt index knows it is offloaded');
    } finally {
      assert.equal(await d2.stop(), 0);
    }
  } finally {
    if (d.child.exitCode === null) await d.stop();
  }
});
