/**
 * The recording index at scale (issue "Recording index in LMDB"): 1,000,000
 * synthetic entries (generated here, written through RecordingIndex.putMany
 * so every secondary index is maintained), then:
 *
 *   - one number's recordings (10 of them) through the number index — the query
 *     `callvault recordings list --number N` and `GET /v1/recordings?number=N` run;
 *   - the same answer by scanning every entry (the baseline an index must beat);
 *   - one hour of recordings by start time (the primary key is the time index);
 *   - the retention sweeper's expiry range read.
 *
 *   scripts/node dist/native-free-bench/index.js [--entries 1000000] [--check]
 *
 * --check exits 1 if a number query takes 10 ms or more (median).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NewIndexEntry } from '../daemon/archive/RecordingTypes.js';
import { RecordingIndex } from '../daemon/store/RecordingIndex.js';
import { runQuery } from '../daemon/store/RecordingQuery.js';
import { numberOption } from './args.js';
import { report } from './report.js';

const N = numberOption('entries', 1_000_000);
const BATCH = 10_000;
const TARGET = '+493012345678';
const TARGET_COUNT = 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function timeIt(runs: number, f: () => unknown): number {
  f(); // warm the page cache and the code path
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

/** Entry i: 7 years of calls spread evenly, numbers from a pool of 200,000; TARGET_COUNT of them call TARGET. */
function synthetic(i: number, startMs: number, stepMs: number): NewIndexEntry {
  const t = startMs + i * stepMs;
  const id = t.toString(16).padStart(12, '0') + i.toString(16).padStart(10, '0');
  const isTarget = i % Math.floor(N / TARGET_COUNT) === 7;
  const caller = isTarget ? TARGET : `+4930${String((i * 7919) % 200_000).padStart(8, '0')}`;
  const callee = `+4989${String((i * 104_729) % 200_000).padStart(8, '0')}`;
  const startedAt = new Date(t).toISOString();
  return {
    recordingId: id,
    callId: `bench-${i}@pbx`,
    profile: 'default',
    direction: 'inbound',
    caller: { number: caller, normalized: caller },
    callee: { number: callee, normalized: callee },
    codec: 'PCMU',
    channelMode: 'stereo',
    stage: 'sealed',
    dir: `recordings/x/${id}`,
    files: [`${id}.wav`, `${id}.json`],
    startedAt,
    endedAt: startedAt,
    durationMs: 120_000,
    sealedAt: startedAt,
    kekId: null,
    uploads: {},
    retainUntil: new Date(t + 5 * 365 * 86_400_000).toISOString(),
    hold: null,
    deletedAt: null,
    error: null,
  };
}

const dataDir = await mkdtemp(path.join(tmpdir(), 'callvault-bench-index-'));
const index = RecordingIndex.open(dataDir);
try {
  const startMs = Date.parse('2019-01-01T00:00:00Z');
  const stepMs = Math.floor((7 * 365 * 86_400_000) / N);
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const batch: NewIndexEntry[] = [];
    for (let j = i; j < Math.min(N, i + BATCH); j++) batch.push(synthetic(j, startMs, stepMs));
    await index.putMany(batch);
  }
  const loadS = (performance.now() - t0) / 1000;

  const byIndex = runQuery(index, { number: TARGET, limit: 100 });
  const numberMs = timeIt(20, () => runQuery(index, { number: TARGET, limit: 100 }));
  const scan = () => [...index.entriesByTime()].filter((e) => e.caller.normalized === TARGET || e.callee.normalized === TARGET);
  const scanned = scan();
  const scanMs = timeIt(1, scan);
  const hourFrom = new Date(startMs + 3 * 365 * 86_400_000);
  const hour = runQuery(index, { from: hourFrom, to: new Date(hourFrom.getTime() + 3_600_000), limit: 10_000 });
  const hourMs = timeIt(20, () => runQuery(index, { from: hourFrom, to: new Date(hourFrom.getTime() + 3_600_000), limit: 10_000 }));
  const sweepNow = new Date(startMs + 5 * 365 * 86_400_000 + 86_400_000);
  const expired = [...index.expiredIds(sweepNow)].length;
  const expiryMs = timeIt(5, () => [...index.expiredIds(sweepNow)].length);

  if (byIndex.recordings.length !== TARGET_COUNT || scanned.length !== TARGET_COUNT)
    throw new Error(`expected ${TARGET_COUNT} recordings of ${TARGET}, index ${byIndex.recordings.length}, scan ${scanned.length}`);
  report(
    'index',
    `callvault index — ${N.toLocaleString('en')} synthetic entries over 7 years (LMDB)`,
    [
      {
        measure: `one number (${TARGET_COUNT} recordings), number index, median of 20`,
        figure: `${numberMs.toFixed(3)} ms`,
        baseline: 'target < 10 ms',
        met: numberMs < 10,
      },
      {
        measure: '  the same answer by scanning every entry',
        figure: `${scanMs.toFixed(0)} ms`,
        baseline: `the index is ${Math.round(scanMs / numberMs).toLocaleString('en')}× faster`,
      },
      { measure: `one hour by start time (${hour.recordings.length} recordings)`, figure: `${hourMs.toFixed(3)} ms`, baseline: '' },
      { measure: `retention expiry range (${expired.toLocaleString('en')} expired)`, figure: `${expiryMs.toFixed(0)} ms`, baseline: '' },
      {
        measure: 'load through putMany (all secondary indexes)',
        figure: `${loadS.toFixed(1)} s`,
        baseline: `${Math.round(N / loadS).toLocaleString('en')} entries/s`,
      },
    ],
    { entries: N, loadSeconds: loadS, numberQueryMs: numberMs, scanMs, hourQueryMs: hourMs, expiryRangeMs: expiryMs },
  );
} finally {
  await index.close();
  await rm(dataDir, { recursive: true, force: true });
}
