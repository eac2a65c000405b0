/**
 * Encryption at rest, measured against this machine's limits in the same run
 * (issue "Encryption at rest"):
 *
 *   - node:crypto's raw AES-256-GCM over one in-memory buffer (one thread),
 *     and `openssl speed -evp aes-256-gcm` (one process, 16 KiB blocks);
 *   - callvault's envelope encryption of real files in the Piscina pool
 *     (64 KiB chunks, read + encrypt + write + fsync), all threads busy;
 *     the bar: ≥ 80 % of raw × min(pool threads, cores);
 *   - re-wrapping 10,000 data keys under a new RSA-3072 KEK in the pool
 *     (unwrap with the old private KEK, wrap under the new public one) —
 *     the key work of `callvault keys revoke`; the bar: < 60 s.
 *
 *   node dist/native-free-bench/encryption.js [--check] [--files 8] [--mb 32] [--deks 10000]
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { DEK_BYTES, newEnvelope, wrapDek } from '../daemon/seal/envelope.js';
import { WorkerPool } from '../daemon/seal/WorkerPool.js';
import { check, numberOption } from './args.js';

const opt = numberOption;
const files = opt('files', 8);
const mb = opt('mb', 32);
const deks = opt('deks', 10_000);
const cores = availableParallelism();

function rawGcmMBps(): number {
  const buf = randomBytes(64 << 20);
  const key = randomBytes(32);
  let best = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
    c.update(buf);
    c.final();
    best = Math.max(best, buf.length / 1e6 / ((performance.now() - t0) / 1000));
  }
  return best;
}

function opensslGcmMBps(): number {
  const out = execFileSync('openssl', ['speed', '-seconds', '2', '-bytes', '16384', '-evp', 'aes-256-gcm'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const m = /aes-256-gcm\s+([\d.]+)k/i.exec(out);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${out}`);
  return (Number(m[1]) * 1000) / 1e6;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'callvault-bench-enc-'));
  const pool = new WorkerPool('auto');
  try {
    const kek = { id: 'bench-kek', ...generateKeyPairSync('rsa', { modulusLength: 3072 }) };
    const srcs: string[] = [];
    for (let i = 0; i < files; i++) {
      srcs.push(path.join(dir, `f${i}.wav`));
      await writeFile(srcs.at(-1)!, randomBytes(mb << 20));
    }
    const raw = rawGcmMBps();
    const openssl = opensslGcmMBps();
    const t0 = performance.now();
    await Promise.all(
      srcs.map((src) => {
        const { dek, header } = newEnvelope(kek);
        return pool.encryptFile({ src, dest: `${src}.enc`, dek, header: header.bytes });
      }),
    );
    const ours = (files * mb * 1.048576) / ((performance.now() - t0) / 1000);
    const lanes = Math.min(pool.threads, cores);
    const encRatio = ours / (raw * lanes);

    const next = { id: 'bench-kek-2', ...generateKeyPairSync('rsa', { modulusLength: 3072 }) };
    const wrapped = Array.from({ length: deks }, () => wrapDek(kek, randomBytes(DEK_BYTES)));
    const t1 = performance.now();
    const BATCH = 100;
    const batches: Promise<void>[] = [];
    for (let i = 0; i < deks; i += BATCH) {
      batches.push(pool.unwrapDeks({ key: kek.privateKey, kekId: kek.id, wrapped: wrapped.slice(i, i + BATCH) }).then((plain) => void plain.forEach((d) => wrapDek(next, d))));
    }
    await Promise.all(batches);
    const rewrapS = (performance.now() - t1) / 1000;

    const rows = [
      ['envelope encryption in the pool', `${ours.toFixed(0)} MB/s (${files} × ${mb} MiB files, ${pool.threads} threads)`, `${(encRatio * 100).toFixed(0)} % of node:crypto raw ${raw.toFixed(0)} MB/s × ${lanes} (target ≥ 80 %)`],
      ['  vs openssl speed -evp aes-256-gcm', `${ours.toFixed(0)} MB/s`, `${((ours / (openssl * lanes)) * 100).toFixed(0)} % of ${openssl.toFixed(0)} MB/s × ${lanes} (information)`],
      [`re-wrap ${deks} data keys (RSA-3072 OAEP)`, `${rewrapS.toFixed(1)} s`, 'target < 60 s'],
    ];
    process.stdout.write(`\ncallvault encryption bench — ${cpus()[0]?.model ?? 'cpu'}, ${cores} cores\n\n| measure | callvault | baseline, same run |\n|---|---|---|\n`);
    for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
    const missed = [encRatio < 0.8 && 'encryption below 80 % of raw × lanes', rewrapS >= 60 && 're-wrap ≥ 60 s'].filter(Boolean);
    if (missed.length) process.stdout.write(`\nnot met: ${missed.join('; ')}\n`);
    if (check && missed.length) process.exitCode = 1;
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
