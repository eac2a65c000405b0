import { BlockList, isIP } from 'node:net';

/** `::ffff:192.0.2.1` (a v4 client on a dual-stack socket) is 192.0.2.1. */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/**
 * A test of RTP source addresses against `media.allowedSources` entries
 * (addresses or CIDR networks), or, with none configured, against the one
 * address that started the call.
 */
export function sourceFilter(allowed: readonly string[] | null, callSource: string | undefined): (ip: string) => boolean {
  const list = new BlockList();
  const entries = allowed ?? (callSource ? [plainIp(callSource)] : []);
  for (const entry of entries) {
    const [addr = '', prefix] = entry.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(prefix), family);
  }
  return (ip) => {
    const p = plainIp(ip);
    const family = isIP(p);
    return family !== 0 && list.check(p, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** A config entry that `sourceFilter` can use; the message names what is wrong. */
export function checkSourceEntry(entry: string): string | undefined {
  const [addr = '', prefix] = entry.split('/');
  const family = isIP(addr);
  if (family === 0) return `${JSON.stringify(entry)} is not an IP address or CIDR network`;
  if (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 6 ? 128 : 32)))
    return `${JSON.stringify(entry)} has a bad prefix length`;
  return undefined;
}
