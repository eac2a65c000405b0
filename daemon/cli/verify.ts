import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { CallvaultError } from '../errors.js';
import { readInstanceId } from '../keys/SigningIdentity.js';
import type { TrustAnchor } from '../keys/trustAnchor.js';
import { findRecordingDirs, verifyRecording, type RecordingVerification } from '../seal/verify.js';
import { checkAgainstIndex, missingFromDisk, type InstanceRecord, type MissingRecording } from '../seal/verifyAgainstIndex.js';
import { RecordingIndex } from '../store/RecordingIndex.js';
import { instanceConfig, instanceDataDir, withInstanceOptions } from './options.js';
import { ProgressBar } from './progress.js';
import { AuditLog, currentActor } from '../store/AuditLog.js';
import { EXIT, printJson, runCommand } from './run.js';
import { WorkerPool } from '../seal/WorkerPool.js';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import { isEnvelope, readMetadata } from '../record/metadata.js';
import { decryptEnvelope, looksLikeWav, readDigits } from '../seal/openEnvelope.js';
import { withShareOptions, type ShareArgs } from './shares.js';
import { trustedCertificate, withTrustOptions, type TrustArgs } from './trust.js';
import { openUnwrapper } from './unwrap.js';

interface VerifyArgs extends TrustArgs, ShareArgs {
  dir: string;
  all: boolean;
  decrypt: boolean;
  json: boolean;
}

/**
 * This instance's index and id, to compare recordings under its data dir
 * with; none when there is no instance here (a copy checked with --cert).
 */
async function openInstanceRecord(args: VerifyArgs): Promise<InstanceRecord | null> {
  let dataDir: string;
  try {
    dataDir = instanceDataDir(args);
  } catch {
    return null;
  }
  if (!existsSync(path.join(dataDir, 'index', 'index.mdb'))) return null;
  return { dataDir, instanceId: await readInstanceId(dataDir), index: RecordingIndex.open(dataDir) };
}

function printOne(v: RecordingVerification): void {
  const out: string[] = [`${v.dir}: ${v.ok ? 'OK' : 'FAILED'}`];
  for (const f of v.files) out.push(`  ${f.status.padEnd(9)} ${f.name}`);
  out.push(`  ${'signature'.padEnd(9)} ${v.signature}${v.checksumFile ? ` (${v.checksumFile})` : ''}`);
  process.stdout.write(`${out.join('\n')}\n`);
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

/**
 * `--decrypt`: every envelope of a recording that verified is decrypted in
 * the pool (nothing written) — each chunk must authenticate and the audio
 * must be a WAV file. The KEKs are opened once, on first need.
 */
class DecryptChecker {
  private readonly pool = new WorkerPool(1);
  private unwrapper: Promise<DekUnwrapper> | undefined;
  private audit: AuditLog | undefined;
  readonly checked: string[] = [];

  constructor(private readonly args: VerifyArgs) {}

  async check(v: RecordingVerification): Promise<RecordingVerification> {
    const envelopes = v.files.filter((f) => f.status === 'OK' && isEnvelope(f.name));
    if (!v.ok || !envelopes.length) return v;
    this.audit ??= AuditLog.open(instanceDataDir(this.args));
    this.unwrapper ??= openUnwrapper(instanceConfig(this.args), this.args, this.pool, 'verify --decrypt', this.audit);
    const unwrapper = await this.unwrapper;
    const problems: string[] = [];
    const meta = await readMetadata(v.dir, v.recordingId!);
    for (const f of envelopes) {
      try {
        if (f.name === meta.dtmfDigitsFile) await readDigits(unwrapper, path.join(v.dir, f.name), meta);
        else if (!looksLikeWav((await decryptEnvelope(this.pool, unwrapper, path.join(v.dir, f.name), meta)).head))
          problems.push(`${f.name}: decrypts, but not to a WAV file`);
      } catch (err) {
        problems.push(`${f.name}: ${(err as Error).message}`);
      }
    }
    if (v.recordingId) this.checked.push(v.recordingId);
    return problems.length ? { ...v, ok: false, problems: [...v.problems, ...problems] } : v;
  }

  /** Who decrypted what, for the audit log. */
  async close(): Promise<void> {
    await this.pool.close();
    (await this.unwrapper?.catch(() => undefined))?.close();
    const { audit } = this;
    if (!audit) return;
    try {
      if (this.checked.length)
        await audit.append(currentActor(), 'recording.decrypt-checked', null, {
          recordings: this.checked.length,
          first: this.checked[0],
          keksOpened: (await this.unwrapper)?.opened ?? [],
        });
    } finally {
      await audit.close();
    }
  }
}

interface Checks {
  readonly anchor: TrustAnchor;
  readonly instance: InstanceRecord | null;
  readonly decrypt: DecryptChecker | undefined;
}

async function verifyOne(dir: string, c: Checks): Promise<RecordingVerification> {
  const files = await verifyRecording(dir, c.anchor.pem);
  const v = c.instance ? checkAgainstIndex(files, c.instance) : files;
  return c.decrypt ? c.decrypt.check(v) : v;
}

function trustOf(c: Checks): { source: TrustAnchor['source']; fingerprintSha256: string; index: boolean } {
  return { source: c.anchor.source, fingerprintSha256: c.anchor.fingerprintSha256, index: c.instance !== null };
}

async function verifyAll(root: string, c: Checks, json: boolean, args: VerifyArgs): Promise<number> {
  const dirs = await findRecordingDirs(root);
  const bar = new ProgressBar('verifying', dirs.length);
  const results: RecordingVerification[] = [];
  for (const dir of dirs) {
    const v = await verifyOne(dir, c);
    results.push(v);
    bar.tick(v.bytes);
    if (!json && !v.ok) bar.note(`FAILED ${dir}: ${v.problems.join('; ')}`);
  }
  bar.end();
  const missing: MissingRecording[] = c.instance ? missingFromDisk(root, new Set(results.map((r) => r.recordingId ?? '')), c.instance) : [];
  const failures = [...results.filter((r) => !r.ok), ...missing.map(missingAsFailure)];
  await auditFailures(args, failures);
  const failed = results.filter((r) => !r.ok).length;
  const summary = {
    recordings: results.length,
    ok: results.length - failed,
    failed,
    missing: missing.length,
    bytes: results.reduce((s, r) => s + r.bytes, 0),
  };
  if (json) printJson({ summary, trust: trustOf(c), results, missing });
  else {
    for (const m of missing)
      process.stderr.write(`${m.recordingId}: MISSING: the index has it ${m.state} at ${m.dir}, which is gone (not deleted by retention)\n`);
    process.stdout.write(
      `${summary.recordings} recordings verified: ${summary.ok} OK, ${summary.failed} FAILED, ${summary.missing} MISSING (${(summary.bytes / 1e6).toFixed(1)} MB hashed)${c.instance ? '' : '; not compared with an index'}\n`,
    );
  }
  return failed || missing.length || results.length === 0 ? EXIT.failed : EXIT.ok;
}

/** A recording the index has and the disk does not, as the audit log records failures. */
function missingAsFailure(m: MissingRecording): RecordingVerification {
  return {
    dir: m.dir,
    recordingId: m.recordingId,
    ok: false,
    checksumFile: null,
    signature: 'MISSING',
    files: [],
    problems: [`MISSING: the index has it ${m.state}, the directory is gone`],
    bytes: 0,
    binding: null,
  };
}

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify <dir>',
  describe: 'Check a sealed recording (or, with --all, every recording under a directory): checksums, signature, unlisted files',
  builder: (y) =>
    withTrustOptions(withShareOptions(withInstanceOptions(y)))
      .positional('dir', {
        type: 'string',
        demandOption: true,
        normalize: true,
        describe: 'recording directory (with --all: any directory above recordings)',
      })
      .option('all', { type: 'boolean', default: false, describe: 'verify every recording under <dir>, with progress and a summary' })
      .option('decrypt', {
        type: 'boolean',
        default: false,
        describe: 'also decrypt every envelope (in memory) and check the audio: needs both shares or the key manager',
      })
      .option('json', { type: 'boolean', default: false, describe: 'machine-readable result on stdout' }),
  handler: (args) =>
    runCommand(async () => {
      const dir = path.resolve(args.dir);
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new CallvaultError('NOT_A_DIRECTORY', `${args.dir} is not a directory`);
      const anchor = await trustedCertificate(args);
      const checks: Checks = { anchor, instance: await openInstanceRecord(args), decrypt: args.decrypt ? new DecryptChecker(args) : undefined };
      try {
        if (args.all) return await verifyAll(dir, checks, args.json, args);
        const v = await verifyOne(dir, checks);
        if (!v.ok) await auditFailures(args, [v]);
        if (args.json) printJson({ ...v, trust: trustOf(checks) });
        else printOne(v);
        return v.ok ? EXIT.ok : EXIT.failed;
      } finally {
        await checks.decrypt?.close();
        await checks.instance?.index.close();
      }
    }),
};
