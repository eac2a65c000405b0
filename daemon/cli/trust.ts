import { existsSync } from 'node:fs';
import type { Argv } from 'yargs';
import { dataDirCertificate, givenCertificate, unpinnedWarning, type TrustAnchor } from '../keys/trustAnchor.js';
import { instanceConfig, instanceDataDir, type InstanceArgs } from './options.js';

/** How a command that checks signatures is told which certificate to trust. */
export interface TrustArgs extends InstanceArgs {
  cert?: string | undefined;
  fingerprint?: string | undefined;
}

export function withTrustOptions<T extends InstanceArgs>(y: Argv<T>): Argv<T & TrustArgs> {
  return y
    .option('cert', { type: 'string', normalize: true, describe: 'certificate PEM kept outside the data dir to check signatures with' })
    .option('fingerprint', {
      type: 'string',
      describe: 'SHA-256 fingerprint the certificate must have (default: signing.fingerprint from the config)',
    }) as Argv<T & TrustArgs>;
}

/**
 * `--fingerprint`, else the config's `signing.fingerprint`. Without a config
 * file (a copied instance checked with `--data-dir` or `--cert` alone) there
 * is no pin from it.
 */
function pinnedFingerprint(args: TrustArgs): string | null {
  if (args.fingerprint) return args.fingerprint;
  return existsSync(args.config) ? instanceConfig(args).signing.fingerprint : null;
}

/** The certificate to check signatures with; when it is only the data dir's own, a warning on stderr says so. */
export async function trustedCertificate(args: TrustArgs): Promise<TrustAnchor> {
  const pinned = pinnedFingerprint(args);
  if (args.cert) return givenCertificate(args.cert, pinned);
  const dataDir = instanceDataDir(args);
  return warnIfUnpinned(await dataDirCertificate(dataDir, pinned), dataDir);
}

/** Say on stderr when the only anchor is the data dir's own certificate. */
export function warnIfUnpinned(anchor: TrustAnchor, dataDir: string): TrustAnchor {
  const warning = unpinnedWarning(anchor, dataDir);
  if (warning) process.stderr.write(`${warning}\n`);
  return anchor;
}
