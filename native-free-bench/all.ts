/**
 * `npm run bench [-- --check]`: every benchmark, one after another (each in
 * its own process, so one's threads and page cache do not disturb the
 * next's figures), then which targets were missed. Each bench also writes
 * its JSON file to bench-results/; per-bench options: `npm run bench:<name> -- …`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { check } from './args.js';

const BENCHES = ['ingest-paths', 'mixer', 'seal', 'encryption', 'index', 'uploads', 'load'] as const;

const failed: string[] = [];
for (const name of BENCHES) {
  process.stdout.write(`\n## ${name}\n`);
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(`./${name}.js`, import.meta.url)), ...(check ? ['--check'] : [])], {
    stdio: 'inherit',
  });
  if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
}
process.stdout.write(failed.length ? `\nbenches with missed targets or errors: ${failed.join(', ')}\n` : '\nevery bench ran; every target met\n');
if (failed.length) process.exitCode = 1;
