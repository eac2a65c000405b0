/** Base64 in 64-character lines, each ending in "\n": what PEM, `base64 -d` and `openssl base64 -d` all read. */
export function base64Lines(bytes: Uint8Array | ArrayBuffer): string {
  return Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes)
    .toString('base64')
    .replace(/.{64}/g, '$&\n')
    .replace(/\n?$/, '\n');
}

export function toPem(label: string, der: Uint8Array | ArrayBuffer): string {
  return `-----BEGIN ${label}-----\n${base64Lines(der)}-----END ${label}-----\n`;
}
