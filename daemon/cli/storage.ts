import type { Argv, CommandModule } from 'yargs';
import { StoreError } from '../errors.js';
import { interactiveLogin } from '../upload/onedrive/interactiveLogin.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, runCommand } from './run.js';

interface LoginArgs extends InstanceArgs {
  target: string;
  timeout: number;
}

const login: CommandModule<InstanceArgs, LoginArgs> = {
  command: 'login <target>',
  describe:
    'Sign a user in for an auth-code OneDrive target: prints a URL to open, takes the redirect on 127.0.0.1:redirectPort, keeps the tokens in tokenCacheFile (0600)',
  builder: (y: Argv<InstanceArgs>) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'the storage target' })
      .option('timeout', { type: 'number', default: 300, describe: 'seconds to wait for the sign-in' }) as Argv<LoginArgs>,
  handler: (args) =>
    runCommand(async () => {
      const config = instanceConfig(args);
      const t = config.storage[args.target];
      if (t?.type !== 'onedrive')
        throw new StoreError(
          'NOT_ONEDRIVE',
          `storage.${args.target} is ${t ? `a ${t.type} target` : 'not configured'}; login is for onedrive targets`,
          {
            target: args.target,
          },
        );
      const who = await interactiveLogin(
        args.target,
        t,
        { onUrl: (url) => process.stdout.write(`Open this URL to sign in:\n${url}\n`) },
        args.timeout * 1000,
      );
      process.stdout.write(`signed in as ${who}; storage target ${args.target} uploads as this user\n`);
      return EXIT.ok;
    }),
};

export const storageCommand: CommandModule<object, InstanceArgs> = {
  command: 'storage <command>',
  describe: 'Storage targets: login (OneDrive, delegated)',
  builder: (y) => withInstanceOptions(y).command(login).demandCommand(1),
  handler: () => undefined,
};
