import { randomInt } from 'node:crypto';
import path from 'node:path';
import { readWav, type Wav } from './audio.js';
import { sendRtp, startCall, type DaemonProcess } from './daemon.js';
import type { StreamPlan, StreamResult } from './rtpPlan.js';

export type LegPlan = Partial<StreamPlan> & { freq: number; durationMs: number };

export interface CallPlan {
  callId: string;
  codec?: 'PCMU' | 'PCMA';
  /** Tell callvault the SSRCs up front (as from SDP a=ssrc) instead of letting it discover them. */
  announceSsrc?: boolean;
  caller?: LegPlan | null;
  callee?: LegPlan | null;
}

export interface RecordedCall {
  readonly recordingId: string;
  readonly meta: any;
  readonly dir: string;
  readonly wavs: Wav[];
  readonly sent: { caller?: StreamResult; callee?: StreamResult };
  /** Wall time from just before the call was announced to the end request's answer. */
  readonly elapsedMs: number;
}

const ROLES = ['caller', 'callee'] as const;

/**
 * Whole calls: announce them, send every leg's RTP from one separate process
 * (as one SBC would), end them, wait for the closed recordings, read the files.
 */
export async function recordCalls(d: DaemonProcess, plans: CallPlan[]): Promise<RecordedCall[]> {
  const started = await Promise.all(
    plans.map(async (o) => {
      const ssrcs = { caller: randomInt(1, 2 ** 31), callee: randomInt(1, 2 ** 31) };
      const t0 = performance.now();
      const call = await startCall(d, {
        callId: o.callId,
        codec: o.codec ?? 'PCMU',
        ...(o.announceSsrc ? { callerSsrc: ssrcs.caller, calleeSsrc: ssrcs.callee } : {}),
      });
      return { o, call, ssrcs, t0, roles: ROLES.filter((r) => o[r]) };
    }),
  );
  const streams: StreamPlan[] = started.flatMap(({ o, call, ssrcs, roles }) =>
    roles.map((r) => ({
      port: call.legs[r].port,
      law: o.codec ?? 'PCMU',
      payloadType: (o.codec ?? 'PCMU') === 'PCMU' ? 0 : 8,
      ssrc: ssrcs[r],
      seqStart: randomInt(0, 65536),
      tsStart: randomInt(0, 2 ** 32),
      ...(o[r] as LegPlan),
    })),
  );
  const results = streams.length ? await sendRtp({ streams }) : [];
  return Promise.all(
    started.map(async ({ o, call, roles, t0 }) => {
      const del = await d.api('DELETE', `/v1/calls/${encodeURIComponent(o.callId)}`);
      const elapsedMs = performance.now() - t0;
      if (del.status !== 202) throw new Error(`end call: ${del.status} ${JSON.stringify(del.body)}`);
      const st = await d.waitForState(call.recordingId, 'sealed');
      const wavs = await Promise.all((st.metadata.files as { name: string }[]).map((f) => readWav(path.join(st.dir, f.name))));
      const sent: RecordedCall['sent'] = {};
      for (const r of roles) sent[r] = results.find((x) => x.port === call.legs[r].port);
      return { recordingId: call.recordingId, meta: st.metadata, dir: st.dir, wavs, sent, elapsedMs };
    }),
  );
}

export async function recordCall(d: DaemonProcess, plan: CallPlan): Promise<RecordedCall> {
  return (await recordCalls(d, [plan]))[0] as RecordedCall;
}
