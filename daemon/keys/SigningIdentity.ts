import { randomUUID, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { KeyError } from '../errors.js';
import { writeFileDurably } from '../fsutil.js';
import { describeCertificate, generateSigningIdentity, type CertificateInfo } from './certificate.js';
import { decryptPkcs8, encryptPkcs8 } from './encryptedPkcs8.js';
import { assertPinned } from './trustAnchor.js';

export interface IdentityPaths {
  readonly dir: string;
  readonly instanceId: string;
  readonly key: string;
  readonly certificate: string;
}

export function identityPaths(dataDir: string): IdentityPaths {
  const dir = path.join(dataDir, 'identity');
  return {
    dir,
    instanceId: path.join(dir, 'instance-id'),
    key: path.join(dir, 'signing-key.p8.pem'),
    certificate: path.join(dir, 'signing-cert.pem'),
  };
}

/**
 * What shows that `dataDir` has an identity that may have signed something:
 * its key (written just before the certificate at generation) or any
 * recording. Undefined for a new instance.
 */
async function signedBefore(dataDir: string, keyFile: string, keyPem: string | undefined): Promise<string | undefined> {
  if (keyPem !== undefined) return `its signing key ${keyFile} exists`;
  const recordings = path.join(dataDir, 'recordings');
  if ((await readdir(recordings).catch(() => [])).length) return `recordings exist in ${recordings}`;
  return undefined;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyError('IDENTITY_UNREADABLE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
}

export interface SigningIdentityOptions {
  readonly dataDir: string;
  readonly keyBits: number;
  readonly passphrase: string;
  /** `signing.fingerprint`: the certificate must be this one. */
  readonly pinned?: string | null;
}

/**
 * The instance's one signing identity: an RSA key, kept on disk only as
 * encrypted PKCS#8, and its self-signed certificate. Made at first start,
 * loaded unchanged ever after.
 */
export class SigningIdentity {
  private constructor(
    readonly instanceId: string,
    readonly privateKey: KeyObject,
    readonly certificatePem: string,
    readonly info: CertificateInfo,
    /** True when this call generated the identity. */
    readonly created: boolean,
  ) {}

  static async loadOrCreate(opts: SigningIdentityOptions): Promise<SigningIdentity> {
    const paths = identityPaths(opts.dataDir);
    await mkdir(paths.dir, { recursive: true, mode: 0o750 });
    let instanceId = (await readIfExists(paths.instanceId))?.trim();
    if (!instanceId) {
      instanceId = randomUUID();
      await writeFileDurably(paths.instanceId, `${instanceId}\n`, 0o644);
    }
    let certPem = await readIfExists(paths.certificate);
    let keyPem = await readIfExists(paths.key);
    let created = false;
    if (certPem === undefined) {
      // A new identity over one that has signed recordings or audit checkpoints would make every
      // earlier signature unverifiable: a missing certificate then is lost evidence, not a first start.
      const signed = opts.pinned ? `signing.fingerprint pins ${opts.pinned}` : await signedBefore(opts.dataDir, paths.key, keyPem);
      if (signed) {
        throw new KeyError(
          'IDENTITY_MISSING',
          `the signing certificate ${paths.certificate} is missing, but this instance already has a signing identity (${signed}); refusing to make a new signing key, which would leave every earlier signature unverifiable. Restore ${paths.certificate}${keyPem === undefined ? ` and ${paths.key}` : ''} from a backup (\`callvault cert --fingerprint\` on the backup shows the fingerprint the daemon logged at its starts); only if a very first start was interrupted and nothing was ever recorded, remove ${paths.key} instead`,
          { file: paths.certificate },
        );
      }
      // A new instance: the key goes to disk before the certificate.
      const generated = await generateSigningIdentity(`callvault ${instanceId}`, opts.keyBits);
      keyPem = encryptPkcs8(generated.pkcs8Der, opts.passphrase);
      generated.pkcs8Der.fill(0);
      await writeFileDurably(paths.key, keyPem, 0o600);
      await writeFileDurably(paths.certificate, generated.certificatePem, 0o644);
      certPem = generated.certificatePem;
      created = true;
    } else if (keyPem === undefined) {
      throw new KeyError(
        'KEY_MISSING',
        `the signing certificate ${paths.certificate} exists but its key ${paths.key} does not; restore the key from backup`,
        { file: paths.key },
      );
    }
    // The pin first: a replaced certificate is named as that, not as a key that does not match it.
    if (opts.pinned) assertPinned(certPem, opts.pinned, paths.certificate);
    const privateKey = decryptPkcs8(keyPem, opts.passphrase, paths.key);
    assertPair(privateKey, certPem, paths);
    return new SigningIdentity(instanceId, privateKey, certPem, describeCertificate(certPem), created);
  }
}

function assertPair(privateKey: KeyObject, certPem: string, paths: IdentityPaths): void {
  const probe = Buffer.from('callvault key/certificate pairing probe');
  const ok = verify('sha256', probe, new X509Certificate(certPem).publicKey, sign('sha256', probe, privateKey));
  if (!ok) throw new KeyError('KEY_CERT_MISMATCH', `${paths.key} does not belong to ${paths.certificate}`, { file: paths.key });
}

/** The instance's id (`identity/instance-id`), or null before its first start. */
export async function readInstanceId(dataDir: string): Promise<string | null> {
  return (await readIfExists(identityPaths(dataDir).instanceId))?.trim() || null;
}

/** The instance's certificate, for commands that only need to check signatures. */
export async function readInstanceCertificate(dataDir: string): Promise<string> {
  const file = identityPaths(dataDir).certificate;
  const pem = await readIfExists(file);
  if (pem === undefined)
    throw new KeyError('NO_CERTIFICATE', `no signing certificate at ${file}: start the daemon once to create it, or pass --cert`, { file });
  return pem;
}
