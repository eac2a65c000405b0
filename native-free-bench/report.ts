/**
 * One way every bench reports: a Markdown table on stdout and a JSON file per
 * run in `bench-results/` (machine, commit, figures, targets), so runs can be
 * compared across commits and machines.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check } from './args.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Row {
  readonly measure: string;
  readonly figure: string;
  readonly baseline: string;
  /** undefined: information only; true/false: a target of the bar, met or not. */
  readonly met?: boolean;
}

function quiet(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): Record<string, string | number> {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    openssl: quiet('openssl', ['version']),
  };
}

/**
 * Print the table, write the JSON, and under `--check` set a failing exit
 * code if any target was missed.
 */
export function report(bench: string, title: string, rows: readonly Row[], figures: Record<string, unknown>): string {
  const mark = (r: Row) => (r.met === undefined ? '' : r.met ? ' ✓' : ' ✗ not met');
  let md = `\n### ${title}\n\n| measure | callvault | baseline / target, same run |\n|---|---|---|\n`;
  for (const r of rows) md += `| ${r.measure} | ${r.figure} | ${r.baseline}${mark(r)} |\n`;
  const missed = rows.filter((r) => r.met === false).map((r) => r.measure.trim());
  if (missed.length) md += `\nnot met: ${missed.join('; ')}\n`;
  process.stdout.write(md);
  const at = new Date();
  const commit = quiet('git', ['rev-parse', '--short', 'HEAD']);
  const dir = path.join(ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${at.toISOString().replace(/[:.]/g, '-')}-${bench}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ bench, at: at.toISOString(), commit, machine: machine(), argv: process.argv.slice(2), rows, missed, figures }, null, 2)}\n`,
  );
  process.stdout.write(`\n(JSON: ${path.relative(ROOT, file)})\n`);
  if (check && missed.length) process.exitCode = 1;
  return file;
}
