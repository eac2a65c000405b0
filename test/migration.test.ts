/**
 * A data dir written by callvault before the archive pipeline (index schema
 * 1: a `state` per entry and a journal per stage), made by that version
 * (test/fixtures/v1-datadir.tar.gz: one sealed recording on legal hold, one
 * copied to its archive, one whose copy was still owed when the daemon was
 * killed). Today's daemon starts on it, migrates the index in place, and
 * finishes what the old one left.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RecordingIndex } from '../daemon/store/RecordingIndex.js';
import { cli } from './support/cli.js';
import { DaemonProcess, ROOT, testConfigYaml } from './support/daemon.js';

test('a data dir of the previous version (index schema 1, a pending upload, a legal hold) is migrated at start: states, hold and copies kept, the owed upload finished, everything verifies', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-v1-'));
  execFileSync('tar', ['-xzf', path.join(ROOT, 'test/fixtures/v1-datadir.tar.gz'), '-C', root]);
  const ids = JSON.parse(await readFile(path.join(root, 'ids.json'), 'utf8')) as { plain: string; uploaded: string; pending: string };
  const archive = path.join(root, 'archive');
  await mkdir(archive);
  const profiles = `storage:\n  archive:\n    type: directory\n    path: ${archive}\nprofiles:\n  - name: fx-desk\n    match:\n      numbers: ["+4930999*"]\n    storage: [archive]\n    retention: 7y\n  - name: default\n    retention: 1y\n`;
  const dataDir = path.join(root, 'data');
  const d = await DaemonProcess.start({ dataDir, yaml: testConfigYaml(profiles) });
  try {
    await d.waitFor((l) => l.msg === 'resuming uploads left by the previous run' && l.count === 1);
    const pending = await d.waitForState(ids.pending, 'uploaded');
    assert.equal(pending.stage, 'archived');
    const plain = (await d.api('GET', `/v1/recordings/${ids.plain}`)).body;
    assert.deepEqual([plain.state, plain.stage], ['sealed', 'sealed']);
    const uploaded = (await d.api('GET', `/v1/recordings/${ids.uploaded}`)).body;
    assert.deepEqual([uploaded.state, uploaded.stage], ['uploaded', 'archived']);
    const list = JSON.parse(cli(d, ['recordings', 'list', '--json']).stdout).recordings;
    assert.deepEqual(
      list.map((r: { recordingId: string; state: string }) => [r.recordingId, r.state]),
      [
        [ids.plain, 'sealed'],
        [ids.uploaded, 'uploaded'],
        [ids.pending, 'uploaded'],
      ],
    );
    assert.equal(list[0].hold.reason, 'case 2026-17', 'the legal hold survives the migration');
    assert.deepEqual(
      JSON.parse(cli(d, ['recordings', 'list', '--state', 'sealed', '--json']).stdout).recordings.map((r: { recordingId: string }) => r.recordingId),
      [ids.plain],
      'the state index still answers',
    );
    assert.equal(cli(d, ['verify', '--all', path.join(dataDir, 'recordings')]).status, 0);
  } finally {
    assert.equal(await d.stop(), 0);
  }
  const index = RecordingIndex.open(dataDir);
  try {
    assert.deepEqual(index.jobs.list('upload'), [], 'the migrated journal is empty once the copy is done');
    assert.equal(index.get(ids.plain)!.stage, 'sealed');
  } finally {
    await index.close();
  }
});
