import { existsSync } from 'node:fs';
import type { Config } from '../config/Config.js';
import { identityPaths } from '../keys/SigningIdentity.js';
import { AuditLog } from '../store/AuditLog.js';
import { RecordingIndex } from '../store/RecordingIndex.js';
import { openSigningIdentity } from './unwrap.js';

export interface Stores {
  readonly index: RecordingIndex;
  readonly audit: AuditLog;
}

/** Open an instance's index and audit log for one command (alongside a running daemon: LMDB is multi-process). */
export async function withStores<T>(dataDir: string, body: (s: Stores) => Promise<T>): Promise<T> {
  const index = RecordingIndex.open(dataDir);
  const audit = AuditLog.open(dataDir);
  try {
    return await body({ index, audit });
  } finally {
    await index.close();
    await audit.close();
  }
}

/**
 * Sign a checkpoint now, right after an export or a key operation, instead of
 * leaving it to the daemon's next one (up to a day): entries covered by a
 * checkpoint cannot be cut from the chain's end unseen. A command that cannot
 * sign (no identity yet, no passphrase here) says so and still succeeds: its
 * entry is written, and the daemon checkpoints it later.
 */
export async function checkpointNow(config: Config, audit: AuditLog, actor: string): Promise<void> {
  if (!existsSync(identityPaths(config.dataDir).certificate)) return; // nothing to sign with yet: the first daemon start checkpoints
  try {
    const identity = await openSigningIdentity(config);
    await audit.checkpoint(actor, identity.privateKey, identity.info.fingerprintSha256);
  } catch (err) {
    process.stderr.write(
      `callvault: warning: the audit entry is written but not checkpointed now (${(err as Error).message}); the daemon checkpoints it at its next start, stop or day\n`,
    );
  }
}
