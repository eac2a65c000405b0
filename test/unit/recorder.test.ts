import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../../daemon/config/Config.js';
import { parseConfigText } from '../../daemon/config/load.js';
import { ApiError } from '../../daemon/errors.js';
import { LocalPlane } from '../../daemon/shard/LocalPlane.js';
import { createLogger } from '../../daemon/log.js';
import { Recorder, type StartCallRequest } from '../../daemon/record/Recorder.js';
import { RecordingIndex } from '../../daemon/store/RecordingIndex.js';

const log = createLogger('silent');

function call(callId: string, caller = '+4930123456'): StartCallRequest {
  return { callId, direction: 'inbound', codec: 'PCMU', caller: { number: caller }, callee: { number: '+4989654321' } };
}

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err));
    return err;
  }
  assert.fail('expected a refusal');
}

/** Recorder admission and shutdown, with a real mediasoup worker and a real LMDB index, no daemon around them. */
describe('Recorder admission and shutdown', () => {
  let dataDir: string;
  let plane: LocalPlane;
  let index: RecordingIndex;
  let config: Config;
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'callvault-unit-recorder-'));
    config = parseConfigText(
      `dataDir: ${dataDir}\nmedia:\n  workers: 1\n  portMin: 30000\n  portMax: 30999\ncalls:\n  maxConcurrent: 2\n  minFreeDiskMB: 1\n  diskReserveMB: 1\nprofiles:\n  - name: pci\n    match:\n      numbers: ["+4930999*"]\n    encryption: true\n  - name: default\n`,
      'unit.yaml',
    );
    plane = await LocalPlane.create(Recorder.planeSettings(config, 'unit'), log);
    index = RecordingIndex.open(dataDir);
  });
  after(async () => {
    await plane.close();
    await index.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('at calls.maxConcurrent a new call is refused 503 CALL_LIMIT with Retry-After, counting calls still being set up; a duplicate call id is 409', async () => {
    const recorder = new Recorder(config, plane, index, 'unit', { current: () => undefined }, log);
    await recorder.open();
    const refused: string[] = [];
    recorder.on('rejected', (code) => refused.push(code));
    // Both start in the same turn: neither is active yet when the third arrives.
    const [a, b] = [recorder.startCall(call('a')), recorder.startCall(call('b'))];
    const dup = rejection(recorder.startCall(call('a')));
    const third = rejection(recorder.startCall(call('c')));
    await Promise.all([a, b]);
    assert.deepEqual([(await dup).status, (await dup).code], [409, 'DUPLICATE_CALL']);
    assert.deepEqual([(await third).status, (await third).code, (await third).retryAfterSeconds], [503, 'CALL_LIMIT', 5]);
    assert.deepEqual(refused.sort(), ['CALL_LIMIT', 'DUPLICATE_CALL']);
    await recorder.shutdown();
  });

  test('a profile that encrypts with no KEK to encrypt under: 503 NO_KEK, nothing opened; with one, the call is recorded', async () => {
    const none = new Recorder(config, plane, index, 'unit', { current: () => undefined }, log);
    await none.open();
    const e = await rejection(none.startCall(call('pci-1', '+4930999001')));
    assert.deepEqual([e.status, e.code], [503, 'NO_KEK']);
    assert.equal(none.activeCalls, 0);
    await none.shutdown();
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const withKek = new Recorder(config, plane, index, 'unit', { current: () => ({ id: 'kek-unit', publicKey }) }, log);
    await withKek.open();
    const ok = await withKek.startCall(call('pci-2', '+4930999002'));
    assert.equal(ok.recorded, true);
    await withKek.shutdown();
  });

  test('shutdown ends calls still being set up as well as active ones: each is closed, journaled for its seal, and nothing is left open', async () => {
    const recorder = new Recorder(config, plane, index, 'unit', { current: () => undefined }, log);
    await recorder.open();
    const active = await recorder.startCall(call('s1'));
    const setting = recorder.startCall(call('s2'));
    const down = recorder.shutdown();
    const late = await setting;
    await down;
    assert.equal(recorder.activeCalls, 0);
    const ids = [active, late].map((r) => (r.recorded ? r.recordingId : ''));
    for (const id of ids) {
      assert.equal(index.get(id)?.stage, 'closed', `${id} closed`);
      assert.ok(index.jobs.get({ stage: 'seal', lane: '', recordingId: id }), `${id}: its seal is journaled`);
    }
    assert.deepEqual((await rejection(recorder.startCall(call('s3')))).code, 'SHUTTING_DOWN');
  });
});
