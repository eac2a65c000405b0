/**
 * `bench:load --overload`: more calls offered than the machine can take.
 * A real daemon with admission on measured signals (calls.admission: ingest
 * lag, event-loop delay), 1.5 × --capacity calls offered at --cps, each
 * admitted call's RTP starting as soon as it is admitted and running to the
 * end; then --seconds more with everything offered. Reports what was
 * admitted and refused (every refusal must be 503), the admitted calls' loss
 * inside callvault, calls shed, and the daemon's RSS at full capacity against
 * the end (no growth while overloaded).
 */
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { G711Law } from '../../daemon/media/g711.js';
import { report, type Row } from '../report.js';
import { Daemon, pooled, sleep, startSender } from './daemon.js';
import { sample } from './procstat.js';

export interface OverloadOptions {
  readonly capacity: number;
  readonly cps: number;
  readonly seconds: number;
  readonly law: G711Law;
  /** calls.admission limits; null: not used; undefined: the daemon's default. */
  readonly maxIngestLagMs: number | null | undefined;
  readonly maxEventLoopDelayMs: number | null | undefined;
  readonly maxEventLoopUtilization: number | null | undefined;
}

const MAX_LOSS = 0.0001;
const MAX_RSS_GROWTH = 0.1;

export async function overload(o: OverloadOptions): Promise<void> {
  const offered = Math.round(1.5 * o.capacity);
  const dir = await mkdtemp(path.join(tmpdir(), 'callvault-bench-overload-'));
  const limit = (key: string, v: number | null | undefined) => (v === undefined ? '' : `\n    ${key}: ${v}`);
  const limits = `${limit('maxIngestLagMs', o.maxIngestLagMs)}${limit('maxEventLoopDelayMs', o.maxEventLoopDelayMs)}${limit('maxEventLoopUtilization', o.maxEventLoopUtilization)}`;
  const admission = limits ? `\n  admission:${limits}` : '';
  const d = await Daemon.start(dir, offered, 'http', { calls: admission });
  try {
    const pid = d.child.pid as number;
    await sleep(2000);
    const idle = sample(pid);
    const offerSeconds = offered / o.cps;
    const sender = startSender({ legs: [], seconds: offerSeconds + o.seconds + 1, loss: 0, reorder: 0, jitterMs: 0 });
    const t0 = performance.now();
    const cpu0 = sample(pid);
    const admitted: { callId: string; recordingId: string }[] = [];
    const refused = new Map<string, number>();
    let firstRefusalAt: number | null = null;
    // The signals admission decides on, every second, for the JSON and the summary.
    const series: { atS: number; lagMs: number; loopMs: number; elu: number; active: number; shedNow: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const text = await (await fetch(`${d.metrics}/metrics`)).text();
        const get = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
        series.push({
          atS: Math.round((performance.now() - t0) / 100) / 10,
          lagMs: get(/callvault_capacity_signal\{signal="ingest_lag_ms"\} (\S+)/),
          loopMs: get(/callvault_capacity_signal\{signal="event_loop_delay_ms"\} (\S+)/),
          elu: get(/callvault_capacity_signal\{signal="event_loop_utilization"\} (\S+)/),
          active: get(/^callvault_active_calls (\S+)/m),
          shedNow: get(/^callvault_calls_shed (\S+)/m),
        });
        await sleep(1000);
      }
    })();
    const offers = Array.from({ length: offered }, async (_, i) => {
      await sleep(Math.max(0, t0 + (i * 1000) / o.cps - performance.now()));
      const ssrc = { caller: randomInt(1, 2 ** 31), callee: randomInt(1, 2 ** 31) };
      const callId = `over-${i}`;
      const r = await d.api('POST', '/v1/calls', {
        callId,
        direction: 'inbound',
        caller: { number: `+4930${100000 + i}`, ssrc: ssrc.caller },
        callee: { number: '+4989654321', ssrc: ssrc.callee },
        codec: o.law,
      });
      if (r.status === 201) {
        admitted.push({ callId, recordingId: r.body.recordingId as string });
        sender.add([
          { port: r.body.legs.caller.port as number, law: o.law, ssrc: ssrc.caller, freq: 300 + 50 * (i % 10) },
          { port: r.body.legs.callee.port as number, law: o.law, ssrc: ssrc.callee, freq: 1000 + 50 * (i % 10) },
        ]);
        return;
      }
      firstRefusalAt ??= (performance.now() - t0) / 1000;
      const key = `${r.status} ${r.body?.error ?? ''}`;
      refused.set(key, (refused.get(key) ?? 0) + 1);
    });
    await Promise.all(offers);
    // Everything offered: "full capacity" from here; the daemon's memory must not grow from now to the end.
    await sleep(5000);
    const full = sample(pid);
    const fullAtS = (performance.now() - t0) / 1000;
    const rss: number[] = [];
    const sending = sender.result;
    let done = false;
    void sending.finally(() => (done = true));
    while (!done) {
      await sleep(1000);
      rss.push(sample(pid).rss.total);
    }
    const sent = await sending;
    sampling = false;
    await sampler;
    const worst = (from: number, to: number, k: 'lagMs' | 'loopMs' | 'elu') =>
      Math.max(0, ...series.filter((x) => x.atS >= from && x.atS < to).map((x) => x[k])).toFixed(k === 'elu' ? 2 : 0);
    const cpu1 = sample(pid);
    const end = rss.at(-2) ?? rss.at(-1) ?? cpu1.rss.total;
    const peak = Math.max(full.rss.total, ...rss);
    const cpuPct = (100 * (cpu1.cpuS - cpu0.cpuS)) / ((performance.now() - t0) / 1000);
    const shed = await d.metric('callvault_calls_shed_total');
    await pooled(admitted, 16, (c) => d.api('DELETE', `/v1/calls/${c.callId}`));
    // The counters of a call move from live to finished when it is closed: read them once every one is.
    const status = await d.sealed(admitted.map((c) => c.recordingId));
    const sealed = status.filter((st) => st?.sealedAt).length;
    const overloadGaps = status.filter((st) => st?.metadata?.gaps?.some((g: { code: string }) => g.code === 'OVERLOAD')).length;
    const [received, late] = [await d.metric('callvault_rtp_packets_received_total'), await d.metric('callvault_rtp_packets_late_total')];
    const written = received - late;
    const lossInside = sent.sent ? Math.max(0, sent.sent - written) / sent.sent : 1;
    const refusedTotal = [...refused.values()].reduce((a, b) => a + b, 0);
    const refused503 = [...refused].filter(([k]) => k.startsWith('503 ')).reduce((a, [, n]) => a + n, 0);
    const mb = (b: number) => (b / 2 ** 20).toFixed(0);
    const rows: Row[] = [
      {
        measure: `**${offered} calls offered** (1.5 × ${o.capacity}) at ${o.cps}/s, then ${o.seconds} s`,
        figure: `${admitted.length} admitted, ${refusedTotal} refused`,
        baseline: `first refusal ${firstRefusalAt === null ? 'never' : `${(firstRefusalAt as number).toFixed(0)} s in`}; refusals ${JSON.stringify(Object.fromEntries(refused))}; admission ${limits ? limits.trim().replace(/\n\s*/g, ', ') : "the daemon's defaults"}`,
      },
      {
        measure: '  every refused call got 503',
        figure: `${refused503} / ${refusedTotal}`,
        baseline: 'CAPACITY (measured load) or CALL_LIMIT',
        met: refused503 === refusedTotal,
      },
      {
        measure: '  admitted calls: packets lost inside callvault',
        figure: `${(lossInside * 100).toFixed(4)} %`,
        baseline: `${sent.sent.toLocaleString('en')} sent, ${written.toLocaleString('en')} written (${late} late); ${shed} times a call was shed, ${overloadGaps} recordings with an OVERLOAD gap; ${sealed} / ${admitted.length} sealed; target ≤ 0.01 %`,
        met: lossInside <= MAX_LOSS,
      },
      {
        measure: '  daemon RSS at full capacity → end',
        figure: `${mb(full.rss.total)} → ${mb(end)} MB (peak ${mb(peak)})`,
        baseline: `idle ${mb(idle.rss.total)} MB; full capacity ${fullAtS.toFixed(0)} s in; target: end within ${MAX_RSS_GROWTH * 100} % of full capacity`,
        met: end <= full.rss.total * (1 + MAX_RSS_GROWTH),
      },
      {
        measure: '  worst ingest lag / event-loop p99 / event-loop utilization, offering → hold',
        figure: `${worst(0, offerSeconds, 'lagMs')} ms / ${worst(0, offerSeconds, 'loopMs')} ms / ${worst(0, offerSeconds, 'elu')} → ${worst(offerSeconds, Infinity, 'lagMs')} ms / ${worst(offerSeconds, Infinity, 'loopMs')} ms / ${worst(offerSeconds, Infinity, 'elu')}`,
        baseline: `most calls shed at once ${Math.max(0, ...series.map((x) => x.shedNow))}; media.maxIngestLagMs 1000`,
      },
      {
        measure: '  daemon CPU (main + pool + mediasoup workers)',
        figure: `${cpuPct.toFixed(0)} % of one core`,
        baseline: `generator worst lag ${sent.maxLagMs} ms, send errors ${sent.sendErrors}`,
      },
    ];
    report('load-overload', `callvault offered 1.5 × its capacity (${o.capacity} calls), ${o.law}`, rows, {
      ...o,
      offered,
      admitted: admitted.length,
      refused: Object.fromEntries(refused),
      sent,
      written,
      late,
      shed,
      sealed,
      overloadGaps,
      rss: { idle: idle.rss.total, full: full.rss.total, end, peak },
      cpuPct,
      series,
    });
  } finally {
    await d.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
