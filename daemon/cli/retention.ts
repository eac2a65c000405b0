import type { Argv, CommandModule } from 'yargs';
import { CallvaultError } from '../errors.js';
import { deleteExpired } from '../archive/deleteExpired.js';
import { createLogger } from '../log.js';
import { currentActor } from '../store/AuditLog.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { ProgressBar } from './progress.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withStores } from './stores.js';
import { withTargets } from './targets.js';

interface RunArgs extends InstanceArgs {
  'dry-run': boolean;
  now?: string;
  json: boolean;
}

const run: CommandModule<InstanceArgs, RunArgs> = {
  command: 'run',
  describe: 'Delete every recording whose retention has ended and that is not on legal hold (locally and on storage targets)',
  builder: (y: Argv<InstanceArgs>) =>
    y
      .option('dry-run', { type: 'boolean', default: false, describe: 'list what would be deleted; delete nothing' })
      .option('now', { type: 'string', describe: 'judge expiry as of this ISO 8601 time instead of now (what-if; tests)' })
      .option('json', { type: 'boolean', default: false }) as Argv<RunArgs>,
  handler: (args) =>
    runCommand(async () => {
      const now = args.now ? new Date(args.now) : new Date();
      if (Number.isNaN(now.getTime())) throw new CallvaultError('BAD_TIME', `--now ${args.now} is not an ISO 8601 time`);
      const config = instanceConfig(args);
      return withStores(config.dataDir, ({ index, audit }) =>
        withTargets(config, async (targets) => {
          let bar: ProgressBar | undefined;
          const log = createLogger('warn', process.stderr);
          const result = await deleteExpired(
            { dataDir: config.dataDir, index, audit, targets, log },
            {
              now,
              dryRun: args['dry-run'],
              actor: currentActor(),
              onDeleted: (id, _done, total) => {
                bar ??= new ProgressBar('deleting', total);
                bar.tick();
                if (args.json) process.stderr.write(`deleted ${id}\n`);
              },
            },
          );
          bar?.end();
          if (args.json) printJson(result);
          else if (args['dry-run']) {
            for (const id of result.expired) process.stdout.write(`${id}\n`);
            process.stderr.write(
              `${result.expired.length} recording(s) would be deleted (retention ended before ${now.toISOString()}, not on hold)\n`,
            );
          } else {
            process.stdout.write(
              `${result.deleted.length} deleted, ${result.failed.length} failed, ${result.resumed} interrupted deletion(s) finished\n`,
            );
            for (const f of result.failed) process.stderr.write(`not deleted: ${f.recordingId}: ${f.error}\n`);
          }
          return result.failed.length ? EXIT.failed : EXIT.ok;
        }),
      );
    }),
};

export const retentionCommand: CommandModule<object, InstanceArgs> = {
  command: 'retention <command>',
  describe: 'Retention: delete expired recordings (run, run --dry-run)',
  builder: (y) => withInstanceOptions(y).command(run).demandCommand(1),
  handler: () => undefined,
};
