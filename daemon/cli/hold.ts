import type { CommandModule } from 'yargs';
import { setHold } from '../archive/holds.js';
import { CallvaultError } from '../errors.js';
import { isRecordingId } from '../record/recordingId.js';
import { currentActor } from '../store/AuditLog.js';
import { normalizeNumber } from '../store/numbers.js';
import { instanceDataDir, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withStores } from './stores.js';

interface HoldArgs extends InstanceArgs {
  id?: string;
  number?: string;
  reason?: string;
  release: boolean;
  json: boolean;
}

export const holdCommand: CommandModule<object, HoldArgs> = {
  command: 'hold [id]',
  describe: 'Put recordings under legal hold (the retention sweeper never deletes them), or --release them',
  builder: (y) =>
    withInstanceOptions(y)
      .positional('id', { type: 'string', describe: 'one recording id' })
      .option('number', { type: 'string', describe: 'every recording (now in the index) with this number on either side' })
      .option('reason', { type: 'string', describe: 'why (case number, request): required to hold, kept in the index and audit log' })
      .option('release', { type: 'boolean', default: false, describe: 'lift the hold instead' })
      .option('json', { type: 'boolean', default: false }),
  handler: (args) =>
    runCommand(async () => {
      if (Boolean(args.id) === Boolean(args.number)) throw new CallvaultError('USAGE', 'give a recording id or --number, not both');
      if (args.id && !isRecordingId(args.id)) throw new CallvaultError('BAD_ID', `${args.id} is not a recording id (22 hex digits)`);
      if (!args.release && !args.reason?.trim()) throw new CallvaultError('USAGE', '--reason is required to put recordings on hold');
      return withStores(instanceDataDir(args), async ({ index, audit }) => {
        const ids = args.id ? [args.id] : [...index.idsWith('number', normalizeNumber(args.number as string))];
        const changed = await setHold(index, audit, ids, { reason: args.release ? null : (args.reason ?? '').trim(), actor: currentActor() });
        if (args.json) printJson({ changed, unchanged: ids.length - changed.length });
        else
          process.stdout.write(
            `${changed.length} recording(s) ${args.release ? 'released from' : 'put on'} legal hold${ids.length > changed.length ? `; ${ids.length - changed.length} already so or deleted` : ''}\n`,
          );
        return EXIT.ok;
      });
    }),
};
