import { existsSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

const V1 = '/sys/fs/cgroup/cpu';
const V2 = '/sys/fs/cgroup';
const PERIOD_US = 100_000;
/** cgroups take at least 1 ms a period: below 1 % the period grows (to at most 1 s) instead. */
const MIN_QUOTA_US = 1000;

/**
 * A CPU cgroup (v1 `cpu` controller or v2 `cpu.max`) that holds one process
 * to a share of a core: the daemon falls behind its packets for real, while
 * its mediasoup workers (other processes) go on receiving them.
 */
export class CpuThrottle {
  private constructor(
    private readonly dir: string,
    private readonly root: string,
    private readonly v2: boolean,
  ) {}

  static async create(name: string): Promise<CpuThrottle> {
    const v2 = !existsSync(path.join(V1, 'cpu.cfs_quota_us')) && existsSync(path.join(V2, 'cgroup.controllers'));
    const root = v2 ? V2 : V1;
    const dir = path.join(root, name);
    await mkdir(dir, { recursive: true });
    return new CpuThrottle(dir, root, v2);
  }

  /** Move `pid` (all its threads) in and hold it to `percent` of one core (down to 0.1 %). */
  async limit(pid: number, percent: number): Promise<void> {
    const period = Math.min(1_000_000, Math.max(PERIOD_US, Math.round((MIN_QUOTA_US * 100) / percent)));
    const quota = Math.max(MIN_QUOTA_US, Math.round((period * percent) / 100));
    if (this.v2) await writeFile(path.join(this.dir, 'cpu.max'), `${quota} ${period}`);
    else {
      await writeFile(path.join(this.dir, 'cpu.cfs_period_us'), String(period));
      await writeFile(path.join(this.dir, 'cpu.cfs_quota_us'), String(quota));
    }
    await writeFile(path.join(this.dir, 'cgroup.procs'), String(pid));
  }

  /** No limit any more. */
  async release(): Promise<void> {
    if (this.v2) await writeFile(path.join(this.dir, 'cpu.max'), `max ${PERIOD_US}`);
    else await writeFile(path.join(this.dir, 'cpu.cfs_quota_us'), '-1');
  }

  /** Give `pid` back to the root group and remove this one. */
  async remove(pid: number): Promise<void> {
    await this.release().catch(() => undefined);
    await writeFile(path.join(this.root, 'cgroup.procs'), String(pid)).catch(() => undefined);
    await rmdir(this.dir).catch(() => undefined);
  }
}
