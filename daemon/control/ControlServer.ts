import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLimitedServer, type ConnectionLimits } from '../net/httpLimits.js';
import type { ListenAddress } from '../config/Config.js';
import { ApiError, CallvaultError, QueryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Recorder } from '../record/Recorder.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { parseQuery, runQuery } from '../store/RecordingQuery.js';
import { parseStartCall } from './validate.js';

export interface ControlServerOptions {
  readonly listen: ListenAddress;
  readonly token: string;
  readonly maxBodyBytes: number;
  readonly limits: ConnectionLimits;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * HTTP/JSON control API. Every /v1 route needs `Authorization: Bearer
 * <token>`; /healthz does not, so a load balancer or systemd can probe it.
 */
export class ControlServer {
  private readonly server: Server;
  private tokenDigest: Buffer;
  private ready = false;

  constructor(
    private readonly opts: ControlServerOptions,
    private readonly recorder: Recorder,
    private readonly index: RecordingIndex,
    private readonly log: Logger,
  ) {
    this.tokenDigest = digest(opts.token);
    // handle() answers every error itself; the catch is the last line of
    // defence so that no request, however malformed, can end the process.
    this.server = createLimitedServer(opts.limits, (req, res) =>
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'control request handler failed');
        if (!res.headersSent) send(res, 500, { error: 'INTERNAL', message: 'internal error' });
        else res.destroy();
      }),
    );
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.listen.port, this.opts.listen.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  setReady(ready: boolean): void {
    this.ready = ready;
  }

  setToken(token: string): void {
    this.tokenDigest = digest(token);
  }

  async close(): Promise<void> {
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private authorized(req: IncomingMessage): boolean {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(digest(m[1] as string), this.tokenDigest);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let pathname = '(unparsed)';
    try {
      const url = parseTarget(req.url);
      pathname = url.pathname;
      if (url.pathname === '/healthz') {
        return send(res, this.ready ? 200 : 503, { status: this.ready ? 'ok' : 'starting' });
      }
      if (!url.pathname.startsWith('/v1/')) throw new ApiError(404, 'NOT_FOUND', `no route ${url.pathname}`);
      if (!this.authorized(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="callvault"');
        throw new ApiError(401, 'UNAUTHORIZED', 'missing or wrong bearer token');
      }
      const parts = url.pathname.split('/').slice(2).map(decodeSegment);
      const [collection, id, ...rest] = parts;
      if (rest.length) throw new ApiError(404, 'NOT_FOUND', `no route ${url.pathname}`);
      if (collection === 'calls' && id === undefined) {
        allow(req, ['POST']);
        const body = parseStartCall(await readJson(req, this.opts.maxBodyBytes));
        const answer = await this.recorder.startCall(body, { address: req.socket.remoteAddress });
        return send(res, answer.recorded ? 201 : 200, answer);
      }
      if (collection === 'calls' && id) {
        allow(req, ['DELETE']);
        return send(res, 202, { recordingId: await this.recorder.endCall(id, 'api') });
      }
      if (collection === 'recordings' && id === undefined) {
        allow(req, ['GET']);
        return send(res, 200, search(this.index, url.searchParams));
      }
      if (collection === 'recordings' && id) {
        allow(req, ['GET']);
        const st = await this.recorder.status(id);
        if (!st) throw new ApiError(404, 'NO_SUCH_RECORDING', `no recording ${id}`, { recordingId: id });
        return send(res, 200, st);
      }
      throw new ApiError(404, 'NOT_FOUND', `no route ${url.pathname}`);
    } catch (err) {
      if (res.headersSent || res.destroyed) return;
      if (!res.socket || res.socket.destroyed || (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        // The client went away mid-request: nothing of ours failed.
        this.log.debug({ path: pathname, method: req.method }, 'control client aborted its request');
        return;
      }
      if (err instanceof ApiError) {
        if (err.status >= 500) this.log.warn({ code: err.code, path: pathname }, err.message);
        if (err.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(err.retryAfterSeconds));
        return send(res, err.status, { error: err.code, message: err.message });
      }
      this.log.error({ err, path: pathname, method: req.method }, 'control request failed');
      const message = err instanceof CallvaultError ? err.message : 'internal error';
      return send(res, 500, { error: 'INTERNAL', message });
    }
  }
}

const QUERY_PARAMS = new Set(['number', 'callId', 'from', 'to', 'state', 'profile', 'limit', 'cursor']);

/** GET /v1/recordings?number=&from=&to=&state=&profile=&callId=&limit=&cursor= */
function search(index: RecordingIndex, params: URLSearchParams) {
  const unknown = [...params.keys()].filter((k) => !QUERY_PARAMS.has(k));
  if (unknown.length)
    throw new ApiError(400, 'BAD_REQUEST', `unknown query parameter ${unknown[0]}; known: ${[...QUERY_PARAMS].join(', ')}`, { field: unknown[0] });
  try {
    return runQuery(index, parseQuery(Object.fromEntries(params)));
  } catch (err) {
    if (err instanceof QueryError) throw new ApiError(400, 'BAD_REQUEST', err.message, { field: err.field });
    throw err;
  }
}

/**
 * The request target as a URL. Only origin-form (`/path?query`) is served:
 * an absolute or authority form, or anything `URL` cannot parse, is a 400.
 */
function parseTarget(target: string | undefined): URL {
  if (!target?.startsWith('/') || target.startsWith('//')) {
    throw new ApiError(400, 'BAD_REQUEST', 'request target must be a path such as /v1/calls');
  }
  try {
    return new URL(target, 'http://control');
  } catch {
    throw new ApiError(400, 'BAD_REQUEST', 'request target is not a valid path');
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, 'BAD_REQUEST', 'malformed percent-encoding in the path');
  }
}

function allow(req: IncomingMessage, methods: string[]): void {
  if (!methods.includes(req.method ?? '')) throw new ApiError(405, 'METHOD_NOT_ALLOWED', `use ${methods.join(' or ')}`);
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = () => new ApiError(400, 'BODY_TOO_LARGE', `request body exceeds ${limit} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > limit) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new ApiError(400, 'BAD_JSON', `body is not valid JSON: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
