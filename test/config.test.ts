import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText, loadConfig } from '../daemon/config/load.js';
import { ConfigError } from '../daemon/errors.js';
import { MAIN, ROOT } from './support/daemon.js';

function problems(yaml: string): string[] {
  try {
    parseConfigText(yaml, '/etc/callvault/test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.line}:${p.path}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

test('the example config is valid and documents every default', () => {
  const c = loadConfig(path.join(ROOT, 'config/callvault.example.yaml'));
  assert.equal(c.recording.channelMode, 'stereo');
  assert.equal(c.control.listen, '127.0.0.1:8080');
  assert.equal(c.media.jitterBufferMs, 80);
  assert.equal(c.dataDir, '/var/lib/callvault');
});

test('an empty file takes every default; relative dataDir resolves against the config file', () => {
  const c = parseConfigText('dataDir: ./data\n', '/etc/callvault/x.yaml');
  assert.equal(c.dataDir, '/etc/callvault/data');
  assert.equal(c.calls.rtpTimeoutSeconds, 300);
  assert.equal(c.media.workers, 'auto');
});

test('errors name the key path, the bad value, what is allowed, and the line', () => {
  const yaml = [
    'control:',
    '  listen: 127.0.0.1:8080',
    'media:',
    '  workers: many',
    '  jitterBufferMs: 5',
    'recording:',
    '  channelMode: quad',
    '  colour: blue',
    '',
  ].join('\n');
  assert.deepEqual(problems(yaml), [
    '4:media.workers: got "many", allowed: integer in [1, 64] or "auto"',
    '5:media.jitterBufferMs: 5 is too small; allowed: integer in [20, 1000]',
    '7:recording.channelMode: got "quad"; allowed: one of "stereo", "separate", "caller", "callee"',
    '8:recording.colour: unknown key; known keys here: channelMode, maxWriteBacklogKiB',
  ]);
});

test('YAML syntax errors and cross-key rules report their line', () => {
  assert.match(problems('media:\n  portMin: [1\n')[0] as string, /^\d+:: YAML syntax/);
  assert.deepEqual(problems('media:\n  portMin: 50000\n  portMax: 40000\n'), ['2:media.portMin: must not exceed media.portMax (40000)']);
  assert.deepEqual(problems('control:\n  listen: localhost\n')[0]?.startsWith('2:control.listen: got "localhost"'), true);
});

test('command-line overrides win over the file', () => {
  const c = loadConfig(path.join(ROOT, 'config/callvault.example.yaml'), {
    dataDir: 'x',
    controlListen: '[::1]:9',
    controlToken: 'abcdefghijklmnopq',
  });
  assert.equal(c.dataDir, path.resolve('x'));
  assert.equal(c.control.listen, '[::1]:9');
  assert.equal(c.control.token, 'abcdefghijklmnopq');
});

test('callvault config check: 0 for the example, 1 with path, value, allowed values and line for a bad file', async () => {
  const check = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'config', 'check', ...args], { encoding: 'utf8' });
  const ok = check(path.join(ROOT, 'config/callvault.example.yaml'));
  assert.equal(ok.status, 0, ok.stderr);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cv-check-'));
  const bad = path.join(dir, 'bad.yaml');
  await writeFile(bad, 'logging:\n  level: info\nmedia:\n  portMin: 70000\nsigning:\n  keyBits: 1024\n');
  const r = check(bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /line 4: media\.portMin: 70000 is too large; allowed: integer in \[1024, 65535\]/);
  assert.match(r.stderr, /line 6: signing\.keyBits: got 1024; allowed: one of 2048, 3072, 4096/);
  const j = JSON.parse(check(bad, '--json').stdout);
  assert.equal(j.ok, false);
  assert.deepEqual(
    j.problems.map((p: { path: string; line: number }) => `${p.path}@${p.line}`),
    ['media.portMin@4', 'signing.keyBits@6'],
  );
});

test('storage targets in the config: each template shown expanded for a sample call; a template that could escape, an unknown time zone, an sftp target without its host key or credential are refused with their paths', async () => {
  const check = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'config', 'check', ...args], { encoding: 'utf8' });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cv-check-'));
  const good = path.join(dir, 'good.yaml');
  const fp = `SHA256:${'A'.repeat(43)}`;
  await writeFile(
    good,
    `storage:\n  nas:\n    type: directory\n    path: /mnt/nas\n    template: Record-$Y_$M_$D_$h_$m_$s/$caller-$id\n    timeZone: Europe/Berlin\n  ssh:\n    type: sftp\n    host: 192.0.2.7\n    username: rec\n    hostKey: ${fp}\n    privateKeyFile: /etc/callvault/sftp.key\n`,
  );
  const ok = JSON.parse(check(good, '--json').stdout);
  assert.equal(ok.ok, true, JSON.stringify(ok.problems));
  assert.deepEqual(ok.targets, [
    { name: 'nas', type: 'directory', sample: '/mnt/nas/Record-2026_12_01_15_30_05/+4930123456-01a2321bfe100abaf76426' },
    { name: 'ssh', type: 'sftp', sample: 'sftp://rec@192.0.2.7:22/recordings/2026/12/01/01a2321bfe100abaf76426' },
  ]);
  const bad = path.join(dir, 'bad.yaml');
  await writeFile(
    bad,
    `storage:\n  nas:\n    type: directory\n    path: /mnt/nas\n    template: ../$id\n  tz:\n    type: directory\n    path: /mnt/x\n    timeZone: Mars/Olympus\n  ssh:\n    type: sftp\n    host: 192.0.2.7\n    username: rec\n`,
  );
  const r = JSON.parse(check(bad, '--json').stdout);
  assert.equal(r.ok, false);
  const byPath = Object.fromEntries(r.problems.map((p: { path: string; message: string }) => [p.path, p.message]));
  assert.match(byPath['storage.nas.template'], /"\.\."/);
  assert.match(byPath['storage.tz.timeZone'], /not a time zone/);
  assert.match(byPath['storage.ssh.hostKey'], /required for a sftp target/);
  assert.match(byPath['storage.ssh.privateKeyFile'], /exactly one of privateKeyFile and passwordFile/);
});
