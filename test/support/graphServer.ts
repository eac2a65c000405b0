import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Socket } from 'node:net';
import path from 'node:path';
import { QuickXorHash } from '../../daemon/upload/onedrive/quickXorHash.js';
import { selfSigned } from './pki.js';

const FRAGMENT_UNIT = 320 * 1024;
const MAX_FRAGMENT = 60 * 1024 * 1024;
/** OneDrive's forbidden name characters, and names it refuses. */
const BAD_NAME = /["*:<>?\\|]|^[ ~]|[. ]$/;

/** What happens to the next fragment PUT: none (it goes through), a throttle, a lost answer (416), a dropped session (404), a dropped connection. */
export type UploadFault = 'none' | '429' | '503' | '416' | '404' | 'cut';

interface Item {
  name: string;
  folder: boolean;
  content: Buffer | null;
  modified: string;
  id: string;
}

interface Session {
  path: string;
  total: number | null;
  received: Buffer[];
  size: number;
  expires: number;
}

export interface FragmentPut {
  readonly session: string;
  readonly start: number;
  readonly end: number;
  readonly total: number;
  readonly at: number;
  readonly status: number;
}

/**
 * Microsoft Graph and its sign-in service on one HTTPS loopback port, as
 * strict as the documentation: a bearer token the identity side issued on
 * every Graph call and never on an upload URL (401 there), fragments in
 * order (416 otherwise), each a multiple of 320 KiB but the last and under
 * 60 MiB (400), the Content-Range total the same every time (400), sessions
 * that expire and are extended by each fragment (404 after), OneDrive's
 * name rules (400), and faults on request. The identity side serves OpenID
 * discovery, client credentials, authorization code with PKCE and refresh.
 */
export class GraphServer {
  readonly items = new Map<string, Item>([['', { name: 'root', folder: true, content: null, modified: new Date().toISOString(), id: 'root' }]]);
  readonly sessions = new Map<string, Session>();
  readonly puts: FragmentPut[] = [];
  readonly faults: UploadFault[] = [];
  /** Every Authorization header a Graph call (not an upload URL) carried, and which grant its token came from. */
  readonly grants: string[] = [];
  readonly tenant = 'contoso-test';
  readonly clientId = 'f6a2c1de-0000-4000-8000-callvault000';
  readonly clientSecret = `secret-${randomBytes(8).toString('hex')}`;
  readonly driveId = 'b!drive-test';
  /** Refuse every connection (the service is unreachable). */
  down = false;
  sessionLifetimeMs = 15 * 60_000;
  #tokens = new Map<string, string>();
  #codes = new Map<string, { challenge: string; nonce: string | null }>();
  #sockets = new Set<Socket>();
  #server: ReturnType<typeof createServer> | null = null;
  port = 0;
  certFile = '';

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(dir: string): Promise<void> {
    const keyFile = path.join(dir, 'graph-key.pem');
    this.certFile = path.join(dir, 'graph-cert.pem');
    selfSigned(keyFile, this.certFile, '/CN=127.0.0.1', 2, 'IP:127.0.0.1');
    this.#server = createServer({ key: await readFile(keyFile), cert: await readFile(this.certFile) }, (req, res) => {
      this.#handle(req, res).catch((err: Error) => json(res, 500, { error: { code: 'generalException', message: err.message } }));
    });
    this.#server.on('connection', (s: Socket) => {
      if (this.down) {
        s.destroy();
        return;
      }
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as { port: number }).port;
  }

  /** Make the service unreachable (every open connection dropped) or reachable again. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) for (const s of this.#sockets) s.destroy();
  }

  expireSessions(): void {
    for (const s of this.sessions.values()) s.expires = 0;
  }

  file(p: string): Buffer | null {
    return this.items.get(p.toLowerCase())?.content ?? null;
  }

  paths(): string[] {
    return [...this.items.keys()].filter((k) => k);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.#server?.close(r));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await readBody(req);
    if (url.pathname.startsWith('/upload/')) return this.#upload(req, res, url, body);
    if (url.pathname.startsWith(`/${this.tenant}/`)) return this.#identity(req, res, url, body);
    if (!url.pathname.startsWith('/v1.0/')) return json(res, 404, { error: { code: 'itemNotFound', message: 'no such route' } });
    const grant = this.#tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    if (!grant) return json(res, 401, { error: { code: 'InvalidAuthenticationToken', message: 'Access token is empty or invalid.' } });
    this.grants.push(grant);
    return this.#graph(req, res, url, body);
  }

  #identity(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    const base = `${this.url}/${this.tenant}`;
    if (url.pathname.endsWith('/.well-known/openid-configuration'))
      return json(res, 200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        issuer: `${base}/v2.0`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
      });
    if (url.pathname.endsWith('/oauth2/v2.0/authorize')) {
      // The user signs in at once: straight back to the app with a code.
      const code = randomBytes(12).toString('hex');
      this.#codes.set(code, { challenge: url.searchParams.get('code_challenge') ?? '', nonce: url.searchParams.get('nonce') });
      const back = new URL(url.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.toString() }).end();
      return;
    }
    if (url.pathname.endsWith('/oauth2/v2.0/token') && req.method === 'POST') {
      const form = new URLSearchParams(body.toString());
      if (form.get('client_id') !== this.clientId)
        return json(res, 400, { error: 'unauthorized_client', error_description: 'AADSTS700016: unknown app' });
      const grant = form.get('grant_type');
      if (grant === 'client_credentials') {
        if (form.get('client_secret') !== this.clientSecret)
          return json(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
        return json(res, 200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: this.#issue('client_credentials') });
      }
      if (grant === 'authorization_code' || grant === 'refresh_token') {
        let nonce: string | null = null;
        if (grant === 'authorization_code') {
          const c = this.#codes.get(form.get('code') ?? '');
          this.#codes.delete(form.get('code') ?? '');
          const verifier = form.get('code_verifier') ?? '';
          if (!c || createHash('sha256').update(verifier).digest('base64url') !== c.challenge)
            return json(res, 400, { error: 'invalid_grant', error_description: 'AADSTS70008: code or PKCE verifier wrong' });
          nonce = c.nonce;
        } else if (!this.#tokens.has(`refresh:${form.get('refresh_token')}`)) {
          return json(res, 400, { error: 'invalid_grant', error_description: 'AADSTS700082: refresh token expired' });
        }
        const refresh = randomBytes(16).toString('hex');
        this.#tokens.set(`refresh:${refresh}`, 'refresh');
        const now = Math.floor(Date.now() / 1000);
        const claims = {
          aud: this.clientId,
          iss: `${this.url}/${this.tenant}/v2.0`,
          iat: now,
          nbf: now,
          exp: now + 3600,
          oid: 'user-oid-1',
          sub: 'user-sub-1',
          tid: 'tenant-id-1',
          preferred_username: 'recorder@contoso.test',
          name: 'Recorder',
          ...(nonce ? { nonce } : {}),
        };
        const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return json(res, 200, {
          token_type: 'Bearer',
          scope: 'Files.ReadWrite.All',
          expires_in: 3599,
          ext_expires_in: 3599,
          access_token: this.#issue(grant),
          refresh_token: refresh,
          id_token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`,
          client_info: b64({ uid: 'user-oid-1', utid: 'tenant-id-1' }),
        });
      }
      return json(res, 400, { error: 'unsupported_grant_type' });
    }
    json(res, 404, { error: 'not_found' });
  }

  #issue(grant: string): string {
    const t = randomBytes(24).toString('base64url');
    this.#tokens.set(t, grant);
    return t;
  }

  #graph(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    const m = /^\/v1\.0\/drives\/([^/]+)\/root(?::\/(.*?):)?(\/children|\/createUploadSession)?$/.exec(url.pathname);
    if (!m || decodeURIComponent(m[1]!) !== this.driveId)
      return json(res, 404, { error: { code: 'itemNotFound', message: 'The resource could not be found.' } });
    const rel = m[2] ? m[2].split('/').map(decodeURIComponent).join('/') : '';
    const key = rel.toLowerCase();
    const item = this.items.get(key);
    const action = m[3] ?? '';
    const notFound = () => json(res, 404, { error: { code: 'itemNotFound', message: 'The resource could not be found.' } });
    if (rel.length > 400) return json(res, 400, { error: { code: 'invalidRequest', message: 'path too long' } });
    if (action === '/children' && req.method === 'GET') {
      if (!item?.folder) return notFound();
      const value = [...this.items.entries()].filter(([k]) => k && parentOf(k) === key).map(([k, i]) => view(k, i));
      return json(res, 200, { value });
    }
    if (action === '/children' && req.method === 'POST') {
      if (!item?.folder) return notFound();
      const { name } = JSON.parse(body.toString()) as { name: string };
      if (BAD_NAME.test(name)) return json(res, 400, { error: { code: 'invalidRequest', message: `bad name ${name}` } });
      const child = key ? `${key}/${name.toLowerCase()}` : name.toLowerCase();
      if (this.items.has(child)) return json(res, 409, { error: { code: 'nameAlreadyExists', message: 'exists' } });
      this.items.set(child, { name, folder: true, content: null, modified: new Date().toISOString(), id: randomBytes(6).toString('hex') });
      return json(res, 201, view(child, this.items.get(child)!));
    }
    if (action === '/createUploadSession' && req.method === 'POST') {
      const name = rel.split('/').pop()!;
      if (BAD_NAME.test(name)) return json(res, 400, { error: { code: 'invalidRequest', message: `bad name ${name}` } });
      if (!this.items.get(parentOf(key))?.folder) return notFound();
      const id = randomBytes(12).toString('hex');
      this.sessions.set(id, { path: rel, total: null, received: [], size: 0, expires: Date.now() + this.sessionLifetimeMs });
      return json(res, 200, {
        uploadUrl: `${this.url}/upload/${id}`,
        expirationDateTime: new Date(Date.now() + this.sessionLifetimeMs).toISOString(),
        nextExpectedRanges: ['0-'],
      });
    }
    if (action) return notFound();
    if (req.method === 'GET') return item ? json(res, 200, view(key, item)) : notFound();
    if (req.method === 'DELETE') {
      if (!item) return notFound();
      for (const k of [...this.items.keys()]) if (k === key || k.startsWith(`${key}/`)) this.items.delete(k);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'PATCH') {
      if (!item) return notFound();
      const { name } = JSON.parse(body.toString()) as { name: string };
      if (BAD_NAME.test(name)) return json(res, 400, { error: { code: 'invalidRequest', message: `bad name ${name}` } });
      const parent = parentOf(key);
      const to = parent ? `${parent}/${name.toLowerCase()}` : name.toLowerCase();
      if (this.items.has(to)) return json(res, 409, { error: { code: 'nameAlreadyExists', message: 'exists' } });
      for (const [k, v] of [...this.items.entries()])
        if (k === key || k.startsWith(`${key}/`)) {
          this.items.delete(k);
          this.items.set(to + k.slice(key.length), k === key ? { ...v, name } : v);
        }
      return json(res, 200, view(to, this.items.get(to)!));
    }
    json(res, 405, { error: { code: 'notSupported', message: req.method } });
  }

  #upload(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    const id = url.pathname.slice('/upload/'.length);
    const s = this.sessions.get(id);
    if (req.headers.authorization) return json(res, 401, { error: { code: 'unauthenticated', message: 'no Authorization header on an upload URL' } });
    if (!s || s.expires < Date.now()) {
      this.sessions.delete(id);
      return json(res, 404, { error: { code: 'itemNotFound', message: 'The upload session was not found.' } });
    }
    const ranges = { nextExpectedRanges: [`${s.size}-`], expirationDateTime: new Date(s.expires).toISOString() };
    if (req.method === 'GET') return json(res, 200, ranges);
    if (req.method === 'DELETE') {
      this.sessions.delete(id);
      res.writeHead(204).end();
      return;
    }
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
    const record = (status: number) =>
      m && this.puts.push({ session: id, start: Number(m[1]), end: Number(m[2]), total: Number(m[3]), at: Date.now(), status });
    if (!m) {
      record(400);
      return json(res, 400, { error: { code: 'invalidRequest', message: 'Content-Range missing or malformed' } });
    }
    const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const fault = this.faults.shift();
    if (fault === 'cut') {
      record(0);
      req.socket.destroy();
      return;
    }
    if (fault === '429' || fault === '503') {
      record(Number(fault));
      res.writeHead(Number(fault), { 'content-type': 'application/json', ...(fault === '429' ? { 'retry-after': '1' } : {}) });
      res.end(JSON.stringify({ error: { code: fault === '429' ? 'activityLimitReached' : 'serviceNotAvailable', message: 'try later' } }));
      return;
    }
    if (fault === '404') {
      record(404);
      this.sessions.delete(id);
      return json(res, 404, { error: { code: 'itemNotFound', message: 'The upload session was not found.' } });
    }
    const problem =
      s.total !== null && total !== s.total
        ? 'the Content-Range total changed'
        : end - start + 1 !== body.length
          ? 'Content-Range does not match the body'
          : body.length >= MAX_FRAGMENT
            ? 'fragment of 60 MiB or more'
            : end + 1 < total && body.length % FRAGMENT_UNIT !== 0
              ? 'fragment not a multiple of 320 KiB'
              : null;
    if (problem) {
      record(400);
      return json(res, 400, { error: { code: 'invalidRequest', message: problem } });
    }
    if (start !== s.size) {
      record(416);
      return json(res, 416, {
        error: { code: 'invalidRange', message: 'The uploaded fragment overlaps with data that has already been received.' },
        ...ranges,
      });
    }
    s.total = total;
    s.received.push(body);
    s.size += body.length;
    s.expires = Date.now() + this.sessionLifetimeMs;
    const complete = s.size >= total;
    const key = s.path.toLowerCase();
    if (complete) {
      this.sessions.delete(id);
      const content = Buffer.concat(s.received);
      this.items.set(key, {
        name: s.path.split('/').pop()!,
        folder: false,
        content,
        modified: new Date().toISOString(),
        id: randomBytes(6).toString('hex'),
      });
    }
    if (fault === '416') {
      // The bytes arrived but the answer was lost: the client hears 416 and must ask what the session has (or find the file made).
      record(416);
      return json(res, 416, { error: { code: 'invalidRange', message: 'already received' } });
    }
    if (!complete) {
      record(202);
      return json(res, 202, { nextExpectedRanges: [`${s.size}-`], expirationDateTime: new Date(s.expires).toISOString() });
    }
    record(201);
    json(res, 201, view(key, this.items.get(key)!));
  }
}

function view(key: string, i: Item) {
  return {
    id: i.id,
    name: i.name,
    lastModifiedDateTime: i.modified,
    size: i.content?.length ?? 0,
    ...(i.folder
      ? { folder: { childCount: 0 } }
      : { file: { mimeType: 'application/octet-stream', hashes: { quickXorHash: new QuickXorHash().update(i.content!).digest() } } }),
    parentReference: { path: `/drive/root:/${parentOf(key)}` },
  };
}

function parentOf(key: string): string {
  const i = key.lastIndexOf('/');
  return i < 0 ? '' : key.slice(0, i);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
