import type { KeyObject } from 'node:crypto';
import { KeyError } from '../../errors.js';
import type { WorkerPool } from '../../seal/WorkerPool.js';
import type { KekStore, ShareInputs } from './KekStore.js';
import type { LkmClient } from './LkmClient.js';

/** Whatever can turn a wrapped data key back into the data key: both admins' shares, or the key manager. */
export interface DekUnwrapper {
  unwrap(kekId: string, wrapped: Uint8Array): Promise<Buffer>;
  /** Prove custody of `kekId` now (both shares open it), before anything is changed on its behalf. */
  open(kekId: string): Promise<void>;
  /** KEKs opened so far (for the audit log). */
  readonly opened: readonly string[];
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

export class LkmUnwrapper implements DekUnwrapper {
  private readonly seen = new Set<string>();

  constructor(private readonly client: LkmClient) {}

  get opened(): string[] {
    return [...this.seen];
  }

  /** The key manager holds the KEK and decides who may use it; there is nothing to open here. */
  async open(): Promise<void> {}

  async unwrap(kekId: string, wrapped: Uint8Array): Promise<Buffer> {
    const dek = await this.client.unwrap(kekId, wrapped);
    this.seen.add(kekId);
    if (dek.length !== 32) throw new KeyError('LKM_BAD_REPLY', `the key manager returned a ${dek.length}-byte data key for KEK ${kekId}`);
    return dek;
  }
}
