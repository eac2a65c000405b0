import type { Config } from '../config/Config.js';
import { KekStore } from '../keys/kek/KekStore.js';
import { LkmClient } from '../keys/kek/LkmClient.js';
import { LkmUnwrapper, ShareUnwrapper, type DekUnwrapper, type UnwrapRecord } from '../keys/kek/unwrappers.js';
import { KeyError } from '../errors.js';
import { currentActor, type AuditLog } from '../store/AuditLog.js';
import { resolvePassphrase } from '../keys/passphrase.js';
import { SigningIdentity } from '../keys/SigningIdentity.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import { readShareInputs, type ShareArgs } from './shares.js';

/**
 * What a command that reads encrypted audio needs: both administrators'
 * shares (local), or the key manager with the unwrap credential given to
 * this command (the recorder's, in the config, cannot unwrap); every key
 * manager unwrap goes to `audit` as `key.unwrapped`.
 */
export async function openUnwrapper(config: Config, args: ShareArgs, pool: WorkerPool, purpose: string, audit: AuditLog): Promise<DekUnwrapper> {
  if (config.encryption.provider === 'lkm') {
    const tokenFile = args['lkm-token-file'];
    if (!tokenFile)
      throw new KeyError(
        'NO_UNWRAP_CREDENTIAL',
        `${purpose} needs the key manager's unwrap credential: --lkm-token-file FILE (the recorder's encryption.lkm.tokenFile cannot unwrap)`,
      );
    const actor = currentActor();
    const record = async (u: UnwrapRecord) => void (await audit.append(actor, 'key.unwrapped', u.recordingId, { ...u }));
    return new LkmUnwrapper(await LkmClient.create(config.encryption.lkm, tokenFile), purpose, record);
  }
  return new ShareUnwrapper(new KekStore(config.dataDir), await readShareInputs(args, purpose, { creating: false }), pool);
}

/** The instance's signing key, for commands that re-issue checksum signatures. */
export async function openSigningIdentity(config: Config): Promise<SigningIdentity> {
  const passphrase = await resolvePassphrase(config.signing, { dataDir: config.dataDir });
  return SigningIdentity.loadOrCreate({
    dataDir: config.dataDir,
    keyBits: config.signing.keyBits,
    passphrase: passphrase.value,
    pinned: config.signing.fingerprint,
  });
}
