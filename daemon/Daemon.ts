import { mkdir } from 'node:fs/promises';
import { parseListen, type Config } from './config/Config.js';
import { loadConfig, type ConfigOverrides } from './config/load.js';
import { ControlServer } from './control/ControlServer.js';
import { resolveControlToken } from './control/token.js';
import { MediaIngest } from './ingest/MediaIngest.js';
import type { Logger } from './log.js';
import { Recorder } from './record/Recorder.js';
import { recoverInterrupted } from './record/recovery.js';

export interface DaemonOptions {
  readonly configFile: string;
  readonly overrides: ConfigOverrides;
  readonly log: Logger;
}

/**
 * The long-running process, assembled: crash recovery, then mediasoup ingest,
 * the recorder and the control API. Data flows ingest → recorder → files.
 */
export class Daemon {
  private config!: Config;
  private ingest: MediaIngest | undefined;
  private recorder: Recorder | undefined;
  private control: ControlServer | undefined;

  constructor(private readonly opts: DaemonOptions) {}

  get controlAddress(): string {
    return this.config.control.listen;
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    this.config = loadConfig(this.opts.configFile, this.opts.overrides);
    log.level = this.config.logging.level;
    await mkdir(this.config.dataDir, { recursive: true, mode: 0o750 });
    log.info({ version: process.env.npm_package_version, config: this.opts.configFile, dataDir: this.config.dataDir }, 'callvault starting');

    const recovered = await recoverInterrupted(this.config.dataDir, log);
    if (recovered.length) log.warn({ count: recovered.length }, 'recordings recovered after a crash');

    const { token, source, file } = await resolveControlToken(this.config);
    this.ingest = await MediaIngest.create(this.config.media, log);
    this.recorder = new Recorder(this.config, this.ingest, log);
    await this.recorder.open();
    this.control = new ControlServer(
      { listen: parseListen(this.config.control.listen), token, maxBodyBytes: this.config.control.maxBodyBytes },
      this.recorder,
      log,
    );
    const addr = await this.control.listen();
    this.control.setReady(true);
    log.info({ control: `${addr.address}:${addr.port}`, tokenSource: source, tokenFile: file }, 'control API listening');
  }

  /** Re-read the config; keep the old one if the new one is invalid. */
  reload(): void {
    const { log } = this.opts;
    let next: Config;
    try {
      next = loadConfig(this.opts.configFile, this.opts.overrides);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload failed; keeping the running config');
      return;
    }
    const needRestart: string[] = [];
    if (next.dataDir !== this.config.dataDir) needRestart.push('dataDir');
    if (JSON.stringify(next.control) !== JSON.stringify(this.config.control)) needRestart.push('control');
    if (JSON.stringify(next.media) !== JSON.stringify(this.config.media)) needRestart.push('media');
    this.config = { ...next, dataDir: this.config.dataDir, control: this.config.control, media: this.config.media };
    log.level = this.config.logging.level;
    this.recorder?.reconfigure(this.config);
    log.info({ needRestart }, 'config reloaded');
  }

  /** Stop taking calls, close every recording, stop mediasoup. */
  async stop(): Promise<void> {
    this.control?.setReady(false);
    await this.recorder?.shutdown();
    await this.ingest?.close();
    await this.control?.close();
  }
}
