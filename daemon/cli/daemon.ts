import type { CommandModule } from 'yargs';
import { Daemon } from '../Daemon.js';
import { createLogger } from '../log.js';
import { withInstanceOptions, type InstanceArgs } from './options.js';

interface DaemonArgs extends InstanceArgs {
  'control-listen'?: string | undefined;
  'metrics-listen'?: string | undefined;
  'generate-passphrase': boolean;
}

export const daemonCommand: CommandModule<object, DaemonArgs> = {
  command: 'daemon',
  describe: 'Run the recorder (control API, mediasoup ingest, writers)',
  builder: (y) =>
    withInstanceOptions(y)
      .option('control-listen', { type: 'string', describe: 'HOST:PORT of the control API (overrides control.listen)' })
      .option('metrics-listen', { type: 'string', describe: 'HOST:PORT of /metrics (overrides metrics.listen)' })
      .option('generate-passphrase', {
        type: 'boolean',
        default: false,
        describe:
          'for a trial: with no signing passphrase configured, generate one into <dataDir>/signing.passphrase (0600, warned about at every start)',
      }),
  handler: async (args) => {
    const log = createLogger('info');
    const daemon = new Daemon({
      configFile: args.config,
      overrides: { dataDir: args['data-dir'], controlListen: args['control-listen'], metricsListen: args['metrics-listen'] },
      log,
      generatePassphrase: args['generate-passphrase'],
    });
    // Signals are handled from the first moment: a SIGTERM during start-up
    // (crash recovery, resealing) waits for start to finish, then stops cleanly.
    let stopping = false;
    const started = daemon.start();
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: finishing active recordings');
      // A failed start exits 1 on its own path below.
      void started.then(
        () =>
          daemon.stop().then(
            () => {
              log.info('callvault stopped');
              log.flush();
              setTimeout(() => process.exit(0), 50);
            },
            (err: Error) => {
              log.error({ err }, 'unclean shutdown');
              log.flush();
              setTimeout(() => process.exit(1), 50);
            },
          ),
        () => undefined,
      );
    };
    // A promise nobody awaited is a bug of ours, but ending the process for it would cut every call
    // being recorded: report it with its stack and keep recording.
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection (a bug); the daemon keeps running'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // SIGHUP's default action would kill the process; before start completes there is nothing to reload.
    process.on(
      'SIGHUP',
      () =>
        void started.then(
          () => daemon.requestReload(),
          () => undefined,
        ),
    );
    try {
      await started;
    } catch (err) {
      log.fatal({ err, reason: (err as Error).message }, 'callvault could not start');
      log.flush();
      process.exitCode = 1;
      await daemon.stop().catch(() => undefined);
      setTimeout(() => process.exit(1), 100).unref();
    }
  },
};
