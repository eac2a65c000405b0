import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { EXIT, printJson, runCommand } from './run.js';

interface CheckArgs {
  file: string;
  json: boolean;
}

const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check <file>',
  describe: 'Validate a config file against config/callvault.schema.json without running anything',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, normalize: true, describe: 'YAML config file' })
      .option('json', { type: 'boolean', default: false, describe: '{ ok, file, problems: [{ path, line, message }] } on stdout' }),
  handler: (args) =>
    runCommand(async () => {
      try {
        loadConfig(args.file);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        if (args.json) printJson({ ok: false, file: err.file, problems: err.problems });
        else process.stderr.write(`${err.message}\n`);
        return EXIT.failed;
      }
      if (args.json) printJson({ ok: true, file: args.file, problems: [] });
      else process.stdout.write(`${args.file}: OK\n`);
      return EXIT.ok;
    }),
};

export const configCommand: CommandModule<object, object> = {
  command: 'config <command>',
  describe: 'Work with config files (check)',
  builder: (y) => y.command(checkCommand).demandCommand(1, 'name a config command'),
  handler: () => undefined,
};
