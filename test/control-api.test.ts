import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, startCall, testConfigYaml } from './support/daemon.js';

const CALL = {
  callId: 'c-1@pbx.example',
  direction: 'inbound',
  caller: { number: '+4930123456' },
  callee: { number: '+4989654321' },
  codec: 'PCMA',
};

describe('control API', () => {
  let d: DaemonProcess;
  before(async () => {
    d = await DaemonProcess.start({
      yaml: testConfigYaml()
        .replace('minFreeDiskMB: 1', 'minFreeDiskMB: 1\n  maxConcurrent: 2')
        .replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:0\n  maxBodyBytes: 1024'),
    });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  test('GET /healthz answers 200 without a token once calls can be accepted', async () => {
    assert.deepEqual(await d.api('GET', '/healthz', undefined, null), { status: 200, body: { status: 'ok' } });
  });

  test('no token or a wrong token is 401', async () => {
    for (const token of [null, 'wrong-token-wrong-token']) {
      const r = await d.api('POST', '/v1/calls', CALL, token);
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'UNAUTHORIZED');
    }
    assert.equal((await d.api('GET', '/v1/recordings/0123456789ab0123456789', undefined, null)).status, 401);
  });

  test('bad bodies are 400 with a message naming the problem', async () => {
    const cases: [unknown, RegExp][] = [
      ['{"callId": ', /not valid JSON/],
      ['[1,2]', /JSON object/],
      [{ ...CALL, codec: 'G729' }, /unsupported codec "G729"; supported: PCMU, PCMA/],
      [{ ...CALL, codec: undefined }, /codec is required/],
      [{ ...CALL, callId: undefined }, /callId is required/],
      [{ ...CALL, callId: 'has space' }, /callId/],
      [{ ...CALL, direction: 'sideways' }, /direction must be one of inbound, outbound, internal/],
      [{ ...CALL, callee: undefined }, /callee is required/],
      [{ ...CALL, caller: { number: '' } }, /caller.number/],
      [{ ...CALL, caller: { number: '1', ssrc: -1 } }, /caller.ssrc must be an integer from 0 to 4294967295/],
      [{ ...CALL, payloadType: 128 }, /payloadType must be an integer from 0 to 127/],
      [{ ...CALL, colour: 'blue' }, /unknown field colour/],
      [{ ...CALL, caller: { number: '+1'.padEnd(2000, '1') } }, /exceeds 1024 bytes/],
    ];
    for (const [body, message] of cases) {
      const r = await d.api('POST', '/v1/calls', body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)} -> ${JSON.stringify(r.body)}`);
      assert.match(r.body.message, message);
    }
  });

  test('a call gets one RTP port per leg; a duplicate callId is 409; past the limit is 503', async () => {
    const a = await startCall(d, { callId: 'limit-a', codec: 'PCMA' });
    assert.equal(a.legs.caller.ip, '127.0.0.1');
    assert.notEqual(a.legs.caller.port, a.legs.callee.port);
    assert.ok(a.legs.caller.port >= 20000 && a.legs.caller.port <= 29999);
    assert.equal(a.legs.caller.payloadType, 8);
    assert.match(a.recordingId, /^[0-9a-f]{22}$/);
    const dup = await d.api('POST', '/v1/calls', { ...CALL, callId: 'limit-a' });
    assert.equal(dup.status, 409);
    await startCall(d, { callId: 'limit-b' });
    const over = await d.api('POST', '/v1/calls', { ...CALL, callId: 'limit-c' });
    assert.deepEqual([over.status, over.body.error], [503, 'CALL_LIMIT']);
    const rec = await d.api('GET', `/v1/recordings/${a.recordingId}`);
    assert.equal(rec.body.state, 'recording');
    assert.deepEqual(rec.body.files, [`${a.recordingId}.wav`, `${a.recordingId}.json`]);
    for (const id of ['limit-a', 'limit-b']) assert.equal((await d.api('DELETE', `/v1/calls/${id}`)).status, 202);
    await d.waitForState(a.recordingId, 'sealed');
    assert.equal((await d.api('POST', '/v1/calls', { ...CALL, callId: 'limit-c' })).status, 201, 'capacity is back after calls end');
    assert.equal((await d.api('DELETE', '/v1/calls/limit-c')).status, 202);
  });

  test('unknown calls, recordings and routes are 404; wrong methods 405', async () => {
    assert.equal((await d.api('DELETE', '/v1/calls/nope')).status, 404);
    assert.equal((await d.api('GET', '/v1/recordings/0123456789ab0123456789')).status, 404);
    assert.equal((await d.api('GET', '/v1/recordings/../../etc/passwd')).status, 404);
    assert.equal((await d.api('GET', '/v1/nothing')).status, 404);
    assert.equal((await d.api('GET', '/v1/calls')).status, 405);
  });
});

test('low disk space in the data dir is 503 LOW_DISK', async () => {
  const d = await DaemonProcess.start({ yaml: testConfigYaml().replace('minFreeDiskMB: 1', 'minFreeDiskMB: 10485760') });
  try {
    const r = await d.api('POST', '/v1/calls', CALL);
    assert.equal(r.status, 503);
    assert.equal(r.body.error, 'LOW_DISK');
    assert.match(r.body.message, /MB free in the data directory/);
  } finally {
    await d.stop();
  }
});

test('a daemon started without any token generates one (0600) instead of running open', async () => {
  const d = await DaemonProcess.start({ env: { CALLVAULT_CONTROL_TOKEN: '' } });
  try {
    const { readFile, stat } = await import('node:fs/promises');
    const file = `${d.dataDir}/control.token`;
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const token = (await readFile(file, 'utf8')).trim();
    assert.ok(token.length >= 32);
    assert.equal((await d.api('DELETE', '/v1/calls/x', undefined, token)).status, 404);
    assert.equal((await d.api('DELETE', '/v1/calls/x')).status, 401);
    assert.ok(!d.logs.some((l) => JSON.stringify(l).includes(token)), 'the token never appears in the log');
  } finally {
    await d.stop();
  }
});
