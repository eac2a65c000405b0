import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureAlerts } from '../../daemon/notify/FailureAlerts.js';

test('failure alerts: one mail at the start, a digest per interval only if it failed again, one at recovery; each target on its own', () => {
  const a = new FailureAlerts((t) => `storage target ${t}`, 'target', 60_000);
  const t0 = 1_000_000;
  const first = a.failed('nas', 'rec-1', 'EIO', t0);
  assert.equal(first?.kind, 'target-failing');
  assert.match(first!.text, /rec-1/);
  for (let i = 1; i <= 50; i++) assert.equal(a.failed('nas', `rec-${i % 3}`, 'EIO again', t0 + i * 100), null, 'no mail per attempt');
  assert.deepEqual(a.tick(t0 + 30_000), [], 'not before the interval');
  const [digest, ...more] = a.tick(t0 + 60_000);
  assert.equal(more.length, 0);
  assert.equal(digest?.kind, 'target-digest');
  assert.match(digest!.text, /50 more failed attempts/);
  assert.match(digest!.text, /Last error: EIO again/);
  assert.deepEqual(a.tick(t0 + 130_000), [], 'no digest when it did not fail again since the last mail');
  assert.equal(a.failed('s3', 'rec-9', 'timeout', t0 + 131_000)?.kind, 'target-failing', 'another target has its own state');
  const back = a.succeeded('nas', t0 + 200_000);
  assert.equal(back?.kind, 'target-recovered');
  assert.match(back!.text, /51 failed attempts, 3 recordings delayed/);
  assert.equal(a.succeeded('nas', t0 + 201_000), null, 'recovered once');
  assert.equal(a.failed('nas', 'rec-1', 'EIO', t0 + 300_000)?.kind, 'target-failing', 'failing again after a recovery is news again');
});
