import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SendPlan, StreamResult } from './rtpPlan.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MAIN = path.join(ROOT, 'dist/daemon/main.js');
const SENDER = fileURLToPath(new URL('./rtp-sender.js', import.meta.url));
export const TOKEN = 'test-token-0123456789abcdef';
export const PASSPHRASE = 'test-signing-passphrase-42';

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

/** A logged error: pino's serialised object (message, code, stack) or, from older call sites, a string. */
export function errText(err: unknown): string {
  return typeof err === 'object' && err !== null ? String((err as { message?: unknown }).message) : String(err);
}

/** Config for a test daemon: loopback, ephemeral control port, small timeouts. */
export function testConfigYaml(extra = ''): string {
  return `control:\n  listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\nmedia:\n  workers: 1\n  portMin: 20000\n  portMax: 29999\ncalls:\n  minFreeDiskMB: 1\n  diskReserveMB: 1\nlogging:\n  level: debug\n${extra}`;
}

/** A real `callvault daemon` child process on a temp data dir. */
export class DaemonProcess {
  readonly logs: LogLine[] = [];
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  controlUrl = '';
  exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly dataDir: string,
    readonly configFile: string,
  ) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 'raw', msg: text };
      }
      this.logs.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    });
    child.stderr!.on('data', (d: Buffer) => this.logs.push({ level: 'stderr', msg: d.toString() }));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  /** `launcher: 'bin'` starts it as systemd does, through bin/callvault; else node runs dist/daemon/main.js directly. */
  static async start(
    opts: { yaml?: string; dataDir?: string; configFile?: string; env?: NodeJS.ProcessEnv; launcher?: 'node' | 'bin' } = {},
  ): Promise<DaemonProcess> {
    const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'callvault-test-')));
    const configFile = opts.configFile ?? path.join(dataDir, '..', `${path.basename(dataDir)}.yaml`);
    if (!opts.configFile) await writeFile(configFile, opts.yaml ?? testConfigYaml());
    const args = ['daemon', '--config', configFile, '--data-dir', dataDir];
    const [command, argv] = opts.launcher === 'bin' ? [path.join(ROOT, 'bin/callvault'), args] : [process.execPath, [MAIN, ...args]];
    const child = spawn(command, argv, {
      env: { ...process.env, CALLVAULT_CONTROL_TOKEN: TOKEN, CALLVAULT_SIGNING_PASSPHRASE: PASSPHRASE, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const d = new DaemonProcess(child, dataDir, configFile);
    const ready = await Promise.race([
      d.waitFor((l) => l.msg === 'control API listening', 20_000),
      d.exited.then((code) => {
        throw new Error(`daemon exited with ${code}: ${d.logs.map((l) => (l.err ? `${l.msg}: ${errText(l.err)}` : l.msg)).join(' | ')}`);
      }),
    ]);
    d.controlUrl = `http://${ready.control as string}`;
    return d;
  }

  waitFor(match: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const found = this.logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`log line not seen in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  }

  async api(method: string, route: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; body: any }> {
    const { status, body: answer } = await this.exchange(method, route, body, token);
    return { status, body: answer };
  }

  /** As api(), with the response's headers (Retry-After). */
  async exchange(
    method: string,
    route: string,
    body?: unknown,
    token: string | null = TOKEN,
  ): Promise<{ status: number; body: any; headers: Headers }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await fetch(this.controlUrl + route, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  /** Poll until the recording reaches `state`. */
  async waitForState(recordingId: string, state: string, timeoutMs = 15_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.api('GET', `/v1/recordings/${recordingId}`);
      if (r.status === 200 && r.body.state === state) return r.body;
      if (Date.now() > deadline) throw new Error(`recording ${recordingId} not ${state}: ${JSON.stringify(r.body)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** The process id of media shard `shard`, as it last said it was ready. */
  shardPid(shard = 0): number {
    const ready = this.logs.filter((l) => l.msg === 'media shard ready' && l.shard === shard).at(-1);
    if (!ready) throw new Error(`media shard ${shard} has not started`);
    return ready.pid as number;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export interface CallParams {
  callId: string;
  codec?: 'PCMU' | 'PCMA';
  direction?: 'inbound' | 'outbound' | 'internal';
  callerSsrc?: number;
  calleeSsrc?: number;
  /** Party fields beyond the defaults (number, user, groups). */
  caller?: Record<string, unknown>;
  callee?: Record<string, unknown>;
  group?: string;
}

/** POST /v1/calls; the answer whatever its status. */
export function requestCall(d: DaemonProcess, p: CallParams): Promise<{ status: number; body: any; headers: Headers }> {
  return d.exchange('POST', '/v1/calls', {
    callId: p.callId,
    direction: p.direction ?? 'inbound',
    caller: { number: '+4930123456', ...(p.callerSsrc !== undefined ? { ssrc: p.callerSsrc } : {}), ...p.caller },
    callee: { number: '+4989654321', ...(p.calleeSsrc !== undefined ? { ssrc: p.calleeSsrc } : {}), ...p.callee },
    codec: p.codec ?? 'PCMU',
    ...(p.group !== undefined ? { group: p.group } : {}),
  });
}

/** Start a call that must be recorded. */
export async function startCall(d: DaemonProcess, p: CallParams): Promise<any> {
  const r = await requestCall(d, p);
  if (r.status !== 201) throw new Error(`start call ${p.callId}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A short call with no RTP: started, ended 200 ms later; resolves with its recording id. */
export async function briefCall(d: DaemonProcess, p: CallParams): Promise<string> {
  const c = await startCall(d, p);
  await new Promise((r) => setTimeout(r, 200));
  const ended = await d.api('DELETE', `/v1/calls/${p.callId}`);
  if (ended.status !== 202) throw new Error(`end call ${p.callId}: ${ended.status} ${JSON.stringify(ended.body)}`);
  return c.recordingId;
}

/** Run the RTP sender in its own process. */
export function sendRtp(plan: SendPlan): Promise<StreamResult[]> {
  return new Promise((resolve, reject) => {
    const child = fork(SENDER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m) => resolve(m as StreamResult[]));
    child.once('error', reject);
    child.once('exit', (code) => (code ? reject(new Error(`rtp sender exited ${code}`)) : undefined));
    child.send(plan);
  });
}
