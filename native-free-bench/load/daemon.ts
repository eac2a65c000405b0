/** The load benches' shared parts: a real daemon on a temp data dir, its API and metrics, the RTP generator. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SenderAdd, SenderLeg, SenderPlan, SenderResult } from './sender.js';

export const MAIN = fileURLToPath(new URL('../../daemon/main.js', import.meta.url));
/** The launcher systemd runs: its V8 flags and its allocator are part of what is measured. */
const LAUNCHER = fileURLToPath(new URL('../../../bin/callvault', import.meta.url));
const SENDER = fileURLToPath(new URL('./sender.js', import.meta.url));
export const TOKEN = `bench-${randomInt(2 ** 47)}-token-0123456789`;
/** The bench's throwaway instance: its own signing key under a passphrase that dies with it. */
export const ENV = { ...process.env, CALLVAULT_CONTROL_TOKEN: TOKEN, CALLVAULT_SIGNING_PASSPHRASE: `bench-${randomInt(2 ** 47)}-passphrase` };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

/** Run `fn` over `items` with at most `n` in flight. */
export async function pooled<T, R>(items: readonly T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      for (let i: number; (i = next++) < items.length; ) out[i] = await fn(items[i] as T);
    }),
  );
  return out;
}

export type Mode = 'http' | 'siprec';

export class Daemon {
  control = '';
  metrics = '';
  sip = '';
  /** The malloc the daemon says it runs on ("callvault starting"). */
  allocator = '';
  private constructor(
    readonly child: ChildProcess,
    readonly dataDir: string,
    readonly configFile: string,
  ) {}

  /** `extra`: more YAML for the media and calls sections; `allocator`: CALLVAULT_ALLOCATOR for bin/callvault (`system`: glibc's malloc). */
  static async start(dir: string, calls: number, mode: Mode, extra: { media?: string; calls?: string; allocator?: string } = {}): Promise<Daemon> {
    const dataDir = path.join(dir, 'data');
    const configFile = path.join(dir, 'callvault.yaml');
    await writeFile(
      configFile,
      `${[
        'control:\n  listen: 127.0.0.1:0\n  maxBodyBytes: 65536',
        'metrics:\n  listen: 127.0.0.1:0',
        `media:\n  portMin: 20000\n  portMax: ${20000 + 2 * calls + 200}${extra.media ?? ''}`,
        `calls:\n  maxConcurrent: ${calls + 10}\n  minFreeDiskMB: 1${extra.calls ?? ''}`,
        'logging:\n  level: info',
        ...(mode === 'siprec' ? ['sip:\n  listen: 127.0.0.1:0\n  transports: [udp]\n  allowedSources: [127.0.0.1]'] : []),
      ].join('\n')}\n`,
    );
    // Through bin/callvault, as systemd starts it: the figures are the shipped daemon's.
    const child = spawn(LAUNCHER, ['daemon', '--config', configFile, '--data-dir', dataDir], {
      env: extra.allocator ? { ...ENV, CALLVAULT_ALLOCATOR: extra.allocator } : ENV,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const d = new Daemon(child, dataDir, configFile);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the daemon did not start in 30 s')), 30_000);
      child.once('exit', (code) => reject(new Error(`the daemon exited with ${code}`)));
      createInterface({ input: child.stdout! }).on('line', (text) => {
        let line: { msg?: string; level?: string; control?: string; metrics?: string; sip?: string; allocator?: string };
        try {
          line = JSON.parse(text) as typeof line;
        } catch {
          return void process.stderr.write(`daemon: ${text}\n`);
        }
        if (line.metrics) d.metrics = `http://${line.metrics}`;
        if (line.control) d.control = `http://${line.control}`;
        if (line.sip) d.sip = line.sip;
        if (line.allocator) d.allocator = line.allocator;
        if (line.level === 'error' || line.level === 'fatal') process.stderr.write(`daemon: ${text}\n`);
        if (d.control && d.metrics && (mode === 'http' || d.sip)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    return d;
  }

  async api(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(this.control + route, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  /** Each recording's status once sealed; a bounded wait (recordings that never seal are returned as they are, not waited for forever). */
  sealed(recordingIds: readonly string[]): Promise<any[]> {
    const deadline = Date.now() + 120_000 + recordingIds.length * 200;
    return pooled(recordingIds, 8, async (id) => {
      for (;;) {
        const r = await this.api('GET', `/v1/recordings/${id}`);
        if (r.status === 200 && r.body.sealedAt) return r.body;
        if (Date.now() > deadline) return r.body;
        await sleep(250);
      }
    });
  }

  /** Sum of every sample of a counter or gauge. */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.metrics}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** The RTP generator in its own process; `add` gives it the legs of calls started while it runs. */
export function startSender(plan: SenderPlan): { result: Promise<SenderResult>; add(legs: readonly SenderLeg[]): void } {
  const child = fork(SENDER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const result = new Promise<SenderResult>((resolve, reject) => {
    child.once('message', (m) => resolve(m as SenderResult));
    child.once('exit', (code) => (code ? reject(new Error(`the RTP sender exited with ${code}`)) : undefined));
  });
  child.send(plan);
  return { result, add: (legs) => child.send({ add: legs } satisfies SenderAdd) };
}

export function runSender(plan: SenderPlan): Promise<SenderResult> {
  return startSender(plan).result;
}
