import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
  type CipherGCM,
  type KeyObject,
} from 'node:crypto';
import { EnvelopeError } from '../errors.js';

/*
 * The callvault envelope (docs/envelope.md has it byte by byte): a fixed
 * header (chunk size, file nonce, a commitment to the data key), a key slot
 * (KEK id, RSA-OAEP-wrapped data key), then AES-256-GCM chunks whose IV
 * carries the chunk index and whose AAD carries the fixed header's SHA-256,
 * the index and a final-chunk flag — so reordered chunks, a truncated or
 * extended file each fail authentication at a named chunk. The key slot is
 * outside the AAD so a KEK rotation rewrites the header only; the commitment
 * ties the slot's key to the chunks.
 */
export const ENVELOPE_MAGIC = Buffer.from('CVENVLP\0', 'latin1');
/**
 * 1: a finished file encrypted whole. 2: audio encrypted as it is recorded —
 * chunk 0 is a short *lead* (the WAV header, sealed once at the end) and the
 * audio follows from chunk 1 (docs/envelope.md).
 */
export type EnvelopeVersion = 1 | 2;
/**
 * 1 MiB (about 33 s of 8 kHz 16-bit stereo): the per-chunk cost (a cipher, a
 * tag, a write) made 64 KiB chunks ~25 % slower end to end here.
 */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
/**
 * Chunk size of envelopes written as the call is recorded: what is not yet a
 * whole chunk is in memory only, so this bounds what a crash loses — 32 KiB
 * is about 1 s of 8 kHz 16-bit stereo (2 s mono).
 */
export const STREAM_CHUNK_SIZE = 32 << 10;
/**
 * How much text goes to the cipher per update(): updates of this size keep
 * input and output in the CPU cache; larger ones measured markedly slower
 * here (node allocates each update's output).
 */
export const PIECE_BYTES = 64 << 10;
export const TAG_BYTES = 16;
export const DEK_BYTES = 32;
const FILE_NONCE_BYTES = 8;
const COMMITMENT_BYTES = 32;
/** Magic, version, flags, chunk size, file nonce, DEK commitment: the part every chunk authenticates. */
export const FIXED_HEADER_BYTES = 54;
const COMMITMENT_LABEL = Buffer.from('callvault envelope v1 key commitment', 'latin1');

/** RSA-OAEP with SHA-256 (and MGF1-SHA-256): how a KEK wraps a data key. */
const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' } as const;

export interface EnvelopeHeader {
  readonly version: EnvelopeVersion;
  /** Version 2: plaintext bytes of chunk 0 (the lead); 0 in version 1. */
  readonly leadBytes: number;
  readonly chunkSize: number;
  readonly fileNonce: Buffer;
  /** HMAC-SHA-256(DEK, label ‖ file nonce): which data key the chunks were sealed with. */
  readonly commitment: Buffer;
  readonly kekId: string;
  readonly wrappedDek: Buffer;
  /** The encoded header; its first FIXED_HEADER_BYTES are hashed into every chunk's AAD. */
  readonly bytes: Buffer;
}

export function encodeHeader(h: Omit<EnvelopeHeader, 'bytes' | 'version'>): EnvelopeHeader {
  const kek = Buffer.from(h.kekId, 'utf8');
  if (h.fileNonce.length !== FILE_NONCE_BYTES) throw new EnvelopeError(`file nonce must be ${FILE_NONCE_BYTES} bytes`);
  if (h.commitment.length !== COMMITMENT_BYTES) throw new EnvelopeError(`key commitment must be ${COMMITMENT_BYTES} bytes`);
  if (kek.length > 0xffff || h.wrappedDek.length > 0xffff) throw new EnvelopeError('KEK id or wrapped key too long');
  if (!Number.isInteger(h.leadBytes) || h.leadBytes < 0 || h.leadBytes > 0xff) throw new EnvelopeError('lead chunk size must be 0 to 255 bytes');
  const version: EnvelopeVersion = h.leadBytes ? 2 : 1;
  const b = Buffer.alloc(FIXED_HEADER_BYTES + 2 + kek.length + 2 + h.wrappedDek.length);
  ENVELOPE_MAGIC.copy(b, 0);
  b.writeUInt8(version, 8);
  // Version 1: flags, always 0. Version 2: the lead's size.
  b.writeUInt8(h.leadBytes, 9);
  b.writeUInt32BE(h.chunkSize, 10);
  h.fileNonce.copy(b, 14);
  h.commitment.copy(b, 22);
  let o = FIXED_HEADER_BYTES;
  b.writeUInt16BE(kek.length, o);
  kek.copy(b, o + 2);
  o += 2 + kek.length;
  b.writeUInt16BE(h.wrappedDek.length, o);
  h.wrappedDek.copy(b, o + 2);
  return { ...h, version, bytes: b };
}

/** Parse a header from the first bytes of a file (at least the whole header must be there). */
export function decodeHeader(buf: Buffer): EnvelopeHeader {
  const short = () => new EnvelopeError('not a callvault envelope: the header is cut short');
  if (buf.length < FIXED_HEADER_BYTES + 4) throw short();
  if (!buf.subarray(0, 8).equals(ENVELOPE_MAGIC)) throw new EnvelopeError('not a callvault envelope (bad magic)');
  const version = buf.readUInt8(8);
  if (version !== 1 && version !== 2) throw new EnvelopeError(`envelope version ${version} is not supported (this build reads 1 and 2)`);
  const leadBytes = buf.readUInt8(9);
  if ((version === 1) !== (leadBytes === 0))
    throw new EnvelopeError(
      version === 1 ? `envelope version 1 with flags ${leadBytes}, which are reserved` : 'envelope version 2 without a lead chunk',
    );
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
  return {
    version,
    leadBytes,
    chunkSize,
    fileNonce: Buffer.from(buf.subarray(14, 22)),
    commitment: Buffer.from(buf.subarray(22, FIXED_HEADER_BYTES)),
    kekId,
    wrappedDek,
    bytes: Buffer.from(buf.subarray(0, end)),
  };
}

/** Largest header any KEK we make can produce: lets a reader fetch it in one read. */
export const MAX_HEADER_BYTES = FIXED_HEADER_BYTES + 2 + 0xffff + 2 + 0xffff;

/** Per-chunk cipher parameters, shared by both directions. */
export class ChunkCipher {
  // Reused for every chunk: createCipheriv and setAAD copy them, so one of each per file is enough.
  private readonly ivBuf = Buffer.alloc(12);
  private readonly aadBuf = Buffer.alloc(32 + 5);
  private readonly key: KeyObject;

  constructor(dek: Uint8Array, header: EnvelopeHeader) {
    if (dek.length !== DEK_BYTES) throw new EnvelopeError(`a data key is ${DEK_BYTES} bytes`);
    if (!timingSafeEqual(keyCommitment(dek, header.fileNonce), header.commitment)) {
      throw new EnvelopeError(`the data key does not belong to this envelope (KEK ${header.kekId}): wrong key, or an edited key slot`);
    }
    // One KeyObject per file: createCipheriv with raw key bytes would import the key again for every chunk.
    this.key = createSecretKey(dek);
    header.fileNonce.copy(this.ivBuf, 0);
    createHash('sha256').update(header.bytes.subarray(0, FIXED_HEADER_BYTES)).digest().copy(this.aadBuf, 0);
  }

  private params(index: number, final: boolean): { iv: Buffer; aad: Buffer } {
    if (index > 0xffffffff) throw new EnvelopeError('file too large for one envelope (2^32 chunks)');
    this.ivBuf.writeUInt32BE(index, 8);
    this.aadBuf.writeUInt32BE(index, 32);
    this.aadBuf.writeUInt8(final ? 1 : 0, 36);
    return { iv: this.ivBuf, aad: this.aadBuf };
  }

  /**
   * The cipher of one chunk, its AAD set: update() it with the chunk's
   * plaintext — in pieces, so no chunk-sized copy is made — then final() and
   * getAuthTag(). The ciphertext followed by the tag is the sealed chunk.
   */
  encryptor(index: number, final: boolean): CipherGCM {
    const { iv, aad } = this.params(index, final);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(aad);
    return c;
  }

  /**
   * Plaintext of one chunk, in pieces of at most PIECE_BYTES (decrypted
   * piecewise for the same cache reason as encryption), released only once
   * the whole chunk has authenticated; throws naming the chunk otherwise.
   */
  open(index: number, final: boolean, sealed: Uint8Array): Buffer[] {
    if (sealed.length < TAG_BYTES) throw new EnvelopeError(`chunk ${index} is cut short`, index);
    const { iv, aad } = this.params(index, final);
    const d = createDecipheriv('aes-256-gcm', this.key, iv);
    d.setAAD(aad);
    const body = sealed.length - TAG_BYTES;
    d.setAuthTag(sealed.subarray(body));
    try {
      const plain: Buffer[] = [];
      for (let o = 0; o < body; o += PIECE_BYTES) plain.push(d.update(sealed.subarray(o, Math.min(body, o + PIECE_BYTES))));
      d.final(); // GCM yields nothing more here: final() only checks the tag
      return plain;
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

/** Chunks of a `plainBytes` file; an empty file is one empty chunk, so even it carries a final tag. */
function chunkCount(plainBytes: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(plainBytes / chunkSize));
}

export interface PlainChunk {
  readonly index: number;
  /** Plaintext byte range [start, end). */
  readonly start: number;
  readonly end: number;
  readonly final: boolean;
}

/** The chunks a `plainBytes` file is sealed in, in order: what an encryptor walks. */
export function* plainChunks(plainBytes: number, chunkSize: number): Generator<PlainChunk> {
  const chunks = chunkCount(plainBytes, chunkSize);
  for (let index = 0; index < chunks; index++) {
    const start = index * chunkSize;
    yield { index, start, end: Math.min(plainBytes, start + chunkSize), final: index === chunks - 1 };
  }
}

/** Bytes of the envelope of a `plainBytes` file: lets a reader tell the last chunk, and a checker a bad length. */
export function envelopeSize(headerBytes: number, chunkSize: number, plainBytes: number): number {
  return headerBytes + plainBytes + chunkCount(plainBytes, chunkSize) * TAG_BYTES;
}

function keyCommitment(dek: Uint8Array, fileNonce: Buffer): Buffer {
  return createHmac('sha256', dek).update(COMMITMENT_LABEL).update(fileNonce).digest();
}

/** The KEK a data key is wrapped under: its id and public key (the daemon never needs more). */
export interface WrappingKey {
  readonly id: string;
  readonly publicKey: KeyObject;
}

export function wrapDek(kek: WrappingKey, dek: Uint8Array): Buffer {
  return publicEncrypt({ key: kek.publicKey, ...OAEP }, dek);
}

/** Unwrap with a private KEK; a wrong KEK is an EnvelopeError, not an OpenSSL message. */
export function unwrapDek(privateKey: KeyObject, wrapped: Uint8Array, kekId: string): Buffer {
  try {
    const dek = privateDecrypt({ key: privateKey, ...OAEP }, wrapped);
    if (dek.length !== DEK_BYTES) throw new Error('length');
    return dek;
  } catch {
    throw new EnvelopeError(`cannot unwrap the data key with KEK ${kekId}: not the key it was wrapped under`);
  }
}

/** A fresh data key and the header that carries it wrapped under `kek`. */
export function newEnvelope(kek: WrappingKey, chunkSize = DEFAULT_CHUNK_SIZE, leadBytes = 0): { dek: Buffer; header: EnvelopeHeader } {
  const dek = randomBytes(DEK_BYTES);
  const fileNonce = randomBytes(FILE_NONCE_BYTES);
  return {
    dek,
    header: encodeHeader({
      leadBytes,
      chunkSize,
      fileNonce,
      commitment: keyCommitment(dek, fileNonce),
      kekId: kek.id,
      wrappedDek: wrapDek(kek, dek),
    }),
  };
}

/** The same envelope under another KEK: the fixed header, and so every chunk, stays as it is. */
export function rewrapHeader(header: EnvelopeHeader, dek: Uint8Array, kek: WrappingKey): EnvelopeHeader {
  if (!timingSafeEqual(keyCommitment(dek, header.fileNonce), header.commitment))
    throw new EnvelopeError('the data key does not belong to this envelope');
  return encodeHeader({
    leadBytes: header.leadBytes,
    chunkSize: header.chunkSize,
    fileNonce: header.fileNonce,
    commitment: header.commitment,
    kekId: kek.id,
    wrappedDek: wrapDek(kek, dek),
  });
}

/**
 * A small plaintext (the keys pressed in a call) sealed whole as a version 1
 * envelope in memory, under a fresh data key wrapped under `kek`; the data
 * key is wiped before this returns.
 */
export function sealBuffer(kek: WrappingKey, plain: Uint8Array): Buffer {
  const { dek, header } = newEnvelope(kek);
  try {
    const cipher = new ChunkCipher(dek, header);
    const out: Buffer[] = [header.bytes];
    for (const { index, start, end, final } of plainChunks(plain.length, header.chunkSize)) {
      const c = cipher.encryptor(index, final);
      out.push(c.update(plain.subarray(start, end)), c.final(), c.getAuthTag());
    }
    return Buffer.concat(out);
  } finally {
    dek.fill(0);
  }
}
