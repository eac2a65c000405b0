import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import type { LegSource } from '../../daemon/ingest/LegSource.js';
import type { WorkerSlot } from '../../daemon/ingest/MediaIngest.js';
import { SsrcDiscovery } from '../../daemon/ingest/SsrcDiscovery.js';
import { createLogger } from '../../daemon/log.js';

const PID = 4242;

/**
 * A leg as discovery sees it: its transport receives one stream (`real`), so
 * a Producer for that SSRC gets its first packet (confirmed) and one for any
 * other never does.
 */
class FakeLeg extends EventEmitter {
  readonly bound = new Set<number>();
  readonly options: { callId: string; role: 'caller' | 'callee' };
  closed = false;
  lastPacketAt = 0;
  confirmedSsrcs: number[] = [];
  constructor(
    readonly name: string,
    public real: number,
    private readonly clock: () => number,
  ) {
    super();
    this.options = { callId: name, role: 'caller' };
  }
  get ssrcs(): number[] {
    return this.confirmedSsrcs;
  }
  hasSsrc(ssrc: number): boolean {
    return this.bound.has(ssrc);
  }
  async bind(ssrc: number): Promise<void> {
    this.bound.add(ssrc);
    if (ssrc === this.real) {
      this.confirmedSsrcs.push(ssrc);
      this.lastPacketAt = this.clock();
      queueMicrotask(() => this.emit('confirmed', ssrc));
    }
  }
  async unbind(ssrc: number): Promise<void> {
    this.bound.delete(ssrc);
  }
}

describe('SSRC discovery matching (injected clock, worker warnings fed by the test)', () => {
  let now = 0;
  let discovery: SsrcDiscovery;
  let slot: WorkerSlot;
  const legs = new Set<FakeLeg>();
  beforeEach(() => {
    mock.timers.enable({ apis: ['setInterval'] });
    now = 1000;
    legs.clear();
    discovery = new SsrcDiscovery(createLogger('silent'), () => now);
    slot = { worker: { pid: PID }, legs } as unknown as WorkerSlot;
    discovery.attach(slot);
  });
  afterEach(() => {
    discovery.stop();
    mock.timers.reset();
  });

  function leg(name: string, real: number): FakeLeg {
    const l = new FakeLeg(name, real, () => now);
    legs.add(l);
    discovery.expect(slot, l as unknown as LegSource);
    return l;
  }
  /** Time passes: the clock, and discovery's check timer with it. */
  async function advance(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 10) {
      now += 10;
      mock.timers.tick(10);
      await new Promise((r) => setImmediate(r));
    }
  }
  /** Legs a (SSRC 111) and b (222) take their first senders, in that order; the worker then warns about `warned`, in that order. */
  async function twoLegs(warned: readonly number[]): Promise<[FakeLeg, FakeLeg]> {
    const [a, b] = [leg('a', 111), leg('b', 222)];
    a.emit('source');
    b.emit('source');
    for (const ssrc of warned) discovery.unrouted(PID, ssrc);
    await advance(10);
    return [a, b];
  }
  /** The worker warns about every stream whose SSRC no leg has bound yet (one packet each). */
  function packets(): void {
    for (const l of legs) if (!l.bound.has(l.real)) discovery.unrouted(PID, l.real);
  }

  test('first packets and new SSRCs in the same order are paired at once', async () => {
    const [a, b] = await twoLegs([111, 222]);
    assert.deepEqual([a.ssrcs, b.ssrcs], [[111], [222]]);
  });

  test('a wrong pairing (warnings in the other order) is undone once the worker keeps warning, and each leg ends with its own SSRC — never another’s', async () => {
    const [a, b] = await twoLegs([222, 111]);
    for (let i = 0; i < 40 && !(a.ssrcs.length && b.ssrcs.length); i++) {
      await advance(10);
      packets();
    }
    assert.deepEqual([a.ssrcs, b.ssrcs], [[111], [222]]);
    assert.ok(!a.bound.has(222) && !b.bound.has(111), 'the wrong Producers are gone');
  });

  test('an SSRC change mid-call (no source event) is tried on the leg that went quiet', async () => {
    const [a, b] = await twoLegs([111, 222]);
    // b keeps sending; a's sender restarts with a new SSRC and a is quiet.
    a.real = 333;
    for (let i = 0; i < 30 && !a.ssrcs.includes(333); i++) {
      b.lastPacketAt = now;
      await advance(10);
      discovery.unrouted(PID, 333);
    }
    assert.deepEqual(a.ssrcs, [111, 333]);
    assert.deepEqual(b.ssrcs, [222], 'the busy leg was not tried');
  });

  test('an SSRC warned about once and never again is forgotten, not bound to a leg that later gets a first packet long after', async () => {
    const stray = leg('a', 111);
    discovery.unrouted(PID, 999);
    await advance(5100);
    stray.emit('source');
    discovery.unrouted(PID, 111);
    await advance(10);
    assert.deepEqual(stray.ssrcs, [111]);
    assert.ok(!stray.bound.has(999));
  });
});
