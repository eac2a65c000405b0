import path from 'node:path';
import type { CommandModule } from 'yargs';
import type { Config } from '../config/Config.js';
import { loadConfig } from '../config/load.js';
import { expandTemplate, type TemplateFields } from '../upload/pathTemplate.js';
import { ConfigError } from '../errors.js';
import { EXIT, printJson, runCommand } from './run.js';

/** A made-up call, so an operator sees where each target's template puts recordings. */
const SAMPLE: TemplateFields = {
  recordingId: '01a2321bfe100abaf76426',
  startedAt: '2026-12-01T14:30:05.000Z',
  profile: 'default',
  direction: 'inbound',
  caller: '+4930123456',
  callee: '+4989654321',
};

function samplePaths(config: Config): { name: string; type: string; sample: string }[] {
  return Object.entries(config.storage).map(([name, t]) => {
    const place = path.posix.join(t.path, expandTemplate(t.template, SAMPLE, t.timeZone, 'posix'));
    const where = {
      directory: '',
      sftp: t.type === 'sftp' ? `sftp://${t.username}@${t.host}:${t.port}/` : '',
      smb: t.type === 'smb' ? `smb://${t.host}:${t.port}/${t.share}/` : '',
      s3: t.type === 's3' ? `s3://${t.bucket}/` : '',
      onedrive: t.type === 'onedrive' ? `onedrive:${t.driveId}/` : '',
    }[t.type];
    return { name, type: t.type, sample: `${where}${place}` };
  });
}

interface CheckArgs {
  file: string;
  json: boolean;
}

const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check <file>',
  describe: 'Validate a config file against config/callvault.schema.json without running anything',
  builder: (y) =>
    y.positional('file', { type: 'string', demandOption: true, normalize: true, describe: 'YAML config file' }).option('json', {
      type: 'boolean',
      default: false,
      describe: '{ ok, file, problems: [{ path, line, message }], targets: [{ name, type, sample }] } on stdout',
    }),
  handler: (args) =>
    runCommand(async () => {
      let config: Config;
      try {
        config = loadConfig(args.file);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        if (args.json) printJson({ ok: false, file: err.file, problems: err.problems });
        else process.stderr.write(`${err.message}\n`);
        return EXIT.failed;
      }
      const targets = samplePaths(config);
      if (args.json) printJson({ ok: true, file: args.file, problems: [], targets });
      else {
        process.stdout.write(`${args.file}: OK\n`);
        for (const t of targets) process.stdout.write(`storage ${t.name} (${t.type}): a sample call goes to ${t.sample}\n`);
      }
      return EXIT.ok;
    }),
};

export const configCommand: CommandModule<object, object> = {
  command: 'config <command>',
  describe: 'Work with config files (check)',
  builder: (y) => y.command(checkCommand).demandCommand(1, 'name a config command'),
  handler: () => undefined,
};
