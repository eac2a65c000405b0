import { availableParallelism } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
import type { Config } from '../config/Config.js';
import { KeyError } from '../errors.js';
import { KeyJobRunner, type KeyJobSpec } from '../jobs/KeyJobRunner.js';
import { assertSeparatePlaces, KekStore } from '../keys/kek/KekStore.js';
import type { ShareLetter } from '../keys/kek/shares.js';
import { WorkerPool } from '../seal/WorkerPool.js';
import { currentActor, type AuditLog } from '../store/AuditLog.js';
import type { KeyJob, KeyJobKind } from '../archive/JobTypes.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { createLogger } from '../log.js';
import { instanceConfig, withInstanceOptions, type InstanceArgs } from './options.js';
import { ProgressBar } from './progress.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withShareOptions, type ShareArgs } from './shares.js';
import { checkpointNow, withStores } from './stores.js';
import { openSigningIdentity, openUnwrapper } from './unwrap.js';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';

interface JobArgs extends InstanceArgs, ShareArgs {
  kekId?: string;
  json: boolean;
  /** revoke: fresh data keys instead of new key slots. */
  reencrypt?: boolean;
  'escrow-dir-a'?: string | undefined;
  'escrow-dir-b'?: string | undefined;
}

const LABEL: Record<KeyJobKind, string> = { encrypt: 'encrypting', rewrap: 're-wrapping', reencrypt: 're-encrypting', decrypt: 'decrypting' };

/** The jobs that move recordings off a revoked KEK. */
function isRevocation(kind: KeyJobKind): boolean {
  return kind === 'rewrap' || kind === 'reencrypt';
}

/** Resolve what the job needs from the key store; revoking marks the KEK first, so no new recording uses it. */
async function specFor(
  kind: KeyJobKind,
  config: Config,
  store: KekStore,
  args: JobArgs,
  audit: (kekId: string) => Promise<void>,
): Promise<KeyJobSpec> {
  const actor = currentActor();
  if (kind === 'decrypt') return { kind, fromKekId: null, toKekId: null, actor };
  if (isRevocation(kind)) {
    const from = store.get(args.kekId!);
    if (!from.revokedAt) {
      const others = store.list().filter((k) => !k.revokedAt && k.id !== from.id && store.isTrusted(k));
      if (!others.length)
        throw new KeyError(
          'LAST_KEK',
          `KEK ${from.id} is the only active trusted one: \`callvault keys rotate\` and pin the new KEK in encryption.trustedKeks first, so recordings have somewhere to go`,
        );
      await store.markRevoked(from.id);
      await audit(from.id);
    }
  }
  const to = store.current();
  if (!to)
    throw new KeyError(
      'NO_KEK',
      `no active KEK to ${kind === 'encrypt' ? 'encrypt under' : 'move recordings to'}: run \`callvault keys ${config.encryption.provider === 'local' ? 'init' : 'status'}\``,
    );
  return { kind, fromKekId: isRevocation(kind) ? args.kekId! : null, toKekId: to.id, actor };
}

/**
 * Recordings an encrypting job takes on that were already copied, in the
 * clear, to storage targets: the job encrypts the local recording only, and
 * those copies stay as they are until someone removes them.
 */
function plaintextCopies(index: RecordingIndex, ids: readonly string[]): { recordingId: string; targets: string[] }[] {
  return ids.flatMap((recordingId) => {
    const uploads = index.get(recordingId)?.uploads ?? {};
    const targets = Object.entries(uploads)
      .filter(([, u]) => u.state === 'done')
      .map(([t]) => t);
    return targets.length ? [{ recordingId, targets }] : [];
  });
}

/**
 * A revocation that left no recording under the KEK ends with its shares
 * out of the data dir — escrowed to the custodians' directories or
 * destroyed — and audited. Until then they stay: they are what opens the
 * recordings still under it.
 */
async function retireShares(
  store: KekStore,
  index: RecordingIndex,
  audit: AuditLog,
  args: JobArgs,
  escrow: EscrowDirs,
  job: KeyJob,
  actor: string,
): Promise<void> {
  const kek = store.get(args.kekId!);
  if (kek.provider !== 'local') return;
  const left = [...index.idsWith('kek', kek.id)].length;
  if (job.failed || left) {
    process.stderr.write(
      `the shares of KEK ${kek.id} are kept: ${left} recording(s) are still under it; run \`callvault keys revoke ${kek.id}\` again once they are fixed\n`,
    );
    return;
  }
  const r = await store.retireShares(kek.id, escrow);
  if (!r.destroyed.length) return;
  await audit.append(actor, r.escrowed.length ? 'key.shares-escrowed' : 'key.shares-destroyed', kek.id, {
    destroyed: r.destroyed,
    escrowed: r.escrowed,
  });
  await checkpointNow(instanceConfig(args), audit, actor);
  process.stderr.write(
    `the shares of KEK ${kek.id} are ${r.escrowed.length ? `moved to escrow (${r.escrowed.join(', ')}) and` : ''} destroyed in the data dir; copies the custodians keep elsewhere (backups made with --backup-dir-a/-b) are theirs to destroy\n`,
  );
}

type EscrowDirs = Readonly<Partial<Record<ShareLetter, string>>>;

/** `--escrow-dir-a/-b`, checked before anything changes: both or neither, and two places. */
function escrowDirs(args: JobArgs): EscrowDirs {
  const A = args['escrow-dir-a'];
  const B = args['escrow-dir-b'];
  if (!A !== !B)
    throw new KeyError(
      'ESCROW_INCOMPLETE',
      `--escrow-dir-${A ? 'b' : 'a'} is missing: each custodian's share goes to that custodian's escrow, or both are destroyed`,
    );
  assertSeparatePlaces({ A, B }, 'escrowed');
  return { A, B };
}

async function runJob(kind: KeyJobKind, args: JobArgs): Promise<number> {
  const escrow = escrowDirs(args);
  const config = instanceConfig(args);
  const store = new KekStore(config.dataDir, config.encryption.trustedKeks);
  const threads = config.pool.threads === 'auto' ? availableParallelism() : config.pool.threads;
  const pool = new WorkerPool(threads);
  try {
    return await withStores(config.dataDir, async ({ index, audit }) => {
      // Custody first: both shares must open the KEK before it is marked revoked or anything is audited.
      const unwrapper =
        kind === 'encrypt'
          ? null
          : await openUnwrapper(config, args, pool, `${isRevocation(kind) ? `revoke ${args.kekId!}` : 'decrypt every recording'}`, audit);
      try {
        return await convertAll(kind, args, { config, store, pool, threads, escrow, index, audit, unwrapper });
      } finally {
        unwrapper?.close();
      }
    });
  } finally {
    await pool.close();
  }
}

interface JobContext {
  readonly config: Config;
  readonly store: KekStore;
  readonly pool: WorkerPool;
  readonly threads: number;
  readonly escrow: EscrowDirs;
  readonly index: RecordingIndex;
  readonly audit: AuditLog;
  readonly unwrapper: DekUnwrapper | null;
}

/** The job itself, once custody is proven: journaled, run with progress, audited, the revoked KEK's shares retired. */
async function convertAll(
  kind: KeyJobKind,
  args: JobArgs,
  { config, store, pool, threads, escrow, index, audit, unwrapper }: JobContext,
): Promise<number> {
  if (isRevocation(kind)) await unwrapper!.open(store.get(args.kekId!).id);
  const spec = await specFor(kind, config, store, args, async (kekId) => void (await audit.append(currentActor(), 'key.revoked', kekId, {})));
  const identity = await openSigningIdentity(config);
  const toKek = spec.toKekId ? store.get(spec.toKekId) : null;
  const runner = new KeyJobRunner(
    config.dataDir,
    index,
    { pool, signingKey: identity.privateKey, kind, toKek, fromKekId: spec.fromKekId, unwrapper },
    createLogger('warn', process.stderr),
  );
  const { job, resumed } = await runner.openJob(
    spec,
    store.list().map((k) => k.id),
  );
  if (resumed) process.stderr.write(`resuming job ${job.id}: ${job.done + job.failed} of ${job.total} done\n`);
  else await audit.append(spec.actor, 'job.started', job.id, { kind, fromKekId: spec.fromKekId, toKekId: spec.toKekId, total: job.total });
  await checkpointNow(config, audit, spec.actor);
  const copies = kind === 'encrypt' ? plaintextCopies(index, runner.remaining(job)) : [];
  const bar = new ProgressBar(LABEL[kind], job.total);
  for (let i = 0; i < job.done + job.failed; i++) bar.tick();
  const finished: KeyJob = await runner.run(job, threads * 2, (_j, id, error) => {
    bar.tick();
    if (error) bar.note(`FAILED ${id}: ${error}`);
  });
  bar.end();
  await audit.append(spec.actor, 'job.finished', job.id, {
    kind,
    done: finished.done,
    failed: finished.failed,
    keksOpened: unwrapper?.opened ?? [],
    plaintextCopies: copies.length,
  });
  await checkpointNow(config, audit, spec.actor);
  if (args.json) printJson({ ...finished, plaintextCopies: copies });
  else process.stdout.write(`job ${finished.id} (${kind}): ${finished.done} of ${finished.total} recordings converted, ${finished.failed} failed\n`);
  if (isRevocation(kind)) await retireShares(store, index, audit, args, escrow, finished, spec.actor);
  if (copies.length) {
    const targets = [...new Set(copies.flatMap((c) => c.targets))].sort();
    process.stderr.write(
      `warning: ${copies.length} of these recordings were copied to storage targets (${targets.join(', ')}) before they were encrypted; those copies are still in the clear and are not touched by this job: ${copies.map((c) => `${c.recordingId} (${c.targets.join(', ')})`).join(', ')}\n`,
    );
  }
  return finished.failed ? EXIT.failed : EXIT.ok;
}

function jobCommand(command: string, kind: KeyJobKind, describe: string): CommandModule<object, JobArgs> {
  return {
    command,
    describe,
    builder: (y) => withShareOptions(withInstanceOptions(y)).option('json', { type: 'boolean', default: false }) as Argv<JobArgs>,
    handler: (args) => runCommand(() => runJob(kind, args)),
  };
}

const revokeCommand: CommandModule<object, JobArgs> = {
  command: 'revoke <kekId>',
  describe:
    'Retire a KEK (both shares first): no new recording uses it, every data key under it is re-wrapped under the newest KEK (--reencrypt: fresh data keys, the audio re-encrypted), then its shares are destroyed or escrowed. Resumable',
  builder: (y) =>
    withShareOptions(withInstanceOptions(y))
      .option('reencrypt', {
        type: 'boolean',
        default: false,
        describe: 'for a suspected compromise: a fresh data key for every file, so old copies elsewhere are not opened by the new key slot',
      })
      .option('escrow-dir-a', {
        type: 'string',
        normalize: true,
        describe: "custodian A's offline escrow directory for share A (default: the share is destroyed)",
      })
      .option('escrow-dir-b', { type: 'string', normalize: true, describe: "custodian B's offline escrow directory for share B" })
      .option('json', { type: 'boolean', default: false }) as Argv<JobArgs>,
  handler: (args) => runCommand(() => runJob(args.reencrypt ? 'reencrypt' : 'rewrap', args)),
};

export const keyJobCommands: CommandModule<object, JobArgs>[] = [
  revokeCommand,
  jobCommand('encrypt-existing', 'encrypt', 'Encrypt every sealed recording that is still plaintext, under the newest KEK. Resumable'),
  jobCommand(
    'decrypt-all',
    'decrypt',
    'Turn encryption off: decrypt every encrypted recording back to plain files (both shares or the key manager). Resumable',
  ),
];
