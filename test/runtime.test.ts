import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { MAIN, ROOT } from './support/daemon.js';

const major = (v: string) => Number(/^v(\d+)\./.exec(v.trim())?.[1] ?? 0);
const systemNode = spawnSync('bash', ['-c', 'command -v node'], { encoding: 'utf8', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } }).stdout.trim();
const systemMajor = systemNode ? major(spawnSync(systemNode, ['--version'], { encoding: 'utf8' }).stdout) : 0;

test('the tests, and every entry point, run on Node.js 24 or newer', () => {
  assert.ok(major(process.version) >= 24, process.version);
  const viaWrapper = spawnSync(path.join(ROOT, 'scripts/node'), ['--version'], { encoding: 'utf8' });
  assert.equal(viaWrapper.status, 0, viaWrapper.stderr);
  assert.ok(major(viaWrapper.stdout) >= 24, viaWrapper.stdout);
  const cli = spawnSync(path.join(ROOT, 'bin/callvault'), ['config', 'check', path.join(ROOT, 'config/callvault.example.yaml')], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
});

test('started on an older Node.js, callvault stops at once with one line naming the version it needs', { skip: systemMajor === 0 || systemMajor >= 24 ? `no older system node here (${systemNode || 'none'})` : false }, () => {
  const r = spawnSync(systemNode, [MAIN, 'recordings', 'list'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^callvault: needs Node\.js 24 or newer .*this is v\d+/);
});
