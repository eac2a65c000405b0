import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { mkdir, open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import path from 'node:path';
import type { ListenAddress } from '../config/Config.js';
import { writeFileDurably } from '../fsutil.js';
import { generateSigningIdentity } from '../keys/certificate.js';
import { decryptPkcs8, encryptPkcs8 } from '../keys/encryptedPkcs8.js';
import type { LkmKekBody } from '../keys/kek/LkmClient.js';
import { toPem } from '../keys/pem.js';
import type { Logger } from '../log.js';
import { isRecordingId } from '../record/recordingId.js';
import { unwrapDek } from '../seal/envelope.js';
import { UnwrapLimiter, type UnwrapLimits } from './UnwrapLimiter.js';
import { LKM_ROLES, type LkmRole } from './roles.js';

interface HeldKek extends Omit<LkmKekBody, 'publicKeyPem'> {
  readonly publicKeyPem: string;
  readonly privateKey: KeyObject;
}

const MAX_BODY = 64 * 1024;
const MAX_PURPOSE = 200;

/** What each role may do: the recorder fetches the public KEK and nothing else. */
const ALLOWED: Readonly<Record<string, readonly LkmRole[]>> = {
  'GET /v1/kek': ['recorder', 'unwrap', 'admin'],
  'POST /v1/unwrap': ['unwrap'],
  'POST /v1/rotate': ['admin'],
};

export interface KeyManagerOptions {
  readonly dir: string;
  readonly passphrase: string;
  /** One bearer token per role. */
  readonly tokens: Readonly<Record<LkmRole, string>>;
  readonly keyBits: number;
  readonly limits: UnwrapLimits;
  /** Mutual TLS: clients must present a certificate that chains to this CA (PEM). */
  readonly clientCa?: string | undefined;
  readonly log: Logger;
}

/** Who asked: the role its token gives, where from, and its TLS client certificate when mutual TLS is on. */
interface Caller {
  readonly role: LkmRole;
  readonly address: string;
  readonly certificate: string | null;
}

/**
 * The reference external key manager (`callvault lkm serve`): holds private
 * KEKs (encrypted PKCS#8 under its own passphrase, in its own directory),
 * publishes the current public KEK and unwraps data keys, over HTTPS only.
 * Each role has its own credential — the recorder's fetches the public KEK
 * and cannot unwrap — unwraps are rate- and volume-limited, each names the
 * recording it is for, and each (allowed or not) is appended to
 * `unwrap-audit.jsonl` before the data key leaves. callvault never sees a
 * private KEK.
 */
export class KeyManager {
  private keks: HeldKek[] = [];
  private server: https.Server | undefined;
  private readonly limiter: UnwrapLimiter;
  private readonly tokens: readonly (readonly [LkmRole, Buffer])[];

  private constructor(
    private readonly opts: KeyManagerOptions,
    private readonly auditFile: FileHandle,
  ) {
    this.limiter = new UnwrapLimiter(opts.limits);
    this.tokens = LKM_ROLES.map((r) => [r, Buffer.from(`Bearer ${opts.tokens[r]}`)] as const);
  }

  static async open(opts: KeyManagerOptions): Promise<KeyManager> {
    await mkdir(path.join(opts.dir, 'keks'), { recursive: true, mode: 0o700 });
    const km = new KeyManager(opts, await open(path.join(opts.dir, 'unwrap-audit.jsonl'), 'a', 0o600));
    await km.loadKeks();
    if (!km.keks.length) await km.rotate();
    return km;
  }

  private get dir(): string {
    return this.opts.dir;
  }

  private get log(): Logger {
    return this.opts.log;
  }

  private async loadKeks(): Promise<void> {
    const dir = path.join(this.dir, 'keks');
    const held: HeldKek[] = [];
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
      const body = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as LkmKekBody;
      const keyFile = path.join(dir, `${body.id}.p8.pem`);
      held.push({ ...body, privateKey: decryptPkcs8(await readFile(keyFile, 'utf8'), this.opts.passphrase, keyFile) });
    }
    this.keks = held.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** A new current KEK; older ones still unwrap what they wrapped. */
  async rotate(): Promise<LkmKekBody> {
    const now = new Date();
    const id = `lkm-${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`;
    const { keyBits } = this.opts;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: keyBits });
    const dir = path.join(this.dir, 'keks');
    await writeFileDurably(
      path.join(dir, `${id}.p8.pem`),
      encryptPkcs8(privateKey.export({ type: 'pkcs8', format: 'der' }), this.opts.passphrase),
      0o600,
    );
    const body: LkmKekBody = {
      id,
      bits: keyBits,
      createdAt: now.toISOString(),
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    };
    await writeFileDurably(path.join(dir, `${id}.json`), `${JSON.stringify(body, null, 2)}\n`, 0o600);
    this.keks.push({ ...body, privateKey });
    this.log.info({ kekId: id, bits: keyBits }, 'key manager KEK made');
    return body;
  }

  current(): LkmKekBody {
    const { privateKey: _p, ...body } = this.keks.at(-1)!;
    return body;
  }

  /** The TLS identity, made at first start: a self-signed certificate for the names clients use. */
  private async tlsIdentity(): Promise<{ key: string; cert: string }> {
    const keyFile = path.join(this.dir, 'tls-key.pem');
    const certFile = path.join(this.dir, 'tls-cert.pem');
    const existing = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]).catch(() => undefined);
    if (existing) return { key: existing[0], cert: existing[1] };
    const g = await generateSigningIdentity('callvault key manager', 2048, new Date(), { dns: ['localhost'], ips: ['127.0.0.1', '::1'] });
    const key = toPem('PRIVATE KEY', g.pkcs8Der);
    await writeFileDurably(keyFile, key, 0o600);
    await writeFileDurably(certFile, g.certificatePem, 0o644);
    return { key, cert: g.certificatePem };
  }

  async listen(addr: ListenAddress): Promise<AddressInfo> {
    const tls = await this.tlsIdentity();
    const mutual = this.opts.clientCa ? { requestCert: true, rejectUnauthorized: true, ca: this.opts.clientCa } : {};
    this.server = https.createServer({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2', ...mutual }, (req, res) => {
      const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      const role = this.roleOf(req.headers.authorization);
      if (!role) {
        this.log.warn({ remote: req.socket.remoteAddress, route: req.url }, 'key manager: request without a valid token');
        return reply(401, { error: 'a valid bearer token is required' });
      }
      const peer = (req.socket as TLSSocket).getPeerCertificate?.();
      const caller: Caller = {
        role,
        address: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`,
        certificate: peer?.subject ? `${peer.subject.CN ?? ''} (SHA-256 ${peer.fingerprint256})` : null,
      };
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      req.on('end', () => {
        void this.route(caller, req.method ?? '', req.url ?? '', Buffer.concat(chunks), size > MAX_BODY)
          .then(([status, body, headers]) => reply(status, body, headers))
          .catch((err: Error) => reply(500, { error: err.message }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(addr.port, addr.host, resolve);
    });
    return this.server.address() as AddressInfo;
  }

  /** The role whose token this is (each compared in constant time), or undefined. */
  private roleOf(authorization: string | undefined): LkmRole | undefined {
    const auth = Buffer.from(authorization ?? '');
    let found: LkmRole | undefined;
    for (const [role, expected] of this.tokens) if (auth.length === expected.length && timingSafeEqual(auth, expected)) found = role;
    return found;
  }

  private async route(
    caller: Caller,
    method: string,
    url: string,
    body: Buffer,
    tooBig: boolean,
  ): Promise<[number, unknown, Record<string, string>?]> {
    const allowed = ALLOWED[`${method} ${url}`];
    if (!allowed) return [404, { error: `no route ${method} ${url}` }];
    if (!allowed.includes(caller.role)) {
      this.log.warn({ role: caller.role, remote: caller.address, route: `${method} ${url}` }, 'key manager: credential not allowed here');
      if (url === '/v1/unwrap') await this.audit(caller, { outcome: 'forbidden' });
      return [403, { error: `the ${caller.role} credential may not ${method} ${url}` }];
    }
    if (url === '/v1/kek') return [200, this.current()];
    if (url === '/v1/rotate') return [200, await this.rotate()];
    if (tooBig) return [413, { error: 'request too large' }];
    return this.unwrap(caller, body);
  }

  private async unwrap(caller: Caller, body: Buffer): Promise<[number, unknown, Record<string, string>?]> {
    let req: { kekId?: unknown; wrappedDek?: unknown; recordingId?: unknown; purpose?: unknown };
    try {
      req = JSON.parse(body.toString('utf8')) as typeof req;
    } catch {
      return [400, { error: 'body is not JSON' }];
    }
    if (typeof req.kekId !== 'string' || typeof req.wrappedDek !== 'string') return [400, { error: 'kekId and wrappedDek (base64) are required' }];
    if (typeof req.recordingId !== 'string' || !isRecordingId(req.recordingId))
      return [400, { error: 'recordingId (the recording the data key is for) is required' }];
    if (req.purpose !== undefined && (typeof req.purpose !== 'string' || req.purpose.length > MAX_PURPOSE))
      return [400, { error: `purpose must be a string of at most ${MAX_PURPOSE} characters` }];
    const wrapped = Buffer.from(req.wrappedDek, 'base64');
    const what = {
      kekId: req.kekId,
      recordingId: req.recordingId,
      wrappedDekSha256: createHash('sha256').update(wrapped).digest('hex'),
      purpose: req.purpose ?? null,
    };
    const wait = this.limiter.take();
    if (wait !== null) {
      await this.audit(caller, { ...what, outcome: 'rate-limited' });
      this.log.warn({ ...what, remote: caller.address, retryAfterSeconds: wait }, 'key manager: unwrap refused, over the rate or volume limit');
      return [429, { error: `too many unwraps: over the limit, try again in ${wait} s` }, { 'retry-after': String(wait) }];
    }
    const kek = this.keks.find((k) => k.id === req.kekId);
    if (!kek) return [404, { error: `unknown KEK ${req.kekId}` }];
    let dek: Buffer;
    try {
      dek = unwrapDek(kek.privateKey, wrapped, kek.id);
    } catch (err) {
      await this.audit(caller, { ...what, outcome: 'not-unwrappable' });
      return [422, { error: (err as Error).message }];
    }
    // On record before the key leaves: an unwrap that cannot be audited does not happen.
    await this.audit(caller, { ...what, outcome: 'unwrapped' });
    this.log.info({ ...what, role: caller.role, remote: caller.address, client: caller.certificate }, 'key manager: data key unwrapped');
    const reply = dek.toString('base64');
    dek.fill(0);
    return [200, { dek: reply }];
  }

  /** One line of `unwrap-audit.jsonl`, written and fsynced. */
  private async audit(caller: Caller, entry: Record<string, unknown>): Promise<void> {
    const line = `${JSON.stringify({ at: new Date().toISOString(), role: caller.role, client: caller.address, certificate: caller.certificate, ...entry })}\n`;
    await this.auditFile.write(line);
    await this.auditFile.datasync();
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.auditFile.close();
  }
}
