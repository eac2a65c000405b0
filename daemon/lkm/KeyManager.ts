import { generateKeyPairSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ListenAddress } from '../config/Config.js';
import { writeFileDurably } from '../fsutil.js';
import { generateSigningIdentity } from '../keys/certificate.js';
import { decryptPkcs8, encryptPkcs8 } from '../keys/encryptedPkcs8.js';
import type { LkmKekBody } from '../keys/kek/LkmClient.js';
import { toPem } from '../keys/pem.js';
import type { Logger } from '../log.js';
import { unwrapDek } from '../seal/envelope.js';

interface HeldKek extends Omit<LkmKekBody, 'publicKeyPem'> {
  readonly publicKeyPem: string;
  readonly privateKey: KeyObject;
}

const MAX_BODY = 64 * 1024;

/**
 * The reference external key manager (`callvault lkm serve`): holds private
 * KEKs (encrypted PKCS#8 under its own passphrase, in its own directory),
 * publishes the current public KEK and unwraps data keys for callers with
 * the bearer token, over HTTPS only. callvault never sees a private KEK.
 */
export class KeyManager {
  private keks: HeldKek[] = [];
  private server: https.Server | undefined;

  private constructor(
    private readonly dir: string,
    private readonly passphrase: string,
    private readonly token: Buffer,
    private readonly keyBits: number,
    private readonly log: Logger,
  ) {}

  static async open(opts: { dir: string; passphrase: string; token: string; keyBits: number; log: Logger }): Promise<KeyManager> {
    const km = new KeyManager(opts.dir, opts.passphrase, Buffer.from(opts.token), opts.keyBits, opts.log);
    await mkdir(path.join(opts.dir, 'keks'), { recursive: true, mode: 0o700 });
    await km.loadKeks();
    if (!km.keks.length) await km.rotate();
    return km;
  }

  private async loadKeks(): Promise<void> {
    const dir = path.join(this.dir, 'keks');
    const held: HeldKek[] = [];
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
      const body = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as LkmKekBody;
      const keyFile = path.join(dir, `${body.id}.p8.pem`);
      held.push({ ...body, privateKey: decryptPkcs8(await readFile(keyFile, 'utf8'), this.passphrase, keyFile) });
    }
    this.keks = held.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** A new current KEK; older ones still unwrap what they wrapped. */
  async rotate(): Promise<LkmKekBody> {
    const now = new Date();
    const id = `lkm-${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: this.keyBits });
    const dir = path.join(this.dir, 'keks');
    await writeFileDurably(path.join(dir, `${id}.p8.pem`), encryptPkcs8(privateKey.export({ type: 'pkcs8', format: 'der' }), this.passphrase), 0o600);
    const body: LkmKekBody = { id, bits: this.keyBits, createdAt: now.toISOString(), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
    await writeFileDurably(path.join(dir, `${id}.json`), JSON.stringify(body, null, 2) + '\n', 0o600);
    this.keks.push({ ...body, privateKey });
    this.log.info({ kekId: id, bits: this.keyBits }, 'key manager KEK made');
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
    this.server = https.createServer({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' }, (req, res) => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const auth = Buffer.from(req.headers.authorization ?? '');
      const expected = Buffer.concat([Buffer.from('Bearer '), this.token]);
      if (auth.length !== expected.length || !timingSafeEqual(auth, expected)) {
        this.log.warn({ remote: req.socket.remoteAddress, route: req.url }, 'key manager: request without a valid token');
        return reply(401, { error: 'a valid bearer token is required' });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      req.on('end', () => {
        void this.route(req.method ?? '', req.url ?? '', Buffer.concat(chunks), size > MAX_BODY)
          .then(([status, body]) => reply(status, body))
          .catch((err: Error) => reply(500, { error: err.message }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(addr.port, addr.host, resolve);
    });
    return this.server.address() as AddressInfo;
  }

  private async route(method: string, url: string, body: Buffer, tooBig: boolean): Promise<[number, unknown]> {
    if (method === 'GET' && url === '/v1/kek') return [200, this.current()];
    if (method === 'POST' && url === '/v1/rotate') return [200, await this.rotate()];
    if (method !== 'POST' || url !== '/v1/unwrap') return [404, { error: `no route ${method} ${url}` }];
    if (tooBig) return [413, { error: 'request too large' }];
    let req: { kekId?: unknown; wrappedDek?: unknown };
    try {
      req = JSON.parse(body.toString('utf8')) as typeof req;
    } catch {
      return [400, { error: 'body is not JSON' }];
    }
    if (typeof req.kekId !== 'string' || typeof req.wrappedDek !== 'string') return [400, { error: 'kekId and wrappedDek (base64) are required' }];
    const kek = this.keks.find((k) => k.id === req.kekId);
    if (!kek) return [404, { error: `unknown KEK ${req.kekId}` }];
    try {
      const dek = unwrapDek(kek.privateKey, Buffer.from(req.wrappedDek, 'base64'), kek.id);
      this.log.info({ kekId: kek.id }, 'key manager: data key unwrapped');
      return [200, { dek: dek.toString('base64') }];
    } catch (err) {
      return [422, { error: (err as Error).message }];
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

