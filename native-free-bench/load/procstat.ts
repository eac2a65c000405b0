/**
 * CPU and memory of a process and all below it (the daemon, its Piscina
 * threads, its media shards and their mediasoup workers), read from /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports utime/stime in clock ticks; 100 per second on every mainstream build. */
const TICKS_PER_S = 100;

function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

function tree(pid: number): number[] {
  return [pid, ...children(pid).flatMap(tree)];
}

export interface ProcSample {
  /** User + system CPU seconds of the whole tree since each process started. */
  readonly cpuS: number;
  readonly rssBytes: number;
  /** Of rssBytes, the Node processes (the daemon with its threads, its media shards); the rest is mediasoup workers. */
  readonly nodeRssBytes: number;
  /** Of nodeRssBytes, the daemon's own process (its thread and Piscina's); the rest is its media shards. */
  readonly daemonRssBytes: number;
  readonly processes: number;
}

export function sample(pid: number): ProcSample {
  let cpuS = 0;
  let rssBytes = 0;
  let nodeRssBytes = 0;
  let daemonRssBytes = 0;
  const pids = tree(pid);
  for (const p of pids) {
    try {
      // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuS += (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      const bytes = Number(rss?.[1] ?? 0) * 1024;
      rssBytes += bytes;
      if (p === pid) daemonRssBytes = bytes;
      if (!readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('mediasoup-work')) nodeRssBytes += bytes;
    } catch {
      // The process ended between listing and reading.
    }
  }
  return { cpuS, rssBytes, nodeRssBytes, daemonRssBytes, processes: pids.length };
}
