import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** A file's digests, whole and per part, computed in one read. */
export interface FileDigests {
  readonly size: number;
  readonly sha256: Buffer;
  readonly md5: Buffer;
  /** One entry per `partSize` bytes (the last shorter); a single part when partSize is 0. */
  readonly parts: readonly { readonly offset: number; readonly size: number; readonly sha256: Buffer; readonly md5: Buffer }[];
}

/** SHA-256 and MD5 of a file and of each of its parts: what an object store checks an upload against. */
export async function fileDigests(file: string, partSize = 0): Promise<FileDigests> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  const parts: { offset: number; size: number; sha256: Buffer; md5: Buffer }[] = [];
  let part: { offset: number; size: number; sha: Hash; md5: Hash } | null = null;
  let size = 0;
  const closePart = () => {
    if (part) parts.push({ offset: part.offset, size: part.size, sha256: part.sha.digest(), md5: part.md5.digest() });
    part = null;
  };
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    sha256.update(chunk);
    md5.update(chunk);
    let at = 0;
    while (at < chunk.length) {
      part ??= { offset: size + at, size: 0, sha: createHash('sha256'), md5: createHash('md5') };
      const n = partSize ? Math.min(chunk.length - at, partSize - part.size) : chunk.length - at;
      const slice = chunk.subarray(at, at + n);
      part.sha.update(slice);
      part.md5.update(slice);
      part.size += n;
      at += n;
      if (partSize && part.size === partSize) closePart();
    }
    size += chunk.length;
  }
  closePart();
  if (!parts.length) parts.push({ offset: 0, size: 0, sha256: createHash('sha256').digest(), md5: createHash('md5').digest() });
  return { size, sha256: sha256.digest(), md5: md5.digest(), parts };
}

/** The ETag S3 gives an object: its MD5, or for a multipart upload the MD5 of the parts' MD5s and their count. */
export function expectedETag(d: FileDigests, multipart: boolean): string {
  if (!multipart) return `"${d.md5.toString('hex')}"`;
  const ofParts = createHash('md5')
    .update(Buffer.concat(d.parts.map((p) => p.md5)))
    .digest('hex');
  return `"${ofParts}-${d.parts.length}"`;
}
