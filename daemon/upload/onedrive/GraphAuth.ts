import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ConfidentialClientApplication,
  type Configuration,
  type ICachePlugin,
  LogLevel,
  PublicClientApplication,
  type TokenCacheContext,
} from '@azure/msal-node';
import type { OneDriveTargetConfig } from '../../config/Config.js';
import { StoreError } from '../../errors.js';
import { firstLine } from '../../keys/passphrase.js';

/** Delegated scopes: files the signed-in user can write, and a refresh token. */
export const DELEGATED_SCOPES = ['Files.ReadWrite.All', 'offline_access'];

/**
 * Access tokens for Microsoft Graph through MSAL. `client-credentials`
 * (app-only, the daemon's own identity: best for a service) asks for
 * `<graph>/.default`; `auth-code` (delegated, as PBX modules do) uses the
 * account `callvault storage login` signed in, refreshed silently by MSAL.
 * MSAL's token cache is persisted in `tokenCacheFile` (needed for auth-code;
 * app-only tokens are simply asked for again), mode 0600, written atomically. The authority and Graph URLs are config, so a
 * national cloud is only other URLs.
 */
export class GraphAuth {
  #app: ConfidentialClientApplication | PublicClientApplication | null = null;

  constructor(
    readonly target: string,
    private readonly config: OneDriveTargetConfig,
  ) {}

  async token(): Promise<string> {
    const app = await this.app();
    try {
      if (this.config.auth === 'client-credentials') {
        const r = await (app as ConfidentialClientApplication).acquireTokenByClientCredential({ scopes: [`${graphResource(this.config)}/.default`] });
        if (!r?.accessToken) throw new Error('no access token in the answer');
        return r.accessToken;
      }
      const [account] = await app.getTokenCache().getAllAccounts();
      if (!account)
        throw new StoreError(
          'ONEDRIVE_LOGIN_NEEDED',
          `storage target ${this.target}: nobody is signed in; run callvault storage login ${this.target}`,
          {
            target: this.target,
          },
        );
      const r = await app.acquireTokenSilent({ account, scopes: DELEGATED_SCOPES });
      return r.accessToken;
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const e = err as Error & { errorCode?: string };
      throw new StoreError(
        'ONEDRIVE_AUTH',
        `storage target ${this.target}: no access token from ${this.config.authorityUrl} (${e.errorCode ?? e.name}): ${e.message.split('\n')[0]}`,
        { target: this.target, errorCode: e.errorCode },
        { cause: err },
      );
    }
  }

  /** The MSAL application (made once): confidential with the client secret, public for a delegated login without one. */
  async app(): Promise<ConfidentialClientApplication | PublicClientApplication> {
    if (this.#app) return this.#app;
    const c = this.config;
    const clientSecret = c.clientSecretFile ? await firstLine(c.clientSecretFile, `client secret file of storage target ${this.target}`) : null;
    const configuration: Configuration = {
      auth: {
        clientId: c.clientId,
        authority: `${c.authorityUrl.replace(/\/$/, '')}/${c.tenantId}`,
        knownAuthorities: [new URL(c.authorityUrl).host],
        ...(clientSecret ? { clientSecret } : {}),
      },
      ...(c.tokenCacheFile ? { cache: { cachePlugin: fileCache(c.tokenCacheFile) } } : {}),
      system: { loggerOptions: { logLevel: LogLevel.Error, piiLoggingEnabled: false, loggerCallback: () => undefined } },
    };
    this.#app = clientSecret ? new ConfidentialClientApplication(configuration) : new PublicClientApplication(configuration);
    return this.#app;
  }
}

/** The resource a `.default` scope names: Graph's origin. */
export function graphResource(c: Pick<OneDriveTargetConfig, 'graphUrl'>): string {
  return new URL(c.graphUrl).origin;
}

/** MSAL's token cache in a 0600 file (its directory 0700), replaced atomically. */
function fileCache(file: string): ICachePlugin {
  return {
    async beforeCacheAccess(ctx: TokenCacheContext) {
      const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (text) ctx.tokenCache.deserialize(text);
    },
    async afterCacheAccess(ctx: TokenCacheContext) {
      if (!ctx.cacheHasChanged) return;
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.tmp-${process.pid}`;
      await writeFile(tmp, ctx.tokenCache.serialize(), { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, file);
    },
  };
}
