import type { Argv, CommandModule } from 'yargs';
import { exportRecording } from '../archive/exportRecording.js';
import { CallvaultError } from '../errors.js';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import { readInstanceId } from '../keys/SigningIdentity.js';
import { dataDirCertificate } from '../keys/trustAnchor.js';
import { isRecordingId } from '../record/recordingId.js';
import { WorkerPool } from '../seal/WorkerPool.js';
import { currentActor } from '../store/AuditLog.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withShareOptions, type ShareArgs } from './shares.js';
import { checkpointNow, withStores } from './stores.js';
import { warnIfUnpinned } from './trust.js';
import { openUnwrapper } from './unwrap.js';

interface ExportArgs extends InstanceArgs, ShareArgs {
  recordingId: string;
  out: string;
  reason?: string | undefined;
  dtmf: boolean;
  json: boolean;
}

/** `callvault export`: the instance's stores, trust anchor and credentials for exportRecording, and what it did, printed. */
async function exportCommandRun(args: ExportArgs): Promise<number> {
  if (!isRecordingId(args.recordingId)) throw new CallvaultError('BAD_ID', `${args.recordingId} is not a recording id (22 hex digits)`);
  const config = instanceConfig(args);
  return withStores(config.dataDir, async ({ index, audit }) => {
    const anchor = warnIfUnpinned(await dataDirCertificate(config.dataDir, config.signing.fingerprint), config.dataDir);
    const pool = new WorkerPool(1);
    let unwrapper: DekUnwrapper | null = null;
    const actor = currentActor();
    try {
      const result = await exportRecording(
        {
          dataDir: config.dataDir,
          index,
          audit,
          pool,
          certificatePem: anchor.pem,
          instanceId: await readInstanceId(config.dataDir),
          unwrapper: async () => (unwrapper = await openUnwrapper(config, args, pool, `export ${args.recordingId}`, audit)),
          audited: () => checkpointNow(config, audit, actor),
        },
        { recordingId: args.recordingId, out: args.out, reason: args.reason ?? null, dtmf: args.dtmf, actor },
      );
      if (args.json) printJson({ recordingId: args.recordingId, files: result.files, actor, ...(result.digits ? { dtmf: result.digits } : {}) });
      else {
        process.stdout.write(`exported ${args.recordingId}: ${result.files.join(', ')}\n`);
        if (result.digits) {
          const keys = result.digits.map((d) => `${d.leg} ${(d.atMs / 1000).toFixed(2)} s ${d.key}`).join(', ');
          process.stdout.write(`keys pressed: ${keys || 'none'}\n`);
        }
      }
      return EXIT.ok;
    } finally {
      (unwrapper as DekUnwrapper | null)?.close();
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
      .option('out', {
        type: 'string',
        demandOption: true,
        normalize: true,
        describe: 'output WAV file (a directory when the recording has one file per leg)',
      })
      .option('reason', { type: 'string', describe: 'why (ticket, request): kept in the audit log' })
      .option('dtmf', {
        type: 'boolean',
        default: false,
        describe: 'also print the keys pressed (profiles with dtmfDigits: encrypted), decrypted in memory',
      })
      .option('json', { type: 'boolean', default: false }) as Argv<ExportArgs>,
  handler: (args) => runCommand(() => exportCommandRun(args)),
};
