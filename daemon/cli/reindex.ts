import type { CommandModule } from 'yargs';
import { AuditLog, currentActor } from '../store/AuditLog.js';
import { rebuildIndex, type RebuildResult } from '../store/rebuild.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withTargets } from './targets.js';

interface ReindexArgs extends InstanceArgs {
  json: boolean;
}

export const reindexCommand: CommandModule<object, ReindexArgs> = {
  command: 'reindex',
  describe: 'Rebuild the LMDB index from the recordings on disk (stop the daemon first; the old index is moved aside)',
  builder: (y) => withInstanceOptions(y).option('json', { type: 'boolean', default: false }),
  handler: (args) =>
    runCommand(async () => {
      const config = instanceConfig(args);
      const audit = AuditLog.open(config.dataDir);
      let result: RebuildResult;
      try {
        result = await withTargets(config, (targets) =>
          rebuildIndex(config.dataDir, audit, targets, (n) => {
            if (process.stderr.isTTY && n % 1000 === 0) process.stderr.write(`\rindexed ${n}`);
          }),
        );
        await audit.append(currentActor(), 'index.rebuilt', null, {
          recordings: result.recordings,
          byState: result.byState,
          problems: result.problems.length,
        });
      } finally {
        await audit.close();
      }
      if (args.json) printJson(result);
      else {
        process.stdout.write(
          `${result.recordings} recordings indexed: ${
            Object.entries(result.byState)
              .map(([s, n]) => `${n} ${s}`)
              .join(', ') || 'none'
          }\n`,
        );
        if (result.previous) process.stdout.write(`previous index kept in ${result.previous}\n`);
        for (const p of result.problems) process.stderr.write(`not indexed: ${p}\n`);
      }
      return result.problems.length ? EXIT.failed : EXIT.ok;
    }),
};
