import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { KeyError } from '../errors.js';
import { kekExpiry, KekStore, shareFileName, wipeShareInputs, type Kek } from '../keys/kek/KekStore.js';
import { SHARE_LETTERS } from '../keys/kek/shares.js';
import { currentActor } from '../store/AuditLog.js';
import { keyJobCommands } from './keyJobs.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { readShareInputs, withShareOptions, type ShareArgs } from './shares.js';
import { checkpointNow, withStores } from './stores.js';

interface KeysArgs extends InstanceArgs, ShareArgs {
  'backup-dir-a'?: string | undefined;
  'backup-dir-b'?: string | undefined;
  json: boolean;
}

function withBackup<T>(y: Argv<T>): Argv<T & KeysArgs> {
  return withShareOptions(withInstanceOptions(y))
    .option('backup-dir-a', {
      type: 'string',
      normalize: true,
      describe: "administrator A's backup: also write share A (only) to <dir>/<kekId>.share-a.json (mode 0600)",
    })
    .option('backup-dir-b', {
      type: 'string',
      normalize: true,
      describe: "administrator B's backup: also write share B (only) to <dir>/<kekId>.share-b.json (mode 0600); never the same directory as A's",
    })
    .option('json', { type: 'boolean', default: false }) as Argv<T & KeysArgs>;
}

/** Make a KEK (init or rotate) and record it; returns the exit code. */
async function makeKek(args: KeysArgs, rotating: boolean): Promise<number> {
  const config = instanceConfig(args);
  if (config.encryption.provider !== 'local')
    throw new KeyError('KEK_NOT_LOCAL', `encryption.provider is ${config.encryption.provider}: KEKs are made and rotated on the key manager`);
  const store = new KekStore(config.dataDir, config.encryption.trustedKeks);
  const existing = store.list().find((k) => !k.revokedAt);
  if (!rotating && existing)
    throw new KeyError('KEK_EXISTS', `a KEK already exists (${existing.id}); use \`callvault keys rotate\` to make a new one`);
  // Rotation starts from the KEK in use: the newest trusted one, never one that merely appeared in the data dir.
  const previous = store.current();
  if (rotating && !previous) throw new KeyError('NO_KEK', 'there is no KEK to rotate: use `callvault keys init`');
  // Rotation is a two-person act: both administrators first prove they hold the current key's shares.
  const shares = await readShareInputs(
    args,
    rotating ? `authorise rotation of ${previous!.id}; the new KEK's share keeps this passphrase` : 'new KEK',
    { creating: !rotating },
  );
  let kek: Kek;
  try {
    if (rotating) await store.openPrivate(previous!.id, shares);
    kek = await store.create({ bits: config.encryption.keyBits, shares, backupDirs: { A: args['backup-dir-a'], B: args['backup-dir-b'] } });
  } finally {
    wipeShareInputs(shares);
  }
  await withStores(config.dataDir, async ({ audit }) => {
    const details = {
      kind: 'kek',
      provider: 'local',
      bits: kek.bits,
      fingerprintSha256: kek.fingerprintSha256,
      backup: { A: Boolean(args['backup-dir-a']), B: Boolean(args['backup-dir-b']) },
    };
    await audit.append(currentActor(), rotating ? 'key.rotated' : 'key.created', kek.id, rotating ? { ...details, previous: previous!.id } : details);
    await checkpointNow(config, audit, currentActor());
  });
  const files = SHARE_LETTERS.map((l) => path.join(store.dir, kek.id, shareFileName(l)));
  if (args.json)
    printJson({
      kekId: kek.id,
      bits: kek.bits,
      createdAt: kek.createdAt,
      fingerprintSha256: kek.fingerprintSha256,
      shares: files,
      previous: previous?.id ?? null,
    });
  else {
    process.stdout.write(`KEK ${kek.id} (RSA-${kek.bits}, SHA-256 ${kek.fingerprintSha256}) made\n`);
    for (const [i, f] of files.entries()) process.stdout.write(`  share ${SHARE_LETTERS[i]}: ${f}\n`);
    process.stdout.write(
      `Recordings are encrypted under it once its fingerprint is in encryption.trustedKeks (and the daemon reloaded)${rotating ? `; until then they stay under ${previous!.id}` : ''}:\n  trustedKeks: [${[...config.encryption.trustedKeks, kek.fingerprintSha256].map((f) => `"${f}"`).join(', ')}]\n`,
    );
  }
  return EXIT.ok;
}

interface KekStatusRow {
  readonly id: string;
  readonly provider: string;
  readonly bits: number;
  readonly createdAt: string;
  readonly ageDays: number;
  readonly expiresAt: string;
  readonly state: 'current' | 'active' | 'revoked';
  readonly expired: boolean;
  readonly recordings: number;
  readonly fingerprintSha256: string;
  /** Pinned in encryption.trustedKeks: only a trusted KEK is ever used for new recordings. */
  readonly trusted: boolean;
}

async function status(args: KeysArgs): Promise<number> {
  const config = instanceConfig(args);
  const store = new KekStore(config.dataDir, config.encryption.trustedKeks);
  const keks = store.list();
  const current = store.current()?.id;
  const now = Date.now();
  const rows = await withStores(config.dataDir, async ({ index }) =>
    keks.map((k: Kek): KekStatusRow => {
      const expiresAt = kekExpiry(k, config.encryption.cryptoperiodDays);
      let recordings = 0;
      for (const _ of index.idsWith('kek', k.id)) recordings++;
      return {
        id: k.id,
        provider: k.provider,
        bits: k.bits,
        createdAt: k.createdAt,
        ageDays: Math.floor((now - Date.parse(k.createdAt)) / 86_400_000),
        expiresAt: expiresAt.toISOString(),
        state: k.revokedAt ? 'revoked' : k.id === current ? 'current' : 'active',
        expired: expiresAt.getTime() <= now,
        recordings,
        fingerprintSha256: k.fingerprintSha256,
        trusted: store.isTrusted(k),
      };
    }),
  );
  if (args.json) printJson({ provider: config.encryption.provider, cryptoperiodDays: config.encryption.cryptoperiodDays, keys: rows });
  else if (!rows.length) process.stdout.write('no key-encryption keys: `callvault keys init` makes the first\n');
  else {
    process.stdout.write('KEK                     STATE    BITS  AGE(d)  EXPIRES                   RECORDINGS  TRUSTED\n');
    for (const r of rows) {
      process.stdout.write(
        `${r.id.padEnd(23)} ${r.state.padEnd(8)} ${String(r.bits).padEnd(5)} ${String(r.ageDays).padStart(6)}  ${r.expiresAt}${r.expired ? '!' : ' '} ${String(r.recordings).padStart(10)}  ${r.trusted ? 'yes' : `NO: not in encryption.trustedKeks (${r.fingerprintSha256})`}\n`,
      );
    }
  }
  return EXIT.ok;
}

export const keysCommand: CommandModule<object, object> = {
  command: 'keys <command>',
  describe: 'Key-encryption keys: init, rotate, status; revoke, encrypt-existing, decrypt-all (journaled jobs)',
  builder: (y) =>
    y
      .command<KeysArgs>({
        command: 'init',
        describe: "Make the first KEK; its private key is split into two shares, each under its own administrator's passphrase",
        builder: (b) => withBackup(b),
        handler: (args) => runCommand(() => makeKek(args, false)),
      })
      .command<KeysArgs>({
        command: 'rotate',
        describe: "Make a new KEK for new recordings (both administrators open the current one's shares first)",
        builder: (b) => withBackup(b),
        handler: (args) => runCommand(() => makeKek(args, true)),
      })
      .command<KeysArgs>({
        command: 'status',
        describe: 'List KEKs: state, age, expiry (cryptoperiod), recordings each protects',
        builder: (b) => withBackup(b),
        handler: (args) => runCommand(() => status(args)),
      })
      .command(keyJobCommands as CommandModule<object, KeysArgs>[])
      .demandCommand(1, 'name a keys command'),
  handler: () => undefined,
};
