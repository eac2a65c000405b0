import type { Argv, CommandModule } from 'yargs';
import { CallvaultError } from '../errors.js';
import { parseAuditHead } from '../store/AuditLog.js';
import { instanceDataDir, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withStores } from './stores.js';
import { trustedCertificate, withTrustOptions, type TrustArgs } from './trust.js';

interface AuditArgs extends InstanceArgs {
  json: boolean;
}

interface VerifyArgs extends AuditArgs, TrustArgs {
  head?: string | undefined;
}

interface ListArgs extends AuditArgs {
  from: number;
}

const verify: CommandModule<InstanceArgs, VerifyArgs> = {
  command: 'verify',
  describe: 'Check the hash chain and every signed checkpoint; name the first broken entry',
  builder: (y: Argv<InstanceArgs>) =>
    withTrustOptions(y).option('json', { type: 'boolean', default: false }).option('head', {
      type: 'string',
      describe: 'SEQ:HASH of an entry seen earlier and kept elsewhere (the daemon log, journald, <dataDir>/audit-head): the chain must still hold it',
    }) as Argv<VerifyArgs>,
  handler: (args) =>
    runCommand(async () => {
      const dataDir = instanceDataDir(args);
      const anchor = await trustedCertificate(args);
      const head = args.head === undefined ? undefined : parseAuditHead(args.head);
      if (args.head !== undefined && !head)
        throw new CallvaultError('BAD_HEAD', `--head must be SEQ:HASH (a sequence number and 64 hex digits), got ${JSON.stringify(args.head)}`);
      return withStores(dataDir, async ({ audit }) => {
        const chain = audit.verify(anchor.pem);
        const cut = head && chain.ok ? audit.checkHead(head) : undefined;
        const v = cut ? { ...chain, ok: false, firstBroken: { seq: head!.seq, reason: cut } } : chain;
        if (args.json) printJson({ ...v, trust: { source: anchor.source, fingerprintSha256: anchor.fingerprintSha256 } });
        else if (v.ok)
          process.stdout.write(`audit log OK: ${v.entries} entries, ${v.checkpoints} signed checkpoints (last ${v.lastCheckpointAt ?? 'never'})\n`);
        else
          process.stdout.write(
            `audit log BROKEN at entry ${v.firstBroken!.seq}: ${v.firstBroken!.reason} (${v.entries} entries before it are intact)\n`,
          );
        return v.ok ? EXIT.ok : EXIT.failed;
      });
    }),
};

const list: CommandModule<InstanceArgs, ListArgs> = {
  command: 'list',
  describe: 'Print the audit log (JSON lines with --json)',
  builder: (y: Argv<InstanceArgs>) =>
    y
      .option('from', { type: 'number', default: 1, describe: 'first sequence number' })
      .option('json', { type: 'boolean', default: false }) as Argv<ListArgs>,
  handler: (args) =>
    runCommand(async () =>
      withStores(instanceDataDir(args), async ({ audit }) => {
        for (const e of audit.list(args.from)) {
          process.stdout.write(
            args.json
              ? `${JSON.stringify(e)}\n`
              : `${String(e.seq).padStart(6)}  ${e.at}  ${e.actor.padEnd(10)} ${e.action.padEnd(18)} ${e.subject ?? '-'}  ${JSON.stringify(e.details)}\n`,
          );
        }
        return EXIT.ok;
      }),
    ),
};

export const auditCommand: CommandModule<object, InstanceArgs> = {
  command: 'audit <command>',
  describe: 'The tamper-evident audit log: verify, list',
  builder: (y) => withInstanceOptions(y).command(verify).command(list).demandCommand(1),
  handler: () => undefined,
};
