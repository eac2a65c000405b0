import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/Config.js';
import { readSecretLine } from '../keys/secret.js';
import type { SipRequest } from './SipMessage.js';

/** How long a nonce we issued is accepted. */
const NONCE_MS = 300_000;

export type DigestVerdict = 'ok' | 'missing' | 'stale' | 'wrong';

/**
 * Digest authentication of the SRCs that start recordings (RFC 3261 §22,
 * SHA-256 per RFC 8760, MD5 for the many SBCs that know nothing else; the
 * challenges in the configured order, since many SRCs answer only the first), on
 * top of the source allow-list. Nonces are stateless: a timestamp and its
 * HMAC under a key made at start, accepted for five minutes.
 */
export class DigestAuth {
  readonly #key = randomBytes(32);

  private constructor(
    readonly realm: string,
    private readonly algorithms: readonly string[],
    private readonly passwords: ReadonlyMap<string, Buffer>,
  ) {}

  /** Off (null) unless `sip.digest.realm` is set; each user's password is the first line of its file. */
  static async load(cfg: Config['sip']['digest']): Promise<DigestAuth | null> {
    if (!cfg.realm) return null;
    const passwords = new Map<string, Buffer>();
    for (const u of cfg.users) passwords.set(u.username, await readSecretLine(u.passwordFile, `SIP digest password file of ${u.username}`));
    return new DigestAuth(cfg.realm, cfg.algorithms, passwords);
  }

  #nonce(now = Date.now()): string {
    const ts = now.toString(36);
    return `${ts}.${createHmac('sha256', this.#key).update(ts).digest('base64url').slice(0, 32)}`;
  }

  /** WWW-Authenticate values for a 401, one per configured algorithm, in order of preference. */
  challenge(stale = false): string[] {
    const nonce = this.#nonce();
    const common = `realm="${this.realm}", nonce="${nonce}", qop="auth"${stale ? ', stale=true' : ''}`;
    return this.algorithms.map((a) => `Digest ${common}, algorithm=${a}`);
  }

  verify(req: SipRequest, now = Date.now()): DigestVerdict {
    const header = req.headers.get('authorization') ?? req.headers.get('proxy-authorization');
    if (!header || !/^digest\s/i.test(header)) return 'missing';
    const p = new Map<string, string>();
    for (const m of header.slice(7).matchAll(/([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) p.set(m[1]!.toLowerCase(), m[2] ?? m[3] ?? '');
    const [username, nonce, uri, response] = [p.get('username'), p.get('nonce'), p.get('uri'), p.get('response')];
    if (!username || !nonce || !uri || !response || p.get('realm') !== this.realm) return 'wrong';
    const [ts = '', mac = ''] = nonce.split('.');
    const expected = this.#nonce(parseInt(ts, 36)).split('.')[1]!;
    if (mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) return 'wrong';
    if (now - parseInt(ts, 36) > NONCE_MS) return 'stale';
    const password = this.passwords.get(username);
    if (!password) return 'wrong';
    const algorithm = (p.get('algorithm') ?? 'MD5').toUpperCase();
    if (!this.algorithms.includes(algorithm)) return 'wrong';
    const h = (s: string | Buffer) =>
      createHash(algorithm === 'MD5' ? 'md5' : 'sha256')
        .update(s)
        .digest('hex');
    const ha1 = h(Buffer.concat([Buffer.from(`${username}:${this.realm}:`), password]));
    const ha2 = h(`${req.method}:${uri}`);
    const qop = p.get('qop');
    const want = qop ? h(`${ha1}:${nonce}:${p.get('nc') ?? ''}:${p.get('cnonce') ?? ''}:${qop}:${ha2}`) : h(`${ha1}:${nonce}:${ha2}`);
    return want.length === response.length && timingSafeEqual(Buffer.from(want), Buffer.from(response.toLowerCase())) ? 'ok' : 'wrong';
  }
}
