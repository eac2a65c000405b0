import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { parseListen } from '../config/Config.js';
import { writeFileDurably } from '../fsutil.js';
import { firstLine } from '../keys/passphrase.js';
import { KeyManager } from '../lkm/KeyManager.js';
import { LKM_ROLES, type LkmRole } from '../lkm/roles.js';
import { createLogger } from '../log.js';
import { CallvaultError } from '../errors.js';
import { withInstanceOptions, type InstanceArgs } from './options.js';
import { runCommand } from './run.js';

interface LkmArgs extends InstanceArgs {
  listen: string;
  'tokens-dir': string;
  'passphrase-file': string;
  'key-bits': number;
  'client-ca'?: string | undefined;
  'unwrap-per-minute': number;
  'unwrap-per-day': number;
}

/** A role's token file `<dir>/<role>.token`: read, or made (32 random bytes, base64url, mode 0600) at first start. */
async function tokenFrom(dir: string, role: LkmRole): Promise<string> {
  const file = path.join(dir, `${role}.token`);
  if (
    !(await access(file).then(
      () => true,
      () => false,
    ))
  ) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(file, `${randomBytes(32).toString('base64url')}\n`, 0o600);
  }
  return firstLine(file, `key manager ${role} token file`);
}

async function readClientCa(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  return readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new CallvaultError('CLIENT_CA_UNREADABLE', `cannot read --client-ca ${file}: ${err.code ?? String(err)}`);
  });
}

async function serve(args: LkmArgs): Promise<number> {
  if (!args['data-dir'])
    throw new CallvaultError(
      'USAGE',
      '--data-dir is required: the key manager keeps its KEKs and TLS identity there, apart from any callvault instance',
    );
  const dir = path.resolve(args['data-dir']);
  const log = createLogger('info');
  const tokensDir = path.resolve(args['tokens-dir']);
  const tokens = Object.fromEntries(await Promise.all(LKM_ROLES.map(async (r) => [r, await tokenFrom(tokensDir, r)] as const))) as Record<
    LkmRole,
    string
  >;
  const km = await KeyManager.open({
    dir,
    passphrase: await firstLine(args['passphrase-file'], 'key manager passphrase file'),
    tokens,
    keyBits: args['key-bits'],
    limits: { perMinute: args['unwrap-per-minute'], perDay: args['unwrap-per-day'] },
    clientCa: await readClientCa(args['client-ca']),
    log,
  });
  const addr = await km.listen(parseListen(args.listen));
  log.info(
    {
      listen: `${addr.address}:${addr.port}`,
      tlsCertificate: path.join(dir, 'tls-cert.pem'),
      kekId: km.current().id,
      tokens: LKM_ROLES.map((r) => path.join(tokensDir, `${r}.token`)),
      mutualTls: Boolean(args['client-ca']),
    },
    'key manager listening',
  );
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
        describe:
          'Hold private KEKs and unwrap data keys over HTTPS, one credential per role, unwraps limited and audited (--data-dir is its own directory)',
        builder: (b) =>
          withInstanceOptions(b)
            .option('listen', { type: 'string', default: '127.0.0.1:9470', describe: 'HOST:PORT (HTTPS)' })
            .option('tokens-dir', {
              type: 'string',
              demandOption: true,
              normalize: true,
              describe:
                'one bearer token per role: recorder.token (fetch the KEK), unwrap.token (unwrap), admin.token (rotate); each made (0600) if missing',
            })
            .option('client-ca', {
              type: 'string',
              normalize: true,
              describe: 'mutual TLS: clients must present a certificate issued by this CA (PEM)',
            })
            .option('unwrap-per-minute', { type: 'number', default: 120, describe: 'unwraps allowed in any minute; more are refused with 429' })
            .option('unwrap-per-day', { type: 'number', default: 10000, describe: 'unwraps allowed per UTC day' })
            .option('passphrase-file', {
              type: 'string',
              demandOption: true,
              normalize: true,
              describe: 'passphrase protecting the KEKs at rest, first line',
            })
            .option('key-bits', { type: 'number', choices: [2048, 3072, 4096], default: 3072 }) as Argv<LkmArgs>,
        handler: (args) => runCommand(() => serve(args)),
      })
      .demandCommand(1, 'name an lkm command'),
  handler: () => undefined,
};
