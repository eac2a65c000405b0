import { createHash, type KeyObject } from 'node:crypto';
import { KeyError } from '../../errors.js';
import type { WorkerPool } from '../../seal/WorkerPool.js';
import { wipeShareInputs, type KekStore, type ShareInputs } from './KekStore.js';
import type { LkmClient } from './LkmClient.js';

/** Whatever can turn a wrapped data key back into the data key: both admins' shares, or the key manager. */
export interface DekUnwrapper {
  /** The data key of one of `recordingId`'s files. */
  unwrap(kekId: string, wrapped: Uint8Array, recordingId: string): Promise<Buffer>;
  /** Prove custody of `kekId` now (both shares open it), before anything is changed on its behalf. */
  open(kekId: string): Promise<void>;
  /** KEKs opened so far (for the audit log). */
  readonly opened: readonly string[];
  /** Done: the passphrases are wiped and the private keys let go. */
  close(): void;
}

/**
 * Local KEKs: each private key is rebuilt from its two shares the first time
 * it is needed, kept in this process's memory only, and used in the pool so
 * the RSA work runs on every core.
 */
export class ShareUnwrapper implements DekUnwrapper {
  private readonly keys = new Map<string, Promise<KeyObject>>();

  constructor(
    private readonly store: KekStore,
    private readonly shares: ShareInputs,
    private readonly pool: WorkerPool,
  ) {}

  get opened(): string[] {
    return [...this.keys.keys()];
  }

  async open(kekId: string): Promise<void> {
    await this.key(kekId);
  }

  close(): void {
    wipeShareInputs(this.shares);
    this.keys.clear();
  }

  async unwrap(kekId: string, wrapped: Uint8Array): Promise<Buffer> {
    const [dek] = await this.pool.unwrapDeks({ key: await this.key(kekId), kekId, wrapped: [wrapped] });
    return Buffer.from(dek!);
  }

  private key(kekId: string): Promise<KeyObject> {
    let key = this.keys.get(kekId);
    if (!key) {
      key = this.store.openPrivate(kekId, this.shares);
      this.keys.set(kekId, key);
      key.catch(() => this.keys.delete(kekId));
    }
    return key;
  }
}

/** One data key the key manager unwrapped, as callvault's audit log records it. */
export interface UnwrapRecord {
  readonly kekId: string;
  readonly recordingId: string;
  readonly wrappedDekSha256: string;
  readonly keyManager: string;
  readonly purpose: string;
}

/**
 * The key manager unwraps, with the unwrap credential a person gave the
 * command; every unwrap is recorded here (`key.unwrapped`) before the key
 * is used, as the key manager records it on its side.
 */
export class LkmUnwrapper implements DekUnwrapper {
  private readonly seen = new Set<string>();

  constructor(
    private readonly client: LkmClient,
    private readonly purpose: string,
    private readonly record: (u: UnwrapRecord) => Promise<void>,
  ) {}

  get opened(): string[] {
    return [...this.seen];
  }

  /** The key manager holds the KEK and decides who may use it; there is nothing to open here. */
  async open(): Promise<void> {}

  close(): void {}

  async unwrap(kekId: string, wrapped: Uint8Array, recordingId: string): Promise<Buffer> {
    const dek = await this.client.unwrap(kekId, wrapped, recordingId, this.purpose);
    try {
      this.seen.add(kekId);
      if (dek.length !== 32) throw new KeyError('LKM_BAD_REPLY', `the key manager returned a ${dek.length}-byte data key for KEK ${kekId}`);
      await this.record({
        kekId,
        recordingId,
        wrappedDekSha256: createHash('sha256').update(wrapped).digest('hex'),
        keyManager: this.client.origin,
        purpose: this.purpose,
      });
      return dek;
    } catch (err) {
      dek.fill(0);
      throw err;
    }
  }
}
