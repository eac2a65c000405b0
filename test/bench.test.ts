import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './support/daemon.js';

/** Run one bench script; its figures come back from the JSON file it says it wrote. */
function bench(name: string, args: string[]): { stdout: string; json: any } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/native-free-bench', `${name}.js`), ...args], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `${name} exited ${r.status}: ${r.stderr}`);
  const file = /\(JSON: (\S+)\)/.exec(r.stdout)?.[1];
  assert.ok(file, `${name} named no JSON file:\n${r.stdout}`);
  return { stdout: r.stdout, json: JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) };
}

test('load generator: a real daemon, RTP from another process, every recording sealed and verified, nothing lost, figures as Markdown and JSON', () => {
  const { stdout, json } = bench('load', ['--calls', '3', '--seconds', '2']);
  assert.match(stdout, /\| \*\*3 calls\*\* × 2 s, PCMU/);
  assert.equal(json.bench, 'load');
  assert.match(json.commit, /^[0-9a-f]{7,}$/);
  assert.equal(json.machine.cores > 0, true);
  const [r] = json.figures.results;
  assert.equal(r.sender.sent, 3 * 2 * 100, 'two legs × 50 packets/s × 2 s per call');
  assert.equal(r.written, r.sender.sent, 'every packet sent is in a recording');
  assert.deepEqual([r.sealed, r.verified, r.badShape, r.lossInside], [3, 3, 0, 0]);
  assert.equal(r.sealP99Ms >= r.sealP50Ms && r.sealP50Ms > 0, true);
  assert.equal(r.cpuPct > 0 && r.pssIdleMB > 0 && r.pssEndMB > 0, true);
  assert.equal(Number.isFinite(r.perCallKB) && Number.isFinite(r.perCallRssKB), true, 'memory per call, from PSS and from summed RSS');
});

test('load generator with loss and reordering: what the generator drops is not counted as lost inside callvault', () => {
  const { json } = bench('load', ['--calls', '2', '--seconds', '2', '--loss', '0.1', '--reorder', '0.1', '--law', 'PCMA']);
  const [r] = json.figures.results;
  assert.equal(r.sender.dropped > 0, true);
  assert.equal(r.sender.sent + r.sender.dropped, 2 * 2 * 100);
  assert.equal(r.written, r.sender.sent, 'reordered packets within the jitter window are all written');
  assert.deepEqual([r.sealed, r.verified, r.lossInside], [2, 2, 0]);
});

test('mixer micro-benchmark: every sample pushed through the media path reaches the WAV files', () => {
  const { json } = bench('mixer', ['--calls', '3', '--seconds', '5']);
  assert.equal(json.figures.samples, 3 * 5 * 8000 * 2);
  assert.equal(json.figures.written, json.figures.samples);
  assert.equal(json.figures.encryptedWritten, json.figures.samples, 'and all of it encrypted as written');
  assert.deepEqual(json.missed, []);
});

test('encryption bench: every measure runs (files, the pool, the in-memory envelope cipher checked for size, raw on pool threads, re-wrap) and the bar row is judged', () => {
  const { stdout, json } = bench('encryption', ['--files', '2', '--mb', '3', '--runs', '1', '--deks', '20']);
  const f = json.figures;
  for (const k of [
    'oursMBps',
    'ours1MBps',
    'directMBps',
    'inMemoryMBps',
    'rawParallelMBps',
    'ioMBps',
    'ceilingMBps',
    'sealStepMBps',
    'opensslMBps',
  ]) {
    assert.equal(Number.isFinite(f[k]) && f[k] > 0, true, `${k} = ${f[k]}`);
  }
  assert.deepEqual(Object.keys(f.rawMBps), ['whole', '16 KiB', '64 KiB', '1 MiB']);
  assert.equal(f.targetMBps, 0.8 * Math.max(...Object.values(f.rawMBps as Record<string, number>)) * f.lanes);
  assert.match(stdout, /envelope encryption in the pool, \d+ threads \| [\d.]+ MB\/s \| \d+ % of node:crypto raw .*(✓|✗ not met)/);
  assert.equal(f.rewrapS > 0, true);
});

test('uploads bench: the directory target against cp, then a backlog drained while new calls are sealed; every owed copy is made and the seal p99 row is judged', () => {
  const { stdout, json } = bench('uploads', ['--mb', '2', '--runs', '1', '--backlog', '30', '--seals', '10', '--skip-servers']);
  const f = json.figures;
  assert.equal(f.owed, 30 + 10, 'the backlog and the calls sealed while the target was down');
  assert.ok(f.drainMs > 0 && f.p99q > 0 && f.p99b > 0);
  assert.match(stdout, /directory: upload, 2 MB recording \| \d+ MB\/s \| \d+ MB\/s plain/);
  assert.equal(json.rows.find((r: { measure: string }) => r.measure.startsWith('seal latency p99')).met !== undefined, true);
});
