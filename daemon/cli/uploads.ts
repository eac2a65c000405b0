import type { Argv, CommandModule } from 'yargs';
import { retryUploads, uploadStatus } from '../archive/uploadStatus.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withStores } from './stores.js';

interface StatusArgs extends InstanceArgs {
  json: boolean;
}

interface RetryArgs extends InstanceArgs {
  target?: string;
  json: boolean;
}

const status: CommandModule<InstanceArgs, StatusArgs> = {
  command: 'status',
  describe: 'Per storage target: copies pending, the oldest one’s age, attempts, the last error, when the next attempt is due',
  builder: (y: Argv<InstanceArgs>) => y.option('json', { type: 'boolean', default: false }) as Argv<StatusArgs>,
  handler: (args) =>
    runCommand(async () => {
      const config = instanceConfig(args);
      return withStores(config.dataDir, async ({ index }) => {
        const targets = uploadStatus(index, Object.keys(config.storage));
        if (args.json) printJson({ targets });
        else {
          for (const t of targets) {
            const wait = t.nextAttemptAt ? `, next attempt ${t.nextAttemptAt}` : '';
            const err = t.lastError ? `, last error: ${t.lastError}` : '';
            const gone = t.configured ? '' : ' (no longer configured: its copies wait until it is back)';
            process.stdout.write(
              `${t.target}${gone}: ${t.pending} pending${t.pending ? `, oldest ${t.oldestPendingSeconds} s, up to ${t.maxAttempts} attempts${wait}${err}` : ''}\n`,
            );
          }
        }
        return EXIT.ok;
      });
    }),
};

const retry: CommandModule<InstanceArgs, RetryArgs> = {
  command: 'retry',
  describe: 'Make pending copies due now instead of at the end of their backoff (the daemon takes them up within 5 s)',
  builder: (y: Argv<InstanceArgs>) =>
    y
      .option('target', { type: 'string', describe: 'only this storage target' })
      .option('json', { type: 'boolean', default: false }) as Argv<RetryArgs>,
  handler: (args) =>
    runCommand(async () => {
      const config = instanceConfig(args);
      return withStores(config.dataDir, async ({ index }) => {
        const n = await retryUploads(index, args.target);
        if (args.json) printJson({ retried: n, target: args.target ?? null });
        else process.stdout.write(`${n} pending cop${n === 1 ? 'y' : 'ies'}${args.target ? ` to ${args.target}` : ''} due now\n`);
        return EXIT.ok;
      });
    }),
};

export const uploadsCommand: CommandModule<object, InstanceArgs> = {
  command: 'uploads <command>',
  describe: 'Copies to storage targets: status, retry',
  builder: (y) => withInstanceOptions(y).command(status).command(retry).demandCommand(1),
  handler: () => undefined,
};
