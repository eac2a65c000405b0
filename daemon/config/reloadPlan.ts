import type { Config } from './Config.js';

export interface ReloadPlan {
  /** The config to run with: the new one, less what only a restart applies. */
  readonly config: Config;
  /** Sections that changed but keep their running values until a restart. */
  readonly needRestart: string[];
}

/** What the running process may take from `next` now (SIGHUP) and what waits for a restart. */
export function planReload(running: Config, next: Config): ReloadPlan {
  const needRestart: string[] = [];
  if (next.dataDir !== running.dataDir) needRestart.push('dataDir');
  for (const key of ['control', 'metrics', 'media', 'signing', 'pool'] as const) {
    if (JSON.stringify(next[key]) !== JSON.stringify(running[key])) needRestart.push(key);
  }
  // The SRC allow-list applies at once; where SIP listens waits for a restart.
  const sipListener = ({ allowedSources: _live, ...fixed }: Config['sip']) => JSON.stringify(fixed);
  if (sipListener(next.sip) !== sipListener(running.sip)) needRestart.push('sip (listener)');
  const sip = { ...running.sip, allowedSources: next.sip.allowedSources };
  const { provider, lkm } = running.encryption;
  if (next.encryption.provider !== provider || JSON.stringify(next.encryption.lkm) !== JSON.stringify(lkm))
    needRestart.push('encryption.provider/lkm');
  const { dataDir, control, metrics, media, signing, pool } = running;
  return {
    config: { ...next, dataDir, control, metrics, media, signing, pool, sip, encryption: { ...next.encryption, provider, lkm } },
    needRestart,
  };
}
