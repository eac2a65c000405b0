import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HEAP_FLAGS } from '../daemon/capacity/heapFlags.js';
import { MAIN, ROOT } from './support/daemon.js';

const major = (v: string) => Number(/^v(\d+)\./.exec(v.trim())?.[1] ?? 0);
const systemNode = spawnSync('bash', ['-c', 'command -v node'], { encoding: 'utf8', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } }).stdout.trim();
const systemMajor = systemNode ? major(spawnSync(systemNode, ['--version'], { encoding: 'utf8' }).stdout) : 0;

test('the tests, and every entry point, run on Node.js 24 or newer', () => {
  assert.ok(major(process.version) >= 24, process.version);
  const viaWrapper = spawnSync(path.join(ROOT, 'scripts/node'), ['--version'], { encoding: 'utf8' });
  assert.equal(viaWrapper.status, 0, viaWrapper.stderr);
  assert.ok(major(viaWrapper.stdout) >= 24, viaWrapper.stdout);
  const cli = spawnSync(path.join(ROOT, 'bin/callvault'), ['config', 'check', path.join(ROOT, 'config/callvault.example.yaml')], {
    encoding: 'utf8',
  });
  assert.equal(cli.status, 0, cli.stderr);
});

test('started on an older Node.js, callvault stops at once with one line naming the version it needs', {
  skip: systemMajor === 0 || systemMajor >= 24 ? `no older system node here (${systemNode || 'none'})` : false,
}, () => {
  const r = spawnSync(systemNode, [MAIN, 'recordings', 'list'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^callvault: needs Node\.js 24 or newer .*this is v\d+/);
});

test('started as systemd starts it (bin/callvault), no callvault process can write a core file — the daemon, its media shards, the mediasoup workers — and the daemon and its shards run with HEAP_FLAGS, on jemalloc', async () => {
  const { DaemonProcess } = await import('./support/daemon.js');
  const d = await DaemonProcess.start({ launcher: 'bin' });
  try {
    const limits = (pid: number) => /Max core file size\s+(\S+)\s+(\S+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))!.slice(1);
    assert.deepEqual(limits(d.child.pid!), ['0', '0']);
    // Below the daemon: its media shards, and below them the mediasoup workers.
    const children = (pid: number): number[] =>
      readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    const below = (pid: number): number[] => children(pid).flatMap((c) => [c, ...below(c)]);
    const all = below(d.child.pid!);
    assert.ok(
      all.some((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('mediasoup-worker')),
      'a mediasoup worker runs',
    );
    for (const p of all) assert.deepEqual(limits(p), ['0', '0'], `process ${p}`);
    const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const nodes = [d.child.pid!, ...all.filter((p) => !argv(p).some((a) => a.includes('mediasoup-worker')))];
    assert.ok(nodes.length >= 2, 'the daemon and a media shard');
    for (const p of nodes) for (const flag of HEAP_FLAGS) assert.ok(argv(p).includes(flag), `process ${p} (${argv(p).join(' ')}) has ${flag}`);
    // scripts/setup.sh installs libjemalloc2; every process below the launcher runs on it, and the daemon says so.
    for (const p of [d.child.pid!, ...all])
      assert.match(readFileSync(`/proc/${p}/maps`, 'utf8'), /\/libjemalloc\.so/, `process ${p} runs on jemalloc`);
    assert.equal(d.logs.find((l) => l.msg === 'callvault starting')?.allocator, 'jemalloc');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('CALLVAULT_ALLOCATOR=system: bin/callvault leaves the daemon on the C library malloc, and the daemon says so', async () => {
  const { DaemonProcess } = await import('./support/daemon.js');
  const d = await DaemonProcess.start({ launcher: 'bin', env: { CALLVAULT_ALLOCATOR: 'system' } });
  try {
    assert.doesNotMatch(readFileSync(`/proc/${d.child.pid}/maps`, 'utf8'), /libjemalloc/);
    assert.equal(d.logs.find((l) => l.msg === 'callvault starting')?.allocator, 'glibc');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
