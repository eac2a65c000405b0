import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFull } from '../fsutil.js';
import { StoreError } from '../errors.js';

const MAGIC = 0xbeefc0de;
/** Page header sizes of LMDB's two on-disk formats (0.9 and the 1.0 format lmdb-js writes). */
const HEADER_SIZES = [16, 24];
const PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

interface Meta {
  readonly pageSize: number;
  readonly lastPage: bigint;
  readonly txnId: bigint;
}

/** The meta record of the page at `pageOffset`, or undefined when it is not a valid one. */
function readMeta(fd: number, pageOffset: number): Meta | undefined {
  const buf = Buffer.alloc(160);
  if (readFull(fd, buf, pageOffset) < buf.length) return undefined;
  for (const h of HEADER_SIZES) {
    if (buf.readUInt32LE(h) !== MAGIC) continue;
    // After magic and version: address (8), map size (8), then the free-list DB whose first field is the page size.
    const pageSize = buf.readUInt32LE(h + 24);
    if (!PAGE_SIZES.includes(pageSize)) return undefined;
    return { pageSize, lastPage: buf.readBigUInt64LE(h + 120), txnId: buf.readBigUInt64LE(h + 128) };
  }
  return undefined;
}

/**
 * LMDB maps its file and trusts it: a zeroed, truncated or garbage file
 * makes the process die by SIGSEGV/SIGBUS with no message (and systemd
 * restart it forever). So before opening, check what LMDB would rely on:
 * two meta pages, at least one valid, and a file long enough for the pages
 * the newest one says exist. `what` and `remedy` go into the one-line error.
 */
export function checkLmdbFile(file: string, what: string, remedy: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a new environment
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return; // created but never written: LMDB initialises it
    const first = readMeta(fd, 0);
    const pageSize = first?.pageSize ?? PAGE_SIZES.find((p) => readMeta(fd, p)?.pageSize === p);
    const second = pageSize === undefined ? undefined : readMeta(fd, pageSize);
    const metas = [first, second].filter((m): m is Meta => m !== undefined);
    const damaged = (why: string) => new StoreError('STORE_DAMAGED', `${what} ${file} is damaged (${why}); ${remedy}`, { file });
    if (metas.length === 0) throw damaged('no valid LMDB meta page');
    const newest = metas.reduce((a, b) => (b.txnId > a.txnId ? b : a));
    const needed = (newest.lastPage + 1n) * BigInt(newest.pageSize);
    if (BigInt(size) < needed) throw damaged(`${size} bytes, but its meta page needs ${needed}: truncated`);
  } finally {
    closeSync(fd);
  }
}
