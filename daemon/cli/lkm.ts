import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { parseListen } from '../config/Config.js';
import { writeFileDurably } from '../fsutil.js';
import { firstLine } from '../keys/passphrase.js';
import { KeyManager } from '../lkm/KeyManager.js';
import { createLogger } from '../log.js';
import { CallvaultError } from '../errors.js';
import { withInstanceOptions, type InstanceArgs } from './options.js';
import { runCommand } from './run.js';

interface LkmArgs extends InstanceArgs {
  listen: string;
  'token-file': string;
  'passphrase-file': string;
  'key-bits': number;
}

/** The token file: read, or made (32 random bytes, base64url, mode 0600) at first start. */
async function tokenFrom(file: string): Promise<string> {
  if (!(await access(file).then(() => true, () => false))) await writeFileDurably(file, randomBytes(32).toString('base64url') + '\n', 0o600);
  return firstLine(file, 'key manager token file');
}

async function serve(args: LkmArgs): Promise<number> {
  if (!args['data-dir']) throw new CallvaultError('USAGE', '--data-dir is required: the key manager keeps its KEKs and TLS identity there, apart from any callvault instance');
  const dir = path.resolve(args['data-dir']);
  const log = createLogger('info');
  const km = await KeyManager.open({ dir, passphrase: await firstLine(args['passphrase-file'], 'key manager passphrase file'), token: await tokenFrom(args['token-file']), keyBits: args['key-bits'], log });
  const addr = await km.listen(parseListen(args.listen));
  log.info({ listen: `${addr.address}:${addr.port}`, tlsCertificate: path.join(dir, 'tls-cert.pem'), kekId: km.current().id }, 'key manager listening');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await km.close();
  return 0;
}

export const lkmCommand: CommandModule<object, object> = {
  command: 'lkm <command>',
  describe: 'The reference external key manager (provider lkm)',
  builder: (y) =>
    y
      .command<LkmArgs>({
        command: 'serve',
        describe: 'Hold private KEKs and unwrap data keys over HTTPS for callvault instances with the bearer token (--data-dir is its own directory)',
        builder: (b) =>
          withInstanceOptions(b)
            .option('listen', { type: 'string', default: '127.0.0.1:9470', describe: 'HOST:PORT (HTTPS)' })
            .option('token-file', { type: 'string', demandOption: true, normalize: true, describe: 'bearer token, first line; made (0600) if missing' })
            .option('passphrase-file', { type: 'string', demandOption: true, normalize: true, describe: 'passphrase protecting the KEKs at rest, first line' })
            .option('key-bits', { type: 'number', choices: [2048, 3072, 4096], default: 3072 }) as Argv<LkmArgs>,
        handler: (args) => runCommand(() => serve(args)),
      })
      .demandCommand(1, 'name an lkm command'),
  handler: () => undefined,
};
