import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isScalar, type Document } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { checkSourceEntry } from '../ingest/sourceFilter.js';
import { applySchema, configSchema } from './schema.js';
import { parseListen, type Config } from './Config.js';
import { checkTemplate, isTimeZone } from '../upload/pathTemplate.js';
import { ProfileSet } from '../record/profiles.js';
import { CREDENTIAL_PREFIX } from '../keys/passphrase.js';

export const DEFAULT_CONFIG_PATH = '/etc/callvault/callvault.yaml';

/** Command-line and environment settings that win over the file. */
export interface ConfigOverrides {
  readonly dataDir?: string | undefined;
  readonly controlListen?: string | undefined;
  readonly metricsListen?: string | undefined;
  readonly controlToken?: string | undefined;
}

function lineOf(doc: Document, lines: LineCounter, keyPath: string): number | undefined {
  const parts = keyPath ? keyPath.split('.') : [];
  // Walk up until a node exists: an unknown or missing key points at its parent.
  for (let n = parts.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(parts.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null)?.range;
    if (range) return lines.linePos(range[0]).line;
    if (isScalar(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Parse and validate YAML text; throws ConfigError listing every problem with its line. */
export function parseConfigText(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ path: '', line: e.linePos?.[0]?.line, message: `YAML syntax: ${e.message.split('\n')[0]}` })),
    );
  }
  const located = (problems: ConfigProblem[]) =>
    new ConfigError(
      file,
      problems.map((p) => ({ ...p, line: lineOf(doc, lines, p.path) })),
    );
  const { problems, value } = applySchema(configSchema(), doc.toJS());
  if (problems.length) throw located(problems);
  const config = value as Config;
  const crossProblems = crossCheck(config);
  if (crossProblems.length) throw located(crossProblems);
  const base = path.dirname(file);
  const relative = <T extends string | null>(f: T): T => (f === null || f.startsWith(CREDENTIAL_PREFIX) ? f : (path.resolve(base, f) as T));
  const storage = Object.fromEntries(
    Object.entries(config.storage).map(([name, t]) => [
      name,
      t.type === 'directory'
        ? { ...t, path: path.resolve(base, t.path) }
        : t.type === 'sftp'
          ? { ...t, path: t.path ?? '.', port: t.port ?? 22, privateKeyFile: relative(t.privateKeyFile), passwordFile: relative(t.passwordFile) }
          : t.type === 'smb'
            ? { ...t, path: t.path ?? '.', port: t.port ?? 445, passwordFile: relative(t.passwordFile) }
            : t.type === 's3'
              ? { ...t, path: t.path ?? '', credentialsFile: relative(t.credentialsFile) }
              : { ...t, path: t.path ?? 'callvault', clientSecretFile: relative(t.clientSecretFile), tokenCacheFile: relative(t.tokenCacheFile) },
    ]),
  );
  const { lkm } = config.encryption;
  const encryption = {
    ...config.encryption,
    lkm: {
      ...lkm,
      caFile: relative(lkm.caFile),
      tokenFile: relative(lkm.tokenFile),
      clientCertFile: relative(lkm.clientCertFile),
      clientKeyFile: relative(lkm.clientKeyFile),
    },
  };
  const digest = { ...config.sip.digest, users: config.sip.digest.users.map((u) => ({ ...u, passwordFile: path.resolve(base, u.passwordFile) })) };
  const sip = {
    ...config.sip,
    digest,
    tls: { ...config.sip.tls, certFile: relative(config.sip.tls.certFile), keyFile: relative(config.sip.tls.keyFile) },
  };
  const notifications = {
    ...config.notifications,
    mail: { ...config.notifications.mail, passwordFile: relative(config.notifications.mail.passwordFile) },
  };
  return { ...config, dataDir: path.resolve(base, config.dataDir), storage, encryption, sip, notifications };
}

/** Rules that span keys, which the schema cannot express. */
function crossCheck(config: Config): ConfigProblem[] {
  const problems = ProfileSet.compile(config).problems;
  problems.push(...storageProblems(config.storage));
  const { provider, lkm } = config.encryption;
  if (provider === 'lkm') {
    if (!lkm.url) problems.push({ path: 'encryption.lkm.url', message: 'is required when encryption.provider is lkm' });
    if (!lkm.tokenFile)
      problems.push({
        path: 'encryption.lkm.tokenFile',
        message: 'is required when encryption.provider is lkm (the key manager refuses unauthenticated requests)',
      });
    if (!lkm.clientCertFile !== !lkm.clientKeyFile)
      problems.push({
        path: lkm.clientCertFile ? 'encryption.lkm.clientKeyFile' : 'encryption.lkm.clientCertFile',
        message: 'clientCertFile and clientKeyFile go together (mutual TLS)',
      });
  }
  if (config.media.portMin > config.media.portMax) {
    problems.push({ path: 'media.portMin', message: `must not exceed media.portMax (${config.media.portMax})` });
  }
  for (const [i, entry] of (config.media.allowedSources ?? []).entries()) {
    const why = checkSourceEntry(entry);
    if (why) problems.push({ path: `media.allowedSources.${i}`, message: why });
  }
  for (const [i, entry] of config.sip.allowedSources.entries()) {
    const why = checkSourceEntry(entry);
    if (why) problems.push({ path: `sip.allowedSources.${i}`, message: why });
  }
  const { tls, digest } = config.sip;
  if (digest.realm !== null && digest.users.length === 0)
    problems.push({ path: 'sip.digest.users', message: 'needs at least one user when sip.digest.realm is set' });
  if (tls.listen !== null && (!tls.certFile || !tls.keyFile))
    problems.push({ path: tls.certFile ? 'sip.tls.keyFile' : 'sip.tls.certFile', message: 'is required when sip.tls.listen is set' });
  if (tls.listen !== null) {
    try {
      parseListen(tls.listen);
    } catch (err) {
      problems.push({ path: 'sip.tls.listen', message: (err as Error).message });
    }
  }
  if (config.sip.listen !== null) {
    try {
      parseListen(config.sip.listen);
    } catch (err) {
      problems.push({ path: 'sip.listen', message: (err as Error).message });
    }
  }
  return problems;
}

export function loadConfig(file: string, overrides: ConfigOverrides = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  const c = parseConfigText(text, path.resolve(file));
  return {
    ...c,
    dataDir: overrides.dataDir ? path.resolve(overrides.dataDir) : c.dataDir,
    control: {
      ...c.control,
      listen: overrides.controlListen ?? c.control.listen,
      token: overrides.controlToken ?? c.control.token,
    },
    metrics: { ...c.metrics, listen: overrides.metricsListen ?? c.metrics.listen },
  };
}

/** What each storage target needs by its type, and a template and time zone that can be used. */
function storageProblems(storage: Config['storage']): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [name, t] of Object.entries(storage)) {
    const at = (key: string) => `storage.${name}.${key}`;
    const templateProblem = checkTemplate(t.template);
    if (templateProblem) problems.push({ path: at('template'), message: templateProblem });
    if (!isTimeZone(t.timeZone))
      problems.push({ path: at('timeZone'), message: `${JSON.stringify(t.timeZone)} is not a time zone this runtime knows` });
    const given = t as unknown as Record<string, unknown>;
    const need = {
      directory: ['path'],
      sftp: ['host', 'username', 'hostKey'],
      smb: ['host', 'share', 'username', 'passwordFile'],
      s3: ['bucket'],
      onedrive: ['tenantId', 'clientId', 'driveId'],
    }[t.type];
    for (const key of need)
      if (given[key] === undefined || given[key] === null) problems.push({ path: at(key), message: `is required for a ${t.type} target` });
    if (t.type === 'smb' && /[\\/]/.test(t.share))
      problems.push({ path: at('share'), message: 'is the share name only, without a sub-path (put that in path)' });
    if (t.type === 'smb' && /[\\/:]/.test(t.host)) problems.push({ path: at('host'), message: 'is a host name or address only' });
    if (t.type === 's3' && t.partSizeMiB > t.multipartThresholdMiB)
      problems.push({ path: at('partSizeMiB'), message: `must not exceed multipartThresholdMiB (${t.multipartThresholdMiB})` });
    if (t.type === 's3' && t.endpoint !== null && !/^https?:\/\/[^/]+\/?$/.test(t.endpoint))
      problems.push({ path: at('endpoint'), message: 'is a URL with scheme and host only (http(s)://host[:port]); the bucket goes in bucket' });
    if (t.type === 'onedrive' && t.fragmentKiB % 320 !== 0)
      problems.push({ path: at('fragmentKiB'), message: 'must be a multiple of 320 (Graph takes upload fragments in multiples of 320 KiB)' });
    if (t.type === 'onedrive' && t.auth === 'client-credentials' && t.clientSecretFile === null)
      problems.push({ path: at('clientSecretFile'), message: 'is required for auth: client-credentials' });
    if (t.type === 'onedrive' && t.auth === 'auth-code' && t.tokenCacheFile === null)
      problems.push({
        path: at('tokenCacheFile'),
        message: 'is required for auth: auth-code (the signed-in account and its refresh token live there)',
      });
    if (t.type === 'sftp' && (t.privateKeyFile === null) === (t.passwordFile === null)) {
      problems.push({ path: at('privateKeyFile'), message: 'an sftp target needs exactly one of privateKeyFile and passwordFile' });
    }
    // Keys of another target type are refused, not ignored (defaults, which the schema fills in for every type, aside).
    const only: Readonly<Record<string, readonly string[]>> = {
      hostKey: ['sftp'],
      privateKeyFile: ['sftp'],
      share: ['smb'],
      host: ['sftp', 'smb'],
      username: ['sftp', 'smb'],
      bucket: ['s3'],
      endpoint: ['s3'],
      credentialsFile: ['s3'],
      objectLock: ['s3'],
      tenantId: ['onedrive'],
      clientId: ['onedrive'],
      driveId: ['onedrive'],
      clientSecretFile: ['onedrive'],
      tokenCacheFile: ['onedrive'],
    };
    for (const [key, types] of Object.entries(only)) {
      if (!types.includes(t.type) && given[key] !== undefined && given[key] !== null)
        problems.push({ path: at(key), message: `is for ${types.join(' and ')} targets` });
    }
  }
  return problems;
}
