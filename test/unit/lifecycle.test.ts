import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { apply, expiresBySweep, isSealed, legacyState, replay, stageOfLegacy, type LifecycleEvent } from '../../daemon/archive/lifecycle.js';
import { LEGACY_STATES, STAGES, type NewIndexEntry, type Stage } from '../../daemon/archive/RecordingTypes.js';
import { LifecycleError } from '../../daemon/errors.js';
import { testEntry } from './entries.js';

function entry(stage: Stage = 'recording', o: Partial<NewIndexEntry> = {}): NewIndexEntry {
  return testEntry(26, { stage, files: ['x.wav', 'x.json'], retainUntil: '2027-12-01T10:00:00.000Z', ...o });
}

const closed: LifecycleEvent = { type: 'closed', endedAt: '2026-12-01T10:01:00.000Z', durationMs: 60_000 };
const sealed = (targets: string[], kekId: string | null = null): LifecycleEvent => ({
  type: 'sealed',
  files: ['x.json', 'x.wav.enc'],
  kekId,
  sealedAt: '2026-12-01T10:01:01.000Z',
  targets,
});

describe('recording lifecycle', () => {
  test('a whole life: recording → closed → sealed → archived (once every target has its copy) → deleted', () => {
    let e = replay(entry(), [closed, sealed(['a', 'b'], 'kek-1')]);
    assert.equal(e.stage, 'sealed');
    assert.deepEqual(e.uploads, { a: { state: 'pending', attempts: 0, lastError: null }, b: { state: 'pending', attempts: 0, lastError: null } });
    e = apply(e, { type: 'upload-failed', target: 'a', error: 'EIO' });
    e = apply(e, { type: 'upload-failed', target: 'a', error: 'EIO again' });
    assert.deepEqual(e.uploads.a, { state: 'pending', attempts: 2, lastError: 'EIO again' });
    e = apply(e, { type: 'uploaded', target: 'b', at: '2026-12-01T10:02:00.000Z' });
    assert.equal(e.stage, 'sealed', 'one target still owed');
    e = apply(e, { type: 'uploaded', target: 'a', at: '2026-12-01T10:03:00.000Z' });
    assert.equal(e.stage, 'archived');
    assert.equal(e.kekId, 'kek-1', 'encrypted and archived at once');
    e = apply(e, { type: 'deleted', at: '2030-01-01T00:00:00.000Z' });
    assert.deepEqual([e.stage, e.uploads, e.deletedAt], ['deleted', {}, '2030-01-01T00:00:00.000Z']);
  });

  test('a recording whose profile has no storage targets stays sealed', () => {
    assert.equal(replay(entry(), [closed, sealed([])]).stage, 'sealed');
  });

  test('events a stage cannot take are refused and change nothing', () => {
    const refused: [Stage, LifecycleEvent][] = [
      ['recording', sealed([])],
      ['sealed', closed],
      ['deleted', { type: 'uploaded', target: 'a', at: 'x' }],
      ['deleted', { type: 'held', reason: 'r', by: 'b', at: 'x' }],
      ['recording', { type: 'deleted', at: 'x' }],
      ['closed', { type: 'converted', files: [], kekId: null }],
      ['archived', { type: 'failed', error: 'x' }],
    ];
    for (const [stage, ev] of refused) {
      const before = entry(stage);
      assert.throws(
        () => apply(before, ev),
        (err: unknown) => err instanceof LifecycleError && err.code === 'ILLEGAL_TRANSITION',
        `${stage} + ${ev.type}`,
      );
      assert.equal(before.stage, stage);
    }
  });

  test('a failed seal may be tried again: failed → sealed; a transient failure keeps the stage and says why', () => {
    let e = replay(entry(), [closed, { type: 'seal-retrying', error: 'EMFILE' }]);
    assert.deepEqual([e.stage, e.error], ['closed', 'EMFILE']);
    e = replay(e, [{ type: 'failed', error: 'seal failed: bad' }, sealed([])]);
    assert.deepEqual([e.stage, e.error], ['sealed', null]);
  });

  test('holds and key conversions are attributes: the stage stays', () => {
    let e = replay(entry(), [closed, sealed(['a']), { type: 'held', reason: 'case 1', by: 'alice', at: 't' }]);
    assert.deepEqual([e.stage, e.hold], ['sealed', { reason: 'case 1', by: 'alice', at: 't' }]);
    assert.equal(expiresBySweep(e), false, 'a held recording is never swept');
    e = apply(e, { type: 'converted', files: ['x.wav.enc'], kekId: 'kek-2' });
    assert.deepEqual([e.stage, e.kekId, e.files], ['sealed', 'kek-2', ['x.wav.enc']]);
    e = apply(e, { type: 'released' });
    assert.equal(expiresBySweep(e), true);
  });

  test('the one-word state of earlier versions: every stage and encryption maps to one, and back', () => {
    assert.equal(legacyState({ stage: 'closed', kekId: null }), 'finalizing');
    assert.equal(legacyState({ stage: 'sealed', kekId: null }), 'sealed');
    assert.equal(legacyState({ stage: 'sealed', kekId: 'k' }), 'encrypted');
    assert.equal(legacyState({ stage: 'archived', kekId: 'k' }), 'uploaded');
    for (const s of LEGACY_STATES) assert.ok(STAGES.includes(stageOfLegacy(s)), s);
    for (const s of STAGES) assert.equal(stageOfLegacy(legacyState({ stage: s, kekId: null })), s);
    assert.deepEqual(
      STAGES.filter((s) => isSealed({ stage: s })),
      ['sealed', 'archived'],
    );
  });
});
