import { createCipheriv, createPrivateKey, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { toPem } from './pem.js';
import { KeyError } from '../errors.js';

/*
 * Private keys at rest are PKCS#8 EncryptedPrivateKeyInfo, PBES2 with scrypt
 * (RFC 7914) and AES-256-CBC: the same structure `openssl pkcs8 -topk8 -v2
 * aes-256-cbc -scrypt` writes, so OpenSSL can open it, but with the scrypt cost
 * chosen here instead of the 2048 PBKDF2 iterations Node's own export uses.
 */
const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_SCRYPT = '1.3.6.1.4.1.11591.4.11';
const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';

/** scrypt cost: 16 MiB and ~50 ms per derivation; within OpenSSL's default 32 MiB limit. */
export const SCRYPT = { N: 1 << 14, r: 8, p: 1 } as const;

function algorithm(oid: string, params: asn1js.AsnType): asn1js.Sequence {
  return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), params] });
}

/** Encrypt a DER PKCS#8 PrivateKeyInfo under a passphrase; returns "ENCRYPTED PRIVATE KEY" PEM. */
export function encryptPkcs8(pkcs8Der: Uint8Array, passphrase: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = scryptSync(passphrase, salt, 32, { ...SCRYPT, maxmem: 64 * 1024 * 1024 });
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  key.fill(0);
  const scryptParams = new asn1js.Sequence({
    value: [
      new asn1js.OctetString({ valueHex: salt }),
      new asn1js.Integer({ value: SCRYPT.N }),
      new asn1js.Integer({ value: SCRYPT.r }),
      new asn1js.Integer({ value: SCRYPT.p }),
    ],
  });
  const pbes2Params = new asn1js.Sequence({
    value: [algorithm(OID_SCRYPT, scryptParams), algorithm(OID_AES256_CBC, new asn1js.OctetString({ valueHex: iv }))],
  });
  const info = new asn1js.Sequence({
    value: [algorithm(OID_PBES2, pbes2Params), new asn1js.OctetString({ valueHex: encrypted })],
  });
  return toPem('ENCRYPTED PRIVATE KEY', new Uint8Array(info.toBER(false)));
}

/** Open an encrypted PKCS#8 PEM; a wrong passphrase or a damaged file is a KeyError, never a crash. */
export function decryptPkcs8(pemText: string, passphrase: string, file: string): KeyObject {
  if (!pemText.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw new KeyError('KEY_NOT_ENCRYPTED', `${file} is not an encrypted PKCS#8 key; refusing to use it`, { file });
  }
  try {
    return createPrivateKey({ key: pemText, format: 'pem', passphrase });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    // A wrong key usually fails AES-CBC's padding (BAD_DECRYPT), but about one time in 256 the padding
    // happens to fit and the garbage fails to parse instead (UNSUPPORTED, an ASN.1 error): when the
    // encrypted container itself is well formed, either way the passphrase did not open it.
    const wrong = /BAD_DECRYPT|DECRYPT/.test(code) || wellFormedContainer(pemText);
    throw new KeyError(
      wrong ? 'WRONG_PASSPHRASE' : 'KEY_UNREADABLE',
      wrong ? `cannot decrypt ${file}: wrong passphrase` : `cannot read the key in ${file}: ${code || 'damaged or unsupported file'}`,
      { file },
    );
  }
}

/** Whether the PEM holds a well-formed EncryptedPrivateKeyInfo: an algorithm and an encrypted octet string. */
function wellFormedContainer(pemText: string): boolean {
  const b64 = /-----BEGIN ENCRYPTED PRIVATE KEY-----([\s\S]*?)-----END ENCRYPTED PRIVATE KEY-----/.exec(pemText)?.[1]?.replace(/\s+/g, '');
  if (!b64) return false;
  const der = Buffer.from(b64, 'base64');
  const parsed = asn1js.fromBER(new Uint8Array(der));
  if (parsed.offset === -1 || parsed.offset !== der.length || !(parsed.result instanceof asn1js.Sequence)) return false;
  const [alg, data] = parsed.result.valueBlock.value;
  return alg instanceof asn1js.Sequence && data instanceof asn1js.OctetString && data.valueBlock.valueHexView.length > 0;
}
