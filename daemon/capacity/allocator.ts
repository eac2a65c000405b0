import { readFileSync } from 'node:fs';

/** The malloc this process runs on: jemalloc when bin/callvault preloaded it, else the C library's. */
export function mallocInUse(): 'jemalloc' | 'glibc' {
  try {
    return /\/libjemalloc\.so/.test(readFileSync('/proc/self/maps', 'utf8')) ? 'jemalloc' : 'glibc';
  } catch {
    return 'glibc';
  }
}
