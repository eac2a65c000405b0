import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { EncryptionConfig } from '../../config/Config.js';
import { KeyError } from '../../errors.js';
import { firstLine } from '../passphrase.js';

/** What the key manager says about the KEK new recordings should use. */
export interface LkmKek {
  readonly id: string;
  readonly bits: number;
  readonly createdAt: string;
  readonly publicKey: KeyObject;
}

/** The wire format of `GET /v1/kek`; `POST /v1/unwrap` takes {kekId, wrappedDek, recordingId, purpose} and answers {dek}, keys in base64. */
export interface LkmKekBody {
  readonly id: string;
  readonly bits: number;
  readonly createdAt: string;
  readonly publicKeyPem: string;
}

/**
 * Client of an external key manager (provider `lkm`): callvault sends a
 * wrapped data key over HTTPS with a bearer token and gets the data key
 * back; the private KEK never enters this process.
 */
export class LkmClient {
  private constructor(
    private readonly base: URL,
    private readonly token: string,
    private readonly tls: { readonly ca?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined },
    private readonly timeoutMs: number,
  ) {}

  /**
   * A client with the recorder's credential (`encryption.lkm.tokenFile`), or
   * with `tokenFile` — the unwrap credential a command was given.
   */
  static async create(cfg: EncryptionConfig['lkm'], tokenFile: string | null = cfg.tokenFile): Promise<LkmClient> {
    if (!cfg.url || !tokenFile)
      throw new KeyError('LKM_NOT_CONFIGURED', 'encryption.lkm.url and encryption.lkm.tokenFile must be set for provider lkm');
    const read = (file: string | null, key: string) =>
      file
        ? readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
            throw new KeyError('LKM_FILE_UNREADABLE', `cannot read encryption.lkm.${key} ${file}: ${err.code ?? String(err)}`);
          })
        : Promise.resolve(undefined);
    const [ca, cert, key] = await Promise.all([
      read(cfg.caFile, 'caFile'),
      read(cfg.clientCertFile, 'clientCertFile'),
      read(cfg.clientKeyFile, 'clientKeyFile'),
    ]);
    return new LkmClient(new URL(cfg.url), await firstLine(tokenFile, 'key manager token file'), { ca, cert, key }, cfg.timeoutMs);
  }

  get origin(): string {
    return this.base.origin;
  }

  async currentKek(): Promise<LkmKek> {
    const body = (await this.request('GET', '/v1/kek')) as LkmKekBody;
    return { id: body.id, bits: body.bits, createdAt: body.createdAt, publicKey: createPublicKey(body.publicKeyPem) };
  }

  /** Unwrap one data key; the key manager records which recording it is for, and why. */
  async unwrap(kekId: string, wrapped: Uint8Array, recordingId: string, purpose: string): Promise<Buffer> {
    const body = (await this.request('POST', '/v1/unwrap', { kekId, wrappedDek: Buffer.from(wrapped).toString('base64'), recordingId, purpose })) as {
      dek: string;
    };
    return Buffer.from(body.dek, 'base64');
  }

  private request(method: 'GET' | 'POST', route: string, payload?: unknown): Promise<unknown> {
    const url = new URL(route, this.base);
    const data = payload === undefined ? undefined : Buffer.from(JSON.stringify(payload));
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          ...this.tls,
          timeout: this.timeoutMs,
          headers: {
            authorization: `Bearer ${this.token}`,
            accept: 'application/json',
            ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: { error?: string } & Record<string, unknown>;
            try {
              body = JSON.parse(text) as typeof body;
            } catch {
              return reject(
                new KeyError('LKM_BAD_REPLY', `key manager ${url.origin} answered ${method} ${route} with ${res.statusCode} and no JSON`),
              );
            }
            if (res.statusCode !== 200)
              return reject(
                new KeyError('LKM_REFUSED', `key manager ${url.origin} refused ${method} ${route}: ${res.statusCode} ${body.error ?? ''}`.trim(), {
                  status: res.statusCode,
                }),
              );
            resolve(body);
          });
        },
      );
      req.on('timeout', () => req.destroy(new KeyError('LKM_TIMEOUT', `no answer within ${this.timeoutMs} ms`, { timeoutMs: this.timeoutMs })));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(new KeyError('LKM_UNREACHABLE', `cannot reach the key manager at ${url.origin}: ${err.code ?? err.message}`, { url: url.origin })),
      );
      req.end(data);
    });
  }
}
