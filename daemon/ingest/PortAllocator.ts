import { randomInt } from 'node:crypto';

/**
 * RTP ports for legs, chosen at random from the configured range and kept
 * out of use for a quarantine period after release. Random: a port cannot be
 * guessed and raced before the PBX sends. Quarantined: a PBX that keeps
 * sending to an ended call's port never lands in the next call's recording.
 */
export class PortAllocator {
  readonly #inUse = new Set<number>();
  /** Released port → monotonic ms until which it stays unused. */
  readonly #quarantine = new Map<number, number>();

  constructor(
    readonly min: number,
    readonly max: number,
    readonly quarantineMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.max - this.min + 1;
  }

  /** Ports neither in use nor quarantined. */
  get free(): number {
    this.#expire();
    return this.size - this.#inUse.size - this.#quarantine.size;
  }

  /** A free port, or undefined when every port is in use or quarantined. */
  take(): number | undefined {
    this.#expire();
    const free = this.free;
    if (free <= 0) return undefined;
    // Rejection sampling is fast while the range is mostly free; past that, pick the k-th free port.
    if (free * 4 >= this.size) {
      for (;;) {
        const p = this.min + randomInt(this.size);
        if (this.#available(p)) return this.#claim(p);
      }
    }
    let k = randomInt(free);
    for (let p = this.min; p <= this.max; p++) {
      if (this.#available(p) && k-- === 0) return this.#claim(p);
    }
    return undefined;
  }

  /** Give `port` back; it is not handed out again for the quarantine period. */
  release(port: number): void {
    if (!this.#inUse.delete(port)) return;
    if (this.quarantineMs > 0) this.#quarantine.set(port, this.now() + this.quarantineMs);
  }

  #available(p: number): boolean {
    return !this.#inUse.has(p) && !this.#quarantine.has(p);
  }

  #claim(p: number): number {
    this.#inUse.add(p);
    return p;
  }

  #expire(): void {
    const now = this.now();
    // Insertion order is release order, and every release adds the same period.
    for (const [p, until] of this.#quarantine) {
      if (until > now) break;
      this.#quarantine.delete(p);
    }
  }
}
