import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newJob, type Job, type JobStage } from '../../daemon/archive/JobTypes.js';
import type { NewIndexEntry } from '../../daemon/archive/RecordingTypes.js';
import { StageRunner, type Failure, type StageHandler } from '../../daemon/archive/StageRunner.js';
import { createLogger } from '../../daemon/log.js';
import { RecordingIndex } from '../../daemon/store/RecordingIndex.js';
import { testEntry } from './entries.js';

const log = createLogger('silent');
const HOST = os.hostname();

function entry(i: number): NewIndexEntry {
  return testEntry(i, { stage: 'closed' });
}

/** A handler whose every attempt is recorded and whose outcome the test decides. */
class Probe<S extends JobStage> implements StageHandler<S> {
  readonly attempts: { id: string; lane: string; attempts: number; notBefore: number; at: number }[] = [];
  readonly messages = { retry: 'probe retry', failed: 'probe failed' };
  running = 0;
  maxRunning = 0;
  constructor(
    readonly stage: S,
    private readonly index: RecordingIndex,
    private readonly outcome: (job: Job<S>) => Promise<'ok' | Failure['action']>,
    readonly concurrency = 1,
    readonly laneBackoff = false,
  ) {}
  async run(job: Job<S>): Promise<void> {
    this.attempts.push({ id: job.recordingId, lane: job.lane, attempts: job.attempts, notBefore: job.notBefore, at: Date.now() });
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const r = await this.outcome(job);
      if (r !== 'ok') throw Object.assign(new Error(`probe: ${r}`), { action: r });
      await this.index.commit(job.recordingId, null, [{ remove: job }]);
    } finally {
      this.running--;
    }
  }
  failed(_job: Job<S>, err: unknown): Failure {
    return { action: (err as { action: Failure['action'] }).action, event: null, code: null };
  }
}

/** A pid that existed and no longer does: a command killed mid-job. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('StageRunner over a real LMDB journal', () => {
  let dir: string;
  let index: RecordingIndex;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-unit-runner-'));
    index = RecordingIndex.open(dir);
  });
  afterEach(async () => {
    await index.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function enqueue(n: number, stage: JobStage = 'seal', lane = ''): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = entry(ids.length + (stage === 'seal' ? 0 : 50) + (lane ? 20 : 0));
      await index.create(e, [
        {
          put: newJob(
            stage,
            e.recordingId,
            lane,
            stage === 'delete' ? { reason: 'r', actor: 'a', startedAt: 'x' } : stage === 'convert' ? { staged: null } : null,
          ) as Job,
        },
      ]);
      ids.push(e.recordingId);
    }
    return ids;
  }

  test('a failing job is retried with exponential backoff and jitter, never before its time, and its attempts are journaled', async () => {
    const [id] = await enqueue(1);
    let failures = 0;
    const probe = new Probe('seal', index, async () => (++failures <= 4 ? 'retry' : 'ok'));
    const runner = new StageRunner({ index, log, owner: `${HOST}:${process.pid}`, backoff: { baseMs: 40, maxMs: 200 } }).register(probe);
    await runner.start();
    await runner.idle();
    await runner.drain();
    assert.deepEqual(
      probe.attempts.map((a) => a.attempts),
      [0, 1, 2, 3, 4],
    );
    for (let k = 1; k < probe.attempts.length; k++) {
      const a = probe.attempts[k]!;
      const failedAt = probe.attempts[k - 1]!.at;
      const ceiling = Math.min(200, 40 * 2 ** (k - 1));
      assert.ok(a.at >= a.notBefore, `attempt ${k} ran before its time`);
      const wait = a.notBefore - failedAt;
      assert.ok(wait >= ceiling / 2 - 5 && wait <= ceiling + 25, `attempt ${k}: waited ${wait} ms for a ceiling of ${ceiling}`);
    }
    assert.equal(index.jobs.get({ stage: 'seal', lane: '', recordingId: id! }), undefined, 'done: gone from the journal');
  });

  test('resume after a crash: jobs a dead process had claimed are taken over; one a live process holds is left to it', async () => {
    const ids = await enqueue(3);
    const dead = `${HOST}:${deadPid()}`;
    const live = `${HOST}:${process.ppid}`;
    await index.claim({ stage: 'seal', lane: '', recordingId: ids[0]! }, dead, 60_000);
    await index.claim({ stage: 'seal', lane: '', recordingId: ids[1]! }, live, 60_000);
    const probe = new Probe('seal', index, async () => 'ok', 3);
    const runner = new StageRunner({ index, log, owner: `${HOST}:${process.pid}`, attemptsPerJob: 1 }).register(probe);
    await runner.start();
    await runner.idle();
    await runner.drain();
    assert.deepEqual(
      probe.attempts.map((a) => a.id).sort(),
      [ids[0], ids[2]].sort(),
      'the dead owner’s job and the free one ran; the live owner’s did not',
    );
    assert.ok(index.jobs.get({ stage: 'seal', lane: '', recordingId: ids[1]! }), 'the held job is still journaled');
  });

  test('two runners on one journal never run the same job twice', async () => {
    await enqueue(12);
    const ran: string[] = [];
    const slow = async (job: Job<'seal'>) => {
      ran.push(job.recordingId);
      await new Promise((r) => setTimeout(r, 15));
      return 'ok' as const;
    };
    const other = RecordingIndex.open(dir);
    try {
      const a = new StageRunner({ index, log, owner: `${HOST}:${process.pid}:a`, attemptsPerJob: 1 }).register(new Probe('seal', index, slow, 2));
      const b = new StageRunner({ index: other, log, owner: `${HOST}:${process.pid}:b`, attemptsPerJob: 1 }).register(
        new Probe('seal', other, slow, 2),
      );
      await Promise.all([a.start(), b.start()]);
      await Promise.all([a.idle(), b.idle()]);
      await Promise.all([a.drain(), b.drain()]);
    } finally {
      await other.close();
    }
    assert.equal(new Set(ran).size, ran.length, `ran ${ran.length} attempts for ${new Set(ran).size} jobs`);
    // A fresh handle: the other runner's commits, as another process would read them.
    const fresh = RecordingIndex.open(dir);
    try {
      assert.equal(fresh.jobs.count('seal'), 0, 'every job was done by one of them');
    } finally {
      await fresh.close();
    }
  });

  test('drain finishes the seals due now, starts no upload, and waits for the one under way', async () => {
    const seals = await enqueue(3, 'seal');
    await enqueue(2, 'upload', 'archive');
    let uploadsStarted = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sealProbe = new Probe('seal', index, async () => 'ok', 1);
    const uploadProbe = new Probe('upload', index, async () => {
      uploadsStarted++;
      await gate;
      return 'ok';
    });
    const runner = new StageRunner({ index, log, owner: `${HOST}:${process.pid}` }).register(uploadProbe).register(sealProbe);
    await runner.start();
    await new Promise((r) => setTimeout(r, 30));
    const drained = runner.drain(['seal']);
    setTimeout(release, 50);
    await drained;
    assert.deepEqual(sealProbe.attempts.map((a) => a.id).sort(), [...seals].sort(), 'every due seal ran before the drain resolved');
    assert.equal(uploadsStarted, 1, 'the upload under way finished; no other was started');
    assert.equal(index.jobs.count('upload'), 1, 'the other stays journaled for the next start');
  });

  test('a permanent failure parks the job; the next start tries it once more', async () => {
    const [id] = await enqueue(1);
    const runner = new StageRunner({ index, log, owner: `${HOST}:${process.pid}` }).register(new Probe('seal', index, async () => 'park'));
    await runner.start();
    await runner.idle();
    await runner.drain();
    const parked = index.jobs.get({ stage: 'seal', lane: '', recordingId: id! })!;
    assert.deepEqual([parked.parked, parked.attempts, parked.claim], [true, 1, null]);
    const again = new Probe('seal', index, async () => 'ok');
    const next = new StageRunner({ index, log, owner: `${HOST}:${process.pid}` }).register(again);
    await next.start();
    await next.idle();
    await next.drain();
    assert.equal(again.attempts.length, 1);
    assert.equal(index.jobs.count('seal'), 0);
  });

  test('a lane that fails backs off as a whole (a target that is down); other lanes go on; concurrency per lane holds', async () => {
    await enqueue(3, 'upload', 'down');
    const up = [];
    for (let i = 0; i < 4; i++) {
      const e = entry(80 + i);
      await index.create(e, [{ put: newJob('upload', e.recordingId, 'up', null) }]);
      up.push(e.recordingId);
    }
    const probe = new Probe(
      'upload',
      index,
      async (job) => {
        await new Promise((r) => setTimeout(r, 10));
        return job.lane === 'down' ? 'retry' : 'ok';
      },
      2,
      true,
    );
    const runner = new StageRunner({ index, log, owner: `${HOST}:${process.pid}`, backoff: { baseMs: 1000, maxMs: 1000 } }).register(probe);
    await runner.start();
    await new Promise((r) => setTimeout(r, 300));
    await runner.drain();
    const down = probe.attempts.filter((a) => a.lane === 'down');
    assert.ok(down.length <= 2, `the failing lane paused after its first failures (${down.length} attempts in 300 ms)`);
    assert.equal(probe.attempts.filter((a) => a.lane === 'up').length, 4, 'the healthy lane did all its work');
    assert.ok(probe.maxRunning <= 4, 'two per lane at most');
    assert.equal(index.jobs.list('upload', 'up').length, 0);
  });

  test('an observer listener that throws changes nothing: the job is done and the others hear of it', async () => {
    await enqueue(2);
    const runner = new StageRunner({ index, log, owner: `${HOST}:${process.pid}` }).register(new Probe('seal', index, async () => 'ok', 2));
    const heard: string[] = [];
    runner.observer.on('done', () => {
      throw new Error('a broken metrics listener');
    });
    runner.observer.on('done', (_stage, _lane, id) => void heard.push(id));
    await runner.start();
    await runner.idle();
    await runner.drain();
    assert.equal(heard.length, 2);
    assert.equal(index.jobs.count('seal'), 0);
  });
  test('a failure whose event no longer fits the recording (deleted meanwhile) still backs off: the job never spins', async () => {
    const e = testEntry(70, { stage: 'deleted' });
    await index.create(e, [{ put: newJob('upload', e.recordingId, 'gone', null) }]);
    const probe = new Probe('upload', index, async () => 'retry');
    const failing: StageHandler<'upload'> = {
      ...probe,
      stage: 'upload',
      concurrency: 1,
      messages: probe.messages,
      run: (job) => probe.run(job),
      failed: () => ({ action: 'retry', event: { type: 'upload-failed', target: 'gone', error: 'x' }, code: null }),
    };
    const runner = new StageRunner({ index, log, owner: `${HOST}:${process.pid}`, backoff: { baseMs: 200, maxMs: 200 } }).register(failing);
    await runner.start();
    await new Promise((r) => setTimeout(r, 300));
    await runner.drain();
    assert.ok(probe.attempts.length >= 1 && probe.attempts.length <= 3, `${probe.attempts.length} attempts in 300 ms with a 100–200 ms backoff`);
    assert.equal(
      index.jobs.get({ stage: 'upload', lane: 'gone', recordingId: e.recordingId })?.attempts,
      probe.attempts.length,
      'each attempt journaled',
    );
  });
});
