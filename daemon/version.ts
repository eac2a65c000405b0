import { readFileSync } from 'node:fs';

/** callvault's version, from package.json (two levels above dist/daemon/ and daemon/ alike). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
