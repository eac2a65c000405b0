import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { CallvaultError, KeyError } from '../errors.js';
import { readInstanceCertificate } from '../keys/SigningIdentity.js';
import { findRecordingDirs, verifyRecording, type RecordingVerification } from '../seal/verify.js';
import { instanceDataDir, withInstanceOptions, type InstanceArgs } from './options.js';
import { ProgressBar } from './progress.js';
import { AuditLog, currentActor } from '../store/AuditLog.js';
import { EXIT, printJson, runCommand } from './run.js';

interface VerifyArgs extends InstanceArgs {
  dir: string;
  all: boolean;
  cert?: string | undefined;
  json: boolean;
}

async function certificateFor(args: VerifyArgs): Promise<string> {
  if (!args.cert) return readInstanceCertificate(instanceDataDir(args));
  try {
    return await readFile(args.cert, 'utf8');
  } catch (err) {
    throw new KeyError('CERT_UNREADABLE', `cannot read certificate ${args.cert}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function printOne(v: RecordingVerification): void {
  const out: string[] = [`${v.dir}: ${v.ok ? 'OK' : 'FAILED'}`];
  for (const f of v.files) out.push(`  ${f.status.padEnd(9)} ${f.name}`);
  out.push(`  ${'signature'.padEnd(9)} ${v.signature}${v.checksumFile ? ` (${v.checksumFile})` : ''}`);
  process.stdout.write(out.join('\n') + '\n');
  for (const p of v.problems) process.stderr.write(`${v.recordingId ?? v.dir}: ${p}\n`);
}

/**
 * Failures go to the instance's audit log when there is an instance to speak
 * of (verifying a copy elsewhere with --cert needs none).
 */
async function auditFailures(args: VerifyArgs, failures: RecordingVerification[]): Promise<void> {
  if (!failures.length) return;
  let dataDir: string;
  try {
    dataDir = instanceDataDir(args);
  } catch {
    return;
  }
  const audit = AuditLog.open(dataDir);
  try {
    for (const v of failures) await audit.append(currentActor(), 'verify.failed', v.recordingId ?? null, { dir: v.dir, problems: v.problems });
  } finally {
    await audit.close();
  }
}

async function verifyAll(root: string, pem: string, json: boolean, args: VerifyArgs): Promise<number> {
  const dirs = await findRecordingDirs(root);
  const bar = new ProgressBar('verifying', dirs.length);
  const results: RecordingVerification[] = [];
  for (const dir of dirs) {
    const v = await verifyRecording(dir, pem);
    results.push(v);
    bar.tick(v.bytes);
    if (!json && !v.ok) bar.note(`FAILED ${dir}: ${v.problems.join('; ')}`);
  }
  bar.end();
  const failed = results.filter((r) => !r.ok).length;
  await auditFailures(args, results.filter((r) => !r.ok));
  const summary = { recordings: results.length, ok: results.length - failed, failed, bytes: results.reduce((s, r) => s + r.bytes, 0) };
  if (json) printJson({ summary, results });
  else process.stdout.write(`${summary.recordings} recordings verified: ${summary.ok} OK, ${summary.failed} FAILED (${(summary.bytes / 1e6).toFixed(1)} MB hashed)\n`);
  return failed || results.length === 0 ? EXIT.failed : EXIT.ok;
}

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify <dir>',
  describe: 'Check a sealed recording (or, with --all, every recording under a directory): checksums, signature, unlisted files',
  builder: (y) =>
    withInstanceOptions(y)
      .positional('dir', { type: 'string', demandOption: true, normalize: true, describe: 'recording directory (with --all: any directory above recordings)' })
      .option('all', { type: 'boolean', default: false, describe: 'verify every recording under <dir>, with progress and a summary' })
      .option('cert', { type: 'string', normalize: true, describe: "certificate PEM to check signatures with (default: the instance's own)" })
      .option('json', { type: 'boolean', default: false, describe: 'machine-readable result on stdout' }),
  handler: (args) =>
    runCommand(async () => {
      const dir = path.resolve(args.dir);
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new CallvaultError('NOT_A_DIRECTORY', `${args.dir} is not a directory`);
      const pem = await certificateFor(args);
      if (args.all) return verifyAll(dir, pem, args.json, args);
      const v = await verifyRecording(dir, pem);
      if (!v.ok) await auditFailures(args, [v]);
      if (args.json) printJson(v);
      else printOne(v);
      return v.ok ? EXIT.ok : EXIT.failed;
    }),
};
