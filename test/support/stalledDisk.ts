import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A directory mounted through bindfs (FUSE) whose server process can be
 * stopped: while it is, every write to the mount blocks in the kernel, as on
 * a hung NFS server or a dying disk — nothing fails, nothing completes.
 */
export class StalledDisk {
  private constructor(
    readonly mountPoint: string,
    private readonly server: ChildProcess,
  ) {}

  static async mount(backing: string, mountPoint: string): Promise<StalledDisk> {
    await mkdir(backing, { recursive: true });
    await mkdir(mountPoint, { recursive: true });
    const server = spawn('bindfs', ['-f', backing, mountPoint], { stdio: 'ignore' });
    const disk = new StalledDisk(mountPoint, server);
    for (let i = 0; i < 100; i++) {
      if ((await readFile('/proc/self/mounts', 'utf8')).includes(` ${mountPoint} fuse`)) return disk;
      if (server.exitCode !== null) break;
      await sleep(50);
    }
    server.kill();
    throw new Error(`bindfs did not mount ${mountPoint}`);
  }

  /** From now on writes to the mount wait. */
  freeze(): void {
    this.server.kill('SIGSTOP');
  }

  /** The writes waiting go through. */
  thaw(): void {
    this.server.kill('SIGCONT');
  }

  async unmount(): Promise<void> {
    this.thaw();
    for (let i = 0; i < 40 && spawnSync('umount', [this.mountPoint]).status !== 0; i++) await sleep(100);
    this.server.kill();
  }
}
