import type { Config } from '../../config/Config.js';
import { ConfigError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { KekStore } from './KekStore.js';
import { LkmClient } from './LkmClient.js';

/**
 * Fail closed: a profile that encrypts needs a KEK before a call is recorded
 * under it, or its recordings would sit in the clear. With provider lkm the
 * key manager's current KEK is fetched (public key only) and remembered, so
 * a key manager that is down at start does not stop a known KEK being used.
 * Throws a ConfigError naming the profiles that cannot be served.
 */
export async function ensureEncryptionReady(config: Config, keks: KekStore, configFile: string, log: Logger): Promise<void> {
  if (config.encryption.provider === 'lkm') {
    try {
      const lkm = await LkmClient.create(config.encryption.lkm);
      const kek = await keks.importPublic(await lkm.currentKek());
      keks.vouch(kek.fingerprintSha256);
      log.info({ kekId: kek.id, fingerprintSha256: kek.fingerprintSha256 }, 'key manager KEK');
    } catch (err) {
      if (!keks.current()) throw err;
      log.error({ err, kekId: keks.current()!.id }, 'key manager unreachable; encrypting under the newest KEK encryption.trustedKeks pins');
    }
  }
  const encrypting = config.profiles.filter((p) => p.record && p.encryption);
  if (!encrypting.length || keks.current()) return;
  const untrusted = keks.untrusted();
  const why = untrusted.length
    ? `no trusted key-encryption key: ${untrusted.map((k) => `${k.id} (SHA-256 ${k.fingerprintSha256})`).join(', ')} ${untrusted.length > 1 ? 'are' : 'is'} in ${keks.dir} but not in encryption.trustedKeks; check the fingerprint with both custodians, then add it`
    : `there is no key-encryption key in ${keks.dir}: run \`callvault keys init\`${config.encryption.provider === 'lkm' ? ' on the key manager' : ''}, then pin its fingerprint in encryption.trustedKeks`;
  throw new ConfigError(
    configFile,
    encrypting.map((p) => ({ path: 'profiles', message: `profile ${p.name} sets encryption: true but ${why}` })),
  );
}
