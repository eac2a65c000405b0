import path from 'node:path';
import type { Argv } from 'yargs';
import { DEFAULT_CONFIG_PATH, loadConfig, type ConfigOverrides } from '../config/load.js';
import type { Config } from '../config/Config.js';

/** The options every command shares, so any command can act on any instance. */
export interface InstanceArgs {
  config: string;
  'data-dir'?: string | undefined;
}

export function withInstanceOptions<T>(y: Argv<T>): Argv<T & InstanceArgs> {
  return y
    .option('config', { type: 'string', default: DEFAULT_CONFIG_PATH, describe: 'YAML config file', normalize: true })
    .option('data-dir', { type: 'string', describe: 'data directory (overrides dataDir in the config)', normalize: true }) as Argv<T & InstanceArgs>;
}

export function instanceConfig(args: InstanceArgs, extra: Omit<ConfigOverrides, 'dataDir'> = {}): Config {
  return loadConfig(args.config, { ...extra, dataDir: args['data-dir'] });
}

/** The data dir alone: `--data-dir` needs no config file, so read-only commands work on a copied instance. */
export function instanceDataDir(args: InstanceArgs): string {
  return args['data-dir'] ? path.resolve(args['data-dir']) : instanceConfig(args).dataDir;
}
