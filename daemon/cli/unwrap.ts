import type { Config } from '../config/Config.js';
import { KekStore } from '../keys/kek/KekStore.js';
import { LkmClient } from '../keys/kek/LkmClient.js';
import { LkmUnwrapper, ShareUnwrapper, type DekUnwrapper } from '../keys/kek/unwrappers.js';
import { resolvePassphrase } from '../keys/passphrase.js';
import { SigningIdentity } from '../keys/SigningIdentity.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import { readShareInputs, type ShareArgs } from './shares.js';

/** What a command that reads encrypted audio needs: both administrators' shares (local), or the key manager. */
export async function openUnwrapper(config: Config, args: ShareArgs, pool: WorkerPool, purpose: string): Promise<DekUnwrapper> {
  if (config.encryption.provider === 'lkm') return new LkmUnwrapper(await LkmClient.create(config.encryption.lkm));
  return new ShareUnwrapper(new KekStore(config.dataDir), await readShareInputs(args, purpose, { creating: false }), pool);
}

/** The instance's signing key, for commands that re-issue checksum signatures. */
export async function openSigningIdentity(config: Config): Promise<SigningIdentity> {
  const passphrase = await resolvePassphrase(config.signing, { dataDir: config.dataDir });
  return SigningIdentity.loadOrCreate({ dataDir: config.dataDir, keyBits: config.signing.keyBits, passphrase: passphrase.value, pinned: config.signing.fingerprint });
}
