import { createCipheriv, createDecipheriv, createHash, type CipherGCM, type DecipherGCM } from 'node:crypto';

/*
 * The callvault envelope (docs/envelope.md has it byte by byte): a header with
 * the KEK id and the RSA-OAEP-wrapped data key, then AES-256-GCM chunks whose
 * IV carries the chunk index and whose AAD carries the header's SHA-256, the
 * index and a final-chunk flag — so an edited header, reordered chunks, a
 * truncated or extended file each fail authentication at a named chunk.
 */
export const ENVELOPE_MAGIC = Buffer.from('CVENVLP\0', 'latin1');
export const ENVELOPE_VERSION = 1;
export const DEFAULT_CHUNK_SIZE = 65536;
export const TAG_BYTES = 16;
export const DEK_BYTES = 32;
const FILE_NONCE_BYTES = 8;
const FIXED_HEADER_BYTES = 22;

export interface EnvelopeHeader {
  readonly chunkSize: number;
  readonly fileNonce: Buffer;
  readonly kekId: string;
  readonly wrappedDek: Buffer;
  /** The encoded header, as hashed into every chunk's AAD. */
  readonly bytes: Buffer;
}

export class EnvelopeError extends Error {
  constructor(
    message: string,
    /** The chunk that failed, when one did. */
    readonly chunk?: number,
  ) {
    super(message);
  }
}

export function encodeHeader(h: Omit<EnvelopeHeader, 'bytes'>): EnvelopeHeader {
  const kek = Buffer.from(h.kekId, 'utf8');
  if (h.fileNonce.length !== FILE_NONCE_BYTES) throw new EnvelopeError(`file nonce must be ${FILE_NONCE_BYTES} bytes`);
  if (kek.length > 0xffff || h.wrappedDek.length > 0xffff) throw new EnvelopeError('KEK id or wrapped key too long');
  const b = Buffer.alloc(FIXED_HEADER_BYTES + 2 + kek.length + 2 + h.wrappedDek.length);
  ENVELOPE_MAGIC.copy(b, 0);
  b.writeUInt8(ENVELOPE_VERSION, 8);
  b.writeUInt8(0, 9);
  b.writeUInt32BE(h.chunkSize, 10);
  h.fileNonce.copy(b, 14);
  let o = FIXED_HEADER_BYTES;
  b.writeUInt16BE(kek.length, o);
  kek.copy(b, o + 2);
  o += 2 + kek.length;
  b.writeUInt16BE(h.wrappedDek.length, o);
  h.wrappedDek.copy(b, o + 2);
  return { ...h, bytes: b };
}

/** Parse a header from the first bytes of a file (at least the whole header must be there). */
export function decodeHeader(buf: Buffer): EnvelopeHeader {
  const short = () => new EnvelopeError('not a callvault envelope: the header is cut short');
  if (buf.length < FIXED_HEADER_BYTES + 4) throw short();
  if (!buf.subarray(0, 8).equals(ENVELOPE_MAGIC)) throw new EnvelopeError('not a callvault envelope (bad magic)');
  const version = buf.readUInt8(8);
  if (version !== ENVELOPE_VERSION) throw new EnvelopeError(`envelope version ${version} is not supported (this build reads ${ENVELOPE_VERSION})`);
  const chunkSize = buf.readUInt32BE(10);
  if (chunkSize < 1 || chunkSize > 1 << 24) throw new EnvelopeError(`implausible chunk size ${chunkSize}`);
  let o = FIXED_HEADER_BYTES;
  const kekLen = buf.readUInt16BE(o);
  if (buf.length < o + 2 + kekLen + 2) throw short();
  const kekId = buf.subarray(o + 2, o + 2 + kekLen).toString('utf8');
  o += 2 + kekLen;
  const wrappedLen = buf.readUInt16BE(o);
  if (buf.length < o + 2 + wrappedLen) throw short();
  const wrappedDek = Buffer.from(buf.subarray(o + 2, o + 2 + wrappedLen));
  const end = o + 2 + wrappedLen;
  return { chunkSize, fileNonce: Buffer.from(buf.subarray(14, 22)), kekId, wrappedDek, bytes: Buffer.from(buf.subarray(0, end)) };
}

/** Largest header any KEK we make can produce: lets a reader fetch it in one read. */
export const MAX_HEADER_BYTES = FIXED_HEADER_BYTES + 2 + 0xffff + 2 + 0xffff;

/** Per-chunk cipher parameters, shared by both directions. */
export class ChunkCipher {
  private readonly headerHash: Buffer;

  constructor(
    private readonly dek: Uint8Array,
    private readonly header: EnvelopeHeader,
  ) {
    if (dek.length !== DEK_BYTES) throw new EnvelopeError(`a data key is ${DEK_BYTES} bytes`);
    this.headerHash = createHash('sha256').update(header.bytes).digest();
  }

  private iv(index: number): Buffer {
    const iv = Buffer.alloc(12);
    this.header.fileNonce.copy(iv, 0);
    iv.writeUInt32BE(index, 8);
    return iv;
  }

  private aad(index: number, final: boolean): Buffer {
    const a = Buffer.alloc(32 + 5);
    this.headerHash.copy(a, 0);
    a.writeUInt32BE(index, 32);
    a.writeUInt8(final ? 1 : 0, 36);
    return a;
  }

  /** Ciphertext ‖ tag of one chunk. */
  seal(index: number, final: boolean, plain: Uint8Array): Buffer {
    if (index > 0xffffffff) throw new EnvelopeError('file too large for one envelope (2^32 chunks)');
    const c = createCipheriv('aes-256-gcm', this.dek, this.iv(index)) as CipherGCM;
    c.setAAD(this.aad(index, final));
    return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  }

  /** Plaintext of one chunk; throws naming the chunk when it does not authenticate. */
  open(index: number, final: boolean, sealed: Uint8Array): Buffer {
    if (sealed.length < TAG_BYTES) throw new EnvelopeError(`chunk ${index} is cut short`, index);
    const body = sealed.subarray(0, sealed.length - TAG_BYTES);
    const d = createDecipheriv('aes-256-gcm', this.dek, this.iv(index)) as DecipherGCM;
    d.setAAD(this.aad(index, final));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      return Buffer.concat([d.update(body), d.final()]);
    } catch {
      throw new EnvelopeError(
        final
          ? `chunk ${index} (the last) does not authenticate: damaged, reordered, or the file was truncated or extended`
          : `chunk ${index} does not authenticate: damaged or reordered`,
        index,
      );
    }
  }
}

/** Bytes of the envelope of a `plainBytes` file: lets a reader tell the last chunk, and a checker a bad length. */
export function envelopeSize(headerBytes: number, chunkSize: number, plainBytes: number): number {
  const chunks = Math.max(1, Math.ceil(plainBytes / chunkSize));
  return headerBytes + plainBytes + chunks * TAG_BYTES;
}
