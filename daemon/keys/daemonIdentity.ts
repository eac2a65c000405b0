import type { Config } from '../config/Config.js';
import type { Logger } from '../log.js';
import { PUBLISHED_PASSPHRASES, resolvePassphrase } from './passphrase.js';
import { SigningIdentity } from './SigningIdentity.js';

/**
 * The daemon's signing identity: its passphrase resolved (systemd
 * credential, file, environment, or generated for a trial), the key loaded
 * or made, the certificate checked against the pin; what weakens it (a
 * published or generated passphrase, no pin) is logged as a warning.
 */
export async function openDaemonIdentity(signing: Config['signing'], dataDir: string, generate: boolean, log: Logger): Promise<SigningIdentity> {
  const passphrase = await resolvePassphrase(signing, { dataDir, generate });
  if (PUBLISHED_PASSPHRASES.includes(passphrase.value)) {
    log.warn(
      { passphraseSource: passphrase.origin },
      'the signing key passphrase is the placeholder an earlier example config shipped, known to anyone: set a secret one (README: Changing the signing passphrase)',
    );
  }
  if (passphrase.source === 'generated') {
    log.warn(
      { passphraseFile: passphrase.origin },
      'the signing key passphrase was generated for a trial into the data dir, beside the key it protects: fine for a trial, not for production (use a systemd credential or signing.passphraseFile)',
    );
  }
  const identity = await SigningIdentity.loadOrCreate({
    dataDir,
    keyBits: signing.keyBits,
    passphrase: passphrase.value,
    pinned: signing.fingerprint,
  });
  if (!signing.fingerprint) {
    log.warn(
      { fingerprintSha256: identity.info.fingerprintSha256 },
      `the signing certificate is not pinned: set signing.fingerprint: "${identity.info.fingerprintSha256}" in the config, so a certificate replaced in the data dir stops the daemon instead of signing`,
    );
  }
  log.info(
    {
      instanceId: identity.instanceId,
      created: identity.created,
      passphraseSource: passphrase.source,
      ...identity.info,
      certificate: identity.certificatePem,
    },
    'signing certificate',
  );
  return identity;
}
