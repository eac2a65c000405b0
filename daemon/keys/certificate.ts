import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { Crypto } from '@peculiar/webcrypto';
import * as asn1js from 'asn1js';
import { toPem } from './pem.js';
import * as pkijs from 'pkijs';

const webcrypto = new Crypto();
const engine = new pkijs.CryptoEngine({ name: 'peculiar', crypto: webcrypto });

const OID_COMMON_NAME = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_SUBJECT_KEY_ID = '2.5.29.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
/** digitalSignature + keyEncipherment: a TLS server key. */
const KEY_USAGE_TLS_SERVER = 0b1010_0000;

/** A TLS server certificate instead of a signing one (the key manager's). */
export interface TlsServerNames {
  readonly dns: readonly string[];
  readonly ips: readonly string[];
}

function ipBytes(ip: string): Uint8Array {
  if (ip.includes(':')) {
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    return new Uint8Array(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
  }
  return new Uint8Array(ip.split('.').map(Number));
}
/** digitalSignature (bit 0) + nonRepudiation (bit 1), the first byte of the KeyUsage BIT STRING. */
const KEY_USAGE_SIGN_ONLY = 0b1100_0000;

export const VALIDITY_YEARS = 100;

export interface GeneratedIdentity {
  /** DER PrivateKeyInfo: encrypt it before it touches disk. */
  readonly pkcs8Der: Uint8Array;
  readonly certificatePem: string;
}

export interface CertificateInfo {
  readonly subject: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** SHA-256 of the DER certificate, colon-separated hex as `openssl x509 -fingerprint -sha256` prints it. */
  readonly fingerprintSha256: string;
}

function extension(oid: string, critical: boolean, value: asn1js.AsnType): pkijs.Extension {
  return new pkijs.Extension({ extnID: oid, critical, extnValue: value.toBER(false) });
}

function wholeSeconds(d: Date): Date {
  // RFC 5280 forbids fractional seconds in certificate times.
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/**
 * Generate an RSA signing key and its self-signed X.509 v3 certificate:
 * CN = commonName as subject and issuer, valid 100 years from now, key usage
 * digitalSignature + nonRepudiation (critical), not a CA, subject key id.
 */
export async function generateSigningIdentity(
  commonName: string,
  keyBits: number,
  now = new Date(),
  tls?: TlsServerNames,
): Promise<GeneratedIdentity> {
  const keys = await webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: keyBits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const cert = new pkijs.Certificate();
  cert.version = 2; // v3
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, and 16 bytes long
  cert.serialNumber = new asn1js.Integer({ valueHex: serial });
  const name = new pkijs.AttributeTypeAndValue({ type: OID_COMMON_NAME, value: new asn1js.Utf8String({ value: commonName }) });
  cert.subject.typesAndValues.push(name);
  cert.issuer.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: OID_COMMON_NAME, value: new asn1js.Utf8String({ value: commonName }) }));
  const notBefore = wholeSeconds(now);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALIDITY_YEARS);
  cert.notBefore = new pkijs.Time({ type: pkijs.TimeType.UTCTime, value: notBefore });
  // RFC 5280: dates from 2050 on must be GeneralizedTime.
  cert.notAfter = new pkijs.Time({
    type: notAfter.getUTCFullYear() >= 2050 ? pkijs.TimeType.GeneralizedTime : pkijs.TimeType.UTCTime,
    value: notAfter,
  });
  await cert.subjectPublicKeyInfo.importKey(keys.publicKey, engine);
  const keyId = createHash('sha1').update(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest();
  cert.extensions = [
    extension(OID_BASIC_CONSTRAINTS, true, new pkijs.BasicConstraints({ cA: false }).toSchema()),
    extension(
      OID_KEY_USAGE,
      true,
      new asn1js.BitString({ valueHex: new Uint8Array([tls ? KEY_USAGE_TLS_SERVER : KEY_USAGE_SIGN_ONLY]), unusedBits: tls ? 5 : 6 }),
    ),
    extension(OID_SUBJECT_KEY_ID, false, new asn1js.OctetString({ valueHex: keyId })),
  ];
  if (tls) {
    const names = [
      ...tls.dns.map((value) => new pkijs.GeneralName({ type: 2, value })),
      ...tls.ips.map((ip) => new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: ipBytes(ip) }) })),
    ];
    cert.extensions.push(extension(OID_SUBJECT_ALT_NAME, false, new pkijs.GeneralNames({ names }).toSchema()));
    cert.extensions.push(extension(OID_EXT_KEY_USAGE, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID_SERVER_AUTH] }).toSchema()));
  }
  await cert.sign(keys.privateKey, 'SHA-256', engine);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { pkcs8Der: new Uint8Array(pkcs8), certificatePem: toPem('CERTIFICATE', cert.toSchema(true).toBER(false)) };
}

export function describeCertificate(pem: string): CertificateInfo {
  const x = new X509Certificate(pem);
  return {
    subject: x.subject,
    serial: x.serialNumber,
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
    fingerprintSha256: x.fingerprint256,
  };
}
