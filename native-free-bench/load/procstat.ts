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

/** Memory of the tree, split by process kind. */
export interface MemorySplit {
  readonly total: number;
  /** Of total, the Node processes (the daemon with its threads, its media shards); the rest is mediasoup workers. */
  readonly node: number;
  /** Of node, the daemon's own process (its thread and Piscina's); the rest is its media shards. */
  readonly daemon: number;
}

export interface ProcSample {
  /** User + system CPU seconds of the whole tree since each process started. */
  readonly cpuS: number;
  /**
   * Proportional set size, bytes: each page shared between processes (the node binary's code in the
   * daemon and its shards, the mediasoup-worker binary in every worker) counted once across them, so
   * the sum is the tree's real footprint.
   */
  readonly pss: MemorySplit;
  /** Resident set size summed over the processes, bytes (shared pages once per process that maps them). */
  readonly rss: MemorySplit;
  readonly processes: number;
}

function kB(text: string, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
}

export function sample(pid: number): ProcSample {
  let cpuS = 0;
  const pss = { total: 0, node: 0, daemon: 0 };
  const rss = { total: 0, node: 0, daemon: 0 };
  const pids = tree(pid);
  for (const p of pids) {
    try {
      // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuS += (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      const isNode = !readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('mediasoup-work');
      for (const [split, bytes] of [
        [pss, kB(rollup, 'Pss')],
        [rss, kB(rollup, 'Rss')],
      ] as const) {
        split.total += bytes;
        if (isNode) split.node += bytes;
        if (p === pid) split.daemon = bytes;
      }
    } catch {
      // The process ended between listing and reading.
    }
  }
  return { cpuS, pss, rss, processes: pids.length };
}
