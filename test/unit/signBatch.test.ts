import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import { test } from 'node:test';
import { WorkerPool } from '../../daemon/seal/WorkerPool.js';

test('sign batching: 100 signatures asked for in one turn leave in a few pool tasks, not 100, and each verifies against its own payload', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pool = new WorkerPool(2);
  const tasks: string[] = [];
  pool.on('task', (kind) => void tasks.push(kind));
  try {
    const payloads = Array.from({ length: 100 }, (_, i) => Buffer.from(`checksum file ${i}\n`));
    const sigs = await Promise.all(payloads.map((p) => pool.sign(p, privateKey)));
    for (const [i, sig] of sigs.entries()) assert.ok(verify('sha256', payloads[i]!, publicKey, sig), `signature ${i}`);
    const signTasks = tasks.filter((t) => t === 'sign').length;
    assert.ok(signTasks >= 2 && signTasks <= 4, `${signTasks} sign tasks for 100 signatures (at most 64 each, one per thread at a time)`);
  } finally {
    await pool.close();
  }
});
