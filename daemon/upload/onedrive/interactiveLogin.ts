import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { CryptoProvider } from '@azure/msal-node';
import type { OneDriveTargetConfig } from '../../config/Config.js';
import { StoreError } from '../../errors.js';
import { DELEGATED_SCOPES, GraphAuth } from './GraphAuth.js';

export interface LoginProgress {
  /** Open this in a browser (on any machine that can reach the redirect, e.g. through `ssh -L PORT:localhost:PORT`). */
  onUrl(url: string): void;
}

/**
 * The delegated sign-in of an auth-code OneDrive target: authorization code
 * with PKCE, the redirect taken on a loopback port, the code exchanged by
 * MSAL, whose cache (with the refresh token the daemon then uses) lands in
 * the target's tokenCacheFile, 0600. Returns the account signed in.
 */
export async function interactiveLogin(target: string, config: OneDriveTargetConfig, progress: LoginProgress, timeoutMs: number): Promise<string> {
  if (config.auth !== 'auth-code')
    throw new StoreError('NOT_DELEGATED', `storage target ${target} uses ${config.auth}: there is nobody to sign in`, { target });
  const auth = new GraphAuth(target, config);
  const app = await auth.app();
  const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
  const state = randomBytes(16).toString('hex');
  const redirectUri = `http://localhost:${config.redirectPort}/`;
  let server: ReturnType<typeof createServer> | undefined;
  const code = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreError('LOGIN_TIMEOUT', `no sign-in arrived within ${timeoutMs / 1000} s`, { target })), timeoutMs);
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', redirectUri);
      const got = url.searchParams.get('code');
      if (url.searchParams.get('state') !== state || !got) {
        const why = url.searchParams.get('error_description') ?? url.searchParams.get('error') ?? 'not the sign-in this command started';
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end(`callvault: ${why}\n`);
        if (url.searchParams.get('error')) {
          clearTimeout(timer);
          reject(new StoreError('LOGIN_REFUSED', `the sign-in was refused: ${why}`, { target }));
        }
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('callvault: signed in; you may close this page.\n');
      clearTimeout(timer);
      resolve(got);
    });
    server.once('error', (err) => {
      clearTimeout(timer);
      reject(new StoreError('LOGIN_PORT', `cannot listen on 127.0.0.1:${config.redirectPort}: ${err.message}`, { target }, { cause: err }));
    });
    server.listen(config.redirectPort, '127.0.0.1', async () => {
      try {
        progress.onUrl(
          await app.getAuthCodeUrl({ scopes: DELEGATED_SCOPES, redirectUri, codeChallenge: challenge, codeChallengeMethod: 'S256', state }),
        );
      } catch (err) {
        clearTimeout(timer);
        reject(err);
      }
    });
  }).finally(() => server?.close());
  const result = await app.acquireTokenByCode({ code, scopes: DELEGATED_SCOPES, redirectUri, codeVerifier: verifier });
  return result.account?.username ?? result.account?.homeAccountId ?? 'unknown account';
}
