import { constants } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { isSealed, legacyState } from '../archive/lifecycle.js';
import { CallvaultError } from '../errors.js';
import { readInstanceId } from '../keys/SigningIdentity.js';
import { dataDirCertificate } from '../keys/trustAnchor.js';
import { checkAgainstIndex } from '../seal/verifyAgainstIndex.js';
import { isRecordingId } from '../record/recordingId.js';
import { verifyRecording } from '../seal/verify.js';
import { WorkerPool } from '../seal/WorkerPool.js';
import { currentActor } from '../store/AuditLog.js';
import { isAudioFile, isEnvelope, plainName, readMetadata } from '../record/metadata.js';
import { decryptEnvelope, looksLikeWav, readDigits } from '../seal/openEnvelope.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withShareOptions, type ShareArgs } from './shares.js';
import { checkpointNow, withStores } from './stores.js';
import { warnIfUnpinned } from './trust.js';
import { openUnwrapper } from './unwrap.js';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';

interface ExportArgs extends InstanceArgs, ShareArgs {
  recordingId: string;
  out: string;
  reason?: string | undefined;
  dtmf: boolean;
  json: boolean;
}

/**
 * Hand one recording's audio to an authorised listener: only a recording
 * that verifies (checksums, signature) is exported; encrypted audio is
 * decrypted with both administrators' shares or by the key manager; who,
 * when, why and where goes to the audit log before the first byte is written.
 */
async function exportRecording(args: ExportArgs): Promise<number> {
  if (!isRecordingId(args.recordingId)) throw new CallvaultError('BAD_ID', `${args.recordingId} is not a recording id (22 hex digits)`);
  const config = instanceConfig(args);
  return withStores(config.dataDir, async ({ index, audit }) => {
    const entry = index.get(args.recordingId);
    if (!entry) throw new CallvaultError('NO_SUCH_RECORDING', `no recording ${args.recordingId} in the index`);
    if (!isSealed(entry)) throw new CallvaultError('NOT_SEALED', `recording ${args.recordingId} is ${legacyState(entry)}: only sealed recordings are exported`);
    const dir = path.join(config.dataDir, entry.dir);
    const anchor = warnIfUnpinned(await dataDirCertificate(config.dataDir, config.signing.fingerprint), config.dataDir);
    const v = checkAgainstIndex(await verifyRecording(dir, anchor.pem), { dataDir: config.dataDir, instanceId: await readInstanceId(config.dataDir), index });
    if (!v.ok) throw new CallvaultError('VERIFY_FAILED', `recording ${args.recordingId} does not verify, refusing to export it: ${v.problems.join('; ')}`);
    const audio = v.files.map((f) => f.name).filter(isAudioFile);
    const meta = await readMetadata(dir, args.recordingId);
    const digitsFile = meta.dtmfDigitsFile && v.files.some((f) => f.name === meta.dtmfDigitsFile) ? path.join(dir, meta.dtmfDigitsFile) : null;
    if (args.dtmf && !digitsFile) {
      throw new CallvaultError('NO_DIGITS', `recording ${args.recordingId} keeps no keys pressed: its profile discards them${meta.dtmfDigitsFile ? ', or `keys decrypt-all` removed them (they are kept only encrypted)' : ''}`);
    }
    const outs = audio.length === 1 ? [path.resolve(args.out)] : audio.map((n) => path.resolve(args.out, plainName(n)));
    if (audio.length > 1) await mkdir(path.resolve(args.out), { recursive: true, mode: 0o700 });
    for (const o of outs) {
      if (await lstat(o).then(() => true, () => false)) throw new CallvaultError('OUT_EXISTS', `${o} exists; refusing to overwrite it`);
    }
    const pool = new WorkerPool(1);
    let unwrapper: DekUnwrapper | null = null;
    try {
      unwrapper = audio.some(isEnvelope) || args.dtmf ? await openUnwrapper(config, args, pool, `export ${args.recordingId}`, audit) : null;
      const actor = currentActor();
      await audit.append(actor, 'recording.exported', args.recordingId, { out: outs, reason: args.reason ?? null, kekId: entry.kekId, dtmf: args.dtmf });
      await checkpointNow(config, audit, actor);
      for (const [i, name] of audio.entries()) {
        // Staged in a directory made for this file alone (mode 0700, a fresh random name, beside the
        // destination so the rename stays on one file system): nothing planted in a shared output
        // directory can be written through, and nobody else can open the plaintext while it grows.
        const staging = await mkdtemp(path.join(path.dirname(outs[i]!), '.callvault-export-'));
        const staged = path.join(staging, 'audio.wav');
        try {
          if (isEnvelope(name)) {
            const r = await decryptEnvelope(pool, unwrapper!, path.join(dir, name), meta, staged);
            if (!looksLikeWav(r.head)) throw new CallvaultError('NOT_AUDIO', `${name} decrypts, but not to a WAV file`);
          } else {
            await copyFile(path.join(dir, name), staged, constants.COPYFILE_EXCL);
            await chmod(staged, 0o600);
          }
          await rename(staged, outs[i]!);
        } finally {
          await rm(staging, { recursive: true, force: true });
        }
      }
      const digits = args.dtmf ? (await readDigits(unwrapper!, digitsFile!, meta)).digits : undefined;
      if (args.json) printJson({ recordingId: args.recordingId, files: outs, actor, ...(digits ? { dtmf: digits } : {}) });
      else {
        process.stdout.write(`exported ${args.recordingId}: ${outs.join(', ')}\n`);
        if (digits) process.stdout.write(`keys pressed: ${digits.map((d) => `${d.leg} ${(d.atMs / 1000).toFixed(2)} s ${d.key}`).join(', ') || 'none'}\n`);
      }
      return EXIT.ok;
    } finally {
      unwrapper?.close();
      await pool.close();
    }
  });
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export <recordingId>',
  describe: 'Decrypt one recording for an authorised listener (both shares, or the key manager); audited',
  builder: (y) =>
    withShareOptions(withInstanceOptions(y))
      .positional('recordingId', { type: 'string', demandOption: true })
      .option('out', { type: 'string', demandOption: true, normalize: true, describe: 'output WAV file (a directory when the recording has one file per leg)' })
      .option('reason', { type: 'string', describe: 'why (ticket, request): kept in the audit log' })
      .option('dtmf', { type: 'boolean', default: false, describe: 'also print the keys pressed (profiles with dtmfDigits: encrypted), decrypted in memory' })
      .option('json', { type: 'boolean', default: false }) as Argv<ExportArgs>,
  handler: (args) => runCommand(() => exportRecording(args)),
};
