import assert from 'node:assert/strict';
import { test } from 'node:test';
import path from 'node:path';
import { parseConfigText, loadConfig } from '../daemon/config/load.js';
import { ConfigError } from '../daemon/errors.js';
import { ROOT } from './support/daemon.js';

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
  const yaml = ['control:', '  listen: 127.0.0.1:8080', 'media:', '  workers: many', '  jitterBufferMs: 5', 'recording:', '  channelMode: quad', '  colour: blue', ''].join('\n');
  assert.deepEqual(problems(yaml), [
    '4:media.workers: got "many", allowed: integer in [1, 64] or "auto"',
    '5:media.jitterBufferMs: 5 is too small; allowed: integer in [20, 1000]',
    '7:recording.channelMode: got "quad"; allowed: one of "stereo", "separate", "caller", "callee"',
    '8:recording.colour: unknown key; known keys here: channelMode',
  ]);
});

test('YAML syntax errors and cross-key rules report their line', () => {
  assert.match(problems('media:\n  portMin: [1\n')[0] as string, /^\d+:: YAML syntax/);
  assert.deepEqual(problems('media:\n  portMin: 50000\n  portMax: 40000\n'), ['2:media.portMin: must not exceed media.portMax (40000)']);
  assert.deepEqual(problems('control:\n  listen: localhost\n')[0]?.startsWith('2:control.listen: got "localhost"'), true);
});

test('command-line overrides win over the file', () => {
  const c = loadConfig(path.join(ROOT, 'config/callvault.example.yaml'), { dataDir: 'x', controlListen: '[::1]:9', controlToken: 'abcdefghijklmnopq' });
  assert.equal(c.dataDir, path.resolve('x'));
  assert.equal(c.control.listen, '[::1]:9');
  assert.equal(c.control.token, 'abcdefghijklmnopq');
});
