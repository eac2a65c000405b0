/**
 * The control API as an outsider attacks it: malformed request lines,
 * aborted requests, generated garbage, a PBX retrying at once, a flood of
 * idle sockets. The process must survive every one and answer 4xx.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, requestCall, TOKEN, testConfigYaml } from './support/daemon.js';

function rawRequest(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname);
    let out = '';
    sock.setTimeout(5000, () => sock.destroy(new Error('no answer in 5 s')));
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('end', () => resolve(out));
    sock.on('close', () => resolve(out));
    sock.on('error', (err) => (out ? resolve(out) : reject(err)));
    sock.write(text, 'latin1');
  });
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
}

/** A small deterministic generator, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('control API under attack', () => {
  let d: DaemonProcess;
  before(async () => {
    d = await DaemonProcess.start({
      yaml: testConfigYaml()
        .replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:0\n  maxConnections: 40\n  idleTimeoutSeconds: 1')
        // Seven ports: the ingest probe's, two for the duplicate-start test's call, four for two calls.
        .replace('portMax: 29999', 'portMax: 20006\n  portQuarantineSeconds: 600'),
    });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  const alive = async () => assert.equal((await d.api('GET', '/healthz', undefined, null)).status, 200, 'daemon still answers');

  test('malformed request targets are 400, never the end of the process', async () => {
    for (const target of ['//[', '//', 'http://[', '//a:99999/', 'http://x:-1/', '/v1/calls/%E0%A4%A', '/v1/recordings/%', '*']) {
      const answer = await rawRequest(
        d.controlUrl,
        `GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(statusOf(answer), 400, `${target} -> ${answer.slice(0, 80)}`);
      await alive();
    }
    assert.equal(d.child.exitCode, null);
    const errors = d.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
    assert.deepEqual(errors, [], 'a client mistake is not an error of ours');
  });

  test('a client that aborts its request is not logged as an error', async () => {
    const before = d.logs.length;
    const { hostname, port } = new URL(d.controlUrl);
    await new Promise<void>((resolve) => {
      const sock = connect(Number(port), hostname, () => {
        sock.write(
          `POST /v1/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"callId":`,
        );
        setTimeout(() => {
          sock.destroy();
          resolve();
        }, 100);
      });
    });
    await new Promise((r) => setTimeout(r, 200));
    await alive();
    assert.deepEqual(
      d.logs.slice(before).filter((l) => l.level === 'error'),
      [],
    );
  });

  test('fuzz: 400 generated request lines, headers and JSON bodies are answered below 500 and the process lives', async () => {
    const r = rng(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
    const junk = (n: number) => Array.from({ length: n }, () => String.fromCharCode(33 + Math.floor(r() * 94))).join('');
    const values: unknown[] = [
      null,
      true,
      0,
      -1,
      1e308,
      2 ** 53,
      '',
      'x'.repeat(300),
      [],
      {},
      [1, [2]],
      { number: '+49' },
      { ip: '1.2.3.4', port: 5 },
      '\u0000',
      '../../etc',
    ];
    const body = () => {
      const o: Record<string, unknown> = {};
      for (const k of ['callId', 'direction', 'caller', 'callee', 'codec', 'payloadType', 'group', junk(4)]) if (r() < 0.7) o[k] = pick(values);
      if (r() < 0.5) o.caller = { number: pick(['+4930', '', 5, junk(10)]), media: pick(values), ssrc: pick(values) };
      return r() < 0.1 ? junk(40) : JSON.stringify(o);
    };
    let statuses = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const method = pick(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD', junk(3)]);
      const path = pick([
        '/v1/calls',
        `/v1/calls/${encodeURIComponent(junk(8))}`,
        `/v1/recordings?limit=${pick(['0', '-1', '0x10', '1e3', '+5', 'abc', '10001'])}`,
        `/v1/recordings?from=${pick(['2026-02-30', 'yesterday', '2026-13-01', '9999-99-99T99:99'])}`,
        `/v1/recordings/${junk(12)}`,
        `/v1/${junk(6)}`,
        '/healthz',
        `/%${junk(2)}`,
        `/${junk(20)}`,
      ]);
      const text = body();
      const headers = [
        `Host: ${pick(['x', '', junk(5)])}`,
        r() < 0.8 ? `Authorization: Bearer ${TOKEN}` : `Authorization: ${junk(12)}`,
        `Content-Type: ${pick(['application/json', 'text/plain', junk(6)])}`,
      ];
      if (r() < 0.3) headers.push(`${junk(6)}: ${junk(30)}`);
      const cl = r() < 0.1 ? String(Math.floor(r() * 1e9)) : String(Buffer.byteLength(text));
      const answer = await rawRequest(
        d.controlUrl,
        `${method} ${path} HTTP/1.1\r\n${headers.join('\r\n')}\r\nContent-Length: ${cl}\r\nConnection: close\r\n\r\n${text}`,
      );
      const status = statusOf(answer);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      assert.ok(status === 0 || status < 500, `request ${i}: ${method} ${path} -> ${answer.slice(0, 200)}`);
    }
    await alive();
    assert.ok(
      [...statuses.keys()].some((s) => s >= 400),
      `${JSON.stringify([...statuses])}`,
    );
    statuses = new Map();
  });

  test('ten simultaneous starts of one call id: exactly one 201, the rest 409; two at once, ten times over', async () => {
    const settle = async (callId: string, n: number) => {
      const rs = await Promise.all(Array.from({ length: n }, () => requestCall(d, { callId })));
      const created = rs.filter((x) => x.status === 201);
      assert.equal(created.length, 1, `${callId}: ${rs.map((x) => x.status).join(',')}`);
      assert.deepEqual(
        rs.filter((x) => x.status !== 201).map((x) => x.body.error),
        Array(n - 1).fill('DUPLICATE_CALL'),
      );
      assert.equal((await d.api('DELETE', `/v1/calls/${callId}`)).status, 202);
      assert.equal((await d.api('DELETE', `/v1/calls/${callId}`)).status, 404, 'nothing left that nothing owns');
    };
    await settle('dup-10', 10);
  });

  test('strict search parameters: hex, exponents, signs and impossible dates are 400 naming the field', async () => {
    for (const [q, field] of [
      ['limit=0x10', 'limit'],
      ['limit=1e3', 'limit'],
      ['limit=+5', 'limit'],
      ['limit= 5', 'limit'],
      ['from=2026-02-30', 'from'],
      ['to=2026-04-31T10:00:00Z', 'to'],
      ['from=2026-01-01T24:00:00Z', 'from'],
    ]) {
      const r = await d.api('GET', `/v1/recordings?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(r.body.message, new RegExp(`^${field}`), q);
    }
    assert.equal((await d.api('GET', '/v1/recordings?limit=5&from=2026-02-28&to=2026-03-01T10:00:00%2B01:00')).status, 200);
  });

  test('no RTP port free is 503 NO_PORT with Retry-After; released ports stay quarantined', async () => {
    const a = await requestCall(d, { callId: 'ports-a' });
    const b = await requestCall(d, { callId: 'ports-b' });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    const c = await requestCall(d, { callId: 'ports-c' });
    assert.equal(c.status, 503);
    assert.equal((c.body as { error: string }).error, 'NO_PORT');
    assert.ok(Number(c.headers.get('retry-after')) > 0);
    await d.api('DELETE', '/v1/calls/ports-a');
    await d.api('DELETE', '/v1/calls/ports-b');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await requestCall(d, { callId: 'ports-d' })).status, 503, 'every port is in use or quarantined, not handed out again');
  });

  test('a flood of idle sockets is capped and swept: descriptors stay bounded and the API answers again', async () => {
    const fds = () => readdirSync(`/proc/${d.child.pid}/fd`).length;
    const base = fds();
    const { hostname, port } = new URL(d.controlUrl);
    const socks: Socket[] = [];
    await Promise.all(
      Array.from(
        { length: 600 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(Number(port), hostname, () => resolve());
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            socks.push(s);
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 200));
    const during = fds();
    assert.ok(during <= base + 40 + 10, `fds ${base} -> ${during} with 600 idle sockets (cap 40)`);
    await new Promise((r) => setTimeout(r, 1800));
    await alive();
    for (const s of socks) s.destroy();
  });
});
