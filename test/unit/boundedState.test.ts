import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LoadShedder, type SheddableCall } from '../../daemon/capacity/LoadShedder.js';
import { newRecordingId } from '../../daemon/record/recordingId.js';
import { Recording } from '../../daemon/record/Recording.js';

test('a recording keeps at most 1,000 pauses and counts the rest: an SRC that holds and resumes all day cannot grow it without bound', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'callvault-unit-notes-'));
  try {
    const rec = await Recording.start(
      {
        dataDir,
        recordingId: newRecordingId(),
        instanceId: 'unit',
        encryptTo: null,
        maxWriteBacklogBytes: 64 * 1024,
        info: { callId: 'notes', direction: 'inbound', caller: { number: '1' }, callee: { number: '2' }, codec: 'PCMU' },
        policy: { channelMode: 'stereo', profile: { name: 'unit', storage: [], encryption: false, retention: null } },
        payloadKinds: new Map([[0, 'PCMU']]),
        jitterBufferMs: 80,
      },
      0,
    );
    for (let i = 0; i < 1500; i++) {
      rec.setPaused('caller', true, i * 2);
      rec.setPaused('caller', false, i * 2 + 1);
    }
    rec.noteHeld(true, 10);
    rec.noteHeld(false, 20);
    const meta = await rec.finish('api', {}, 3000);
    assert.equal(meta.pauses?.length, 1000);
    assert.equal(meta.notesOmitted, 500);
    const overload = meta.gaps?.filter((g) => g.code === 'OVERLOAD') ?? [];
    assert.equal(overload.length, 1, 'a shed stretch is a gap of the (one, stereo) file');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('the load shedder sheds the newest calls of the lagging worker first, waits for the lag to answer, and restores the oldest first under half the limit', () => {
  const calls: (SheddableCall & { id: number })[] = Array.from({ length: 40 }, (_, id) => {
    let held = false;
    return {
      id,
      startedMono: id,
      workerPids: [id % 2 === 0 ? 100 : 200],
      get held() {
        return held;
      },
      hold(h: boolean) {
        held = h;
      },
    };
  });
  const shedder = new LoadShedder(1000, () => calls);
  const heldIds = () => calls.filter((c) => c.held).map((c) => c.id);
  assert.equal(shedder.onLag(100, 900, 0), 0, 'under the limit: nothing');
  assert.equal(shedder.onLag(100, 1500, 0), 1, '5 % of 20 calls on worker 100, at least one');
  assert.deepEqual(heldIds(), [38], 'the newest of that worker');
  assert.equal(shedder.onLag(100, 1500, 1000), 0, 'the lag is given its own length to answer');
  assert.equal(shedder.onLag(100, 1200, 1600), 0, 'a lag that is falling is left to drain');
  assert.equal(shedder.onLag(100, 1450, 3200), 1, 'one that is not, gets more shed');
  assert.deepEqual(heldIds(), [36, 38]);
  assert.equal(shedder.onLag(200, 1500, 3200), 1, 'workers are apart');
  assert.equal(shedder.shedCalls, 3);
  assert.equal(shedder.onLag(100, 700, 5000), 0, 'between half and the limit: neither');
  assert.equal(shedder.onLag(100, 400, 5000), -1, 'under half: one restored');
  assert.deepEqual(heldIds(), [38, 39], 'the oldest shed first');
  shedder.configure(null);
  assert.equal(shedder.onLag(200, 5000, 9000), -1, 'with shedding off, shed calls are restored whatever the lag');
});
