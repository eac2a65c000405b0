import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { open } from 'lmdb';
import { entryView, type EntryView } from '../daemon/archive/lifecycle.js';
import { RecordingIndex } from '../daemon/store/RecordingIndex.js';
import { DaemonProcess, MAIN, PASSPHRASE, startCall, testConfigYaml, TOKEN } from './support/daemon.js';

const SHORT_CALLS = 60;

// 64 calls back to back are the point here: on 2 cores they keep the event loop about 80 % busy, which
// admission (calls.admission.maxEventLoopUtilization, 0.75 by default) answers with 503 CAPACITY, rightly.
const yaml = (archive: string) =>
  testConfigYaml(`storage:
  archive:
    type: directory
    path: ${archive}
profiles:
  - name: sales
    match:
      numbers: ["+4940*"]
    retention: 1y
    storage: [archive]
  - name: default
    retention: 7y
`).replace('calls:\n', 'calls:\n  admission:\n    maxEventLoopUtilization: null\n');

function cli(d: DaemonProcess, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args, '--config', d.configFile, '--data-dir', d.dataDir], {
    encoding: 'utf8',
    env: { ...process.env, CALLVAULT_CONTROL_TOKEN: TOKEN, CALLVAULT_SIGNING_PASSPHRASE: PASSPHRASE },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function cliJson(d: DaemonProcess, args: string[]): any {
  const r = cli(d, [...args, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function call(d: DaemonProcess, callId: string, caller: string, callee: string): Promise<string> {
  const c = await startCall(d, { callId, caller: { number: caller }, callee: { number: callee } });
  assert.equal((await d.api('DELETE', `/v1/calls/${callId}`)).status, 202);
  return c.recordingId as string;
}

async function dumpIndex(dataDir: string): Promise<Map<string, Omit<EntryView, 'updatedAt'>>> {
  const index = RecordingIndex.open(dataDir);
  try {
    return new Map([...index.entriesByTime()].map((x) => entryView(x)).map(({ updatedAt: _, ...e }) => [e.recordingId, e]));
  } finally {
    await index.close();
  }
}

test('index: number/time queries (CLI beside the running daemon, API with cursor), legal hold, reindex equals the original, retention survives SIGKILL mid-sweep, audit chain catches an edit', async () => {
  const archive = await mkdtemp(path.join(os.tmpdir(), 'callvault-archive-'));
  const d = await DaemonProcess.start({ yaml: yaml(archive) });
  let stopped = false;
  try {
    const t0 = new Date(Date.now() - 1000).toISOString();
    const berlin = [
      await call(d, 'b1', '+4930123456', '+4989000001'),
      await call(d, 'b2', '+4989000002', '004930123456'), // the same number in 00 form, as callee
      await call(d, 'b3', '+4930-123-456', '+4989000003'),
    ];
    const other = await call(d, 'o1', '+4989000004', '+4989000005');
    const sales: string[] = [];
    for (let i = 0; i < SHORT_CALLS; i++) sales.push(await call(d, `s${i}`, `+4940${String(i).padStart(6, '0')}`, '+4989111111'));
    for (const id of [...berlin, other, ...sales]) await d.waitForState(id, sales.includes(id) ? 'uploaded' : 'sealed');
    const t1 = new Date(Date.now() + 1000).toISOString();

    // CLI while the daemon holds the same LMDB environment open.
    const byNumber = cliJson(d, ['recordings', 'list', '--number', '+4930123456']);
    assert.deepEqual(
      byNumber.recordings.map((e: EntryView) => e.recordingId),
      berlin,
      'either party, normalised, in start order',
    );
    assert.equal(byNumber.nextCursor, null);
    assert.equal(cliJson(d, ['recordings', 'list', '--number', '+4930123456', '--from', t1]).recordings.length, 0);
    assert.equal(
      cliJson(d, ['recordings', 'list', '--profile', 'sales', '--from', t0, '--to', t1, '--limit', '1000']).recordings.length,
      SHORT_CALLS,
    );
    const bad = cli(d, ['recordings', 'list', '--from', 'March']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /from must be an ISO 8601 date/);
    const shown = cliJson(d, ['recordings', 'show', other]);
    assert.equal(shown.metadata.callId, 'o1');
    assert.equal(shown.caller.normalized, '+4989000004');

    // The API pages with an opaque cursor.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: any } = await d.api(
        'GET',
        `/v1/recordings?number=${encodeURIComponent('+4930123456')}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(r.status, 200);
      seen.push(...r.body.recordings.map((e: EntryView) => e.recordingId));
      cursor = r.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, berlin);
    const badApi = await d.api('GET', '/v1/recordings?to=yesterday');
    assert.deepEqual([badApi.status, badApi.body.error], [400, 'BAD_REQUEST']);
    assert.equal((await d.api('GET', '/v1/recordings?colour=red')).status, 400);

    // Legal hold on two sales recordings, through the CLI, while the daemon runs.
    assert.equal(cli(d, ['hold', sales[0]!]).status, 2, '--reason is required');
    assert.equal(cli(d, ['hold', sales[0]!, '--reason', 'case 2026-17']).status, 0);
    assert.equal(cli(d, ['hold', '--number', '+4940000001', '--reason', 'case 2026-18']).status, 0);
    assert.equal((await d.api('GET', `/v1/recordings/${sales[1]}`)).status, 200);

    assert.equal(await d.stop(), 0);
    stopped = true;

    // Rebuild from disk equals what the daemon built.
    const original = await dumpIndex(d.dataDir);
    assert.equal(original.size, 4 + SHORT_CALLS);
    await rm(path.join(d.dataDir, 'index'), { recursive: true });
    const re = cliJson(d, ['reindex']);
    assert.deepEqual([re.recordings, re.previous], [4 + SHORT_CALLS, null]);
    assert.deepEqual(await dumpIndex(d.dataDir), original);

    // Retention, as of 400 days from now: the 1y sales recordings expire, held ones stay.
    const later = new Date(Date.now() + 400 * 86_400_000).toISOString();
    const dry = cliJson(d, ['retention', 'run', '--dry-run', '--now', later]);
    const expired = sales.slice(2);
    assert.deepEqual([...dry.expired].sort(), [...expired].sort());
    assert.equal(existsSync(path.join(d.dataDir, original.get(expired[0]!)!.dir, `${expired[0]}.wav`)), true, 'a dry run deletes nothing');

    // SIGKILL right after the first deletion, then check nothing is half deleted without the journal saying so.
    const child = spawn(process.execPath, [MAIN, 'retention', 'run', '--now', later, '--json', '--config', d.configFile, '--data-dir', d.dataDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    for await (const line of createInterface({ input: child.stderr! })) {
      if (line.startsWith('deleted ')) {
        child.kill('SIGKILL');
        break;
      }
    }
    await exited;
    const index = RecordingIndex.open(d.dataDir);
    let deletedBeforeKill = 0;
    try {
      for (const id of expired) {
        const e = entryView(index.get(id)!);
        const wav = path.join(d.dataDir, e.dir, `${id}.wav`);
        if (e.state === 'deleted') {
          deletedBeforeKill++;
          assert.equal(existsSync(wav), false);
          assert.equal(existsSync(path.join(d.dataDir, e.dir, `${id}.deleted.json`)), true, 'a tombstone says what was deleted');
        } else if (!existsSync(wav)) {
          assert.ok(index.jobs.find('delete', id), `${id}: files gone, so the journal must say a deletion is under way`);
        }
      }
    } finally {
      await index.close();
    }
    assert.ok(deletedBeforeKill >= 1 && deletedBeforeKill < expired.length, `killed mid-sweep (${deletedBeforeKill} of ${expired.length} done)`);

    const rerun = cliJson(d, ['retention', 'run', '--now', later]);
    assert.deepEqual(rerun.failed, []);
    const after = await dumpIndex(d.dataDir);
    for (const id of expired) {
      const e = after.get(id)!;
      assert.equal(e.state, 'deleted', id);
      assert.equal(existsSync(path.join(archive, e.dir)), false, 'the archive copy is deleted too');
    }
    for (const id of [sales[0]!, sales[1]!, ...berlin, other]) {
      const e = after.get(id)!;
      assert.notEqual(e.state, 'deleted', `${id} is kept (held or not expired)`);
      assert.equal(existsSync(path.join(d.dataDir, e.dir, `${id}.sha256`)), true);
    }
    assert.equal(cliJson(d, ['recordings', 'list', '--state', 'deleted', '--limit', '1000']).recordings.length, expired.length);
    // Reindex after deletions (tombstones) still equals the index; the old one is moved aside, not lost.
    const re2 = cliJson(d, ['reindex']);
    assert.match(re2.previous, /index\.old-/);
    assert.deepEqual(await dumpIndex(d.dataDir), after);

    // A verification failure is audited.
    const otherDir = path.join(d.dataDir, after.get(other)!.dir);
    await appendFile(path.join(otherDir, `${other}.wav`), Buffer.alloc(2));
    assert.equal(cli(d, ['verify', otherDir]).status, 1);

    // The audit log: intact, with holds, deletions, reloads of the daemon, and signed checkpoints.
    const ok = cliJson(d, ['audit', 'verify']);
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.ok(ok.checkpoints >= 2);
    const entries = cli(d, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(entries.filter((e) => e.action === 'recording.hold').length, 2);
    assert.equal(entries.filter((e) => e.action === 'key.created').length, 1);
    assert.match(JSON.stringify(entries.find((e) => e.action === 'verify.failed' && e.subject === other)?.details), /MODIFIED|sha256|differ/i);
    assert.ok(entries.filter((e) => e.action === 'recording.deleted').length >= expired.length);
    // Edit one entry in place (a different actor), as someone with file access might.
    const victim = entries.find((e) => e.action === 'recording.hold')!;
    const env = open({ path: path.join(d.dataDir, 'audit', 'audit.mdb'), compression: false });
    const db = env.openDB<any, number>({ name: 'entries', keyEncoding: 'uint32' });
    await db.put(victim.seq, { ...db.get(victim.seq), actor: 'nobody' });
    await env.close();
    const broken = cli(d, ['audit', 'verify', '--json']);
    assert.equal(broken.status, 1);
    assert.deepEqual(JSON.parse(broken.stdout).firstBroken, { seq: victim.seq, reason: 'hash does not match the entry: it was edited' });
    assert.equal((await readdir(d.dataDir)).filter((n) => n.startsWith('index.old-')).length, 1);
  } finally {
    if (!stopped) await d.stop();
  }
});
